//! Robustness over real loopback sockets: many concurrent connections,
//! silent and half-open clients, a CONNECT announcing 256 MB, garbage bytes.
//! Through all of it the broker stays up, its memory stays bounded, and other
//! clients are served.
//!
//! The tests run one at a time (see [`SERIAL`]): they measure this process's
//! memory and open many sockets, which tests running beside them would skew.
//! Every wait has a deadline; nothing sleeps a fixed time (the only timer is
//! the pace of a trickling writer and of a served client's pings).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use common::{publish, still_serves_within, Client, Running, PROMPT, V311, V5};
use mqtt_codec::reason;
use mqtt_codec::{Connect, Packet, PubResponse, QoS};
use reference_broker::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};
/// Generous deadline for a whole phase with hundreds of connections.
const PHASE: Duration = Duration::from_secs(60);

/// One test at a time in this binary (tokio's mutex: held across awaits, never poisoned).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises the soft open-files limit to at least `want` (up to the hard
/// limit); fails the test if the hard limit is too low.
fn raise_open_files(want: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(got, 0, "getrlimit(RLIMIT_NOFILE) failed");
    if lim.rlim_cur >= want {
        return;
    }
    assert!(
        lim.rlim_max >= want,
        "this test needs {want} open files but the hard limit is {} (raise it: ulimit -Hn {want})",
        lim.rlim_max
    );
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(
        set, 0,
        "setrlimit(RLIMIT_NOFILE) to {} failed",
        lim.rlim_max
    );
}

/// This process's resident set size, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kb * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Reads raw bytes until the peer closes (EOF or reset), within `deadline`;
/// returns how many bytes came. Panics if the connection stays open.
async fn read_until_closed(stream: &mut TcpStream, deadline: Duration, what: &str) -> usize {
    let until = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => panic!("{what}: still open after {deadline:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return total,
            Ok(Ok(n)) => {
                total += n;
                assert!(total < 1 << 20, "{what}: the broker keeps sending");
            }
        }
    }
}

/// 1,000 clients connect and subscribe at once; one publication reaches all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_connections_fan_out() {
    let _serial = SERIAL.lock().await;
    const N: usize = 1000;
    // A client socket and a server socket each, plus slack.
    raise_open_files(2 * N as libc::rlim_t + 200);
    let broker = Running::start(Config::default()).await;
    let started = Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(N);
    let mut subscribers = Vec::with_capacity(N);
    for i in 0..N {
        let addr = broker.addr;
        let ready = ready_tx.clone();
        subscribers.push(tokio::spawn(async move {
            let (protocol, qos) = match i % 4 {
                0 => (V311, QoS::AtMostOnce),
                1 => (V311, QoS::AtLeastOnce),
                2 => (V5, QoS::AtMostOnce),
                _ => (V5, QoS::ExactlyOnce),
            };
            let mut c = Client::connect_within(addr, protocol, &format!("fan-{i}"), 0, PHASE).await;
            c.subscribe("fan/out", qos).await;
            ready.send(()).await.expect("the test waits");
            let Packet::Publish(p) = c.recv_within(PHASE).await else {
                panic!("fan-{i}: expected PUBLISH")
            };
            assert_eq!((&p.topic[..], &p.payload[..]), ("fan/out", &b"to all"[..]));
            // Published at QoS 1: delivered at the lower of 1 and the subscription's.
            let want = if qos == QoS::AtMostOnce {
                qos
            } else {
                QoS::AtLeastOnce
            };
            assert_eq!(p.qos, want, "fan-{i}");
            if p.qos == QoS::AtLeastOnce {
                c.send(&Packet::PubAck(PubResponse::new(p.packet_id))).await;
            }
            c
        }));
    }
    drop(ready_tx);
    let until = Instant::now() + PHASE;
    for n in 0..N {
        timeout_at(until, ready_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("only {n} of {N} subscribed within {PHASE:?}"))
            .expect("a subscriber task ended early");
    }
    let subscribed = started.elapsed();
    assert_eq!(broker.shared.connections(), N);
    let mut publ = Client::connect_within(broker.addr, V5, "fan-publisher", 0, PHASE).await;
    let sent = Instant::now();
    publ.send(&publish("fan/out", b"to all", QoS::AtLeastOnce, 7))
        .await;
    assert!(matches!(publ.recv_within(PROMPT).await, Packet::PubAck(r) if r.packet_id == 7));
    let mut clients = Vec::with_capacity(N);
    for s in subscribers {
        clients.push(
            timeout_at(until, s)
                .await
                .expect("every subscriber gets the message in time")
                .expect("subscriber task"),
        );
    }
    let delivered = sent.elapsed();
    eprintln!(
        "{N} clients connected and subscribed in {subscribed:?}; one publication reached all in {delivered:?}"
    );
    publ.ping().await;
    drop(clients);
    broker.connections_become(1, PHASE).await;
    still_serves_within(broker.addr, "fan-out", PHASE).await;
    broker.stop().await;
}

