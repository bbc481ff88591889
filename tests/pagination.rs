//! List pages on both backends: a keyset cursor walks every row once, in
//! order, whatever is written meanwhile; filters hold across pages; a
//! cursor of another list or a limit past its cap is a 400 naming it.

mod support;

use std::collections::HashSet;

use axum::http::StatusCode;
use chrono::Duration as Span;
use ringmaster::model::a2a::a2a_message;
use ringmaster::model::page::{Cursor, Keyset, PageRequest};
use ringmaster::model::queue::{NewQueueItem, QueueStatus};
use ringmaster::model::run::SlotClaim;
use ringmaster::model::schedule::NewSchedule;
use ringmaster::store::{QueueFilter, SlotFire, Store};
use serde_json::json;
use support::at;

fn first(limit: u32) -> PageRequest {
    PageRequest::first(limit)
}

fn after(limit: u32, cursor: Option<Cursor>) -> PageRequest {
    PageRequest {
        limit,
        after: cursor,
    }
}

async fn queue_pages_walk_every_item_once_newest_first(store: Store) {
    let now = at(2026, 9, 1, 12, 0, 0);
    let mut ids = Vec::new();
    for n in 0..7 {
        let ws = if n % 2 == 0 { "a" } else { "b" };
        let item = NewQueueItem::new(ws, a2a_message(&format!("m{n}"), "p"));
        ids.push((ws, store.enqueue(&item, 3, now).await.unwrap().id));
    }
    // All workspaces, three at a time.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .page_queue(QueueFilter::default(), &after(3, cursor.clone()))
            .await
            .unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|i| i.id));
        // An item written between pages lands before the cursor: never repeated.
        if cursor.is_none() {
            let late = NewQueueItem::new("a", a2a_message("late", "p"));
            store.enqueue(&late, 3, now).await.unwrap();
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<i64> = ids.iter().map(|(_, id)| *id).collect();
    expected.reverse();
    assert_eq!(seen, expected, "every item once, newest first");

    // One workspace's, two at a time: only its own.
    let a: Vec<i64> = ids
        .iter()
        .filter(|(w, _)| *w == "a")
        .map(|(_, id)| *id)
        .collect();
    let filter = QueueFilter {
        workspace: Some("a"),
        status: Some(QueueStatus::Queued),
    };
    let p1 = store.page_queue(filter, &first(2)).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    assert!(p1.items.iter().all(|i| i.workspace == "a"));
    let p2 = store.page_queue(filter, &after(2, p1.next)).await.unwrap();
    let p3 = store.page_queue(filter, &after(2, p2.next)).await.unwrap();
    assert!(p3.next.is_none(), "the last page says so");
    let got: HashSet<i64> = [p1.items, p2.items, p3.items]
        .into_iter()
        .flatten()
        .map(|i| i.id)
        .collect();
    assert_eq!(got.len(), a.len() + 1, "four of a plus the late one");
    assert!(a.iter().all(|id| got.contains(id)));

    // A status nothing has: an empty last page.
    let none = QueueFilter {
        workspace: None,
        status: Some(QueueStatus::Failed),
    };
    let empty = store.page_queue(none, &first(10)).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

async fn schedule_and_run_pages_walk_in_their_order(store: Store) {
    let now = at(2026, 6, 1, 8, 0, 30);
    let mut made = Vec::new();
    for n in 0..5 {
        let ws = if n < 3 { "w" } else { "v" };
        let new = NewSchedule::new(ws, format!("s{n}"), "* * * * *", "p");
        made.push(store.create_schedule(&new, now).await.unwrap().id);
    }
    let p1 = store.page_schedules(None, &first(2)).await.unwrap();
    let p2 = store
        .page_schedules(None, &after(2, p1.next))
        .await
        .unwrap();
    let p3 = store
        .page_schedules(None, &after(2, p2.next))
        .await
        .unwrap();
    let walked: Vec<i64> = [p1.items, p2.items, p3.items]
        .into_iter()
        .flatten()
        .map(|s| s.id)
        .collect();
    assert_eq!(walked, made, "by id, each once");
    assert!(p3.next.is_none());
    let w = store.page_schedules(Some("v"), &first(10)).await.unwrap();
    assert_eq!(w.items.iter().map(|s| s.id).collect::<Vec<_>>(), made[3..]);

    // Five runs of one schedule, read two at a time, newest slot first.
    let id = made[0];
    let mut slots = Vec::new();
    for m in 0..5 {
        let slot = at(2026, 6, 1, 8, 1 + m, 0);
        let claim = SlotFire {
            claim: SlotClaim {
                schedule_id: id,
                workspace: "w".into(),
                slot,
                next: slot + Span::minutes(1),
                key: format!("cron:{id}:{}", slot.timestamp()),
                missed: None,
            },
            item: None,
        };
        store.claim_slots(&[claim], 5, slot).await.unwrap();
        slots.push(slot);
    }
    slots.reverse();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.page_runs(id, &after(2, cursor)).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.slot));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, slots);
    assert!(matches!(
        store.page_runs(id, &first(1)).await.unwrap().next,
        Some(Cursor::AtId(..))
    ));
}

