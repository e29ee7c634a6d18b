//! The limit searches: binary searches on a size between a value known to
//! work and a cap (the spec's maximum, or the option that bounds the probe),
//! each step one connection under the try's deadline. A step fails when the
//! broker refuses what was sent: with a reason code (5.0 DISCONNECT 0x95,
//! SUBACK 0x8F, CONNACK 0x85…) or by closing the connection, or when what was
//! published never arrives. Both are evidence of the limit.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use mqtt_codec::{Packet, Properties, QoS};
use serde_json::{json, Value};

use super::client::{publish, Client};
use super::{Ctx, Finding};

/// The longest topic and client id the spec allows (a two-byte length).
pub const SPEC_MAX_STRING: usize = 65_535;

/// The largest remaining length, and so about the largest packet.
pub const SPEC_MAX_PACKET: usize = 268_435_455;

/// One step of a search.
pub struct Step {
    pub n: usize,
    pub ok: bool,
    pub outcome: String,
    pub exchange: Vec<Value>,
}

/// The outcome of a search: the largest size that worked and the smallest
/// that did not, with their steps.
pub struct Search {
    pub largest_ok: Option<Step>,
    pub smallest_refused: Option<Step>,
    pub steps: usize,
    /// The cap worked: the limit is at least that.
    pub capped: bool,
}

/// Binary search on `lo..=hi`: `hi` first (a broker with no limit below the
/// cap ends it at once), then `lo`, then halving. At most
/// log2(hi - lo) + 2 steps.
pub async fn search<F, Fut>(lo: usize, hi: usize, step: F) -> Search
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Step>,
{
    let hi = hi.max(lo);
    let top = step(hi).await;
    if top.ok {
        return Search {
            largest_ok: Some(top),
            smallest_refused: None,
            steps: 1,
            capped: true,
        };
    }
    let mut steps = 2;
    let bottom = step(lo).await;
    if !bottom.ok || lo == hi {
        return Search {
            largest_ok: None,
            smallest_refused: Some(bottom),
            steps,
            capped: false,
        };
    }
    let (mut good, mut bad) = (bottom, top);
    while bad.n - good.n > 1 {
        let mid = good.n + (bad.n - good.n) / 2;
        let s = step(mid).await;
        steps += 1;
        if s.ok {
            good = s;
        } else {
            bad = s;
        }
    }
    Search {
        largest_ok: Some(good),
        smallest_refused: Some(bad),
        steps,
        capped: false,
    }
}

impl Search {
    /// The finding of a search: the largest size that worked, the step
    /// before and after it as evidence. `unit` names what is counted.
    fn finding(
        self,
        key: &'static str,
        label: &'static str,
        unit: &str,
        cap_flag: &str,
        spec_max: Option<usize>,
    ) -> Finding {
        let value = self.largest_ok.as_ref().map_or(Value::Null, |s| json!(s.n));
        let summary = match (&self.largest_ok, &self.smallest_refused) {
            (Some(ok), _) if self.capped && spec_max == Some(ok.n) => {
                format!("{} {unit} (the spec's maximum)", ok.n)
            }
            (Some(ok), _) if self.capped => format!(
                "at least {} {unit} (the cap of this probe; {cap_flag} raises it)",
                ok.n
            ),
            (Some(ok), Some(bad)) => {
                format!("{} {unit} ({} refused: {})", ok.n, bad.n, bad.outcome)
            }
            (None, Some(bad)) => {
                format!("unknown: even {} {unit} refused ({})", bad.n, bad.outcome)
            }
            _ => "unknown".into(),
        };
        let mut f = Finding::new(
            key,
            label,
            value,
            match self.steps {
                1 => format!("{summary}; 1 try"),
                n => format!("{summary}; {n} tries"),
            },
        );
        if self.capped && spec_max != f.value.as_u64().map(|v| v as usize) {
            f.value = json!({ "at_least": f.value });
        }
        for s in [self.largest_ok, self.smallest_refused]
            .into_iter()
            .flatten()
        {
            f = f.with(format!("{} {unit}", s.n), s.outcome, s.exchange);
        }
        f
    }
}