/// 500 clients that send nothing or half a packet are closed on the connect
/// timeout, while a connected client keeps being served, and memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_packet_clients_closed_on_connect_timeout() {
    let _serial = SERIAL.lock().await;
    const N: usize = 500;
    const MEMORY_BOUND: u64 = 64 << 20;
    raise_open_files(2 * N as libc::rlim_t + 200);
    let connect_timeout = Duration::from_secs(3);
    let broker = Running::start(Config {
        connect_timeout,
        ..Config::default()
    })
    .await;
    let mut good = Client::connect_within(broker.addr, V5, "served", 60, PHASE).await;
    good.ping().await;

    // The first half of a CONNECT, and a prefix of a CONNECT announcing about 1 MB.
    let mut full = BytesMut::new();
    mqtt_codec::encode(
        &Packet::Connect(Box::new(Connect::new(V311, "half-a-connect"))),
        V311,
        &mut full,
    )
    .expect("encode");
    let half = full[..full.len() / 2].to_vec();
    let mut big_prefix = vec![0x10, 0xC0, 0x84, 0x3D]; // remaining length 1,000,000
    big_prefix.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 0]);
    big_prefix.resize(16 * 1024, b'x');
    let partials: [&[u8]; 6] = [
        &[],
        &[0x10],
        &[0x10, 0xFF],
        &[0x10, 0x20],
        &half,
        &big_prefix,
    ];

    let before = rss();
    let opened = Instant::now();
    let mut idle = Vec::with_capacity(N);
    for i in 0..N {
        let t0 = Instant::now();
        let mut c = Client::open_within(broker.addr, V311, PHASE).await;
        // Half of them silent, the others spread over the partial packets.
        let bytes = if i % 2 == 0 {
            &[][..]
        } else {
            partials[i % partials.len()]
        };
        c.send_raw(bytes).await;
        idle.push((t0, c));
    }
    let all_open = opened.elapsed();
    assert!(
        all_open < connect_timeout,
        "opening {N} sockets took {all_open:?}, longer than the connect timeout"
    );
    // All accepted and counted (the core knows each connection from accept on).
    broker.connections_become(N + 1, connect_timeout).await;
    let peak = rss();

    let closers: Vec<_> = idle
        .into_iter()
        .enumerate()
        .map(|(i, (t0, mut c))| {
            tokio::spawn(async move {
                let n = read_until_closed(&mut c.stream, PHASE, &format!("idle client {i}")).await;
                assert_eq!(n, 0, "idle client {i}: closed without a packet");
                t0.elapsed()
            })
        })
        .collect();
    // The connected client keeps being served while they wait: a ping every 100 ms.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    let mut pings = 0;
    while closers.iter().any(|c| !c.is_finished()) {
        assert!(
            opened.elapsed() < PHASE,
            "idle clients still open after {PHASE:?}"
        );
        pace.tick().await;
        good.ping().await;
        pings += 1;
    }
    let mut first_close = Duration::MAX;
    let mut last_close = Duration::ZERO;
    for c in closers {
        let at = c.await.expect("closer task");
        first_close = first_close.min(at);
        last_close = last_close.max(at);
    }
    // None closed before the timeout (each measured from before its connect).
    assert!(
        first_close >= connect_timeout,
        "an idle client was closed after {first_close:?}, before the connect timeout"
    );
    broker.connections_become(1, PROMPT).await;
    good.ping().await;
    let after = rss();
    eprintln!(
        "{N} idle clients opened in {all_open:?}, closed between {first_close:?} and {last_close:?} \
         (connect timeout {connect_timeout:?}); {pings} pings answered meanwhile; \
         RSS before {:.1} MiB, with all open {:.1} MiB (+{:.1} KiB per connection), after {:.1} MiB",
        mib(before),
        mib(peak),
        peak.saturating_sub(before) as f64 / 1024.0 / N as f64,
        mib(after),
    );
    assert!(
        peak.saturating_sub(before) < MEMORY_BOUND,
        "RSS grew by {:.1} MiB with {N} idle clients",
        mib(peak.saturating_sub(before))
    );
    assert!(
        after.saturating_sub(before) < MEMORY_BOUND,
        "RSS grew by {:.1} MiB after {N} idle clients",
        mib(after.saturating_sub(before))
    );
    still_serves_within(broker.addr, "idle", PHASE).await;
    broker.stop().await;
}

