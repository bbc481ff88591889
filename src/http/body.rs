//! Extractors whose every refusal is an API error: `{"error", "field"}` with
//! the field to blame, never axum's plain-text rejections.
//!
//! - [`JsonBody`]: malformed JSON, a missing or mistyped field → 400 naming
//!   the field by its path (`max_concurrent`, `params.message.messageId`),
//!   found with `serde_path_to_error`; over the size limit → 413; a body not
//!   received in time → 408.
//! - [`Params`]: the query string as text; handlers read each parameter
//!   with a typed getter that names it when it does not parse.
//!   [`Params::page`] reads `?limit=&cursor=` of a paginated list.
//! - [`Id`] / [`Number`]: one path segment, checked against the id rules
//!   or parsed as a whole number, 400 naming the segment otherwise.

use std::collections::HashMap;
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use serde_json::Value;

use super::error::ApiError;
use crate::model::page::{Keyset, Page, PageRequest};
use crate::model::text;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // No content type is taken as JSON (curl without -H); a declared
        // other type is a client that meant something else.
        if let Some(declared) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            if !is_json(declared.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = if body_timed_out(&rejection) {
                StatusCode::REQUEST_TIMEOUT
            } else {
                rejection.status()
            };
            match status {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body is larger than the configured limit",
                ),
                StatusCode::REQUEST_TIMEOUT => ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ),
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Whether reading the body failed because it stopped arriving (the
/// router's body timeout), which axum reports as a generic read failure.
fn body_timed_out(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(rejection);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// `application/json` or any `+json` type, with or without parameters.
fn is_json(content_type: &[u8]) -> bool {
    let text = String::from_utf8_lossy(content_type).to_ascii_lowercase();
    let essence = text.split(';').next().unwrap_or_default().trim();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// JSON into `T`, naming the field where it went wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let missing = inner.to_string();
        // A missing field is reported at its parent; serde names it in ``.
        let field = match (missing.find('`'), path.as_str()) {
            (Some(_), _) if missing.starts_with("missing field") => {
                missing.split('`').nth(1).map(str::to_string)
            }
            (_, ".") | (_, "") => None,
            (_, p) => Some(p.to_string()),
        };
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else {
            match &field {
                Some(f) => format!("{f}: {inner}"),
                None => inner.to_string(),
            }
        };
        let mut api = ApiError::new(StatusCode::BAD_REQUEST, message);
        api.field = field;
        api
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// The query string, read parameter by parameter.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the query string is malformed"))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

impl Params {
    pub fn text(&self, name: &'static str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A whole number, or a 400 naming `name`.
    pub fn number<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, ApiError> {
        self.text(name)
            .map(|v| {
                v.parse::<T>().map_err(|_| {
                    ApiError::bad_field(
                        name,
                        format!("{name}: {v:?} is not a whole number in the allowed range"),
                    )
                })
            })
            .transpose()
    }

    /// `name` read by `parse` when given (`?status=`); its refusal names
    /// the field.
    pub fn parsed<T>(
        &self,
        name: &'static str,
        parse: fn(&'static str, &str) -> Result<T, crate::model::Invalid>,
    ) -> Result<Option<T>, ApiError> {
        Ok(self.text(name).map(|v| parse(name, v)).transpose()?)
    }

    /// An id (`workspace_id=`), checked against the id rules, or a 400
    /// naming `name`.
    pub fn id(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let id = self.text(name);
        if let Some(id) = id {
            text::id(name, id)?;
        }
        Ok(id)
    }

    /// `?limit=&cursor=` of a list ordered by `keyset`.
    pub fn page(&self, keyset: Keyset) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(
            self.number("limit")?,
            self.text("cursor"),
            keyset,
        )?)
    }
}

/// The `next_cursor` of an answer: the cursor text, or null on the last page.
pub fn next_cursor<T>(page: &Page<T>) -> Value {
    page.next
        .as_ref()
        .map_or(Value::Null, |c| Value::String(c.encode()))
}

/// One path segment that must be an id (`A–Z a–z 0–9 . _ : @ -`, 1–128).
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = segment(parts, state).await?;
        text::id("id", &raw)?;
        Ok(Id(raw))
    }
}

/// One path segment that must be a whole number (a schedule or item id).
pub struct Number(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Number {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = segment(parts, state).await?;
        raw.parse::<i64>()
            .map(Number)
            .map_err(|_| ApiError::bad_field("id", format!("id: {raw:?} is not a whole number")))
    }
}

async fn segment<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map(|p| p.0)
        .map_err(|_| ApiError::bad_field("id", "id: the path segment could not be read"))
}
