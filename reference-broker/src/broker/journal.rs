//! The journal: what changed in the durable state, as records appended to
//! a log, so that `--persist` writes what a burst changed rather than the
//! whole state (`server::persist` says when and where).
//!
//! The core notes which sessions were taken mutably (`Sessions` does it
//! for every `get_mut`, `remove` and insertion) and which retained topics
//! changed. [`Broker::journal`] then compares each noted session with
//! what the journal last logged of it ([`Journal`] keeps, per session, its
//! state without messages as logged, and the entry number and state of
//! each message) and writes only the difference: the session's own state
//! when it changed, each message new or changed (queued, sent with a
//! packet identifier, PUBREL sent), each message done, the session's
//! end; a retained topic's message or its removal; the next assigned
//! client id. A message is written once when it arrives and once per
//! change of its state, never again for being in a session that changed.
//! Messages are named by an entry number unique for the broker's life
//! and carried across restarts (`Broker::next_seq`).
//!
//! Format: JSON lines, one [`Record`] each, like the snapshot a person can
//! read. A batch (what one or more dispatches changed) ends with a
//! `commit` record; [`replay`] applies whole batches only, so that a crash
//! in the middle of a write leaves the state as it was before the batch,
//! none of whose acknowledgements had left (they wait for the disk).
//! The records a message makes most often (queued, sent, in flight, done)
//! are written by hand rather than through serde, for speed; a test holds
//! them to serde's bytes, and replay reads every record with serde.
//!
//! Why one file of 810 lines: the records, the writers that must produce
//! them byte for byte and the replay that reads them change together; a
//! seventh of it is the test that holds the writers to serde.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::ops::Deref;

use mqtt_codec::ByteString;
use serde::{Deserialize, Serialize};

use bytes::BytesMut;

use super::snapshot::{
    append_publish_base64, decode_publish, sent_state, session_state, InflightState, QueuedState,
    SessionState, Snapshot, StoredMessage,
};
use super::{Action, Broker, ById, Clocks, Message, OutFlight, OutState, Session, SessionMap};
use mqtt_codec::{Packet, QoS, SubscriptionOptions};

/// The sessions by client id, noting which were taken mutably while a
/// journal is kept. Reading goes through `Deref`; every way to change a
/// session is a method here, so none can be missed.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    map: SessionMap,
    changed: Option<HashSet<ByteString>>,
}

impl Deref for Sessions {
    type Target = SessionMap;
    fn deref(&self) -> &SessionMap {
        &self.map
    }
}

impl Sessions {
    fn note<Q>(&mut self, cid: &Q)
    where
        ByteString: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(changed) = &mut self.changed {
            if !changed.contains(cid) {
                if let Some((k, _)) = self.map.get_key_value(cid) {
                    changed.insert(k.clone());
                }
            }
        }
    }

    pub(super) fn get_mut<Q>(&mut self, cid: &Q) -> Option<&mut Box<Session>>
    where
        ByteString: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.note(cid);
        self.map.get_mut(cid)
    }

    pub(super) fn remove<Q>(&mut self, cid: &Q) -> Option<Box<Session>>
    where
        ByteString: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.note(cid);
        self.map.remove(cid)
    }

    pub(super) fn get_or_insert_with(
        &mut self,
        cid: &ByteString,
        new: impl FnOnce() -> Box<Session>,
    ) -> &mut Box<Session> {
        if let Some(changed) = &mut self.changed {
            changed.insert(cid.clone());
        }
        self.map.entry(cid.clone()).or_insert_with(new)
    }

    /// Gives back the empty flow boxes (see `FlowBox`): storage only, no
    /// change a journal keeps, so nothing is noted.
    pub(super) fn compact(&mut self) {
        for s in self.map.values_mut() {
            s.flow.compact();
        }
    }

    /// Every session replaced (a restore); a journal then starts afresh.
    pub(super) fn replace(&mut self, map: SessionMap) {
        self.map = map;
    }
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Record {
    /// A session's own state (its `inflight` and `queue` empty): created or
    /// changed. Its messages are kept.
    Session { session: SessionState },
    /// The session ended (or no longer outlives its connection).
    End { client_id: String },
    /// A message of the session sent and not yet acknowledged, or its PUBREL sent.
    Inflight {
        client_id: String,
        entry: InflightState,
    },
    /// A message the journal has queued was sent under `packet_id`, to a
    /// 5.0 connection (`v5`) or a 3.x one, as `snapshot::plain_publish`
    /// builds it from the queued record: in flight now, without writing
    /// the PUBLISH again.
    Sent {
        client_id: String,
        seq: u64,
        packet_id: u16,
        v5: bool,
    },
    /// A message of the session waiting for its receive window.
    Queued {
        client_id: String,
        entry: QueuedState,
    },
    /// A message of the session acknowledged, dropped or expired.
    Done { client_id: String, seq: u64 },
    /// A retained message stored, replaced, or (none) removed.
    Retain {
        topic: String,
        message: Option<StoredMessage>,
    },
    /// The next number for an assigned client id.
    Assigned { next: u64 },
    /// The end of a batch: what comes before it is applied together.
    Commit,
}

