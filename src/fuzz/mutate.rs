//! Mutations of an [`Input`]: at the level of fields (through the codec's
//! types and its deliberate faults, [`mqtt_codec::Overrides`]), of packets
//! (drop, duplicate, reorder, move to another client, splice from another
//! seed, reconnect, takeover, will, session expiry, keep alive) and of bytes.
//! [`generate`] makes input number `index` of a run from the seeds alone, so
//! that the same seed gives the same inputs whatever the target answers.

use bytes::Bytes;
use mqtt_codec::{ByteString, Packet, Property, Protocol, QoS};
use serde_json::{json, Map, Value};

use super::input::{Client, Input, Op, Rng, MAX_CLIENTS, MAX_OPS, TOKEN};

/// Topics and filters the fuzzer tries: under the execution's own root,
/// close to each other (prefixes, wildcards, a `$` topic), so that
/// subscriptions and publications meet.
fn topics() -> Vec<String> {
    let r = format!("fz/{TOKEN}");
    vec![
        r.clone(),
        format!("{r}/a"),
        format!("{r}/a/b"),
        format!("{r}/ab"),
        format!("{r}a"),
        format!("{r}/A"),
        format!("{r}/+"),
        format!("{r}/#"),
        format!("{r}/+/b"),
        format!("{r}/a/#"),
        format!("$share/g/{r}/a"),
        format!("$SYS/{r}"),
        format!("{r}//a"),
        format!("{r}/a+"),
        format!("{r}/\u{0}"),
        format!("{r}/é"),
        String::new(),
    ]
}

/// Strings no well-formed packet carries, for `raw` field faults.
const BAD_STRINGS: &[&[u8]] = &[
    b"\xff",         // not UTF-8
    b"\xc0\x80",     // an over-long encoding of U+0000
    b"\x00",         // U+0000
    b"\xed\xa0\x80", // a surrogate, U+D800
    b"\xef\xbf\xbf", // the non-character U+FFFF
    b"a/+",          // wildcards
    b"#",
    b"+",
];

/// Input number `index` of a run with `seed`: a seed input with a few
/// stacked mutations.
pub fn generate(seed: u64, index: u64, seeds: &[Input]) -> Option<Input> {
    let mut rng = Rng::new(seed, index);
    let mut input = rng.pick(seeds)?.clone();
    // Every seventh input is a seed as it is: the library's exchanges as
    // written are worth running too.
    if index.is_multiple_of(7) {
        return Some(input);
    }
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate(&mut rng, &mut input, seeds);
    }
    input.ops.truncate(MAX_OPS);
    Some(input)
}

/// One mutation, chosen at random.
pub fn mutate(rng: &mut Rng, input: &mut Input, seeds: &[Input]) {
    match rng.below(10) {
        0..=3 => field(rng, input),
        4..=6 => packet_level(rng, input, seeds),
        7 => client_level(rng, input),
        8 => fault(rng, input),
        _ => byte_level(rng, input),
    }
}

fn pick_send(rng: &mut Rng, input: &mut Input) -> Option<usize> {
    let sends: Vec<usize> = (0..input.ops.len())
        .filter(|i| matches!(input.ops.get(*i), Some(Op::Send { .. })))
        .collect();
    rng.pick(&sends).copied()
}

