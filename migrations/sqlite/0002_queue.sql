-- The delivery queue (outbox): every message to a workspace passes through here.
-- Times are integer milliseconds since the Unix epoch (UTC).
CREATE TABLE queue_items (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id      TEXT NOT NULL,
    caller            TEXT,
    priority          INTEGER NOT NULL DEFAULT 50,
    method            TEXT NOT NULL DEFAULT 'message/send',
    body              TEXT NOT NULL,
    idempotency_key   TEXT,
    status            TEXT NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'dispatched', 'completed', 'failed', 'expired')),
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

-- One active item per (workspace, key): the dedupe is the index, so two
-- concurrent enqueues of one key cannot both insert.
CREATE UNIQUE INDEX queue_items_active_key ON queue_items (workspace_id, idempotency_key)
    WHERE status IN ('queued', 'dispatched') AND idempotency_key IS NOT NULL;
-- Depth (active items of a workspace) without reading finished rows.
CREATE INDEX queue_items_active ON queue_items (workspace_id) WHERE status IN ('queued', 'dispatched');
-- The claim: a workspace's queued items by priority, then age.
CREATE INDEX queue_items_claim ON queue_items (workspace_id, priority DESC, enqueued_at, id)
    WHERE status = 'queued';
-- Lease rescue and TTL expiry scan only the rows they can change.
CREATE INDEX queue_items_leases ON queue_items (lease_expires_at) WHERE status = 'dispatched';
CREATE INDEX queue_items_expiry ON queue_items (expires_at) WHERE status = 'queued' AND expires_at IS NOT NULL;
