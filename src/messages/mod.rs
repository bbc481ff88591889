//! What the actors say to each other and to the code around them: each
//! actor's messages, answers, errors and events, in a module its peers (and
//! HTTP, the service, tests) import without importing the actor itself. An
//! actor's internal self-messages are wrapped in one opaque variant that
//! only the crate can build, so the public vocabulary is what callers may
//! actually send.

pub mod heartbeat;
pub mod pruner;
pub mod queue;
pub mod root;
pub mod scheduler;
pub mod sweeper;
