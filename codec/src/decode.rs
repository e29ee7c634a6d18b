//! The decoder: bytes → packets, in two passes.
//!
//! Pass one ([`check_header`]) reads only the fixed header from a byte slice:
//! type, flags, direction and the remaining length, and refuses a packet larger
//! than the configured maximum before a single byte of it is buffered. Pass two
//! ([`parse_frame`]) parses a complete frame held in a [`Bytes`]; strings and
//! payloads are slices of that frame, never copies.
//!
//! Every byte access goes through [`Reader`], which checks bounds and turns a
//! short read into an error naming the field: no indexing, no arithmetic that
//! can wrap.
//!
//! Why one file of 1,580 lines: the reader for each packet type, the checks
//! that cite the statements, and the borrowing and owned entry points share
//! one cursor type and one error path; the tests that hold the fast paths to
//! the general ones are in `decode/tests.rs`. Splitting the readers by
//! packet type is the planned clean-up (issue 12's codec work), not done
//! here: the release build's instruction counts move with the compiler's
//! inlining inside this module, and every change is measured against them.

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::{DecodeError, ErrorKind, Field};
use crate::props::{self, Properties, Property, PropertyContext, ValueType};
use crate::reason;
use crate::topic;
use crate::types::*;
use crate::Protocol;

/// The largest remaining length a Variable Byte Integer can express.
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

/// What the decoder needs to know about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The version of the stream. A CONNECT is always parsed by its own protocol level.
    pub protocol: Protocol,
    /// Who sent the bytes.
    pub from: Sender,
    /// Packets whose total size (fixed header included) exceeds this are refused
    /// from their fixed header, before anything is buffered for them.
    pub max_packet_size: u32,
}

impl DecodeOptions {
    pub fn new(protocol: Protocol, from: Sender) -> DecodeOptions {
        DecodeOptions {
            protocol,
            from,
            max_packet_size: MAX_REMAINING_LENGTH + 5,
        }
    }
    pub fn with_max_packet_size(mut self, max: u32) -> DecodeOptions {
        self.max_packet_size = max;
        self
    }
}

/// The outcome of decoding from the front of a buffer.
// Boxing the packet would cost an allocation per decoded packet on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<P = Packet> {
    /// A whole packet, `len` bytes long.
    Packet { packet: P, len: usize },
    /// The bytes end inside a packet: at least `needed` more are required.
    Incomplete { needed: usize },
}

/// A checked fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    pub flags: u8,
    /// Length of the fixed header itself (2 to 5 bytes).
    pub header_len: usize,
    pub remaining_length: u32,
}

impl FixedHeader {
    /// Total size of the packet.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_length as usize
    }
}

/// One decoded field and where it lies (offsets relative to the packet start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub name: &'static str,
    pub start: usize,
    pub end: usize,
}

