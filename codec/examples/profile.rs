//! Runs one bench case a fixed number of times, for callgrind, whose
//! instruction counts repeat from run to run where wall-clock times on a
//! shared machine do not:
//!
//! ```text
//! cargo build --release -p mqtt-codec --example profile
//! valgrind --tool=callgrind --toggle-collect='profile::run*' \
//!     target/release/examples/profile encode control ours 1000
//! ```
//!
//! `OP` is `encode` or `decode`, `STREAM` one of the bench's streams
//! (`telemetry`, `large`, `control`, each also `-v5`), `CODEC` one of `ours`,
//! `ours-borrowed` (decode only), `rumqttc`, `mqttrs` (3.1.1 only). The
//! inputs are built outside `run`, so `--toggle-collect` counts only the
//! codec's work: a decoder that consumes its input gets a fresh copy per
//! iteration made beforehand, as the bench's batches are.

#[path = "../benches/common/streams.rs"]
mod streams;

use std::hint::black_box;

use bytes::BytesMut;
use mqtt_codec::{Packet, Protocol, Sender};
use streams::*;

/// What one iteration does, prepared outside the counted section.
enum Case {
    EncodeOurs(Vec<Packet>, Protocol),
    EncodeRumqttcV4(Vec<rv4::Packet>),
    EncodeRumqttcV5(Vec<rv5::Packet>),
    EncodeMqttrs(Vec<mqttrs::Packet<'static>>),
    /// Decoders that consume their input get a fresh copy per iteration,
    /// made here.
    DecodeOurs(Vec<(BytesMut, BytesMut)>, Protocol),
    DecodeRumqttcV4(Vec<(BytesMut, BytesMut)>),
    DecodeRumqttcV5(Vec<(BytesMut, BytesMut)>),
    DecodeBorrowed(Protocol),
    DecodeMqttrs,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [op, stream, codec, iters] = args.as_slice() else {
        eprintln!("usage: profile encode|decode STREAM CODEC ITERATIONS");
        std::process::exit(2);
    };
    let iters: usize = iters.parse().expect("ITERATIONS is a number");
    let (protocol, base) = match stream.strip_suffix("-v5") {
        Some(b) => (Protocol::V5, b),
        None => (Protocol::V3_1_1, stream.as_str()),
    };
    let s: &'static Stream = Box::leak(Box::new(match base {
        "telemetry" => telemetry(protocol),
        "large" => large(protocol),
        "control" => control(protocol),
        other => panic!("no stream {other}"),
    }));
    let mut case = match (op.as_str(), codec.as_str()) {
        ("encode", "ours") => {
            let mut p = ours_packets(&s.client, protocol, Sender::Client);
            p.extend(ours_packets(&s.server, protocol, Sender::Server));
            Case::EncodeOurs(p, protocol)
        }
        ("encode", "rumqttc") if protocol.is_v5() => {
            let mut p = rumqttc_v5_packets(&s.client);
            p.extend(rumqttc_v5_packets(&s.server));
            Case::EncodeRumqttcV5(p)
        }
        ("encode", "rumqttc") => {
            let mut p = rumqttc_v4_packets(&s.client);
            p.extend(rumqttc_v4_packets(&s.server));
            Case::EncodeRumqttcV4(p)
        }
        ("encode", "mqttrs") => {
            let mut p = mqttrs_packets(&s.client);
            p.extend(mqttrs_packets(&s.server));
            Case::EncodeMqttrs(p)
        }
        ("decode", "ours") => Case::DecodeOurs(copies(s, iters), protocol),
        ("decode", "rumqttc") if protocol.is_v5() => Case::DecodeRumqttcV5(copies(s, iters)),
        ("decode", "rumqttc") => Case::DecodeRumqttcV4(copies(s, iters)),
        ("decode", "ours-borrowed") => Case::DecodeBorrowed(protocol),
        ("decode", "mqttrs") => Case::DecodeMqttrs,
        other => panic!("no case {other:?}"),
    };
    let mut out = BytesMut::with_capacity(s.len());
    let mut slice = vec![0u8; s.len()];
    let n = run(&mut case, s, iters, &mut out, &mut slice);
    eprintln!("{op} {stream} {codec}: {iters} iterations, {n}");
}

fn copies(s: &Stream, iters: usize) -> Vec<(BytesMut, BytesMut)> {
    (0..iters).map(|_| s.buffers()).collect()
}

#[inline(never)]
fn run(case: &mut Case, s: &Stream, iters: usize, out: &mut BytesMut, slice: &mut [u8]) -> usize {
    let mut n = 0;
    for i in 0..iters {
        n += match case {
            Case::EncodeOurs(p, protocol) => {
                out.clear();
                ours_encode(black_box(p), *protocol, out);
                out.len()
            }
            Case::EncodeRumqttcV4(p) => {
                out.clear();
                rumqttc_v4_encode(black_box(p), out);
                out.len()
            }
            Case::EncodeRumqttcV5(p) => {
                out.clear();
                rumqttc_v5_encode(black_box(p), out);
                out.len()
            }
            Case::EncodeMqttrs(p) => mqttrs_encode(black_box(p), slice),
            Case::DecodeOurs(b, protocol) => {
                let (c, v) = &mut b[i];
                ours_decode(c, *protocol, Sender::Client)
                    + ours_decode(v, *protocol, Sender::Server)
            }
            Case::DecodeRumqttcV4(b) => {
                let (c, v) = &mut b[i];
                rumqttc_v4_decode(c) + rumqttc_v4_decode(v)
            }
            Case::DecodeRumqttcV5(b) => {
                let (c, v) = &mut b[i];
                rumqttc_v5_decode(c) + rumqttc_v5_decode(v)
            }
            Case::DecodeBorrowed(protocol) => {
                ours_borrowed_decode(&s.client, *protocol, Sender::Client)
                    + ours_borrowed_decode(&s.server, *protocol, Sender::Server)
            }
            Case::DecodeMqttrs => mqttrs_decode(&s.client) + mqttrs_decode(&s.server),
        };
    }
    black_box(n)
}
