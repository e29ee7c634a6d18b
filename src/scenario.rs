//! Scenario files: a page of the spec as YAML steps.
//!
//! [`parse_scenario`] is a pure function of a file's text. Every error it
//! returns names the file, line and column (`scenarios/v5/x.yaml:12:7:
//! unknown field …`) and says what was expected. Structural errors come from
//! serde_norway with their location; checks that need to know more than one
//! node (a step naming a client that is not declared, a statement that is not
//! in the catalogue of its version) find the offending token in the text.
//!
//! # The format
//!
//! ```yaml
//! name: PINGREQ is answered with PINGRESP
//! description: optional prose
//! statements:                    # the protocols it runs under default to these keys
//!   "3.1.1": [MQTT-3.12.4-1]
//!   "5.0": [MQTT-3.12.4-1]
//! requires: [qos2]               # skipped where the broker does not offer it
//! tags: [smoke]
//! clients:
//!   c: {}                        # connects (CONNECT, CONNACK 0) before the first step
//!   raw: { connect: false }      # opened but not connected: the steps send CONNECT
//! steps:
//!   - c: { send: PINGREQ }
//!   - c: { expect: PINGRESP }
//!   - c: { expect_silence: 300ms }
//!   - c: disconnect
//! ```
//!
//! A step is one mapping with one client name (or `wait`), and optionally
//! `only: "5.0"` to run it under some protocols only. A client's action is
//! `connect`, `disconnect`, `drop`, or a mapping whose action key is one of
//! `send`, `send_hex`, `expect`, `expect_one_of`, `expect_unordered`,
//! `expect_close`, `expect_silence`, `connect`, `disconnect`; `timeout: 2s`
//! bounds an expect step (default 5 s).
//!
//! String values may use `{topic}` (unique per case), `{case}` (a unique
//! token without `/`), `{run}`, `{client_id}` (this client's id) and
//! `{client:<name>}`. In an expect, a value `$name` captures what arrived the
//! first time and must be equal afterwards; in a send it is replaced by the
//! captured value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mqtt_codec::{catalogue, PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{hex, packet_json, suggest};

/// A 1-based line and column in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A scenario file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
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
            for id in waited.iter().chain(own) {
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
    /// CONNECT fields (the packet vocabulary of [`packet_json`]): clean_start,
    /// keep_alive, client_id, properties, will, username, password.
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
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a packet described by fields (`type` included).
    Send {
        client: String,
        packet: Map<String, Value>,
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
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Packet(m) => m.fmt(f),
            Choice::Close(c) => c.fmt(f),
        }
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/// Reads a scenario file; `id` is derived from its path.
pub fn load_file(path: &Path) -> Result<Scenario, ParseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ParseError {
        file: file.clone(),
        pos: None,
        message: format!("cannot read the scenario file: {e}"),
    })?;
    let mut s = parse_scenario(&file, &text)?;
    s.id = scenario_id(path, None);
    Ok(s)
}