/// Receives field spans while a packet is parsed; `()` records nothing and
/// compiles away.
pub trait Trace {
    fn span(&mut self, name: &'static str, start: usize, end: usize);
}

impl Trace for () {
    #[inline(always)]
    fn span(&mut self, _: &'static str, _: usize, _: usize) {}
}

impl Trace for Vec<Span> {
    fn span(&mut self, name: &'static str, start: usize, end: usize) {
        self.push(Span { name, start, end });
    }
}

fn error(
    opts: &DecodeOptions,
    offset: usize,
    packet: Option<PacketType>,
    kind: ErrorKind,
) -> DecodeError {
    DecodeError {
        offset,
        packet,
        protocol: opts.protocol,
        from: opts.from,
        kind,
    }
}

/// Whether `check_header` accepts `first` as a packet's first byte from a
/// client (`client`) or a server in protocol `proto` (`Protocol as usize`).
/// The same rules as its checks, spelt out for the table below; a test
/// holds the two together.
const fn first_byte_ok(first: u8, client: bool, proto: usize) -> bool {
    let ty = first >> 4;
    let flags = first & 0x0F;
    let v5 = proto == Protocol::V5 as usize;
    let allowed = match ty {
        1 | 8 | 10 | 12 => client,
        2 | 9 | 11 | 13 => !client,
        3..=7 => true,
        14 => client || v5,
        15 => v5,
        _ => false,
    };
    if !allowed {
        return false;
    }
    match ty {
        3 => {
            let qos = (flags >> 1) & 0b11;
            qos != 3 && !(qos == 0 && flags & 0b1000 != 0)
        }
        6 | 8 | 10 => flags == 0b0010 || (proto == Protocol::V3_1 as usize && flags == 0b1010),
        _ => flags == 0,
    }
}

/// The packet type of each first byte [`first_byte_ok`] accepts, `None`
/// for the others: the fast paths' type, direction and flag checks and
/// their type in one byte load (a bit table and then the type, tried
/// before, took two look-ups and a bit test).
const fn first_byte_table(client: bool, proto: usize) -> [Option<PacketType>; 256] {
    let mut t = [None; 256];
    let mut b = 0usize;
    while b < 256 {
        if first_byte_ok(b as u8, client, proto) && b >= 16 {
            t[b] = Some(PacketType::ALL[(b >> 4) - 1]);
        }
        b += 1;
    }
    t
}

/// Accepted first bytes and their types, by sender (`Sender as usize`) and
/// protocol.
static FIRST_BYTE_TYPE: [[[Option<PacketType>; 256]; 3]; 2] = {
    let mut t = [[[None; 256]; 3]; 2];
    let mut p = 0;
    while p < 3 {
        t[Sender::Client as usize][p] = first_byte_table(true, p);
        t[Sender::Server as usize][p] = first_byte_table(false, p);
        p += 1;
    }
    t
};

/// The type of a packet starting with `first`, if `check_header` accepts
/// that byte from this sender in this version.
#[inline(always)]
fn first_byte_type(first: u8, opts: &DecodeOptions) -> Option<PacketType> {
    *FIRST_BYTE_TYPE
        .get(opts.from as usize)?
        .get(opts.protocol as usize)?
        .get(usize::from(first))?
}

/// Pass one: reads and checks the fixed header at the front of `input`.
/// `Ok(Err(needed))` when the header itself is incomplete. Rejects a reserved
/// type, wrong flags, a packet the sender may not send and an oversize packet
/// as soon as the bytes that show it are present.
#[inline(always)]
pub fn check_header(
    input: &[u8],
    opts: &DecodeOptions,
) -> Result<Result<FixedHeader, usize>, DecodeError> {
    if let Some(h) = short_header(input, opts) {
        return Ok(Ok(h));
    }
    check_header_long(input, opts)
}

/// [`check_header`] with its second fast path in line, for
/// [`decode_slice`]; in the stream decoder, the same in line cost the
/// one-byte-length path registers (owned telemetry 71,193 -> 72,067
/// instructions), so there it is a call.
#[inline(always)]
fn check_header_inline(
    input: &[u8],
    opts: &DecodeOptions,
) -> Result<Result<FixedHeader, usize>, DecodeError> {
    if let Some(h) = short_header(input, opts) {
        return Ok(Ok(h));
    }
    if let Some(h) = long_header(input, opts) {
        return Ok(Ok(h));
    }
    // The end of a stream read to its last byte: what the full path says
    // of no bytes, without the call.
    if input.is_empty() {
        return Ok(Err(2));
    }
    check_header_full(input, opts)
}

/// Fast path: a valid first byte (one table look-up for the type,
/// direction and flag checks) and a one-byte remaining length within the
/// maximum. Anything else takes the other paths, which find any error.
#[inline(always)]
fn short_header(input: &[u8], opts: &DecodeOptions) -> Option<FixedHeader> {
    let [first, len @ 0..=0x7F, ..] = *input else {
        return None;
    };
    let packet_type = first_byte_type(first, opts)?;
    if 2 + u64::from(len) > u64::from(opts.max_packet_size) {
        return None;
    }
    Some(FixedHeader {
        packet_type,
        flags: first & 0x0F,
        header_len: 2,
        remaining_length: u32::from(len),
    })
}

/// The second fast path: a remaining length of two to four bytes whose
/// last byte is not zero (so minimal in every version: the one question
/// 5.0 adds), within the maximum, after a valid first byte.
#[inline(always)]
fn long_header(input: &[u8], opts: &DecodeOptions) -> Option<FixedHeader> {
    let (&first, rest) = input.split_first()?;
    let mut value: u32 = 0;
    for (i, &b) in rest.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 != 0 {
            continue;
        }
        let header_len = 2 + i;
        let fits = u64::from(value) + header_len as u64 <= u64::from(opts.max_packet_size);
        if !(i > 0 && b != 0 && fits) {
            return None;
        }
        let packet_type = first_byte_type(first, opts)?;
        return Some(FixedHeader {
            packet_type,
            flags: first & 0x0F,
            header_len,
            remaining_length: value,
        });
    }
    None
}

/// [`long_header`], then the full path: out of line, for [`check_header`].
#[inline(never)]
fn check_header_long(
    input: &[u8],
    opts: &DecodeOptions,
) -> Result<Result<FixedHeader, usize>, DecodeError> {
    match long_header(input, opts) {
        Some(h) => Ok(Ok(h)),
        // As in `check_header_inline`.
        None if input.is_empty() => Ok(Err(2)),
        None => check_header_full(input, opts),
    }
}

#[inline(never)]
fn check_header_full(
    input: &[u8],
    opts: &DecodeOptions,
) -> Result<Result<FixedHeader, usize>, DecodeError> {
    let Some(&first) = input.first() else {
        return Ok(Err(2));
    };
    let type_bits = first >> 4;
    let flags = first & 0x0F;
    let packet_type = match PacketType::from_u8(type_bits) {
        Some(PacketType::Auth) if !opts.protocol.is_v5() => None,
        other => other,
    };
    let Some(packet_type) = packet_type else {
        return Err(error(
            opts,
            0,
            None,
            ErrorKind::ReservedPacketType(type_bits),
        ));
    };
    let e = |offset, kind| error(opts, offset, Some(packet_type), kind);
    // A CONNECT may come before the stream's version is known, so its
    // direction is checked against the version it will announce: any.
    if !packet_type.allowed_from(opts.from, opts.protocol) {
        return Err(e(0, ErrorKind::WrongDirection));
    }
    match packet_type.required_flags() {
        Some(required) => {
            // MQTT 3.1 sent PUBREL, SUBSCRIBE and UNSUBSCRIBE at QoS 1 with a DUP bit.
            let tolerated =
                opts.protocol == Protocol::V3_1 && required == 0b0010 && flags == 0b1010;
            if flags != required && !tolerated {
                return Err(e(0, ErrorKind::InvalidFlags { flags }));
            }
        }
        None => {
            let qos = (flags >> 1) & 0b11;
            if qos == 3 {
                return Err(e(0, ErrorKind::PublishQos3));
            }
            if qos == 0 && flags & 0b1000 != 0 {
                return Err(e(0, ErrorKind::DupOnQos0));
            }
        }
    }
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&b) = input.get(1 + i) else {
            return Ok(Err(1));
        };
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            let header_len = 2 + i;
            // A CONNECT is judged by the version it announces (checked in `connect`).
            if i > 0 && b == 0 && opts.protocol.is_v5() && packet_type != PacketType::Connect {
                return Err(e(
                    1,
                    ErrorKind::VarintNotMinimal {
                        field: "remaining_length",
                    },
                ));
            }
            let size = header_len as u64 + u64::from(value);
            if size > u64::from(opts.max_packet_size) {
                return Err(e(
                    1,
                    ErrorKind::PacketTooLarge {
                        size,
                        max: opts.max_packet_size,
                    },
                ));
            }
            return Ok(Ok(FixedHeader {
                packet_type,
                flags,
                header_len,
                remaining_length: value,
            }));
        }
    }
    Err(e(
        1,
        ErrorKind::VarintTooLong {
            field: "remaining_length",
        },
    ))
}

/// Decodes one packet from the front of `input` without consuming it.
/// Payloads and strings share `input`'s memory.
pub fn decode_bytes(input: &Bytes, opts: &DecodeOptions) -> Result<Decoded, DecodeError> {
    decode_traced(input, opts, &mut ())
}

/// Decodes one packet from the front of `input`, borrowing its strings and
/// binaries from `input`: no allocation, no reference counting. The same
/// checks as [`decode_bytes`]; [`PacketRef`] converts to an owned packet
/// when it must outlive `input`.
#[inline]
pub fn decode_slice<'a>(
    input: &'a [u8],
    opts: &DecodeOptions,
) -> Result<Decoded<PacketRef<'a>>, DecodeError> {
    let header = match check_header_inline(input, opts)? {
        Ok(h) => h,
        Err(needed) => return Ok(Decoded::Incomplete { needed }),
    };
    let len = header.packet_len();
    let Some(frame) = input.get(..len) else {
        return Ok(Decoded::Incomplete {
            needed: len - input.len(),
        });
    };
    let packet = parse_frame_ref(frame, &header, opts, &mut ())?;
    Ok(Decoded::Packet { packet, len })
}

