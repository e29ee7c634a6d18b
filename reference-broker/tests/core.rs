//! In-memory tests of the sans-IO broker core, on a fake clock: every test
//! picks its instants as offsets from one base `Instant`, so nothing sleeps.

mod common;

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use common::Net;
use mqtt_codec::reason;
use mqtt_codec::{
    ByteString, ConnAck, Connect, Disconnect, Packet, Properties, Property, Protocol, PubResponse,
    Publish, QoS, Subscribe, Subscription, SubscriptionOptions, Will,
};
use reference_broker::broker::OnError;
use reference_broker::{Config, ConnId};

const V31: Protocol = Protocol::V3_1;
const V311: Protocol = Protocol::V3_1_1;
const V5: Protocol = Protocol::V5;

impl Net {
    fn violating(id: &str) -> Net {
        let mut config = Config::default();
        config.violations.add(id).expect("known violation");
        Net::with(config)
    }

    fn recv_publishes(&mut self, conn: ConnId) -> Vec<Publish> {
        self.recv(conn)
            .into_iter()
            .map(|p| match p {
                Packet::Publish(p) => p,
                other => panic!("expected only PUBLISH on {conn}, got {other:?}"),
            })
            .collect()
    }

    /// A clean connection (no keep alive) that must be accepted.
    fn client(&mut self, protocol: Protocol, id: &str) -> ConnId {
        let (conn, ack) = self.connect_with(Connect {
            keep_alive: 0,
            ..Connect::new(protocol, id)
        });
        assert_eq!(ack.code, 0, "{ack:?}");
        conn
    }

    /// A 5.0 connection with Clean Start 0 and a session expiry.
    fn persistent_v5(&mut self, id: &str, expiry: u32) -> (ConnId, ConnAck) {
        let mut c = Connect::new(V5, id);
        c.clean_start = false;
        c.keep_alive = 0;
        c.properties.push(Property::SessionExpiryInterval(expiry));
        self.connect_with(c)
    }

    /// A 3.1.1 connection with Clean Session 0.
    fn persistent_v311(&mut self, id: &str) -> (ConnId, ConnAck) {
        let mut c = Connect::new(V311, id);
        c.clean_start = false;
        c.keep_alive = 0;
        self.connect_with(c)
    }

    fn subscribe_opts(
        &mut self,
        conn: ConnId,
        packet_id: u16,
        filters: &[(&str, SubscriptionOptions)],
        sub_id: Option<u32>,
    ) -> Vec<u8> {
        let mut properties = Properties::new();
        if let Some(id) = sub_id {
            properties.push(Property::SubscriptionIdentifier(id));
        }
        self.send(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters: filters
                    .iter()
                    .map(|(f, options)| Subscription {
                        filter: ByteString::from(*f),
                        options: *options,
                    })
                    .collect(),
            }),
        );
        let mut codes = None;
        let mut rest = VecDeque::new();
        for p in self.recv(conn) {
            match p {
                Packet::SubAck(ack) if codes.is_none() => {
                    assert_eq!(ack.packet_id, packet_id);
                    codes = Some(ack.reason_codes);
                }
                other => rest.push_back(other),
            }
        }
        // Retained messages sent on subscription stay in the inbox.
        self.inbox.insert(conn, rest);
        codes.unwrap_or_else(|| panic!("no SUBACK on {conn}"))
    }

    fn subscribe(&mut self, conn: ConnId, filter: &str, qos: QoS) -> u8 {
        let codes = self.subscribe_opts(conn, 1, &[(filter, SubscriptionOptions::qos(qos))], None);
        assert_eq!(codes.len(), 1);
        codes[0]
    }

    fn publish(&mut self, conn: ConnId, p: Publish) {
        self.send(conn, Packet::Publish(p));
    }
}

fn publish(topic: &str, payload: &str, qos: QoS, packet_id: u16) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: ByteString::from(topic),
        packet_id,
        properties: Properties::new(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

fn retained(topic: &str, payload: &str) -> Publish {
    Publish {
        retain: true,
        ..publish(topic, payload, QoS::AtMostOnce, 0)
    }
}

fn payload(p: &Publish) -> &[u8] {
    &p.payload
}

fn payloads(ps: &[Publish]) -> Vec<String> {
    ps.iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

fn will(topic: &str, payload: &str) -> Will {
    Will {
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::new(),
        topic: ByteString::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

fn disconnect(code: u8) -> Packet {
    Packet::Disconnect(Disconnect {
        reason_code: code,
        properties: Properties::new(),
    })
}

fn disconnect_code(p: &Packet) -> Option<u8> {
    match p {
        Packet::Disconnect(d) => Some(d.reason_code),
        _ => None,
    }
}

fn ack_id(p: &Packet) -> (&'static str, u16, u8) {
    match p {
        Packet::PubAck(r) => ("PUBACK", r.packet_id, r.reason_code),
        Packet::PubRec(r) => ("PUBREC", r.packet_id, r.reason_code),
        Packet::PubRel(r) => ("PUBREL", r.packet_id, r.reason_code),
        Packet::PubComp(r) => ("PUBCOMP", r.packet_id, r.reason_code),
        other => panic!("expected an acknowledgement, got {other:?}"),
    }
}

// ---------------------------------------------------------------- CONNECT

#[test]
fn connack_for_each_version() {
    let mut net = Net::new();
    for (i, protocol) in [V31, V311, V5].into_iter().enumerate() {
        let (conn, ack) = net.connect_with(Connect::new(protocol, format!("c{i}")));
        assert_eq!(ack.code, 0);
        assert!(!ack.session_present);
        assert_eq!(net.broker.protocol(conn), Some(protocol));
        if protocol.is_v5() {
            // 5.0 CONNACK announces the server's limits.
            assert_eq!(
                ack.properties.receive_maximum(),
                Some(Config::default().receive_maximum)
            );
            assert_eq!(
                ack.properties.maximum_packet_size(),
                Some(Config::default().max_packet_size)
            );
            assert_eq!(
                ack.properties.topic_alias_maximum(),
                Some(Config::default().topic_alias_maximum)
            );
            assert_eq!(ack.properties.assigned_client_identifier(), None);
        } else {
            assert!(ack.properties.is_empty());
        }
        assert!(!net.is_closed(conn));
    }
    assert_eq!(net.broker.session_count(), 3);
}

#[test]
fn session_present_v311() {
    let mut net = Net::new();
    // A new persistent session: nothing stored yet.
    let (c, ack) = net.persistent_v311("p");
    assert!(!ack.session_present);
    net.send(c, disconnect(0));
    assert!(net.is_closed(c));
    // The session exists, even without subscriptions (MQTT-3.2.2-2).
    let (c, ack) = net.persistent_v311("p");
    assert!(ack.session_present, "stored session, Clean Session 0");
    assert_eq!(net.subscribe(c, "t", QoS::AtLeastOnce), 1);
    net.drop_conn(c);
    let (c, ack) = net.persistent_v311("p");
    assert!(ack.session_present);
    net.send(c, disconnect(0));
    // Clean Session 1 discards it and answers 0 (MQTT-3.2.2-1).
    let (c, ack) = net.connect_with(Connect::new(V311, "p"));
    assert!(!ack.session_present);
    net.send(c, disconnect(0));
    // A clean session ends with its connection.
    let (_, ack) = net.persistent_v311("p");
    assert!(!ack.session_present);
}

#[test]
fn session_present_v5() {
    let mut net = Net::new();
    // Session Expiry 0: the session ends with the connection.
    let (c, ack) = net.persistent_v5("p", 0);
    assert!(!ack.session_present);
    net.send(c, disconnect(0));
    let (c, ack) = net.persistent_v5("p", 60);
    assert!(!ack.session_present);
    net.send(c, disconnect(0));
    let (c, ack) = net.persistent_v5("p", 60);
    assert!(ack.session_present);
    net.drop_conn(c);
    // Clean Start 1 discards the stored session.
    let mut connect = Connect::new(V5, "p");
    connect.properties.push(Property::SessionExpiryInterval(60));
    let (_, ack) = net.connect_with(connect);
    assert!(!ack.session_present);
}

#[test]
fn session_present_never_set_for_v31() {
    let mut net = Net::new();
    let mut connect = Connect::new(V31, "old");
    connect.clean_start = false;
    let (c, ack) = net.connect_with(connect.clone());
    assert!(!ack.session_present);
    net.subscribe(c, "t", QoS::AtLeastOnce);
    net.send(c, disconnect(0));
    // The session is resumed, but 3.1's CONNACK flags byte is reserved.
    let (c, ack) = net.connect_with(connect);
    assert!(!ack.session_present);
    let p = net.client(V31, "p");
    net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
    assert_eq!(payloads(&net.recv_publishes(c)), ["x"]);
}

#[test]
fn connection_limit() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let mut net = Net::with(config);
    let a = net.open();
    net.open();
    assert_eq!(net.broker.open(net.now), None);
    net.drop_conn(a);
    assert!(net.broker.open(net.now).is_some());
}

#[test]
fn empty_client_id() {
    let mut net = Net::new();
    // 5.0: the server assigns one and says which.
    let (c1, ack1) = net.connect_with(Connect::new(V5, ""));
    assert_eq!(ack1.code, 0);
    let a1 = ack1
        .properties
        .assigned_client_identifier()
        .expect("Assigned Client Identifier");
    assert!(!a1.is_empty());
    let (_, ack2) = net.connect_with(Connect::new(V5, ""));
    let a2 = ack2
        .properties
        .assigned_client_identifier()
        .expect("Assigned Client Identifier");
    assert_ne!(a1, a2, "assigned ids are unique");
    assert!(
        !net.is_closed(c1),
        "a second assigned id does not take over the first"
    );
    // 5.0 Clean Start 0 with an empty id is allowed too.
    let (_, ack) = net.persistent_v5("", 10);
    assert_eq!(ack.code, 0);
    assert!(ack.properties.assigned_client_identifier().is_some());

    // 3.1.1 Clean Session 1: accepted, no properties.
    let (c, ack) = net.connect_with(Connect::new(V311, ""));
    assert_eq!(ack.code, 0);
    assert!(!net.is_closed(c));
    // 3.1.1 Clean Session 0: identifier rejected, then closed (MQTT-3.1.3-8).
    let (c, ack) = net.persistent_v311("");
    assert_eq!(ack.code, reason::v3::IDENTIFIER_REJECTED);
    assert!(!ack.session_present);
    assert!(net.is_closed(c));
}

#[test]
fn v31_client_id_rules() {
    let mut net = Net::new();
    let (c, ack) = net.connect_with(Connect::new(V31, ""));
    assert_eq!(ack.code, reason::v3::IDENTIFIER_REJECTED);
    assert!(net.is_closed(c));
    let (c, ack) = net.connect_with(Connect::new(V31, "a".repeat(24)));
    assert_eq!(ack.code, reason::v3::IDENTIFIER_REJECTED);
    assert!(net.is_closed(c));
    let (c, ack) = net.connect_with(Connect::new(V31, "a".repeat(23)));
    assert_eq!(ack.code, 0);
    assert!(!net.is_closed(c));
}

#[test]
fn second_connect_closes() {
    let mut net = Net::new();
    let c = net.client(V5, "a");
    net.send(c, Packet::Connect(Box::new(Connect::new(V5, "a"))));
    assert_eq!(disconnect_code(&net.one(c)), Some(reason::PROTOCOL_ERROR));
    assert!(net.is_closed(c));

    let c = net.client(V311, "b");
    net.send(c, Packet::Connect(Box::new(Connect::new(V311, "b"))));
    assert!(net.recv(c).is_empty(), "3.1.1 has no server DISCONNECT");
    assert!(net.is_closed(c));
}

#[test]
fn packet_before_connect_closes() {
    let mut net = Net::new();
    for packet in [
        Packet::PingReq,
        Packet::Publish(publish("t", "x", QoS::AtMostOnce, 0)),
        disconnect(0),
    ] {
        let c = net.open();
        net.send(c, packet);
        assert!(net.recv(c).is_empty());
        assert!(net.is_closed(c));
    }
    // Nothing after the close is acted on.
    let c = net.open();
    net.send(c, Packet::PingReq);
    net.send(c, Packet::Connect(Box::new(Connect::new(V311, "late"))));
    assert!(net.recv(c).is_empty());
    assert_eq!(net.broker.session_count(), 0);
}

#[test]
fn input_after_refused_connect_is_ignored() {
    let mut net = Net::new();
    let (c, ack) = net.persistent_v311("");
    assert_eq!(ack.code, reason::v3::IDENTIFIER_REJECTED);
    net.send(c, Packet::PingReq);
    assert!(net.recv(c).is_empty());
}

#[test]
fn pingreq() {
    let mut net = Net::new();
    for protocol in [V31, V311, V5] {
        let c = net.client(protocol, &format!("ping-{protocol}"));
        net.send(c, Packet::PingReq);
        assert_eq!(net.one(c), Packet::PingResp);
    }
}

// ---------------------------------------------------------------- QoS

#[test]
fn qos0_flow() {
    let mut net = Net::new();
    let sub = net.client(V311, "sub");
    let publ = net.client(V311, "pub");
    assert_eq!(net.subscribe(sub, "t", QoS::AtMostOnce), 0);
    net.publish(publ, publish("t", "zero", QoS::AtMostOnce, 0));
    assert!(net.recv(publ).is_empty());
    let got = net.recv_publishes(sub);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::AtMostOnce);
    assert!(!got[0].dup);
    assert_eq!(payload(&got[0]), b"zero");
}

#[test]
fn qos1_flow() {
    for protocol in [V311, V5] {
        let mut net = Net::new();
        let sub = net.client(protocol, "sub");
        let publ = net.client(protocol, "pub");
        // Without subscribers, 5.0 says so in the PUBACK.
        net.publish(publ, publish("t", "none", QoS::AtLeastOnce, 3));
        let expected = if protocol.is_v5() {
            reason::NO_MATCHING_SUBSCRIBERS
        } else {
            0
        };
        assert_eq!(ack_id(&net.one(publ)), ("PUBACK", 3, expected));

        assert_eq!(net.subscribe(sub, "t", QoS::AtLeastOnce), 1);
        net.publish(publ, publish("t", "m1", QoS::AtLeastOnce, 7));
        net.publish(publ, publish("t", "m2", QoS::AtLeastOnce, 8));
        assert_eq!(
            net.recv(publ).iter().map(ack_id).collect::<Vec<_>>(),
            [("PUBACK", 7, 0), ("PUBACK", 8, 0)]
        );
        let got = net.recv_publishes(sub);
        assert_eq!(payloads(&got), ["m1", "m2"]);
        for p in &got {
            assert_eq!(p.qos, QoS::AtLeastOnce);
            assert_ne!(p.packet_id, 0, "MQTT-2.2.1-4");
            assert!(!p.dup);
        }
        assert_ne!(
            got[0].packet_id, got[1].packet_id,
            "identifiers in use are not reused"
        );
        for p in &got {
            net.send(sub, Packet::PubAck(PubResponse::new(p.packet_id)));
        }
        assert!(net.recv(sub).is_empty());
    }
}

#[test]
fn qos2_flow() {
    for protocol in [V31, V311, V5] {
        let mut net = Net::new();
        let sub = net.client(protocol, "sub");
        let publ = net.client(protocol, "pub");
        assert_eq!(net.subscribe(sub, "t", QoS::ExactlyOnce), 2);
        net.publish(publ, publish("t", "two", QoS::ExactlyOnce, 9));
        assert_eq!(ack_id(&net.one(publ)), ("PUBREC", 9, 0));
        // The message goes on at once (the broker chose "deliver on PUBLISH").
        let got = net.recv_publishes(sub);
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!((m.qos, payload(m)), (QoS::ExactlyOnce, &b"two"[..]));
        assert_ne!(m.packet_id, 0);
        net.send(publ, Packet::PubRel(PubResponse::new(9)));
        assert_eq!(ack_id(&net.one(publ)), ("PUBCOMP", 9, 0));

        net.send(sub, Packet::PubRec(PubResponse::new(m.packet_id)));
        assert_eq!(ack_id(&net.one(sub)), ("PUBREL", m.packet_id, 0));
        net.send(sub, Packet::PubComp(PubResponse::new(m.packet_id)));
        assert!(net.recv(sub).is_empty());
        assert!(!net.is_closed(sub) && !net.is_closed(publ));
    }
}

#[test]
fn pubrel_for_unknown_id() {
    let mut net = Net::new();
    let c = net.client(V5, "c");
    net.send(c, Packet::PubRel(PubResponse::new(77)));
    assert_eq!(
        ack_id(&net.one(c)),
        ("PUBCOMP", 77, reason::PACKET_IDENTIFIER_NOT_FOUND)
    );
    let c = net.client(V311, "d");
    net.send(c, Packet::PubRel(PubResponse::new(77)));
    assert_eq!(ack_id(&net.one(c)), ("PUBCOMP", 77, 0));
}

/// Found by the broker fuzzer: a message in flight towards a 5.0 connection
/// kept its 5.0 properties when its session was resumed by a 3.1.1
/// connection, and the resend could not be encoded (so was lost).
#[test]
fn inflight_resent_in_another_version_fits_it() {
    let mut net = Net::new();
    let mut c = Connect::new(V5, "dev");
    c.properties = Properties(vec![Property::SessionExpiryInterval(60)]);
    let (sub, _) = net.connect_with(c);
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net.client(V5, "pub");
    let mut p = publish("t", "m", QoS::AtLeastOnce, 1);
    p.properties = Properties(vec![Property::MessageExpiryInterval(100)]);
    net.publish(publ, p);
    let first = net.recv_publishes(sub);
    assert_eq!(first.len(), 1);
    assert!(!first[0].properties.is_empty(), "{first:?}");
    net.drop_conn(sub);

    let mut again = Connect::new(V311, "dev");
    again.clean_start = false;
    let (sub, ack) = net.connect_with(again);
    assert!(ack.session_present);
    let resent = net.recv_publishes(sub);
    assert_eq!(payloads(&resent), ["m"]);
    assert!(
        resent[0].dup && resent[0].properties.is_empty(),
        "{resent:?}"
    );
}

/// MQTT-4.6.0-1: messages in flight are resent in the order they were first
/// sent, also when their packet identifiers wrapped around 65535 between
/// them (the core kept them by identifier and resent 1, 2 before 65534).
#[test]
fn inflight_resent_in_sending_order_across_identifier_wrap() {
    let mut net = Net::new();
    let mut c = Connect::new(V311, "dev");
    c.clean_start = false;
    let (sub, _) = net.connect_with(c.clone());
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net.client(V311, "pub");
    // Identifiers 1 to 65533 used and acknowledged, one at a time.
    for _ in 1..=65_533u32 {
        net.publish(publ, publish("t", "x", QoS::AtLeastOnce, 1));
        let got = net.recv_publishes(sub);
        let id = got.first().map(|p| p.packet_id).expect("delivered");
        net.send(sub, Packet::PubAck(PubResponse::new(id)));
        net.recv(publ);
    }
    // Four more, unacknowledged: 65534, 65535, then 1 and 2.
    let mut sent = Vec::new();
    for m in ["a", "b", "c", "d"] {
        net.publish(publ, publish("t", m, QoS::AtLeastOnce, 1));
        net.recv(publ);
        sent.extend(net.recv_publishes(sub));
    }
    let ids: Vec<u16> = sent.iter().map(|p| p.packet_id).collect();
    assert_eq!(ids, [65534, 65535, 1, 2]);
    net.drop_conn(sub);
    let (sub, ack) = net.connect_with(c);
    assert!(ack.session_present);
    let resent = net.recv_publishes(sub);
    assert_eq!(payloads(&resent), ["a", "b", "c", "d"]);
}

#[test]
fn pubrec_for_unknown_id() {
    let mut net = Net::new();
    let c = net.client(V5, "c");
    net.send(c, Packet::PubRec(PubResponse::new(78)));
    assert_eq!(
        ack_id(&net.one(c)),
        ("PUBREL", 78, reason::PACKET_IDENTIFIER_NOT_FOUND)
    );
    // A failure PUBREC ends the exchange on its side: nothing to release.
    let mut refused = PubResponse::new(79);
    refused.reason_code = reason::UNSPECIFIED_ERROR;
    net.send(c, Packet::PubRec(refused));
    assert_eq!(net.recv(c), []);
    let c = net.client(V311, "d");
    net.send(c, Packet::PubRec(PubResponse::new(78)));
    assert_eq!(ack_id(&net.one(c)), ("PUBREL", 78, 0));
    assert!(!net.is_closed(c));
}

#[test]
fn qos2_duplicate_before_pubrel_not_delivered_twice() {
    let mut net = Net::new();
    let sub = net.client(V311, "sub");
    let publ = net.client(V311, "pub");
    net.subscribe(sub, "t", QoS::ExactlyOnce);
    net.publish(publ, publish("t", "once", QoS::ExactlyOnce, 5));
    assert_eq!(ack_id(&net.one(publ)), ("PUBREC", 5, 0));
    let mut again = publish("t", "once", QoS::ExactlyOnce, 5);
    again.dup = true;
    net.publish(publ, again);
    // Acknowledged again, not forwarded again (MQTT-4.3.3-10).
    assert_eq!(ack_id(&net.one(publ)), ("PUBREC", 5, 0));
    assert_eq!(net.recv_publishes(sub).len(), 1);
    net.send(publ, Packet::PubRel(PubResponse::new(5)));
    assert_eq!(ack_id(&net.one(publ)), ("PUBCOMP", 5, 0));
    // After PUBREL the identifier is free: the same id is a new message.
    net.publish(publ, publish("t", "new", QoS::ExactlyOnce, 5));
    assert_eq!(ack_id(&net.one(publ)), ("PUBREC", 5, 0));
    assert_eq!(payloads(&net.recv_publishes(sub)), ["new"]);
}

#[test]
fn inbound_receive_maximum_exceeded() {
    let config = Config {
        receive_maximum: 2,
        ..Config::default()
    };
    let mut net = Net::with(config);
    let c = net.client(V5, "c");
    net.publish(c, publish("t", "1", QoS::ExactlyOnce, 1));
    net.publish(c, publish("t", "2", QoS::ExactlyOnce, 2));
    assert_eq!(net.recv(c).len(), 2);
    assert!(!net.is_closed(c));
    // A PUBREL frees a slot.
    net.send(c, Packet::PubRel(PubResponse::new(1)));
    net.publish(c, publish("t", "3", QoS::ExactlyOnce, 3));
    assert_eq!(
        net.recv(c).iter().map(ack_id).collect::<Vec<_>>(),
        [
            ("PUBCOMP", 1, 0),
            ("PUBREC", 3, reason::NO_MATCHING_SUBSCRIBERS)
        ]
    );
    net.publish(c, publish("t", "4", QoS::ExactlyOnce, 4));
    assert_eq!(
        disconnect_code(&net.one(c)),
        Some(reason::RECEIVE_MAXIMUM_EXCEEDED)
    );
    assert!(net.is_closed(c));
}

#[test]
fn inbound_qos2_state_survives_reconnect() {
    let mut net = Net::new();
    let s = net.client(V311, "s");
    net.subscribe(s, "t", QoS::ExactlyOnce);
    let (p, _) = net.persistent_v311("p");
    net.publish(p, publish("t", "m", QoS::ExactlyOnce, 9));
    assert_eq!(ack_id(&net.one(p)), ("PUBREC", 9, 0));
    net.drop_conn(p);
    let (p, ack) = net.persistent_v311("p");
    assert!(ack.session_present);
    // The client re-sends the PUBLISH (DUP) and then PUBREL: still one copy.
    let mut again = publish("t", "m", QoS::ExactlyOnce, 9);
    again.dup = true;
    net.publish(p, again);
    net.send(p, Packet::PubRel(PubResponse::new(9)));
    assert_eq!(
        net.recv(p).iter().map(ack_id).collect::<Vec<_>>(),
        [("PUBREC", 9, 0), ("PUBCOMP", 9, 0)]
    );
    assert_eq!(net.recv_publishes(s).len(), 1);
}

#[test]
fn unsubscribe() {
    use mqtt_codec::Unsubscribe;
    let mut net = Net::new();
    let c = net.client(V5, "c");
    net.subscribe(c, "a", QoS::AtMostOnce);
    net.subscribe(c, "b/#", QoS::AtMostOnce);
    net.send(
        c,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 4,
            properties: Properties::new(),
            filters: vec!["a".into(), "b/+".into()],
        }),
    );
    match net.one(c) {
        Packet::UnsubAck(u) => {
            assert_eq!(u.packet_id, 4);
            assert_eq!(u.reason_codes, [0, reason::NO_SUBSCRIPTION_EXISTED]);
        }
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
    let p = net.client(V5, "p");
    net.publish(p, publish("a", "gone", QoS::AtMostOnce, 0));
    net.publish(p, publish("b/x", "kept", QoS::AtMostOnce, 0));
    assert_eq!(payloads(&net.recv_publishes(c)), ["kept"]);
    // 3.1.1 UNSUBACK has no payload.
    let old = net.client(V311, "old");
    net.send(
        old,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 5,
            properties: Properties::new(),
            filters: vec!["x".into()],
        }),
    );
    assert!(
        matches!(net.one(old), Packet::UnsubAck(u) if u.packet_id == 5 && u.reason_codes.is_empty())
    );
}

