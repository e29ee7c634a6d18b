//! The logic of one case: skip it if the target profile rules out its
//! protocol or a feature it requires; open every client (CONNECT, expect
//! CONNACK 0, read the broker's capabilities from the first CONNACK, skip if
//! one it requires is missing), run the steps in order, close what is still
//! open. It talks to the world only through its [`Port`] (see
//! [`super::machine`]); the verdict rules are in the module docs of
//! [`super`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, PubResponse, QoS};
use serde_json::{Map, Value};

use super::machine::{Port, Reply, Request, SendOutcome};
use super::matching::Captures;
use super::vars::Vars;
use super::verdict::{fail, show_duration, v5_only, Capabilities, CaseError, Stop};
use super::{Case, RunOptions};
use crate::net::Event;
use crate::packet;
use crate::profile::Profile;
use crate::results::Failure;
use crate::scenario::{Action, Scenario};

/// How long a client's `disconnect` waits for the server to close.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// How a case ended, before it becomes a [`crate::results::CaseResult`].
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub outcome: Result<(), Stop>,
    /// The step that failed (1-based; 0: while connecting).
    pub failed_at: Option<usize>,
    /// The statement the broker broke while the case was connecting (its
    /// answer to CONNECT did not decode), or that a close outcome broke
    /// (MQTT-3.14.0-1): the verdict is on it, not on those the scenario
    /// meant to check.
    pub broken: Option<Vec<String>>,
}

/// What the case knows of one of its connections.
#[derive(Debug, Clone, Copy)]
struct Conn {
    open: bool,
    /// A CONNACK accepting the connection has arrived.
    connected: bool,
    protocol: Protocol,
}

/// The state of a running case.
pub(super) struct Logic {
    io: Port,
    scenario: Arc<Scenario>,
    protocol: Protocol,
    opts: RunOptions,
    vars: Vars,
    captures: Captures,
    conns: HashMap<String, Conn>,
    step: usize,
    caps: Option<Capabilities>,
    broken: Option<Vec<String>>,
    /// Something (a packet, or bytes that do not decode) has arrived on
    /// some connection of the case.
    heard: bool,
    /// Clients whose last CONNECT, sent by a step, announced the case's
    /// version (`true`: and was well-formed, no overrides), with the first
    /// thing that came back to it: a refusal of it as a version the target
    /// does not speak makes the case a skip, as for the automatic CONNECT.
    step_connect: HashMap<String, (bool, Option<Event>)>,
    /// The last read ended at its deadline with nothing.
    timed_out: bool,
    probes: usize,
    /// A connection of the scenario's clients was accepted (CONNACK 0):
    /// evidence that the target speaks the case's version.
    accepted: bool,
    /// The filters each client subscribed to, as far as the case knows
    /// (`None`: it cannot know, e.g. after raw bytes it could not read).
    subscriptions: HashMap<String, Option<Vec<String>>>,
    /// Every filter each client subscribed to in this case, held or not.
    ever_subscribed: HashMap<String, Vec<String>>,
    /// Per client, the packet ids of its UNSUBSCRIBEs not yet answered, and
    /// of those answered (a second UNSUBACK for one is a finding).
    unsubscribes: HashMap<String, (Vec<u16>, Vec<u16>)>,
    /// Topics this case left a retained message on, and the version it was
    /// published in: cleared after a case that did not reach its end.
    retained: Vec<(String, Protocol)>,
    /// The current step received bytes that do not decode, and the
    /// statement they break (if the codec names one).
    malformed: Option<Option<String>>,
}

