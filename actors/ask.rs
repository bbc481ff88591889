//! How code outside the actors (HTTP handlers, the service handle, the demo)
//! asks an actor a question and waits a bounded time for the answer.

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("{actor} is not running (it may be restarting)")]
    Down { actor: String },
    #[error("{actor} did not answer within {timeout:?}")]
    Timeout { actor: String, timeout: Duration },
    #[error("{actor} stopped before answering")]
    Stopped { actor: String },
}

/// Send `message` (built around the reply port) to `actor` and wait up to
/// `timeout` for the answer. `role` names the actor in errors.
pub async fn ask<M, T>(
    actor: &ActorRef<M>,
    role: &str,
    message: impl FnOnce(RpcReplyPort<T>) -> M,
    timeout: Duration,
) -> Result<T, AskError>
where
    M: Message,
    T: Send + 'static,
{
    match actor.call(message, Some(timeout)).await {
        Ok(CallResult::Success(answer)) => Ok(answer),
        Ok(CallResult::Timeout) => Err(AskError::Timeout {
            actor: role.to_string(),
            timeout,
        }),
        Ok(CallResult::SenderError) => Err(AskError::Stopped {
            actor: role.to_string(),
        }),
        Err(_) => Err(AskError::Down {
            actor: role.to_string(),
        }),
    }
}

/// True when the asker stopped waiting (its timeout passed, it was told to
/// try again): such a request is dropped undone, so what a client was told
/// failed is never carried out later from a backed-up mailbox.
pub fn abandoned<T>(reply: &RpcReplyPort<T>) -> bool {
    reply.is_closed()
}

/// [`abandoned`] for a request that may not want an answer at all.
pub fn abandoned_opt<T>(reply: &Option<RpcReplyPort<T>>) -> bool {
    reply.as_ref().is_some_and(abandoned)
}
