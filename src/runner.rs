//! The scenario runner: scenarios × protocols as cases, run in parallel
//! against one broker, each step bounded by a deadline.
//!
//! A case goes: skip it if the target profile rules out its protocol or a
//! feature it requires; open every client (CONNECT, expect CONNACK 0, read
//! the broker's capabilities from the first CONNACK, skip if one it requires
//! is missing), run the steps in order, close what is still open.
//!
//! # Pass, fail, skip or error
//!
//! A **fail** is a verdict on the broker: it answered, and the answer is not
//! what the spec allows — a wrong packet, a wrong field, a close instead of an
//! answer, silence where an answer is due, or bytes that do not decode. Bytes
//! that do not decode where the CONNACK of a client's automatic connect
//! belongs (or another packet than CONNACK there) fail the case on the
//! statement the answer broke (the decode error's, or MQTT-3.2.0-1), not on
//! the statements the scenario meant to check, which were never reached.
//!
//! An **error** means no verdict could be had: the connection was refused,
//! reset, or closed before any CONNACK; the target did not answer the
//! automatic CONNECT in time or refused it (a CONNACK with a non-zero code:
//! credentials, configuration); a step timed out in a case where nothing at
//! all came back and the target does not answer a fresh, valid CONNECT
//! either (a hung target); or the scenario made no packet.
//!
//! A **skip** means the scenario does not apply: the profile does not list
//! the protocol or rules out a required feature (the CONNACK can withdraw a
//! feature but never brings back one the profile rules out), the CONNACK or
//! a SUBACK shows a feature missing, or the target does not speak the
//! protocol version. The last is known from the profile, from a CONNACK
//! 0x01 / 0x84 to the first CONNECT, or — the rule for brokers that simply
//! close on a version they do not know (MQTT-3.1.2-2 lets a 3.1.1 server do
//! so) — when the target closes the connection on a case's first CONNECT
//! without any CONNACK *and* answers a CONNECT of another version on a fresh
//! connection: "the target does not speak MQTT 3.1". Silence on the CONNECT
//! is judged by a probe: a minimal CONNECT of the version refused with
//! 0x01 / 0x84, or left unanswered while another version's is answered,
//! makes a skip too. A target that closes on every CONNECT speaks nothing:
//! error. A profile that lists the version turns such a close into an error too. A scenario that sends its own
//! CONNECT of the case's version is judged the same way when no connection
//! of the case has been accepted: a refusal of a well-formed one as an
//! unsupported version is a skip, and of a deliberately malformed one too
//! once a probe shows that a valid CONNECT of that version is refused as well.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{Packet, PacketType, Properties, Protocol, PubResponse, QoS};
use serde_json::{Map, Value};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::net::{Connection, Event, LogEntry, SendError, Target};
use crate::profile::Profile;
use crate::results::{CaseResult, Failure, RunReport, Status};
use crate::scenario::{is_capture, Action, Capability, Choice, CloseSpec, Matcher, Scenario};
use crate::{hex, packet_json};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The broker under test; `None` starts the embedded reference broker.
    pub target: Option<Target>,
    /// The embedded broker's configuration (with deliberate violations, in tests).
    pub broker_config: reference_broker::Config,
    /// Cases run at once.
    pub jobs: usize,
    /// Default deadline of each expect step and each connection attempt.
    pub step_timeout: Duration,
    /// Run only under these protocols (empty: every protocol a scenario lists).
    pub protocols: Vec<Protocol>,
    /// Capabilities the target is known not to have (`--without`), on top
    /// of what its profile and its CONNACK say.
    pub without: Vec<Capability>,
    /// What the target offers when it cannot announce it (`--profile`).
    pub profile: Option<Arc<Profile>>,
    /// Cut every `expect_silence` longer than this to this (`--max-silence`):
    /// a faster run that watches for stray packets for less time.
    pub max_silence: Option<Duration>,
    /// Where the clients that name a target connect (`--target-for NAME=URL`).
    pub named_targets: std::collections::BTreeMap<String, Target>,
    /// Credentials for every CONNECT that does not set its own
    /// (`--username`, `--password`): a broker that requires a login.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            target: None,
            broker_config: reference_broker::Config::default(),
            jobs: default_jobs(),
            step_timeout: Duration::from_secs(5),
            protocols: Vec::new(),
            without: Vec::new(),
            profile: None,
            max_silence: None,
            named_targets: Default::default(),
            username: None,
            password: None,
        }
    }
}

/// Available parallelism × 16: a case spends nearly all its time waiting on
/// the network or on a spec timer (keep alive, expiry), not on a core, and
/// the suite's wall time is bounded below by its total case time ÷ jobs.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 16
}

/// One scenario under one protocol.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Arc<Scenario>,
    pub protocol: Protocol,
}

/// The cases of `scenarios`, in order, restricted to `protocols` when not empty.
pub fn cases(scenarios: &[Arc<Scenario>], protocols: &[Protocol]) -> Vec<Case> {
    let mut out = Vec::new();
    for s in scenarios {
        for p in &s.protocols {
            if protocols.is_empty() || protocols.contains(p) {
                out.push(Case {
                    scenario: Arc::clone(s),
                    protocol: *p,
                });
            }
        }
    }
    out
}

/// Keeps the scenarios whose id, file or name contains `filter` (if given)
/// and that carry every tag in `tags`.
pub fn select(scenarios: Vec<Scenario>, filter: Option<&str>, tags: &[String]) -> Vec<Scenario> {
    scenarios
        .into_iter()
        .filter(|s| {
            filter.is_none_or(|f| s.id.contains(f) || s.file.contains(f) || s.name.contains(f))
                && tags.iter().all(|t| s.tags.contains(t))
        })
        .collect()
}

