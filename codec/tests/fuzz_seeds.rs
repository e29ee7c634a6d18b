//! The committed seed corpus of the fuzz targets (`fuzz/corpus/<target>/seed-*`).
//!
//! `cargo test -p mqtt-codec --test fuzz_seeds -- --ignored` rewrites the
//! seeds from the real packets below; the plain test runs every committed
//! seed through its harness function, so a seed that crashes fails `cargo test`.
//!
//! Every target reads a selector byte first ([`fuzzing::selector`]: version
//! and sender). `decode` seeds are then wire bytes. `roundtrip` and
//! `stream_split` read the rest through `Unstructured`; their seeds choose
//! the packet type (or stream length) in the next byte and use real packet
//! bytes as the entropy that fills the fields.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use mqtt_codec::encode::{encode_with, Overrides};
use mqtt_codec::{
    encode, fuzzing, gen, Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Properties,
    Property, Protocol, PubResponse, Publish, QoS, Sender, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

/// A fuzz target: its name under `fuzz/fuzz_targets/` and its harness function.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 3] = [
    ("decode", fuzzing::decode),
    ("roundtrip", fuzzing::roundtrip),
    ("stream_split", fuzzing::stream_split),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn tag(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V3_1 => "v31",
        Protocol::V3_1_1 => "v311",
        Protocol::V5 => "v5",
    }
}

fn props(v5: bool, list: Vec<Property>) -> Properties {
    if v5 {
        Properties(list)
    } else {
        Properties::new()
    }
}

fn user(k: &str, v: &str) -> Property {
    Property::UserProperty(k.into(), v.into())
}

fn ack(v5: bool, packet_id: u16, reason_code: u8, reason: &str) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code: if v5 { reason_code } else { 0 },
        properties: props(v5, vec![Property::ReasonString(reason.into())]),
    }
}

/// A CONNECT with a will, credentials and (5.0) properties of both lists.
fn connect(protocol: Protocol) -> Connect {
    let v5 = protocol.is_v5();
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 30,
        properties: props(
            v5,
            vec![
                Property::SessionExpiryInterval(3600),
                Property::ReceiveMaximum(20),
                Property::MaximumPacketSize(65_536),
                Property::TopicAliasMaximum(10),
                Property::RequestResponseInformation(1),
                Property::RequestProblemInformation(0),
                Property::AuthenticationMethod("SCRAM-SHA-256".into()),
                Property::AuthenticationData(Bytes::from_static(
                    b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                )),
                user("region", "eu-west"),
            ],
        ),
        client_id: "sensor-42".into(),
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: props(
                v5,
                vec![
                    Property::WillDelayInterval(10),
                    Property::PayloadFormatIndicator(1),
                    Property::MessageExpiryInterval(120),
                    Property::ContentType("text/plain".into()),
                    Property::ResponseTopic("status/replies".into()),
                    Property::CorrelationData(Bytes::from_static(b"\x00\x01corr")),
                    user("k", "v"),
                ],
            ),
            topic: "status/sensor-42".into(),
            payload: Bytes::from_static(b"offline"),
        }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"s3cr\xc3\xa9t\x00")),
    }
}

fn publish(protocol: Protocol, qos: QoS, from: Sender) -> Publish {
    let v5 = protocol.is_v5();
    let mut list = vec![
        Property::PayloadFormatIndicator(1),
        Property::MessageExpiryInterval(60),
        Property::TopicAlias(3),
        Property::ResponseTopic("replies/\u{00e9}t\u{00e9}".into()),
        Property::CorrelationData(Bytes::from_static(b"\xde\xad\xbe\xef")),
        user("trace", "abc"),
        user("trace", "def"),
        Property::ContentType("application/json".into()),
    ];
    if from == Sender::Server {
        list.push(Property::SubscriptionIdentifier(1));
        list.push(Property::SubscriptionIdentifier(268_435_455));
    }
    Publish {
        dup: qos != QoS::AtMostOnce,
        qos,
        retain: qos == QoS::AtMostOnce,
        topic: "sensors/\u{2603}/temperature".into(),
        packet_id: if qos == QoS::AtMostOnce {
            0
        } else {
            7 + u16::from(qos.as_u8())
        },
        properties: props(v5, list),
        payload: Bytes::from_static(b"{\"t\":21.5}"),
    }
}

