//! The feature tries: each connects, does one thing, and says what came of
//! it with the exchange as evidence. A refusal is a finding too: a 5.0
//! DISCONNECT with a reason code and a plain close both show that the
//! broker does not take what was sent.

use bytes::Bytes;
use mqtt_codec::{ConnAck, Packet, Properties, Property, Protocol, QoS};
use serde_json::{json, Value};

use super::client::{publish, Client, NoAnswer};
use super::{Ctx, Finding, Options};

/// The protocol levels the broker accepted, and its 5.0 CONNACK.
pub struct Versions {
    pub finding: Finding,
    pub accepted: Vec<Protocol>,
    pub connack5: Option<ConnAck>,
}

/// 5.0 where spoken, else 3.1.1, else 3.1.
pub fn best(v: &Versions) -> Option<Protocol> {
    [Protocol::V5, Protocol::V3_1_1, Protocol::V3_1]
        .into_iter()
        .find(|p| v.accepted.contains(p))
}

/// A clean CONNECT of each version (MQTT-3.1.2-2: a server may refuse a
/// level it does not speak with 0x01 / 0x84 or by closing).
pub async fn protocols(opts: &Options) -> Versions {
    let ctx = Ctx::new(opts.clone(), Protocol::V5);
    let ctx = &ctx;
    let one = |p: Protocol| {
        let connect = ctx.connect_as(p, ctx.client_id());
        async move {
            let (acked, mut c) = Client::connect(&ctx.opts.target, connect, opts.timeout).await;
            c.disconnect().await;
            (p, acked, c.exchange())
        }
    };
    let (a, b, d) = tokio::join!(
        one(Protocol::V3_1),
        one(Protocol::V3_1_1),
        one(Protocol::V5)
    );
    let mut accepted = Vec::new();
    let mut connack5 = None;
    let mut finding = Finding::new("protocols", "Protocol levels", Value::Null, String::new());
    let mut said = Vec::new();
    for (p, acked, exchange) in [a, b, d] {
        let outcome = match acked {
            Ok(ack) => {
                accepted.push(p);
                if p.is_v5() {
                    connack5 = Some(ack);
                }
                said.push(format!("{p} yes"));
                "accepted (CONNACK 0)".to_string()
            }
            Err(e) => {
                said.push(format!("{p} no"));
                format!("not accepted: {}", e.describe(p))
            }
        };
        finding = finding.with(format!("CONNECT at MQTT {p}"), outcome, exchange);
    }
    finding.value = json!(accepted.iter().map(|p| p.as_str()).collect::<Vec<_>>());
    finding.summary = said.join(", ");
    Versions {
        finding,
        accepted,
        connack5,
    }
}

