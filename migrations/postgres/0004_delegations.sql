-- The delegation ledger: a task one agent handed to another, with a deadline
-- and heartbeats. Statuses only move forward; the conditional UPDATEs of the
-- store enforce it, the CHECKs only keep hand-written rows inside the vocabulary.
CREATE TABLE delegations (
    id                   TEXT PRIMARY KEY,
    caller_workspace_id  TEXT,
    workspace_id         TEXT NOT NULL,
    status               TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
        ('queued', 'dispatched', 'in_progress', 'completed', 'failed', 'stuck', 'cancelled')),
    -- What the status was before the last change: set by the same UPDATE
    -- (`previous_status = status`), so a transition can name where it came
    -- from without a second read that could race.
    previous_status      TEXT CHECK (previous_status IN
        ('queued', 'dispatched', 'in_progress', 'completed', 'failed', 'stuck', 'cancelled')),
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    deadline             TIMESTAMPTZ NOT NULL,
    last_heartbeat       TIMESTAMPTZ,
    error_detail         TEXT,
    result               TEXT
);

-- The sweep's two rules read only in-flight rows: one by deadline, one by the
-- instant the stuck clock runs from (the last beat, or creation if none).
CREATE INDEX delegations_inflight_by_deadline ON delegations (deadline)
    WHERE status IN ('queued', 'dispatched', 'in_progress');
CREATE INDEX delegations_inflight_by_last_sign ON delegations ((COALESCE(last_heartbeat, created_at)))
    WHERE status IN ('queued', 'dispatched', 'in_progress');
-- Listing by status, oldest first.
CREATE INDEX delegations_by_status ON delegations (status, created_at, id);