#[test]
fn delivered_at_granted_qos() {
    let mut net = Net::new();
    let s0 = net.client(V311, "s0");
    let s1 = net.client(V311, "s1");
    let s2 = net.client(V311, "s2");
    net.subscribe(s0, "t", QoS::AtMostOnce);
    net.subscribe(s1, "t", QoS::AtLeastOnce);
    net.subscribe(s2, "t", QoS::ExactlyOnce);
    let publ = net.client(V311, "pub");
    net.publish(publ, publish("t", "q2", QoS::ExactlyOnce, 1));
    net.publish(publ, publish("t", "q1", QoS::AtLeastOnce, 2));
    net.publish(publ, publish("t", "q0", QoS::AtMostOnce, 0));
    let qos = |ps: Vec<Publish>| ps.iter().map(|p| p.qos.as_u8()).collect::<Vec<_>>();
    assert_eq!(qos(net.recv_publishes(s0)), [0, 0, 0]);
    assert_eq!(qos(net.recv_publishes(s1)), [1, 1, 0]);
    assert_eq!(qos(net.recv_publishes(s2)), [2, 1, 0]);
}

#[test]
fn granted_qos_capped_by_maximum_qos() {
    let config = Config {
        maximum_qos: 1,
        ..Config::default()
    };
    let mut net = Net::with(config);
    let (c, ack) = net.connect_with(Connect::new(V5, "c"));
    assert_eq!(ack.properties.maximum_qos(), Some(1));
    assert_eq!(net.subscribe(c, "t", QoS::ExactlyOnce), 1);
    // A QoS 2 PUBLISH beyond Maximum QoS ends the connection.
    net.publish(c, publish("t", "x", QoS::ExactlyOnce, 1));
    assert_eq!(
        disconnect_code(&net.one(c)),
        Some(reason::QOS_NOT_SUPPORTED)
    );
    assert!(net.is_closed(c));
}