/// Runs the case through `io` to its ending; every connection is closed
/// before it returns.
pub(super) async fn run(
    io: Port,
    case: Case,
    opts: RunOptions,
    run_token: String,
    index: usize,
) -> Ending {
    let mut vars = Vars::new(&case.scenario, &run_token, index);
    if let Some(u) = &opts.username {
        vars.username.clone_from(u);
    }
    if let Some(p) = &opts.password {
        vars.password.clone_from(p);
    }
    let mut l = Logic {
        io,
        scenario: case.scenario,
        protocol: case.protocol,
        opts,
        vars,
        captures: Captures::new(),
        conns: HashMap::new(),
        step: 0,
        caps: None,
        broken: None,
        heard: false,
        step_connect: HashMap::new(),
        timed_out: false,
        probes: 0,
        accepted: false,
        subscriptions: HashMap::new(),
        ever_subscribed: HashMap::new(),
        unsubscribes: HashMap::new(),
        retained: Vec::new(),
        malformed: None,
    };
    let mut outcome = l.run_all().await;
    // Only CONNECTs the broker refused or closed on, or none at all: does
    // the target speak this version at all? (Not asked of a verdict on the
    // bytes of an answer, which break their statement in any version.)
    if matches!(outcome, Ok(()) | Err(Stop::Fail(_))) && !l.accepted && l.broken.is_none() {
        if let Some(stop) = l.version_evidence().await {
            outcome = Err(stop);
        }
    }
    let failed_at = matches!(outcome, Err(Stop::Fail(_))).then_some(l.step);
    if outcome.is_err() {
        l.clear_retained().await;
    }
    l.close_all().await;
    Ending {
        outcome,
        failed_at,
        broken: l.broken.take(),
    }
}

impl Logic {
    fn timeout(&self, step: Option<Duration>) -> Duration {
        step.or(self.scenario.timeout)
            .unwrap_or(self.opts.step_timeout)
    }

    fn now(&self) -> Instant {
        self.io.now()
    }

