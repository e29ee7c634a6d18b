//! Both sides of mqtt-net against each other on real loopback sockets: each
//! transport carries packets both ways; a text frame, a missing subprotocol
//! and a silent peer end as they should; the log keeps what was exchanged,
//! typed, in the version it was decoded in.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use mqtt_codec::{ConnAck, Connect, Packet, Protocol, Sender};
use mqtt_net::{
    connect, tls, AcceptError, Acceptor, ConnectError, Connection, Direction, Event, Scheme,
    Stream, Target, TlsOptions, LOG_LIMIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Generous: only a broken test waits this long.
fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

/// A listener on an ephemeral port and the target (of `scheme`) naming it.
async fn listen(scheme: &str) -> (TcpListener, Target) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("an address").port();
    let target = Target::parse(&format!("{scheme}://localhost:{port}")).expect("a target");
    (listener, target)
}

/// One accepted connection through `acceptor`, in a task of its own.
fn accept_one(
    listener: TcpListener,
    acceptor: Acceptor,
) -> tokio::task::JoinHandle<Result<Stream, AcceptError>> {
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        acceptor.accept(tcp, deadline()).await
    })
}

fn connect_packet(protocol: Protocol) -> (Packet, Bytes) {
    let p = Packet::Connect(Box::new(Connect::new(protocol, "net-test")));
    let bytes = mqtt_codec::encode_bytes(&p, protocol).expect("CONNECT encodes");
    (p, bytes)
}

fn connack_packet(protocol: Protocol) -> (Packet, Bytes) {
    let p = Packet::ConnAck(ConnAck::default());
    let bytes = mqtt_codec::encode_bytes(&p, protocol).expect("CONNACK encodes");
    (p, bytes)
}

/// A CONNECT one way and a CONNACK the other over `target`, both sides
/// being this crate's; the stream's scheme is the target's.
async fn exchange(target: &Target, listener: TcpListener, acceptor: Acceptor) {
    let server = accept_one(listener, acceptor);
    let protocol = Protocol::V5;
    let mut client = Connection::open("client", target, protocol, deadline())
        .await
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    let stream = server.await.expect("the task").expect("accepted");
    assert_eq!(stream.scheme(), target.scheme);
    let mut broker = Connection::from_stream("broker", stream, Protocol::V3_1_1, Sender::Client);

    let (connect, bytes) = connect_packet(protocol);
    client
        .send(&bytes, Some(connect.clone()), deadline())
        .await
        .expect("CONNECT sent");
    match broker.next_event(deadline()).await {
        Event::Packet(p, raw) => {
            assert_eq!(p, connect);
            assert_eq!(raw, bytes);
        }
        other => panic!("{target}: the broker side got {other:?}"),
    }
    assert_eq!(broker.protocol(), Protocol::V5, "the CONNECT's version");

    let (connack, bytes) = connack_packet(protocol);
    broker
        .send(&bytes, Some(connack.clone()), deadline())
        .await
        .expect("CONNACK sent");
    match client.next_event(deadline()).await {
        Event::Packet(p, raw) => {
            assert_eq!(p, connack);
            assert_eq!(raw, bytes);
        }
        other => panic!("{target}: the client side got {other:?}"),
    }
    assert!(client.connected());

    // Closing one side is the end of the stream on the other.
    client.close().await;
    assert!(!client.is_open());
    assert!(matches!(
        broker.next_event(deadline()).await,
        Event::Closed(None)
    ));
    let log = client.take_log();
    let notes: Vec<_> = log.iter().map(|e| e.note.as_deref()).collect();
    assert_eq!(notes, [None, None, Some("closed the socket")]);
}

#[tokio::test]
async fn tcp() {
    let (listener, target) = listen("mqtt").await;
    exchange(&target, listener, Acceptor::Tcp).await;
}

#[tokio::test]
async fn tls_with_a_trusted_ca_and_with_insecure() {
    let (cert, key) = certificate();
    let acceptor = tls::acceptor(cert.as_bytes(), key.as_bytes()).expect("an acceptor");
    let ca = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("net-ca.pem");
    std::fs::write(&ca, &cert).expect("write the CA file");
    for tls in [
        TlsOptions {
            ca: Some(ca.clone()),
            ..TlsOptions::default()
        },
        TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        },
    ] {
        for scheme in ["mqtts", "wss"] {
            let (listener, mut target) = listen(scheme).await;
            target.tls = tls.clone();
            let acceptor = match scheme {
                "mqtts" => Acceptor::Tls(acceptor.clone()),
                _ => Acceptor::Wss(acceptor.clone()),
            };
            exchange(&target, listener, acceptor).await;
        }
    }
}

