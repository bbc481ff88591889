-- Retention reads only what it deletes: each prune walks one of these
-- partial indexes over finished rows, oldest first.
CREATE INDEX queue_items_finished ON queue_items (finished_at)
    WHERE status IN ('completed', 'failed', 'expired', 'cancelled');
CREATE INDEX schedule_runs_finished ON schedule_runs (finished_at)
    WHERE status <> 'dispatched';
CREATE INDEX delegations_finished ON delegations (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

-- /metrics counts active items by status from this alone, however many
-- finished rows the table holds.
CREATE INDEX queue_items_active_status ON queue_items (status, workspace_id)
    WHERE status IN ('queued', 'dispatched');

-- Lists page by id: one workspace's items (optionally of one status), and
-- every workspace's items of one status.
CREATE INDEX queue_items_workspace_page ON queue_items (workspace_id, status, id);
CREATE INDEX queue_items_status_page ON queue_items (status, id);
