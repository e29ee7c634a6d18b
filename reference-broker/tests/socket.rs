//! The broker over real loopback sockets: raw bytes in, decoded packets out.
//! Every read waits under a deadline; nothing sleeps a fixed time.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::{publish, still_serves, Client, Running, PROMPT, V311, V5};
use mqtt_codec::reason;
use mqtt_codec::{Connect, Packet, Protocol, PubResponse, QoS};
use reference_broker::{server, Config};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};

#[tokio::test]
async fn connect_connack_and_ping() {
    let broker = Running::start(Config::default()).await;
    for protocol in [Protocol::V3_1, V311, V5] {
        let mut c = Client::connect(broker.addr, protocol, &format!("c-{protocol}")).await;
        c.send(&Packet::PingReq).await;
        assert_eq!(c.recv().await, Packet::PingResp);
        c.send(&Packet::Disconnect(Default::default())).await;
        assert_eq!(c.until_closed(PROMPT).await, []);
    }
    broker.stop().await;
}

#[tokio::test]
async fn publish_subscribe_across_connections() {
    let broker = Running::start(Config::default()).await;
    let mut sub = Client::connect(broker.addr, V5, "sub").await;
    sub.subscribe("a/+", QoS::ExactlyOnce).await;
    let mut publ = Client::connect(broker.addr, V311, "pub").await;
    publ.send(&publish("a/b", b"one", QoS::AtLeastOnce, 10))
        .await;
    assert_eq!(publ.recv().await, Packet::PubAck(PubResponse::new(10)));
    publ.send(&publish("a/c", b"two", QoS::ExactlyOnce, 11))
        .await;
    assert_eq!(publ.recv().await, Packet::PubRec(PubResponse::new(11)));
    publ.send(&Packet::PubRel(PubResponse::new(11))).await;
    assert_eq!(publ.recv().await, Packet::PubComp(PubResponse::new(11)));

    let Packet::Publish(one) = sub.recv().await else {
        panic!("PUBLISH expected")
    };
    assert_eq!(
        (&one.topic[..], &one.payload[..], one.qos),
        ("a/b", &b"one"[..], QoS::AtLeastOnce)
    );
    sub.send(&Packet::PubAck(PubResponse::new(one.packet_id)))
        .await;
    let Packet::Publish(two) = sub.recv().await else {
        panic!("PUBLISH expected")
    };
    assert_eq!((&two.topic[..], two.qos), ("a/c", QoS::ExactlyOnce));
    sub.send(&Packet::PubRec(PubResponse::new(two.packet_id)))
        .await;
    assert_eq!(
        sub.recv().await,
        Packet::PubRel(PubResponse::new(two.packet_id))
    );
    sub.send(&Packet::PubComp(PubResponse::new(two.packet_id)))
        .await;
    broker.stop().await;
}

#[tokio::test]
async fn bytes_split_and_coalesced() {
    let broker = Running::start(Config::default()).await;
    let mut c = Client::open(broker.addr, V311).await;
    let mut bytes = BytesMut::new();
    mqtt_codec::encode(
        &Packet::Connect(Box::new(Connect::new(V311, "split"))),
        V311,
        &mut bytes,
    )
    .expect("encode");
    // One byte per write: the decoder must wait for the rest.
    for b in bytes.iter() {
        c.send_raw(&[*b]).await;
        c.stream.flush().await.expect("flush");
    }
    assert!(matches!(c.recv().await, Packet::ConnAck(a) if a.code == 0));
    // Three packets in one write: three answers.
    let mut many = BytesMut::new();
    for _ in 0..3 {
        mqtt_codec::encode(&Packet::PingReq, V311, &mut many).expect("encode");
    }
    c.send_raw(&many).await;
    for _ in 0..3 {
        assert_eq!(c.recv().await, Packet::PingResp);
    }
    broker.stop().await;
}

