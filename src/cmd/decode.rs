//! `mqtt-harness decode`: hex bytes → packets, one after the other, as a
//! client (default) or a server sent them.
//!
//! `--json` is a contract other tools rely on (DESIGN.md): one object per
//! line, `{"verdict":"valid","packet":{…}}` per packet, then on bad input a
//! last line
//!
//! ```text
//! {"verdict":"malformed","statement":"MQTT-3.3.1-4","reason_code":129,"offset":18,"message":"PUBLISH with QoS 3 (both QoS bits set)"}
//! {"verdict":"incomplete","needed":4}
//! ```
//!
//! `reason_code` is the 5.0 reason code a receiver answers with, `null` in 3.1
//! and 3.1.1 (which have none); `statement` is `null` where the spec numbers no
//! statement for the rule; `offset` counts from the start of the whole input.
//!
//! Without `--json` it prints, for each packet, every field with its offset,
//! bytes, value and the statements that govern it, and for an error the bytes
//! around it with a caret under the offending one:
//!
//! ```text
//! PUBLISH (MQTT 3.1.1, from client): 9 bytes at offset 18
//!   offset  bytes           field             value                          statements
//!   18      30              fixed_header      PUBLISH, dup=0 qos=0 retain=0  MQTT-3.3.1-2, MQTT-3.3.1-4
//!   19      07              remaining_length  7 bytes follow
//!   20      00 03 61 2f 62  topic             "a/b"                          MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-4.7.1-1, MQTT-4.7.3-1
//!   25      68 69           payload           "hi"
//!
//! PUBLISH (MQTT 3.1.1, from client) at offset 27: refused
//! error: malformed packet at byte 27 in PUBLISH: PUBLISH with QoS 3 (both QoS bits set)
//!      |
//!   27 | 36 03 00 01 61
//!      | ^^
//!   = MQTT-3.3.1-4 (MQTT 3.1.1 section 3.3.1.2, MUST): A PUBLISH with QoS bits 11 is invalid; the receiver closes the connection.
//!   = MQTT 3.1.1 has no reason codes: a receiver closes the network connection
//! ```

use std::io::{self, Read, Write};

use bytes::Bytes;
use mqtt_codec::decode::{check_header, decode_traced, Decoded, Span};
use mqtt_codec::props::{self, ValueType};
use mqtt_codec::{catalogue, DecodeError, DecodeOptions, Packet, PacketType, Protocol, Sender};
use serde_json::json;

use super::{CmdError, SenderArg, Status};
use crate::packet::{packet_to_json, reason_name};
use crate::{field_rules, hex};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The stream's version until a CONNECT names its own: 3.1, 3.1.1 or 5.0.
    /// Default: the version of the CONNECT the input starts with (a stream
    /// that does not start with one needs --protocol).
    #[arg(long, value_parser = super::parse_protocol, value_name = "VERSION")]
    pub protocol: Option<Protocol>,
    /// Who sent the bytes: a packet the sender may not send (a CONNACK from a
    /// client) is a protocol error.
    #[arg(long, value_enum, default_value = "client")]
    pub from: SenderArg,
    /// Print one JSON object per line (the format other tools rely on).
    #[arg(long)]
    pub json: bool,
    /// Refuse packets larger than N bytes, fixed header included.
    #[arg(long, value_name = "N")]
    pub max_packet_size: Option<u32>,
    /// The bytes in hex: "30 03 00 01 61", 30030001..., 30:03, 0x30 0x03.
    /// Several arguments are joined; - reads the hex from stdin.
    #[arg(required = true, value_name = "HEX", allow_hyphen_values = true)]
    pub hex: Vec<String>,
}

/// One packet decoded from a stream.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Offset of its first byte in the input.
    pub start: usize,
    pub len: usize,
    /// The version it was decoded in (a CONNECT's own).
    pub protocol: Protocol,
    pub packet: Packet,
    /// Its fields, relative to `start`.
    pub spans: Vec<Span>,
}

