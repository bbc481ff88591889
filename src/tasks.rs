//! Tasks that die with their owner.
//!
//! An actor that spawns a helper task (a listener, a forwarder, a timer)
//! keeps its handle in an [`Owned`]; when the actor's state is dropped — a
//! clean stop, a panic, a kill — the task is aborted with it. ractor skips
//! `post_stop` after a panic, so cleanup that only lives there leaks.

use tokio::task::JoinHandle;

/// A spawned task aborted when this handle is dropped.
#[derive(Debug)]
pub struct Owned<T>(Option<JoinHandle<T>>);

impl<T> Owned<T> {
    pub fn new(handle: JoinHandle<T>) -> Self {
        Self(Some(handle))
    }

    pub fn is_finished(&self) -> bool {
        self.0.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_handle_ends_the_task() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let owned = Owned::new(tokio::spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        }));
        assert!(!owned.is_finished());
        drop(owned);
        // The sender inside the task is dropped once the task is aborted.
        assert_eq!(rx.recv().await, None);
    }
}
