//! `spec/fields.html`: the one field table ([`crate::packet::vocab`]), each
//! field with the statements that govern it, linked to their pages.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mqtt_codec::PacketType;

use super::{esc, field_anchor, field_statements, layout, statement_link, Book, Page};
use crate::packet::vocab::{self, Field};

/// Scenarios listed per field at most; the rest are counted.
const SHOWN: usize = 30;

type Seen<'a> = BTreeMap<(PacketType, String), BTreeSet<&'a str>>;

pub fn page(book: &Book, files: &BTreeMap<String, String>) -> Page {
    let seen = book.fields_seen();
    let mut body = String::from(
        "<h1>Packet fields</h1>\n<p class=\"lead\">The keys that describe a packet: what the \
         exchanges show, what scenario <code>send</code> steps set and <code>expect</code> steps \
         match (<code>mqtt-harness fields</code> prints the same table).</p>\n<p class=\"toc\">",
    );
    let links: Vec<String> = PacketType::ALL
        .iter()
        .map(|t| format!("<a href=\"#t-{0}\">{0}</a>", t.name()))
        .chain(["<a href=\"#t-faults\">faults</a>".to_string()])
        .collect();
    body.push_str(&links.join(" · "));
    body.push_str("</p>\n");
    for ty in PacketType::ALL {
        let _ = writeln!(
            body,
            "<section id=\"t-{0}\"><h2>{0} <small>MQTT {1}</small></h2>",
            ty.name(),
            vocab::type_versions(ty)
        );
        let fields = vocab::fields(ty);
        if fields.is_empty() {
            body.push_str("<p class=\"meta\">No fields.</p></section>\n");
            continue;
        }
        body.push_str(HEAD);
        for f in fields {
            row(&mut body, Some(ty), f, f.name, (&seen, files));
            for s in f.sub {
                let path = format!("{}.{}", f.name, s.name);
                row(&mut body, Some(ty), s, &path, (&seen, files));
            }
        }
        body.push_str("</table></section>\n");
    }
    body.push_str(
        "<section id=\"t-faults\"><h2>Any packet: deliberate faults</h2>\
         <p class=\"meta\">Keys that make the encoder write bytes a receiver must refuse (send only).</p>\n",
    );
    body.push_str(HEAD);
    for f in vocab::FAULTS {
        row(&mut body, None, f, f.name, (&seen, files));
    }
    body.push_str("</table></section>\n");
    Page {
        path: "spec/fields.html".into(),
        contents: layout("../", "Packet fields", &body),
    }
}

const HEAD: &str =
    "<table class=\"ftable\"><tr><th>field</th><th>value</th><th>use</th><th>versions</th>\
                    <th>what it is</th><th>statements</th><th>in the exchanges of</th></tr>\n";

fn row(
    out: &mut String,
    ty: Option<PacketType>,
    f: &Field,
    path: &str,
    (seen, files): (&Seen, &BTreeMap<String, String>),
) {
    let id = field_anchor(ty, path);
    let scenarios =
        ty.and_then(|t| seen.get(&(t, path.to_string())))
            .map_or(String::new(), |ids| {
                let links: Vec<String> = ids
                    .iter()
                    .take(SHOWN)
                    .filter_map(|sid| {
                        let file = files.get(*sid)?;
                        Some(format!(
                            "<a href=\"../scenarios/{}\">{}</a>",
                            esc(file),
                            esc(sid)
                        ))
                    })
                    .collect();
                let more = ids.len().saturating_sub(SHOWN);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!(
                    "<details><summary>{} scenario{}</summary>{}{more}</details>",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" },
                    links.join(", ")
                )
            });
    let statements = ty.map_or(String::new(), |t| {
        field_statements(t, f)
            .into_iter()
            .map(|(p, ids)| {
                let links: Vec<String> = ids
                    .into_iter()
                    .map(|id| statement_link("../", p, id))
                    .collect();
                format!("<div>{p}: {}</div>", links.join(" "))
            })
            .collect::<String>()
    });
    let mut name = format!("<code>{}</code>", esc(path));
    for a in f.aliases {
        let _ = write!(name, " <small>or <code>{}</code></small>", esc(a));
    }
    let uses = match (f.send, f.expect) {
        (true, true) => "send, expect",
        (true, false) => "send",
        (false, true) => "expect",
        (false, false) => "",
    };
    let _ = writeln!(
        out,
        "<tr id=\"{id}\"><td><a class=\"anchor\" href=\"#{id}\">{name}</a></td><td>{}</td><td>{uses}</td>\
         <td>{}</td><td>{}</td><td class=\"sts\">{statements}</td><td class=\"seen\">{scenarios}</td></tr>",
        esc(f.kind.describe()),
        f.versions,
        esc(f.description),
    );
}