/// What a client sends over a session.
fn client_session(protocol: Protocol) -> Vec<Packet> {
    let v5 = protocol.is_v5();
    let mut packets = vec![
        Packet::Connect(Box::new(connect(protocol))),
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: props(
                v5,
                vec![Property::SubscriptionIdentifier(42), user("a", "b")],
            ),
            filters: vec![
                Subscription {
                    filter: "sensors/+/temperature".into(),
                    options: if v5 {
                        SubscriptionOptions {
                            qos: QoS::ExactlyOnce,
                            no_local: true,
                            retain_as_published: true,
                            retain_handling: 2,
                        }
                    } else {
                        SubscriptionOptions::qos(QoS::ExactlyOnce)
                    },
                },
                Subscription {
                    filter: if v5 {
                        "$share/group/alerts/#".into()
                    } else {
                        "alerts/#".into()
                    },
                    options: SubscriptionOptions::qos(QoS::AtLeastOnce),
                },
                Subscription {
                    filter: "#".into(),
                    options: SubscriptionOptions::qos(QoS::AtMostOnce),
                },
            ],
        }),
        Packet::Publish(publish(protocol, QoS::AtMostOnce, Sender::Client)),
        Packet::Publish(publish(protocol, QoS::AtLeastOnce, Sender::Client)),
        Packet::Publish(publish(protocol, QoS::ExactlyOnce, Sender::Client)),
        Packet::PubRel(PubResponse::new(9)),
        Packet::PubAck(ack(v5, 3, 0x10, "no one listening")),
        Packet::PubRec(ack(v5, 4, 0x00, "ok")),
        Packet::PubComp(ack(v5, 5, 0x92, "unknown id")),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            properties: props(v5, vec![user("why", "done")]),
            filters: vec!["sensors/+/temperature".into(), "#".into()],
        }),
        Packet::PingReq,
    ];
    if v5 {
        packets.push(Packet::Auth(Auth {
            reason_code: 0x19,
            properties: Properties(vec![
                Property::AuthenticationMethod("SCRAM-SHA-256".into()),
                Property::AuthenticationData(Bytes::from_static(b"c=biws,r=rOprNGfwEbeRWgbNEkqO")),
                Property::ReasonString("re-auth".into()),
            ]),
        }));
    }
    packets.push(Packet::Disconnect(Disconnect {
        reason_code: if v5 { 0x04 } else { 0 },
        properties: props(
            v5,
            vec![
                Property::SessionExpiryInterval(0),
                Property::ReasonString("bye".into()),
            ],
        ),
    }));
    packets
}

/// What a server sends over a session.
fn server_session(protocol: Protocol) -> Vec<Packet> {
    let v5 = protocol.is_v5();
    let mut packets = vec![
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: props(
                v5,
                vec![
                    Property::SessionExpiryInterval(600),
                    Property::ReceiveMaximum(100),
                    Property::MaximumQoS(1),
                    Property::RetainAvailable(0),
                    Property::MaximumPacketSize(1_048_576),
                    Property::AssignedClientIdentifier("auto-7f3a".into()),
                    Property::TopicAliasMaximum(16),
                    Property::ReasonString("welcome".into()),
                    user("node", "b2"),
                    Property::WildcardSubscriptionAvailable(1),
                    Property::SubscriptionIdentifierAvailable(1),
                    Property::SharedSubscriptionAvailable(0),
                    Property::ServerKeepAlive(45),
                    Property::ResponseInformation("resp/".into()),
                    Property::ServerReference("other:1883".into()),
                    Property::AuthenticationMethod("SCRAM-SHA-256".into()),
                    Property::AuthenticationData(Bytes::from_static(
                        b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
                    )),
                ],
            ),
        }),
        Packet::SubAck(SubAck {
            packet_id: 1,
            properties: props(v5, vec![Property::ReasonString("partly".into())]),
            reason_codes: if v5 {
                vec![0x02, 0x9E, 0x00]
            } else {
                vec![0x02, 0x80, 0x00]
            },
        }),
        Packet::Publish(publish(protocol, QoS::ExactlyOnce, Sender::Server)),
        Packet::Publish(publish(protocol, QoS::AtMostOnce, Sender::Server)),
        Packet::PubAck(ack(v5, 8, 0x00, "")),
        Packet::PubRec(ack(v5, 9, 0x97, "quota")),
        Packet::PubRel(ack(v5, 9, 0x00, "")),
        Packet::PubComp(PubResponse::new(9)),
        Packet::UnsubAck(UnsubAck {
            packet_id: 2,
            properties: props(v5, vec![user("x", "y")]),
            reason_codes: if v5 { vec![0x00, 0x11] } else { Vec::new() },
        }),
        Packet::PingResp,
    ];
    if v5 {
        packets.push(Packet::Auth(Auth {
            reason_code: 0x18,
            properties: Properties(vec![Property::AuthenticationMethod("SCRAM-SHA-256".into())]),
        }));
        packets.push(Packet::Disconnect(Disconnect {
            reason_code: 0x9C,
            properties: Properties(vec![
                Property::ServerReference("backup.example:8883".into()),
                Property::ReasonString("moving".into()),
            ]),
        }));
    }
    packets
}

