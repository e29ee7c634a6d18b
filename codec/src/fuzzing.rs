//! The fuzz harness. Each cargo-fuzz target in `fuzz/` is one call into this
//! module, so the properties checked live beside the codec and run under
//! `cargo test` as well as under libFuzzer.
//!
//! Each function takes the fuzzer's bytes; its first byte picks the protocol
//! version and the sender (see [`select`]). The functions panic, and only
//! panic, when the codec breaks a property:
//!
//! - [`decode`]: any bytes, decoded as a stream, never panic; the one-shot
//!   and the stream decoder agree packet for packet and on the final error,
//!   whether the bytes arrive at once or split at every point where the
//!   decoder's answer can change (one byte at a time through each fixed
//!   header, then one byte short of each packet's end); nothing consumed is
//!   beyond the input; every accepted packet re-encodes, and decodes back equal.
//! - [`roundtrip`]: a generated valid packet encodes to `encoded_len` bytes
//!   and decodes back equal, from those bytes exactly.
//! - [`stream_split`]: a generated stream, encoded and fed to the stream
//!   decoder in arbitrary chunks, decodes to the same packets.

use arbitrary::Unstructured;
use bytes::{Bytes, BytesMut};

use crate::decode::{decode_bytes, DecodeOptions, Decoded, Decoder};
use crate::encode::{encode, encode_bytes, encoded_len};
use crate::error::DecodeError;
use crate::gen;
use crate::types::{Packet, Sender};
use crate::Protocol;

/// The version and sender a selector byte stands for: the byte modulo 3
/// picks 3.1, 3.1.1 or 5.0; the byte divided by 3, odd or even, the server or
/// the client.
pub fn select(byte: u8) -> (Protocol, Sender) {
    let protocol = match byte % 3 {
        0 => Protocol::V3_1,
        1 => Protocol::V3_1_1,
        _ => Protocol::V5,
    };
    let from = match (byte / 3) % 2 {
        0 => Sender::Client,
        _ => Sender::Server,
    };
    (protocol, from)
}

/// The selector byte for `protocol` and `from` (the inverse of [`select`]).
pub fn selector(protocol: Protocol, from: Sender) -> u8 {
    let p = match protocol {
        Protocol::V3_1 => 0,
        Protocol::V3_1_1 => 1,
        Protocol::V5 => 2,
    };
    p + if from == Sender::Server { 3 } else { 0 }
}

/// How a stream of bytes ended: cleanly or inside a packet (`Ok`), or on a
/// refused packet.
type End = Result<(), DecodeError>;

/// Decodes arbitrary bytes as a stream three ways and checks that they agree.
pub fn decode(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (protocol, from) = select(first);
    let (packets, consumed, end) = decode_one_shot(rest, protocol, from);
    assert!(
        consumed <= rest.len(),
        "consumed {consumed} of {} bytes",
        rest.len()
    );

    let (whole, position, whole_end) = decode_stream(rest, protocol, from, Feed::Whole);
    assert_eq!(packets, whole, "decode_bytes and Decoder disagree");
    assert_eq!(end, whole_end, "decode_bytes and Decoder end differently");
    if end.is_ok() {
        assert_eq!(position, consumed, "Decoder position");
    }

    let (trickle, _, trickle_end) = decode_stream(rest, protocol, from, Feed::Edges);
    assert_eq!(packets, trickle, "split decoding differs");
    assert_eq!(end, trickle_end, "split decoding ends differently");
}

