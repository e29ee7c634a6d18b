//! `mqtt-harness explain ID`: a statement of the catalogue, as a person or a
//! tool wants it, and the scenarios that check it; `explain 3.3.1` lists the
//! statements of a section, `explain` (or `explain --list`) the whole catalogue.
//!
//! ```text
//! $ mqtt-harness explain MQTT-3.3.1-4 --protocol 5.0
//! MQTT-3.3.1-4 (MQTT 5.0, section 3.3.1.2)
//!   level:   MUST NOT
//!   binds:   both
//!   wire:    yes (observable on the wire)
//!   summary: A PUBLISH never has both QoS bits set (QoS 3).
//!   checked by: shared/3.3-publish/qos3 [5.0]
//! ```

use std::io::{Read, Write};

use mqtt_codec::catalogue::{self, Statement};
use mqtt_codec::Protocol;
use serde_json::json;

use super::{CmdError, Status};
use crate::suggest;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A statement id: MQTT-3.1.2-3 (also mqtt-3.1.2-3 or 3.1.2-3), or a
    /// section (3.3.1) to list its statements. Without it, the whole catalogue.
    #[arg(value_name = "ID|SECTION")]
    pub id: Option<String>,
    /// List the catalogue (every statement, one per line; with --protocol, one version's).
    #[arg(long, conflicts_with = "id")]
    pub list: bool,
    /// Only the statement of this version's catalogue (3.1 uses 3.1.1's);
    /// without it, every version that has the id.
    #[arg(long, value_parser = super::parse_protocol, value_name = "VERSION")]
    pub protocol: Option<Protocol>,
    /// Print `{"statements":[{"id","protocol","section","level","binds","wire","summary"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// Whether `s` names a section (`3.3.1`), not a statement.
fn is_section(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The catalogue's statements, of one version or both, in a section or all.
fn listing(protocol: Option<Protocol>, section: Option<&str>) -> Vec<&'static Statement> {
    let versions = match protocol {
        Some(p) => vec![p.catalogue_version()],
        None => vec![Protocol::V3_1_1, Protocol::V5],
    };
    versions
        .into_iter()
        .flat_map(|v| catalogue::statements(v).iter())
        .filter(|s| {
            section.is_none_or(|sec| {
                s.section == sec
                    || s.section
                        .strip_prefix(sec)
                        .is_some_and(|rest| rest.starts_with('.'))
            })
        })
        .collect()
}

