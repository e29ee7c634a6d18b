//! Fields → Packet: the keys of a packet mapping, read and checked together.

use std::fmt;

use bytes::Bytes;
use mqtt_codec::{
    Auth, ByteString, ConnAck, Connect, Disconnect, Overrides, Packet, PacketType, Properties,
    Protocol, PubResponse, Publish, QoS, SubAck, Subscribe, Subscription, SubscriptionOptions,
    UnsubAck, Unsubscribe, Will,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::suggest;

use super::*;

/// Every key a packet mapping may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Type,
    Protocol,
    CleanStart,
    KeepAlive,
    ClientId,
    Will,
    Username,
    Password,
    SessionPresent,
    Dup,
    Qos,
    Retain,
    Topic,
    Id,
    Payload,
    ReasonCode,
    Reason,
    Filters,
    Codes,
    Reasons,
    Properties,
    FirstByte,
    Flags,
    RemainingLength,
    Raw,
    Append,
    Truncate,
}

/// Spellings, canonical first.
pub(crate) const KEY_NAMES: &[(&str, Key)] = &[
    ("type", Key::Type),
    ("protocol", Key::Protocol),
    ("clean_start", Key::CleanStart),
    ("keep_alive", Key::KeepAlive),
    ("client_id", Key::ClientId),
    ("will", Key::Will),
    ("username", Key::Username),
    ("password", Key::Password),
    ("session_present", Key::SessionPresent),
    ("dup", Key::Dup),
    ("qos", Key::Qos),
    ("retain", Key::Retain),
    ("topic", Key::Topic),
    ("id", Key::Id),
    ("payload", Key::Payload),
    ("reason_code", Key::ReasonCode),
    ("reason", Key::Reason),
    ("filters", Key::Filters),
    ("codes", Key::Codes),
    ("reasons", Key::Reasons),
    ("properties", Key::Properties),
    ("first_byte", Key::FirstByte),
    ("flags", Key::Flags),
    ("remaining_length", Key::RemainingLength),
    ("raw", Key::Raw),
    ("append", Key::Append),
    ("truncate", Key::Truncate),
    ("code", Key::ReasonCode),
    ("clean_session", Key::CleanStart),
];

/// Keys every packet takes: its type and the deliberate deviations.
pub(crate) const COMMON_KEYS: &[Key] = &[
    Key::Type,
    Key::FirstByte,
    Key::Flags,
    Key::RemainingLength,
    Key::Raw,
    Key::Append,
    Key::Truncate,
];

impl Key {
    fn name(self) -> &'static str {
        KEY_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    fn from_name(name: &str) -> Option<Key> {
        KEY_NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The fields of a packet type, in wire order.
    fn of_type(ty: PacketType) -> &'static [Key] {
        use Key::*;
        match ty {
            PacketType::Connect => &[
                Protocol, CleanStart, KeepAlive, Properties, ClientId, Will, Username, Password,
            ],
            PacketType::ConnAck => &[SessionPresent, ReasonCode, Reason, Properties],
            PacketType::Publish => &[Dup, Qos, Retain, Topic, Id, Properties, Payload],
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                &[Id, ReasonCode, Reason, Properties]
            }
            PacketType::Subscribe | PacketType::Unsubscribe => &[Id, Properties, Filters],
            PacketType::SubAck | PacketType::UnsubAck => &[Id, Properties, Codes, Reasons],
            PacketType::PingReq | PacketType::PingResp => &[],
            PacketType::Disconnect | PacketType::Auth => &[ReasonCode, Reason, Properties],
        }
    }

    fn applies(self, ty: PacketType) -> bool {
        COMMON_KEYS.contains(&self) || Key::of_type(ty).contains(&self)
    }
}

pub(crate) fn allowed_names(ty: Option<PacketType>) -> Vec<&'static str> {
    match ty {
        Some(ty) => Key::of_type(ty)
            .iter()
            .chain(COMMON_KEYS)
            .map(|k| k.name())
            .collect(),
        None => KEY_NAMES.iter().map(|(n, _)| *n).collect(),
    }
}

pub(crate) fn describe_allowed(ty: PacketType) -> String {
    let fields: Vec<&str> = Key::of_type(ty).iter().map(|k| k.name()).collect();
    let fields = if fields.is_empty() {
        "no fields".to_string()
    } else {
        fields.join(", ")
    };
    format!(
        "a {ty} takes {fields} (and on any packet: first_byte, flags, remaining_length, raw, append, truncate)"
    )
}

