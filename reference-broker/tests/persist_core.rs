//! Persistence in the core: `Broker::snapshot` → JSON → `Broker::restore`
//! keeps sessions, subscriptions, queued and in-flight messages, QoS 2 ids
//! awaiting PUBREL and retained messages; hostile snapshots are refused with
//! a clear error, never a panic.

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::Net;
use mqtt_codec::{
    ByteString, Connect, Packet, Properties, Property, Protocol, PubResponse, Publish, QoS,
    Subscribe, Subscription, SubscriptionOptions,
};
use reference_broker::broker::{journal, Clocks, Snapshot};
use reference_broker::{Broker, Config, ConnId};

const V311: Protocol = Protocol::V3_1_1;
const V5: Protocol = Protocol::V5;

impl Net {
    /// Opens a connection with `c`; expects a successful CONNACK and returns
    /// its session-present flag.
    fn connect_ok(&mut self, c: Connect) -> (ConnId, bool) {
        match self.connect(c) {
            (conn, Packet::ConnAck(a)) if a.code == 0 => (conn, a.session_present),
            (_, other) => panic!("expected a successful CONNACK, got {other:?}"),
        }
    }

    fn clocks(&self) -> Clocks {
        Clocks {
            now: self.now,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }
}

fn persistent(protocol: Protocol, id: &str) -> Connect {
    let mut c = Connect {
        clean_start: false,
        keep_alive: 0,
        ..Connect::new(protocol, id)
    };
    if protocol == V5 {
        c.properties.push(Property::SessionExpiryInterval(3600));
    }
    c
}

fn publish(topic: &str, payload: &'static str, qos: QoS, id: u16) -> Packet {
    let mut properties = Properties::new();
    properties.push(Property::UserProperty("k".into(), "v".into()));
    properties.push(Property::ContentType("text/plain".into()));
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id: id,
        properties,
        payload: Bytes::from_static(payload.as_bytes()),
        ..Publish::default()
    })
}

/// A new broker `later` after `old` (on both clocks), restored from `snapshot`.
fn restart(old: &Net, later: Duration, snapshot: Snapshot) -> Net {
    let mut net = Net::new();
    net.now = old.now + later;
    let clocks = Clocks {
        now: net.now,
        wall: old.clocks().wall + later,
    };
    net.broker.restore(snapshot, clocks).expect("restores");
    net
}

/// A broker with a bit of everything worth keeping.
fn populated() -> (Net, Snapshot) {
    let mut net = Net::new();
    let (sub, _) = net.connect_ok(persistent(V5, "sub"));
    let mut props = Properties::new();
    props.push(Property::SubscriptionIdentifier(7));
    net.send(
        sub,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: props,
            filters: vec![Subscription {
                filter: "t/#".into(),
                options: SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: 2,
                },
            }],
        }),
    );
    assert!(matches!(&net.recv(sub)[..], [Packet::SubAck(_)]));
    let (publ, _) = net.connect_ok(persistent(V311, "pub"));
    net.send(publ, publish("t/1", "one", QoS::AtLeastOnce, 1));
    net.send(publ, publish("t/2", "two", QoS::ExactlyOnce, 2));
    net.send(publ, Packet::PubRel(PubResponse::new(2)));
    // sub gets both, acknowledges neither fully: t/2 reaches the PUBREL stage.
    let got = net.recv(sub);
    let ids: Vec<u16> = got
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id,
            other => panic!("expected PUBLISH, got {other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    net.send(sub, Packet::PubRec(PubResponse::new(ids[1])));
    assert!(matches!(&net.recv(sub)[..], [Packet::PubRel(_)]));
    net.drop_conn(sub);
    // Offline: queued.
    net.send(publ, publish("t/3", "three", QoS::AtLeastOnce, 3));
    // A QoS 2 message from pub awaiting PUBREL.
    net.send(publ, publish("t/4", "four", QoS::ExactlyOnce, 9));
    let mut r = Publish {
        retain: true,
        topic: "r/x".into(),
        payload: Bytes::from_static(b"kept"),
        ..Publish::default()
    };
    r.properties.push(Property::MessageExpiryInterval(600));
    net.send(publ, Packet::Publish(r));
    net.drop_conn(publ);
    // A clean session is not kept.
    let (clean, _) = net.connect_ok(Connect {
        keep_alive: 0,
        ..Connect::new(V311, "clean")
    });
    let _ = clean;
    let snapshot = net.broker.snapshot(net.clocks());
    (net, snapshot)
}