#[tokio::test]
async fn websocket() {
    let (listener, target) = listen("ws").await;
    assert_eq!(target.path, "/mqtt");
    exchange(&target, listener, Acceptor::Ws).await;
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake() {
    let (cert, key) = certificate();
    let (other, _) = certificate();
    let acceptor = tls::acceptor(cert.as_bytes(), key.as_bytes()).expect("an acceptor");
    let ca = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("net-other-ca.pem");
    std::fs::write(&ca, &other).expect("write the CA file");
    let (listener, mut target) = listen("mqtts").await;
    target.tls.ca = Some(ca);
    let server = accept_one(listener, Acceptor::Tls(acceptor));
    let err = connect(&target, deadline()).await.expect_err("untrusted");
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot connect to {target}: the TLS handshake failed"
        )),
        "{message}"
    );
    let refused = server.await.expect("the task").expect_err("no stream");
    assert!(matches!(refused, AcceptError::Tls(_)), "{refused:?}");
}

#[tokio::test]
async fn bad_tls_options_are_reported_before_connecting() {
    // Nobody listens there: the options are wrong before the target is.
    let mut target = Target::parse("mqtts://localhost:1").expect("a target");
    let err = connect(&target, deadline()).await.expect_err("no trust");
    assert!(matches!(err, ConnectError::TlsConfig(_)), "{err:?}");
    assert!(err.to_string().contains("--ca FILE"), "{err}");
    target.tls.ca = Some(PathBuf::from("/nonexistent/ca.pem"));
    let err = connect(&target, deadline()).await.expect_err("no file");
    assert!(
        err.to_string()
            .starts_with("cannot read the CA file /nonexistent/ca.pem: "),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_names_the_target() {
    let (listener, target) = listen("mqtt").await;
    drop(listener);
    let err = connect(&target, deadline()).await.expect_err("refused");
    assert!(matches!(err, ConnectError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {target}: ")),
        "{err}"
    );
}

/// A raw WebSocket client (tungstenite), offering `subprotocol` if any.
async fn raw_ws_client(
    target: &Target,
    subprotocol: Option<&'static str>,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", target.port))
        .await
        .expect("connect");
    let mut request = target.to_string().into_client_request().expect("a request");
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
    }
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map(|(ws, _)| ws)
}

#[tokio::test]
async fn frames_do_not_show_above_the_stream() {
    let (listener, target) = listen("ws").await;
    let server = accept_one(listener, Acceptor::Ws);
    let mut ws = raw_ws_client(&target, Some("mqtt"))
        .await
        .expect("upgraded");
    let stream = server.await.expect("the task").expect("accepted");
    let mut broker = Connection::from_stream("broker", stream, Protocol::V5, Sender::Client);
    let (connect, bytes) = connect_packet(Protocol::V5);
    let ping = Bytes::from_static(&[0xC0, 0x00]);
    // A CONNECT in two frames with a ping between, the second frame also
    // carrying a PINGREQ (MQTT-6.0.0-2); an empty frame carries nothing.
    let (head, tail) = bytes.split_at(3);
    ws.send(Message::Binary(head.to_vec())).await.expect("send");
    ws.send(Message::Ping(b"hello".to_vec()))
        .await
        .expect("ping");
    ws.send(Message::Binary(Vec::new())).await.expect("send");
    ws.send(Message::Binary([tail, &ping[..]].concat()))
        .await
        .expect("send");
    match broker.next_event(deadline()).await {
        Event::Packet(p, raw) => {
            assert_eq!(p, connect);
            assert_eq!(raw, bytes);
        }
        other => panic!("got {other:?}"),
    }
    assert!(matches!(
        broker.next_event(deadline()).await,
        Event::Packet(Packet::PingReq, _)
    ));
    // The ping was answered by the WebSocket layer, not passed up.
    match ws.next().await {
        Some(Ok(Message::Pong(p))) => assert_eq!(p, b"hello"),
        other => panic!("expected the pong, got {other:?}"),
    }
    // A large write leaves in frames of at most MAX_FRAME bytes.
    let big = vec![0u8; mqtt_net::ws::MAX_FRAME + 10];
    broker.send(&big, None, deadline()).await.expect("sent");
    let mut got = Vec::new();
    while got.len() < big.len() {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => {
                assert!(b.len() <= mqtt_net::ws::MAX_FRAME);
                got.extend(b);
            }
            other => panic!("expected binary frames, got {other:?}"),
        }
    }
    assert_eq!(got, big);
    // A close frame is the end of the stream.
    ws.close(None).await.expect("close");
    assert!(matches!(
        broker.next_event(deadline()).await,
        Event::Closed(None)
    ));
}

#[tokio::test]
async fn a_text_frame_is_refused_on_both_sides() {
    // Towards the accepting side.
    let (listener, target) = listen("ws").await;
    let server = accept_one(listener, Acceptor::Ws);
    let mut ws = raw_ws_client(&target, Some("mqtt"))
        .await
        .expect("upgraded");
    let mut stream = server.await.expect("the task").expect("accepted");
    ws.send(Message::Text("hello".into())).await.expect("send");
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).await.expect_err("a text frame");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("MQTT-6.0.0-1"), "{err}");

    // Towards the connecting side: a broker answering in text.
    let (listener, target) = listen("ws").await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, mqtt_net::ws::select_subprotocol)
            .await
            .expect("upgraded");
        ws.send(Message::Text("CONNACK".into()))
            .await
            .expect("send");
        // Held open until the client has seen the frame.
        let _ = ws.next().await;
    });
    let mut client = Connection::open("client", &target, Protocol::V5, deadline())
        .await
        .expect("connected");
    match client.next_event(deadline()).await {
        Event::Closed(Some(why)) => assert!(why.contains("MQTT-6.0.0-1"), "{why}"),
        other => panic!("got {other:?}"),
    }
    assert!(!client.is_open());
    drop(client);
    server.await.expect("the task");
}

