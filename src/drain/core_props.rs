//! The drain's core under any sequence of events: its counters agree, no
//! workspace gets more than its room, the node never more than its limit.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Wake(usize),
    Load(usize, i32),
    Claim(usize, usize),
    Return(usize, bool),
    Capacity(usize, u32),
    Tick(i64),
    Drain,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize).prop_map(Step::Wake),
        (0..3usize, 0..6i32).prop_map(|(w, m)| Step::Load(w, m)),
        (0..3usize, 0..8usize).prop_map(|(w, n)| Step::Claim(w, n)),
        (0..64usize, any::<bool>()).prop_map(|(i, b)| Step::Return(i, b)),
        (0..3usize, 0..4u32).prop_map(|(w, s)| Step::Capacity(w, s)),
        (0..60i64).prop_map(Step::Tick),
        Just(Step::Drain),
    ]
}

proptest! {
    /// Whatever happens, in whatever order: the counters agree, no
    /// workspace has more in flight than its last known room, and the
    /// node never more than its global limit.
    #[test]
    fn room_and_counters_hold_under_any_sequence(steps in prop::collection::vec(step(), 1..80)) {
        let names = ["a", "b", "c"];
        let mut core = DrainCore::new(cfg(3, 4));
        let mut next_id = 1;
        let mut now = t(0);
        let mut pending: Vec<Effect> = Vec::new();
        let mut flying: Vec<(String, i64)> = Vec::new();
        // The room the core should be using: the last row read, unless a
        // beat replaced it while the read was under way (the beat is newer).
        let mut room: std::collections::HashMap<String, i32> = Default::default();
        let mut loading: std::collections::HashSet<String> = Default::default();
        let mut superseded: std::collections::HashSet<String> = Default::default();
        for s in steps {
            let out = match s {
                Step::Wake(w) => core.wake(names[w], now),
                Step::Load(w, max) => {
                    let was_loading = loading.remove(names[w]);
                    if !(was_loading && superseded.remove(names[w])) {
                        room.insert(names[w].to_string(), max);
                    }
                    core.loaded(names[w], Ok(Some(row(names[w], max, 0))), now)
                }
                Step::Claim(w, n) => {
                    let claim = pending.iter().position(|e| matches!(e, Effect::Claim { workspace, .. } if workspace == names[w]));
                    match claim.map(|i| pending.remove(i)) {
                        Some(Effect::Claim { workspace, seq, limit, .. }) => {
                            let n = n.min(limit as usize);
                            let got: Vec<QueueItem> = (0..n).map(|_| { next_id += 1; item(next_id, &workspace) }).collect();
                            core.claimed(&workspace, seq, Ok(got), now)
                        }
                        _ => Vec::new(),
                    }
                }
                Step::Return(i, busy) if !flying.is_empty() => {
                    let (w, id) = flying.remove(i % flying.len());
                    core.dispatched(&w, key(id), busy, None, now)
                }
                Step::Return(..) => Vec::new(),
                Step::Capacity(w, spare) => {
                    room.insert(names[w].to_string(), spare as i32);
                    if loading.contains(names[w]) {
                        superseded.insert(names[w].to_string());
                    }
                    core.capacity(row(names[w], spare as i32, 0), now)
                }
                Step::Tick(secs) => {
                    now += TimeDelta::seconds(secs);
                    let (_stale, mut out) = core.tick(now);
                    out.extend(core.swept(now, &[], Some(&[])));
                    out
                }
                Step::Drain => core.drain_dirty(now),
            };
            let mut started: std::collections::BTreeSet<String> = Default::default();
            for e in out {
                match e {
                    Effect::Deliver { item, .. } => {
                        started.insert(item.workspace.clone());
                        flying.push((item.workspace.clone(), item.id));
                    }
                    Effect::Claim { .. } => pending.push(e),
                    Effect::LoadWorkspace { workspace } => {
                        loading.insert(workspace);
                    }
                    _ => {}
                }
            }
            core.check_counters();
            let report = core.in_flight_report();
            prop_assert!(report.total <= 3, "global limit: {}", report.total);
            for (w, n) in report.by_workspace {
                if started.contains(&w) {
                    let max = room.get(&w).copied().unwrap_or(0).max(0) as u32;
                    prop_assert!(n <= max, "{w}: {n} in flight with room {max}");
                }
            }
        }
    }
}
