-- The workspace registry.
CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    url             TEXT,
    max_concurrent  INTEGER NOT NULL CHECK (max_concurrent >= 0),
    active_tasks    INTEGER NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
    status          TEXT NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'offline')),
    last_heartbeat  TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

-- The offline sweep reads online workspaces by last beat.
CREATE INDEX workspaces_online_by_beat ON workspaces (last_heartbeat) WHERE status = 'online';
