//! The connection-level tries: sessions and their expiry, keep alive, the
//! empty client id, and `$SYS`.

use mqtt_codec::{Packet, Properties, Property, QoS};
use serde_json::{json, Value};

use super::client::Client;
use super::features::{connected, granted, keep_ends, show, suback_text};
use super::{Ctx, Finding};

/// Sessions: the expiry granted for "never expires" (5.0: the CONNACK's
/// Session Expiry Interval where it lowers it) and whether a session with a
/// subscription is there when the client comes back (session present).
pub async fn session(ctx: &Ctx) -> Vec<Finding> {
    let (key, label) = ("session", "Persistent sessions");
    let id = ctx.client_id();
    let asked = u32::MAX;
    let mut connect = ctx.connect_as(ctx.protocol, id.clone());
    // 5.0: a clean start whose session outlives the connection (its
    // expiry); 3.x: Clean Session 0, which keeps it.
    connect.clean_start = ctx.v5();
    if ctx.v5() {
        connect
            .properties
            .push(Property::SessionExpiryInterval(asked));
    }
    let (acked, mut c) = Client::connect(&ctx.opts.target, connect.clone(), ctx.opts.timeout).await;
    let ack = match acked {
        Ok(a) => a,
        Err(e) => {
            let why = e.describe(ctx.protocol);
            return vec![
                Finding::new(key, label, Value::Null, format!("unknown: {why}")).with(
                    "CONNECT",
                    why,
                    c.exchange(),
                ),
            ];
        }
    };
    let granted = ack.properties.session_expiry_interval().unwrap_or(asked);
    let topic = ctx.topic("session");
    let _ = c
        .subscribe(&[&topic], QoS::AtLeastOnce, Properties::new())
        .await;
    c.disconnect().await;
    let mut exchange = c.exchange();
    let mut again = connect.clone();
    again.clean_start = false;
    let (back, mut c) = Client::connect(&ctx.opts.target, again, ctx.opts.timeout).await;
    let present = matches!(&back, Ok(a) if a.session_present);
    c.disconnect().await;
    exchange.extend(c.exchange());
    // Remove it: a clean start with expiry 0 ends the session.
    let mut clean = ctx.connect_as(ctx.protocol, id);
    clean.clean_start = true;
    let (_, mut c) = Client::connect(&ctx.opts.target, clean, ctx.opts.timeout).await;
    c.disconnect().await;
    let outcome = if present {
        "session present on reconnecting".to_string()
    } else {
        match &back {
            Ok(_) => "no session present on reconnecting".into(),
            Err(e) => format!("reconnecting: {}", e.describe(ctx.protocol)),
        }
    };
    let mut out = vec![Finding::new(
        key,
        label,
        json!(present),
        format!("{} ({outcome})", show(&json!(present))),
    )
    .with(
        "connect with a session, subscribe, disconnect, reconnect without clean start",
        outcome,
        exchange.clone(),
    )];
    if ctx.v5() {
        let summary = if granted == asked {
            format!("{granted} (never expires) granted as asked")
        } else {
            format!("{granted} s: the CONNACK lowered the {asked} asked")
        };
        out.push(
            Finding::new(
                "session_expiry_maximum",
                "Session expiry maximum (5.0)",
                json!(granted),
                summary,
            )
            .with(
                "CONNECT with Session Expiry Interval 4294967295",
                format!("{granted}"),
                exchange.into_iter().take(2).collect(),
            ),
        );
    }
    out
}

