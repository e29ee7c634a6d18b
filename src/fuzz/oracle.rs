//! The oracles: what in an [`Observation`] breaks a rule the broker cannot
//! escape. Each is a MUST of the catalogue and each holds back wherever the
//! spec lets a broker choose (a SHOULD, a MAY, a limit it may apply), so
//! that nothing permitted is a finding:
//!
//! - bytes the codec refuses as a server's output, charged to the statement
//!   the codec names, when the catalogue calls it a MUST (bytes refused
//!   without a statement are no verdict; an echo of the
//!   fuzzer's own packet identifier 0 and packets past the fuzzer's own
//!   size limit are not the broker's fault);
//! - a PUBLISH to a client none of whose session's filters (ever
//!   subscribed, even unsubscribed since) matches the topic (MQTT-3.3.2-3;
//!   `$` topics and aliased topics are left alone);
//! - a QoS 1/2 PUBLISH with DUP 0 carrying a packet identifier still in
//!   flight on that connection (5.0 MQTT-2.2.1-4, 3.1.1 MQTT-2.3.1-4);
//! - a second CONNACK on one connection (5.0 MQTT-3.2.0-2, 3.1.1
//!   MQTT-3.1.0-2, which says the connection closes instead);
//! - a QoS 1/2 message acknowledged to its publisher (PUBACK, or PUBCOMP)
//!   and never delivered to a client of another session that had a
//!   subscription matching it granted at QoS 1 or 2 before it was sent and
//!   stayed connected, sent nothing odd and announced no limits, and whose
//!   client id no later CONNECT took over (MQTT-4.5.0-1);
//! - and, from the liveness client, a PINGREQ without PINGRESP
//!   (MQTT-3.12.4-1), a CONNECT without CONNACK, a refused connection.

use std::collections::HashMap;

use mqtt_codec::catalogue::{self, Level};
use mqtt_codec::{ErrorKind, Packet, PacketType, Property, Protocol, QoS};

use super::exec::{Got, Live, Observation, Rec, MAX_PACKET};
use super::input::Input;

/// What kind of rule a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Crash,
    Hang,
    Malformed,
    Misdelivery,
    Loss,
    IdReuse,
    SecondConnack,
    Memory,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Crash,
        Kind::Hang,
        Kind::Malformed,
        Kind::Misdelivery,
        Kind::Loss,
        Kind::IdReuse,
        Kind::SecondConnack,
        Kind::Memory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Hang => "hang",
            Kind::Malformed => "malformed_output",
            Kind::Misdelivery => "delivery_without_subscription",
            Kind::Loss => "acknowledged_message_lost",
            Kind::IdReuse => "packet_id_reused",
            Kind::SecondConnack => "second_connack",
            Kind::Memory => "memory_growth",
        }
    }
}

/// How a scenario checks a finding, after the exchange that leads to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The client expects a packet of this type (the malformed one).
    Expect { client: usize, ty: PacketType },
    /// Nothing more arrives at the client (the undue PUBLISH).
    Silence { client: usize },
    /// The client's next PUBLISH has another identifier than the one
    /// received at record `first`.
    IdNotReused { client: usize, first: usize },
    /// The client's connection closes (instead of a second CONNACK).
    Close { client: usize },
    /// The client receives a PUBLISH on this topic (placeholder token).
    Delivery { client: usize, topic: String },
    /// A liveness client's PINGREQ is answered.
    Ping,
    /// A fresh client can connect.
    Reachable,
    /// Nothing a scenario can check (memory).
    Nothing,
}

/// A rule broken in one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    pub statement: Option<String>,
    pub message: String,
    /// The records that lead to it; the check stands for the rest.
    pub at: usize,
    pub check: Check,
}

impl Finding {
    /// What makes two findings the same: kind and statement.
    pub fn key(&self) -> (Kind, Option<String>) {
        (self.kind, self.statement.clone())
    }
}

/// The id of `id` in `protocol`'s catalogue.
fn canon(protocol: Protocol, id: &str) -> String {
    catalogue::lookup(protocol, id).map_or_else(|| id.to_string(), |s| s.id.to_string())
}

