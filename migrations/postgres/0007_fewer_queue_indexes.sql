-- Every index on queue_items is paid by each enqueue, claim and outcome
-- (measured: 0006's four cost a quarter of bulk enqueue and a third of the
-- drain on Postgres). Keep the ones reads cannot do without:
-- * active items by workspace and status, in one partial index: a
--   workspace's depth (prefix) and /metrics' counts by status (the whole
--   index, active rows only);
-- * items that ended badly, by status then id: "failed across workspaces"
--   pages without reading the completed bulk.
-- Other list pages read the primary key newest first; retention keeps
-- that walk short.
DROP INDEX queue_items_active_status;
DROP INDEX queue_items_active;
CREATE INDEX queue_items_active ON queue_items (workspace_id, status)
    WHERE status IN ('queued', 'dispatched');
DROP INDEX queue_items_workspace_page;
DROP INDEX queue_items_status_page;
CREATE INDEX queue_items_ended_badly ON queue_items (status, id)
    WHERE status IN ('failed', 'expired', 'cancelled');