#[tokio::test]
async fn malformed_packet_closes() {
    let broker = Running::start(Config::default()).await;
    // PUBLISH whose topic length runs past the packet.
    let bad_publish = [0x30, 0x03, 0x00, 0x05, b'a'];
    let mut c = Client::connect(broker.addr, V5, "bad5").await;
    c.send_raw(&bad_publish).await;
    let got = c.until_closed(PROMPT).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        matches!(&got[0], Packet::Disconnect(d) if d.reason_code == reason::MALFORMED_PACKET),
        "{got:?}"
    );

    let mut c = Client::connect(broker.addr, V311, "bad311").await;
    c.send_raw(&bad_publish).await;
    assert_eq!(
        c.until_closed(PROMPT).await,
        [],
        "3.1.1: closed without a packet"
    );

    // A protocol error (wrong fixed-header flags on PINGREQ) in 5.0.
    let mut c = Client::connect(broker.addr, V5, "flags5").await;
    c.send_raw(&[0xC1, 0x00]).await;
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::MALFORMED_PACKET || d.reason_code == reason::PROTOCOL_ERROR),
        "{got:?}"
    );
    still_serves(broker.addr, "malformed").await;
    broker.stop().await;
}

#[tokio::test]
async fn huge_connect_closed_at_once() {
    let broker = Running::start(Config::default()).await;
    // CONNECT announcing 268,435,455 bytes (256 MB): refused from its fixed
    // header, without waiting for (or buffering) the body.
    let mut c = Client::open(broker.addr, V5).await;
    c.send_raw(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert_eq!(c.until_closed(PROMPT).await, []);
    // The same after a few body bytes.
    let mut c = Client::open(broker.addr, V311).await;
    c.send_raw(&[
        0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x04, b'M', b'Q', b'T', b'T',
    ])
    .await;
    assert_eq!(c.until_closed(PROMPT).await, []);
    // Just over the configured maximum, after CONNECT.
    let mut c = Client::connect(broker.addr, V5, "big").await;
    let max = Config::default().max_packet_size;
    let mut header = vec![0x30];
    let mut len = max; // total = 1 + varint + len > max
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        header.push(b);
        if len == 0 {
            break;
        }
    }
    c.send_raw(&header).await;
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::PACKET_TOO_LARGE),
        "{got:?}"
    );
    still_serves(broker.addr, "huge").await;
    broker.stop().await;
}

#[tokio::test]
async fn idle_connections_closed_at_connect_timeout() {
    let connect_timeout = Duration::from_millis(300);
    let config = Config {
        connect_timeout,
        ..Config::default()
    };
    let broker = Running::start(config).await;
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(Client::open(broker.addr, V311).await);
    }
    // A client that connects in time is not affected.
    let mut good = Client::connect(broker.addr, V311, "good").await;
    let deadline = Duration::from_secs(20);
    let closers = idle
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.until_closed(deadline).await }));
    for closer in closers {
        assert_eq!(
            closer.await.expect("reader task"),
            [],
            "closed without a packet"
        );
    }
    // The broker cannot have closed them before the timeout.
    assert!(opened.elapsed() >= connect_timeout);
    // The core forgets them (the close is reported asynchronously).
    broker.connections_become(1, PROMPT).await;
    good.send(&Packet::PingReq).await;
    assert_eq!(good.recv().await, Packet::PingResp);
    still_serves(broker.addr, "idle").await;
    broker.stop().await;
}

