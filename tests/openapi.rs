//! `GET /openapi.json` describes every route the router serves and nothing
//! else: both come from one table (`src/http/routes.rs`); this checks the
//! document against the table and every documented operation against the
//! router (none answers "no such endpoint" or "method not allowed").

mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ringmaster::http::routes;
use tower::ServiceExt;

async fn document_names_every_route_and_each_is_served(db: support::TestDb) {
    let a = support::api::api(db.store.clone(), support::quiet_config()).await;
    let (s, doc) = a.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let table: BTreeSet<(String, String)> = routes::all()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table, "the document is the table");
    assert!(table.len() >= 30, "{} routes", table.len());

    for (method, path) in &table {
        // Path parameters get a value of the right shape.
        let uri = path
            .replace(
                "{id}",
                if path.contains("/queue/") || path.contains("/schedules/") {
                    "1"
                } else {
                    "x1"
                },
            )
            .replace("{asset}", "app.js");
        let req = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        if uri == "/v1/events" {
            let resp = a.router.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            continue;
        }
        let (status, body) = a.send(req).await;
        let unrouted =
            body["error"] == "no such endpoint" || status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            !unrouted,
            "{method} {uri} is documented but not served: {status} {body}"
        );
    }
    // Guarded operations say so.
    let send = &doc["paths"]["/v1/workspaces/{id}/messages"]["post"];
    assert!(send["security"].is_array(), "{send}");
    assert!(send["responses"]["202"].is_object(), "{send}");
    assert!(doc["paths"]["/healthz"]["get"]["security"].is_null());
    a.shutdown().await;
}

#[tokio::test]
async fn sqlite_document_names_every_route_and_each_is_served() {
    document_names_every_route_and_each_is_served(support::TestDb::sqlite().await).await;
}
