//! mqtt-harness: an MQTT conformance and fuzz test harness.
//!
//! The layers, from the bytes up:
//!
//! - `mqtt_codec` (the `codec/` crate): bytes ⇄ typed packets, each rejection
//!   naming the statement it enforces; the statement catalogue.
//! - [`hex`]: hex text as people paste it ⇄ bytes.
//! - [`packet`]: packets described by their fields, in JSON or YAML — what
//!   `decode --json` prints, what `encode` and scenario steps read — with the
//!   deliberate deviations that make invalid packets; [`packet::vocab`] is the
//!   one table of those fields.
//! - [`field_rules`]: which statements govern which field of a packet.
//! - [`scenario`]: scenario files (YAML) → a checked model; every error names
//!   the `file:line:col` of the offending key or value, and [`diag`] shows it
//!   with the line and a caret.
//! - [`profile`]: target profiles (YAML): what a broker offers when it
//!   cannot announce it.
//! - [`client`]: one test connection over a [`client::Transport`], reads under
//!   deadlines, a log of every packet exchanged.
//! - [`library`]: the scenario library built into the binary.
//! - [`runner`]: scenarios × protocols as cases, in parallel, against a target
//!   or the embedded reference broker → [`results`], the one result model that
//!   the [`report`] modules (console, JSON, JUnit, HTML) and [`baseline`] render.
//! - [`cmd`]: one module per subcommand (`decode`, `encode`, `explain`,
//!   `fields`, `coverage`, `run`); each takes its parsed flags and its input
//!   and output streams and returns a [`cmd::Status`]. The binary
//!   (`src/main.rs`) only parses flags, calls them and turns the outcome into
//!   an exit status.
#![forbid(unsafe_code)]

pub mod baseline;
pub mod client;
pub mod cmd;
pub mod diag;
pub mod field_rules;
pub mod hex;
pub mod library;
pub mod packet;
pub mod profile;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod suggest;
