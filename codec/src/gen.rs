//! Generators of valid packets, for property tests and structured fuzzing.
//!
//! [`packet`] turns unstructured bytes into a packet that the given sender may
//! send in the given version, that the decoder accepts, and that decodes back
//! equal after [`encode`](crate::encode). That last property rules out the
//! forms the model can hold but the wire cannot tell apart, so the generator
//! only builds the canonical one:
//!
//! - a QoS 0 PUBLISH has packet identifier 0 (none is written);
//! - 3.1 / 3.1.1 packets have no properties, reason codes 0 (except CONNACK
//!   and SUBACK return codes), no UNSUBACK reason codes and subscription
//!   options that carry only the QoS;
//! - a CONNECT announces the stream's own version.
//!
//! Every choice reads the input through [`Unstructured`], so a fuzzer's
//! mutations map onto packet fields. Exhausted input is not an error: every
//! further choice takes its first option, which gives the smallest packet of
//! each kind.

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use bytestring::ByteString;

use crate::props::{self, Properties, Property, PropertyContext};
use crate::reason;
use crate::topic;
use crate::types::*;
use crate::Protocol;

/// Longest string (in characters) drawn from the input; a rarer path builds
/// strings up to the 65,535-byte limit from a repeated character.
const MAX_CHARS: usize = 24;
/// Longest payload drawn from the input.
const MAX_PAYLOAD: usize = 256;
/// Most topic filters in a SUBSCRIBE / UNSUBSCRIBE, codes in an ack.
const MAX_LIST: usize = 6;
/// Most packets in a stream.
const MAX_STREAM: usize = 12;
/// The largest Subscription Identifier (a Variable Byte Integer).
const MAX_VARINT: u32 = crate::decode::MAX_REMAINING_LENGTH;

/// One packet that `from` may send in `protocol`, valid and canonical.
pub fn packet(u: &mut Unstructured<'_>, protocol: Protocol, from: Sender) -> Result<Packet> {
    let types: Vec<PacketType> = PacketType::ALL
        .iter()
        .copied()
        .filter(|t| t.allowed_from(from, protocol))
        .collect();
    let ty = *u.choose(&types)?;
    packet_of(u, ty, protocol, from)
}

/// A sequence of packets that `from` may send in `protocol`.
pub fn stream(u: &mut Unstructured<'_>, protocol: Protocol, from: Sender) -> Result<Vec<Packet>> {
    let n = u.int_in_range(0..=MAX_STREAM)?;
    let mut packets = Vec::with_capacity(n);
    for _ in 0..n {
        packets.push(packet(u, protocol, from)?);
    }
    Ok(packets)
}

/// One packet of type `ty`. `Err(IncorrectFormat)` when `from` may not send
/// that type in `protocol`.
pub fn packet_of(
    u: &mut Unstructured<'_>,
    ty: PacketType,
    protocol: Protocol,
    from: Sender,
) -> Result<Packet> {
    if !ty.allowed_from(from, protocol) {
        return Err(arbitrary::Error::IncorrectFormat);
    }
    let g = Gen { protocol, from };
    Ok(match ty {
        PacketType::Connect => Packet::Connect(Box::new(g.connect(u)?)),
        PacketType::ConnAck => Packet::ConnAck(g.connack(u)?),
        PacketType::Publish => Packet::Publish(g.publish(u)?),
        PacketType::PubAck => Packet::PubAck(g.pub_response(u, ty)?),
        PacketType::PubRec => Packet::PubRec(g.pub_response(u, ty)?),
        PacketType::PubRel => Packet::PubRel(g.pub_response(u, ty)?),
        PacketType::PubComp => Packet::PubComp(g.pub_response(u, ty)?),
        PacketType::Subscribe => Packet::Subscribe(g.subscribe(u)?),
        PacketType::SubAck => Packet::SubAck(SubAck {
            packet_id: packet_id(u)?,
            properties: g.properties(u, PropertyContext::SubAck)?,
            reason_codes: g.reason_codes(u, ty)?,
        }),
        PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
            packet_id: packet_id(u)?,
            properties: g.properties(u, PropertyContext::Unsubscribe)?,
            filters: g.filters(u)?,
        }),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck {
            packet_id: packet_id(u)?,
            properties: g.properties(u, PropertyContext::UnsubAck)?,
            reason_codes: if protocol.is_v5() {
                g.reason_codes(u, ty)?
            } else {
                Vec::new()
            },
        }),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect(Disconnect {
            reason_code: g.reason_code(u, ty)?,
            properties: g.properties(u, PropertyContext::Disconnect)?,
        }),
        PacketType::Auth => Packet::Auth(Auth {
            reason_code: g.reason_code(u, ty)?,
            properties: g.properties(u, PropertyContext::Auth)?,
        }),
    })
}