/// A subscriber that never reads keeps its connection and loses QoS 0
/// messages: what waits for it stays within `max_outbound_bytes`, so it
/// holds bounded resources however much is published (issue 12: it used to
/// be closed after 4096 packets).
#[tokio::test]
async fn subscriber_that_never_reads_loses_qos0_not_its_connection() {
    let broker = Running::start(Config::default()).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = timeout(PROMPT, socket.connect(broker.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut slow = Client::from_stream(stream, V311, PROMPT);
    slow.send(&Packet::Connect(Box::new(Connect::new(V311, "slow"))))
        .await;
    assert!(matches!(slow.recv().await, Packet::ConnAck(_)));
    slow.subscribe("flood", QoS::AtMostOnce).await;
    let mut publ = Client::connect(broker.addr, V311, "flooder").await;
    let mut batch = BytesMut::new();
    static PAYLOAD: [u8; 1024] = [b'x'; 1024];
    for _ in 0..100 {
        mqtt_codec::encode(
            &publish("flood", &PAYLOAD, QoS::AtMostOnce, 0),
            V311,
            &mut batch,
        )
        .expect("encode");
    }
    // 10,000 packets of 1 KiB, far beyond what the socket buffers hold.
    for _ in 0..100 {
        publ.send_raw(&batch).await;
        publ.send(&Packet::PingReq).await;
        assert_eq!(publ.recv().await, Packet::PingResp);
    }
    assert_eq!(
        broker.shared.connections(),
        2,
        "the slow subscriber is kept"
    );
    assert!(
        broker.shared.dropped_outbound() > 0,
        "QoS 0 messages dropped"
    );
    still_serves(broker.addr, "slow").await;
    broker.stop().await;
}

#[tokio::test]
async fn garbage_bytes_close() {
    let broker = Running::start(Config::default()).await;
    let garbage: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0x00, 0x00],
        &[0xF0, 0x00],
        &[0x10, 0x80, 0x80, 0x80, 0x80, 0x01],
        &[
            0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'X', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
        ],
    ];
    for g in garbage {
        let mut c = Client::open(broker.addr, V311).await;
        c.send_raw(g).await;
        let got = c.until_closed(PROMPT).await;
        assert!(
            got.iter()
                .all(|p| matches!(p, Packet::ConnAck(a) if a.code != 0)),
            "{g:?}: {got:?}"
        );
    }
    // Garbage after a valid CONNECT.
    let mut c = Client::connect(broker.addr, V311, "then-garbage").await;
    c.send_raw(&[0xFF; 64]).await;
    assert_eq!(c.until_closed(PROMPT).await, []);
    still_serves(broker.addr, "garbage").await;
    broker.stop().await;
}

#[tokio::test]
async fn unsupported_protocol_level_refused() {
    let broker = Running::start(Config::default()).await;
    let mut c = Client::open(broker.addr, V311).await;
    c.send_raw(&[
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x07, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ])
    .await;
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::v3::UNACCEPTABLE_PROTOCOL_VERSION),
        "{got:?}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn malformed_v5_connect_refused_with_connack() {
    let broker = Running::start(Config::default()).await;
    let mut c = Client::open(broker.addr, V5).await;
    // 5.0 CONNECT with the reserved connect-flags bit set (MQTT-3.1.2-3).
    c.send_raw(&[
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x03, 0x00, 0x3C, 0x00, 0x00, 0x00,
    ])
    .await;
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::ConnAck(a)] if a.code == reason::MALFORMED_PACKET),
        "{got:?}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn keep_alive_closes_over_socket() {
    let broker = Running::start(Config::default()).await;
    let mut c = Client::open(broker.addr, V5).await;
    let mut connect = Connect::new(V5, "ka");
    connect.keep_alive = 1;
    c.send(&Packet::Connect(Box::new(connect))).await;
    assert!(matches!(c.recv().await, Packet::ConnAck(_)));
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::KEEP_ALIVE_TIMEOUT),
        "{got:?}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn session_takeover_over_socket() {
    let broker = Running::start(Config::default()).await;
    let mut old = Client::connect(broker.addr, V5, "same").await;
    let mut new = Client::connect(broker.addr, V5, "same").await;
    let got = old.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::SESSION_TAKEN_OVER),
        "{got:?}"
    );
    new.send(&Packet::PingReq).await;
    assert_eq!(new.recv().await, Packet::PingResp);
    broker.stop().await;
}

#[tokio::test]
async fn will_published_on_connection_loss() {
    let broker = Running::start(Config::default()).await;
    let mut watcher = Client::connect(broker.addr, V311, "watcher").await;
    watcher.subscribe("will/#", QoS::AtMostOnce).await;
    let mut dev = Client::open(broker.addr, V311).await;
    let mut connect = Connect::new(V311, "dev");
    connect.will = Some(common::will("will/dev", b"bye"));
    dev.send(&Packet::Connect(Box::new(connect))).await;
    assert!(matches!(dev.recv().await, Packet::ConnAck(_)));
    drop(dev);
    match watcher.recv().await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"bye"),
        other => panic!("expected the will, got {other:?}"),
    }
    broker.stop().await;
}

