//! The PostgreSQL driver: for several nodes sharing the work.
//!
//! Correctness never rests on a single node: every claim is a conditional
//! write, and queue claims use `FOR UPDATE SKIP LOCKED` so nodes take disjoint
//! rows without waiting on each other.

mod delegations;
pub mod queue;
mod schedules;
mod workspaces;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{redact, Backend, Driver, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    /// Connect to `url` and migrate. Fails loudly (no retry loop here) when the
    /// server is unreachable: the caller decides whether to wait.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(url),
                source,
            })?;
        // Several nodes may start at once; sqlx takes an advisory lock around
        // the migration so only one applies it.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redact(url),
                source,
            })?;
        Ok(Self { pool })
    }

    /// The pool, for code that needs Postgres-only features (LISTEN/NOTIFY).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait::async_trait]
impl Driver for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::query("ping"))?;
        Ok(())
    }

    fn postgres_pool(&self) -> Option<PgPool> {
        Some(self.pool.clone())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