/// Every scenario under `paths` (files, or directories searched recursively
/// for `*.yaml` / `*.yml`), sorted by file name. All parse errors are returned.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>, Vec<ParseError>> {
    let mut files: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            if let Err(e) = walk(p, &mut found) {
                errors.push(ParseError {
                    file: p.display().to_string(),
                    pos: None,
                    message: format!("cannot read the directory: {e}"),
                });
            }
            files.extend(found.into_iter().map(|f| (f, Some(p.clone()))));
        } else if p.exists() {
            files.push((p.clone(), None));
        } else {
            errors.push(ParseError {
                file: p.display().to_string(),
                pos: None,
                message:
                    "no such file or directory; give scenario files or directories holding *.yaml"
                        .into(),
            });
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::new();
    for (f, root) in files {
        match load_file(&f) {
            Ok(mut s) => {
                s.id = scenario_id(&f, root.as_deref());
                out.push(s);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The path below the last `scenarios` component, else below `root`, else
/// the file stem; without extension, with `/` separators.
fn scenario_id(path: &Path, root: Option<&Path>) -> String {
    let no_ext = path.with_extension("");
    let comps: Vec<String> = no_ext
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(i) = comps.iter().rposition(|c| c == "scenarios") {
        let rest = comps.get(i + 1..).unwrap_or(&[]);
        if !rest.is_empty() {
            return rest.join("/");
        }
    }
    if let Some(rel) = root.and_then(|r| no_ext.strip_prefix(r).ok()) {
        let s: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if !s.is_empty() {
            return s.join("/");
        }
    }
    no_ext.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Parses a scenario from its text. `file` is used in error messages.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, ParseError> {
    let at = |pos: Option<Pos>, message: String| ParseError {
        file: file.to_string(),
        pos,
        message,
    };
    let raw: RawScenario = serde_norway::from_str(text).map_err(|e| {
        let pe = packet_json::Error::from_yaml(&e);
        at(
            pe.location.map(|(line, column)| Pos { line, column }),
            pe.message,
        )
    })?;
    let step_pos = step_positions(text);
    let positions_known = step_pos.len() == raw.steps.len();
    let pos_of = |i: usize| {
        if positions_known {
            step_pos.get(i).copied()
        } else {
            None
        }
    };
    // The text of step i spans from its line to the next step's.
    let range_of = |i: usize| -> (usize, usize) {
        let start = pos_of(i).map_or(1, |p| p.line);
        let end = pos_of(i + 1).map_or(usize::MAX, |p| p.line.saturating_sub(1));
        (start, end)
    };

    let protocols = match &raw.protocols {
        Some(list) => list.iter().map(|p| p.0).collect(),
        None => raw.statements.0.keys().copied().collect::<Vec<_>>(),
    };
    if protocols.is_empty() {
        return Err(at(
            find_key(text, "statements", 1, usize::MAX),
            "the scenario names no protocol: list its statements per version, e.g. `statements: {\"5.0\": [MQTT-3.12.4-1]}`".into(),
        ));
    }

    for p in &protocols {
        let listed = raw.statements.0.contains_key(p)
            || raw.statements.0.contains_key(&p.catalogue_version());
        if !listed {
            return Err(at(
                find_key(text, "protocols", 1, usize::MAX),
                format!(
                    "the scenario runs under MQTT {p} but lists no statements for it; add `\"{}\": [ids]` under `statements`",
                    p.catalogue_version()
                ),
            ));
        }
    }

    let mut clients: Vec<ClientSpec> = Vec::new();
    for (name, c) in raw.clients.0 {
        if clients.iter().any(|x| x.name == name) {
            return Err(at(
                find_key(text, &name, 1, usize::MAX),
                format!("client `{name}` is declared twice"),
            ));
        }
        clients.push(c.into_spec(name));
    }
    let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();

    let mut steps = Vec::with_capacity(raw.steps.len());
    for (i, s) in raw.steps.into_iter().enumerate() {
        let (start, end) = range_of(i);
        if let Some(client) = s.action.client() {
            if !names.contains(&client) {
                let hint = suggest::hint(client, names.iter().copied());
                let declared = if names.is_empty() {
                    "no clients are declared; add `clients: {name: {}}`".to_string()
                } else {
                    format!("the declared clients are: {}", names.join(", "))
                };
                return Err(at(
                    find_key(text, client, start, end).or(pos_of(i)),
                    format!(
                        "step {} uses client `{client}`, which is not declared{hint}; {declared}",
                        i + 1
                    ),
                ));
            }
        }
        if let Action::Send { packet, .. } = &s.action {
            check_send(packet, &protocols).map_err(|(key, msg)| {
                let pos = key
                    .and_then(|k| find_key(text, &k, start, end))
                    .or(pos_of(i));
                at(pos, format!("step {}: {msg}", i + 1))
            })?;
        }
        if let Action::Wait { statements, .. } = &s.action {
            for id in statements {
                if !protocols
                    .iter()
                    .any(|p| catalogue::lookup(*p, id).is_some())
                {
                    return Err(at(
                        find_token(text, id, start, end).or(pos_of(i)),
                        format!("`{id}` is not a statement of {}", names_of(&protocols)),
                    ));
                }
            }
        }
        if let Some(p) = s.only.iter().find(|p| !protocols.contains(p)) {
            return Err(at(
                find_key(text, "only", start, end).or(pos_of(i)),
                format!(
                    "step {} is `only` for MQTT {p}, which the scenario does not run under ({})",
                    i + 1,
                    names_of(&protocols)
                ),
            ));
        }
        let statements = match s.statements {
            StepStatements::None => BTreeMap::new(),
            StepStatements::PerVersion(m) => m,
            StepStatements::List(ids) => {
                let mut m: BTreeMap<Protocol, Vec<String>> = BTreeMap::new();
                for id in &ids {
                    let mut known = false;
                    for p in &protocols {
                        if let Some(st) = catalogue::lookup(*p, id) {
                            known = true;
                            let list = m.entry(p.catalogue_version()).or_default();
                            if !list.iter().any(|x| x == st.id) {
                                list.push(st.id.to_string());
                            }
                        }
                    }
                    if !known {
                        return Err(at(
                            find_token(text, id, start, end).or(pos_of(i)),
                            format!(
                                "step {}: `{id}` is not a statement of {}",
                                i + 1,
                                names_of(&protocols)
                            ),
                        ));
                    }
                }
                m
            }
        };
        steps.push(Step {
            pos: pos_of(i),
            only: s.only,
            statements,
            action: s.action,
        });
    }
    for c in &clients {
        check_connect_fields(&c.fields).map_err(|(key, msg)| {
            let pos = find_key(text, &key, 1, usize::MAX);
            at(pos, format!("client `{}`: {msg}", c.name))
        })?;
    }

    Ok(Scenario {
        file: file.to_string(),
        id: scenario_id(Path::new(file), None),
        name: raw.name,
        description: raw.description,
        statements: raw.statements.0,
        protocols,
        requires: raw.requires,
        tags: raw.tags,
        clients,
        steps,
        timeout: raw.timeout.map(|d| d.0),
    })
}

fn names_of(protocols: &[Protocol]) -> String {
    let v: Vec<String> = protocols.iter().map(|p| format!("MQTT {p}")).collect();
    v.join(" or ")
}

/// Checks that a send step's fields describe a packet, with variables
/// replaced by stand-ins. Returns the offending key when it can tell.
fn check_send(
    packet: &Map<String, Value>,
    protocols: &[Protocol],
) -> Result<(), (Option<String>, String)> {
    let mut packet = packet.clone();
    // The runner gives a CONNECT the client's id when it names none.
    if packet.get("type").and_then(Value::as_str) == Some("CONNECT") {
        packet
            .entry("client_id")
            .or_insert_with(|| Value::from("x"));
    }
    let stand_in = stand_in(&Value::Object(packet.clone()), None);
    for p in protocols {
        if let Err(e) = packet_json::packet_from_value(&stand_in, *p) {
            let key = packet
                .keys()
                .find(|k| e.message.contains(&format!("`{k}`")))
                .cloned();
            return Err((key, e.message));
        }
    }
    Ok(())
}

/// CONNECT fields a client spec may carry (checked by building a CONNECT).
fn check_connect_fields(fields: &Map<String, Value>) -> Result<(), (String, String)> {
    let mut m = fields.clone();
    m.insert("type".into(), Value::from("CONNECT"));
    m.entry("client_id").or_insert_with(|| Value::from("x"));
    let v = stand_in(&Value::Object(m), None);
    packet_json::packet_from_value(&v, Protocol::V5)
        .map(|_| ())
        .map_err(|e| {
            let key = fields
                .keys()
                .find(|k| e.message.contains(&format!("`{k}`")))
                .cloned()
                .unwrap_or_else(|| "clients".into());
            (key, e.message)
        })
}

/// Replaces `$name` captures by a value of the right kind for validation.
fn stand_in(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') && is_capture(s) => match key {
            Some("id" | "qos" | "keep_alive" | "reason_code" | "code" | "truncate") => {
                Value::from(1)
            }
            Some("retain" | "dup" | "clean_start" | "session_present") => Value::from(false),
            _ => Value::from("x"),
        },
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), stand_in(v, Some(k))))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| stand_in(x, key)).collect()),
        other => other.clone(),
    }
}