/// Reads a key, refusing unknown, repeated and (once the type is known)
/// misplaced ones while the parser still points at the key.
pub(crate) struct KeySeed<'a> {
    ty: Option<PacketType>,
    seen: &'a [Key],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        let Some(key) = Key::from_name(s) else {
            let hint = suggest::hint(s, allowed_names(self.ty));
            return Err(E::custom(match self.ty {
                Some(ty) => format!("unknown field `{s}`{hint}; {}", describe_allowed(ty)),
                None => format!(
                    "unknown field `{s}`{hint}; the fields are: {}",
                    allowed_names(None).join(", ")
                ),
            }));
        };
        if self.seen.contains(&key) {
            return Err(E::custom(format!(
                "`{s}` is given twice (as `{}` before)",
                key.name()
            )));
        }
        if let Some(ty) = self.ty {
            if !key.applies(ty) {
                return Err(E::custom(format!(
                    "`{s}` does not apply to {ty}{}; {}",
                    suggest::hint(s, allowed_names(Some(ty))),
                    describe_allowed(ty)
                )));
            }
        }
        Ok(key)
    }
}

pub(crate) struct PacketVisitor {
    pub(crate) protocol: Protocol,
}

/// The fields of one packet mapping as read, before they are checked together.
#[derive(Default)]
pub(crate) struct Fields {
    seen: Vec<Key>,
    ty: Option<PacketType>,
    protocol: Option<Protocol>,
    clean_start: Option<bool>,
    keep_alive: Option<u16>,
    client_id: Option<String>,
    will: Option<WillSpec>,
    username: Option<String>,
    password: Option<Bytes>,
    session_present: Option<bool>,
    dup: Option<bool>,
    qos: Option<QoS>,
    retain: Option<bool>,
    topic: Option<String>,
    id: Option<u16>,
    payload: Option<Bytes>,
    reason_code: Option<ReasonValue>,
    reason: Option<String>,
    filters: Option<Vec<FilterSpec>>,
    codes: Option<Vec<ReasonValue>>,
    reasons: Option<Vec<String>>,
    properties: Option<Properties>,
    first_byte: Option<u8>,
    flags: Option<u8>,
    remaining_length: Option<Vec<u8>>,
    raw: Vec<(String, Vec<u8>)>,
    append: Vec<u8>,
    truncate: Option<usize>,
}

impl<'de> Visitor<'de> for PacketVisitor {
    type Value = Described;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet: a mapping with a `type` such as PUBLISH and its fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Described, A::Error> {
        let mut f = Fields::default();
        loop {
            let seed = KeySeed {
                ty: f.ty,
                seen: &f.seen,
            };
            let Some(key) = map.next_key_seed(seed)? else {
                break;
            };
            match key {
                Key::Type => f.ty = Some(map.next_value::<TypeValue>()?.0),
                Key::Protocol => f.protocol = Some(map.next_value::<ProtocolValue>()?.0),
                Key::CleanStart => f.clean_start = Some(map.next_value()?),
                Key::KeepAlive => f.keep_alive = Some(map.next_value()?),
                Key::ClientId => f.client_id = Some(map.next_value()?),
                Key::Will => f.will = Some(map.next_value()?),
                Key::Username => f.username = Some(map.next_value()?),
                Key::Password => f.password = Some(map.next_value::<BinaryValue>()?.0),
                Key::SessionPresent => f.session_present = Some(map.next_value()?),
                Key::Dup => f.dup = Some(map.next_value()?),
                Key::Qos => f.qos = Some(map.next_value::<QosValue>()?.0),
                Key::Retain => f.retain = Some(map.next_value()?),
                Key::Topic => f.topic = Some(map.next_value()?),
                Key::Id => f.id = Some(map.next_value()?),
                Key::Payload => f.payload = Some(map.next_value::<BinaryValue>()?.0),
                Key::ReasonCode => f.reason_code = Some(map.next_value()?),
                Key::Reason => f.reason = Some(map.next_value::<ReasonName>()?.0),
                Key::Filters => f.filters = Some(map.next_value()?),
                Key::Codes => f.codes = Some(map.next_value()?),
                Key::Reasons => {
                    let names: Vec<ReasonName> = map.next_value()?;
                    f.reasons = Some(names.into_iter().map(|n| n.0).collect());
                }
                Key::Properties => f.properties = Some(map.next_value::<PropertiesValue>()?.0),
                Key::FirstByte => f.first_byte = Some(map.next_value::<ByteValue>()?.0),
                Key::Flags => {
                    let v = map.next_value::<FlagsValue>()?.0;
                    f.flags = Some(v);
                }
                Key::RemainingLength => {
                    f.remaining_length = Some(map.next_value::<RemainingLengthValue>()?.0)
                }
                Key::Raw => f.raw = map.next_value::<RawValue>()?.0,
                Key::Append => f.append = map.next_value::<HexValue>()?.0,
                Key::Truncate => f.truncate = Some(map.next_value()?),
            }
            f.seen.push(key);
        }
        f.build(self.protocol).map_err(de::Error::custom)
    }
}

