//! Packet → JSON: what `decode --json` prints and `expect` steps match.

use mqtt_codec::reason;
use mqtt_codec::{Auth, Disconnect, Packet, PacketType, Properties, Property, Protocol, QoS};

use super::vocab;
use serde_json::{json, Map, Value};

use crate::hex;

/// The JSON description of `packet` as sent in `protocol` (a CONNECT is
/// described in its own version). Keys come in wire order, `type` first;
/// a field is printed in the versions the [`vocab`] table gives it.
pub fn packet_to_json(packet: &Packet, protocol: Protocol) -> Value {
    let ty = packet.packet_type();
    let protocol = match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    };
    let mut out = Out::new(vocab::fields(ty), protocol);
    out.m.insert(vocab::TYPE.name.into(), json!(ty.name()));
    let reason = |out: &mut Out, code: u8| {
        out.put("reason_code", json!(code));
        out.put("reason", json!(reason_name(code, ty, protocol)));
    };
    match packet {
        Packet::Connect(c) => {
            out.put("protocol", json!(c.protocol.as_str()));
            out.put("clean_start", json!(c.clean_start));
            out.put("keep_alive", json!(c.keep_alive));
            out.put("properties", properties_json(&c.properties));
            out.put("client_id", json!(&*c.client_id));
            if let Some(w) = &c.will {
                let mut will = out.sub("will");
                will.put("qos", json!(w.qos.as_u8()));
                will.put("retain", json!(w.retain));
                will.put("properties", properties_json(&w.properties));
                will.put("topic", json!(&*w.topic));
                will.put("payload", binary_json(&w.payload));
                out.put("will", Value::Object(will.m));
            }
            if let Some(u) = &c.username {
                out.put("username", json!(&**u));
            }
            if let Some(p) = &c.password {
                out.put("password", binary_json(p));
            }
        }
        Packet::ConnAck(c) => {
            out.put("session_present", json!(c.session_present));
            reason(&mut out, c.code);
            out.put("properties", properties_json(&c.properties));
        }
        Packet::Publish(p) => {
            out.put("dup", json!(p.dup));
            out.put("qos", json!(p.qos.as_u8()));
            out.put("retain", json!(p.retain));
            out.put("topic", json!(&*p.topic));
            if p.qos != QoS::AtMostOnce {
                out.put("id", json!(p.packet_id));
            }
            out.put("properties", properties_json(&p.properties));
            out.put("payload", binary_json(&p.payload));
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            out.put("id", json!(r.packet_id));
            reason(&mut out, r.reason_code);
            out.put("properties", properties_json(&r.properties));
        }
        Packet::Subscribe(s) => {
            out.put("id", json!(s.packet_id));
            out.put("properties", properties_json(&s.properties));
            let mut filters = Vec::with_capacity(s.filters.len());
            for f in &s.filters {
                let mut o = out.sub("filters");
                o.put("filter", json!(&*f.filter));
                o.put("qos", json!(f.options.qos.as_u8()));
                o.put("no_local", json!(f.options.no_local));
                o.put("retain_as_published", json!(f.options.retain_as_published));
                o.put("retain_handling", json!(f.options.retain_handling));
                filters.push(Value::Object(o.m));
            }
            out.put("filters", Value::Array(filters));
        }
        Packet::SubAck(s) => {
            out.put("id", json!(s.packet_id));
            out.put("properties", properties_json(&s.properties));
            codes_json(&mut out, &s.reason_codes, ty, protocol);
        }
        Packet::Unsubscribe(u) => {
            out.put("id", json!(u.packet_id));
            out.put("properties", properties_json(&u.properties));
            let filters: Vec<Value> = u.filters.iter().map(|f| json!(&**f)).collect();
            out.put("filters", Value::Array(filters));
        }
        Packet::UnsubAck(u) => {
            out.put("id", json!(u.packet_id));
            out.put("properties", properties_json(&u.properties));
            codes_json(&mut out, &u.reason_codes, ty, protocol);
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
            reason(&mut out, *reason_code);
            out.put("properties", properties_json(properties));
        }
    }
    Value::Object(out.m)
}

/// A JSON object being written against a table of fields.
struct Out {
    fields: &'static [vocab::Field],
    protocol: Protocol,
    m: Map<String, Value>,
}

impl Out {
    fn new(fields: &'static [vocab::Field], protocol: Protocol) -> Out {
        Out {
            fields,
            protocol,
            m: Map::new(),
        }
    }

    /// Writes `name` unless the table says the version has no such field. A
    /// name that is not in the table is written, so that the test holding the
    /// printer to the table sees it.
    fn put(&mut self, name: &'static str, value: Value) {
        let field = self.fields.iter().find(|f| f.name == name);
        if field.is_none_or(|f| f.versions.contains(self.protocol)) {
            self.m.insert(name.into(), value);
        }
    }

    /// An object for the sub-fields of `name` (`will`, each of `filters`).
    fn sub(&self, name: &str) -> Out {
        let sub = self
            .fields
            .iter()
            .find(|f| f.name == name)
            .map_or(&[][..], |f| f.sub);
        Out::new(sub, self.protocol)
    }
}

fn codes_json(out: &mut Out, codes: &[u8], ty: PacketType, protocol: Protocol) {
    out.put("codes", json!(codes));
    let names: Vec<&str> = codes
        .iter()
        .map(|&c| reason_name(c, ty, protocol))
        .collect();
    out.put("reasons", json!(names));
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
