//! The reference broker: strict MQTT 3.1 / 3.1.1 / 5.0 on the shared codec.
//!
//! Layers, from the wire up:
//! - `mqtt_codec` turns bytes into packets and back (the only parser);
//! - [`broker::Broker`] is the sans-IO protocol core: it takes packets and the
//!   current time, and answers with [`broker::Action`]s (send, close); timers
//!   are driven through `tick(now)` / `poll_timeout()`;
//! - [`server`] is the tokio layer: it owns sockets and the clock, one task per
//!   connection, and the core behind one mutex;
//! - `main.rs` only parses flags and calls [`server::run`].
//!
//! Beside them: [`auth`] (password file, SCRAM-SHA-256, topic ACLs: pure
//! functions the core calls) and persistence, split the same way: the core
//! turns its state into a [`broker::Snapshot`] and back, and what changes
//! into journal records ([`broker::journal`]); [`server::persist`] appends
//! them to disk, one sync per batch, before acknowledgements leave.
#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod outbox;
pub mod server;
pub mod transport;
pub mod violation;

pub use broker::{Action, Broker, ConnId};
pub use config::Config;
pub use violation::Violations;
