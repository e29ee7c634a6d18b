//! The encoder: packets → bytes, valid or, on request, deliberately not.
//!
//! The body of a packet is written through a [`Sink`] twice: once into a
//! counter to learn the remaining length, once into the buffer. A third sink
//! records where each named field lies, which is how [`Overrides`] replace a
//! field's bytes (an invalid UTF-8 topic, a duplicate property block, a wrong
//! length) while everything else stays as the packet says.
//!
//! Why one file of about 800 lines: every packet type's writer and the fault
//! overrides it honours sit side by side, so that a reader sees, field by
//! field, what is written and what a deliberate fault may replace; split by
//! packet type, each fault would be looked up in another file.

use bytes::{BufMut, Bytes, BytesMut};

use crate::decode::{Span, MAX_REMAINING_LENGTH};
use crate::props::{Properties, Value};
use crate::types::*;
use crate::Protocol;

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

struct Writer<'a> {
    out: &'a mut BytesMut,
    start: usize,
}

impl Sink for Writer<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.out.put_slice(bytes);
    }
    fn pos(&self) -> usize {
        self.out.len() - self.start
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

fn first_byte(packet: &Packet) -> u8 {
    let ty = packet.packet_type();
    let flags = match packet {
        Packet::Publish(p) => (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain),
        _ => ty.required_flags().unwrap_or(0),
    };
    ((ty as u8) << 4) | flags
}

/// The body length of the common packets without properties, after the
/// same checks in the same order as [`Enc::body`]; `None` for everything
/// else, which goes through a [`Counter`].
#[inline]
fn fast_body_len(packet: &Packet, protocol: Protocol) -> Option<R<usize>> {
    let v5 = protocol.is_v5();
    match packet {
        Packet::Publish(p) if p.properties.is_empty() => {
            let topic = p.topic.len();
            if u16::try_from(topic).is_err() {
                return Some(Err(EncodeError::FieldTooLong {
                    field: "topic",
                    len: topic,
                }));
            }
            let id = if p.qos != QoS::AtMostOnce { 2 } else { 0 };
            // 5.0: an empty property block is its length, 0.
            Some(Ok(2 + topic + id + usize::from(v5) + p.payload.len()))
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r)
            if r.properties.is_empty() =>
        {
            if !v5 && r.reason_code != 0 {
                return Some(Err(EncodeError::NotInVersion {
                    field: "reason_code",
                    protocol,
                }));
            }
            Some(Ok(if v5 && r.reason_code != 0 { 3 } else { 2 }))
        }
        Packet::PingReq | Packet::PingResp => Some(Ok(0)),
        _ => None,
    }
}

fn body_len(packet: &Packet, protocol: Protocol) -> R<usize> {
    if let Some(len) = fast_body_len(packet, protocol) {
        return len;
    }
    let mut counter = Counter(0);
    Enc {
        s: &mut counter,
        v5: protocol.is_v5(),
        protocol,
    }
    .body(packet)?;
    Ok(counter.0)
}

/// The size `packet` takes on the wire (fixed header included).
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> R<usize> {
    let protocol = effective(packet, protocol);
    let len = body_len(packet, protocol)?;
    // Not `ok_or`: that builds (and drops) the error every time.
    let Some(rl) = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_REMAINING_LENGTH)
    else {
        return Err(EncodeError::PacketTooLarge { len });
    };
    Ok(1 + varint_len(rl) + len)
}

/// Appends `packet`, encoded for `protocol`, to `out`.
pub fn encode(packet: &Packet, protocol: Protocol, out: &mut BytesMut) -> R {
    // The common packets without properties (never a CONNECT, so the
    // protocol stands) are written straight out.
    match packet {
        Packet::Publish(p) if p.properties.is_empty() => return encode_publish(p, protocol, out),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r)
            if r.properties.is_empty() =>
        {
            return encode_response(first_byte(packet), r, protocol, out)
        }
        Packet::PingReq | Packet::PingResp => {
            out.reserve(2);
            out.put_slice(&[first_byte(packet), 0]);
            return Ok(());
        }
        _ => {}
    }
    encode_general(packet, protocol, out)
}

/// [`encode`] through the [`Sink`]s: a [`Counter`] pass, then a [`Writer`] pass.
#[inline(never)]
fn encode_general(packet: &Packet, protocol: Protocol, out: &mut BytesMut) -> R {
    let protocol = effective(packet, protocol);
    let len = body_len(packet, protocol)?;
    // Not `ok_or`: that builds (and drops) the error every time.
    let Some(rl) = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_REMAINING_LENGTH)
    else {
        return Err(EncodeError::PacketTooLarge { len });
    };
    let (vbi, n) = varint_bytes(rl, "remaining_length")?;
    out.reserve(1 + n + len);
    out.put_u8(first_byte(packet));
    out.put_slice(vbi.get(..n).unwrap_or(&[]));
    let start = out.len();
    Enc {
        s: &mut Writer { out, start },
        v5: protocol.is_v5(),
        protocol,
    }
    .body(packet)
}

