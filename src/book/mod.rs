//! The spec as a book (`mqtt-harness book DIR`): a static site that a person
//! opens offline (`file://`, no server, no network) to read each normative
//! statement of MQTT 3.1.1 and 5.0 beside the scenarios that check it and
//! the packets those scenarios exchanged with the reference broker.
//!
//! The site, all links relative:
//!
//! - `index.html`: the chapters of both versions, with counts, and the search box;
//! - `spec/VERSION-CHAPTER.html` (`spec/5.0-3.1.html`): one page per chapter
//!   of a version, one block per statement (`#MQTT-3.1.2-3`): our summary,
//!   level, who it binds, whether the wire shows it (or why it is not
//!   checked), the scenarios checking it with their verdict against the
//!   reference broker, the deliberate violations that break it, the packet
//!   fields that it governs, and the real brokers of the committed matrix;
//! - `spec/fields.html`: the field table ([`crate::packet::vocab`]), each
//!   field (`#f-PUBLISH-topic`) with the statements that govern it and the
//!   scenarios whose exchanges show it;
//! - `scenarios/SLUG.html`: a scenario's YAML beside its exchanges, one per
//!   protocol (`#case-5.0`), every packet (`#case-5.0-3`) decoded field by
//!   field, each field linked to the table and its statements, the hex in
//!   a `<details>`, and the real brokers each case fails on;
//!   `scenarios/index.html` lists them;
//! - `book.css`, `book.js` (the search) and `search-index.js` (what it
//!   searches, loaded by `<script src>`: `fetch()` of `file://` is blocked).
//!
//! Building is one run of the whole library against the embedded broker
//! with every exchange kept ([`crate::cmd::mutate`]'s `run_with`), then pure
//! rendering of [`Book`] into pages ([`Book::pages`]); [`crate::cmd::book`]
//! checks DIR, runs and writes. Real brokers' results are read by [`matrix`].

use std::collections::{BTreeMap, BTreeSet};

use mqtt_codec::catalogue::{self, Statement};
use mqtt_codec::{PacketType, Protocol};
use reference_broker::violation::{ViolationInfo, VIOLATIONS};

use crate::packet::vocab::{self, Field};
use crate::results::{CaseResult, RunReport};
use crate::scenario::Scenario;

mod exchange;
mod fields;
pub mod matrix;
mod scenarios;
mod search;
mod statements;

pub use crate::report::html::esc;
pub use matrix::Brokers;

const CSS: &str = include_str!("book.css");
const JS: &str = include_str!("book.js");

/// The two catalogues, in the order the book shows them.
pub const VERSIONS: [Protocol; 2] = [Protocol::V3_1_1, Protocol::V5];

/// What a book is made of.
pub struct Book {
    pub scenarios: Vec<Scenario>,
    /// Each scenario's YAML, by scenario id (missing: the page says so).
    pub sources: BTreeMap<String, String>,
    /// The run of the library against the reference broker, exchanges kept.
    pub report: RunReport,
    /// Real brokers' results (`targets/matrix.json`), where given.
    pub brokers: Option<Brokers>,
}

/// (catalogue version, statement id) → the scenarios checking it, each
/// with the protocols it does so under.
pub type CheckedBy<'a> = BTreeMap<(Protocol, String), Vec<(&'a Scenario, Vec<Protocol>)>>;

/// One file of the site: its path below DIR and its contents.
pub struct Page {
    pub path: String,
    pub contents: String,
}

/// A chapter of a version: `3.1` of 5.0, with its statements in order.
pub struct Chapter {
    pub protocol: Protocol,
    pub number: String,
    pub statements: Vec<&'static Statement>,
}

impl Chapter {
    /// `spec/5.0-3.1.html`.
    pub fn path(&self) -> String {
        chapter_path(self.protocol, &self.number)
    }

    pub fn title(&self) -> String {
        let t = crate::cmd::matrix::compare::section_title(self.protocol, &self.number);
        if t.is_empty() {
            format!("Section {}", self.number)
        } else {
            format!("{} {t}", self.number)
        }
    }
}

fn chapter_path(protocol: Protocol, number: &str) -> String {
    format!("spec/{}-{}.html", protocol.as_str(), number)
}