/// [`decode_bytes`], reporting each field's span to `trace`.
pub fn decode_traced<T: Trace>(
    input: &Bytes,
    opts: &DecodeOptions,
    trace: &mut T,
) -> Result<Decoded, DecodeError> {
    let header = match check_header(input, opts)? {
        Ok(h) => h,
        Err(needed) => return Ok(Decoded::Incomplete { needed }),
    };
    let len = header.packet_len();
    if input.len() < len {
        return Ok(Decoded::Incomplete {
            needed: len - input.len(),
        });
    }
    let frame = input.slice(..len);
    let packet = parse_frame(&frame, &header, opts, trace)?;
    Ok(Decoded::Packet { packet, len })
}

/// A stream decoder: feeds on a [`BytesMut`] and hands out whole packets.
/// Error offsets count from the start of the stream. After a CONNECT from a
/// client the stream takes that CONNECT's protocol version.
#[derive(Debug, Clone)]
pub struct Decoder {
    pub options: DecodeOptions,
    /// Bytes consumed so far.
    pub position: usize,
}

impl Decoder {
    pub fn new(options: DecodeOptions) -> Decoder {
        Decoder {
            options,
            position: 0,
        }
    }

    /// `Ok(None)` when `buf` does not hold a whole packet yet; the caller reads
    /// more and calls again. A packet's bytes are split off `buf` only once
    /// complete, so nothing is allocated for an oversize packet.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let header = match check_header(buf, &self.options) {
            Ok(Ok(h)) => h,
            Ok(Err(_)) => return Ok(None),
            Err(e) => return Err(self.shift(e)),
        };
        let len = header.packet_len();
        if buf.len() < len {
            return Ok(None);
        }
        // The frame is consumed either way: a caller that chooses to carry on
        // after a refused packet resumes at the next one.
        let start = self.position;
        self.position += len;
        let shift = |mut e: DecodeError| {
            e.offset += start;
            e
        };
        if holds_no_data(&header) {
            // Nothing of the frame outlives the parse: read it in place and
            // skip it, rather than split it off (a reference count each way).
            let parsed = match parse(
                InPlace(buf.get(..len).unwrap_or(&[])),
                &header,
                &self.options,
                &mut (),
            ) {
                Ok(p) => Ok(Some(p)),
                Err(e) => Err(shift(e)),
            };
            buf.advance(len);
            return parsed;
        }
        let mut frame = buf.split_to(len).freeze();
        let src = Frame {
            frame: &frame,
            rest_at: std::cell::Cell::new(None),
        };
        match parse(&src, &header, &self.options, &mut ()) {
            Ok(mut packet) => {
                match &mut packet {
                    // The payload is the frame's tail: the frame itself becomes
                    // it, which saves a reference count up and one down.
                    Packet::Publish(p) => {
                        // (An empty payload stays `Bytes::new()`, holding no buffer.)
                        if let Some(at) = src.rest_at.get().filter(|&at| at < frame.len()) {
                            frame.advance(at);
                            // The placeholder is `Bytes::new()`: static, nothing
                            // to free, so its drop (an indirect call) is skipped.
                            std::mem::forget(std::mem::replace(&mut p.payload, frame));
                        }
                    }
                    Packet::Connect(c) => self.options.protocol = c.protocol,
                    _ => {}
                }
                Ok(Some(packet))
            }
            Err(e) => Err(shift(e)),
        }
    }

    /// How many more bytes the buffered partial packet needs, if known.
    pub fn needed(&self, buf: &[u8]) -> usize {
        match check_header(buf, &self.options) {
            Ok(Ok(h)) => h.packet_len().saturating_sub(buf.len()),
            Ok(Err(n)) => n,
            Err(_) => 0,
        }
    }

    fn shift(&self, mut e: DecodeError) -> DecodeError {
        e.offset += self.position;
        e
    }
}

/// Whether a packet with this header can hold no string or binary at all:
/// PINGREQ, PINGRESP, and a PUBACK, PUBREC, PUBREL or PUBCOMP too short for
/// properties.
#[inline]
fn holds_no_data(h: &FixedHeader) -> bool {
    match h.packet_type {
        PacketType::PingReq | PacketType::PingResp => true,
        PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
            h.remaining_length <= 3
        }
        _ => false,
    }
}

/// Owned output read in place from the stream's buffer, for a frame
/// [`holds_no_data`] admitted: the packet is built owned straight away,
/// without a borrowed packet to convert (which cost a second match on the
/// packet and a copy). A string or binary asked for all the same would be
/// copied out: correct, only slower, and not reached.
#[derive(Clone, Copy)]
struct InPlace<'a>(&'a [u8]);

impl Source for InPlace<'_> {
    type Str = ByteString;
    type Bin = Bytes;
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0
    }
    fn bin(&self, r: std::ops::Range<usize>) -> Bytes {
        Bytes::copy_from_slice(self.0.get(r).unwrap_or(&[]))
    }
    fn string(&self, r: std::ops::Range<usize>) -> Result<ByteString, std::str::Utf8Error> {
        byte_string(self.bin(r))
    }
}

/// Owned output for the stream decoder: like [`Shared`], and it notes where
/// the PUBLISH payload starts instead of slicing it, so that the caller can
/// hand over the frame itself.
struct Frame<'a> {
    frame: &'a Bytes,
    rest_at: std::cell::Cell<Option<usize>>,
}

impl Source for &Frame<'_> {
    type Str = ByteString;
    type Bin = Bytes;
    const TOPIC_STRING_IN_LINE: bool = true;
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.frame
    }
    #[inline]
    fn bin(&self, r: std::ops::Range<usize>) -> Bytes {
        self.frame.slice(r)
    }
    #[inline]
    fn string(&self, r: std::ops::Range<usize>) -> Result<ByteString, std::str::Utf8Error> {
        self.string_in_line(r)
    }
    #[inline(always)]
    fn string_in_line(&self, r: std::ops::Range<usize>) -> Result<ByteString, std::str::Utf8Error> {
        byte_string(self.frame.slice(r))
    }
    #[inline]
    fn rest(&self, r: std::ops::Range<usize>) -> Bytes {
        self.rest_at.set(Some(r.start));
        Bytes::new()
    }
}

