//! What the network fuzzer sends: an [`Input`] is a small multi-client
//! exchange (clients with their CONNECT fields, then operations on them),
//! the shape of a scenario's send steps. Seeds are the scenario library's
//! exchanges ([`seeds`]); [`super::mutate`] changes them.
//!
//! Inputs are written with a placeholder token ([`TOKEN`]) where a scenario
//! writes `{case}` (in topics, client ids, payloads); each execution replaces
//! it, in the encoded bytes, by a token of the same length of its own, so
//! that executions never share sessions or topics and that every length,
//! deliberate or not, stays what the input says.

use std::collections::HashMap;

use mqtt_codec::{Overrides, Packet, Protocol};
use serde_json::{Map, Value};

use crate::packet;
use crate::run::vars::Vars;
use crate::scenario::{Action, Scenario};

/// Stands for an execution's own token: as long as the runner's `{case}`
/// (13 letters and digits), so that a finding's topics can be written back
/// as `{case}`.
pub const TOKEN: &str = "FZTOKEN000000";

/// At most this many clients in one input.
pub const MAX_CLIENTS: usize = 4;

/// At most this many operations in one input.
pub const MAX_OPS: usize = 24;

/// One exchange to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub protocol: Protocol,
    pub clients: Vec<Client>,
    pub ops: Vec<Op>,
    /// The seed scenario it was made from, for reports.
    pub origin: String,
}

/// A client of an input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Client {
    /// Connects (valid CONNECT, CONNACK awaited) before the operations.
    pub connect: bool,
    /// CONNECT fields (the packet vocabulary): clean_start, keep_alive,
    /// will, properties…; no type, protocol or client id.
    pub fields: Map<String, Value>,
    /// Connects with that client's id (a session takeover).
    pub same_id_as: Option<usize>,
}

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A packet by its fields, with deliberate deviations.
    Send {
        client: usize,
        packet: Packet,
        overrides: Overrides,
    },
    /// Bytes as they are.
    Raw { client: usize, bytes: Vec<u8> },
    /// Closes the client's connection, opens a new one and sends CONNECT
    /// with the client's fields and these (its CONNACK is not awaited).
    Reconnect {
        client: usize,
        fields: Map<String, Value>,
    },
    /// DISCONNECT (reason 0), then close.
    Disconnect { client: usize },
    /// Close the socket without DISCONNECT (a will fires).
    Drop { client: usize },
}

impl Op {
    pub fn client(&self) -> usize {
        match self {
            Op::Send { client, .. }
            | Op::Raw { client, .. }
            | Op::Reconnect { client, .. }
            | Op::Disconnect { client }
            | Op::Drop { client } => *client,
        }
    }

    pub fn set_client(&mut self, to: usize) {
        match self {
            Op::Send { client, .. }
            | Op::Raw { client, .. }
            | Op::Reconnect { client, .. }
            | Op::Disconnect { client }
            | Op::Drop { client } => *client = to,
        }
    }

    /// The bytes it writes (with the placeholder token), if it writes a packet.
    pub fn bytes(&self, protocol: Protocol) -> Option<Vec<u8>> {
        match self {
            Op::Send {
                packet, overrides, ..
            } => mqtt_codec::encode_with(packet, protocol, overrides)
                .ok()
                .map(|b| b.to_vec()),
            Op::Raw { bytes, .. } => Some(bytes.clone()),
            _ => None,
        }
    }
}

/// The placeholder id of client `k` (as long as every execution's).
pub fn client_id(k: usize) -> String {
    format!("{TOKEN}c{k}")
}

/// The CONNECT of client `k` of `input`, with `extra` fields over its own.
pub fn connect_packet(input: &Input, k: usize, extra: &Map<String, Value>) -> Option<Packet> {
    let c = input.clients.get(k)?;
    let id = client_id(c.same_id_as.unwrap_or(k));
    let mut fields = Map::new();
    fields.insert("type".into(), Value::from("CONNECT"));
    fields.insert("protocol".into(), Value::from(input.protocol.as_str()));
    fields.insert("client_id".into(), Value::from(id));
    fields.extend(c.fields.clone());
    fields.extend(extra.clone());
    let (p, o) = packet::packet_from_value(&Value::Object(fields), input.protocol).ok()?;
    o.is_empty().then_some(p)
}

