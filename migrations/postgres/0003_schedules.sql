-- Cron schedules and their run history. The SchedulerActor owns both tables.
-- A slot is claimed by the compare-and-set `UPDATE … WHERE next_run_at = $slot`;
-- the run record is written in the same transaction, so a won slot always
-- leaves a record even if the node dies before the fire reaches the queue.
CREATE TABLE schedules (
    id                      BIGSERIAL PRIMARY KEY,
    workspace_id            TEXT NOT NULL,
    name                    TEXT NOT NULL,
    spec                    TEXT NOT NULL,
    timezone                TEXT NOT NULL DEFAULT 'UTC',
    dst                     TEXT NOT NULL DEFAULT 'vixie' CHECK (dst IN ('vixie', 'literal')),
    prompt                  TEXT NOT NULL,
    enabled                 BOOLEAN NOT NULL DEFAULT TRUE,
    next_run_at             TIMESTAMPTZ,
    last_run_at             TIMESTAMPTZ,
    run_count               BIGINT NOT NULL DEFAULT 0,
    last_status             TEXT
                            CHECK (last_status IN ('dispatched', 'ok', 'error', 'skipped', 'stale', 'missed')),
    last_error              TEXT,
    consecutive_empty_runs  INTEGER NOT NULL DEFAULT 0,
    starting_deadline_ms    BIGINT NOT NULL CHECK (starting_deadline_ms > 0),
    defer_window_ms         BIGINT NOT NULL CHECK (defer_window_ms > 0),
    invalid                 BOOLEAN NOT NULL DEFAULT FALSE,
    invalid_error           TEXT,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);

-- The due query reads only schedules that can fire, oldest slot first.
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled AND NOT invalid;
-- Start-up repair finds enabled schedules that lost their next_run_at.
CREATE INDEX schedules_missing_next ON schedules (id) WHERE enabled AND next_run_at IS NULL;

CREATE TABLE schedule_runs (
    id                BIGSERIAL PRIMARY KEY,
    schedule_id       BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    workspace_id      TEXT NOT NULL,
    slot              TIMESTAMPTZ NOT NULL,
    -- RunNow fires outside the timetable; its slot is the instant it was asked for.
    manual            BOOLEAN NOT NULL DEFAULT FALSE,
    -- The queue item's idempotency key and the A2A messageId: cron:{schedule_id}:{slot}.
    idempotency_key   TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL
                      CHECK (status IN ('dispatched', 'ok', 'error', 'skipped', 'stale', 'missed')),
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ,
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
