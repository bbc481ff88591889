-- An idempotency key names one item for as long as the item is kept, not
-- only while it is active: a client that retries a request whose answer it
-- never saw finds the same item (and, once it finished, its outcome) instead
-- of causing a second delivery. Older items that shared a key with a newer
-- one (allowed before) keep theirs with their id appended.
-- An operator may cancel a queued item: `cancelled` is a terminal state,
-- which SQLite's CHECK can only learn by rebuilding the table.
CREATE TABLE queue_items_v5 (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id      TEXT NOT NULL,
    caller            TEXT,
    priority          INTEGER NOT NULL DEFAULT 50,
    method            TEXT NOT NULL DEFAULT 'message/send',
    body              TEXT NOT NULL,
    idempotency_key   TEXT,
    status            TEXT NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'dispatched', 'completed', 'failed', 'expired', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    enqueued_at       INTEGER NOT NULL,
    available_at      INTEGER NOT NULL,
    expires_at        INTEGER,
    lease_token       TEXT,
    claimed_by        TEXT,
    lease_expires_at  INTEGER,
    last_error        TEXT,
    response          TEXT,
    finished_at       INTEGER,
    updated_at        INTEGER NOT NULL
);
INSERT INTO queue_items_v5
SELECT id, workspace_id, caller, priority, method, body,
       CASE WHEN idempotency_key IS NOT NULL AND EXISTS (
                SELECT 1 FROM queue_items newer
                WHERE newer.workspace_id = q.workspace_id
                  AND newer.idempotency_key = q.idempotency_key AND newer.id > q.id)
            THEN idempotency_key || '~' || id ELSE idempotency_key END,
       status, attempts, max_attempts, enqueued_at, available_at, expires_at, lease_token,
       claimed_by, lease_expires_at, last_error, response, finished_at, updated_at
FROM queue_items q;
DROP TABLE queue_items;
ALTER TABLE queue_items_v5 RENAME TO queue_items;

CREATE UNIQUE INDEX queue_items_key ON queue_items (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX queue_items_active ON queue_items (workspace_id) WHERE status IN ('queued', 'dispatched');
CREATE INDEX queue_items_claim ON queue_items (workspace_id, priority DESC, enqueued_at, id)
    WHERE status = 'queued';
CREATE INDEX queue_items_leases ON queue_items (lease_expires_at) WHERE status = 'dispatched';
CREATE INDEX queue_items_expiry ON queue_items (expires_at) WHERE status = 'queued' AND expires_at IS NOT NULL;
