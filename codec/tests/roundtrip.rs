//! Property tests: every valid packet the generator builds, for each version
//! and sender, encodes and decodes back equal; a stream of them decodes the
//! same whether it arrives whole or in arbitrary pieces.

use arbitrary::Unstructured;
use bytes::BytesMut;
use mqtt_codec::{
    decode_bytes, encode, encode_bytes, encoded_len, fuzzing, gen, DecodeOptions, Decoded, Decoder,
    Packet, Protocol, Sender,
};
use proptest::prelude::*;

const SENDERS: [Sender; 2] = [Sender::Client, Sender::Server];

/// Runs the generator over `data`; `None` only when the input runs out.
fn generate<T>(
    data: &[u8],
    f: impl FnOnce(&mut Unstructured<'_>) -> arbitrary::Result<T>,
) -> Option<T> {
    match f(&mut Unstructured::new(data)) {
        Ok(v) => Some(v),
        Err(arbitrary::Error::NotEnoughData) => None,
        Err(e) => panic!("the generator failed: {e}"),
    }
}

fn check_roundtrip(data: &[u8], protocol: Protocol, from: Sender) -> Result<(), TestCaseError> {
    let Some(packet) = generate(data, |u| gen::packet(u, protocol, from)) else {
        return Ok(());
    };
    prop_assert!(packet.packet_type().allowed_from(from, protocol));
    if let Packet::Connect(c) = &packet {
        prop_assert_eq!(c.protocol, protocol);
    }
    let bytes = encode_bytes(&packet, protocol).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(encoded_len(&packet, protocol), Ok(bytes.len()));
    let decoded = decode_bytes(&bytes, &DecodeOptions::new(protocol, from));
    prop_assert_eq!(
        decoded,
        Ok(Decoded::Packet {
            packet,
            len: bytes.len()
        })
    );
    Ok(())
}

/// Decodes `wire` fed in pieces of the given sizes (cycled), then the rest.
fn decode_in_pieces(
    wire: &[u8],
    protocol: Protocol,
    from: Sender,
    sizes: &[usize],
) -> Result<Vec<Packet>, TestCaseError> {
    let mut decoder = Decoder::new(DecodeOptions::new(protocol, from));
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    let mut rest = wire;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(piece);
        while let Some(p) = decoder
            .decode(&mut buf)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
        {
            packets.push(p);
        }
    }
    prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(packets)
}

