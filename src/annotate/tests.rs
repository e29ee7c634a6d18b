use super::*;
use mqtt_codec::{
    ConnAck, Connect, PubResponse, Publish, SubAck, Subscribe, Subscription, SubscriptionOptions,
};

fn publish(qos: QoS, id: u16) -> Packet {
    Packet::Publish(Publish {
        qos,
        packet_id: id,
        topic: "a/b".into(),
        ..Publish::default()
    })
}

fn connected(p: Protocol) -> Checker {
    let mut c = Checker::new(p);
    assert!(c
        .packet(
            Sender::Client,
            &Packet::Connect(Box::new(Connect::new(p, "x")))
        )
        .is_empty());
    assert!(c
        .packet(Sender::Server, &Packet::ConnAck(ConnAck::default()))
        .is_empty());
    c
}

fn ids(v: &[Violation]) -> Vec<(Sender, Option<&'static str>)> {
    v.iter().map(|x| (x.by, x.statement)).collect()
}

#[test]
fn a_qos1_publish_is_governed_by_its_section_and_its_packet_identifier() {
    let a = statements(
        &publish(QoS::AtLeastOnce, 7),
        Protocol::V3_1_1,
        Sender::Client,
    );
    assert_eq!(a.section, "3.3");
    assert!(
        a.fields.contains(&("packet_id", "MQTT-2.3.1-1")),
        "{:?}",
        a.fields
    );
    assert!(
        a.fields.contains(&("topic", "MQTT-3.3.2-1")),
        "{:?}",
        a.fields
    );
    assert!(
        a.section_ids.contains(&"MQTT-3.3.1-1"),
        "{:?}",
        a.section_ids
    );
    let q0 = statements(
        &publish(QoS::AtMostOnce, 0),
        Protocol::V3_1_1,
        Sender::Client,
    );
    assert!(!q0.fields.iter().any(|(f, _)| *f == "packet_id"));
    // Every id is in the catalogue, each once.
    let all = a.ids();
    for id in &all {
        assert!(catalogue::lookup(Protocol::V3_1_1, id).is_some(), "{id}");
    }
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(all.len(), dedup.len());
}

#[test]
fn a_topic_alias_brings_in_its_statement() {
    let mut p = Publish {
        topic: "t".into(),
        ..Publish::default()
    };
    p.properties.push(mqtt_codec::Property::TopicAlias(3));
    let a = statements(&Packet::Publish(p), Protocol::V5, Sender::Client);
    assert!(
        a.fields.contains(&("topic_alias", "MQTT-3.3.2-8")),
        "{:?}",
        a.fields
    );
}

#[test]
fn order_of_connect_and_connack() {
    let mut c = Checker::new(Protocol::V3_1_1);
    assert_eq!(
        ids(&c.packet(Sender::Client, &Packet::PingReq)),
        [(Sender::Client, Some("MQTT-3.1.0-1"))]
    );
    let mut c = connected(Protocol::V3_1_1);
    let again = Packet::Connect(Box::new(Connect::new(Protocol::V3_1_1, "x")));
    assert_eq!(
        ids(&c.packet(Sender::Client, &again)),
        [(Sender::Client, Some("MQTT-3.1.0-2"))]
    );
    let mut c = Checker::new(Protocol::V5);
    c.packet(
        Sender::Client,
        &Packet::Connect(Box::new(Connect::new(Protocol::V5, "x"))),
    );
    assert_eq!(
        ids(&c.packet(Sender::Server, &Packet::PingResp)),
        [(Sender::Server, Some("MQTT-3.2.0-1"))]
    );
}

#[test]
fn packet_identifiers_in_use_and_acknowledgements_of_nothing() {
    let mut c = connected(Protocol::V5);
    assert!(c
        .packet(Sender::Client, &publish(QoS::AtLeastOnce, 1))
        .is_empty());
    assert_eq!(
        ids(&c.packet(Sender::Client, &publish(QoS::AtLeastOnce, 1))),
        [(Sender::Client, Some("MQTT-2.2.1-3"))]
    );
    assert!(c
        .packet(Sender::Server, &Packet::PubAck(PubResponse::new(1)))
        .is_empty());
    // Acknowledged: the identifier is free again, and a second PUBACK acknowledges nothing.
    assert_eq!(
        ids(&c.packet(Sender::Server, &Packet::PubAck(PubResponse::new(1)))),
        [(Sender::Server, Some("MQTT-2.2.1-5"))]
    );
    // QoS 2 both ways.
    assert!(c
        .packet(Sender::Server, &publish(QoS::ExactlyOnce, 9))
        .is_empty());
    assert!(c
        .packet(Sender::Client, &Packet::PubRec(PubResponse::new(9)))
        .is_empty());
    assert!(c
        .packet(Sender::Server, &Packet::PubRel(PubResponse::new(9)))
        .is_empty());
    assert!(c
        .packet(Sender::Client, &Packet::PubComp(PubResponse::new(9)))
        .is_empty());
    assert_eq!(
        ids(&c.packet(Sender::Client, &Packet::PubComp(PubResponse::new(9)))),
        [(Sender::Client, Some("MQTT-2.2.1-5"))]
    );
}

#[test]
fn suback_answers_a_subscribe_with_one_code_per_filter() {
    let mut c = connected(Protocol::V3_1_1);
    let filters = vec![
        Subscription {
            filter: "a".into(),
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        },
        Subscription {
            filter: "b".into(),
            options: SubscriptionOptions::qos(QoS::AtMostOnce),
        },
    ];
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 4,
        properties: Default::default(),
        filters,
    });
    assert!(c.packet(Sender::Client, &sub).is_empty());
    let ack = Packet::SubAck(SubAck {
        packet_id: 4,
        properties: Default::default(),
        reason_codes: vec![0],
    });
    assert_eq!(
        ids(&c.packet(Sender::Server, &ack)),
        [(Sender::Server, Some("MQTT-3.8.4-5"))]
    );
    assert_eq!(
        ids(&c.packet(Sender::Server, &ack)),
        [(Sender::Server, Some("MQTT-3.8.4-2"))]
    );
}

#[test]
fn nothing_after_a_disconnect() {
    let mut c = connected(Protocol::V3_1_1);
    c.packet(Sender::Client, &Packet::Disconnect(Default::default()));
    assert_eq!(
        ids(&c.packet(Sender::Client, &Packet::PingReq)),
        [(Sender::Client, Some("MQTT-3.14.4-2"))]
    );
}

#[test]
fn a_client_resuming_a_session_may_finish_exchanges_before_the_connack() {
    let mut c = Checker::new(Protocol::V5);
    let mut connect = Connect::new(Protocol::V5, "x");
    connect.clean_start = false;
    c.packet(Sender::Client, &Packet::Connect(Box::new(connect)));
    assert!(c
        .packet(Sender::Client, &Packet::PubRel(PubResponse::new(3)))
        .is_empty());
    // A new session after all: nothing was in flight.
    c.packet(Sender::Server, &Packet::ConnAck(ConnAck::default()));
    assert_eq!(
        ids(&c.packet(Sender::Client, &Packet::PubRel(PubResponse::new(4)))),
        [(Sender::Client, Some("MQTT-2.2.1-5"))]
    );
}
