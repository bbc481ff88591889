//! The scratch database a run owns: a new SQLite file in a temp dir, or a
//! new database on the named Postgres server, dropped at the end.

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

pub struct ScratchDb {
    /// What the binary gets as `--database`.
    pub url: String,
    admin: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl ScratchDb {
    pub async fn create(spec: &str) -> ScratchDb {
        let name = format!("ringmaster_bench_http_{}", std::process::id());
        if spec == "sqlite" {
            let dir = tempfile::tempdir().expect("a temp dir");
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return ScratchDb {
                url,
                admin: None,
                name,
                _dir: Some(dir),
            };
        }
        let mut admin = PgConnection::connect(spec)
            .await
            .expect("the Postgres server");
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create");
        let mut url = url::Url::parse(spec).expect("a URL");
        url.set_path(&name);
        ScratchDb {
            url: url.to_string(),
            admin: Some(spec.to_string()),
            name,
            _dir: None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.admin.is_some()
    }

    /// Run statements on the database itself (seeding, counting).
    pub async fn execute(&self, sql: &str) {
        if self.is_postgres() {
            let mut c = PgConnection::connect(&self.url).await.expect("connect");
            c.execute(sql).await.expect(sql);
        } else {
            let mut c = SqliteConnection::connect(&self.url).await.expect("connect");
            c.execute(sql).await.expect(sql);
        }
    }

    /// One number from a query.
    pub async fn number(&self, sql: &str) -> i64 {
        if self.is_postgres() {
            let mut c = PgConnection::connect(&self.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut c).await.expect(sql)
        } else {
            let mut c = SqliteConnection::connect(&self.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut c).await.expect(sql)
        }
    }

    /// The queue table's size on disk in bytes (SQLite: the whole file).
    pub async fn queue_bytes(&self) -> i64 {
        if self.is_postgres() {
            self.number("SELECT pg_total_relation_size('queue_items')")
                .await
        } else {
            self.number(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .await
        }
    }

    pub async fn drop_now(self) {
        if let Some(admin) = &self.admin {
            if let Ok(mut c) = PgConnection::connect(admin).await {
                let _ = c
                    .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                    .await;
            }
        }
    }
}
