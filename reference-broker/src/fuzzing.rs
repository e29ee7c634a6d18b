//! The fuzz harness of the sans-IO core: `fuzz/fuzz_targets/broker.rs` is one
//! call into [`run`], and `cargo test` runs it over the committed seeds and a
//! few thousand generated scripts (`tests/fuzz_broker.rs`).
//!
//! The fuzzer's bytes are read, through `Unstructured`, as a configuration
//! and then a script of operations on a few clients against one [`Broker`]
//! on a fake clock: open a connection; CONNECT from a small pool of client
//! ids, versions and options (so that sessions resume, expire and are taken
//! over, wills wait and fire); SUBSCRIBE, UNSUBSCRIBE and PUBLISH over small
//! pools of filters and topics (so that messages route, are retained,
//! queued, aliased and shared); acknowledgements of the identifiers the
//! client was sent or chose; PINGREQ and DISCONNECT; any packet from the
//! codec's generator; raw bytes through the connection's own decoder (so
//! that malformed packets and their refusals happen); a dropped connection;
//! time passing.
//!
//! After every operation, what must hold (the harness panics, and only
//! panics, when it does not):
//! - the core does not panic;
//! - every packet it sends is one a server may send in that connection's
//!   version: it encodes, and its bytes decode back, as sent by a server, to
//!   the same packet;
//! - nothing is sent on a connection after the core closed it;
//! - the core counts exactly the connections opened and not yet closed;
//! - once `tick(now)` has run, `poll_timeout()` is later than `now`: an
//!   earlier deadline would have the timer task spin;
//! - what the core delivers, holds in flight and says about sessions agrees
//!   with a small model of subscriptions and sessions (`fuzzing/model.rs`):
//!   nothing reaches a client with no subscription that permits it, in-flight
//!   stays within the client's Receive Maximum, and a QoS 1/2 message
//!   acknowledged to its publisher reaches a persistent session across
//!   reconnects (at the end, every client acknowledges what it holds and every
//!   owed session comes back for it);
//! - memory stays within the configured limits: session queues, sessions and
//!   retained messages (see `check_limits`);
//! - the journal `--persist` appends (`broker/journal.rs`), replayed onto
//!   the state it started from, is the state: what a restart would read
//!   is what the core holds (see `check_journal`).
//!
//! As the tokio layer does, the harness holds back what a connection the
//! core paused sends, but for acknowledgements and pings
//! (`broker::passes_pause`; here: what is held is never read).
//!
//! Why one file of 850 lines: nearly all of it is `World`, whose operations
//! and the checks run after each share its state (connections, what each
//! was sent, the journal replayed beside the core); the model they are
//! checked against is `fuzzing/model.rs`.

// Why one file of ~840 lines: the script's operations, the checks after
// each and the report of a finding share one `World`; the model of who may
// receive what already stands alone (`fuzzing/model.rs`).

use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    decode_bytes, encode_bytes, gen, Connect, DecodeOptions, Decoded, Decoder, Disconnect, Packet,
    PacketType, Properties, Property, Protocol, PubResponse, Publish, QoS, Sender, Subscribe,
    Subscription, SubscriptionOptions, Unsubscribe, Will,
};

use crate::broker::{
    journal, passes_pause, Action, Broker, Clocks, ConnId, Journal, OnError, Snapshot,
};
use crate::config::Config;

mod model;
use model::Model;

/// Most operations in one script.
const MAX_OPS: usize = 256;
/// Most connections open at once.
const MAX_CONNS: usize = 6;
/// Most raw bytes in one operation.
const MAX_RAW: usize = 48;

const CLIENT_IDS: &[&str] = &["a", "b", "c", ""];
const TOPICS: &[&str] = &["t", "t/a", "t/b", "u", "$SYS/x"];
const FILTERS: &[&str] = &[
    "t",
    "t/+",
    "#",
    "t/#",
    "+/a",
    "$share/g/t/a",
    "$share/g/#",
    "u",
];
const PROTOCOLS: [Protocol; 3] = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5];
const STEPS: &[Duration] = &[
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(3600),
    Duration::from_secs(86_400),
];