impl Fields {
    /// Checks the fields together and builds the packet.
    fn build(self, stream: Protocol) -> Result<Described, String> {
        let ty = self.ty.ok_or_else(|| {
            "missing `type`: say which packet this is, e.g. `type: PUBLISH`".to_string()
        })?;
        if let Some(key) = self.seen.iter().find(|k| !k.applies(ty)) {
            return Err(format!(
                "`{}` does not apply to {ty}; {}",
                key.name(),
                describe_allowed(ty)
            ));
        }
        let protocol = match ty {
            PacketType::Connect => self.protocol.unwrap_or(stream),
            _ => stream,
        };
        let v5 = protocol.is_v5();
        let need_id = || {
            self.id.ok_or_else(|| {
                format!("missing `id`: a {ty} carries a packet identifier, e.g. `id: 1`")
            })
        };
        let properties = self.properties.clone().unwrap_or_default();
        let reason_code = resolve_reason(
            self.reason_code.as_ref(),
            self.reason.as_deref(),
            ty,
            protocol,
        )?;
        let codes = resolve_codes(self.codes.as_deref(), self.reasons.as_deref(), ty, protocol)?;
        let packet = match ty {
            PacketType::Connect => {
                let client_id = self
                    .client_id
                    .clone()
                    .ok_or("missing `client_id`: a CONNECT always carries one (it may be \"\")")?;
                let will = self.will.clone().map(|w| Will {
                    qos: w.qos.map_or(QoS::AtMostOnce, |q| q.0),
                    retain: w.retain.unwrap_or(false),
                    properties: w.properties.map(|p| p.0).unwrap_or_default(),
                    topic: ByteString::from(w.topic),
                    payload: w.payload.map(|p| p.0).unwrap_or_default(),
                });
                Packet::Connect(Box::new(Connect {
                    protocol,
                    clean_start: self.clean_start.unwrap_or(true),
                    keep_alive: self.keep_alive.unwrap_or(60),
                    properties,
                    client_id: ByteString::from(client_id),
                    will,
                    username: self.username.clone().map(ByteString::from),
                    password: self.password.clone(),
                }))
            }
            PacketType::ConnAck => Packet::ConnAck(ConnAck {
                session_present: self.session_present.unwrap_or(false),
                code: reason_code,
                properties,
            }),
            PacketType::Publish => {
                let qos = self.qos.unwrap_or_default();
                let packet_id = match (qos, self.id) {
                    (QoS::AtMostOnce, Some(_)) => {
                        return Err(
                            "`id` has no place in a QoS 0 PUBLISH, which carries no packet \
                             identifier: set `qos: 1`, or write the bytes anyway with `append`"
                                .into(),
                        )
                    }
                    (QoS::AtMostOnce, None) => 0,
                    _ => need_id()?,
                };
                let topic = self.topic.clone().ok_or(
                    "missing `topic`: a PUBLISH always carries a topic name (it may be \"\")",
                )?;
                Packet::Publish(Publish {
                    dup: self.dup.unwrap_or(false),
                    qos,
                    retain: self.retain.unwrap_or(false),
                    topic: ByteString::from(topic),
                    packet_id,
                    properties,
                    payload: self.payload.clone().unwrap_or_default(),
                })
            }
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let r = PubResponse {
                    packet_id: need_id()?,
                    reason_code,
                    properties,
                };
                match ty {
                    PacketType::PubAck => Packet::PubAck(r),
                    PacketType::PubRec => Packet::PubRec(r),
                    PacketType::PubRel => Packet::PubRel(r),
                    _ => Packet::PubComp(r),
                }
            }
            PacketType::Subscribe => {
                let filters = self.filters.as_ref().ok_or(
                    "missing `filters`: e.g. `filters: [{filter: a/b, qos: 1}]` (or [] on purpose)",
                )?;
                let mut subs = Vec::with_capacity(filters.len());
                for (i, f) in filters.iter().enumerate() {
                    if !v5 {
                        let v5_only = [
                            ("no_local", f.no_local.is_some()),
                            ("retain_as_published", f.retain_as_published.is_some()),
                            ("retain_handling", f.retain_handling.is_some()),
                        ];
                        if let Some((name, _)) = v5_only.iter().find(|(_, set)| *set) {
                            return Err(format!(
                                "filters[{i}]: `{name}` exists only in MQTT 5.0, not in {protocol}; \
                                 to set those bits anyway use `raw: {{subscription_options: \"..\"}}`"
                            ));
                        }
                    }
                    subs.push(Subscription {
                        filter: ByteString::from(f.filter.clone()),
                        options: SubscriptionOptions {
                            qos: f.qos.unwrap_or_default(),
                            no_local: f.no_local.unwrap_or(false),
                            retain_as_published: f.retain_as_published.unwrap_or(false),
                            retain_handling: f.retain_handling.unwrap_or(0),
                        },
                    });
                }
                Packet::Subscribe(Subscribe {
                    packet_id: need_id()?,
                    properties,
                    filters: subs,
                })
            }
            PacketType::Unsubscribe => {
                let filters = self
                    .filters
                    .as_ref()
                    .ok_or("missing `filters`: e.g. `filters: [a/b, c/#]` (or [] on purpose)")?;
                if let Some((i, _)) = filters.iter().enumerate().find(|(_, f)| f.has_options()) {
                    return Err(format!(
                        "filters[{i}]: UNSUBSCRIBE filters are bare topic filters, without qos or other options"
                    ));
                }
                Packet::Unsubscribe(Unsubscribe {
                    packet_id: need_id()?,
                    properties,
                    filters: filters
                        .iter()
                        .map(|f| ByteString::from(f.filter.clone()))
                        .collect(),
                })
            }
            PacketType::SubAck => Packet::SubAck(SubAck {
                packet_id: need_id()?,
                properties,
                reason_codes: codes,
            }),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck {
                packet_id: need_id()?,
                properties,
                reason_codes: codes,
            }),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            }),
            PacketType::Auth => Packet::Auth(Auth {
                reason_code,
                properties,
            }),
        };
        let overrides = Overrides {
            first_byte: self.first_byte,
            flags: self.flags,
            remaining_length: self.remaining_length,
            fields: self.raw,
            append: self.append,
            truncate: self.truncate,
        };
        // Encoding now reports what the encoder refuses (a 5.0 field in a 3.1.1
        // packet, an unknown `raw` field) while the position is still known.
        mqtt_codec::encode_with(&packet, protocol, &overrides)
            .map_err(|e| format!("{ty} cannot be written in MQTT {protocol}: {e}"))?;
        Ok(Described {
            packet,
            overrides,
            protocol,
        })
    }
}

