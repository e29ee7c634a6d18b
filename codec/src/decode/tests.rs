//! The decoder's fast paths held to its general paths: the fixed-header
//! tables and short cuts against `check_header_full`, the two `unsafe`
//! blocks' checks against the standard library's, and the in-line readers
//! (protocol name, SUBACK codes, in-place source) against the ones they
//! stand in for. In their own file to keep `decode.rs` to the decoder.

use super::*;

#[test]
fn first_byte_table_matches_the_checks() {
    for protocol in Protocol::ALL {
        for from in [Sender::Client, Sender::Server] {
            let opts = DecodeOptions::new(protocol, from);
            for first in 0..=255u8 {
                let full = check_header_full(&[first, 0], &opts);
                assert_eq!(
                    first_byte_type(first, &opts),
                    full.ok().map(|h| h.unwrap().packet_type),
                    "{first:#04x} {protocol} {from:?}"
                );
            }
        }
    }
}

/// The first `unsafe` block: every length around the 16- and 32-byte
/// window edges, a non-ASCII byte (lead, continuation, invalid) at every
/// position, and valid and invalid multi-byte strings.
#[test]
fn ascii_str_accepts_exactly_ascii() {
    for len in 0..=80usize {
        let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(ascii_str(&text), std::str::from_utf8(&text).ok(), "{len}");
        for at in 0..len {
            for byte in [0x80u8, 0xC3, 0xFF] {
                let mut b = text.clone();
                b[at] = byte;
                assert_eq!(ascii_str(&b), None, "len {len}, {byte:#x} at {at}");
            }
        }
    }
    let e_acute = "sensors/caf\u{e9}/temp/abcdefghijklmnopq".as_bytes();
    assert_eq!(ascii_str(e_acute), None);
    let src = Borrowed(e_acute);
    assert_eq!(src.string(0..e_acute.len()), std::str::from_utf8(e_acute));
    let src = Borrowed(&[b'a', 0xC3, b'b']);
    assert!(src.string(0..3).is_err());
}

/// The second `unsafe` block: `byte_string` accepts exactly what
/// `ByteString::try_from` accepts, with the same error, for ASCII and
/// multi-byte strings and for a bad byte at every position of every
/// length to 80.
#[test]
fn byte_string_is_try_from() {
    let check = |b: &[u8]| {
        let ours = byte_string(Bytes::copy_from_slice(b));
        let theirs = ByteString::try_from(Bytes::copy_from_slice(b));
        assert_eq!(ours, theirs, "{b:?}");
    };
    for len in 0..=80usize {
        let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        check(&text);
        for at in 0..len {
            for byte in [0x80u8, 0xC3, 0xFF] {
                let mut b = text.clone();
                b[at] = byte;
                check(&b);
            }
            // A valid two-byte character at `at`.
            let mut b = text.clone();
            b.splice(at..at + 1, "\u{e9}".bytes());
            check(&b);
        }
    }
}

/// The in-place source builds what the shared one does, its copying
/// string and binary paths (not reached from `Decoder`) included.
#[test]
fn in_place_parses_as_shared() {
    let opts = DecodeOptions::new(Protocol::V3_1_1, Sender::Client);
    let frames: [&[u8]; 5] = [
        &[0x30, 0x06, 0x00, 0x02, b'a', b'/', b'x', b'y'],
        &[0x30, 0x04, 0x00, 0x02, b'a', b'#'],
        &[0x30, 0x04, 0x00, 0x02, 0xC3, 0x28],
        &[0x62, 0x02, 0x00, 0x07],
        &[0xC0, 0x00],
    ];
    for frame in frames {
        let Ok(Ok(header)) = check_header(frame, &opts) else {
            panic!("header of {frame:?}");
        };
        let shared = parse_frame(&Bytes::copy_from_slice(frame), &header, &opts, &mut ());
        let in_place = parse(InPlace(frame), &header, &opts, &mut ());
        assert_eq!(in_place, shared, "{frame:?}");
    }
}

