//! The store conformance suite: every store operation, the same assertions,
//! run against SQLite and PostgreSQL.

mod support;

use ringmaster::model::workspace::{WorkspaceBeat, WorkspaceStatus};
use ringmaster::store::Store;
use support::at;

fn beat(id: &str, active: u32, max: Option<u32>) -> WorkspaceBeat {
    WorkspaceBeat {
        workspace: id.to_string(),
        active_tasks: active,
        max_concurrent: max,
    }
}

async fn register_then_get_and_list(store: Store) {
    let t0 = at(2026, 1, 1, 0, 0, 0);
    let ws = store
        .register_workspace("b", Some("http://127.0.0.1:9/a2a"), 3, t0)
        .await
        .unwrap();
    assert_eq!(ws.url.as_deref(), Some("http://127.0.0.1:9/a2a"));
    assert_eq!(ws.max_concurrent, 3);
    assert_eq!(ws.active_tasks, 0);
    assert_eq!(ws.status, WorkspaceStatus::Online);
    assert_eq!(
        ws.last_heartbeat, None,
        "registration is not a sign of life"
    );
    store.register_workspace("a", None, 1, t0).await.unwrap();

    // Re-registering changes the limit and keeps the URL when none is given.
    let again = store.register_workspace("b", None, 5, t0).await.unwrap();
    assert_eq!(again.url.as_deref(), Some("http://127.0.0.1:9/a2a"));
    assert_eq!(again.max_concurrent, 5);

    assert_eq!(store.get_workspace("b").await.unwrap(), Some(again));
    assert_eq!(store.get_workspace("nope").await.unwrap(), None);
    let ids: Vec<String> = store
        .list_workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, vec!["a", "b"]);
}

async fn beats_update_capacity(store: Store) {
    let t0 = at(2026, 1, 1, 0, 0, 0);
    store.register_workspace("w", None, 4, t0).await.unwrap();
    let ws = store.record_beat(&beat("w", 1, None), t0).await.unwrap();
    assert_eq!((ws.active_tasks, ws.max_concurrent), (1, 4));
    assert_eq!(ws.spare_capacity(), 3);
    assert_eq!(ws.last_heartbeat, Some(t0));

    let ws = store.record_beat(&beat("w", 2, Some(2)), t0).await.unwrap();
    assert_eq!(ws.spare_capacity(), 0, "a new limit in the beat is taken");

    // More active than allowed: no room, and never a negative number.
    let ws = store.record_beat(&beat("w", 7, None), t0).await.unwrap();
    assert_eq!(ws.spare_capacity(), 0);
}

async fn beat_from_unregistered_workspace_creates_it(store: Store) {
    let t0 = at(2026, 1, 1, 0, 0, 0);
    let ws = store
        .record_beat(&beat("new", 0, Some(2)), t0)
        .await
        .unwrap();
    assert_eq!(ws.url, None);
    assert_eq!(ws.max_concurrent, 2);
    assert_eq!(ws.status, WorkspaceStatus::Online);
    let ws = store
        .record_beat(&beat("other", 0, None), t0)
        .await
        .unwrap();
    assert_eq!(
        ws.max_concurrent, 1,
        "default limit when none was ever given"
    );
}

async fn silent_workspaces_go_offline_and_come_back(store: Store) {
    let t0 = at(2026, 1, 1, 0, 0, 0);
    store
        .record_beat(&beat("quiet", 0, Some(1)), t0)
        .await
        .unwrap();
    store
        .record_beat(
            &beat("chatty", 0, Some(1)),
            t0 + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    // Registered but never beat: not monitored, never marked offline.
    store
        .register_workspace("unmonitored", None, 1, t0)
        .await
        .unwrap();

    let now = t0 + chrono::Duration::seconds(100);
    let cutoff = now - chrono::Duration::seconds(90);
    let marked = store.mark_silent_offline(cutoff, now).await.unwrap();
    assert_eq!(marked, vec!["quiet"]);
    let quiet = store.get_workspace("quiet").await.unwrap().unwrap();
    assert_eq!(quiet.status, WorkspaceStatus::Offline);
    assert_eq!(
        quiet.spare_capacity(),
        0,
        "an offline workspace has no room"
    );

    // Idempotent: a second sweep at the same instant changes nothing.
    assert!(store
        .mark_silent_offline(cutoff, now)
        .await
        .unwrap()
        .is_empty());

    // A beat brings it back.
    let back = store
        .record_beat(&beat("quiet", 0, None), now)
        .await
        .unwrap();
    assert_eq!(back.status, WorkspaceStatus::Online);
    assert_eq!(back.spare_capacity(), 1);
}

async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

backend_tests!(
    register_then_get_and_list,
    beats_update_capacity,
    beat_from_unregistered_workspace_creates_it,
    silent_workspaces_go_offline_and_come_back,
    ping_answers,
);
