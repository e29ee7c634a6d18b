//! `--differential`: the same input against several brokers, and where what
//! they did differs. Each client's answers are reduced to what the spec
//! speaks of (packet types, reason codes, granted QoS, a close; a
//! DISCONNECT just before a close counts as the close, since a 5.0 server
//! may or may not send one) and compared client by client. A difference is
//! classified by the catalogue: the statement a finding of one of them
//! breaks, else the MUST that the codec names for a deliberately bad packet
//! the input sent (the broker that did not close broke it), else the spec
//! lets them differ.

use std::collections::BTreeMap;

use mqtt_codec::catalogue::{self, Level};
use mqtt_codec::Packet;
use serde_json::{json, Value};

use super::exec::{as_client_packet, Got, Observation, Rec};
use super::input::Input;
use super::oracle::Finding;

/// One difference between the first target and another.
#[derive(Debug, Clone)]
pub struct Difference {
    pub origin: String,
    pub client: usize,
    pub first: String,
    pub other: String,
    /// The statement that decides it, or `None`: the spec lets them differ.
    pub statement: Option<String>,
    pub why: String,
}

/// Target, the first target's answer, the other's, the deciding statement.
type GroupKey = (String, String, String, Option<String>);

/// The differences of a run, grouped by what differs and how it is decided.
#[derive(Debug, Default)]
pub struct Differences {
    /// (target, first, other, statement) → count and an example.
    groups: BTreeMap<GroupKey, (u64, Difference)>,
}

/// At most this many kinds of difference are kept.
const MAX_GROUPS: usize = 200;

impl Differences {
    pub fn add(&mut self, d: Difference, target: &str) {
        let key = (
            target.to_string(),
            d.first.clone(),
            d.other.clone(),
            d.statement.clone(),
        );
        if let Some((n, _)) = self.groups.get_mut(&key) {
            *n += 1;
        } else if self.groups.len() < MAX_GROUPS {
            self.groups.insert(key, (1, d));
        }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn json(&self) -> Value {
        Value::Array(
            self.groups
                .iter()
                .map(|((target, _, _, _), (n, d))| {
                    json!({
                        "target": target,
                        "first": d.first,
                        "other": d.other,
                        "statement": d.statement,
                        "classification": d.why,
                        "count": n,
                        "example_seed_scenario": d.origin,
                        "client": d.client,
                    })
                })
                .collect(),
        )
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "{} kind(s) of difference between the targets:\n",
            self.groups.len()
        );
        for ((target, _, _, _), (n, d)) in &self.groups {
            s.push_str(&format!(
                "  {n:>5}×  {target}: first `{}`, it `{}` — {} (e.g. from {})\n",
                d.first, d.other, d.why, d.origin
            ));
        }
        s
    }
}

/// What client `k` was answered, in order.
fn answers(obs: &Observation, k: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in &obs.recs {
        let Rec::Got { client, got, .. } = r else {
            continue;
        };
        if *client != k {
            continue;
        }
        let a = match got {
            Got::Closed => "close".to_string(),
            Got::Malformed(..) => "bytes that do not decode".to_string(),
            Got::Packet(p, _) => match p {
                Packet::ConnAck(a) => format!("CONNACK 0x{:02x}", a.code),
                Packet::SubAck(a) => format!("SUBACK {:?}", a.reason_codes),
                Packet::UnsubAck(_) => "UNSUBACK".to_string(),
                Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                    format!("{} 0x{:02x}", p.packet_type().name(), r.reason_code)
                }
                Packet::Publish(x) => format!("PUBLISH QoS {}", x.qos as u8),
                Packet::Disconnect(d) => format!("DISCONNECT 0x{:02x}", d.reason_code),
                other => other.packet_type().name().to_string(),
            },
        };
        // DISCONNECT then close is a close.
        if a == "close" && out.last().is_some_and(|l| l.starts_with("DISCONNECT")) {
            out.pop();
        }
        out.push(a);
    }
    out
}

/// The MUST the codec names for a deliberately bad packet the input sent.
fn decided_by(input: &Input, obs: &Observation) -> Option<String> {
    for r in &obs.recs {
        if let Rec::Sent {
            bytes,
            packet: None,
            ..
        } = r
        {
            if let Err(Some(e)) = as_client_packet(bytes, input.protocol) {
                let st = e
                    .statement()
                    .and_then(|id| catalogue::lookup(input.protocol, id));
                if let Some(st) = st.filter(|st| matches!(st.level, Level::Must | Level::MustNot)) {
                    return Some(st.id.to_string());
                }
            }
        }
    }
    None
}

/// The first difference between two runs of `input`, if any.
pub fn compare(
    input: &Input,
    a: &Observation,
    fa: &[Finding],
    b: &Observation,
    fb: &[Finding],
) -> Option<Difference> {
    for k in 0..input.clients.len() {
        let (x, y) = (answers(a, k), answers(b, k));
        if x == y {
            continue;
        }
        let i = x.iter().zip(&y).take_while(|(p, q)| p == q).count();
        let show = |v: &[String]| v.get(i).cloned().unwrap_or_else(|| "nothing more".into());
        let finding = fa.iter().chain(fb).find_map(|f| f.statement.clone());
        let closes = |v: &[String]| v.iter().any(|s| s == "close");
        let one_closes = closes(&x) != closes(&y);
        let (statement, why) = if let Some(st) = finding {
            (
                Some(st.clone()),
                format!("decided by {st}: one of them breaks it (a finding)"),
            )
        } else if let Some(st) = decided_by(input, a).filter(|_| one_closes) {
            let kept = if closes(&x) { "the other" } else { "the first" };
            (
                Some(st.clone()),
                format!(
                    "decided by {st}: the input sent a packet it forbids, and {kept} did not close"
                ),
            )
        } else {
            (None, "the spec lets them differ".to_string())
        };
        return Some(Difference {
            origin: input.origin.clone(),
            client: k,
            first: show(&x),
            other: show(&y),
            statement,
            why,
        });
    }
    None
}
