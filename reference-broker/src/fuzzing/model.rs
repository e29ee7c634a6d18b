//! What the broker may deliver, and what it owes: a small model of sessions,
//! subscriptions and messages that watches the packets the core is handed
//! and the packets it sends, independently of the core's own bookkeeping.
//!
//! The model only says what is *permitted* and what is *owed*, and it errs
//! towards permitting: wherever the spec lets a broker choose (overlapping
//! subscriptions delivered once or once each, a message buffered before an
//! UNSUBSCRIBE delivered or not, QoS 2 forwarded on PUBLISH or on PUBREL,
//! an offline queue that overflows and drops), every choice passes. What it
//! asserts (each a `String` finding):
//! - a PUBLISH goes only to a connection whose session has a subscription
//!   matching the topic, granted at least the delivered QoS, in force at some
//!   moment between the message's publication and its delivery, and not
//!   excluded by No Local (MQTT-3.8.3-3 in 5.0) or by a `$` topic
//!   (MQTT-4.7.2-1); its payload is one a client published, on that topic, at
//!   no lower QoS; its topic alias was set on that connection;
//! - a QoS 1/2 PUBLISH never reuses an identifier in flight on that
//!   connection, and what is in flight (sent, with no PUBACK, PUBCOMP or
//!   failing PUBREC yet) never exceeds the client's Receive Maximum
//!   (MQTT-3.3.4-9) or, for 3.x, the configured `max_inflight`;
//! - CONNACK's Session Present is 0 after Clean Start 1 (MQTT-3.2.2-2 in 5.0)
//!   and 1 when a session the model knows cannot have expired resumes
//!   (MQTT-3.2.2-2 in 3.1.1, 3.2.2-3 in 5.0, MQTT-3.1.2-23);
//! - a QoS 1/2 message acknowledged to its publisher (PUBACK; PUBCOMP for
//!   QoS 2) that matched a confirmed, non-shared subscription granted QoS 1 or
//!   2 of a session reaches that session, across reconnects, unless the
//!   session ended, the subscription was removed, the message could expire,
//!   the client limited its packet size, or the core counted a dropped
//!   message (see [`Model::check_owed`]).
//!
//! The topic matcher is the model's own: sharing the core's would make the
//! model agree with the core's mistakes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, QoS};

use crate::config::Config;

/// A message a client published, or a will it left.
#[derive(Debug)]
struct Msg {
    /// `None` when the PUBLISH named a topic alias the model cannot resolve.
    topic: Option<String>,
    qos: u8,
    retain: bool,
    /// Session key of the publisher (for No Local).
    origin: String,
    /// The model's step when it was published (for a will: when announced).
    step: u64,
    /// A will, or QoS 2: its forwarding may happen later than `step`.
    late: bool,
    /// It carries a Message Expiry Interval.
    expiring: bool,
}

#[derive(Debug)]
struct Sub {
    /// The filter as subscribed (the key for UNSUBSCRIBE and replacement).
    filter: String,
    /// The filter topics are matched against (`$share/g/` removed).
    matched: Option<String>,
    granted: u8,
    no_local: bool,
    from: u64,
    until: Option<u64>,
    /// The SUBACK accepted it.
    confirmed: bool,
    /// The SUBACK refused it: it never existed.
    refused: bool,
}

impl Sub {
    fn shared(&self) -> bool {
        self.filter.starts_with("$share/")
    }
}

#[derive(Debug, Default)]
struct Session {
    subs: Vec<Sub>,
    /// Harness connection index of its connection, while one is open.
    conn: Option<usize>,
    /// When its last connection closed.
    closed_at: Option<Instant>,
    /// Seconds it outlives its connection (u32::MAX: forever).
    expiry: u32,
    protocol: Option<Protocol>,
    /// A refused CONNECT for this id: the model no longer knows its state.
    uncertain: bool,
    /// A connection of it limited its packet size, so messages may be dropped.
    lossy: bool,
    /// (message, subscription) pairs acknowledged to a publisher.
    owed: Vec<(usize, usize)>,
    /// Messages sent to it.
    delivered: HashSet<usize>,
    /// QoS 2 identifiers of its publications answered with PUBREC → message.
    qos2_in: HashMap<u16, usize>,
}