/// `decode_bytes` from successive offsets, taking the version a CONNECT
/// announces as the stream's (as [`Decoder`] does). Re-encodes each packet.
fn decode_one_shot(input: &[u8], protocol: Protocol, from: Sender) -> (Vec<Packet>, usize, End) {
    let input = Bytes::copy_from_slice(input);
    let mut opts = DecodeOptions::new(protocol, from);
    let mut packets = Vec::new();
    let mut offset = 0;
    let end = loop {
        let tail = input.slice(offset..);
        let result = decode_bytes(&tail, &opts);
        // The borrowing decoder makes the same decisions.
        match (&result, crate::decode::decode_slice(&tail, &opts)) {
            (
                Ok(Decoded::Packet { packet, len }),
                Ok(Decoded::Packet {
                    packet: view,
                    len: l,
                }),
            ) => {
                assert_eq!(*len, l, "decode_slice length");
                assert_eq!(&view.to_owned_packet(), packet, "decode_slice packet");
            }
            (Ok(Decoded::Incomplete { needed }), Ok(Decoded::Incomplete { needed: n })) => {
                assert_eq!(*needed, n, "decode_slice needed");
            }
            (Err(e), Err(f)) => assert_eq!(e, &f, "decode_slice error"),
            // ok: a fuzz harness reports a broken property by panicking.
            (a, b) => panic!("decode_bytes gave {a:?}, decode_slice gave {b:?}"), // ok: fuzz assertion
        }
        match result {
            Ok(Decoded::Packet { packet, len }) => {
                assert!(
                    len >= 2 && len <= tail.len(),
                    "packet of {len} bytes from {} bytes",
                    tail.len()
                );
                strings_are_utf8(&packet);
                reencode(&packet, &opts);
                offset += len;
                if let Packet::Connect(c) = &packet {
                    opts.protocol = c.protocol;
                }
                packets.push(packet);
            }
            Ok(Decoded::Incomplete { needed }) => {
                assert!(needed > 0, "incomplete, yet needing nothing");
                break Ok(());
            }
            Err(mut e) => {
                e.offset += offset;
                break Err(e);
            }
        }
    };
    (packets, offset, end)
}

/// How the stream decoder is fed.
#[derive(Clone, Copy)]
enum Feed {
    /// Everything at once.
    Whole,
    /// At every point where its answer can change: one byte at a time while
    /// the fixed header is incomplete, then all but the last byte of the
    /// packet, then the last. In between only the buffer's length changes,
    /// and the decoder's answer cannot (it reads nothing past the fixed
    /// header until the packet is whole), so this checks what feeding one
    /// byte at a time would, at a cost per packet of its header's length
    /// rather than its size (which kept the target below 100,000 runs/s).
    Edges,
}

/// The stream [`Decoder`], fed as `feed` says.
fn decode_stream(
    input: &[u8],
    protocol: Protocol,
    from: Sender,
    feed: Feed,
) -> (Vec<Packet>, usize, End) {
    let mut decoder = Decoder::new(DecodeOptions::new(protocol, from));
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = match feed {
            Feed::Whole => input.len(),
            Feed::Edges => decoder.needed(&buf).saturating_sub(1).max(1),
        };
        let end = at.saturating_add(n).min(input.len());
        buf.extend_from_slice(input.get(at..end).unwrap_or(&[]));
        at = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => {
                    assert!(
                        decoder.needed(&buf) > 0,
                        "waiting for more, yet needing nothing"
                    );
                    break;
                }
                Err(e) => return (packets, decoder.position, Err(e)),
            }
        }
    }
    assert!(decoder.position <= input.len());
    (packets, decoder.position, Ok(()))
}

/// A packet the decoder accepted must encode, and decode back to itself from
/// exactly the encoded bytes. The encoding may differ from the input (a
/// 5.0 ack's short form, a non-minimal 3.x length), but is a fixed point.
/// Every string of a decoded packet passes the standard library's own
/// UTF-8 check: both decoders build their strings unchecked after the
/// codec's ASCII test (or `from_utf8` when it fails), so this is the one
/// check of them that does not go through the codec's code.
fn strings_are_utf8(packet: &Packet) {
    use crate::props::{Properties, Value};
    let mut strings: Vec<&str> = Vec::new();
    fn props<'a>(p: &'a Properties, out: &mut Vec<&'a str>) {
        for v in p.iter().map(|p| p.value()) {
            match v {
                Value::Utf8(s) => out.push(s),
                Value::Utf8Pair(k, v) => out.extend([&**k, &**v]),
                _ => {}
            }
        }
    }
    match packet {
        Packet::Connect(c) => {
            props(&c.properties, &mut strings);
            strings.push(&c.client_id);
            if let Some(w) = &c.will {
                props(&w.properties, &mut strings);
                strings.push(&w.topic);
            }
            strings.extend(c.username.as_deref());
        }
        Packet::ConnAck(a) => props(&a.properties, &mut strings),
        Packet::Publish(p) => {
            props(&p.properties, &mut strings);
            strings.push(&p.topic);
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            props(&r.properties, &mut strings)
        }
        Packet::Subscribe(s) => {
            props(&s.properties, &mut strings);
            strings.extend(s.filters.iter().map(|f| &*f.filter));
        }
        Packet::SubAck(a) => props(&a.properties, &mut strings),
        Packet::Unsubscribe(u) => {
            props(&u.properties, &mut strings);
            strings.extend(u.filters.iter().map(|f| &**f));
        }
        Packet::UnsubAck(a) => props(&a.properties, &mut strings),
        Packet::Disconnect(d) => props(&d.properties, &mut strings),
        Packet::Auth(a) => props(&a.properties, &mut strings),
        Packet::PingReq | Packet::PingResp => {}
    }
    for s in strings {
        assert!(
            std::str::from_utf8(s.as_bytes()).is_ok(),
            "a decoded string is not UTF-8: {:02X?}",
            s.as_bytes()
        );
    }
}

