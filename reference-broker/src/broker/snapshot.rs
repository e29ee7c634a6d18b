//! What survives a restart: sessions (client id, protocol, expiry,
//! subscriptions with their options and identifiers, queued and in-flight
//! QoS 1/2 messages with packet ids and states, QoS 2 ids awaiting PUBREL)
//! and retained messages.
//!
//! The core only turns its state into a [`Snapshot`] and back; the tokio
//! layer decides when to write it and where (see `server::persist`). Time
//! is carried as wall-clock milliseconds since the Unix epoch, because an
//! `Instant` means nothing to the next process: the caller passes both
//! clocks, so the core still reads none.
//!
//! Format: JSON (serde), one object with a `format` version. JSON because a
//! person can read and repair it, serde checks its shape (unknown fields are
//! errors), and its size is dominated by payloads either way. Each message is
//! kept as the MQTT 5.0 encoding of its PUBLISH packet (base64), written and
//! read back by the codec: the one parser checks every field, property and
//! size of a stored message exactly as it would one from the network.
//!
//! Delayed wills (a will waiting for its Will Delay Interval) are kept and
//! published when due. Not persisted: connections (every session is offline
//! after a restart and its expiry runs from the restart), the wills of
//! connections still open at the snapshot (a restart is not their client's
//! failure), shared subscription round-robin positions.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    topic, ByteString, DecodeOptions, Decoder, Packet, Properties, Property, Protocol, Publish,
    QoS, Sender, SubscriptionOptions,
};
use serde::{Deserialize, Serialize};

use super::{
    Broker, Flow, FlowBox, Message, OutFlight, OutState, PendingWill, Session, Subscription,
};

/// The snapshot format this code writes; it reads 1 too (no entry
/// numbers, no journal after it).
pub const FORMAT: u32 = 2;