/// A CONNECT announcing 256 MB is closed as soon as its length is read, even
/// though the client keeps trickling bytes (long before the connect timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_connect_trickling_is_closed_at_once() {
    let _serial = SERIAL.lock().await;
    let connect_timeout = Duration::from_secs(60);
    let broker = Running::start(Config {
        connect_timeout,
        ..Config::default()
    })
    .await;
    // Remaining length 268,435,455: the header in one write, or itself trickled.
    for (what, first) in [
        ("whole header", &[0x10u8, 0xFF, 0xFF, 0xFF, 0x7F][..]),
        ("trickled header", &[0x10][..]),
    ] {
        let started = Instant::now();
        let stream = Client::open_within(broker.addr, V311, PHASE).await.stream;
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(first).await.expect("write");
        // One more byte every 20 ms (the header's length bytes first), until
        // the broker closes; bounded so a broker that never closes fails below.
        let trickler = tokio::spawn(async move {
            let rest = [
                0xFFu8, 0xFF, 0xFF, 0x7F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 2, 0, 0,
            ];
            let body = if first.len() == 1 {
                &rest[..]
            } else {
                &rest[4..]
            };
            let mut pace = tokio::time::interval(Duration::from_millis(20));
            pace.tick().await;
            for b in body
                .iter()
                .copied()
                .chain(std::iter::repeat(b'x'))
                .take(500)
            {
                pace.tick().await;
                if writer.write_all(&[b]).await.is_err() {
                    break;
                }
            }
        });
        // Closed without an answer (3.1.1 CONNECT: no CONNACK code for it).
        let mut buf = [0u8; 64];
        match timeout(PROMPT, reader.read(&mut buf)).await {
            Err(_) => panic!("{what}: the 256 MB CONNECT was not closed within {PROMPT:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("{what}: the broker answered {:?}", &buf[..n]),
        }
        let closed = started.elapsed();
        trickler.abort();
        eprintln!("256 MB CONNECT ({what}) closed after {closed:?}");
        assert!(closed < PROMPT);
    }
    // The same PUBLISH header after a valid 5.0 CONNECT: DISCONNECT 0x95.
    let mut c = Client::connect_within(broker.addr, V5, "then-huge", 0, PHASE).await;
    c.send_raw(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, b't'])
        .await;
    let got = c.until_closed(PROMPT).await;
    assert!(
        matches!(got.as_slice(), [Packet::Disconnect(d)] if d.reason_code == reason::PACKET_TOO_LARGE),
        "{got:?}"
    );
    broker.connections_become(0, PROMPT).await;
    still_serves_within(broker.addr, "huge", PHASE).await;
    broker.stop().await;
}

