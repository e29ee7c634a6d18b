//! The scenario model: what a parsed scenario file says, with positions.
//! The engine is written against these types.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use mqtt_codec::{catalogue, PacketType, Protocol};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A 1-based line and column in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A scenario file that cannot be used: where (the offending key or value)
/// and why, and what to do where that is not already in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub pos: Option<Pos>,
    pub message: String,
    pub hint: Option<String>,
}

impl ParseError {
    pub fn new(
        file: impl Into<String>,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            file: file.into(),
            pos,
            message: message.into(),
            hint: None,
        }
    }

    /// From the YAML parser's error: its position, its message (with the
    /// path of the offending node, `steps[1].c: …`) and the hint our
    /// visitors attached.
    pub fn from_yaml(file: &str, e: &serde_norway::Error) -> ParseError {
        let e = crate::packet::Error::from_yaml(e);
        ParseError {
            file: file.to_string(),
            pos: e.location.map(|(line, column)| Pos { line, column }),
            message: e.message,
            hint: e.hint,
        }
    }

    /// The error as people read it: `file:line:col: message`, then
    /// `--> file:line:col`, the offending line of `text` with a caret under
    /// the column, and the hint.
    pub fn render(&self, text: Option<&str>) -> String {
        let at = self.pos.map(|p| (p.line, p.column));
        let mut title = self.to_string();
        if let Some(h) = &self.hint {
            // The hint gets a line of its own below the snippet.
            if let Some(t) = title.strip_suffix(&format!("; {h}")) {
                title = t.to_string();
            }
        }
        crate::diag::render(&title, &self.file, at, text, self.hint.as_deref())
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// An optional broker feature a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Qos1,
    Qos2,
    Retain,
    Wildcards,
    SharedSubscriptions,
    SubscriptionIdentifiers,
    TopicAlias,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Qos1 => "qos1",
            Capability::Qos2 => "qos2",
            Capability::Retain => "retain",
            Capability::Wildcards => "wildcards",
            Capability::SharedSubscriptions => "shared_subscriptions",
            Capability::SubscriptionIdentifiers => "subscription_identifiers",
            Capability::TopicAlias => "topic_alias",
        }
    }
}

/// A parsed scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as named to the loader.
    pub file: String,
    /// A stable id: the path below `scenarios/` (or below the directory it
    /// was found in) without `.yaml`.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Statement ids (canonical) per catalogue version.
    pub statements: BTreeMap<Protocol, Vec<String>>,
    /// The protocols it runs under.
    pub protocols: Vec<Protocol>,
    pub requires: Vec<Capability>,
    /// The broker configuration it needs (`setup: login`), if any.
    pub setup: Option<crate::run::setup::Setup>,
    pub tags: Vec<String>,
    pub clients: Vec<ClientSpec>,
    pub steps: Vec<Step>,
    /// Default deadline of its expect steps.
    pub timeout: Option<Duration>,
}

impl Scenario {
    /// The statements it checks under `protocol`.
    pub fn statements_for(&self, protocol: Protocol) -> &[String] {
        self.statements
            .get(&protocol)
            .or_else(|| self.statements.get(&protocol.catalogue_version()))
            .map_or(&[], Vec::as_slice)
    }

    /// Every statement a case of it checks under `protocol`: those listed
    /// under `statements`, then those named by its steps and its `wait`
    /// steps that run under `protocol` (a spec timer is checked by what
    /// follows the wait), each once, by its canonical id in that version's
    /// catalogue.
    pub fn checked_statements(&self, protocol: Protocol) -> Vec<String> {
        let mut out = self.statements_for(protocol).to_vec();
        for step in &self.steps {
            if !step.only.is_empty() && !step.only.contains(&protocol) {
                continue;
            }
            let waited = match &step.action {
                Action::Wait { statements, .. } => statements.as_slice(),
                _ => &[],
            };
            let own = step.own_statements(protocol).unwrap_or(&[]);
            let silent = step.if_nothing(protocol).unwrap_or(&[]);
            for id in waited.iter().chain(own).chain(silent) {
                if let Some(st) = catalogue::lookup(protocol, id) {
                    if !out.iter().any(|x| x == st.id) {
                        out.push(st.id.to_string());
                    }
                }
            }
        }
        out
    }

    pub fn client(&self, name: &str) -> Option<&ClientSpec> {
        self.clients.iter().find(|c| c.name == name)
    }
}

/// A client a scenario opens, and how its CONNECT looks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSpec {
    pub name: String,
    /// Connect (CONNECT, expect CONNACK 0) before the first step.
    pub connect: bool,
    /// CONNECT fields ([`crate::packet::vocab`], canonical names, values as
    /// written): clean_start, keep_alive, client_id, properties, will,
    /// username, password.
    pub fields: Map<String, Value>,
    /// PUBLISH packets whose topic does not contain this text are noise from
    /// other traffic on a shared broker: recorded and skipped by expects.
    pub ignore_publishes_without: Option<String>,
    /// The named target this client connects to (clustered or bridged
    /// brokers); `run --target-for NAME=URL` says where it is. Without a
    /// mapping the client uses the run's target.
    pub target: Option<String>,
}