#[test]
fn overlapping_subscriptions_one_copy() {
    let mut net = Net::new();
    let sub = net.client(V5, "sub");
    let publ = net.client(V5, "pub");
    net.subscribe_opts(
        sub,
        1,
        &[("a/+", SubscriptionOptions::qos(QoS::AtMostOnce))],
        Some(11),
    );
    net.subscribe_opts(
        sub,
        2,
        &[("a/#", SubscriptionOptions::qos(QoS::ExactlyOnce))],
        Some(22),
    );
    net.subscribe_opts(
        sub,
        3,
        &[("a/b", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        None,
    );
    net.subscribe_opts(
        sub,
        4,
        &[("x/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        Some(44),
    );
    net.publish(publ, publish("a/b", "m", QoS::ExactlyOnce, 1));
    let got = net.recv_publishes(sub);
    assert_eq!(got.len(), 1, "one copy per session: {got:?}");
    assert_eq!(got[0].qos, QoS::ExactlyOnce, "the highest granted QoS");
    let mut ids: Vec<u32> = got[0].properties.subscription_identifiers().collect();
    ids.sort_unstable();
    assert_eq!(ids, [11, 22], "every matching subscription's identifier");
}

#[test]
fn subscription_identifier_replaced_with_subscription() {
    let mut net = Net::new();
    let sub = net.client(V5, "sub");
    net.subscribe_opts(
        sub,
        1,
        &[("t", SubscriptionOptions::qos(QoS::AtMostOnce))],
        Some(5),
    );
    net.subscribe_opts(
        sub,
        2,
        &[("t", SubscriptionOptions::qos(QoS::AtMostOnce))],
        None,
    );
    let publ = net.client(V5, "pub");
    net.publish(publ, publish("t", "m", QoS::AtMostOnce, 0));
    let got = net.recv_publishes(sub);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].properties.subscription_identifiers().count(), 0);
}

#[test]
fn wildcards_and_dollar_topics() {
    let mut net = Net::new();
    let publ = net.client(V311, "pub");
    let cases: &[(&str, &[&str])] = &[
        ("#", &["a", "a/b", "a/b/c", "/x", "/b", "A/b"]),
        ("+", &["a"]),
        ("a/#", &["a", "a/b", "a/b/c"]),
        ("a/+", &["a/b"]),
        ("a/b", &["a/b"]),
        ("+/b", &["a/b", "/b", "A/b"]),
        ("+/+", &["a/b", "/x", "/b", "A/b"]),
        ("$SYS/#", &["$SYS/x"]),
        ("$SYS/+", &["$SYS/x"]),
        ("+/x", &["/x"]),
    ];
    let topics = ["a", "a/b", "a/b/c", "/x", "/b", "$SYS/x", "A/b"];
    let mut subs = Vec::new();
    for (i, (filter, _)) in cases.iter().enumerate() {
        let c = net.client(V311, &format!("s{i}"));
        net.subscribe(c, filter, QoS::AtMostOnce);
        subs.push(c);
    }
    for t in topics {
        net.publish(publ, publish(t, t, QoS::AtMostOnce, 0));
    }
    for ((filter, expected), c) in cases.iter().zip(subs) {
        let got = payloads(&net.recv_publishes(c));
        assert_eq!(got, *expected, "filter {filter}");
    }
}

#[test]
fn no_local() {
    let mut net = Net::new();
    let me = net.client(V5, "me");
    let other = net.client(V5, "other");
    let nl = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::qos(QoS::AtLeastOnce)
    };
    net.subscribe_opts(me, 1, &[("t", nl)], None);
    net.subscribe_opts(other, 1, &[("t", nl)], None);
    net.publish(me, publish("t", "mine", QoS::AtLeastOnce, 1));
    assert_eq!(ack_id(&net.one(me)), ("PUBACK", 1, 0));
    assert_eq!(payloads(&net.recv_publishes(other)), ["mine"]);
    // Without No Local a client gets its own messages.
    net.subscribe_opts(
        other,
        2,
        &[("t", SubscriptionOptions::qos(QoS::AtMostOnce))],
        None,
    );
    net.publish(other, publish("t", "own", QoS::AtMostOnce, 0));
    assert_eq!(payloads(&net.recv_publishes(other)), ["own"]);
}

#[test]
fn retain_as_published() {
    let mut net = Net::new();
    let rap = net.client(V5, "rap");
    let plain = net.client(V5, "plain");
    let old = net.client(V311, "old");
    let opts = SubscriptionOptions {
        retain_as_published: true,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    net.subscribe_opts(rap, 1, &[("t", opts)], None);
    net.subscribe(plain, "t", QoS::AtMostOnce);
    net.subscribe(old, "t", QoS::AtMostOnce);
    let publ = net.client(V5, "pub");
    net.publish(publ, retained("t", "r"));
    net.publish(publ, publish("t", "n", QoS::AtMostOnce, 0));
    let flags = |ps: Vec<Publish>| ps.iter().map(|p| p.retain).collect::<Vec<_>>();
    assert_eq!(flags(net.recv_publishes(rap)), [true, false]);
    assert_eq!(flags(net.recv_publishes(plain)), [false, false]);
    assert_eq!(flags(net.recv_publishes(old)), [false, false]);
}

#[test]
fn retain_handling() {
    let mut net = Net::new();
    let publ = net.client(V5, "pub");
    net.publish(publ, retained("r/t", "kept"));
    let c = net.client(V5, "c");
    let rh = |h: u8| SubscriptionOptions {
        retain_handling: h,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    // 0: on every subscribe.
    net.subscribe_opts(c, 1, &[("r/#", rh(0))], None);
    let got = net.recv_publishes(c);
    assert_eq!(payloads(&got), ["kept"]);
    assert!(
        got[0].retain,
        "retained messages keep RETAIN on subscription"
    );
    net.subscribe_opts(c, 2, &[("r/#", rh(0))], None);
    assert_eq!(payloads(&net.recv_publishes(c)), ["kept"]);
    // 1: only for a new subscription.
    net.subscribe_opts(c, 3, &[("r/+", rh(1))], None);
    assert_eq!(payloads(&net.recv_publishes(c)), ["kept"]);
    net.subscribe_opts(c, 4, &[("r/+", rh(1))], None);
    assert!(net.recv(c).is_empty());
    // 2: never.
    net.subscribe_opts(c, 5, &[("r/t", rh(2))], None);
    assert!(net.recv(c).is_empty());
    // 3.1.1 subscribers always get retained messages.
    let old = net.client(V311, "old");
    net.subscribe(old, "r/t", QoS::AtMostOnce);
    net.subscribe(old, "r/t", QoS::AtMostOnce);
    let got = net.recv_publishes(old);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| p.retain));
}

#[test]
fn retained_set_replace_clear() {
    let mut net = Net::new();
    let publ = net.client(V311, "pub");
    net.publish(publ, retained("a", "v1"));
    net.publish(publ, retained("b", "b1"));
    net.publish(publ, retained("a", "v2"));
    assert_eq!(net.broker.retained_count(), 2);
    let c = net.client(V311, "c1");
    net.subscribe(c, "a", QoS::AtMostOnce);
    assert_eq!(payloads(&net.recv_publishes(c)), ["v2"]);
    // A message at a higher QoS is retained at the QoS it was published with.
    let mut q1 = retained("a", "v3");
    q1.qos = QoS::AtLeastOnce;
    q1.packet_id = 4;
    net.publish(publ, q1);
    net.recv(publ);
    net.recv(c);
    let d = net.client(V311, "d");
    net.subscribe(d, "a", QoS::ExactlyOnce);
    let got = net.recv_publishes(d);
    assert_eq!(
        (payloads(&got), got[0].qos),
        (vec!["v3".to_string()], QoS::AtLeastOnce)
    );
    // Empty payload clears; the clearing message itself still reaches subscribers.
    net.publish(publ, retained("a", ""));
    let got = net.recv_publishes(c);
    assert_eq!(got.len(), 1);
    assert!(got[0].payload.is_empty());
    assert_eq!(net.broker.retained_count(), 1);
    let e = net.client(V311, "e");
    net.subscribe(e, "#", QoS::AtMostOnce);
    assert_eq!(payloads(&net.recv_publishes(e)), ["b1"]);
    // A non-retained message does not touch the retained one.
    net.publish(publ, publish("b", "live", QoS::AtMostOnce, 0));
    let f = net.client(V311, "f");
    net.subscribe(f, "b", QoS::AtMostOnce);
    assert_eq!(payloads(&net.recv_publishes(f)), ["b1"]);
}

#[test]
fn shared_subscriptions_round_robin() {
    let mut net = Net::new();
    let publ = net.client(V5, "pub");
    net.publish(publ, retained("s/t", "old"));
    let g1 = net.client(V5, "g1");
    let g2 = net.client(V5, "g2");
    let h = net.client(V5, "h");
    for (c, f) in [
        (g1, "$share/g/s/+"),
        (g2, "$share/g/s/+"),
        (h, "$share/h/s/#"),
    ] {
        net.subscribe_opts(
            c,
            1,
            &[(f, SubscriptionOptions::qos(QoS::AtLeastOnce))],
            None,
        );
        assert!(
            net.recv(c).is_empty(),
            "no retained messages on a shared subscription"
        );
    }
    for i in 0..3 {
        net.publish(publ, publish("s/t", &format!("m{i}"), QoS::AtMostOnce, 0));
    }
    // Many sessions joining in between must not upset the turn.
    for i in 0..100 {
        net.client(V5, &format!("other{i}"));
    }
    for i in 3..6 {
        net.publish(publ, publish("s/t", &format!("m{i}"), QoS::AtMostOnce, 0));
    }
    let a = payloads(&net.recv_publishes(g1));
    let b = payloads(&net.recv_publishes(g2));
    // In turn: the two members alternate.
    let first_is_a = a.first().map(String::as_str) == Some("m0");
    let (x, y) = if first_is_a { (&a, &b) } else { (&b, &a) };
    assert_eq!(x, &["m0", "m2", "m4"], "{a:?} / {b:?}");
    assert_eq!(y, &["m1", "m3", "m5"], "{a:?} / {b:?}");
    // Every group gets its own copy.
    assert_eq!(net.recv_publishes(h).len(), 6);
}

#[test]
fn shared_subscription_prefers_connected_members() {
    let mut net = Net::new();
    let publ = net.client(V5, "pub");
    let (g1, _) = net.persistent_v5("g1", 100);
    let g2 = net.client(V5, "g2");
    for c in [g1, g2] {
        net.subscribe_opts(
            c,
            1,
            &[("$share/g/t", SubscriptionOptions::qos(QoS::AtLeastOnce))],
            None,
        );
    }
    net.drop_conn(g1);
    for i in 0..4 {
        net.publish(
            publ,
            publish("t", &format!("m{i}"), QoS::AtLeastOnce, i + 1),
        );
    }
    assert_eq!(net.recv_publishes(g2).len(), 4);
}

// ---------------------------------------------------------------- sessions

#[test]
fn session_takeover() {
    let mut net = Net::new();
    let (old, _) = net.persistent_v5("dev", 100);
    net.subscribe(old, "t", QoS::AtLeastOnce);
    let (new, ack) = net.persistent_v5("dev", 100);
    assert_eq!(ack.code, 0);
    assert!(ack.session_present);
    assert_eq!(
        disconnect_code(&net.one(old)),
        Some(reason::SESSION_TAKEN_OVER)
    );
    assert!(net.is_closed(old));
    assert!(!net.is_closed(new));
    // The subscription moved to the new connection.
    let publ = net.client(V5, "pub");
    net.publish(publ, publish("t", "x", QoS::AtMostOnce, 0));
    assert_eq!(net.recv_publishes(new).len(), 1);
    assert!(net.recv(old).is_empty());

    // 3.1.1: the old connection is closed without a packet.
    let a = net.client(V311, "dup");
    let b = net.client(V311, "dup");
    assert!(net.recv(a).is_empty());
    assert!(net.is_closed(a));
    assert!(!net.is_closed(b));
    assert_eq!(net.broker.connection_count(), 3);
}

#[test]
fn takeover_publishes_old_will() {
    let mut net = Net::new();
    let watcher = net.client(V311, "w");
    net.subscribe(watcher, "will", QoS::AtMostOnce);
    let mut c = Connect::new(V311, "dev");
    c.will = Some(will("will", "gone"));
    net.connect_with(c);
    net.client(V311, "dev");
    assert_eq!(payloads(&net.recv_publishes(watcher)), ["gone"]);
}

#[test]
fn persistent_session_resumes_with_queue_and_dup() {
    for protocol in [V311, V5] {
        let mut net = Net::new();
        let connect = |net: &mut Net| {
            if protocol.is_v5() {
                net.persistent_v5("s", 1000)
            } else {
                net.persistent_v311("s")
            }
        };
        let (c, _) = connect(&mut net);
        net.subscribe(c, "t", QoS::AtLeastOnce);
        let publ = net.client(protocol, "pub");
        net.publish(publ, publish("t", "m1", QoS::AtLeastOnce, 1));
        let first = net.recv_publishes(c);
        assert_eq!(payloads(&first), ["m1"]);
        // Lost before PUBACK.
        net.drop_conn(c);
        net.at(5);
        net.publish(publ, publish("t", "m2", QoS::AtLeastOnce, 2));
        net.publish(publ, publish("t", "q0", QoS::AtMostOnce, 0));
        net.publish(publ, publish("t", "m3", QoS::ExactlyOnce, 3));
        net.recv(publ);
        net.at(10);
        let (c, ack) = connect(&mut net);
        assert!(ack.session_present);
        let got = net.recv_publishes(c);
        assert_eq!(
            payloads(&got),
            ["m1", "m2", "m3"],
            "{protocol}: QoS 0 is not queued for an offline session"
        );
        assert!(got[0].dup, "re-sent in-flight message has DUP");
        assert_eq!(
            got[0].packet_id, first[0].packet_id,
            "same packet identifier"
        );
        assert!(!got[1].dup && !got[2].dup);
        assert_eq!(got[2].qos, QoS::AtLeastOnce);
        let ids: HashSet<u16> = got.iter().map(|p| p.packet_id).collect();
        assert_eq!(ids.len(), 3);
    }
}

#[test]
fn pubrel_resent_on_reconnect() {
    let mut net = Net::new();
    let (c, _) = net.persistent_v5("s", 1000);
    net.subscribe(c, "t", QoS::ExactlyOnce);
    let publ = net.client(V5, "pub");
    net.publish(publ, publish("t", "m", QoS::ExactlyOnce, 1));
    let got = net.recv_publishes(c);
    net.send(c, Packet::PubRec(PubResponse::new(got[0].packet_id)));
    assert_eq!(ack_id(&net.one(c)), ("PUBREL", got[0].packet_id, 0));
    net.drop_conn(c);
    let (c, ack) = net.persistent_v5("s", 1000);
    assert!(ack.session_present);
    // MQTT-4.4.0-1: the PUBREL is re-sent, not the PUBLISH.
    assert_eq!(ack_id(&net.one(c)), ("PUBREL", got[0].packet_id, 0));
    net.send(c, Packet::PubComp(PubResponse::new(got[0].packet_id)));
    assert!(net.recv(c).is_empty());
}

#[test]
fn receive_maximum_respected() {
    let mut net = Net::new();
    let mut connect = Connect::new(V5, "slow");
    connect.properties.push(Property::ReceiveMaximum(2));
    let (c, _) = net.connect_with(connect);
    net.subscribe(c, "t", QoS::ExactlyOnce);
    let publ = net.client(V5, "pub");
    net.publish(publ, publish("t", "m0", QoS::AtLeastOnce, 1));
    net.publish(publ, publish("t", "m1", QoS::AtLeastOnce, 2));
    // The window is full; QoS 0 is not limited by it.
    net.publish(publ, publish("t", "zero", QoS::AtMostOnce, 0));
    for i in 2..5u16 {
        net.publish(
            publ,
            publish("t", &format!("m{i}"), QoS::AtLeastOnce, i + 1),
        );
    }
    let got = net.recv_publishes(c);
    assert_eq!(payloads(&got), ["m0", "m1", "zero"]);
    net.send(c, Packet::PubAck(PubResponse::new(got[0].packet_id)));
    let more = net.recv_publishes(c);
    assert_eq!(payloads(&more), ["m2"]);
    // A PUBACK for an unknown id frees nothing.
    net.send(c, Packet::PubAck(PubResponse::new(9999)));
    assert!(net.recv(c).is_empty());
    // QoS 2: the slot is held until PUBCOMP.
    net.publish(publ, publish("t", "two", QoS::ExactlyOnce, 20));
    net.send(c, Packet::PubAck(PubResponse::new(got[1].packet_id)));
    let m3 = net.recv_publishes(c);
    assert_eq!(payloads(&m3), ["m3"]);
    net.send(c, Packet::PubAck(PubResponse::new(more[0].packet_id)));
    let m4 = net.recv_publishes(c);
    assert_eq!(payloads(&m4), ["m4"]);
    net.send(c, Packet::PubAck(PubResponse::new(m3[0].packet_id)));
    let two = net.recv_publishes(c);
    assert_eq!(payloads(&two), ["two"]);
    net.send(c, Packet::PubAck(PubResponse::new(m4[0].packet_id)));
    assert!(net.recv(c).is_empty(), "nothing left");
    net.send(c, Packet::PubRec(PubResponse::new(two[0].packet_id)));
    assert_eq!(ack_id(&net.one(c)).0, "PUBREL");
    net.publish(publ, publish("t", "a", QoS::AtLeastOnce, 30));
    net.publish(publ, publish("t", "b", QoS::AtLeastOnce, 31));
    assert_eq!(
        payloads(&net.recv_publishes(c)),
        ["a"],
        "PUBREL stage still holds a slot"
    );
    net.send(c, Packet::PubComp(PubResponse::new(two[0].packet_id)));
    assert_eq!(payloads(&net.recv_publishes(c)), ["b"]);
}

/// A broker whose sessions queue 5 messages beyond a window of 2.
fn small_queues() -> Net {
    Net::with(Config {
        max_queued_messages: 5,
        max_inflight: 2,
        ..Config::default()
    })
}

fn acks(net: &mut Net, conn: ConnId, ps: &[Publish]) {
    for p in ps {
        net.send(conn, Packet::PubAck(PubResponse::new(p.packet_id)));
    }
}

#[test]
fn full_queue_of_a_connected_session_pauses_its_publisher() {
    let mut net = small_queues();
    let sub = net.client(V311, "sub");
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net.client(V311, "pub");
    let bystander = net.client(V311, "other");
    // 2 in flight, then 5 queued: the 7th fills the queue and pauses `pub`.
    for i in 1..=7u16 {
        assert!(!net.broker.paused(publ), "paused before message {i}");
        net.publish(publ, publish("t", &i.to_string(), QoS::AtLeastOnce, i));
    }
    assert!(net.broker.paused(publ));
    assert!(!net.broker.paused(bystander));
    assert_eq!(net.broker.queued("sub"), 5);
    // Whatever the I/O layer still feeds is kept, not dropped.
    net.publish(publ, publish("t", "8", QoS::AtLeastOnce, 8));
    assert_eq!(net.broker.queued("sub"), 6);
    // Every message was acknowledged to the publisher.
    let acked: Vec<_> = net.recv(publ).iter().map(ack_id).collect();
    assert_eq!(acked.len(), 8, "{acked:?}");
    assert_eq!(net.broker.poll_resumed(), None);
    // The subscriber reads and acknowledges: once its queue has room the
    // publisher resumes, and everything arrives, in order.
    let mut got = Vec::new();
    while got.len() < 8 {
        let ps = net.recv_publishes(sub);
        assert!(!ps.is_empty(), "stalled after {got:?}");
        acks(&mut net, sub, &ps);
        got.extend(payloads(&ps));
    }
    assert_eq!(got, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    assert!(!net.broker.paused(publ));
    assert_eq!(net.broker.poll_resumed(), Some(publ));
    assert_eq!(net.broker.poll_resumed(), None);
    let counters = net.broker.counters();
    assert_eq!(counters.dropped_qos0 + counters.dropped_offline, 0);
    assert_eq!(counters.publisher_pauses, 1);
    assert_eq!(counters.queue_high_water, 6);
}

/// Retained messages a SUBSCRIBE sends are the subscriber's own doing: when
/// they fill its queue it is the subscriber's connection that waits (its
/// acknowledgements still pass), not whoever once published them, and a
/// client re-subscribing without acknowledging cannot grow its queue
/// further.
#[test]
fn retained_messages_filling_a_queue_pause_the_subscriber() {
    let mut net = small_queues();
    let publ = net.client(V311, "pub");
    for (i, t) in ["r/1", "r/2", "r/3", "r/4"].into_iter().enumerate() {
        let p = Publish {
            retain: true,
            ..publish(t, "x", QoS::AtLeastOnce, i as u16 + 1)
        };
        net.publish(publ, p);
    }
    assert_eq!(net.recv(publ).len(), 4, "four PUBACKs");
    let sub = net.client(V311, "sub");
    // 2 in flight, 2 queued; then (3.1.1 re-sends retained messages on
    // every SUBSCRIBE) 4 more: 6 queued, beyond the 5 allowed.
    net.subscribe(sub, "r/#", QoS::AtLeastOnce);
    assert!(!net.broker.paused(sub));
    net.subscribe(sub, "r/#", QoS::AtLeastOnce);
    assert!(net.broker.paused(sub), "the subscriber waits for its queue");
    assert!(
        !net.broker.paused(publ),
        "not the retained messages' publisher"
    );
    let mut got = 0;
    while got < 8 {
        let ps = net.recv_publishes(sub);
        assert!(!ps.is_empty(), "stalled after {got}");
        acks(&mut net, sub, &ps);
        got += ps.len();
    }
    assert!(!net.broker.paused(sub));
    assert_eq!(net.broker.poll_resumed(), Some(sub));
}

#[test]
fn paused_publisher_resumes_when_the_subscriber_goes_offline() {
    let mut net = small_queues();
    let (sub, _) = net.persistent_v311("sub");
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net.client(V311, "pub");
    for i in 1..=7u16 {
        net.publish(publ, publish("t", "m", QoS::AtLeastOnce, i));
    }
    assert!(net.broker.paused(publ));
    net.drop_conn(sub);
    assert!(!net.broker.paused(publ));
    assert_eq!(net.broker.poll_resumed(), Some(publ));
    // Offline, the limit holds: the oldest messages make room, counted.
    for i in 8..=10u16 {
        net.publish(publ, publish("t", "m", QoS::AtLeastOnce, i));
    }
    assert!(!net.broker.paused(publ));
    assert_eq!(net.broker.queued("sub"), 5);
    assert_eq!(net.broker.counters().dropped_offline, 3);
}

#[test]
fn paused_publisher_keeps_its_connection_alive() {
    let mut net = small_queues();
    let sub = net.client(V311, "sub");
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net
        .connect_with(Connect {
            keep_alive: 10,
            ..Connect::new(V311, "pub")
        })
        .0;
    for i in 1..=7u16 {
        net.publish(publ, publish("t", "m", QoS::AtLeastOnce, i));
    }
    assert!(net.broker.paused(publ));
    // The broker does not read it: silence is not the client's.
    net.at(60);
    net.tick();
    assert!(!net.is_closed(publ));
}

#[test]
fn qos0_to_a_full_queue_is_dropped_and_counted() {
    let mut net = small_queues();
    let sub = net.client(V311, "sub");
    net.subscribe(sub, "t", QoS::AtLeastOnce);
    let publ = net.client(V311, "pub");
    for i in 1..=7u16 {
        net.publish(publ, publish("t", "m", QoS::AtLeastOnce, i));
    }
    net.publish(publ, publish("t", "zero", QoS::AtMostOnce, 0));
    assert_eq!(net.broker.queued("sub"), 5);
    let counters = net.broker.counters();
    assert_eq!((counters.dropped_qos0, counters.dropped_offline), (1, 0));
}

#[test]
fn client_maximum_packet_size_respected() {
    let mut net = Net::new();
    let mut connect = Connect::new(V5, "small");
    connect.properties.push(Property::MaximumPacketSize(64));
    connect.properties.push(Property::ReceiveMaximum(1));
    let (c, _) = net.connect_with(connect);
    net.subscribe(c, "t", QoS::AtLeastOnce);
    let publ = net.client(V5, "pub");
    let big = "x".repeat(100);
    net.publish(publ, publish("t", &big, QoS::AtLeastOnce, 1));
    net.publish(publ, publish("t", &big, QoS::AtMostOnce, 0));
    // Dropped as if delivered (MQTT-3.1.2-25): it holds no Receive Maximum slot.
    net.publish(publ, publish("t", "fits", QoS::AtLeastOnce, 2));
    let got = net.recv_publishes(c);
    assert_eq!(payloads(&got), ["fits"]);
}

/// The encoded size of `packet` in 5.0.
fn v5_len(packet: &Packet) -> usize {
    mqtt_codec::encoded_len(packet, V5).expect("encodable")
}

#[test]
fn connack_fits_client_maximum_packet_size() {
    // The full CONNACK is 16 bytes (Receive Maximum, Maximum Packet Size,
    // Topic Alias Maximum): at 15 it goes without Topic Alias Maximum.
    let mut net = Net::new();
    let mut connect = Connect::new(V5, "small");
    connect.properties.push(Property::MaximumPacketSize(15));
    let (c, packet) = net.connect(connect);
    assert!(
        v5_len(&packet) <= 15,
        "{} bytes: {packet:?}",
        v5_len(&packet)
    );
    let Packet::ConnAck(ack) = packet else {
        panic!("expected CONNACK, got {packet:?}");
    };
    assert_eq!(ack.code, 0);
    assert_eq!(ack.properties.receive_maximum(), Some(100));
    assert_eq!(ack.properties.maximum_packet_size(), Some(1024 * 1024));
    assert!(!net.is_closed(c));
    // Without the limit it is the full CONNACK.
    let (_, full) = net.connect(Connect::new(V5, "big"));
    assert_eq!(v5_len(&full), 16, "{full:?}");
}

#[test]
fn connack_that_cannot_fit_is_not_sent() {
    // What remains after leaving out what may be left out is 13 bytes: no
    // CONNACK for a client that takes 12, and the connection is closed.
    let mut net = Net::new();
    let conn = net.open();
    let mut connect = Connect::new(V5, "tiny");
    connect.properties.push(Property::MaximumPacketSize(12));
    net.send(conn, Packet::Connect(Box::new(connect)));
    assert_eq!(net.recv(conn), []);
    assert!(net.is_closed(conn));
    assert_eq!(net.broker.session_count(), 0);
}

#[test]
fn disconnect_fits_client_maximum_packet_size() {
    for max in [2, 3, 4, 64] {
        let mut net = Net::new();
        let mut connect = Connect::new(V5, "small");
        connect.properties.push(Property::MaximumPacketSize(max));
        let conn = net.open();
        net.send(conn, Packet::Connect(Box::new(connect.clone())));
        net.recv(conn);
        // A second CONNECT is a protocol error: DISCONNECT 0x82, if it fits.
        net.send(conn, Packet::Connect(Box::new(connect)));
        for p in net.recv(conn) {
            assert!(v5_len(&p) <= max as usize, "{max}: {p:?}");
        }
        assert!(net.is_closed(conn));
    }
}

#[test]
fn topic_alias_inbound() {
    let mut net = Net::new();
    let sub = net.client(V5, "sub");
    net.subscribe(sub, "a/#", QoS::AtMostOnce);
    let publ = net.client(V5, "pub");
    let mut set = publish("a/b", "1", QoS::AtMostOnce, 0);
    set.properties.push(Property::TopicAlias(1));
    net.publish(publ, set);
    let mut used = publish("", "2", QoS::AtMostOnce, 0);
    used.properties.push(Property::TopicAlias(1));
    net.publish(publ, used);
    // Re-pointing an alias.
    let mut moved = publish("a/c", "3", QoS::AtMostOnce, 0);
    moved.properties.push(Property::TopicAlias(1));
    net.publish(publ, moved);
    let mut used = publish("", "4", QoS::AtMostOnce, 0);
    used.properties.push(Property::TopicAlias(1));
    net.publish(publ, used);
    let got = net.recv_publishes(sub);
    let topics: Vec<&str> = got.iter().map(|p| &*p.topic).collect();
    assert_eq!(topics, ["a/b", "a/b", "a/c", "a/c"]);
    assert!(
        got.iter().all(|p| p.properties.topic_alias().is_none()),
        "aliases are per connection"
    );
    assert!(!net.is_closed(publ));

    // An alias nobody set.
    let mut unknown = publish("", "5", QoS::AtMostOnce, 0);
    unknown.properties.push(Property::TopicAlias(2));
    net.publish(publ, unknown);
    assert_eq!(
        disconnect_code(&net.one(publ)),
        Some(reason::PROTOCOL_ERROR)
    );
    assert!(net.is_closed(publ));
    assert!(net.recv(sub).is_empty());

    // Aliases do not survive the connection.
    let publ = net.client(V5, "pub");
    let mut stale = publish("", "6", QoS::AtMostOnce, 0);
    stale.properties.push(Property::TopicAlias(1));
    net.publish(publ, stale);
    assert_eq!(
        disconnect_code(&net.one(publ)),
        Some(reason::PROTOCOL_ERROR)
    );

    // Above Topic Alias Maximum.
    let publ = net.client(V5, "pub2");
    let mut over = publish("a/b", "7", QoS::AtMostOnce, 0);
    over.properties.push(Property::TopicAlias(
        Config::default().topic_alias_maximum + 1,
    ));
    net.publish(publ, over);
    assert_eq!(
        disconnect_code(&net.one(publ)),
        Some(reason::TOPIC_ALIAS_INVALID)
    );
    assert!(net.recv(sub).is_empty());
}

// ---------------------------------------------------------------- timers

#[test]
fn keep_alive_one_and_a_half() {
    for protocol in [V311, V5] {
        let mut net = Net::new();
        let mut connect = Connect::new(protocol, "ka");
        connect.keep_alive = 10;
        let (c, _) = net.connect_with(connect);
        assert_eq!(
            net.broker.poll_timeout(),
            Some(net.t0 + Duration::from_secs(15))
        );
        net.at_ms(14_900);
        net.tick();
        assert!(!net.is_closed(c));
        // Any packet restarts the clock.
        net.send(c, Packet::PingReq);
        assert_eq!(net.one(c), Packet::PingResp);
        assert_eq!(
            net.broker.poll_timeout(),
            Some(net.t0 + Duration::from_millis(29_900))
        );
        net.at_ms(29_800);
        net.tick();
        assert!(!net.is_closed(c));
        net.at_ms(29_900);
        net.tick();
        assert!(net.is_closed(c));
        let got = net.recv(c);
        if protocol.is_v5() {
            assert_eq!(
                got.iter().filter_map(disconnect_code).collect::<Vec<_>>(),
                [reason::KEEP_ALIVE_TIMEOUT]
            );
        } else {
            assert!(got.is_empty());
        }
    }
}

#[test]
fn keep_alive_exact_boundary() {
    let mut net = Net::new();
    let mut connect = Connect::new(V5, "ka");
    connect.keep_alive = 100;
    let (c, _) = net.connect_with(connect);
    net.at_ms(149_000);
    net.tick();
    assert!(!net.is_closed(c), "1.49 x keep alive");
    net.at_ms(150_000);
    net.tick();
    assert!(net.is_closed(c), "1.5 x keep alive");
}

#[test]
fn keep_alive_zero_and_server_keep_alive() {
    let mut net = Net::new();
    let mut connect = Connect::new(V311, "none");
    connect.keep_alive = 0;
    let (c, _) = net.connect_with(connect);
    assert_eq!(net.broker.poll_timeout(), None);
    net.at(1_000_000);
    net.tick();
    assert!(!net.is_closed(c));

    let config = Config {
        server_keep_alive: Some(4),
        ..Config::default()
    };
    let mut net = Net::with(config);
    let mut connect = Connect::new(V5, "ska");
    connect.keep_alive = 0;
    let (c, ack) = net.connect_with(connect);
    assert_eq!(ack.properties.server_keep_alive(), Some(4));
    net.at(6);
    net.tick();
    assert!(net.is_closed(c));
}

#[test]
fn connect_timeout() {
    let config = Config {
        connect_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut net = Net::with(config);
    let idle = net.open();
    net.at(3);
    let late = net.open();
    assert_eq!(
        net.broker.poll_timeout(),
        Some(net.t0 + Duration::from_secs(10))
    );
    net.at_ms(9_999);
    net.tick();
    assert!(!net.is_closed(idle));
    net.at(10);
    net.tick();
    assert!(net.is_closed(idle));
    assert!(net.recv(idle).is_empty());
    assert!(!net.is_closed(late));
    // A CONNECT in time stops the clock.
    net.send(late, Packet::Connect(Box::new(Connect::new(V311, "late"))));
    assert!(matches!(net.recv(late).first(), Some(Packet::ConnAck(_))));
    net.at(100);
    net.tick();
    assert!(net.is_closed(late), "keep alive 60 still applies");
    assert_eq!(net.broker.connection_count(), 0);
}

/// A 5.0 client without keep alive subscribed to `topic` at QoS 1.
fn watcher(net: &mut Net, topic: &str) -> ConnId {
    let w = net.client(V5, &format!("watch-{topic}"));
    net.subscribe(w, topic, QoS::AtLeastOnce);
    w
}

#[test]
fn shutdown_disconnects_everyone_and_refuses_newcomers() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let mut connect = Connect::new(V311, "dev");
    connect.will = Some(Will {
        retain: true,
        ..will("will/dev", "offline")
    });
    let (dev, _) = net.connect_with(connect);
    let waiting = net.open();

    net.broker.shutdown(net.now);
    net.pump();
    // 5.0: DISCONNECT 0x8B, Server shutting down (any will publish the
    // watcher might also see comes before it).
    let got = net.recv(w);
    assert_eq!(
        got.last().and_then(disconnect_code),
        Some(reason::SERVER_SHUTTING_DOWN),
        "{got:?}"
    );
    // 3.1.1 has no DISCONNECT from the server; one not yet connected neither.
    assert_eq!(net.recv(dev), []);
    assert_eq!(net.recv(waiting), []);
    assert!(net.is_closed(w) && net.is_closed(dev) && net.is_closed(waiting));
    assert_eq!(net.broker.connection_count(), 0);
    // The server ended the connection without a DISCONNECT from the client:
    // the will is published, here as a retained message that outlives the
    // shutdown when the state is persisted.
    assert_eq!(net.broker.retained_count(), 1);
    assert_eq!(net.broker.open(net.now), None);
}

#[test]
fn will_on_keep_alive_timeout() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let mut connect = Connect::new(V311, "dev");
    connect.keep_alive = 2;
    connect.will = Some(Will {
        qos: QoS::AtLeastOnce,
        ..will("will/dev", "timed out")
    });
    net.connect_with(connect);
    net.at(2);
    net.tick();
    assert!(net.recv(w).is_empty());
    net.at(3);
    net.tick();
    let got = net.recv_publishes(w);
    assert_eq!(payloads(&got), ["timed out"]);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
}

#[test]
fn will_on_connection_loss_and_protocol_error() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    for protocol in [V31, V311, V5] {
        let mut connect = Connect::new(protocol, "dev");
        connect.will = Some(will("will/dev", "lost"));
        let (c, _) = net.connect_with(connect);
        net.drop_conn(c);
        assert_eq!(payloads(&net.recv_publishes(w)), ["lost"], "{protocol}");
    }
    // A connection the server closes for a protocol error publishes its will too.
    let mut connect = Connect::new(V5, "dev");
    connect.will = Some(will("will/dev", "bad"));
    let (c, _) = net.connect_with(connect);
    net.send(c, Packet::Connect(Box::new(Connect::new(V5, "dev"))));
    assert!(net.is_closed(c));
    assert_eq!(payloads(&net.recv_publishes(w)), ["bad"]);
}