async fn the_api_pages_with_next_cursor_and_refuses_foreign_cursors(store: Store) {
    let a = support::api::api(store, support::quiet_config()).await;
    a.busy_workspace("w", "http://127.0.0.1:9/a2a").await;
    for n in 0..5 {
        let (s, body) = a
            .post(
                "/v1/workspaces/w/messages",
                support::api::message(&format!("m{n}")),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    }
    let mut seen = Vec::new();
    let mut path = "/v1/queue?workspace_id=w&limit=2".to_string();
    loop {
        let (s, body) = a.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/queue?workspace_id=w&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    let (s, one) = a.get(&format!("/v1/queue/{}", seen[0])).await;
    assert_eq!((s, one["id"].as_i64()), (StatusCode::OK, Some(seen[0])));
    let (s, _) = a.get("/v1/queue/999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, body) = a.get("/v1/workspaces/w/queue?limit=3").await;
    assert_eq!(
        (s, body["items"].as_array().unwrap().len()),
        (StatusCode::OK, 3)
    );
    let c = body["next_cursor"].as_str().unwrap().to_string();
    let (s, body) = a
        .get(&format!("/v1/workspaces/w/queue?limit=3&cursor={c}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert!(body["next_cursor"].is_null());

    // A queue cursor given to the runs list, garbage, and limits past the cap.
    let (s, _) = a
        .post(
            "/v1/schedules",
            json!({"workspace_id":"w","name":"n","cron":"* * * * *","prompt":"p"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, list) = a.get("/v1/schedules?limit=1").await;
    assert!(list["next_cursor"].is_null(), "{list}");
    let sid = list["schedules"][0]["id"].as_i64().unwrap();
    for (path, field) in [
        (format!("/v1/schedules/{sid}/runs?cursor={c}"), "cursor"),
        ("/v1/queue?cursor=zzz".to_string(), "cursor"),
        ("/v1/queue?cursor=t1.2".to_string(), "cursor"),
        ("/v1/schedules?limit=100000".to_string(), "limit"),
        ("/v1/queue?limit=0".to_string(), "limit"),
        ("/v1/queue?status=nope".to_string(), "status"),
        ("/v1/queue?workspace_id=a%20b".to_string(), "workspace_id"),
    ] {
        let (s, body) = a.get(&path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
}

#[test]
fn cursors_round_trip_and_name_their_list() {
    let t = at(2026, 1, 2, 3, 4, 5);
    for c in [
        Cursor::Id(-5),
        Cursor::Key("ws-1".into()),
        Cursor::AtId(t, 7),
        Cursor::AtKey(t, "d.1".into()),
    ] {
        let text = c.encode();
        let back = PageRequest::new(Some(5), Some(&text), c.keyset()).unwrap();
        assert_eq!(back.after, Some(c));
    }
    assert!(PageRequest::new(None, Some("i3"), Keyset::AtId).is_err());
}

backend_tests!(
    queue_pages_walk_every_item_once_newest_first,
    schedule_and_run_pages_walk_in_their_order,
    the_api_pages_with_next_cursor_and_refuses_foreign_cursors,
    list_filters_check_the_workspace_id,
);

async fn list_filters_check_the_workspace_id(store: Store) {
    let a = support::api::api(store, support::quiet_config()).await;
    for path in ["/v1/schedules", "/v1/queue"] {
        for bad in ["a%00b", "a%20b", &"x".repeat(300)] {
            let (s, body) = a.get(&format!("{path}?workspace_id={bad}")).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {bad}: {body}");
            assert_eq!(body["field"], "workspace_id", "{path}: {body}");
        }
    }
}
