//! `--persist DIR` survives SIGKILL: the broker runs as a real process, a
//! publisher streams QoS 1 (and QoS 2) messages to a persistent subscriber
//! that is offline, and the process is killed in the middle of the stream,
//! with messages in flight. A new process on the same directory must deliver
//! every message it acknowledged (QoS 1: PUBACK; QoS 2: PUBREC) — and each
//! QoS 2 message exactly once. Every wait has a deadline; nothing sleeps.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::Client;
use mqtt_codec::{Connect, Packet, Property, Protocol, PubResponse, Publish, QoS};

const BROKER: &str = env!("CARGO_BIN_EXE_reference-broker");
const PROMPT: Duration = Duration::from_secs(10);
/// Messages acknowledged before the kill (well below the offline queue limit).
const ACKED_BEFORE_KILL: usize = 300;
/// Messages sent without waiting for their acknowledgement.
const WINDOW: usize = 16;

/// A broker process on `dir`, listening on a port it chose.
fn start(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BROKER)
        .args(["--listen", "127.0.0.1:0", "--persist"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the broker starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the broker says where it listens");
    let addr = line
        .trim()
        .rsplit("://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

fn persistent(id: &str) -> Connect {
    let mut c = Connect {
        clean_start: false,
        keep_alive: 0,
        ..Connect::new(Protocol::V5, id)
    };
    c.properties.push(Property::SessionExpiryInterval(3600));
    c
}

fn message(seq: u16, qos: QoS) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: "durable/stream".into(),
        packet_id: seq,
        payload: Bytes::from(seq.to_string()),
        ..Publish::default()
    })
}

/// Streams messages at `qos` with [`WINDOW`] in flight until
/// [`ACKED_BEFORE_KILL`] are acknowledged, kills the broker with SIGKILL,
/// and returns every sequence number the broker acknowledged (the
/// acknowledgements already on their way count too).
async fn stream_and_kill(addr: SocketAddr, broker: &mut Child, qos: QoS) -> BTreeSet<u16> {
    let (mut publ, code, _) =
        Client::handshake(addr, Connect::new(Protocol::V5, "durable-pub"), PROMPT).await;
    assert_eq!(code, 0);
    let mut acked = BTreeSet::new();
    let mut in_flight = 0;
    let mut next: u16 = 1;
    let mut killed = false;
    loop {
        while !killed && in_flight < WINDOW {
            publ.send(&message(next, qos)).await;
            next += 1;
            in_flight += 1;
        }
        let Some(p) = publ.next_within(PROMPT).await else {
            assert!(
                killed,
                "the broker closed the publisher before it was killed"
            );
            return acked;
        };
        match p {
            Packet::PubAck(a) if qos == QoS::AtLeastOnce => {
                acked.insert(a.packet_id);
                in_flight -= 1;
            }
            Packet::PubRec(r) if qos == QoS::ExactlyOnce => {
                acked.insert(r.packet_id);
                if !killed {
                    publ.send(&Packet::PubRel(PubResponse::new(r.packet_id)))
                        .await;
                }
            }
            Packet::PubComp(_) if qos == QoS::ExactlyOnce => in_flight -= 1,
            other => panic!("unexpected {other:?}"),
        }
        if !killed && acked.len() >= ACKED_BEFORE_KILL {
            // SIGKILL: no shutdown path runs, nothing is flushed on the way out.
            broker.kill().expect("kill the broker");
            broker.wait().expect("reap the broker");
            killed = true;
        }
    }
}

/// Reconnects the subscriber and reads until every number in `acked` has
/// come, acknowledging each delivery; returns how often each number came.
async fn collect(addr: SocketAddr, acked: &BTreeSet<u16>) -> BTreeMap<u16, usize> {
    let (mut sub, code, present) = Client::handshake(addr, persistent("durable-sub"), PROMPT).await;
    assert_eq!(code, 0);
    assert!(present, "the subscriber's session survived the kill");
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    while !acked.iter().all(|n| seen.contains_key(n)) {
        match sub.recv_within(PROMPT).await {
            Packet::Publish(p) => {
                let n: u16 = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a numbered payload");
                *seen.entry(n).or_default() += 1;
                match p.qos {
                    QoS::AtLeastOnce => {
                        sub.send(&Packet::PubAck(PubResponse::new(p.packet_id)))
                            .await
                    }
                    QoS::ExactlyOnce => {
                        sub.send(&Packet::PubRec(PubResponse::new(p.packet_id)))
                            .await
                    }
                    QoS::AtMostOnce => panic!("a QoS 0 delivery of a QoS 1/2 message"),
                }
            }
            Packet::PubRel(r) => {
                sub.send(&Packet::PubComp(PubResponse::new(r.packet_id)))
                    .await
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Whatever is still queued comes at once: a ping's answer comes after it.
    sub.send(&Packet::PingReq).await;
    loop {
        match sub.recv_within(PROMPT).await {
            Packet::PingResp => break,
            Packet::Publish(p) => {
                let n: u16 = std::str::from_utf8(&p.payload)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("a numbered payload");
                *seen.entry(n).or_default() += 1;
            }
            _ => {}
        }
    }
    seen
}

async fn survives_sigkill(qos: QoS) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut first, addr) = start(dir.path());
    let (mut sub, code, _) = Client::handshake(addr, persistent("durable-sub"), PROMPT).await;
    assert_eq!(code, 0);
    sub.subscribe("durable/#", QoS::ExactlyOnce).await;
    drop(sub); // offline from here on: everything is queued in its session.

    let acked = stream_and_kill(addr, &mut first, qos).await;
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let (mut second, addr) = start(dir.path());
    let seen = collect(addr, &acked).await;
    let _ = second.kill();
    let _ = second.wait();

    let missing: Vec<u16> = acked
        .iter()
        .filter(|n| !seen.contains_key(n))
        .copied()
        .collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    if qos == QoS::ExactlyOnce {
        let twice: Vec<(u16, usize)> = seen
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, c)| (*n, *c))
            .collect();
        assert!(
            twice.is_empty(),
            "QoS 2 delivered more than once: {twice:?}"
        );
    }
}

#[tokio::test]
async fn every_acknowledged_qos_1_message_survives_sigkill() {
    survives_sigkill(QoS::AtLeastOnce).await;
}

#[tokio::test]
async fn every_acknowledged_qos_2_message_survives_sigkill_exactly_once() {
    survives_sigkill(QoS::ExactlyOnce).await;
}
