//! The fields of one mapping, checked together and built into a packet:
//! defaults for what is not given, the requirements that involve several
//! fields (a QoS 0 PUBLISH has no `id`, `reason` agrees with `reason_code`),
//! and a trial encoding that reports what the encoder refuses.
//!
//! In a template a capture takes its field's default, and the checks that
//! depend on its value are left to run time.

use mqtt_codec::{
    Auth, ByteString, ConnAck, Connect, Disconnect, Overrides, Packet, PacketType, Properties,
    Protocol, PubResponse, Publish, QoS, SubAck, Subscribe, Subscription, SubscriptionOptions,
    UnsubAck, Unsubscribe, Will,
};

use super::reader::{check_versions, FieldSet, FilterSpec, Parsed, WillSpec};
use super::to_json::reason_name;
use super::values::ReasonValue;
use super::vocab;
use super::Described;

impl FieldSet {
    fn deferred(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Parsed::Deferred))
    }

    fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Parsed::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn u16(&self, name: &str) -> Option<u16> {
        match self.get(name) {
            Some(Parsed::U16(v)) => Some(*v),
            // A capture: any number does for a trial encoding.
            Some(Parsed::Deferred) => Some(1),
            _ => None,
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Parsed::Text(s)) => Some(s.clone()),
            Some(Parsed::Deferred) => Some(String::new()),
            _ => None,
        }
    }

    fn binary(&self, name: &str) -> Option<bytes::Bytes> {
        match self.get(name) {
            Some(Parsed::Binary(b)) => Some(b.clone()),
            Some(Parsed::Deferred) => Some(bytes::Bytes::new()),
            _ => None,
        }
    }

    fn byte(&self, name: &str) -> Option<u8> {
        match self.get(name) {
            Some(Parsed::Byte(b)) => Some(*b),
            _ => None,
        }
    }

    fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        match self.get(name) {
            Some(Parsed::Bytes(b)) => Some(b.clone()),
            _ => None,
        }
    }

    fn properties(&self) -> Properties {
        match self.get("properties") {
            Some(Parsed::Properties(p)) => p.clone(),
            _ => Properties::default(),
        }
    }

    fn need_id(&self) -> Result<u16, String> {
        self.u16("id").ok_or_else(|| {
            format!(
                "missing `id`: a {} carries a packet identifier, e.g. `id: 1`",
                self.ty
            )
        })
    }

    /// The versions to build for: a CONNECT's own, else those it is read for.
    fn build_versions(&self) -> Vec<Protocol> {
        match self.get("protocol") {
            Some(Parsed::Protocol(p)) if self.ty == PacketType::Connect => vec![*p],
            _ => self.protocols.clone(),
        }
    }

    /// Checks the fields together and builds the packet, once per version.
    pub(crate) fn build(&self) -> Result<Vec<Described>, String> {
        let mut out = Vec::new();
        for protocol in self.build_versions() {
            // Keys read before their version was known (a CONNECT's before
            // its `protocol`) are checked now, without their position.
            for (f, v) in &self.values {
                check_versions(f, f.name, &[protocol], self.template)?;
                if let Parsed::Will(w) = v {
                    for k in &w.keys {
                        check_versions(k, &format!("will.{}", k.name), &[protocol], self.template)?;
                    }
                }
            }
            if !vocab::type_versions(self.ty).contains(protocol) {
                return Err(format!(
                    "there is no {} in MQTT {protocol}; it exists in {}",
                    self.ty,
                    vocab::type_versions(self.ty)
                ));
            }
            out.push(self.build_one(protocol)?);
        }
        Ok(out)
    }

    fn build_one(&self, protocol: Protocol) -> Result<Described, String> {
        let ty = self.ty;
        let packet = match ty {
            PacketType::Connect => self.connect(protocol)?,
            PacketType::ConnAck => Packet::ConnAck(ConnAck {
                session_present: self.bool("session_present").unwrap_or(false),
                code: self.reason_code(protocol)?,
                properties: self.properties(),
            }),
            PacketType::Publish => self.publish()?,
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let r = PubResponse {
                    packet_id: self.need_id()?,
                    reason_code: self.reason_code(protocol)?,
                    properties: self.properties(),
                };
                match ty {
                    PacketType::PubAck => Packet::PubAck(r),
                    PacketType::PubRec => Packet::PubRec(r),
                    PacketType::PubRel => Packet::PubRel(r),
                    _ => Packet::PubComp(r),
                }
            }
            PacketType::Subscribe => self.subscribe()?,
            PacketType::Unsubscribe => self.unsubscribe()?,
            PacketType::SubAck => Packet::SubAck(SubAck {
                packet_id: self.need_id()?,
                properties: self.properties(),
                reason_codes: self.codes(protocol)?,
            }),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck {
                packet_id: self.need_id()?,
                properties: self.properties(),
                reason_codes: self.codes(protocol)?,
            }),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect {
                reason_code: self.reason_code(protocol)?,
                properties: self.properties(),
            }),
            PacketType::Auth => Packet::Auth(Auth {
                reason_code: self.reason_code(protocol)?,
                properties: self.properties(),
            }),
        };
        let overrides = Overrides {
            first_byte: self.byte("first_byte"),
            flags: self.byte("flags"),
            remaining_length: self.bytes("remaining_length"),
            fields: match self.get("raw") {
                Some(Parsed::Raw(r)) => r.clone(),
                _ => Vec::new(),
            },
            append: self.bytes("append").unwrap_or_default(),
            truncate: match self.get("truncate") {
                Some(Parsed::Count(n)) => Some(*n),
                _ => None,
            },
        };
        // Encoding now reports what the encoder refuses (a 5.0 field in a 3.1.1
        // packet, an unknown `raw` field) while the mapping is still at hand.
        mqtt_codec::encode_with(&packet, protocol, &overrides)
            .map_err(|e| format!("{ty} cannot be written in MQTT {protocol}: {e}"))?;
        Ok(Described {
            packet,
            overrides,
            protocol,
        })
    }

    fn connect(&self, protocol: Protocol) -> Result<Packet, String> {
        let client_id = match self.text("client_id") {
            Some(id) => id,
            // A scenario's CONNECT gets the client's id at run time.
            None if self.template => "x".to_string(),
            None => {
                return Err(
                    "missing `client_id`: a CONNECT always carries one (it may be \"\")".into(),
                )
            }
        };
        let will = match self.get("will") {
            Some(Parsed::Will(w)) => Some(will_of(w)),
            _ => None,
        };
        Ok(Packet::Connect(Box::new(Connect {
            protocol,
            clean_start: self.bool("clean_start").unwrap_or(true),
            keep_alive: self.u16("keep_alive").unwrap_or(60),
            properties: self.properties(),
            client_id: ByteString::from(client_id),
            will,
            username: self.text("username").map(ByteString::from),
            password: self.binary("password"),
        })))
    }

    fn publish(&self) -> Result<Packet, String> {
        let has_id = self.get("id").is_some();
        let qos = match self.get("qos") {
            Some(Parsed::Qos(q)) => *q,
            // Whether an `id` belongs depends on the captured QoS: run time tells.
            Some(Parsed::Deferred) if has_id => QoS::AtLeastOnce,
            _ => QoS::AtMostOnce,
        };
        let packet_id = match (qos, has_id) {
            (QoS::AtMostOnce, true) => {
                return Err(
                    "`id` has no place in a QoS 0 PUBLISH, which carries no packet \
                     identifier: set `qos: 1`, or write the bytes anyway with `append`"
                        .into(),
                )
            }
            (QoS::AtMostOnce, false) => 0,
            _ => self.need_id()?,
        };
        let topic = self
            .text("topic")
            .ok_or("missing `topic`: a PUBLISH always carries a topic name (it may be \"\")")?;
        Ok(Packet::Publish(Publish {
            dup: self.bool("dup").unwrap_or(false),
            qos,
            retain: self.bool("retain").unwrap_or(false),
            topic: ByteString::from(topic),
            packet_id,
            properties: self.properties(),
            payload: self.binary("payload").unwrap_or_default(),
        }))
    }

    fn subscribe(&self) -> Result<Packet, String> {
        let filters: Vec<FilterSpec> =
            match self.get("filters") {
                Some(Parsed::Subscriptions(f)) => f.clone(),
                Some(Parsed::Deferred) => Vec::new(),
                _ => return Err(
                    "missing `filters`: e.g. `filters: [{filter: a/b, qos: 1}]` (or [] on purpose)"
                        .into(),
                ),
            };
        let filters = filters
            .into_iter()
            .map(|f| Subscription {
                filter: ByteString::from(f.filter),
                options: SubscriptionOptions {
                    qos: f.qos,
                    no_local: f.no_local,
                    retain_as_published: f.retain_as_published,
                    retain_handling: f.retain_handling,
                },
            })
            .collect();
        Ok(Packet::Subscribe(Subscribe {
            packet_id: self.need_id()?,
            properties: self.properties(),
            filters,
        }))
    }

    fn unsubscribe(&self) -> Result<Packet, String> {
        let filters: Vec<String> = match self.get("filters") {
            Some(Parsed::Filters(f)) => f.clone(),
            Some(Parsed::Deferred) => Vec::new(),
            _ => {
                return Err(
                    "missing `filters`: e.g. `filters: [a/b, c/#]` (or [] on purpose)".into(),
                )
            }
        };
        Ok(Packet::Unsubscribe(Unsubscribe {
            packet_id: self.need_id()?,
            properties: self.properties(),
            filters: filters.into_iter().map(ByteString::from).collect(),
        }))
    }

    /// `reason_code` and `reason`, which must agree where both are given.
    fn reason_code(&self, protocol: Protocol) -> Result<u8, String> {
        let ty = self.ty;
        if self.deferred("reason_code") || self.deferred("reason") {
            return Ok(0);
        }
        let code = match self.get("reason_code") {
            Some(Parsed::Reason(r)) => Some(r),
            _ => None,
        };
        let name = match self.get("reason") {
            Some(Parsed::ReasonName(n)) => Some(n.as_str()),
            _ => None,
        };
        resolve_reason(code, name, ty, protocol)
    }

    /// `codes` and `reasons`, which must agree where both are given.
    fn codes(&self, protocol: Protocol) -> Result<Vec<u8>, String> {
        let (ty, codes, names) = (self.ty, self.get("codes"), self.get("reasons"));
        let deferred = |v: Option<&Parsed>| match v {
            Some(Parsed::Deferred) => true,
            Some(Parsed::Reasons(list)) => list.iter().any(Option::is_none),
            _ => false,
        };
        let from_codes = match codes {
            Some(Parsed::Reasons(list)) => Some(
                list.iter()
                    .map(|c| {
                        c.as_ref()
                            .map_or(Ok(0), |c| resolve_reason(Some(c), None, ty, protocol))
                    })
                    .collect::<Result<Vec<u8>, String>>()?,
            ),
            _ => None,
        };
        let from_names = match names {
            Some(Parsed::ReasonNames(list)) => Some(
                list.iter()
                    .map(|n| resolve_reason(None, Some(n), ty, protocol))
                    .collect::<Result<Vec<u8>, String>>()?,
            ),
            _ => None,
        };
        match (from_codes, from_names) {
            (Some(c), Some(n)) if c != n && !deferred(codes) && !deferred(names) => Err(format!(
                "`codes` {c:?} and `reasons` {n:?} disagree; keep one"
            )),
            (Some(c), _) => Ok(c),
            (None, Some(n)) => Ok(n),
            (None, None) => Ok(Vec::new()),
        }
    }
}

fn will_of(w: &WillSpec) -> Will {
    Will {
        qos: w.qos,
        retain: w.retain,
        properties: w.properties.clone(),
        topic: ByteString::from(w.topic.clone()),
        payload: w.payload.clone(),
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

/// The code named `name` in `ty` (case-insensitive), else in any packet.
pub(crate) fn code_for_name(name: &str, ty: PacketType, protocol: Protocol) -> Option<u8> {
    let matches = |t: PacketType| {
        (0..=255u8).find(|&c| reason_name(c, t, protocol).eq_ignore_ascii_case(name.trim()))
    };
    matches(ty).or_else(|| PacketType::ALL.iter().find_map(|&t| matches(t)))
}

/// Every name of a reason or return code, for validating and suggesting.
pub(crate) fn all_reason_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(reason_names)
}

fn reason_names() -> Vec<&'static str> {
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