/// Where a frame's strings and binaries come from: slices of a shared
/// [`Bytes`] (owned, zero-copy) or plain borrows of a byte slice.
pub trait Source {
    type Str: AsRef<str> + Clone + Default;
    type Bin: Clone + Default;
    fn bytes(&self) -> &[u8];
    fn bin(&self, r: std::ops::Range<usize>) -> Self::Bin;
    /// The range as a string, or the UTF-8 error.
    fn string(&self, r: std::ops::Range<usize>) -> Result<Self::Str, std::str::Utf8Error>;
    /// Whether a topic filter is read through [`Self::string_in_line`]:
    /// worth it for the borrowing source, whose filter reader is itself out
    /// of line; for the stream decoder's, it doubled that reader (owned
    /// control 9,347 -> 9,966 instructions).
    const FILTER_STRING_IN_LINE: bool = false;
    /// Whether a PUBLISH topic is: worth it for the stream decoder's source;
    /// for the borrowing one it cost the PUBLISH path more than the call.
    const TOPIC_STRING_IN_LINE: bool = false;
    /// [`Self::string`], in line where a source can afford it: for the
    /// topic-filter reader, itself out of line.
    #[inline(always)]
    fn string_in_line(&self, r: std::ops::Range<usize>) -> Result<Self::Str, std::str::Utf8Error> {
        self.string(r)
    }
    /// The rest of the frame from `r.start` (a PUBLISH payload).
    #[inline]
    fn rest(&self, r: std::ops::Range<usize>) -> Self::Bin {
        self.bin(r)
    }
}

/// Owned output: `ByteString` / `Bytes` sharing the frame's memory.
#[derive(Clone, Copy)]
struct Shared<'a>(&'a Bytes);

impl Source for Shared<'_> {
    type Str = ByteString;
    type Bin = Bytes;
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0
    }
    #[inline]
    fn bin(&self, r: std::ops::Range<usize>) -> Bytes {
        self.0.slice(r)
    }
    #[inline]
    fn string(&self, r: std::ops::Range<usize>) -> Result<ByteString, std::str::Utf8Error> {
        byte_string(self.0.slice(r))
    }
}

/// `bytes` as a [`ByteString`], or `str::from_utf8`'s error: what
/// `ByteString::try_from` returns, with the borrowing decoder's ASCII test
/// ([`ascii_str`]) in place of the library's `is_ascii` over the slice
/// (about 50 instructions for a 30-byte topic, against 12).
///
/// The codec's second `unsafe` block: the validation happens here, on the
/// very bytes handed over, and `byte_string_is_try_from` holds the result
/// to `try_from`'s for valid and invalid strings of every length to 80.
#[allow(unsafe_code)]
#[inline(always)]
fn byte_string(bytes: Bytes) -> Result<ByteString, std::str::Utf8Error> {
    if !all_ascii(&bytes) {
        std::str::from_utf8(&bytes)?;
    }
    // SAFETY: `bytes` is valid UTF-8: either `ascii_str` found every byte
    // below 0x80 or `str::from_utf8` accepted it just above, and `bytes`
    // has not changed since (it is owned here and moved into the result).
    Ok(unsafe { ByteString::from_bytes_unchecked(bytes) })
}

/// Borrowed output: `&str` / `&[u8]` into the input.
#[derive(Clone, Copy)]
struct Borrowed<'a>(&'a [u8]);

impl<'a> Source for Borrowed<'a> {
    type Str = &'a str;
    type Bin = &'a [u8];
    const FILTER_STRING_IN_LINE: bool = true;
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0
    }
    #[inline]
    fn bin(&self, r: std::ops::Range<usize>) -> &'a [u8] {
        self.0.get(r).unwrap_or(&[])
    }
    #[inline]
    fn string(&self, r: std::ops::Range<usize>) -> Result<&'a str, std::str::Utf8Error> {
        self.string_in_line(r)
    }
    #[inline(always)]
    fn string_in_line(&self, r: std::ops::Range<usize>) -> Result<&'a str, std::str::Utf8Error> {
        let b = self.0.get(r).unwrap_or(&[]);
        // As `ByteString::try_from` does for the owned output.
        match ascii_str(b) {
            Some(s) => Ok(s),
            None => std::str::from_utf8(b),
        }
    }
}

