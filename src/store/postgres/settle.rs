//! Outcomes of claimed items in one statement: the model's decisions go in
//! as arrays, each row fenced by its lease token.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::store::{Settle, StoreError};

pub(super) async fn batch(
    pool: &PgPool,
    rows: &[Settle<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.item.id).collect();
    let tokens: Vec<&str> = rows
        .iter()
        .map(|r| r.item.lease_token.as_deref().unwrap_or_default())
        .collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.settled.status.as_str()).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| r.settled.attempts).collect();
    let available: Vec<DateTime<Utc>> = rows.iter().map(|r| r.settled.available_at).collect();
    let finished: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.settled.finished_at).collect();
    let errors: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.settled.last_error.as_deref())
        .collect();
    let responses: Vec<Option<&str>> = rows.iter().map(|r| r.settled.response.as_deref()).collect();
    sqlx::query_scalar(
        "UPDATE queue_items q SET
             status = u.status, attempts = u.attempts, available_at = u.available_at,
             finished_at = u.finished_at, last_error = u.last_error, response = u.response,
             updated_at = $9, lease_token = NULL, claimed_by = NULL, lease_expires_at = NULL
         FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamptz[],
                     $6::timestamptz[], $7::text[], $8::text[])
             AS u(id, token, status, attempts, available_at, finished_at, last_error, response)
         WHERE q.id = u.id AND q.status = 'dispatched' AND q.lease_token = u.token
         RETURNING q.id",
    )
    .bind(&ids)
    .bind(&tokens)
    .bind(&statuses)
    .bind(&attempts)
    .bind(&available)
    .bind(&finished)
    .bind(&errors)
    .bind(&responses)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(StoreError::query("record outcomes"))
}
