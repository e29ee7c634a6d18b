//! Running one [`Input`] against a target over `mqtt_net`: one task per
//! connection reads (so that several connections are watched at once) and
//! writes what it is told, every write under a deadline; the events come
//! back on one bounded channel, in the order they arrived, and make the
//! [`Observation`] the oracles judge. Every wait has a deadline and every
//! buffer a bound, whatever the target does (garbage, floods, stalls,
//! resets): a flood is cut at [`MAX_RECORDS`] and at the settle cap.

use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{DecodeError, DecodeOptions, Decoded, Packet, Protocol, Sender};
use serde_json::Map;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use super::input::{client_id, connect_packet, Input, Op, TOKEN};
use crate::net::{Connection, Event, Target};

/// The records kept of one execution; the rest of a flood is counted only.
pub const MAX_RECORDS: usize = 2000;

/// The largest packet the fuzzer takes from a target (a larger one is
/// refused from its header, so that nothing larger is ever buffered).
pub const MAX_PACKET: u32 = 1 << 20;

/// How executions wait.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The deadline of a write, of a CONNACK, of a PINGRESP.
    pub deadline: Duration,
    /// Quiet time after an operation before the next one.
    pub quiet: Duration,
    /// Quiet time after the last operation.
    pub settle: Duration,
    /// The longest any settling lasts, however much keeps arriving.
    pub cap: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            deadline: Duration::from_secs(2),
            quiet: Duration::from_millis(5),
            settle: Duration::from_millis(40),
            cap: Duration::from_millis(800),
        }
    }
}

/// What came from the target.
#[derive(Debug, Clone)]
pub enum Got {
    Packet(Packet, Bytes),
    Malformed(DecodeError, Bytes),
    Closed,
}

/// One thing that happened, in order.
#[derive(Debug, Clone)]
pub enum Rec {
    /// A connection of `client` was opened (`op`: by a reconnect).
    Opened {
        client: usize,
        conn: u32,
        op: Option<usize>,
    },
    /// The target could not be reached.
    OpenFailed {
        client: usize,
        refused: bool,
        why: String,
    },
    /// Bytes written; `packet` is what they decode to as a client's packet.
    Sent {
        client: usize,
        conn: u32,
        op: Option<usize>,
        bytes: Bytes,
        packet: Option<Packet>,
    },
    /// An operation on a client whose connection was closed: not sent.
    NotSent {
        client: usize,
        op: usize,
    },
    /// The client's connection closed by a drop or disconnect operation.
    Closing {
        client: usize,
        op: usize,
    },
    Got {
        client: usize,
        conn: u32,
        got: Got,
    },
}

/// One execution's record.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub recs: Vec<Rec>,
    /// Each client's id as sent.
    pub ids: Vec<String>,
    /// Events past [`MAX_RECORDS`], not kept.
    pub dropped: usize,
    /// The execution's token (empty: not known, every packet is its own).
    pub token: String,
}

impl Observation {
    /// Whether `bytes` (a packet, a topic) carry this execution's token: a
    /// packet without it may be another execution's, come through a filter
    /// that a mutation widened, and is no finding of this one (its
    /// scenario would not replay).
    pub fn ours(&self, bytes: &[u8]) -> bool {
        self.token.is_empty()
            || bytes
                .windows(self.token.len())
                .any(|w| w == self.token.as_bytes())
    }

    fn push(&mut self, rec: Rec) {
        if self.recs.len() < MAX_RECORDS {
            self.recs.push(rec);
        } else {
            self.dropped += 1;
        }
    }
}

/// `bytes` with the placeholder token replaced by `token` (same length).
pub fn localize(bytes: &[u8], token: &str) -> Bytes {
    let from = TOKEN.as_bytes();
    let to = token.as_bytes();
    if from.len() != to.len() {
        return Bytes::copy_from_slice(bytes);
    }
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if out.get(i..i + from.len()) == Some(from) {
            if let Some(slot) = out.get_mut(i..i + from.len()) {
                slot.copy_from_slice(to);
            }
            i += from.len();
        } else {
            i += 1;
        }
    }
    Bytes::from(out)
}

