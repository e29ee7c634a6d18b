//! Flow control over real loopback sockets: slow subscribers slow their
//! publishers down (QoS 1/2) or lose QoS 0 messages, never their connection.
//! The slow readers read in steps and the test waits on the broker's own
//! counters; nothing sleeps a fixed time.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Client, Running, PROMPT, V311};
use mqtt_codec::{DecodeOptions, Decoder, Packet, Properties, PubResponse, Publish, QoS, Sender};
use reference_broker::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Deadline for a whole stream of messages to get through.
const STREAM: Duration = Duration::from_secs(60);

fn numbered(qos: QoS, i: u32) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: "flow/t".into(),
        packet_id: if qos == QoS::AtMostOnce {
            0
        } else {
            u16::try_from(i % 60_000 + 1).expect("fits")
        },
        properties: Properties::new(),
        payload: Bytes::from(format!("{i:064}")),
    })
}

fn number(p: &Publish) -> u32 {
    std::str::from_utf8(&p.payload)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered message: {p:?}"))
}

/// Connects a publisher and sends `n` numbered messages on a task of its
/// own, while another counts the PUBACKs; resolves to that count once the
/// connection ends or every message is acknowledged.
async fn publisher(addr: std::net::SocketAddr, qos: QoS, n: u32) -> tokio::task::JoinHandle<u32> {
    let mut stream = timeout(PROMPT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut out = BytesMut::new();
    let connect = Packet::Connect(Box::new(mqtt_codec::Connect::new(V311, "pub")));
    mqtt_codec::encode(&connect, V311, &mut out).expect("encode");
    stream.write_all(&out).await.expect("write CONNECT");
    let mut decoder = Decoder::new(DecodeOptions::new(V311, Sender::Server));
    let mut buf = BytesMut::new();
    let connack = timeout(PROMPT, async {
        loop {
            if let Some(p) = decoder.decode(&mut buf).expect("decodable") {
                return p;
            }
            assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "EOF");
        }
    })
    .await
    .expect("CONNACK in time");
    assert!(
        matches!(connack, Packet::ConnAck(ref a) if a.code == 0),
        "{connack:?}"
    );
    let (mut rd, mut wr) = stream.into_split();
    tokio::spawn(async move {
        out.clear();
        for i in 0..n {
            mqtt_codec::encode(&numbered(qos, i), V311, &mut out).expect("encode");
            if out.len() > 16 * 1024 {
                wr.write_all(&out).await.expect("write");
                out.clear();
            }
        }
        wr.write_all(&out).await.expect("write");
        // Kept open until the acknowledgements are counted.
        std::future::pending::<()>().await;
        drop(wr);
    });
    tokio::spawn(async move {
        let mut acked = 0;
        while acked < n && qos != QoS::AtMostOnce {
            while let Ok(Some(p)) = decoder.decode(&mut buf) {
                assert!(matches!(p, Packet::PubAck(_)), "{p:?}");
                acked += 1;
            }
            if acked == n || matches!(rd.read_buf(&mut buf).await, Ok(0) | Err(_)) {
                break;
            }
        }
        acked
    })
}

