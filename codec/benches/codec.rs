//! Decode / encode throughput of our codec against peer MQTT codecs, on the
//! same bytes in the same run.
//!
//! Three traffic shapes, each a client-sent and a server-sent byte stream built
//! once up front by our encoder:
//!
//! * `telemetry`: many small PUBLISH (QoS 0 and QoS 1, ~40-byte payload) with
//!   the server's PUBACKs, and PINGREQ / PINGRESP;
//! * `large`: one PUBLISH with a 64 KiB payload;
//! * `control`: CONNECT (will, user name, password), CONNACK, SUBSCRIBE with
//!   several filters, SUBACK, a QoS 2 flow each way
//!   (PUBLISH / PUBREC / PUBREL / PUBCOMP), UNSUBSCRIBE, UNSUBACK, DISCONNECT.
//!
//! MQTT 3.1.1 streams are decoded and encoded by ours, `rumqttc::mqttbytes::v4`
//! and `mqttrs`; MQTT 5.0 streams (`*-v5` groups) by ours and
//! `rumqttc::v5::mqttbytes::v5`. Groups read `decode/telemetry/ours`,
//! `decode/telemetry/rumqttc`, `decode/telemetry/mqttrs`, …
//!
//! Every decoder is fed a fresh `BytesMut` copy of the streams made outside the
//! timed section (`iter_batched_ref`): ours and rumqttc split frames off it,
//! mqttrs borrows from it. Each decoded packet is dropped inside the timed
//! section, as a real consumer would. Our decoder is the stream API
//! (`mqtt_codec::Decoder`), told who sent each stream.
//!
//! Before anything is timed, `validate` checks that every codec decodes the
//! expected number of packets of each stream, that every encoder writes the
//! stream back byte for byte, and that our decoded 64 KiB payload lies inside
//! the input buffer (zero copy).

#[path = "common/streams.rs"]
mod streams;

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use mqtt_codec::{DecodeOptions, Decoder, Packet, Protocol, Sender};
use streams::*;

/// Decoders consume their input, so each timed batch gets fresh copies made
/// before the clock starts. A fixed, small batch keeps those copies within the
/// L2 cache (criterion's `SmallInput` would make thousands of them up front and
/// stream them in from memory).
const BATCH: BatchSize = BatchSize::NumIterations(16);

// ---------------------------------------------------------------------------
// Start-up checks: nobody is benchmarked doing nothing.
// ---------------------------------------------------------------------------

fn validate(s: &Stream) {
    let name = s.name;
    let (mut c, mut v) = s.buffers();
    let n = ours_decode(&mut c, s.protocol, Sender::Client)
        + ours_decode(&mut v, s.protocol, Sender::Server);
    assert_eq!(n, s.packets(), "{name}: ours decoded {n} packets");
    assert!(
        c.is_empty() && v.is_empty(),
        "{name}: ours left bytes undecoded"
    );
    let n = ours_borrowed_decode(&s.client, s.protocol, Sender::Client)
        + ours_borrowed_decode(&s.server, s.protocol, Sender::Server);
    assert_eq!(n, s.packets(), "{name}: ours-borrowed decoded {n} packets");

    let (mut c, mut v) = s.buffers();
    let n = if s.protocol.is_v5() {
        rumqttc_v5_decode(&mut c) + rumqttc_v5_decode(&mut v)
    } else {
        rumqttc_v4_decode(&mut c) + rumqttc_v4_decode(&mut v)
    };
    assert_eq!(n, s.packets(), "{name}: rumqttc decoded {n} packets");

    if !s.protocol.is_v5() {
        let n = mqttrs_decode(&s.client) + mqttrs_decode(&s.server);
        assert_eq!(n, s.packets(), "{name}: mqttrs decoded {n} packets");
    }

    // Every encoder writes the very same bytes back.
    for (bytes, from) in [(&s.client, Sender::Client), (&s.server, Sender::Server)] {
        let mut out = BytesMut::new();
        ours_encode(&ours_packets(bytes, s.protocol, from), s.protocol, &mut out);
        assert_eq!(&out[..], &bytes[..], "{name}: ours re-encodes differently");
        let mut out = BytesMut::new();
        if s.protocol.is_v5() {
            rumqttc_v5_encode(&rumqttc_v5_packets(bytes), &mut out);
            assert_eq!(
                &out[..],
                &bytes[..],
                "{name}: rumqttc v5 re-encodes differently"
            );
        } else {
            rumqttc_v4_encode(&rumqttc_v4_packets(bytes), &mut out);
            assert_eq!(
                &out[..],
                &bytes[..],
                "{name}: rumqttc v4 re-encodes differently"
            );
            let mut out = vec![0u8; bytes.len()];
            let n = mqttrs_encode(&mqttrs_packets(bytes), &mut out);
            assert_eq!(
                &out[..n],
                &bytes[..],
                "{name}: mqttrs re-encodes differently"
            );
        }
    }
}

