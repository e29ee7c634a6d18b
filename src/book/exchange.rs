//! A case's exchange as HTML: each packet decoded field by field, each field
//! linked to the field table and to the statements that govern it, the
//! bytes in hex on demand.

use std::fmt::Write as _;

use mqtt_codec::{DecodeOptions, Decoded, PacketType, Protocol, Sender};
use mqtt_net::{Direction, LogEntry};
use serde_json::Value;

use super::{esc, field_anchor, field_statements, statement_link};
use crate::packet::vocab::{self, Field};
use crate::results::CaseResult;

/// `<ol class="exchange">` of `case`, its packets anchored `{anchor}-N` (N from 1).
pub fn render(out: &mut String, case: &CaseResult, anchor: &str) {
    let Some(first) = case.exchange.first() else {
        out.push_str("<p class=\"meta\">No packet was exchanged.</p>\n");
        return;
    };
    let start = first.at;
    out.push_str("<ol class=\"exchange\">\n");
    for (i, e) in case.exchange.iter().enumerate() {
        let ms = e.at.saturating_duration_since(start).as_millis();
        let (class, arrow) = match e.direction {
            Direction::Sent => ("sent", "→ broker"),
            Direction::Received => ("received", "← broker"),
        };
        let what = match &e.packet {
            Some(p) => format!("<b class=\"ptype\">{}</b>", p.packet_type().name()),
            None if e.bytes.is_empty() => "<b class=\"ptype\">(no packet)</b>".into(),
            None if e.direction == Direction::Sent => "<b class=\"ptype\">raw bytes</b>".into(),
            None => "<b class=\"ptype\">bytes that do not decode</b>".into(),
        };
        let _ = writeln!(
            out,
            "<li class=\"{class}\" id=\"{anchor}-{n}\"><div class=\"hdr\"><a class=\"anchor\" href=\"#{anchor}-{n}\">#{n}</a> \
             <span class=\"who\">{who}</span> <span class=\"arrow\">{arrow}</span> {what} <span class=\"t\">+{ms} ms</span></div>",
            n = i + 1,
            who = esc(&e.client),
        );
        if let Some(p) = &e.packet {
            fields_table(out, e, p.packet_type());
        }
        if e.packet.is_none() && !e.bytes.is_empty() {
            undecoded(out, e);
        }
        if let Some(note) = &e.note {
            let _ = write!(out, "<p class=\"note\">{}</p>", esc(note));
        }
        if !e.bytes.is_empty() {
            let _ = write!(
                out,
                "<details class=\"hex\"><summary>hex · {} bytes</summary><pre>{}</pre></details>",
                e.bytes.len(),
                esc(&crate::hex::spaced(&e.bytes))
            );
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
}

/// What the codec makes of bytes that travelled as no packet (sent raw on
/// purpose, or not decodable): the rule they break, linked.
fn undecoded(out: &mut String, e: &LogEntry) {
    let from = match e.direction {
        Direction::Sent => Sender::Client,
        Direction::Received => Sender::Server,
    };
    let opts = DecodeOptions::new(e.protocol, from);
    let said = match mqtt_codec::decode_bytes(&e.bytes, &opts) {
        Ok(Decoded::Packet { packet, .. }) => {
            format!("the codec reads them as a {}", packet.packet_type().name())
        }
        Ok(Decoded::Incomplete { needed }) => {
            format!("they end inside a packet ({needed} more bytes needed)")
        }
        Err(err) => {
            let rule = err.statement().map_or(String::new(), |id| {
                format!(
                    ", against {}",
                    statement_link("../", e.protocol.catalogue_version(), id)
                )
            });
            format!(
                "a receiver refuses them at byte {}: {}{rule}",
                err.offset,
                esc(&err.message())
            )
        }
    };
    let _ = write!(out, "<p class=\"raw\">Raw bytes: {said}.</p>");
}

/// The packet's fields as `decode --json` prints them, one row each.
fn fields_table(out: &mut String, e: &LogEntry, ty: PacketType) {
    let Some(Value::Object(map)) = crate::report::entry_packet_json(e) else {
        return;
    };
    let rows: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != "type").collect();
    if rows.is_empty() {
        out.push_str("<p class=\"meta\">no fields</p>");
        return;
    }
    out.push_str("<table class=\"pfields\">");
    for (key, value) in rows {
        let field = vocab::lookup(ty, key);
        row(
            out,
            e.protocol,
            ty,
            key,
            field.map(|f| (f, f.name.to_string())),
            value,
        );
        if let (Some(f), Value::Object(sub)) = (field, value) {
            if !f.sub.is_empty() {
                for (k, v) in sub {
                    let found =
                        vocab::lookup_sub(f.sub, k).map(|s| (s, format!("{}.{}", f.name, s.name)));
                    row(out, e.protocol, ty, &format!("{key}.{k}"), found, v);
                }
            }
        }
    }
    out.push_str("</table>\n");
}

fn row(
    out: &mut String,
    protocol: Protocol,
    ty: PacketType,
    path: &str,
    found: Option<(&'static Field, String)>,
    value: &Value,
) {
    let name = match &found {
        Some((_, table_path)) => format!(
            "<a class=\"field\" href=\"../spec/fields.html#{}\">{}</a>",
            field_anchor(Some(ty), table_path),
            esc(path)
        ),
        None => esc(path),
    };
    let field = found.map(|(f, _)| f);
    let shown = match value {
        // A mapping with its own rows below (a will): only its name here.
        Value::Object(_) if field.is_some_and(|f| !f.sub.is_empty()) => String::new(),
        other => format!("<code>{}</code>", esc(&other.to_string())),
    };
    let statements = field.map_or(String::new(), |f| {
        let catalogue = protocol.catalogue_version();
        field_statements(ty, f)
            .into_iter()
            .filter(|(p, _)| *p == catalogue)
            .flat_map(|(p, ids)| ids.into_iter().map(move |id| statement_link("../", p, id)))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let _ = write!(
        out,
        "<tr><th>{name}</th><td>{shown}</td><td class=\"sts\">{statements}</td></tr>"
    );
}
