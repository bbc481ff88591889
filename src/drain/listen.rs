//! The notification channel, turned into messages: a task that listens for
//! every node's enqueues and wakes this node's drain. It belongs to one drain
//! incarnation and dies with it ([`Owned`]), so a crashed drain never leaves
//! a listener (and its database connection) behind.

use std::time::Duration;

use crate::messages::queue::{DrainReport, Internal, QueueMsg};
use crate::names::{self, Names};
use crate::store::{Store, Wake};
use crate::tasks::Owned;

/// How long to wait before trying to listen again after a failure.
const RETRY: Duration = Duration::from_secs(2);

pub fn spawn(store: Store, names: Names) -> Owned<()> {
    Owned::new(tokio::spawn(async move {
        loop {
            let mut stream = match store.listen().await {
                Ok(s) => s,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for new items; relying on the tick");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            // Whatever was enqueued before we could listen is found by the
            // drain's first tick; a gap later is the stream's to report.
            loop {
                let wake = stream.next().await;
                send(&names, wake);
            }
        }
    }))
}

fn send(names: &Names, wake: Wake) {
    if let Some(drain) = names.lookup::<QueueMsg>(names::QUEUE_DRAIN) {
        let _ = drain.cast(QueueMsg::Internal(Internal(DrainReport::Woken(wake))));
    }
}