#[test]
fn round_trip_through_json() {
    let (net, snapshot) = populated();
    assert_eq!(
        snapshot
            .sessions
            .iter()
            .map(|s| s.client_id.as_str())
            .collect::<Vec<_>>(),
        ["pub", "sub"]
    );
    let json = snapshot.to_json();
    let back = Snapshot::from_json(&json).expect("parses");
    assert_eq!(back, snapshot);
    let mut restored = Broker::new(Config::default());
    restored.restore(back, net.clocks()).expect("restores");
    assert_eq!(restored.snapshot(net.clocks()), snapshot);
    assert_eq!(restored.session_count(), 2);
    assert_eq!(restored.retained_count(), 1);
}

#[test]
fn restored_broker_resumes_everything() {
    let (old, snapshot) = populated();
    // A minute later, in a new process.
    let json = snapshot.to_json();
    let mut net = restart(
        &old,
        Duration::from_secs(60),
        Snapshot::from_json(&json).expect("parses"),
    );

    let (sub, present) = net.connect_ok(persistent(V5, "sub"));
    assert!(present, "the session survived");
    let got = net.recv(sub);
    // t/4 was routed when it arrived (before PUBREL), so it is queued too.
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        matches!(&got[3], Packet::Publish(p) if &*p.topic == "t/4" && p.qos == QoS::ExactlyOnce)
    );
    match &got[0] {
        Packet::Publish(p) => {
            assert!(p.dup, "a re-sent PUBLISH has DUP set");
            assert_eq!(&*p.topic, "t/1");
            assert_eq!(
                p.properties.subscription_identifiers().collect::<Vec<_>>(),
                [7]
            );
            assert_eq!(p.properties.user_properties().count(), 1);
        }
        other => panic!("expected the in-flight PUBLISH, got {other:?}"),
    }
    assert!(matches!(got[1], Packet::PubRel(_)), "{:?}", got[1]);
    match &got[2] {
        Packet::Publish(p) => {
            assert!(!p.dup);
            assert_eq!(&*p.topic, "t/3");
            assert_eq!(&p.payload[..], b"three");
            assert_eq!(
                p.properties.subscription_identifiers().collect::<Vec<_>>(),
                [7]
            );
        }
        other => panic!("expected the queued PUBLISH, got {other:?}"),
    }

    // The QoS 2 id acknowledged with PUBREC is still known: PUBCOMP success.
    let (publ, present) = net.connect_ok(persistent(V311, "pub"));
    assert!(present);
    net.send(publ, Packet::PubRel(PubResponse::new(9)));
    assert_eq!(net.recv(publ), [Packet::PubComp(PubResponse::new(9))]);

    // The retained message, its expiry reduced by the minute that passed.
    let (watch, _) = net.connect_ok(Connect {
        keep_alive: 0,
        ..Connect::new(V5, "watch")
    });
    net.send(
        watch,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: ByteString::from("r/#"),
                options: SubscriptionOptions::qos(QoS::AtMostOnce),
            }],
        }),
    );
    let got = net.recv(watch);
    match &got[..] {
        [Packet::SubAck(_), Packet::Publish(p)] => {
            assert_eq!(&p.payload[..], b"kept");
            assert!(p.retain);
            let left = p.properties.message_expiry_interval().expect("expiry");
            assert!((530..=540).contains(&left), "{left}");
        }
        other => panic!("expected SUBACK and the retained message, got {other:?}"),
    }
}

#[test]
fn offline_session_expiry_counts_across_restart() {
    let (old, snapshot) = populated();
    // Two hours later the one-hour sessions are gone.
    let mut net = restart(&old, Duration::from_secs(7200), snapshot);
    net.broker.tick(net.now);
    net.pump();
    // "pub" (3.1.1, never expires) stays; "sub" (5.0, one hour) is gone.
    assert_eq!(net.broker.session_count(), 1);
    let (_, present) = net.connect_ok(persistent(V5, "sub"));
    assert!(!present);
}