/// One property with identifier `id` and a value the decoder accepts (a
/// non-zero Receive Maximum, a well-formed Response Topic…); where it may
/// appear is the caller's concern. `None` for an identifier 5.0 does not define.
pub fn property(u: &mut Unstructured<'_>, id: u8) -> Result<Option<Property>> {
    let flag = |u: &mut Unstructured<'_>| -> Result<u8> { Ok(u8::from(u.arbitrary::<bool>()?)) };
    Ok(Some(match id {
        0x01 => Property::PayloadFormatIndicator(flag(u)?),
        0x02 => Property::MessageExpiryInterval(u.arbitrary()?),
        0x03 => Property::ContentType(string(u)?),
        0x08 => Property::ResponseTopic(topic_name(u)?),
        0x09 => Property::CorrelationData(binary(u, MAX_CHARS)?),
        0x0B => Property::SubscriptionIdentifier(u.int_in_range(1..=MAX_VARINT)?),
        0x11 => Property::SessionExpiryInterval(u.arbitrary()?),
        0x12 => Property::AssignedClientIdentifier(string(u)?),
        0x13 => Property::ServerKeepAlive(u.arbitrary()?),
        0x15 => Property::AuthenticationMethod(string(u)?),
        0x16 => Property::AuthenticationData(binary(u, MAX_CHARS)?),
        0x17 => Property::RequestProblemInformation(flag(u)?),
        0x18 => Property::WillDelayInterval(u.arbitrary()?),
        0x19 => Property::RequestResponseInformation(flag(u)?),
        0x1A => Property::ResponseInformation(string(u)?),
        0x1C => Property::ServerReference(string(u)?),
        0x1F => Property::ReasonString(string(u)?),
        0x21 => Property::ReceiveMaximum(u.int_in_range(1..=u16::MAX)?),
        0x22 => Property::TopicAliasMaximum(u.arbitrary()?),
        0x23 => Property::TopicAlias(u.int_in_range(1..=u16::MAX)?),
        0x24 => Property::MaximumQoS(flag(u)?),
        0x25 => Property::RetainAvailable(flag(u)?),
        0x26 => Property::UserProperty(string(u)?, string(u)?),
        0x27 => Property::MaximumPacketSize(u.int_in_range(1..=u32::MAX)?),
        0x28 => Property::WildcardSubscriptionAvailable(flag(u)?),
        0x29 => Property::SubscriptionIdentifierAvailable(flag(u)?),
        0x2A => Property::SharedSubscriptionAvailable(flag(u)?),
        _ => return Ok(None),
    }))
}

/// The version and sender every generated field must suit.
#[derive(Clone, Copy)]
struct Gen {
    protocol: Protocol,
    from: Sender,
}

impl Gen {
    fn v5(self) -> bool {
        self.protocol.is_v5()
    }

