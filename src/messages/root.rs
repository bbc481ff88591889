//! The root supervisor's vocabulary.

use ractor::RpcReplyPort;

/// What the root knows of one child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    pub role: String,
    pub running: bool,
    pub restarts: u32,
}

pub enum RootMsg {
    /// The children, in start order.
    Children(RpcReplyPort<Vec<ChildInfo>>),
    /// Internal: try again to start a child whose replacement failed.
    #[doc(hidden)]
    RetryStart(RetryStart),
}

/// Internal to the supervisor; only the crate builds one.
pub struct RetryStart {
    pub(crate) index: usize,
}