/// How a stream ended.
#[derive(Debug, Clone)]
pub enum End {
    /// Every byte belonged to a valid packet.
    Complete,
    /// The packet starting at `start` was refused (`error.offset` counts from
    /// the start of the input); `spans` are the fields read before that.
    Refused {
        start: usize,
        error: DecodeError,
        spans: Vec<Span>,
    },
    /// The input ends inside the packet starting at `start`.
    Incomplete {
        start: usize,
        protocol: Protocol,
        needed: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Stream {
    pub frames: Vec<Frame>,
    pub end: End,
}

impl Stream {
    pub fn all_valid(&self) -> bool {
        matches!(self.end, End::Complete)
    }
}

/// Decodes `input` packet after packet. As in the codec's stream `Decoder`,
/// the stream takes the version of a CONNECT from then on.
pub fn decode_stream(
    input: &Bytes,
    protocol: Protocol,
    from: Sender,
    max_packet_size: Option<u32>,
) -> Stream {
    let mut frames = Vec::new();
    let mut protocol = protocol;
    let mut start = 0;
    while start < input.len() {
        let mut opts = DecodeOptions::new(protocol, from);
        if let Some(max) = max_packet_size {
            opts = opts.with_max_packet_size(max);
        }
        let rest = input.slice(start..);
        let mut spans: Vec<Span> = Vec::new();
        match decode_traced(&rest, &opts, &mut spans) {
            Ok(Decoded::Packet { packet, len }) => {
                let packet_protocol = match &packet {
                    Packet::Connect(c) => c.protocol,
                    _ => protocol,
                };
                protocol = packet_protocol;
                frames.push(Frame {
                    start,
                    len,
                    protocol: packet_protocol,
                    packet,
                    spans,
                });
                // A packet is at least two bytes long, so this always advances.
                start += len.max(1);
            }
            Ok(Decoded::Incomplete { needed }) => {
                return Stream {
                    frames,
                    end: End::Incomplete {
                        start,
                        protocol,
                        needed,
                    },
                }
            }
            Err(mut error) => {
                error.offset += start;
                return Stream {
                    frames,
                    end: End::Refused {
                        start,
                        error,
                        spans,
                    },
                };
            }
        }
    }
    Stream {
        frames,
        end: End::Complete,
    }
}

/// The version the CONNECT at the start of `input` names (by its protocol
/// level; the decoder then checks it as it checks any CONNECT), if it starts
/// with one.
pub fn starting_version(input: &[u8]) -> Option<Protocol> {
    if input.first().map(|b| b >> 4) != Some(1) {
        return None;
    }
    // Fixed header, remaining length (1 to 4 bytes), then the protocol name
    // (a two-byte length and the name) and the level.
    let mut at = 1;
    loop {
        let b = *input.get(at)?;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return None;
        }
    }
    let len = usize::from(u16::from_be_bytes([*input.get(at)?, *input.get(at + 1)?]));
    let level = *input.get(at + 2 + len)?;
    Protocol::from_level(level)
}

pub fn run(args: &Args, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let text = if args.hex.len() == 1 && args.hex.first().is_some_and(|h| h == "-") {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| CmdError::Usage(format!("cannot read hex from stdin: {e}")))?;
        s
    } else {
        args.hex.join(" ")
    };
    let bytes = hex::parse(&text).map_err(|e| CmdError::Usage(hex_usage(&text, &e)))?;
    if bytes.is_empty() {
        return Err(CmdError::Usage(
            "no bytes to decode: give the packet bytes in hex, e.g. `decode --protocol 5.0 c000`"
                .into(),
        ));
    }
    let input = Bytes::from(bytes);
    let from = Sender::from(args.from);
    let protocol = match args.protocol {
        Some(p) => p,
        None => starting_version(&input).ok_or_else(|| {
            CmdError::Usage(
                "the input does not start with a CONNECT, which would name its version: \
                 give --protocol 3.1, 3.1.1 or 5.0"
                    .into(),
            )
        })?,
    };
    let stream = decode_stream(&input, protocol, from, args.max_packet_size);
    if args.json {
        write_json(out, &stream)?;
    } else {
        write_human(out, &input, &stream, from)?;
    }
    Ok(if stream.all_valid() {
        Status::Pass
    } else {
        Status::Fail
    })
}