/// `b` as a string when every byte is ASCII, without a UTF-8 pass.
///
/// The codec's first `unsafe` block (the second is [`byte_string`]'s).
/// Nearly every string on the wire is ASCII, and for those `str::from_utf8`
/// (bytewise until its pointer is aligned, and again for the tail) costs
/// more than the rest of a small PUBLISH's decode. The ASCII test is
/// [`all_ascii`]'s, by windows or words that hold every byte (the
/// library's `is_ascii` over the slice beyond 32 bytes).
#[allow(unsafe_code)]
#[inline(always)]
fn ascii_str(b: &[u8]) -> Option<&str> {
    if all_ascii(b) {
        // SAFETY: every byte of `b` is below 0x80 (checked just above), and
        // such a sequence is valid UTF-8, one character per byte.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// Whether every byte of `b` is below 0x80, by windows that between them
/// hold every byte: for 16 to 32 bytes two 16-byte windows, each tested by
/// [`topic::ascii16`], which stays in vector registers beside the NUL scan
/// of the same windows (the library's `is_ascii` on them, before, works on
/// 8-byte words: borrowed telemetry 31,738 -> 31,444 instructions, owned
/// 67,201 -> 66,801); under 16 bytes two words ([`topic::short_words`]).
#[inline(always)]
fn all_ascii(b: &[u8]) -> bool {
    match (b.first_chunk::<16>(), b.last_chunk::<16>()) {
        // 16 to 32 bytes, most topics: the first sixteen and the last sixteen
        // bytes overlap, so between them they are every byte of `b`.
        (Some(head), Some(tail)) if b.len() <= 32 => topic::ascii16(head) & topic::ascii16(tail),
        // Shorter than 16 bytes (a client identifier, a user name): two
        // words that between them hold every byte of `b`, padded with an
        // ASCII byte.
        _ => match topic::short_words(b) {
            Some(w) => topic::words_ascii(w),
            None => b.is_ascii(),
        },
    }
}

/// The packet type a source produces.
type Out<Src> = Packet<<Src as Source>::Str, <Src as Source>::Bin>;

/// Bounds-checked reading over one packet frame.
struct Reader<'a, Src: Source, T: Trace> {
    /// Held by value: a slice or a pointer, kept in registers.
    src: Src,
    pos: usize,
    end: usize,
    opts: DecodeOptions,
    ty: PacketType,
    trace: &'a mut T,
}

type R<T> = Result<T, DecodeError>;

impl<'a, Src: Source, T: Trace> Reader<'a, Src, T> {
    fn err(&self, offset: usize, kind: ErrorKind) -> DecodeError {
        error(&self.opts, offset, Some(self.ty), kind)
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, field: Field) -> R<std::ops::Range<usize>> {
        if self.remaining() < n {
            return Err(self.err(self.pos, ErrorKind::UnexpectedEnd { field }));
        }
        let start = self.pos;
        self.pos += n;
        Ok(start..self.pos)
    }

    fn bytes(&self, r: std::ops::Range<usize>) -> &[u8] {
        self.src.bytes().get(r).unwrap_or(&[])
    }

    /// The bytes from the current position to the end of the frame (or of
    /// the property block being read).
    #[inline(always)]
    fn left(&self) -> &[u8] {
        self.src.bytes().get(self.pos..self.end).unwrap_or(&[])
    }

    #[inline]
    fn u8(&mut self, field: Field) -> R<u8> {
        let start = self.pos;
        let Some(&v) = self.left().first() else {
            return Err(self.err(start, ErrorKind::UnexpectedEnd { field }));
        };
        self.pos = start + 1;
        self.trace.span(field, start, self.pos);
        Ok(v)
    }

    #[inline]
    fn u16(&mut self, field: Field) -> R<u16> {
        let start = self.pos;
        let Some(&v) = self.left().first_chunk::<2>() else {
            return Err(self.err(start, ErrorKind::UnexpectedEnd { field }));
        };
        self.pos = start + 2;
        self.trace.span(field, start, self.pos);
        Ok(u16::from_be_bytes(v))
    }

    fn u32(&mut self, field: Field) -> R<u32> {
        let r = self.take(4, field)?;
        self.trace.span(field, r.start, r.end);
        let b = self.bytes(r);
        Ok(match b {
            [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => 0,
        })
    }

    fn varint(&mut self, field: Field) -> R<u32> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..4 {
            let r = self.take(1, field)?;
            let b = self.bytes(r).first().copied().unwrap_or(0);
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 && self.opts.protocol.is_v5() {
                    return Err(self.err(start, ErrorKind::VarintNotMinimal { field }));
                }
                self.trace.span(field, start, self.pos);
                return Ok(value);
            }
        }
        Err(self.err(start, ErrorKind::VarintTooLong { field }))
    }

    /// Two-byte length, then that many bytes.
    #[inline(always)]
    fn binary(&mut self, field: Field) -> R<Src::Bin> {
        let r = self.binary_range(field)?;
        Ok(self.src.bin(r))
    }

    /// The data range of a two-byte-length-prefixed field.
    #[inline(always)]
    fn binary_range(&mut self, field: Field) -> R<std::ops::Range<usize>> {
        let start = self.pos;
        let left = self.left();
        // A short length or a short value: both are reported at the length.
        let Some((&len, data)) = left.split_first_chunk::<2>() else {
            return Err(self.err(start, ErrorKind::UnexpectedEnd { field }));
        };
        let len = usize::from(u16::from_be_bytes(len));
        if data.len() < len {
            return Err(self.err(start, ErrorKind::UnexpectedEnd { field }));
        }
        let from = start + 2;
        self.pos = from + len;
        self.trace.span(field, start, self.pos);
        Ok(from..self.pos)
    }

    /// A UTF-8 Encoded String: well-formed, no U+0000.
    #[inline]
    fn utf8(&mut self, field: Field) -> R<Src::Str> {
        self.utf8_wild(field).map(|(s, _)| s)
    }

    /// [`Self::utf8`], also telling whether the string holds a wildcard
    /// character (`+` or `#`), found in the same pass as U+0000.
    #[inline(always)]
    fn utf8_wild(&mut self, field: Field) -> R<(Src::Str, bool)> {
        self.utf8_scanned::<false, false>(field)
    }

    /// [`Self::utf8_wild`]; with `FILTER` the scan is the one for topic
    /// filters ([`topic::scan_filter`]), which expects wildcards; `FILTER`
    /// or `TOPIC` (a PUBLISH topic) make the UTF-8 check in line for a
    /// source that asks for it ([`Source::FILTER_STRING_IN_LINE`],
    /// [`Source::TOPIC_STRING_IN_LINE`]).
    #[inline(always)]
    fn utf8_scanned<const FILTER: bool, const TOPIC: bool>(
        &mut self,
        field: Field,
    ) -> R<(Src::Str, bool)> {
        let r = self.binary_range(field)?;
        let start = r.start;
        // One UTF-8 pass (see `Source::string`).
        let in_line =
            (FILTER && Src::FILTER_STRING_IN_LINE) || (TOPIC && Src::TOPIC_STRING_IN_LINE);
        let s = if in_line {
            self.src.string_in_line(r)
        } else {
            self.src.string(r)
        };
        let s =
            s.map_err(|e| self.err(start + e.valid_up_to(), ErrorKind::InvalidUtf8 { field }))?;
        // A word-at-a-time scan without early exit; the position is looked
        // for only on the error path. UTF-8 errors are reported first.
        let b = s.as_ref().as_bytes();
        let (nul, wild) = if FILTER {
            topic::scan_filter(b)
        } else {
            topic::scan_nul_wildcard(b)
        };
        if nul {
            let i = b.iter().position(|&c| c == 0).unwrap_or(0);
            return Err(self.err(start + i, ErrorKind::NullCharacter { field }));
        }
        Ok((s, wild))
    }

    fn rest(&mut self, field: Field) -> Src::Bin {
        let start = self.pos;
        self.pos = self.end.max(start);
        self.trace.span(field, start, self.pos);
        self.src.rest(start..self.pos)
    }

    fn finish(&self) -> R<()> {
        if self.remaining() > 0 {
            return Err(self.err(
                self.pos,
                ErrorKind::TrailingBytes {
                    count: self.remaining(),
                },
            ));
        }
        Ok(())
    }

    fn packet_id(&mut self) -> R<u16> {
        let at = self.pos;
        let id = self.u16("packet_id")?;
        if id == 0 {
            return Err(self.err(at, ErrorKind::PacketIdZero));
        }
        Ok(id)
    }

    fn reason_code(&mut self) -> R<u8> {
        let at = self.pos;
        let code = self.u8("reason_code")?;
        if !reason::is_valid(self.ty, code, self.opts.from, self.opts.protocol) {
            return Err(self.err(at, ErrorKind::InvalidReasonCode { code }));
        }
        Ok(code)
    }

    /// A 5.0 property list: length, then properties allowed in `ctx`.
    #[inline(always)]
    fn properties(&mut self, ctx: PropertyContext) -> R<Properties<Src::Str, Src::Bin>> {
        // The common empty block, a single zero length byte: what the full
        // path makes of it, without its loop.
        if self.pos < self.end && self.src.bytes().get(self.pos) == Some(&0) {
            let start = self.pos;
            self.pos += 1;
            self.trace.span("property_length", start, self.pos);
            return Ok(Properties::new());
        }
        self.properties_full(ctx)
    }

    fn properties_full(&mut self, ctx: PropertyContext) -> R<Properties<Src::Str, Src::Bin>> {
        let len_at = self.pos;
        let len = self.varint("property_length")? as usize;
        if len > self.remaining() {
            return Err(self.err(len_at, ErrorKind::PropertyLengthOverflow));
        }
        let outer_end = self.end;
        self.end = self.pos + len;
        let result = self.property_list(ctx);
        self.end = outer_end;
        result
    }

    fn property_list(&mut self, ctx: PropertyContext) -> R<Properties<Src::Str, Src::Bin>> {
        let mut list = Vec::new();
        let mut seen: u64 = 0;
        // Where Authentication Data was, to point at it if the method is missing.
        let mut auth_data_at = None;
        while self.remaining() > 0 {
            let at = self.pos;
            let id = self.varint("property_id")?;
            let info = u8::try_from(id).ok().and_then(props::info).ok_or_else(|| {
                self.err(
                    at,
                    ErrorKind::UnknownProperty {
                        id: id.min(255) as u8,
                    },
                )
            })?;
            let id = info.id;
            if !info.contexts.contains(&ctx) {
                return Err(self.err(at, ErrorKind::PropertyNotAllowed { id }));
            }
            let repeatable = id == 0x26 || (id == 0x0B && ctx == PropertyContext::Publish);
            let bit = 1u64 << (id & 63);
            if seen & bit != 0 && !repeatable {
                return Err(self.err(at, ErrorKind::DuplicateProperty { id }));
            }
            seen |= bit;
            if id == 0x16 {
                auth_data_at = Some(at);
            }
            let name = info.name;
            let bad = |r: &Self, value: u32| r.err(at, ErrorKind::PropertyValue { id, value });
            let prop = match info.value {
                ValueType::Byte => {
                    let v = self.u8(name)?;
                    // Every byte-valued property is a 0/1 flag except Maximum QoS, which is 0 or 1 too.
                    if v > 1 {
                        return Err(bad(self, u32::from(v)));
                    }
                    match id {
                        0x01 => Property::PayloadFormatIndicator(v),
                        0x17 => Property::RequestProblemInformation(v),
                        0x19 => Property::RequestResponseInformation(v),
                        0x24 => Property::MaximumQoS(v),
                        0x25 => Property::RetainAvailable(v),
                        0x28 => Property::WildcardSubscriptionAvailable(v),
                        0x29 => Property::SubscriptionIdentifierAvailable(v),
                        _ => Property::SharedSubscriptionAvailable(v),
                    }
                }
                ValueType::TwoByte => {
                    let v = self.u16(name)?;
                    match id {
                        0x13 => Property::ServerKeepAlive(v),
                        0x21 if v == 0 => return Err(bad(self, 0)),
                        0x21 => Property::ReceiveMaximum(v),
                        0x22 => Property::TopicAliasMaximum(v),
                        0x23 if v == 0 => return Err(bad(self, 0)),
                        _ => Property::TopicAlias(v),
                    }
                }
                ValueType::FourByte => {
                    let v = self.u32(name)?;
                    match id {
                        0x02 => Property::MessageExpiryInterval(v),
                        0x11 if ctx == PropertyContext::Disconnect
                            && self.opts.from == Sender::Server =>
                        {
                            return Err(self.err(at, ErrorKind::SessionExpiryFromServer))
                        }
                        0x11 => Property::SessionExpiryInterval(v),
                        0x18 => Property::WillDelayInterval(v),
                        0x27 if v == 0 => return Err(bad(self, 0)),
                        _ => Property::MaximumPacketSize(v),
                    }
                }
                ValueType::Varint => {
                    let v = self.varint(name)?;
                    if ctx == PropertyContext::Publish && self.opts.from == Sender::Client {
                        return Err(self.err(at, ErrorKind::SubscriptionIdFromClient));
                    }
                    if v == 0 {
                        return Err(bad(self, 0));
                    }
                    Property::SubscriptionIdentifier(v)
                }
                ValueType::Binary => {
                    let v = self.binary(name)?;
                    match id {
                        0x09 => Property::CorrelationData(v),
                        _ => Property::AuthenticationData(v),
                    }
                }
                ValueType::Utf8 => {
                    let v = self.utf8(name)?;
                    match id {
                        0x03 => Property::ContentType(v),
                        0x08 => {
                            let check = if v.as_ref().is_empty() {
                                Err(topic::TopicError::Empty)
                            } else {
                                topic::validate_name(v.as_ref())
                            };
                            if let Err(error) = check {
                                return Err(self.err(
                                    at,
                                    ErrorKind::TopicName {
                                        field: "response_topic",
                                        error,
                                    },
                                ));
                            }
                            Property::ResponseTopic(v)
                        }
                        0x12 => Property::AssignedClientIdentifier(v),
                        0x15 => Property::AuthenticationMethod(v),
                        0x1A => Property::ResponseInformation(v),
                        0x1C => Property::ServerReference(v),
                        _ => Property::ReasonString(v),
                    }
                }
                ValueType::Utf8Pair => {
                    let k = self.utf8("user_property.name")?;
                    let v = self.utf8("user_property.value")?;
                    Property::UserProperty(k, v)
                }
            };
            list.push(prop);
        }
        if let Some(at) = auth_data_at.filter(|_| seen & (1 << 0x15) == 0) {
            return Err(self.err(at, ErrorKind::AuthDataWithoutMethod));
        }
        Ok(Properties(list))
    }

    fn topic_filter(&mut self) -> R<Src::Str> {
        let at = self.pos;
        // The pass that looks for U+0000 also says whether there is a
        // wildcard to check the placement of.
        let (filter, wild) = self.utf8_scanned::<true, false>("topic_filter")?;
        if let Err(error) =
            topic::validate_filter_scanned(filter.as_ref(), self.opts.protocol.is_v5(), wild)
        {
            return Err(self.err(at, ErrorKind::TopicFilter { error }));
        }
        Ok(filter)
    }
}

