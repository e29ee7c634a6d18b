//! Annotated packets as text and as JSON lines: what `pub`/`sub --trace`
//! and `proxy` print, one format for all three.

use std::io::{self, Write};

use mqtt_codec::{catalogue, Packet, Protocol, Sender};
use serde_json::{json, Value};

use super::{statements, Checker, Violation};
use crate::net::{Direction, LogEntry};

/// "client → server" or "server → client".
pub fn arrow(from: Sender) -> &'static str {
    match from {
        Sender::Client => "client → server",
        Sender::Server => "server → client",
    }
}

/// A packet and the statements that govern it, in two or more lines:
/// the packet's JSON, then the statements its fields bring in (with their
/// summaries), then how many more its section has.
pub fn packet_text(from: Sender, packet: &Packet, protocol: Protocol) -> String {
    let a = statements(packet, protocol, from);
    let catalogue_version = match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    };
    let mut s = format!(
        "{}  {}",
        arrow(from),
        crate::packet::packet_to_json(packet, protocol)
    );
    let mut seen = Vec::new();
    for (field, id) in &a.fields {
        if seen.contains(id) {
            continue;
        }
        seen.push(*id);
        let summary = catalogue::lookup(catalogue_version, id).map_or("", |x| x.summary);
        s.push_str(&format!("\n    {id:<14} {field}: {summary}"));
    }
    if !a.section_ids.is_empty() {
        s.push_str(&format!(
            "\n    section {}: {} more statements (mqtt-harness explain {})",
            a.section,
            a.section_ids.len(),
            a.section
        ));
    }
    s
}

/// One violation, for people: `!! client broke MQTT-x-y-z (summary): what`.
pub fn violation_text(v: &Violation, protocol: Protocol) -> String {
    let summary = v
        .statement
        .and_then(|id| catalogue::lookup(protocol, id))
        .map(|s| format!(" ({})", s.summary))
        .unwrap_or_default();
    match v.statement {
        Some(id) => format!("!! {} broke {id}{summary}: {}", v.by.as_str(), v.message),
        None => format!("!! {}: {}", v.by.as_str(), v.message),
    }
}

/// A packet as a JSON event line.
pub fn packet_json(from: Sender, packet: &Packet, protocol: Protocol, bytes: &[u8]) -> Value {
    let a = statements(packet, protocol, from);
    json!({
        "event": "packet",
        "from": from.as_str(),
        "protocol": protocol.as_str(),
        "packet": crate::packet::packet_to_json(packet, protocol),
        "statements": a.ids(),
        "hex": crate::hex::encode(bytes),
    })
}

/// A violation as a JSON event line.
pub fn violation_json(v: &Violation) -> Value {
    json!({
        "event": "violation",
        "by": v.by.as_str(),
        "statement": v.statement,
        "message": v.message,
    })
}

/// Shows a client's own log (`pub`/`sub --trace`): each packet annotated,
/// each violation by either side flagged.
#[derive(Debug)]
pub struct Tracer {
    checker: Checker,
    json: bool,
}

impl Tracer {
    pub fn new(protocol: Protocol, json: bool) -> Tracer {
        Tracer {
            checker: Checker::new(protocol),
            json,
        }
    }

    /// Prints `entries` (what the client sent and received).
    pub fn show(&mut self, entries: &[LogEntry], out: &mut dyn Write) -> io::Result<()> {
        for e in entries {
            let from = match e.direction {
                Direction::Sent => Sender::Client,
                Direction::Received => Sender::Server,
            };
            let Some(packet) = &e.packet else {
                if let Some(note) = &e.note {
                    if self.json {
                        writeln!(
                            out,
                            "{}",
                            json!({"event": "note", "from": from.as_str(), "note": note, "hex": crate::hex::encode(&e.bytes)})
                        )?;
                    } else {
                        writeln!(out, "{}  ({note})", arrow(from))?;
                    }
                }
                continue;
            };
            let violations = self.checker.packet(from, packet);
            let protocol = e.protocol;
            if self.json {
                writeln!(out, "{}", packet_json(from, packet, protocol, &e.bytes))?;
                for v in &violations {
                    writeln!(out, "{}", violation_json(v))?;
                }
            } else {
                writeln!(out, "{}", packet_text(from, packet, protocol))?;
                for v in &violations {
                    writeln!(out, "{}", violation_text(v, self.checker.protocol()))?;
                }
            }
        }
        Ok(())
    }
}
