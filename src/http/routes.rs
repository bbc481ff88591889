//! Every route, once: its method, path and handler together with what the
//! OpenAPI document says of it. The router and `GET /openapi.json` are both
//! built from this table, so the document cannot leave a route out or
//! describe one that is not served.

use axum::routing::{delete, get, patch, post, put, MethodRouter};

use super::{delegations, events, health, metrics, openapi, queue, schedules, ui};
use super::{workspace_admin, workspaces, AppState};

/// One documented route.
pub struct Route {
    pub method: &'static str,
    /// With `{name}` for each path parameter, as axum and OpenAPI both write it.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    /// What the JSON body holds, when there is one.
    pub body: Option<&'static str>,
    /// Status codes and when each is answered (every error is
    /// `{"error", "field"?}` JSON).
    pub responses: &'static [(u16, &'static str)],
    /// Behind the bearer token when one is configured.
    pub guarded: bool,
    pub handler: fn() -> MethodRouter<AppState>,
}

const PAGE: [(&str, &str); 2] = [
    ("limit", "rows in a page, 1 to 1000 (default 100)"),
    ("cursor", "the next_cursor of the previous page"),
];
const OK_400: [(u16, &str); 2] = [(200, "done"), (400, "a value is refused; `field` names it")];

macro_rules! route {
    ($method:literal $path:literal, $tag:literal, $summary:literal,
     query: $query:expr, body: $body:expr, responses: $responses:expr,
     guarded: $guarded:expr, $handler:expr) => {
        Route {
            method: $method,
            path: $path,
            tag: $tag,
            summary: $summary,
            query: $query,
            body: $body,
            responses: $responses,
            guarded: $guarded,
            handler: || $handler,
        }
    };
}

