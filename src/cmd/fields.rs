//! `mqtt-harness fields [TYPE]`: the packet field vocabulary — what
//! `encode` files and scenario `send`/`expect` steps may name, and what
//! `decode --json` prints — from the one table, [`crate::packet::vocab`].
//!
//! ```text
//! $ mqtt-harness fields PUBACK --protocol 5.0
//! PUBACK (MQTT 5.0)
//!   id                     send expect  the packet identifier (required)
//!                          value: 0 to 65535
//!                          statements: MQTT-2.2.1-5
//!   reason_code            send expect  the reason code (default 0, success)
//!                          value: a number (0x87) or the code's name (Not authorized)
//!                          also: code
//!                          statements: MQTT-3.4.2-1
//!   …
//! ```
//!
//! `--json` prints `{"types":[{"type","versions","fields":[…]}],"faults":[…]}`;
//! `--markdown` prints the reference page `docs/fields.md` (a test keeps the
//! committed page equal to it).

use std::io::{Read, Write};

use mqtt_codec::{PacketType, Protocol, Sender};
use serde_json::{json, Value};

use super::{CmdError, Status};
use crate::field_rules;
use crate::packet::vocab::{self, Field, Role, Versions};
use crate::suggest;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One packet type (PUBLISH, puback…); without it, every type.
    #[arg(value_name = "TYPE")]
    pub packet_type: Option<String>,
    /// Only the fields of this version, with its statements: 3.1, 3.1.1 or 5.0.
    #[arg(long, value_parser = super::parse_protocol, value_name = "VERSION")]
    pub protocol: Option<Protocol>,
    /// Print the table as JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the reference page docs/fields.md (every type, every version).
    #[arg(long, conflicts_with_all = ["packet_type", "protocol"])]
    pub markdown: bool,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    if args.markdown {
        out.write_all(markdown().as_bytes())?;
        return Ok(Status::Pass);
    }
    let types = match &args.packet_type {
        Some(name) => vec![packet_type(name)?],
        None => PacketType::ALL.to_vec(),
    };
    if let (Some(p), [ty]) = (args.protocol, types.as_slice()) {
        if !vocab::type_versions(*ty).contains(p) {
            return Err(CmdError::Usage(format!(
                "there is no {ty} in MQTT {p}; it exists in MQTT {}",
                vocab::type_versions(*ty)
            )));
        }
    }
    let types: Vec<PacketType> = types
        .into_iter()
        .filter(|t| {
            args.protocol
                .is_none_or(|p| vocab::type_versions(*t).contains(p))
        })
        .collect();
    if args.json {
        let list: Vec<Value> = types.iter().map(|t| type_json(*t, args.protocol)).collect();
        let faults: Vec<Value> = vocab::FAULTS
            .iter()
            .map(|f| field_json(f, None, args.protocol))
            .collect();
        writeln!(out, "{}", json!({ "types": list, "faults": faults }))?;
        return Ok(Status::Pass);
    }
    for (i, ty) in types.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_type(out, *ty, args.protocol)?;
    }
    writeln!(out)?;
    writeln!(out, "On any packet (deliberate faults, send only):")?;
    for f in vocab::FAULTS {
        write_field(out, f, None, args.protocol, "")?;
    }
    Ok(Status::Pass)
}

