//! Idle connections give up their tasks (`server/lounge.rs`) and get one
//! back for whatever concerns them: bytes from the client, a message for
//! them, the broker closing them, the client going away. Every wait has a
//! deadline; nothing sleeps a fixed time.

mod common;

use std::time::Duration;

use common::{publish, Client, Running, PROMPT, V311, V5};
use mqtt_codec::{reason, Connect, Packet, PubResponse, QoS};
use reference_broker::Config;

/// Asks every 50 ms, so that a connection quiet for 50–100 ms parks.
fn config() -> Config {
    Config {
        park_after: Some(Duration::from_millis(50)),
        ..Config::default()
    }
}

/// Waits until `n` connections are parked, failing after `PROMPT`.
async fn parked(broker: &Running, n: usize) {
    assert!(
        broker.shared.parked_become(n, PROMPT).await,
        "{} connections parked after {PROMPT:?}, expected {n}",
        broker.shared.parked()
    );
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Quiet connections park right after CONNACK and hold no task: the tasks
/// alive do not grow with the connections; each still answers at once.
#[tokio::test]
async fn idle_connections_hold_no_task() {
    // Never asked: only the park after CONNECT happens.
    let broker = Running::start(Config {
        park_after: Some(Duration::from_secs(3600)),
        ..Config::default()
    })
    .await;
    // The listener's, the timer's and the lounge's tasks.
    let mut clients = vec![Client::connect(broker.addr, V311, "idle-0").await];
    parked(&broker, 1).await;
    let base = alive_tasks();
    for i in 1..50 {
        clients.push(Client::connect(broker.addr, V311, &format!("idle-{i}")).await);
    }
    parked(&broker, 50).await;
    assert_eq!(
        alive_tasks(),
        base,
        "tasks alive for 50 parked connections, against {base} for one"
    );
    // Each is woken by its PINGREQ and keeps its task afterwards (the
    // next ask is an hour away).
    for c in &mut clients {
        c.ping().await;
    }
    assert_eq!(broker.shared.parked(), 0);
    broker.stop().await;
    for c in &mut clients {
        assert_eq!(c.until_closed(PROMPT).await, [], "closed without a word");
    }
}

/// A parked subscriber is woken by a message for it, a parked publisher
/// by its own PUBLISH; both park again when quiet, and a second message
/// (QoS 2, the whole exchange) goes through the same way.
#[tokio::test]
async fn parked_connections_wake_for_messages() {
    let broker = Running::start(config()).await;
    let mut sub = Client::connect(broker.addr, V5, "sub").await;
    sub.subscribe("t/#", QoS::ExactlyOnce).await;
    let mut publ = Client::connect(broker.addr, V311, "pub").await;
    parked(&broker, 2).await;

    publ.send(&publish("t/1", b"one", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(1)));
    let Packet::Publish(one) = sub.recv().await else {
        panic!("PUBLISH expected")
    };
    assert_eq!((&one.topic[..], &one.payload[..]), ("t/1", &b"one"[..]));
    sub.send(&Packet::PubAck(PubResponse::new(one.packet_id)))
        .await;
    parked(&broker, 2).await;

    publ.send(&publish("t/2", b"two", QoS::ExactlyOnce, 2))
        .await;
    assert_eq!(publ.recv().await, Packet::PubRec(PubResponse::new(2)));
    publ.send(&Packet::PubRel(PubResponse::new(2))).await;
    assert_eq!(publ.recv().await, Packet::PubComp(PubResponse::new(2)));
    let Packet::Publish(two) = sub.recv().await else {
        panic!("PUBLISH expected")
    };
    assert_eq!((&two.payload[..], two.qos), (&b"two"[..], QoS::ExactlyOnce));
    sub.send(&Packet::PubRec(PubResponse::new(two.packet_id)))
        .await;
    assert_eq!(
        sub.recv().await,
        Packet::PubRel(PubResponse::new(two.packet_id))
    );
    parked(&broker, 2).await;
    sub.send(&Packet::PubComp(PubResponse::new(two.packet_id)))
        .await;
    sub.ping().await;
    broker.stop().await;
    // The 5.0 client hears why (MQTT-3.14.0-1: only a 5.0 server sends it).
    match sub.until_closed(PROMPT).await.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason_code, reason::SERVER_SHUTTING_DOWN),
        other => panic!("expected DISCONNECT 0x8B, got {other:?}"),
    }
}

/// The broker's own reasons reach a parked connection: keep alive
/// (MQTT-3.1.2-22, one and a half times 1 s without a packet) and a
/// takeover by the same client id (MQTT-3.1.4-3). A client that goes away
/// while parked is noticed, and its will published (MQTT-3.1.2-8).
#[tokio::test]
async fn parked_connections_are_closed_and_noticed() {
    let broker = Running::start(config()).await;
    let mut watcher = Client::connect(broker.addr, V311, "watcher").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;

    let mut sleepy = Client::connect_within(broker.addr, V311, "sleepy", 1, PROMPT).await;
    let mut first = Client::connect(broker.addr, V311, "twin").await;
    let mut dev = Client::open(broker.addr, V311).await;
    let mut connect = Connect::new(V311, "dev");
    connect.will = Some(common::will("will/dev", b"bye"));
    dev.send(&Packet::Connect(Box::new(connect))).await;
    assert!(matches!(dev.recv().await, Packet::ConnAck(_)));
    parked(&broker, 4).await;

    let _second = Client::connect(broker.addr, V311, "twin").await;
    assert_eq!(first.until_closed(PROMPT).await, [], "taken over");
    drop(dev);
    match watcher.recv().await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"bye"),
        other => panic!("expected the will, got {other:?}"),
    }
    assert_eq!(sleepy.until_closed(PROMPT).await, [], "keep alive expired");
    broker.stop().await;
}

/// `park_after` in the configuration file: seconds, 0 for never; a
/// negative or endless value is refused with its name.
#[test]
fn park_after_from_the_configuration_file() {
    use reference_broker::config::FileConfig;
    let apply = |text: &str| {
        let mut config = Config::default();
        FileConfig::parse("broker.yaml", text)
            .expect("parses")
            .apply(&mut config)
            .map(|()| config.park_after)
    };
    assert_eq!(
        apply("park_after: 0.5"),
        Ok(Some(Duration::from_millis(500)))
    );
    assert_eq!(apply("park_after: 0"), Ok(None));
    assert_eq!(apply(""), Ok(Some(Duration::from_secs(2))), "the default");
    let err = apply("park_after: -1").expect_err("refused");
    assert!(err.contains("park_after"), "{err}");
}
