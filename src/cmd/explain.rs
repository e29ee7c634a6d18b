//! `mqtt-harness explain ID`: a statement of the catalogue, as a person or a
//! tool wants it.
//!
//! ```text
//! $ mqtt-harness explain MQTT-3.3.1-4 --protocol 5.0
//! MQTT-3.3.1-4 (MQTT 5.0, section 3.3.1)
//!   level:   MUST
//!   binds:   both
//!   wire:    yes (observable on the wire)
//!   summary: A PUBLISH never has both QoS bits set (QoS 3).
//! ```

use std::io::{Read, Write};

use mqtt_codec::catalogue::{self, Statement};
use mqtt_codec::Protocol;
use serde_json::json;

use super::{CmdError, Status};
use crate::suggest;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A statement id: MQTT-3.1.2-3 (also mqtt-3.1.2-3 or 3.1.2-3).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Only the statement of this version's catalogue (3.1 uses 3.1.1's);
    /// without it, every version that has the id.
    #[arg(long, value_parser = super::parse_protocol, value_name = "VERSION")]
    pub protocol: Option<Protocol>,
    /// Print `{"statements":[{"id","protocol","section","level","binds","wire","summary"}]}`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let rows: Vec<&Statement> = match args.protocol {
        Some(p) => catalogue::lookup(p, &args.id).into_iter().collect(),
        None => catalogue::lookup_any(&args.id),
    };
    if rows.is_empty() {
        return Err(CmdError::Usage(unknown(&args.id, args.protocol)));
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows.iter().map(|s| statement_json(s)).collect();
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