pub(crate) fn resolve_reason(
    code: Option<&ReasonValue>,
    name: Option<&str>,
    ty: PacketType,
    protocol: Protocol,
) -> Result<u8, String> {
    let by_name = |n: &str| {
        code_for_name(n, ty, protocol).ok_or_else(|| {
            format!(
                "`{n}` is not the name of a {ty} code in MQTT {protocol}; give the number instead"
            )
        })
    };
    let from_code = match code {
        Some(ReasonValue::Code(c)) => Some(*c),
        Some(ReasonValue::Name(n)) => Some(by_name(n)?),
        None => None,
    };
    match (from_code, name) {
        (Some(c), Some(n)) => {
            let named = by_name(n)?;
            if named != c {
                return Err(format!(
                    "`reason_code` 0x{c:02X} ({}) and `reason: {n}` (0x{named:02X}) disagree; keep one",
                    reason_name(c, ty, protocol)
                ));
            }
            Ok(c)
        }
        (Some(c), None) => Ok(c),
        (None, Some(n)) => by_name(n),
        (None, None) => Ok(0),
    }
}

pub(crate) fn resolve_codes(
    codes: Option<&[ReasonValue]>,
    names: Option<&[String]>,
    ty: PacketType,
    protocol: Protocol,
) -> Result<Vec<u8>, String> {
    let from_codes = codes
        .map(|cs| {
            cs.iter()
                .map(|c| resolve_reason(Some(c), None, ty, protocol))
                .collect::<Result<Vec<u8>, String>>()
        })
        .transpose()?;
    let from_names = names
        .map(|ns| {
            ns.iter()
                .map(|n| resolve_reason(None, Some(n), ty, protocol))
                .collect::<Result<Vec<u8>, String>>()
        })
        .transpose()?;
    match (from_codes, from_names) {
        (Some(c), Some(n)) if c != n => Err(format!(
            "`codes` {c:?} and `reasons` {n:?} disagree; keep one"
        )),
        (Some(c), _) => Ok(c),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(Vec::new()),
    }
}

/// The code named `name` in `ty` (case-insensitive), else in any packet.
pub(crate) fn code_for_name(name: &str, ty: PacketType, protocol: Protocol) -> Option<u8> {
    let matches = |t: PacketType| {
        (0..=255u8).find(|&c| reason_name(c, t, protocol).eq_ignore_ascii_case(name.trim()))
    };
    matches(ty).or_else(|| PacketType::ALL.iter().find_map(|&t| matches(t)))
}

/// Every name of a reason or return code, for validating and suggesting.
pub(crate) fn all_reason_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        for ty in PacketType::ALL {
            for code in 0..=255u8 {
                let n = reason_name(code, ty, protocol);
                if n != "unknown reason code" && n != "reserved return code" && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
    }
    names
}
