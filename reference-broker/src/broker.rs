//! The sans-IO protocol core: sessions, subscriptions, retained messages,
//! delivery and timers. It owns no socket and reads no clock: each call takes
//! `now`, and [`Broker::poll_timeout`] says when to call [`Broker::tick`]
//! next. The tokio layer (`server`) and the tests drive the same core.
//!
//! # Flow control: what waits, what may be dropped
//!
//! A session queues what its receive window (Receive Maximum, or
//! `max_inflight` for 3.x) cannot take yet, up to `max_queued_messages`.
//! When the queue of a *connected* session reaches that limit, the core
//! keeps every QoS 1/2 message and pauses the connection whose message
//! filled it: [`Broker::paused`] tells the I/O layer to stop feeding that
//! connection's PUBLISH packets (acknowledgements and pings still pass, so
//! two clients publishing to each other cannot lock each other out), and
//! [`Broker::poll_resumed`] names it again once every session it waits for
//! is below its limit or offline. Stopping the reading, rather than
//! withholding PUBACK, works the same for 3.x clients (which have no
//! Receive Maximum) and for QoS 0 publishers, keeps the core free of I/O
//! (it only says who waits), and bounds a queue by its limit plus one
//! message per publishing connection, whatever their rate; the TCP window
//! then slows the publisher. QoS 0 messages may be dropped at the limit
//! (oldest first), and so may any message for an *offline* session, as
//! the spec allows; every drop is counted in [`Counters`] and logged.
//!
//! Why one file of 2,400 lines: the core's state machine, whose handlers share
//! one `Broker` and its private invariants, grew here; `broker/` already holds
//! the parts that stand alone (routes, authentication, snapshots). Splitting
//! the packet handlers by concern (connect, publish, subscribe, sessions) is
//! the next clean-up, not done in this round.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::reason;
use mqtt_codec::topic;
use mqtt_codec::{
    ByteString, ConnAck, Connect, DecodeError, Disconnect, ErrorKind, Packet, PacketType,
    Properties, Property, Protocol, PubResponse, Publish, QoS, SubAck, Subscribe,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};

use crate::config::Config;

mod authn;
pub mod journal;
mod routes;
mod snapshot;
use journal::Sessions;
pub use journal::{Journal, Record};
pub use snapshot::{Clocks, Snapshot};

/// A network connection, as numbered by the broker.
pub type ConnId = u64;

/// Whether a paused connection's `packet` is handed to the core all the
/// same: acknowledgements of what the broker sent and pings, so that the
/// queues the connection waits for can drain and it is not taken for dead.
/// Everything else, and whatever follows a held packet, waits. The tokio
/// layer holds them; the fuzz harness, which models it, never reads them.
pub fn passes_pause(packet: &Packet) -> bool {
    matches!(
        packet,
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) | Packet::PingReq
    )
}

/// Hashes numbers the broker chooses itself: [`ConnId`]s, counted up from
/// one, and the packet identifiers of the messages it sends. No client
/// picks them, so the collisions a keyed hasher guards against cannot be
/// provoked; SipHash on connection numbers was about 5% of the CPU of a
/// QoS 1 fan-out (every packet sent looks its connection up two or three
/// times). One multiplication by an odd constant maps consecutive numbers
/// to distinct low bits (the bucket) and mixes them into the high bits (the
/// table's tag byte).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type ById = std::hash::BuildHasherDefault<IdHasher>;
/// A map keyed by connection (see [`IdHasher`]).
pub type ConnMap<V> = HashMap<ConnId, V, ById>;
/// A set of connections (see [`IdHasher`]).
pub type ConnSet = HashSet<ConnId, ById>;
/// A session's messages in flight, by packet identifier. A hash table, not
/// a B-tree: a B-tree node shifts its neighbours' whole entries (each a
/// PUBLISH) on every insertion and removal, which were 10% of a QoS 1
/// fan-out's CPU. Nothing takes them in identifier order (resending goes
/// by entry number, MQTT-4.6.0-1; a snapshot sorts them).
type Inflight = HashMap<u16, OutFlight, ById>;
/// Packet identifiers or topic aliases a client chose, by [`IdHasher`] all
/// the same (16 bytes less per connection than SipHash's keys): a client
/// can make at most a few hundred of its 65,535 numbers share a table's
/// low bits, which the table's tag bytes still tell apart.
type ClientNumbers<V> = HashMap<u16, V, ById>;

/// What the I/O layer must do.
// `Send` is large and `Close` tiny; actions are short-lived and moved once,
// so boxing every packet would cost an allocation per send for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Encode `packet` for `protocol` and send it on `conn`.
    Send {
        conn: ConnId,
        protocol: Protocol,
        packet: Packet,
    },
    /// Close `conn` once what was sent before is flushed.
    Close { conn: ConnId },
}

/// What the I/O layer does with a packet the decoder refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// The connection is being closed (actions say how).
    Close,
    /// Skip the refused packet and carry on (only under a deliberate violation).
    Skip,
}

/// What the core counts about flow control, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// QoS 0 messages dropped from, or not admitted to, a full session queue.
    pub dropped_qos0: u64,
    /// QoS 1/2 messages dropped from the full queue of an offline session.
    pub dropped_offline: u64,
    /// Times a connection was paused because a session its message went to was full.
    pub publisher_pauses: u64,
    /// The longest any session's queue has been.
    pub queue_high_water: usize,
}

/// An application message as the broker holds it.
#[derive(Debug, Clone)]
struct Message {
    topic: ByteString,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    /// Properties to forward (without Topic Alias and Subscription Identifiers).
    properties: Properties,
    /// When the message expires (5.0 Message Expiry Interval).
    expires_at: Option<Instant>,
    /// Client id of the publisher, for No Local.
    origin: Option<ByteString>,
    /// A session's queue entry number (see [`Broker::next_seq`]); 0 elsewhere.
    seq: u64,
}

#[derive(Debug, Clone)]
struct Subscription {
    options: SubscriptionOptions,
    id: Option<u32>,
}

#[derive(Debug, Clone)]
enum OutState {
    /// QoS 1 PUBLISH sent, waiting for PUBACK; or QoS 2 waiting for PUBREC.
    Publish(QoS),
    /// QoS 2 PUBREL sent, waiting for PUBCOMP.
    Release,
}

#[derive(Debug, Clone)]
struct OutFlight {
    packet: Publish,
    state: OutState,
    /// The entry number it had in the queue (the journal's key for it).
    seq: u64,
    /// Built from its queued message by [`snapshot::plain_publish`] for a
    /// 5.0 (`Some(true)`) or 3.x (`Some(false)`) connection, so that the
    /// journal can name it instead of writing it again; `None`: built
    /// otherwise (an expiry to count down, a deliberate violation) or restored.
    plain: Option<bool>,
}

/// A delayed will.
#[derive(Debug, Clone)]
struct PendingWill {
    message: Message,
    at: Instant,
}

#[derive(Debug)]
struct Session {
    /// Its connection, if online (see [`Session::conn`]; connection
    /// numbers start at 1, and the niche keeps a session in the 112-byte
    /// size class).
    online: Option<std::num::NonZeroU64>,
    protocol: Protocol,
    /// Seconds the session outlives its connection (u32::MAX: forever).
    expiry: u32,
    expires_at: Option<Instant>,
    subscriptions: BTreeMap<ByteString, Subscription>,
    flow: FlowBox,
    next_packet_id: u16,
    pending_will: Option<Box<PendingWill>>,
    /// User name of the last connection, for the ACL on delivery.
    user: Option<ByteString>,
}

/// What a session has in flight and queued, in both directions.
#[derive(Debug, Default)]
struct Flow {
    inflight: Inflight,
    /// In-flight ids still owed a resend on the current connection, in
    /// order: after a resume, those past the client's Receive Maximum wait
    /// for acknowledgements like new messages do (MQTT-3.3.4-9).
    resend: VecDeque<u16>,
    queue: VecDeque<(Message, SubscriptionOptions, Vec<u32>)>,
    /// QoS 2 packet ids received and acknowledged with PUBREC, awaiting PUBREL.
    incoming_qos2: HashSet<u16, ById>,
}

impl Flow {
    fn is_empty(&self) -> bool {
        self.inflight.is_empty()
            && self.resend.is_empty()
            && self.queue.is_empty()
            && self.incoming_qos2.is_empty()
    }
}

/// What an idle session has none of.
static NO_FLOW: Flow = Flow {
    inflight: HashMap::with_hasher(ById::new()),
    resend: VecDeque::new(),
    queue: VecDeque::new(),
    incoming_qos2: HashSet::with_hasher(ById::new()),
};

/// A session's [`Flow`], boxed: allocated when first changed, given back
/// by [`Broker::compact`] once empty. Inline it is 128 bytes of empty
/// tables in every idle session (half of what the session costs); read
/// while there is none, it is [`NO_FLOW`].
#[derive(Debug, Default)]
struct FlowBox(Option<Box<Flow>>);

impl std::ops::Deref for FlowBox {
    type Target = Flow;

    fn deref(&self) -> &Flow {
        self.0.as_deref().unwrap_or(&NO_FLOW)
    }
}

impl std::ops::DerefMut for FlowBox {
    fn deref_mut(&mut self) -> &mut Flow {
        self.0.get_or_insert_with(Box::default)
    }
}

impl FlowBox {
    /// Owes no resend, without making a box to say so.
    fn compact_resend(&mut self) {
        if let Some(flow) = &mut self.0 {
            flow.resend.clear();
        }
    }

    /// Gives the box back if nothing is in it.
    fn compact(&mut self) {
        if self.0.as_deref().is_some_and(Flow::is_empty) {
            self.0 = None;
        }
    }
}

#[derive(Debug)]
enum ConnState {
    /// Waiting for CONNECT until the deadline.
    AwaitConnect {
        deadline: Instant,
    },
    Connected {
        client_id: ByteString,
    },
    /// CONNECT refused or connection being closed: further input is ignored (MQTT-3.1.4-5).
    Closing,
}

#[derive(Debug)]
struct Conn {
    state: ConnState,
    protocol: Protocol,
    /// Seconds, 0 for none (see [`Conn::keep_alive`]).
    keep_alive_secs: u16,
    last_packet: Instant,
    /// The client's Maximum Packet Size (5.0).
    /// (0 is a protocol error in CONNECT, which the decoder refuses.)
    max_packet: Option<std::num::NonZeroU32>,
    /// The client's Receive Maximum (5.0) or our in-flight limit (3.x).
    send_quota: u16,
    /// Topic aliases the client set on this connection (MQTT-3.3.2-7: per connection).
    aliases: ClientNumbers<ByteString>,
    request_problem_information: bool,
    // Boxed, as are the will of a session and a SCRAM exchange: most
    // connections have none, and every one would carry the room.
    will: Option<Box<(Message, u32)>>,
    /// Session expiry from CONNECT, for the DISCONNECT rule.
    connect_session_expiry: u32,
    /// Authentication state: user, method, a SCRAM exchange under way.
    auth: crate::auth::ConnAuth,
}

impl Session {
    fn conn(&self) -> Option<ConnId> {
        self.online.map(|c| c.get())
    }

    fn set_conn(&mut self, conn: Option<ConnId>) {
        self.online = conn.and_then(std::num::NonZeroU64::new);
    }
}