#[derive(Debug)]
struct PendingConnect {
    client_id: String,
    protocol: Protocol,
    clean_start: bool,
    expiry: u32,
    receive_maximum: Option<u16>,
    limits_packets: bool,
}

#[derive(Debug, Default)]
struct Conn {
    connect: Option<PendingConnect>,
    /// Key of its session, once CONNACK accepted it.
    session: Option<String>,
    protocol: Option<Protocol>,
    receive_maximum: usize,
    /// Identifiers of QoS 1/2 PUBLISH sent to it and not yet finished.
    inflight: HashMap<u16, u8>,
    aliases_in: HashMap<u16, String>,
    aliases_out: HashMap<u16, String>,
    /// The client's latest QoS 1/2 PUBLISH: (packet id, message).
    last_publish: Option<(u16, usize)>,
    /// SUBSCRIBE packet id → (new subscription, the one it replaces).
    pending_subs: HashMap<u16, Vec<usize>>,
}

/// The model (see the module's documentation).
#[derive(Debug)]
pub(super) struct Model {
    max_inflight: usize,
    max_session_expiry: u32,
    maximum_qos: u8,
    step: u64,
    msgs: Vec<Msg>,
    by_payload: HashMap<Bytes, Vec<usize>>,
    sessions: HashMap<String, Session>,
    conns: Vec<Conn>,
}

type Check = Result<(), String>;

impl Model {
    pub(super) fn new(config: &Config) -> Model {
        Model {
            max_inflight: usize::from(config.max_inflight),
            max_session_expiry: config.max_session_expiry,
            maximum_qos: config.maximum_qos,
            step: 0,
            msgs: Vec::new(),
            by_payload: HashMap::new(),
            sessions: HashMap::new(),
            conns: Vec::new(),
        }
    }

    pub(super) fn opened(&mut self) {
        self.conns.push(Conn::default());
    }

    /// The connection's session key, once CONNACK accepted it.
    pub(super) fn session_of(&self, conn: usize) -> Option<&str> {
        self.conns.get(conn)?.session.as_deref()
    }