/// A small deterministic generator (xorshift64*): inputs depend on the seed
/// and their index only.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, index: u64) -> Rng {
        let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        // splitmix64 finaliser, so that neighbouring indexes diverge at once.
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in.max(1)) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// A stable 64-bit digest (FNV-1a), for the inputs digest of a run.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The seeds: each scenario's exchange under 3.1.1 and 5.0, its clients and
/// its send steps (captured values written as 1; set-ups other than the
/// default broker left out), with the statements the scenario checks.
pub fn seeds(scenarios: &[Scenario]) -> Vec<(Input, Vec<String>)> {
    let mut out = Vec::new();
    for s in scenarios.iter().filter(|s| s.setup.is_none()) {
        for protocol in [Protocol::V3_1_1, Protocol::V5] {
            if !s.protocols.contains(&protocol) {
                continue;
            }
            if let Some(input) = seed(s, protocol) {
                out.push((input, s.checked_statements(protocol)));
            }
        }
    }
    out
}

fn vars(s: &Scenario) -> Vars {
    let client_ids: HashMap<String, String> = s
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), client_id(i)))
        .collect();
    Vars {
        run: "FZRUN0".into(),
        case: TOKEN.into(),
        topic: format!("fz/{TOKEN}"),
        client_ids,
        username: "fuzz".into(),
        password: "fuzz".into(),
    }
}

/// Captures (`$m`) written as 1: the seed cannot know what a broker will
/// answer, and 1 is a packet identifier as good as any.
fn no_captures(v: &Value) -> Value {
    match v {
        Value::String(s) if packet::is_capture(s) => Value::from(1),
        Value::Array(a) => Value::Array(a.iter().map(no_captures).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), no_captures(x))).collect())
        }
        other => other.clone(),
    }
}

fn seed(s: &Scenario, protocol: Protocol) -> Option<Input> {
    if s.clients.is_empty() || s.clients.len() > MAX_CLIENTS {
        return None;
    }
    let vars = vars(s);
    let index: HashMap<&str, usize> = s
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let fill = |v: &Value, client: &str| -> Option<Value> {
        vars.to_send(&no_captures(v), client, &HashMap::new()).ok()
    };
    let mut clients = Vec::new();
    for (i, c) in s.clients.iter().enumerate() {
        let Value::Object(mut fields) = fill(&Value::Object(c.fields.clone()), &c.name)? else {
            return None;
        };
        let mut same_id_as = None;
        if let Some(Value::String(id)) = fields.get("client_id") {
            if let Some(k) = (0..s.clients.len()).find(|k| *k != i && client_id(*k) == *id) {
                same_id_as = Some(k);
                fields.remove("client_id");
            } else if *id == client_id(i) {
                fields.remove("client_id");
            }
        }
        clients.push(Client {
            connect: c.connect,
            fields,
            same_id_as,
        });
    }
    let mut ops = Vec::new();
    for step in s.steps.iter().filter(|st| st.runs_under(protocol)) {
        let Some(name) = step.action.client() else {
            continue;
        };
        let Some(&k) = index.get(name) else {
            continue;
        };
        let op = match &step.action {
            Action::Send { packet: p, .. } => {
                let v = fill(&Value::Object(p.clone()), name)?;
                match packet::packet_from_value(&v, protocol) {
                    Ok((packet, overrides)) => Op::Send {
                        client: k,
                        packet,
                        overrides,
                    },
                    Err(_) => continue,
                }
            }
            Action::SendHex { bytes, .. } => Op::Raw {
                client: k,
                bytes: bytes.clone(),
            },
            Action::Connect { fields, .. } => match fill(&Value::Object(fields.clone()), name) {
                Some(Value::Object(fields)) => Op::Reconnect { client: k, fields },
                _ => continue,
            },
            Action::Disconnect { .. } => Op::Disconnect { client: k },
            Action::Drop { .. } => Op::Drop { client: k },
            _ => continue,
        };
        ops.push(op);
        if ops.len() >= MAX_OPS {
            break;
        }
    }
    if ops.is_empty() {
        return None;
    }
    Some(Input {
        protocol,
        clients,
        ops,
        origin: s.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_gives_seeds_of_both_versions_whose_connects_build() {
        let scenarios = crate::library::load().expect("the library loads");
        let seeds = seeds(&scenarios);
        assert!(seeds.len() > 100, "{} seeds", seeds.len());
        for p in [Protocol::V3_1_1, Protocol::V5] {
            assert!(seeds.iter().any(|(i, _)| i.protocol == p));
        }
        for (input, _) in &seeds {
            for k in 0..input.clients.len() {
                if input.clients[k].connect {
                    assert!(
                        connect_packet(input, k, &Map::new()).is_some(),
                        "{} client {k}",
                        input.origin
                    );
                }
            }
        }
    }

    #[test]
    fn the_generator_depends_on_seed_and_index_only() {
        let a: Vec<u64> = (0..5).map(|i| Rng::new(7, i).next_u64()).collect();
        let b: Vec<u64> = (0..5).map(|i| Rng::new(7, i).next_u64()).collect();
        let c: Vec<u64> = (0..5).map(|i| Rng::new(8, i).next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