/// Pass two: parses one complete frame (fixed header included) whose header
/// `check_header` accepted. Strings and binaries are slices of `frame`.
pub fn parse_frame<T: Trace>(
    frame: &Bytes,
    header: &FixedHeader,
    opts: &DecodeOptions,
    trace: &mut T,
) -> R<Packet> {
    parse(Shared(frame), header, opts, trace)
}

/// [`parse_frame`] over a plain byte slice, borrowing from it.
pub fn parse_frame_ref<'a, T: Trace>(
    frame: &'a [u8],
    header: &FixedHeader,
    opts: &DecodeOptions,
    trace: &mut T,
) -> R<PacketRef<'a>> {
    parse(Borrowed(frame), header, opts, trace)
}

/// The one parser, for every kind of [`Source`].
#[inline(always)]
fn parse<Src: Source, T: Trace>(
    src: Src,
    header: &FixedHeader,
    opts: &DecodeOptions,
    trace: &mut T,
) -> R<Out<Src>> {
    trace.span("fixed_header", 0, 1);
    trace.span("remaining_length", 1, header.header_len);
    let mut r = Reader {
        end: header.packet_len().min(src.bytes().len()),
        src,
        pos: header.header_len,
        opts: *opts,
        ty: header.packet_type,
        trace,
    };
    let v5 = r.opts.protocol.is_v5();
    // Each arm checks for trailing bytes before it builds its packet, so that
    // nothing can fail between the match and the return: the packet is then
    // built where the caller will find it rather than copied there (a copy
    // that stalls, its wide loads reading fields just written narrow).
    let packet = match header.packet_type {
        PacketType::Connect => {
            let c = connect(&mut r)?;
            // MQTT-1.5.5-1 for the CONNECT's own remaining length, now that its version is known.
            if c.protocol.is_v5()
                && header.header_len > 1 + crate::encode::varint_len(header.remaining_length)
            {
                return Err(r.err(
                    1,
                    ErrorKind::VarintNotMinimal {
                        field: "remaining_length",
                    },
                ));
            }
            r.finish()?;
            Packet::Connect(Box::new(c))
        }
        PacketType::ConnAck => {
            let at = r.pos;
            let flags = r.u8("acknowledge_flags")?;
            if flags & 0xFE != 0 {
                return Err(r.err(at, ErrorKind::ConnAckReservedFlags));
            }
            let code_at = r.pos;
            let code = r.reason_code()?;
            let session_present = flags & 1 != 0;
            if session_present && code != 0 {
                return Err(r.err(code_at, ErrorKind::SessionPresentOnFailure));
            }
            let properties = if v5 {
                r.properties(PropertyContext::ConnAck)?
            } else {
                Properties::new()
            };
            r.finish()?;
            Packet::ConnAck(ConnAck {
                session_present,
                code,
                properties,
            })
        }
        PacketType::Publish => {
            let qos = QoS::from_u8((header.flags >> 1) & 0b11).unwrap_or_default();
            let at = r.pos;
            let (topic, wild) = r.utf8_scanned::<false, true>("topic")?;
            // `topic::validate_name`'s one check, from the same pass.
            if wild {
                return Err(r.err(
                    at,
                    ErrorKind::TopicName {
                        field: "topic",
                        error: topic::TopicError::WildcardInName,
                    },
                ));
            }
            let packet_id = if qos == QoS::AtMostOnce {
                0
            } else {
                r.packet_id()?
            };
            let properties = if v5 {
                r.properties(PropertyContext::Publish)?
            } else {
                Properties::new()
            };
            if topic.as_ref().is_empty() && (!v5 || properties.topic_alias().is_none()) {
                return Err(r.err(at, ErrorKind::EmptyTopic));
            }
            let payload = r.rest("payload");
            r.finish()?;
            Packet::Publish(Publish {
                dup: header.flags & 0b1000 != 0,
                qos,
                retain: header.flags & 1 != 0,
                topic,
                packet_id,
                properties,
                payload,
            })
        }
        ty @ (PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp) => {
            let packet_id = r.packet_id()?;
            let mut resp = PubResponse::new(packet_id);
            if v5 && r.remaining() > 0 {
                resp.reason_code = r.reason_code()?;
                if r.remaining() > 0 {
                    resp.properties = r.properties(PropertyContext::PubResponse)?;
                }
            }
            r.finish()?;
            match ty {
                PacketType::PubAck => Packet::PubAck(resp),
                PacketType::PubRec => Packet::PubRec(resp),
                PacketType::PubRel => Packet::PubRel(resp),
                _ => Packet::PubComp(resp),
            }
        }
        PacketType::Subscribe => {
            let packet_id = r.packet_id()?;
            let properties = if v5 {
                r.properties(PropertyContext::Subscribe)?
            } else {
                Properties::new()
            };
            // Four: what the first push would allocate, without the call
            // that grows an empty vector.
            let mut filters = Vec::with_capacity(4);
            while r.remaining() > 0 {
                let filter = r.topic_filter()?;
                let at = r.pos;
                let byte = r.u8("subscription_options")?;
                let reserved = if v5 { 0xC0 } else { 0xFC };
                if byte & reserved != 0 {
                    return Err(r.err(at, ErrorKind::SubscriptionOptionsReserved { options: byte }));
                }
                let Some(qos) = QoS::from_u8(byte & 0b11) else {
                    return Err(r.err(at, ErrorKind::SubscriptionQos3));
                };
                let options = SubscriptionOptions {
                    qos,
                    no_local: byte & 0b100 != 0,
                    retain_as_published: byte & 0b1000 != 0,
                    retain_handling: (byte >> 4) & 0b11,
                };
                if options.retain_handling == 3 {
                    return Err(r.err(at, ErrorKind::RetainHandling3));
                }
                if options.no_local && v5 && topic::split_shared(filter.as_ref()).is_some() {
                    return Err(r.err(at, ErrorKind::NoLocalOnShared));
                }
                filters.push(Subscription { filter, options });
            }
            if filters.is_empty() {
                return Err(r.err(r.pos, ErrorKind::NoTopicFilters));
            }
            r.finish()?;
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        }
        PacketType::SubAck => {
            let packet_id = r.packet_id()?;
            let properties = if v5 {
                r.properties(PropertyContext::SubAck)?
            } else {
                Properties::new()
            };
            // Every code valid, the usual case: checked in one loop and
            // copied at once. Otherwise the loop below stops at the first
            // invalid one and names it.
            let codes = r.left();
            let (from, protocol) = (r.opts.from, r.opts.protocol);
            let reason_codes = if codes
                .iter()
                .all(|&c| reason::is_valid(PacketType::SubAck, c, from, protocol))
            {
                let list = codes.to_vec();
                let start = r.pos;
                r.pos = start + list.len();
                for at in start..r.pos {
                    r.trace.span("reason_code", at, at + 1);
                }
                list
            } else {
                let mut list = Vec::with_capacity(r.remaining());
                while r.remaining() > 0 {
                    list.push(r.reason_code()?);
                }
                list
            };
            r.finish()?;
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        }
        PacketType::Unsubscribe => {
            let packet_id = r.packet_id()?;
            let properties = if v5 {
                r.properties(PropertyContext::Unsubscribe)?
            } else {
                Properties::new()
            };
            // As for SUBSCRIBE.
            let mut filters = Vec::with_capacity(4);
            while r.remaining() > 0 {
                filters.push(r.topic_filter()?);
            }
            if filters.is_empty() {
                return Err(r.err(r.pos, ErrorKind::NoTopicFilters));
            }
            r.finish()?;
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        }
        PacketType::UnsubAck => {
            let packet_id = r.packet_id()?;
            let mut ack = UnsubAck {
                packet_id,
                ..UnsubAck::default()
            };
            if v5 {
                ack.properties = r.properties(PropertyContext::UnsubAck)?;
                ack.reason_codes.reserve(r.remaining());
                while r.remaining() > 0 {
                    ack.reason_codes.push(r.reason_code()?);
                }
            }
            r.finish()?;
            Packet::UnsubAck(ack)
        }
        PacketType::PingReq => {
            r.finish()?;
            Packet::PingReq
        }
        PacketType::PingResp => {
            r.finish()?;
            Packet::PingResp
        }
        PacketType::Disconnect => {
            let mut d = Disconnect::default();
            if v5 && r.remaining() > 0 {
                d.reason_code = r.reason_code()?;
                if r.remaining() > 0 {
                    d.properties = r.properties(PropertyContext::Disconnect)?;
                }
            }
            r.finish()?;
            Packet::Disconnect(d)
        }
        PacketType::Auth => {
            let mut a = Auth::default();
            if r.remaining() > 0 {
                a.reason_code = r.reason_code()?;
                if r.remaining() > 0 {
                    a.properties = r.properties(PropertyContext::Auth)?;
                }
            }
            r.finish()?;
            Packet::Auth(a)
        }
    };
    Ok(packet)
}

