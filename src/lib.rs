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
//! - [`annotate`]: the statements that govern a packet (its section's and
//!   its fields'), and a checker that follows a conversation and names the
//!   side that breaks a rule; `pub`/`sub --trace` and `proxy` print both.
//! - [`scenario`]: scenario files (YAML) → a checked model; every error names
//!   the `file:line:col` of the offending key or value, and [`diag`] shows it
//!   with the line and a caret.
//! - [`profile`]: target profiles (YAML): what a broker offers when it
//!   cannot announce it.
//! - [`net`] (the `net/` crate, `mqtt_net`): targets, the four transports,
//!   and one test connection with reads under deadlines and a typed log of
//!   every packet exchanged; the reference broker listens through it too.
//! - [`client`]: a small MQTT session over [`net::Connection`] (connect with
//!   every option, publish through the QoS handshakes, subscribe, receive
//!   and acknowledge, keep alive), which `pub` and `sub` use; a raw session
//!   (packets or bytes sent as asked, waits under deadlines that still
//!   acknowledge deliveries) is what `probe` tries a broker with.
//! - [`library`]: the scenario library built into the binary.
//! - [`fuzz`]: the network fuzzer: inputs from the library's exchanges,
//!   mutated, run against a live broker over [`net`], judged by oracles;
//!   findings minimised and written as scenarios.
//! - [`run`]: the case engine. A case is a sans-IO state machine
//!   ([`run::machine`]): it asks for connections, writes, reads until a
//!   deadline and sleeps, and is answered with what happened and when; a thin
//!   async driver ([`run::driver`]) answers it on [`net`], tests answer it in
//!   memory on a fake clock. Cases run in parallel against one target →
//!   [`results`], the one result model that the [`report`] modules (console,
//!   JSON, JUnit, HTML) and [`baseline`] render.
//! - [`book`]: the spec as a static site (`book DIR`): each statement beside
//!   the scenarios that check it and their recorded exchanges, from one run.
//! - [`probe`]: what a broker supports and its limits, found by trying
//!   (`probe`), each finding with its exchange; [`bench`]: load and what
//!   the broker did with it (`bench`). Both connect through [`client`];
//!   the bench's load then runs on the bare stream (its hot path).
//! - [`cmd`]: one module per subcommand (`run`, `mutate`, `decode`, `encode`,
//!   `explain`, `fields`, `coverage`, `scenarios`…); each takes its parsed
//!   flags and its input and output streams and returns a [`cmd::Status`].
//!   `cmd::run` starts the embedded reference broker when there is no
//!   target. The binary (`src/main.rs`) only parses flags, calls them and
//!   turns the outcome into an exit status.
//!
//! # The data path of a run
//!
//! scenario YAML → [`scenario::Scenario`] (checked, with positions) → a
//! [`run::Case`] per protocol → its machine asks the driver to send the
//! packets its steps describe (built by [`packet`], encoded by the codec,
//! logged typed by [`net::Connection`]) and to read what comes back (decoded
//! by the codec into [`net::Event`]s) → each step matched
//! ([`run::matching`]) → the case's verdict: pass, fail (on the failing
//! step's statements only), skip or error ([`run::verdict`]) →
//! [`results::CaseResult`] → per-statement verdicts ([`results::RunReport`])
//! → the reports. The output contracts (`run --json`, `decode --json`,
//! `coverage --json`, `mutate --json`) are in `docs/contracts.md`.
#![forbid(unsafe_code)]

pub mod annotate;
pub mod baseline;
pub mod bench;
pub mod book;
pub mod client;
pub mod cmd;
pub mod diag;
pub mod field_rules;
pub mod fuzz;
pub mod hex;
pub mod library;
pub mod packet;
pub mod probe;
pub mod profile;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod suggest;

pub use mqtt_net as net;