/// The reference broker, in-process on an ephemeral loopback port.
pub struct EmbeddedBroker {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl EmbeddedBroker {
    pub async fn start(config: reference_broker::Config) -> std::io::Result<EmbeddedBroker> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(reference_broker::server::run(
            listener,
            config,
            async move {
                let _ = rx.await;
            },
        ));
        Ok(EmbeddedBroker {
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    pub fn target(&self) -> Target {
        Target {
            scheme: crate::net::Scheme::Mqtt,
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            path: String::new(),
            tls: Default::default(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Runs the scenarios and collects the report; `on_case` sees each case as it ends.
pub async fn run(
    scenarios: Vec<Scenario>,
    opts: &RunOptions,
    mut on_case: impl FnMut(&CaseResult),
) -> Result<RunReport, String> {
    let started = Instant::now();
    let (target, embedded) = match &opts.target {
        Some(t) => (t.clone(), None),
        None => {
            let b = EmbeddedBroker::start(opts.broker_config.clone())
                .await
                .map_err(|e| format!("cannot start the embedded reference broker: {e}"))?;
            (b.target(), Some(b))
        }
    };
    let scenarios: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    let mut cases = cases(&scenarios, &opts.protocols);
    // Longest first: a run lasts at least as long as its slowest case, so
    // the cases bound by spec timers start before the short ones fill the slots.
    cases.sort_by_key(|c| std::cmp::Reverse(least_duration(c, opts)));
    let run_token = run_token();
    let limit = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut set = JoinSet::new();
    for (index, case) in cases.into_iter().enumerate() {
        let limit = Arc::clone(&limit);
        let target = target.clone();
        let opts = opts.clone();
        let run_token = run_token.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            run_case(&case, &target, &opts, &run_token, index).await
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        let r = match joined {
            Ok(r) => r,
            // A case task that panicked is a harness bug; report it, keep going.
            Err(e) => CaseResult {
                id: "?".into(),
                file: String::new(),
                name: String::new(),
                protocol: Protocol::V5,
                status: Status::Error,
                statements: Vec::new(),
                duration: Duration::ZERO,
                message: Some(format!("the case's task failed: {e}")),
                failure: None,
                exchange: Vec::new(),
            },
        };
        on_case(&r);
        results.push(r);
    }
    if let Some(b) = embedded {
        b.stop().await;
    }
    Ok(RunReport::new(
        target.to_string(),
        results,
        started.elapsed(),
    ))
}

/// The time a case takes at least, by its scenario: its waits, its
/// silences, and the deadlines of its `expect_close` steps with an explicit
/// timeout (a broker's timer closing the connection: keep alive, …).
pub fn least_duration(case: &Case, opts: &RunOptions) -> Duration {
    let mut total = Duration::ZERO;
    for step in &case.scenario.steps {
        if !step.only.is_empty() && !step.only.contains(&case.protocol) {
            continue;
        }
        total += match &step.action {
            Action::Wait { duration, .. } => *duration,
            Action::ExpectSilence { duration, .. } => {
                opts.max_silence.map_or(*duration, |m| m.min(*duration))
            }
            Action::ExpectClose {
                timeout: Some(t), ..
            } => *t,
            _ => Duration::ZERO,
        };
    }
    total
}

fn run_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xFF_FFFF)
}

/// Runs one case to its result.
pub async fn run_case(
    case: &Case,
    target: &Target,
    opts: &RunOptions,
    run_token: &str,
    index: usize,
) -> CaseResult {
    let started = Instant::now();
    let s = &case.scenario;
    let mut ctx = Ctx::new(case, target, opts, run_token, index);
    let outcome = ctx.run().await;
    let statements = match ctx.broken.take() {
        Some(ids) => ids,
        None => s.checked_statements(case.protocol),
    };
    let (status, message, failure) = match outcome {
        Ok(()) => (Status::Pass, None, None),
        Err(Stop::Skip(m)) => (Status::Skip, Some(m), None),
        Err(Stop::Error(m)) => (Status::Error, Some(m), None),
        Err(Stop::Fail(f)) => {
            let at = match f.pos {
                Some(p) => format!("step {} (line {})", f.step, p.line),
                None if f.step == 0 => "connecting".to_string(),
                None => format!("step {}", f.step),
            };
            let m = format!("{at}: expected {}; got {}", f.expected, f.got);
            (Status::Fail, Some(m), Some(f))
        }
    };
    ctx.close_all().await;
    let exchange = if status == Status::Pass {
        Vec::new()
    } else {
        ctx.take_log()
    };
    CaseResult {
        id: s.id.clone(),
        file: s.file.clone(),
        name: s.name.clone(),
        protocol: case.protocol,
        status,
        statements,
        duration: started.elapsed(),
        message,
        failure,
        exchange,
    }
}

/// Why a case stopped before its end.
enum Stop {
    Fail(Failure),
    Skip(String),
    Error(String),
}

/// What the broker offers, from its first CONNACK and the target profile.
#[derive(Debug, Clone)]
struct Capabilities {
    max_qos: u8,
    retain: bool,
    wildcards: bool,
    shared: bool,
    sub_ids: bool,
    topic_alias_max: u16,
}

impl Capabilities {
    fn from_connack(props: &Properties, protocol: Protocol) -> Capabilities {
        if !protocol.is_v5() {
            return Capabilities {
                max_qos: 2,
                retain: true,
                wildcards: true,
                shared: false,
                sub_ids: false,
                topic_alias_max: 0,
            };
        }
        Capabilities {
            max_qos: props.maximum_qos().unwrap_or(2),
            retain: props.retain_available().unwrap_or(1) == 1,
            wildcards: props.wildcard_subscription_available().unwrap_or(1) == 1,
            shared: props.shared_subscription_available().unwrap_or(1) == 1,
            sub_ids: props.subscription_identifier_available().unwrap_or(1) == 1,
            topic_alias_max: props.topic_alias_maximum().unwrap_or(0),
        }
    }

    fn missing(&self, c: Capability) -> Option<String> {
        let why = match c {
            Capability::Qos1 if self.max_qos < 1 => {
                format!("the broker's Maximum QoS is {}", self.max_qos)
            }
            Capability::Qos2 if self.max_qos < 2 => {
                format!("the broker's Maximum QoS is {}", self.max_qos)
            }
            Capability::Retain if !self.retain => "the broker has Retain Available 0".into(),
            Capability::Wildcards if !self.wildcards => {
                "the broker has Wildcard Subscription Available 0".into()
            }
            Capability::SharedSubscriptions if !self.shared => {
                "shared subscriptions are not available".into()
            }
            Capability::SubscriptionIdentifiers if !self.sub_ids => {
                "subscription identifiers are not available".into()
            }
            Capability::TopicAlias if self.topic_alias_max == 0 => {
                "the broker's Topic Alias Maximum is 0".into()
            }
            _ => return None,
        };
        Some(format!("requires {}: {why}", c.as_str()))
    }
}

/// Capabilities that only exist in 5.0.
fn v5_only(c: Capability) -> bool {
    matches!(
        c,
        Capability::SharedSubscriptions
            | Capability::SubscriptionIdentifiers
            | Capability::TopicAlias
    )
}

/// The state of a running case.
struct Ctx<'a> {
    scenario: &'a Scenario,
    protocol: Protocol,
    target: &'a Target,
    opts: &'a RunOptions,
    run: String,
    case: String,
    topic: String,
    client_ids: HashMap<String, String>,
    captures: HashMap<String, Value>,
    conns: HashMap<String, Connection>,
    /// Logs of connections already replaced.
    old_logs: Vec<LogEntry>,
    step: usize,
    caps: Option<Capabilities>,
    /// The statement the broker broke while the case was connecting (its
    /// answer to CONNECT did not decode): the case's verdict is on that
    /// statement, not on those the scenario meant to check.
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
}

impl<'a> Ctx<'a> {
    fn new(
        case: &'a Case,
        target: &'a Target,
        opts: &'a RunOptions,
        run: &str,
        index: usize,
    ) -> Ctx<'a> {
        let s = &*case.scenario;
        // Fixed width, so that no case's token is part of another's (case 2
        // in case 25): a client skipping traffic without its token relies on
        // it. Letters and digits only (13 of them), so that a scenario can
        // build client ids any server must accept from it (MQTT-3.1.3-5).
        let case_token = format!("mh{run}c{index:04}");
        let mut client_ids = HashMap::new();
        for (i, c) in s.clients.iter().enumerate() {
            let mut id = format!("{case_token}-{}", c.name);
            if id.len() > 23 {
                id = format!("{case_token}-c{i}");
            }
            client_ids.insert(c.name.clone(), id);
        }
        Ctx {
            scenario: s,
            protocol: case.protocol,
            target,
            opts,
            run: run.to_string(),
            topic: format!("mqtt-harness/{case_token}"),
            case: case_token,
            client_ids,
            captures: HashMap::new(),
            conns: HashMap::new(),
            old_logs: Vec::new(),
            step: 0,
            caps: None,
            broken: None,
            heard: false,
            step_connect: HashMap::new(),
            timed_out: false,
        }
    }

    fn timeout(&self, step: Option<Duration>) -> Duration {
        step.or(self.scenario.timeout)
            .unwrap_or(self.opts.step_timeout)
    }

    async fn run(&mut self) -> Result<(), Stop> {
        let s = self.scenario;
        let profile = self.opts.profile.as_deref();
        if let Some(why) = profile.and_then(|p| p.refuses(self.protocol)) {
            return Err(Stop::Skip(why));
        }
        for c in &s.requires {
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
        if let Some(p) = profile {
            if let Some(why) = self.keep_alive_outside(p) {
                return Err(Stop::Skip(why));
            }
        }
        for c in &s.clients {
            let name = c.name.clone();
            if c.connect {
                self.connect(&name, &Map::new(), None, true).await?;
            } else {
                self.open(&name).await?;
            }
        }
        for (i, step) in s.steps.iter().enumerate() {
            self.step = i + 1;
            if !step.only.is_empty() && !step.only.contains(&self.protocol) {
                continue;
            }
            self.timed_out = false;
            let mut result = self.run_step(&step.action).await;
            if let Err(Stop::Fail(f)) = &result {
                // Nothing has come back at all in this case, not even to a
                // CONNECT: a broker that ignores the step, or a hung target?
                // Only a broker that answers a fresh, valid CONNECT is alive
                // enough for its silence to be a verdict.
                if self.timed_out && !self.heard && !self.answers_connect(self.protocol).await {
                    result = Err(Stop::Error(format!(
                        "the target has answered nothing in this case and does not answer a valid CONNECT either (expected {}; got {}); no verdict",
                        f.expected, f.got
                    )));
                }
            }
            result.map_err(|e| match e {
                Stop::Fail(mut f) => {
                    f.step = i + 1;
                    f.pos = step.pos;
                    Stop::Fail(f)
                }
                Stop::Error(m) => Stop::Error(format!("step {}: {m}", i + 1)),
                other => other,
            })?;
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
            if !step.only.is_empty() && !step.only.contains(&self.protocol) {
                continue;
            }
            let (client, fields) = match &step.action {
                Action::Connect { client, fields, .. } => (client, fields),
                Action::Send { client, packet } => (client, packet),
                _ => continue,
            };
            if let Some(why) = asked(fields).and_then(|k| p.keep_alive_refused(k)) {
                return Some(format!("client `{client}` {why}"));
            }
        }
        None
    }

    /// After the target closed the connection on this case's first CONNECT
    /// without a CONNACK: does it answer a CONNECT of another version? Then
    /// it does not speak this one (a 3.1.1-only broker closes on a 5.0 or a
    /// 3.1 CONNECT, as MQTT-3.1.2-2 lets it), and the case is skipped; if it
    /// answers nothing either, the target is broken and the case an error.
    async fn speaks_another_version(&self) -> Option<Protocol> {
        let other = match self.protocol {
            Protocol::V3_1 => Protocol::V3_1_1,
            Protocol::V3_1_1 => Protocol::V5,
            Protocol::V5 => Protocol::V3_1_1,
        };
        self.answers_connect(other).await.then_some(other)
    }

    /// Whether a CONNACK code refuses the case's version: 0x84 Unsupported
    /// Protocol Version (5.0), 0x01 unacceptable protocol version (3.x; also
    /// what a 3.1.1-only broker answers a 5.0 CONNECT with).
    fn refuses_version(&self, code: u8) -> bool {
        code == 0x01 || (self.protocol.is_v5() && code == 0x84)
    }

    /// The run's profile, when it lists the case's version (the target then
    /// speaks it, whatever it does to a CONNECT).
    fn profile_listing_version(&self) -> Option<&crate::profile::Profile> {
        self.opts
            .profile
            .as_deref()
            .filter(|p| p.protocols.contains(&self.protocol))
    }

    /// The target said nothing to this case's first CONNECT: is it a version
    /// it does not speak? Yes when it refuses a minimal CONNECT of the version
    /// (CONNACK 0x01, or 0x84 in 5.0), or answers none of that version but
    /// one of another (a broker that reads a 5.0 CONNECT's properties as
    /// 3.1.1 fields waits for bytes that never come). Not when a profile
    /// lists the version.
    async fn not_spoken_after_silence(&self) -> Option<String> {
        if self.profile_listing_version().is_some() {
            return None;
        }
        match self.probe_connect(self.protocol).await {
            Some(code) if self.refuses_version(code) => Some(format!(
                "the target does not speak MQTT {}: it did not answer the CONNECT, and refuses a minimal one with CONNACK 0x{code:02X}",
                self.protocol
            )),
            Some(_) => None,
            None => {
                let other = self.speaks_another_version().await?;
                Some(format!(
                    "the target does not speak MQTT {}: it answers no CONNECT of that version, and answers an MQTT {other} one",
                    self.protocol
                ))
            }
        }
    }

    /// Whether the target answers a valid CONNECT of `other` (on a connection
    /// of its own, with a client id of its own) with a CONNACK.
    async fn answers_connect(&self, other: Protocol) -> bool {
        self.probe_connect(other).await.is_some()
    }

    /// The code of the CONNACK with which the target answers a valid CONNECT
    /// of `other` (on a connection of its own, with a client id of its own).
    async fn probe_connect(&self, other: Protocol) -> Option<u8> {
        let deadline = Instant::now() + self.opts.step_timeout;
        let Ok(mut conn) = Connection::open("probe", self.target, other, deadline).await else {
            return None;
        };
        let connect = serde_json::json!({
            "type": "CONNECT",
            "protocol": other.as_str(),
            "client_id": format!("{}-probe", self.case),
        });
        let Ok((packet, _)) = packet_json::packet_from_value(&connect, other) else {
            return None;
        };
        let Ok(bytes) = mqtt_codec::encode_bytes(&packet, other) else {
            return None;
        };
        let sent = conn
            .send(
                &bytes,
                Some(packet),
                Instant::now() + self.opts.step_timeout,
            )
            .await;
        if sent.is_err() {
            return None;
        }
        let answered = match conn.next_event(deadline).await {
            Event::Packet(Packet::ConnAck(ack), _) => Some(ack.code),
            _ => None,
        };
        if answered.is_some() && conn.connected() {
            let disconnect = Packet::Disconnect(Default::default());
            if let Ok(b) = mqtt_codec::encode_bytes(&disconnect, other) {
                let deadline = Instant::now() + Duration::from_millis(500);
                let _ = conn.send(&b, Some(disconnect), deadline).await;
            }
        }
        conn.close().await;
        answered
    }

    async fn open(&mut self, name: &str) -> Result<(), Stop> {
        let deadline = Instant::now() + self.opts.step_timeout;
        // A client that names a target connects there when the run maps it.
        let target = self
            .scenario
            .client(name)
            .and_then(|c| c.target.as_ref())
            .and_then(|t| self.opts.named_targets.get(t))
            .unwrap_or(self.target);
        let conn = Connection::open(name, target, self.protocol, deadline)
            .await
            .map_err(|e| Stop::Error(e.to_string()))?;
        if let Some(mut old) = self.conns.insert(name.to_string(), conn) {
            self.old_logs.extend(old.take_log());
        }
        Ok(())
    }

    fn conn(&mut self, name: &str) -> Result<&mut Connection, Stop> {
        self.conns
            .get_mut(name)
            .ok_or_else(|| Stop::Error(format!("client `{name}` has no connection")))
    }

    /// Opens a connection, sends CONNECT (the client's fields, then `extra`)
    /// and expects a CONNACK matching `connack` (default: code 0).
    async fn connect(
        &mut self,
        name: &str,
        extra: &Map<String, Value>,
        connack: Option<&Matcher>,
        expect_connack: bool,
    ) -> Result<(), Stop> {
        if let Some(mut old) = self.conns.remove(name) {
            old.close().await;
            self.old_logs.extend(old.take_log());
        }
        self.open(name).await?;
        let mut fields = self
            .scenario
            .client(name)
            .map(|c| c.fields.clone())
            .unwrap_or_default();
        fields.extend(extra.clone());
        for (key, value) in [
            ("username", &self.opts.username),
            ("password", &self.opts.password),
        ] {
            if let Some(v) = value {
                fields.entry(key).or_insert_with(|| Value::from(v.as_str()));
            }
        }
        fields.insert("type".into(), Value::from("CONNECT"));
        self.send_packet(name, fields).await?;
        if !expect_connack {
            return Ok(());
        }
        let default = Matcher {
            ty: PacketType::ConnAck,
            fields: [("reason_code".to_string(), Value::from(0))]
                .into_iter()
                .collect(),
        };
        let first = self.caps.is_none();
        let timeout = self.timeout(None);
        let deadline = Instant::now() + timeout;
        let ev = self.next(name, deadline).await?;
        if let Event::Packet(Packet::ConnAck(ack), _) = &ev {
            if first {
                // A broker that refuses the version is not failing this scenario.
                if self.refuses_version(ack.code) && connack.is_none() {
                    return Err(Stop::Skip(format!(
                        "the target does not speak MQTT {}: it refused the CONNECT with CONNACK 0x{:02X}",
                        self.protocol, ack.code
                    )));
                }
                if ack.code == 0 {
                    let caps = Capabilities::from_connack(&ack.properties, self.protocol);
                    // The first CONNACK tells what the broker offers.
                    if let Some(why) = self.scenario.requires.iter().find_map(|r| caps.missing(*r))
                    {
                        return Err(Stop::Skip(why));
                    }
                    self.caps = Some(caps);
                }
            }
        }
        if first && connack.is_none() {
            if let Event::Closed(_) = &ev {
                // Closed on the CONNECT, no CONNACK: a broker that does not
                // speak the version may do just that (see the module docs).
                if let Some(p) = self.profile_listing_version() {
                    return Err(Stop::Error(format!(
                        "client `{name}` could not connect: the target closed the connection on an MQTT {} CONNECT without a CONNACK, though {p} lists MQTT {}",
                        self.protocol, self.protocol
                    )));
                }
                if let Some(other) = self.speaks_another_version().await {
                    return Err(Stop::Skip(format!(
                        "the target does not speak MQTT {}: it closed the connection on the CONNECT without a CONNACK, and answers an MQTT {other} CONNECT",
                        self.protocol
                    )));
                }
            }
            if let Event::Timeout = &ev {
                if let Some(why) = self.not_spoken_after_silence().await {
                    return Err(Stop::Skip(why));
                }
            }
        }
        let m = connack.unwrap_or(&default);
        match self.check_event(name, &ev, m, timeout) {
            Ok(()) => Ok(()),
            // The broker answered the CONNECT with bytes that do not decode,
            // or with another packet than CONNACK (or AUTH): a verdict on the broker.
            Err(Stop::Fail(f))
                if connack.is_none()
                    && self.step == 0
                    && matches!(&ev, Event::Malformed(..) | Event::Packet(..))
                    // 5.0 lets AUTH come before the CONNACK.
                    && !matches!(&ev, Event::Packet(Packet::ConnAck(_) | Packet::Auth(_), _)) =>
            {
                // MQTT-3.2.0-1: the server's first packet is a CONNACK.
                let id = match &ev {
                    Event::Malformed(e, _) => e.statement(),
                    _ => Some("MQTT-3.2.0-1"),
                };
                let known = id.and_then(|id| mqtt_codec::catalogue::lookup(self.protocol, id));
                self.broken = Some(known.map(|st| st.id.to_string()).into_iter().collect());
                Err(Stop::Fail(f))
            }
            // Refused, closed or silent: no verdict could be had.
            Err(Stop::Fail(f)) if connack.is_none() && self.step == 0 => Err(Stop::Error(format!(
                "client `{name}` could not connect: expected {}; got {}",
                f.expected, f.got
            ))),
            Err(e) => Err(e),
        }
    }

    /// The next event for `name`, skipping the noise its spec ignores.
    async fn next(&mut self, name: &str, deadline: Instant) -> Result<Event, Stop> {
        let ignore = self
            .scenario
            .client(name)
            .and_then(|c| c.ignore_publishes_without.clone())
            .map(|t| self.subst_str(&t, name));
        loop {
            let protocol = self.protocol;
            let ev = self.conn(name)?.next_event(deadline).await;
            if let Some((_, first @ None)) = self.step_connect.get_mut(name) {
                *first = Some(ev.clone());
            }
            self.timed_out = matches!(ev, Event::Timeout);
            self.heard |= matches!(ev, Event::Packet(..) | Event::Malformed(..));
            let conn = self.conn(name)?;
            if let (Some(keep), Event::Packet(Packet::Publish(p), _)) = (&ignore, &ev) {
                if !p.topic.contains(keep.as_str()) {
                    conn.note("skipped: unrelated traffic");
                    if p.qos == QoS::AtLeastOnce {
                        let puback = Packet::PubAck(PubResponse::new(p.packet_id));
                        let ack = mqtt_codec::encode_bytes(&puback, protocol)
                            .map_err(|e| Stop::Error(e.to_string()))?;
                        conn.send(&ack, Some(puback), Instant::now() + Duration::from_secs(1))
                            .await
                            .map_err(|e| Stop::Error(format!("client `{name}`: {e}")))?;
                    }
                    continue;
                }
            }
            // The same for a PUBLISH that does not decode (a broker that
            // forwards someone else's message malformed): its topic is read
            // from the bytes, and the verdict left to the case it belongs to.
            if let (Some(keep), Event::Malformed(_, raw)) = (&ignore, &ev) {
                let unrelated = raw_publish_topic(raw).is_some_and(|t| {
                    !keep.is_empty() && !t.windows(keep.len()).any(|w| w == keep.as_bytes())
                });
                if unrelated {
                    conn.note("skipped: unrelated traffic that does not decode");
                    continue;
                }
            }
            return Ok(ev);
        }
    }

    async fn run_step(&mut self, action: &Action) -> Result<(), Stop> {
        let verdict = self.run_step_inner(action).await;
        if let (Err(Stop::Fail(_)), Some(client)) = (&verdict, action.client()) {
            if let Some(why) = self.version_not_spoken(client).await {
                return Err(Stop::Skip(why));
            }
        }
        verdict
    }

    async fn run_step_inner(&mut self, action: &Action) -> Result<(), Stop> {
        match action {
            Action::Send { client, packet } => self.send_packet(client, packet.clone()).await,
            Action::SendHex { client, bytes } => {
                let t = self.opts.step_timeout;
                self.write(client, bytes, None, t).await
            }
            Action::Expect {
                client,
                matcher,
                timeout,
            } => {
                let t = self.timeout(*timeout);
                let ev = self.next(client, Instant::now() + t).await?;
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
                let t = self.timeout(*timeout);
                self.expect_close(client, close, t).await
            }
            Action::ExpectSilence { client, duration } => {
                let duration = &self
                    .opts
                    .max_silence
                    .map_or(*duration, |m| m.min(*duration));
                let ev = self.next(client, Instant::now() + *duration).await?;
                match ev {
                    Event::Timeout => Ok(()),
                    other => Err(fail(
                        format!("no packet for {}", show_duration(*duration)),
                        &other,
                        self.protocol,
                        *duration,
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
                let conn = self.conn(client)?;
                conn.close().await;
                Ok(())
            }
            Action::Drop { client } => {
                self.conn(client)?.close().await;
                Ok(())
            }
            Action::Wait { duration, .. } => {
                // A spec timer (keep alive, expiry) has to run: this is the wait the scenario justifies.
                tokio::time::sleep(*duration).await;
                Ok(())
            }
        }
    }

    /// Writes `bytes` (encoding `packet`, when they are exactly its encoding).
    async fn write(
        &mut self,
        client: &str,
        bytes: &[u8],
        packet: Option<Packet>,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let conn = self.conn(client)?;
        if !conn.is_open() {
            return Err(Stop::Fail(Failure {
                step: 0,
                pos: None,
                expected: format!("client `{client}`'s connection to be open to send"),
                got: "it was closed".into(),
                got_hex: None,
            }));
        }
        match conn.send(bytes, packet, Instant::now() + timeout).await {
            Ok(()) => Ok(()),
            // The broker closed first: the following expect sees the close.
            Err(e @ SendError::Broken(_)) => {
                conn.note(format!("client `{client}`: {e}"));
                conn.close().await;
                Ok(())
            }
            Err(e) => Err(Stop::Error(format!("client `{client}`: {e}"))),
        }
    }

    async fn send_packet(
        &mut self,
        client: &str,
        mut fields: Map<String, Value>,
    ) -> Result<(), Stop> {
        let is_connect = fields.get("type").and_then(Value::as_str) == Some("CONNECT");
        if is_connect {
            if !fields.contains_key("client_id") {
                fields.insert("client_id".into(), Value::from("{client_id}"));
            }
            fields
                .entry("protocol")
                .or_insert_with(|| Value::from(self.protocol.as_str()));
        }
        let value = self
            .subst(&Value::Object(fields), client)
            .map_err(Stop::Error)?;
        let protocol = self
            .conns
            .get(client)
            .map_or(self.protocol, |c| c.protocol());
        let (packet, overrides) = packet_json::packet_from_value(&value, protocol)
            .map_err(|e| Stop::Error(format!("the packet to send is not valid: {e}")))?;
        let written_in = match &packet {
            Packet::Connect(c) => c.protocol,
            _ => protocol,
        };
        let bytes = mqtt_codec::encode_with(&packet, written_in, &overrides)
            .map_err(|e| Stop::Error(format!("cannot encode the packet to send: {e}")))?;
        let t = self.opts.step_timeout;
        // With overrides the bytes are not the packet's encoding: only they are logged.
        let logged = overrides.is_empty().then(|| packet.clone());
        self.write(client, &bytes, logged, t).await?;
        if let Packet::Connect(c) = &packet {
            if overrides.is_empty() {
                self.conn(client)?.set_protocol(c.protocol);
            }
            let announces = c.protocol == self.protocol
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

    /// After a step's CONNECT announcing the case's version, with no
    /// connection of the case accepted yet: the target refused it as a
    /// version it does not speak (CONNACK 0x01, or 0x84 in 5.0) — at once
    /// for a well-formed CONNECT, after a probe showing that it does not
    /// accept a valid one either for a deliberately bad one — or closed on it
    /// and answers a CONNECT of another version. Then the case does not
    /// apply, as when the automatic CONNECT meets the same (module docs).
    async fn version_not_spoken(&self, client: &str) -> Option<String> {
        let (plain, Some(ev)) = self.step_connect.get(client)? else {
            return None;
        };
        if self.conns.values().any(|c| c.connected()) {
            return None;
        }
        match ev {
            Event::Packet(Packet::ConnAck(ack), _) => {
                let refused = self.refuses_version(ack.code);
                if !refused || (!plain && self.probe_connect(self.protocol).await == Some(0)) {
                    return None;
                }
                Some(format!(
                    "the target does not speak MQTT {}: it refused a CONNECT of that version with CONNACK 0x{:02X}",
                    self.protocol, ack.code
                ))
            }
            Event::Timeout => self.not_spoken_after_silence().await,
            Event::Closed(_) if *plain => {
                if self.profile_listing_version().is_some() {
                    return None;
                }
                let other = self.speaks_another_version().await?;
                Some(format!(
                    "the target does not speak MQTT {}: it closed the connection on a well-formed CONNECT without a CONNACK, and answers an MQTT {other} CONNECT",
                    self.protocol
                ))
            }
            _ => None,
        }
    }

    /// Checks that `ev` is a packet matching `m`; captures on success.
    fn check_event(
        &mut self,
        client: &str,
        ev: &Event,
        m: &Matcher,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let expected = self.describe_matcher(m, client);
        match ev {
            Event::Packet(p, _) => {
                let mut caps = self.captures.clone();
                match self.match_packet(p, m, client, &mut caps) {
                    Ok(()) => {
                        self.captures = caps;
                        Ok(())
                    }
                    Err(why) => {
                        if let Some(skip) = self.granted_below_required(p) {
                            return Err(Stop::Skip(skip));
                        }
                        let mut f = fail(expected, ev, self.protocol, timeout);
                        if let Stop::Fail(x) = &mut f {
                            x.got = format!("{} ({why})", x.got);
                        }
                        Err(f)
                    }
                }
            }
            other => Err(fail(expected, other, self.protocol, timeout)),
        }
    }

    /// A SUBACK granting less than the QoS a scenario requires tells that the
    /// broker does not offer it (3.1.1 has no Maximum QoS in CONNACK).
    fn granted_below_required(&self, p: &Packet) -> Option<String> {
        let Packet::SubAck(ack) = p else {
            return None;
        };
        let granted = ack.reason_codes.iter().copied().filter(|c| *c <= 2).max()?;
        let needed = self.scenario.requires.iter().find_map(|c| match c {
            Capability::Qos2 if granted < 2 => Some((c, 2)),
            Capability::Qos1 if granted < 1 => Some((c, 1)),
            _ => None,
        });
        needed.map(|(c, n)| {
            format!(
                "requires {}: the broker granted at most QoS {granted} where QoS {n} was asked",
                c.as_str()
            )
        })
    }

    /// An expected packet as a failure shows it: placeholders filled in,
    /// captures made so far by their value, captures still to make as `$x`.
    fn describe_matcher(&self, m: &Matcher, client: &str) -> String {
        let fields = self.subst_expect(&Value::Object(m.fields.clone()), client);
        let fields = with_captures(&fields, &self.captures);
        match fields {
            Value::Object(f) if !f.is_empty() => format!("{} {}", m.ty.name(), Value::Object(f)),
            _ => m.ty.name().to_string(),
        }
    }

    fn match_packet(
        &self,
        p: &Packet,
        m: &Matcher,
        client: &str,
        caps: &mut HashMap<String, Value>,
    ) -> Result<(), String> {
        if p.packet_type() != m.ty {
            return Err(format!(
                "a {} where a {} was expected",
                p.packet_type(),
                m.ty
            ));
        }
        let actual = packet_json::packet_to_json(p, self.protocol);
        let Value::Object(actual) = actual else {
            return Err("the packet does not describe as fields".into());
        };
        for (key, want) in &m.fields {
            if key == crate::scenario::NO_PROPERTIES {
                let present = actual.get("properties").and_then(Value::as_array);
                let names = want
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str);
                for name in names {
                    let found = present
                        .into_iter()
                        .flatten()
                        .find(|p| p.get("name").and_then(Value::as_str) == Some(name));
                    if let Some(p) = found {
                        return Err(format!("it carries {p}, which it must not"));
                    }
                }
                continue;
            }
            let key_actual = if key == "code" {
                "reason_code"
            } else {
                key.as_str()
            };
            let got = actual.get(key_actual);
            let want = self.subst_expect(want, client);
            match got {
                None => {
                    // 3.x acks carry no reason code: 0 is what they mean.
                    if key_actual == "reason_code" && want.as_u64() == Some(0) {
                        continue;
                    }
                    return Err(format!("it has no `{key}`"));
                }
                Some(got) => {
                    let ok = if key_actual == "reason_code"
                        && want.is_string()
                        && !is_capture_value(&want)
                    {
                        let name = actual.get("reason").and_then(Value::as_str).unwrap_or("");
                        want.as_str().is_some_and(|w| w.eq_ignore_ascii_case(name))
                    } else if key_actual == "properties" {
                        match_properties(&want, got, caps)
                    } else if key_actual == "payload" {
                        match_binary(&want, got, caps)
                    } else {
                        match_value(&want, got, caps)
                    };
                    if !ok {
                        return Err(format!("`{key}` is {got}, not {}", show_want(&want, caps)));
                    }
                }
            }
        }
        Ok(())
    }

    async fn expect_one_of(
        &mut self,
        client: &str,
        choices: &[Choice],
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + timeout;
        let expected: Vec<String> = choices
            .iter()
            .map(|c| match c {
                Choice::Packet(m) => self.describe_matcher(m, client),
                Choice::Close(c) => c.to_string(),
            })
            .collect();
        let expected = format!("one of: {}", expected.join(" | "));
        let ev = self.next(client, deadline).await?;
        match &ev {
            Event::Packet(p, _) => {
                for c in choices {
                    if let Choice::Packet(m) = c {
                        let mut caps = self.captures.clone();
                        if self.match_packet(p, m, client, &mut caps).is_ok() {
                            self.captures = caps;
                            return Ok(());
                        }
                    }
                }
                // A DISCONNECT that a listed DISCONNECT outcome refused is
                // not let through by a close outcome: the scenario said which
                // DISCONNECTs it takes.
                let disconnect_listed = choices
                    .iter()
                    .any(|c| matches!(c, Choice::Packet(m) if m.ty == PacketType::Disconnect));
                if let (Packet::Disconnect(d), false) = (p, disconnect_listed) {
                    if let Some(stop) = self.early_disconnect(client, &ev, &expected, timeout) {
                        return Err(stop);
                    }
                    let accepts = choices.iter().any(|c| match c {
                        Choice::Close(spec) => {
                            spec.disconnect.is_empty() || spec.disconnect.contains(&d.reason_code)
                        }
                        Choice::Packet(_) => false,
                    });
                    if accepts {
                        return match self.next(client, deadline).await? {
                            Event::Closed(_) => Ok(()),
                            other => Err(fail(
                                format!(
                                    "{expected} (the connection to close after the DISCONNECT)"
                                ),
                                &other,
                                self.protocol,
                                timeout,
                            )),
                        };
                    }
                }
                Err(fail(expected, &ev, self.protocol, timeout))
            }
            Event::Closed(_) if choices.iter().any(|c| matches!(c, Choice::Close(_))) => Ok(()),
            _ => Err(fail(expected, &ev, self.protocol, timeout)),
        }
    }

    async fn expect_unordered(
        &mut self,
        client: &str,
        matchers: &[Matcher],
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + timeout;
        let mut left: Vec<&Matcher> = matchers.iter().collect();
        while !left.is_empty() {
            let expected: Vec<String> = left
                .iter()
                .map(|m| self.describe_matcher(m, client))
                .collect();
            let expected = format!("in any order: {}", expected.join(" | "));
            let ev = self.next(client, deadline).await?;
            let Event::Packet(p, _) = &ev else {
                return Err(fail(expected, &ev, self.protocol, timeout));
            };
            let mut found = None;
            for (i, m) in left.iter().enumerate() {
                let mut caps = self.captures.clone();
                if self.match_packet(p, m, client, &mut caps).is_ok() {
                    self.captures = caps;
                    found = Some(i);
                    break;
                }
            }
            match found {
                Some(i) => {
                    left.remove(i);
                }
                None => return Err(fail(expected, &ev, self.protocol, timeout)),
            }
        }
        Ok(())
    }

    /// MQTT-3.14.0-1: a 5.0 server sends DISCONNECT only after a CONNACK
    /// that accepted the connection. A close outcome that would take such a
    /// DISCONNECT fails on that statement instead.
    fn early_disconnect(
        &mut self,
        client: &str,
        ev: &Event,
        expected: &str,
        timeout: Duration,
    ) -> Option<Stop> {
        let Event::Packet(Packet::Disconnect(_), _) = ev else {
            return None;
        };
        if !self.protocol.is_v5() || self.conns.get(client).is_some_and(|c| c.connected()) {
            return None;
        }
        self.broken = Some(vec!["MQTT-3.14.0-1".to_string()]);
        Some(fail(
            format!(
                "{expected}; not a DISCONNECT, which a server sends only after a CONNACK that accepted the connection"
            ),
            ev,
            self.protocol,
            timeout,
        ))
    }

    async fn expect_close(
        &mut self,
        client: &str,
        spec: &CloseSpec,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + timeout;
        loop {
            let ev = self.next(client, deadline).await?;
            match &ev {
                Event::Closed(_) => return Ok(()),
                Event::Packet(Packet::Disconnect(d), _)
                    if spec.disconnect.is_empty() || spec.disconnect.contains(&d.reason_code) =>
                {
                    if let Some(stop) =
                        self.early_disconnect(client, &ev, &spec.to_string(), timeout)
                    {
                        return Err(stop);
                    }
                    continue;
                }
                _ => return Err(fail(spec.to_string(), &ev, self.protocol, timeout)),
            }
        }
    }

    // --- variables -------------------------------------------------------

    fn subst_str(&self, s: &str, client: &str) -> String {
        if !s.contains('{') {
            return s.to_string();
        }
        let own = self.client_ids.get(client).cloned().unwrap_or_default();
        let mut out = s
            .replace("{topic}", &self.topic)
            .replace("{case}", &self.case)
            .replace("{run}", &self.run)
            .replace("{client_id}", &own);
        for (name, id) in &self.client_ids {
            out = out.replace(&format!("{{client:{name}}}"), id);
        }
        out
    }

    /// Substitutes variables in a value to send; `$name` must be captured.
    fn subst(&self, v: &Value, client: &str) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) if is_capture(s) => self
                .captures
                .get(s.trim_start_matches('$'))
                .cloned()
                .ok_or_else(|| format!("`{s}` is used before an expect step captured it"))?,
            Value::String(s) => Value::String(self.subst_str(s, client)),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.subst(x, client))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.subst(x, client)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Substitutes `{…}` variables in an expected value; `$name` stays for matching.
    fn subst_expect(&self, v: &Value, client: &str) -> Value {
        match v {
            Value::String(s) if is_capture(s) => v.clone(),
            Value::String(s) => Value::String(self.subst_str(s, client)),
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.subst_expect(x, client)).collect())
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.subst_expect(x, client)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    async fn close_all(&mut self) {
        let names: Vec<String> = self.conns.keys().cloned().collect();
        for name in names {
            if let Some(conn) = self.conns.get_mut(&name) {
                if conn.is_open() && conn.connected() {
                    // A normal DISCONNECT, so that no will fires after the case.
                    let disconnect = Packet::Disconnect(Default::default());
                    if let Ok(b) = mqtt_codec::encode_bytes(&disconnect, conn.protocol()) {
                        let deadline = Instant::now() + Duration::from_millis(500);
                        let _ = conn.send(&b, Some(disconnect), deadline).await;
                    }
                }
                conn.close().await;
            }
        }
    }

    fn take_log(&mut self) -> Vec<LogEntry> {
        let mut all = std::mem::take(&mut self.old_logs);
        for c in self.conns.values_mut() {
            all.extend(c.take_log());
        }
        all.sort_by_key(|e| e.at);
        all
    }
}

fn is_capture_value(v: &Value) -> bool {
    v.as_str().is_some_and(is_capture)
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

/// `v` with each capture already made replaced by its value.
fn with_captures(v: &Value, caps: &HashMap<String, Value>) -> Value {
    match v {
        Value::String(s) if is_capture(s) => caps
            .get(s.trim_start_matches('$'))
            .cloned()
            .unwrap_or_else(|| v.clone()),
        Value::Array(a) => Value::Array(a.iter().map(|x| with_captures(x, caps)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), with_captures(x, caps)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn show_want(v: &Value, caps: &HashMap<String, Value>) -> String {
    match v.as_str() {
        Some(s) if is_capture(s) => match caps.get(s.trim_start_matches('$')) {
            Some(c) => format!("{c} (captured as {s})"),
            None => s.to_string(),
        },
        _ => v.to_string(),
    }
}

/// `want` (from the scenario) against `got` (from the packet): listed keys of
/// objects, every element of arrays, numbers by value, `$x` captures.
fn match_value(want: &Value, got: &Value, caps: &mut HashMap<String, Value>) -> bool {
    if let Some(inner) = negated(want) {
        // Captures made inside a `not` are not kept: it matched nothing.
        return !match_value(inner, got, &mut caps.clone());
    }
    match want {
        Value::String(s) if is_capture(s) => {
            let name = s.trim_start_matches('$');
            match caps.get(name) {
                Some(v) => v == got,
                None => {
                    caps.insert(name.to_string(), got.clone());
                    true
                }
            }
        }
        Value::Number(w) => match got {
            Value::Number(g) => w.as_f64() == g.as_f64(),
            _ => false,
        },
        Value::Array(w) => match got {
            Value::Array(g) => {
                w.len() == g.len() && w.iter().zip(g).all(|(a, b)| match_value(a, b, caps))
            }
            _ => false,
        },
        Value::Object(w) => match got {
            Value::Object(g) => w
                .iter()
                .all(|(k, v)| g.get(k).is_some_and(|x| match_value(v, x, caps))),
            _ => false,
        },
        other => other == got,
    }
}

/// `{not: X}`: anything that `X` does not match.
fn negated(want: &Value) -> Option<&Value> {
    match want {
        Value::Object(m) if m.len() == 1 => m.get("not"),
        _ => None,
    }
}

/// Payloads: a string is its UTF-8 bytes, `{hex: …}` its bytes.
fn match_binary(want: &Value, got: &Value, caps: &mut HashMap<String, Value>) -> bool {
    if let Some(inner) = negated(want) {
        return !match_binary(inner, got, &mut caps.clone());
    }
    if is_capture_value(want) {
        return match_value(want, got, caps);
    }
    match (bytes_of(want), bytes_of(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn bytes_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        Value::Object(m) => {
            let h = m.get("hex")?.as_str()?;
            hex::parse(h).ok().map(Bytes::from)
        }
        _ => None,
    }
}

/// Each expected property (`[{name, value}]` or `{name: value}`) is among
/// those that came; others are ignored.
fn match_properties(want: &Value, got: &Value, caps: &mut HashMap<String, Value>) -> bool {
    let Value::Array(got) = got else {
        return false;
    };
    let wanted: Vec<(String, Value)> = match want {
        Value::Array(a) => a
            .iter()
            .filter_map(|p| {
                Some((
                    p.get("name")?.as_str()?.to_string(),
                    p.get("value")?.clone(),
                ))
            })
            .collect(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => return false,
    };
    wanted.iter().all(|(name, value)| {
        got.iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some(name.as_str())
                && p.get("value").is_some_and(|v| {
                    let mut trial = caps.clone();
                    let ok = match_property_value(value, v, &mut trial);
                    if ok {
                        *caps = trial;
                    }
                    ok
                })
        })
    })
}

/// A property's value: as a value, or (binary properties) as bytes. A
/// `{not: X}` negates the whole, not each reading of it.
fn match_property_value(want: &Value, got: &Value, caps: &mut HashMap<String, Value>) -> bool {
    if let Some(inner) = negated(want) {
        return !match_property_value(inner, got, &mut caps.clone());
    }
    match_value(want, got, caps) || match_binary(want, got, caps)
}

fn show_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// A failure: `expected`, and what `ev` was instead.
fn fail(expected: String, ev: &Event, protocol: Protocol, timeout: Duration) -> Stop {
    let (got, got_hex) = match ev {
        Event::Packet(p, raw) => (
            packet_json::packet_to_json(p, protocol).to_string(),
            Some(hex::spaced(raw)),
        ),
        Event::Closed(None) => ("the connection closed".to_string(), None),
        Event::Closed(Some(n)) => (format!("the connection closed ({n})"), None),
        Event::Malformed(e, raw) => (
            format!("bytes that do not decode: {e}"),
            Some(hex::spaced(raw)),
        ),
        Event::Timeout => (format!("nothing within {}", show_duration(timeout)), None),
    };
    Stop::Fail(Failure {
        step: 0,
        pos: None,
        expected,
        got,
        got_hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cases_bound_by_timers_come_first() {
        let parse = |name: &str, steps: &str| {
            let text = format!(
                "name: {name}\nstatements:\n  \"5.0\": [MQTT-3.12.4-1]\nclients:\n  c: {{}}\nsteps:\n{steps}"
            );
            Arc::new(crate::scenario::parse_scenario("x.yaml", &text).unwrap())
        };
        let quick = parse("quick", "  - c: { send: PINGREQ }\n");
        let slow = parse(
            "slow",
            "  - wait: { seconds: 1s, for: a timer }\n  - c: { expect_silence: 300ms }\n  - c: { expect_close: true, timeout: 4s }\n",
        );
        let mut opts = RunOptions::default();
        let case = |s: &Arc<Scenario>| Case {
            scenario: Arc::clone(s),
            protocol: Protocol::V5,
        };
        assert_eq!(least_duration(&case(&quick), &opts), Duration::ZERO);
        assert_eq!(
            least_duration(&case(&slow), &opts),
            Duration::from_millis(5300)
        );
        opts.max_silence = Some(Duration::from_millis(100));
        assert_eq!(
            least_duration(&case(&slow), &opts),
            Duration::from_millis(5100)
        );
    }

    #[test]
    fn values_match_with_captures() {
        let mut caps = HashMap::new();
        assert!(match_value(&json!("$m"), &json!(7), &mut caps));
        assert!(match_value(&json!("$m"), &json!(7), &mut caps));
        assert!(!match_value(&json!("$m"), &json!(8), &mut caps));
        assert!(match_value(&json!([0, 1]), &json!([0, 1]), &mut caps));
        assert!(!match_value(&json!([0]), &json!([0, 1]), &mut caps));
        assert!(match_value(
            &json!({"a": 1}),
            &json!({"a": 1, "b": 2}),
            &mut caps
        ));
    }

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

    #[test]
    fn payloads_and_properties() {
        let mut caps = HashMap::new();
        assert!(match_binary(
            &json!("hi"),
            &json!({"hex": "68 69"}),
            &mut caps
        ));
        assert!(match_binary(
            &json!({"hex": "6869"}),
            &json!("hi"),
            &mut caps
        ));
        let got = json!([{"name": "topic_alias", "value": 3}, {"name": "user_property", "value": ["k", "v"]}]);
        assert!(match_properties(
            &json!({"topic_alias": 3}),
            &got,
            &mut caps
        ));
        assert!(match_properties(
            &json!([{"name": "user_property", "value": ["k", "v"]}]),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"topic_alias": 4}),
            &got,
            &mut caps
        ));
        // `{not: X}`: present, with another value.
        assert!(match_properties(
            &json!({"topic_alias": {"not": 4}}),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"topic_alias": {"not": 3}}),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"message_expiry_interval": {"not": 3}}),
            &got,
            &mut caps
        ));
        let data = json!([{"name": "correlation_data", "value": {"hex": "00 ff"}}]);
        assert!(!match_properties(
            &json!({"correlation_data": {"not": {"hex": "00ff"}}}),
            &data,
            &mut caps
        ));
        assert!(match_properties(
            &json!({"correlation_data": {"not": {"hex": "00fe"}}}),
            &data,
            &mut caps
        ));
    }
}