fn connect<Src: Source, T: Trace>(r: &mut Reader<'_, Src, T>) -> R<Connect<Src::Str, Src::Bin>> {
    let protocol = protocol_name_and_level(r)?;
    // From here on the packet is judged by the version it announces.
    r.opts.protocol = protocol;
    let v5 = protocol.is_v5();
    let flags_at = r.pos;
    let flags = r.u8("connect_flags")?;
    if flags & 1 != 0 {
        return Err(r.err(flags_at, ErrorKind::ConnectReservedFlag));
    }
    let will_flag = flags & 0b100 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0b10_0000 != 0;
    let password_flag = flags & 0b100_0000 != 0;
    let username_flag = flags & 0b1000_0000 != 0;
    if !will_flag && will_qos != 0 {
        return Err(r.err(flags_at, ErrorKind::WillQosWithoutWill));
    }
    if !will_flag && will_retain {
        return Err(r.err(flags_at, ErrorKind::WillRetainWithoutWill));
    }
    let Some(will_qos) = QoS::from_u8(will_qos) else {
        return Err(r.err(flags_at, ErrorKind::WillQos3));
    };
    if !v5 && password_flag && !username_flag {
        return Err(r.err(flags_at, ErrorKind::PasswordWithoutUsername));
    }
    let keep_alive = r.u16("keep_alive")?;
    let properties = if v5 {
        r.properties(PropertyContext::Connect)?
    } else {
        Properties::new()
    };
    let client_id = r.utf8("client_id")?;
    let will = if will_flag {
        let properties = if v5 {
            r.properties(PropertyContext::Will).map_err(|mut e| {
                if let ErrorKind::UnexpectedEnd { field } = &mut e.kind {
                    *field = "will_properties";
                }
                e
            })?
        } else {
            Properties::new()
        };
        let at = r.pos;
        // `topic::validate_name`'s one check, from the NUL scan's pass.
        let (topic, wild) = r.utf8_wild("will_topic")?;
        let check = if topic.as_ref().is_empty() {
            Err(topic::TopicError::Empty)
        } else if wild {
            Err(topic::TopicError::WildcardInName)
        } else {
            Ok(())
        };
        if let Err(error) = check {
            return Err(r.err(
                at,
                ErrorKind::TopicName {
                    field: "will_topic",
                    error,
                },
            ));
        }
        let payload = r.binary("will_payload")?;
        Some(Will {
            qos: will_qos,
            retain: will_retain,
            properties,
            topic,
            payload,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.utf8("username")?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary("password")?)
    } else {
        None
    };
    Ok(Connect {
        protocol,
        clean_start: flags & 0b10 != 0,
        keep_alive,
        properties,
        client_id,
        will,
        username,
        password,
    })
}

/// A CONNECT's protocol name and level, checked against each other.
#[inline(always)]
fn protocol_name_and_level<Src: Source, T: Trace>(r: &mut Reader<'_, Src, T>) -> R<Protocol> {
    // The usual 3.1.1 or 5.0 CONNECT: the length-prefixed "MQTT" and level
    // 4 or 5 as one seven-byte comparison, with the spans the general path
    // records. Any other bytes take that path, which finds every error.
    let start = r.pos;
    if let Some(&[0, 4, b'M', b'Q', b'T', b'T', level]) = r.left().first_chunk::<7>() {
        if let Some(protocol @ (Protocol::V3_1_1 | Protocol::V5)) = Protocol::from_level(level) {
            r.trace.span("protocol_name", start, start + 6);
            r.trace.span("protocol_level", start + 6, start + 7);
            r.pos = start + 7;
            return Ok(protocol);
        }
    }
    protocol_name_and_level_full(r)
}

/// [`protocol_name_and_level`] for any bytes.
fn protocol_name_and_level_full<Src: Source, T: Trace>(r: &mut Reader<'_, Src, T>) -> R<Protocol> {
    let name_at = r.pos;
    let name = r.utf8("protocol_name")?;
    let level_at = r.pos;
    let level = r.u8("protocol_level")?;
    let Some(protocol) = Protocol::from_level(level) else {
        return Err(r.err(level_at, ErrorKind::ProtocolLevel { level }));
    };
    let expected = if protocol == Protocol::V3_1 {
        "MQIsdp"
    } else {
        "MQTT"
    };
    if name.as_ref() != expected {
        // Judged by the version it announces, as what follows is.
        r.opts.protocol = protocol;
        return Err(r.err(
            name_at,
            ErrorKind::ProtocolName {
                name: name.as_ref().to_string(),
            },
        ));
    }
    Ok(protocol)
}

/// The total length of the packet at the front of `input` as its fixed header
/// announces it, without any other check; `None` if the header is incomplete
/// or its length field is longer than four bytes. Lets a receiver that chooses
/// to skip a refused packet find where the next one starts.
pub fn frame_len(input: &[u8]) -> Option<usize> {
    let mut value: usize = 0;
    for i in 0..4 {
        let b = *input.get(1 + i)?;
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some(2 + i + value);
        }
    }
    None
}

#[cfg(test)]
mod tests;