fn by_version(protocol: Protocol, v311: &str, v5: &str) -> String {
    canon(protocol, if protocol.is_v5() { v5 } else { v311 })
}

#[derive(Default)]
struct Conn {
    client: usize,
    /// The session id when it is the client's own (not empty, not another).
    session: Option<String>,
    connacks: u32,
    /// The record of its CONNECT.
    connect_sent: Option<usize>,
    connected_at: Option<usize>,
    open: bool,
    /// Sent bytes that are no valid packet.
    dirty: bool,
    /// Announced a Maximum Packet Size, Topic Alias Maximum or Receive Maximum.
    limits: bool,
    inflight: HashMap<u16, usize>,
    inflight_known: bool,
    pending_subs: HashMap<u16, Vec<String>>,
    /// Filter, granted QoS, when granted.
    subs: Vec<(String, u8, usize)>,
    unacked: usize,
}

#[derive(Default)]
struct Session {
    ever: Vec<String>,
    unknown: bool,
    touched: bool,
}

struct Pub {
    conn: u32,
    id: u16,
    qos: QoS,
    topic: String,
    sent_at: usize,
    plain: bool,
    pubrec: bool,
    acked: bool,
}

fn inner_filter(f: &str) -> String {
    match mqtt_codec::topic::split_shared(f) {
        Some(Ok((_, inner))) => inner.to_string(),
        _ => f.to_string(),
    }
}

/// The findings of one execution, the liveness check's included.
pub fn judge(input: &Input, obs: &Observation, live: &Live) -> Vec<Finding> {
    let mut out = walk(input, obs);
    let at = obs.recs.len();
    let protocol = input.protocol;
    match live {
        Live::Alive => {}
        Live::NoPingResp => out.push(Finding {
            kind: Kind::Hang,
            statement: Some(canon(protocol, "MQTT-3.12.4-1")),
            message: "a PINGREQ on an accepted connection got no PINGRESP before its deadline".into(),
            at,
            check: Check::Ping,
        }),
        Live::NoConnAck => out.push(Finding {
            kind: Kind::Hang,
            statement: None,
            message: "the broker answers no CONNECT: a fresh connection got no CONNACK before its deadline".into(),
            at,
            check: Check::Ping,
        }),
        Live::Refused(why) => out.push(Finding {
            kind: Kind::Crash,
            statement: None,
            message: format!("the broker no longer accepts connections: {why}"),
            at,
            check: Check::Reachable,
        }),
    }
    out
}

/// Whether a message acknowledged to its publisher is still owed to a
/// subscriber (the executor then waits a little longer).
pub fn awaiting_delivery(input: &Input, obs: &Observation) -> bool {
    walk(input, obs).iter().any(|f| f.kind == Kind::Loss)
}

