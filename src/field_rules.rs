//! Which normative statements govern a field of a packet, per version: what
//! `decode` prints beside each field so that a reader can go from the bytes
//! to the spec. Field names are the span names of the codec's decoder and
//! encoder (`connect_flags`, `topic`, `packet_id`, a property's snake_case
//! name…). The lists name the statements about the field's encoding and
//! validity, not every statement that mentions the field.

use mqtt_codec::{PacketType, Protocol, Sender};

/// The statement ids (of `protocol`'s catalogue) that govern `field` in a
/// packet of type `ty` sent by `from`. Empty when none is about the field itself.
pub fn statements(
    field: &str,
    ty: PacketType,
    protocol: Protocol,
    from: Sender,
) -> &'static [&'static str] {
    use PacketType as T;
    let v5 = protocol.is_v5();
    match (field, v5) {
        ("fixed_header", _) => match ty {
            T::Publish => &["MQTT-3.3.1-2", "MQTT-3.3.1-4"],
            T::PubRel => &["MQTT-3.6.1-1"],
            T::Subscribe => &["MQTT-3.8.1-1"],
            T::Unsubscribe => &["MQTT-3.10.1-1"],
            T::Disconnect => &["MQTT-3.14.1-1"],
            T::Auth if v5 => &["MQTT-3.15.1-1"],
            _ if v5 => &["MQTT-2.1.3-1"],
            _ => &["MQTT-2.2.2-1", "MQTT-2.2.2-2"],
        },
        ("remaining_length", true) => &["MQTT-1.5.5-1"],
        ("protocol_name", _) => &["MQTT-3.1.2-1"],
        ("protocol_level", _) => &["MQTT-3.1.2-2"],
        ("connect_flags", false) => &[
            "MQTT-3.1.2-3",
            "MQTT-3.1.2-11",
            "MQTT-3.1.2-13",
            "MQTT-3.1.2-14",
            "MQTT-3.1.2-15",
            "MQTT-3.1.2-18",
            "MQTT-3.1.2-19",
            "MQTT-3.1.2-20",
            "MQTT-3.1.2-21",
            "MQTT-3.1.2-22",
        ],
        ("connect_flags", true) => &[
            "MQTT-3.1.2-3",
            "MQTT-3.1.2-11",
            "MQTT-3.1.2-12",
            "MQTT-3.1.2-13",
            "MQTT-3.1.2-16",
            "MQTT-3.1.2-17",
            "MQTT-3.1.2-18",
            "MQTT-3.1.2-19",
        ],
        ("keep_alive", false) => &["MQTT-3.1.2-23", "MQTT-3.1.2-24"],
        ("keep_alive", true) => &["MQTT-3.1.2-20", "MQTT-3.1.2-22"],
        ("client_id", _) => &["MQTT-3.1.3-3", "MQTT-3.1.3-4", "MQTT-3.1.3-5"],
        ("will_topic", false) => &["MQTT-3.1.2-9", "MQTT-3.1.3-10", "MQTT-4.7.1-1"],
        ("will_topic", true) => &["MQTT-3.1.2-9", "MQTT-3.1.3-11", "MQTT-4.7.0-1"],
        ("will_payload", _) => &["MQTT-3.1.2-9"],
        ("username", false) => &["MQTT-3.1.2-19", "MQTT-3.1.3-11"],
        ("username", true) => &["MQTT-3.1.2-17", "MQTT-3.1.3-12"],
        ("password", false) => &["MQTT-3.1.2-21"],
        ("password", true) => &["MQTT-3.1.2-19"],
        ("acknowledge_flags", false) => &["MQTT-3.2.2-4"],
        ("acknowledge_flags", true) => &["MQTT-3.2.2-1", "MQTT-3.2.2-6"],
        ("reason_code", false) => match ty {
            T::ConnAck => &["MQTT-3.2.2-4", "MQTT-3.2.2-5"],
            T::SubAck => &["MQTT-3.8.4-5", "MQTT-3.9.3-1", "MQTT-3.9.3-2"],
            _ => &[],
        },
        ("reason_code", true) => match ty {
            T::ConnAck => &["MQTT-3.2.2-6", "MQTT-3.2.2-7", "MQTT-3.2.2-8"],
            T::PubAck => &["MQTT-3.4.2-1"],
            T::PubRec => &["MQTT-3.5.2-1"],
            T::PubRel => &["MQTT-3.6.2-1"],
            T::PubComp => &["MQTT-3.7.2-1"],
            T::SubAck => &["MQTT-3.8.4-6", "MQTT-3.9.3-1", "MQTT-3.9.3-2"],
            T::UnsubAck => &["MQTT-3.11.3-1", "MQTT-3.11.3-2"],
            T::Disconnect => &["MQTT-3.14.2-1"],
            T::Auth => &["MQTT-3.15.2-1"],
            _ => &[],
        },
        ("topic", false) => &[
            "MQTT-3.3.2-1",
            "MQTT-3.3.2-2",
            "MQTT-4.7.1-1",
            "MQTT-4.7.3-1",
        ],
        ("topic", true) => &[
            "MQTT-3.3.2-1",
            "MQTT-3.3.2-2",
            "MQTT-4.7.0-1",
            "MQTT-4.7.3-1",
        ],
        ("packet_id", false) => match ty {
            T::PubAck | T::PubRec | T::PubRel | T::PubComp => &["MQTT-2.3.1-6"],
            T::SubAck | T::UnsubAck => &["MQTT-2.3.1-7"],
            _ => &["MQTT-2.3.1-1"],
        },
        ("packet_id", true) => match ty {
            T::PubAck | T::PubRec | T::PubRel | T::PubComp => &["MQTT-2.2.1-5"],
            T::SubAck | T::UnsubAck => &["MQTT-2.2.1-6"],
            _ if from == Sender::Server => &["MQTT-2.2.1-4"],
            _ => &["MQTT-2.2.1-3"],
        },
        ("property_length", true) => &["MQTT-2.2.2-1"],
        ("topic_alias", true) => &["MQTT-3.3.2-8"],
        ("response_topic", true) => &["MQTT-3.3.2-13", "MQTT-3.3.2-14"],
        ("content_type", true) => &["MQTT-3.3.2-19"],
        ("subscription_identifier", true) if ty == T::Publish => &["MQTT-3.3.4-6"],
        ("session_expiry_interval", true) if ty == T::Disconnect => &["MQTT-3.14.2-2"],
        ("user_property.name" | "user_property.value", true) => &["MQTT-1.5.7-1"],
        ("topic_filter", false) => match ty {
            T::Unsubscribe => &["MQTT-3.10.3-1", "MQTT-4.7.3-1"],
            _ => &[
                "MQTT-3.8.3-1",
                "MQTT-4.7.1-2",
                "MQTT-4.7.1-3",
                "MQTT-4.7.3-1",
            ],
        },
        ("topic_filter", true) => match ty {
            T::Unsubscribe => &["MQTT-3.10.3-1", "MQTT-4.7.3-1"],
            _ => &[
                "MQTT-3.8.3-1",
                "MQTT-4.7.1-1",
                "MQTT-4.7.1-2",
                "MQTT-4.7.3-1",
                "MQTT-4.8.2-1",
                "MQTT-4.8.2-2",
            ],
        },
        ("subscription_options", false) => &["MQTT-3.8.3-4"],
        ("subscription_options", true) => &["MQTT-3.8.3-4", "MQTT-3.8.3-5"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::catalogue;
    use mqtt_codec::props::PROPERTIES;

    const FIELDS: &[&str] = &[
        "fixed_header",
        "remaining_length",
        "protocol_name",
        "protocol_level",
        "connect_flags",
        "keep_alive",
        "client_id",
        "will_topic",
        "will_payload",
        "username",
        "password",
        "acknowledge_flags",
        "reason_code",
        "topic",
        "packet_id",
        "payload",
        "property_length",
        "property_id",
        "user_property.name",
        "user_property.value",
        "topic_filter",
        "subscription_options",
    ];

    /// Every id the map can print names a statement of its version's catalogue.
    #[test]
    fn every_id_is_in_the_catalogue() {
        let props = PROPERTIES.iter().map(|p| p.name);
        for field in FIELDS.iter().copied().chain(props) {
            for ty in PacketType::ALL {
                for protocol in [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5] {
                    for from in [Sender::Client, Sender::Server] {
                        for id in statements(field, ty, protocol, from) {
                            assert!(
                                catalogue::lookup(protocol, id).is_some(),
                                "{field} in {ty} ({protocol}): {id} is not in the catalogue"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ids_differ_per_version() {
        let c = Sender::Client;
        assert_eq!(
            statements("username", PacketType::Connect, Protocol::V3_1_1, c),
            &["MQTT-3.1.2-19", "MQTT-3.1.3-11"]
        );
        assert_eq!(
            statements("username", PacketType::Connect, Protocol::V5, c),
            &["MQTT-3.1.2-17", "MQTT-3.1.3-12"]
        );
        assert!(
            statements("remaining_length", PacketType::Publish, Protocol::V3_1_1, c).is_empty()
        );
        assert_eq!(
            statements("remaining_length", PacketType::Publish, Protocol::V5, c),
            &["MQTT-1.5.5-1"]
        );
    }
}