/// What `bytes` decode to as one client packet of `protocol`.
pub fn as_client_packet(bytes: &Bytes, protocol: Protocol) -> Result<Packet, Option<DecodeError>> {
    let opts = DecodeOptions::new(protocol, Sender::Client);
    match mqtt_codec::decode_bytes(bytes, &opts) {
        Ok(Decoded::Packet { packet, len }) if len == bytes.len() => Ok(packet),
        Ok(_) => Err(None),
        Err(e) => Err(Some(e)),
    }
}

enum Cmd {
    Send(Bytes),
    Close,
}

type Events = mpsc::Sender<(usize, u32, Got)>;

/// A connection's task, stopped when dropped.
struct Actor {
    cmds: mpsc::Sender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Actor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn actor(
    mut conn: Connection,
    client: usize,
    serial: u32,
    mut cmds: mpsc::Receiver<Cmd>,
    events: Events,
    write_deadline: Duration,
) {
    // Far enough never to end a read by itself; the executor aborts the task.
    let far = Duration::from_secs(3600);
    loop {
        tokio::select! {
            biased;
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(bytes)) => {
                    let sent = conn.send(&bytes, None, Instant::now() + write_deadline).await;
                    let _ = conn.take_log();
                    if sent.is_err() {
                        conn.close().await;
                        let _ = events.send((client, serial, Got::Closed)).await;
                        return;
                    }
                }
                Some(Cmd::Close) | None => {
                    conn.close().await;
                    return;
                }
            },
            ev = conn.next_event(Instant::now() + far) => {
                let _ = conn.take_log();
                let (got, end) = match ev {
                    Event::Packet(p, b) => (Got::Packet(p, b), false),
                    // After bytes that do not decode the stream has no
                    // boundaries left to trust: stop reading it.
                    Event::Malformed(e, b) => (Got::Malformed(e, b), true),
                    Event::Closed(_) => (Got::Closed, true),
                    Event::Timeout => continue,
                };
                if events.send((client, serial, got)).await.is_err() || end {
                    conn.close().await;
                    return;
                }
            }
        }
    }
}

/// Runs inputs against one target.
#[derive(Debug, Clone)]
pub struct Executor {
    pub target: Target,
    pub timing: Timing,
}

struct State {
    obs: Observation,
    actors: Vec<Option<(u32, Actor)>>,
    serial: u32,
    tx: Events,
    rx: mpsc::Receiver<(usize, u32, Got)>,
}

impl Executor {
    /// Runs `input` with `token` standing for its placeholder.
    pub async fn execute(&self, input: &Input, token: &str) -> Observation {
        let (tx, rx) = mpsc::channel(256);
        let n = input.clients.len();
        let mut st = State {
            obs: Observation {
                ids: (0..n)
                    .map(|k| {
                        let own = input.clients.get(k).and_then(|c| c.same_id_as).unwrap_or(k);
                        localize(client_id(own).as_bytes(), token)
                    })
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect(),
                token: token.to_string(),
                ..Default::default()
            },
            actors: (0..n).map(|_| None).collect(),
            serial: 0,
            tx,
            rx,
        };
        for k in 0..n {
            if !self.open(&mut st, input, k, None).await {
                // Unreachable: nothing more can be learnt from this run.
                return st.obs;
            }
            if input.clients.get(k).is_some_and(|c| c.connect) {
                if let Some(p) = connect_packet(input, k, &Map::new()) {
                    self.send_packet(&mut st, input, k, None, &p, token).await;
                    self.await_answer(&mut st, k).await;
                }
            }
        }
        for (i, op) in input.ops.iter().enumerate() {
            self.run_op(&mut st, input, i, op, token).await;
            self.settle(&mut st, self.timing.quiet).await;
        }
        self.settle(&mut st, self.timing.settle).await;
        // A message acknowledged to its publisher and not yet delivered:
        // given the time a loaded broker may need before it is judged lost.
        if super::oracle::awaiting_delivery(input, &st.obs) {
            self.settle(&mut st, self.timing.deadline / 4).await;
        }
        st.obs
    }