/// One step and where it is in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub pos: Option<Pos>,
    /// Run only under these protocols (empty: all).
    pub only: Vec<Protocol>,
    /// The statements this step checks, per catalogue version (canonical
    /// ids); empty for a version: the scenario's statements.
    pub statements: BTreeMap<Protocol, Vec<String>>,
    /// `if_nothing:` the statements broken when the step's deadline passes
    /// with nothing at all (what it awaits was never sent), where they are
    /// not those a wrong packet breaks: a queued message that never comes
    /// breaks its storage, not the order the step checks.
    pub if_nothing: BTreeMap<Protocol, Vec<String>>,
    pub action: Action,
}

impl Step {
    /// Whether the step runs under `protocol`.
    pub fn runs_under(&self, protocol: Protocol) -> bool {
        self.only.is_empty() || self.only.contains(&protocol)
    }

    /// The statements the step names itself under `protocol` (none: it
    /// checks the scenario's).
    pub fn own_statements(&self, protocol: Protocol) -> Option<&[String]> {
        self.statements
            .get(&protocol)
            .or_else(|| self.statements.get(&protocol.catalogue_version()))
            .map(Vec::as_slice)
            .filter(|ids| !ids.is_empty())
    }

    /// The statements broken under `protocol` when nothing comes (none: the
    /// step's own).
    pub fn if_nothing(&self, protocol: Protocol) -> Option<&[String]> {
        self.if_nothing
            .get(&protocol)
            .or_else(|| self.if_nothing.get(&protocol.catalogue_version()))
            .map(Vec::as_slice)
            .filter(|ids| !ids.is_empty())
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a packet described by fields (`type` first, then the fields by
    /// their canonical names, values as written: captures and placeholders
    /// are filled in at run time).
    Send {
        client: String,
        packet: Map<String, Value>,
        /// `send_text`: in a WebSocket text frame instead of a binary one.
        text_frame: bool,
    },
    /// Send raw bytes.
    SendHex { client: String, bytes: Vec<u8> },
    /// Expect a packet whose listed fields match.
    Expect {
        client: String,
        matcher: Matcher,
        timeout: Option<Duration>,
    },
    /// Expect one of several outcomes (the spec lets the broker choose).
    ExpectOneOf {
        client: String,
        choices: Vec<Choice>,
        timeout: Option<Duration>,
    },
    /// Expect these packets, in any order.
    ExpectUnordered {
        client: String,
        matchers: Vec<Matcher>,
        timeout: Option<Duration>,
    },
    /// Expect the connection to close, optionally after a DISCONNECT.
    ExpectClose {
        client: String,
        close: CloseSpec,
        timeout: Option<Duration>,
    },
    /// Expect nothing for this long.
    ExpectSilence { client: String, duration: Duration },
    /// (Re)connect: open a connection, send CONNECT with these fields over the
    /// client's, and (unless `expect_connack` is false) expect a CONNACK matching `connack`.
    Connect {
        client: String,
        fields: Map<String, Value>,
        connack: Option<Matcher>,
        expect_connack: bool,
    },
    /// Send DISCONNECT (with these fields) and close.
    Disconnect {
        client: String,
        fields: Map<String, Value>,
    },
    /// Close the socket without DISCONNECT.
    Drop { client: String },
    /// Let a spec timer run.
    Wait {
        duration: Duration,
        reason: String,
        statements: Vec<String>,
    },
}

impl Action {
    pub fn client(&self) -> Option<&str> {
        match self {
            Action::Send { client, .. }
            | Action::SendHex { client, .. }
            | Action::Expect { client, .. }
            | Action::ExpectOneOf { client, .. }
            | Action::ExpectUnordered { client, .. }
            | Action::ExpectClose { client, .. }
            | Action::ExpectSilence { client, .. }
            | Action::Connect { client, .. }
            | Action::Disconnect { client, .. }
            | Action::Drop { client } => Some(client),
            Action::Wait { .. } => None,
        }
    }
}

/// An expected packet: its type and the fields that must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub ty: PacketType,
    pub fields: Map<String, Value>,
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ty.name())?;
        if !self.fields.is_empty() {
            write!(f, " {}", Value::Object(self.fields.clone()))?;
        }
        Ok(())
    }
}

/// How a connection is expected to close.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseSpec {
    /// If a DISCONNECT comes first, its reason code must be one of these (empty: any).
    pub disconnect: Vec<u8>,
}

impl fmt::Display for CloseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection to close")?;
        if !self.disconnect.is_empty() {
            let codes: Vec<String> = self
                .disconnect
                .iter()
                .map(|c| format!("0x{c:02X}"))
                .collect();
            write!(
                f,
                " (after no DISCONNECT, or one with reason {})",
                codes.join(" or ")
            )?;
        }
        Ok(())
    }
}

/// One accepted outcome of an `expect_one_of`.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Packet(Matcher),
    Close(CloseSpec),
    /// `{skip: reason}`: when no other outcome comes, the case does not
    /// apply (the spec lets the broker do something that leaves nothing
    /// to check), and it is a skip with this reason.
    Skip(String),
    /// `{expect: TYPE, …, skip: reason}`: when this packet comes, the case
    /// is a skip with this reason (the broker made a choice the spec lets
    /// it make, after which there is nothing to check).
    SkipOn(Matcher, String),
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Packet(m) => m.fmt(f),
            Choice::Close(c) => c.fmt(f),
            Choice::Skip(why) => write!(f, "else a skip ({why})"),
            Choice::SkipOn(m, why) => write!(f, "{m} (a skip: {why})"),
        }
    }
}