/// What the journal last logged of a message in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Sent(u16),
    Released(u16),
}

#[derive(Debug, Default)]
struct Logged {
    /// The session's `Record::Session` line as last written, with next
    /// packet identifier 0 (see `log_session`).
    meta: Vec<u8>,
    /// The states of its messages in flight, by entry number.
    flight: HashMap<u64, Mark, ById>,
    /// Entry numbers of its queued messages, in queue order (ascending).
    queue: VecDeque<u64>,
}

/// What the journal holds of the state, to write only what changes.
#[derive(Debug, Default)]
pub struct Journal {
    sessions: HashMap<ByteString, Logged>,
    next_assigned: u64,
    /// A PUBLISH being encoded for a record (kept: one per message otherwise).
    scratch: BytesMut,
}

fn line(out: &mut Vec<u8>, record: &Record) {
    // Records are plain data: serialising them cannot fail.
    if serde_json::to_writer(&mut *out, record).is_ok() {
        out.push(b'\n');
    }
}

// The three records every QoS 1/2 message of a kept session makes (queued,
// in flight, done), written straight from the core's state: through
// `line` each would first copy its strings into a `Record`, encode the
// PUBLISH into a buffer of its own and base64 into a string, and then
// scan that string for characters to escape, which base64 has none of.
// That was about a third of the broker's own CPU with `--persist` (perf,
// fan-in QoS 1 to a persistent subscriber). The bytes are exactly those of
// `line` (tested below); replay reads them with serde like every record.

