//! A JSON body extractor whose rejections are API errors: malformed JSON or a
//! missing or mistyped field is a 400 naming the problem; a body over the
//! limit keeps axum's 413.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

fn reject(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than the configured limit",
        ),
        _ => {
            let field = field_in(&text);
            let mut err = ApiError::new(StatusCode::BAD_REQUEST, text);
            err.field = field;
            err
        }
    }
}

/// serde names the field in messages like "missing field `url`" or
/// "url: invalid type…"; pull it out for the `field` of the answer.
fn field_in(text: &str) -> Option<String> {
    if let Some(start) = text.find('`') {
        let rest = &text[start + 1..];
        if let Some(end) = rest.find('`') {
            return Some(rest[..end].to_string());
        }
    }
    let after = text.split(": ").nth(1)?;
    let candidate = after.split(':').next()?.trim();
    (!candidate.is_empty()
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
    .then(|| candidate.to_string())
}
