//! The subcommands of `mqtt-harness`, one module each. A command takes its
//! parsed flags, stdin and stdout, and returns how it ended; `main` only
//! parses flags, calls a command's `run` and maps the outcome to an exit
//! status (0 pass, 1 the input or the target failed a check, 2 the command
//! could not run).
//!
//! A new subcommand is a module here with `Args` (a `clap::Args`) and
//! `run(&Args, &mut dyn Read, &mut dyn Write) -> Result<Status, CmdError>`,
//! plus one variant in `main`'s `enum Command`.

use std::fmt;
use std::io;

use mqtt_codec::{Protocol, Sender};

pub mod coverage;
pub mod decode;
pub mod encode;
pub mod explain;
pub mod matrix;
pub mod run;

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything checked was as it should be.
    Pass,
    /// Something checked was not (a malformed packet, a failed scenario).
    Fail,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Pass => 0,
            Status::Fail => 1,
        }
    }
}

/// Why a command could not run: exit status 2 for bad input, 3 for a
/// run that could not happen.
#[derive(Debug)]
pub enum CmdError {
    /// Bad arguments or an unreadable or invalid input file; the message says
    /// what, where, and what to do.
    Usage(String),
    /// The input was fine but what the command needs could not be set up
    /// (the embedded broker, the runtime): not the user's input, exit 3.
    Runtime(String),
    /// Writing the output failed (a closed pipe, a full disk).
    Output(io::Error),
}

impl CmdError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CmdError::Runtime(_) => 3,
            CmdError::Usage(_) | CmdError::Output(_) => 2,
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Usage(m) | CmdError::Runtime(m) => f.write_str(m),
            CmdError::Output(e) => write!(f, "cannot write the output: {e}"),
        }
    }
}

impl std::error::Error for CmdError {}

impl From<io::Error> for CmdError {
    fn from(e: io::Error) -> CmdError {
        CmdError::Output(e)
    }
}

/// `--protocol` values: 3.1, 3.1.1 or 5.0 (also the levels 3, 4, 5).
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    Protocol::parse(s.trim())
        .ok_or_else(|| format!("`{s}` is not a protocol version; use 3.1, 3.1.1 or 5.0"))
}

/// `--from` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SenderArg {
    Client,
    Server,
}

impl From<SenderArg> for Sender {
    fn from(s: SenderArg) -> Sender {
        match s {
            SenderArg::Client => Sender::Client,
            SenderArg::Server => Sender::Server,
        }
    }
}

/// "malformed packet" or "protocol error", for people.
pub fn class_label(class: mqtt_codec::Class) -> &'static str {
    match class {
        mqtt_codec::Class::Malformed => "malformed packet",
        mqtt_codec::Class::ProtocolError => "protocol error",
    }
}

/// "reason code 0x81 Malformed Packet": a 5.0 reason code as a receiver sends it
/// in CONNACK or DISCONNECT.
pub fn reason_label(code: u8) -> String {
    format!(
        "reason code 0x{code:02X} {}",
        mqtt_codec::reason::name(code, mqtt_codec::PacketType::Disconnect)
    )
}

/// Reads a named input, `-` being stdin.
pub(crate) fn read_input(path: &str, stdin: &mut dyn io::Read) -> Result<String, CmdError> {
    if path == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| CmdError::Usage(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        CmdError::Usage(format!(
            "cannot read {path}: {e}; give a readable file, or - for stdin"
        ))
    })
}

/// The scenarios in `paths` (files or directories; `scenarios/` when none),
/// or, as a usage error, every file that cannot be used and why.
pub(crate) fn load_scenarios(
    paths: &[std::path::PathBuf],
) -> Result<Vec<crate::scenario::Scenario>, CmdError> {
    let default = [std::path::PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    crate::scenario::load_paths(paths).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        CmdError::Usage(format!(
            "{} scenario file(s) cannot be used:\n{}",
            errors.len(),
            lines.join("\n")
        ))
    })
}