/// A JSON string, escaped as serde_json does.
fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A number in decimal (what `write!` does, without its formatting machinery,
/// which showed in the profile at four numbers per record).
fn num(out: &mut Vec<u8>, n: impl Into<u64>) {
    let mut n = n.into();
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `Record::Inflight` for the message in flight under `id`.
fn inflight_line(out: &mut Vec<u8>, scratch: &mut BytesMut, cid: &str, id: u16, f: &OutFlight) {
    out.extend_from_slice(br#"{"op":"inflight","client_id":"#);
    json_str(out, cid);
    out.extend_from_slice(br#","entry":{"seq":"#);
    num(out, f.seq);
    out.extend_from_slice(br#","packet_id":"#);
    num(out, id);
    out.extend_from_slice(match f.state {
        OutState::Publish(_) => br#","state":"publish","publish":""#,
        OutState::Release => br#","state":"release","publish":""#,
    });
    append_publish_base64(out, scratch, &f.packet);
    out.extend_from_slice(b"\"}}\n");
}

/// `Record::Queued` for a queued message.
fn queued_line(
    out: &mut Vec<u8>,
    scratch: &mut BytesMut,
    cid: &str,
    (m, opts, ids): &(Message, SubscriptionOptions, Vec<u32>),
    clocks: &Clocks,
) {
    out.extend_from_slice(br#"{"op":"queued","client_id":"#);
    json_str(out, cid);
    out.extend_from_slice(br#","entry":{"seq":"#);
    num(out, m.seq);
    out.extend_from_slice(br#","message":{"publish":""#);
    append_publish_base64(out, scratch, &m.stored_publish());
    out.extend_from_slice(br#"","expires_at_ms":"#);
    match m.expires_at {
        Some(at) => num(out, clocks.ms_of(at)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","origin":"#);
    match &m.origin {
        Some(o) => json_str(out, o),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#"},"qos":"#);
    num(out, opts.qos.as_u8());
    out.extend_from_slice(if opts.retain_as_published {
        br#","retain_as_published":true,"subscription_ids":["#
    } else {
        br#","retain_as_published":false,"subscription_ids":["#
    });
    for (i, &id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        num(out, id);
    }
    out.extend_from_slice(b"]}}\n");
}

/// `Record::Sent`.
fn sent_line(out: &mut Vec<u8>, cid: &str, seq: u64, packet_id: u16, v5: bool) {
    out.extend_from_slice(br#"{"op":"sent","client_id":"#);
    json_str(out, cid);
    out.extend_from_slice(br#","seq":"#);
    num(out, seq);
    out.extend_from_slice(br#","packet_id":"#);
    num(out, packet_id);
    out.extend_from_slice(if v5 {
        b",\"v5\":true}\n"
    } else {
        b",\"v5\":false}\n"
    });
}

/// `Record::Done`.
fn done_line(out: &mut Vec<u8>, cid: &str, seq: u64) {
    out.extend_from_slice(br#"{"op":"done","client_id":"#);
    json_str(out, cid);
    out.extend_from_slice(br#","seq":"#);
    num(out, seq);
    out.extend_from_slice(b"}\n");
}

fn mark(id: u16, f: &OutFlight) -> Mark {
    match f.state {
        OutState::Publish(_) => Mark::Sent(id),
        OutState::Release => Mark::Released(id),
    }
}

impl Mark {
    fn id(self) -> u16 {
        match self {
            Mark::Sent(id) | Mark::Released(id) => id,
        }
    }
}

/// Whether `action` must wait until the state it follows from is on disk:
/// an acknowledgement (CONNACK, PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK),
/// and the packets after which a restarted broker must not send the same
/// message differently: a QoS 2 PUBLISH (its packet identifier, or the
/// receiver would take a resend under a new one as a new message) and a
/// PUBREL (MQTT-4.3.3-5: the PUBLISH is not sent again after it).
pub fn waits_for_disk(action: &Action) -> bool {
    match action {
        Action::Send { packet, .. } => match packet {
            Packet::ConnAck(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubComp(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PubRel(_) => true,
            Packet::Publish(p) => p.qos == QoS::ExactlyOnce,
            _ => false,
        },
        Action::Close { .. } => false,
    }
}

impl Broker {
    /// Whether an action waiting for the I/O layer must wait for the disk
    /// (see [`waits_for_disk`]).
    pub fn actions_wait_for_disk(&self) -> bool {
        self.actions.iter().any(waits_for_disk)
    }

    /// Starts (or starts again) noting changes for a journal that holds
    /// the state as it is now, as a snapshot written now would.
    pub fn start_journal(&mut self, clocks: Clocks) -> Journal {
        self.sessions.changed = Some(HashSet::new());
        self.retained_changed = Some(HashSet::new());
        let mut journal = Journal {
            sessions: HashMap::new(),
            next_assigned: self.next_assigned,
            scratch: BytesMut::new(),
        };
        for (cid, s) in self.sessions.iter().filter(|(_, s)| s.expiry > 0) {
            let mut meta = Vec::new();
            let mut session = session_state(cid, s, &clocks, false);
            session.next_packet_id = 0;
            line(&mut meta, &Record::Session { session });
            let flight = s
                .flow
                .inflight
                .iter()
                .map(|(&id, f)| (f.seq, mark(id, f)))
                .collect();
            let queue = s.flow.queue.iter().map(|(m, ..)| m.seq).collect();
            journal.sessions.insert(
                cid.clone(),
                Logged {
                    meta,
                    flight,
                    queue,
                },
            );
        }
        journal
    }

    /// Appends to `out` the records of what changed since the journal last
    /// looked, ended by a commit; returns whether there were any.
    pub fn journal(&mut self, journal: &mut Journal, clocks: Clocks, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        if let Some(changed) = self.sessions.changed.as_mut().map(std::mem::take) {
            for cid in changed {
                self.log_session(journal, &cid, &clocks, out);
            }
        }
        if let Some(changed) = self.retained_changed.as_mut().map(std::mem::take) {
            for topic in changed {
                let message = self.retained.get(&topic).map(|m| m.stored(&clocks));
                line(
                    out,
                    &Record::Retain {
                        topic: topic.to_string(),
                        message,
                    },
                );
            }
        }
        if self.next_assigned != journal.next_assigned {
            journal.next_assigned = self.next_assigned;
            line(
                out,
                &Record::Assigned {
                    next: self.next_assigned,
                },
            );
        }
        if out.len() == start {
            return false;
        }
        line(out, &Record::Commit);
        true
    }

    fn log_session(
        &self,
        journal: &mut Journal,
        cid: &ByteString,
        clocks: &Clocks,
        out: &mut Vec<u8>,
    ) {
        // Sessions that end with their connection are not kept (as in a snapshot).
        let Some(s) = self.sessions.get(cid).filter(|s| s.expiry > 0) else {
            if journal.sessions.remove(cid).is_some() {
                line(
                    out,
                    &Record::End {
                        client_id: cid.to_string(),
                    },
                );
            }
            return;
        };
        let logged = journal.sessions.entry(cid.clone()).or_default();
        // The next packet identifier changes with every message sent and is
        // only where the search for a free one starts: written when the
        // rest changes, not for itself.
        let mut session = session_state(cid, s, clocks, false);
        let next_packet_id = std::mem::take(&mut session.next_packet_id);
        let mut meta = Vec::with_capacity(logged.meta.len());
        line(&mut meta, &Record::Session { session });
        if meta != logged.meta {
            let mut session = session_state(cid, s, clocks, false);
            session.next_packet_id = next_packet_id;
            line(out, &Record::Session { session });
            logged.meta = meta;
        }
        let scratch = &mut journal.scratch;
        let done = |out: &mut Vec<u8>, seq: u64| done_line(out, cid, seq);
        // In flight: the receive window, each looked up by entry number in
        // what was logged (no sort, no merge: this runs after every
        // dispatch that touched the session).
        let queued = &logged.queue;
        let logged_flight = &mut logged.flight;
        for (&id, f) in &s.flow.inflight {
            let now = mark(id, f);
            if logged_flight.insert(f.seq, now) == Some(now) {
                continue;
            }
            // Sent as the journal has it queued: named, not written again.
            match f.plain {
                Some(v5)
                    if matches!(f.state, OutState::Publish(_))
                        && queued.binary_search(&f.seq).is_ok() =>
                {
                    sent_line(out, cid, f.seq, id, v5)
                }
                _ => inflight_line(out, scratch, cid, id, f),
            }
        }
        // Everything in flight is logged now; more logged means some left.
        if logged_flight.len() > s.flow.inflight.len() {
            logged_flight.retain(|&seq, m| {
                let still = s.flow.inflight.get(&m.id()).is_some_and(|f| f.seq == seq);
                if !still {
                    done(out, seq);
                }
                still
            });
        }
        // Queued: perhaps a thousand, which leave from the front and arrive
        // at the back. If every logged message still queued is one of a
        // run from the logged queue's front on (counted, not compared: both
        // ascend), only the ends changed, found in logarithmic time.
        let newest = logged.queue.back().copied().unwrap_or(0);
        let kept = s.flow.queue.partition_point(|(m, ..)| m.seq <= newest);
        let gone = s
            .flow
            .queue
            .front()
            .filter(|_| kept > 0)
            .map_or(logged.queue.len(), |(m, ..)| {
                logged.queue.partition_point(|&seq| seq < m.seq)
            });
        let (left, arrived): (Vec<u64>, std::ops::Range<usize>) =
            if kept == logged.queue.len() - gone {
                (
                    logged.queue.drain(..gone).collect(),
                    kept..s.flow.queue.len(),
                )
            } else {
                let current: HashSet<u64> = s.flow.queue.iter().map(|(m, ..)| m.seq).collect();
                let left = logged
                    .queue
                    .iter()
                    .copied()
                    .filter(|seq| !current.contains(seq))
                    .collect();
                let logged_now: HashSet<u64> = logged.queue.iter().copied().collect();
                logged.queue.retain(|seq| current.contains(seq));
                let first_new = s
                    .flow
                    .queue
                    .iter()
                    .position(|(m, ..)| !logged_now.contains(&m.seq))
                    .unwrap_or(s.flow.queue.len());
                (left, first_new..s.flow.queue.len())
            };
        for seq in left {
            // Sent since: its record in flight replaces the queued one.
            if !logged.flight.contains_key(&seq) {
                done(out, seq);
            }
        }
        for q in s.flow.queue.range(arrived) {
            if logged.queue.back().is_none_or(|&last| last < q.0.seq) {
                queued_line(out, &mut journal.scratch, cid, q, clocks);
                logged.queue.push_back(q.0.seq);
            }
        }
    }
}

/// What [`replay`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Batches applied.
    pub batches: usize,
    /// Records after the last commit: a write the crash cut short, never
    /// acknowledged, left out.
    pub discarded: usize,
}

struct ReplaySession {
    meta: SessionState,
    entries: BTreeMap<u64, Entry2>,
}

enum Entry2 {
    Flight(InflightState),
    Queued(QueuedState),
}

/// The messages of session `cid`, which a record on line `n` names.
fn opened<'a>(
    sessions: &'a mut BTreeMap<String, ReplaySession>,
    cid: &str,
    n: usize,
) -> Result<&'a mut BTreeMap<u64, Entry2>, String> {
    sessions
        .get_mut(cid)
        .map(|s| &mut s.entries)
        .ok_or_else(|| {
            format!("line {n}: a message for session {cid:?}, which the journal has not opened")
        })
}

/// Applies the journal `log` (the bytes of `journal.N`) to `snapshot`, the
/// snapshot it continues. Errors name the line.
pub fn replay(snapshot: &mut Snapshot, log: &[u8]) -> Result<Replayed, String> {
    let mut lines: Vec<(usize, Result<Record, String>)> = Vec::new();
    let mut rest = log;
    let mut n = 0;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        n += 1;
        let parsed = serde_json::from_slice::<Record>(&rest[..end])
            .map_err(|e| format!("line {n}, column {}: not a journal record: {e}", e.column()));
        lines.push((n, parsed));
        rest = &rest[end + 1..];
    }
    let committed = lines
        .iter()
        .rposition(|(_, r)| matches!(r, Ok(Record::Commit)))
        .map_or(0, |i| i + 1);
    let mut done = Replayed {
        discarded: lines.len() - committed + usize::from(!rest.is_empty()),
        ..Replayed::default()
    };
    let mut sessions: BTreeMap<String, ReplaySession> = BTreeMap::new();
    for s in std::mem::take(&mut snapshot.sessions) {
        let mut meta = s;
        let mut entries = BTreeMap::new();
        for f in std::mem::take(&mut meta.inflight) {
            entries.insert(f.seq, Entry2::Flight(f));
        }
        for q in std::mem::take(&mut meta.queue) {
            entries.insert(q.seq, Entry2::Queued(q));
        }
        sessions.insert(meta.client_id.clone(), ReplaySession { meta, entries });
    }
    let mut retained: BTreeMap<String, StoredMessage> = BTreeMap::new();
    for (i, m) in std::mem::take(&mut snapshot.retained)
        .into_iter()
        .enumerate()
    {
        let p = decode_publish(&m.publish, u32::MAX)
            .map_err(|e| format!("retained message {}: {e}", i + 1))?;
        retained.insert(p.topic.to_string(), m);
    }
    for (n, record) in lines.into_iter().take(committed) {
        let record = record?;
        match record {
            Record::Session { session } => match sessions.get_mut(&session.client_id) {
                Some(s) => s.meta = session,
                None => {
                    let cid = session.client_id.clone();
                    let entries = BTreeMap::new();
                    sessions.insert(
                        cid,
                        ReplaySession {
                            meta: session,
                            entries,
                        },
                    );
                }
            },
            Record::End { client_id } => {
                sessions.remove(&client_id);
            }
            Record::Inflight { client_id, entry } => {
                opened(&mut sessions, &client_id, n)?.insert(entry.seq, Entry2::Flight(entry));
            }
            Record::Queued { client_id, entry } => {
                opened(&mut sessions, &client_id, n)?.insert(entry.seq, Entry2::Queued(entry));
            }
            Record::Sent {
                client_id,
                seq,
                packet_id,
                v5,
            } => {
                let entries = opened(&mut sessions, &client_id, n)?;
                let Some(Entry2::Queued(q)) = entries.get(&seq) else {
                    return Err(format!(
                        "line {n}: message {seq} of session {client_id:?} was sent, but the journal does not have it queued"
                    ));
                };
                let f = sent_state(q, packet_id, v5).map_err(|e| format!("line {n}: {e}"))?;
                entries.insert(seq, Entry2::Flight(f));
            }
            Record::Done { client_id, seq } => {
                opened(&mut sessions, &client_id, n)?.remove(&seq);
            }
            Record::Retain { topic, message } => match message {
                Some(m) => {
                    retained.insert(topic, m);
                }
                None => {
                    retained.remove(&topic);
                }
            },
            Record::Assigned { next } => {
                snapshot.next_assigned = snapshot.next_assigned.max(next);
            }
            Record::Commit => done.batches += 1,
        }
    }
    snapshot.sessions = sessions
        .into_values()
        .map(|s| {
            let mut meta = s.meta;
            for e in s.entries.into_values() {
                match e {
                    Entry2::Flight(f) => meta.inflight.push(f),
                    Entry2::Queued(q) => meta.queue.push(q),
                }
            }
            // As a snapshot lists them (the queue is in entry order already).
            meta.inflight.sort_by_key(|f| f.packet_id);
            meta
        })
        .collect();
    snapshot.retained = retained.into_values().collect();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use bytes::{Bytes, BytesMut};
    use mqtt_codec::{ByteString, Properties, Property, Publish, QoS, SubscriptionOptions};

    use super::*;
    use crate::broker::snapshot::{inflight_state, queued_state};

    fn message(origin: Option<&str>, expires: Option<Instant>, qos: QoS) -> Message {
        let mut properties = Properties::new();
        properties.push(Property::UserProperty(
            ByteString::from_static("k\"ey"),
            ByteString::from_static("välue"),
        ));
        Message {
            topic: ByteString::from_static("a/b\\c"),
            payload: Bytes::from_static(b"\x00\xffpayload"),
            qos,
            retain: true,
            properties,
            expires_at: expires,
            origin: origin.map(ByteString::from),
            seq: 77,
        }
    }

    /// What serde writes for `record`, which the hand-written `fast`
    /// must be byte for byte (shown as text when it is not).
    fn assert_serde_writes(fast: &[u8], record: &Record) {
        let mut slow = Vec::new();
        line(&mut slow, record);
        assert!(
            fast == slow.as_slice(),
            "hand-written: {}\nserde:        {}",
            String::from_utf8_lossy(fast),
            String::from_utf8_lossy(&slow)
        );
    }

    /// The hand-written records are byte for byte what serde writes.
    #[test]
    fn hot_records_are_the_bytes_serde_writes() {
        let now = Instant::now();
        let clocks = Clocks {
            now,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let mut scratch = BytesMut::new();
        for cid in ["plain", "quo\"te\\back\u{1}é"] {
            for (origin, expires, qos, ids, rap) in [
                (None, None, QoS::AtLeastOnce, vec![], false),
                (
                    Some("pub\"lisher"),
                    Some(now + Duration::from_secs(90)),
                    QoS::ExactlyOnce,
                    vec![1, 268_435_455],
                    true,
                ),
                (Some("p"), Some(now), QoS::AtMostOnce, vec![5], false),
            ] {
                let m = message(origin, expires, qos);
                let mut opts = SubscriptionOptions::qos(qos);
                opts.retain_as_published = rap;
                let q = (m, opts, ids);
                let mut fast = Vec::new();
                queued_line(&mut fast, &mut scratch, cid, &q, &clocks);
                let entry = queued_state(&q, &clocks);
                let client_id = cid.into();
                assert_serde_writes(&fast, &Record::Queued { client_id, entry });

                for state in [OutState::Publish(qos), OutState::Release] {
                    let f = OutFlight {
                        packet: Publish {
                            packet_id: 9,
                            dup: true,
                            ..q.0.stored_publish()
                        },
                        state,
                        seq: 78,
                        plain: None,
                    };
                    let mut fast = Vec::new();
                    inflight_line(&mut fast, &mut scratch, cid, 9, &f);
                    let entry = inflight_state(9, &f);
                    let client_id = cid.into();
                    assert_serde_writes(&fast, &Record::Inflight { client_id, entry });
                }
            }
            for v5 in [true, false] {
                let mut fast = Vec::new();
                sent_line(&mut fast, cid, 0, u16::MAX, v5);
                let client_id = cid.into();
                let sent = Record::Sent {
                    client_id,
                    seq: 0,
                    packet_id: u16::MAX,
                    v5,
                };
                assert_serde_writes(&fast, &sent);
            }
            let mut fast = Vec::new();
            done_line(&mut fast, cid, u64::MAX);
            let done = Record::Done {
                client_id: cid.into(),
                seq: u64::MAX,
            };
            assert_serde_writes(&fast, &done);
        }
    }
}