fn packet_type(name: &str) -> Result<PacketType, CmdError> {
    PacketType::from_name(&name.trim().to_ascii_uppercase()).ok_or_else(|| {
        let names = PacketType::ALL.iter().map(|t| t.name());
        CmdError::Usage(format!(
            "unknown packet type `{name}`{}; the types are {}",
            suggest::hint(&name.to_ascii_uppercase(), names.clone()),
            names.collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The versions a field of `ty` is shown for: its own, within the type's,
/// within `--protocol`.
pub(crate) fn shown_versions(
    f: &Field,
    ty: Option<PacketType>,
    only: Option<Protocol>,
) -> Vec<Protocol> {
    f.versions
        .protocols()
        .filter(|p| ty.is_none_or(|t| vocab::type_versions(t).contains(*p)))
        .filter(|p| only.is_none_or(|o| o == *p))
        .collect()
}

/// The statements that govern `f` in `ty`, per catalogue version (3.1 is
/// checked against 3.1.1's), from [`field_rules`] by the codec's names for
/// the field's bytes.
pub(crate) fn statements(
    f: &Field,
    ty: PacketType,
    versions: &[Protocol],
) -> Vec<(Protocol, Vec<&'static str>)> {
    let mut out: Vec<(Protocol, Vec<&'static str>)> = Vec::new();
    for p in versions {
        let catalogue = p.catalogue_version();
        let mut ids: Vec<&'static str> = Vec::new();
        for wire in f.wire {
            for from in [Sender::Client, Sender::Server] {
                if !ty.allowed_from(from, *p) {
                    continue;
                }
                for id in field_rules::statements(wire, ty, *p, from) {
                    if !ids.contains(id) {
                        ids.push(id);
                    }
                }
            }
        }
        if ids.is_empty() || out.iter().any(|(c, _)| *c == catalogue) {
            continue;
        }
        out.push((catalogue, ids));
    }
    out
}

/// `MQTT-2.2.1-5`, or per version where the field exists in several:
/// `3.1.1: MQTT-2.3.1-6; 5.0: MQTT-2.2.1-5` (versions with the same ids together).
fn statements_text(list: &[(Protocol, Vec<&'static str>)], versions: &[Protocol]) -> String {
    let catalogues: Vec<Protocol> = versions.iter().map(|p| p.catalogue_version()).collect();
    if catalogues.iter().all(|c| Some(c) == catalogues.first()) {
        return list
            .first()
            .map_or(String::new(), |(_, ids)| ids.join(", "));
    }
    let mut groups: Vec<(Vec<&str>, &[&str])> = Vec::new();
    for (p, ids) in list {
        match groups.iter_mut().find(|(_, g)| *g == ids.as_slice()) {
            Some((names, _)) => names.push(p.as_str()),
            None => groups.push((vec![p.as_str()], ids)),
        }
    }
    groups
        .iter()
        .map(|(names, ids)| format!("{}: {}", names.join(", "), ids.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn uses(f: &Field) -> &'static str {
    match (f.send, f.expect) {
        (true, true) => "send expect",
        (true, false) => "send",
        (false, true) => "expect",
        (false, false) => "",
    }
}

fn versions_text(list: &[Protocol]) -> String {
    list.iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_type(out: &mut dyn Write, ty: PacketType, only: Option<Protocol>) -> std::io::Result<()> {
    let versions: Vec<Protocol> = vocab::type_versions(ty)
        .protocols()
        .filter(|p| only.is_none_or(|o| o == *p))
        .collect();
    writeln!(out, "{ty} (MQTT {})", versions_text(&versions))?;
    let fields = vocab::fields(ty);
    if fields.is_empty() {
        writeln!(out, "  no fields")?;
    }
    for f in fields {
        write_field(out, f, Some(ty), only, "")?;
        for s in f.sub {
            write_field(out, s, Some(ty), only, f.name)?;
        }
    }
    Ok(())
}

fn write_field(
    out: &mut dyn Write,
    f: &Field,
    ty: Option<PacketType>,
    only: Option<Protocol>,
    parent: &str,
) -> std::io::Result<()> {
    let versions = shown_versions(f, ty, only);
    if versions.is_empty() {
        return Ok(());
    }
    let name = if parent.is_empty() {
        f.name.to_string()
    } else {
        format!("{parent}.{}", f.name)
    };
    let in_versions = if only.is_some() || f.versions.is_all() {
        String::new()
    } else {
        format!(" (MQTT {} only)", versions_text(&versions))
    };
    writeln!(
        out,
        "  {name:<22} {:<12} {}{in_versions}",
        uses(f),
        f.description
    )?;
    let pad = "";
    writeln!(out, "  {pad:<22} value: {}", f.kind.describe())?;
    if !f.aliases.is_empty() {
        writeln!(out, "  {pad:<22} also: {}", f.aliases.join(", "))?;
    }
    if let Some(t) = ty {
        let st = statements_text(&statements(f, t, &versions), &versions);
        if !st.is_empty() {
            writeln!(out, "  {pad:<22} statements: {st}")?;
        }
    }
    Ok(())
}

fn type_json(ty: PacketType, only: Option<Protocol>) -> Value {
    let versions: Vec<&str> = vocab::type_versions(ty)
        .protocols()
        .filter(|p| only.is_none_or(|o| o == *p))
        .map(Protocol::as_str)
        .collect();
    let fields: Vec<Value> = vocab::fields(ty)
        .iter()
        .filter(|f| !shown_versions(f, Some(ty), only).is_empty())
        .map(|f| field_json(f, Some(ty), only))
        .collect();
    json!({ "type": ty.name(), "versions": versions, "fields": fields })
}

fn field_json(f: &Field, ty: Option<PacketType>, only: Option<Protocol>) -> Value {
    let versions = shown_versions(f, ty, only);
    let mut statements_by_version = serde_json::Map::new();
    if let Some(t) = ty {
        for (p, ids) in statements(f, t, &versions) {
            statements_by_version.insert(p.as_str().into(), json!(ids));
        }
    }
    let sub: Vec<Value> = f
        .sub
        .iter()
        .filter(|s| !shown_versions(s, ty, only).is_empty())
        .map(|s| field_json(s, ty, only))
        .collect();
    let mut v = json!({
        "name": f.name,
        "aliases": f.aliases,
        "kind": format!("{:?}", f.kind).to_ascii_lowercase(),
        "value": f.kind.describe(),
        "role": match f.role {
            Role::Field => "field",
            Role::Fault => "fault",
            Role::Matcher => "matcher",
        },
        "send": f.send,
        "expect": f.expect,
        "versions": versions.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "description": f.description,
        "statements": statements_by_version,
    });
    if !sub.is_empty() {
        v["fields"] = json!(sub);
    }
    v
}

/// The reference page `docs/fields.md`.
pub fn markdown() -> String {
    let mut s = String::new();
    s.push_str(
        "# Packet fields\n\n\
         <!-- Generated from src/packet/vocab.rs by `mqtt-harness fields --markdown > docs/fields.md`; \
         do not edit by hand. A test fails when this page and the table differ. -->\n\n\
         The keys that describe a packet: what `mqtt-harness encode` reads, what scenario `send` \
         steps set and `expect` steps match, and what `mqtt-harness decode --json` prints. A packet \
         is a mapping with a `type` (in a scenario, `send: TYPE` or `expect: TYPE`) and the fields \
         of that type. `mqtt-harness fields [TYPE] [--protocol V]` prints the same table.\n\n\
         - **send** / **expect**: a `send` step (and `encode`) may set it / an `expect` step may match it.\n\
         - **versions**: the protocol versions in which the field exists; given in another, it is an error.\n\
         - **statements**: the normative statements about the field's encoding and validity \
         (`mqtt-harness explain ID`); 3.1 is checked against the 3.1.1 catalogue.\n\
         - In a scenario `send`, a value may be a capture (`$m`) that an earlier `expect` filled in; \
         strings may hold placeholders such as `{topic}` (see `scenarios/README.md`).\n\n",
    );
    for ty in PacketType::ALL {
        let versions: Vec<Protocol> = vocab::type_versions(ty).protocols().collect();
        s.push_str(&format!("## {ty}\n\n"));
        if !vocab::type_versions(ty).is_all() {
            s.push_str(&format!("MQTT {} only.\n\n", versions_text(&versions)));
        }
        let fields = vocab::fields(ty);
        if fields.is_empty() {
            s.push_str("No fields.\n\n");
            continue;
        }
        s.push_str(HEADER);
        for f in fields {
            s.push_str(&row(f, Some(ty), ""));
            for sub in f.sub {
                s.push_str(&row(sub, Some(ty), f.name));
            }
        }
        s.push('\n');
    }
    s.push_str(
        "## Any packet: deliberate faults\n\n\
         These keys make the encoder write bytes that a receiver must refuse; `send` only. \
         `raw` takes the field names that `mqtt-harness decode` shows.\n\n",
    );
    s.push_str(HEADER);
    for f in vocab::FAULTS {
        s.push_str(&row(f, None, ""));
    }
    s
}

const HEADER: &str = "| field | value | send | expect | versions | description | statements |\n\
                      |---|---|---|---|---|---|---|\n";

fn row(f: &Field, ty: Option<PacketType>, parent: &str) -> String {
    let versions = shown_versions(f, ty, None);
    let mut name = if parent.is_empty() {
        format!("`{}`", f.name)
    } else {
        format!("`{parent}.{}`", f.name)
    };
    for a in f.aliases {
        name.push_str(&format!(" (or `{a}`)"));
    }
    let statements = ty.map_or(String::new(), |t| {
        statements_text(&statements(f, t, &versions), &versions)
    });
    let mark = |b: bool| if b { "✓" } else { "" };
    let shown = if Versions::ALL == f.versions {
        "all".to_string()
    } else {
        versions_text(&versions)
    };
    format!(
        "| {name} | {} | {} | {} | {shown} | {} | {statements} |\n",
        cell(f.kind.describe()),
        mark(f.send),
        mark(f.expect),
        cell(f.description),
    )
}

/// Text for a table cell: `|` would end it.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference page is what the table generates.
    #[test]
    fn docs_fields_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fields.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == markdown(),
            "docs/fields.md differs from the field table; regenerate it with\n  \
             cargo run -- fields --markdown > docs/fields.md"
        );
    }

    #[test]
    fn one_type_in_one_version() {
        let args = Args {
            packet_type: Some("puback".into()),
            protocol: Some(Protocol::V3_1_1),
            json: false,
            markdown: false,
        };
        let mut out = Vec::new();
        run(&args, &mut std::io::empty(), &mut out).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("PUBACK (MQTT 3.1.1)\n  id "), "{text}");
        assert!(text.contains("statements: MQTT-2.3.1-6"), "{text}");
        // 5.0's reason code is not a field of a 3.1.1 PUBACK.
        assert!(!text.contains("reason_code"), "{text}");
    }

    #[test]
    fn json_lists_statements_per_version() {
        let args = Args {
            packet_type: Some("CONNECT".into()),
            protocol: None,
            json: true,
            markdown: false,
        };
        let mut out = Vec::new();
        run(&args, &mut std::io::empty(), &mut out).unwrap_or_else(|e| panic!("{e}"));
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        let username = &v["types"][0]["fields"][6];
        assert_eq!(username["name"], "username");
        assert_eq!(
            username["statements"]["5.0"],
            json!(["MQTT-3.1.2-17", "MQTT-3.1.3-12"])
        );
        assert_eq!(v["types"][0]["fields"][5]["fields"][0]["name"], "qos");
    }

    #[test]
    fn an_unknown_type_is_a_usage_error() {
        let args = Args {
            packet_type: Some("PUBLSH".into()),
            protocol: None,
            json: false,
            markdown: false,
        };
        let e = run(&args, &mut std::io::empty(), &mut Vec::new())
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("did you mean `PUBLISH`")));
    }
}