    async fn open(&self, st: &mut State, input: &Input, k: usize, op: Option<usize>) -> bool {
        if let Some((_, old)) = st.actors.get_mut(k).and_then(Option::take) {
            let _ = old.cmds.try_send(Cmd::Close);
            // Give it the time to send its goodbye; it is aborted when dropped.
            let _ = tokio::time::timeout(Duration::from_millis(50), old.cmds.closed()).await;
        }
        let deadline = Instant::now() + self.timing.deadline;
        let name = format!("c{k}");
        match Connection::open(&name, &self.target, input.protocol, deadline).await {
            Ok(mut conn) => {
                conn.set_max_packet_size(MAX_PACKET);
                st.serial += 1;
                let serial = st.serial;
                let (cmds, crx) = mpsc::channel(64);
                let task = tokio::spawn(actor(
                    conn,
                    k,
                    serial,
                    crx,
                    st.tx.clone(),
                    self.timing.deadline,
                ));
                if let Some(slot) = st.actors.get_mut(k) {
                    *slot = Some((serial, Actor { cmds, task }));
                }
                st.obs.push(Rec::Opened {
                    client: k,
                    conn: serial,
                    op,
                });
                true
            }
            Err(e) => {
                let refused = matches!(&e, crate::net::ConnectError::Io { error, .. }
                    if matches!(error.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset));
                st.obs.push(Rec::OpenFailed {
                    client: k,
                    refused,
                    why: e.to_string(),
                });
                false
            }
        }
    }

    async fn send_packet(
        &self,
        st: &mut State,
        input: &Input,
        k: usize,
        op: Option<usize>,
        p: &Packet,
        token: &str,
    ) {
        if let Ok(b) = mqtt_codec::encode_bytes(p, input.protocol) {
            self.send(st, input, k, op, &b, token).await;
        }
    }

    async fn send(
        &self,
        st: &mut State,
        input: &Input,
        k: usize,
        op: Option<usize>,
        bytes: &[u8],
        token: &str,
    ) {
        let bytes = localize(bytes, token);
        let Some(Some((serial, a))) = st.actors.get(k) else {
            if let Some(op) = op {
                st.obs.push(Rec::NotSent { client: k, op });
            }
            return;
        };
        let serial = *serial;
        let deadline = Instant::now() + self.timing.deadline;
        let ok = matches!(
            timeout_at(deadline, a.cmds.send(Cmd::Send(bytes.clone()))).await,
            Ok(Ok(()))
        );
        if !ok {
            if let Some(op) = op {
                st.obs.push(Rec::NotSent { client: k, op });
            }
            return;
        }
        let packet = as_client_packet(&bytes, input.protocol).ok();
        st.obs.push(Rec::Sent {
            client: k,
            conn: serial,
            op,
            bytes,
            packet,
        });
    }

    async fn run_op(&self, st: &mut State, input: &Input, i: usize, op: &Op, token: &str) {
        let k = op.client();
        if k >= st.actors.len() {
            return;
        }
        match op {
            Op::Send { .. } | Op::Raw { .. } => {
                if let Some(b) = op.bytes(input.protocol) {
                    self.send(st, input, k, Some(i), &b, token).await;
                }
            }
            Op::Reconnect { fields, .. } => {
                if self.open(st, input, k, Some(i)).await {
                    if let Some(p) = connect_packet(input, k, fields) {
                        self.send_packet(st, input, k, Some(i), &p, token).await;
                    }
                }
            }
            Op::Disconnect { .. } => {
                let d = Packet::Disconnect(Default::default());
                self.send_packet(st, input, k, Some(i), &d, token).await;
                st.obs.push(Rec::Closing { client: k, op: i });
                self.close(st, k).await;
            }
            Op::Drop { .. } => {
                if st.actors.get(k).is_some_and(Option::is_some) {
                    st.obs.push(Rec::Closing { client: k, op: i });
                    self.close(st, k).await;
                } else {
                    st.obs.push(Rec::NotSent { client: k, op: i });
                }
            }
        }
    }

    async fn close(&self, st: &mut State, k: usize) {
        if let Some((_, a)) = st.actors.get_mut(k).and_then(Option::take) {
            let _ = a.cmds.try_send(Cmd::Close);
            let _ = tokio::time::timeout(Duration::from_millis(50), a.cmds.closed()).await;
        }
    }

    fn take(&self, st: &mut State, client: usize, conn: u32, got: Got) {
        // A connection that ended is not written to again.
        if matches!(got, Got::Closed | Got::Malformed(..)) {
            if let Some(slot) = st.actors.get_mut(client) {
                if slot.as_ref().is_some_and(|(s, _)| *s == conn) {
                    *slot = None;
                }
            }
        }
        st.obs.push(Rec::Got { client, conn, got });
    }