    /// Identifiers in flight towards `conn`, with their QoS.
    pub(super) fn inflight(&self, conn: usize) -> Vec<(u16, u8)> {
        let mut v: Vec<(u16, u8)> = self
            .conns
            .get(conn)
            .map(|c| c.inflight.iter().map(|(&id, &q)| (id, q)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Persistent sessions (real client ids) still owed a message, with the
    /// version they last spoke.
    pub(super) fn owing(&self) -> Vec<(String, Protocol)> {
        let mut v: Vec<(String, Protocol)> = self
            .sessions
            .iter()
            .filter(|(k, s)| !k.starts_with('\0') && !s.owed.is_empty() && !s.uncertain)
            .filter_map(|(k, s)| Some((k.clone(), s.protocol?)))
            .collect();
        v.sort();
        v
    }

    /// Client ids of the sessions the model knows of.
    pub(super) fn client_ids(&self) -> impl Iterator<Item = &str> {
        self.sessions
            .keys()
            .filter(|k| !k.starts_with('\0'))
            .map(String::as_str)
    }

    /// Sessions clients made (distinct client ids; one per connection
    /// for an empty client id).
    pub(super) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Topics a retained message can be on: those published with RETAIN
    /// (an unresolved topic counts as one more).
    pub(super) fn retained_bound(&self) -> usize {
        let mut topics = HashSet::new();
        let mut unknown = 0;
        for m in self.msgs.iter().filter(|m| m.retain) {
            match &m.topic {
                Some(t) => {
                    topics.insert(t.as_str());
                }
                None => unknown += 1,
            }
        }
        topics.len() + unknown
    }

    fn record(&mut self, payload: &Bytes, msg: Msg) -> usize {
        let idx = self.msgs.len();
        self.msgs.push(msg);
        self.by_payload
            .entry(payload.clone())
            .or_default()
            .push(idx);
        idx
    }

    /// The core is handed `packet` from connection `conn`.
    pub(super) fn client_sent(&mut self, conn: usize, packet: &Packet) {
        self.step += 1;
        let step = self.step;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let key = c.session.clone();
        match packet {
            Packet::Connect(p) if c.session.is_none() && c.connect.is_none() => {
                let v5 = p.protocol.is_v5();
                let expiry = if v5 {
                    p.properties.session_expiry_interval().unwrap_or(0)
                } else if p.clean_start {
                    0
                } else {
                    u32::MAX
                };
                c.connect = Some(PendingConnect {
                    client_id: p.client_id.to_string(),
                    protocol: p.protocol,
                    clean_start: p.clean_start,
                    expiry,
                    receive_maximum: p.properties.receive_maximum(),
                    limits_packets: p.properties.maximum_packet_size().is_some(),
                });
                if let Some(w) = &p.will {
                    let origin = if p.client_id.is_empty() {
                        format!("\0{conn}")
                    } else {
                        p.client_id.to_string()
                    };
                    let msg = Msg {
                        topic: Some(w.topic.to_string()),
                        qos: w.qos.as_u8(),
                        retain: w.retain,
                        origin,
                        step,
                        late: true,
                        expiring: w.properties.message_expiry_interval().is_some(),
                    };
                    self.record(&w.payload, msg);
                }
            }
            Packet::Publish(p) => {
                let Some(key) = key else { return };
                let alias = p.properties.topic_alias();
                let topic = if p.topic.is_empty() {
                    alias.and_then(|a| c.aliases_in.get(&a).cloned())
                } else {
                    if let Some(a) = alias {
                        c.aliases_in.insert(a, p.topic.to_string());
                    }
                    Some(p.topic.to_string())
                };
                let msg = Msg {
                    topic,
                    qos: p.qos.as_u8(),
                    retain: p.retain,
                    origin: key,
                    step,
                    late: p.qos == QoS::ExactlyOnce,
                    expiring: p.properties.message_expiry_interval().is_some(),
                };
                let qos = p.qos;
                let id = p.packet_id;
                let idx = self.record(&p.payload, msg);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.last_publish = (qos != QoS::AtMostOnce).then_some((id, idx));
                }
            }
            // What ends a delivery in flight, read literally (MQTT-3.3.4-9):
            // a PUBACK, a PUBCOMP, or a PUBREC with a failure code.
            Packet::PubAck(r) | Packet::PubComp(r) => {
                c.inflight.remove(&r.packet_id);
            }
            Packet::PubRec(r) if r.reason_code >= 0x80 => {
                c.inflight.remove(&r.packet_id);
            }
            Packet::Subscribe(s) => {
                let Some(key) = key else { return };
                let Some(session) = self.sessions.get_mut(&key) else {
                    return;
                };
                let mut added = Vec::new();
                for f in &s.filters {
                    let filter = f.filter.to_string();
                    let matched = match filter.strip_prefix("$share/") {
                        Some(rest) => rest.split_once('/').map(|(_, f)| f.to_string()),
                        None => Some(filter.clone()),
                    };
                    session.subs.push(Sub {
                        filter,
                        matched,
                        granted: f.options.qos.as_u8(),
                        no_local: f.options.no_local,
                        from: step,
                        until: None,
                        confirmed: false,
                        refused: false,
                    });
                    added.push(session.subs.len() - 1);
                }
                if let Some(c) = self.conns.get_mut(conn) {
                    c.pending_subs.insert(s.packet_id, added);
                }
            }
            Packet::Unsubscribe(u) => {
                let Some(session) = key.and_then(|k| self.sessions.get_mut(&k)) else {
                    return;
                };
                for f in &u.filters {
                    for s in session.subs.iter_mut() {
                        if s.filter == f.as_ref() && s.until.is_none() {
                            s.until = Some(step);
                        }
                    }
                }
            }
            Packet::Disconnect(d) => {
                let Some(session) = key.and_then(|k| self.sessions.get_mut(&k)) else {
                    return;
                };
                // MQTT-3.14.2-2: from 0 to non-zero is a protocol error.
                if let Some(e) = d.properties.session_expiry_interval() {
                    if session.expiry != 0 {
                        session.expiry = e.min(self.max_session_expiry);
                    }
                }
            }
            _ => {}
        }
    }

    /// The connection closed (either side).
    pub(super) fn closed(&mut self, conn: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.last_publish = None;
        let Some(key) = c.session.clone() else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(&key) {
            if s.conn == Some(conn) {
                s.conn = None;
                s.closed_at = Some(now);
            }
        }
    }

    /// The core sends `packet` on connection `conn`.
    pub(super) fn server_sent(&mut self, conn: usize, packet: &Packet, now: Instant) -> Check {
        match packet {
            Packet::ConnAck(a) => self.connack(conn, a, now),
            Packet::Publish(p) => self.delivered(conn, p),
            Packet::PubAck(r) | Packet::PubRec(r) => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return Ok(());
                };
                let Some((id, idx)) = c.last_publish.take() else {
                    return Ok(());
                };
                if id != r.packet_id || r.reason_code >= 0x80 {
                    return Ok(());
                }
                let Some(key) = c.session.clone() else {
                    return Ok(());
                };
                if matches!(packet, Packet::PubAck(_)) {
                    if self.msgs.get(idx).is_some_and(|m| m.qos == 1) {
                        self.acknowledged(idx);
                    }
                } else if let Some(s) = self.sessions.get_mut(&key) {
                    // A duplicate keeps the first message's place.
                    s.qos2_in.entry(id).or_insert(idx);
                }
                Ok(())
            }
            Packet::PubComp(r) if r.reason_code < 0x80 => {
                let key = self.conns.get(conn).and_then(|c| c.session.clone());
                let idx = key
                    .and_then(|k| self.sessions.get_mut(&k))
                    .and_then(|s| s.qos2_in.remove(&r.packet_id));
                if let Some(idx) = idx {
                    self.acknowledged(idx);
                }
                Ok(())
            }
            Packet::SubAck(a) => {
                let Some(c) = self.conns.get_mut(conn) else {
                    return Ok(());
                };
                let added = c.pending_subs.remove(&a.packet_id).unwrap_or_default();
                let Some(s) = c.session.as_ref().and_then(|k| self.sessions.get_mut(k)) else {
                    return Ok(());
                };
                for (new, &code) in added.into_iter().zip(&a.reason_codes) {
                    let Some(from) = s.subs.get(new).map(|s| s.from) else {
                        continue;
                    };
                    if code >= 0x80 {
                        if let Some(sub) = s.subs.get_mut(new) {
                            sub.refused = true;
                        }
                        continue;
                    }
                    if let Some(sub) = s.subs.get_mut(new) {
                        sub.granted = code.min(2);
                        sub.confirmed = true;
                    }
                    // A granted filter replaces every earlier one that is
                    // identical and still in force: one from a SUBSCRIBE
                    // before, and one earlier in this same SUBSCRIBE, which
                    // the server handles filter by filter (MQTT-3.8.4-3).
                    let Some(filter) = s.subs.get(new).map(|s| s.filter.clone()) else {
                        continue;
                    };
                    for old in s.subs.iter_mut().take(new) {
                        if old.filter == filter && old.until.is_none() && !old.refused {
                            old.until = Some(from);
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn connack(&mut self, conn: usize, a: &mqtt_codec::ConnAck, now: Instant) -> Check {
        let Some(c) = self.conns.get_mut(conn) else {
            return Ok(());
        };
        let Some(p) = c.connect.take() else {
            return Ok(());
        };
        let key = if p.client_id.is_empty() {
            format!("\0{conn}")
        } else {
            p.client_id.clone()
        };
        if a.code != 0 {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.uncertain = true;
            }
            return Ok(());
        }
        let v5 = p.protocol.is_v5();
        c.session = Some(key.clone());
        c.protocol = Some(p.protocol);
        c.receive_maximum = match (v5, p.receive_maximum) {
            (true, Some(n)) => usize::from(n),
            (true, None) => 65_535,
            (false, _) => self.max_inflight,
        };
        let expiry = match a.properties.session_expiry_interval() {
            Some(e) if v5 => e,
            _ if v5 => p.expiry.min(self.max_session_expiry),
            _ => p.expiry,
        };
        let alive = self.sessions.get(&key).is_some_and(|s| {
            !s.uncertain
                && s.expiry > 0
                && match s.closed_at {
                    None => true,
                    Some(_) if s.expiry == u32::MAX => true,
                    Some(at) => now < at + Duration::from_secs(u64::from(s.expiry)),
                }
        });
        // MQTT 3.1's CONNACK has no Session Present: the model goes by what it knows.
        let present = if p.protocol == Protocol::V3_1 {
            !p.clean_start && alive
        } else {
            a.session_present
        };
        if p.clean_start && present {
            return Err(format!(
                "CONNACK for {key:?} says Session Present 1 after Clean Start 1 (MQTT-3.2.2-2)"
            ));
        }
        if !p.clean_start && !present && alive {
            let s = self.sessions.get(&key);
            return Err(format!(
                "CONNACK for {key:?} says Session Present 0, yet its session (expiry {:?} s, \
                 closed {:?} ago) cannot have expired (MQTT-3.1.2-23, MQTT-3.2.2-3)",
                s.map(|s| s.expiry),
                s.and_then(|s| s.closed_at).map(|at| now - at)
            ));
        }
        let s = self.sessions.entry(key).or_default();
        // A 3.1 client resuming a session the model lost track of: whatever
        // it had may have come back, and stays permitted.
        let unknown = p.protocol == Protocol::V3_1 && !p.clean_start && s.uncertain;
        if !present && !unknown {
            *s = Session::default();
        }
        s.conn = Some(conn);
        s.closed_at = None;
        s.expiry = expiry;
        s.protocol = Some(p.protocol);
        s.lossy |= p.limits_packets;
        Ok(())
    }

    /// The core has answered all it was given, yet `conn` got no CONNACK
    /// for its CONNECT: one that does not fit the client's Maximum
    /// Packet Size is not sent (MQTT-3.1.2-24), the session exists all the
    /// same. The model no longer knows that session's state.
    pub(super) fn unanswered(&mut self, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(p) = c.connect.take() else {
            return;
        };
        let key = if p.client_id.is_empty() {
            format!("\0{conn}")
        } else {
            p.client_id.clone()
        };
        c.session = Some(key.clone());
        c.protocol = Some(p.protocol);
        c.receive_maximum = match (p.protocol.is_v5(), p.receive_maximum) {
            (true, Some(n)) => usize::from(n),
            (true, None) => 65_535,
            (false, _) => self.max_inflight,
        };
        let s = self.sessions.entry(key).or_default();
        s.uncertain = true;
        s.lossy = true;
        s.conn = Some(conn);
        s.closed_at = None;
        s.protocol = Some(p.protocol);
        // Whatever it held may have been resumed: keep permitting it.
        s.subs.iter_mut().for_each(|sub| sub.confirmed = false);
    }

    /// Connections whose CONNECT is unanswered.
    pub(super) fn awaiting_connack(&self) -> Vec<usize> {
        (0..self.conns.len())
            .filter(|&i| self.conns.get(i).is_some_and(|c| c.connect.is_some()))
            .collect()
    }

    fn delivered(&mut self, conn: usize, p: &mqtt_codec::Publish) -> Check {
        let step = self.step;
        let Some(c) = self.conns.get_mut(conn) else {
            return Ok(());
        };
        let Some(key) = c.session.clone() else {
            return Err(format!(
                "PUBLISH {:?} on connection {conn}, which has no accepted session",
                p.topic
            ));
        };
        let topic = match p.properties.topic_alias() {
            Some(a) if p.topic.is_empty() => match c.aliases_out.get(&a) {
                Some(t) => t.clone(),
                None => {
                    return Err(format!(
                        "PUBLISH to {key:?} uses topic alias {a}, never set on this connection"
                    ))
                }
            },
            Some(a) => {
                c.aliases_out.insert(a, p.topic.to_string());
                p.topic.to_string()
            }
            None => p.topic.to_string(),
        };
        let qos = p.qos.as_u8();
        if qos > 0 {
            if c.inflight.contains_key(&p.packet_id) && !p.dup {
                return Err(format!(
                    "PUBLISH to {key:?} reuses packet id {} while it is in flight (MQTT-4.3.2-1)",
                    p.packet_id
                ));
            }
            c.inflight.insert(p.packet_id, qos);
            // Resends after a resume count too: the core holds back what
            // a smaller Receive Maximum has no room for (found by this
            // target: `seed-found-resend-past-receive-maximum`).
            if c.inflight.len() > c.receive_maximum {
                return Err(format!(
                    "{} QoS 1/2 messages in flight to {key:?}, above its receive maximum {} \
                     (MQTT-3.3.4-9; for 3.x the configured max_inflight)",
                    c.inflight.len(),
                    c.receive_maximum
                ));
            }
        }
        let Some(session) = self.sessions.get_mut(&key) else {
            return Ok(());
        };
        let candidates = self.by_payload.get(&p.payload).cloned().unwrap_or_default();
        let mut permitted = false;
        for idx in candidates {
            let Some(m) = self.msgs.get(idx) else {
                continue;
            };
            if m.topic.as_ref().is_some_and(|t| *t != topic) || qos > m.qos {
                continue;
            }
            let retained = p.retain && m.retain;
            let by_sub = session.subs.iter().any(|s| {
                !s.refused
                    && s.granted >= qos
                    && (s.matched.as_deref().is_some_and(|f| matches(f, &topic))
                        || matches(&s.filter, &topic))
                    && s.until.is_none_or(|u| u >= m.step)
                    && (s.from <= m.step || retained || m.late)
                    && s.from <= step
                    && !(s.no_local && !p.retain && m.origin == key)
            });
            if by_sub {
                permitted = true;
                session.delivered.insert(idx);
            }
        }
        if permitted {
            Ok(())
        } else {
            Err(format!(
                "PUBLISH {topic:?} (QoS {qos}, payload {:?}) to {key:?}, which has no \
                 subscription that permits it (subscriptions: {:?})",
                p.payload,
                session
                    .subs
                    .iter()
                    .filter(|s| !s.refused)
                    .map(|s| (&s.filter, s.granted, s.from, s.until))
                    .collect::<Vec<_>>()
            ))
        }
    }

    /// The publisher was told `idx` is accepted: every session with a
    /// confirmed, non-shared subscription at QoS 1/2 matching it is owed it.
    fn acknowledged(&mut self, idx: usize) {
        let Some(m) = self.msgs.get(idx) else {
            return;
        };
        let Some(topic) = m.topic.clone().filter(|_| !m.expiring) else {
            return;
        };
        let qos = m.qos.min(self.maximum_qos);
        for (key, s) in self.sessions.iter_mut() {
            if s.uncertain || s.lossy {
                continue;
            }
            let sub = s.subs.iter().position(|sub| {
                sub.confirmed
                    && !sub.refused
                    && !sub.shared()
                    && sub.until.is_none()
                    && sub.from <= m.step
                    && qos.min(sub.granted) >= 1
                    && matches(&sub.filter, &topic)
                    && !(sub.no_local && m.origin == *key)
            });
            if let Some(sub) = sub {
                s.owed.push((idx, sub));
            }
        }
    }

    /// Every owed message reached its session, unless the session ended
    /// since (a fresh session clears what it was owed), its subscription was
    /// removed, or the core counted a dropped message (`dropped`: the spec
    /// lets a full queue drop, and the model cannot tell which message went).
    pub(super) fn check_owed(&self, dropped: bool) -> Check {
        if dropped {
            return Ok(());
        }
        let mut keys: Vec<&String> = self.sessions.keys().collect();
        keys.sort();
        for key in keys {
            let Some(s) = self.sessions.get(key) else {
                continue;
            };
            // An empty client id's session cannot be come back to.
            if s.uncertain || s.lossy || key.starts_with('\0') {
                continue;
            }
            for &(idx, sub) in &s.owed {
                if s.subs.get(sub).is_some_and(|sub| sub.until.is_some()) {
                    continue;
                }
                if !s.delivered.contains(&idx) {
                    let m = self.msgs.get(idx);
                    return Err(format!(
                        "QoS {} message on {:?} acknowledged to its publisher never reached \
                         session {key:?}, subscribed with {:?} (MQTT-4.1.0-1, MQTT-4.4.0-1)",
                        m.map_or(0, |m| m.qos),
                        m.and_then(|m| m.topic.clone()),
                        s.subs.get(sub).map(|s| &s.filter)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether topic `name` matches `filter`, written from the spec's rules
/// (4.7): `#` matches the rest, parent included; `+` one level; a filter
/// starting with a wildcard never matches a `$` topic (MQTT-4.7.2-1).
pub(super) fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return f.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn the_models_matcher_follows_the_spec() {
        assert!(matches("#", "t/a"));
        assert!(matches("t/#", "t"));
        assert!(matches("t/#", "t/a/b"));
        assert!(matches("t/+", "t/a"));
        assert!(matches("t/+", "t/"));
        assert!(!matches("t/+", "t"));
        assert!(!matches("t/+", "t/a/b"));
        assert!(matches("+/a", "t/a"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(!matches("t", "t/a"));
        assert!(!matches("t/a", "t"));
    }
}
