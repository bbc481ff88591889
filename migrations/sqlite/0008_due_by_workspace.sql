-- Due schedules are read in rounds ordered by slot, then workspace, then id:
-- a round takes a workspace's fires of one slot together, so the drain,
-- woken after each round, claims them in one go while the scheduler writes
-- the next round. The index gives that order without a sort.
DROP INDEX schedules_due;
CREATE INDEX schedules_due ON schedules (next_run_at, workspace_id, id) WHERE enabled = 1 AND invalid = 0;
