//! The oracles on observations written by hand: each rule found where it is
//! broken, and nothing where the spec lets the broker do what it did.

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, PubResponse, Publish, QoS, SubAck, Subscribe, Subscription};

use super::super::exec::{Got, Live, Observation, Rec};
use super::super::input::{Client, Input};
use super::{judge, Kind};

fn input() -> Input {
    Input {
        protocol: Protocol::V5,
        clients: vec![
            Client {
                connect: true,
                ..Default::default()
            };
            2
        ],
        ops: Vec::new(),
        origin: "test".into(),
    }
}

/// Two connected clients: c0 (connection 1) subscribed to `t` at QoS 2,
/// c1 (connection 2) the publisher.
fn base() -> Observation {
    let ids = vec!["id0".to_string(), "id1".to_string()];
    let connect = |k: usize| {
        Packet::Connect(Box::new(mqtt_codec::Connect {
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: 60,
            properties: Default::default(),
            client_id: ids[k].as_str().into(),
            will: None,
            username: None,
            password: None,
        }))
    };
    let mut recs = Vec::new();
    for k in 0..2 {
        let conn = k as u32 + 1;
        recs.push(Rec::Opened {
            client: k,
            conn,
            op: None,
        });
        recs.push(sent(k, connect(k)));
        recs.push(got(k, Packet::ConnAck(Default::default())));
    }
    recs.push(sent(
        0,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Default::default(),
            filters: vec![Subscription {
                filter: "t".into(),
                options: mqtt_codec::SubscriptionOptions {
                    qos: QoS::ExactlyOnce,
                    ..Default::default()
                },
            }],
        }),
    ));
    recs.push(got(
        0,
        Packet::SubAck(SubAck {
            packet_id: 1,
            properties: Default::default(),
            reason_codes: vec![2],
        }),
    ));
    Observation {
        recs,
        ids,
        dropped: 0,
        token: String::new(),
    }
}

fn sent(k: usize, p: Packet) -> Rec {
    Rec::Sent {
        client: k,
        conn: k as u32 + 1,
        op: Some(0),
        bytes: mqtt_codec::encode_bytes(&p, Protocol::V5).unwrap(),
        packet: Some(p),
    }
}

fn got(k: usize, p: Packet) -> Rec {
    let bytes = mqtt_codec::encode_bytes(&p, Protocol::V5).unwrap();
    Rec::Got {
        client: k,
        conn: k as u32 + 1,
        got: Got::Packet(p, bytes),
    }
}

fn publish(id: u16, dup: bool, topic: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup,
        qos: QoS::ExactlyOnce,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    })
}

fn kinds(obs: &Observation) -> Vec<Kind> {
    judge(&input(), obs, &Live::Alive)
        .iter()
        .map(|f| f.kind)
        .collect()
}

/// c1 publishes at QoS 2 and completes the flow.
fn qos2_flow(obs: &mut Observation, payload: &'static [u8]) {
    obs.recs.push(sent(1, publish(21, false, "t", payload)));
    obs.recs.push(got(1, Packet::PubRec(PubResponse::new(21))));
    obs.recs.push(sent(1, Packet::PubRel(PubResponse::new(21))));
    obs.recs.push(got(1, Packet::PubComp(PubResponse::new(21))));
}

#[test]
fn an_acknowledged_message_that_never_comes_is_lost_and_one_that_comes_is_not() {
    let mut lost = base();
    qos2_flow(&mut lost, b"m");
    assert_eq!(kinds(&lost), vec![Kind::Loss]);
    let mut kept = lost.clone();
    kept.recs.push(got(0, publish(1, false, "t", b"m")));
    assert!(kinds(&kept).is_empty());
}

#[test]
fn a_message_resent_with_its_identifier_in_flight_is_owed_in_no_version() {
    let mut obs = base();
    obs.recs.push(sent(1, publish(21, false, "t", b"first")));
    obs.recs.push(got(1, Packet::PubRec(PubResponse::new(21))));
    qos2_flow(&mut obs, b"second");
    assert!(kinds(&obs).is_empty(), "{:?}", kinds(&obs));
}

#[test]
fn a_subscriber_that_disconnected_is_owed_nothing() {
    let mut obs = base();
    obs.recs.push(Rec::Closing { client: 0, op: 0 });
    qos2_flow(&mut obs, b"m");
    assert!(kinds(&obs).is_empty());
}

#[test]
fn a_delivery_matching_no_filter_is_found_and_a_matching_one_is_not() {
    let mut obs = base();
    obs.recs.push(got(0, publish(1, false, "t", b"m")));
    assert!(kinds(&obs).is_empty());
    obs.recs.push(got(
        0,
        Packet::Publish(Publish {
            topic: "u".into(),
            ..Default::default()
        }),
    ));
    assert_eq!(kinds(&obs), vec![Kind::Misdelivery]);
}