    async fn run_all(&mut self) -> Result<(), Stop> {
        self.applies()?;
        let scenario = Arc::clone(&self.scenario);
        for c in &scenario.clients {
            if c.connect {
                self.connect(&c.name, &Map::new(), None, true).await?;
            } else {
                self.open(&c.name).await?;
            }
        }
        for (i, step) in scenario.steps.iter().enumerate() {
            if !step.runs_under(self.protocol) {
                continue;
            }
            self.step = i + 1;
            self.timed_out = false;
            self.malformed = None;
            let mut result = self.run_step(&step.action).await;
            if let Err(Stop::Fail(f)) = &result {
                // Nothing has come back at all in this case, not even to a
                // CONNECT: a broker that ignores the step, or a hung target?
                // Only a broker that answers a fresh, valid CONNECT is alive
                // enough for its silence to be a verdict.
                if self.timed_out
                    && !self.heard
                    && self.probe_connect(self.protocol).await.is_none()
                {
                    result = Err(Stop::Error(CaseError::NoAnswer {
                        expected: f.expected.clone(),
                        got: f.got.clone(),
                    }));
                }
            }
            if let (Err(Stop::Fail(_)), Some(id), None) = (&result, &self.malformed, &self.broken) {
                // Bytes that do not decode broke the statement of their
                // decoding (none, where the codec names none: a reserved
                // packet type), not those of the step that met them.
                self.broken = Some(id.iter().cloned().collect());
            }
            if let (Err(Stop::Fail(_)), true, None) = (&result, self.timed_out, &self.broken) {
                if let Some(ids) = step.if_nothing(self.protocol) {
                    self.broken = Some(ids.to_vec());
                }
            }
            result.map_err(|e| match e {
                Stop::Fail(mut f) => {
                    f.step = i + 1;
                    f.pos = step.pos;
                    Stop::Fail(f)
                }
                Stop::Error(e) => Stop::Error(CaseError::InStep(i + 1, Box::new(e))),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Whether the case applies at all, from what is known before connecting:
    /// the profile, `--without`, a 5.0-only feature under 3.x.
    fn applies(&self) -> Result<(), Stop> {
        let profile = self.opts.profile.as_deref();
        if let Some(why) = profile.and_then(|p| p.refuses(self.protocol)) {
            return Err(Stop::Skip(why));
        }
        for c in &self.scenario.requires {
            if v5_only(*c) && !self.protocol.is_v5() {
                return Err(Stop::Skip(format!(
                    "requires {}, an MQTT 5.0 feature",
                    c.as_str()
                )));
            }
            if self.opts.without.contains(c) {
                return Err(Stop::Skip(format!(
                    "requires {}: `--without {}` says the target does not offer it",
                    c.as_str(),
                    c.as_str()
                )));
            }
            if let Some(why) = profile.and_then(|p| p.missing(*c)) {
                return Err(Stop::Skip(why));
            }
        }
        if let Some(why) = profile.and_then(|p| self.keep_alive_outside(p)) {
            return Err(Stop::Skip(why));
        }
        Ok(())
    }

    /// A keep alive that a client of the scenario asks for and that the
    /// profile says the broker does not honour as asked.
    fn keep_alive_outside(&self, p: &Profile) -> Option<String> {
        let asked = |fields: &Map<String, Value>| fields.get("keep_alive").and_then(Value::as_u64);
        for c in &self.scenario.clients {
            if let Some(why) = asked(&c.fields).and_then(|k| p.keep_alive_refused(k)) {
                return Some(format!("client `{}` {why}", c.name));
            }
        }
        for step in &self.scenario.steps {
            if !step.runs_under(self.protocol) {
                continue;
            }
            let (client, fields) = match &step.action {
                Action::Connect { client, fields, .. } => (client, fields),
                Action::Send { client, packet, .. } => (client, packet),
                _ => continue,
            };
            if let Some(why) = asked(fields).and_then(|k| p.keep_alive_refused(k)) {
                return Some(format!("client `{client}` {why}"));
            }
        }
        None
    }

    // --- the connection primitives ----------------------------------------

    async fn open(&mut self, name: &str) -> Result<(), Stop> {
        let target = self.scenario.client(name).and_then(|c| c.target.clone());
        self.open_as(name, target, self.protocol).await
    }

    async fn open_as(
        &mut self,
        name: &str,
        target: Option<String>,
        protocol: Protocol,
    ) -> Result<(), Stop> {
        let reply = self
            .io
            .call(Request::Open {
                client: name.to_string(),
                target,
                protocol,
            })
            .await;
        match reply {
            Reply::Opened(Ok(())) => {
                self.conns.insert(
                    name.to_string(),
                    Conn {
                        open: true,
                        connected: false,
                        protocol,
                    },
                );
                Ok(())
            }
            // The WebSocket upgrade was answered without the subprotocol
            // offered: the server broke MQTT-6.0.0-4, the case did not fail to run.
            Reply::Opened(Err(e)) if e.refused_subprotocol => {
                self.broken = Some(vec!["MQTT-6.0.0-4".to_string()]);
                Err(Stop::Fail(Failure {
                    step: 0,
                    pos: None,
                    expected: "a WebSocket handshake that selects the subprotocol \"mqtt\"".into(),
                    got: e.message,
                    got_hex: None,
                }))
            }
            Reply::Opened(Err(e)) => Err(Stop::Error(CaseError::Unreachable(e.message))),
            other => Err(unexpected(&other)),
        }
    }

    fn conn(&self, name: &str) -> Result<Conn, Stop> {
        self.conns
            .get(name)
            .copied()
            .ok_or_else(|| Stop::Error(CaseError::NoConnection(name.to_string())))
    }

    async fn close(&mut self, name: &str) {
        if self.conns.get(name).is_some_and(|c| c.open) {
            let _ = self
                .io
                .call(Request::Close {
                    client: name.to_string(),
                })
                .await;
        }
        if let Some(c) = self.conns.get_mut(name) {
            c.open = false;
        }
    }

    /// After a client's DISCONNECT: waits, for at most [`DISCONNECT_GRACE`],
    /// for the server to close the connection (which it SHOULD, 3.14.4), so
    /// that what the server does on the DISCONNECT (discarding the will,
    /// ending the session) is done before the next step — a reconnect with
    /// the same client id then never overtakes it. What arrives meanwhile
    /// is not judged (the client has said goodbye), and a server that does
    /// not close is no failure: the client closes when the grace ends.
    async fn await_close(&mut self, client: &str) {
        let deadline = self.now() + DISCONNECT_GRACE;
        while self.conns.get(client).is_some_and(|c| c.open) {
            match self.read(client, deadline).await {
                Event::Closed(_) | Event::Timeout => break,
                _ => {}
            }
        }
    }

    async fn note(&self, client: &str, text: &str) {
        let _ = self
            .io
            .call(Request::Note {
                client: client.to_string(),
                text: text.to_string(),
            })
            .await;
    }

    /// The next event on `client`'s connection, as it came.
    async fn read(&mut self, client: &str, deadline: Instant) -> Event {
        let reply = self
            .io
            .call(Request::Read {
                client: client.to_string(),
                deadline,
            })
            .await;
        let ev = match reply {
            Reply::Event(ev) => ev,
            other => Event::Closed(Some(format!("internal: {other:?} answered a read"))),
        };
        if let Some(c) = self.conns.get_mut(client) {
            match &ev {
                Event::Packet(Packet::ConnAck(a), _) if a.code == 0 => c.connected = true,
                Event::Closed(_) => c.open = false,
                _ => {}
            }
        }
        if matches!(&ev, Event::Packet(Packet::ConnAck(a), _) if a.code == 0)
            && self.scenario.client(client).is_some()
        {
            self.accepted = true;
        }
        ev
    }

    /// Writes bytes; a peer that closed first is not an error here (the
    /// next expect sees the close).
    async fn write(
        &mut self,
        client: &str,
        bytes: Bytes,
        packet: Option<Packet>,
    ) -> Result<(), Stop> {
        if !self.conn(client)?.open {
            return Err(Stop::Fail(Failure {
                step: 0,
                pos: None,
                expected: format!("client `{client}`'s connection to be open to send"),
                got: "it was closed".into(),
                got_hex: None,
            }));
        }
        let deadline = self.now() + self.opts.step_timeout;
        let reply = self
            .io
            .call(Request::Send {
                client: client.to_string(),
                bytes,
                packet,
                deadline,
            })
            .await;
        match reply {
            Reply::Sent(SendOutcome::Written) => Ok(()),
            Reply::Sent(SendOutcome::Broken(why)) => {
                self.note(client, &format!("writing failed: {why}")).await;
                self.close(client).await;
                Ok(())
            }
            Reply::Sent(SendOutcome::NotOpen) => {
                Err(Stop::Error(CaseError::NoConnection(client.to_string())))
            }
            Reply::Sent(SendOutcome::Timeout) => Err(Stop::Error(CaseError::Stalled(format!(
                "client `{client}`: the broker did not take the bytes in time"
            )))),
            other => Err(unexpected(&other)),
        }
    }

    /// Builds, encodes and writes the packet that `fields` describe.
    async fn send_packet(
        &mut self,
        client: &str,
        mut fields: Map<String, Value>,
    ) -> Result<(), Stop> {
        let is_connect = fields.get("type").and_then(Value::as_str) == Some("CONNECT");
        if is_connect {
            fields
                .entry("client_id")
                .or_insert_with(|| Value::from("{client_id}"));
            fields
                .entry("protocol")
                .or_insert_with(|| Value::from(self.protocol.as_str()));
        }
        let value = self
            .vars
            .to_send(&Value::Object(fields), client, &self.captures)
            .map_err(|e| Stop::Error(CaseError::BadPacket(e)))?;
        let protocol = self.conns.get(client).map_or(self.protocol, |c| c.protocol);
        let (packet, overrides) = packet::packet_from_value(&value, protocol).map_err(|e| {
            Stop::Error(CaseError::BadPacket(format!(
                "the packet to send is not valid: {e}"
            )))
        })?;
        let written_in = match &packet {
            Packet::Connect(c) => c.protocol,
            _ => protocol,
        };
        let bytes = mqtt_codec::encode_with(&packet, written_in, &overrides).map_err(|e| {
            Stop::Error(CaseError::BadPacket(format!(
                "cannot encode the packet to send: {e}"
            )))
        })?;
        let connect = match &packet {
            Packet::Connect(c) => Some(c.protocol),
            _ => None,
        };
        // A packet with deliberate faults is not what its fields say: the
        // log shows its bytes only.
        self.track_sent(client, &packet, written_in);
        let logged = overrides.is_empty().then_some(packet);
        self.write(client, bytes, logged).await?;
        if let Some(version) = connect {
            if overrides.is_empty() {
                self.set_protocol(client, version).await;
            }
            let announces = version == self.protocol
                && overrides.first_byte.is_none()
                && overrides.truncate.is_none()
                && !overrides
                    .fields
                    .iter()
                    .any(|(f, _)| f.starts_with("protocol"));
            if announces {
                self.step_connect
                    .insert(client.to_string(), (overrides.is_empty(), None));
            } else {
                self.step_connect.remove(client);
            }
        }
        Ok(())
    }

    async fn set_protocol(&mut self, client: &str, protocol: Protocol) {
        let _ = self
            .io
            .call(Request::SetProtocol {
                client: client.to_string(),
                protocol,
            })
            .await;
        if let Some(c) = self.conns.get_mut(client) {
            c.protocol = protocol;
        }
    }

    /// The next event for `name`, skipping the noise its scenario ignores.
    async fn next(&mut self, name: &str, deadline: Instant) -> Result<Event, Stop> {
        self.conn(name)?;
        let keep = self
            .scenario
            .client(name)
            .and_then(|c| c.ignore_publishes_without.clone())
            .map(|t| self.vars.fill(&t, name));
        loop {
            let ev = self.read(name, deadline).await;
            if let Some((_, first @ None)) = self.step_connect.get_mut(name) {
                *first = Some(ev.clone());
            }
            self.timed_out = matches!(ev, Event::Timeout);
            self.heard |= matches!(ev, Event::Packet(..) | Event::Malformed(..));
            let Some(keep) = &keep else {
                return self.judge_arrival(name, ev);
            };
            match &ev {
                Event::Packet(Packet::Publish(p), _) if !p.topic.contains(keep.as_str()) => {
                    self.note(name, "skipped: unrelated traffic").await;
                    if p.qos == QoS::AtLeastOnce {
                        let ack = Packet::PubAck(PubResponse::new(p.packet_id));
                        let protocol = self.conn(name)?.protocol;
                        let bytes = mqtt_codec::encode_bytes(&ack, protocol)
                            .map_err(|e| Stop::Error(CaseError::Harness(e.to_string())))?;
                        self.write(name, bytes, Some(ack)).await?;
                    }
                }
                // The same for a PUBLISH that does not decode (a broker that
                // forwards someone else's message malformed): its topic is
                // read from the bytes, and the verdict left to its own case.
                Event::Malformed(_, raw)
                    if raw_publish_topic(raw).is_some_and(|t| {
                        !keep.is_empty() && !t.windows(keep.len()).any(|w| w == keep.as_bytes())
                    }) =>
                {
                    self.note(name, "skipped: unrelated traffic that does not decode")
                        .await;
                }
                _ => return self.judge_arrival(name, ev),
            }
        }
    }

    // --- steps -------------------------------------------------------------

    async fn run_step(&mut self, action: &Action) -> Result<(), Stop> {
        let verdict = self.run_action(action).await;
        if let (Err(Stop::Fail(_)), Some(client)) = (&verdict, action.client()) {
            if let Some(why) = self.version_not_spoken(client).await {
                return Err(Stop::Skip(why));
            }
        }
        verdict
    }

    async fn run_action(&mut self, action: &Action) -> Result<(), Stop> {
        match action {
            Action::Send {
                client,
                packet,
                text_frame: false,
            } => self.send_packet(client, packet.clone()).await,
            Action::Send {
                client,
                packet,
                text_frame: true,
            } => self.send_text(client, packet.clone()).await,
            Action::SendHex { client, bytes } => self.send_hex(client, bytes).await,
            Action::Expect {
                client,
                matcher,
                timeout,
            } => {
                let t = self.timeout(*timeout);
                let ev = self.next(client, self.now() + t).await?;
                self.check_event(client, &ev, matcher, t)
            }
            Action::ExpectOneOf {
                client,
                choices,
                timeout,
            } => {
                self.expect_one_of(client, choices, self.timeout(*timeout))
                    .await
            }
            Action::ExpectUnordered {
                client,
                matchers,
                timeout,
            } => {
                self.expect_unordered(client, matchers, self.timeout(*timeout))
                    .await
            }
            Action::ExpectClose {
                client,
                close,
                timeout,
            } => {
                let t = self.timeout(*timeout) + self.keep_alive_lag(client);
                self.expect_close(client, close, t).await
            }
            Action::ExpectSilence { client, duration } => {
                let d = self
                    .opts
                    .max_silence
                    .map_or(*duration, |m| m.min(*duration));
                match self.next(client, self.now() + d).await? {
                    Event::Timeout => Ok(()),
                    other => Err(fail(
                        format!("no packet for {}", show_duration(d)),
                        &other,
                        self.protocol,
                        d,
                    )),
                }
            }
            Action::Connect {
                client,
                fields,
                connack,
                expect_connack,
            } => {
                self.connect(client, fields, connack.as_ref(), *expect_connack)
                    .await
            }
            Action::Disconnect { client, fields } => {
                let mut f = fields.clone();
                f.insert("type".into(), Value::from("DISCONNECT"));
                self.send_packet(client, f).await?;
                self.await_close(client).await;
                self.close(client).await;
                Ok(())
            }
            Action::Drop { client } => {
                self.conn(client)?;
                self.close(client).await;
                Ok(())
            }
            Action::Wait { duration, .. } => {
                // A spec timer (keep alive, expiry) has to run: this is the
                // wait the scenario justifies.
                let until = self.now() + *duration;
                let _ = self.io.call(Request::Sleep { until }).await;
                Ok(())
            }
        }
    }

    /// How much later than the spec's 1.5 × keep alive the target may close
    /// `client`'s connection, by its profile (`keep_alive.granularity`):
    /// only for a client that asked for a keep alive.
    fn keep_alive_lag(&self, client: &str) -> Duration {
        let asks = self
            .scenario
            .client(client)
            .and_then(|c| c.fields.get("keep_alive"))
            .and_then(Value::as_u64)
            .is_some_and(|k| k > 0);
        match self.opts.profile.as_deref() {
            Some(p) if asks => Duration::from_secs(p.keep_alive.granularity.into()),
            _ => Duration::ZERO,
        }
    }

    /// Encodes and writes a well-formed packet of the harness's own (a probe's
    /// CONNECT, a closing DISCONNECT), bounded by `within`; whether it was
    /// written. Not a step: nothing here is a verdict.
    async fn send_plain(
        &mut self,
        client: &str,
        packet: Packet,
        protocol: Protocol,
        within: Duration,
    ) -> bool {
        let Ok(bytes) = mqtt_codec::encode_bytes(&packet, protocol) else {
            return false;
        };
        let deadline = self.now() + within;
        let reply = self
            .io
            .call(Request::Send {
                client: client.to_string(),
                bytes,
                packet: Some(packet),
                deadline,
            })
            .await;
        matches!(reply, Reply::Sent(SendOutcome::Written))
    }

    /// At the end: a normal DISCONNECT where a connection was accepted (so
    /// that no will fires after the case), then every socket closed.
    async fn close_all(&mut self) {
        let mut names: Vec<String> = self.conns.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(c) = self.conns.get(&name).copied() else {
                continue;
            };
            if c.open && c.connected {
                let d = Packet::Disconnect(Default::default());
                self.send_plain(&name, d, c.protocol, Duration::from_millis(500))
                    .await;
            }
            self.close(&name).await;
        }
    }
}

mod connect;
mod evidence;
mod expect;
mod raw;

/// A reply that does not answer the request: a driver bug.
fn unexpected(reply: &Reply) -> Stop {
    Stop::Error(CaseError::Harness(format!(
        "the driver answered with {reply:?}"
    )))
}

/// The topic bytes of a PUBLISH frame, read from the fixed header and the
/// topic's length alone: for a PUBLISH the codec refuses for other reasons.
fn raw_publish_topic(raw: &[u8]) -> Option<&[u8]> {
    if raw.first()? >> 4 != 3 {
        return None;
    }
    // The remaining length: one to four bytes, the last below 0x80.
    let mut at = 1;
    while raw.get(at)? & 0x80 != 0 {
        at += 1;
        if at > 4 {
            return None;
        }
    }
    let len = usize::from(u16::from_be_bytes([*raw.get(at + 1)?, *raw.get(at + 2)?]));
    raw.get(at + 3..at + 3 + len)
}

#[cfg(test)]
mod tests {
    use super::raw_publish_topic;

    #[test]
    fn topic_of_a_publish_that_does_not_decode() {
        // QoS 0 with DUP (refused), topic "a/b".
        assert_eq!(
            raw_publish_topic(&[0x38, 0x06, 0x00, 0x03, b'a', b'/', b'b', b'x']),
            Some(&b"a/b"[..])
        );
        // A two-byte remaining length.
        let mut long = vec![0x30, 0x83, 0x01, 0x00, 0x01, b't'];
        long.resize(3 + 131, 0);
        assert_eq!(raw_publish_topic(&long), Some(&b"t"[..]));
        // Not a PUBLISH; cut short; a remaining length of five bytes.
        assert_eq!(raw_publish_topic(&[0x90, 0x03, 0x00, 0x01, 0x00]), None);
        assert_eq!(raw_publish_topic(&[0x30, 0x05, 0x00, 0x09, b'a']), None);
        assert_eq!(
            raw_publish_topic(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
    }
}
