use super::*;
use mqtt_codec::{Property, QoS};
use serde_json::json;

fn one(yaml: &str) -> Described {
    let mut v = from_yaml(yaml, Protocol::V5).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn err(yaml: &str) -> Error {
    match from_yaml(yaml, Protocol::V5) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn publish_from_yaml() {
    let d = one("{type: PUBLISH, qos: 1, id: 7, topic: a/b, payload: hi, \
             properties: [{name: user_property, value: [k, v]}, {topic_alias: 3}]}");
    let Packet::Publish(p) = &d.packet else {
        panic!("{:?}", d.packet)
    };
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert_eq!(p.packet_id, 7);
    assert_eq!(&*p.topic, "a/b");
    assert_eq!(&p.payload[..], b"hi");
    assert_eq!(
        p.properties.0,
        vec![
            Property::UserProperty("k".into(), "v".into()),
            Property::TopicAlias(3)
        ]
    );
    assert!(d.overrides.is_empty());
}

#[test]
fn to_json_and_back() {
    let packets = from_yaml(
            r#"
- type: CONNECT
  client_id: c1
  keep_alive: 30
  will: {topic: w, payload: {hex: "00 ff"}, qos: 1, retain: true, properties: [{will_delay_interval: 5}]}
  username: u
  password: p
  properties: [{name: session_expiry_interval, value: 10}]
- {type: SUBSCRIBE, id: 2, filters: [a/#, {filter: b, qos: 2, no_local: true, retain_handling: 1}]}
- {type: SUBACK, id: 2, codes: [0, "Not authorized"]}
- {type: UNSUBSCRIBE, id: 3, filters: [a/#]}
- {type: UNSUBACK, id: 3, codes: [0x11]}
- {type: PUBREL, id: 4, reason: Packet Identifier not found}
- {type: DISCONNECT, reason_code: 0x04}
- {type: AUTH, reason_code: 0x18, properties: [{authentication_method: x}]}
- {type: CONNACK, session_present: true, properties: [{correlation_data: {hex: "01"}}]}
- {type: PINGREQ}
"#,
            Protocol::V5,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    for d in &packets {
        let j = packet_to_json(&d.packet, d.protocol);
        let (back, o) = packet_from_value(&j, d.protocol).unwrap_or_else(|e| panic!("{j}: {e}"));
        assert_eq!(back, d.packet, "{j}");
        assert!(o.is_empty());
    }
    let j = packet_to_json(&packets[2].packet, Protocol::V5);
    assert_eq!(
        j.to_string(),
        r#"{"type":"SUBACK","id":2,"properties":[],"codes":[0,135],"reasons":["Granted QoS 0","Not authorized"]}"#
    );
}

#[test]
fn overrides() {
    let d = one(
        r#"{type: PUBLISH, topic: a, flags: 0x6, remaining_length: "ff ff ff ff 7f",
                raw: {topic: "00 03 61 ff 62"}, append: "00", truncate: 3}"#,
    );
    assert_eq!(d.overrides.flags, Some(6));
    assert_eq!(
        d.overrides.remaining_length,
        Some(vec![0xff, 0xff, 0xff, 0xff, 0x7f])
    );
    assert_eq!(
        d.overrides.fields,
        vec![("topic".to_string(), vec![0, 3, 0x61, 0xff, 0x62])]
    );
    assert_eq!(d.overrides.append, vec![0]);
    assert_eq!(d.overrides.truncate, Some(3));
}

#[test]
fn errors_name_the_key_and_its_place() {
    let e = err("type: PUBLISH\ntopic: a\ntopc: b\n");
    assert_eq!(e.location, Some((3, 1)), "{e}");
    assert!(
        e.message
            .contains("unknown field `topc` (did you mean `topic`?); a PUBLISH takes"),
        "{e}"
    );

    let e = err("type: PUBLISH\ntopic: a\nfilters: [a]\n");
    assert_eq!(e.location, Some((3, 1)), "{e}");
    assert!(
        e.message.contains("`filters` does not apply to PUBLISH"),
        "{e}"
    );

    let e = err("type: PUBLISH\ntopic: a\nqos: 3\n");
    assert_eq!(e.location, Some((3, 6)), "{e}");
    assert!(e.message.contains("flags: 0x6"), "{e}");

    let e = err("type: PUBLSH\n");
    assert!(
        e.message
            .contains("unknown packet type `PUBLSH` (did you mean `PUBLISH`?)"),
        "{e}"
    );

    let e = err("{type: PUBLISH, topic: a, properties: [{name: topic_alias, value: x}]}");
    assert!(e.location.is_some(), "{e}");

    let e = err("{topic: a, qos: 1}");
    assert!(e.message.contains("missing `type`"), "{e}");

    let e = err("{type: PUBLISH, qos: 1, topic: a}");
    assert!(e.message.contains("missing `id`"), "{e}");

    let e = err("{type: PUBLISH, topic: a, raw: {topc: \"00\"}}");
    assert!(e.message.contains("no field \"topc\""), "{e}");

    let e = from_yaml("{type: PUBACK, id: 1, reason_code: 0x10}", Protocol::V3_1_1)
        .err()
        .map(|e| e.message);
    assert!(
        e.as_deref()
            .is_some_and(|m| m.contains("exists only in MQTT 5.0")),
        "{e:?}"
    );
}

#[test]
fn json_errors_have_positions() {
    let e = from_json("{\"type\": \"PINGREQ\",\n \"x\": 1}", Protocol::V5).unwrap_err();
    assert!(e.message.contains("unknown field `x`"), "{e}");
    assert_eq!(e.location.map(|l| l.0), Some(2));
}

#[test]
fn binary_json_forms() {
    assert_eq!(binary_json(b"hi"), json!("hi"));
    assert_eq!(binary_json(b"a\x00"), json!({"hex": "61 00"}));
    assert_eq!(binary_json(&[0xff]), json!({"hex": "ff"}));
}

// ---------------------------------------------------------------------------
// The table, the printer and the reader agree
// ---------------------------------------------------------------------------

use arbitrary::Unstructured;
use mqtt_codec::{PacketType, Sender};
use std::collections::{BTreeMap, BTreeSet};
use vocab::{Field, Kind, Role};

/// Packets of every type each sender may send in `protocol`, from the
/// codec's generator fed with a fixed pseudo-random stream.
fn generated(protocol: Protocol) -> Vec<Packet> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::new();
    for _ in 0..150 {
        let bytes: Vec<u8> = (0..512)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        for ty in PacketType::ALL {
            for from in [Sender::Client, Sender::Server] {
                let mut u = Unstructured::new(&bytes);
                if let Ok(p) = mqtt_codec::gen::packet_of(&mut u, ty, protocol, from) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// The keys of a printed packet: `will.qos`, `filters.qos` for sub-fields.
fn printed_keys(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(m) = v.as_object() else {
        return out;
    };
    for (k, v) in m {
        out.push(k.clone());
        let subs: Vec<&Value> = match v {
            Value::Object(_) if k == "will" => vec![v],
            Value::Array(a) if k == "filters" => a.iter().collect(),
            _ => Vec::new(),
        };
        for s in subs.iter().filter_map(|s| s.as_object()) {
            out.extend(s.keys().map(|sk| format!("{k}.{sk}")));
        }
    }
    out
}

/// The keys the table says `decode --json` prints for `ty` in `protocol`.
fn table_keys(ty: PacketType, protocol: Protocol) -> BTreeSet<String> {
    let mut out = BTreeSet::from([vocab::TYPE.name.to_string()]);
    for f in vocab::fields(ty) {
        if f.role != Role::Field || !f.versions.contains(protocol) {
            continue;
        }
        out.insert(f.name.to_string());
        for s in f.sub.iter().filter(|s| s.versions.contains(protocol)) {
            out.insert(format!("{}.{}", f.name, s.name));
        }
    }
    out
}

#[test]
fn every_printed_key_is_in_the_table_and_every_field_is_printed() {
    for protocol in Protocol::ALL {
        let mut printed: BTreeMap<PacketType, BTreeSet<String>> = BTreeMap::new();
        for p in generated(protocol) {
            let ty = p.packet_type();
            let j = packet_to_json(&p, protocol);
            let table = table_keys(ty, protocol);
            for k in printed_keys(&j) {
                assert!(
                    table.contains(&k),
                    "{ty} in {protocol}: `{k}` is printed but not in the table ({j})"
                );
                printed.entry(ty).or_default().insert(k);
            }
            // What is printed reads back as the same packet. (The codec reads
            // bit 0 of a 3.1 CONNACK as Session Present; in 3.1 it is a
            // reserved bit, which the table does not describe.)
            let (back, o) = packet_from_value(&j, protocol).unwrap_or_else(|e| panic!("{j}: {e}"));
            let mut p = p;
            if let (Packet::ConnAck(c), Protocol::V3_1) = (&mut p, protocol) {
                c.session_present = false;
            }
            assert_eq!(back, p, "{j}");
            assert!(o.is_empty());
        }
        for (ty, keys) in &printed {
            let missing: Vec<String> = table_keys(*ty, protocol)
                .difference(keys)
                .cloned()
                .collect();
            assert!(
                missing.is_empty(),
                "{ty} in {protocol}: the table has {missing:?}, never printed"
            );
        }
    }
}

/// The smallest description of a `ty` packet.
fn base(ty: PacketType) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(ty.name()));
    let extra = match ty {
        PacketType::Connect => json!({"client_id": "c"}),
        PacketType::Publish => json!({"topic": "t", "qos": 1, "id": 1}),
        PacketType::Subscribe | PacketType::Unsubscribe => json!({"id": 1, "filters": ["a"]}),
        PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::SubAck
        | PacketType::UnsubAck => json!({"id": 1}),
        _ => json!({}),
    };
    if let Value::Object(e) = extra {
        m.extend(e);
    }
    m
}

/// Values of a field's kind that differ from its default (one of them does).
fn samples(f: &Field, ty: PacketType, protocol: Protocol) -> Vec<Value> {
    let code = if ty == PacketType::ConnAck && !protocol.is_v5() {
        1
    } else {
        0x80
    };
    let name = reason_name(code, ty, protocol);
    match f.kind {
        Kind::Protocol => vec![json!(if protocol.is_v5() { "3.1.1" } else { "5.0" })],
        Kind::Bool => vec![json!(true), json!(false)],
        Kind::U16 => vec![json!(7)],
        Kind::Qos => vec![json!(2)],
        Kind::Text => vec![json!("s")],
        Kind::Binary => vec![json!("b")],
        Kind::ReasonCode => vec![json!(code)],
        Kind::ReasonName => vec![json!(name)],
        Kind::ReasonCodes => vec![json!([code])],
        Kind::ReasonNames => vec![json!([name])],
        Kind::Properties => vec![json!([{"user_property": ["k", "v"]}])],
        Kind::Will => vec![json!({"topic": "w"})],
        Kind::Subscriptions | Kind::TopicFilters => vec![json!(["b"])],
        Kind::RetainHandling => vec![json!(2)],
        Kind::Byte => vec![json!(0xFF)],
        Kind::Nibble => vec![json!(0xF)],
        Kind::RemainingLength => vec![json!(5)],
        Kind::RawFields => vec![json!({"packet_id": "00 05"})],
        Kind::Hex => vec![json!("00")],
        Kind::Count => vec![json!(1)],
        Kind::Type | Kind::PropertyNames => Vec::new(),
    }
}

fn read(m: &Map<String, Value>, protocol: Protocol) -> Result<(Packet, Overrides), Error> {
    packet_from_value(&Value::Object(m.clone()), protocol)
}

/// Every key the table lets a send set is read, by each of its names, and
/// changes the packet, in the versions it exists in; in the others it is
/// refused as such. (The reader knows no key that is not in the table: it
/// looks every key up there.)
#[test]
fn the_reader_reads_every_key_of_the_table() {
    for ty in PacketType::ALL {
        for protocol in vocab::type_versions(ty).protocols() {
            let b = base(ty);
            let plain = read(&b, protocol).unwrap_or_else(|e| panic!("{ty} {protocol}: {e}"));
            for f in vocab::fields(ty).iter().chain(vocab::FAULTS) {
                if !f.send || (f.kind == Kind::RawFields && b.get("id").is_none()) {
                    continue;
                }
                for key in std::iter::once(&f.name).chain(f.aliases) {
                    let results: Vec<_> = samples(f, ty, protocol)
                        .into_iter()
                        .map(|v| {
                            let mut m = b.clone();
                            m.insert((*key).to_string(), v);
                            read(&m, protocol)
                        })
                        .collect();
                    let what = format!("{ty}.{key} in {protocol}");
                    if f.versions.contains(protocol) {
                        let changed = results.iter().any(|r| match r {
                            Ok(r) => *r != plain,
                            Err(e) => panic!("{what}: {e}"),
                        });
                        assert!(changed, "{what}: no sample changes the packet");
                    } else {
                        for r in results {
                            let e = r.err().map(|e| e.message);
                            assert!(
                                e.as_deref()
                                    .is_some_and(|m| m.contains("exists only in MQTT")),
                                "{what}: {e:?}"
                            );
                        }
                    }
                }
                if !f.sub.is_empty() && f.versions.contains(protocol) {
                    check_sub_fields(f, ty, protocol, &b);
                }
            }
        }
    }
}

/// The keys of `will` and of a subscription, as for the top level.
fn check_sub_fields(f: &Field, ty: PacketType, protocol: Protocol, b: &Map<String, Value>) {
    let (required, sample) = if f.kind == Kind::Will {
        ("topic", json!("w"))
    } else {
        ("filter", json!("a"))
    };
    let with = |inner: Map<String, Value>| {
        let mut m = b.clone();
        let v = Value::Object(inner);
        m.insert(
            f.name.into(),
            if f.kind == Kind::Will { v } else { json!([v]) },
        );
        read(&m, protocol)
    };
    let mut least = Map::new();
    least.insert(required.into(), sample.clone());
    let plain = with(least.clone()).unwrap_or_else(|e| panic!("{ty}.{}: {e}", f.name));
    for s in f.sub.iter().filter(|s| s.name != required) {
        let what = format!("{ty}.{}.{} in {protocol}", f.name, s.name);
        let results: Vec<_> = samples(s, ty, protocol)
            .into_iter()
            .map(|v| {
                let mut inner = least.clone();
                inner.insert(s.name.into(), v);
                with(inner)
            })
            .collect();
        if s.versions.contains(protocol) {
            let changed = results.iter().any(|r| match r {
                Ok(r) => *r != plain,
                Err(e) => panic!("{what}: {e}"),
            });
            assert!(changed, "{what}: no sample changes the packet");
        } else {
            for r in results {
                let e = r.err().map(|e| e.message);
                assert!(
                    e.as_deref()
                        .is_some_and(|m| m.contains("exists only in MQTT")),
                    "{what}: {e:?}"
                );
            }
        }
    }
}