/// The whole table.
pub fn all() -> Vec<Route> {
    vec![
        route!("put" "/v1/workspaces/{id}", "workspaces", "Register a workspace or change its URL and limit",
            query: &[], body: Some("{\"url\", \"max_concurrent\"}"), responses: &OK_400, guarded: true,
            put(workspaces::register)),
        route!("get" "/v1/workspaces", "workspaces", "List workspaces with capacity, status and depth",
            query: &PAGE, body: None, responses: &OK_400, guarded: true, get(workspace_admin::list)),
        route!("get" "/v1/workspaces/{id}", "workspaces", "Read one workspace with its depth",
            query: &[], body: None, responses: &[(200, "the workspace"), (404, "not registered")],
            guarded: true, get(workspace_admin::get)),
        route!("delete" "/v1/workspaces/{id}", "workspaces",
            "Remove a workspace: its queued items are cancelled and its schedules disabled",
            query: &[], body: None, responses: &[(200, "removed, with counts"), (404, "not registered")],
            guarded: true, delete(workspace_admin::remove)),
        route!("post" "/v1/workspaces/{id}/heartbeat", "workspaces", "Report a workspace's load",
            query: &[], body: Some("{\"active_tasks\", \"max_concurrent\"?}"), responses: &OK_400,
            guarded: true, post(workspaces::heartbeat)),
        route!("post" "/v1/workspaces/{id}/messages", "queue",
            "Send an A2A message: delivered at once (200) or queued (202)",
            query: &[("ttl_s", "seconds the item may wait, 1 to 2592000 (30 days)"), ("priority", "critical, task (the default), info, or -1000 to 1000 (higher goes first)"),
                     ("caller", "who sends it (kept with the item)")],
            body: Some("an A2A JSON-RPC message/send request"),
            responses: &[(200, "delivered; the agent's response"), (202, "queued: {queued, queue_id, queue_depth}"),
                         (400, "a value is refused"), (404, "workspace not registered"),
                         (409, "the messageId names an item that ended without a delivery"),
                         (503, "the database or the queue is unavailable; retry after Retry-After")],
            guarded: true, post(workspaces::send_message)),
        route!("get" "/v1/workspaces/{id}/queue", "queue", "A workspace's queue items, newest first",
            query: &[("status", "queued, dispatched, completed, failed, expired or cancelled"), PAGE[0], PAGE[1]],
            body: None, responses: &[(200, "a page of items"), (404, "workspace not registered")],
            guarded: true, get(workspaces::queue)),
        route!("post" "/v1/workspaces/{id}/queue/retry", "queue",
            "Redrive a workspace's dead letters (failed by default), oldest first",
            query: &[("status", "failed or expired"), ("limit", "items at most, 1 to 10000")],
            body: None, responses: &[(200, "{retried, more}"), (400, "a value is refused")],
            guarded: true, post(workspace_admin::retry_items)),
        route!("get" "/v1/queue", "queue", "Queue items across workspaces, newest first",
            query: &[("status", "an item state"), ("workspace_id", "one workspace's"), PAGE[0], PAGE[1]],
            body: None, responses: &OK_400, guarded: true, get(queue::list)),
        route!("get" "/v1/queue/{id}", "queue", "Read one queue item",
            query: &[], body: None, responses: &[(200, "the item"), (404, "no such item")],
            guarded: true, get(queue::get)),
        route!("post" "/v1/queue/{id}/retry", "queue", "Redrive a failed or expired item (attempts reset)",
            query: &[], body: None,
            responses: &[(200, "queued again"), (404, "no such item"), (409, "not failed or expired")],
            guarded: true, post(queue::retry)),
        route!("post" "/v1/queue/{id}/cancel", "queue", "Cancel a queued item",
            query: &[], body: None,
            responses: &[(200, "cancelled"), (404, "no such item"), (409, "being delivered or ended")],
            guarded: true, post(queue::cancel)),
        route!("post" "/v1/schedules", "schedules", "Create a schedule",
            query: &[],
            body: Some("{\"workspace_id\", \"name\", \"cron\", \"timezone\"?, \"dst\"?, \"prompt\", \"enabled\"?, \"starting_deadline_s\"?, \"defer_window_s\"?}"),
            responses: &[(201, "created, with id and next_run_at"), (400, "a value is refused")],
            guarded: true, post(schedules::create)),
        route!("get" "/v1/schedules", "schedules", "List schedules",
            query: &[("workspace_id", "one workspace's"), PAGE[0], PAGE[1]], body: None,
            responses: &OK_400, guarded: true, get(schedules::list)),
        route!("get" "/v1/schedules/{id}", "schedules", "Read a schedule",
            query: &[], body: None, responses: &[(200, "the schedule"), (404, "no such schedule")],
            guarded: true, get(schedules::get)),
        route!("patch" "/v1/schedules/{id}", "schedules", "Change a schedule (pause and resume with enabled)",
            query: &[], body: Some("any of the create fields but workspace_id"),
            responses: &[(200, "changed"), (400, "a value is refused"), (404, "no such schedule")],
            guarded: true, patch(schedules::update)),
        route!("delete" "/v1/schedules/{id}", "schedules", "Remove a schedule",
            query: &[], body: None, responses: &[(204, "removed"), (404, "no such schedule")],
            guarded: true, delete(schedules::delete)),
        route!("get" "/v1/schedules/{id}/runs", "schedules", "A schedule's runs, newest first",
            query: &PAGE, body: None, responses: &[(200, "a page of runs"), (404, "no such schedule")],
            guarded: true, get(schedules::runs)),
        route!("post" "/v1/schedules/{id}/run", "schedules", "Fire a schedule now",
            query: &[], body: None, responses: &[(202, "fired"), (404, "no such schedule")],
            guarded: true, post(schedules::run_now)),
        route!("post" "/v1/delegations", "delegations", "Create a delegation (deadline defaults to 6 h)",
            query: &[], body: Some("{\"id\"?, \"caller_workspace_id\"?, \"workspace_id\", \"deadline\"?}"),
            responses: &[(201, "created"), (200, "the id exists: the stored one"), (400, "a value is refused")],
            guarded: true, post(delegations::create)),
        route!("get" "/v1/delegations", "delegations", "List delegations, newest first",
            query: &[("status", "a ledger state"), ("workspace_id", "one workspace's"), PAGE[0], PAGE[1]],
            body: None, responses: &OK_400, guarded: true, get(delegations::list)),
        route!("get" "/v1/delegations/{id}", "delegations", "Read a delegation",
            query: &[], body: None, responses: &[(200, "the delegation"), (404, "no such delegation")],
            guarded: true, get(delegations::get)),
        route!("post" "/v1/delegations/{id}/heartbeat", "delegations", "A sign of life from the worker",
            query: &[], body: None,
            responses: &[(200, "stamped"), (404, "no such delegation"), (409, "already finished")],
            guarded: true, post(delegations::heartbeat)),
        route!("post" "/v1/delegations/{id}/status", "delegations", "Move a delegation forward",
            query: &[], body: Some("{\"status\", \"error\"?, \"result\"?}"),
            responses: &[(200, "moved (or already there)"), (404, "no such delegation"), (409, "it would move backwards")],
            guarded: true, post(delegations::set_status)),
        route!("post" "/v1/delegations/{id}/retry", "delegations", "Retry a stuck delegation",
            query: &[], body: None,
            responses: &[(200, "queued again"), (404, "no such delegation"), (409, "not stuck")],
            guarded: true, post(delegations::retry)),
        route!("get" "/v1/events", "events",
            "Server-Sent Events: queue, cron, delegation, workspace and actor events; Last-Event-ID resumes",
            query: &[("last_event_id", "resume after this event (as the Last-Event-ID header)")],
            body: None, responses: &[(200, "text/event-stream"), (400, "a bad Last-Event-ID")],
            guarded: true, get(events::events)),
        route!("get" "/healthz", "operations", "Health of every actor and the database",
            query: &[], body: None, responses: &[(200, "healthy"), (503, "not healthy; the detail says why")],
            guarded: false, get(health::healthz)),
        route!("get" "/metrics", "operations", "Prometheus metrics",
            query: &[], body: None, responses: &[(200, "Prometheus text")],
            guarded: false, get(metrics::metrics)),
        route!("get" "/openapi.json", "operations", "This document",
            query: &[], body: None, responses: &[(200, "OpenAPI 3.1")],
            guarded: false, get(openapi::document)),
        route!("get" "/ui", "operations", "The operator dashboard",
            query: &[], body: None, responses: &[(200, "HTML")],
            guarded: false, get(ui::page)),
        route!("get" "/ui/{asset}", "operations", "The dashboard's script and style",
            query: &[], body: None, responses: &[(200, "the asset"), (404, "no such asset")],
            guarded: false, get(ui::asset)),
    ]
}