fn session(protocol: Protocol, from: Sender) -> Vec<Packet> {
    match from {
        Sender::Client => client_session(protocol),
        Sender::Server => server_session(protocol),
    }
}

fn wire(protocol: Protocol, packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        encode(p, protocol, &mut out).unwrap();
    }
    out.to_vec()
}

fn with_selector(protocol: Protocol, from: Sender, body: &[u8]) -> Vec<u8> {
    let mut seed = vec![fuzzing::selector(protocol, from)];
    seed.extend_from_slice(body);
    seed
}

fn senders() -> [Sender; 2] {
    [Sender::Client, Sender::Server]
}

/// `decode`: selector, then a stream of real packets.
fn decode_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for protocol in Protocol::ALL {
        for from in senders() {
            let name = format!("{}-{}-session", tag(protocol), from.as_str());
            seeds.push((
                name,
                with_selector(protocol, from, &wire(protocol, &session(protocol, from))),
            ));
        }
        let c = [Packet::Connect(Box::new(connect(protocol)))];
        seeds.push((
            format!("{}-client-connect", tag(protocol)),
            with_selector(protocol, Sender::Client, &wire(protocol, &c)),
        ));
    }
    let v5 = Protocol::V5;
    let mut single = |name: &str, protocol: Protocol, from: Sender, bytes: Vec<u8>| {
        seeds.push((name.to_owned(), with_selector(protocol, from, &bytes)));
    };
    // A 3.1.1 stream whose client announces 5.0 in its CONNECT.
    single(
        "v311-client-connect-v5",
        Protocol::V3_1_1,
        Sender::Client,
        wire(v5, &[Packet::Connect(Box::new(connect(v5)))]),
    );
    // 3.1 clients sent SUBSCRIBE with DUP and QoS 1 in the fixed header.
    let sub = &client_session(Protocol::V3_1)[1];
    let o = Overrides {
        flags: Some(0b1010),
        ..Overrides::default()
    };
    single(
        "v31-client-subscribe-dup",
        Protocol::V3_1,
        Sender::Client,
        encode_with(sub, Protocol::V3_1, &o).unwrap().to_vec(),
    );
    // 5.0 acks: the short form, a reason code alone, and an empty property list written out.
    single(
        "v5-client-acks-short",
        v5,
        Sender::Client,
        vec![
            0x40, 0x02, 0x00, 0x01, 0x50, 0x03, 0x00, 0x02, 0x10, 0x70, 0x04, 0x00, 0x03, 0x00,
            0x00,
        ],
    );
    single("v5-server-publish-alias", v5, Sender::Server, {
        let mut p = publish(v5, QoS::AtLeastOnce, Sender::Server);
        p.topic = "".into();
        wire(v5, &[Packet::Publish(p)])
    });
    single(
        "v5-server-disconnect",
        v5,
        Sender::Server,
        wire(v5, &server_session(v5)[11..]),
    );
    single(
        "v5-client-auth",
        v5,
        Sender::Client,
        wire(v5, &client_session(v5)[11..12]),
    );
    single(
        "v5-server-connack",
        v5,
        Sender::Server,
        wire(v5, &server_session(v5)[..1]),
    );
    single(
        "v311-server-suback",
        Protocol::V3_1_1,
        Sender::Server,
        wire(Protocol::V3_1_1, &server_session(Protocol::V3_1_1)[1..2]),
    );
    // Edges: a CONNECT cut short, and a 3.1.1 remaining length in 4 (non-minimal) bytes.
    let mut cut = wire(v5, &[Packet::Connect(Box::new(connect(v5)))]);
    cut.truncate(cut.len() / 2);
    single("v5-client-connect-truncated", v5, Sender::Client, cut);
    single(
        "v311-client-pingreq-long-length",
        Protocol::V3_1_1,
        Sender::Client,
        vec![0xC0, 0x80, 0x80, 0x80, 0x00],
    );
    seeds
}