/// The bad-hex message, with the text and a caret when it fits on a line.
fn hex_usage(text: &str, e: &hex::HexError) -> String {
    let mut msg = format!("bad hex input: {e}");
    if !text.contains('\n') && text.chars().count() <= 100 {
        let caret = " ".repeat(e.position.saturating_sub(1));
        msg.push_str(&format!("\n  {text}\n  {caret}^"));
    }
    msg.push_str(
        "\nhint: HEX is pairs of hex digits, optionally separated by spaces or colons, \
         e.g. \"30 03 00 01 61\" or 3003000161; use - to read it from stdin",
    );
    msg
}

// ---------------------------------------------------------------------------
// --json
// ---------------------------------------------------------------------------

/// The verdict line for a refused packet.
pub fn error_json(e: &DecodeError) -> serde_json::Value {
    json!({
        "verdict": e.class().as_str(),
        "statement": e.statement(),
        "reason_code": e.protocol.is_v5().then(|| e.reason_code()),
        "offset": e.offset,
        "message": e.message(),
    })
}

pub fn write_json(out: &mut dyn Write, stream: &Stream) -> io::Result<()> {
    for f in &stream.frames {
        let line = json!({ "verdict": "valid", "packet": packet_to_json(&f.packet, f.protocol) });
        writeln!(out, "{line}")?;
    }
    match &stream.end {
        End::Complete => {}
        End::Refused { error, .. } => writeln!(out, "{}", error_json(error))?,
        End::Incomplete { needed, .. } => writeln!(
            out,
            "{}",
            json!({ "verdict": "incomplete", "needed": needed })
        )?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The human view
// ---------------------------------------------------------------------------

/// Longest byte run shown in the bytes column.
const MAX_SHOWN_BYTES: usize = 8;
/// Longest text shown in the value column.
const MAX_SHOWN_CHARS: usize = 40;

pub fn write_human(
    out: &mut dyn Write,
    input: &[u8],
    stream: &Stream,
    from: Sender,
) -> io::Result<()> {
    for (i, f) in stream.frames.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{} (MQTT {}, from {}): {} bytes at offset {}",
            f.packet.packet_type(),
            f.protocol,
            from.as_str(),
            f.len,
            f.start
        )?;
        let ty = f.packet.packet_type();
        write_fields(out, input, f.start, &f.spans, ty, f.protocol, from)?;
    }
    if !stream.frames.is_empty() && !stream.all_valid() {
        writeln!(out)?;
    }
    match &stream.end {
        End::Complete => {
            let n = stream.frames.len();
            writeln!(
                out,
                "\n{n} packet{}, all valid",
                if n == 1 { "" } else { "s" }
            )?;
        }
        End::Refused {
            start,
            error,
            spans,
        } => {
            if let Some(ty) = error.packet {
                writeln!(
                    out,
                    "{ty} (MQTT {}, from {}) at offset {start}: refused",
                    error.protocol,
                    from.as_str()
                )?;
                if !spans.is_empty() {
                    write_fields(out, input, *start, spans, ty, error.protocol, from)?;
                }
            }
            write_error(out, input, *start, error)?;
        }
        End::Incomplete {
            start,
            protocol,
            needed,
        } => {
            let rest = input.get(*start..).unwrap_or(&[]);
            let opts = DecodeOptions::new(*protocol, from);
            match check_header(rest, &opts) {
                Ok(Ok(h)) => writeln!(
                    out,
                    "incomplete: the input ends inside a {} that starts at byte {start} and is {} bytes long; \
                     {} of them are here, at least {needed} more byte(s) needed",
                    h.packet_type,
                    h.packet_len(),
                    rest.len()
                )?,
                _ => writeln!(
                    out,
                    "incomplete: the input ends inside the fixed header that starts at byte {start}; \
                     at least {needed} more byte(s) needed"
                )?,
            }
        }
    }
    Ok(())
}