// One pass over the records in their order, longer than most functions: the
// states it keeps are intertwined (a SUBACK confirms what a SUBSCRIBE asked,
// a PUBCOMP completes what a PUBLISH began, a reconnect ends a connection),
// and each arm reads best next to the others.
fn walk(input: &Input, obs: &Observation) -> Vec<Finding> {
    let protocol = input.protocol;
    let mut out = Vec::new();
    let mut conns: HashMap<u32, Conn> = HashMap::new();
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let mut pubs: Vec<Pub> = Vec::new();
    // (connection, topic, record)
    let mut deliveries: Vec<(u32, String, usize)> = Vec::new();
    // Each client's current connection: the executor closes the one before
    // when it opens another, and on a drop or a disconnect.
    let mut current: HashMap<usize, u32> = HashMap::new();
    // Every CONNECT with a client id: (id, connection, record). A later one
    // with a session's id takes that session over, whichever client sends
    // it, and the broker then closes the connection that had it
    // (MQTT-3.1.4-3) even where the close was not seen.
    let mut takeovers: Vec<(String, u32, usize)> = Vec::new();
    for (i, rec) in obs.recs.iter().enumerate() {
        match rec {
            Rec::Closing { client, .. } => {
                if let Some(c) = current.remove(client).and_then(|s| conns.get_mut(&s)) {
                    c.open = false;
                }
            }
            Rec::Opened { client, conn, .. } => {
                if let Some(c) = current
                    .insert(*client, *conn)
                    .and_then(|s| conns.get_mut(&s))
                {
                    c.open = false;
                }
                conns.insert(
                    *conn,
                    Conn {
                        client: *client,
                        open: true,
                        inflight_known: true,
                        ..Default::default()
                    },
                );
            }
            Rec::OpenFailed {
                refused: true, why, ..
            } => out.push(Finding {
                kind: Kind::Crash,
                statement: None,
                message: format!("the broker refused a connection: {why}"),
                at: i,
                check: Check::Reachable,
            }),
            Rec::Sent {
                client,
                conn,
                packet,
                bytes,
                ..
            } => {
                let Some(c) = conns.get_mut(conn) else {
                    continue;
                };
                let own = obs.ids.get(*client).cloned().unwrap_or_default();
                let Some(p) = packet else {
                    // Bytes the broker cannot frame as we do (cut short,
                    // a wrong length): from here on it may read anything
                    // this connection sends as something else, so what it
                    // subscribes to, acknowledges or has in flight is no
                    // longer known.
                    c.dirty = true;
                    c.inflight_known = false;
                    if let Some(s) = &c.session {
                        sessions.entry(s.clone()).or_default().unknown = true;
                    }
                    if bytes.first().map(|b| b >> 4) == Some(1) {
                        c.session = None;
                    }
                    continue;
                };
                if c.dirty {
                    // The broker may have read this packet as part of the
                    // bad bytes before it: none of its effects is known.
                    continue;
                }
                match p {
                    Packet::Connect(cn) => {
                        c.connect_sent = Some(i);
                        if !cn.client_id.is_empty() {
                            takeovers.push((cn.client_id.to_string(), *conn, i));
                        }
                        c.session = (!cn.client_id.is_empty() && *cn.client_id == *own)
                            .then(|| own.clone());
                        if let Some(s) = &c.session {
                            sessions.entry(s.clone()).or_default();
                        }
                        c.limits |= cn.properties.iter().any(|p| {
                            matches!(
                                p,
                                Property::MaximumPacketSize(_)
                                    | Property::TopicAliasMaximum(_)
                                    | Property::ReceiveMaximum(_)
                            )
                        });
                    }
                    Packet::Subscribe(s) => {
                        let filters: Vec<String> =
                            s.filters.iter().map(|f| f.filter.to_string()).collect();
                        if let Some(id) = &c.session {
                            let sess = sessions.entry(id.clone()).or_default();
                            sess.ever.extend(filters.iter().map(|f| inner_filter(f)));
                        }
                        c.pending_subs.insert(s.packet_id, filters);
                    }
                    Packet::Unsubscribe(_) => {
                        if let Some(id) = &c.session {
                            sessions.entry(id.clone()).or_default().touched = true;
                        }
                    }
                    Packet::Publish(pb) if pb.qos != QoS::AtMostOnce => {
                        // The same identifier again before its flow ended is
                        // the same message to the broker, whatever it holds
                        // now: neither version is owed to anyone.
                        let mut again = false;
                        for p in pubs
                            .iter_mut()
                            .filter(|p| p.conn == *conn && p.id == pb.packet_id && !p.acked)
                        {
                            p.plain = false;
                            again = true;
                        }
                        let limited = pb.properties.iter().any(|p| {
                            matches!(
                                p,
                                Property::MessageExpiryInterval(_) | Property::TopicAlias(_)
                            )
                        });
                        pubs.push(Pub {
                            conn: *conn,
                            id: pb.packet_id,
                            qos: pb.qos,
                            topic: pb.topic.to_string(),
                            sent_at: i,
                            plain: !again && !limited,
                            pubrec: false,
                            acked: false,
                        });
                    }
                    Packet::PubAck(r) | Packet::PubComp(r)
                        if c.inflight.remove(&r.packet_id).is_some() =>
                    {
                        c.unacked = c.unacked.saturating_sub(1);
                    }
                    Packet::PubRec(r) if r.reason_code >= 0x80 => {
                        c.inflight.remove(&r.packet_id);
                    }
                    _ => {}
                }
            }
            Rec::Got { client, conn, got } => {
                let Some(c) = conns.get_mut(conn) else {
                    continue;
                };
                match got {
                    Got::Closed => c.open = false,
                    Got::Malformed(e, bytes) => {
                        c.open = false;
                        if let Some(f) = malformed(protocol, *client, i, e, bytes).filter(|_| {
                            // Only a PUBLISH can be another execution's.
                            bytes.first().map(|b| b >> 4) != Some(3) || obs.ours(bytes)
                        }) {
                            out.push(f);
                        }
                    }
                    Got::Packet(p, _) => {
                        match p {
                            Packet::ConnAck(a) => {
                                c.connacks += 1;
                                if c.connacks == 2 {
                                    out.push(Finding {
                                    kind: Kind::SecondConnack,
                                    statement: Some(by_version(protocol, "MQTT-3.1.0-2", "MQTT-3.2.0-2")),
                                    message: format!("client c{client} got a second CONNACK on one connection"),
                                    at: i,
                                    check: Check::Close { client: *client },
                                });
                                }
                                if a.code == 0 && c.connected_at.is_none() {
                                    c.connected_at = Some(i);
                                }
                            }
                            Packet::Publish(pb) => {
                                let topic = pb.topic.to_string();
                                if let Some(s) = c.session.as_ref().and_then(|s| sessions.get(s)) {
                                    let undue = !s.unknown
                                        && obs.ours(topic.as_bytes())
                                        && !topic.is_empty()
                                        && !topic.starts_with('$')
                                        && !s
                                            .ever
                                            .iter()
                                            .any(|f| mqtt_codec::topic::matches(f, &topic));
                                    if undue {
                                        out.push(Finding {
                                        kind: Kind::Misdelivery,
                                        statement: Some(canon(protocol, "MQTT-3.3.2-3")),
                                        message: format!(
                                            "client c{client} got a PUBLISH on `{topic}`, which none of its filters {:?} matches",
                                            s.ever
                                        ),
                                        at: i,
                                        check: Check::Silence { client: *client },
                                    });
                                    }
                                }
                                if pb.qos != QoS::AtMostOnce && obs.ours(pb.topic.as_bytes()) {
                                    if let Some(first) = c.inflight.get(&pb.packet_id) {
                                        if !pb.dup
                                            && c.inflight_known
                                            && obs.ours(pb.topic.as_bytes())
                                        {
                                            out.push(Finding {
                                            kind: Kind::IdReuse,
                                            statement: Some(by_version(protocol, "MQTT-2.3.1-4", "MQTT-2.2.1-4")),
                                            message: format!(
                                                "client c{client} got a new QoS {} PUBLISH with packet identifier {}, still in flight",
                                                pb.qos as u8, pb.packet_id
                                            ),
                                            at: i,
                                            check: Check::IdNotReused { client: *client, first: *first },
                                        });
                                        }
                                    } else {
                                        c.inflight.insert(pb.packet_id, i);
                                        c.unacked += 1;
                                    }
                                }
                                deliveries.push((*conn, topic, i));
                            }
                            Packet::SubAck(a) => {
                                if let Some(filters) = c.pending_subs.remove(&a.packet_id) {
                                    for (f, code) in filters.into_iter().zip(&a.reason_codes) {
                                        if *code < 0x80 {
                                            c.subs.push((f, *code, i));
                                        }
                                    }
                                }
                            }
                            Packet::PubAck(r) => {
                                if let Some(p) = pubs.iter_mut().find(|p| {
                                    p.conn == *conn
                                        && p.id == r.packet_id
                                        && p.qos == QoS::AtLeastOnce
                                        && !p.acked
                                }) {
                                    p.acked = r.reason_code == 0;
                                }
                            }
                            Packet::PubRec(r) => {
                                if let Some(p) = pubs.iter_mut().find(|p| {
                                    p.conn == *conn
                                        && p.id == r.packet_id
                                        && p.qos == QoS::ExactlyOnce
                                        && !p.acked
                                }) {
                                    p.pubrec = r.reason_code < 0x80;
                                }
                            }
                            Packet::PubComp(r) => {
                                if let Some(p) = pubs.iter_mut().find(|p| {
                                    p.conn == *conn && p.id == r.packet_id && p.pubrec && !p.acked
                                }) {
                                    p.acked = r.reason_code == 0;
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Rec::OpenFailed { .. } | Rec::NotSent { .. } => {}
        }
    }
    out.extend(losses(
        protocol,
        obs,
        &conns,
        &sessions,
        &pubs,
        &deliveries,
        &takeovers,
    ));
    out
}

fn malformed(
    protocol: Protocol,
    client: usize,
    at: usize,
    e: &mqtt_codec::DecodeError,
    bytes: &[u8],
) -> Option<Finding> {
    match &e.kind {
        // An echo of the fuzzer's own identifier 0: what that breaks is the
        // closing on the bad packet, not the echo rule.
        ErrorKind::PacketIdZero => return None,
        // Past the fuzzer's own limit, which it never announced.
        ErrorKind::PacketTooLarge { max, .. } if *max == MAX_PACKET => return None,
        _ => {}
    }
    // Refused without a statement (a property value the codec does not
    // know, a reserved packet type): no rule of the catalogue decides it,
    // so it is no verdict.
    let statement = canon(protocol, e.statement()?);
    let statement = Some(statement);
    if let Some(st) = statement
        .as_deref()
        .and_then(|id| catalogue::lookup(protocol, id))
    {
        if !matches!(st.level, Level::Must | Level::MustNot) {
            return None;
        }
    }
    let ty = bytes
        .first()
        .and_then(|b| PacketType::from_u8(b >> 4))
        .unwrap_or(PacketType::Publish);
    Some(Finding {
        kind: Kind::Malformed,
        statement,
        message: format!("client c{client} got bytes that do not decode as a server's packet: {e}"),
        at,
        check: Check::Expect { client, ty },
    })
}

fn losses(
    protocol: Protocol,
    obs: &Observation,
    conns: &HashMap<u32, Conn>,
    sessions: &HashMap<String, Session>,
    pubs: &[Pub],
    deliveries: &[(u32, String, usize)],
    takeovers: &[(String, u32, usize)],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in pubs.iter().filter(|p| p.acked && p.plain) {
        if p.topic.is_empty() || p.topic.starts_with('$') {
            continue;
        }
        let publisher = conns.get(&p.conn).and_then(|c| c.session.clone());
        let mut serials: Vec<&u32> = conns.keys().collect();
        serials.sort();
        for serial in serials {
            let Some(s) = conns.get(serial) else {
                continue;
            };
            let Some(session) = s.session.as_ref() else {
                continue;
            };
            let sess = sessions.get(session);
            let eligible = s.open
                && !s.dirty
                && !s.limits
                && s.unacked < 10
                && s.connected_at.is_some_and(|at| at < p.sent_at)
                && Some(session) != publisher.as_ref()
                && !takeovers.iter().any(|(id, conn, at)| {
                    id == session && conn != serial && s.connect_sent.is_none_or(|c| *at > c)
                })
                && sess.is_some_and(|x| !x.unknown && !x.touched)
                && s.subs.iter().any(|(f, granted, at)| {
                    *granted >= 1
                        && *at < p.sent_at
                        && mqtt_codec::topic::split_shared(f).is_none()
                        && mqtt_codec::topic::matches(f, &p.topic)
                });
            if !eligible {
                continue;
            }
            let delivered = deliveries
                .iter()
                .any(|(c, t, at)| c == serial && *t == p.topic && *at > p.sent_at);
            if !delivered {
                out.push(Finding {
                    kind: Kind::Loss,
                    statement: Some(canon(protocol, "MQTT-4.5.0-1")),
                    message: format!(
                        "a QoS {} message on `{}` was acknowledged to its publisher and never reached client c{}, subscribed to it and connected",
                        p.qos as u8, p.topic, s.client
                    ),
                    at: obs.recs.len(),
                    check: Check::Delivery {
                        client: s.client,
                        topic: p.topic.clone(),
                    },
                });
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "oracle_tests.rs"]
mod tests;