/// Subscribes to `topic` and publishes `payload` on it at QoS 1: ok when it
/// is acknowledged and delivered whole.
async fn round_trip(ctx: &Ctx, topic: &str, payload: Bytes, n: usize) -> Step {
    let (acked, mut c) = Client::connect(&ctx.opts.target, ctx.connect(), ctx.opts.timeout).await;
    let p = ctx.protocol;
    let outcome = match acked {
        Err(e) => Err(format!("CONNECT: {}", e.describe(p))),
        Ok(_) => match c
            .subscribe(&[topic], QoS::AtLeastOnce, Properties::new())
            .await
        {
            Err(e) => Err(format!("SUBSCRIBE: {}", e.describe(p))),
            Ok(codes) if codes.first().is_none_or(|&c| c >= 0x80) => Err(format!(
                "SUBACK {}",
                codes
                    .iter()
                    .map(|c| format!("0x{c:02X}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            Ok(_) => {
                let len = payload.len();
                match c
                    .publish(publish(topic, QoS::AtLeastOnce, false, payload))
                    .await
                {
                    Err(e) => Err(format!("PUBLISH: {}", e.describe(p))),
                    Ok(code) if code >= 0x80 => Err(format!("PUBACK 0x{code:02X}")),
                    Ok(_) => match c.delivery(topic, ctx.opts.timeout).await {
                        Ok(d) if d.payload.len() == len => {
                            Ok("acknowledged and delivered".to_string())
                        }
                        Ok(d) => Err(format!("delivered with {} bytes of {len}", d.payload.len())),
                        Err(e) => Err(format!("acknowledged, not delivered: {}", e.describe(p))),
                    },
                }
            }
        },
    };
    c.disconnect().await;
    let (ok, outcome) = match outcome {
        Ok(o) => (true, o),
        Err(o) => (false, o),
    };
    Step {
        n,
        ok,
        outcome,
        exchange: c.exchange(),
    }
}

/// Payload and packet size: the largest QoS 1 PUBLISH payload acknowledged
/// and delivered, up to `--max-size`; the packet size is that PUBLISH's
/// encoded length (a 5.0 broker announces its Maximum Packet Size; a packet
/// above it is refused with DISCONNECT 0x95 or a close, MQTT-3.2.2-15…).
pub async fn sizes(ctx: &Ctx) -> Vec<Finding> {
    let topic = ctx.topic("size");
    let cap = ctx.opts.max_size.min(SPEC_MAX_PACKET - topic.len() - 16);
    let s = search(0, cap, |n| {
        let topic = topic.clone();
        async move { round_trip(ctx, &topic, Bytes::from(vec![b'x'; n]), n).await }
    })
    .await;
    let packet_len = |n: usize| {
        let p = Packet::Publish(publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from(vec![0u8; n]),
        ));
        mqtt_codec::encoded_len(&p, ctx.protocol).ok()
    };
    let ok = s.largest_ok.as_ref().map(|x| x.n);
    let bad = s.smallest_refused.as_ref().map(|x| x.n);
    let capped = s.capped;
    let mut packet = Finding::new(
        "maximum_packet_size",
        "Maximum packet size",
        Value::Null,
        String::new(),
    );
    let (okp, badp) = (ok.and_then(packet_len), bad.and_then(packet_len));
    packet.value = match (okp, capped) {
        (Some(n), true) => json!({ "at_least": n }),
        (Some(n), false) => json!(n),
        (None, _) => Value::Null,
    };
    packet.summary = match (okp, badp, capped) {
        (Some(n), _, true) => format!("at least {n} bytes (a PUBLISH of that size went through; --max-size raises the cap)"),
        (Some(n), Some(b), false) => format!("{n} bytes (the largest PUBLISH acknowledged and delivered; one of {b} bytes was refused)"),
        _ => "unknown (see the payload size search)".into(),
    };
    let payload = s.finding(
        "maximum_payload",
        "Maximum payload size",
        "bytes",
        "--max-size",
        None,
    );
    // The same PUBLISH packets show both.
    packet.evidence = payload.evidence.clone();
    vec![payload, packet]
}

/// Topic length, then topic levels (below the length found): the longest
/// topic, and the most levels, that a subscription and a PUBLISH take.
pub async fn topics(ctx: &Ctx) -> Vec<Finding> {
    let base = ctx.topic("len");
    let lo = base.len() + 2;
    let cap = ctx.opts.max_topic_length.min(SPEC_MAX_STRING);
    let length = search(lo, cap, |n| {
        let topic = format!("{base}/{}", "a".repeat(n.saturating_sub(base.len() + 1)));
        async move { round_trip(ctx, &topic, Bytes::from_static(b"topic length"), n).await }
    })
    .await;
    let longest = length.largest_ok.as_ref().map_or(lo, |s| s.n);
    let first = ctx.topic("levels").replace('/', "-");
    // n levels take first + 2 (n - 1) bytes.
    let by_length = (longest.saturating_sub(first.len()) / 2) + 1;
    let cap = ctx.opts.max_topic_levels.min(by_length).max(1);
    let levels = search(1, cap, |n| {
        let topic = format!("{first}{}", "/a".repeat(n - 1));
        async move { round_trip(ctx, &topic, Bytes::from_static(b"topic levels"), n).await }
    })
    .await;
    let cap_flag = if cap < ctx.opts.max_topic_levels {
        "a longer topic length limit"
    } else {
        "--max-topic-levels"
    };
    vec![
        length.finding(
            "maximum_topic_length",
            "Maximum topic length",
            "bytes",
            "--max-topic-length",
            Some(SPEC_MAX_STRING),
        ),
        levels.finding(
            "maximum_topic_levels",
            "Maximum topic levels",
            "levels",
            cap_flag,
            None,
        ),
    ]
}

/// Client id length: the longest client id a CONNECT is accepted with.
pub async fn client_id_length(ctx: &Ctx) -> Finding {
    let cap = ctx.opts.max_client_id.min(SPEC_MAX_STRING);
    let s = search(1, cap, |n| async move {
        let mut id = ctx.client_id();
        id.truncate(n);
        while id.len() < n {
            id.push('a');
        }
        let (acked, mut c) = Client::connect(
            &ctx.opts.target,
            ctx.connect_as(ctx.protocol, id),
            ctx.opts.timeout,
        )
        .await;
        c.disconnect().await;
        let (ok, outcome) = match acked {
            Ok(_) => (true, "CONNACK 0".to_string()),
            Err(e) => (false, e.describe(ctx.protocol)),
        };
        Step {
            n,
            ok,
            outcome,
            exchange: c.exchange(),
        }
    })
    .await;
    s.finding(
        "maximum_client_id_length",
        "Maximum client id length",
        "characters",
        "--max-client-id",
        Some(SPEC_MAX_STRING),
    )
}

/// The printable ASCII characters that are not letters or digits, and one
/// non-ASCII letter: which ones a client id may hold (a server must accept
/// only `0-9a-zA-Z`, MQTT-3.1.3-5, and may accept more).
const CHARS: &str = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~é";

pub async fn client_id_chars(ctx: Arc<Ctx>) -> Finding {
    let mut set = tokio::task::JoinSet::new();
    for ch in CHARS.chars() {
        let ctx = ctx.clone();
        set.spawn(async move {
            let mut id = ctx.client_id();
            id.insert(3, ch);
            let connect = ctx.connect_as(ctx.protocol, id);
            let (acked, mut c) = Client::connect(&ctx.opts.target, connect, ctx.opts.timeout).await;
            c.disconnect().await;
            let outcome = acked.map(|_| ()).map_err(|e| e.describe(ctx.protocol));
            (ch, outcome, c.exchange())
        });
    }
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|r| CHARS.find(r.0));
    let refused: Vec<String> = results
        .iter()
        .filter(|r| r.1.is_err())
        .map(|r| r.0.to_string())
        .collect();
    let accepted = results.len() - refused.len();
    let summary = if refused.is_empty() {
        format!("all {accepted} tried accepted (printable ASCII punctuation, space, é)")
    } else {
        format!("{accepted} accepted; refused: {}", refused.join(" "))
    };
    let mut f = Finding::new(
        "client_id_characters",
        "Client id characters",
        json!({ "tried": CHARS, "refused": refused }),
        summary,
    );
    let mut shown_ok = false;
    for (ch, outcome, exchange) in results {
        match outcome {
            Err(why) => f = f.with(format!("client id with {ch:?}"), why, exchange),
            Ok(()) if !shown_ok => {
                shown_ok = true;
                f = f.with(format!("client id with {ch:?}"), "CONNACK 0", exchange);
            }
            Ok(()) => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: usize, limit: usize) -> Step {
        Step {
            n,
            ok: n <= limit,
            outcome: String::new(),
            exchange: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_search_finds_the_limit_in_few_steps() {
        for limit in [0usize, 1, 7, 999, 1000, 1023] {
            let s = search(0, 1024, |n| async move { step(n, limit) }).await;
            assert_eq!(s.largest_ok.map(|x| x.n), Some(limit), "{limit}");
            assert_eq!(s.smallest_refused.map(|x| x.n), Some(limit + 1), "{limit}");
            assert!(s.steps <= 12, "{limit}: {} steps", s.steps);
        }
        let s = search(0, 1024, |n| async move { step(n, 5000) }).await;
        assert!(s.capped && s.steps == 1);
        let s = search(10, 1024, |n| async move { step(n, 3) }).await;
        assert!(s.largest_ok.is_none() && s.smallest_refused.map(|x| x.n) == Some(10));
    }
}