    fn connect(self, u: &mut Unstructured<'_>) -> Result<Connect> {
        let clean_start = u.arbitrary()?;
        let keep_alive = u.arbitrary()?;
        let properties = self.properties(u, PropertyContext::Connect)?;
        let client_id = string(u)?;
        let will = if u.arbitrary()? {
            Some(Will {
                qos: qos(u)?,
                retain: u.arbitrary()?,
                properties: self.properties(u, PropertyContext::Will)?,
                topic: topic_name(u)?,
                payload: binary(u, MAX_PAYLOAD)?,
            })
        } else {
            None
        };
        let username = if u.arbitrary()? {
            Some(string(u)?)
        } else {
            None
        };
        // 3.1 and 3.1.1 refuse a password without a user name (MQTT-3.1.2-22).
        let password = if (self.v5() || username.is_some()) && u.arbitrary()? {
            Some(binary(u, MAX_CHARS)?)
        } else {
            None
        };
        Ok(Connect {
            protocol: self.protocol,
            clean_start,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn connack(self, u: &mut Unstructured<'_>) -> Result<ConnAck> {
        let code = self.reason_code(u, PacketType::ConnAck)?;
        // Session Present only with a success code (MQTT-3.2.2-4 / -6).
        let session_present = code == 0 && u.arbitrary()?;
        Ok(ConnAck {
            session_present,
            code,
            properties: self.properties(u, PropertyContext::ConnAck)?,
        })
    }

    fn publish(self, u: &mut Unstructured<'_>) -> Result<Publish> {
        let qos = qos(u)?;
        let at_most_once = qos == QoS::AtMostOnce;
        let dup = !at_most_once && u.arbitrary()?;
        let retain = u.arbitrary()?;
        let packet_id = if at_most_once { 0 } else { packet_id(u)? };
        let mut properties = self.properties(u, PropertyContext::Publish)?;
        // 5.0: an empty topic name stands for the one a Topic Alias maps to.
        let topic = if self.v5() && one_in(u, 4)? {
            if properties.topic_alias().is_none() {
                properties.push(Property::TopicAlias(u.int_in_range(1..=u16::MAX)?));
            }
            ByteString::new()
        } else {
            topic_name(u)?
        };
        Ok(Publish {
            dup,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload: binary(u, MAX_PAYLOAD)?,
        })
    }

    fn pub_response(self, u: &mut Unstructured<'_>, ty: PacketType) -> Result<PubResponse> {
        Ok(PubResponse {
            packet_id: packet_id(u)?,
            reason_code: self.reason_code(u, ty)?,
            properties: self.properties(u, PropertyContext::PubResponse)?,
        })
    }

    fn subscribe(self, u: &mut Unstructured<'_>) -> Result<Subscribe> {
        let packet_id = packet_id(u)?;
        let properties = self.properties(u, PropertyContext::Subscribe)?;
        let n = u.int_in_range(1..=MAX_LIST)?;
        let mut filters = Vec::with_capacity(n);
        for _ in 0..n {
            let filter = self.filter(u)?;
            let qos = qos(u)?;
            let options = if self.v5() {
                // No Local on a shared subscription is a Protocol Error (MQTT-3.8.3-4).
                let shared = topic::split_shared(&filter).is_some();
                SubscriptionOptions {
                    qos,
                    no_local: !shared && u.arbitrary()?,
                    retain_as_published: u.arbitrary()?,
                    retain_handling: u.int_in_range(0..=2)?,
                }
            } else {
                SubscriptionOptions::qos(qos)
            };
            filters.push(Subscription { filter, options });
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
        })
    }

    fn filters(self, u: &mut Unstructured<'_>) -> Result<Vec<ByteString>> {
        let n = u.int_in_range(1..=MAX_LIST)?;
        (0..n).map(|_| self.filter(u)).collect()
    }

    /// A well-formed topic filter; in 5.0 sometimes a shared subscription.
    fn filter(self, u: &mut Unstructured<'_>) -> Result<ByteString> {
        let mut filter = String::new();
        if self.v5() && one_in(u, 4)? {
            filter.push_str("$share/");
            let name = level(u)?;
            filter.push_str(if name.is_empty() { "g" } else { &name });
            filter.push('/');
        }
        let levels = u.int_in_range(1..=5)?;
        for i in 0..levels {
            if i > 0 {
                filter.push('/');
            }
            match u.int_in_range(0..=7)? {
                6 => filter.push('+'),
                7 if i + 1 == levels => filter.push('#'),
                _ => filter.push_str(&level(u)?),
            }
        }
        // A plain level can spell `$share` by chance; a filter that then
        // reads as a malformed shared subscription is replaced.
        if topic::validate_filter(&filter, self.v5()).is_err() {
            filter = "a/+/#".to_owned();
        }
        Ok(ByteString::from(filter))
    }

    /// A reason code `self.from` may put in `ty`; always 0 where 3.x has none.
    fn reason_code(self, u: &mut Unstructured<'_>, ty: PacketType) -> Result<u8> {
        let codes: Vec<u8> = (0..=u8::MAX)
            .filter(|&c| reason::is_valid(ty, c, self.from, self.protocol))
            .collect();
        u.choose(&codes).copied()
    }

    fn reason_codes(self, u: &mut Unstructured<'_>, ty: PacketType) -> Result<Vec<u8>> {
        let n = u.int_in_range(1..=MAX_LIST)?;
        (0..n).map(|_| self.reason_code(u, ty)).collect()
    }

    /// A property list the decoder accepts in `ctx` from `self.from`: only
    /// properties allowed there, no duplicates except User Property and a
    /// server's Subscription Identifiers in PUBLISH, Authentication Data only
    /// with an Authentication Method. Empty before 5.0.
    fn properties(self, u: &mut Unstructured<'_>, ctx: PropertyContext) -> Result<Properties> {
        if !self.v5() || !u.arbitrary::<bool>()? {
            return Ok(Properties::new());
        }
        let mut list = Vec::new();
        for info in props::PROPERTIES {
            if !info.contexts.contains(&ctx) || !self.may_send(info.id, ctx) {
                continue;
            }
            let repeatable =
                info.id == 0x26 || (info.id == 0x0B && ctx == PropertyContext::Publish);
            let count = if repeatable {
                u.int_in_range(0..=2)?
            } else {
                u8::from(one_in(u, 3)?)
            };
            for _ in 0..count {
                if let Some(p) = property(u, info.id)? {
                    list.push(p);
                }
            }
        }
        let has = |list: &[Property], id: u8| list.iter().any(|p| p.id() == id);
        if has(&list, 0x16) && !has(&list, 0x15) {
            list.push(Property::AuthenticationMethod(string(u)?));
        }
        // Order is kept on the wire; shuffle so no position is special.
        for i in (1..list.len()).rev() {
            let j = u.int_in_range(0..=i)?;
            list.swap(i, j);
        }
        Ok(Properties(list))
    }

    /// Direction rules on top of the contexts: a client puts no Subscription
    /// Identifier in PUBLISH (MQTT-3.3.4-6), a server no Session Expiry
    /// Interval in DISCONNECT (MQTT-3.14.2-2).
    fn may_send(self, id: u8, ctx: PropertyContext) -> bool {
        !matches!(
            (id, ctx, self.from),
            (0x0B, PropertyContext::Publish, Sender::Client)
                | (0x11, PropertyContext::Disconnect, Sender::Server)
        )
    }
}

/// True with probability 1/n, and false on exhausted input.
fn one_in(u: &mut Unstructured<'_>, n: u8) -> Result<bool> {
    Ok(u.int_in_range(1..=n)? == n)
}

fn qos(u: &mut Unstructured<'_>) -> Result<QoS> {
    u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
        .copied()
}

fn packet_id(u: &mut Unstructured<'_>) -> Result<u16> {
    u.int_in_range(1..=u16::MAX)
}

/// Up to `max` bytes of the input; rarely a long run of one repeated chunk,
/// which reaches 3-byte remaining lengths without input of that size.
fn binary(u: &mut Unstructured<'_>, max: usize) -> Result<Bytes> {
    if one_in(u, 64)? {
        let len = u.int_in_range(0..=usize::from(u16::MAX))?;
        let chunk = u.bytes(u.len().min(4))?;
        let fill = if chunk.is_empty() { &[0x5A][..] } else { chunk };
        let mut run = fill.repeat(len / fill.len() + 1);
        run.truncate(len);
        return Ok(Bytes::from(run));
    }
    let n = u.int_in_range(0..=max)?.min(u.len());
    Ok(Bytes::copy_from_slice(u.bytes(n)?))
}

/// A character for a string: mostly printable ASCII, sometimes any scalar
/// value; never U+0000 nor one of `forbidden`.
fn character(u: &mut Unstructured<'_>, forbidden: &[char]) -> Result<char> {
    let c = if one_in(u, 6)? {
        u.arbitrary::<char>()?
    } else {
        char::from(u.int_in_range(0x20..=0x7E)?)
    };
    Ok(if c == '\0' || forbidden.contains(&c) {
        '_'
    } else {
        c
    })
}

/// A UTF-8 Encoded String the decoder accepts: well formed, no U+0000, at
/// most 65,535 bytes.
fn string(u: &mut Unstructured<'_>) -> Result<ByteString> {
    // Rarely long: a two-byte length with its high byte set, or the very
    // limit. Rare, because the decoder scans every byte of a string.
    if one_in(u, 128)? {
        let len = if one_in(u, 16)? {
            usize::from(u16::MAX)
        } else {
            u.int_in_range(256..=2048)?
        };
        let c = char::from(u.int_in_range(0x20..=0x7E)?);
        return Ok(ByteString::from(String::from(c).repeat(len)));
    }
    let n = u.int_in_range(0..=MAX_CHARS)?;
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(character(u, &[])?);
    }
    Ok(ByteString::from(s))
}

/// One topic level: no `/`, `+` or `#`; may be empty.
fn level(u: &mut Unstructured<'_>) -> Result<String> {
    let n = u.int_in_range(0..=8)?;
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(character(u, &['/', '+', '#'])?);
    }
    Ok(s)
}