/// Keep alive: CONNECTs asking 0, 1 and 65535 s; a 5.0 broker that
/// overrides one says Server Keep Alive (MQTT-3.2.2-21), a 3.x one may
/// refuse it. The range honoured as asked goes to the profile.
pub async fn keep_alive(ctx: &Ctx) -> Finding {
    let (key, label) = ("keep_alive", "Keep alive honoured");
    let mut f = Finding::new(key, label, Value::Null, String::new());
    // Per value asked: Some(what it became), None when refused.
    let mut got = Vec::new();
    let mut parts = Vec::new();
    for asked in [0u16, 1, u16::MAX] {
        let mut connect = ctx.connect();
        connect.keep_alive = asked;
        let (acked, mut c) = Client::connect(&ctx.opts.target, connect, ctx.opts.timeout).await;
        c.disconnect().await;
        let (became, outcome) = match &acked {
            Ok(a) => match a.properties.server_keep_alive() {
                Some(k) if k != asked => (Some(k), format!("Server Keep Alive {k} instead")),
                _ => (Some(asked), "taken as asked".to_string()),
            },
            Err(e) => (None, format!("refused: {}", e.describe(ctx.protocol))),
        };
        parts.push(format!("{asked}: {outcome}"));
        got.push((asked, became));
        f = f.with(
            format!("CONNECT with keep alive {asked}"),
            outcome,
            c.exchange(),
        );
    }
    let honoured = |a: u16| got.iter().any(|&(x, b)| x == a && b == Some(a));
    let minimum = if honoured(0) {
        0
    } else if honoured(1) {
        1
    } else {
        got.iter().find(|g| g.0 == 1).and_then(|g| g.1).unwrap_or(1)
    };
    let maximum = if honoured(u16::MAX) {
        u16::MAX
    } else {
        got.iter()
            .find(|g| g.0 == u16::MAX)
            .and_then(|g| g.1)
            .unwrap_or(minimum)
    };
    f.value = json!({ "minimum": minimum, "maximum": maximum });
    f.summary = format!("{minimum}..={maximum} s (asked {})", parts.join(", "));
    f
}

/// `$SYS`: a `$SYS/#` subscription and the topics that arrive within
/// `--sys-wait`.
pub async fn sys(ctx: &Ctx) -> Finding {
    let (key, label) = ("sys_topics", "$SYS topics");
    let mut c = match connected(ctx, key, label).await {
        Ok(c) => c,
        Err(f) => return f,
    };
    let codes = c
        .subscribe(&["$SYS/#"], QoS::AtMostOnce, Properties::new())
        .await;
    let mut topics: Vec<String> = Vec::new();
    if granted(&codes).is_some() {
        let deadline = tokio::time::Instant::now() + ctx.opts.sys_wait;
        let _ = c
            .expect_until(deadline, |p| matches!(p, Packet::Publish(_)))
            .await
            .map(|p| {
                if let Packet::Publish(p) = p {
                    topics.push(p.topic.to_string());
                }
            });
        // What else arrives at once (retained $SYS messages come together).
        let more = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        // Counted up to a bound: a broker may send $SYS without end.
        while topics.len() < super::client::KEPT_DELIVERIES {
            match c
                .expect_until(more, |p| matches!(p, Packet::Publish(_)))
                .await
            {
                Ok(Packet::Publish(p)) => topics.push(p.topic.to_string()),
                _ => break,
            }
        }
        topics.extend(c.delivered().into_iter().map(|p| p.topic.to_string()));
    }
    c.disconnect().await;
    let value = json!(!topics.is_empty());
    let outcome = if topics.is_empty() {
        format!(
            "nothing within {:?} ({})",
            ctx.opts.sys_wait,
            suback_text(&codes, ctx.protocol)
        )
    } else {
        let first: Vec<&str> = topics.iter().take(3).map(String::as_str).collect();
        format!("{} message(s), e.g. {}", topics.len(), first.join(", "))
    };
    Finding::new(
        key,
        label,
        value.clone(),
        format!("{} ({outcome})", show(&value)),
    )
    .with("subscribe to $SYS/#", outcome, keep_ends(c.exchange()))
}

/// An empty client id with clean start: refused, or accepted (5.0: with the
/// Assigned Client Identifier, MQTT-3.2.2-16).
pub async fn empty_client_id(ctx: &Ctx) -> Finding {
    let (key, label) = ("empty_client_id", "Empty client id");
    let connect = ctx.connect_as(ctx.protocol, String::new());
    let (acked, mut c) = Client::connect(&ctx.opts.target, connect, ctx.opts.timeout).await;
    c.disconnect().await;
    let (value, outcome) = match &acked {
        Ok(a) => match a.properties.assigned_client_identifier() {
            Some(id) => (
                json!({"accepted": true, "assigned": &*id}),
                format!("accepted, assigned {:?}", &*id),
            ),
            None => (
                json!({"accepted": true, "assigned": null}),
                "accepted".to_string(),
            ),
        },
        Err(e) => (
            json!({"accepted": false, "assigned": null}),
            format!("refused: {}", e.describe(ctx.protocol)),
        ),
    };
    Finding::new(key, label, value, outcome.clone()).with(
        "CONNECT with client id \"\"",
        outcome,
        c.exchange(),
    )
}
