//! How actors find each other.
//!
//! Actors hold no `ActorRef`s to their peers: a peer may have been restarted
//! since, and a stale reference would swallow messages. Instead every actor is
//! registered under `{namespace}/{role}` and looked up when needed. The
//! namespace lets several ringmaster instances (or tests) share one process.

use chrono::{DateTime, Utc};
use ractor::{ActorRef, Message};

use crate::messages::heartbeat::HeartbeatMsg;
use crate::messages::pruner::PrunerMsg;
use crate::messages::queue::QueueMsg;
use crate::messages::scheduler::SchedulerMsg;
use crate::messages::sweeper::SweeperMsg;

/// The role names of the root's children.
pub const HEARTBEAT: &str = "heartbeat";
pub const SCHEDULER: &str = "scheduler";
pub const QUEUE_DRAIN: &str = "queue-drain";
pub const SWEEPER: &str = "delegation-sweeper";
pub const PRUNER: &str = "pruner";
pub const ROOT: &str = "root";

/// The namespace an instance's actors are registered under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    namespace: String,
}

impl Default for Names {
    fn default() -> Self {
        Self::new("ringmaster")
    }
}

impl Names {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }

    /// A fresh namespace, unique in this process: for tests and for hosts that
    /// run several instances side by side.
    pub fn unique(prefix: &str) -> Self {
        Self::new(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The registered name of `role` in this namespace.
    pub fn of(&self, role: &str) -> String {
        format!("{}/{role}", self.namespace)
    }

    /// The role part of a registered name, if it is one of ours.
    pub fn role_of<'a>(&self, registered: &'a str) -> Option<&'a str> {
        registered
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
    }

    /// The live actor playing `role`, typed by its message. `None` while it is
    /// being restarted.
    pub fn lookup<M: Message>(&self, role: &str) -> Option<ActorRef<M>> {
        ractor::registry::where_is(self.of(role)).map(ActorRef::from)
    }

    pub fn heartbeat(&self) -> Option<ActorRef<HeartbeatMsg>> {
        self.lookup(HEARTBEAT)
    }

    pub fn sweeper(&self) -> Option<ActorRef<SweeperMsg>> {
        self.lookup(SWEEPER)
    }

    pub fn pruner(&self) -> Option<ActorRef<PrunerMsg>> {
        self.lookup(PRUNER)
    }

    pub fn queue(&self) -> Option<ActorRef<QueueMsg>> {
        self.lookup(QUEUE_DRAIN)
    }

    pub fn scheduler(&self) -> Option<ActorRef<SchedulerMsg>> {
        self.lookup(SCHEDULER)
    }

    /// Tell the HeartbeatActor that `role` ticked at `at`, expecting to tick
    /// every `every`. Fire and forget: if the HeartbeatActor is restarting, the
    /// next tick reports again.
    ///
    /// Every actor also reports from its `pre_start`: the root awaits each
    /// child's `pre_start` but not its `post_start`, so a host asking for
    /// health right after `Ringmaster::start` finds every actor (the first
    /// round follows at once).
    pub fn report_alive(&self, role: &str, at: DateTime<Utc>, every: std::time::Duration) {
        if let Some(heartbeat) = self.heartbeat() {
            let _ = heartbeat.cast(HeartbeatMsg::Alive {
                actor: role.to_string(),
                at,
                every,
            });
        }
    }
}