fn write_fields(
    out: &mut dyn Write,
    input: &[u8],
    start: usize,
    spans: &[Span],
    ty: PacketType,
    protocol: Protocol,
    from: Sender,
) -> io::Result<()> {
    let mut rows: Vec<[String; 5]> = vec![[
        "offset".into(),
        "bytes".into(),
        "field".into(),
        "value".into(),
        "statements".into(),
    ]];
    for s in spans {
        let bytes = input.get(start + s.start..start + s.end).unwrap_or(&[]);
        let shown = match bytes.get(..MAX_SHOWN_BYTES) {
            Some(head) if bytes.len() > MAX_SHOWN_BYTES => format!("{} …", hex::spaced(head)),
            _ => hex::spaced(bytes),
        };
        rows.push([
            (start + s.start).to_string(),
            shown,
            s.name.to_string(),
            describe(s.name, bytes, ty, protocol),
            field_rules::statements(s.name, ty, protocol, from).join(", "),
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if let Some(w) = widths.get(i) {
                line.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn write_error(
    out: &mut dyn Write,
    input: &[u8],
    packet_start: usize,
    e: &DecodeError,
) -> io::Result<()> {
    writeln!(
        out,
        "error: {} at byte {}{}: {}",
        super::class_label(e.class()),
        e.offset,
        e.packet.map(|t| format!(" in {t}")).unwrap_or_default(),
        e.message()
    )?;
    // The bytes around the offset, from the packet's start when it is near.
    let from = e.offset.saturating_sub(MAX_SHOWN_BYTES).max(packet_start);
    let to = (e.offset + MAX_SHOWN_BYTES).min(input.len());
    let window = input.get(from..to).unwrap_or(&[]);
    let gutter = from.to_string();
    let pad = " ".repeat(gutter.len());
    writeln!(out, "  {pad} |")?;
    writeln!(out, "  {gutter} | {}", hex::spaced(window))?;
    writeln!(
        out,
        "  {pad} | {}^^",
        " ".repeat(e.offset.saturating_sub(from) * 3)
    )?;
    match e.statement() {
        Some(id) => match catalogue::lookup(e.protocol, id) {
            Some(s) => writeln!(
                out,
                "  = {id} (MQTT {} section {}, {}): {}",
                s.protocol, s.section, s.level, s.summary
            )?,
            None => writeln!(out, "  = {id}")?,
        },
        None => writeln!(
            out,
            "  = no numbered statement of the spec covers this rule"
        )?,
    }
    if e.protocol.is_v5() {
        writeln!(
            out,
            "  = {}: what a receiver answers with before it closes the connection",
            super::reason_label(e.reason_code())
        )?;
    } else {
        writeln!(
            out,
            "  = MQTT {} has no reason codes: a receiver closes the network connection",
            e.protocol
        )?;
    }
    Ok(())
}

/// A field's value as a person reads it, from its bytes.
fn describe(name: &str, b: &[u8], ty: PacketType, protocol: Protocol) -> String {
    let byte = b.first().copied().unwrap_or(0);
    let u16_value = || match b {
        [x, y] => u16::from_be_bytes([*x, *y]),
        _ => 0,
    };
    // Length-prefixed strings and binary data: the content after the two length bytes.
    let content = b.get(2..).unwrap_or(&[]);
    match name {
        "fixed_header" => {
            let flags = byte & 0x0F;
            match ty {
                PacketType::Publish => format!(
                    "PUBLISH, dup={} qos={} retain={}",
                    flags >> 3,
                    (flags >> 1) & 0b11,
                    flags & 1
                ),
                _ => format!("{ty}, flags {flags:04b}"),
            }
        }
        "remaining_length" => format!("{} bytes follow", varint(b)),
        "property_length" => format!("{} bytes of properties", varint(b)),
        "protocol_level" => match Protocol::from_level(byte) {
            Some(p) => format!("{byte} (MQTT {p})"),
            None => byte.to_string(),
        },
        "connect_flags" => connect_flags(byte),
        "keep_alive" => format!("{} s", u16_value()),
        "acknowledge_flags" => format!("session_present={}", byte & 1),
        "reason_code" => format!("0x{byte:02X} {}", reason_name(byte, ty, protocol)),
        "packet_id" => u16_value().to_string(),
        "subscription_options" => {
            let mut s = format!("qos={}", byte & 0b11);
            if protocol.is_v5() {
                s.push_str(&format!(
                    " no_local={} retain_as_published={} retain_handling={}",
                    (byte >> 2) & 1,
                    (byte >> 3) & 1,
                    (byte >> 4) & 0b11
                ));
            }
            s
        }
        "property_id" => match props::info(byte) {
            Some(p) => format!("0x{byte:02X} {}", p.name),
            None => format!("0x{byte:02X}"),
        },
        "payload" => text_or_size(b),
        "will_payload" | "password" => text_or_size(content),
        "protocol_name"
        | "client_id"
        | "will_topic"
        | "username"
        | "topic"
        | "topic_filter"
        | "user_property.name"
        | "user_property.value" => quoted(content),
        _ => match props::info_by_name(name).map(|p| p.value) {
            Some(ValueType::Byte) => byte.to_string(),
            Some(ValueType::TwoByte) => u16_value().to_string(),
            Some(ValueType::FourByte) => match b {
                [w, x, y, z] => u32::from_be_bytes([*w, *x, *y, *z]).to_string(),
                _ => String::new(),
            },
            Some(ValueType::Varint) => varint(b).to_string(),
            Some(ValueType::Utf8 | ValueType::Utf8Pair) => quoted(content),
            Some(ValueType::Binary) => text_or_size(content),
            None => String::new(),
        },
    }
}

fn varint(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .enumerate()
        .fold(0, |v, (i, byte)| v | (u32::from(byte & 0x7F) << (7 * i)))
}

fn connect_flags(b: u8) -> String {
    let mut set = Vec::new();
    if b & 0x80 != 0 {
        set.push("username".to_string());
    }
    if b & 0x40 != 0 {
        set.push("password".to_string());
    }
    if b & 0x20 != 0 {
        set.push("will_retain".to_string());
    }
    if (b >> 3) & 0b11 != 0 {
        set.push(format!("will_qos={}", (b >> 3) & 0b11));
    }
    if b & 0x04 != 0 {
        set.push("will".to_string());
    }
    if b & 0x02 != 0 {
        set.push("clean_start".to_string());
    }
    if b & 0x01 != 0 {
        set.push("reserved".to_string());
    }
    if set.is_empty() {
        "none set".to_string()
    } else {
        set.join(" ")
    }
}

/// A UTF-8 string in quotes, shortened when long.
fn quoted(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let count = s.chars().count();
    let shown: String = s.chars().take(MAX_SHOWN_CHARS).collect();
    let json = serde_json::to_string(&shown).unwrap_or_default();
    if count > MAX_SHOWN_CHARS {
        format!("{}…\" ({} bytes)", json.trim_end_matches('"'), b.len())
    } else {
        json
    }
}

/// Printable text in quotes, or its size.
fn text_or_size(b: &[u8]) -> String {
    match crate::packet::binary_json(b) {
        serde_json::Value::String(_) => quoted(b),
        _ => format!("{} bytes of binary data", b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(hex_text: &str, protocol: Protocol) -> Stream {
        let bytes = hex::parse(hex_text).unwrap_or_default();
        decode_stream(&Bytes::from(bytes), protocol, Sender::Client, None)
    }

    #[test]
    fn offsets_count_from_the_start_of_the_input() {
        // PINGREQ, then a PUBLISH with QoS 3.
        let s = stream("c000 3603000161", Protocol::V5);
        assert_eq!(s.frames.len(), 1);
        let End::Refused { start, error, .. } = &s.end else {
            panic!("{:?}", s.end)
        };
        assert_eq!((*start, error.offset), (2, 2));
    }

    #[test]
    fn a_connect_sets_the_version() {
        // A 5.0 CONNECT, then a DISCONNECT with a reason code: valid only in 5.0.
        let s = stream(
            "101100044d5154540502003c00000474657374 e00104",
            Protocol::V3_1_1,
        );
        assert!(s.all_valid(), "{:?}", s.end);
        assert_eq!(s.frames.get(1).map(|f| f.protocol), Some(Protocol::V5));
    }

    #[test]
    fn values_for_people() {
        assert_eq!(
            connect_flags(0b1100_0110),
            "username password will clean_start"
        );
        assert_eq!(quoted(b"a/b"), "\"a/b\"");
        assert_eq!(
            quoted(&[b'x'; 50]),
            format!("\"{}…\" (50 bytes)", "x".repeat(40))
        );
        assert_eq!(text_or_size(&[0, 1]), "2 bytes of binary data");
        assert_eq!(varint(&[0xff, 0x7f]), 16383);
    }
}
