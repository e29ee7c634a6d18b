//! Minimising a finding: the fewest operations and clients, then the fewest
//! fields and bytes, that still reproduce it (same kind, same statement),
//! each candidate run again against the target. Bounded by a number of
//! trials and a time, so that a finding that reproduces only sometimes
//! costs no more than that.

use std::time::Duration;

use mqtt_codec::Packet;
use tokio::time::Instant;

use super::exec::{Executor, Liveness, Observation};
use super::input::{Input, Op};
use super::oracle::{judge, Finding, Kind};

/// The most candidates tried per finding.
pub const TRIALS: usize = 150;
/// The longest minimising one finding takes.
pub const TIME: Duration = Duration::from_secs(60);

/// A reproduced finding: the input, what it did and the token it ran with.
#[derive(Debug, Clone)]
pub struct Reproduced {
    pub input: Input,
    pub obs: Observation,
    pub finding: Finding,
    pub token: String,
}

pub struct Minimiser<'a> {
    pub exec: &'a Executor,
    pub live: &'a mut Liveness,
    pub key: (Kind, Option<String>),
    pub token: &'a mut (dyn FnMut() -> String + Send),
    pub trials: usize,
    pub until: Instant,
}

impl Minimiser<'_> {
    /// Runs `input`; the finding of the same key, if it comes again.
    pub async fn reproduce(&mut self, input: &Input) -> Option<Reproduced> {
        if self.trials >= TRIALS || Instant::now() >= self.until {
            return None;
        }
        self.trials += 1;
        let token = (self.token)();
        let obs = self.exec.execute(input, &token).await;
        let live = self.live.check().await;
        let finding = judge(input, &obs, &live)
            .into_iter()
            .find(|f| f.key() == self.key)?;
        Some(Reproduced {
            input: input.clone(),
            obs,
            finding,
            token,
        })
    }

    fn spent(&self) -> bool {
        self.trials >= TRIALS || Instant::now() >= self.until
    }

    /// The smallest input found that reproduces `best`.
    pub async fn minimise(&mut self, mut best: Reproduced) -> Reproduced {
        // Operations, in chunks halving down to one.
        let mut size = best.input.ops.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < best.input.ops.len() && !self.spent() {
                let mut cand = best.input.clone();
                let end = (i + size).min(cand.ops.len());
                cand.ops.drain(i..end);
                match self.reproduce(&cand).await {
                    Some(r) => best = r,
                    None => i += size,
                }
            }
            if size == 1 || self.spent() {
                break;
            }
            size = size.div_ceil(2);
        }
        // Clients nothing refers to any more.
        let mut k = best.input.clients.len();
        while k > 1 && !self.spent() {
            k -= 1;
            if let Some(cand) = without_client(&best.input, k) {
                if let Some(r) = self.reproduce(&cand).await {
                    best = r;
                }
            }
        }
        // Fields and bytes of each operation.
        for i in 0..best.input.ops.len() {
            for cand in simpler_ops(&best.input, i) {
                if self.spent() {
                    return best;
                }
                if let Some(r) = self.reproduce(&cand).await {
                    best = r;
                }
            }
        }
        // CONNECT fields of each client.
        for k in 0..best.input.clients.len() {
            let keys: Vec<String> = best
                .input
                .clients
                .get(k)
                .map(|c| c.fields.keys().cloned().collect())
                .unwrap_or_default();
            for key in keys {
                if self.spent() {
                    return best;
                }
                let mut cand = best.input.clone();
                if let Some(c) = cand.clients.get_mut(k) {
                    c.fields.remove(&key);
                }
                if let Some(r) = self.reproduce(&cand).await {
                    best = r;
                }
            }
        }
        best
    }
}

/// `input` without client `k`, when no operation or client refers to it.
fn without_client(input: &Input, k: usize) -> Option<Input> {
    if input.ops.iter().any(|op| op.client() == k)
        || input.clients.iter().any(|c| c.same_id_as == Some(k))
    {
        return None;
    }
    let mut cand = input.clone();
    cand.clients.remove(k);
    for op in &mut cand.ops {
        if op.client() > k {
            op.set_client(op.client() - 1);
        }
    }
    for c in &mut cand.clients {
        if let Some(j) = c.same_id_as.as_mut() {
            if *j > k {
                *j -= 1;
            }
        }
    }
    Some(cand)
}

/// Simpler versions of operation `i`: one deliberate fault fewer, no
/// payload, one property fewer, half its raw bytes.
fn simpler_ops(input: &Input, i: usize) -> Vec<Input> {
    let mut out = Vec::new();
    let Some(op) = input.ops.get(i) else {
        return out;
    };
    let with = |op: Op| {
        let mut cand = input.clone();
        if let Some(slot) = cand.ops.get_mut(i) {
            *slot = op;
        }
        cand
    };
    match op {
        Op::Send {
            client,
            packet,
            overrides,
        } => {
            let o = overrides;
            let mut variants = Vec::new();
            let mut v = o.clone();
            if v.first_byte.take().is_some() {
                variants.push(v);
            }
            let mut v = o.clone();
            if v.flags.take().is_some() {
                variants.push(v);
            }
            let mut v = o.clone();
            if v.remaining_length.take().is_some() {
                variants.push(v);
            }
            for j in 0..o.fields.len() {
                let mut v = o.clone();
                v.fields.remove(j);
                variants.push(v);
            }
            if !o.append.is_empty() {
                let mut v = o.clone();
                v.append.clear();
                variants.push(v);
            }
            let mut v = o.clone();
            if v.truncate.take().is_some() {
                variants.push(v);
            }
            for v in variants {
                out.push(with(Op::Send {
                    client: *client,
                    packet: packet.clone(),
                    overrides: v,
                }));
            }
            if let Packet::Publish(p) = packet {
                if !p.payload.is_empty() {
                    let mut q = p.clone();
                    q.payload = bytes::Bytes::new();
                    out.push(with(Op::Send {
                        client: *client,
                        packet: Packet::Publish(q),
                        overrides: o.clone(),
                    }));
                }
            }
            let n = packet.properties().map_or(0, |p| p.0.len());
            for j in 0..n {
                let mut q = packet.clone();
                if let Some(props) = properties_mut(&mut q) {
                    props.remove(j);
                }
                out.push(with(Op::Send {
                    client: *client,
                    packet: q,
                    overrides: o.clone(),
                }));
            }
        }
        Op::Raw { client, bytes } => {
            let mut len = bytes.len() / 2;
            while len > 0 {
                out.push(with(Op::Raw {
                    client: *client,
                    bytes: bytes.get(..len).unwrap_or(&[]).to_vec(),
                }));
                len /= 2;
            }
        }
        Op::Reconnect { client, fields } if !fields.is_empty() => {
            out.push(with(Op::Reconnect {
                client: *client,
                fields: Default::default(),
            }));
        }
        _ => {}
    }
    out
}

fn properties_mut(p: &mut Packet) -> Option<&mut Vec<mqtt_codec::Property>> {
    Some(match p {
        Packet::Publish(x) => &mut x.properties.0,
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            &mut r.properties.0
        }
        Packet::Subscribe(x) => &mut x.properties.0,
        Packet::Unsubscribe(x) => &mut x.properties.0,
        Packet::Disconnect(x) => &mut x.properties.0,
        Packet::Auth(x) => &mut x.properties.0,
        Packet::Connect(x) => &mut x.properties.0,
        _ => return None,
    })
}