/// `$name`: a capture variable (letters, digits, `_`).
pub fn is_capture(s: &str) -> bool {
    s.strip_prefix('$')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

// ---------------------------------------------------------------------------
// Positions in the text
// ---------------------------------------------------------------------------

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The positions of the items of the top-level `steps:` sequence (block style).
fn step_positions(text: &str) -> Vec<Pos> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut item_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        if !in_steps {
            if indent == 0 && (trimmed.starts_with("steps:") || trimmed.starts_with("\"steps\":")) {
                in_steps = true;
            }
            continue;
        }
        if indent == 0 && !trimmed.starts_with('-') {
            break;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            let want = *item_indent.get_or_insert(indent);
            if indent == want {
                out.push(Pos {
                    line: i + 1,
                    column: indent + 1,
                });
            }
        }
    }
    out
}

/// Where `key` appears as a mapping key (`key:`), between lines `start` and `end`.
fn find_key(text: &str, key: &str, start: usize, end: usize) -> Option<Pos> {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if n < start || n > end {
            continue;
        }
        let mut from = 0;
        while let Some(off) = line.get(from..).and_then(|l| l.find(key)) {
            let col = from + off;
            let before = line.get(..col).and_then(|b| b.chars().last());
            let after = line.get(col + key.len()..).unwrap_or("");
            let quoted_after = after
                .strip_prefix('"')
                .or_else(|| after.strip_prefix('\''))
                .unwrap_or(after);
            let boundary_before =
                before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
            if boundary_before && quoted_after.trim_start().starts_with(':') {
                let column = if matches!(before, Some('"' | '\'')) {
                    col
                } else {
                    col + 1
                };
                return Some(Pos { line: n, column });
            }
            from = col + key.len().max(1);
        }
    }
    None
}