#[tokio::test]
async fn slow_qos1_subscriber_receives_every_acknowledged_message() {
    const N: u32 = 3000;
    const LIMIT: usize = 50;
    let broker = Running::start(Config {
        max_queued_messages: LIMIT,
        max_inflight: 10,
        ..Config::default()
    })
    .await;
    let mut sub = Client::connect(broker.addr, V311, "sub").await;
    sub.subscribe("flow/#", QoS::AtLeastOnce).await;
    let acks = publisher(broker.addr, QoS::AtLeastOnce, N).await;
    // Not reading at all: the queue fills and the publisher is paused.
    assert!(
        broker
            .shared
            .counters_reach(PROMPT, |c| c.publisher_pauses >= 1)
            .await,
        "never paused: {:?}",
        broker.shared.counters()
    );
    // Then reading in steps of 25, acknowledging each step, until all came.
    let mut next = 0;
    let until = Instant::now() + STREAM;
    while next < N {
        for _ in 0..25.min(N - next) {
            match sub.recv_within(until - Instant::now()).await {
                Packet::Publish(p) => {
                    assert_eq!(number(&p), next, "in order, none lost");
                    sub.send(&Packet::PubAck(PubResponse::new(p.packet_id)))
                        .await;
                    next += 1;
                }
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }
    let acked = timeout(PROMPT, acks)
        .await
        .expect("acks in time")
        .expect("task");
    assert_eq!(acked, N, "every message was acknowledged to the publisher");
    let c = broker.shared.counters();
    assert_eq!((c.dropped_qos0, c.dropped_offline), (0, 0), "{c:?}");
    assert!(c.queue_high_water <= LIMIT, "{c:?}");
    assert!(c.publisher_pauses >= 1, "{c:?}");
    broker.stop().await;
}

/// A client on a socket with a small receive buffer, so that what the
/// broker sends piles up on the broker's side instead of in the kernel.
async fn small_window_client(addr: std::net::SocketAddr, id: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = timeout(PROMPT, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut c = Client::from_stream(stream, V311, PROMPT);
    c.send(&Packet::Connect(Box::new(mqtt_codec::Connect::new(
        V311, id,
    ))))
    .await;
    assert!(matches!(c.recv().await, Packet::ConnAck(a) if a.code == 0));
    c
}

#[tokio::test]
async fn slow_qos0_reader_loses_qos0_messages_not_its_connection() {
    const BATCH: u32 = 500;
    let broker = Running::start(Config {
        max_outbound_bytes: 16 * 1024,
        ..Config::default()
    })
    .await;
    let mut sub = small_window_client(broker.addr, "sub").await;
    sub.subscribe("flow/#", QoS::AtLeastOnce).await;
    let mut publ = Client::connect(broker.addr, V311, "pub").await;
    // QoS 0 messages while the subscriber reads nothing, until the broker
    // says it dropped some (far beyond the 4096 packets that used to close it).
    let mut sent = 0;
    let until = Instant::now() + STREAM;
    while broker.shared.dropped_outbound() == 0 {
        assert!(
            Instant::now() < until,
            "nothing dropped after {sent} messages"
        );
        let mut out = BytesMut::new();
        for i in sent..sent + BATCH {
            mqtt_codec::encode(&numbered(QoS::AtMostOnce, i), V311, &mut out).expect("encode");
        }
        publ.send_raw(&out).await;
        sent += BATCH;
        // The broker has read the batch once it answers a ping sent after it.
        publ.ping().await;
    }
    // A QoS 1 message after them is not dropped: it arrives after every
    // QoS 0 message that was kept, so the reader knows when it has all.
    publ.send(&numbered(QoS::AtLeastOnce, sent)).await;
    assert!(matches!(publ.recv().await, Packet::PubAck(_)));
    let mut received = 0u64;
    let mut last = None;
    loop {
        match sub.recv_within(until - Instant::now()).await {
            Packet::Publish(p) if p.qos == QoS::AtMostOnce => {
                let n = number(&p);
                assert!(last.is_none_or(|l| n > l), "in order: {n} after {last:?}");
                last = Some(n);
                received += 1;
            }
            Packet::Publish(p) => {
                assert_eq!(number(&p), sent);
                sub.send(&Packet::PubAck(PubResponse::new(p.packet_id)))
                    .await;
                break;
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    let dropped = broker.shared.dropped_outbound();
    assert!(dropped > 0);
    assert_eq!(
        received + dropped,
        u64::from(sent),
        "each one delivered or counted"
    );
    // Still connected, and served.
    sub.ping().await;
    assert_eq!(broker.shared.connections(), 2);
    broker.stop().await;
}