/// Changes one field of a packet, valid or not.
fn field(rng: &mut Rng, input: &mut Input) {
    let v5 = input.protocol.is_v5();
    let Some(i) = pick_send(rng, input) else {
        return;
    };
    let pool = topics();
    let ids = [0u16, 1, 2, 7, 65535];
    let Some(Op::Send { packet, .. }) = input.ops.get_mut(i) else {
        return;
    };
    match packet {
        Packet::Publish(p) => match rng.below(8) {
            0 => {
                p.qos = *rng
                    .pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
                    .unwrap_or(&QoS::AtLeastOnce)
            }
            1 => p.retain = !p.retain,
            2 => p.dup = !p.dup,
            3 => p.packet_id = *rng.pick(&ids).unwrap_or(&1),
            4 => p.topic = ByteString::from(rng.pick(&pool).cloned().unwrap_or_default()),
            5 => {
                p.payload = match rng.below(4) {
                    0 => Bytes::new(),
                    1 => Bytes::from(vec![0xffu8; 3]),
                    2 => Bytes::from(vec![b'x'; 1 + rng.below(20_000)]),
                    _ => Bytes::from_static(b"fuzz"),
                }
            }
            _ if v5 => property(rng, &mut p.properties.0, PUBLISH_PROPS),
            _ => p.qos = QoS::AtLeastOnce,
        },
        Packet::Subscribe(s) => match rng.below(5) {
            0 => s.packet_id = *rng.pick(&ids).unwrap_or(&1),
            1 | 2 => {
                if let Some(f) = s.filters.first_mut() {
                    f.filter = ByteString::from(rng.pick(&pool).cloned().unwrap_or_default());
                    f.options.qos = *rng
                        .pick(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
                        .unwrap_or(&QoS::AtLeastOnce);
                }
            }
            3 => {
                if let Some(f) = s.filters.first().cloned() {
                    let mut g = f;
                    g.filter = ByteString::from(rng.pick(&pool).cloned().unwrap_or_default());
                    if v5 {
                        g.options.no_local = rng.chance(2);
                        g.options.retain_as_published = rng.chance(2);
                        g.options.retain_handling = rng.below(3) as u8;
                    }
                    s.filters.push(g);
                }
            }
            _ if v5 => property(rng, &mut s.properties.0, &[0x0B, 0x26]),
            _ => s.filters.truncate(1),
        },
        Packet::Unsubscribe(u) => match rng.below(2) {
            0 => u.packet_id = *rng.pick(&ids).unwrap_or(&1),
            _ => {
                if let Some(f) = u.filters.first_mut() {
                    *f = ByteString::from(rng.pick(&pool).cloned().unwrap_or_default());
                }
            }
        },
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            match rng.below(3) {
                0 => r.packet_id = *rng.pick(&ids).unwrap_or(&1),
                1 if v5 => r.reason_code = *rng.pick(&[0u8, 0x10, 0x80, 0x92, 0xff]).unwrap_or(&0),
                _ if v5 => property(rng, &mut r.properties.0, &[0x1F, 0x26]),
                _ => r.packet_id = 1,
            }
        }
        Packet::Disconnect(d) if v5 => match rng.below(2) {
            0 => d.reason_code = *rng.pick(&[0u8, 4, 0x80, 0x8E, 0xff]).unwrap_or(&0),
            _ => property(rng, &mut d.properties.0, &[0x11, 0x1F, 0x26]),
        },
        _ => {}
    }
}

const PUBLISH_PROPS: &[u8] = &[0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26];

/// Adds a property of `ids` (any value, in range or not), duplicates one or
/// removes one.
fn property(rng: &mut Rng, props: &mut Vec<Property>, ids: &[u8]) {
    match rng.below(4) {
        0 if !props.is_empty() => {
            let i = rng.below(props.len());
            props.remove(i);
        }
        1 if !props.is_empty() => {
            if let Some(p) = props.get(rng.below(props.len())).cloned() {
                props.push(p);
            }
        }
        _ => {
            let id = *rng.pick(ids).unwrap_or(&0x26);
            let n = *rng
                .pick(&[0u32, 1, 2, 60, 65535, 268_435_455, u32::MAX])
                .unwrap_or(&1);
            let s = ByteString::from(*rng.pick(&["", "x", "fz/t"]).unwrap_or(&"x"));
            let p = match id {
                0x01 => Property::PayloadFormatIndicator((n % 3) as u8),
                0x02 => Property::MessageExpiryInterval(n),
                0x03 => Property::ContentType(s),
                0x08 => Property::ResponseTopic(s),
                0x09 => Property::CorrelationData(Bytes::from_static(b"\x00\xff")),
                0x0B => Property::SubscriptionIdentifier(n),
                0x11 => Property::SessionExpiryInterval(n),
                0x1F => Property::ReasonString(s),
                0x23 => Property::TopicAlias((n % 65536) as u16),
                _ => Property::UserProperty(s.clone(), s),
            };
            props.push(p);
        }
    }
}

