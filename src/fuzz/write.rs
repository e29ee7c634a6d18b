//! A finding as a scenario that `mqtt-harness run` replays as it is: the
//! clients of the input, its operations as send steps (by their fields and
//! deliberate faults where those give the very bytes sent, else as hex),
//! every packet the broker answered before the finding as an `expect` of its
//! type, and a last step that checks the rule broken, naming its statement.
//! On the broken broker that step fails on that statement; on one that
//! keeps the rule, it passes.
//!
//! Topics and client ids are written with `{case}` where every packet can be
//! written by its fields, so that each replay has topics of its own;
//! otherwise the hex holds the token of the execution that found it.

use std::collections::HashMap;
use std::fmt::Write as _;

use mqtt_codec::{Overrides, Packet, Protocol};
use serde_json::{json, Map, Value};

use super::exec::{localize, Got, Observation, Rec};
use super::input::{Input, Op, TOKEN};
use super::oracle::{Check, Finding};
use crate::packet;

/// Why a replay ends as a skip on a broker that closed on forbidden bytes.
const REFUSED: &str = "the broker closed on bytes the spec forbids, as it may: the exchange that led to the finding cannot go on";

/// How long the check of "nothing more arrives" watches.
const SILENCE: &str = "500ms";

fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

/// `v` with the placeholder token in its strings replaced by `to`.
fn replace_token(v: &Value, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(TOKEN, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_token(x, to)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), replace_token(x, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn faults(o: &Overrides, token: &str) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(b) = o.first_byte {
        m.insert("first_byte".into(), Value::from(b));
    }
    if let Some(f) = o.flags {
        m.insert("flags".into(), Value::from(f));
    }
    if let Some(rl) = &o.remaining_length {
        m.insert("remaining_length".into(), Value::from(hex(rl)));
    }
    if !o.fields.is_empty() {
        let raw: Map<String, Value> = o
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(hex(&localize(v, token)))))
            .collect();
        m.insert("raw".into(), Value::Object(raw));
    }
    if !o.append.is_empty() {
        m.insert("append".into(), Value::from(hex(&o.append)));
    }
    if let Some(t) = o.truncate {
        m.insert("truncate".into(), Value::from(t));
    }
    m
}

/// The packet of a send operation by its fields, when they give exactly
/// its bytes (the token left in place); `None`: it is written as hex.
fn by_fields(
    packet: &Packet,
    overrides: &Overrides,
    protocol: Protocol,
) -> Option<Map<String, Value>> {
    let Value::Object(mut fields) = packet::packet_to_json(packet, protocol) else {
        return None;
    };
    fields.extend(faults(overrides, TOKEN));
    let (p, o) = packet::packet_from_value(&Value::Object(fields.clone()), protocol).ok()?;
    let again = mqtt_codec::encode_with(&p, protocol, &o).ok()?;
    let first = mqtt_codec::encode_with(packet, protocol, overrides).ok()?;
    (again == first).then_some(fields)
}

/// One step: `client: {…}` with optional statements, as a YAML line.
fn step(out: &mut String, client: &str, body: &Value, statements: Option<&str>) {
    if let Some(id) = statements {
        let _ = writeln!(out, "  - statements: [{id}]");
        let _ = writeln!(out, "    {client}: {body}");
    } else {
        let _ = writeln!(out, "  - {client}: {body}");
    }
}

/// Context of the finding, for the comment at the top.
pub struct About<'a> {
    pub seed: u64,
    pub index: u64,
    pub target: &'a str,
}