/// Under a violation that skips a refused packet, the connection goes on
/// with the next packet, whether it came in the same read or a later one.
#[tokio::test]
async fn skipped_packet_under_violation() {
    let mut config = Config::default();
    config.violations.add("MQTT-3.8.3-3").expect("known");
    config.violations.add("MQTT-3.3.1-4").expect("known");
    let broker = Running::start(config).await;
    let mut c = Client::connect(broker.addr, V311, "v").await;
    // SUBSCRIBE without topic filters (refused by the parser), then PINGREQ in the same write.
    c.send_raw(&[0x82, 0x02, 0x00, 0x01, 0xC0, 0x00]).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    // The same, in two writes.
    c.send_raw(&[0x82, 0x02, 0x00, 0x01]).await;
    c.send_raw(&[0xC0, 0x00]).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    // PUBLISH with QoS 3 (refused from its fixed header), then PINGREQ.
    c.send_raw(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01, 0xC0, 0x00])
        .await;
    assert_eq!(c.recv().await, Packet::PingResp);
    // The same, refused from its first byte before its length has arrived.
    c.send_raw(&[0x36]).await;
    c.stream.flush().await.expect("flush");
    c.send_raw(&[0x05, 0x00, 0x01, b't', 0x00, 0x01, 0xC0, 0x00])
        .await;
    assert_eq!(c.recv().await, Packet::PingResp);
    broker.stop().await;
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let broker = Running::start(Config::default()).await;
    let addr = broker.addr;
    broker.stop().await;
    // The listener is gone with the server.
    let refused = timeout(PROMPT, TcpStream::connect(addr))
        .await
        .expect("connect attempt in time");
    assert!(refused.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn run_serves_and_stops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, Config::default(), async move {
        let _ = rx.await;
    }));
    let mut c = Client::connect(addr, V5, "run").await;
    c.send(&Packet::PingReq).await;
    assert_eq!(c.recv().await, Packet::PingResp);
    let _ = tx.send(());
    timeout(PROMPT, task)
        .await
        .expect("run returns")
        .expect("task")
        .expect("Ok");
}

/// Shutdown ends the connections it has, not only the listener: a 5.0 client
/// reads DISCONNECT 0x8B then EOF, a 3.1.1 client EOF, and `serve` returns
/// once they are closed.
#[tokio::test]
async fn shutdown_closes_open_connections() {
    let broker = Running::start(Config::default()).await;
    let addr = broker.addr;
    let shared = broker.shared.clone();
    let mut v5 = Client::connect(addr, V5, "v5").await;
    let mut v311 = Client::connect(addr, V311, "v311").await;
    let mut silent = Client::open(addr, V311).await;
    broker.connections_become(3, PROMPT).await;

    broker.stop().await;
    assert_eq!(shared.connections(), 0);
    let got = v5.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::SERVER_SHUTTING_DOWN),
        "{got:?}"
    );
    assert_eq!(v311.until_closed(PROMPT).await, []);
    assert_eq!(silent.until_closed(PROMPT).await, []);
    // The listener is gone too.
    assert!(TcpStream::connect(addr).await.is_err());
}

/// The time allowed before CONNECT counts from the accept, not from the end
/// of a TLS or WebSocket handshake: a stream handed over as accepted longer
/// ago than the connect timeout is closed at once, not a timeout later.
#[tokio::test]
async fn connect_deadline_counts_from_the_accept() {
    let connect_timeout = Duration::from_secs(60);
    let broker = Running::start(Config {
        connect_timeout,
        ..Config::default()
    })
    .await;
    let accepted = Instant::now()
        .checked_sub(connect_timeout + Duration::from_secs(1))
        .expect("a monotonic clock older than a minute");
    let (mut client_side, broker_side) = tokio::io::duplex(4096);
    let task = tokio::spawn(server::handle_connection_from(
        broker.shared.clone(),
        broker_side,
        accepted,
    ));
    let mut buf = [0u8; 16];
    let read = timeout(
        PROMPT,
        tokio::io::AsyncReadExt::read(&mut client_side, &mut buf),
    )
    .await
    .expect("closed at once, not after the connect timeout");
    assert_eq!(read.expect("EOF"), 0);
    timeout(PROMPT, task)
        .await
        .expect("connection task ends")
        .expect("connection task");
    broker.stop().await;
}