/// The broker's durable state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: u32,
    /// Next number for an assigned client id (so new ones never collide).
    pub next_assigned: u64,
    pub sessions: Vec<SessionState>,
    pub retained: Vec<StoredMessage>,
    /// Generation of the journal that continues this snapshot
    /// (`journal.N` beside it; see `server::persist`).
    #[serde(default)]
    pub journal: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionState {
    pub client_id: String,
    /// Protocol level: 3 (3.1), 4 (3.1.1) or 5.
    pub protocol: u8,
    /// Session Expiry Interval in seconds (4294967295: never).
    pub expiry: u32,
    /// When an offline session ends (Unix ms); none while it was connected
    /// (its expiry then runs from the restart) or when it never ends.
    pub expires_at_ms: Option<u64>,
    pub user: Option<String>,
    pub subscriptions: Vec<SubscriptionState>,
    pub inflight: Vec<InflightState>,
    pub queue: Vec<QueuedState>,
    /// QoS 2 packet ids acknowledged with PUBREC, awaiting PUBREL.
    pub incoming_qos2: Vec<u16>,
    pub next_packet_id: u16,
    /// A will waiting for its delay (Will Delay Interval) to pass.
    #[serde(default)]
    pub pending_will: Option<PendingWillState>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PendingWillState {
    pub message: StoredMessage,
    /// When it is to be published (Unix ms).
    pub at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionState {
    pub filter: String,
    pub qos: u8,
    #[serde(default)]
    pub no_local: bool,
    #[serde(default)]
    pub retain_as_published: bool,
    #[serde(default)]
    pub retain_handling: u8,
    pub id: Option<u32>,
}

/// A QoS 1/2 message sent and not yet fully acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InflightState {
    /// The message's entry number (see `Broker::next_seq`); 0 in format 1.
    #[serde(default)]
    pub seq: u64,
    pub packet_id: u16,
    /// `publish`: waiting for PUBACK / PUBREC; `release`: PUBREL sent, waiting for PUBCOMP.
    pub state: String,
    /// The PUBLISH as sent (5.0 encoding, base64).
    pub publish: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueuedState {
    /// The message's entry number (see `Broker::next_seq`); 0 in format 1.
    #[serde(default)]
    pub seq: u64,
    pub message: StoredMessage,
    /// Granted QoS and options of the subscription it came through.
    pub qos: u8,
    #[serde(default)]
    pub retain_as_published: bool,
    #[serde(default)]
    pub subscription_ids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoredMessage {
    /// Topic, payload, QoS, retain and properties as a 5.0 PUBLISH (base64).
    pub publish: String,
    /// Message expiry (Unix ms).
    pub expires_at_ms: Option<u64>,
    /// Client id of the publisher (No Local).
    pub origin: Option<String>,
}

/// Both clocks at one moment: the core's `Instant` and the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    pub now: Instant,
    pub wall: SystemTime,
}

impl Clocks {
    fn wall_ms(&self) -> u64 {
        u64::try_from(
            self.wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX)
    }

    /// The wall-clock time of `at`, past or future: the same whenever it is
    /// asked (a past instant is not "now", or a journal's record of it
    /// would differ from a later snapshot's).
    pub(super) fn ms_of(&self, at: Instant) -> u64 {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match at.checked_duration_since(self.now) {
            Some(ahead) => self.wall_ms().saturating_add(ms(ahead)),
            None => self
                .wall_ms()
                .saturating_sub(ms(self.now.saturating_duration_since(at))),
        }
    }

    /// Past instants come back as `now`: expired, reaped at the next tick.
    fn instant_of(&self, ms: u64) -> Instant {
        let ahead = Duration::from_millis(ms.saturating_sub(self.wall_ms()));
        self.now.checked_add(ahead).unwrap_or(self.now)
    }
}

fn encode_publish(p: &Publish) -> String {
    let mut out = Vec::new();
    append_publish_base64(&mut out, &mut BytesMut::new(), p);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `p`, encoded as a 5.0 PUBLISH, in base64 to `out`; `scratch`
/// holds the encoding on the way (kept by a caller that does this often).
/// A message the core holds always encodes (it was decoded or built by
/// it); if one did not, nothing is appended, which replay refuses.
pub(super) fn append_publish_base64(out: &mut Vec<u8>, scratch: &mut BytesMut, p: &Publish) {
    scratch.clear();
    if mqtt_codec::encode(&Packet::Publish(p.clone()), Protocol::V5, scratch).is_err() {
        return;
    }
    let start = out.len();
    out.resize(
        start + base64::encoded_len(scratch.len(), true).unwrap_or(0),
        0,
    );
    let written = B64
        .encode_slice(&scratch[..], &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

pub(super) fn decode_publish(text: &str, max_packet_size: u32) -> Result<Publish, String> {
    let bytes = B64
        .decode(text)
        .map_err(|e| format!("not valid base64: {e}"))?;
    if bytes.len() > max_packet_size as usize {
        return Err(format!(
            "{} bytes, more than the {max_packet_size} allowed",
            bytes.len()
        ));
    }
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = Decoder::new(
        DecodeOptions::new(Protocol::V5, Sender::Server).with_max_packet_size(max_packet_size),
    );
    match decoder.decode(&mut buf) {
        Ok(Some(Packet::Publish(p))) if buf.is_empty() => Ok(p),
        Ok(Some(_)) => Err("not exactly one PUBLISH packet".into()),
        Ok(None) => Err("a truncated PUBLISH packet".into()),
        Err(e) => Err(format!("not a valid PUBLISH: {e}")),
    }
}

impl Message {
    /// The PUBLISH a stored message is kept as.
    pub(super) fn stored_publish(&self) -> Publish {
        Publish {
            dup: false,
            qos: self.qos,
            retain: self.retain,
            topic: self.topic.clone(),
            packet_id: if self.qos == QoS::AtMostOnce { 0 } else { 1 },
            properties: self.properties.clone(),
            payload: self.payload.clone(),
        }
    }

    pub(super) fn stored(&self, clocks: &Clocks) -> StoredMessage {
        StoredMessage {
            publish: encode_publish(&self.stored_publish()),
            expires_at_ms: self.expires_at.map(|at| clocks.ms_of(at)),
            origin: self.origin.as_ref().map(|o| o.to_string()),
        }
    }

    fn restored(s: StoredMessage, clocks: &Clocks, max: u32) -> Result<Message, String> {
        let p = decode_publish(&s.publish, max)?;
        if p.topic.is_empty() {
            return Err("a message without a topic".into());
        }
        Ok(Message {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            properties: p.properties,
            expires_at: s.expires_at_ms.map(|ms| clocks.instant_of(ms)),
            origin: s.origin.map(ByteString::from),
            seq: 0,
        })
    }
}

/// What a session keeps (see [`SessionState`]); its messages only with
/// `messages` (the journal logs them one by one).
pub(super) fn session_state(
    cid: &str,
    s: &Session,
    clocks: &Clocks,
    messages: bool,
) -> SessionState {
    SessionState {
        client_id: cid.to_string(),
        protocol: s.protocol.level(),
        expiry: s.expiry,
        expires_at_ms: s
            .expires_at
            .filter(|_| s.conn().is_none())
            .map(|at| clocks.ms_of(at)),
        user: s.user.as_ref().map(|u| u.to_string()),
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(f, sub)| SubscriptionState {
                filter: f.to_string(),
                qos: sub.options.qos.as_u8(),
                no_local: sub.options.no_local,
                retain_as_published: sub.options.retain_as_published,
                retain_handling: sub.options.retain_handling,
                id: sub.id,
            })
            .collect(),
        inflight: if messages {
            let mut all: Vec<InflightState> = s
                .flow
                .inflight
                .iter()
                .map(|(&id, f)| inflight_state(id, f))
                .collect();
            all.sort_unstable_by_key(|f| f.packet_id);
            all
        } else {
            Vec::new()
        },
        queue: if messages {
            s.flow
                .queue
                .iter()
                .map(|q| queued_state(q, clocks))
                .collect()
        } else {
            Vec::new()
        },
        incoming_qos2: {
            let mut ids: Vec<u16> = s.flow.incoming_qos2.iter().copied().collect();
            ids.sort_unstable();
            ids
        },
        next_packet_id: s.next_packet_id,
        pending_will: s.pending_will.as_ref().map(|w| PendingWillState {
            message: w.message.stored(clocks),
            at_ms: clocks.ms_of(w.at),
        }),
    }
}

pub(super) fn inflight_state(id: u16, f: &OutFlight) -> InflightState {
    InflightState {
        seq: f.seq,
        packet_id: id,
        state: match f.state {
            OutState::Publish(_) => "publish".into(),
            OutState::Release => "release".into(),
        },
        publish: encode_publish(&f.packet),
    }
}

/// The PUBLISH that delivers a queued message when nothing but the
/// receiving connection's version shapes it (no expiry to count down, no
/// deliberate violation): its properties for a 5.0 connection, with the
/// matching subscriptions' identifiers (MQTT-3.3.4-3), none for 3.x. The
/// core sends this, and replay rebuilds it from the queued record when the
/// journal says only that the message was sent (`Record::Sent`).
#[allow(clippy::too_many_arguments)] // the parts of a message, as both callers hold them
pub(super) fn plain_publish(
    qos: QoS,
    retain: bool,
    topic: ByteString,
    properties: &Properties,
    payload: Bytes,
    ids: &[u32],
    v5: bool,
) -> Publish {
    let mut out = Properties::new();
    if v5 {
        for prop in properties.iter() {
            // Without an expiry the message has no interval to forward.
            if !matches!(prop, Property::MessageExpiryInterval(_)) {
                out.push(prop.clone());
            }
        }
        for &id in ids {
            out.push(Property::SubscriptionIdentifier(id));
        }
    }
    Publish {
        dup: false,
        qos,
        retain,
        topic,
        packet_id: 0,
        properties: out,
        payload,
    }
}

/// The in-flight entry a queued one becomes when it is sent under
/// `packet_id` to a connection of version 5.0 (`v5`) or 3.x, as
/// [`plain_publish`] builds it.
pub(super) fn sent_state(
    q: &QueuedState,
    packet_id: u16,
    v5: bool,
) -> Result<InflightState, String> {
    let p = decode_publish(&q.message.publish, u32::MAX)?;
    let mut sent = plain_publish(
        p.qos,
        p.retain,
        p.topic,
        &p.properties,
        p.payload,
        &q.subscription_ids,
        v5,
    );
    sent.packet_id = packet_id;
    Ok(InflightState {
        seq: q.seq,
        packet_id,
        state: "publish".into(),
        publish: encode_publish(&sent),
    })
}

pub(super) fn queued_state(
    (m, opts, ids): &(Message, SubscriptionOptions, Vec<u32>),
    clocks: &Clocks,
) -> QueuedState {
    QueuedState {
        seq: m.seq,
        message: m.stored(clocks),
        qos: opts.qos.as_u8(),
        retain_as_published: opts.retain_as_published,
        subscription_ids: ids.clone(),
    }
}

fn qos(v: u8) -> Result<QoS, String> {
    QoS::from_u8(v).ok_or_else(|| format!("QoS {v} is not 0, 1 or 2"))
}

impl Broker {
    /// The durable state at `clocks`. Sessions that end with their
    /// connection (expiry 0) are left out: a restart ends them anyway.
    pub fn snapshot(&self, clocks: Clocks) -> Snapshot {
        let mut sessions: Vec<SessionState> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expiry > 0)
            .map(|(cid, s)| session_state(cid, s, &clocks, true))
            .collect();
        sessions.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Snapshot {
            format: FORMAT,
            journal: 0,
            next_assigned: self.next_assigned,
            sessions,
            retained: self.retained.values().map(|m| m.stored(&clocks)).collect(),
        }
    }

    /// Replaces sessions and retained messages with the snapshot's. Every
    /// entry is checked against this broker's limits; the first problem is
    /// returned and nothing is changed.
    pub fn restore(&mut self, snapshot: Snapshot, clocks: Clocks) -> Result<(), String> {
        if snapshot.format != FORMAT && snapshot.format != 1 {
            return Err(format!(
                "format {} is not the one this broker reads ({FORMAT})",
                snapshot.format
            ));
        }
        // Stored messages are 5.0 encodings of what came in under the packet
        // size limit, perhaps as 3.1.1: allow for the properties added since
        // (property length, subscription identifiers).
        let max = self.config.max_packet_size.saturating_add(64 * 1024);
        let mut sessions = HashMap::new();
        for s in snapshot.sessions {
            let cid = s.client_id.clone();
            let session = self
                .restore_session(s, &clocks, max)
                .map_err(|e| format!("session {cid:?}: {e}"))?;
            if sessions
                .insert(ByteString::from(cid.clone()), Box::new(session))
                .is_some()
            {
                return Err(format!("session {cid:?} appears twice"));
            }
        }
        let mut retained = BTreeMap::new();
        for (i, r) in snapshot.retained.into_iter().enumerate() {
            let m = Message::restored(r, &clocks, max)
                .map_err(|e| format!("retained message {}: {e}", i + 1))?;
            topic::validate_name(&m.topic).map_err(|e| {
                format!(
                    "retained message {}: topic {:?}: {}",
                    i + 1,
                    &*m.topic,
                    e.describe()
                )
            })?;
            retained.insert(m.topic.clone(), m);
        }
        // Format 1 has no entry numbers: number its messages now. Numbers
        // go on from the highest kept, so that none is used twice.
        let mut next = 1 + sessions
            .values()
            .flat_map(|s| {
                let queued = s.flow.queue.iter().map(|(m, ..)| m.seq);
                s.flow.inflight.values().map(|f| f.seq).chain(queued)
            })
            .max()
            .unwrap_or(0);
        for s in sessions.values_mut() {
            // In identifier order: the order format 1 kept them in.
            let mut ids: Vec<u16> = s.flow.inflight.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                if let Some(f) = s.flow.inflight.get_mut(&id).filter(|f| f.seq == 0) {
                    f.seq = next;
                    next += 1;
                }
            }
            for (m, ..) in s.flow.queue.iter_mut().filter(|(m, ..)| m.seq == 0) {
                m.seq = next;
                next += 1;
            }
        }
        self.next_seq = self.next_seq.max(next);
        self.sessions.replace(sessions);
        self.routes.invalidate();
        self.retained = retained;
        self.next_assigned = self.next_assigned.max(snapshot.next_assigned);
        Ok(())
    }

    fn restore_session(
        &self,
        s: SessionState,
        clocks: &Clocks,
        max: u32,
    ) -> Result<Session, String> {
        if s.client_id.is_empty() || s.client_id.len() > 65535 {
            return Err("a client id must be 1 to 65535 bytes".into());
        }
        let protocol = Protocol::from_level(s.protocol)
            .ok_or_else(|| format!("protocol level {} is not 3, 4 or 5", s.protocol))?;
        if s.subscriptions.len() > self.config.max_subscriptions_per_client {
            return Err(format!(
                "{} subscriptions, more than max_subscriptions_per_client",
                s.subscriptions.len()
            ));
        }
        let mut subscriptions = BTreeMap::new();
        for sub in s.subscriptions {
            topic::validate_filter(&sub.filter, true)
                .map_err(|e| format!("filter {:?}: {}", sub.filter, e.describe()))?;
            if sub.retain_handling > 2 {
                return Err(format!(
                    "filter {:?}: retain handling {} is not 0, 1 or 2",
                    sub.filter, sub.retain_handling
                ));
            }
            let options = SubscriptionOptions {
                qos: qos(sub.qos)?,
                no_local: sub.no_local,
                retain_as_published: sub.retain_as_published,
                retain_handling: sub.retain_handling,
            };
            subscriptions.insert(
                ByteString::from(sub.filter),
                Subscription {
                    options,
                    id: sub.id,
                },
            );
        }
        let mut inflight = super::Inflight::default();
        for f in s.inflight {
            let id = f.packet_id;
            let packet = decode_publish(&f.publish, max)
                .map_err(|e| format!("in-flight message {id}: {e}"))?;
            let state = match f.state.as_str() {
                "publish" if packet.qos != QoS::AtMostOnce => OutState::Publish(packet.qos),
                "release" if packet.qos == QoS::ExactlyOnce => OutState::Release,
                other => {
                    return Err(format!(
                        "in-flight message {id}: state {other:?} does not fit QoS {}",
                        packet.qos.as_u8()
                    ))
                }
            };
            if id == 0 || packet.packet_id != id {
                return Err(format!("in-flight message {id}: bad packet identifier"));
            }
            let seq = f.seq;
            if inflight
                .insert(
                    id,
                    OutFlight {
                        packet,
                        state,
                        seq,
                        plain: None,
                    },
                )
                .is_some()
            {
                return Err(format!("in-flight packet identifier {id} appears twice"));
            }
        }
        if s.queue.len() > self.config.max_queued_messages {
            return Err(format!(
                "{} queued messages, more than max_queued_messages",
                s.queue.len()
            ));
        }
        let mut queue = VecDeque::with_capacity(s.queue.len());
        for (i, q) in s.queue.into_iter().enumerate() {
            let mut m = Message::restored(q.message, clocks, max)
                .map_err(|e| format!("queued message {}: {e}", i + 1))?;
            m.seq = q.seq;
            let options = SubscriptionOptions {
                qos: qos(q.qos)?,
                retain_as_published: q.retain_as_published,
                ..SubscriptionOptions::default()
            };
            queue.push_back((m, options, q.subscription_ids));
        }
        if s.incoming_qos2.contains(&0) {
            return Err("packet identifier 0 awaiting PUBREL".into());
        }
        let incoming_qos2: HashSet<u16, _> = s.incoming_qos2.into_iter().collect();
        let pending_will = match s.pending_will {
            Some(w) => Some(PendingWill {
                message: Message::restored(w.message, clocks, max)
                    .map_err(|e| format!("pending will: {e}"))?,
                at: clocks.instant_of(w.at_ms),
            }),
            None => None,
        };
        Ok(Session {
            online: None,
            protocol,
            expiry: s.expiry,
            // Offline from the restart on, if it was connected at the snapshot.
            expires_at: match s.expires_at_ms {
                Some(ms) => Some(clocks.instant_of(ms)),
                None => super::expiry_instant(clocks.now, s.expiry),
            },
            subscriptions,
            flow: {
                let mut flow = FlowBox(Some(Box::new(Flow {
                    inflight,
                    resend: Default::default(),
                    queue,
                    incoming_qos2,
                })));
                flow.compact();
                flow
            },
            next_packet_id: s.next_packet_id.max(1),
            pending_will: pending_will.map(Box::new),
            user: s.user.map(ByteString::from),
        })
    }
}

impl Snapshot {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a snapshot file's bytes (the caller bounds their size).
    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "not a valid snapshot (line {}, column {}): {e}",
                e.line(),
                e.column()
            )
        })
    }
}