fn reencode(packet: &Packet, opts: &DecodeOptions) {
    let bytes = encode_bytes(packet, opts.protocol)
        .unwrap_or_else(|e| panic!("a decoded packet does not encode: {e}\n{packet:?}")); // ok: fuzz assertion
    assert_eq!(
        encoded_len(packet, opts.protocol),
        Ok(bytes.len()),
        "encoded_len"
    );
    match decode_bytes(&bytes, opts) {
        // Equal to the packet, the re-decoded one encodes to the same bytes
        // (encoding is a function of the packet): a fixed point, with no
        // third encoding to check it.
        Ok(Decoded::Packet { packet: again, len }) => {
            assert_eq!(len, bytes.len(), "re-decoded length");
            assert_eq!(&again, packet, "re-decoded packet");
        }
        other => finding(format!(
            "re-encoded packet does not decode: {other:?}\n{packet:?}\nbytes: {bytes:02X?}"
        )),
    }
}

/// Generates one valid packet and checks that it round-trips.
pub fn roundtrip(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (protocol, from) = select(first);
    let mut u = Unstructured::new(rest);
    let packet = match gen::packet(&mut u, protocol, from) {
        Ok(p) => p,
        Err(arbitrary::Error::NotEnoughData) => return,
        Err(e) => panic!("the generator failed: {e}"), // ok: fuzz assertion
    };
    let bytes = encode_bytes(&packet, protocol)
        .unwrap_or_else(|e| panic!("a generated packet does not encode: {e}\n{packet:?}")); // ok: fuzz assertion
    assert_eq!(
        encoded_len(&packet, protocol),
        Ok(bytes.len()),
        "encoded_len"
    );
    let opts = DecodeOptions::new(protocol, from);
    match decode_bytes(&bytes, &opts) {
        Ok(Decoded::Packet {
            packet: decoded,
            len,
        }) => {
            assert_eq!(len, bytes.len(), "decoded length");
            assert_eq!(decoded, packet, "decoded packet");
        }
        other => finding(format!(
            "a generated packet does not decode: {other:?}\n{packet:?}\nbytes: {bytes:02X?}"
        )),
    }
    let mut buf = BytesMut::from(&bytes[..]);
    let mut decoder = Decoder::new(opts);
    assert_eq!(decoder.decode(&mut buf), Ok(Some(packet)), "Decoder");
    assert!(buf.is_empty());
}

/// Generates a stream, encodes it, and feeds the stream decoder in chunks
/// whose sizes come from the rest of the input (the rest at once when the
/// input runs out).
pub fn stream_split(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (protocol, from) = select(first);
    let mut u = Unstructured::new(rest);
    let packets = match gen::stream(&mut u, protocol, from) {
        Ok(p) => p,
        Err(arbitrary::Error::NotEnoughData) => return,
        Err(e) => panic!("the generator failed: {e}"), // ok: fuzz assertion
    };
    let mut wire = BytesMut::new();
    for p in &packets {
        encode(p, protocol, &mut wire)
            .unwrap_or_else(|e| finding(format!("a generated packet does not encode: {e}\n{p:?}")));
    }
    let wire = wire.freeze();
    let mut decoder = Decoder::new(DecodeOptions::new(protocol, from));
    let mut buf = BytesMut::new();
    let mut decoded = Vec::with_capacity(packets.len());
    let mut at = 0;
    while at < wire.len() {
        let left = wire.len() - at;
        let n = if u.is_empty() {
            left
        } else {
            u.int_in_range(1..=left.min(512)).unwrap_or(left)
        };
        buf.extend_from_slice(&wire.slice(at..at + n));
        at += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => decoded.push(p),
                Ok(None) => break,
                Err(e) => panic!("a generated stream does not decode: {e}\npackets: {packets:?}"), // ok: fuzz assertion
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    assert_eq!(decoder.position, wire.len(), "Decoder position");
    assert_eq!(decoded, packets, "decoded stream");
}

/// Reports a broken property: a fuzz harness signals a finding by panicking.
fn finding(what: String) -> ! {
    panic!("{what}") // ok: this is how libFuzzer learns of a finding
}