/// The protocol name's and level's fast path against the general one:
/// the same protocol or error, position and spans, for the names and
/// levels around the ones it takes.
#[test]
fn protocol_name_fast_path_matches_the_full_path() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for name in [&b"MQTT"[..], b"MQIsdp", b"MQTt", b"MQT", b"MQTTT", b""] {
        for level in [3u8, 4, 5, 6, 0] {
            let mut b = vec![0, name.len() as u8];
            b.extend_from_slice(name);
            b.push(level);
            for cut in 0..=b.len() {
                inputs.push(b[..cut].to_vec());
            }
            b.extend_from_slice(&[2, 0, 60]);
            inputs.push(b);
        }
    }
    for protocol in Protocol::ALL {
        let opts = DecodeOptions::new(protocol, Sender::Client);
        for input in &inputs {
            let read = |full: bool| {
                let mut spans: Vec<Span> = Vec::new();
                let mut r = Reader {
                    src: Borrowed(input),
                    pos: 0,
                    end: input.len(),
                    opts,
                    ty: PacketType::Connect,
                    trace: &mut spans,
                };
                let got = if full {
                    protocol_name_and_level_full(&mut r)
                } else {
                    protocol_name_and_level(&mut r)
                };
                let pos = r.pos;
                (got, pos, spans)
            };
            assert_eq!(read(false), read(true), "{input:?} {protocol}");
        }
    }
}

/// A SUBACK's codes checked in one loop: a span per code as the
/// per-code loop records them, and a bad code at any place named by that
/// loop (its offset, its code).
#[test]
fn suback_codes_have_their_spans_and_errors() {
    let opts = DecodeOptions::new(Protocol::V3_1_1, Sender::Server);
    let frame = Bytes::from_static(&[0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x80]);
    let mut spans: Vec<Span> = Vec::new();
    let got = decode_traced(&frame, &opts, &mut spans);
    assert!(matches!(got, Ok(Decoded::Packet { len: 7, .. })), "{got:?}");
    let codes: Vec<(usize, usize)> = spans
        .iter()
        .filter(|s| s.name == "reason_code")
        .map(|s| (s.start, s.end))
        .collect();
    assert_eq!(codes, [(4, 5), (5, 6), (6, 7)]);
    for at in 4..7 {
        let mut bad = frame.to_vec();
        bad[at] = 0x03;
        let e = decode_slice(&bad, &opts).expect_err("code 3 is refused");
        assert_eq!(e.offset, at);
        assert_eq!(e.kind, ErrorKind::InvalidReasonCode { code: 3 });
    }
}

#[test]
fn check_header_matches_the_full_path() {
    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x30]];
    for first in 0..=255u8 {
        for len in [0u8, 1, 2, 0x3F, 0x7F, 0x80, 0xFF] {
            inputs.push(vec![first, len]);
            inputs.push(vec![first, len, 0x00]);
            inputs.push(vec![first, len, 0x01, 0x00]);
        }
    }
    // Lengths of two to four bytes (and a fifth), minimal or not, around
    // the maxima below, for a few first bytes of every kind.
    for first in [
        0x10u8, 0x20, 0x30, 0x3B, 0x36, 0x62, 0x82, 0xA2, 0xC0, 0xF0, 0x00,
    ] {
        for b1 in [0x80u8, 0x81, 0xFF] {
            for b2 in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
                for b3 in [0x00u8, 0x01, 0x7F, 0x80] {
                    for b4 in [0x00u8, 0x01, 0x7F, 0x80] {
                        inputs.push(vec![first, b1]);
                        inputs.push(vec![first, b1, b2]);
                        inputs.push(vec![first, b1, b2, b3]);
                        inputs.push(vec![first, b1, b2, b3, b4]);
                        inputs.push(vec![first, b1, b2, b3, b4, 0x01]);
                    }
                }
            }
        }
    }
    for protocol in Protocol::ALL {
        for from in [Sender::Client, Sender::Server] {
            for max in [
                0u32,
                1,
                2,
                3,
                64,
                129,
                130,
                131,
                16_386,
                16_387,
                2_097_155,
                2_097_156,
                MAX_REMAINING_LENGTH + 4,
                MAX_REMAINING_LENGTH + 5,
            ] {
                let opts = DecodeOptions::new(protocol, from).with_max_packet_size(max);
                for input in &inputs {
                    let full = check_header_full(input, &opts);
                    assert_eq!(check_header(input, &opts), full, "{input:?} {opts:?}");
                    assert_eq!(
                        check_header_inline(input, &opts),
                        full,
                        "{input:?} {opts:?}"
                    );
                }
            }
        }
    }
}