/// The scenarios (`id [protocol]`) that check `s`, from the library `run`
/// uses by default; none where it cannot be read.
fn checked_by(s: &Statement) -> Vec<String> {
    let Ok(scenarios) = super::load_scenarios_quietly(&[]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sc in &scenarios {
        let under: Vec<&str> = sc
            .protocols
            .iter()
            .filter(|p| {
                p.catalogue_version() == s.protocol
                    && sc.checked_statements(**p).iter().any(|id| id == s.id)
            })
            .map(|p| p.as_str())
            .collect();
        if !under.is_empty() {
            out.push(format!("{} [{}]", sc.id, under.join(", ")));
        }
    }
    out
}

fn list(rows: &[&Statement], json: bool, out: &mut dyn Write) -> Result<Status, CmdError> {
    if json {
        let list: Vec<serde_json::Value> = rows.iter().map(|s| statement_json(s)).collect();
        writeln!(out, "{}", json!({ "statements": list }))?;
        return Ok(Status::Pass);
    }
    for s in rows {
        writeln!(
            out,
            "{:<14} {:<5} {:<9} {:<9} {}",
            s.id,
            s.protocol.as_str(),
            s.section,
            s.level.as_str(),
            s.summary
        )?;
    }
    Ok(Status::Pass)
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let id = match &args.id {
        None => return list(&listing(args.protocol, None), args.json, out),
        Some(id) if is_section(id) => {
            let rows = listing(args.protocol, Some(id.trim()));
            if rows.is_empty() {
                return Err(CmdError::Usage(format!(
                    "no statement in section {id}; `mqtt-harness explain --list` lists the catalogue"
                )));
            }
            return list(&rows, args.json, out);
        }
        Some(id) => id,
    };
    let rows: Vec<&Statement> = match args.protocol {
        Some(p) => catalogue::lookup(p, id).into_iter().collect(),
        None => catalogue::lookup_any(id),
    };
    if rows.is_empty() {
        return Err(CmdError::Usage(unknown(id, args.protocol)));
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|s| {
                let mut v = statement_json(s);
                v["scenarios"] = json!(checked_by(s));
                v
            })
            .collect();
        writeln!(out, "{}", json!({ "statements": list }))?;
        return Ok(Status::Pass);
    }
    for (i, s) in rows.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{} (MQTT {}, section {})", s.id, s.protocol, s.section)?;
        writeln!(out, "  level:   {}", s.level)?;
        writeln!(out, "  binds:   {}", s.binds)?;
        writeln!(
            out,
            "  wire:    {} ({})",
            s.wire,
            wire_meaning(s.wire.as_str())
        )?;
        writeln!(out, "  summary: {}", s.summary)?;
        let by = checked_by(s);
        if by.is_empty() {
            writeln!(
                out,
                "  checked by: no scenario (see `mqtt-harness coverage`)"
            )?;
        } else {
            writeln!(out, "  checked by: {}", by.join(", "))?;
        }
    }
    if rows.len() > 1 {
        writeln!(
            out,
            "\nnote: statement ids belong to a version, and this one is in both catalogues; \
             pick one with --protocol"
        )?;
    }
    Ok(Status::Pass)
}

pub fn statement_json(s: &Statement) -> serde_json::Value {
    json!({
        "id": s.id,
        "protocol": s.protocol.as_str(),
        "section": s.section,
        "level": s.level.as_str(),
        "binds": s.binds.as_str(),
        "wire": s.wire.as_str(),
        "summary": s.summary,
    })
}

fn wire_meaning(wire: &str) -> &'static str {
    match wire {
        "yes" => "observable on the wire",
        "reject" => "checked by sending a violating packet and expecting it to be refused",
        _ => "not observable on the wire",
    }
}

/// The message for an id that is not in the catalogue, with the closest one.
fn unknown(input: &str, protocol: Option<Protocol>) -> String {
    let versions: Vec<Protocol> = match protocol {
        Some(p) => vec![p.catalogue_version()],
        None => vec![Protocol::V3_1_1, Protocol::V5],
    };
    let scope = match protocol {
        Some(p) => format!("the MQTT {} catalogue", p.catalogue_version()),
        None => "the catalogue (MQTT 3.1.1 and 5.0)".to_string(),
    };
    if let Some(p) = protocol {
        let elsewhere: Vec<&str> = catalogue::lookup_any(input)
            .iter()
            .map(|s| s.protocol.as_str())
            .collect();
        if !elsewhere.is_empty() {
            return format!(
                "{input} is not a statement of MQTT {p}; it is one of MQTT {} \
                 (statement ids belong to a version): use --protocol {}",
                elsewhere.join(" and "),
                elsewhere.join(" or --protocol ")
            );
        }
    }
    let ids: Vec<&'static str> = versions
        .iter()
        .flat_map(|&v| catalogue::statements(v).iter().map(|s| s.id))
        .collect();
    match catalogue::normalize_id(input) {
        Some(norm) => {
            let hint = suggest::nearest(&norm, ids.iter().copied())
                .map(|near| {
                    let where_ = versions
                        .iter()
                        .filter(|&&v| catalogue::lookup(v, near).is_some())
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("; did you mean {near} (MQTT {where_})?")
                })
                .unwrap_or_default();
            format!("no statement {norm} in {scope}{hint}")
        }
        None => format!(
            "`{input}` is not a statement id: ids look like MQTT-3.1.2-3{}",
            suggest::hint(input, ids.iter().copied())
        ),
    }
}
