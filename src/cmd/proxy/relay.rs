//! One proxied connection: the client's bytes to the broker and back, each
//! packet decoded, annotated, checked and forwarded as it came.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, Sender};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::record::{Recorded, Seen};
use super::{Msg, OnMalformed, Shared};
use crate::annotate::text;
use crate::annotate::Checker;
use crate::net::{Connection, Event};

/// Events a connection keeps for `--record`; a longer exchange is recorded
/// up to here (and says so), so that a long-lived connection cannot fill memory.
const RECORD_LIMIT: usize = 10_000;

/// Prints and remembers what a connection sees.
struct Report {
    id: u64,
    shared: Arc<Shared>,
    tx: UnboundedSender<Msg>,
    seen: Vec<Recorded>,
    /// The record limit was reached (and said).
    truncated: bool,
}

impl Report {
    fn line(&self, text: String, bad: bool) {
        let _ = self.tx.send(Msg::Line { text, bad });
    }

    /// A remark: `[3] text`, or a JSON event with `conn`.
    fn event(&self, kind: &str, text: &str, fields: serde_json::Value) {
        if self.shared.json {
            let mut v = json!({"conn": self.id, "event": kind});
            if let (Some(m), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
                m.extend(f);
            }
            self.line(v.to_string(), false);
        } else {
            self.line(format!("[{}] {text}", self.id), false);
        }
    }

    fn remember(&mut self, from: Sender, seen: Seen) {
        if self.shared.record && self.seen.len() == RECORD_LIMIT && !self.truncated {
            self.truncated = true;
            self.event("note", &format!("--record keeps the first {RECORD_LIMIT} events of a connection; the rest is not recorded"), json!({"note": "record limit reached"}));
        }
        if self.shared.record && self.seen.len() < RECORD_LIMIT {
            let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
            self.seen.push(Recorded { seq, from, seen });
        }
    }

    fn packet(
        &mut self,
        from: Sender,
        packet: &Packet,
        protocol: Protocol,
        bytes: &[u8],
        checker: &mut Checker,
    ) {
        let violations = checker.packet(from, packet);
        if self.shared.json {
            let mut v = text::packet_json(from, packet, protocol, bytes);
            if let Some(m) = v.as_object_mut() {
                m.insert("conn".into(), json!(self.id));
            }
            self.line(v.to_string(), false);
        } else {
            let t = text::packet_text(from, packet, protocol)
                .replace('\n', &format!("\n[{}] ", self.id));
            self.line(format!("[{}] {t}", self.id), false);
        }
        for v in &violations {
            self.violation(v, checker.protocol());
        }
        self.remember(from, Seen::Packet(packet.clone(), protocol));
    }

    fn violation(&self, v: &crate::annotate::Violation, protocol: Protocol) {
        if self.shared.json {
            let mut j = text::violation_json(v);
            if let Some(m) = j.as_object_mut() {
                m.insert("conn".into(), json!(self.id));
            }
            self.line(j.to_string(), true);
        } else {
            self.line(
                format!("[{}] {}", self.id, text::violation_text(v, protocol)),
                true,
            );
        }
    }
}

fn side(s: Sender) -> &'static str {
    s.as_str()
}

/// Serves one client connection until either side closes.
pub(crate) async fn relay(
    id: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tx: UnboundedSender<Msg>,
) {
    let mut r = Report {
        id,
        shared: shared.clone(),
        tx,
        seen: Vec::new(),
        truncated: false,
    };
    let name = format!("c{id}");
    let mut down = Connection::from_stream(&name, tcp.into(), Protocol::V3_1_1, Sender::Client);
    let deadline = Instant::now() + shared.timeout;
    let mut up = match Connection::open(&name, &shared.target, Protocol::V3_1_1, deadline).await {
        Ok(c) => c,
        Err(e) => {
            r.event(
                "error",
                &format!(
                    "client {peer}: cannot reach the target: {e}; closing the client's connection"
                ),
                json!({"peer": peer.to_string(), "message": e.to_string()}),
            );
            down.close().await;
            let _ = r.tx.send(Msg::Done(id, r.seen));
            return;
        }
    };
    r.event(
        "open",
        &format!("client {peer} connected; relaying to {}", shared.target),
        json!({"peer": peer.to_string(), "target": shared.target.to_string()}),
    );
    let mut checker = Checker::new(Protocol::V3_1_1);
    loop {
        let idle = Instant::now() + shared.idle;
        let (from, event) = tokio::select! {
            e = down.next_event(idle) => (Sender::Client, e),
            e = up.next_event(idle) => (Sender::Server, e),
        };
        // The logs are not kept: the report shows every packet as it passes.
        down.take_log();
        up.take_log();
        let (this_protocol, other) = match from {
            Sender::Client => (down.protocol(), &mut up),
            Sender::Server => (up.protocol(), &mut down),
        };
        let write_deadline = Instant::now() + shared.timeout;
        match event {
            Event::Packet(p, raw) => {
                if let Packet::Connect(c) = &p {
                    other.set_protocol(c.protocol);
                }
                r.packet(from, &p, this_protocol, &raw, &mut checker);
                if let Err(e) = other.send(&raw, Some(p), write_deadline).await {
                    let to = if from == Sender::Client {
                        Sender::Server
                    } else {
                        Sender::Client
                    };
                    r.event(
                        "close",
                        &format!("cannot forward to the {}: {e}; closing", side(to)),
                        json!({"by": side(to), "reason": e.to_string()}),
                    );
                    break;
                }
            }
            Event::Malformed(e, raw) => {
                let v = checker.malformed(from, &e);
                if shared.json {
                    r.event("malformed", "", json!({"from": side(from), "statement": e.statement(), "message": e.message(), "hex": crate::hex::encode(&raw)}));
                } else {
                    r.line(
                        format!(
                            "[{id}] {}  bytes that do not decode: {}",
                            text::arrow(from),
                            crate::hex::spaced(&raw)
                        ),
                        false,
                    );
                }
                r.violation(&v, checker.protocol());
                r.remember(from, Seen::Malformed(Bytes::clone(&raw)));
                if shared.on_malformed == OnMalformed::Close {
                    r.event(
                        "close",
                        "closing both connections (--on-malformed close)",
                        json!({"by": "proxy", "reason": "malformed"}),
                    );
                    break;
                }
                if let Err(e) = other.send(&raw, None, write_deadline).await {
                    r.event(
                        "close",
                        &format!("cannot forward: {e}; closing"),
                        json!({"by": "proxy", "reason": e.to_string()}),
                    );
                    break;
                }
            }
            Event::Closed(why) => {
                let why = why.unwrap_or_else(|| "connection closed".into());
                r.event(
                    "close",
                    &format!("the {} closed the connection ({why})", side(from)),
                    json!({"by": side(from), "reason": why}),
                );
                r.remember(from, Seen::Closed);
                break;
            }
            Event::Timeout => {
                r.event(
                    "close",
                    &format!(
                        "nothing moved for {:?}; closing both connections",
                        shared.idle
                    ),
                    json!({"by": "proxy", "reason": "idle"}),
                );
                break;
            }
        }
    }
    down.close().await;
    up.close().await;
    let _ = r.tx.send(Msg::Done(id, r.seen));
}
