//! The actors of ringmaster and the root supervisor that keeps them alive.
//!
//! Each file is a thin shell: a mailbox whose messages become calls to a
//! decision core or the store, and whose results become tasks, answers and
//! events. The vocabulary each actor speaks is in [`crate::messages`], so
//! peers and callers never import an actor to talk to it; peers find each
//! other by name ([`crate::names::Names`]) so a restart is transparent. The
//! root restarts whichever child fails (panic or `Err`), one for one, within
//! an OTP-style restart intensity.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ringmaster::{config::Config, Ringmaster};
//!
//! let config = Config { database_url: "sqlite://ringmaster.db".into(), ..Config::default() };
//! let ringmaster = Ringmaster::start(config).await?;
//! let health = ringmaster.health().await?;
//! println!("healthy: {}", health.healthy);
//! ringmaster.shutdown().await;
//! # Ok(()) }
//! ```

pub mod ask;
pub mod heartbeat;
pub mod pruner;
pub mod queue_drain;
pub mod scheduler;
pub mod supervisor;
pub mod sweeper;