#[test]
fn corrupt_snapshots_are_refused_clearly() {
    let (net, snapshot) = populated();
    let json = snapshot.to_json();
    // Every truncation: an error, never a panic.
    for n in 0..json.len() {
        assert!(Snapshot::from_json(&json[..n]).is_err(), "prefix {n}");
    }
    let e = Snapshot::from_json(b"{\"format\":1,\"bogus\":2}").unwrap_err();
    assert!(e.contains("bogus"), "{e}");
    let e = Snapshot::from_json(&[b'['; 10_000]).unwrap_err();
    assert!(e.contains("recursion") || e.contains("line"), "{e}");

    let restore = |edit: &dyn Fn(&mut Snapshot)| {
        let mut s = snapshot.clone();
        edit(&mut s);
        Broker::new(Config::default())
            .restore(s, net.clocks())
            .unwrap_err()
    };
    let e = restore(&|s| s.format = 99);
    assert!(e.contains("format 99"), "{e}");
    let e = restore(&|s| s.sessions[1].protocol = 7);
    assert!(
        e.contains("\"sub\"") && e.contains("protocol level 7"),
        "{e}"
    );
    let e = restore(&|s| s.sessions[1].inflight[0].publish = "!!".into());
    assert!(e.contains("in-flight") && e.contains("base64"), "{e}");
    let e = restore(&|s| s.sessions[1].inflight[0].publish = "MAA=".into());
    assert!(e.contains("in-flight"), "{e}");
    let e = restore(&|s| s.sessions[1].subscriptions[0].filter = "a/#/b".into());
    assert!(e.contains("a/#/b"), "{e}");
    let e = restore(&|s| {
        let q = s.sessions[1].queue[0].clone();
        s.sessions[1].queue = vec![q; 1001];
    });
    assert!(e.contains("max_queued_messages"), "{e}");
    let e = restore(&|s| {
        let d = s.sessions[0].clone();
        s.sessions.push(d);
    });
    assert!(e.contains("twice"), "{e}");
    let e = restore(&|s| s.retained[0].publish = "MAA=".into());
    assert!(e.contains("retained message 1"), "{e}");
}

#[test]
fn delayed_will_survives_restart() {
    let mut net = Net::new();
    let (watch, _) = net.connect_ok(persistent(V5, "watch"));
    net.send(
        watch,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: ByteString::from("will/#"),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
        }),
    );
    net.drop_conn(watch);
    let mut c = persistent(V5, "dying");
    let mut will_props = Properties::new();
    will_props.push(Property::WillDelayInterval(30));
    c.will = Some(mqtt_codec::Will {
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: will_props,
        topic: "will/dying".into(),
        payload: Bytes::from_static(b"gone"),
    });
    let (dying, _) = net.connect_ok(c);
    net.drop_conn(dying);
    let snapshot = net.broker.snapshot(net.clocks());
    assert!(snapshot.sessions.iter().any(|s| s.pending_will.is_some()));

    // Restart ten seconds later; the will is due twenty seconds after that.
    let json = snapshot.to_json();
    let mut next = restart(
        &net,
        Duration::from_secs(10),
        Snapshot::from_json(&json).expect("parses"),
    );
    assert_eq!(
        next.broker.poll_timeout(),
        Some(next.now + Duration::from_secs(20))
    );
    next.now += Duration::from_secs(20);
    next.broker.tick(next.now);
    next.pump();
    let (watch, present) = next.connect_ok(persistent(V5, "watch"));
    assert!(present);
    match &next.recv(watch)[..] {
        [Packet::Publish(p)] => assert_eq!(&p.payload[..], b"gone"),
        other => panic!("expected the will, got {other:?}"),
    }
}

