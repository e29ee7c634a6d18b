//! Matching a received packet against an expect step: the listed fields must
//! match (others are ignored), numbers by value, `$name` captures (made the
//! first time, compared after), `{not: X}`, payloads and binary properties
//! as bytes, properties as a set, and `no_properties`.
//!
//! Pure functions over the packet's field description (the one vocabulary
//! of [`crate::packet`]); a mismatch says which field differed and how.

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use mqtt_codec::{Packet, PacketType, Protocol};
use serde_json::{Map, Value};

use crate::scenario::{is_capture, Matcher, NO_PROPERTIES};
use crate::{hex, packet};

/// Captured values, by name (without the `$`).
pub type Captures = HashMap<String, Value>;

/// Why a packet does not match.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// Another packet type came.
    Type { got: PacketType, want: PacketType },
    /// The packet has no such field.
    Missing { field: String },
    /// The field has another value.
    Differs {
        field: String,
        got: Value,
        want: String,
    },
    /// A property that must be absent is there.
    Forbidden { property: Value },
    /// The packet is larger than `max_size` allows.
    TooLarge { size: usize, max: u64 },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Type { got, want } => write!(f, "a {got} where a {want} was expected"),
            Mismatch::Missing { field } => write!(f, "it has no `{field}`"),
            Mismatch::Differs { field, got, want } => write!(f, "`{field}` is {got}, not {want}"),
            Mismatch::Forbidden { property } => {
                write!(f, "it carries {property}, which it must not")
            }
            Mismatch::TooLarge { size, max } => {
                write!(f, "it is {size} bytes long, more than {max}")
            }
        }
    }
}

/// Whether `p` (received under `protocol`) matches `m`, whose values have
/// their placeholders filled already. Captures made are added to `caps`
/// only on a match.
pub fn match_packet(
    p: &Packet,
    m: &Matcher,
    want_fields: &Map<String, Value>,
    protocol: Protocol,
    caps: &mut Captures,
) -> Result<(), Mismatch> {
    if p.packet_type() != m.ty {
        return Err(Mismatch::Type {
            got: p.packet_type(),
            want: m.ty,
        });
    }
    let Value::Object(actual) = packet::packet_to_json(p, protocol) else {
        return Err(Mismatch::Missing {
            field: "fields".into(),
        });
    };
    let mut trial = caps.clone();
    for (key, want) in want_fields {
        if key == NO_PROPERTIES {
            absent_properties(&actual, want)?;
            continue;
        }
        if key == packet::vocab::MAX_SIZE {
            let max = want.as_u64().unwrap_or(0);
            // The decoded packet encodes to the bytes it came in.
            let size = mqtt_codec::encoded_len(p, protocol).unwrap_or(usize::MAX);
            if u64::try_from(size).map_or(true, |s| s > max) {
                return Err(Mismatch::TooLarge { size, max });
            }
            continue;
        }
        field_matches(&actual, m.ty, key, want, &mut trial)?;
    }
    *caps = trial;
    Ok(())
}

/// `no_properties: [names]`: none of them is among the packet's properties.
fn absent_properties(actual: &Map<String, Value>, names: &Value) -> Result<(), Mismatch> {
    let present = actual.get("properties").and_then(Value::as_array);
    for name in names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let found = present
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name));
        if let Some(p) = found {
            return Err(Mismatch::Forbidden {
                property: p.clone(),
            });
        }
    }
    Ok(())
}

fn field_matches(
    actual: &Map<String, Value>,
    ty: PacketType,
    key: &str,
    want: &Value,
    caps: &mut Captures,
) -> Result<(), Mismatch> {
    // `code` is `reason_code`, as the one field table spells it.
    let canonical = crate::packet::vocab::canonical(ty, key).unwrap_or(key);
    let Some(got) = actual.get(canonical) else {
        // 3.x acks carry no reason code: 0 is what they mean.
        if canonical == "reason_code" && want.as_u64() == Some(0) {
            return Ok(());
        }
        return Err(Mismatch::Missing { field: key.into() });
    };
    let ok = if canonical == "reason_code" && want.is_string() && !is_capture_value(want) {
        // A reason code given by its name.
        let name = actual.get("reason").and_then(Value::as_str).unwrap_or("");
        want.as_str().is_some_and(|w| w.eq_ignore_ascii_case(name))
    } else if canonical == "properties" {
        match_properties(want, got, caps)
    } else if canonical == "payload" {
        match_binary(want, got, caps)
    } else {
        match_value(want, got, caps)
    };
    if ok {
        Ok(())
    } else {
        Err(Mismatch::Differs {
            field: key.into(),
            got: got.clone(),
            want: show_want(want, caps),
        })
    }
}

fn is_capture_value(v: &Value) -> bool {
    v.as_str().is_some_and(is_capture)
}