/// What a 5.0 server assumes when its CONNACK leaves a property out.
fn defaults() -> [(&'static str, Value); 8] {
    [
        ("receive_maximum", json!(65535)),
        ("maximum_qos", json!(2)),
        ("retain_available", json!(1)),
        ("maximum_packet_size", json!("no limit")),
        ("topic_alias_maximum", json!(0)),
        ("wildcard_subscription_available", json!(1)),
        ("subscription_identifier_available", json!(1)),
        ("shared_subscription_available", json!(1)),
    ]
}

/// Every property of the 5.0 CONNACK, and the spec's default for each
/// limit it leaves out; also what a CONNECT asking for response
/// information gets back.
pub async fn connack(ctx: &Ctx, v: &Versions) -> Vec<Finding> {
    let Some(ack) = &v.connack5 else {
        return vec![Finding::new(
            "connack_properties",
            "CONNACK properties (5.0)",
            Value::Null,
            "the broker does not speak 5.0: nothing announced".into(),
        )];
    };
    let mut announced = serde_json::Map::new();
    for p in ack.properties.iter() {
        let value = crate::packet::properties_json(&Properties(vec![p.clone()]));
        let v = value
            .get(0)
            .and_then(|x| x.get("value"))
            .cloned()
            .unwrap_or(Value::Null);
        match announced.get_mut(p.name()) {
            // User properties may repeat: a list.
            Some(Value::Array(a)) => a.push(v),
            Some(old) => *old = json!([old.clone(), v]),
            None => {
                announced.insert(p.name().to_string(), v);
            }
        }
    }
    let mut shown: Vec<String> = announced.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let mut assumed = serde_json::Map::new();
    let mut defaulted = Vec::new();
    for (name, d) in defaults() {
        if !announced.contains_key(name) {
            assumed.insert(name.to_string(), d.clone());
            defaulted.push(format!("{name} {d}"));
        }
    }
    if !defaulted.is_empty() {
        shown.push(format!("absent, so the defaults: {}", defaulted.join(", ")));
    }
    let value = json!({ "announced": announced, "defaults": assumed });
    let from = v
        .finding
        .evidence
        .iter()
        .find(|t| t.what.ends_with("5.0"))
        .map(|t| t.exchange.clone())
        .unwrap_or_default();
    let props = Finding::new(
        "connack_properties",
        "CONNACK properties (5.0)",
        value,
        shown.join(", "),
    )
    .with("a clean 5.0 CONNECT", "CONNACK 0", from);

    let mut connect = ctx.connect_as(Protocol::V5, ctx.client_id());
    connect
        .properties
        .push(Property::RequestResponseInformation(1));
    connect
        .properties
        .push(Property::RequestProblemInformation(1));
    let (acked, mut c) = Client::connect(&ctx.opts.target, connect, ctx.opts.timeout).await;
    c.disconnect().await;
    let (value, summary) = match &acked {
        Ok(a) => match a.properties.response_information() {
            Some(r) => (json!(&*r), format!("{:?}", &*r)),
            None => (Value::Null, "none given (a server may give none)".into()),
        },
        Err(e) => (
            Value::Null,
            format!("unknown: {}", e.describe(Protocol::V5)),
        ),
    };
    let info = Finding::new(
        "response_information",
        "Response information (5.0)",
        value,
        summary,
    )
    .with(
        "CONNECT with Request Response Information 1",
        outcome(&acked),
        c.exchange(),
    );
    vec![props, info]
}

fn outcome(r: &Result<ConnAck, NoAnswer>) -> String {
    match r {
        Ok(_) => "CONNACK 0".into(),
        Err(e) => e.describe(Protocol::V5),
    }
}

/// A connected client of the probe's version, or the finding saying why not.
pub(super) async fn connected(
    ctx: &Ctx,
    key: &'static str,
    label: &'static str,
) -> Result<Client, Finding> {
    let (acked, mut c) = Client::connect(&ctx.opts.target, ctx.connect(), ctx.opts.timeout).await;
    match acked {
        Ok(_) => Ok(c),
        Err(e) => {
            let why = e.describe(ctx.protocol);
            Err(
                Finding::new(key, label, Value::Null, format!("unknown: {why}")).with(
                    "CONNECT",
                    why,
                    c.exchange(),
                ),
            )
        }
    }
}

pub(super) fn granted(codes: &Result<Vec<u8>, NoAnswer>) -> Option<u8> {
    match codes {
        Ok(c) => c.first().copied().filter(|&c| c < 0x80),
        Err(_) => None,
    }
}

pub(super) fn suback_text(codes: &Result<Vec<u8>, NoAnswer>, p: Protocol) -> String {
    match codes {
        Ok(c) => {
            let shown: Vec<String> = c.iter().map(|x| format!("0x{x:02X}")).collect();
            format!("SUBACK {}", shown.join(" "))
        }
        Err(e) => e.describe(p),
    }
}

/// Maximum QoS: a QoS 2 subscription (what is granted), then a PUBLISH at
/// each QoS to it: the highest acknowledged and delivered, at most the
/// granted QoS. A 5.0 broker refuses a QoS above its maximum with
/// DISCONNECT 0x9B (MQTT-3.2.2-11); a 3.1.1 broker may downgrade.
pub async fn qos(ctx: &Ctx) -> Finding {
    let (key, label) = ("maximum_qos", "Maximum QoS");
    let mut c = match connected(ctx, key, label).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let topic = ctx.topic("qos");
    let codes = c
        .subscribe(&[&topic], QoS::ExactlyOnce, Properties::new())
        .await;
    let sub = granted(&codes);
    let mut parts = vec![format!(
        "QoS 2 subscription: {}",
        suback_text(&codes, ctx.protocol)
    )];
    let mut best = None;
    for q in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        if sub.is_none() {
            break;
        }
        let payload = Bytes::from(format!("qos {}", q.as_u8()));
        let answer = c.publish(publish(&topic, q, false, payload)).await;
        let delivered = match &answer {
            Ok(code) if *code < 0x80 => c.delivery(&topic, ctx.opts.timeout).await.is_ok(),
            _ => false,
        };
        parts.push(match (&answer, delivered) {
            (Ok(_), true) => format!("QoS {} acknowledged and delivered", q.as_u8()),
            (Ok(code), false) => format!("QoS {}: answered 0x{code:02X}, not delivered", q.as_u8()),
            (Err(e), _) => format!("QoS {}: {}", q.as_u8(), e.describe(ctx.protocol)),
        });
        if !delivered {
            break;
        }
        best = Some(q.as_u8());
    }
    c.disconnect().await;
    let value = match (best, sub) {
        (Some(b), Some(s)) => json!(b.min(s)),
        _ => Value::Null,
    };
    let summary = format!("{} ({})", show(&value), parts.join("; "));
    Finding::new(key, label, value, summary).with(
        "subscribe at QoS 2, publish at QoS 0, 1 and 2",
        parts.join("; "),
        c.exchange(),
    )
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Null => "unknown".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

/// Retain: a retained PUBLISH, then a new subscriber: does it get it with
/// the RETAIN flag? The retained message is cleared afterwards.
pub async fn retain(ctx: &Ctx) -> Finding {
    let (key, label) = ("retain", "Retain");
    let mut a = match connected(ctx, key, label).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let topic = ctx.topic("retain");
    let stored = a
        .publish(publish(
            &topic,
            QoS::AtLeastOnce,
            true,
            Bytes::from_static(b"retained"),
        ))
        .await;
    a.disconnect().await;
    let mut exchange = a.exchange();
    let (value, outcome) = match stored {
        Err(e) => (
            false,
            format!("the retained PUBLISH: {}", e.describe(ctx.protocol)),
        ),
        Ok(code) if code >= 0x80 => (
            false,
            format!("the retained PUBLISH was answered 0x{code:02X}"),
        ),
        Ok(_) => {
            let mut b = match connected(ctx, key, label).await {
                Ok(c) => c,
                Err(f) => return f,
            };
            let codes = b
                .subscribe(&[&topic], QoS::AtLeastOnce, Properties::new())
                .await;
            let got = match granted(&codes) {
                Some(_) => b.delivery(&topic, ctx.opts.timeout).await.ok(),
                None => None,
            };
            // Clear it: an empty retained payload removes it.
            let _ = b
                .publish(publish(&topic, QoS::AtLeastOnce, true, Bytes::new()))
                .await;
            b.disconnect().await;
            exchange.extend(b.exchange());
            match got {
                Some(p) if p.retain => {
                    (true, "a new subscriber got it with RETAIN set".to_string())
                }
                Some(_) => (false, "a new subscriber got it without RETAIN".to_string()),
                None => (
                    false,
                    format!(
                        "a new subscriber got nothing ({})",
                        suback_text(&codes, ctx.protocol)
                    ),
                ),
            }
        }
    };
    Finding::new(
        key,
        label,
        json!(value),
        format!("{} ({outcome})", show(&json!(value))),
    )
    .with(
        "retained PUBLISH, then subscribe from a new connection",
        outcome,
        exchange,
    )
}

/// Subscribes to `filter`, publishes on `topic`, and says whether it came.
async fn delivered_through(
    ctx: &Ctx,
    key: &'static str,
    label: &'static str,
    filter: &str,
    topic: &str,
    properties: Properties,
) -> Result<(Option<mqtt_codec::Publish>, String, Client), Finding> {
    let mut c = connected(ctx, key, label).await?;
    let codes = c.subscribe(&[filter], QoS::AtLeastOnce, properties).await;
    let text = suback_text(&codes, ctx.protocol);
    if granted(&codes).is_none() {
        return Ok((None, format!("{filter}: {text}"), c));
    }
    let sent = c
        .publish(publish(
            topic,
            QoS::AtLeastOnce,
            false,
            Bytes::from_static(b"probe"),
        ))
        .await;
    let got = match sent {
        Ok(code) if code < 0x80 => c.delivery(topic, ctx.opts.timeout).await.ok(),
        _ => None,
    };
    let what = if got.is_some() {
        "delivered"
    } else {
        "not delivered"
    };
    Ok((
        got,
        format!("{filter}: {text}, PUBLISH on {topic} {what}"),
        c,
    ))
}

/// Wildcards: a `+` and a `#` subscription, each granted and delivering.
pub async fn wildcards(ctx: &Ctx) -> Finding {
    let (key, label) = ("wildcards", "Wildcard subscriptions");
    let mut ok = true;
    let mut parts = Vec::new();
    let mut f = Finding::new(key, label, Value::Null, String::new());
    for (filter_of, topic_of) in [("+", "x"), ("#", "x")] {
        let base = ctx.topic("wild");
        let (filter, topic) = (format!("{base}/{filter_of}"), format!("{base}/{topic_of}"));
        match delivered_through(ctx, key, label, &filter, &topic, Properties::new()).await {
            Ok((got, text, mut c)) => {
                c.disconnect().await;
                ok &= got.is_some();
                f = f.with(
                    format!("subscribe to {filter}, publish on {topic}"),
                    text.clone(),
                    c.exchange(),
                );
                parts.push(text);
            }
            Err(e) => return e,
        }
    }
    f.value = json!(ok);
    let _ = parts;
    f.summary = if ok {
        "yes (a `+` and a `#` subscription granted, each delivering)".into()
    } else {
        format!(
            "no ({})",
            f.evidence
                .iter()
                .map(|t| t.outcome.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    f
}

/// Shared subscriptions: `$share/GROUP/TOPIC` granted and delivering.
pub async fn shared(ctx: &Ctx) -> Finding {
    let (key, label) = ("shared_subscriptions", "Shared subscriptions");
    let topic = ctx.topic("shared");
    let filter = format!("$share/mhp/{topic}");
    match delivered_through(ctx, key, label, &filter, &topic, Properties::new()).await {
        Ok((got, text, mut c)) => {
            c.disconnect().await;
            let value = json!(got.is_some());
            let summary = if got.is_some() {
                "yes ($share/GROUP/TOPIC granted and delivering)".to_string()
            } else {
                format!("no ({text})")
            };
            Finding::new(key, label, value, summary).with(
                format!("subscribe to {filter}, publish on {topic}"),
                text,
                c.exchange(),
            )
        }
        Err(e) => e,
    }
}

/// Subscription identifiers (5.0): a subscription with identifier 42; the
/// delivery must carry it.
pub async fn subscription_identifiers(ctx: &Ctx) -> Finding {
    let (key, label) = ("subscription_identifiers", "Subscription identifiers (5.0)");
    if !ctx.v5() {
        return Finding::new(
            key,
            label,
            json!(false),
            "no: 5.0 only, and the broker does not speak 5.0".into(),
        );
    }
    let topic = ctx.topic("subid");
    let props = Properties(vec![Property::SubscriptionIdentifier(42)]);
    match delivered_through(ctx, key, label, &topic, &topic, props).await {
        Ok((got, text, mut c)) => {
            c.disconnect().await;
            let carried = got
                .as_ref()
                .is_some_and(|p| p.properties.subscription_identifiers().any(|i| i == 42));
            let value = json!(carried);
            let why = match (&got, carried) {
                (Some(_), true) => "delivered with Subscription Identifier 42".to_string(),
                (Some(_), false) => format!("{text}, without the identifier"),
                (None, _) => text,
            };
            Finding::new(
                key,
                label,
                value.clone(),
                format!("{} ({why})", show(&value)),
            )
            .with(
                "subscribe with Subscription Identifier 42, publish",
                why,
                c.exchange(),
            )
        }
        Err(e) => e,
    }
}

/// Topic Alias Maximum (5.0): announced in CONNACK, then tried: alias 1
/// set with a topic, then used alone. Where the maximum is 0, alias 1
/// must be refused (DISCONNECT 0x94, MQTT-3.3.2-9… on the client side).
pub async fn topic_alias(ctx: &Ctx, v: &Versions) -> Finding {
    let (key, label) = ("topic_alias_maximum", "Topic alias maximum (5.0)");
    let Some(ack) = &v.connack5 else {
        return Finding::new(
            key,
            label,
            json!(0),
            "0: 5.0 only, and the broker does not speak 5.0".into(),
        );
    };
    let max = ack.properties.topic_alias_maximum().unwrap_or(0);
    let mut c = match connected(ctx, key, label).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let topic = ctx.topic("alias");
    let _ = c
        .subscribe(&[&topic], QoS::AtLeastOnce, Properties::new())
        .await;
    let mut first = publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        Bytes::from_static(b"alias set"),
    );
    first.properties.push(Property::TopicAlias(1));
    let mut second = publish(
        "",
        QoS::AtLeastOnce,
        false,
        Bytes::from_static(b"alias used"),
    );
    second.properties.push(Property::TopicAlias(1));
    let a = c.publish(first).await;
    let works = match a {
        Ok(code) if code < 0x80 => {
            let one = c.delivery(&topic, ctx.opts.timeout).await.is_ok();
            let b = c.publish(second).await;
            one && matches!(b, Ok(code) if code < 0x80)
                && c.delivery(&topic, ctx.opts.timeout).await.is_ok()
        }
        _ => false,
    };
    let refusal = match &a {
        Err(e) => format!(": alias 1 answered {}", e.describe(Protocol::V5)),
        _ => String::new(),
    };
    c.disconnect().await;
    let outcome = if works {
        "alias 1 set, then used alone: both delivered".to_string()
    } else {
        format!("alias 1 not taken{refusal}")
    };
    let summary = format!("{max} announced ({outcome})");
    Finding::new(key, label, json!(max), summary).with(
        "PUBLISH with Topic Alias 1 and its topic, then alias 1 alone",
        outcome,
        c.exchange(),
    )
}

/// Receive Maximum (5.0): announced in CONNACK; tried by leaving that many
/// QoS 2 PUBLISH unreleased (each must get its PUBREC), then one more,
/// which the broker may refuse with DISCONNECT 0x93.
pub async fn receive_maximum(ctx: &Ctx, v: &Versions) -> Finding {
    let (key, label) = ("receive_maximum", "Receive maximum (5.0)");
    let Some(ack) = &v.connack5 else {
        return Finding::new(
            key,
            label,
            Value::Null,
            "5.0 only, and the broker does not speak 5.0".into(),
        );
    };
    let max = ack.properties.receive_maximum().unwrap_or(u16::MAX);
    if ack.properties.maximum_qos().is_some_and(|q| q < 2) {
        return Finding::new(
            key,
            label,
            json!(max),
            format!("{max} announced (not tried: only QoS 2 messages stay unacknowledged, and the broker takes no QoS 2)"),
        );
    }
    if max > ctx.opts.max_receive {
        return Finding::new(
            key,
            label,
            json!(max),
            format!(
                "{max} announced (not tried: above --max-receive {})",
                ctx.opts.max_receive
            ),
        );
    }
    let mut c = match connected(ctx, key, label).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let topic = ctx.topic("receive");
    let mut recs = 0u32;
    let mut end = String::new();
    for i in 0..=u32::from(max) {
        let mut p = publish(
            &topic,
            QoS::ExactlyOnce,
            false,
            Bytes::from_static(b"in flight"),
        );
        p.packet_id = c.id();
        let id = p.packet_id;
        if let Err(e) = c.send(Packet::Publish(p)).await {
            end = e.describe(Protocol::V5);
            break;
        }
        match c
            .expect(|x| matches!(x, Packet::PubRec(r) if r.packet_id == id))
            .await
        {
            Ok(Packet::PubRec(r)) if r.reason_code < 0x80 => recs += 1,
            Ok(Packet::PubRec(r)) => {
                end = format!("PUBREC 0x{:02X}", r.reason_code);
                break;
            }
            Ok(_) => {}
            Err(e) => {
                end = format!("PUBLISH {} answered: {}", i + 1, e.describe(Protocol::V5));
                break;
            }
        }
    }
    c.disconnect().await;
    let beyond = if end.is_empty() {
        "one more was accepted too".to_string()
    } else {
        end
    };
    let outcome = format!("{recs} unreleased QoS 2 PUBLISH got PUBREC; {beyond}");
    Finding::new(
        key,
        label,
        json!(max),
        format!("{max} announced ({outcome})"),
    )
    .with(
        format!("{} QoS 2 PUBLISH without PUBREL", u32::from(max) + 1),
        outcome,
        keep_ends(c.exchange()),
    )
}

/// The first and last lines of a long exchange.
pub(super) fn keep_ends(mut lines: Vec<Value>) -> Vec<Value> {
    const EACH: usize = 6;
    if lines.len() <= 2 * EACH + 1 {
        return lines;
    }
    let tail = lines.split_off(lines.len() - EACH);
    let cut = lines.len() - EACH;
    lines.truncate(EACH);
    lines.push(json!({ "dir": "…", "note": format!("{cut} lines left out") }));
    lines.extend(tail);
    lines
}