#[test]
fn largest_message_of_a_v311_client_survives() {
    // A 3.1.1 PUBLISH at exactly the packet size limit grows when kept as 5.0.
    let config = Config {
        max_packet_size: 1000,
        ..Config::default()
    };
    let mut net = Net::new();
    net.broker = Broker::new(config.clone());
    let (sub, _) = net.connect_ok(persistent(V311, "sub"));
    net.send(
        sub,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: ByteString::from("big"),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            }],
        }),
    );
    net.drop_conn(sub);
    let (publ, _) = net.connect_ok(Connect::new(V311, "pub"));
    // 3 bytes fixed header + 2 + 3 topic + 2 packet id + payload = 1000.
    let payload: &'static [u8] = Box::leak(vec![b'x'; 990].into_boxed_slice());
    let p = Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        topic: "big".into(),
        packet_id: 1,
        payload: Bytes::from_static(payload),
        ..Publish::default()
    });
    assert_eq!(mqtt_codec::encoded_len(&p, V311).expect("encodable"), 1000);
    net.send(publ, p);
    assert!(matches!(&net.recv(publ)[..], [Packet::PubAck(_)]));
    let snapshot = net.broker.snapshot(net.clocks());
    let mut restored = Broker::new(config);
    restored
        .restore(snapshot, net.clocks())
        .expect("the stored message fits");
}

