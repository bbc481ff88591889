//! The one error type of the store layer, with enough context to act on.

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {url:?}: expected sqlite://… or postgres://…")]
    UnsupportedUrl { url: String },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating {url} failed: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("{operation} failed: {source}")]
    Query {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be reached, or is shutting down.
    #[error("database unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    /// A conditional write kept losing to concurrent writers (rare: only
    /// when a row keeps moving between the write and the read explaining it).
    #[error("{operation} on {id:?} kept racing with other writers; try again")]
    Contended { operation: &'static str, id: String },
    #[error("row of {table} is corrupt: column {column} holds {value:?}")]
    Corrupt {
        table: &'static str,
        column: String,
        value: String,
    },
}

impl StoreError {
    /// Wraps a sqlx error with the name of the operation that hit it.
    pub fn query(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { operation, source }
    }

    /// True when the connection to the database failed (see [`connection_lost`]).
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Unavailable { .. } => true,
            StoreError::Query { source, .. } => connection_lost(source),
            _ => false,
        }
    }

    /// True when the database could not be reached (down, restarting,
    /// shutting down, out of connections, locked past the busy timeout), as
    /// opposed to a statement it refused: callers answer 503 and try again.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } | StoreError::Unavailable { .. } => true,
            StoreError::Query { source, .. } => unreachable(source),
            _ => false,
        }
    }
}

/// An error that says "the database is not there right now".
fn unreachable(err: &sqlx::Error) -> bool {
    if connection_lost(err) {
        return true;
    }
    match err {
        sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Postgres: too many connections.
            code == "53300"
                // SQLite: BUSY and LOCKED, with their extended codes.
                || code
                    .parse::<u32>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

/// The connection failed or the server is going away: what shuts the
/// [`Gate`](super::gate::Gate). Busy locks and full pools are load, not absence.
pub(crate) fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Connection exceptions (class 08), admin or crash shutdown,
            // "cannot connect now".
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }
        _ => false,
    }
}