#[test]
fn no_will_after_normal_disconnect() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    for protocol in [V31, V311, V5] {
        let mut connect = Connect::new(protocol, "dev");
        connect.will = Some(will("will/dev", "no"));
        let (c, _) = net.connect_with(connect);
        net.send(c, disconnect(0));
        assert!(net.is_closed(c));
        net.drop_conn(c);
        net.at(100);
        net.tick();
        assert!(net.recv(w).is_empty(), "{protocol}");
    }
}

#[test]
fn will_after_disconnect_with_will() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let mut connect = Connect::new(V5, "dev");
    connect.will = Some(will("will/dev", "asked"));
    let (c, _) = net.connect_with(connect);
    net.send(c, disconnect(reason::DISCONNECT_WITH_WILL));
    assert!(net.is_closed(c));
    assert_eq!(payloads(&net.recv_publishes(w)), ["asked"]);
}

#[test]
fn retained_will() {
    let mut net = Net::new();
    let mut connect = Connect::new(V311, "dev");
    connect.will = Some(Will {
        retain: true,
        ..will("status/dev", "offline")
    });
    let (c, _) = net.connect_with(connect);
    net.drop_conn(c);
    // MQTT-3.1.2-17 (3.1.1): a will with Will Retain is published as retained.
    let later = net.client(V311, "later");
    net.subscribe(later, "status/#", QoS::AtMostOnce);
    let got = net.recv_publishes(later);
    assert_eq!(payloads(&got), ["offline"]);
    assert!(got[0].retain);
}

