//! Packet → JSON: what `decode --json` prints and expects match.

use mqtt_codec::reason;
use mqtt_codec::{Auth, Disconnect, Packet, PacketType, Properties, Property, Protocol, QoS};
use serde_json::{json, Map, Value};

use crate::hex;

/// The JSON description of `packet` as sent in `protocol` (a CONNECT is
/// described in its own version). Keys come in wire order, `type` first.
pub fn packet_to_json(packet: &Packet, protocol: Protocol) -> Value {
    let ty = packet.packet_type();
    let v5 = match packet {
        Packet::Connect(c) => c.protocol.is_v5(),
        _ => protocol.is_v5(),
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(ty.name()));
    let props = |m: &mut Map<String, Value>, p: &Properties| {
        if v5 {
            m.insert("properties".into(), properties_json(p));
        }
    };
    let reason = |m: &mut Map<String, Value>, code: u8| {
        m.insert("reason_code".into(), json!(code));
        m.insert("reason".into(), json!(reason_name(code, ty, protocol)));
    };
    match packet {
        Packet::Connect(c) => {
            m.insert("protocol".into(), json!(c.protocol.as_str()));
            m.insert("clean_start".into(), json!(c.clean_start));
            m.insert("keep_alive".into(), json!(c.keep_alive));
            props(&mut m, &c.properties);
            m.insert("client_id".into(), json!(&*c.client_id));
            if let Some(w) = &c.will {
                let mut will = Map::new();
                will.insert("qos".into(), json!(w.qos.as_u8()));
                will.insert("retain".into(), json!(w.retain));
                props(&mut will, &w.properties);
                will.insert("topic".into(), json!(&*w.topic));
                will.insert("payload".into(), binary_json(&w.payload));
                m.insert("will".into(), Value::Object(will));
            }
            if let Some(u) = &c.username {
                m.insert("username".into(), json!(&**u));
            }
            if let Some(p) = &c.password {
                m.insert("password".into(), binary_json(p));
            }
        }
        Packet::ConnAck(c) => {
            m.insert("session_present".into(), json!(c.session_present));
            reason(&mut m, c.code);
            props(&mut m, &c.properties);
        }
        Packet::Publish(p) => {
            m.insert("dup".into(), json!(p.dup));
            m.insert("qos".into(), json!(p.qos.as_u8()));
            m.insert("retain".into(), json!(p.retain));
            m.insert("topic".into(), json!(&*p.topic));
            if p.qos != QoS::AtMostOnce {
                m.insert("id".into(), json!(p.packet_id));
            }
            props(&mut m, &p.properties);
            m.insert("payload".into(), binary_json(&p.payload));
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            m.insert("id".into(), json!(r.packet_id));
            if v5 {
                reason(&mut m, r.reason_code);
            }
            props(&mut m, &r.properties);
        }
        Packet::Subscribe(s) => {
            m.insert("id".into(), json!(s.packet_id));
            props(&mut m, &s.properties);
            let filters: Vec<Value> = s
                .filters
                .iter()
                .map(|f| {
                    let mut o = Map::new();
                    o.insert("filter".into(), json!(&*f.filter));
                    o.insert("qos".into(), json!(f.options.qos.as_u8()));
                    if v5 {
                        o.insert("no_local".into(), json!(f.options.no_local));
                        o.insert(
                            "retain_as_published".into(),
                            json!(f.options.retain_as_published),
                        );
                        o.insert("retain_handling".into(), json!(f.options.retain_handling));
                    }
                    Value::Object(o)
                })
                .collect();
            m.insert("filters".into(), Value::Array(filters));
        }
        Packet::SubAck(s) => {
            m.insert("id".into(), json!(s.packet_id));
            props(&mut m, &s.properties);
            codes_json(&mut m, &s.reason_codes, ty, protocol);
        }
        Packet::Unsubscribe(u) => {
            m.insert("id".into(), json!(u.packet_id));
            props(&mut m, &u.properties);
            let filters: Vec<Value> = u.filters.iter().map(|f| json!(&**f)).collect();
            m.insert("filters".into(), Value::Array(filters));
        }
        Packet::UnsubAck(u) => {
            m.insert("id".into(), json!(u.packet_id));
            if v5 {
                props(&mut m, &u.properties);
                codes_json(&mut m, &u.reason_codes, ty, protocol);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(Disconnect {
            reason_code,
            properties,
        })
        | Packet::Auth(Auth {
            reason_code,
            properties,
        }) => {
            if v5 {
                reason(&mut m, *reason_code);
                props(&mut m, properties);
            }
        }
    }
    Value::Object(m)
}

pub(crate) fn codes_json(
    m: &mut Map<String, Value>,
    codes: &[u8],
    ty: PacketType,
    protocol: Protocol,
) {
    m.insert("codes".into(), json!(codes));
    let names: Vec<&str> = codes
        .iter()
        .map(|&c| reason_name(c, ty, protocol))
        .collect();
    m.insert("reasons".into(), json!(names));
}

/// The spec's name of a reason code (5.0) or return code (3.1, 3.1.1) in `ty`.
pub fn reason_name(code: u8, ty: PacketType, protocol: Protocol) -> &'static str {
    if protocol.is_v5() {
        return reason::name(code, ty);
    }
    match (ty, code) {
        (PacketType::ConnAck, _) => reason::v3_connack_name(code),
        (PacketType::SubAck, 0) => "Granted QoS 0",
        (PacketType::SubAck, 1) => "Granted QoS 1",
        (PacketType::SubAck, 2) => "Granted QoS 2",
        (PacketType::SubAck, 0x80) => "Failure",
        (PacketType::SubAck, _) => "reserved return code",
        _ => reason::name(code, ty),
    }
}

/// Printable UTF-8 (tabs and line breaks allowed) as a string, anything else as `{"hex": …}`.
pub fn binary_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if s.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')) =>
        {
            json!(s)
        }
        _ => json!({ "hex": hex::spaced(bytes) }),
    }
}

/// `[{"name": …, "value": …}, …]` in the order they came.
pub fn properties_json(props: &Properties) -> Value {
    Value::Array(
        props
            .iter()
            .map(|p| json!({ "name": p.name(), "value": property_value_json(p) }))
            .collect(),
    )
}

pub(crate) fn property_value_json(p: &Property) -> Value {
    use mqtt_codec::props::Value as V;
    match p.value() {
        V::Byte(v) => json!(v),
        V::TwoByte(v) => json!(v),
        V::FourByte(v) | V::Varint(v) => json!(v),
        V::Binary(b) => binary_json(b),
        V::Utf8(s) => json!(&**s),
        V::Utf8Pair(k, v) => json!([&**k, &**v]),
    }
}