/// Runs the script in `data` (see the module's documentation).
pub fn run(data: &[u8]) {
    run_breaking(data, &[]);
}

/// [`run`] against a core that breaks `statements` on purpose (ids of
/// [`crate::violation`]): the harness must then find something, which is
/// how the tests know that its checks work.
pub fn run_breaking(data: &[u8], statements: &[&str]) {
    let mut u = Unstructured::new(data);
    let Ok(mut config) = config(&mut u) else {
        return;
    };
    for s in statements {
        if let Err(e) = config.violations.add(s) {
            panic!("{e}"); // ok: a test asked for a violation that does not exist
        }
    }
    let mut world = World::new(config);
    for _ in 0..MAX_OPS {
        if u.is_empty() || world.step(&mut u).is_err() {
            break;
        }
    }
    // Every connected client acknowledges what it holds; everyone leaves;
    // every persistent session still owed a message comes back for it.
    world.settle_all();
    let open: Vec<usize> = (0..world.conns.len()).collect();
    for i in open {
        world.drop_conn(i);
    }
    world.reclaim();
    world.advance(Duration::from_secs(86_400 * 30));
    if world.broker.connection_count() != 0 {
        world.finding(format!(
            "{} connections counted after every one closed",
            world.broker.connection_count()
        ));
    }
}

/// Clocks for the journal's check: the wall clock runs with the fake one,
/// from a whole second, so that times convert the same way at every step.
fn journal_clocks(start: Instant, now: Instant) -> Clocks {
    Clocks {
        now,
        wall: std::time::SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + now.saturating_duration_since(start),
    }
}

/// A configuration with small limits, so that they are reached.
fn config(u: &mut Unstructured<'_>) -> Result<Config> {
    let mut c = Config {
        receive_maximum: *u.choose(&[65_535, 1, 2])?,
        maximum_qos: *u.choose(&[2, 1, 0])?,
        retain_available: !u.ratio(1, 8)?,
        topic_alias_maximum: *u.choose(&[10, 0, 1])?,
        max_queued_messages: *u.choose(&[1000, 1, 3])?,
        max_inflight: *u.choose(&[20, 1, 2])?,
        max_connections: MAX_CONNS,
        max_packet_size: *u.choose(&[1 << 20, 40, 128])?,
        ..Config::default()
    };
    if u.ratio(1, 8)? {
        c.server_keep_alive = Some(1);
    }
    if u.ratio(1, 8)? {
        c.max_session_expiry = 5;
    }
    Ok(c)
}

struct Conn {
    id: ConnId,
    /// The version it announced in CONNECT (3.1.1 until then).
    protocol: Protocol,
    decoder: Decoder,
    buf: BytesMut,
    /// The core asked for the connection to close, or it was dropped.
    closed: bool,
    /// Packet identifiers the core used towards this client, to acknowledge.
    ids: Vec<u16>,
}

struct World {
    broker: Broker,
    now: Instant,
    start: Instant,
    /// The journal kept of the core, and the state it replays to.
    journal: Journal,
    replayed: Snapshot,
    conns: Vec<Conn>,
    /// What was done so far, for the report of a finding.
    script: Vec<Op>,
    /// Who may receive what, and what is owed (see `model.rs`).
    model: Model,
    /// Wills announced: each may land on a full queue with no publisher to pause.
    wills: usize,
    /// Retained PUBLISHes and retained wills the harness sent (an upper
    /// bound on the retained messages the core holds), and the deliveries SUBSCRIBEs may have
    /// queued from them: each subscription with Retain Handling 0 sends the
    /// matching retained messages again (MQTT-3.3.1-9), with no publisher to
    /// pause, so they count towards the queue bound as wills do.
    retained_sent: usize,
    retained_deliveries: usize,
}

/// One operation of the script, as carried out.
#[derive(Debug)]
enum Op {
    Open(usize),
    Packet(usize, Packet),
    Raw(usize, Vec<u8>),
    Drop(usize),
    Advance(Duration),
}

