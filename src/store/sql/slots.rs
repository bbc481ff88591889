//! Slot claims as a few multi-row statements per batch (the generic path;
//! Postgres has its own `UNNEST` form in `postgres/slots.rs`).
//!
//! One statement per fire cost about 40 µs each on SQLite (three or four
//! per fire, each a round trip to sqlx's worker thread): 10,000 fires due
//! in one minute took 1.5 s to claim. Here a chunk of fires is three
//! statements whatever its size: the compare-and-set moves every row still
//! at its slot (`UPDATE … FROM (VALUES …) RETURNING`), the run records of
//! exactly the rows it moved are inserted (a slot already recorded, because
//! the schedule was edited back onto it, is not fired twice), and the won
//! fires are enqueued (the outbox). One write transaction holds all chunks,
//! so a death at any instant leaves claim, runs and fires together or none.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{query, values, Arg, Dialect, Exec, Row, TxMode};
use crate::model::run::RunStatus;
use crate::store::schedules::SlotFire;
use crate::store::StoreError;

/// Fires per statement: the widest statement binds 7 values a fire, far
/// below SQLite's 32,766 parameters, and a batch of the default 500 is five
/// chunks.
const FIRES_PER_STATEMENT: usize = 100;

/// Claim `fires` in one write transaction; the won schedules' ids.
pub(crate) async fn claim_slots_set<D: Dialect>(
    d: &D,
    fires: &[SlotFire],
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut tx = d
        .begin(TxMode::Write)
        .await
        .map_err(query("claim slots: begin"))?;
    let mut won = Vec::with_capacity(fires.len());
    for chunk in fires.chunks(FIRES_PER_STATEMENT) {
        won.extend(claim_chunk(&mut tx, chunk, max_attempts, now).await?);
    }
    // Test builds: die with the claim written but not committed.
    fail::fail_point!("claim.before_commit", !won.is_empty(), |_| {
        std::process::abort()
    });
    D::commit(tx).await.map_err(query("claim slots: commit"))?;
    Ok(won)
}

async fn claim_chunk<E: Exec>(
    tx: &mut E,
    fires: &[SlotFire],
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let moved = compare_and_set(tx, fires, now).await?;
    let moved: Vec<&SlotFire> = fires
        .iter()
        .filter(|f| moved.contains(&f.claim.schedule_id))
        .collect();
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    let recorded = record_runs(tx, &moved, now).await?;
    let fired: Vec<&SlotFire> = moved
        .into_iter()
        .filter(|f| recorded.contains(&f.claim.schedule_id))
        .collect();
    enqueue_fires(tx, &fired, max_attempts, now).await?;
    Ok(fired.iter().map(|f| f.claim.schedule_id).collect())
}

/// Move every schedule still at its slot to its next one.
async fn compare_and_set<E: Exec>(
    tx: &mut E,
    fires: &[SlotFire],
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, StoreError> {
    let (rows, args) = values(vec![Arg::Time(now)], fires, |f| {
        let c = &f.claim;
        [
            Arg::I64(c.schedule_id),
            Arg::Time(c.slot),
            Arg::Time(c.next),
            Arg::OptText(c.missed.as_deref()),
        ]
    });
    let sql = format!(
        "WITH u(id, slot, next, missed) AS (VALUES {rows})
         UPDATE schedules SET next_run_at = u.next, last_run_at = u.slot,
             run_count = run_count + 1,
             last_status = CASE WHEN u.missed IS NULL THEN last_status ELSE 'missed' END,
             last_error = CASE WHEN u.missed IS NULL THEN last_error ELSE u.missed END,
             updated_at = $1
         FROM u
         WHERE schedules.id = u.id AND schedules.next_run_at = u.slot
         RETURNING schedules.id AS id"
    );
    let moved = tx.all(&sql, &args).await.map_err(query("claim slots"))?;
    moved.iter().map(|r| r.i64("id")).collect()
}

/// Each moved slot's run record; the schedules whose record is new.
async fn record_runs<E: Exec>(
    tx: &mut E,
    moved: &[&SlotFire],
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, StoreError> {
    let (rows, args) = values(vec![Arg::Time(now)], moved, |f| {
        let c = &f.claim;
        let status = if c.missed.is_some() {
            RunStatus::Missed
        } else {
            RunStatus::Dispatched
        };
        [
            Arg::I64(c.schedule_id),
            Arg::Text(&c.workspace),
            Arg::Time(c.slot),
            Arg::Text(&c.key),
            Arg::Text(status.as_str()),
            Arg::OptTime(c.missed.as_ref().map(|_| now)),
            Arg::OptText(c.missed.as_deref()),
        ]
    });
    let sql = format!(
        "INSERT INTO schedule_runs (schedule_id, workspace_id, slot, idempotency_key,
             status, finished_at, error, manual, started_at)
         SELECT column1, column2, column3, column4, column5, column6, column7, FALSE, $1
         FROM (VALUES {rows})
         WHERE TRUE
         ON CONFLICT DO NOTHING
         RETURNING schedule_id"
    );
    let recorded = tx
        .all(&sql, &args)
        .await
        .map_err(query("claim slots: record runs"))?;
    recorded.iter().map(|r| r.i64("schedule_id")).collect()
}

/// The won fires that are not missed, into the queue; a fire whose key is
/// already there is that item.
async fn enqueue_fires<E: Exec>(
    tx: &mut E,
    fired: &[&SlotFire],
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let items: Vec<_> = fired
        .iter()
        .filter(|f| f.claim.missed.is_none())
        .filter_map(|f| f.item.as_ref())
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let fixed = vec![Arg::I64(i64::from(max_attempts)), Arg::Time(now)];
    let (rows, args) = values(fixed, &items, |item| {
        [
            Arg::Text(&item.workspace),
            Arg::OptText(item.caller.as_deref()),
            Arg::I32(item.priority.0),
            Arg::Text(&item.method),
            Arg::Text(&item.body),
            Arg::OptText(item.idempotency_key.as_deref()),
            Arg::OptTime(item.expires_at(now)),
        ]
    });
    let sql = format!(
        "INSERT INTO queue_items (workspace_id, caller, priority, method, body,
             idempotency_key, expires_at, max_attempts, enqueued_at, available_at, updated_at)
         SELECT column1, column2, column3, column4, column5, column6, column7, $1, $2, $2, $2
         FROM (VALUES {rows})
         WHERE TRUE
         ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL
         DO NOTHING"
    );
    tx.run(&sql, &args)
        .await
        .map_err(query("claim slots: enqueue fires"))?;
    Ok(())
}
