//! The bench's streams and each codec's reader and writer for them, shared
//! by `benches/codec.rs` and `examples/profile.rs` (which runs one of them
//! under callgrind, where instruction counts repeat from run to run).
#![allow(dead_code)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};

use mqtt_codec::{
    decode_slice, encode, ByteString, ConnAck, Connect, DecodeOptions, Decoded, Decoder,
    Disconnect, Packet, Properties, Property, Protocol, PubResponse, Publish, QoS, Sender, SubAck,
    Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

pub use rumqttc::mqttbytes::v4 as rv4;
pub use rumqttc::v5::mqttbytes::v5 as rv5;

/// Generous limit for the peers' "max packet size" argument.
pub const MAX_PACKET: usize = 1 << 20;

// ---------------------------------------------------------------------------
// The streams
// ---------------------------------------------------------------------------

/// One traffic shape: what the client sent and what the server sent.
pub struct Stream {
    pub name: &'static str,
    pub protocol: Protocol,
    pub client: Bytes,
    pub server: Bytes,
    pub client_packets: usize,
    pub server_packets: usize,
}

impl Stream {
    pub fn new(
        name: &'static str,
        protocol: Protocol,
        client: Vec<Packet>,
        server: Vec<Packet>,
    ) -> Stream {
        let enc = |packets: &[Packet]| {
            let mut out = BytesMut::new();
            for p in packets {
                encode(p, protocol, &mut out).expect("our encoder builds the stream");
            }
            out.freeze()
        };
        Stream {
            name,
            protocol,
            client: enc(&client),
            server: enc(&server),
            client_packets: client.len(),
            server_packets: server.len(),
        }
    }

    pub fn len(&self) -> usize {
        self.client.len() + self.server.len()
    }

    pub fn packets(&self) -> usize {
        self.client_packets + self.server_packets
    }

    /// Fresh, uniquely owned copies of both streams for a decoder to consume.
    pub fn buffers(&self) -> (BytesMut, BytesMut) {
        (
            BytesMut::from(&self.client[..]),
            BytesMut::from(&self.server[..]),
        )
    }
}

pub fn publish(topic: &str, qos: QoS, packet_id: u16, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: ByteString::from(topic),
        packet_id,
        properties: Properties::new(),
        payload,
    })
}

/// ~40-byte JSON reading.
pub fn reading(i: usize) -> Bytes {
    let s = format!(
        "{{\"t\":{:>5.2},\"h\":{:>4.1},\"ts\":{}}}",
        18.0 + (i % 700) as f64 / 100.0,
        35.0 + (i % 200) as f64 / 10.0,
        1_700_000_000_000u64 + i as u64 * 250
    );
    Bytes::from(s)
}

/// 100 PUBLISH (50 at QoS 0, 50 at QoS 1) and 4 PINGREQ from the client;
/// 50 PUBACK and 4 PINGRESP from the server.
pub fn telemetry(protocol: Protocol) -> Stream {
    let mut client = Vec::new();
    let mut server = Vec::new();
    let mut next_id = 1u16;
    for i in 0..100usize {
        let topic = format!(
            "sensors/building-{}/floor-{}/{}",
            1 + i % 3,
            i % 7,
            ["temp", "humi", "co2_"][i % 3]
        );
        if i % 2 == 0 {
            client.push(publish(&topic, QoS::AtMostOnce, 0, reading(i)));
        } else {
            client.push(publish(&topic, QoS::AtLeastOnce, next_id, reading(i)));
            server.push(Packet::PubAck(PubResponse::new(next_id)));
            next_id += 1;
        }
        if i % 25 == 24 {
            client.push(Packet::PingReq);
            server.push(Packet::PingResp);
        }
    }
    Stream::new(
        if protocol.is_v5() {
            "telemetry-v5"
        } else {
            "telemetry"
        },
        protocol,
        client,
        server,
    )
}

/// One QoS 1 PUBLISH with a 64 KiB payload from the client, and its PUBACK.
pub fn large(protocol: Protocol) -> Stream {
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let client = vec![publish(
        "cameras/gate-2/frame",
        QoS::AtLeastOnce,
        7,
        Bytes::from(payload),
    )];
    let server = vec![Packet::PubAck(PubResponse::new(7))];
    Stream::new(
        if protocol.is_v5() {
            "large-v5"
        } else {
            "large"
        },
        protocol,
        client,
        server,
    )
}