/// A non-empty topic name without wildcards.
fn topic_name(u: &mut Unstructured<'_>) -> Result<ByteString> {
    let levels = u.int_in_range(1..=5)?;
    let mut name = String::new();
    for i in 0..levels {
        if i > 0 {
            name.push('/');
        }
        name.push_str(&level(u)?);
    }
    if name.is_empty() {
        name.push('t');
    }
    Ok(ByteString::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_bytes, encode_bytes, DecodeOptions, Decoded};

    #[test]
    fn every_property_has_a_generator() {
        for info in props::PROPERTIES {
            let mut u = Unstructured::new(&[7; 64]);
            let p = property(&mut u, info.id).unwrap().unwrap(); // ok: unit test of the generator
            assert_eq!(p.id(), info.id, "{}", info.name);
        }
    }

    #[test]
    fn exhausted_input_still_yields_valid_packets() {
        for protocol in Protocol::ALL {
            for from in [Sender::Client, Sender::Server] {
                for ty in PacketType::ALL {
                    if !ty.allowed_from(from, protocol) {
                        continue;
                    }
                    let p = packet_of(&mut Unstructured::new(&[]), ty, protocol, from).unwrap(); // ok: unit test of the generator
                    let bytes = encode_bytes(&p, protocol).unwrap(); // ok: unit test of the generator
                    let decoded = decode_bytes(&bytes, &DecodeOptions::new(protocol, from));
                    assert_eq!(
                        decoded,
                        Ok(Decoded::Packet {
                            packet: p,
                            len: bytes.len()
                        })
                    );
                }
            }
        }
    }
}
