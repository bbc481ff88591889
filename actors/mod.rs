//! The actors of ringmaster and the root supervisor that keeps them alive.
//!
//! Each actor owns one job and talks to the others only by typed messages,
//! looked up by name through [`Names`] so a restarted peer is found again
//! under the same name. The root restarts whichever child fails (panic or
//! `Err`), one for one, within an OTP-style restart intensity.
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
pub mod names;
pub mod queue_drain;
pub mod scheduler;
pub mod supervisor;
pub mod sweeper;

pub use names::Names;
