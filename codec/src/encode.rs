//! The encoder: packets → bytes, valid or, on request, deliberately not.
//!
//! [`encode`] and [`encoded_len`] run the direct encoder ([`direct`]): per
//! packet type, a length function that makes every check, then each field
//! written once. The general encoder here writes a packet's body through a
//! [`Sink`]: a counter to learn a length, or a tracer that records where each
//! named field lies, which is how [`Overrides`] replace a field's bytes (an
//! invalid UTF-8 topic, a duplicate property block, a wrong length) while
//! everything else stays as the packet says. The two make the same checks in
//! the same order; `direct`'s tests hold them to the same bytes and errors.

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{Span, MAX_REMAINING_LENGTH};
use crate::props::{Properties, Value};
use crate::types::*;
use crate::Protocol;

mod direct;

/// Why a packet cannot be written as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string or binary field longer than 65,535 bytes.
    FieldTooLong { field: &'static str, len: usize },
    /// A body longer than a Variable Byte Integer can announce.
    PacketTooLarge { len: usize },
    /// A Variable Byte Integer value above 268,435,455.
    VarintTooLarge { field: &'static str, value: u32 },
    /// A 5.0-only field (properties, reason codes) set on a 3.x packet.
    NotInVersion {
        field: &'static str,
        protocol: Protocol,
    },
    /// An override names a field the packet does not have.
    UnknownField { field: String, known: Vec<String> },
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::FieldTooLong { field, len } => {
                write!(f, "{field} is {len} bytes long; a length-prefixed field holds at most 65535")
            }
            EncodeError::PacketTooLarge { len } => {
                write!(f, "packet body of {len} bytes exceeds the largest remaining length ({MAX_REMAINING_LENGTH})")
            }
            EncodeError::VarintTooLarge { field, value } => {
                write!(f, "{field} = {value} exceeds the largest variable byte integer ({MAX_REMAINING_LENGTH})")
            }
            EncodeError::NotInVersion { field, protocol } => write!(
                f,
                "{field} exists only in MQTT 5.0, not in {protocol}; to send such bytes anyway use a raw override"
            ),
            EncodeError::UnknownField { field, known } => {
                write!(f, "no field {field:?} in this packet; fields are: {}", known.join(", "))
            }
        }
    }
}

impl std::error::Error for EncodeError {}

type R<T = ()> = Result<T, EncodeError>;

/// Where encoded bytes go.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn pos(&self) -> usize;
    /// The field `name` was written from `start` to the current position.
    #[inline(always)]
    fn mark(&mut self, _name: &'static str, _start: usize) {}
}

/// Counts without writing.
struct Counter(usize);

impl Sink for Counter {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    fn pos(&self) -> usize {
        self.0
    }
}

/// Writes and records field spans.
struct Tracer {
    out: Vec<u8>,
    spans: Vec<Span>,
}

impl Sink for Tracer {
    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
    fn pos(&self) -> usize {
        self.out.len()
    }
    fn mark(&mut self, name: &'static str, start: usize) {
        self.spans.push(Span {
            name,
            start,
            end: self.out.len(),
        });
    }
}

fn varint_bytes(value: u32, field: &'static str) -> R<([u8; 4], usize)> {
    if value > MAX_REMAINING_LENGTH {
        return Err(EncodeError::VarintTooLarge { field, value });
    }
    let mut buf = [0u8; 4];
    let mut v = value;
    let mut n = 0;
    for slot in buf.iter_mut() {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        *slot = b;
        n += 1;
        if v == 0 {
            break;
        }
    }
    Ok((buf, n))
}

/// Encodes a Variable Byte Integer in its shortest form.
pub fn encode_varint(value: u32) -> Option<Vec<u8>> {
    varint_bytes(value, "value")
        .ok()
        .map(|(b, n)| b.get(..n).unwrap_or(&[]).to_vec())
}

/// Bytes a Variable Byte Integer of `value` takes in its shortest form.
pub(crate) fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