impl Conn {
    /// The client's Maximum Packet Size (5.0), if it gave one.
    fn max_packet_size(&self) -> Option<u32> {
        self.max_packet.map(|m| m.get())
    }

    /// The keep alive in force, if any.
    fn keep_alive(&self) -> Option<Duration> {
        (self.keep_alive_secs > 0).then(|| Duration::from_secs(u64::from(self.keep_alive_secs)))
    }
}

/// Every session, by client id (boxed, as `Broker::conns` says why).
type SessionMap = HashMap<ByteString, Box<Session>>;

/// The broker core.
#[derive(Debug)]
pub struct Broker {
    config: Config,
    // Boxed: a table keeps room for up to twice its entries, which at a
    // few hundred bytes each would be most of what an idle connection costs.
    conns: ConnMap<Box<Conn>>,
    sessions: Sessions,
    retained: BTreeMap<ByteString, Message>,
    /// Retained topics changed since the journal last looked (only while
    /// a journal is kept, see `journal.rs`).
    retained_changed: Option<HashSet<ByteString>>,
    /// Number of the next message a session queues: unique for the
    /// broker's life and across restarts, so that the journal can name
    /// a session's messages (`journal.rs`).
    next_seq: u64,
    /// Round-robin counters of shared subscription groups.
    share_cursor: HashMap<(String, String), usize>,
    /// Which sessions a topic can concern (see routes.rs).
    routes: routes::Routes,
    /// Inbound topic aliases kept per client id, only under the MQTT-3.3.2-7 violation.
    kept_aliases: HashMap<ByteString, ClientNumbers<ByteString>>,
    /// Expiry of QoS 2 messages sent, kept only under the MQTT-4.3.3-7 violation.
    expiring_out: HashMap<(ByteString, u16), Instant>,
    /// Expiry of QoS 2 messages received, kept only under the MQTT-4.3.3-13 violation.
    expiring_in: HashMap<(ByteString, u16), Instant>,
    /// Wills kept per client id, only under the MQTT-3.1.2-12 violation.
    stale_wills: HashMap<ByteString, (Message, u32)>,
    next_conn: ConnId,
    next_assigned: u64,
    actions: VecDeque<Action>,
    /// Set by [`Broker::shutdown`]: no connection is accepted after it.
    shutting_down: bool,
    /// Full queues of connected sessions → the connections paused for them.
    stalled: HashMap<ByteString, ConnSet>,
    /// Paused connections → how many full sessions each waits for.
    waiting: ConnMap<usize>,
    /// Connections no longer paused, for [`Broker::poll_resumed`].
    resumed: VecDeque<ConnId>,
    /// Sessions dropping messages since their queue last had room (one log line per burst).
    dropping: HashSet<ByteString>,
    counters: Counters,
}

/// `s` in an allocation of its own, not a slice of the buffer it was
/// decoded from.
fn own(s: &ByteString) -> ByteString {
    ByteString::from(&**s)
}

fn expiry_instant(now: Instant, secs: u32) -> Option<Instant> {
    if secs == u32::MAX {
        None
    } else {
        now.checked_add(Duration::from_secs(u64::from(secs)))
    }
}

