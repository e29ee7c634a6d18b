//! The subcommands of `mqtt-harness`, one module each. A command takes its
//! parsed flags, stdin and stdout, and returns how it ended; `main` only
//! parses flags, calls a command's `run` and maps the outcome to an exit
//! status (0 pass, 1 the input or the target failed a check, 2 the command
//! could not run; `run` has its own table, [`crate::results::ExitStatus`]).
//!
//! A new subcommand is a module here with `Args` (a `clap::Args`) and
//! `run(&Args, &mut dyn Read, &mut dyn Write) -> Result<Status, CmdError>`,
//! plus one variant in `main`'s `enum Command`.

use std::fmt;
use std::io;

use mqtt_codec::{Protocol, Sender};

pub mod bench;
pub mod book;
pub mod client_opts;
mod client_run;
pub mod coverage;
pub mod decode;
pub mod encode;
pub mod explain;
pub mod fields;
pub mod fuzz;
pub mod matrix;
pub mod mutate;
pub mod probe;
pub mod proxy;
pub mod publish;
pub mod run;
mod run_session;
pub mod scenarios;
mod sub_format;
pub mod subscribe;

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything checked was as it should be.
    Pass,
    /// Something checked was not (a malformed packet, a failed scenario).
    Fail,
    /// A scenario run, ended as its exit status table says.
    Run(crate::results::ExitStatus),
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::Run(s) => s.code(),
        }
    }
}

/// Why a command could not run: exit status 2 for bad input, 3 for a
/// run that could not happen (the target unreachable, the embedded broker
/// not starting).
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
    /// The target cannot be reached: nothing could run (exit status 3).
    Unreachable(String),
}

impl CmdError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CmdError::Unreachable(_) | CmdError::Runtime(_) => {
                crate::results::ExitStatus::CouldNotRun.code()
            }
            CmdError::Usage(_) | CmdError::Output(_) => crate::results::ExitStatus::BadInput.code(),
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Usage(m) | CmdError::Runtime(m) | CmdError::Unreachable(m) => f.write_str(m),
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

/// Whether `load_scenarios(paths)` reads the library built into the binary:
/// no path given, and no `scenarios/` directory here.
pub(crate) fn uses_built_in(paths: &[std::path::PathBuf]) -> bool {
    paths.is_empty() && !std::path::Path::new("scenarios").is_dir()
}

/// What `load_scenarios(paths)` reads, for reports: `scenarios`, the paths
/// given, or the built-in library.
pub(crate) fn scenario_source(paths: &[std::path::PathBuf]) -> String {
    if uses_built_in(paths) {
        crate::library::NAME.to_string()
    } else if paths.is_empty() {
        "scenarios".to_string()
    } else {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        names.join(" ")
    }
}

/// The scenarios in `paths` (files or directories; `scenarios/` when none,
/// or the library built into the binary when there is no such directory),
/// or, as a usage error, every file that cannot be used and why. Warns on
/// stderr about ids listed under both versions where they name different
/// statements.
pub(crate) fn load_scenarios(
    paths: &[std::path::PathBuf],
) -> Result<Vec<crate::scenario::Scenario>, CmdError> {
    let scenarios = load_scenarios_quietly(paths)?;
    for w in differing_ids(&scenarios) {
        eprintln!("warning: {w}");
    }
    Ok(scenarios)
}

/// As [`load_scenarios`], without the warnings (for `explain`, which only
/// reads which scenarios cite what).
pub(crate) fn load_scenarios_quietly(
    paths: &[std::path::PathBuf],
) -> Result<Vec<crate::scenario::Scenario>, CmdError> {
    let default = [std::path::PathBuf::from("scenarios")];
    let loaded = if uses_built_in(paths) {
        crate::library::load()
    } else if paths.is_empty() {
        crate::scenario::load_paths(&default)
    } else {
        crate::scenario::load_paths(paths)
    };
    loaded.map_err(|errors| {
        // Each error with the line it points at, read again for the purpose:
        // a file that cannot be read now is shown without it.
        let shown: Vec<String> = errors
            .iter()
            .map(|e| {
                let text = e.pos.and_then(|_| std::fs::read_to_string(&e.file).ok());
                e.render(text.as_deref())
            })
            .collect();
        CmdError::Usage(format!(
            "{} scenario file(s) cannot be used:\n{}",
            errors.len(),
            shown.join("\n\n")
        ))
    })
}