struct Enc<'s, S: Sink> {
    s: &'s mut S,
    v5: bool,
    protocol: Protocol,
}

impl<S: Sink> Enc<'_, S> {
    #[inline]
    fn u8(&mut self, name: &'static str, v: u8) {
        let at = self.s.pos();
        self.s.put(&[v]);
        self.s.mark(name, at);
    }
    #[inline]
    fn u16(&mut self, name: &'static str, v: u16) {
        let at = self.s.pos();
        self.s.put(&v.to_be_bytes());
        self.s.mark(name, at);
    }
    fn varint(&mut self, name: &'static str, v: u32) -> R {
        let at = self.s.pos();
        let (b, n) = varint_bytes(v, name)?;
        self.s.put(b.get(..n).unwrap_or(&[]));
        self.s.mark(name, at);
        Ok(())
    }
    #[inline]
    fn binary(&mut self, name: &'static str, v: &[u8]) -> R {
        let len = u16::try_from(v.len()).map_err(|_| EncodeError::FieldTooLong {
            field: name,
            len: v.len(),
        })?;
        let at = self.s.pos();
        self.s.put(&len.to_be_bytes());
        self.s.put(v);
        self.s.mark(name, at);
        Ok(())
    }
    fn no_props(&self, props: &Properties) -> R {
        if !self.v5 && !props.is_empty() {
            return Err(EncodeError::NotInVersion {
                field: "properties",
                protocol: self.protocol,
            });
        }
        Ok(())
    }

    fn properties(&mut self, props: &Properties) -> R {
        if !self.v5 {
            return self.no_props(props);
        }
        let mut counter = Counter(0);
        {
            let mut c = Enc {
                s: &mut counter,
                v5: true,
                protocol: self.protocol,
            };
            c.property_list(props)?;
        }
        let block = u32::try_from(counter.0).unwrap_or(u32::MAX);
        let at = self.s.pos();
        self.varint("property_length", block)?;
        self.property_list(props)?;
        self.s.mark("properties", at);
        Ok(())
    }

    fn property_list(&mut self, props: &Properties) -> R {
        for p in props.iter() {
            let at = self.s.pos();
            self.s.put(&[p.id()]);
            let name = p.name();
            match p.value() {
                Value::Byte(v) => self.s.put(&[v]),
                Value::TwoByte(v) => self.s.put(&v.to_be_bytes()),
                Value::FourByte(v) => self.s.put(&v.to_be_bytes()),
                Value::Varint(v) => {
                    let (b, n) = varint_bytes(v, name)?;
                    self.s.put(b.get(..n).unwrap_or(&[]));
                }
                Value::Binary(v) => self.binary(name, v)?,
                Value::Utf8(v) => self.binary(name, v.as_bytes())?,
                Value::Utf8Pair(k, v) => {
                    self.binary("user_property.name", k.as_bytes())?;
                    self.binary("user_property.value", v.as_bytes())?;
                }
            }
            self.s.mark(name, at);
        }
        Ok(())
    }

    fn reason_only_v5(&self, code: u8) -> R {
        if !self.v5 && code != 0 {
            return Err(EncodeError::NotInVersion {
                field: "reason_code",
                protocol: self.protocol,
            });
        }
        Ok(())
    }

    fn body(&mut self, packet: &Packet) -> R {
        match packet {
            Packet::Connect(c) => self.connect(c),
            Packet::ConnAck(c) => {
                self.u8("acknowledge_flags", u8::from(c.session_present));
                self.u8("reason_code", c.code);
                self.properties(&c.properties)
            }
            Packet::Publish(p) => {
                self.binary("topic", p.topic.as_bytes())?;
                if p.qos != QoS::AtMostOnce {
                    self.u16("packet_id", p.packet_id);
                }
                self.properties(&p.properties)?;
                let at = self.s.pos();
                self.s.put(&p.payload);
                self.s.mark("payload", at);
                Ok(())
            }
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                self.u16("packet_id", r.packet_id);
                self.reason_only_v5(r.reason_code)?;
                self.no_props(&r.properties)?;
                if self.v5 && (r.reason_code != 0 || !r.properties.is_empty()) {
                    self.u8("reason_code", r.reason_code);
                    if !r.properties.is_empty() {
                        self.properties(&r.properties)?;
                    }
                }
                Ok(())
            }
            Packet::Subscribe(s) => {
                self.u16("packet_id", s.packet_id);
                self.properties(&s.properties)?;
                for f in &s.filters {
                    self.binary("topic_filter", f.filter.as_bytes())?;
                    self.u8("subscription_options", f.options.to_byte(self.protocol));
                }
                Ok(())
            }
            Packet::SubAck(s) => {
                self.u16("packet_id", s.packet_id);
                self.properties(&s.properties)?;
                for &c in &s.reason_codes {
                    self.u8("reason_code", c);
                }
                Ok(())
            }
            Packet::Unsubscribe(u) => {
                self.u16("packet_id", u.packet_id);
                self.properties(&u.properties)?;
                for f in &u.filters {
                    self.binary("topic_filter", f.as_bytes())?;
                }
                Ok(())
            }
            Packet::UnsubAck(u) => {
                self.u16("packet_id", u.packet_id);
                if !self.v5 && !u.reason_codes.is_empty() {
                    return Err(EncodeError::NotInVersion {
                        field: "reason_codes",
                        protocol: self.protocol,
                    });
                }
                self.properties(&u.properties)?;
                for &c in &u.reason_codes {
                    self.u8("reason_code", c);
                }
                Ok(())
            }
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
            | Packet::Auth(Auth {
                reason_code,
                properties,
            }) => {
                self.reason_only_v5(*reason_code)?;
                self.no_props(properties)?;
                if self.v5 && (*reason_code != 0 || !properties.is_empty()) {
                    self.u8("reason_code", *reason_code);
                    if !properties.is_empty() {
                        self.properties(properties)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn connect(&mut self, c: &Connect) -> R {
        let name: &[u8] = if c.protocol == Protocol::V3_1 {
            b"MQIsdp"
        } else {
            b"MQTT"
        };
        self.binary("protocol_name", name)?;
        self.u8("protocol_level", c.protocol.level());
        let flags = connect_flags(c);
        self.u8("connect_flags", flags);
        self.u16("keep_alive", c.keep_alive);
        self.properties(&c.properties)?;
        self.binary("client_id", c.client_id.as_bytes())?;
        if let Some(w) = &c.will {
            self.properties(&w.properties)?;
            self.binary("will_topic", w.topic.as_bytes())?;
            self.binary("will_payload", &w.payload)?;
        }
        if let Some(u) = &c.username {
            self.binary("username", u.as_bytes())?;
        }
        if let Some(p) = &c.password {
            self.binary("password", p)?;
        }
        Ok(())
    }
}

/// The protocol a packet is written in: a CONNECT carries its own.
fn effective(packet: &Packet, protocol: Protocol) -> Protocol {
    match packet {
        Packet::Connect(c) => c.protocol,
        _ => protocol,
    }
}

/// CONNECT's flags byte (3.1.2.3) for what `c` holds.
fn connect_flags(c: &Connect) -> u8 {
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(w) = &c.will {
        flags |= 0b100 | (w.qos.as_u8() << 3) | (u8::from(w.retain) << 5);
    }
    if c.password.is_some() {
        flags |= 0b100_0000;
    }
    if c.username.is_some() {
        flags |= 0b1000_0000;
    }
    flags
}

fn first_byte(packet: &Packet) -> u8 {
    let ty = packet.packet_type();
    let flags = match packet {
        Packet::Publish(p) => (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain),
        _ => ty.required_flags().unwrap_or(0),
    };
    ((ty as u8) << 4) | flags
}

/// The size `packet` takes on the wire (fixed header included).
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> R<usize> {
    direct::encoded_len(packet, protocol)
}

/// Appends `packet`, encoded for `protocol`, to `out`.
#[inline]
pub fn encode(packet: &Packet, protocol: Protocol, out: &mut BytesMut) -> R {
    direct::encode(packet, protocol, out)
}

/// Encodes `packet` into a new buffer.
pub fn encode_bytes(packet: &Packet, protocol: Protocol) -> R<Bytes> {
    let mut out = BytesMut::new();
    encode(packet, protocol, &mut out)?;
    Ok(out.freeze())
}

/// Deliberate deviations from a packet's correct encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces the whole first byte (type and flags).
    pub first_byte: Option<u8>,
    /// Replaces the low nibble of the first byte.
    pub flags: Option<u8>,
    /// Replaces the remaining-length bytes verbatim (may be non-minimal,
    /// too long, or disagree with the body).
    pub remaining_length: Option<Vec<u8>>,
    /// Replaces the bytes of named fields: `topic`, `packet_id`,
    /// `properties`, `client_id`… `name[i]` for the i-th occurrence.
    pub fields: Vec<(String, Vec<u8>)>,
    /// Bytes appended after the body (counted in the remaining length
    /// unless that is overridden).
    pub append: Vec<u8>,
    /// Cut the finished packet to this many bytes.
    pub truncate: Option<usize>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self == &Overrides::default()
    }
}

/// The fields of `packet`'s body as written, with their spans (relative to
/// the body start).
pub fn layout(packet: &Packet, protocol: Protocol) -> R<(Vec<u8>, Vec<Span>)> {
    let protocol = effective(packet, protocol);
    let mut t = Tracer {
        out: Vec::new(),
        spans: Vec::new(),
    };
    Enc {
        s: &mut t,
        v5: protocol.is_v5(),
        protocol,
    }
    .body(packet)?;
    Ok((t.out, t.spans))
}

/// Encodes `packet` with deliberate deviations.
pub fn encode_with(packet: &Packet, protocol: Protocol, o: &Overrides) -> R<Bytes> {
    if o.is_empty() {
        return encode_bytes(packet, protocol);
    }
    let (mut body, spans) = layout(packet, protocol)?;
    let mut edits: Vec<(std::ops::Range<usize>, &[u8])> = Vec::new();
    for (name, bytes) in &o.fields {
        let (base, index) = match name.split_once('[') {
            Some((b, rest)) => (
                b,
                rest.trim_end_matches(']')
                    .parse::<usize>()
                    .unwrap_or(usize::MAX),
            ),
            None => (name.as_str(), 0),
        };
        let span = spans
            .iter()
            .filter(|s| s.name == base)
            .nth(index)
            .ok_or_else(|| {
                let mut known: Vec<String> = spans.iter().map(|s| s.name.to_string()).collect();
                known.dedup();
                EncodeError::UnknownField {
                    field: name.clone(),
                    known,
                }
            })?;
        edits.push((span.start..span.end, bytes));
    }
    // Apply from the back so earlier spans stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    for (range, bytes) in edits {
        if range.end <= body.len() {
            body.splice(range, bytes.iter().copied());
        }
    }
    body.extend_from_slice(&o.append);
    let mut out = BytesMut::with_capacity(body.len() + 5);
    let mut first = o.first_byte.unwrap_or_else(|| first_byte(packet));
    if let Some(f) = o.flags {
        first = (first & 0xF0) | (f & 0x0F);
    }
    out.put_u8(first);
    match &o.remaining_length {
        Some(raw) => out.put_slice(raw),
        None => {
            let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
            let (vbi, n) = varint_bytes(len, "remaining_length")
                .map_err(|_| EncodeError::PacketTooLarge { len: body.len() })?;
            out.put_slice(vbi.get(..n).unwrap_or(&[]));
        }
    }
    out.put_slice(&body);
    if let Some(n) = o.truncate {
        out.truncate(n);
    }
    Ok(out.freeze())
}