/// Our decoded 64 KiB payload must be a view of the input buffer, for the
/// stream API and for `decode_bytes` alike.
fn check_zero_copy(s: &Stream) {
    let inside = |payload: &[u8], base: *const u8, len: usize| {
        let (start, end) = (base as usize, base as usize + len);
        let p = payload.as_ptr() as usize;
        p >= start && p + payload.len() <= end
    };
    let mut buf = BytesMut::from(&s.client[..]);
    let (base, len) = (buf.as_ptr(), buf.len());
    let mut d = Decoder::new(DecodeOptions::new(s.protocol, Sender::Client));
    match d.decode(&mut buf).expect("ours: decode") {
        Some(Packet::Publish(p)) => {
            assert_eq!(p.payload.len(), 64 * 1024, "{}: payload length", s.name);
            assert!(
                inside(&p.payload, base, len),
                "{}: Decoder copied the payload",
                s.name
            );
            assert!(
                inside(p.topic.as_bytes(), base, len),
                "{}: Decoder copied the topic",
                s.name
            );
        }
        other => panic!("{}: expected PUBLISH, got {other:?}", s.name),
    }
    let opts = DecodeOptions::new(s.protocol, Sender::Client);
    match mqtt_codec::decode_bytes(&s.client, &opts).expect("ours: decode_bytes") {
        mqtt_codec::Decoded::Packet {
            packet: Packet::Publish(p),
            ..
        } => {
            assert!(
                inside(&p.payload, s.client.as_ptr(), s.client.len()),
                "{}: decode_bytes copied the payload",
                s.name
            );
        }
        other => panic!("{}: expected PUBLISH, got {other:?}", s.name),
    }
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

fn bench_decode(c: &mut Criterion, s: &Stream) {
    let mut g = c.benchmark_group(format!("decode/{}", s.name));
    g.throughput(Throughput::Bytes(s.len() as u64));
    let protocol = s.protocol;

    g.bench_function("ours", |b| {
        b.iter_batched_ref(
            || s.buffers(),
            |(c, v)| {
                ours_decode(c, protocol, Sender::Client) + ours_decode(v, protocol, Sender::Server)
            },
            BATCH,
        )
    });
    g.bench_function("ours-borrowed", |b| {
        b.iter_batched_ref(
            || s.buffers(),
            |(c, v)| {
                ours_borrowed_decode(c, protocol, Sender::Client)
                    + ours_borrowed_decode(v, protocol, Sender::Server)
            },
            BATCH,
        )
    });
    if protocol.is_v5() {
        g.bench_function("rumqttc", |b| {
            b.iter_batched_ref(
                || s.buffers(),
                |(c, v)| rumqttc_v5_decode(c) + rumqttc_v5_decode(v),
                BATCH,
            )
        });
    } else {
        g.bench_function("rumqttc", |b| {
            b.iter_batched_ref(
                || s.buffers(),
                |(c, v)| rumqttc_v4_decode(c) + rumqttc_v4_decode(v),
                BATCH,
            )
        });
        g.bench_function("mqttrs", |b| {
            b.iter_batched_ref(
                || s.buffers(),
                |(c, v)| mqttrs_decode(c) + mqttrs_decode(v),
                BATCH,
            )
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion, s: &Stream) {
    let mut g = c.benchmark_group(format!("encode/{}", s.name));
    g.throughput(Throughput::Bytes(s.len() as u64));
    let protocol = s.protocol;
    let cap = s.len();

    let mut ours = ours_packets(&s.client, protocol, Sender::Client);
    ours.extend(ours_packets(&s.server, protocol, Sender::Server));
    g.bench_function("ours", |b| {
        let mut out = BytesMut::with_capacity(cap);
        b.iter(|| {
            out.clear();
            ours_encode(black_box(&ours), protocol, &mut out);
            black_box(out.len())
        })
    });

    if protocol.is_v5() {
        let mut theirs = rumqttc_v5_packets(&s.client);
        theirs.extend(rumqttc_v5_packets(&s.server));
        g.bench_function("rumqttc", |b| {
            let mut out = BytesMut::with_capacity(cap);
            b.iter(|| {
                out.clear();
                rumqttc_v5_encode(black_box(&theirs), &mut out);
                black_box(out.len())
            })
        });
    } else {
        let mut theirs = rumqttc_v4_packets(&s.client);
        theirs.extend(rumqttc_v4_packets(&s.server));
        g.bench_function("rumqttc", |b| {
            let mut out = BytesMut::with_capacity(cap);
            b.iter(|| {
                out.clear();
                rumqttc_v4_encode(black_box(&theirs), &mut out);
                black_box(out.len())
            })
        });
        let mut rs = mqttrs_packets(&s.client);
        rs.extend(mqttrs_packets(&s.server));
        g.bench_function("mqttrs", |b| {
            let mut out = vec![0u8; cap];
            b.iter(|| black_box(mqttrs_encode(black_box(&rs), &mut out)))
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let streams = [
        telemetry(Protocol::V3_1_1),
        large(Protocol::V3_1_1),
        control(Protocol::V3_1_1),
        telemetry(Protocol::V5),
        large(Protocol::V5),
        control(Protocol::V5),
    ];
    for s in &streams {
        validate(s);
        eprintln!(
            "stream {:<13} {:>6} bytes, {:>3} packets ({} client, {} server)",
            s.name,
            s.len(),
            s.packets(),
            s.client_packets,
            s.server_packets
        );
    }
    check_zero_copy(&streams[1]);
    check_zero_copy(&streams[4]);

    for s in &streams {
        bench_decode(c, s);
    }
    for s in &streams {
        bench_encode(c, s);
    }
}

criterion_group!(codec, benches);
criterion_main!(codec);