#[test]
fn will_message_expiry_counts_from_publication() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let mut connect = Connect::new(V5, "dev");
    connect.keep_alive = 0;
    connect.will = Some(Will {
        properties: Properties::new().with(Property::MessageExpiryInterval(10)),
        ..will("will/dev", "late")
    });
    let (c, _) = net.connect_with(connect);
    // Connected for longer than the will's expiry interval.
    net.at(60);
    net.drop_conn(c);
    let got = net.recv_publishes(w);
    assert_eq!(payloads(&got), ["late"]);
    assert_eq!(got[0].properties.message_expiry_interval(), Some(10));
}

fn delayed_will(id: &str, delay: u32, session_expiry: u32) -> Connect {
    let mut connect = Connect::new(V5, id);
    connect.clean_start = false;
    connect.keep_alive = 0;
    connect
        .properties
        .push(Property::SessionExpiryInterval(session_expiry));
    connect.will = Some(Will {
        properties: Properties::new().with(Property::WillDelayInterval(delay)),
        ..will(&format!("will/{id}"), "delayed")
    });
    connect
}

#[test]
fn will_delay_elapses() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let (c, _) = net.connect_with(delayed_will("dev", 10, 100));
    net.at(1);
    net.drop_conn(c);
    assert!(net.recv(w).is_empty());
    assert_eq!(
        net.broker.poll_timeout(),
        Some(net.t0 + Duration::from_secs(11))
    );
    net.at_ms(10_999);
    net.tick();
    assert!(net.recv(w).is_empty());
    net.at(11);
    net.tick();
    assert_eq!(payloads(&net.recv_publishes(w)), ["delayed"]);
    net.at(50);
    net.tick();
    assert!(net.recv(w).is_empty(), "published once");
    assert_eq!(
        net.broker.session_count(),
        2,
        "the session outlives the will"
    );
}

#[test]
fn will_delay_cancelled_by_reconnect() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let (c, _) = net.connect_with(delayed_will("dev", 10, 100));
    net.drop_conn(c);
    net.at(5);
    let (c, ack) = net.persistent_v5("dev", 100);
    assert!(ack.session_present);
    net.at(20);
    net.tick();
    assert!(net.recv(w).is_empty());
    assert!(!net.is_closed(c));
}

#[test]
fn will_delay_cut_short_by_session_expiry() {
    let mut net = Net::new();
    let w = watcher(&mut net, "will/#");
    let (c, _) = net.connect_with(delayed_will("dev", 30, 5));
    net.drop_conn(c);
    net.at_ms(4_999);
    net.tick();
    assert!(net.recv(w).is_empty());
    net.at(5);
    net.tick();
    assert_eq!(payloads(&net.recv_publishes(w)), ["delayed"]);
    assert_eq!(
        net.broker.session_count(),
        1,
        "only the watcher's session is left"
    );
}

#[test]
fn session_expiry() {
    let mut net = Net::new();
    let (c, _) = net.persistent_v5("s", 10);
    net.subscribe(c, "t", QoS::AtLeastOnce);
    net.at(1);
    net.drop_conn(c);
    assert_eq!(net.broker.session_count(), 1);
    assert_eq!(
        net.broker.poll_timeout(),
        Some(net.t0 + Duration::from_secs(11))
    );
    net.at_ms(10_999);
    net.tick();
    assert_eq!(net.broker.session_count(), 1);
    net.at(11);
    net.tick();
    assert_eq!(net.broker.session_count(), 0);
    let (_, ack) = net.persistent_v5("s", 10);
    assert!(!ack.session_present);
}

#[test]
fn session_expiry_capped_by_server() {
    let config = Config {
        max_session_expiry: 50,
        ..Config::default()
    };
    let mut net = Net::with(config);
    let (_, ack) = net.persistent_v5("s", 1000);
    assert_eq!(ack.properties.session_expiry_interval(), Some(50));
    let (_, ack) = net.persistent_v5("t", 20);
    assert_eq!(ack.properties.session_expiry_interval(), None);
}

fn disconnect_expiry(e: u32) -> Packet {
    Packet::Disconnect(Disconnect {
        reason_code: 0,
        properties: Properties::new().with(Property::SessionExpiryInterval(e)),
    })
}

#[test]
fn disconnect_changes_session_expiry() {
    let mut net = Net::new();
    // Shortened to 0: the session ends now.
    let (c, _) = net.persistent_v5("a", 100);
    net.send(c, disconnect_expiry(0));
    assert!(net.is_closed(c));
    assert_eq!(net.broker.session_count(), 0);
    // Lengthened from non-zero: allowed.
    let (c, _) = net.persistent_v5("b", 10);
    net.send(c, disconnect_expiry(100));
    net.at(50);
    net.tick();
    assert_eq!(net.broker.session_count(), 1);
    let (c, ack) = net.persistent_v5("b", 10);
    assert!(ack.session_present);
    net.send(c, disconnect(0));
    // From 0 to non-zero: a protocol error (3.14.2.2.2).
    let (c, _) = net.persistent_v5("z", 0);
    net.send(c, disconnect_expiry(30));
    assert_eq!(disconnect_code(&net.one(c)), Some(reason::PROTOCOL_ERROR));
    assert!(net.is_closed(c));
    net.tick();
    assert_eq!(
        net.broker.session_count(),
        1,
        "only b's session is left: z's ended with its connection"
    );
}

#[test]
fn message_expiry() {
    let mut net = Net::new();
    let (c, _) = net.persistent_v5("s", 1000);
    net.subscribe(c, "t", QoS::AtLeastOnce);
    net.drop_conn(c);
    let publ = net.client(V5, "pub");
    let with_expiry = |payload: &str, secs: u32, id: u16| Publish {
        properties: Properties::new().with(Property::MessageExpiryInterval(secs)),
        ..publish("t", payload, QoS::AtLeastOnce, id)
    };
    net.publish(publ, with_expiry("short", 5, 1));
    net.publish(publ, with_expiry("long", 10, 2));
    net.publish(publ, publish("t", "forever", QoS::AtLeastOnce, 3));
    net.at(6);
    let (c, _) = net.persistent_v5("s", 1000);
    let got = net.recv_publishes(c);
    assert_eq!(
        payloads(&got),
        ["long", "forever"],
        "an expired message is not delivered"
    );
    // MQTT-3.3.2-6: the interval forwarded is what remains.
    assert_eq!(got[0].properties.message_expiry_interval(), Some(4));
    assert_eq!(got[1].properties.message_expiry_interval(), None);
}

#[test]
fn message_expiry_forwarded_live_and_retained() {
    let mut net = Net::new();
    let live = net.client(V5, "live");
    net.subscribe(live, "t", QoS::AtMostOnce);
    let publ = net.client(V5, "pub");
    let mut p = retained("t", "r");
    p.properties.push(Property::MessageExpiryInterval(30));
    net.publish(publ, p);
    assert_eq!(
        net.recv_publishes(live)[0]
            .properties
            .message_expiry_interval(),
        Some(30)
    );
    net.at(20);
    let late = net.client(V5, "late");
    net.subscribe(late, "t", QoS::AtMostOnce);
    assert_eq!(
        net.recv_publishes(late)[0]
            .properties
            .message_expiry_interval(),
        Some(10)
    );
    net.at(30);
    net.tick();
    assert_eq!(net.broker.retained_count(), 0);
    let later = net.client(V5, "later");
    net.subscribe(later, "t", QoS::AtMostOnce);
    assert!(net.recv(later).is_empty());
}

#[test]
fn a_second_connect_that_does_not_decode_is_a_protocol_error() {
    use mqtt_codec::{DecodeOptions, Decoder, Sender};
    let mut net = Net::new();
    let c = net.client(V5, "c");
    // A CONNECT with protocol name "MQT<" (found by the network fuzzer):
    // refused as a first CONNECT with 0x84, a code DISCONNECT may not carry.
    let mut decoder = Decoder::new(DecodeOptions::new(V5, Sender::Client));
    let bytes = [
        0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'<', b'T', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x7f,
    ];
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let err = decoder.decode(&mut buf).expect_err("a bad protocol name");
    assert_eq!(err.reason_code(), reason::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(net.broker.decode_error(c, &err, net.now), OnError::Close);
    net.pump();
    let codes: Vec<u8> = net.recv(c).iter().filter_map(disconnect_code).collect();
    assert_eq!(codes, [reason::PROTOCOL_ERROR]);
    assert!(net.is_closed(c));
}

#[test]
fn decode_error_closes() {
    use mqtt_codec::{DecodeOptions, Decoder, Sender};
    let mut net = Net::new();
    let c = net.client(V5, "c");
    // A SUBSCRIBE without filters, as the codec refuses it.
    let mut decoder = Decoder::new(DecodeOptions::new(V5, Sender::Client));
    let mut buf = bytes::BytesMut::from(&[0x82, 0x03, 0x00, 0x01, 0x00][..]);
    let err = decoder.decode(&mut buf).expect_err("no topic filters");
    assert_eq!(net.broker.decode_error(c, &err, net.now), OnError::Close);
    net.pump();
    assert_eq!(
        net.recv(c)
            .iter()
            .filter_map(disconnect_code)
            .collect::<Vec<_>>(),
        [err.reason_code()]
    );
    assert!(net.is_closed(c));
}

// ---------------------------------------------------------------- violations

/// Runs `scenario` on a compliant broker and on one that breaks `id`: the
/// scenario must pass on the first and fail on the second.
fn proves(id: &str, scenario: impl Fn(&mut Net) -> bool) {
    assert!(
        scenario(&mut Net::new()),
        "the compliant broker fails the check for {id}"
    );
    assert!(
        !scenario(&mut Net::violating(id)),
        "the broker violating {id} passes its check"
    );
}

#[test]
fn violation_pingreq_unanswered() {
    proves("MQTT-3.12.4-1", |net| {
        let c = net.client(V311, "c");
        net.send(c, Packet::PingReq);
        net.recv(c) == [Packet::PingResp]
    });
}

#[test]
fn violation_suback_packet_id() {
    proves("MQTT-3.8.4-2", |net| {
        let c = net.client(V311, "c");
        net.send(
            c,
            Packet::Subscribe(Subscribe {
                packet_id: 42,
                properties: Properties::new(),
                filters: vec![Subscription {
                    filter: "t".into(),
                    options: SubscriptionOptions::qos(QoS::AtMostOnce),
                }],
            }),
        );
        matches!(net.recv(c).as_slice(), [Packet::SubAck(ack)] if ack.packet_id == 42)
    });
}

#[test]
fn violation_retained_not_stored() {
    proves("MQTT-3.3.1-5", |net| {
        let p = net.client(V311, "p");
        net.publish(p, retained("t", "kept"));
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        payloads(&net.recv_publishes(s)) == ["kept"]
    });
}

#[test]
fn violation_wildcard_matches_dollar() {
    proves("MQTT-4.7.2-1", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "#", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("$SYS/load", "1", QoS::AtMostOnce, 0));
        net.recv(s).is_empty()
    });
}

#[test]
fn violation_will_after_normal_disconnect() {
    proves("MQTT-3.14.4-3", |net| {
        let w = watcher(net, "will");
        let mut connect = Connect::new(V311, "dev");
        connect.will = Some(will("will", "x"));
        let (c, _) = net.connect_with(connect);
        net.send(c, disconnect(0));
        net.recv(w).is_empty()
    });
}

#[test]
fn violation_second_connect() {
    proves("MQTT-3.1.0-2", |net| {
        let c = net.client(V311, "c");
        net.send(c, Packet::Connect(Box::new(Connect::new(V311, "c"))));
        net.recv(c).is_empty() && net.is_closed(c)
    });
}

#[test]
fn violation_qos2_duplicate_delivery() {
    proves("MQTT-4.3.3-10", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "once", QoS::ExactlyOnce, 3));
        let mut again = publish("t", "once", QoS::ExactlyOnce, 3);
        again.dup = true;
        net.publish(p, again);
        let acks = net.recv(p);
        acks.len() == 2 && net.recv_publishes(s).len() == 1
    });
}

#[test]
fn violation_dup_on_qos0() {
    proves("MQTT-3.3.1-2", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 1));
        let got = net.recv_publishes(s);
        got.len() == 1 && !got[0].dup
    });
}

#[test]
fn violation_empty_client_id_clean_session_0() {
    proves("MQTT-3.1.3-8", |net| {
        let (c, ack) = net.persistent_v311("");
        ack.code == reason::v3::IDENTIFIER_REJECTED && net.is_closed(c)
    });
}

#[test]
fn violation_session_present_on_clean_start() {
    proves("MQTT-3.2.2-1", |net| {
        let (_, ack) = net.connect_with(Connect::new(V311, "c"));
        !ack.session_present
    });
}

#[test]
fn violation_session_forgotten() {
    proves("MQTT-3.2.2-3", |net| {
        let (c, _) = net.persistent_v311("c");
        net.subscribe(c, "t", QoS::AtLeastOnce);
        net.drop_conn(c);
        let (c, ack) = net.persistent_v311("c");
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        ack.session_present && net.recv_publishes(c).len() == 1
    });
}

#[test]
fn violation_takeover_keeps_old_connection() {
    proves("MQTT-3.1.4-2", |net| {
        let a = net.client(V5, "dup");
        net.client(V5, "dup");
        net.is_closed(a) && disconnect_code(&net.one(a)) == Some(reason::SESSION_TAKEN_OVER)
    });
}

#[test]
fn violation_granted_qos_ignored() {
    proves("MQTT-3.8.4-6", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::ExactlyOnce, 1));
        net.recv_publishes(s)
            .iter()
            .all(|m| m.qos == QoS::AtMostOnce)
    });
}

#[test]
fn violation_keep_alive_not_enforced() {
    proves("MQTT-3.1.2-24", |net| {
        let mut connect = Connect::new(V311, "c");
        connect.keep_alive = 1;
        let (c, _) = net.connect_with(connect);
        net.at(2);
        net.tick();
        net.is_closed(c)
    });
}