/// Every chapter of both catalogues, in the standard's order.
pub fn chapters() -> Vec<Chapter> {
    let mut out: Vec<Chapter> = Vec::new();
    for p in VERSIONS {
        let mut by: BTreeMap<Vec<u32>, Chapter> = BTreeMap::new();
        for st in catalogue::statements(p) {
            let number = crate::cmd::matrix::compare::chapter(st.section);
            let key: Vec<u32> = number.split('.').filter_map(|n| n.parse().ok()).collect();
            by.entry(key)
                .or_insert_with(|| Chapter {
                    protocol: p,
                    number,
                    statements: Vec::new(),
                })
                .statements
                .push(st);
        }
        out.extend(by.into_values());
    }
    out
}

/// The link to statement `id` of `protocol`'s catalogue from a page at depth
/// `root` (`""` for index.html, `"../"` below it); `None` for an id the
/// catalogue does not know.
pub fn statement_href(root: &str, protocol: Protocol, id: &str) -> Option<String> {
    let st = catalogue::lookup(protocol, id)?;
    let number = crate::cmd::matrix::compare::chapter(st.section);
    Some(format!(
        "{root}{}#{}",
        chapter_path(st.protocol, &number),
        st.id
    ))
}

/// `<a href=…>MQTT-3.1.2-3</a>`, or the id as text where it is unknown.
pub fn statement_link(root: &str, protocol: Protocol, id: &str) -> String {
    match statement_href(root, protocol, id) {
        Some(href) => format!("<a class=\"st\" href=\"{}\">{}</a>", esc(&href), esc(id)),
        None => format!("<span class=\"st\">{}</span>", esc(id)),
    }
}

/// The anchor of a field in `spec/fields.html`: `f-PUBLISH-topic`,
/// `f-CONNECT-will.qos`, `f-fault-raw`.
pub fn field_anchor(ty: Option<PacketType>, path: &str) -> String {
    let owner = ty.map_or("fault", PacketType::name);
    slug(&format!("f-{owner}-{path}"))
}