/// Where `token` appears as a whole word, between lines `start` and `end`.
fn find_token(text: &str, token: &str, start: usize, end: usize) -> Option<Pos> {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if n < start || n > end {
            continue;
        }
        let mut from = 0;
        while let Some(off) = line.get(from..).and_then(|l| l.find(token)) {
            let col = from + off;
            let before = line.get(..col).and_then(|b| b.chars().last());
            let after = line.get(col + token.len()..).and_then(|a| a.chars().next());
            let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
            if before.is_none_or(|c| !word(c)) && after.is_none_or(|c| !word(c)) {
                return Some(Pos {
                    line: n,
                    column: col + 1,
                });
            }
            from = col + token.len().max(1);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The raw model (what serde reads)
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: Option<String>,
    statements: Statements,
    #[serde(default)]
    protocols: Option<Vec<ProtocolName>>,
    #[serde(default)]
    requires: Vec<Capability>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    clients: Clients,
    steps: Vec<RawStep>,
    #[serde(default)]
    timeout: Option<DurationValue>,
}

/// A protocol version written as `"5.0"`, `5.0`, `5`, `"3.1.1"`, `"3.1"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtocolName(pub(crate) Protocol);

impl<'de> Deserialize<'de> for ProtocolName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProtocolName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProtocolName, E> {
                Protocol::parse(s.trim()).map(ProtocolName).ok_or_else(|| {
                    E::custom(format!(
                        "unknown protocol version `{s}`; expected \"3.1\", \"3.1.1\" or \"5.0\" (quote it: \"3.1.1\")"
                    ))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProtocolName, E> {
                self.visit_str(&format!("{v:.1}"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProtocolName, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolName, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// `statements: {"3.1.1": [ids], "5.0": [ids]}`, each id checked against the
/// catalogue of its version while the parser points at it.
struct Statements(BTreeMap<Protocol, Vec<String>>);

impl<'de> Deserialize<'de> for Statements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Statements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from protocol version to statement ids, e.g. {\"5.0\": [MQTT-3.12.4-1]}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Statements, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(ProtocolName(p)) = map.next_key()? {
                    let ids = map.next_value_seed(IdsSeed(p))?;
                    if out.insert(p, ids).is_some() {
                        return Err(de::Error::custom(format!(
                            "statements for {p} are listed twice"
                        )));
                    }
                }
                Ok(Statements(out))
            }
        }
        d.deserialize_map(V)
    }
}

struct IdsSeed(Protocol);

impl<'de> DeserializeSeed<'de> for IdsSeed {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for IdsSeed {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statement ids, e.g. [MQTT-3.12.4-1]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(id) = seq.next_element_seed(IdSeed(self.0))? {
            out.push(id);
        }
        Ok(out)
    }
}

struct IdSeed(Protocol);

impl<'de> DeserializeSeed<'de> for IdSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for IdSeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a statement id such as MQTT-3.12.4-1")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        let p = self.0;
        if let Some(st) = catalogue::lookup(p, s) {
            return Ok(st.id.to_string());
        }
        let other = if p.is_v5() {
            Protocol::V3_1_1
        } else {
            Protocol::V5
        };
        let elsewhere = if catalogue::lookup(other, s).is_some() {
            format!(" (it is a statement of MQTT {other}: list it under \"{other}\")")
        } else {
            String::new()
        };
        let hint = suggest::hint(s, catalogue::statements(p).iter().map(|st| st.id));
        Err(E::custom(format!(
            "`{s}` is not a statement of MQTT {p}{elsewhere}{hint}; `mqtt-harness explain` lists the catalogue"
        )))
    }
}

/// `"300ms"`, `"2s"`, `"1.5 s"`, `"1m"` or a number of seconds.
#[derive(Debug, Clone, Copy)]
struct DurationValue(Duration);

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" | "seconds" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        _ => return None,
    };
    (secs.is_finite() && (0.0..86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 300ms, 2s or 1.5 (seconds)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DurationValue, E> {
                parse_duration(s).map(DurationValue).ok_or_else(|| {
                    E::custom(format!(
                        "`{s}` is not a duration; write e.g. 300ms, 2s or 1.5s"
                    ))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawClient {
    connect: Option<bool>,
    clean_start: Option<Value>,
    keep_alive: Option<Value>,
    client_id: Option<Value>,
    properties: Option<Value>,
    will: Option<Value>,
    username: Option<Value>,
    password: Option<Value>,
    ignore_publishes_without: Option<String>,
    target: Option<String>,
}

impl RawClient {
    fn into_spec(self, name: String) -> ClientSpec {
        let mut fields = Map::new();
        for (k, v) in [
            ("clean_start", self.clean_start),
            ("keep_alive", self.keep_alive),
            ("client_id", self.client_id),
            ("properties", self.properties),
            ("will", self.will),
            ("username", self.username),
            ("password", self.password),
        ] {
            if let Some(v) = v {
                fields.insert(k.into(), v);
            }
        }
        ClientSpec {
            name,
            connect: self.connect.unwrap_or(true),
            fields,
            ignore_publishes_without: self.ignore_publishes_without,
            target: self.target,
        }
    }
}

/// `clients: {a: {}, b: {connect: false}}` or `clients: [a, b]`, in order.
#[derive(Default)]
struct Clients(Vec<(String, RawClient)>);

impl<'de> Deserialize<'de> for Clients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Clients;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of client names to their settings ({publisher: {}, raw: {connect: false}}) or a list of names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Clients, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    check_client_name::<A::Error>(&name)?;
                    let c: Option<RawClient> = map.next_value()?;
                    out.push((name, c.unwrap_or_default()));
                }
                Ok(Clients(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Clients, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    check_client_name::<A::Error>(&name)?;
                    out.push((name, RawClient::default()));
                }
                Ok(Clients(out))
            }
        }
        d.deserialize_any(V)
    }
}

const STEP_KEYWORDS: &[&str] = &["wait", "only", "statements"];

fn check_client_name<E: de::Error>(name: &str) -> Result<(), E> {
    if STEP_KEYWORDS.contains(&name) {
        return Err(E::custom(format!(
            "`{name}` is a step keyword and cannot name a client"
        )));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(E::custom(format!(
            "`{name}` is not a usable client name: use letters, digits, `_` and `-`"
        )));
    }
    Ok(())
}

struct RawStep {
    only: Vec<Protocol>,
    statements: StepStatements,
    action: Action,
}

/// A step's own `statements`: a list of ids (each applies under every
/// version of the scenario whose catalogue has it; checked once the
/// scenario's versions are known) or, where the ids differ per version, a
/// mapping like the scenario's.
#[derive(Default)]
enum StepStatements {
    #[default]
    None,
    List(Vec<String>),
    PerVersion(BTreeMap<Protocol, Vec<String>>),
}

impl<'de> Deserialize<'de> for StepStatements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StepStatements;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of statement ids, e.g. [MQTT-3.12.4-1], or a mapping from protocol version to ids")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StepStatements, A::Error> {
                let mut out = Vec::new();
                while let Some(id) = seq.next_element::<String>()? {
                    out.push(id);
                }
                Ok(StepStatements::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StepStatements, A::Error> {
                let Statements(m) =
                    Statements::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StepStatements::PerVersion(m))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = RawStep;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step: `{client: {send: …}}`, `{client: {expect: …}}`, `{client: connect}` or `{wait: {seconds: …}}`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
        let mut only = Vec::new();
        let mut statements = StepStatements::None;
        let mut action: Option<(String, Action)> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "only" {
                let v: OneOrMany<ProtocolName> = map.next_value()?;
                only = v.0.into_iter().map(|p| p.0).collect();
                continue;
            }
            if key == "statements" {
                statements = map.next_value()?;
                continue;
            }
            if let Some((first, _)) = &action {
                return Err(de::Error::custom(format!(
                    "a step does one thing: it has both `{first}` and `{key}`; split it into two steps"
                )));
            }
            let a = if key == "wait" {
                let w: RawWait = map.next_value()?;
                Action::Wait {
                    duration: w.seconds.0,
                    reason: w.reason,
                    statements: w.statements,
                }
            } else {
                map.next_value_seed(ClientActionSeed {
                    client: key.clone(),
                })?
            };
            action = Some((key, a));
        }
        match action {
            Some((_, action)) => Ok(RawStep {
                only,
                statements,
                action,
            }),
            None => Err(de::Error::custom(
                "an empty step: name a client and its action, e.g. `- c: {send: PINGREQ}`",
            )),
        }
    }
}

struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum E<T> {
            Many(Vec<T>),
            One(T),
        }
        match E::deserialize(d)? {
            E::Many(v) => Ok(OneOrMany(v)),
            E::One(t) => Ok(OneOrMany(vec![t])),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    seconds: DurationValue,
    /// Why: which timer this waits for.
    #[serde(rename = "for")]
    reason: String,
    #[serde(default)]
    statements: Vec<String>,
}

struct ClientActionSeed {
    client: String,
}

/// The action keys of a client step.
const ACTIONS: &[&str] = &[
    "send",
    "send_hex",
    "expect",
    "expect_one_of",
    "expect_unordered",
    "expect_close",
    "expect_silence",
    "connect",
    "disconnect",
];