#[test]
fn keep_alive_violation_does_not_spin_the_timer() {
    let mut net = Net::violating("MQTT-3.1.2-24");
    let mut connect = Connect::new(V311, "c");
    connect.keep_alive = 1;
    net.connect_with(connect);
    net.at(2);
    net.tick();
    // A timer in the past that tick() does not clear would make the I/O layer spin.
    assert!(
        net.broker
            .poll_timeout()
            .filter(|t| *t <= net.now)
            .is_none(),
        "poll_timeout stays in the past"
    );
}

#[test]
fn violation_no_will() {
    proves("MQTT-3.1.2-8", |net| {
        let w = watcher(net, "will");
        let mut connect = Connect::new(V311, "dev");
        connect.will = Some(will("will", "x"));
        let (c, _) = net.connect_with(connect);
        net.drop_conn(c);
        net.recv_publishes(w).len() == 1
    });
}

#[test]
fn violation_user_properties_dropped() {
    proves("MQTT-3.3.2-17", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        let mut m = publish("t", "x", QoS::AtMostOnce, 0);
        m.properties
            .push(Property::UserProperty("k".into(), "v".into()));
        m.properties
            .push(Property::UserProperty("k".into(), "w".into()));
        net.publish(p, m);
        let got = net.recv_publishes(s);
        let props: Vec<(String, String)> = got[0]
            .properties
            .user_properties()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        props
            == [
                ("k".to_string(), "v".to_string()),
                ("k".to_string(), "w".to_string()),
            ]
    });
}

#[test]
fn violation_no_assigned_client_id() {
    proves("MQTT-3.2.2-16", |net| {
        let (_, ack) = net.connect_with(Connect::new(V5, ""));
        ack.code == 0 && ack.properties.assigned_client_identifier().is_some()
    });
}

#[test]
fn violation_retain_flag_forwarded_wrongly() {
    proves("MQTT-3.3.1-9", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, retained("t", "x"));
        let live = net.recv_publishes(s);
        net.subscribe(s, "t", QoS::AtMostOnce);
        let stored = net.recv_publishes(s);
        !live[0].retain && stored[0].retain
    });
}

#[test]
fn violation_retained_not_cleared() {
    proves("MQTT-3.3.1-10", |net| {
        let p = net.client(V311, "p");
        net.publish(p, retained("t", "x"));
        net.publish(p, retained("t", ""));
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        net.recv(s).is_empty()
    });
}

#[test]
fn violation_unacknowledged_qos1() {
    proves("MQTT-3.3.4-1", |net| {
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 8));
        net.recv(p).iter().map(ack_id).collect::<Vec<_>>() == [("PUBACK", 8, 0)]
    });
}

#[test]
fn violation_no_pubcomp() {
    proves("MQTT-4.3.3-11", |net| {
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::ExactlyOnce, 8));
        net.send(p, Packet::PubRel(PubResponse::new(8)));
        net.recv(p).iter().map(ack_id).collect::<Vec<_>>() == [("PUBREC", 8, 0), ("PUBCOMP", 8, 0)]
    });
}

#[test]
fn every_violation_id_is_known() {
    for v in reference_broker::violation::VIOLATIONS {
        for id in v.ids {
            let mut config = Config::default();
            config.violations.add(id).expect("listed ids are accepted");
            assert!(config.violations.breaks(id));
        }
    }
    assert!(Config::default().violations.add("MQTT-0.0.0-0").is_err());
}

// ------------------------------------------------- more deliberate violations

use mqtt_codec::Unsubscribe;

/// Like [`proves`], on a broker built from `config` (plus the violation).
fn proves_with(id: &str, config: impl Fn() -> Config, scenario: impl Fn(&mut Net) -> bool) {
    assert!(
        scenario(&mut Net::with(config())),
        "the compliant broker fails the check for {id}"
    );
    let mut violating = config();
    violating.violations.add(id).expect("known violation");
    assert!(
        !scenario(&mut Net::with(violating)),
        "the broker violating {id} passes its check"
    );
}

fn unsubscribe_filters(
    net: &mut Net,
    conn: ConnId,
    packet_id: u16,
    filters: &[&str],
) -> Vec<Packet> {
    net.send(
        conn,
        Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: Properties::new(),
            filters: filters.iter().map(|f| ByteString::from(*f)).collect(),
        }),
    );
    net.recv(conn)
}

fn with_props(mut p: Publish, props: &[Property]) -> Publish {
    for prop in props {
        p.properties.push(prop.clone());
    }
    p
}

fn has_prop(props: &Properties, pred: impl Fn(&Property) -> bool) -> bool {
    props.iter().any(pred)
}

#[test]
fn violation_delivers_to_non_matching_subscriber() {
    proves("MQTT-3.3.2-3", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "a", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("ab", "x", QoS::AtMostOnce, 0));
        net.publish(p, publish("a", "y", QoS::AtMostOnce, 0));
        payloads(&net.recv_publishes(s)) == ["y"]
    });
}

#[test]
fn violation_topic_matching_ignores_case() {
    proves("MQTT-4.7.3-4", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "a/B", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("a/b", "x", QoS::AtMostOnce, 0));
        net.recv(s).is_empty()
    });
}

#[test]
fn violation_resubscribe_keeps_old_subscription() {
    proves("MQTT-3.8.4-3", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        net.subscribe(s, "t", QoS::AtLeastOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 1));
        let got = net.recv_publishes(s);
        got.len() == 1 && got[0].qos == QoS::AtLeastOnce
    });
}

#[test]
fn violation_suback_codes_reversed() {
    proves("MQTT-3.9.3-1", |net| {
        let s = net.client(V311, "s");
        let codes = net.subscribe_opts(
            s,
            1,
            &[
                ("a", SubscriptionOptions::qos(QoS::AtMostOnce)),
                ("b", SubscriptionOptions::qos(QoS::AtLeastOnce)),
            ],
            None,
        );
        codes == [0, 1]
    });
}

#[test]
fn violation_unsuback_codes_reversed() {
    proves("MQTT-3.11.3-1", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "a", QoS::AtMostOnce);
        match unsubscribe_filters(net, s, 2, &["a", "b"]).as_slice() {
            [Packet::UnsubAck(ack)] => ack.reason_codes == [0, reason::NO_SUBSCRIPTION_EXISTED],
            other => panic!("expected one UNSUBACK, got {other:?}"),
        }
    });
}

#[test]
fn violation_one_suback_per_filter() {
    proves("MQTT-3.8.4-5", |net| {
        let s = net.client(V5, "s");
        net.send(
            s,
            Packet::Subscribe(Subscribe {
                packet_id: 3,
                properties: Properties::new(),
                filters: ["a", "b"]
                    .iter()
                    .map(|f| Subscription {
                        filter: ByteString::from(*f),
                        options: SubscriptionOptions::qos(QoS::AtMostOnce),
                    })
                    .collect(),
            }),
        );
        matches!(net.recv(s).as_slice(), [Packet::SubAck(ack)] if ack.reason_codes == [0, 0])
    });
}

#[test]
fn violation_unsubscribe_keeps_delivering() {
    proves("MQTT-3.10.4-2", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        unsubscribe_filters(net, s, 2, &["t"]);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        net.recv(s).is_empty()
    });
}

#[test]
fn violation_one_unsuback_per_filter() {
    proves("MQTT-3.10.4-6", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "a", QoS::AtMostOnce);
        matches!(
            unsubscribe_filters(net, s, 2, &["a", "b"]).as_slice(),
            [Packet::UnsubAck(ack)] if ack.packet_id == 2
        )
    });
}

#[test]
fn violation_will_despite_reconnect_within_delay() {
    proves("MQTT-3.1.3-9", |net| {
        let w = net.client(V5, "watcher");
        net.subscribe(w, "will", QoS::AtMostOnce);
        let mut c = Connect::new(V5, "c");
        c.clean_start = false;
        c.keep_alive = 0;
        c.properties.push(Property::SessionExpiryInterval(100));
        let mut wl = will("will", "gone");
        wl.properties.push(Property::WillDelayInterval(10));
        c.will = Some(wl);
        let (conn, ack) = net.connect_with(c);
        assert_eq!(ack.code, 0);
        net.drop_conn(conn);
        net.at(5);
        let (_, ack) = net.persistent_v5("c", 100);
        assert!(ack.session_present);
        net.at(20);
        net.tick();
        net.recv(w).is_empty()
    });
}

#[test]
fn violation_identifier_rejected_code_v311() {
    proves("MQTT-3.1.3-9", |net| {
        let (_, ack) = net.persistent_v311("");
        ack.code == reason::v3::IDENTIFIER_REJECTED
    });
}

#[test]
fn violation_overlap_not_highest_qos() {
    proves("MQTT-3.3.4-2", |net| {
        let s = net.client(V5, "s");
        net.subscribe_opts(
            s,
            1,
            &[
                ("a/+", SubscriptionOptions::qos(QoS::AtMostOnce)),
                ("a/b", SubscriptionOptions::qos(QoS::AtLeastOnce)),
            ],
            None,
        );
        let p = net.client(V5, "p");
        net.publish(p, publish("a/b", "x", QoS::AtLeastOnce, 1));
        let got = net.recv_publishes(s);
        got.len() == 1 && got[0].qos == QoS::AtLeastOnce
    });
}

#[test]
fn violation_overlap_one_subscription_identifier() {
    proves("MQTT-3.3.4-4", |net| {
        let s = net.client(V5, "s");
        let q0 = SubscriptionOptions::qos(QoS::AtMostOnce);
        net.subscribe_opts(s, 1, &[("a/+", q0)], Some(1));
        net.subscribe_opts(s, 2, &[("a/b", q0)], Some(2));
        let p = net.client(V5, "p");
        net.publish(p, publish("a/b", "x", QoS::AtMostOnce, 0));
        let got = net.recv_publishes(s);
        let mut ids: Vec<u32> = got[0].properties.subscription_identifiers().collect();
        ids.sort_unstable();
        got.len() == 1 && ids == [1, 2]
    });
}

#[test]
fn violation_no_local_ignored() {
    proves("MQTT-3.8.3-3", |net| {
        let c = net.client(V5, "c");
        let opts = SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::qos(QoS::AtMostOnce)
        };
        net.subscribe_opts(c, 1, &[("t", opts)], None);
        net.publish(c, publish("t", "x", QoS::AtMostOnce, 0));
        net.recv(c).is_empty()
    });
}

#[test]
fn violation_wildcards_granted_when_unavailable() {
    let no_wildcards = || Config {
        wildcard_subscriptions: false,
        ..Config::default()
    };
    proves_with("MQTT-3.8.3-2", no_wildcards, |net| {
        let c = net.client(V311, "c");
        net.subscribe(c, "t/+", QoS::AtMostOnce) == reason::v3::SUBACK_FAILURE
    });
}

#[test]
fn violation_dup_on_first_transmission() {
    proves("MQTT-3.3.1-3", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtLeastOnce);
        let p = net.client(V311, "p");
        net.publish(
            p,
            Publish {
                dup: true,
                ..publish("t", "x", QoS::AtLeastOnce, 5)
            },
        );
        let got = net.recv_publishes(s);
        got.len() == 1 && !got[0].dup
    });
}

/// A 5.0 PUBLISH carrying `prop` reaches a subscriber with `prop` unchanged.
fn forwards(net: &mut Net, prop: Property) -> bool {
    let s = net.client(V5, "s");
    net.subscribe(s, "t", QoS::AtMostOnce);
    let p = net.client(V5, "p");
    net.publish(
        p,
        with_props(
            publish("t", "x", QoS::AtMostOnce, 0),
            std::slice::from_ref(&prop),
        ),
    );
    let got = net.recv_publishes(s);
    got.len() == 1 && has_prop(&got[0].properties, |q| *q == prop)
}

#[test]
fn violation_payload_format_indicator_altered() {
    proves("MQTT-3.3.2-4", |net| {
        forwards(net, Property::PayloadFormatIndicator(1))
    });
    proves("MQTT-3.3.2-4", |net| {
        forwards(net, Property::PayloadFormatIndicator(0))
    });
}

#[test]
fn violation_response_topic_dropped() {
    proves("MQTT-3.3.2-15", |net| {
        forwards(net, Property::ResponseTopic(ByteString::from("reply/here")))
    });
}

#[test]
fn violation_correlation_data_dropped() {
    proves("MQTT-3.3.2-16", |net| {
        forwards(
            net,
            Property::CorrelationData(Bytes::from_static(b"\x00\x01")),
        )
    });
}

#[test]
fn violation_content_type_dropped() {
    proves("MQTT-3.3.2-20", |net| {
        forwards(net, Property::ContentType(ByteString::from("text/plain")))
    });
}

/// A message with `expiry` seconds to live is queued for an offline
/// subscriber that comes back after `back` seconds; what it receives.
fn queued_with_expiry(net: &mut Net, expiry: u32, back: u64) -> Vec<Publish> {
    let (s, _) = net.persistent_v5("s", 1000);
    net.subscribe(s, "t", QoS::AtLeastOnce);
    net.drop_conn(s);
    let p = net.client(V5, "p");
    net.publish(
        p,
        with_props(
            publish("t", "x", QoS::AtLeastOnce, 1),
            &[Property::MessageExpiryInterval(expiry)],
        ),
    );
    net.at(back);
    let (s, ack) = net.persistent_v5("s", 1000);
    assert!(ack.session_present);
    net.recv_publishes(s)
}

#[test]
fn violation_expiry_interval_not_reduced() {
    proves("MQTT-3.3.2-6", |net| {
        let got = queued_with_expiry(net, 100, 30);
        got.len() == 1 && got[0].properties.message_expiry_interval() == Some(70)
    });
}

#[test]
fn violation_expired_message_delivered() {
    proves("MQTT-3.3.2-5", |net| {
        queued_with_expiry(net, 10, 20).is_empty()
    });
}

#[test]
fn violation_receive_maximum_ignored() {
    proves("MQTT-3.3.4-9", |net| {
        let mut c = Connect::new(V5, "s");
        c.keep_alive = 0;
        c.properties.push(Property::ReceiveMaximum(1));
        let (s, _) = net.connect_with(c);
        net.subscribe(s, "t", QoS::AtLeastOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "1", QoS::AtLeastOnce, 1));
        net.publish(p, publish("t", "2", QoS::AtLeastOnce, 2));
        payloads(&net.recv_publishes(s)) == ["1"]
    });
}

#[test]
fn violation_maximum_packet_size_ignored() {
    proves("MQTT-3.1.2-25", |net| {
        let mut c = Connect::new(V5, "s");
        c.keep_alive = 0;
        c.properties.push(Property::MaximumPacketSize(64));
        let (s, _) = net.connect_with(c);
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", &"x".repeat(200), QoS::AtMostOnce, 0));
        net.publish(p, publish("t", "small", QoS::AtMostOnce, 0));
        payloads(&net.recv_publishes(s)) == ["small"]
    });
}

#[test]
fn violation_topic_alias_sent_unasked() {
    proves("MQTT-3.1.2-27", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        let got = net.recv_publishes(s);
        got.len() == 1 && got[0].properties.topic_alias().is_none()
    });
}

#[test]
fn violation_no_redelivery_on_resume() {
    proves("MQTT-4.4.0-1", |net| {
        let (s, _) = net.persistent_v5("s", 100);
        net.subscribe(s, "t", QoS::AtLeastOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 1));
        let first = net.recv_publishes(s);
        assert_eq!(first.len(), 1);
        net.drop_conn(s);
        let (s, _) = net.persistent_v5("s", 100);
        let again = net.recv_publishes(s);
        again.len() == 1 && again[0].dup && again[0].packet_id == first[0].packet_id
    });
}