/// xorshift64*: reproducible garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// 1,000 connections send random bytes, half of them after a valid CONNECT;
/// every one is closed (at once, or on the connect or keep-alive timeout for
/// bytes that happen to look like the start of a packet), and a client
/// connected throughout is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_garbage_connections() {
    let _serial = SERIAL.lock().await;
    const N: usize = 1000;
    raise_open_files(2 * N as libc::rlim_t + 200);
    let connect_timeout = Duration::from_secs(2);
    let broker = Running::start(Config {
        connect_timeout,
        ..Config::default()
    })
    .await;
    let mut good = Client::connect_within(broker.addr, V311, "bystander", 60, PHASE).await;
    good.subscribe("#", QoS::AtMostOnce).await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let len = 1 + (rng.next() % 512) as usize;
        let garbage = rng.bytes(len);
        let addr = broker.addr;
        tasks.push(tokio::spawn(async move {
            let what = format!("garbage connection {i}");
            let mut c = if i % 2 == 0 {
                Client::open_within(addr, V311, PHASE).await
            } else {
                // Keep alive 2 s: garbage that looks like a partial packet is
                // closed on the keep-alive timeout.
                let protocol = if i % 4 == 1 { V311 } else { V5 };
                Client::connect_within(addr, protocol, &format!("garbage-{i}"), 2, PHASE).await
            };
            let t0 = Instant::now();
            // The broker may close while this is being written.
            let _ = timeout(PROMPT, c.stream.write_all(&garbage)).await;
            read_until_closed(&mut c.stream, PHASE, &what).await;
            t0.elapsed()
        }));
    }
    let mut at_once = 0;
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + PHASE;
    for t in tasks {
        let took = timeout_at(until, t)
            .await
            .expect("every garbage connection closed in time")
            .expect("garbage task");
        if took < Duration::from_secs(1) {
            at_once += 1;
        }
        slowest = slowest.max(took);
    }
    // The bystander may have received what garbage published to "#"; drain it
    // and check it is still served.
    good.send(&Packet::PingReq).await;
    loop {
        match good.recv_within(PROMPT).await {
            Packet::PingResp => break,
            Packet::Publish(_) => {}
            other => panic!("bystander: unexpected {other:?}"),
        }
    }
    broker.connections_become(1, PROMPT).await;
    eprintln!(
        "{N} garbage connections handled in {:?}: {at_once} closed within 1 s, the slowest after {slowest:?}",
        started.elapsed()
    );
    still_serves_within(broker.addr, "garbage", PHASE).await;
    broker.stop().await;
}