impl Broker {
    pub fn new(config: Config) -> Broker {
        Broker {
            config,
            conns: ConnMap::default(),
            sessions: Sessions::default(),
            retained: BTreeMap::new(),
            retained_changed: None,
            next_seq: 1,
            share_cursor: HashMap::new(),
            kept_aliases: HashMap::new(),
            expiring_out: HashMap::new(),
            expiring_in: HashMap::new(),
            stale_wills: HashMap::new(),
            next_conn: 1,
            next_assigned: 1,
            actions: VecDeque::new(),
            routes: routes::Routes::default(),
            shutting_down: false,
            stalled: HashMap::new(),
            waiting: ConnMap::default(),
            resumed: VecDeque::new(),
            dropping: HashSet::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn breaks(&self, id: &str) -> bool {
        self.config.violations.breaks(id)
    }

    /// The next action for the I/O layer.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// What the core has counted about flow control (see the module docs).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Messages queued for `client_id`'s session, beyond its receive window.
    pub fn queued(&self, client_id: &str) -> usize {
        self.sessions
            .get(client_id)
            .map_or(0, |s| s.flow.queue.len())
    }

    /// Whether the packets of `conn` are to wait (all but those
    /// [`passes_pause`] lets through): a session one of its messages went
    /// to is full (see the module docs). The core still handles what it is
    /// given; holding back is the I/O layer's part.
    pub fn paused(&self, conn: ConnId) -> bool {
        !self.waiting.is_empty() && self.waiting.contains_key(&conn)
    }

    /// The next connection that was paused and no longer is.
    pub fn poll_resumed(&mut self) -> Option<ConnId> {
        self.resumed.pop_front()
    }

    /// Pauses `conn` until `cid`'s queue has room.
    fn pause(&mut self, conn: ConnId, cid: &ByteString) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if self.stalled.entry(cid.clone()).or_default().insert(conn) {
            let n = self.waiting.entry(conn).or_insert(0);
            if *n == 0 {
                self.counters.publisher_pauses += 1;
                tracing::debug!(conn, session = %cid, "session queue full, pausing publisher");
            }
            *n += 1;
        }
    }

    /// `cid`'s queue has room, or the session went offline: the connections
    /// paused for it and for nothing else resume.
    fn release(&mut self, cid: &ByteString, now: Instant) {
        let Some(conns) = self.stalled.remove(cid) else {
            return;
        };
        for conn in conns {
            let Some(n) = self.waiting.get_mut(&conn) else {
                continue;
            };
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&conn);
                self.resumed.push_back(conn);
                // Its keep alive did not run while it was paused.
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.last_packet = now;
                }
            }
        }
    }

    /// Counts and logs a message dropped for `cid`'s full queue.
    fn count_drop(&mut self, cid: &ByteString, qos: QoS, online: bool) {
        if qos == QoS::AtMostOnce {
            self.counters.dropped_qos0 += 1;
        } else {
            self.counters.dropped_offline += 1;
        }
        let total = self.counters.dropped_qos0 + self.counters.dropped_offline;
        if self.dropping.insert(cid.clone()) {
            tracing::info!(session = %cid, online, total, "session queue full, dropping messages");
        } else {
            tracing::debug!(session = %cid, ?qos, online, total, "dropped a queued message");
        }
    }

    /// A new network connection. `None` when the connection limit is reached
    /// (the I/O layer closes it at once).
    pub fn open(&mut self, now: Instant) -> Option<ConnId> {
        if self.shutting_down || self.conns.len() >= self.config.max_connections {
            return None;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let deadline = now + self.config.connect_timeout;
        self.conns.insert(
            id,
            Box::new(Conn {
                state: ConnState::AwaitConnect { deadline },
                protocol: Protocol::V3_1_1,
                keep_alive_secs: 0,
                last_packet: now,
                max_packet: None,
                send_quota: self.config.max_inflight,
                aliases: ClientNumbers::default(),
                request_problem_information: true,
                will: None,
                connect_session_expiry: 0,
                auth: crate::auth::ConnAuth::Start,
            }),
        );
        Some(id)
    }

    fn send(&mut self, conn: ConnId, mut packet: Packet) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let protocol = c.protocol;
        // A session outlives its connection and may be resumed in another
        // version: a message put in flight towards a 5.0 connection is resent
        // to a 3.1.1 one without the properties that version cannot carry.
        if let Packet::Publish(p) = &mut packet {
            if !protocol.is_v5() && !p.properties.is_empty() {
                p.properties = Properties::new();
            }
        }
        // MQTT-3.2.2-19/20, 3.14.2-3/4, 3.15.2-2/3: a Reason String or User
        // Property only where it keeps the packet within the client's Maximum
        // Packet Size; we send none. The violation puts a long one on every
        // CONNACK, DISCONNECT and AUTH, and sends them whatever their size.
        // MQTT-3.4.2-2/3, 3.5.2-2/3, 3.6.2-2/3, 3.7.2-2/3, 3.9.2-1/2,
        // 3.11.2-1/2: the same for the acknowledgements, under a violation
        // of their own.
        let v = &self.config.violations;
        let bloat = protocol.is_v5()
            && match packet {
                Packet::ConnAck(_) | Packet::Disconnect(_) | Packet::Auth(_) => {
                    v.breaks("MQTT-3.2.2-19")
                }
                Packet::PubAck(_)
                | Packet::PubRec(_)
                | Packet::PubRel(_)
                | Packet::PubComp(_)
                | Packet::SubAck(_)
                | Packet::UnsubAck(_) => v.breaks("MQTT-3.4.2-2"),
                _ => false,
            };
        if bloat {
            let props = match &mut packet {
                Packet::ConnAck(a) => &mut a.properties,
                Packet::Disconnect(d) => &mut d.properties,
                Packet::Auth(a) => &mut a.properties,
                Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                    &mut a.properties
                }
                Packet::SubAck(a) => &mut a.properties,
                Packet::UnsubAck(a) => &mut a.properties,
                _ => return,
            };
            props.push(Property::ReasonString(ByteString::from("x".repeat(1000))));
            props.push(Property::UserProperty(
                ByteString::from_static("why"),
                ByteString::from_static("no reason"),
            ));
        }
        // MQTT-3.1.2-24/25: never send more than the client accepts; a PUBLISH
        // that is too large is dropped as if delivered, a CONNACK or
        // DISCONNECT first loses what it may go without (`fit_client`).
        // (The violation above sends its bloated packet whatever its size.)
        if !bloat && !self.fit_client(conn, &mut packet) {
            return;
        }
        self.actions.push_back(Action::Send {
            conn,
            protocol,
            packet,
        });
    }

    /// Whether `packet` fits the client's Maximum Packet Size (MQTT-3.1.2-24),
    /// after a CONNACK or DISCONNECT that does not fit has lost what it may
    /// go without (so does an acknowledgement): Reason String and User Properties (MQTT-3.2.2-19/20,
    /// MQTT-3.14.2-3/4), then a CONNACK's Topic Alias Maximum, whose absence
    /// means 0 (the client sends no aliases, which the broker accepts just
    /// the same). Everything else a CONNACK carries changes what the client
    /// may do when absent (Receive Maximum, Maximum QoS, …) or is required
    /// (Assigned Client Identifier, authentication), so it stays; a packet
    /// that still does not fit is not sent.
    fn fit_client(&self, conn: ConnId, packet: &mut Packet) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let Some(max) = c
            .max_packet_size()
            .filter(|_| !self.config.violations.breaks("MQTT-3.1.2-25"))
        else {
            return true;
        };
        let protocol = c.protocol;
        let fits =
            |p: &Packet| mqtt_codec::encoded_len(p, protocol).is_ok_and(|len| len <= max as usize);
        if fits(packet) {
            return true;
        }
        let properties = match packet {
            Packet::ConnAck(a) => &mut a.properties,
            Packet::Disconnect(d) => &mut d.properties,
            // MQTT-3.4.2-2/3 … 3.11.2-1/2: an acknowledgement, too, loses its
            // Reason String and User Properties before it is left unsent.
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                &mut a.properties
            }
            Packet::SubAck(a) => &mut a.properties,
            Packet::UnsubAck(a) => &mut a.properties,
            _ => return false,
        };
        const REASON_STRING: u8 = 0x1F;
        const USER_PROPERTY: u8 = 0x26;
        const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
        properties.remove(REASON_STRING);
        properties.remove(USER_PROPERTY);
        if fits(packet) {
            return true;
        }
        if let Packet::ConnAck(a) = packet {
            a.properties.remove(TOPIC_ALIAS_MAXIMUM);
        }
        fits(packet)
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Closing;
        }
        self.actions.push_back(Action::Close { conn });
    }

    /// Ends a connection for a protocol violation: 5.0 clients get a DISCONNECT
    /// with `code` first (after CONNACK only, MQTT-3.14.0-1).
    fn disconnect(&mut self, conn: ConnId, code: u8, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.protocol.is_v5() && matches!(c.state, ConnState::Connected { .. }) {
            let mut properties = Properties::new();
            // MQTT-3.14.2-2: never from the server; the violation echoes the session's.
            if self.breaks("MQTT-3.14.2-2") {
                properties.push(Property::SessionExpiryInterval(c.connect_session_expiry));
            }
            self.send(
                conn,
                Packet::Disconnect(Disconnect {
                    reason_code: code,
                    properties,
                }),
            );
        }
        // MQTT-3.14.4-2 / 4.13.1-1: the violation says DISCONNECT (5.0) but
        // carries on; restarting the keep-alive clock keeps the timer quiet.
        if self.breaks("MQTT-3.14.4-2") {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.last_packet = now;
            }
            return;
        }
        self.end_connection(conn, true, now);
        self.close(conn);
    }

    /// A packet the decoder refused. Answers per version and closes, unless
    /// the statement it enforces is deliberately violated.
    pub fn decode_error(&mut self, conn: ConnId, err: &DecodeError, now: Instant) -> OnError {
        if err.statement().is_some_and(|s| self.breaks(s)) {
            return OnError::Skip;
        }
        let Some(c) = self.conns.get(&conn) else {
            return OnError::Close;
        };
        let awaiting = matches!(c.state, ConnState::AwaitConnect { .. });
        if awaiting && err.packet == Some(PacketType::Connect) {
            match &err.kind {
                // MQTT-3.1.2-2: refuse an unknown level with CONNACK 0x01
                // (3.1.1 form, which any client can read), then close.
                ErrorKind::ProtocolLevel { level } => {
                    let (protocol, code) = if *level == 5 {
                        (Protocol::V5, reason::UNSUPPORTED_PROTOCOL_VERSION)
                    } else {
                        (Protocol::V3_1_1, reason::v3::UNACCEPTABLE_PROTOCOL_VERSION)
                    };
                    self.actions.push_back(Action::Send {
                        conn,
                        protocol,
                        packet: Packet::ConnAck(ConnAck {
                            session_present: false,
                            code,
                            properties: Properties::new(),
                        }),
                    });
                }
                // 5.0 lets the server name the error in a CONNACK before closing
                // (MQTT-4.13.1-1); 3.1.1 closes without one (MQTT-3.1.4-1).
                // The MQTT-3.14.0-1 violation answers with a DISCONNECT instead.
                _ if err.protocol.is_v5() => {
                    let packet = if self.breaks("MQTT-3.14.0-1") {
                        Packet::Disconnect(Disconnect {
                            reason_code: err.reason_code(),
                            properties: Properties::new(),
                        })
                    } else {
                        Packet::ConnAck(ConnAck {
                            session_present: false,
                            code: err.reason_code(),
                            properties: Properties::new(),
                        })
                    };
                    self.actions.push_back(Action::Send {
                        conn,
                        protocol: Protocol::V5,
                        packet,
                    });
                }
                _ => {}
            }
            self.close(conn);
            return OnError::Close;
        }
        // A CONNECT past the first is a Protocol Error whatever is wrong
        // inside it (MQTT-3.1.0-2), and any code DISCONNECT cannot carry
        // (0x84 Unsupported Protocol Version… belong to CONNACK,
        // MQTT-3.14.2-1) becomes Protocol Error too. Found by both fuzzers.
        let mut code = if err.packet == Some(PacketType::Connect) {
            reason::PROTOCOL_ERROR
        } else {
            err.reason_code()
        };
        if !reason::is_valid(
            PacketType::Disconnect,
            code,
            mqtt_codec::Sender::Server,
            Protocol::V5,
        ) {
            code = reason::PROTOCOL_ERROR;
        }
        self.disconnect(conn, code, now);
        OnError::Close
    }

    /// The server is stopping: every connection is closed, a 5.0 client's
    /// after a DISCONNECT with Server shutting down (0x8B: a reason of 0x80 or
    /// more, so the connection closes, MQTT-4.13.2-1), and none is accepted
    /// from now on. Wills
    /// are left to [`Broker::closed`], as for any connection the server ends
    /// without a DISCONNECT from the client.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            if matches!(self.conns.get(&conn), Some(c) if matches!(c.state, ConnState::Closing)) {
                continue;
            }
            self.disconnect(conn, reason::SERVER_SHUTTING_DOWN, now);
            self.close(conn);
        }
    }

    /// A client identifier for a client that sent none: random, so that no
    /// client can guess another's and take its session over, and checked
    /// against the sessions there are (a client may have chosen the same
    /// string). MQTT-3.1.3-6: unique; the violation hands out the same one.
    fn assign_client_id(&mut self) -> ByteString {
        if self.breaks("MQTT-3.1.3-6") {
            return ByteString::from_static("auto-0000000000000000");
        }
        loop {
            self.next_assigned += 1;
            let id = match crate::auth::random_bytes::<8>() {
                Ok(r) => format!("auto-{:016x}", u64::from_be_bytes(r)),
                // No randomness from the system: still unique, if guessable.
                Err(_) => format!("auto-n{:015x}", self.next_assigned),
            };
            if !self.sessions.contains_key(id.as_str()) {
                return ByteString::from(id);
            }
        }
    }

    /// The network connection ended (EOF, reset, or after a Close action).
    pub fn closed(&mut self, conn: ConnId, now: Instant) {
        self.end_connection(conn, true, now);
        self.conns.remove(&conn);
        // Left in `stalled`, it is skipped when released (ids are never reused).
        self.waiting.remove(&conn);
    }

    /// Detaches the connection from its session; publishes or schedules the
    /// will when `with_will`.
    fn end_connection(&mut self, conn: ConnId, with_will: bool, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let will = c.will.take();
        let state = std::mem::replace(&mut c.state, ConnState::Closing);
        let ConnState::Connected { client_id } = state else {
            return;
        };
        if self.config.violations.breaks("MQTT-3.3.2-7") {
            self.kept_aliases
                .insert(client_id.clone(), std::mem::take(&mut c.aliases));
        }
        let Some(session) = self.sessions.get_mut(&client_id) else {
            return;
        };
        if session.conn() != Some(conn) {
            return;
        }
        session.set_conn(None);
        // Offline, the queue limit drops instead of pausing publishers.
        self.release(&client_id, now);
        let Some(session) = self.sessions.get_mut(&client_id) else {
            return;
        };
        let expiry = session.expiry;
        session.expires_at = expiry_instant(now, expiry);
        let mut publish_now = None;
        if let Some((message, delay)) = will
            .map(|w| *w)
            .filter(|_| with_will && !self.config.violations.breaks("MQTT-3.1.2-8"))
        {
            // The will waits for its delay or the session's end, whichever is first.
            let delay = delay.min(expiry);
            if delay == 0 {
                publish_now = Some(message);
            } else {
                session.pending_will = Some(Box::new(PendingWill {
                    message,
                    at: now + Duration::from_secs(u64::from(delay)),
                }));
            }
        }
        if expiry == 0 {
            if let Some(w) = session.pending_will.take() {
                publish_now = Some(w.message);
            }
            self.sessions.remove(&client_id);
        }
        if let Some(m) = publish_now {
            self.publish_will(m, now);
        }
    }

    /// Publishes a will: its expiry starts now, and Will Retain makes it a
    /// retained message (MQTT-3.1.2-17 in 3.1.1, 3.1.2-15 in 5.0).
    fn publish_will(&mut self, mut m: Message, now: Instant) {
        m.expires_at = m
            .properties
            .message_expiry_interval()
            .and_then(|s| expiry_instant(now, s));
        // The violation inverts Will Retain.
        if self.breaks("MQTT-3.1.2-15") {
            m.retain = !m.retain;
        }
        if m.retain {
            self.retain(&m);
        }
        self.publish_message(m, now);
    }

    /// A packet decoded from `conn`.
    pub fn packet(&mut self, conn: ConnId, packet: Packet, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_packet = now;
        match (&c.state, packet) {
            (ConnState::Closing, _) => {}
            (ConnState::AwaitConnect { .. }, Packet::Connect(connect)) => {
                self.connect(conn, *connect, now)
            }
            (ConnState::AwaitConnect { .. }, Packet::Auth(auth)) => {
                self.auth_before_connack(conn, auth, now)
            }
            // MQTT-3.1.0-1: anything before CONNECT ends the connection.
            (ConnState::AwaitConnect { .. }, _) => self.close(conn),
            (ConnState::Connected { .. }, Packet::Connect(connect)) => {
                if self.breaks("MQTT-3.1.0-2") {
                    let protocol = connect.protocol;
                    self.send(
                        conn,
                        Packet::ConnAck(ConnAck {
                            session_present: true,
                            code: 0,
                            properties: Properties::new(),
                        }),
                    );
                    let _ = protocol;
                } else {
                    // MQTT-3.1.0-2: a second CONNECT is a protocol error.
                    self.disconnect(conn, reason::PROTOCOL_ERROR, now);
                }
            }
            (ConnState::Connected { client_id }, packet) => {
                let client_id = client_id.clone();
                self.connected_packet(conn, client_id, packet, now);
            }
        }
    }

    fn connect(&mut self, conn: ConnId, mut connect: Connect, now: Instant) {
        // Kept for the connection's life and beyond: copies of their own,
        // or each would keep the whole read buffer it was decoded from
        // (what an idle connection costs, README). A will's properties are
        // rare and stay shared.
        connect.client_id = own(&connect.client_id);
        connect.username = connect.username.as_ref().map(own);
        if let Some(w) = &mut connect.will {
            w.topic = own(&w.topic);
            w.payload = Bytes::copy_from_slice(&w.payload);
        }
        let protocol = connect.protocol;
        let v5 = protocol.is_v5();
        let refuse = |b: &mut Broker, code_v5: u8, code_v3: u8| {
            if let Some(c) = b.conns.get_mut(&conn) {
                c.protocol = protocol;
            }
            if v5 && b.breaks("MQTT-3.14.0-1") {
                // The violation: a 5.0 refusal as DISCONNECT instead of CONNACK.
                b.send(
                    conn,
                    Packet::Disconnect(Disconnect {
                        reason_code: code_v5,
                        properties: Properties::new(),
                    }),
                );
            } else {
                // MQTT-3.2.2-8: 5.0 codes for 5.0; the violation sends the 3.1.1 code.
                let v5_code = v5 && !b.breaks("MQTT-3.2.2-8");
                b.send(
                    conn,
                    Packet::ConnAck(ConnAck {
                        // MQTT-3.2.2-4 (3.1.1) / 3.2.2-6 (5.0): Session Present 0 on refusal.
                        session_present: b.breaks("MQTT-3.2.2-4"),
                        code: if v5_code { code_v5 } else { code_v3 },
                        properties: Properties::new(),
                    }),
                );
            }
            // MQTT-3.2.2-5 (3.1.1) / 3.2.2-7 (5.0): close after a refusal.
            if !b.breaks("MQTT-3.2.2-5") {
                b.close(conn);
            }
        };
        // Client identifier rules (MQTT-3.1.3-6/7/8, 3.1: 1 to 23 characters).
        let mut client_id = connect.client_id.clone();
        let mut assigned = None;
        if client_id.is_empty() {
            let allowed = self.config.allow_empty_client_id
                && protocol != Protocol::V3_1
                && (v5 || connect.clean_start || self.breaks("MQTT-3.1.3-8"));
            if !allowed {
                // MQTT-3.1.3-9 (3.1.1): 0x02; the violation answers "not authorized".
                let v3 = if self.breaks("MQTT-3.1.3-9") {
                    reason::v3::NOT_AUTHORIZED
                } else {
                    reason::v3::IDENTIFIER_REJECTED
                };
                refuse(self, reason::CLIENT_IDENTIFIER_NOT_VALID, v3);
                return;
            }
            client_id = self.assign_client_id();
            if v5 && !self.breaks("MQTT-3.2.2-16") {
                assigned = Some(client_id.clone());
            }
        } else if protocol == Protocol::V3_1 && client_id.len() > 23 {
            let v3 = if self.breaks("MQTT-3.1.3-9") {
                reason::v3::NOT_AUTHORIZED
            } else {
                reason::v3::IDENTIFIER_REJECTED
            };
            refuse(self, reason::CLIENT_IDENTIFIER_NOT_VALID, v3);
            return;
        } else if client_id.len() >= 23 && self.breaks("MQTT-3.1.3-5") {
            // MQTT-3.1.3-5: 1 to 23 bytes must be accepted; the violation is
            // off by one, refusing a client id of the full 23.
            refuse(
                self,
                reason::CLIENT_IDENTIFIER_NOT_VALID,
                reason::v3::IDENTIFIER_REJECTED,
            );
            return;
        }
        // MQTT-3.1.3-2: sessions are keyed on the client id as sent; the
        // violation folds ASCII case, so "A" and "a" share one session.
        if self.breaks("MQTT-3.1.3-2") {
            client_id = ByteString::from(client_id.to_ascii_lowercase());
        }
        // User name / password, or an enhanced authentication exchange (MQTT-4.12.0-1).
        let (user, auth_props) = match self.authenticate(conn, &connect) {
            authn::Gate::Go { user, props } => (user, props),
            authn::Gate::Wait => return,
            authn::Gate::Refuse { v5: c5, v3: c3 } => {
                refuse(self, c5, c3);
                return;
            }
        };
        if let Some(w) = &connect.will {
            // A will is a PUBLISH made in advance: the ACL must allow it now.
            if !self
                .config
                .auth
                .may_publish(user.as_deref(), &client_id, &w.topic)
            {
                refuse(self, reason::NOT_AUTHORIZED, reason::v3::NOT_AUTHORIZED);
                return;
            }
            // MQTT-3.2.2-12/13: a will the server cannot honour refuses the connection.
            if w.qos.as_u8() > self.config.maximum_qos && !self.breaks("MQTT-3.2.2-12") {
                refuse(
                    self,
                    reason::QOS_NOT_SUPPORTED,
                    reason::v3::SERVER_UNAVAILABLE,
                );
                return;
            }
            if w.retain && !self.config.retain_available && !self.breaks("MQTT-3.2.2-13") {
                refuse(
                    self,
                    reason::RETAIN_NOT_SUPPORTED,
                    reason::v3::SERVER_UNAVAILABLE,
                );
                return;
            }
        }

        // Session expiry: 3.x clean session 0 keeps the session forever.
        let requested_expiry = if v5 {
            connect.properties.session_expiry_interval().unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            u32::MAX
        };
        let expiry = if v5 {
            requested_expiry.min(self.config.max_session_expiry)
        } else {
            requested_expiry
        };

        // Take over an existing connection with this client id (MQTT-3.1.4-2 / 3.1.4-3).
        if let Some(old) = self.sessions.get(&client_id).and_then(|s| s.conn()) {
            if !self.breaks("MQTT-3.1.4-2") {
                if let Some(oc) = self.conns.get(&old) {
                    if oc.protocol.is_v5() {
                        self.send(
                            old,
                            Packet::Disconnect(Disconnect {
                                reason_code: reason::SESSION_TAKEN_OVER,
                                properties: Properties::new(),
                            }),
                        );
                    }
                }
                self.end_connection(old, true, now);
                self.close(old);
            }
        }

        let forget = self.breaks("MQTT-3.2.2-3");
        // A session past its expiry that tick() has not reaped yet is gone;
        // its pending will is due (the will delay never outlasts the session).
        let expired = self
            .sessions
            .get(&client_id)
            .is_some_and(|s| s.conn().is_none() && s.expires_at.is_some_and(|at| at <= now))
            && !self.breaks("MQTT-4.1.0-2");
        // A session belongs to the user who made it: another user reusing the
        // client id starts afresh rather than reading its queue.
        let foreign = self.config.auth.checks_passwords()
            && self
                .sessions
                .get(&client_id)
                .is_some_and(|s| s.user != user);
        // The violation (MQTT-3.1.2-6 in 3.1.1) quietly resumes the old
        // session despite Clean Session 1, still saying Session Present 0.
        let clean = connect.clean_start && !self.breaks("MQTT-3.1.2-6");
        if clean || forget || expired || foreign {
            // MQTT-3.1.2-4 (5.0) / 3.1.2-6 (3.1.1): discard any previous session.
            if let Some(old) = self.sessions.remove(&client_id) {
                if let Some(w) = old.pending_will.filter(|_| expired) {
                    self.publish_will(w.message, now);
                }
            }
        }
        // MQTT-3.2.2-2 (3.1.1) / 3.2.2-3 (5.0): Session Present says whether
        // stored state was resumed, whatever that state holds.
        let mut session_present = !connect.clean_start && self.sessions.contains_key(&client_id);
        let session = self.sessions.get_or_insert_with(&client_id, || {
            Box::new(Session {
                online: None,
                protocol,
                expiry,
                expires_at: None,
                subscriptions: BTreeMap::new(),
                flow: FlowBox::default(),
                next_packet_id: 1,
                pending_will: None,
                user: None,
            })
        });
        // MQTT-3.1.3-9: a reconnection before the will delay cancels the will
        // (the violation lets it fire at its time all the same).
        if !self.config.violations.breaks("MQTT-3.1.3-9") {
            session.pending_will = None;
        }
        session.set_conn(Some(conn));
        session.user = user;
        session.protocol = protocol;
        session.expiry = expiry;
        // MQTT-4.1.0-1: no expiry while connected; the violation starts the
        // session's expiry clock at CONNECT.
        session.expires_at = if self.config.violations.breaks("MQTT-4.1.0-1") {
            expiry_instant(now, expiry)
        } else {
            None
        };
        if self.breaks("MQTT-3.2.2-1") && connect.clean_start {
            session_present = true;
        }
        // MQTT 3.1 has no Session Present: its CONNACK flags byte is reserved.
        if protocol == Protocol::V3_1 {
            session_present = false;
        }

        let keep_alive = self
            .config
            .server_keep_alive
            .filter(|_| v5)
            .unwrap_or(connect.keep_alive);
        let c = match self.conns.get_mut(&conn) {
            Some(c) => c,
            None => return,
        };
        c.protocol = protocol;
        // MQTT-3.3.2-7: topic aliases die with the connection; the violation
        // carries the client's over to its next one.
        if let Some(kept) = self.kept_aliases.remove(&client_id) {
            c.aliases = kept;
        }
        c.keep_alive_secs = keep_alive;
        c.max_packet = connect
            .properties
            .maximum_packet_size()
            .and_then(std::num::NonZeroU32::new);
        c.send_quota = if v5 {
            connect.properties.receive_maximum().unwrap_or(u16::MAX)
        } else {
            self.config.max_inflight
        };
        c.request_problem_information = connect.properties.request_problem_information() != Some(0);
        c.connect_session_expiry = requested_expiry;
        c.will = connect.will.map(|w| {
            let delay = w.properties.will_delay_interval().unwrap_or(0);
            let mut properties = w.properties.clone();
            properties.remove(0x18);
            Box::new((
                Message {
                    topic: w.topic,
                    payload: w.payload,
                    qos: w.qos,
                    retain: w.retain,
                    properties,
                    // The will's Message Expiry Interval runs from its
                    // publication (3.1.3.2.4), set in `publish_will`.
                    expires_at: None,
                    origin: Some(client_id.clone()),
                    seq: 0,
                },
                delay,
            ))
        });
        // MQTT-3.1.2-12 (3.1.1): no Will Flag, no will; the violation reuses
        // the will of the client id's previous 3.x connection.
        if !v5 && self.config.violations.breaks("MQTT-3.1.2-12") {
            match &c.will {
                Some(w) => {
                    self.stale_wills.insert(client_id.clone(), (**w).clone());
                }
                None => c.will = self.stale_wills.get(&client_id).cloned().map(Box::new),
            }
        }
        c.state = ConnState::Connected {
            client_id: client_id.clone(),
        };

        let mut props = Properties::new();
        if v5 {
            if let Some(id) = assigned {
                props.push(Property::AssignedClientIdentifier(id));
            }
            if expiry != requested_expiry {
                props.push(Property::SessionExpiryInterval(expiry));
            }
            props.push(Property::ReceiveMaximum(self.config.receive_maximum));
            props.push(Property::MaximumPacketSize(self.config.max_packet_size));
            if self.config.topic_alias_maximum > 0 {
                props.push(Property::TopicAliasMaximum(self.config.topic_alias_maximum));
            }
            // MQTT-3.2.2-9: the violation keeps its Maximum QoS to itself.
            if self.config.maximum_qos < 2 && !self.breaks("MQTT-3.2.2-9") {
                props.push(Property::MaximumQoS(self.config.maximum_qos));
            }
            if !self.config.retain_available {
                props.push(Property::RetainAvailable(0));
            }
            if !self.config.wildcard_subscriptions {
                props.push(Property::WildcardSubscriptionAvailable(0));
            }
            if !self.config.subscription_identifiers {
                props.push(Property::SubscriptionIdentifierAvailable(0));
            }
            if !self.config.shared_subscriptions {
                props.push(Property::SharedSubscriptionAvailable(0));
            }
            if let Some(k) = self.config.server_keep_alive {
                props.push(Property::ServerKeepAlive(k));
            }
            // MQTT-3.1.2-28: no Response Information unless requested (we
            // never send it); the violation sends it unasked.
            if self.breaks("MQTT-3.1.2-28")
                && connect.properties.request_response_information() != Some(1)
            {
                props.push(Property::ResponseInformation(ByteString::from("response/")));
            }
            for p in auth_props {
                props.push(p);
            }
        }
        let mut connack = Packet::ConnAck(ConnAck {
            session_present,
            code: 0,
            properties: props,
        });
        // MQTT-3.1.2-24: a CONNACK that cannot be made small enough is not
        // sent, and a connection that cannot be acknowledged is closed.
        if !self.fit_client(conn, &mut connack) {
            tracing::info!(
                conn,
                max = ?self.conns.get(&conn).and_then(|c| c.max_packet_size()),
                "CONNACK exceeds the client's Maximum Packet Size, closing"
            );
            self.end_connection(conn, false, now);
            self.close(conn);
            return;
        }
        self.send(conn, connack);
        // MQTT-4.4.0-1: resend unacknowledged PUBLISH (DUP set) and PUBREL, in order.
        if !self.breaks("MQTT-4.4.0-1") {
            self.resend_inflight(&client_id, conn, now);
        } else if let Some(s) = self.sessions.get_mut(&client_id) {
            s.flow.compact_resend();
        }
        self.drain_queue(&client_id, now);
    }

    fn resend_inflight(&mut self, client_id: &ByteString, conn: ConnId, now: Instant) {
        // MQTT-4.3.3-7: once a QoS 2 PUBLISH is sent its expiry no longer
        // applies; the violation drops the expired ones instead of resending.
        if self.breaks("MQTT-4.3.3-7") {
            let expiring = &mut self.expiring_out;
            if let Some(s) = self.sessions.get_mut(client_id) {
                s.flow.inflight.retain(|&id, f| {
                    let key = (client_id.clone(), id);
                    let expired = matches!(f.state, OutState::Publish(QoS::ExactlyOnce))
                        && expiring.get(&key).is_some_and(|at| *at <= now);
                    if expired {
                        expiring.remove(&key);
                    }
                    !expired
                });
            }
        }
        if let Some(s) = self.sessions.get_mut(client_id) {
            // MQTT-4.6.0-1: in the order first sent, which is the order of
            // their entry numbers; identifiers wrap around 65535, so
            // theirs is not.
            let mut order: Vec<(u64, u16)> =
                s.flow.inflight.iter().map(|(&id, f)| (f.seq, id)).collect();
            order.sort_unstable();
            s.flow.compact_resend();
            if !order.is_empty() {
                s.flow.resend = order.into_iter().map(|(_, id)| id).collect();
            }
        }
        self.resend_owed(client_id, conn);
    }

    /// Resends what `resend_inflight` marked, in order, as far as the
    /// client's Receive Maximum leaves room beside what was already resent
    /// on this connection and is not yet acknowledged (MQTT-3.3.4-9; the
    /// violation sends them all at once). Called again as acknowledgements
    /// come, from `drain_queue`.
    fn resend_owed(&mut self, client_id: &ByteString, conn: ConnId) {
        let quota = match self.conns.get(&conn) {
            Some(_) if self.breaks("MQTT-3.3.4-9") => usize::MAX,
            Some(c) => usize::from(c.send_quota),
            None => return,
        };
        // MQTT-3.3.1-1: DUP on retransmissions; MQTT-4.3.3-6: no PUBLISH
        // once PUBREL has gone out. The violations break each.
        let no_dup = self.breaks("MQTT-3.3.1-1");
        let republish = self.breaks("MQTT-4.3.3-6");
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if session.flow.resend.is_empty() {
            return;
        }
        let flow = &mut *session.flow;
        flow.resend.retain(|id| flow.inflight.contains_key(id));
        let sent = flow.inflight.len() - flow.resend.len();
        let n = quota.saturating_sub(sent).min(flow.resend.len());
        let packets: Vec<Packet> = flow
            .resend
            .drain(..n)
            .filter_map(|id| flow.inflight.get(&id).map(|f| (id, f)))
            .map(|(id, f)| match f.state {
                OutState::Publish(..) => {
                    let mut p = f.packet.clone();
                    p.dup = !no_dup;
                    Packet::Publish(p)
                }
                OutState::Release if republish => {
                    let mut p = f.packet.clone();
                    p.dup = true;
                    Packet::Publish(p)
                }
                OutState::Release => Packet::PubRel(PubResponse::new(id)),
            })
            .collect();
        for p in packets {
            self.send(conn, p);
        }
    }

    fn connected_packet(
        &mut self,
        conn: ConnId,
        client_id: ByteString,
        packet: Packet,
        now: Instant,
    ) {
        match packet {
            Packet::Publish(p) => self.incoming_publish(conn, &client_id, p, now),
            Packet::PubAck(r) => {
                let mut refused = None;
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    if matches!(
                        s.flow.inflight.get(&r.packet_id).map(|f| &f.state),
                        Some(OutState::Publish(QoS::AtLeastOnce))
                    ) {
                        refused = s
                            .flow
                            .inflight
                            .remove(&r.packet_id)
                            .filter(|_| r.reason_code >= 0x80);
                    }
                }
                // MQTT-4.8.2-6: a refused shared message is discarded; the
                // violation hands it to another member of the group.
                if let Some(f) = refused.filter(|_| self.breaks("MQTT-4.8.2-6")) {
                    self.redirect_shared(&client_id, f.packet, now);
                }
                self.drain_queue(&client_id, now);
            }
            Packet::PubRec(r) => {
                let mut release = false;
                let mut refused = None;
                // A PUBREC for no message in flight (a success code): answered
                // with PUBREL, in 5.0 saying Packet Identifier not found.
                let mut unknown = r.reason_code < 0x80;
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    if let Some(f) = s.flow.inflight.get_mut(&r.packet_id) {
                        unknown = false;
                        if matches!(f.state, OutState::Publish(QoS::ExactlyOnce)) {
                            if r.reason_code >= 0x80 {
                                // MQTT-4.4.0-2 / 4.3.3: a failure PUBREC ends the
                                // exchange (the violation keeps it, to resend).
                                if !self.config.violations.breaks("MQTT-4.4.0-2") {
                                    refused = s.flow.inflight.remove(&r.packet_id);
                                }
                            } else if self.config.violations.breaks("MQTT-4.3.3-5") {
                                // The violation forgets the message once PUBREL is
                                // sent, so it is never resent.
                                s.flow.inflight.remove(&r.packet_id);
                                release = true;
                            } else {
                                f.state = OutState::Release;
                                release = true;
                            }
                        } else if matches!(f.state, OutState::Release) {
                            release = true;
                        }
                    }
                }
                // MQTT-4.8.2-6: the violation redirects a refused shared message.
                if let Some(f) = refused.filter(|_| self.breaks("MQTT-4.8.2-6")) {
                    self.redirect_shared(&client_id, f.packet, now);
                }
                // MQTT-4.3.3-4: PUBREL answers PUBREC; the violation never sends it.
                if (release || unknown) && !self.breaks("MQTT-4.3.3-4") {
                    let mut rel = PubResponse::new(r.packet_id);
                    if unknown && self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5()) {
                        rel.reason_code = reason::PACKET_IDENTIFIER_NOT_FOUND;
                    }
                    self.send(conn, Packet::PubRel(rel));
                }
                self.drain_queue(&client_id, now);
            }
            Packet::PubComp(r) => {
                if let Some(s) = self.sessions.get_mut(&client_id) {
                    if matches!(
                        s.flow.inflight.get(&r.packet_id).map(|f| &f.state),
                        Some(OutState::Release)
                    ) {
                        s.flow.inflight.remove(&r.packet_id);
                    }
                }
                self.drain_queue(&client_id, now);
            }
            Packet::PubRel(r) => {
                // MQTT-4.3.3-12: after PUBCOMP the identifier is free for a new
                // message; the violation keeps treating it as a duplicate.
                let keep = self.config.violations.breaks("MQTT-4.3.3-12");
                let known = self.sessions.get_mut(&client_id).is_some_and(|s| {
                    if keep {
                        s.flow.incoming_qos2.contains(&r.packet_id)
                    } else {
                        s.flow.incoming_qos2.remove(&r.packet_id)
                    }
                });
                // MQTT-4.3.3-13: the handshake completes even if the message
                // has expired; the violation abandons it without PUBCOMP.
                let key = (client_id.clone(), r.packet_id);
                if let Some(at) = self.expiring_in.remove(&key) {
                    if at <= now && self.breaks("MQTT-4.3.3-13") {
                        return;
                    }
                }
                if self.breaks("MQTT-4.3.3-11") {
                    return;
                }
                let mut resp = PubResponse::new(r.packet_id);
                if !known && self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5()) {
                    resp.reason_code = reason::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.send(conn, Packet::PubComp(resp));
            }
            Packet::Subscribe(s) => self.subscribe(conn, &client_id, s, now),
            Packet::Unsubscribe(u) => self.unsubscribe(conn, &client_id, u),
            Packet::PingReq => {
                // MQTT-3.3.4-10 / 4.9.0-3: a full receive window delays only
                // PUBLISH; the violation holds back PINGRESP too.
                let window_full = self.breaks("MQTT-4.9.0-3")
                    && self.conns.get(&conn).is_some_and(|c| {
                        self.sessions
                            .get(&client_id)
                            .is_some_and(|s| s.flow.inflight.len() >= usize::from(c.send_quota))
                    });
                if !self.breaks("MQTT-3.12.4-1") && !window_full {
                    self.send(conn, Packet::PingResp);
                }
            }
            Packet::Disconnect(d) => {
                let requested = d.properties.session_expiry_interval();
                let keep_will =
                    d.reason_code == reason::DISCONNECT_WITH_WILL || self.breaks("MQTT-3.14.4-3");
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                // 5.0: a session that was to end with the connection cannot be
                // extended by DISCONNECT (section 3.14.2.2.2).
                if c.connect_session_expiry == 0 && requested.is_some_and(|e| e > 0) {
                    self.disconnect(conn, reason::PROTOCOL_ERROR, now);
                    return;
                }
                if !keep_will {
                    // MQTT-3.14.4-3 / MQTT-3.1.2-10: a normal DISCONNECT discards the will.
                    c.will = None;
                }
                if let (Some(e), Some(s)) = (requested, self.sessions.get_mut(&client_id)) {
                    s.expiry = e.min(self.config.max_session_expiry);
                }
                self.end_connection(conn, keep_will, now);
                self.close(conn);
            }
            Packet::Auth(auth) => self.auth_after_connack(conn, auth, now),
            // The codec refuses these from a client; nothing to do if they slip through.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => {
                self.disconnect(conn, reason::PROTOCOL_ERROR, now);
            }
        }
    }

    fn incoming_publish(
        &mut self,
        conn: ConnId,
        client_id: &ByteString,
        mut p: Publish,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let v5 = c.protocol.is_v5();
        if p.qos.as_u8() > self.config.maximum_qos {
            // 5.0 section 3.2.2.3.4: QoS above Maximum QoS ends the connection.
            self.disconnect(conn, reason::QOS_NOT_SUPPORTED, now);
            return;
        }
        if p.retain && !self.config.retain_available {
            self.disconnect(conn, reason::RETAIN_NOT_SUPPORTED, now);
            return;
        }
        if let Some(alias) = p.properties.topic_alias() {
            // MQTT-3.3.2-12 (accept up to our maximum); above it is a protocol error.
            // The violation is off by one, refusing the maximum itself.
            if alias > self.config.topic_alias_maximum
                || (alias == self.config.topic_alias_maximum
                    && self.config.violations.breaks("MQTT-3.3.2-12"))
            {
                self.disconnect(conn, reason::TOPIC_ALIAS_INVALID, now);
                return;
            }
            if p.topic.is_empty() {
                match c.aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        self.disconnect(conn, reason::PROTOCOL_ERROR, now);
                        return;
                    }
                }
            } else {
                c.aliases.insert(alias, p.topic.clone());
            }
        }
        // MQTT-1.5.4-3 / 1.5.3-3: U+FEFF is kept as it is; the violation
        // strips it from topic names.
        if p.topic.contains('\u{feff}') && self.breaks("MQTT-1.5.4-3") {
            p.topic = ByteString::from(p.topic.replace('\u{feff}', ""));
        }
        if p.topic.len() > self.config.max_topic_length
            || p.topic.split('/').count() > self.config.max_topic_levels
        {
            self.disconnect(conn, reason::TOPIC_NAME_INVALID, now);
            return;
        }
        if self.publish_refused(conn, client_id, &p) {
            return;
        }
        // MQTT-4.3.2-5: a QoS 1 PUBLISH is a new message whatever DUP says; the
        // violation takes DUP at its word, acknowledging without forwarding.
        if p.qos == QoS::AtLeastOnce && p.dup && self.breaks("MQTT-4.3.2-5") {
            self.send(conn, Packet::PubAck(PubResponse::new(p.packet_id)));
            return;
        }
        let packet_id = p.packet_id;
        if p.qos == QoS::ExactlyOnce {
            let take_any = self.breaks("MQTT-3.3.4-7");
            let Some(s) = self.sessions.get_mut(client_id) else {
                return;
            };
            if s.flow.incoming_qos2.contains(&packet_id)
                && !self.config.violations.breaks("MQTT-4.3.3-10")
            {
                // MQTT-4.3.3-10: a re-sent PUBLISH before PUBREL is not delivered again.
                if !self.breaks("MQTT-4.3.3-8") {
                    self.send(conn, Packet::PubRec(PubResponse::new(packet_id)));
                }
                return;
            }
            if s.flow.incoming_qos2.len() >= usize::from(self.config.receive_maximum)
                && v5
                && !take_any
            {
                // 5.0 section 3.3.4 (MQTT-3.3.4-7 broken by the client): more
                // unacknowledged QoS 2 than Receive Maximum; the violation
                // takes them all.
                self.disconnect(conn, reason::RECEIVE_MAXIMUM_EXCEEDED, now);
                return;
            }
            s.flow.incoming_qos2.insert(packet_id);
        }
        let mut properties = p.properties.clone();
        properties.remove(0x23);
        let expires_at = properties
            .message_expiry_interval()
            .and_then(|s| expiry_instant(now, s));
        if let Some(at) = expires_at
            .filter(|_| p.qos == QoS::ExactlyOnce && self.config.violations.breaks("MQTT-4.3.3-13"))
        {
            self.expiring_in.insert((client_id.clone(), packet_id), at);
        }
        let message = Message {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at,
            origin: Some(client_id.clone()),
            seq: 0,
        };
        if p.retain {
            self.retain(&message);
        }
        let matched = self.publish_message(message, now);
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                if !self.breaks("MQTT-3.3.4-1") {
                    // MQTT-2.2.1-5: the PUBLISH's identifier; the violation is off by one.
                    let mut ack = PubResponse::new(if self.breaks("MQTT-2.2.1-5") {
                        packet_id.wrapping_add(1).max(1)
                    } else {
                        packet_id
                    });
                    if v5 && matched == 0 {
                        // MQTT-3.4.2-1: a PUBACK code; the violation uses UNSUBACK's 0x11.
                        ack.reason_code = if self.breaks("MQTT-3.4.2-1") {
                            reason::NO_SUBSCRIPTION_EXISTED
                        } else {
                            reason::NO_MATCHING_SUBSCRIBERS
                        };
                    }
                    // MQTT-3.1.2-29: no reason string when the client asked
                    // for no problem information (we send none at all); the
                    // violation explains every 5.0 PUBACK, whoever subscribes.
                    if v5 && self.breaks("MQTT-3.1.2-29") {
                        let why = if matched == 0 {
                            "no matching subscribers"
                        } else {
                            "delivered"
                        };
                        ack.properties
                            .push(Property::ReasonString(ByteString::from(why)));
                    }
                    self.send(conn, Packet::PubAck(ack));
                }
            }
            QoS::ExactlyOnce => {
                if !self.breaks("MQTT-4.3.3-8") {
                    let mut rec = PubResponse::new(packet_id);
                    if v5 && matched == 0 {
                        rec.reason_code = reason::NO_MATCHING_SUBSCRIBERS;
                    }
                    self.send(conn, Packet::PubRec(rec));
                }
            }
        }
    }

    /// Under the MQTT-4.8.2-5/6 violations: sends a message `from` received
    /// through a shared subscription to another member of each of its groups.
    fn redirect_shared(&mut self, from: &ByteString, p: Publish, now: Instant) {
        let Some(src) = self.sessions.get(from) else {
            return;
        };
        let filters: Vec<ByteString> = src
            .subscriptions
            .keys()
            .filter(|f| {
                matches!(topic::split_shared(f), Some(Ok((_, inner))) if self.matches(inner, &p.topic))
            })
            .cloned()
            .collect();
        let mut properties = p.properties.clone();
        properties.remove(0x0B);
        properties.remove(0x23);
        let message = Message {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            qos: p.qos,
            retain: false,
            properties,
            expires_at: None,
            origin: None,
            seq: 0,
        };
        for filter in filters {
            let mut others: Vec<(ByteString, SubscriptionOptions, Option<u32>)> = self
                .sessions
                .iter()
                .filter(|(cid, _)| *cid != from)
                .filter_map(|(cid, s)| {
                    s.subscriptions
                        .get(&filter)
                        .map(|sub| (cid.clone(), sub.options, sub.id))
                })
                .collect();
            others.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some((cid, opts, id)) = others.into_iter().next() {
                self.deliver(
                    &cid,
                    message.clone(),
                    opts,
                    id.into_iter().collect(),
                    false,
                    now,
                );
            }
        }
    }

    /// Stores, replaces or clears a retained message (MQTT-3.3.1-5/6/7).
    fn retain(&mut self, m: &Message) {
        if self.breaks("MQTT-3.3.1-5") {
            return;
        }
        if let Some(changed) = &mut self.retained_changed {
            changed.insert(own(&m.topic));
        }
        if m.payload.is_empty() && !self.breaks("MQTT-3.3.1-6") {
            self.retained.remove(&m.topic);
            return;
        }
        // Copies of their own, as for a client id (`connect`).
        let kept = Message {
            topic: own(&m.topic),
            payload: Bytes::copy_from_slice(&m.payload),
            ..m.clone()
        };
        self.retained.insert(kept.topic.clone(), kept);
    }

    fn matches(&self, filter: &str, name: &str) -> bool {
        // MQTT-4.7.2-1: the violation lets a leading wildcard match a `$`
        // topic as it would any other; literal filters match as ever.
        if let Some(rest) = name.strip_prefix('$') {
            if self.breaks("MQTT-4.7.2-1") && filter.starts_with(['#', '+']) {
                return topic::matches(filter, &format!("x{rest}"));
            }
        }
        // MQTT-3.3.2-3: only topics matching the filter are delivered; the
        // violation compares prefixes, forgetting the level boundaries.
        if self.breaks("MQTT-3.3.2-3") && name.starts_with(filter.trim_end_matches(['#', '+'])) {
            return true;
        }
        // MQTT-4.7.3-4: no normalisation; the violation ignores ASCII case.
        if self.breaks("MQTT-4.7.3-4") {
            return topic::matches(&filter.to_ascii_lowercase(), &name.to_ascii_lowercase());
        }
        topic::matches(filter, name)
    }

    /// Routes a message to every matching session; returns how many got it.
    fn publish_message(&mut self, m: Message, now: Instant) -> usize {
        // One copy per session, at the highest granted QoS of its matching
        // subscriptions, with all their identifiers (MQTT-3.3.4-2/3/4).
        let mut targets: Vec<(ByteString, SubscriptionOptions, Vec<u32>)> = Vec::new();
        // (share name, filter) → members: (client id, options, subscription id).
        type Groups =
            BTreeMap<(String, String), Vec<(ByteString, SubscriptionOptions, Option<u32>)>>;
        let mut shared: Groups = BTreeMap::new();
        // Only the sessions the index says may match; deliberate violations
        // change the matching rules, so under them every session is tried.
        self.routes.refresh(&self.sessions);
        let all = !self.config.violations.is_empty();
        for (cid, s) in self.routes.sessions(&self.sessions, &m.topic, all) {
            let mut best: Option<(SubscriptionOptions, Vec<u32>)> = None;
            for (filter, sub) in &s.subscriptions {
                if let Some(Ok((group, inner))) = topic::split_shared(filter) {
                    // Only members that may read it share it (the ACL).
                    if self.matches(inner, &m.topic) && self.may_read(cid, &m.topic) {
                        shared
                            .entry((group.to_string(), inner.to_string()))
                            .or_default()
                            .push((cid.clone(), sub.options, sub.id));
                    }
                    continue;
                }
                if !self.matches(filter, &m.topic) {
                    continue;
                }
                // MQTT-3.8.3-3: No Local keeps a client's own messages from it.
                if sub.options.no_local
                    && m.origin.as_ref() == Some(cid)
                    && !self.breaks("MQTT-3.8.3-3")
                {
                    continue;
                }
                let entry = best.get_or_insert((sub.options, Vec::new()));
                // MQTT-3.3.4-2: the highest QoS; the violation keeps the first one's.
                if sub.options.qos > entry.0.qos && !self.breaks("MQTT-3.3.4-2") {
                    entry.0.qos = sub.options.qos;
                }
                entry.0.retain_as_published |= sub.options.retain_as_published;
                // MQTT-3.3.4-3/4: every matching identifier; the violation keeps the first.
                if let Some(id) = sub.id {
                    if entry.1.is_empty() || !self.breaks("MQTT-3.3.4-4") {
                        entry.1.push(id);
                    }
                }
            }
            if let Some((opts, ids)) = best {
                targets.push((cid.clone(), opts, ids));
            }
        }
        for (key, mut members) in shared {
            // One member of each group gets it, in turn; connected ones first.
            // Sessions live in a HashMap whose order changes as it grows:
            // sort, so that "in turn" survives clients joining.
            members.sort_by(|a, b| a.0.cmp(&b.0));
            let cursor = self.share_cursor.entry(key).or_insert(0);
            let online: Vec<_> = members
                .iter()
                .filter(|(cid, ..)| self.sessions.get(cid).is_some_and(|s| s.conn().is_some()))
                .collect();
            let pool: Vec<_> = if online.is_empty() {
                members.iter().collect()
            } else {
                online
            };
            if pool.is_empty() {
                continue;
            }
            let (cid, opts, id) = pool[*cursor % pool.len()];
            *cursor = cursor.wrapping_add(1);
            let mut opts = *opts;
            // MQTT-4.8.2-3: the member's granted QoS; the violation uses the publisher's.
            if self.breaks("MQTT-4.8.2-3") {
                opts.qos = m.qos;
            }
            targets.push((cid.clone(), opts, id.iter().copied().collect()));
        }
        // MQTT-4.5.0-1: every matching session; the violation stops at the first.
        if self.breaks("MQTT-4.5.0-1") {
            targets.sort_by(|a, b| a.0.cmp(&b.0));
            targets.truncate(1);
        }
        let count = targets.len();
        for (cid, opts, ids) in targets {
            self.deliver(&cid, m.clone(), opts, ids, false, now);
        }
        count
    }

    /// Queues or sends one message to one session.
    fn deliver(
        &mut self,
        cid: &ByteString,
        m: Message,
        opts: SubscriptionOptions,
        ids: Vec<u32>,
        from_retained: bool,
        now: Instant,
    ) {
        if !self.may_read(cid, &m.topic) {
            return;
        }
        let Some(s) = self.sessions.get_mut(cid) else {
            return;
        };
        let mut m = m;
        // MQTT-3.3.1-12/13 (5.0), 3.3.1-8/9 (3.1.1): RETAIN is kept for retained
        // messages sent on subscription, and for live ones only with Retain As Published.
        let wrong_retain = self.config.violations.breaks("MQTT-3.3.1-8");
        m.retain = if from_retained {
            !wrong_retain
        } else {
            (opts.retain_as_published && s.protocol.is_v5() && m.retain) || wrong_retain
        };
        let granted = if self.config.violations.breaks("MQTT-3.8.4-6") {
            m.qos
        } else {
            m.qos.min(opts.qos)
        };
        m.qos = granted;
        if s.conn().is_none() && granted == QoS::AtMostOnce {
            return;
        }
        let online = s.conn().is_some();
        let limit = self.config.max_queued_messages;
        let s = if s.flow.queue.len() < limit {
            s
        } else {
            // Room is made by the oldest QoS 0 message, or for an offline
            // session the oldest message; a connected session keeps every
            // QoS 1/2 message (the publisher waits, below), so a QoS 0 one
            // with no QoS 0 before it is itself dropped.
            let qos0 = s
                .flow
                .queue
                .iter()
                .position(|(q, ..)| q.qos == QoS::AtMostOnce);
            let dropped = match qos0 {
                Some(i) => s.flow.queue.remove(i).map(|(q, ..)| q.qos),
                None if !online => s.flow.queue.pop_front().map(|(q, ..)| q.qos),
                None if granted == QoS::AtMostOnce => {
                    self.count_drop(cid, granted, online);
                    return;
                }
                None => None,
            };
            if let Some(qos) = dropped {
                self.count_drop(cid, qos, online);
            }
            match self.sessions.get_mut(cid) {
                Some(s) => s,
                None => return,
            }
        };
        m.seq = self.next_seq;
        self.next_seq += 1;
        s.flow.queue.push_back((m, opts, ids));
        let len = self.drain_queue(cid, now);
        if len > self.counters.queue_high_water {
            self.counters.queue_high_water = len;
        }
        if online && len >= limit {
            // The publisher's connection (a will's is usually gone) waits
            // for room. The newest queued message is this one (drain takes
            // from the front; under the MQTT-4.6.0-6 violation it may be an
            // earlier one, whose publisher then waits instead). Retained
            // messages a SUBSCRIBE sends are the subscriber's doing: its
            // own connection waits, so that subscribing again and again
            // without acknowledging cannot grow the queue.
            let publisher = if from_retained {
                self.sessions.get(cid).and_then(|s| s.conn())
            } else {
                self.sessions
                    .get(cid)
                    .and_then(|s| s.flow.queue.back())
                    .and_then(|(m, ..)| m.origin.as_ref())
                    .and_then(|o| self.sessions.get(o))
                    .and_then(|o| o.conn())
            };
            if let Some(conn) = publisher {
                self.pause(conn, cid);
            }
        }
    }

    /// Sends queued messages while the client's receive window allows;
    /// returns how many stay queued (0 for a session that is offline).
    fn drain_queue(&mut self, cid: &ByteString, now: Instant) -> usize {
        let dup_qos0 = self.config.violations.breaks("MQTT-3.3.1-2");
        let drop_user = self.config.violations.breaks("MQTT-3.3.2-17");
        let v = &self.config.violations;
        let deliver_expired = v.breaks("MQTT-3.3.2-5");
        let keep_expiry = v.breaks("MQTT-3.3.2-6");
        let flip_format = v.breaks("MQTT-3.3.2-4");
        let drop_response_topic = v.breaks("MQTT-3.3.2-15");
        let drop_correlation = v.breaks("MQTT-3.3.2-16");
        let drop_content_type = v.breaks("MQTT-3.3.2-20");
        let ignore_receive_max = v.breaks("MQTT-3.3.4-9");
        let dup_first = v.breaks("MQTT-3.3.1-3");
        let reuse_id = v.breaks("MQTT-2.2.1-4");
        let ignore_max_size = v.breaks("MQTT-3.1.2-25");
        let send_alias = v.breaks("MQTT-3.1.2-27");
        let newest_first = v.breaks("MQTT-4.6.0-6");
        let fire_and_forget = v.breaks("MQTT-4.3.2-3");
        let track_expiry = v.breaks("MQTT-4.3.3-7");
        let no_violations = v.is_empty();
        let mut expiring = Vec::new();
        // One look-up of the session (hashing its client id) in the usual case.
        let Some(mut s) = self.sessions.get_mut(cid) else {
            return 0;
        };
        let Some(conn) = s.conn() else { return 0 };
        // What a resume still owes goes out before anything new.
        if !s.flow.resend.is_empty() {
            self.resend_owed(cid, conn);
            s = match self.sessions.get_mut(cid) {
                Some(s) => s,
                None => return 0,
            };
        }
        let Some(c) = self.conns.get(&conn) else {
            return 0;
        };
        let quota = if ignore_receive_max {
            usize::MAX
        } else {
            usize::from(c.send_quota)
        };
        let v5 = c.protocol.is_v5();
        let (protocol, max_packet_size) = (c.protocol, c.max_packet_size());
        let mut out = Vec::new();
        while let Some((m, _, _)) = s.flow.queue.front() {
            if m.qos != QoS::AtMostOnce && s.flow.inflight.len() >= quota {
                break;
            }
            // MQTT-4.6.0-6: in arrival order; the violation sends the newest first.
            let next = if newest_first {
                s.flow.queue.pop_back()
            } else {
                s.flow.queue.pop_front()
            };
            let Some((m, _opts, ids)) = next else {
                break;
            };
            // MQTT-3.3.2-5: an expired message is not delivered.
            let remaining = match m.expires_at {
                Some(at) if at <= now && !deliver_expired => continue,
                Some(at) => {
                    Some(u32::try_from(at.duration_since(now).as_secs().max(1)).unwrap_or(u32::MAX))
                }
                None => None,
            };
            // Without an expiry to count down or a violation to commit, the
            // PUBLISH follows from the queued message and the connection's
            // version alone, which is what lets the journal name it.
            let plain = (no_violations && m.expires_at.is_none()).then_some(v5);
            let mut p = if plain.is_some() {
                snapshot::plain_publish(
                    m.qos,
                    m.retain,
                    m.topic,
                    &m.properties,
                    m.payload,
                    &ids,
                    v5,
                )
            } else {
                let mut properties = Properties::new();
                if v5 {
                    for prop in m.properties.iter() {
                        match prop {
                            // MQTT-3.3.2-6: the interval is what remains.
                            Property::MessageExpiryInterval(_) if keep_expiry => {
                                properties.push(prop.clone())
                            }
                            Property::MessageExpiryInterval(_) => {
                                if let Some(r) = remaining {
                                    properties.push(Property::MessageExpiryInterval(r));
                                }
                            }
                            Property::UserProperty(..) if drop_user => {}
                            // MQTT-3.3.2-4/15/16/20: forwarded unchanged, unless violated.
                            Property::PayloadFormatIndicator(f) if flip_format => {
                                properties.push(Property::PayloadFormatIndicator(1 - f.min(&1)))
                            }
                            Property::ResponseTopic(_) if drop_response_topic => {}
                            Property::CorrelationData(_) if drop_correlation => {}
                            Property::ContentType(_) if drop_content_type => {}
                            other => properties.push(other.clone()),
                        }
                    }
                    for id in &ids {
                        properties.push(Property::SubscriptionIdentifier(*id));
                    }
                    // MQTT-3.1.2-26/27: the violation uses a topic alias whatever
                    // maximum the client announced (none, in practice).
                    if send_alias {
                        properties.push(Property::TopicAlias(u16::MAX));
                    }
                }
                Publish {
                    // MQTT-3.3.1-3: DUP only on our own retransmissions; the
                    // violation marks first transmissions of QoS 1/2 as DUP.
                    dup: (dup_qos0 && m.qos == QoS::AtMostOnce)
                        || (dup_first && m.qos != QoS::AtMostOnce),
                    qos: m.qos,
                    retain: m.retain,
                    // Moved, not cloned: each clone and drop is an atomic
                    // reference count on the buffer they share.
                    topic: m.topic,
                    packet_id: 0,
                    properties,
                    payload: m.payload,
                }
            };
            // MQTT-3.1.2-25: a PUBLISH too large for the client is discarded as
            // if delivered; it must not take a packet identifier or a slot of
            // the receive window that no acknowledgement would ever free.
            if let Some(max) = max_packet_size.filter(|_| !ignore_max_size) {
                let len = mqtt_codec::encoded_len(&Packet::Publish(p.clone()), protocol);
                if len.map_or(true, |len| len > max as usize) {
                    continue;
                }
            }
            if m.qos != QoS::AtMostOnce {
                // MQTT-2.2.1-4: a non-zero identifier not in use.
                let mut id = s.next_packet_id;
                while id == 0 || s.flow.inflight.contains_key(&id) {
                    id = id.wrapping_add(1);
                }
                if reuse_id {
                    // The violation: one identifier for every message in flight.
                    id = 1;
                }
                s.next_packet_id = id.wrapping_add(1);
                p.packet_id = id;
                let qos = m.qos;
                // MQTT-4.3.2-3 / 4.3.3-3: unacknowledged until PUBACK / PUBREC;
                // the violation forgets the message as soon as it is sent.
                if let Some(at) = m
                    .expires_at
                    .filter(|_| track_expiry && qos == QoS::ExactlyOnce)
                {
                    expiring.push((id, at));
                }
                if !fire_and_forget {
                    s.flow.inflight.insert(
                        id,
                        OutFlight {
                            packet: p.clone(),
                            state: OutState::Publish(qos),
                            seq: m.seq,
                            plain,
                        },
                    );
                }
            }
            out.push(Packet::Publish(p));
        }
        let queued = s.flow.queue.len();
        for (id, at) in expiring {
            self.expiring_out.insert((cid.clone(), id), at);
        }
        for p in out {
            self.send(conn, p);
        }
        if queued < self.config.max_queued_messages {
            if !self.dropping.is_empty() {
                self.dropping.remove(cid);
            }
            if !self.stalled.is_empty() {
                self.release(cid, now);
            }
        }
        queued
    }

    fn subscribe(&mut self, conn: ConnId, client_id: &ByteString, sub: Subscribe, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let v5 = c.protocol.is_v5();
        let sub_id = sub.properties.subscription_identifiers().next();
        if sub_id.is_some() && !self.config.subscription_identifiers {
            self.disconnect(conn, reason::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED, now);
            return;
        }
        let mut codes = Vec::with_capacity(sub.filters.len());
        let mut retained_to_send: Vec<(Message, SubscriptionOptions, Vec<u32>)> = Vec::new();
        for f in &sub.filters {
            let shared = v5 && topic::split_shared(&f.filter).is_some();
            let failure = if v5 {
                None
            } else {
                Some(reason::v3::SUBACK_FAILURE)
            };
            let code = if shared && !self.config.shared_subscriptions {
                failure.unwrap_or(reason::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
            } else if topic::has_wildcard(&f.filter)
                && !self.config.wildcard_subscriptions
                && (v5 || !self.breaks("MQTT-3.8.3-2"))
            {
                // MQTT-3.8.3-2 (3.1.1): refuse wildcard filters when they are
                // not supported; the violation grants them to 3.1.1 clients.
                failure.unwrap_or(reason::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED)
            } else if f.filter.len() > self.config.max_topic_length
                || f.filter.split('/').count() > self.config.max_topic_levels
            {
                failure.unwrap_or(reason::TOPIC_FILTER_INVALID)
            } else if !self.may_subscribe(conn, client_id, &f.filter) {
                failure.unwrap_or(reason::NOT_AUTHORIZED)
            } else {
                let Some(s) = self.sessions.get_mut(client_id) else {
                    return;
                };
                let exists = s.subscriptions.contains_key(&f.filter);
                if !exists && s.subscriptions.len() >= self.config.max_subscriptions_per_client {
                    failure.unwrap_or(reason::QUOTA_EXCEEDED)
                } else {
                    let max = QoS::from_u8(self.config.maximum_qos).unwrap_or(QoS::ExactlyOnce);
                    let granted = f.options.qos.min(max);
                    let over_max = f.options.qos > max;
                    let mut options = f.options;
                    options.qos = granted;
                    // MQTT-3.8.4-3: a subscription with the same filter is
                    // replaced; the violation keeps the old one.
                    self.routes.invalidate();
                    let keep_old = exists && self.config.violations.breaks("MQTT-3.8.4-3");
                    if !keep_old {
                        s.subscriptions.insert(
                            own(&f.filter),
                            Subscription {
                                options,
                                id: sub_id,
                            },
                        );
                    }
                    // Retained messages: Retain Handling 0 always, 1 for a new
                    // subscription, 2 never (MQTT-3.3.1-9/10/11); none for shared ones.
                    let send_retained = !shared
                        && (options.retain_handling == 0
                            || (options.retain_handling == 1 && !exists));
                    if send_retained {
                        for (t, m) in &self.retained {
                            if self.matches(&f.filter, t) {
                                retained_to_send.push((
                                    m.clone(),
                                    options,
                                    sub_id.into_iter().collect(),
                                ));
                            }
                        }
                    }
                    if over_max && self.breaks("MQTT-3.2.2-10") {
                        // The violation refuses what it should grant at a lower
                        // QoS, with a code SUBACK may carry (0x9B may not).
                        failure.unwrap_or(reason::UNSPECIFIED_ERROR)
                    } else if self.breaks("MQTT-3.8.4-7") {
                        // The violation reports the requested QoS, not the granted one.
                        f.options.qos.as_u8()
                    } else {
                        granted.as_u8()
                    }
                }
            };
            // MQTT-3.9.3-2: 3.1.1 codes for 3.1.1; the violation sends 5.0's.
            let code = if !v5 && code == reason::v3::SUBACK_FAILURE && self.breaks("MQTT-3.9.3-2") {
                reason::NOT_AUTHORIZED
            } else {
                code
            };
            codes.push(code);
        }
        // MQTT-3.9.3-1: codes in the order of the filters; the violation reverses them.
        if self.breaks("MQTT-3.9.3-1") {
            codes.reverse();
        }
        if !self.breaks("MQTT-3.8.4-1") {
            let packet_id = if self.breaks("MQTT-3.8.4-2") {
                sub.packet_id.wrapping_add(1).max(1)
            } else {
                sub.packet_id
            };
            // MQTT-3.8.4-5 (5.0) / 3.8.4-4 (3.1.1): one SUBACK for all the
            // filters; the violation answers each filter on its own.
            let groups = if self.breaks("MQTT-3.8.4-5") {
                codes.into_iter().map(|c| vec![c]).collect()
            } else {
                vec![codes]
            };
            for reason_codes in groups {
                self.send(
                    conn,
                    Packet::SubAck(SubAck {
                        packet_id,
                        properties: Properties::new(),
                        reason_codes,
                    }),
                );
            }
        }
        for (m, opts, ids) in retained_to_send {
            if m.expires_at.is_some_and(|at| at <= now) {
                continue;
            }
            self.deliver(client_id, m, opts, ids, true, now);
        }
    }

    fn unsubscribe(&mut self, conn: ConnId, client_id: &ByteString, u: Unsubscribe) {
        let v5 = self.conns.get(&conn).is_some_and(|c| c.protocol.is_v5());
        let mut codes = Vec::new();
        if let Some(s) = self.sessions.get_mut(client_id) {
            for f in &u.filters {
                // MQTT-3.10.4-1: compared character by character. The
                // violation (MQTT-3.10.4-2) answers but keeps the subscription.
                let existed = if self.config.violations.breaks("MQTT-3.10.4-2") {
                    s.subscriptions.contains_key(f)
                } else {
                    s.subscriptions.remove(f).is_some()
                };
                // MQTT-3.10.4-3: deliveries in flight are finished; the violation
                // forgets those whose topic the filter matches.
                if self.config.violations.breaks("MQTT-3.10.4-3") {
                    s.flow
                        .inflight
                        .retain(|_, o| !topic::matches(f, &o.packet.topic));
                }
                if existed {
                    self.routes.invalidate();
                }
                codes.push(if existed {
                    0
                } else {
                    reason::NO_SUBSCRIPTION_EXISTED
                });
            }
        }
        if self.breaks("MQTT-3.10.4-4") {
            return;
        }
        // MQTT-3.11.3-1: codes in the order of the filters; the violation reverses them.
        if self.breaks("MQTT-3.11.3-1") {
            codes.reverse();
        }
        // MQTT-3.10.4-6: one UNSUBACK for all filters; the violation sends one per filter.
        if self.breaks("MQTT-3.10.4-6") && u.filters.len() > 1 {
            for code in codes {
                self.send(
                    conn,
                    Packet::UnsubAck(UnsubAck {
                        packet_id: u.packet_id,
                        properties: Properties::new(),
                        reason_codes: if v5 { vec![code] } else { Vec::new() },
                    }),
                );
            }
            return;
        }
        self.send(
            conn,
            Packet::UnsubAck(UnsubAck {
                packet_id: u.packet_id,
                properties: Properties::new(),
                // MQTT-3.11.3-2: one code per filter; the violation sends
                // the 3.1.1 form (none) to 5.0 clients too.
                reason_codes: if v5 && !self.breaks("MQTT-3.11.3-2") {
                    codes
                } else {
                    Vec::new()
                },
            }),
        );
    }

    /// Gives back what idle sessions hold for messages they no longer have
    /// (see `FlowBox`); the tokio layer calls it every `park_after`.
    pub fn compact(&mut self) {
        self.sessions.compact();
    }

    /// Runs the timers due at `now`: CONNECT deadline, keep alive, will delay,
    /// session expiry, retained message expiry.
    pub fn tick(&mut self, now: Instant) {
        let mut late_connect = Vec::new();
        let mut keep_alive = Vec::new();
        for (&id, c) in &self.conns {
            match &c.state {
                ConnState::AwaitConnect { deadline } if *deadline <= now => late_connect.push(id),
                ConnState::Connected { .. } => {
                    if let Some(ka) = c.keep_alive() {
                        // MQTT-3.1.2-24 (3.1.1) / 3.1.2-22 (5.0): one and a half times the keep alive.
                        // A connection the broker stopped reading is not idle.
                        if c.last_packet + ka + ka / 2 <= now
                            && !self.waiting.contains_key(&id)
                            && !self.config.violations.breaks("MQTT-3.1.2-24")
                        {
                            keep_alive.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        for id in late_connect {
            self.close(id);
        }
        for id in keep_alive {
            self.disconnect(id, reason::KEEP_ALIVE_TIMEOUT, now);
        }
        let mut wills = Vec::new();
        let mut expired = Vec::new();
        // Only the sessions that change are taken mutably (the journal
        // notes every session taken so).
        let keep_expired = self.config.violations.breaks("MQTT-4.1.0-1");
        let due: Vec<ByteString> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.pending_will.as_ref().is_some_and(|w| w.at <= now)
                    || ((s.conn().is_none() || keep_expired)
                        && s.expires_at.is_some_and(|at| at <= now))
            })
            .map(|(cid, _)| cid.clone())
            .collect();
        for cid in due {
            let Some(s) = self.sessions.get_mut(&cid) else {
                continue;
            };
            if let Some(w) = s.pending_will.as_ref().filter(|w| w.at <= now) {
                wills.push(w.message.clone());
                s.pending_will = None;
            }
            let detached = s.conn().is_none() || keep_expired;
            if detached && s.expires_at.is_some_and(|at| at <= now) {
                // MQTT-4.1.0-2: an expired session is discarded (the violation keeps it).
                if self.config.violations.breaks("MQTT-4.1.0-2") {
                    s.expires_at = None;
                    continue;
                }
                expired.push(cid.clone());
            }
        }
        for cid in expired {
            // MQTT-4.8.2-5: a shared message whose receiver's session ends is
            // not handed to another member; the violation redirects it.
            if self.breaks("MQTT-4.8.2-5") {
                let unacked: Vec<Publish> = self.sessions.get(&cid).map_or_else(Vec::new, |s| {
                    s.flow
                        .inflight
                        .values()
                        .filter(|f| matches!(f.state, OutState::Publish(_)))
                        .map(|f| f.packet.clone())
                        .collect()
                });
                for p in unacked {
                    self.redirect_shared(&cid, p, now);
                }
            }
            if let Some(s) = self.sessions.remove(&cid) {
                if let Some(w) = s.pending_will {
                    wills.push(w.message);
                }
            }
        }
        for w in wills {
            self.publish_will(w, now);
        }
        let changed = &mut self.retained_changed;
        self.retained.retain(|topic, m| {
            let live = m.expires_at.filter(|at| *at <= now).is_none();
            if let Some(changed) = changed.as_mut().filter(|_| !live) {
                changed.insert(topic.clone());
            }
            live
        });
    }

    /// When [`Broker::tick`] must next be called, if any timer is pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ignore_keep_alive = self.breaks("MQTT-3.1.2-24");
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for (id, c) in &self.conns {
            match &c.state {
                ConnState::AwaitConnect { deadline } => consider(*deadline),
                ConnState::Connected { .. } => {
                    // Under the keep-alive violation tick() never clears this
                    // deadline: offering it would make the timer task spin.
                    // The same for a paused connection, whose keep alive waits
                    // until it resumes (release() restarts it).
                    let paused = self.waiting.contains_key(id);
                    if let Some(ka) = c.keep_alive().filter(|_| !ignore_keep_alive && !paused) {
                        consider(c.last_packet + ka + ka / 2);
                    }
                }
                ConnState::Closing => {}
            }
        }
        for s in self.sessions.values() {
            if let Some(w) = &s.pending_will {
                consider(w.at);
            }
            // The MQTT-4.1.0-1 violation runs the expiry of connected
            // sessions too: it must wake the timer, not wait for another one.
            if s.conn().is_none() || self.breaks("MQTT-4.1.0-1") {
                if let Some(at) = s.expires_at {
                    consider(at);
                }
            }
        }
        for m in self.retained.values() {
            if let Some(at) = m.expires_at {
                consider(at);
            }
        }
        next
    }

    /// The protocol `conn` speaks (3.1.1 until its CONNECT says otherwise).
    pub fn protocol(&self, conn: ConnId) -> Option<Protocol> {
        self.conns.get(&conn).map(|c| c.protocol)
    }
}