impl<'de> DeserializeSeed<'de> for ClientActionSeed {
    type Value = Action;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Action, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClientActionSeed {
    type Value = Action;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`connect`, `disconnect`, `drop`, or a mapping with one of: {}",
            ACTIONS.join(", ")
        )
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Action, E> {
        let client = self.client;
        match s {
            "connect" => Ok(Action::Connect {
                client,
                fields: Map::new(),
                connack: None,
                expect_connack: true,
            }),
            "disconnect" => Ok(Action::Disconnect {
                client,
                fields: Map::new(),
            }),
            "drop" => Ok(Action::Drop { client }),
            other => Err(E::custom(format!(
                "unknown action `{other}`{}; a bare action is `connect`, `disconnect` or `drop`, others are mappings such as `{{send: PINGREQ}}`",
                suggest::hint(other, ["connect", "disconnect", "drop"])
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let client = self.client;
        let mut kind: Option<(&'static str, Action)> = None;
        let mut ty: Option<PacketType> = None;
        let mut fields = Map::new();
        let mut timeout = None;
        loop {
            let (kn, t) = (kind.as_ref().map(|(k, _)| *k), ty);
            let Some(key) = map.next_key_seed(CheckedKey(move |k: &str| step_key_ok(k, kn, t)))?
            else {
                break;
            };
            if key == "timeout" {
                timeout = Some(map.next_value::<DurationValue>()?.0);
                continue;
            }
            if let Some(&action) = ACTIONS.iter().find(|a| **a == key) {
                if let Some((first, _)) = &kind {
                    return Err(de::Error::custom(format!(
                        "a step does one thing: it has both `{first}` and `{action}`; split it into two steps"
                    )));
                }
                let a = match action {
                    "send" | "expect" => {
                        let t = map.next_value_seed(TypeSeed)?;
                        ty = Some(t);
                        if action == "send" {
                            Action::Send {
                                client: client.clone(),
                                packet: Map::new(),
                            }
                        } else {
                            Action::Expect {
                                client: client.clone(),
                                matcher: Matcher {
                                    ty: t,
                                    fields: Map::new(),
                                },
                                timeout: None,
                            }
                        }
                    }
                    "send_hex" => {
                        let text: String = map.next_value()?;
                        let bytes = hex::parse(&text)
                            .map_err(|e| de::Error::custom(format!("send_hex: {e}")))?;
                        Action::SendHex {
                            client: client.clone(),
                            bytes,
                        }
                    }
                    "expect_one_of" => {
                        let choices: Vec<ChoiceValue> = map.next_value()?;
                        if choices.is_empty() {
                            return Err(de::Error::custom("expect_one_of lists no outcomes"));
                        }
                        Action::ExpectOneOf {
                            client: client.clone(),
                            choices: choices.into_iter().map(|c| c.0).collect(),
                            timeout: None,
                        }
                    }
                    "expect_unordered" => {
                        let items: Vec<MatcherValue> = map.next_value()?;
                        Action::ExpectUnordered {
                            client: client.clone(),
                            matchers: items.into_iter().map(|m| m.0).collect(),
                            timeout: None,
                        }
                    }
                    "expect_close" => {
                        let c: CloseValue = map.next_value()?;
                        Action::ExpectClose {
                            client: client.clone(),
                            close: c.0,
                            timeout: None,
                        }
                    }
                    "expect_silence" => {
                        let d: DurationValue = map.next_value()?;
                        Action::ExpectSilence {
                            client: client.clone(),
                            duration: d.0,
                        }
                    }
                    "connect" => {
                        let c: Option<RawReconnect> = map.next_value()?;
                        let c = c.unwrap_or_default();
                        let mut fields = Map::new();
                        for (k, v) in [
                            ("clean_start", c.clean_start),
                            ("keep_alive", c.keep_alive),
                            ("client_id", c.client_id),
                            ("properties", c.properties),
                            ("will", c.will),
                            ("username", c.username),
                            ("password", c.password),
                            ("protocol", c.protocol),
                        ] {
                            if let Some(v) = v {
                                fields.insert(k.into(), v);
                            }
                        }
                        let connack = match c.connack {
                            Some(fields) => {
                                check_expect_fields::<A::Error>(
                                    PacketType::ConnAck,
                                    fields.keys(),
                                )?;
                                Some(Matcher {
                                    ty: PacketType::ConnAck,
                                    fields,
                                })
                            }
                            None => None,
                        };
                        Action::Connect {
                            client: client.clone(),
                            fields,
                            connack,
                            expect_connack: c.expect_connack.unwrap_or(true),
                        }
                    }
                    _ => {
                        // disconnect
                        let v: Option<Map<String, Value>> = map.next_value()?;
                        Action::Disconnect {
                            client: client.clone(),
                            fields: v.unwrap_or_default(),
                        }
                    }
                };
                kind = Some((action, a));
                continue;
            }
            // A packet field.
            match kind.as_ref().map(|(k, _)| *k) {
                Some("send") | Some("expect") | None => {}
                Some(other) => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{key}` in a `{other}` step{}; it takes only `{other}` (and `timeout`)",
                        suggest::hint(&key, ACTIONS.iter().copied())
                    )))
                }
            }
            match (kind.as_ref().map(|(k, _)| *k), ty) {
                (Some("expect"), Some(t)) => {
                    check_expect_fields::<A::Error>(t, std::iter::once(&key))?
                }
                (Some("send"), Some(t)) => check_send_field::<A::Error>(t, &key)?,
                _ => {}
            }
            let v: Value = expect_field_value(&mut map, &key)?;
            if fields.insert(key.clone(), v).is_some() {
                return Err(de::Error::custom(format!("`{key}` is given twice")));
            }
        }
        let Some((name, mut action)) = kind else {
            return Err(de::Error::custom(format!(
                "the step for `{client}` has no action; give one of: {} (or write `{client}: connect` / `disconnect` / `drop`)",
                ACTIONS.join(", ")
            )));
        };
        if !fields.is_empty() && !matches!(name, "send" | "expect") {
            let k = fields.keys().next().cloned().unwrap_or_default();
            return Err(de::Error::custom(format!(
                "unknown key `{k}` in a `{name}` step; packet fields belong to `send` and `expect` steps"
            )));
        }
        match &mut action {
            Action::Send { packet, .. } => {
                if let Some(t) = ty {
                    for k in fields.keys() {
                        check_send_field::<A::Error>(t, k)?;
                    }
                    packet.insert("type".into(), Value::from(t.name()));
                }
                packet.extend(fields);
            }
            Action::Expect {
                matcher,
                timeout: t,
                ..
            } => {
                check_expect_fields::<A::Error>(matcher.ty, fields.keys())?;
                matcher.fields = fields;
                *t = timeout;
            }
            Action::ExpectOneOf { timeout: t, .. }
            | Action::ExpectUnordered { timeout: t, .. }
            | Action::ExpectClose { timeout: t, .. } => *t = timeout,
            _ => {}
        }
        Ok(action)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReconnect {
    clean_start: Option<Value>,
    keep_alive: Option<Value>,
    client_id: Option<Value>,
    properties: Option<Value>,
    will: Option<Value>,
    username: Option<Value>,
    password: Option<Value>,
    protocol: Option<Value>,
    /// Fields the CONNACK must have (default: reason_code 0).
    connack: Option<Map<String, Value>>,
    /// `false`: do not read the CONNACK (later steps expect it).
    expect_connack: Option<bool>,
}

/// A packet type name, checked where it is written.
struct TypeSeed;

impl<'de> DeserializeSeed<'de> for TypeSeed {
    type Value = PacketType;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PacketType, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TypeSeed {
    type Value = PacketType;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet type such as PUBLISH or SUBACK")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<PacketType, E> {
        PacketType::from_name(s).ok_or_else(|| {
            let names = PacketType::ALL.iter().map(|t| t.name());
            E::custom(format!(
                "unknown packet type `{s}`{}; the types are: {}",
                suggest::hint(s, names.clone()),
                names.collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// The fields an expect can match, per type: the keys of
/// [`packet_json::packet_to_json`], plus `code` for `reason_code`.
pub fn expect_fields(ty: PacketType) -> &'static [&'static str] {
    match ty {
        PacketType::Connect => &[
            "protocol",
            "clean_start",
            "keep_alive",
            "properties",
            "client_id",
            "will",
            "username",
            "password",
        ],
        PacketType::ConnAck => &[
            "session_present",
            "reason_code",
            "code",
            "reason",
            "properties",
        ],
        PacketType::Publish => &[
            "dup",
            "qos",
            "retain",
            "topic",
            "id",
            "properties",
            "payload",
        ],
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            &["id", "reason_code", "code", "reason", "properties"]
        }
        PacketType::Subscribe | PacketType::Unsubscribe => &["id", "properties", "filters"],
        PacketType::SubAck | PacketType::UnsubAck => &["id", "properties", "codes", "reasons"],
        PacketType::PingReq | PacketType::PingResp => &[],
        PacketType::Disconnect | PacketType::Auth => {
            &["reason_code", "code", "reason", "properties"]
        }
    }
}

const OVERRIDE_KEYS: &[&str] = &[
    "first_byte",
    "flags",
    "remaining_length",
    "raw",
    "append",
    "truncate",
];

/// The expect key listing properties that must be absent.
pub const NO_PROPERTIES: &str = "no_properties";

/// The value of an expect field: for `no_properties`, a list of property
/// names, each checked against the 5.0 property table.
fn expect_field_value<'de, A: MapAccess<'de>>(map: &mut A, key: &str) -> Result<Value, A::Error> {
    if key != NO_PROPERTIES {
        return map.next_value();
    }
    let names: Vec<String> = map.next_value().map_err(|_| {
        de::Error::custom(
            "`no_properties` is a list of property names, e.g. [session_expiry_interval]",
        )
    })?;
    for n in &names {
        if mqtt_codec::props::info_by_name(n).is_none() {
            return Err(de::Error::custom(format!(
                "`{n}` is not a 5.0 property{}",
                suggest::hint(n, mqtt_codec::props::PROPERTIES.iter().map(|p| p.name))
            )));
        }
    }
    Ok(Value::from(names))
}

fn check_expect_fields<'a, E: de::Error>(
    ty: PacketType,
    keys: impl Iterator<Item = &'a String>,
) -> Result<(), E> {
    for k in keys {
        expect_field_ok(ty, k, false).map_err(E::custom)?;
    }
    Ok(())
}

fn check_send_field<E: de::Error>(ty: PacketType, key: &str) -> Result<(), E> {
    let mut allowed: Vec<&str> = expect_fields(ty).to_vec();
    allowed.retain(|k| *k != "reason" && *k != "reasons");
    allowed.extend_from_slice(OVERRIDE_KEYS);
    if ty == PacketType::Connect {
        allowed.push("clean_session");
    }
    if allowed.contains(&key) {
        return Ok(());
    }
    Err(E::custom(format!(
        "unknown field `{key}` for a {ty} to send{}; a {ty} takes {}",
        suggest::hint(key, allowed.iter().copied()),
        allowed.join(", ")
    )))
}

/// A mapping key, checked while the parser points at it (so that an error
/// carries the key's line and column).
struct CheckedKey<F>(F);

impl<'de, F: FnOnce(&str) -> Result<(), String>> DeserializeSeed<'de> for CheckedKey<F> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<F: FnOnce(&str) -> Result<(), String>> Visitor<'_> for CheckedKey<F> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        (self.0)(s).map_err(E::custom)?;
        Ok(s.to_string())
    }
}

/// A key of a client step's mapping, given the action and type read so far.
fn step_key_ok(k: &str, kind: Option<&str>, ty: Option<PacketType>) -> Result<(), String> {
    if k == "timeout" {
        return Ok(());
    }
    if ACTIONS.contains(&k) {
        return match kind {
            Some(first) => Err(format!(
                "a step does one thing: it has both `{first}` and `{k}`; split it into two steps"
            )),
            None => Ok(()),
        };
    }
    match (kind, ty) {
        (Some("expect"), Some(t)) => expect_field_ok(t, k, true),
        (Some("send"), Some(t)) => send_field_ok(t, k),
        (None, _) | (Some("send" | "expect"), None) => Ok(()),
        (Some(other), _) => Err(format!(
            "unknown key `{k}` in a `{other}` step{}; it takes only `{other}` and `timeout`",
            suggest::hint(k, ACTIONS.iter().copied().chain(["timeout"]))
        )),
    }
}

/// A key of an `expect_one_of` / `expect_unordered` item.
fn choice_key_ok(
    k: &str,
    ty: Option<PacketType>,
    closing: bool,
    allow_close: bool,
) -> Result<(), String> {
    match k {
        "expect" => Ok(()),
        "close" | "expect_close" if allow_close => Ok(()),
        _ => match ty {
            Some(t) => expect_field_ok(t, k, false),
            None if closing => Err(format!(
                "unknown key `{k}` in a close outcome; it takes only `close`"
            )),
            None => Ok(()),
        },
    }
}

fn expect_field_ok(ty: PacketType, k: &str, with_timeout: bool) -> Result<(), String> {
    let allowed = expect_fields(ty);
    // Properties that must not be there, wherever properties may be.
    if allowed.contains(&k) || (k == NO_PROPERTIES && allowed.contains(&"properties")) {
        return Ok(());
    }
    let takes = if allowed.is_empty() {
        "no fields".to_string()
    } else {
        allowed.join(", ")
    };
    let extra: &[&str] = if with_timeout { &["timeout"] } else { &[] };
    Err(format!(
        "unknown field `{k}` for an expected {ty}{}; a {ty} has {takes}{}",
        suggest::hint(k, allowed.iter().copied().chain(extra.iter().copied())),
        if with_timeout {
            " (and the step may have `timeout`)"
        } else {
            ""
        }
    ))
}

fn send_field_ok(ty: PacketType, key: &str) -> Result<(), String> {
    check_send_field::<serde_json::Error>(ty, key).map_err(|e| e.to_string())
}

/// A `{expect: TYPE, …fields}` mapping.
struct MatcherValue(Matcher);

impl<'de> Deserialize<'de> for MatcherValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_map(ChoiceVisitor { allow_close: false })? {
            Choice::Packet(m) => Ok(MatcherValue(m)),
            Choice::Close(_) => Err(de::Error::custom("expect_unordered lists packets only")),
        }
    }
}

/// One outcome of `expect_one_of`: `{expect: TYPE, …}` or `{close: …}`.
struct ChoiceValue(Choice);

impl<'de> Deserialize<'de> for ChoiceValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ChoiceVisitor { allow_close: true })
            .map(ChoiceValue)
    }
}

struct ChoiceVisitor {
    allow_close: bool,
}

impl<'de> Visitor<'de> for ChoiceVisitor {
    type Value = Choice;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.allow_close {
            f.write_str("an outcome: `{expect: TYPE, …fields}` or `{close: true}` / `{close: {disconnect: [0x81]}}`")
        } else {
            f.write_str("an expected packet: `{expect: TYPE, …fields}`")
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
        let mut ty = None;
        let mut close = None;
        let mut fields = Map::new();
        let allow_close = self.allow_close;
        loop {
            let (t, closing) = (ty, close.is_some());
            let Some(key) = map.next_key_seed(CheckedKey(move |k: &str| {
                choice_key_ok(k, t, closing, allow_close)
            }))?
            else {
                break;
            };
            match key.as_str() {
                "expect" => ty = Some(map.next_value_seed(TypeSeed)?),
                "close" | "expect_close" if self.allow_close => {
                    close = Some(map.next_value::<CloseValue>()?.0);
                }
                _ => {
                    if let Some(t) = ty {
                        check_expect_fields::<A::Error>(t, std::iter::once(&key))?;
                    } else if close.is_some() {
                        return Err(de::Error::custom(format!(
                            "unknown key `{key}` in a close outcome; it takes only `close`"
                        )));
                    }
                    let v: Value = expect_field_value(&mut map, &key)?;
                    fields.insert(key, v);
                }
            }
        }
        match (ty, close) {
            (Some(ty), None) => {
                check_expect_fields::<A::Error>(ty, fields.keys())?;
                Ok(Choice::Packet(Matcher { ty, fields }))
            }
            (None, Some(c)) if fields.is_empty() => Ok(Choice::Close(c)),
            (Some(_), Some(_)) => Err(de::Error::custom(
                "an outcome is either a packet (`expect`) or a close (`close`), not both",
            )),
            _ => Err(de::Error::custom(if self.allow_close {
                "an outcome needs `expect: TYPE` or `close: true`"
            } else {
                "an expected packet needs `expect: TYPE`"
            })),
        }
    }
}

/// `true`, `{}` or `{disconnect: [0x81, 0x82]}`.
struct CloseValue(CloseSpec);

impl<'de> Deserialize<'de> for CloseValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CloseValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or `{disconnect: [reason codes]}`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<CloseValue, E> {
                if v {
                    Ok(CloseValue(CloseSpec::default()))
                } else {
                    Err(E::custom(
                        "`false` is not an expectation; leave the step out instead",
                    ))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<CloseValue, E> {
                Ok(CloseValue(CloseSpec::default()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CloseValue, A::Error> {
                #[derive(Deserialize)]
                #[serde(field_identifier, rename_all = "snake_case")]
                enum K {
                    Disconnect,
                }
                let mut spec = CloseSpec::default();
                while let Some(K::Disconnect) = map.next_key()? {
                    let codes: OneOrMany<u8> = map.next_value()?;
                    spec.disconnect = codes.0;
                }
                Ok(CloseValue(spec))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING: &str = "name: ping
statements:
  \"3.1.1\": [MQTT-3.12.4-1]
  \"5.0\": [MQTT-3.12.4-1]
clients:
  c: {}
steps:
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP, timeout: 2s }
  - c: disconnect
";

    #[test]
    fn parses_a_scenario() {
        let s = parse_scenario("ping.yaml", PING).unwrap();
        assert_eq!(s.protocols, vec![Protocol::V3_1_1, Protocol::V5]);
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[1].pos, Some(Pos { line: 9, column: 3 }));
        assert!(
            matches!(&s.steps[1].action, Action::Expect { matcher, timeout: Some(_), .. } if matcher.ty == PacketType::PingResp)
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let text = PING.replace("clients:", "clientz: 1\nclients:");
        let e = parse_scenario("x.yaml", &text).unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 5, column: 1 }), "{e}");
        assert!(e.message.contains("unknown field `clientz`"), "{e}");
    }

    #[test]
    fn unknown_statement() {
        let text = PING.replace(
            "\"5.0\": [MQTT-3.12.4-1]",
            concat!("\"5.0\": [MQTT", "-3.12.4-9]"),
        );
        let e = parse_scenario("x.yaml", &text).unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(4), "{e}");
        assert!(e.message.contains("not a statement of MQTT 5.0"), "{e}");
    }

    #[test]
    fn unknown_client() {
        let text = PING.replace("  - c: { send: PINGREQ }", "  - d: { send: PINGREQ }");
        let e = parse_scenario("x.yaml", &text).unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 8, column: 5 }), "{e}");
        assert!(e.message.contains("client `d`"), "{e}");
    }

    #[test]
    fn unknown_expect_field() {
        let text = PING.replace(
            "{ expect: PINGRESP, timeout: 2s }",
            "{ expect: PINGRESP, qos: 1 }",
        );
        let e = parse_scenario("x.yaml", &text).unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(9), "{e}");
        assert!(e.message.contains("unknown field `qos`"), "{e}");
    }

    #[test]
    fn no_properties_names_are_checked() {
        let ok = PING.replace(
            "{ expect: PINGRESP, timeout: 2s }",
            "{ expect: DISCONNECT, no_properties: [session_expiry_interval] }",
        );
        parse_scenario("x.yaml", &ok).expect("a known property");
        let typo = PING.replace(
            "{ expect: PINGRESP, timeout: 2s }",
            "{ expect: DISCONNECT, no_properties: [sesion_expiry_interval] }",
        );
        let e = parse_scenario("x.yaml", &typo).unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(9), "{e}");
        assert!(
            e.message.contains("did you mean `session_expiry_interval`"),
            "{e}"
        );
        // Only where the packet has properties.
        let none = PING.replace(
            "{ expect: PINGRESP, timeout: 2s }",
            "{ expect: PINGRESP, no_properties: [reason_string] }",
        );
        let e = parse_scenario("x.yaml", &none).unwrap_err();
        assert!(e.message.contains("unknown field `no_properties`"), "{e}");
    }

    #[test]
    fn unknown_packet_type() {
        let text = PING.replace("send: PINGREQ", "send: PINGREK");
        let e = parse_scenario("x.yaml", &text).unwrap_err();
        assert!(e.message.contains("did you mean `PINGREQ`"), "{e}");
        assert_eq!(e.pos.map(|p| p.line), Some(8), "{e}");
    }

    #[test]
    fn wait_statements_count_as_checked() {
        let text = PING.replace(
            "  - c: disconnect\n",
            "  - wait: { seconds: 10ms, for: \"keep alive\", statements: [MQTT-3.1.2-24, MQTT-3.12.4-1] }\n  - c: disconnect\n",
        );
        let s = parse_scenario("x.yaml", &text).unwrap();
        assert_eq!(
            s.checked_statements(Protocol::V5),
            ["MQTT-3.12.4-1", "MQTT-3.1.2-24"]
        );
        assert_eq!(s.statements_for(Protocol::V5), ["MQTT-3.12.4-1"]);
        // A wait step `only` for 5.0 adds nothing under 3.1.1.
        let only = text.replace("- wait: {", "- only: \"5.0\"\n    wait: {");
        let s = parse_scenario("x.yaml", &only).unwrap();
        assert_eq!(s.checked_statements(Protocol::V3_1_1), ["MQTT-3.12.4-1"]);
        assert_eq!(s.checked_statements(Protocol::V5).len(), 2);
    }

    #[test]
    fn steps_name_their_own_statements() {
        let text = PING.replace(
            "  - c: { expect: PINGRESP, timeout: 2s }\n",
            "  - statements: [MQTT-3.12.4-1]\n    c: { expect: PINGRESP, timeout: 2s }\n  - statements: {\"3.1.1\": [MQTT-3.1.2-24], \"5.0\": [MQTT-3.1.2-22]}\n    c: { expect_silence: 10ms }\n",
        );
        let s = parse_scenario("x.yaml", &text).unwrap();
        assert_eq!(s.steps[0].own_statements(Protocol::V5), None);
        assert_eq!(
            s.steps[1].own_statements(Protocol::V3_1_1),
            Some(&["MQTT-3.12.4-1".to_string()][..])
        );
        assert_eq!(
            s.steps[2].own_statements(Protocol::V5),
            Some(&["MQTT-3.1.2-22".to_string()][..])
        );
        assert_eq!(
            s.checked_statements(Protocol::V3_1_1),
            ["MQTT-3.12.4-1", "MQTT-3.1.2-24"]
        );
        // An id no version of the scenario knows, at its place.
        // (Split, so that the catalogue test does not read it as a cited id.)
        let bad = text.replace(
            "[MQTT-3.12.4-1]\n    c:",
            concat!("[MQTT", "-3.12.4-9]\n    c:"),
        );
        let e = parse_scenario("x.yaml", &bad).unwrap_err();
        assert_eq!(
            e.pos,
            Some(Pos {
                line: 9,
                column: 18
            }),
            "{e}"
        );
        assert!(e.message.contains("not a statement of"), "{e}");
        // Per version, checked against that version's catalogue.
        let wrong = text.replace(
            "\"5.0\": [MQTT-3.1.2-22]",
            concat!("\"5.0\": [MQTT", "-3.1.2-99]"),
        );
        let e = parse_scenario("x.yaml", &wrong).unwrap_err();
        assert!(e.message.contains("not a statement of MQTT 5.0"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
    }
}