/// A deliberate fault of the encoding: flags, first byte, remaining length,
/// a field's bytes, appended or cut bytes.
fn fault(rng: &mut Rng, input: &mut Input) {
    let protocol = input.protocol;
    let Some(i) = pick_send(rng, input) else {
        return;
    };
    let Some(Op::Send {
        packet, overrides, ..
    }) = input.ops.get_mut(i)
    else {
        return;
    };
    let len = mqtt_codec::encoded_len(packet, protocol).unwrap_or(2);
    match rng.below(6) {
        0 => overrides.flags = Some(rng.below(16) as u8),
        1 => overrides.first_byte = Some(rng.below(256) as u8),
        2 => {
            let body = len.saturating_sub(2) as u32;
            overrides.remaining_length = Some(match rng.below(4) {
                // A non-minimal encoding of the right length.
                0 => vec![(body as u8) | 0x80, 0x00],
                1 => vec![0xff, 0xff, 0xff, 0x7f],
                2 => vec![((body + 1) & 0x7f) as u8],
                _ => vec![(body.saturating_sub(1) & 0x7f) as u8],
            });
        }
        3 => {
            let names: Vec<&str> = match packet {
                Packet::Publish(_) => vec!["topic", "packet_id", "properties"],
                Packet::Subscribe(_) => vec!["topic_filter", "packet_id", "properties"],
                Packet::Unsubscribe(_) => vec!["topic_filter", "packet_id"],
                Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                    vec!["packet_id"]
                }
                _ => vec![],
            };
            let Some(name) = rng.pick(&names) else {
                return;
            };
            let bytes = match *name {
                "packet_id" => vec![0, 0],
                "properties" => {
                    // A property identifier that does not exist, or a
                    // length that overruns.
                    if rng.chance(2) {
                        vec![0x02, 0x7f, 0x00]
                    } else {
                        vec![0x40]
                    }
                }
                _ => {
                    let s = rng.pick(BAD_STRINGS).copied().unwrap_or(b"\xff");
                    let mut v = format!("fz/{TOKEN}/").into_bytes();
                    v.extend_from_slice(s);
                    let mut out = (v.len() as u16).to_be_bytes().to_vec();
                    out.extend(v);
                    out
                }
            };
            overrides.fields.push((name.to_string(), bytes));
        }
        4 => overrides.append = vec![0u8; 1 + rng.below(4)],
        _ => overrides.truncate = Some(rng.below(len.max(1))),
    }
}

/// Drops, duplicates, swaps, moves or splices operations; adds a reconnect,
/// a drop or a DISCONNECT.
fn packet_level(rng: &mut Rng, input: &mut Input, seeds: &[Input]) {
    let n = input.ops.len();
    let clients = input.clients.len().max(1);
    match rng.below(7) {
        0 if n > 1 => {
            input.ops.remove(rng.below(n));
        }
        1 if n > 0 => {
            let i = rng.below(n);
            if let Some(op) = input.ops.get(i).cloned() {
                input.ops.insert(i, op);
            }
        }
        2 if n > 1 => input.ops.swap(rng.below(n), rng.below(n)),
        3 if n > 0 => {
            let to = rng.below(clients);
            if let Some(op) = input.ops.get_mut(rng.below(n)) {
                op.set_client(to);
            }
        }
        4 => {
            // Splice: operations of another seed of the same version, on
            // clients of this one.
            let same: Vec<&Input> = seeds
                .iter()
                .filter(|s| s.protocol == input.protocol)
                .collect();
            if let Some(other) = rng.pick(&same) {
                let at = rng.below(n + 1);
                let take: Vec<Op> = other.ops.iter().take(1 + rng.below(4)).cloned().collect();
                for (j, mut op) in take.into_iter().enumerate() {
                    op.set_client(op.client() % clients);
                    input.ops.insert((at + j).min(input.ops.len()), op);
                }
            }
        }
        5 => {
            let client = rng.below(clients);
            let op = match rng.below(3) {
                0 => Op::Drop { client },
                1 => Op::Disconnect { client },
                _ => {
                    let mut fields = Map::new();
                    fields.insert("clean_start".into(), Value::from(rng.chance(2)));
                    Op::Reconnect { client, fields }
                }
            };
            input.ops.insert(rng.below(n + 1), op);
        }
        _ => {
            // A PINGREQ somewhere: the broker must answer it whatever came before.
            let client = rng.below(clients);
            input.ops.insert(
                rng.below(n + 1),
                Op::Send {
                    client,
                    packet: Packet::PingReq,
                    overrides: Default::default(),
                },
            );
        }
    }
}