impl World {
    fn new(config: Config) -> World {
        let now = Instant::now();
        let mut broker = Broker::new(config.clone());
        let clocks = journal_clocks(now, now);
        World {
            model: Model::new(&config),
            journal: broker.start_journal(clocks),
            replayed: broker.snapshot(clocks),
            broker,
            now,
            start: now,
            conns: Vec::new(),
            script: Vec::new(),
            wills: 0,
            retained_sent: 0,
            retained_deliveries: 0,
        }
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let live: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns.get(i).is_some_and(|c| !c.closed))
            .collect();
        let op = if live.is_empty() {
            0
        } else {
            u.int_in_range(0..=11u8)?
        };
        let i = if live.is_empty() {
            0
        } else {
            *u.choose(&live)?
        };
        match op {
            0 => self.open(),
            1 => {
                let c = self.connect(u)?;
                if let Some(conn) = self.conns.get_mut(i) {
                    conn.protocol = c.protocol;
                    conn.decoder.options.protocol = c.protocol;
                }
                self.packet(i, Packet::Connect(Box::new(c)));
            }
            2 => {
                let p = self.subscribe(u, i)?;
                self.packet(i, p);
            }
            3 => {
                let p = self.unsubscribe(u, i)?;
                self.packet(i, p);
            }
            4 | 5 => {
                let p = self.publish(u, i)?;
                self.packet(i, p);
            }
            6 => {
                let p = self.ack(u, i)?;
                self.packet(i, p);
            }
            7 => self.packet(i, Packet::PingReq),
            8 => {
                let p = self.disconnect(u, i)?;
                self.packet(i, p);
            }
            9 => {
                let protocol = self.protocol(i);
                let p = gen::packet(u, protocol, Sender::Client)?;
                if let Packet::Connect(c) = &p {
                    if let Some(conn) = self.conns.get_mut(i) {
                        conn.protocol = c.protocol;
                        conn.decoder.options.protocol = c.protocol;
                    }
                }
                self.packet(i, p);
            }
            10 => {
                let n = u.int_in_range(1..=MAX_RAW)?;
                let bytes = u.bytes(n.min(u.len()))?.to_vec();
                self.raw(i, &bytes);
            }
            _ => {
                if u.ratio(1, 2)? {
                    self.drop_conn(i);
                } else {
                    let d = *u.choose(STEPS)?;
                    self.advance(d);
                }
            }
        }
        self.check_count();
        self.check_limits();
        self.check_journal();
        Ok(())
    }

    /// The journal's records since the last step, replayed, give the state
    /// a snapshot would hold.
    fn check_journal(&mut self) {
        let clocks = journal_clocks(self.start, self.now);
        let mut records = Vec::new();
        self.broker.journal(&mut self.journal, clocks, &mut records);
        if let Err(e) = journal::replay(&mut self.replayed, &records) {
            self.finding(format!("the journal does not replay: {e}"));
        }
        // Where a session's search for a free packet identifier starts is
        // journaled only with the rest of the session (`log_session`).
        let mut state = self.broker.snapshot(clocks);
        for (a, b) in state.sessions.iter_mut().zip(&self.replayed.sessions) {
            a.next_packet_id = b.next_packet_id;
        }
        if state != self.replayed {
            let text = |s: &Snapshot| String::from_utf8_lossy(&s.to_json()).into_owned();
            self.finding(format!(
                "the journal replayed is not the state\n journal: {}\n   state: {}",
                text(&self.replayed),
                text(&state)
            ));
        }
    }

    /// A packet the core is about to be handed, shown to the model first.
    fn model_in(&mut self, i: usize, packet: &Packet) {
        match packet {
            Packet::Connect(c) if c.will.is_some() => {
                self.wills += 1;
                // Published, a retained will is a retained message like
                // any other, sent again by every SUBSCRIBE that matches it
                // (found by this target: `seed-found-retained-will-resubscribe`).
                if c.will.as_ref().is_some_and(|w| w.retain) {
                    self.retained_sent += 1;
                }
            }
            Packet::Publish(p) if p.retain => self.retained_sent += 1,
            Packet::Subscribe(s) => {
                let more = s.filters.len().saturating_mul(self.retained_sent);
                self.retained_deliveries = self.retained_deliveries.saturating_add(more);
            }
            _ => {}
        }
        self.model.client_sent(i, packet);
    }

    /// Memory stays within the configured limits: a session's queue holds at
    /// most `max_queued_messages`, plus one message per time a publisher was
    /// paused for it, one per will and one per retained message a SUBSCRIBE
    /// delivers (neither has a publisher to pause); the
    /// core holds no session and no retained message no client made.
    fn check_limits(&mut self) {
        while self.broker.poll_resumed().is_some() {}
        let counters = self.broker.counters();
        let pauses = usize::try_from(counters.publisher_pauses).unwrap_or(usize::MAX);
        let bound = self
            .broker
            .config()
            .max_queued_messages
            .saturating_add(pauses)
            .saturating_add(self.wills)
            .saturating_add(self.retained_deliveries);
        let ids: Vec<String> = self.model.client_ids().map(String::from).collect();
        for id in ids {
            let queued = self.broker.queued(&id);
            if queued > bound {
                self.finding(format!(
                    "{queued} messages queued for {id:?}, above the bound {bound} \
                     (max_queued_messages + publisher pauses + wills + retained deliveries)"
                ));
            }
        }
        if counters.queue_high_water > bound {
            self.finding(format!(
                "a queue reached {} messages, above the bound {bound}",
                counters.queue_high_water
            ));
        }
        if self.broker.session_count() > self.model.session_count() {
            self.finding(format!(
                "the core holds {} sessions, clients made {}",
                self.broker.session_count(),
                self.model.session_count()
            ));
        }
        if self.broker.retained_count() > self.model.retained_bound() {
            self.finding(format!(
                "the core retains {} messages on at most {} topics published with RETAIN",
                self.broker.retained_count(),
                self.model.retained_bound()
            ));
        }
    }

    /// The client on connection `i` acknowledges everything in flight to it
    /// (PUBACK; PUBREC then PUBCOMP), until nothing is left or it closes.
    fn settle(&mut self, i: usize) {
        for _ in 0..64 {
            let inflight = self.model.inflight(i);
            if inflight.is_empty() {
                return;
            }
            for (id, qos) in inflight {
                if self.conns.get(i).is_none_or(|c| c.closed) {
                    return;
                }
                if qos == 1 {
                    self.packet(i, Packet::PubAck(PubResponse::new(id)));
                } else {
                    self.packet(i, Packet::PubRec(PubResponse::new(id)));
                    if self.conns.get(i).is_some_and(|c| !c.closed) {
                        self.packet(i, Packet::PubComp(PubResponse::new(id)));
                    }
                }
            }
        }
    }

    /// Every connected client with a session settles what it holds.
    fn settle_all(&mut self) {
        for i in 0..self.conns.len() {
            let live = self.conns.get(i).is_some_and(|c| !c.closed);
            if live && self.model.session_of(i).is_some() {
                self.settle(i);
            }
        }
    }

    /// With every connection gone, each persistent session still owed a
    /// message reconnects (Clean Start 0) and settles; then every owed
    /// message must have reached its session.
    fn reclaim(&mut self) {
        for (client_id, protocol) in self.model.owing() {
            self.open();
            let i = self.conns.len() - 1;
            if let Some(conn) = self.conns.get_mut(i) {
                conn.protocol = protocol;
                conn.decoder.options.protocol = protocol;
            }
            let mut c = Connect::new(protocol, client_id.as_str());
            c.clean_start = false;
            self.packet(i, Packet::Connect(Box::new(c)));
            if self.model.session_of(i).is_some() {
                self.settle(i);
            }
            self.drop_conn(i);
        }
        let dropped = self.broker.counters().dropped_offline > 0;
        if let Err(e) = self.model.check_owed(dropped) {
            self.finding(e);
        }
    }

    fn protocol(&self, i: usize) -> Protocol {
        self.conns.get(i).map_or(Protocol::V3_1_1, |c| c.protocol)
    }

    fn open(&mut self) {
        if self.conns.iter().filter(|c| !c.closed).count() >= MAX_CONNS {
            return;
        }
        self.script.push(Op::Open(self.conns.len()));
        let Some(id) = self.broker.open(self.now) else {
            self.finding("open refused below the connection limit".into());
        };
        let max = self.broker.config().max_packet_size;
        self.conns.push(Conn {
            id,
            protocol: Protocol::V3_1_1,
            decoder: Decoder::new(
                DecodeOptions::new(Protocol::V3_1_1, Sender::Client).with_max_packet_size(max),
            ),
            buf: BytesMut::new(),
            closed: false,
            ids: Vec::new(),
        });
        self.model.opened();
        self.pump();
    }

    fn packet(&mut self, i: usize, packet: Packet) {
        let Some(id) = self.conns.get(i).map(|c| c.id) else {
            return;
        };
        // The I/O layer holds what a paused connection sends but its
        // acknowledgements and pings; this is never read.
        if !passes_pause(&packet) && self.broker.paused(id) {
            return;
        }
        self.script.push(Op::Packet(i, packet.clone()));
        self.model_in(i, &packet);
        self.broker.packet(id, packet, self.now);
        self.pump();
    }

    /// Bytes through the connection's decoder, as the tokio layer reads them.
    fn raw(&mut self, i: usize, bytes: &[u8]) {
        self.script.push(Op::Raw(i, bytes.to_vec()));
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        conn.buf.extend_from_slice(bytes);
        let id = conn.id;
        loop {
            let Some(conn) = self.conns.get_mut(i) else {
                return;
            };
            if conn.closed {
                return;
            }
            match conn.decoder.decode(&mut conn.buf) {
                Ok(Some(packet)) => {
                    if let Packet::Connect(c) = &packet {
                        conn.protocol = c.protocol;
                    }
                    if !passes_pause(&packet) && self.broker.paused(id) {
                        continue;
                    }
                    self.model_in(i, &packet);
                    self.broker.packet(id, packet, self.now);
                    self.pump();
                }
                Ok(None) => return,
                Err(e) => {
                    conn.buf.clear();
                    if self.broker.decode_error(id, &e, self.now) == OnError::Skip {
                        self.finding(format!("a refusal skipped without a violation: {e}"));
                    }
                    self.pump();
                    if self.conns.get(i).is_some_and(|c| !c.closed) {
                        self.finding(format!("still open after a refused packet: {e}"));
                    }
                    return;
                }
            }
        }
    }

    fn drop_conn(&mut self, i: usize) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        if conn.closed {
            return;
        }
        conn.closed = true;
        let id = conn.id;
        self.script.push(Op::Drop(i));
        self.model.closed(i, self.now);
        self.broker.closed(id, self.now);
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        self.script.push(Op::Advance(d));
        self.now += d;
        self.broker.tick(self.now);
        self.pump();
        if let Some(at) = self.broker.poll_timeout() {
            if at <= self.now {
                self.finding(format!(
                    "after tick, the next deadline is {:?} in the past",
                    self.now - at
                ));
            }
        }
    }

    /// Carries out the core's actions, checking each.
    fn pump(&mut self) {
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send {
                    conn,
                    protocol,
                    packet,
                } => {
                    match self.conns.iter().find(|c| c.id == conn) {
                        None => self.finding(format!(
                            "{packet:?} sent on connection {conn}, never opened"
                        )),
                        Some(c) if c.closed => {
                            self.finding(format!("{packet:?} sent on closed connection {conn}"))
                        }
                        Some(_) => {}
                    }
                    if let Err(e) = check_sendable(&packet, protocol) {
                        self.finding(e);
                    }
                    if let Some(i) = self.conns.iter().position(|c| c.id == conn) {
                        if let Err(e) = self.model.server_sent(i, &packet, self.now) {
                            self.finding(e);
                        }
                    }
                    if let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) {
                        if let Some(id) = packet.packet_id().filter(|&id| id != 0) {
                            if c.ids.len() >= 8 {
                                c.ids.remove(0);
                            }
                            c.ids.push(id);
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(i) = self.conns.iter().position(|c| c.id == conn) {
                        if self.conns.get(i).is_some_and(|c| !c.closed) {
                            if let Some(c) = self.conns.get_mut(i) {
                                c.closed = true;
                            }
                            self.model.closed(i, self.now);
                            self.broker.closed(conn, self.now);
                        }
                    }
                }
            }
        }
        self.unanswered();
    }

    /// After the core's actions: a CONNECT it left unanswered (see
    /// `Model::unanswered`).
    fn unanswered(&mut self) {
        for i in self.model.awaiting_connack() {
            // A closed one may have left its session behind too.
            self.model.unanswered(i);
            if self.conns.get(i).is_none_or(|c| c.closed) {
                self.model.closed(i, self.now);
            }
        }
    }

    /// Reports a broken property with the script that led to it.
    fn finding(&self, what: String) -> ! {
        let mut report = format!("{what}\nthe script ({} operations):", self.script.len());
        for (n, op) in self.script.iter().enumerate() {
            let line = match op {
                Op::Open(i) => format!("open connection {i}"),
                Op::Packet(i, p) => format!("connection {i} sends {p:?}"),
                Op::Raw(i, b) => format!("connection {i} sends bytes {b:02x?}"),
                Op::Drop(i) => format!("connection {i} drops"),
                Op::Advance(d) => format!("{d:?} pass"),
            };
            report.push_str(&format!("\n  {n:>3}. {line}"));
        }
        panic!("{report}") // ok: this is how libFuzzer learns of a finding
    }

    fn check_count(&self) {
        let open = self.conns.iter().filter(|c| !c.closed).count();
        if self.broker.connection_count() != open {
            self.finding(format!(
                "the core counts {} connections, {open} are open",
                self.broker.connection_count()
            ));
        }
    }

    fn connect(&self, u: &mut Unstructured<'_>) -> Result<Connect> {
        let protocol = *u.choose(&PROTOCOLS)?;
        let v5 = protocol.is_v5();
        let mut c = Connect::new(protocol, *u.choose(CLIENT_IDS)?);
        c.clean_start = u.arbitrary()?;
        c.keep_alive = *u.choose(&[0, 1, 60])?;
        if v5 {
            let mut props = Vec::new();
            if let Some(s) = *u.choose(&[None, Some(0), Some(2), Some(u32::MAX)])? {
                props.push(Property::SessionExpiryInterval(s));
            }
            if u.ratio(1, 4)? {
                props.push(Property::ReceiveMaximum(1));
            }
            if u.ratio(1, 4)? {
                props.push(Property::TopicAliasMaximum(2));
            }
            if u.ratio(1, 4)? {
                props.push(Property::MaximumPacketSize(*u.choose(&[30, 64])?));
            }
            if u.ratio(1, 8)? {
                props.push(Property::RequestProblemInformation(0));
            }
            c.properties = Properties(props);
        }
        if u.ratio(1, 3)? {
            let mut properties = Properties::new();
            if v5 && u.ratio(1, 2)? {
                properties.push(Property::WillDelayInterval(*u.choose(&[1, 3600])?));
            }
            c.will = Some(Will {
                qos: qos(u)?,
                retain: u.arbitrary()?,
                properties,
                topic: (*u.choose(TOPICS)?).into(),
                payload: Bytes::from(format!("w{}", self.script.len())),
            });
        }
        Ok(c)
    }

    fn subscribe(&self, u: &mut Unstructured<'_>, i: usize) -> Result<Packet> {
        let v5 = self.protocol(i).is_v5();
        let mut filters = Vec::new();
        for _ in 0..u.int_in_range(1..=2)? {
            let mut options = SubscriptionOptions::qos(qos(u)?);
            if v5 {
                options.no_local = u.ratio(1, 4)?;
                options.retain_as_published = u.ratio(1, 4)?;
                options.retain_handling = u.int_in_range(0..=2)?;
            }
            let filter = *u.choose(FILTERS)?;
            // No Local on a shared subscription is a protocol error the
            // decoder refuses; the core never sees it.
            if filter.starts_with("$share/") {
                options.no_local = false;
            }
            filters.push(Subscription {
                filter: filter.into(),
                options,
            });
        }
        let mut properties = Properties::new();
        if v5 && u.ratio(1, 4)? {
            properties.push(Property::SubscriptionIdentifier(*u.choose(&[1, 2])?));
        }
        Ok(Packet::Subscribe(Subscribe {
            packet_id: u.int_in_range(1..=4)?,
            properties,
            filters,
        }))
    }

    fn unsubscribe(&self, u: &mut Unstructured<'_>, _i: usize) -> Result<Packet> {
        Ok(Packet::Unsubscribe(Unsubscribe {
            packet_id: u.int_in_range(1..=4)?,
            properties: Properties::new(),
            filters: vec![(*u.choose(FILTERS)?).into()],
        }))
    }

    fn publish(&self, u: &mut Unstructured<'_>, i: usize) -> Result<Packet> {
        let v5 = self.protocol(i).is_v5();
        let qos = qos(u)?;
        let mut topic = (*u.choose(TOPICS)?).to_string();
        let mut properties = Properties::new();
        if v5 {
            if u.ratio(1, 4)? {
                properties.push(Property::MessageExpiryInterval(*u.choose(&[1, 100])?));
            }
            if u.ratio(1, 4)? {
                properties.push(Property::TopicAlias(u.int_in_range(1..=2)?));
                if u.ratio(1, 2)? {
                    topic.clear();
                }
            }
        }
        // A payload of its own, so that the model knows which message a
        // delivery is (an empty one is shared, and the model permits more).
        let payload = if u.ratio(1, 4)? {
            Bytes::new()
        } else {
            Bytes::from(format!("m{}", self.script.len()))
        };
        Ok(Packet::Publish(Publish {
            dup: qos != QoS::AtMostOnce && u.ratio(1, 8)?,
            qos,
            retain: u.ratio(1, 3)?,
            topic: topic.into(),
            packet_id: if qos == QoS::AtMostOnce {
                0
            } else {
                u.int_in_range(1..=4)?
            },
            properties,
            payload,
        }))
    }

    fn ack(&self, u: &mut Unstructured<'_>, i: usize) -> Result<Packet> {
        let v5 = self.protocol(i).is_v5();
        let sent = self.conns.get(i).map(|c| c.ids.clone()).unwrap_or_default();
        let id = if !sent.is_empty() && u.ratio(3, 4)? {
            *u.choose(&sent)?
        } else {
            u.int_in_range(1..=4)?
        };
        let mut r = PubResponse::new(id);
        let ty = *u.choose(&[
            PacketType::PubAck,
            PacketType::PubRec,
            PacketType::PubRel,
            PacketType::PubComp,
        ])?;
        if v5 && matches!(ty, PacketType::PubAck | PacketType::PubRec) && u.ratio(1, 8)? {
            r.reason_code = 0x80;
        }
        Ok(match ty {
            PacketType::PubAck => Packet::PubAck(r),
            PacketType::PubRec => Packet::PubRec(r),
            PacketType::PubRel => Packet::PubRel(r),
            _ => Packet::PubComp(r),
        })
    }

    fn disconnect(&self, u: &mut Unstructured<'_>, i: usize) -> Result<Packet> {
        let mut d = Disconnect::default();
        if self.protocol(i).is_v5() {
            d.reason_code = *u.choose(&[0x00, 0x04])?;
            if u.ratio(1, 4)? {
                d.properties
                    .push(Property::SessionExpiryInterval(*u.choose(&[0, 10])?));
            }
        }
        Ok(Packet::Disconnect(d))
    }
}

fn qos(u: &mut Unstructured<'_>) -> Result<QoS> {
    Ok(*u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?)
}

/// The packet encodes in `protocol`, and decodes back, as sent by a
/// server, to itself.
fn check_sendable(packet: &Packet, protocol: Protocol) -> std::result::Result<(), String> {
    let bytes: Bytes = encode_bytes(packet, protocol)
        .map_err(|e| format!("the core sends {packet:?}, which does not encode: {e}"))?;
    let opts = DecodeOptions::new(protocol, Sender::Server).with_max_packet_size(u32::MAX);
    match decode_bytes(&bytes, &opts) {
        Ok(Decoded::Packet { packet: back, len }) if len == bytes.len() && back == *packet => {
            Ok(())
        }
        other => Err(format!(
            "the core sends {packet:?} in {protocol}, which a client decodes as {other:?}"
        )),
    }
}