#[tokio::test]
async fn an_upgrade_without_the_mqtt_subprotocol_is_refused() {
    let (listener, target) = listen("ws").await;
    let server = accept_one(listener, Acceptor::Ws);
    let refused = raw_ws_client(&target, None).await.expect_err("refused");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 400),
        other => panic!("got {other:?}"),
    }
    let err = server.await.expect("the task").expect_err("no stream");
    assert!(matches!(err, AcceptError::NoMqttSubprotocol), "{err:?}");
    assert!(err.to_string().contains("MQTT-6.0.0-4"), "{err}");

    // Offered among others, in any case, it is chosen.
    let (listener, target) = listen("ws").await;
    let server = accept_one(listener, Acceptor::Ws);
    let ws = raw_ws_client(&target, Some("wamp, MQTT")).await;
    // The client insists on the exact spelling it offered; the server's
    // choice is what matters here.
    drop(ws);
    server.await.expect("the task").expect("accepted");
}

#[tokio::test]
async fn deadlines_end_waits_on_a_silent_peer() {
    // A peer that accepts and then says nothing, never closing.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("an address").port();
    let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut hold_rx = hold_rx;
        loop {
            tokio::select! {
                a = listener.accept() => held.push(a.expect("a connection").0),
                _ = &mut hold_rx => return,
            }
        }
    });
    let short = Duration::from_millis(100);

    // A read times out at its deadline, and the connection stays open.
    let target = Target::parse(&format!("mqtt://127.0.0.1:{port}")).expect("a target");
    let mut c = Connection::open("c", &target, Protocol::V5, deadline())
        .await
        .expect("connected");
    let started = Instant::now();
    assert!(matches!(
        c.next_event(started + short).await,
        Event::Timeout
    ));
    assert!(Instant::now() >= started + short);
    assert!(c.is_open());

    // The handshakes of the secure transports too.
    for scheme in ["mqtts", "ws", "wss"] {
        let mut target = Target::parse(&format!("{scheme}://localhost:{port}")).expect("a target");
        target.tls.insecure = true;
        let err = connect(&target, Instant::now() + short)
            .await
            .expect_err("no handshake");
        assert!(matches!(err, ConnectError::TimedOut { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot connect to {target}: no answer before the deadline")
        );
    }
    let _ = hold_tx.send(());
    silent.await.expect("the task");

    // The accepting side gives up on a client that never handshakes.
    let (cert, key) = certificate();
    let tls = tls::acceptor(cert.as_bytes(), key.as_bytes()).expect("an acceptor");
    for acceptor in [Acceptor::Tls(tls.clone()), Acceptor::Ws, Acceptor::Wss(tls)] {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("an address");
        let _mute = TcpStream::connect(addr).await.expect("connect");
        let (tcp, _) = listener.accept().await.expect("a connection");
        let err = acceptor
            .accept(tcp, Instant::now() + short)
            .await
            .expect_err("no handshake");
        assert!(
            matches!(err, AcceptError::TimedOut),
            "{acceptor:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_log_keeps_packets_typed_in_the_version_they_were_decoded_in() {
    let (listener, target) = listen("mqtt").await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("a connection");
        let mut buf = vec![0u8; 256];
        let _ = tcp.read(&mut buf).await;
        // A 3.1.1 CONNACK refusing the version, to a 5.0 CONNECT; then
        // bytes no version reads.
        tcp.write_all(&[0x20, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        tcp
    });
    let mut c = Connection::open("c", &target, Protocol::V5, deadline())
        .await
        .expect("connected");
    let (connect, bytes) = connect_packet(Protocol::V5);
    c.send(&bytes, Some(connect.clone()), deadline())
        .await
        .expect("sent");
    c.note("the first CONNECT");
    let ack = match c.next_event(deadline()).await {
        Event::Packet(Packet::ConnAck(ack), _) => ack,
        other => panic!("got {other:?}"),
    };
    assert_eq!(ack.code, 1);
    assert!(!c.connected());
    let mut tcp = server.await.expect("the task");
    tcp.write_all(&[0x20, 0x02, 0x07, 0x00])
        .await
        .expect("write");
    let refused = match c.next_event(deadline()).await {
        Event::Malformed(e, raw) => {
            assert_eq!(&raw[..], [0x20, 0x02, 0x07, 0x00]);
            e
        }
        other => panic!("got {other:?}"),
    };
    c.send(&[0xC0, 0x00], None, deadline()).await.expect("sent");
    c.note("raw");
    c.note("twice");
    // Read before the close, so that it is a close and not a reset.
    let mut ping = [0u8; 2];
    tcp.read_exact(&mut ping).await.expect("the PINGREQ");
    drop(tcp);
    assert!(matches!(c.next_event(deadline()).await, Event::Closed(_)));
    assert!(matches!(
        c.send(&[0xC0, 0x00], None, deadline()).await,
        Err(mqtt_net::SendError::NotOpen)
    ));

    let log = c.take_log();
    let summary: Vec<_> = log
        .iter()
        .map(|e| (e.direction, e.protocol, e.note.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                Direction::Sent,
                Protocol::V5,
                Some("the first CONNECT".into())
            ),
            (
                Direction::Received,
                Protocol::V3_1_1,
                Some("decoded as an MQTT 3.1.1 CONNACK".into())
            ),
            (
                Direction::Received,
                Protocol::V5,
                Some(format!("does not decode: {refused}"))
            ),
            (Direction::Sent, Protocol::V5, Some("raw; twice".into())),
            (
                Direction::Received,
                Protocol::V5,
                Some("connection closed".into())
            ),
            (
                Direction::Sent,
                Protocol::V5,
                Some("not sent: the connection is closed".into())
            ),
        ]
    );
    assert_eq!(log[0].packet, Some(connect));
    assert_eq!(log[0].bytes, bytes);
    assert!(matches!(&log[1].packet, Some(Packet::ConnAck(a)) if a.code == 1));
    assert_eq!(&log[1].bytes[..], [0x20, 0x02, 0x00, 0x01]);
    assert_eq!(log[2].packet, None);
    assert_eq!(&log[2].bytes[..], [0x20, 0x02, 0x07, 0x00]);
    assert_eq!(
        (log[3].packet.as_ref(), &log[3].bytes[..]),
        (None, &[0xC0, 0x00][..])
    );
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(log.iter().all(|e| e.client == "c"));
    assert!(c.take_log().is_empty(), "taken");
}

#[tokio::test]
async fn the_log_is_bounded() {
    let (listener, target) = listen("mqtt").await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("a connection");
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink).await;
        sink.len()
    });
    let mut c = Connection::open("c", &target, Protocol::V5, deadline())
        .await
        .expect("connected");
    for _ in 0..LOG_LIMIT + 10 {
        c.send(&[0xC0, 0x00], Some(Packet::PingReq), deadline())
            .await
            .expect("sent");
    }
    c.note("not on the truncation notice");
    c.close().await;
    assert_eq!(server.await.expect("the task"), 2 * (LOG_LIMIT + 10));
    let log = c.take_log();
    assert_eq!(log.len(), LOG_LIMIT + 1);
    let last = log.last().expect("entries");
    assert_eq!(last.packet, None);
    assert_eq!(
        last.note.as_deref(),
        Some(format!("(log truncated after {LOG_LIMIT} entries)").as_str())
    );
    assert_eq!(target.scheme, Scheme::Mqtt);
}