/// [`encode`] for a PUBLISH without properties: the checks of [`Enc::body`]
/// and [`encode`] in their order, then each field written once.
#[inline]
fn encode_publish(p: &Publish, protocol: Protocol, out: &mut BytesMut) -> R {
    let v5 = protocol.is_v5();
    let topic = p.topic.as_bytes();
    let Ok(topic_len) = u16::try_from(topic.len()) else {
        return Err(EncodeError::FieldTooLong {
            field: "topic",
            len: topic.len(),
        });
    };
    let with_id = p.qos != QoS::AtMostOnce;
    // 5.0: an empty property block is its length, 0.
    let len = 2 + topic.len() + if with_id { 2 } else { 0 } + usize::from(v5) + p.payload.len();
    // Not `ok_or`: that builds (and drops) the error every time.
    let Some(rl) = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_REMAINING_LENGTH)
    else {
        return Err(EncodeError::PacketTooLarge { len });
    };
    let first = ((PacketType::Publish as u8) << 4)
        | (u8::from(p.dup) << 3)
        | (p.qos.as_u8() << 1)
        | u8::from(p.retain);
    out.reserve(5 + len);
    let [t0, t1] = topic_len.to_be_bytes();
    if rl < 128 {
        // Fixed-size writes compile to plain stores.
        out.put_slice(&[first, rl as u8, t0, t1]);
    } else {
        let (vbi, n) = varint_bytes(rl, "remaining_length")?;
        out.put_u8(first);
        out.put_slice(vbi.get(..n).unwrap_or(&[]));
        out.put_slice(&[t0, t1]);
    }
    out.put_slice(topic);
    let [i0, i1] = p.packet_id.to_be_bytes();
    match (with_id, v5) {
        (true, true) => out.put_slice(&[i0, i1, 0]),
        (true, false) => out.put_slice(&[i0, i1]),
        (false, true) => out.put_u8(0),
        (false, false) => {}
    }
    out.put_slice(&p.payload);
    Ok(())
}

/// [`encode`] for a PUBACK, PUBREC, PUBREL or PUBCOMP without properties.
#[inline]
fn encode_response(first: u8, r: &PubResponse, protocol: Protocol, out: &mut BytesMut) -> R {
    let v5 = protocol.is_v5();
    if !v5 && r.reason_code != 0 {
        return Err(EncodeError::NotInVersion {
            field: "reason_code",
            protocol,
        });
    }
    let [hi, lo] = r.packet_id.to_be_bytes();
    if v5 && r.reason_code != 0 {
        out.reserve(5);
        out.put_slice(&[first, 3, hi, lo, r.reason_code]);
    } else {
        out.reserve(4);
        out.put_slice(&[first, 2, hi, lo]);
    }
    Ok(())
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

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use arbitrary::Unstructured;

    /// What the general path writes: the packet through the [`Sink`]s.
    fn general(packet: &Packet, protocol: Protocol) -> R<Vec<u8>> {
        let protocol = effective(packet, protocol);
        let len = {
            let mut counter = Counter(0);
            Enc {
                s: &mut counter,
                v5: protocol.is_v5(),
                protocol,
            }
            .body(packet)?;
            counter.0
        };
        // Not `ok_or`: that builds (and drops) the error every time.
        let Some(rl) = u32::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_REMAINING_LENGTH)
        else {
            return Err(EncodeError::PacketTooLarge { len });
        };
        let (vbi, n) = varint_bytes(rl, "remaining_length")?;
        let (body, _) = layout(packet, protocol)?;
        let mut out = vec![first_byte(packet)];
        out.extend_from_slice(&vbi[..n]);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn check(packet: &Packet, protocol: Protocol) {
        let expected = general(packet, protocol);
        let mut out = BytesMut::new();
        let got = encode(packet, protocol, &mut out).map(|()| out.to_vec());
        assert_eq!(got, expected, "{packet:?} {protocol}");
        assert_eq!(
            encoded_len(packet, protocol),
            expected.map(|b| b.len()),
            "{packet:?} {protocol}"
        );
    }

    #[test]
    fn fast_paths_match_the_general_path() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut bytes = vec![0u8; 4096];
        for _ in 0..3000 {
            for b in bytes.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            for protocol in Protocol::ALL {
                for from in [crate::Sender::Client, crate::Sender::Server] {
                    let mut u = Unstructured::new(&bytes);
                    if let Ok(p) = crate::gen::packet(&mut u, protocol, from) {
                        check(&p, protocol);
                    }
                }
            }
        }
        // Edge cases the generator may not reach.
        let long = ByteString::from("t".repeat(70_000));
        let big = Bytes::from(vec![7u8; 200]);
        for protocol in Protocol::ALL {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                for (topic, payload) in [
                    (ByteString::from("a/b"), Bytes::new()),
                    (ByteString::from(""), big.clone()),
                    (long.clone(), Bytes::new()),
                    (ByteString::from("x".repeat(125)), Bytes::new()),
                    (ByteString::from("x".repeat(16_400)), Bytes::new()),
                ] {
                    let p = Packet::Publish(Publish {
                        dup: qos != QoS::AtMostOnce,
                        qos,
                        retain: true,
                        topic,
                        packet_id: 513,
                        properties: Properties::new(),
                        payload,
                    });
                    check(&p, protocol);
                }
            }
            for code in [0u8, 0x10, 0x80] {
                let mut r = PubResponse::new(258);
                r.reason_code = code;
                for p in [
                    Packet::PubAck(r.clone()),
                    Packet::PubRec(r.clone()),
                    Packet::PubRel(r.clone()),
                    Packet::PubComp(r.clone()),
                ] {
                    check(&p, protocol);
                }
            }
            check(&Packet::PingReq, protocol);
            check(&Packet::PingResp, protocol);
        }
    }
}