/// Ids of both catalogues that name different statements in 3.1.1 and 5.0
/// (MQTT-3.3.1-6: retained delivery on subscribe in 3.1.1, clearing by an
/// empty payload in 5.0). Judged by reading both statements' texts; the ids
/// not listed say the same thing in both, up to wording and reason codes.
/// (MQTT-4.6.0-5 and -6 swap their meanings between the versions; the
/// scenarios cite them as a pair, so they are left out.)
pub(crate) const DIFFERING_IDS: &[&str] = &[
    "MQTT-2.2.2-1",
    "MQTT-3.1.2-4",
    "MQTT-3.1.2-5",
    "MQTT-3.1.2-6",
    "MQTT-3.1.2-7",
    "MQTT-3.1.2-12",
    "MQTT-3.1.2-13",
    "MQTT-3.1.2-14",
    "MQTT-3.1.2-15",
    "MQTT-3.1.2-16",
    "MQTT-3.1.2-17",
    "MQTT-3.1.2-18",
    "MQTT-3.1.2-19",
    "MQTT-3.1.2-20",
    "MQTT-3.1.2-21",
    "MQTT-3.1.2-22",
    "MQTT-3.1.2-23",
    "MQTT-3.1.2-24",
    "MQTT-3.1.3-7",
    "MQTT-3.1.3-8",
    "MQTT-3.1.3-9",
    "MQTT-3.1.3-10",
    "MQTT-3.1.3-11",
    "MQTT-3.1.4-2",
    "MQTT-3.1.4-3",
    "MQTT-3.1.4-4",
    "MQTT-3.1.4-5",
    "MQTT-3.2.2-1",
    "MQTT-3.2.2-2",
    "MQTT-3.2.2-3",
    "MQTT-3.2.2-4",
    "MQTT-3.2.2-5",
    "MQTT-3.2.2-6",
    "MQTT-3.3.1-6",
    "MQTT-3.3.1-7",
    "MQTT-3.3.1-8",
    "MQTT-3.3.1-9",
    "MQTT-3.3.1-10",
    "MQTT-3.3.1-11",
    "MQTT-3.3.1-12",
    "MQTT-3.8.3-2",
    "MQTT-3.8.3-3",
    "MQTT-3.8.3-4",
    "MQTT-3.8.4-4",
    "MQTT-3.8.4-5",
    "MQTT-3.8.4-6",
    "MQTT-3.9.3-2",
    "MQTT-3.14.4-1",
    "MQTT-3.14.4-2",
    "MQTT-4.1.0-2",
    "MQTT-4.3.2-2",
    "MQTT-4.3.3-2",
    "MQTT-4.7.1-1",
    "MQTT-4.7.1-2",
];

/// One warning per scenario and id that it lists under both 3.1.1 and 5.0
/// (in `statements:` or a step's) where the id names different statements,
/// with both summaries.
pub(crate) fn differing_ids(scenarios: &[crate::scenario::Scenario]) -> Vec<String> {
    use std::collections::BTreeSet;
    let mut out = Vec::new();
    for s in scenarios {
        let listed = |p: Protocol| -> BTreeSet<&str> {
            let own = s.statements.get(&p).into_iter().flatten();
            let steps = s
                .steps
                .iter()
                .filter_map(|st| st.statements.get(&p))
                .flatten();
            own.chain(steps).map(String::as_str).collect()
        };
        let (old, new) = (listed(Protocol::V3_1_1), listed(Protocol::V5));
        for id in old
            .intersection(&new)
            .filter(|id| DIFFERING_IDS.contains(id))
        {
            let summary = |p| mqtt_codec::catalogue::lookup(p, id).map_or("", |x| x.summary);
            out.push(format!(
                "{} lists {id} under both 3.1.1 and 5.0, where the id names different statements:\n  \
                 3.1.1: {}\n  5.0:   {}\n  make sure the case checks both, or list under each version the id of what it checks",
                s.file,
                summary(Protocol::V3_1_1),
                summary(Protocol::V5)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(ids: &str) -> crate::scenario::Scenario {
        let text = format!(
            "name: n\nstatements:\n  \"3.1.1\": [{ids}]\n  \"5.0\": [{ids}]\nclients:\n  c: {{}}\nsteps:\n  - c: {{ send: PINGREQ }}\n"
        );
        crate::scenario::parse_scenario("x.yaml", &text).expect("a scenario")
    }

    #[test]
    fn an_id_meaning_different_things_per_version_is_warned_about_with_both_summaries() {
        let w = differing_ids(&[scenario("MQTT-3.3.1-6")]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("x.yaml lists MQTT-3.3.1-6 under both 3.1.1 and 5.0"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("3.1.1: A new subscription receives the current retained message"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("5.0:   A retained PUBLISH with empty payload"),
            "{}",
            w[0]
        );
        assert!(
            differing_ids(&[scenario("MQTT-3.3.1-4")]).is_empty(),
            "the same rule in both"
        );
    }

    #[test]
    fn every_differing_id_is_in_both_catalogues() {
        for id in DIFFERING_IDS {
            assert!(
                mqtt_codec::catalogue::lookup(Protocol::V3_1_1, id).is_some(),
                "{id}"
            );
            assert!(
                mqtt_codec::catalogue::lookup(Protocol::V5, id).is_some(),
                "{id}"
            );
        }
    }
}
