//! `mqtt-harness bench`: small bounded runs against the embedded reference
//! broker and mosquitto (message counts, zero loss at QoS 1 and 2, the JSON
//! fields, ordered percentiles), a fake broker that drops one QoS 1 message
//! (the loss is reported and fails the run), and bad input.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use mqtt_codec::{ConnAck, DecodeOptions, Decoder, Packet, Protocol, PubResponse, Sender, SubAck};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harness(args: &[&str]) -> Output {
    let out = Command::new(support::BIN)
        .args(args)
        .output()
        .expect("the mqtt-harness binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bench_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["bench", "--json", "-", "--quiet"];
    all.extend_from_slice(args);
    let out = harness(&all);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    (out.code, v, out.stderr)
}

/// Counts and loss of a run that must deliver everything.
fn assert_complete(r: &Value, sent: u64, subscribers: u64) {
    assert_eq!(r["sent"], sent, "{r}");
    assert_eq!(r["expected"], sent * subscribers, "{r}");
    assert_eq!(r["received"], sent * subscribers, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["duplicates"], 0, "{r}");
    assert_eq!(r["errors"]["count"], 0, "{r}");
    let l = &r["latency_ms"];
    let (p50, p99, p999, max) = (
        l["p50"].as_f64().expect("p50"),
        l["p99"].as_f64().expect("p99"),
        l["p999"].as_f64().expect("p99.9"),
        l["max"].as_f64().expect("max"),
    );
    assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{l}");
    assert_eq!(l["samples"], sent * subscribers, "{l}");
    for key in [
        "throughput",
        "connections",
        "qos",
        "protocol",
        "payload_size",
        "exit_status",
    ] {
        assert!(!r[key].is_null(), "{key} in {r}");
    }
    assert!(
        r["throughput"]["sent_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
}

#[test]
fn qos_1_and_2_against_the_embedded_broker_lose_nothing() {
    let broker = support::embedded(&[]);
    for qos in ["1", "2"] {
        let (code, r, err) = bench_json(&[
            "--target",
            &broker.url(),
            "-q",
            qos,
            "-n",
            "500",
            "-P",
            "2",
            "-S",
            "2",
            "--topics",
            "2",
            "-c",
            "5",
        ]);
        assert_eq!(code, 0, "{err}");
        assert_complete(&r, 1000, 2);
        assert_eq!(r["acknowledged"], 1000, "{r}");
        assert_eq!(r["connections"]["opened"], 9, "{r}");
        assert_eq!(r["exit_status"], 0);
    }
}

#[test]
fn without_a_target_the_embedded_broker_is_loaded_and_the_table_printed() {
    let out = harness(&["bench", "-q", "0", "-n", "300", "--size", "100", "--quiet"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for row in [
        "connections",
        "sent          300",
        "received      300 of 300 expected",
        "latency       p50",
    ] {
        assert!(out.stdout.contains(row), "{row}: {}", out.stdout);
    }
}

#[test]
fn the_progress_line_goes_to_stderr_unless_quiet() {
    let out = harness(&["bench", "-q", "1", "-n", "200"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let last = out.stderr.lines().last().unwrap_or("");
    assert!(
        last.contains("sent 200") && last.contains("received 200"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.starts_with("bench of "), "{}", out.stdout);
    let out = harness(&["bench", "-q", "1", "-n", "200", "--quiet"]);
    assert_eq!(out.stderr, "", "--quiet prints nothing on stderr");
}

#[test]
fn mosquitto_delivers_everything_at_qos_1_and_2() {
    let broker = support::mosquitto("");
    for (qos, protocol) in [("1", "3.1.1"), ("2", "5.0")] {
        // Below mosquitto's default queue of 1000 per subscriber, which drops beyond it.
        let (code, r, err) = bench_json(&[
            "--target",
            &broker.url(),
            "-q",
            qos,
            "-V",
            protocol,
            "-n",
            "400",
            "-S",
            "2",
        ]);
        assert_eq!(code, 0, "{err}");
        assert_complete(&r, 400, 2);
        assert_eq!(r["protocol"], protocol);
    }
}

#[test]
fn a_rate_bounds_what_is_sent_in_a_duration() {
    let broker = support::embedded(&[]);
    let (code, r, err) =
        bench_json(&["--target", &broker.url(), "-q", "1", "-r", "50", "-d", "1s"]);
    assert_eq!(code, 0, "{err}");
    let sent = r["sent"].as_u64().expect("sent");
    // The rate admits at most one message more than rate × duration.
    assert!(sent > 0 && sent <= 51, "{sent}");
    assert_eq!(r["received"], sent);
}

/// A broker that answers CONNECT and SUBSCRIBE, acknowledges every QoS 1
/// PUBLISH, and forwards each to the subscribers but the third.
fn dropping_broker() -> u16 {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = std_listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        rt.block_on(async move {
            std_listener.set_nonblocking(true).expect("non-blocking");
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("a listener");
            let subscribers: Arc<tokio::sync::Mutex<Vec<mpsc::UnboundedSender<Vec<u8>>>>> =
                Arc::default();
            let published = Arc::new(AtomicUsize::new(0));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(stream, subscribers.clone(), published.clone()));
            }
        });
    });
    port
}

async fn serve(
    stream: tokio::net::TcpStream,
    subscribers: Arc<tokio::sync::Mutex<Vec<mpsc::UnboundedSender<Vec<u8>>>>>,
    published: Arc<AtomicUsize>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut decoder = Decoder::new(DecodeOptions::new(Protocol::V3_1_1, Sender::Client));
    let mut buf = BytesMut::new();
    let encode = |p: &Packet| {
        mqtt_codec::encode_bytes(p, Protocol::V3_1_1)
            .expect("encodes")
            .to_vec()
    };
    loop {
        while let Ok(Some(packet)) = decoder.decode(&mut buf) {
            match packet {
                Packet::Connect(_) => {
                    let _ = tx.send(encode(&Packet::ConnAck(ConnAck::default())));
                }
                Packet::Subscribe(s) => {
                    subscribers.lock().await.push(tx.clone());
                    let _ = tx.send(encode(&Packet::SubAck(SubAck {
                        packet_id: s.packet_id,
                        reason_codes: vec![1; s.filters.len()],
                        ..SubAck::default()
                    })));
                }
                Packet::Publish(mut p) => {
                    let _ = tx.send(encode(&Packet::PubAck(PubResponse::new(p.packet_id))));
                    if published.fetch_add(1, Ordering::SeqCst) == 2 {
                        continue;
                    }
                    p.packet_id = 1;
                    let bytes = encode(&Packet::Publish(p));
                    for s in subscribers.lock().await.iter() {
                        let _ = s.send(bytes.clone());
                    }
                }
                Packet::Disconnect(_) => return,
                _ => {}
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[test]
fn a_broker_that_drops_a_qos_1_message_fails_the_run_with_the_loss_reported() {
    let port = dropping_broker();
    let (code, r, err) = bench_json(&[
        "--target",
        &format!("mqtt://127.0.0.1:{port}"),
        "-q",
        "1",
        "-n",
        "10",
        "--drain",
        "300ms",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(r["exit_status"], 1);
    assert_eq!(r["sent"], 10, "{r}");
    assert_eq!(r["acknowledged"], 10, "{r}");
    assert_eq!(r["received"], 9, "{r}");
    assert_eq!(r["lost"], 1, "{r}");
    assert!(err.contains("the run failed: 1 lost"), "{err}");
}

#[test]
fn bad_input_exits_2_and_an_unreachable_target_3() {
    let out = harness(&["bench", "--size", "5"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--size must be at least 20"),
        "{}",
        out.stderr
    );
    let out = harness(&["bench", "-q", "3"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = harness(&["bench", "--topics", "0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let port = support::free_port();
    let out = harness(&[
        "bench",
        "--target",
        &format!("mqtt://127.0.0.1:{port}"),
        "-n",
        "1",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
}
