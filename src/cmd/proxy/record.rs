//! `proxy --record FILE`: the exchanges seen, as a scenario that
//! `mqtt-harness run FILE` replays. Each proxied connection becomes a client
//! (`c1`, `c2`… with `connect: false`): what the client sent becomes `send`
//! steps, what the broker answered `expect` steps, in the order the proxy saw
//! them.
//!
//! What depends on the broker or the moment is left out of the expects, so
//! that the recording passes against any conforming broker: CONNACK and
//! acknowledgement properties, success reason codes (0x00 and 0x10 alike),
//! DUP, Message Expiry, Topic Alias, the broker's packet identifiers
//! (captured, `$c1_p1`, and used by the client's answers), and keep-alive
//! PINGREQ/PINGRESP. Client ids become `{client_id}`; topics and filters
//! `{topic}/…` (those starting with `$` are kept), so that the replay is
//! isolated from other cases.

use std::collections::HashMap;

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, QoS, Sender};
use serde_json::{json, Map, Value};

/// One thing seen on a proxied connection.
#[derive(Debug, Clone)]
pub enum Seen {
    Packet(Packet, Protocol),
    /// Bytes that do not decode.
    Malformed(Bytes),
    /// The side closed the connection.
    Closed,
}

/// One event of one connection, with its place in the proxy's order.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: u64,
    pub from: Sender,
    pub seen: Seen,
}

fn topic(t: &str) -> String {
    if t.starts_with('$') || t.is_empty() {
        t.to_string()
    } else {
        format!("{{topic}}/{t}")
    }
}

fn map_topics(v: &mut Value) {
    let Value::Object(m) = v else { return };
    for key in ["topic", "filter"] {
        if let Some(Value::String(s)) = m.get_mut(key) {
            *s = topic(s);
        }
    }
    if let Some(Value::Array(fs)) = m.get_mut("filters") {
        for f in fs {
            match f {
                Value::String(s) => *s = topic(s),
                other => map_topics(other),
            }
        }
    }
    if let Some(Value::Array(ps)) = m.get_mut("properties") {
        for p in ps {
            if p.get("name") == Some(&json!("response_topic")) {
                if let Some(Value::String(s)) = p.get_mut("value") {
                    *s = topic(s);
                }
            }
        }
    }
    if let Some(w) = m.get_mut("will") {
        map_topics(w);
    }
}

/// Properties an expect should not hold the broker to.
const LOOSE: &[&str] = &["message_expiry_interval", "topic_alias"];

struct Builder {
    steps: Vec<Value>,
    statements: Vec<&'static str>,
    /// Per client: the broker's packet identifier → its capture.
    captures: HashMap<(String, u16), String>,
    protocol: Option<Protocol>,
}

impl Builder {
    fn step(&mut self, client: &str, body: Value) {
        let mut m = Map::new();
        m.insert(client.to_string(), body);
        self.steps.push(Value::Object(m));
    }

    fn id_value(&self, client: &str, id: u16) -> Value {
        self.captures
            .get(&(client.to_string(), id))
            .map_or(json!(id), |c| json!(c))
    }

    fn send(&mut self, client: &str, packet: &Packet, protocol: Protocol) {
        if matches!(packet, Packet::PingReq) {
            return;
        }
        let mut v = crate::packet::packet_to_json(packet, protocol);
        map_topics(&mut v);
        let Value::Object(mut m) = v else { return };
        let ty = m.remove("type").unwrap_or(Value::Null);
        if let Packet::Connect(c) = packet {
            self.protocol.get_or_insert(c.protocol);
            if !c.client_id.is_empty() {
                m.insert("client_id".into(), json!("{client_id}"));
            }
        }
        // The client's answers to the broker's messages name its identifiers.
        if let Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubComp(r) = packet {
            m.insert("id".into(), self.id_value(client, r.packet_id));
        }
        let mut body = Map::new();
        body.insert("send".into(), ty);
        body.extend(m);
        self.step(client, Value::Object(body));
    }

    fn expect(&mut self, client: &str, packet: &Packet, protocol: Protocol) {
        if matches!(packet, Packet::PingResp) {
            return;
        }
        for (_, id) in crate::annotate::statements(packet, protocol, Sender::Server).fields {
            if !self.statements.contains(&id) {
                self.statements.push(id);
            }
        }
        let mut m = Map::new();
        m.insert("expect".into(), json!(packet.packet_type().name()));
        match packet {
            Packet::ConnAck(a) => {
                m.insert("code".into(), json!(a.code));
            }
            Packet::Publish(p) => {
                if !p.topic.is_empty() {
                    m.insert("topic".into(), json!(topic(&p.topic)));
                }
                m.insert("qos".into(), json!(p.qos.as_u8()));
                m.insert("retain".into(), json!(p.retain));
                if p.qos != QoS::AtMostOnce {
                    let n = self.captures.len() + 1;
                    let cap = format!("${client}_p{n}");
                    self.captures
                        .insert((client.to_string(), p.packet_id), cap.clone());
                    m.insert("id".into(), json!(cap));
                }
                if protocol.is_v5() {
                    let props = crate::packet::properties_json(&p.properties);
                    let kept: Vec<Value> = props
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|x| !LOOSE.iter().any(|l| x.get("name") == Some(&json!(l))))
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        m.insert("properties".into(), Value::Array(kept));
                    }
                }
                m.insert("payload".into(), crate::packet::binary_json(&p.payload));
            }
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubComp(r) => {
                m.insert("id".into(), json!(r.packet_id));
                if r.reason_code >= 0x80 {
                    m.insert("code".into(), json!(r.reason_code));
                }
            }
            Packet::PubRel(r) => {
                m.insert("id".into(), self.id_value(client, r.packet_id));
            }
            Packet::SubAck(a) => {
                m.insert("id".into(), json!(a.packet_id));
                m.insert("codes".into(), json!(a.reason_codes));
            }
            Packet::UnsubAck(a) => {
                m.insert("id".into(), json!(a.packet_id));
            }
            Packet::Disconnect(d) => {
                m.insert("code".into(), json!(d.reason_code));
            }
            _ => {}
        }
        self.step(client, Value::Object(m));
    }
}