/// `v` with each capture already made replaced by its value (to show what
/// an expect step waits for).
pub fn with_captures(v: &Value, caps: &Captures) -> Value {
    match v {
        Value::String(s) if is_capture(s) => caps
            .get(s.trim_start_matches('$'))
            .cloned()
            .unwrap_or_else(|| v.clone()),
        Value::Array(a) => Value::Array(a.iter().map(|x| with_captures(x, caps)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), with_captures(x, caps)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn show_want(v: &Value, caps: &Captures) -> String {
    match v.as_str() {
        Some(s) if is_capture(s) => match caps.get(s.trim_start_matches('$')) {
            Some(c) => format!("{c} (captured as {s})"),
            None => s.to_string(),
        },
        _ => v.to_string(),
    }
}

/// `want` (from the scenario) against `got` (from the packet): listed keys of
/// objects, every element of arrays, numbers by value, `$x` captures.
pub fn match_value(want: &Value, got: &Value, caps: &mut Captures) -> bool {
    if let Some(inner) = negated(want) {
        // Captures made inside a `not` are not kept: it matched nothing.
        return !match_value(inner, got, &mut caps.clone());
    }
    match want {
        Value::String(s) if is_capture(s) => {
            let name = s.trim_start_matches('$');
            match caps.get(name) {
                Some(v) => v == got,
                None => {
                    caps.insert(name.to_string(), got.clone());
                    true
                }
            }
        }
        Value::Number(w) => match got {
            Value::Number(g) => w.as_f64() == g.as_f64(),
            _ => false,
        },
        Value::Array(w) => match got {
            Value::Array(g) => {
                w.len() == g.len() && w.iter().zip(g).all(|(a, b)| match_value(a, b, caps))
            }
            _ => false,
        },
        Value::Object(w) => match got {
            Value::Object(g) => w
                .iter()
                .all(|(k, v)| g.get(k).is_some_and(|x| match_value(v, x, caps))),
            _ => false,
        },
        other => other == got,
    }
}

/// `{not: X}`: anything that `X` does not match.
fn negated(want: &Value) -> Option<&Value> {
    match want {
        Value::Object(m) if m.len() == 1 => m.get("not"),
        _ => None,
    }
}

/// Payloads: a string is its UTF-8 bytes, `{hex: …}` its bytes.
pub fn match_binary(want: &Value, got: &Value, caps: &mut Captures) -> bool {
    if let Some(inner) = negated(want) {
        return !match_binary(inner, got, &mut caps.clone());
    }
    if is_capture_value(want) {
        return match_value(want, got, caps);
    }
    match (bytes_of(want), bytes_of(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn bytes_of(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        Value::Object(m) => {
            let h = m.get("hex")?.as_str()?;
            hex::parse(h).ok().map(Bytes::from)
        }
        _ => None,
    }
}

/// Each expected property (`[{name, value}]` or `{name: value}`) is among
/// those that came; others are ignored.
pub fn match_properties(want: &Value, got: &Value, caps: &mut Captures) -> bool {
    let Value::Array(got) = got else {
        return false;
    };
    let wanted: Vec<(String, Value)> = match want {
        // `[{name: n, value: v}]` or `[{n: v}]`, as sends write them too.
        Value::Array(a) => a
            .iter()
            .filter_map(|p| match (p.get("name"), p.get("value")) {
                (Some(n), Some(v)) => Some((n.as_str()?.to_string(), v.clone())),
                _ => {
                    let m = p.as_object().filter(|m| m.len() == 1)?;
                    m.iter().next().map(|(k, v)| (k.clone(), v.clone()))
                }
            })
            .collect(),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => return false,
    };
    wanted.iter().all(|(name, value)| {
        got.iter().any(|p| {
            p.get("name").and_then(Value::as_str) == Some(name.as_str())
                && p.get("value").is_some_and(|v| {
                    let mut trial = caps.clone();
                    let ok = match_property_value(value, v, &mut trial);
                    if ok {
                        *caps = trial;
                    }
                    ok
                })
        })
    })
}

/// A property's value: as a value, or (binary properties) as bytes. A
/// `{not: X}` negates the whole, not each reading of it.
fn match_property_value(want: &Value, got: &Value, caps: &mut Captures) -> bool {
    if let Some(inner) = negated(want) {
        return !match_property_value(inner, got, &mut caps.clone());
    }
    match_value(want, got, caps) || match_binary(want, got, caps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_in_either_form_are_matched() {
        let got = json!([{"name": "authentication_method", "value": "SCRAM-SHA-256"},
                         {"name": "authentication_data", "value": "r=abc"}]);
        let mut caps = HashMap::new();
        for want in [
            json!([{"name": "authentication_method", "value": "SCRAM-SHA-256"}]),
            json!([{"authentication_method": "SCRAM-SHA-256"}]),
            json!({"authentication_method": "SCRAM-SHA-256"}),
        ] {
            assert!(match_properties(&want, &got, &mut caps), "{want}");
        }
        // A short-form entry is checked, not skipped.
        assert!(!match_properties(
            &json!([{"authentication_method": "PLAIN"}]),
            &got,
            &mut caps
        ));
        assert!(match_properties(
            &json!([{"authentication_data": "$sf"}]),
            &got,
            &mut caps
        ));
        assert_eq!(caps.get("sf"), Some(&json!("r=abc")));
    }

    #[test]
    fn values_match_with_captures() {
        let mut caps = HashMap::new();
        assert!(match_value(&json!("$m"), &json!(7), &mut caps));
        assert!(match_value(&json!("$m"), &json!(7), &mut caps));
        assert!(!match_value(&json!("$m"), &json!(8), &mut caps));
        assert!(match_value(&json!([0, 1]), &json!([0, 1]), &mut caps));
        assert!(!match_value(&json!([0]), &json!([0, 1]), &mut caps));
        assert!(match_value(
            &json!({"a": 1}),
            &json!({"a": 1, "b": 2}),
            &mut caps
        ));
    }

    #[test]
    fn payloads_and_properties() {
        let mut caps = HashMap::new();
        assert!(match_binary(
            &json!("hi"),
            &json!({"hex": "68 69"}),
            &mut caps
        ));
        assert!(match_binary(
            &json!({"hex": "6869"}),
            &json!("hi"),
            &mut caps
        ));
        let got = json!([{"name": "topic_alias", "value": 3}, {"name": "user_property", "value": ["k", "v"]}]);
        assert!(match_properties(
            &json!({"topic_alias": 3}),
            &got,
            &mut caps
        ));
        assert!(match_properties(
            &json!([{"name": "user_property", "value": ["k", "v"]}]),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"topic_alias": 4}),
            &got,
            &mut caps
        ));
        // `{not: X}`: present, with another value.
        assert!(match_properties(
            &json!({"topic_alias": {"not": 4}}),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"topic_alias": {"not": 3}}),
            &got,
            &mut caps
        ));
        assert!(!match_properties(
            &json!({"message_expiry_interval": {"not": 3}}),
            &got,
            &mut caps
        ));
        let data = json!([{"name": "correlation_data", "value": {"hex": "00 ff"}}]);
        assert!(!match_properties(
            &json!({"correlation_data": {"not": {"hex": "00ff"}}}),
            &data,
            &mut caps
        ));
        assert!(match_properties(
            &json!({"correlation_data": {"not": {"hex": "00fe"}}}),
            &data,
            &mut caps
        ));
    }

    #[test]
    fn max_size_bounds_the_encoded_packet() {
        // e0 01 82: three bytes; with a Reason String "x", eight.
        let plain = Packet::Disconnect(mqtt_codec::Disconnect {
            reason_code: 0x82,
            properties: mqtt_codec::Properties::new(),
        });
        let explained = Packet::Disconnect(mqtt_codec::Disconnect {
            reason_code: 0x82,
            properties: mqtt_codec::Properties::new()
                .with(mqtt_codec::Property::ReasonString("x".into())),
        });
        let m = Matcher {
            ty: PacketType::Disconnect,
            fields: Map::new(),
        };
        let within = |max: u64| {
            let Value::Object(want) = json!({ "max_size": max }) else {
                unreachable!()
            };
            want
        };
        let mut caps = Captures::new();
        assert_eq!(
            match_packet(&plain, &m, &within(3), Protocol::V5, &mut caps),
            Ok(())
        );
        assert_eq!(
            match_packet(&explained, &m, &within(8), Protocol::V5, &mut caps),
            Ok(())
        );
        assert_eq!(
            match_packet(&explained, &m, &within(7), Protocol::V5, &mut caps),
            Err(Mismatch::TooLarge { size: 8, max: 7 })
        );
    }

    #[test]
    fn a_mismatch_names_the_field_and_keeps_no_partial_capture() {
        let p = Packet::PingResp;
        let m = Matcher {
            ty: PacketType::SubAck,
            fields: Map::new(),
        };
        let mut caps = Captures::new();
        assert_eq!(
            match_packet(&p, &m, &Map::new(), Protocol::V5, &mut caps),
            Err(Mismatch::Type {
                got: PacketType::PingResp,
                want: PacketType::SubAck
            })
        );
        let ack = Packet::PubAck(mqtt_codec::PubResponse::new(7));
        let m = Matcher {
            ty: PacketType::PubAck,
            fields: Map::new(),
        };
        let want = json!({"id": "$x", "reason_code": 0x10});
        let Value::Object(want) = want else {
            unreachable!()
        };
        let e = match_packet(&ack, &m, &want, Protocol::V5, &mut caps).unwrap_err();
        assert!(
            matches!(&e, Mismatch::Differs { field, .. } if field == "reason_code"),
            "{e}"
        );
        assert!(
            caps.is_empty(),
            "no capture from a packet that did not match"
        );
        // 3.1.1 acks have no reason code: 0 is what they mean.
        let want = json!({"id": "$x", "code": 0});
        let Value::Object(want) = want else {
            unreachable!()
        };
        assert_eq!(
            match_packet(&ack, &m, &want, Protocol::V3_1_1, &mut caps),
            Ok(())
        );
        assert_eq!(caps.get("x"), Some(&json!(7)));
    }
}
