//! `GET /v1/events`: the console's feed as Server-Sent Events. Each event's
//! `data:` is one JSON object with `type`, the ids and the time; its `id:`
//! is the feed's number, so a reconnecting client's `Last-Event-ID` (or
//! `?last_event_id=`, for clients that cannot set headers) resumes where
//! the feed still has it. A client too slow to keep up is sent a last
//! `stream.lagged` event and dropped: it never slows an actor.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::body::Params;
use super::error::ApiError;
use super::AppState;
use crate::feed::{Numbered, Subscription};

/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_field("Last-Event-ID", "Last-Event-ID must be an event's id")
                })?,
        ),
        None => params.number::<u64>("last_event_id")?,
    };
    let sub = app.ringmaster.feed().subscribe(last);
    let at = app.ringmaster.clock().now();
    let mut first = VecDeque::new();
    if sub.gap {
        first.push_back(
            Event::default().data(
                json!({"type": "stream.gap", "at": at,
                       "detail": "some events after Last-Event-ID are gone; reload what you show"})
                .to_string(),
            ),
        );
    }
    first.extend(sub.backlog.iter().map(event));
    let state = Streaming {
        first,
        sub,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        let next = s.next().await?;
        Some((Ok(next), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn event(n: &Arc<Numbered>) -> Event {
    Event::default()
        .id(n.id.to_string())
        .data(n.event.to_json(n.id).to_string())
}

struct Streaming {
    first: VecDeque<Event>,
    sub: Subscription,
    done: bool,
}

impl Streaming {
    /// The next event to send, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some(e) = self.first.pop_front() {
            return Some(e);
        }
        if self.done || *self.sub.closing.borrow() {
            return None;
        }
        tokio::select! {
            got = self.sub.live.recv() => match got {
                Ok(n) => Some(event(&n)),
                Err(RecvError::Lagged(missed)) => {
                    self.done = true;
                    Some(Event::default().data(
                        json!({"type": "stream.lagged", "missed": missed,
                               "detail": "this reader fell too far behind and is dropped; reconnect with Last-Event-ID"})
                        .to_string(),
                    ))
                }
                Err(RecvError::Closed) => None,
            },
            _ = self.sub.closing.changed() => None,
        }
    }
}