/// A session's control traffic.
pub fn control(protocol: Protocol) -> Stream {
    let v5 = protocol.is_v5();
    let props = |list: Vec<Property>| {
        if v5 {
            Properties(list)
        } else {
            Properties::new()
        }
    };
    let mut connect = Connect::new(protocol, "gateway-7f3a9c");
    connect.keep_alive = 30;
    connect.properties = props(vec![
        Property::SessionExpiryInterval(3600),
        Property::ReceiveMaximum(64),
    ]);
    connect.will = Some(Will {
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: props(vec![Property::WillDelayInterval(10)]),
        topic: ByteString::from("status/gateway-7f3a9c"),
        payload: Bytes::from_static(b"{\"online\":false}"),
    });
    connect.username = Some(ByteString::from("gateway"));
    connect.password = Some(Bytes::from_static(b"s3cr3t-t0ken-0123456789"));
    let filters = [
        ("commands/gateway-7f3a9c/#", QoS::AtLeastOnce),
        ("config/+/gateway-7f3a9c", QoS::ExactlyOnce),
        ("broadcast/all", QoS::AtMostOnce),
        ("sensors/building-1/+/temp", QoS::AtLeastOnce),
    ];
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: Properties::new(),
        filters: filters
            .iter()
            .map(|(f, q)| Subscription {
                filter: ByteString::from(*f),
                options: SubscriptionOptions::qos(*q),
            })
            .collect(),
    });
    let suback = Packet::SubAck(SubAck {
        packet_id: 1,
        properties: Properties::new(),
        reason_codes: vec![1, 2, 0, 1],
    });
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        properties: Properties::new(),
        filters: vec![
            ByteString::from("broadcast/all"),
            ByteString::from("sensors/building-1/+/temp"),
        ],
    });
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: 3,
        properties: Properties::new(),
        reason_codes: if v5 { vec![0, 0] } else { vec![] },
    });
    let client = vec![
        Packet::Connect(Box::new(connect)),
        subscribe,
        publish(
            "events/gateway-7f3a9c/door",
            QoS::ExactlyOnce,
            2,
            Bytes::from_static(b"{\"door\":\"open\",\"ts\":1700000000123}"),
        ),
        Packet::PubRel(PubResponse::new(2)),
        Packet::PubRec(PubResponse::new(9)),
        Packet::PubComp(PubResponse::new(9)),
        unsubscribe,
        // 5.0: rumqttc's v5 reader refuses a DISCONNECT whose remaining
        // length is 0 or 1 (both valid, MQTT-3.14.2.2.1), so the 5.0 stream
        // carries a reason string and with it a property block.
        Packet::Disconnect(Disconnect {
            reason_code: 0,
            properties: props(vec![Property::ReasonString(ByteString::from("shutdown"))]),
        }),
    ];
    let server = vec![
        Packet::ConnAck(ConnAck::default()),
        suback,
        Packet::PubRec(PubResponse::new(2)),
        Packet::PubComp(PubResponse::new(2)),
        publish(
            "config/fw/gateway-7f3a9c",
            QoS::ExactlyOnce,
            9,
            Bytes::from_static(b"{\"fw\":\"2.4.1\",\"url\":\"https://example.invalid/fw\"}"),
        ),
        Packet::PubRel(PubResponse::new(9)),
        unsuback,
    ];
    Stream::new(
        if v5 { "control-v5" } else { "control" },
        protocol,
        client,
        server,
    )
}

// ---------------------------------------------------------------------------
// Decoders: each consumes a whole stream and returns how many packets it saw.
// ---------------------------------------------------------------------------

pub fn ours_decode(buf: &mut BytesMut, protocol: Protocol, from: Sender) -> usize {
    let mut decoder = Decoder::new(DecodeOptions::new(protocol, from));
    let mut n = 0;
    while let Some(packet) = decoder.decode(buf).expect("ours: decode") {
        black_box(&packet);
        n += 1;
    }
    n
}

/// Our borrowing decoder over a slice, as mqttrs reads: no allocation, no
/// reference counting; the stream's version follows a CONNECT.
pub fn ours_borrowed_decode(buf: &[u8], protocol: Protocol, from: Sender) -> usize {
    let mut opts = DecodeOptions::new(protocol, from);
    let mut n = 0;
    let mut rest = buf;
    while let Decoded::Packet { packet, len } =
        decode_slice(rest, &opts).expect("ours-borrowed: decode")
    {
        if let Packet::Connect(c) = &packet {
            opts.protocol = c.protocol;
        }
        black_box(&packet);
        rest = rest.get(len..).unwrap_or(&[]);
        n += 1;
    }
    n
}

pub fn rumqttc_v4_decode(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        let packet = rv4::read(buf, MAX_PACKET).expect("rumqttc v4: decode");
        black_box(&packet);
        n += 1;
    }
    n
}

