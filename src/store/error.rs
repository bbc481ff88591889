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

    /// True when the database could not be reached at all (as opposed to a
    /// query it refused): callers keep the work and try again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Query { source, .. } => matches!(
                source,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            ),
            _ => false,
        }
    }
}