#[test]
fn an_identifier_in_flight_is_reused_only_by_a_new_message() {
    let mut obs = base();
    obs.recs.push(got(0, publish(1, false, "t", b"a")));
    // A resend (DUP) of the message in flight is allowed.
    obs.recs.push(got(0, publish(1, true, "t", b"a")));
    assert!(kinds(&obs).is_empty());
    obs.recs.push(got(0, publish(1, false, "t", b"b")));
    assert_eq!(kinds(&obs), vec![Kind::IdReuse]);
}

#[test]
fn bytes_refused_without_a_statement_or_as_an_echo_of_identifier_zero_are_no_verdict() {
    let opts = mqtt_codec::DecodeOptions::new(Protocol::V5, mqtt_codec::Sender::Server);
    let refused = |hex: &[u8]| {
        let b = Bytes::copy_from_slice(hex);
        mqtt_codec::decode_bytes(&b, &opts).expect_err("refused")
    };
    let mut obs = base();
    // PUBACK with packet identifier 0 (an echo of the fuzzer's own).
    let e = refused(&[0x40, 0x02, 0x00, 0x00]);
    obs.recs.push(Rec::Got {
        client: 0,
        conn: 1,
        got: Got::Malformed(e, Bytes::new()),
    });
    assert!(kinds(&obs).is_empty());
    // PUBLISH with DUP at QoS 0: MQTT-3.3.1-2, a MUST.
    let mut obs = base();
    let e = refused(&[0x38, 0x04, 0x00, 0x01, b't', 0x00]);
    obs.recs.push(Rec::Got {
        client: 0,
        conn: 1,
        got: Got::Malformed(e, Bytes::new()),
    });
    let found = judge(&input(), &obs, &Live::Alive);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].statement.as_deref(), Some("MQTT-3.3.1-2"));
}

#[test]
fn a_second_connack_and_a_silent_broker_are_found() {
    let mut obs = base();
    obs.recs.push(got(1, Packet::ConnAck(Default::default())));
    assert_eq!(kinds(&obs), vec![Kind::SecondConnack]);
    let hang = judge(&input(), &base(), &Live::NoPingResp);
    assert_eq!(hang[0].kind, Kind::Hang);
    assert_eq!(hang[0].statement.as_deref(), Some("MQTT-3.12.4-1"));
}

#[test]
fn after_bytes_cut_short_what_a_connection_sends_is_owed_nothing() {
    let mut obs = base();
    // A PUBLISH cut short: the broker reads the next packet's bytes as its rest.
    obs.recs.push(Rec::Sent {
        client: 1,
        conn: 2,
        op: Some(0),
        bytes: Bytes::from_static(&[0x32, 0x10, 0x00, 0x01]),
        packet: None,
    });
    qos2_flow(&mut obs, b"m");
    assert!(kinds(&obs).is_empty(), "{:?}", kinds(&obs));
}

#[test]
fn a_publish_without_the_execution_s_token_is_another_execution_s() {
    let mut obs = base();
    obs.token = "tok".into();
    // Through a filter a mutation widened: no finding of this execution.
    obs.recs.push(got(
        0,
        Packet::Publish(Publish {
            topic: "u".into(),
            ..Default::default()
        }),
    ));
    assert!(kinds(&obs).is_empty());
    obs.recs.push(got(
        0,
        Packet::Publish(Publish {
            topic: "tok/u".into(),
            ..Default::default()
        }),
    ));
    assert_eq!(kinds(&obs), vec![Kind::Misdelivery]);
}

#[test]
fn a_subscriber_whose_client_id_another_client_took_over_is_owed_nothing() {
    // c2 connects with c0's client id: the broker hands the session to c2
    // and closes c0's connection, whether or not that close is seen.
    let mut obs = base();
    obs.ids.push("id2".into());
    obs.recs.push(Rec::Opened {
        client: 2,
        conn: 3,
        op: None,
    });
    let takeover = Packet::Connect(Box::new(mqtt_codec::Connect {
        protocol: Protocol::V5,
        clean_start: false,
        keep_alive: 60,
        properties: Default::default(),
        client_id: "id0".into(),
        will: None,
        username: None,
        password: None,
    }));
    obs.recs.push(Rec::Sent {
        client: 2,
        conn: 3,
        op: Some(0),
        bytes: mqtt_codec::encode_bytes(&takeover, Protocol::V5).unwrap(),
        packet: Some(takeover),
    });
    qos2_flow(&mut obs, b"m");
    assert!(kinds(&obs).is_empty(), "{:?}", kinds(&obs));
}
