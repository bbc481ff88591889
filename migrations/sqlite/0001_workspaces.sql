-- The workspace registry. Times are integer milliseconds since the Unix epoch (UTC):
-- SQLite has no timestamp type, and text timestamps only compare correctly when
-- every writer formats them identically.
CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY NOT NULL,
    url             TEXT,
    max_concurrent  INTEGER NOT NULL CHECK (max_concurrent >= 0),
    active_tasks    INTEGER NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
    status          TEXT NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'offline')),
    last_heartbeat  INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- The offline sweep reads online workspaces by last beat.
CREATE INDEX workspaces_online_by_beat ON workspaces (last_heartbeat) WHERE status = 'online';
