//! `/ui`: the operator dashboard, served by the binary itself. Three files
//! written by hand (`ui/`), no build step, embedded at compile time: no
//! Node, no CDN, no font fetched from anywhere. The page calls the same
//! `/v1` API with the token the operator gives it (kept in the tab's
//! sessionStorage; `/ui#token=…` fills it in, and the fragment never
//! reaches the server).

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");

/// Only this origin's files, no inline script; `connect-src 'self'` keeps
/// the token from being sent anywhere else.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn file(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn page() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file("text/javascript; charset=utf-8", SCRIPT),
        "app.css" => file("text/css; charset=utf-8", STYLE),
        _ => ApiError::not_found(format!("no dashboard file {name:?}")).into_response(),
    }
}