#[test]
fn violation_packet_identifier_reused() {
    proves("MQTT-2.2.1-4", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "1", QoS::AtLeastOnce, 1));
        net.publish(p, publish("t", "2", QoS::ExactlyOnce, 2));
        let got = net.recv_publishes(s);
        got.len() == 2
            && got.iter().all(|m| m.packet_id != 0)
            && got[0].packet_id != got[1].packet_id
    });
}

#[test]
fn violation_puback_packet_id() {
    proves("MQTT-2.2.1-5", |net| {
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 7));
        matches!(net.recv(p).as_slice(), [Packet::PubAck(ack)] if ack.packet_id == 7)
    });
}

#[test]
fn violation_no_pubrel() {
    proves("MQTT-4.3.3-4", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::ExactlyOnce, 1));
        let got = net.recv_publishes(s);
        assert_eq!(got.len(), 1);
        let id = got[0].packet_id;
        net.send(s, Packet::PubRec(PubResponse::new(id)));
        net.recv(s).iter().map(ack_id).collect::<Vec<_>>() == [("PUBREL", id, 0)]
    });
}

#[test]
fn violation_session_present_on_refusal() {
    proves("MQTT-3.2.2-4", |net| {
        let (_, ack) = net.persistent_v311("");
        ack.code != 0 && !ack.session_present
    });
}

#[test]
fn violation_open_after_refusal() {
    proves("MQTT-3.2.2-5", |net| {
        let (c, ack) = net.persistent_v311("");
        ack.code != 0 && net.is_closed(c)
    });
    proves_with(
        "MQTT-3.2.2-7",
        || Config {
            allow_empty_client_id: false,
            ..Config::default()
        },
        |net| {
            let (c, ack) = net.connect_with(Connect::new(V5, ""));
            ack.code >= 0x80 && net.is_closed(c)
        },
    );
}

#[test]
fn violation_disconnect_before_connack() {
    proves_with(
        "MQTT-3.14.0-1",
        || Config {
            allow_empty_client_id: false,
            ..Config::default()
        },
        |net| {
            let c = net.open();
            net.send(c, Packet::Connect(Box::new(Connect::new(V5, ""))));
            matches!(net.recv(c).as_slice(), [Packet::ConnAck(ack)] if ack.code >= 0x80)
        },
    );
}

#[test]
fn violation_server_disconnect_with_session_expiry() {
    proves("MQTT-3.14.2-2", |net| {
        let c = net.client(V5, "c");
        net.send(c, Packet::Connect(Box::new(Connect::new(V5, "c"))));
        match net.recv(c).as_slice() {
            [Packet::Disconnect(d)] => d.properties.session_expiry_interval().is_none(),
            other => panic!("expected DISCONNECT, got {other:?}"),
        }
    });
}

#[test]
fn violation_second_connack() {
    proves("MQTT-3.2.0-2", |net| {
        let c = net.client(V5, "c");
        net.send(c, Packet::Connect(Box::new(Connect::new(V5, "c"))));
        !net.recv(c).iter().any(|p| matches!(p, Packet::ConnAck(_)))
    });
}

#[test]
fn violation_unrequested_response_information() {
    proves("MQTT-3.1.2-28", |net| {
        let (_, ack) = net.connect_with(Connect::new(V5, "c"));
        !has_prop(&ack.properties, |p| {
            matches!(p, Property::ResponseInformation(_))
        })
    });
}

#[test]
fn violation_reason_string_beyond_maximum_packet_size() {
    proves("MQTT-3.2.2-19", |net| {
        let mut c = Connect::new(V5, "c");
        c.properties.push(Property::MaximumPacketSize(64));
        let (c, ack) = net.connect_with(c);
        // A second CONNECT: a protocol error, answered with DISCONNECT.
        net.send(c, Packet::Connect(Box::new(Connect::new(V5, "c"))));
        let small = |props: &Properties| {
            !has_prop(props, |p| {
                matches!(p, Property::ReasonString(_) | Property::UserProperty(..))
            })
        };
        let disconnect = net.recv(c).into_iter().find_map(|p| match p {
            Packet::Disconnect(d) => Some(d),
            _ => None,
        });
        small(&ack.properties) && disconnect.is_some_and(|d| small(&d.properties))
    });
}

#[test]
fn violation_reason_string_on_acks_beyond_maximum_packet_size() {
    proves("MQTT-3.4.2-2", |net| {
        let mut c = Connect::new(V5, "c");
        c.properties.push(Property::MaximumPacketSize(64));
        let (c, _) = net.connect_with(c);
        net.publish(c, publish("nobody", "x", QoS::AtLeastOnce, 1));
        match net.recv(c).as_slice() {
            [Packet::PubAck(ack)] => !has_prop(&ack.properties, |p| {
                matches!(p, Property::ReasonString(_) | Property::UserProperty(..))
            }),
            _ => false,
        }
    });
}

#[test]
fn violation_more_unacknowledged_qos2_than_receive_maximum() {
    let config = || Config {
        receive_maximum: 2,
        ..Config::default()
    };
    proves_with("MQTT-3.3.4-7", config, |net| {
        let (c, _) = net.connect_with(Connect::new(V5, "c"));
        for id in 1..=3 {
            net.publish(c, publish("t", "x", QoS::ExactlyOnce, id));
        }
        net.recv(c).iter().any(|p| {
            matches!(p, Packet::Disconnect(d) if d.reason_code == mqtt_codec::reason::RECEIVE_MAXIMUM_EXCEEDED)
        })
    });
}

#[test]
fn violation_reason_string_despite_request_problem_information_0() {
    proves("MQTT-3.1.2-29", |net| {
        let mut c = Connect::new(V5, "c");
        c.keep_alive = 0;
        c.properties.push(Property::RequestProblemInformation(0));
        let (c, _) = net.connect_with(c);
        net.publish(c, publish("nobody", "x", QoS::AtLeastOnce, 1));
        match net.recv(c).as_slice() {
            [Packet::PubAck(ack)] => {
                !has_prop(&ack.properties, |p| matches!(p, Property::ReasonString(_)))
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    });
}

#[test]
fn violation_session_kept_after_expiry() {
    proves("MQTT-4.1.0-2", |net| {
        let (c, _) = net.persistent_v5("c", 10);
        net.subscribe(c, "t", QoS::AtLeastOnce);
        net.drop_conn(c);
        net.at(20);
        net.tick();
        let (_, ack) = net.persistent_v5("c", 10);
        !ack.session_present
    });
}

/// Every violation id is a statement of the 3.1.1 or 5.0 catalogue that
/// binds the server (or binds the client, and the server must refuse its
/// breach), and no id belongs to two violations.
#[test]
fn violation_ids_are_server_statements() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../codec/spec");
    let mut known = HashSet::new();
    for file in ["mqtt-3.1.1.tsv", "mqtt-5.0.tsv"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("catalogue");
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            // A client-side statement whose breach the server must refuse
            // (wire "reject") is broken by a broker that takes the breach.
            let refused = cols.len() >= 5 && cols[3] == "client" && cols[4] == "reject";
            if cols.len() >= 4 && (matches!(cols[3], "server" | "both") || refused) {
                known.insert(cols[0].to_string());
            }
        }
    }
    let mut seen = HashSet::new();
    for v in reference_broker::violation::VIOLATIONS {
        for id in v.ids {
            assert!(
                known.contains(*id),
                "{id} is not a server-side statement of either catalogue"
            );
            assert!(seen.insert(*id), "{id} appears in two violations");
        }
    }
}

#[test]
fn violation_list_ends_with_count() {
    let list = reference_broker::violation::list();
    let n: usize = reference_broker::violation::VIOLATIONS
        .iter()
        .map(|v| v.ids.len())
        .sum();
    assert_eq!(
        list.lines().last(),
        Some(format!("{n} statements can be broken").as_str())
    );
}

#[test]
fn violation_will_retain_inverted() {
    proves("MQTT-3.1.2-15", |net| {
        let mut c = Connect::new(V311, "c");
        c.keep_alive = 0;
        c.will = Some(will("will", "gone"));
        let (conn, _) = net.connect_with(c);
        net.drop_conn(conn);
        let late = net.client(V311, "late");
        net.subscribe(late, "will", QoS::AtMostOnce);
        net.recv(late).is_empty()
    });
}

#[test]
fn violation_will_user_properties_dropped() {
    proves("MQTT-3.1.3-10", |net| {
        let w = net.client(V5, "w");
        net.subscribe(w, "will", QoS::AtMostOnce);
        let mut c = Connect::new(V5, "c");
        c.keep_alive = 0;
        let mut wl = will("will", "gone");
        wl.properties.push(Property::UserProperty(
            ByteString::from("k"),
            ByteString::from("v"),
        ));
        c.will = Some(wl);
        let (conn, _) = net.connect_with(c);
        net.drop_conn(conn);
        let got = net.recv_publishes(w);
        got.len() == 1
            && has_prop(&got[0].properties, |p| {
                matches!(p, Property::UserProperty(..))
            })
    });
}

/// A persistent 5.0 subscriber at QoS 2 gets one message; returns it.
fn qos2_to_persistent(net: &mut Net) -> (ConnId, Publish) {
    let (s, _) = net.persistent_v5("s", 100);
    net.subscribe(s, "t", QoS::ExactlyOnce);
    let p = net.client(V5, "p");
    net.publish(p, publish("t", "x", QoS::ExactlyOnce, 1));
    let mut got = net.recv_publishes(s);
    assert_eq!(got.len(), 1);
    (s, got.remove(0))
}

/// Drops the persistent subscriber "s" and resumes its session.
fn reconnect_s(net: &mut Net, old: ConnId) -> ConnId {
    net.drop_conn(old);
    let (s, ack) = net.persistent_v5("s", 100);
    assert!(ack.session_present);
    s
}

#[test]
fn violation_refused_message_resent() {
    proves("MQTT-4.4.0-2", |net| {
        let (s, m) = qos2_to_persistent(net);
        let mut rec = PubResponse::new(m.packet_id);
        rec.reason_code = 0x80;
        net.send(s, Packet::PubRec(rec));
        let s = reconnect_s(net, s);
        net.recv(s).is_empty()
    });
}

#[test]
fn violation_pubrel_not_resent() {
    proves("MQTT-4.3.3-5", |net| {
        let (s, m) = qos2_to_persistent(net);
        net.send(s, Packet::PubRec(PubResponse::new(m.packet_id)));
        assert_eq!(net.recv(s).len(), 1);
        let s = reconnect_s(net, s);
        net.recv(s).iter().map(ack_id).collect::<Vec<_>>() == [("PUBREL", m.packet_id, 0)]
    });
}

#[test]
fn violation_publish_resent_after_pubrel() {
    proves("MQTT-4.3.3-6", |net| {
        let (s, m) = qos2_to_persistent(net);
        net.send(s, Packet::PubRec(PubResponse::new(m.packet_id)));
        net.recv(s);
        let s = reconnect_s(net, s);
        matches!(net.recv(s).as_slice(), [Packet::PubRel(r)] if r.packet_id == m.packet_id)
    });
}

#[test]
fn violation_resent_without_dup() {
    proves("MQTT-3.3.1-1", |net| {
        let (s, m) = qos2_to_persistent(net);
        assert!(!m.dup);
        let s = reconnect_s(net, s);
        let again = net.recv_publishes(s);
        again.len() == 1 && again[0].dup
    });
}

#[test]
fn violation_forgets_message_once_sent() {
    proves("MQTT-4.3.2-3", |net| {
        let (s, m) = qos2_to_persistent(net);
        let s = reconnect_s(net, s);
        let again = net.recv_publishes(s);
        again.len() == 1 && again[0].packet_id == m.packet_id
    });
}

#[test]
fn violation_qos2_identifier_kept_after_pubcomp() {
    proves("MQTT-4.3.3-12", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "1", QoS::ExactlyOnce, 9));
        net.send(p, Packet::PubRel(PubResponse::new(9)));
        net.publish(p, publish("t", "2", QoS::ExactlyOnce, 9));
        net.send(p, Packet::PubRel(PubResponse::new(9)));
        payloads(&net.recv_publishes(s)) == ["1", "2"]
    });
}

#[test]
fn violation_qos1_dup_not_forwarded() {
    proves("MQTT-4.3.2-5", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "1", QoS::AtLeastOnce, 4));
        net.publish(
            p,
            Publish {
                dup: true,
                ..publish("t", "2", QoS::AtLeastOnce, 4)
            },
        );
        payloads(&net.recv_publishes(s)) == ["1", "2"]
    });
}

#[test]
fn violation_only_one_session_gets_message() {
    proves("MQTT-4.5.0-1", |net| {
        let a = net.client(V311, "a");
        net.subscribe(a, "t", QoS::AtMostOnce);
        let b = net.client(V311, "b");
        net.subscribe(b, "t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        net.recv(a).len() == 1 && net.recv(b).len() == 1
    });
}

#[test]
fn violation_shared_ignores_granted_qos() {
    proves("MQTT-4.8.2-3", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "$share/g/t", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::AtLeastOnce, 1));
        let got = net.recv_publishes(s);
        got.len() == 1 && got[0].qos == QoS::AtMostOnce
    });
}

#[test]
fn violation_queue_newest_first() {
    proves("MQTT-4.6.0-6", |net| {
        let (s, _) = net.persistent_v311("s");
        net.subscribe(s, "t", QoS::AtLeastOnce);
        net.drop_conn(s);
        let p = net.client(V311, "p");
        for (i, n) in ["1", "2", "3"].iter().enumerate() {
            net.publish(p, publish("t", n, QoS::AtLeastOnce, i as u16 + 1));
        }
        let (s, _) = net.persistent_v311("s");
        payloads(&net.recv_publishes(s)) == ["1", "2", "3"]
    });
}

#[test]
fn violation_same_assigned_client_id() {
    proves("MQTT-3.1.3-6", |net| {
        let a = net.client(V311, "");
        let b = net.client(V311, "");
        !net.is_closed(a) && !net.is_closed(b)
    });
}

fn no_empty_ids() -> Config {
    Config {
        allow_empty_client_id: false,
        ..Config::default()
    }
}

fn max_qos_1() -> Config {
    Config {
        maximum_qos: 1,
        ..Config::default()
    }
}

#[test]
fn violation_v311_code_to_v5() {
    proves_with("MQTT-3.2.2-8", no_empty_ids, |net| {
        let (_, ack) = net.connect_with(Connect::new(V5, ""));
        ack.code == reason::CLIENT_IDENTIFIER_NOT_VALID
    });
}

#[test]
fn violation_will_qos_above_maximum_accepted() {
    proves_with("MQTT-3.2.2-12", max_qos_1, |net| {
        let mut c = Connect::new(V5, "c");
        c.will = Some(Will {
            qos: QoS::ExactlyOnce,
            ..will("w", "x")
        });
        let (conn, ack) = net.connect_with(c);
        ack.code == reason::QOS_NOT_SUPPORTED && net.is_closed(conn)
    });
}

#[test]
fn violation_retained_will_without_retain() {
    proves_with(
        "MQTT-3.2.2-13",
        || Config {
            retain_available: false,
            ..Config::default()
        },
        |net| {
            let mut c = Connect::new(V5, "c");
            c.will = Some(Will {
                retain: true,
                ..will("w", "x")
            });
            let (conn, ack) = net.connect_with(c);
            ack.code == reason::RETAIN_NOT_SUPPORTED && net.is_closed(conn)
        },
    );
}

#[test]
fn violation_maximum_qos_not_announced() {
    proves_with("MQTT-3.2.2-9", max_qos_1, |net| {
        let (_, ack) = net.connect_with(Connect::new(V5, "c"));
        has_prop(&ack.properties, |p| *p == Property::MaximumQoS(1))
    });
}

#[test]
fn violation_subscription_above_maximum_refused() {
    proves_with("MQTT-3.2.2-10", max_qos_1, |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce) == 1
    });
}