/// Changes a client: a will, session expiry, keep alive, clean start, a
/// takeover of another client's id, one more client.
fn client_level(rng: &mut Rng, input: &mut Input) {
    let v5 = input.protocol.is_v5();
    let n = input.clients.len();
    if n < MAX_CLIENTS && rng.chance(4) {
        input.clients.push(Client {
            connect: true,
            fields: Map::new(),
            same_id_as: (rng.chance(3) && n > 0).then(|| rng.below(n)),
        });
        return;
    }
    let k = rng.below(n);
    let Some(c) = input.clients.get_mut(k) else {
        return;
    };
    if !c.connect {
        return;
    }
    let f = &mut c.fields;
    match rng.below(5) {
        0 => {
            let mut will = json!({"topic": format!("fz/{TOKEN}/a"), "payload": "will", "qos": rng.below(3), "retain": rng.chance(3)});
            if v5 && rng.chance(2) {
                will["properties"] =
                    json!([{"name": "will_delay_interval", "value": rng.below(3)}]);
            }
            f.insert("will".into(), will);
        }
        1 if v5 => {
            let v = *rng.pick(&[0u32, 1, 60, u32::MAX]).unwrap_or(&60);
            f.insert(
                "properties".into(),
                json!([{"name": "session_expiry_interval", "value": v}]),
            );
        }
        2 => {
            f.insert(
                "keep_alive".into(),
                Value::from(*rng.pick(&[0u16, 1, 60, 65535]).unwrap_or(&60)),
            );
        }
        3 => {
            f.insert("clean_start".into(), Value::from(rng.chance(2)));
        }
        _ if k > 0 => c.same_id_as = Some(rng.below(k)),
        _ => {}
    }
}

/// Turns a packet into bytes and changes some of them.
fn byte_level(rng: &mut Rng, input: &mut Input) {
    let protocol: Protocol = input.protocol;
    let n = input.ops.len();
    let i = rng.below(n);
    let Some(op) = input.ops.get(i) else {
        return;
    };
    let Some(mut bytes) = op.bytes(protocol) else {
        return;
    };
    let client = op.client();
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len();
        match rng.below(4) {
            0 if len > 0 => {
                let j = rng.below(len);
                if let Some(b) = bytes.get_mut(j) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 if len > 0 => {
                let j = rng.below(len);
                if let Some(b) = bytes.get_mut(j) {
                    *b = *rng.pick(&[0u8, 0x7f, 0x80, 0xff]).unwrap_or(&0);
                }
            }
            2 => bytes.insert(rng.below(len + 1), rng.below(256) as u8),
            _ if len > 1 => {
                bytes.remove(rng.below(len));
            }
            _ => {}
        }
    }
    if let Some(slot) = input.ops.get_mut(i) {
        *slot = Op::Raw { client, bytes };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs_and_another_seed_others() {
        let scenarios = crate::library::load().expect("the library loads");
        let seeds: Vec<Input> = super::super::input::seeds(&scenarios)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        let run =
            |seed| -> Vec<Input> { (0..200).filter_map(|i| generate(seed, i, &seeds)).collect() };
        let a = run(7);
        assert_eq!(a.len(), 200);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        // Mutations change inputs: most are not their seed.
        let changed = a.iter().filter(|i| !seeds.contains(i)).count();
        assert!(changed > 100, "{changed} of 200 changed");
    }
}
