//! Ingest: 50 connections posting messages to a busy workspace (each
//! answered 202 once durable), against the same server's `/healthz` rate in
//! the same run; then the rows in the table against the 2xx answers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::db::ScratchDb;
use crate::load::{self, MakeRequest};
use crate::node::Server;
use crate::Opts;

pub async fn run(opts: &Opts) -> String {
    let db = ScratchDb::create(&opts.database).await;
    let server = Server::start(&opts.bin, &db.url, &[]);
    // Busy: full room, so every message waits in the queue (202).
    load::workspace(&server.base, "busy", "http://127.0.0.1:9/a2a", 1, 1).await;
    let duration = Duration::from_secs(opts.seconds);
    let healthz: MakeRequest = Arc::new(|_| (reqwest::Method::GET, "/healthz".into(), None));
    let health = load::closed(&server.base, opts.conns, duration, healthz).await;
    let post: MakeRequest = Arc::new(|n| {
        (
            reqwest::Method::POST,
            "/v1/workspaces/busy/messages".into(),
            Some(load::message(&format!("m{n}"))),
        )
    });
    let messages = load::closed(&server.base, opts.conns, duration, post).await;
    drop(server);
    let rows = db
        .number("SELECT COUNT(*) FROM queue_items WHERE workspace_id = 'busy'")
        .await;
    let line = json!({
        "bench": "ingest",
        "backend": if db.is_postgres() { "postgres" } else { "sqlite" },
        "conns": opts.conns,
        "seconds": opts.seconds,
        "healthz": health.json(),
        "messages": messages.json(),
        "messages_vs_healthz": load::round2(messages.rate() / health.rate().max(1.0)),
        "rows": rows,
        "rows_equal_2xx": rows as u64 == messages.ok,
    });
    db.drop_now().await;
    line.to_string()
}