/// The scenario of `finding`, made by `input` in `obs` with `token`.
// Long: one pass over the records, writing steps as it goes, whose arms share
// each client's state (its current connection, its first CONNACK, forbidden
// bytes it sent); split, they would pass all of it around.
pub fn scenario(
    input: &Input,
    obs: &Observation,
    finding: &Finding,
    token: &str,
    about: &About,
) -> String {
    let protocol = input.protocol;
    let key = protocol.as_str();
    // Placeholders where every packet can be written by its fields and no
    // raw field holds the token.
    let placeholder = input.ops.iter().all(|op| match op {
        Op::Send {
            packet, overrides, ..
        } => {
            !overrides
                .fields
                .iter()
                .any(|(_, b)| b.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()))
                && by_fields(packet, overrides, protocol).is_some()
        }
        Op::Raw { .. } => false,
        _ => true,
    });
    let to = if placeholder { "{case}" } else { token };
    let statement = finding
        .statement
        .clone()
        .unwrap_or_else(|| "MQTT-3.12.4-1".to_string());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Found by `mqtt-harness fuzz` against {} (seed {}, input {}, from {}), minimised.",
        about.target, about.seed, about.index, input.origin
    );
    let _ = writeln!(out, "# {}: {}", finding.kind.as_str(), finding.message);
    let _ = writeln!(out, "# Replay: mqtt-harness run THIS_FILE --target URL (it fails on {statement} where the rule is broken).");
    let _ = writeln!(
        out,
        "name: \"fuzz finding: {}{}\"",
        finding.kind.as_str(),
        finding
            .statement
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "description: {}",
        Value::from(finding.message.replace(token, "{case}"))
    );
    let _ = writeln!(out, "statements:\n  \"{key}\": [{statement}]");
    let _ = writeln!(out, "tags: [fuzz]");
    let _ = writeln!(out, "clients:");
    for (k, c) in input.clients.iter().enumerate() {
        let mut m = match replace_token(&Value::Object(c.fields.clone()), to) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Some(j) = c.same_id_as {
            m.insert("client_id".into(), Value::from(format!("{{client:c{j}}}")));
        }
        if !c.connect {
            m.insert("connect".into(), Value::from(false));
        }
        let _ = writeln!(out, "  c{k}: {}", Value::Object(m));
    }
    match finding.check {
        Check::Ping => {
            let _ = writeln!(out, "  live: {{}}");
        }
        Check::Reachable => {
            let _ = writeln!(out, "  probe: {{connect: false}}");
        }
        _ => {}
    }
    let _ = writeln!(out, "steps:");
    let mut body = String::new();
    let mut current: HashMap<usize, u32> = HashMap::new();
    let mut answered: HashMap<usize, bool> = HashMap::new();
    let mut captured: Option<usize> = None;
    // Clients that sent bytes the spec forbids, and whether a step read them since.
    let mut forbidden: HashMap<usize, bool> = HashMap::new();
    if let Check::IdNotReused { first, .. } = finding.check {
        captured = Some(first);
    }
    for (i, rec) in obs.recs.iter().enumerate().take(finding.at) {
        match rec {
            Rec::Opened { client, conn, op } => {
                current.insert(*client, *conn);
                if let Some(Op::Reconnect { fields, .. }) = op.and_then(|i| input.ops.get(i)) {
                    let mut m = match replace_token(&Value::Object(fields.clone()), to) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    m.insert("expect_connack".into(), Value::from(false));
                    let mut b = Map::new();
                    b.insert("connect".into(), Value::Object(m));
                    step(&mut body, &format!("c{client}"), &Value::Object(b), None);
                    answered.insert(*client, true);
                } else {
                    let connects = input.clients.get(*client).is_some_and(|c| c.connect);
                    answered.insert(*client, !connects);
                }
            }
            Rec::Sent {
                client,
                op: Some(i),
                bytes,
                packet,
                ..
            } => {
                let name = format!("c{client}");
                if packet.is_none() {
                    // Bytes the spec forbids: a broker that keeps the rules
                    // may close on them here, where this one went on.
                    forbidden.insert(*client, false);
                }
                match input.ops.get(*i) {
                    Some(Op::Send {
                        packet, overrides, ..
                    }) if placeholder => {
                        if let Some(fields) = by_fields(packet, overrides, protocol) {
                            let mut m = Map::new();
                            for (k, v) in replace_token(&Value::Object(fields), to)
                                .as_object()
                                .into_iter()
                                .flatten()
                            {
                                let k = if k == "type" {
                                    "send".to_string()
                                } else {
                                    k.clone()
                                };
                                m.insert(k, v.clone());
                            }
                            step(&mut body, &name, &Value::Object(m), None);
                        }
                    }
                    Some(Op::Send { .. } | Op::Raw { .. }) => {
                        let mut m = Map::new();
                        m.insert("send_hex".into(), Value::from(hex(bytes)));
                        step(&mut body, &name, &Value::Object(m), None);
                    }
                    Some(Op::Disconnect { .. }) => {
                        let _ = writeln!(body, "  - {name}: disconnect");
                    }
                    _ => {}
                }
            }
            Rec::Closing { client, op } => {
                if matches!(input.ops.get(*op), Some(Op::Drop { .. }))
                    && current.contains_key(client)
                {
                    let _ = writeln!(body, "  - c{client}: drop");
                }
                current.remove(client);
            }
            Rec::Got { client, conn, got } => {
                if current.get(client) != Some(conn) {
                    continue;
                }
                let name = format!("c{client}");
                match got {
                    Got::Packet(p, _) => {
                        if !answered.get(client).copied().unwrap_or(true) {
                            // The client's first CONNACK: the runner's connect takes it.
                            answered.insert(*client, true);
                            continue;
                        }
                        if matches!(p, Packet::Publish(pb) if !obs.ours(pb.topic.as_bytes())) {
                            // Another execution's message, through a widened
                            // filter: a replay has no such traffic.
                            continue;
                        }
                        let mut m = Map::new();
                        m.insert("expect".into(), Value::from(p.packet_type().name()));
                        if captured == Some(i) {
                            m.insert("id".into(), Value::from("$inflight"));
                        }
                        match forbidden.get_mut(client) {
                            Some(read) => {
                                *read = true;
                                let one_of =
                                    json!({"expect_one_of": [Value::Object(m), {"skip": REFUSED}]});
                                step(&mut body, &name, &one_of, None);
                            }
                            None => step(&mut body, &name, &Value::Object(m), None),
                        }
                    }
                    Got::Closed | Got::Malformed(..) => {
                        let mut m = Map::new();
                        m.insert("expect_close".into(), Value::from(true));
                        step(&mut body, &name, &Value::Object(m), None);
                        current.remove(client);
                    }
                }
            }
            _ => {}
        }
    }
    let checked = match &finding.check {
        Check::Expect { client, .. }
        | Check::Silence { client }
        | Check::IdNotReused { client, .. }
        | Check::Close { client }
        | Check::Delivery { client, .. } => Some(*client),
        _ => None,
    };
    // A client that sent forbidden bytes and was not read since: does its
    // connection still stand (as here), or did the broker close it (as it may)?
    let mut unread: Vec<usize> = forbidden
        .iter()
        .filter(|(k, read)| !**read && current.contains_key(k) && Some(**k) != checked)
        .map(|(k, _)| *k)
        .collect();
    unread.sort_unstable();
    for k in unread {
        let name = format!("c{k}");
        step(&mut body, &name, &json!({"send": "PINGREQ"}), None);
        let one_of = json!({"expect_one_of": [{"expect": "PINGRESP"}, {"skip": REFUSED}]});
        step(&mut body, &name, &one_of, None);
    }
    // A silence check comes after the answers the broker owes the client
    // for what it sent (a PUBREC to its QoS 2 PUBLISH, say): the broken
    // broker sent them after the packet found, and one that keeps the rules
    // sends them all the same. Those seen before the next send are expected
    // first; met by the packet found, such a step fails on its statement.
    if let Check::Silence { client } = finding.check {
        for rec in obs.recs.iter().skip(finding.at + 1) {
            match rec {
                Rec::Got {
                    client: c,
                    conn,
                    got: Got::Packet(p, _),
                } if *c == client
                    && current.get(c) == Some(conn)
                    && !matches!(p, Packet::Publish(_)) =>
                {
                    let m = json!({"expect": p.packet_type().name()});
                    step(&mut body, &format!("c{client}"), &m, None);
                }
                Rec::Sent { .. } | Rec::Closing { .. } => break,
                _ => {}
            }
        }
    }
    check_steps(&mut body, &finding.check, &statement, token, to);
    if body.is_empty() {
        // A scenario has at least one step.
        step(&mut body, "c0", &json!({"send": "PINGREQ"}), None);
    }
    out.push_str(&body);
    out
}

/// The last steps: the check of the rule the finding breaks, naming `statement`.
fn check_steps(body: &mut String, rule: &Check, statement: &str, token: &str, to: &str) {
    let st = Some(statement);
    let check =
        |body: &mut String, client: usize, m: Value| step(body, &format!("c{client}"), &m, st);
    match rule {
        Check::Expect { client, ty } => check(body, *client, json!({"expect": ty.name()})),
        Check::Silence { client } => check(body, *client, json!({"expect_silence": SILENCE})),
        Check::IdNotReused { client, .. } => check(
            body,
            *client,
            json!({"expect": "PUBLISH", "id": {"not": "$inflight"}}),
        ),
        Check::Close { client } => check(body, *client, json!({"expect_close": true})),
        Check::Delivery { client, topic } => {
            let topic = topic.replace(token, to);
            check(
                body,
                *client,
                json!({"expect": "PUBLISH", "topic": topic, "timeout": "3s"}),
            );
        }
        Check::Ping => {
            step(body, "live", &json!({"send": "PINGREQ"}), None);
            step(body, "live", &json!({"expect": "PINGRESP"}), st);
        }
        Check::Reachable => {
            let _ = writeln!(body, "  - probe: connect");
        }
        Check::Nothing => {}
    }
}