/// The scenario (YAML) of `conversations` (each connection's events, by
/// connection number), ordered as the proxy saw them.
pub fn scenario(conversations: &[(u64, Vec<Recorded>)], target: &str) -> String {
    let mut all: Vec<(u64, &Recorded)> = conversations
        .iter()
        .flat_map(|(id, evs)| evs.iter().map(move |e| (*id, e)))
        .collect();
    all.sort_by_key(|(_, e)| e.seq);
    let mut b = Builder {
        steps: Vec::new(),
        statements: Vec::new(),
        captures: HashMap::new(),
        protocol: None,
    };
    let mut closed: Vec<String> = Vec::new();
    for (id, e) in all {
        let client = format!("c{id}");
        if closed.contains(&client) {
            continue;
        }
        match (&e.seen, e.from) {
            (Seen::Packet(p, v), Sender::Client) => b.send(&client, p, *v),
            (Seen::Packet(p, v), Sender::Server) => b.expect(&client, p, *v),
            (Seen::Malformed(bytes), Sender::Client) => {
                b.step(&client, json!({"send_hex": crate::hex::spaced(bytes)}))
            }
            // What the broker sent that does not decode cannot be expected.
            (Seen::Malformed(_), Sender::Server) => {}
            (Seen::Closed, Sender::Client) => {
                closed.push(client.clone());
                let after_disconnect = b.steps.last().is_some_and(|s| {
                    s.get(&client).and_then(|x| x.get("send")) == Some(&json!("DISCONNECT"))
                });
                if !after_disconnect {
                    b.steps.push(json!({ client.clone(): "drop" }));
                }
            }
            (Seen::Closed, Sender::Server) => {
                closed.push(client.clone());
                b.step(&client, json!({"expect_close": true}));
            }
        }
    }
    let protocol = b.protocol.unwrap_or(Protocol::V3_1_1);
    let version = protocol.catalogue_version().as_str();
    let mut clients = Map::new();
    for (id, _) in conversations {
        clients.insert(format!("c{id}"), json!({"connect": false}));
    }
    if b.statements.is_empty() {
        b.statements.push("MQTT-3.1.0-1");
    }
    let doc = json!({
        "name": format!("Recorded by mqtt-harness proxy from {target}"),
        "description": "The exchange as the proxy saw it: what each client sent, and what the broker answered (broker-specific fields left out).",
        "statements": { version: b.statements },
        "protocols": [protocol.as_str()],
        "clients": clients,
        "steps": b.steps,
    });
    serde_norway::to_string(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{ConnAck, Connect, PubResponse, Publish};

    fn rec(seq: u64, from: Sender, p: Packet) -> Recorded {
        Recorded {
            seq,
            from,
            seen: Seen::Packet(p, Protocol::V3_1_1),
        }
    }

    #[test]
    fn a_recording_hides_what_depends_on_the_broker() {
        let v = Protocol::V3_1_1;
        let delivery = Publish {
            qos: QoS::AtLeastOnce,
            packet_id: 17,
            dup: true,
            topic: "t/a".into(),
            payload: Bytes::from_static(b"m"),
            ..Publish::default()
        };
        let evs = vec![
            rec(
                0,
                Sender::Client,
                Packet::Connect(Box::new(Connect::new(v, "mosq-123"))),
            ),
            rec(1, Sender::Server, Packet::ConnAck(ConnAck::default())),
            rec(2, Sender::Client, Packet::PingReq),
            rec(3, Sender::Server, Packet::PingResp),
            rec(4, Sender::Server, Packet::Publish(delivery)),
            rec(5, Sender::Client, Packet::PubAck(PubResponse::new(17))),
            Recorded {
                seq: 6,
                from: Sender::Client,
                seen: Seen::Closed,
            },
        ];
        let yaml = scenario(&[(1, evs)], "mqtt://x:1");
        let doc = crate::scenario::parse_scenario("rec.yaml", &yaml).expect("a valid scenario");
        assert_eq!(doc.steps.len(), 5, "{yaml}");
        assert!(yaml.contains("client_id: '{client_id}'"), "{yaml}");
        assert!(
            !yaml.contains("mosq-123") && !yaml.contains("PING"),
            "{yaml}"
        );
        assert!(yaml.contains("topic: '{topic}/t/a'"), "{yaml}");
        // The broker's identifier is captured and answered by capture; DUP is not expected.
        assert_eq!(yaml.matches("$c1_p1").count(), 2, "{yaml}");
        assert!(!yaml.contains("dup: true"), "{yaml}");
        assert!(yaml.contains("c1: drop"), "{yaml}");
    }
}
