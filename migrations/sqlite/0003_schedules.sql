-- Cron schedules and their run history. The SchedulerActor owns both tables.
-- Times are integer milliseconds since the Unix epoch (UTC); booleans are 0/1.
-- A slot is claimed by the compare-and-set `UPDATE … WHERE next_run_at = $slot`;
-- the run record is written in the same transaction, so a won slot always
-- leaves a record even if the node dies before the fire reaches the queue.
CREATE TABLE schedules (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id            TEXT NOT NULL,
    name                    TEXT NOT NULL,
    spec                    TEXT NOT NULL,
    timezone                TEXT NOT NULL DEFAULT 'UTC',
    dst                     TEXT NOT NULL DEFAULT 'vixie' CHECK (dst IN ('vixie', 'literal')),
    prompt                  TEXT NOT NULL,
    enabled                 INTEGER NOT NULL DEFAULT 1,
    next_run_at             INTEGER,
    last_run_at             INTEGER,
    run_count               INTEGER NOT NULL DEFAULT 0,
    last_status             TEXT
                            CHECK (last_status IN ('dispatched', 'ok', 'error', 'skipped', 'stale', 'missed')),
    last_error              TEXT,
    consecutive_empty_runs  INTEGER NOT NULL DEFAULT 0,
    starting_deadline_ms    INTEGER NOT NULL CHECK (starting_deadline_ms > 0),
    defer_window_ms         INTEGER NOT NULL CHECK (defer_window_ms > 0),
    invalid                 INTEGER NOT NULL DEFAULT 0,
    invalid_error           TEXT,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);

-- The due query reads only schedules that can fire, oldest slot first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled = 1 AND invalid = 0;
-- Start-up repair finds enabled schedules that lost their next_run_at.
CREATE INDEX schedules_missing_next ON schedules (id) WHERE enabled = 1 AND next_run_at IS NULL;

CREATE TABLE schedule_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id       INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    workspace_id      TEXT NOT NULL,
    slot              INTEGER NOT NULL,
    -- RunNow fires outside the timetable; its slot is the instant it was asked for.
    manual            INTEGER NOT NULL DEFAULT 0,
    -- The queue item's idempotency key and the A2A messageId: cron:{schedule_id}:{slot}.
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL
                      CHECK (status IN ('dispatched', 'ok', 'error', 'skipped', 'stale', 'missed')),
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    error             TEXT,
    response_summary  TEXT,
    UNIQUE (schedule_id, slot, manual)
);

CREATE INDEX schedule_runs_history ON schedule_runs (schedule_id, slot DESC);
-- Reconciliation scans only runs still waiting for their outcome.
CREATE INDEX schedule_runs_pending ON schedule_runs (started_at) WHERE status = 'dispatched';
-- Reconciliation finds a run's queue item by key, whatever its status.
CREATE INDEX queue_items_by_key ON queue_items (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