/// `roundtrip`: selector, a byte choosing the packet type, then real packet
/// bytes as entropy.
fn roundtrip_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let picks: [(Protocol, Sender, &[PacketType]); 5] = [
        (Protocol::V5, Sender::Client, &PacketType::ALL),
        (Protocol::V5, Sender::Server, &PacketType::ALL),
        (
            Protocol::V3_1_1,
            Sender::Client,
            &[PacketType::Connect, PacketType::Subscribe],
        ),
        (
            Protocol::V3_1_1,
            Sender::Server,
            &[PacketType::ConnAck, PacketType::SubAck],
        ),
        (
            Protocol::V3_1,
            Sender::Client,
            &[PacketType::Connect, PacketType::Publish],
        ),
    ];
    for (protocol, from, types) in picks {
        let allowed: Vec<PacketType> = PacketType::ALL
            .into_iter()
            .filter(|t| t.allowed_from(from, protocol))
            .collect();
        // Both sides send the PUB* acks; seed them from the client only.
        let skip_acks = protocol.is_v5() && from == Sender::Server;
        let entropy = wire(protocol, &session(protocol, from));
        for (index, ty) in allowed.iter().enumerate() {
            let is_ack = matches!(
                ty,
                PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp
            );
            if !types.contains(ty) || (skip_acks && is_ack) {
                continue;
            }
            // Start the entropy at a different place for each type.
            let at = (index * 37) % entropy.len();
            let mut body = vec![u8::try_from(index).unwrap()];
            body.extend_from_slice(&entropy[at..]);
            body.extend_from_slice(&entropy[..at]);
            let seed = with_selector(protocol, from, &body);
            let made = gen::packet(
                &mut arbitrary::Unstructured::new(&seed[1..]),
                protocol,
                from,
            )
            .unwrap();
            assert_eq!(made.packet_type(), *ty);
            let name = format!(
                "{}-{}-{}",
                tag(protocol),
                from.as_str(),
                ty.name().to_lowercase()
            );
            seeds.push((name, seed));
        }
    }
    seeds
}

/// `stream_split`: selector, a byte choosing the stream length, then real
/// packet bytes (the generator's entropy, then the chunk sizes).
fn stream_split_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for protocol in Protocol::ALL {
        for from in senders() {
            let entropy = wire(protocol, &session(protocol, from));
            for (count, variant) in [(3u8, "short"), (8, "medium"), (12, "long")] {
                let mut body = vec![count];
                body.extend_from_slice(&entropy);
                if variant == "short" {
                    // Small chunk sizes after the generator's share.
                    body.extend((0..64u8).map(|i| i % 5));
                }
                let name = format!("{}-{}-{variant}", tag(protocol), from.as_str());
                seeds.push((name, with_selector(protocol, from, &body)));
            }
        }
    }
    seeds
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "decode" => decode_seeds(),
        "roundtrip" => roundtrip_seeds(),
        _ => stream_split_seeds(),
    }
}

#[test]
#[ignore = "rewrites fuzz/corpus/*/seed-*; run with --ignored"]
fn write_seed_corpus() {
    for (target, run) in TARGETS {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
            {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, bytes) in seeds(target) {
            run(&bytes);
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}

/// Every `decode` seed but the truncated one is a stream of valid packets.
#[test]
fn decode_seeds_are_valid_streams() {
    for (name, seed) in decode_seeds() {
        let (protocol, from) = fuzzing::select(seed[0]);
        let mut decoder = mqtt_codec::Decoder::new(mqtt_codec::DecodeOptions::new(protocol, from));
        let mut buf = BytesMut::from(&seed[1..]);
        while decoder
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .is_some()
        {}
        assert_eq!(buf.is_empty(), !name.ends_with("truncated"), "{name}");
    }
}

#[test]
fn seeds_pass_the_harness() {
    for (target, run) in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 18, "{target}: {} seeds", seeds.len());
        for (_, bytes) in &seeds {
            run(bytes);
        }
    }
}

#[test]
fn committed_seeds_pass_the_harness() {
    for (target, run) in TARGETS {
        let Ok(entries) = std::fs::read_dir(corpus_dir().join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
            {
                run(&std::fs::read(&path).unwrap());
            }
        }
    }
}