/// Letters, digits, `.`, `_` and `-` kept, anything else `_`: safe as a file
/// name and as an id.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Book {
    /// The scenarios' file names below `scenarios/`, unique: `shared/3.12-pingreq/pingresp`
    /// → `shared--3.12-pingreq--pingresp.html`.
    pub fn scenario_files(&self) -> BTreeMap<String, String> {
        let mut taken = BTreeSet::new();
        let mut out = BTreeMap::new();
        for s in &self.scenarios {
            // File names end at 255 bytes: a long id is cut (the slug is ASCII).
            let mut base = slug(&s.id.replace('/', "--"));
            base.truncate(160);
            let mut name = format!("{base}.html");
            let mut n = 2;
            while !taken.insert(name.clone()) || name == "index.html" {
                name = format!("{base}-{n}.html");
                n += 1;
            }
            out.insert(s.id.clone(), name);
        }
        out
    }

    /// The cases of the run by (scenario id, protocol).
    pub fn cases(&self) -> BTreeMap<(&str, Protocol), &CaseResult> {
        self.report
            .cases
            .iter()
            .map(|c| ((c.id.as_str(), c.protocol), c))
            .collect()
    }

    /// (catalogue version, statement id) → the scenarios whose cases check
    /// it, each with the protocols it does so under.
    pub fn checked_by(&self) -> CheckedBy<'_> {
        let mut out = CheckedBy::new();
        for s in &self.scenarios {
            for &p in &s.protocols {
                for id in s.checked_statements(p) {
                    let list = out.entry((p.catalogue_version(), id)).or_default();
                    match list.iter_mut().find(|(x, _)| x.id == s.id) {
                        Some((_, ps)) => ps.push(p),
                        None => list.push((s, vec![p])),
                    }
                }
            }
        }
        out
    }

    /// (type, field path in the table) → the scenarios whose recorded
    /// exchanges show the field: the way back from the field table.
    pub fn fields_seen(&self) -> BTreeMap<(PacketType, String), BTreeSet<&str>> {
        let mut out: BTreeMap<(PacketType, String), BTreeSet<&str>> = BTreeMap::new();
        for c in &self.report.cases {
            for e in &c.exchange {
                let Some(p) = &e.packet else { continue };
                let ty = p.packet_type();
                let Some(serde_json::Value::Object(map)) = crate::report::entry_packet_json(e)
                else {
                    continue;
                };
                for (key, value) in &map {
                    let Some(f) = vocab::lookup(ty, key) else {
                        continue;
                    };
                    out.entry((ty, f.name.to_string()))
                        .or_default()
                        .insert(&c.id);
                    if let serde_json::Value::Object(sub) = value {
                        for k in sub.keys() {
                            if let Some(s) = vocab::lookup_sub(f.sub, k) {
                                out.entry((ty, format!("{}.{}", f.name, s.name)))
                                    .or_default()
                                    .insert(&c.id);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Every page of the site.
    pub fn pages(&self) -> Vec<Page> {
        let files = self.scenario_files();
        let chapters = chapters();
        let mut pages = vec![
            Page {
                path: "book.css".into(),
                contents: CSS.into(),
            },
            Page {
                path: "book.js".into(),
                contents: JS.into(),
            },
            Page {
                path: "search-index.js".into(),
                contents: search::index(self, &chapters, &files),
            },
            statements::index(self, &chapters),
            fields::page(self, &files),
            scenarios::index(self, &files),
        ];
        pages.extend(statements::chapters(self, &chapters, &files));
        pages.extend(scenarios::pages(self, &files));
        pages
    }
}

/// The deliberate violations of the reference broker that break statement
/// `id` (its ids are of 3.1.1 and/or 5.0 numbering).
pub fn violations_of(id: &str) -> Vec<&'static ViolationInfo> {
    VIOLATIONS.iter().filter(|v| v.ids.contains(&id)).collect()
}

/// Every field of the table, with its type (none for the faults) and its
/// path (`will.qos`).
pub fn all_fields() -> Vec<(Option<PacketType>, String, &'static Field)> {
    let mut out = Vec::new();
    for ty in PacketType::ALL {
        for f in vocab::fields(ty) {
            out.push((Some(ty), f.name.to_string(), f));
            for s in f.sub {
                out.push((Some(ty), format!("{}.{}", f.name, s.name), s));
            }
        }
    }
    for f in vocab::FAULTS {
        out.push((None, f.name.to_string(), f));
    }
    out
}

/// The statements that govern field `f` of `ty` in each catalogue version,
/// as `mqtt-harness fields` lists them.
pub fn field_statements(ty: PacketType, f: &Field) -> Vec<(Protocol, Vec<&'static str>)> {
    let versions = crate::cmd::fields::shown_versions(f, Some(ty), None);
    crate::cmd::fields::statements(f, ty, &versions)
}

/// (catalogue version, statement id) → the fields (type, path) it governs.
pub fn fields_by_statement() -> BTreeMap<(Protocol, &'static str), Vec<(PacketType, String)>> {
    let mut out: BTreeMap<(Protocol, &'static str), Vec<(PacketType, String)>> = BTreeMap::new();
    for (ty, path, f) in all_fields() {
        let Some(ty) = ty else { continue };
        for (p, ids) in field_statements(ty, f) {
            for id in ids {
                out.entry((p, id)).or_default().push((ty, path.clone()));
            }
        }
    }
    out
}

/// A whole page: the header with the search box, then `body`. `root` is
/// the way back to DIR (`""` or `"../"`).
pub fn layout(root: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · the MQTT spec as a book</title>\
         <link rel=\"stylesheet\" href=\"{root}book.css\"></head>\n\
         <body data-root=\"{root}\">\n<header><a class=\"home\" href=\"{root}index.html\">MQTT spec book</a>\
         <nav><a href=\"{root}spec/fields.html\">fields</a> <a href=\"{root}scenarios/index.html\">scenarios</a></nav>\
         <div class=\"search\"><input id=\"search\" type=\"search\" placeholder=\"Search statements, scenarios, fields…\" \
         autocomplete=\"off\" aria-label=\"search\"><div id=\"results\" hidden></div></div></header>\n\
         <main>\n{body}</main>\n\
         <script src=\"{root}search-index.js\"></script><script src=\"{root}book.js\"></script>\n</body></html>\n",
        title = esc(title),
        root = esc(root),
    )
}