fn check_stream(
    data: &[u8],
    protocol: Protocol,
    from: Sender,
    sizes: &[usize],
) -> Result<(), TestCaseError> {
    let Some(packets) = generate(data, |u| gen::stream(u, protocol, from)) else {
        return Ok(());
    };
    let mut wire = BytesMut::new();
    for p in &packets {
        encode(p, protocol, &mut wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let whole = decode_in_pieces(&wire, protocol, from, &[wire.len()])?;
    prop_assert_eq!(&whole, &packets);
    let pieces = decode_in_pieces(&wire, protocol, from, sizes)?;
    prop_assert_eq!(pieces, whole);
    Ok(())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..2048)
}

macro_rules! roundtrip_tests {
    ($($name:ident: $protocol:expr, $from:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            $(
                #[test]
                fn $name(data in input()) {
                    check_roundtrip(&data, $protocol, $from)?;
                }
            )*
        }
    };
}

roundtrip_tests! {
    v3_1_client_packets_roundtrip: Protocol::V3_1, Sender::Client;
    v3_1_server_packets_roundtrip: Protocol::V3_1, Sender::Server;
    v3_1_1_client_packets_roundtrip: Protocol::V3_1_1, Sender::Client;
    v3_1_1_server_packets_roundtrip: Protocol::V3_1_1, Sender::Server;
    v5_client_packets_roundtrip: Protocol::V5, Sender::Client;
    v5_server_packets_roundtrip: Protocol::V5, Sender::Server;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn streams_decode_the_same_in_any_pieces(
        protocol in proptest::sample::select(Protocol::ALL.to_vec()),
        from in proptest::sample::select(SENDERS.to_vec()),
        data in input(),
        sizes in proptest::collection::vec(1usize..64, 1..16),
    ) {
        check_stream(&data, protocol, from, &sizes)?;
    }

    #[test]
    fn fuzz_harness_holds_on_random_input(data in input()) {
        fuzzing::decode(&data);
        fuzzing::roundtrip(&data);
        fuzzing::stream_split(&data);
    }
}

/// Deterministic bytes (xorshift64) for the coverage tests.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The generator reaches every packet type each sender may send.
#[test]
fn generator_covers_every_allowed_packet_type() {
    for protocol in Protocol::ALL {
        for from in SENDERS {
            let mut seen = std::collections::HashSet::new();
            for i in 0..=u8::MAX {
                let data = pseudo_random(u64::from(i), 64);
                if let Some(p) = generate(&data, |u| gen::packet(u, protocol, from)) {
                    seen.insert(p.packet_type());
                }
            }
            for ty in mqtt_codec::PacketType::ALL {
                assert_eq!(
                    seen.contains(&ty),
                    ty.allowed_from(from, protocol),
                    "{ty} from {} in {protocol}",
                    from.as_str()
                );
            }
        }
    }
}

/// The generator reaches every 5.0 property, and repeats the repeatable ones.
#[test]
fn generator_covers_every_property() {
    let mut seen = std::collections::HashSet::new();
    let mut repeated = std::collections::HashSet::new();
    for i in 0..4096u16 {
        let data = pseudo_random(u64::from(i), 512);
        for from in SENDERS {
            let Some(p) = generate(&data, |u| gen::packet(u, Protocol::V5, from)) else {
                continue;
            };
            let will = match &p {
                Packet::Connect(c) => c.will.as_ref().map(|w| w.properties.clone()),
                _ => None,
            };
            for props in p.properties().into_iter().chain(will.as_ref()) {
                let mut ids: Vec<u8> = props.iter().map(|p| p.id()).collect();
                seen.extend(ids.iter().copied());
                ids.sort_unstable();
                repeated.extend(ids.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]));
            }
        }
    }
    for info in mqtt_codec::props::PROPERTIES {
        assert!(seen.contains(&info.id), "{} never generated", info.name);
    }
    assert!(
        repeated.contains(&0x26) && repeated.contains(&0x0B),
        "{repeated:?}"
    );
}

/// The fuzz harness on fixed inputs: the empty input, each selector alone,
/// real packets, truncated and refused ones.
#[test]
fn fuzz_harness_on_fixed_inputs() {
    let connect_v5 = [
        0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21, 0x00,
        0x0A, 0x00, 0x00,
    ];
    let connect_v311 = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), vec![0xFF; 300]];
    inputs.extend((0..6).map(|s| vec![s]));
    for (selector, packet) in [
        (
            fuzzing::selector(Protocol::V5, Sender::Client),
            &connect_v5[..],
        ),
        (
            fuzzing::selector(Protocol::V3_1_1, Sender::Client),
            &connect_v311[..],
        ),
        // A 3.1.1 client announcing 5.0 switches the stream's version.
        (
            fuzzing::selector(Protocol::V3_1_1, Sender::Client),
            &connect_v5[..],
        ),
        // CONNACK, PUBLISH QoS 1, SUBACK from a 3.1.1 server.
        (
            fuzzing::selector(Protocol::V3_1_1, Sender::Server),
            &[
                0x20, 0x02, 0x00, 0x00, 0x32, 0x06, 0x00, 0x01, b'a', 0x00, 0x07, b'x', 0x90, 0x03,
                0x00, 0x01, 0x80,
            ][..],
        ),
        // 5.0 PUBACK short form, then one with a reason code and an empty property list.
        (
            fuzzing::selector(Protocol::V5, Sender::Server),
            &[0x40, 0x02, 0x00, 0x01, 0x40, 0x04, 0x00, 0x02, 0x10, 0x00][..],
        ),
        // A CONNACK from a client: refused.
        (
            fuzzing::selector(Protocol::V5, Sender::Client),
            &[0x20, 0x02, 0x00, 0x00][..],
        ),
    ] {
        let mut input = vec![selector];
        input.extend_from_slice(packet);
        for cut in 0..=input.len() {
            inputs.push(input[..cut].to_vec());
        }
    }
    for input in &inputs {
        fuzzing::decode(input);
        fuzzing::roundtrip(input);
        fuzzing::stream_split(input);
    }
}