#[test]
fn violation_suback_reports_requested_qos() {
    proves_with("MQTT-3.8.4-7", max_qos_1, |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce) == 1
    });
}

#[test]
fn violation_topic_alias_maximum_refused() {
    proves("MQTT-3.3.2-12", |net| {
        let p = net.client(V5, "p");
        let max = Config::default().topic_alias_maximum;
        net.publish(
            p,
            with_props(
                publish("t", "x", QoS::AtMostOnce, 0),
                &[Property::TopicAlias(max)],
            ),
        );
        !net.is_closed(p)
    });
}

#[test]
fn violation_puback_code_outside_its_set() {
    proves("MQTT-3.4.2-1", |net| {
        let p = net.client(V5, "p");
        net.publish(p, publish("nobody", "x", QoS::AtLeastOnce, 1));
        net.recv(p).iter().map(ack_id).collect::<Vec<_>>()
            == [("PUBACK", 1, reason::NO_MATCHING_SUBSCRIBERS)]
    });
}

#[test]
fn violation_v5_code_in_v311_suback() {
    proves_with(
        "MQTT-3.9.3-2",
        || Config {
            wildcard_subscriptions: false,
            ..Config::default()
        },
        |net| {
            let s = net.client(V311, "s");
            net.subscribe(s, "a/#", QoS::AtMostOnce) == reason::v3::SUBACK_FAILURE
        },
    );
}

#[test]
fn violation_inflight_forgotten_on_unsubscribe() {
    proves("MQTT-3.10.4-3", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::ExactlyOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::ExactlyOnce, 1));
        let got = net.recv_publishes(s);
        assert_eq!(got.len(), 1);
        unsubscribe_filters(net, s, 5, &["t"]);
        net.send(s, Packet::PubRec(PubResponse::new(got[0].packet_id)));
        net.recv(s).iter().map(ack_id).collect::<Vec<_>>() == [("PUBREL", got[0].packet_id, 0)]
    });
}

#[test]
fn violation_v5_unsuback_without_codes() {
    proves("MQTT-3.11.3-2", |net| {
        let s = net.client(V5, "s");
        matches!(
            unsubscribe_filters(net, s, 2, &["a"]).as_slice(),
            [Packet::UnsubAck(ack)] if ack.reason_codes == [reason::NO_SUBSCRIPTION_EXISTED]
        )
    });
}

#[test]
fn violation_connection_kept_after_protocol_error() {
    proves("MQTT-3.14.4-2", |net| {
        let c = net.client(V5, "c");
        net.send(c, Packet::Connect(Box::new(Connect::new(V5, "c"))));
        net.recv(c);
        net.is_closed(c)
    });
}

/// Statements the codec detects: the compliant broker closes the
/// connection on the decode error, the violating one skips the packet.
#[test]
fn violation_decode_errors_skipped() {
    use mqtt_codec::topic::TopicError;
    use mqtt_codec::{DecodeError, ErrorKind, PacketType, Sender};
    let cases: Vec<(&str, Protocol, PacketType, ErrorKind, bool)> = vec![
        (
            "MQTT-1.5.4-1",
            V5,
            PacketType::Publish,
            ErrorKind::InvalidUtf8 { field: "topic" },
            true,
        ),
        (
            "MQTT-1.5.3-1",
            V311,
            PacketType::Publish,
            ErrorKind::InvalidUtf8 { field: "topic" },
            true,
        ),
        (
            "MQTT-1.5.4-2",
            V5,
            PacketType::Publish,
            ErrorKind::NullCharacter { field: "topic" },
            true,
        ),
        (
            "MQTT-1.5.3-2",
            V311,
            PacketType::Publish,
            ErrorKind::NullCharacter { field: "topic" },
            true,
        ),
        (
            "MQTT-1.5.5-1",
            V5,
            PacketType::Publish,
            ErrorKind::VarintNotMinimal {
                field: "remaining_length",
            },
            true,
        ),
        (
            "MQTT-3.6.1-1",
            V5,
            PacketType::PubRel,
            ErrorKind::InvalidFlags { flags: 0 },
            true,
        ),
        (
            "MQTT-3.8.1-1",
            V311,
            PacketType::Subscribe,
            ErrorKind::InvalidFlags { flags: 0 },
            true,
        ),
        (
            "MQTT-3.10.1-1",
            V311,
            PacketType::Unsubscribe,
            ErrorKind::InvalidFlags { flags: 0 },
            true,
        ),
        (
            "MQTT-3.15.1-1",
            V5,
            PacketType::Auth,
            ErrorKind::InvalidFlags { flags: 1 },
            true,
        ),
        (
            "MQTT-4.7.3-1",
            V5,
            PacketType::Publish,
            ErrorKind::EmptyTopic,
            true,
        ),
        (
            "MQTT-3.1.2-1",
            V311,
            PacketType::Connect,
            ErrorKind::ProtocolName {
                name: "MQIsdp".into(),
            },
            false,
        ),
        (
            "MQTT-3.1.4-1",
            V311,
            PacketType::Connect,
            ErrorKind::TrailingBytes { count: 1 },
            false,
        ),
        (
            "MQTT-2.3.1-1",
            V311,
            PacketType::Subscribe,
            ErrorKind::PacketIdZero,
            true,
        ),
        (
            "MQTT-3.3.2-8",
            V5,
            PacketType::Publish,
            ErrorKind::PropertyValue { id: 0x23, value: 0 },
            true,
        ),
        (
            "MQTT-3.3.2-14",
            V5,
            PacketType::Publish,
            ErrorKind::TopicName {
                field: "response_topic",
                error: TopicError::WildcardInName,
            },
            true,
        ),
        (
            "MQTT-3.5.2-1",
            V5,
            PacketType::PubRec,
            ErrorKind::InvalidReasonCode { code: 5 },
            true,
        ),
        (
            "MQTT-3.6.2-1",
            V5,
            PacketType::PubRel,
            ErrorKind::InvalidReasonCode { code: 5 },
            true,
        ),
        (
            "MQTT-3.7.2-1",
            V5,
            PacketType::PubComp,
            ErrorKind::InvalidReasonCode { code: 5 },
            true,
        ),
        (
            "MQTT-3.14.2-1",
            V5,
            PacketType::Disconnect,
            ErrorKind::InvalidReasonCode { code: 5 },
            true,
        ),
        (
            "MQTT-3.15.2-1",
            V5,
            PacketType::Auth,
            ErrorKind::InvalidReasonCode { code: 5 },
            true,
        ),
    ];
    for (id, protocol, packet, kind, connected) in cases {
        let err = DecodeError {
            offset: 0,
            packet: Some(packet),
            protocol,
            from: Sender::Client,
            kind,
        };
        assert_eq!(err.statement(), Some(id), "{err:?}");
        proves(id, |net| {
            let c = if connected {
                net.client(protocol, "c")
            } else {
                net.open()
            };
            let closes = net.broker.decode_error(c, &err, net.now) == OnError::Close;
            net.pump();
            closes && net.is_closed(c)
        });
    }
}

#[test]
fn violation_clean_session_resumes_old_one() {
    proves("MQTT-3.1.2-6", |net| {
        let (c, _) = net.persistent_v311("c");
        net.subscribe(c, "t", QoS::AtLeastOnce);
        net.drop_conn(c);
        let c = net.client(V311, "c");
        let p = net.client(V311, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        net.recv(c).is_empty()
    });
}

#[test]
fn violation_pingresp_held_back_by_receive_window() {
    proves("MQTT-4.9.0-3", |net| {
        let mut c = Connect::new(V5, "s");
        c.keep_alive = 0;
        c.properties.push(Property::ReceiveMaximum(1));
        let (s, _) = net.connect_with(c);
        net.subscribe(s, "t", QoS::AtLeastOnce);
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "1", QoS::AtLeastOnce, 1));
        assert_eq!(net.recv_publishes(s).len(), 1);
        net.send(s, Packet::PingReq);
        net.recv(s) == [Packet::PingResp]
    });
}

#[test]
fn violation_connect_handled_after_refusal() {
    proves("MQTT-3.1.4-6", |net| {
        let (c, ack) = net.persistent_v311("");
        assert_ne!(ack.code, 0);
        net.send(c, Packet::Connect(Box::new(Connect::new(V311, "again"))));
        net.recv(c).is_empty()
    });
}

#[test]
fn violation_topic_aliases_survive_reconnect() {
    proves("MQTT-3.3.2-7", |net| {
        let s = net.client(V5, "s");
        net.subscribe(s, "t", QoS::AtMostOnce);
        let p = net.client(V5, "p");
        let aliased = |topic: &str| {
            with_props(
                publish(topic, "x", QoS::AtMostOnce, 0),
                &[Property::TopicAlias(1)],
            )
        };
        net.publish(p, aliased("t"));
        net.send(p, disconnect(0));
        let p = net.client(V5, "p");
        net.publish(p, aliased(""));
        net.is_closed(p)
    });
}

#[test]
fn violation_no_suback() {
    proves("MQTT-3.8.4-1", |net| {
        let s = net.client(V311, "s");
        net.send(
            s,
            Packet::Subscribe(Subscribe {
                packet_id: 1,
                properties: Properties::new(),
                filters: vec![Subscription {
                    filter: "t".into(),
                    options: SubscriptionOptions::qos(QoS::AtMostOnce),
                }],
            }),
        );
        matches!(net.recv(s).as_slice(), [Packet::SubAck(_)])
    });
}

#[test]
fn violation_expired_qos2_in_flight_dropped() {
    proves("MQTT-4.3.3-7", |net| {
        let (s, _) = net.persistent_v5("s", 100);
        net.subscribe(s, "t", QoS::ExactlyOnce);
        let p = net.client(V5, "p");
        net.publish(
            p,
            with_props(
                publish("t", "x", QoS::ExactlyOnce, 1),
                &[Property::MessageExpiryInterval(5)],
            ),
        );
        let first = net.recv_publishes(s);
        assert_eq!(first.len(), 1);
        net.at(10);
        let s = reconnect_s(net, s);
        let again = net.recv_publishes(s);
        again.len() == 1 && again[0].packet_id == first[0].packet_id && again[0].dup
    });
}

#[test]
fn violation_expired_inbound_qos2_not_completed() {
    proves("MQTT-4.3.3-13", |net| {
        let p = net.client(V5, "p");
        net.publish(
            p,
            with_props(
                publish("t", "x", QoS::ExactlyOnce, 3),
                &[Property::MessageExpiryInterval(1)],
            ),
        );
        assert_eq!(
            net.recv(p).iter().map(ack_id).collect::<Vec<_>>(),
            [("PUBREC", 3, 0x10)]
        );
        net.at(5);
        net.send(p, Packet::PubRel(PubResponse::new(3)));
        net.recv(p).iter().map(ack_id).collect::<Vec<_>>() == [("PUBCOMP", 3, 0)]
    });
}

/// Anonymous clients may use `ok/#` only.
fn acl_ok_only() -> Config {
    let acl = reference_broker::auth::Acl::parse("acl", "topic readwrite ok/#\n").expect("ACL");
    Config {
        auth: reference_broker::auth::Auth::new(None, Some(acl), true).expect("auth"),
        ..Config::default()
    }
}

#[test]
fn violation_identifier_reused_after_failing_pubrec() {
    proves_with("MQTT-4.3.3-9", acl_ok_only, |net| {
        let s = net.client(V5, "s");
        assert_eq!(net.subscribe(s, "ok/#", QoS::AtMostOnce), 0);
        let p = net.client(V5, "p");
        net.publish(p, publish("no", "1", QoS::ExactlyOnce, 7));
        assert_eq!(
            net.recv(p).iter().map(ack_id).collect::<Vec<_>>(),
            [("PUBREC", 7, reason::NOT_AUTHORIZED)]
        );
        net.publish(p, publish("ok/t", "2", QoS::ExactlyOnce, 7));
        payloads(&net.recv_publishes(s)) == ["2"]
    });
}

/// Members "a" (persistent, session expiry 5 s) and "b" of `$share/g/t`;
/// "a" gets one QoS 1 message. Returns (a, b, message).
fn shared_pair(net: &mut Net) -> (ConnId, ConnId, Publish) {
    let (a, _) = net.persistent_v5("a", 5);
    net.subscribe(a, "$share/g/t", QoS::AtLeastOnce);
    let b = net.client(V5, "b");
    net.subscribe(b, "$share/g/t", QoS::AtLeastOnce);
    let p = net.client(V5, "p");
    net.publish(p, publish("t", "x", QoS::AtLeastOnce, 1));
    let mut got = net.recv_publishes(a);
    assert_eq!(got.len(), 1);
    assert!(net.recv(b).is_empty());
    (a, b, got.remove(0))
}

#[test]
fn violation_shared_message_redirected_after_session_end() {
    proves("MQTT-4.8.2-5", |net| {
        let (a, b, _) = shared_pair(net);
        net.drop_conn(a);
        net.at(10);
        net.tick();
        net.recv(b).is_empty()
    });
}

#[test]
fn violation_refused_shared_message_redirected() {
    proves("MQTT-4.8.2-6", |net| {
        let (a, b, m) = shared_pair(net);
        let mut ack = PubResponse::new(m.packet_id);
        ack.reason_code = 0x80;
        net.send(a, Packet::PubAck(ack));
        net.recv(b).is_empty()
    });
}

#[test]
fn violation_session_discarded_while_connected() {
    proves("MQTT-4.1.0-1", |net| {
        let (s, _) = net.persistent_v5("s", 5);
        net.subscribe(s, "t", QoS::AtLeastOnce);
        net.at(10);
        net.tick();
        let p = net.client(V5, "p");
        net.publish(p, publish("t", "x", QoS::AtMostOnce, 0));
        net.recv_publishes(s).len() == 1
    });
}

/// The violation expires a connected session on its own timer, not only
/// when another timer happens to run `tick`.
#[test]
fn violation_session_discarded_while_connected_wakes_the_timer() {
    let mut net = Net::new();
    net.persistent_v5("s", 5);
    assert_eq!(net.broker.poll_timeout(), None);
    let mut net = Net::violating("MQTT-4.1.0-1");
    net.persistent_v5("s", 5);
    assert!(net.broker.poll_timeout().is_some());
}

#[test]
fn violation_23_byte_client_id_refused() {
    proves("MQTT-3.1.3-5", |net| {
        let id = "abcdefghijklmnopqrstuvw";
        assert_eq!(id.len(), 23);
        let (_, ack) = net.connect_with(Connect::new(V311, id));
        ack.code == 0
    });
}

#[test]
fn violation_client_id_case_folded() {
    proves("MQTT-3.1.3-2", |net| {
        let (a, _) = net.persistent_v311("A");
        net.subscribe(a, "t", QoS::AtLeastOnce);
        let (_, ack) = net.persistent_v311("a");
        !ack.session_present && !net.is_closed(a)
    });
}

#[test]
fn violation_bom_stripped_from_topic() {
    proves("MQTT-1.5.4-3", |net| {
        let s = net.client(V311, "s");
        net.subscribe(s, "\u{feff}t", QoS::AtMostOnce);
        let p = net.client(V311, "p");
        net.publish(p, publish("\u{feff}t", "x", QoS::AtMostOnce, 0));
        let got = net.recv_publishes(s);
        got.len() == 1 && &*got[0].topic == "\u{feff}t"
    });
}

#[test]
fn violation_will_without_will_flag() {
    proves("MQTT-3.1.2-12", |net| {
        let w = watcher(net, "w");
        let mut c = Connect::new(V311, "c");
        c.keep_alive = 0;
        c.will = Some(will("w", "bye"));
        let (conn, _) = net.connect_with(c);
        net.send(conn, disconnect(0));
        let conn = net.client(V311, "c");
        net.drop_conn(conn);
        net.recv(w).is_empty()
    });
}