#[test]
fn mutated_snapshots_never_panic() {
    let (net, snapshot) = populated();
    let json = snapshot.to_json();
    // A small deterministic generator: the same mutations on every run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"0123456789\"{}[],:-.eE+/=tfnaluAZ\\ ";
    let mut restored = 0;
    for _ in 0..3000 {
        let mut bytes = json.clone();
        for _ in 0..=(next() % 3) {
            let i = (next() % bytes.len() as u64) as usize;
            bytes[i] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        let Ok(s) = Snapshot::from_json(&bytes) else {
            continue;
        };
        let mut broker = Broker::new(Config::default());
        if broker.restore(s, net.clocks()).is_ok() {
            restored += 1;
            broker.tick(net.now + Duration::from_secs(1));
            let _ = broker.snapshot(net.clocks());
            // Resuming the sessions re-sends and drains what was restored.
            for (protocol, id) in [(V5, "sub"), (V311, "pub")] {
                if let Some(conn) = broker.open(net.now) {
                    broker.packet(
                        conn,
                        Packet::Connect(Box::new(persistent(protocol, id))),
                        net.now,
                    );
                    broker.packet(conn, Packet::PubRel(PubResponse::new(9)), net.now);
                }
            }
            while broker.poll_action().is_some() {}
        }
    }
    // Some mutations only change values; they must have come through too.
    assert!(restored > 0);
}

/// The journal's records, replayed onto the snapshot they continue, give
/// the state; a batch cut short (a crash during the write) is left out as
/// a whole; a damaged record before a commit stops the replay, naming its
/// line.
#[test]
fn the_journal_replays_whole_batches_only() {
    let (mut net, start) = populated();
    let clocks = net.clocks();
    let mut journal = net.broker.start_journal(clocks);
    // Batch 1: the subscriber comes back (its in-flight messages are sent
    // again) and acknowledges one; a retained message is cleared.
    let (sub, present) = net.connect_ok(persistent(V5, "sub"));
    assert!(present);
    let resent = net.recv(sub);
    let id = resent
        .iter()
        .find_map(|p| match p {
            Packet::Publish(p) if p.qos == QoS::AtLeastOnce => Some(p.packet_id),
            _ => None,
        })
        .expect("the QoS 1 message is sent again");
    net.send(sub, Packet::PubAck(PubResponse::new(id)));
    let (publ, _) = net.connect_ok(persistent(V311, "pub"));
    net.send(
        publ,
        Packet::Publish(Publish {
            retain: true,
            topic: "r/x".into(),
            ..Publish::default()
        }),
    );
    let mut log = Vec::new();
    assert!(net.broker.journal(&mut journal, clocks, &mut log));
    let after_first = net.broker.snapshot(clocks);
    // Batch 2: a new message for the subscriber.
    net.send(publ, publish("t/5", "five", QoS::AtLeastOnce, 5));
    let first_len = log.len();
    assert!(net.broker.journal(&mut journal, clocks, &mut log));
    let after_second = net.broker.snapshot(clocks);
    assert_ne!(after_first, after_second);

    // Where the search for a free packet identifier starts is journaled
    // with the rest of a session only (see `journal.rs`).
    let same = |mut replayed: Snapshot, state: &Snapshot| {
        for (a, b) in replayed.sessions.iter_mut().zip(&state.sessions) {
            a.next_packet_id = b.next_packet_id;
        }
        assert_eq!(&replayed, state);
    };
    let replay = |bytes: &[u8]| {
        let mut s = start.clone();
        let done = journal::replay(&mut s, bytes).expect("replays");
        (s, done)
    };
    let (whole, done) = replay(&log);
    assert_eq!(done.batches, 2);
    assert_eq!(done.discarded, 0);
    same(whole, &after_second);
    // Cut anywhere inside the second batch: the first batch only.
    for cut in first_len..log.len() {
        let (s, done) = replay(&log[..cut]);
        assert_eq!(done.batches, 1, "cut at {cut}");
        same(s, &after_first);
    }
    // A damaged record that a commit follows is an error naming its line.
    let lines_before = log[..first_len].iter().filter(|&&b| b == b'\n').count();
    let mut damaged = log.clone();
    damaged[first_len + 2] = b'#';
    let mut s = start.clone();
    let e = journal::replay(&mut s, &damaged).expect_err("refused");
    assert!(
        e.contains(&format!("line {}", lines_before + 1)) && e.contains("not a journal record"),
        "{e}"
    );
    // A message for a session the journal never opened.
    let mut s = start.clone();
    let stray = b"{\"op\":\"done\",\"client_id\":\"nobody\",\"seq\":1}\n{\"op\":\"commit\"}\n";
    let e = journal::replay(&mut s, stray).expect_err("refused");
    assert!(e.contains("line 1") && e.contains("\"nobody\""), "{e}");
}

/// A message sent from the queue is journaled as `sent` (named, not
/// written again), and replay rebuilds the PUBLISH the broker sent: with
/// its properties and the subscription's identifier towards a 5.0 client,
/// without them towards a 3.1.1 one.
#[test]
fn a_message_sent_from_the_queue_replays_as_it_was_sent() {
    let mut net = Net::with(Config {
        max_inflight: 2,
        ..Config::default()
    });
    let subscribe = |net: &mut Net, conn: ConnId, with_id: bool| {
        let mut properties = Properties::new();
        if with_id {
            properties.push(Property::SubscriptionIdentifier(7));
        }
        net.send(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                properties,
                filters: vec![Subscription {
                    filter: "t/#".into(),
                    options: SubscriptionOptions::qos(QoS::AtLeastOnce),
                }],
            }),
        );
        assert!(matches!(&net.recv(conn)[..], [Packet::SubAck(_)]));
    };
    // A 5.0 subscriber that takes one message at a time, a 3.1.1 one that
    // takes the broker's window (2).
    let mut c = persistent(V5, "five");
    c.properties.push(Property::ReceiveMaximum(1));
    let (five, _) = net.connect_ok(c);
    subscribe(&mut net, five, true);
    let (three, _) = net.connect_ok(persistent(V311, "three"));
    subscribe(&mut net, three, false);
    let clocks = net.clocks();
    let start = net.broker.snapshot(clocks);
    let mut journal = net.broker.start_journal(clocks);
    let (publ, _) = net.connect_ok(Connect::new(V5, "pub"));
    for i in 1..=4 {
        net.send(publ, publish("t/x", "payload", QoS::AtLeastOnce, i));
    }
    let mut log = Vec::new();
    assert!(net.broker.journal(&mut journal, clocks, &mut log));
    // Each acknowledges its first message: the next leaves the queue.
    for conn in [five, three] {
        let first = net
            .recv(conn)
            .iter()
            .find_map(|p| match p {
                Packet::Publish(p) => Some(p.packet_id),
                _ => None,
            })
            .expect("a message in flight");
        net.send(conn, Packet::PubAck(PubResponse::new(first)));
    }
    let sent_from = log.len();
    assert!(net.broker.journal(&mut journal, clocks, &mut log));
    let second = String::from_utf8_lossy(&log[sent_from..]).into_owned();
    assert!(
        second.contains(r#""op":"sent","client_id":"five""#)
            && second.contains(r#""op":"sent","client_id":"three""#)
            && !second.contains(r#""op":"inflight""#),
        "{second}"
    );
    let mut replayed = start.clone();
    journal::replay(&mut replayed, &log).expect("replays");
    let state = net.broker.snapshot(clocks);
    for (a, b) in replayed.sessions.iter_mut().zip(&state.sessions) {
        a.next_packet_id = b.next_packet_id;
    }
    assert_eq!(replayed, state);
}
