//! Wakes over LISTEN/NOTIFY. `PgListener` re-connects by itself after a
//! dropped connection, but notifications sent while it was away are lost.
//! So while the connection is broken the listener pings its own channel
//! (an empty payload) until a notification comes through again, and then
//! answers [`Wake::Missed`] once: the drain looks at everything after a gap.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;

use super::QUEUE_CHANNEL;
use crate::store::notify::{Wake, WakeStream};
use crate::store::StoreError;

/// How long a broken listener waits for its ping to come back before it
/// pings again.
const PING_EVERY: Duration = Duration::from_secs(1);

pub(super) async fn listen(pool: &PgPool) -> Result<Box<dyn WakeStream>, StoreError> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(StoreError::query("listen: connect"))?;
    listener
        .listen(QUEUE_CHANNEL)
        .await
        .map_err(StoreError::query("listen"))?;
    Ok(Box::new(Listening {
        listener,
        pool: pool.clone(),
        broken: false,
    }))
}

struct Listening {
    listener: PgListener,
    pool: PgPool,
    broken: bool,
}

impl Listening {
    async fn ping(&self) {
        let _ = sqlx::query("SELECT pg_notify($1, '')")
            .bind(QUEUE_CHANNEL)
            .execute(&self.pool)
            .await;
    }
}

#[async_trait::async_trait]
impl WakeStream for Listening {
    async fn next(&mut self) -> Wake {
        loop {
            let received = if self.broken {
                self.ping().await;
                match tokio::time::timeout(PING_EVERY, self.listener.try_recv()).await {
                    Ok(r) => r,
                    Err(_) => continue,
                }
            } else {
                self.listener.try_recv().await
            };
            match received {
                Ok(Some(_)) if self.broken => {
                    self.broken = false;
                    tracing::info!("LISTEN connection re-established");
                    return Wake::Missed;
                }
                Ok(Some(note)) if note.payload().is_empty() => continue,
                Ok(Some(note)) => return Wake::Workspace(note.payload().to_string()),
                Ok(None) => {
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    self.broken = true;
                }
                Err(err) => {
                    if !self.broken {
                        tracing::warn!(error = %err, "LISTEN failed; reconnecting");
                    }
                    self.broken = true;
                    tokio::time::sleep(PING_EVERY).await;
                }
            }
        }
    }
}
