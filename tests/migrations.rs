//! Upgrading a database that older versions wrote: the migration that makes
//! idempotency keys name an item for as long as it is kept must accept a
//! table where a key was reused after its item finished (allowed before).

mod support;

use std::path::Path;

use ringmaster::model::queue::QueueStatus;
use ringmaster::store::Store;

/// Apply the migrations numbered below `upto` from `dir`, as an older
/// version of ringmaster would have.
async fn migrate_to(url: &str, dir: &str, upto: i64) {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(Path::new(dir)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < upto {
            std::fs::copy(&path, tmp.path().join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(tmp.path()).await.unwrap();
    if url.starts_with("sqlite:") {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        // A key reused after its first item completed, then again.
        for (i, status) in ["completed", "failed", "queued"].iter().enumerate() {
            sqlx::query(
                "INSERT INTO queue_items (workspace_id, body, idempotency_key, status,
                     max_attempts, enqueued_at, available_at, updated_at)
                 VALUES ('w', '{}', 'k', ?1, 5, ?2, ?2, ?2)",
            )
            .bind(status)
            .bind(i as i64)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for status in ["completed", "failed", "queued"] {
            sqlx::query(
                "INSERT INTO queue_items (workspace_id, body, idempotency_key, status,
                     max_attempts, enqueued_at, available_at, updated_at)
                 VALUES ('w', '{}', 'k', $1, 5, now(), now(), now())",
            )
            .bind(status)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
}

async fn reused_keys_upgrade_to_the_newest_item(store: Store) {
    let items = store.list_queue("w", None, 10).await.unwrap();
    let mut keys: Vec<(i64, Option<String>, QueueStatus)> = items
        .iter()
        .map(|i| (i.id, i.idempotency_key.clone(), i.status))
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[2].1.as_deref(), Some("k"), "the newest keeps the key");
    assert_eq!(keys[0].1, Some(format!("k~{}", keys[0].0)));
    assert_eq!(keys[1].1, Some(format!("k~{}", keys[1].0)));
    // The key now names the newest item, whatever its status.
    let again = store
        .enqueue(
            &ringmaster::model::queue::NewQueueItem::new("w", "{}").key("k"),
            5,
            support::at(2026, 1, 1, 0, 0, 0),
        )
        .await
        .unwrap();
    assert_eq!((again.id, again.deduplicated), (keys[2].0, true));
}

#[tokio::test]
async fn sqlite_reused_keys_upgrade_to_the_newest_item() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    migrate_to(&url, "migrations/sqlite", 5).await;
    let store = ringmaster::store::open(&url).await.unwrap();
    reused_keys_upgrade_to_the_newest_item(store).await;
}

#[tokio::test]
async fn postgres_reused_keys_upgrade_to_the_newest_item() {
    let Some(url) = support::fresh_postgres_database().await else {
        return;
    };
    let _dropped = support::DropDatabase(url.clone());
    migrate_to(&url, "migrations/postgres", 5).await;
    let store = ringmaster::store::open(&url).await.unwrap();
    reused_keys_upgrade_to_the_newest_item(store.clone()).await;
    store.close().await;
}
