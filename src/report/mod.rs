//! Reporters: sibling modules over one result model ([`crate::results`]).
//!
//! - [`console`]: one line per case as it ends, details of failures, a summary line;
//! - [`json`]: the `--json FILE` contract of DESIGN.md;
//! - [`junit`]: JUnit XML for CI (`--junit FILE`);
//! - [`html`]: a self-contained page (`--html FILE`);
//! - [`output`]: where each goes (a file, or `-` for standard output).
//!
//! A case's exchange is a typed log ([`mqtt_net::LogEntry`]); [`entry_text`]
//! is the one place that turns an entry into text, for all of them.

pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod output;

use mqtt_net::{Direction, LogEntry};
use serde_json::Value;

use crate::{hex, packet};

/// The packet of a log entry as JSON, read in the version it was decoded or
/// encoded in (so a 3.1.1 CONNACK on a 5.0 connection shows 3.1.1 codes).
pub fn entry_packet_json(e: &LogEntry) -> Option<Value> {
    e.packet
        .as_ref()
        .map(|p| packet::packet_to_json(p, e.protocol))
}

/// One line of an exchange: `client -> {packet} [hex] (note)`, `->` for
/// what the client sent and `<-` for what it received. Every reporter shows
/// exchanges through this.
pub fn entry_text(e: &LogEntry) -> String {
    use std::fmt::Write as _;
    let arrow = match e.direction {
        Direction::Sent => "->",
        Direction::Received => "<-",
    };
    let mut out = format!("{} {arrow}", e.client);
    if let Some(p) = entry_packet_json(e) {
        let _ = write!(out, " {p}");
    }
    if !e.bytes.is_empty() {
        let _ = write!(out, " [{}]", hex::spaced(&e.bytes));
    }
    if let Some(n) = &e.note {
        let _ = write!(out, " ({n})");
    }
    out
}