    /// Takes events until none came for `quiet`, or the cap.
    async fn settle(&self, st: &mut State, quiet: Duration) {
        let cap = Instant::now() + self.timing.cap;
        loop {
            let until = (Instant::now() + quiet).min(cap);
            match timeout_at(until, st.rx.recv()).await {
                Ok(Some((client, conn, got))) => self.take(st, client, conn, got),
                _ => return,
            }
        }
    }

    /// Takes events until client `k` has an answer (or a close), or the deadline.
    async fn await_answer(&self, st: &mut State, k: usize) {
        let deadline = Instant::now() + self.timing.deadline;
        loop {
            match timeout_at(deadline, st.rx.recv()).await {
                Ok(Some((client, conn, got))) => {
                    let answered = client == k;
                    self.take(st, client, conn, got);
                    if answered {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}

/// Whether the broker is alive after an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    Alive,
    /// A PINGREQ on an accepted connection got no PINGRESP in time.
    NoPingResp,
    /// A fresh CONNECT got no CONNACK in time.
    NoConnAck,
    /// The target refused a connection.
    Refused(String),
}

/// A client that pings the broker after each execution.
pub struct Liveness {
    target: Target,
    deadline: Duration,
    conn: Option<Connection>,
    name: String,
}

impl Liveness {
    pub fn new(target: Target, deadline: Duration, name: &str) -> Liveness {
        Liveness {
            target,
            deadline,
            conn: None,
            name: name.to_string(),
        }
    }

    /// A fresh connection and CONNECT; `Err` says why it is not accepted.
    async fn connect(&self) -> Result<Connection, Live> {
        let deadline = Instant::now() + self.deadline;
        let mut conn = Connection::open("live", &self.target, Protocol::V3_1_1, deadline)
            .await
            .map_err(|e| match &e {
                crate::net::ConnectError::Io { error, .. }
                    if error.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    Live::Refused(e.to_string())
                }
                _ => Live::NoConnAck,
            })?;
        conn.set_max_packet_size(MAX_PACKET);
        let connect = Packet::Connect(Box::new(mqtt_codec::Connect {
            protocol: Protocol::V3_1_1,
            clean_start: true,
            keep_alive: 0,
            properties: Default::default(),
            client_id: self.name.as_str().into(),
            will: None,
            username: None,
            password: None,
        }));
        let bytes =
            mqtt_codec::encode_bytes(&connect, Protocol::V3_1_1).map_err(|_| Live::NoConnAck)?;
        conn.send(&bytes, Some(connect), deadline)
            .await
            .map_err(|_| Live::NoConnAck)?;
        loop {
            match conn.next_event(deadline).await {
                Event::Packet(Packet::ConnAck(a), _) if a.code == 0 => {
                    let _ = conn.take_log();
                    return Ok(conn);
                }
                Event::Packet(..) => continue,
                _ => return Err(Live::NoConnAck),
            }
        }
    }

    async fn ping(conn: &mut Connection, deadline: Instant) -> bool {
        let Ok(b) = mqtt_codec::encode_bytes(&Packet::PingReq, Protocol::V3_1_1) else {
            return false;
        };
        if conn.send(&b, None, deadline).await.is_err() {
            return false;
        }
        loop {
            let ev = conn.next_event(deadline).await;
            let _ = conn.take_log();
            match ev {
                Event::Packet(Packet::PingResp, _) => return true,
                Event::Packet(..) => continue,
                _ => return false,
            }
        }
    }

    /// Pings on the standing connection (opened again when the broker
    /// closed it); on no answer, tries a fresh CONNECT.
    pub async fn check(&mut self) -> Live {
        for _ in 0..2 {
            let mut conn = match self.conn.take() {
                Some(c) if c.is_open() => c,
                _ => match self.connect().await {
                    Ok(c) => c,
                    Err(live) => return live,
                },
            };
            let deadline = Instant::now() + self.deadline;
            if Self::ping(&mut conn, deadline).await {
                self.conn = Some(conn);
                return Live::Alive;
            }
            if conn.is_open() {
                // Open and silent: a hang, unless a fresh CONNECT shows
                // that only this connection is.
                return match self.connect().await {
                    Ok(c) => {
                        self.conn = Some(c);
                        Live::NoPingResp
                    }
                    Err(live) => live,
                };
            }
        }
        Live::NoPingResp
    }
}