/// A TLS client config trusting only `cert`.
fn tls_client(cert: &rcgen::CertifiedKey) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Silent and half-open clients on TLS and WebSocket listeners: before the
/// TLS or WebSocket handshake, in the middle of it, and after it without a
/// CONNECT. All are closed on the connect timeout, none before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_on_tls_and_websocket_closed() {
    use reference_broker::transport::{self, Acceptor};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let _serial = SERIAL.lock().await;
    const EACH: usize = 50;
    raise_open_files(2 * 8 * EACH as libc::rlim_t + 200);
    let connect_timeout = Duration::from_secs(2);
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let acceptor = transport::tls_acceptor(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .expect("an acceptor");
    let broker = Running::start(Config {
        connect_timeout,
        ..Config::default()
    })
    .await;
    let mut ports = Vec::new();
    let mut stops = Vec::new();
    for t in [
        Acceptor::Tls(acceptor.clone()),
        Acceptor::Ws,
        Acceptor::Wss(acceptor),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        ports.push(listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        stops.push(tx);
        tokio::spawn(transport::serve(
            listener,
            t,
            broker.shared.clone(),
            async move {
                let _ = rx.await;
            },
        ));
    }
    let (tls, ws, wss) = (ports[0], ports[1], ports[2]);
    let mut good = Client::connect_within(broker.addr, V5, "served", 60, PHASE).await;
    let connector = tls_client(&cert);
    let half_hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03,
    ];
    let half_upgrade: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n";

    let opened = Instant::now();
    let mut closers: Vec<(&str, JoinHandle<Duration>)> = Vec::new();
    // Raw TCP towards each listener: silent, or half a handshake.
    for (kind, addr, bytes) in [
        ("tls silent", tls, &[][..]),
        ("tls half ClientHello", tls, half_hello),
        ("ws silent", ws, &[][..]),
        ("ws half upgrade", ws, half_upgrade),
        ("wss silent", wss, &[][..]),
    ] {
        for _ in 0..EACH {
            let t0 = Instant::now();
            let mut stream = Client::open_within(addr, V311, PHASE).await.stream;
            stream.write_all(bytes).await.expect("write");
            closers.push((
                kind,
                tokio::spawn(async move {
                    read_until_closed(&mut stream, PHASE, kind).await;
                    t0.elapsed()
                }),
            ));
        }
    }
    // Handshakes completed, then silence (no CONNECT).
    for _ in 0..EACH {
        let t0 = Instant::now();
        let tcp = Client::open_within(tls, V311, PHASE).await.stream;
        let name =
            tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut stream = timeout(PROMPT, connector.connect(name, tcp))
            .await
            .expect("TLS handshake in time")
            .expect("TLS handshake");
        closers.push((
            "tls handshake done",
            tokio::spawn(async move {
                // Closed without an answer: EOF (after close_notify) or an error.
                let mut buf = [0u8; 64];
                match timeout(PHASE, stream.read(&mut buf)).await {
                    Err(_) => panic!("tls handshake done: still open after {PHASE:?}"),
                    Ok(Ok(0)) | Ok(Err(_)) => {}
                    Ok(Ok(n)) => panic!("tls handshake done: got {:?}", &buf[..n]),
                }
                t0.elapsed()
            }),
        ));
    }
    for (kind, addr) in [("ws handshake done", ws), ("wss handshake done", wss)] {
        for _ in 0..EACH {
            let scheme = if addr == wss { "wss" } else { "ws" };
            let mut request = format!("{scheme}://localhost:{}/mqtt", addr.port())
                .into_client_request()
                .expect("a request");
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            let t0 = Instant::now();
            let tcp = Client::open_within(addr, V311, PHASE).await.stream;
            let closer = if addr == wss {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost")
                    .expect("name");
                let tls = timeout(PROMPT, connector.connect(name, tcp))
                    .await
                    .expect("TLS handshake in time")
                    .expect("TLS handshake");
                let (ws, _) = timeout(PROMPT, tokio_tungstenite::client_async(request, tls))
                    .await
                    .expect("WebSocket handshake in time")
                    .expect("WebSocket handshake");
                tokio::spawn(ws_until_closed(ws, t0, kind))
            } else {
                let (ws, _) = timeout(PROMPT, tokio_tungstenite::client_async(request, tcp))
                    .await
                    .expect("WebSocket handshake in time")
                    .expect("WebSocket handshake");
                tokio::spawn(ws_until_closed(ws, t0, kind))
            };
            closers.push((kind, closer));
        }
    }
    let all_open = opened.elapsed();
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    while closers.iter().any(|(_, c)| !c.is_finished()) {
        assert!(
            opened.elapsed() < PHASE,
            "clients still open after {PHASE:?}"
        );
        pace.tick().await;
        good.ping().await;
    }
    let mut report = std::collections::BTreeMap::<&str, (Duration, Duration)>::new();
    for (kind, c) in closers {
        let at = c.await.expect("closer task");
        let e = report
            .entry(kind)
            .or_insert((Duration::MAX, Duration::ZERO));
        e.0 = e.0.min(at);
        e.1 = e.1.max(at);
    }
    for (kind, (first, last)) in &report {
        eprintln!(
            "{EACH} × {kind}: closed between {first:?} and {last:?} after opening \
             (connect timeout {connect_timeout:?}; all opened in {all_open:?})"
        );
        assert!(
            *first >= connect_timeout,
            "{kind}: closed after {first:?}, before the connect timeout"
        );
    }
    broker.connections_become(1, PROMPT).await;
    good.ping().await;
    drop(stops);
    broker.stop().await;
}

/// Reads a client WebSocket until the broker ends it; returns how long after `t0`.
async fn ws_until_closed<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    t0: Instant,
    kind: &'static str,
) -> Duration
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let until = Instant::now() + PHASE;
    loop {
        match timeout_at(until, ws.next()).await {
            Err(_) => panic!("{kind}: still open after {PHASE:?}"),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(m))) => panic!("{kind}: got {m:?}"),
        }
    }
    t0.elapsed()
}
