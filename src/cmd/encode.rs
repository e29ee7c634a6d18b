//! `mqtt-harness encode`: packets described in YAML or JSON (see
//! [`crate::packet`]) → one line of hex per packet, valid or, with
//! overrides, deliberately not. `--check` decodes each packet again and prints
//! the verdict under its hex:
//!
//! ```text
//! 3607000361ff6200
//!   -> malformed at byte 0 in PUBLISH: PUBLISH with QoS 3 (both QoS bits set) [MQTT-3.3.1-4] (reason code 0x81 Malformed Packet)
//! ```

use std::io::{Read, Write};

use mqtt_codec::{Protocol, Sender};

use super::decode::{decode_stream, End, Stream};
use super::{read_input, reason_label, CmdError, SenderArg, Status};
use crate::hex;
use crate::packet::{self, Described};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The stream's version until a CONNECT names its own, and the version of
    /// a CONNECT without `protocol`: 3.1, 3.1.1 or 5.0.
    #[arg(long, value_parser = super::parse_protocol, default_value = "5.0", value_name = "VERSION")]
    pub protocol: Protocol,
    /// Who sends the packets (what --check decodes them as).
    #[arg(long, value_enum, default_value = "client")]
    pub from: SenderArg,
    /// Decode each packet again and print the verdict under its hex; exit 1
    /// unless every packet is valid.
    #[arg(long)]
    pub check: bool,
    /// A YAML or JSON file (a name ending in .json is read as JSON) holding a
    /// packet or a list of packets; - reads stdin.
    #[arg(value_name = "FILE", allow_hyphen_values = true)]
    pub file: String,
}

pub fn run(args: &Args, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let text = read_input(&args.file, stdin)?;
    let name = if args.file == "-" {
        "<stdin>"
    } else {
        args.file.as_str()
    };
    let parsed = if args.file.ends_with(".json") {
        packet::from_json(&text, args.protocol)
    } else {
        packet::from_yaml(&text, args.protocol)
    };
    let packets = parsed.map_err(|e| CmdError::Usage(located(name, &text, &e)))?;
    let from = Sender::from(args.from);
    let mut status = Status::Pass;
    for (i, d) in packets.iter().enumerate() {
        let bytes = encode(d).map_err(|e| {
            CmdError::Usage(format!(
                "{name}: packet {} ({}): {e}",
                i + 1,
                d.packet.packet_type()
            ))
        })?;
        writeln!(out, "{}", hex::encode(&bytes))?;
        if args.check {
            let stream = decode_stream(&bytes, d.protocol, from, None);
            writeln!(out, "  -> {}", verdict(&stream))?;
            if !stream.all_valid() {
                status = Status::Fail;
            }
        }
    }
    Ok(status)
}

/// The bytes of one described packet, overrides applied.
pub fn encode(d: &Described) -> Result<bytes::Bytes, mqtt_codec::EncodeError> {
    mqtt_codec::encode_with(&d.packet, d.protocol, &d.overrides)
}

/// One line: what a receiver makes of the bytes.
pub fn verdict(stream: &Stream) -> String {
    let names: Vec<&str> = stream
        .frames
        .iter()
        .map(|f| f.packet.packet_type().name())
        .collect();
    let before = if names.is_empty() {
        String::new()
    } else {
        format!(" after {}", names.join(", "))
    };
    match &stream.end {
        End::Complete if names.len() == 1 => format!("valid {}", names.join("")),
        End::Complete => format!(
            "valid, but as {} packets: {}",
            names.len(),
            names.join(", ")
        ),
        End::Refused { error, .. } => {
            let mut s = format!(
                "{} at byte {}{}: {}",
                super::class_label(error.class()),
                error.offset,
                error.packet.map(|t| format!(" in {t}")).unwrap_or_default(),
                error.message()
            );
            if let Some(id) = error.statement() {
                s.push_str(&format!(" [{id}]"));
            }
            if error.protocol.is_v5() {
                s.push_str(&format!(" ({})", reason_label(error.reason_code())));
            }
            s.push_str(&before);
            s
        }
        End::Incomplete { needed, .. } => {
            format!("incomplete: at least {needed} more byte(s) needed{before}")
        }
    }
}

/// An error in a file, shown as every input error is (see [`crate::diag`]).
pub fn located(name: &str, text: &str, e: &packet::Error) -> String {
    crate::diag::render(&e.message, name, e.location, Some(text), e.hint.as_deref())
}