pub fn rumqttc_v5_decode(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        let packet = rv5::Packet::read(buf, Some(MAX_PACKET)).expect("rumqttc v5: decode");
        black_box(&packet);
        n += 1;
    }
    n
}

/// Total frame length of the packet at the front of `buf`. mqttrs'
/// `decode_slice` does not say how much it consumed, so a stream reader on
/// top of it has to find the frame boundary itself.
#[inline]
pub fn frame_len(buf: &[u8]) -> usize {
    let mut len = 0usize;
    for (i, &b) in buf.iter().skip(1).take(4).enumerate() {
        len |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return 2 + i + len;
        }
    }
    panic!("mqttrs: bad remaining length")
}

pub fn mqttrs_decode(buf: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = buf;
    while !rest.is_empty() {
        let packet = mqttrs::decode_slice(rest)
            .expect("mqttrs: decode")
            .expect("mqttrs: whole packet");
        black_box(&packet);
        rest = &rest[frame_len(rest)..];
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------
// Encoders: each writes a list of its own packets.
// ---------------------------------------------------------------------------

pub fn ours_encode(packets: &[Packet], protocol: Protocol, out: &mut BytesMut) {
    for p in packets {
        encode(p, protocol, out).expect("ours: encode");
    }
}

pub fn rumqttc_v4_write(p: &rv4::Packet, out: &mut BytesMut) {
    let r = match p {
        rv4::Packet::Connect(x) => x.write(out),
        rv4::Packet::ConnAck(x) => x.write(out),
        rv4::Packet::Publish(x) => x.write(out),
        rv4::Packet::PubAck(x) => x.write(out),
        rv4::Packet::PubRec(x) => x.write(out),
        rv4::Packet::PubRel(x) => x.write(out),
        rv4::Packet::PubComp(x) => x.write(out),
        rv4::Packet::Subscribe(x) => x.write(out),
        rv4::Packet::SubAck(x) => x.write(out),
        rv4::Packet::Unsubscribe(x) => x.write(out),
        rv4::Packet::UnsubAck(x) => x.write(out),
        rv4::Packet::PingReq => rv4::PingReq.write(out),
        rv4::Packet::PingResp => rv4::PingResp.write(out),
        rv4::Packet::Disconnect => rv4::Disconnect.write(out),
    };
    r.expect("rumqttc v4: encode");
}

pub fn rumqttc_v4_encode(packets: &[rv4::Packet], out: &mut BytesMut) {
    for p in packets {
        rumqttc_v4_write(p, out);
    }
}

pub fn rumqttc_v5_encode(packets: &[rv5::Packet], out: &mut BytesMut) {
    for p in packets {
        p.write(out).expect("rumqttc v5: encode");
    }
}

pub fn mqttrs_encode(packets: &[mqttrs::Packet<'_>], out: &mut [u8]) -> usize {
    let mut at = 0;
    for p in packets {
        at += mqttrs::encode_slice(p, &mut out[at..]).expect("mqttrs: encode");
    }
    at
}

// ---------------------------------------------------------------------------
// Each codec's own packet lists, decoded once from the streams.
// ---------------------------------------------------------------------------

pub fn ours_packets(bytes: &Bytes, protocol: Protocol, from: Sender) -> Vec<Packet> {
    let mut buf = BytesMut::from(&bytes[..]);
    let mut d = Decoder::new(DecodeOptions::new(protocol, from));
    let mut out = Vec::new();
    while let Some(p) = d.decode(&mut buf).expect("ours: decode") {
        out.push(p);
    }
    assert!(buf.is_empty(), "ours: {} bytes left undecoded", buf.len());
    out
}

pub fn rumqttc_v4_packets(bytes: &Bytes) -> Vec<rv4::Packet> {
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(rv4::read(&mut buf, MAX_PACKET).expect("rumqttc v4: decode"));
    }
    out
}

pub fn rumqttc_v5_packets(bytes: &Bytes) -> Vec<rv5::Packet> {
    let mut buf = BytesMut::from(&bytes[..]);
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(rv5::Packet::read(&mut buf, Some(MAX_PACKET)).expect("rumqttc v5: decode"));
    }
    out
}

pub fn mqttrs_packets(bytes: &[u8]) -> Vec<mqttrs::Packet<'_>> {
    let mut rest = bytes;
    let mut out = Vec::new();
    while !rest.is_empty() {
        out.push(
            mqttrs::decode_slice(rest)
                .expect("mqttrs: decode")
                .expect("mqttrs: whole packet"),
        );
        rest = &rest[frame_len(rest)..];
    }
    out
}
