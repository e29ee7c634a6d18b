//! `mqtt-harness probe`: what a broker supports and its limits, found by
//! trying, each finding with the exchange that shows it.
//!
//! - [`client`]: the client every try uses (a raw [`crate::client::Session`],
//!   with the probe's answers and its log turned into evidence);
//! - [`features`]: protocol levels, CONNACK properties, QoS, retain,
//!   wildcards, shared subscriptions, subscription identifiers, topic
//!   aliases, receive maximum;
//! - [`sessions`]: sessions and expiry, keep alive, the empty client id, `$SYS`;
//! - [`limits`]: binary searches on sizes (packet and payload, topic length
//!   and levels, client id length) and the client id characters;
//! - [`output`]: the console, JSON and the target profile it writes.
//!
//! Every try has a deadline (`--timeout`); a search stops at the spec's
//! maximum or at a cap (`--max-size`…), so a probe ends in seconds. The
//! tries after the protocol levels are independent and run at once.

pub mod client;
pub mod features;
pub mod limits;
pub mod output;
pub mod sessions;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::{Connect, Protocol};
use serde_json::Value;

use crate::net::Target;

/// What to probe and how far.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// The deadline of each wait for an answer.
    pub timeout: Duration,
    /// The largest payload the size search tries (bytes).
    pub max_size: usize,
    /// The longest topic the topic length search tries (at most 65535).
    pub max_topic_length: usize,
    /// The most topic levels the level search tries.
    pub max_topic_levels: usize,
    /// The longest client id the client id search tries (at most 65535).
    pub max_client_id: usize,
    /// The most unacknowledged QoS 2 PUBLISH sent to check Receive Maximum.
    pub max_receive: u16,
    /// How long to wait for a `$SYS` message.
    pub sys_wait: Duration,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Options {
    pub fn new(target: Target) -> Options {
        Options {
            target,
            timeout: Duration::from_secs(2),
            max_size: 4 * 1024 * 1024,
            max_topic_length: 65_535,
            max_topic_levels: 1024,
            max_client_id: 65_535,
            max_receive: 1000,
            sys_wait: Duration::from_secs(2),
            username: None,
            password: None,
        }
    }
}

/// One try behind a finding: what was done, what came of it, and the
/// packets both ways.
#[derive(Debug, Clone)]
pub struct Try {
    pub what: String,
    pub outcome: String,
    pub exchange: Vec<Value>,
}

/// One thing learnt about the broker.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Stable key of the JSON output (`maximum_qos`).
    pub key: &'static str,
    /// For people (`Maximum QoS`).
    pub label: &'static str,
    /// The value found (`null`: could not be told).
    pub value: Value,
    /// The value and why, in one line.
    pub summary: String,
    pub evidence: Vec<Try>,
}

impl Finding {
    pub fn new(key: &'static str, label: &'static str, value: Value, summary: String) -> Finding {
        Finding {
            key,
            label,
            value,
            summary,
            evidence: Vec::new(),
        }
    }

    pub fn with(
        mut self,
        what: impl Into<String>,
        outcome: impl Into<String>,
        exchange: Vec<Value>,
    ) -> Finding {
        self.evidence.push(Try {
            what: what.into(),
            outcome: outcome.into(),
            exchange,
        });
        self
    }
}

/// Everything a probe found.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub findings: Vec<Finding>,
    pub duration: Duration,
}

impl Report {
    pub fn get(&self, key: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.key == key)
    }

    /// The value of `key`, `null` when absent.
    pub fn value(&self, key: &str) -> Value {
        self.get(key).map_or(Value::Null, |f| f.value.clone())
    }
}

/// The target answered no CONNECT of any version: what each got.
#[derive(Debug, Clone)]
pub struct NotMqtt {
    pub finding: Finding,
}

/// What the tries share: the options, the version they speak, and unique
/// names so that tries in parallel (and other clients) do not meet.
pub struct Ctx {
    pub opts: Options,
    /// The version the tries after the first speak: 5.0 where the broker
    /// speaks it (it announces most), else 3.1.1, else 3.1.
    pub protocol: Protocol,
    nonce: String,
    counter: AtomicU32,
}

impl Ctx {
    pub fn new(opts: Options, protocol: Protocol) -> Ctx {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Ctx {
            opts,
            protocol,
            nonce: format!("{:06x}", (nanos ^ std::process::id()) & 0xFF_FFFF),
            counter: AtomicU32::new(0),
        }
    }

    /// A client id of at most 23 characters (3.1's limit), unique to the probe.
    pub fn client_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("mhp{}{n}", self.nonce)
    }

    /// A topic no one else uses, of two levels (`mhp-NONCE/WHATn`), so
    /// that a broker's small topic limits do not spoil the feature tries.
    pub fn topic(&self, what: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("mhp-{}/{what}{n}", self.nonce)
    }

    /// A clean CONNECT of the probe's version, with the login given.
    pub fn connect(&self) -> Connect {
        self.connect_as(self.protocol, self.client_id())
    }

    pub fn connect_as(&self, protocol: Protocol, client_id: String) -> Connect {
        let mut c = Connect::new(protocol, client_id);
        c.keep_alive = 60;
        c.username = self.opts.username.as_deref().map(Into::into);
        c.password = self
            .opts
            .password
            .as_deref()
            .map(|p| bytes::Bytes::copy_from_slice(p.as_bytes()));
        c
    }

    pub fn v5(&self) -> bool {
        self.protocol.is_v5()
    }
}

/// Probes the target: the protocol levels first (the rest speak the best
/// of them), then every other try at once.
pub async fn probe(opts: Options) -> Result<Report, NotMqtt> {
    let started = tokio::time::Instant::now();
    let versions = features::protocols(&opts).await;
    let Some(protocol) = features::best(&versions) else {
        return Err(NotMqtt {
            finding: versions.finding,
        });
    };
    let ctx = Arc::new(Ctx::new(opts, protocol));
    let c = &*ctx;
    // All at once: the probe takes as long as its slowest try.
    let (
        (connack, qos, retain, wildcards, shared, subids),
        (alias, receive, session, keep_alive, sys, empty_id),
        (sizes, topics, id_length, id_chars),
    ) = tokio::join!(
        async {
            tokio::join!(
                features::connack(c, &versions),
                features::qos(c),
                features::retain(c),
                features::wildcards(c),
                features::shared(c),
                features::subscription_identifiers(c),
            )
        },
        async {
            tokio::join!(
                features::topic_alias(c, &versions),
                features::receive_maximum(c, &versions),
                sessions::session(c),
                sessions::keep_alive(c),
                sessions::sys(c),
                sessions::empty_client_id(c),
            )
        },
        async {
            tokio::join!(
                limits::sizes(c),
                limits::topics(c),
                limits::client_id_length(c),
                limits::client_id_chars(ctx.clone()),
            )
        },
    );
    let mut findings = vec![versions.finding];
    findings.extend(connack);
    findings.extend([qos, retain, wildcards, shared, subids, alias, receive]);
    findings.extend(sizes);
    findings.extend(topics);
    findings.extend([id_length, id_chars, empty_id]);
    findings.extend(session);
    findings.extend([keep_alive, sys]);
    Ok(Report {
        target: ctx.opts.target.to_string(),
        findings,
        duration: started.elapsed(),
    })
}
