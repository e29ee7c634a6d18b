//! The index and the chapter pages: one block per statement.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mqtt_codec::catalogue::{Statement, Wire};
use mqtt_codec::{PacketType, Protocol};

use super::{
    esc, field_anchor, fields_by_statement, layout, violations_of, Book, Chapter, Page, VERSIONS,
};
use crate::scenario::Scenario;

/// `index.html`: what the book is, and the chapters of both versions.
pub fn index(book: &Book, chapters: &[Chapter]) -> Page {
    let checked = book.checked_by();
    let mut body = String::from(
        "<h1>The MQTT specifications as a book</h1>\n\
         <p class=\"lead\">Every normative statement of MQTT 3.1.1 and 5.0, in our own words, \
         beside the scenarios that check it and the packets they exchanged with the reference \
         broker. Search above, or open a chapter.</p>\n",
    );
    let cases = &book.report.cases;
    let _ = writeln!(
        body,
        "<p class=\"meta\" id=\"built\">Exchanges recorded against the reference broker ({} cases of {} scenarios, \
         {} passed); {}.</p>",
        cases.len(),
        book.scenarios.len(),
        cases
            .iter()
            .filter(|c| c.status == crate::results::Status::Pass)
            .count(),
        match &book.brokers {
            Some(b) => format!(
                "real brokers from <code>{}</code>: {}",
                esc(&b.source),
                esc(&b.names.join(", "))
            ),
            None => "no real brokers' results were given".into(),
        }
    );
    body.push_str("<div class=\"versions\">");
    for p in VERSIONS {
        let of: Vec<&Chapter> = chapters.iter().filter(|c| c.protocol == p).collect();
        let total: usize = of.iter().map(|c| c.statements.len()).sum();
        let _ = write!(
            body,
            "<section class=\"version\" id=\"v{p}\"><h2>MQTT {p} <small>{total} statements</small></h2><ul class=\"toc\">"
        );
        for c in of {
            let n_checked = c
                .statements
                .iter()
                .filter(|s| checked.contains_key(&(p, s.id.to_string())))
                .count();
            let n = c.statements.len();
            let _ = write!(
                body,
                "<li><a href=\"{}\">{}</a> <small>{n} statement{}, {n_checked} checked</small></li>",
                esc(&c.path()),
                esc(&c.title()),
                if n == 1 { "" } else { "s" }
            );
        }
        body.push_str("</ul></section>");
    }
    body.push_str("</div>\n");
    Page {
        path: "index.html".into(),
        contents: layout("", "Contents", &body),
    }
}

/// One page per chapter.
pub fn chapters(book: &Book, chapters: &[Chapter], files: &BTreeMap<String, String>) -> Vec<Page> {
    let checked = book.checked_by();
    let cases = book.cases();
    let fields = fields_by_statement();
    let mut pages = Vec::new();
    for (i, c) in chapters.iter().enumerate() {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>MQTT {} — {}</h1>\n<p class=\"pager\">",
            c.protocol,
            esc(&c.title())
        );
        let same = |j: usize| chapters.get(j).filter(|o| o.protocol == c.protocol);
        if let Some(prev) = i.checked_sub(1).and_then(same) {
            let _ = write!(
                body,
                "<a rel=\"prev\" href=\"{}\">← {}</a> ",
                esc(&file_of(&prev.path())),
                esc(&prev.title())
            );
        }
        if let Some(next) = same(i + 1) {
            let _ = write!(
                body,
                "<a rel=\"next\" href=\"{}\">{} →</a>",
                esc(&file_of(&next.path())),
                esc(&next.title())
            );
        }
        body.push_str("</p>\n");
        for st in &c.statements {
            let by = checked
                .get(&(c.protocol, st.id.to_string()))
                .map_or(&[][..], Vec::as_slice);
            statement(&mut body, book, st, by, &cases, files, &fields);
        }
        pages.push(Page {
            path: c.path(),
            contents: layout("../", &format!("MQTT {} {}", c.protocol, c.title()), &body),
        });
    }
    pages
}

/// `spec/5.0-3.1.html` → `5.0-3.1.html`: a link between chapter pages.
fn file_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

fn wire_text(st: &Statement) -> &'static str {
    match st.wire {
        Wire::Yes => "the wire shows it",
        Wire::Reject => "shown on the wire by the broker refusing a packet that breaks it",
        Wire::No => "not observable on the wire",
    }
}

fn status_mark(status: &str) -> String {
    format!("<span class=\"mark m-{0}\">{0}</span>", esc(status))
}

/// One statement's block.
fn statement(
    out: &mut String,
    book: &Book,
    st: &Statement,
    by: &[(&Scenario, Vec<Protocol>)],
    cases: &BTreeMap<(&str, Protocol), &crate::results::CaseResult>,
    files: &BTreeMap<String, String>,
    fields: &BTreeMap<(Protocol, &'static str), Vec<(PacketType, String)>>,
) {
    let level_class = st.level.as_str().replace(' ', "-").to_ascii_lowercase();
    let _ = writeln!(
        out,
        "<article class=\"statement\" id=\"{id}\" data-checked=\"{checked}\">\n\
         <h2><a class=\"anchor\" href=\"#{id}\">{id}</a> <span class=\"level l-{level_class}\">{level}</span> \
         <span class=\"binds\">binds the {binds}</span> <span class=\"sec\">§ {sec}</span></h2>\n\
         <p class=\"summary\">{summary}</p>\n<p class=\"wire\">Wire: {wire}.</p>",
        id = esc(st.id),
        checked = !by.is_empty(),
        level = st.level.as_str(),
        binds = if st.binds.as_str() == "both" {
            "client and the server".to_string()
        } else {
            st.binds.as_str().to_string()
        },
        sec = esc(st.section),
        summary = esc(st.summary),
        wire = wire_text(st),
    );
    if by.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"unchecked\">Not checked by a scenario: {}.</p>",
            esc(crate::cmd::coverage::gap_reason(st).trim_end_matches('.'))
        );
    } else {
        out.push_str("<h3>Checked by</h3><ul class=\"checked-by\">");
        for (s, protocols) in by {
            let file = files.get(&s.id).map_or("", String::as_str);
            let mut runs = Vec::new();
            for p in protocols {
                let status = cases
                    .get(&(s.id.as_str(), *p))
                    .map_or("not run", |c| c.status.as_str());
                runs.push(format!(
                    "<a class=\"case\" href=\"../scenarios/{}#case-{p}\">{p}</a> {}",
                    esc(file),
                    status_mark(status)
                ));
            }
            let _ = write!(
                out,
                "<li><a class=\"scenario\" href=\"../scenarios/{}\">{}</a> — {} <span class=\"runs\">reference broker: {}</span></li>",
                esc(file),
                esc(&s.id),
                esc(&s.name),
                runs.join(" · ")
            );
        }
        out.push_str("</ul>\n");
    }
    let violations = violations_of(st.id);
    if !violations.is_empty() {
        out.push_str("<h3>Broken on purpose by</h3><ul class=\"violations\">");
        for v in violations {
            let first = v.ids.first().copied().unwrap_or(st.id);
            let _ = write!(
                out,
                "<li><code>mqtt-harness run --violate {}</code>: the reference broker {}</li>",
                esc(first),
                esc(v.behaviour)
            );
        }
        out.push_str("</ul>\n");
        if crate::cmd::DIFFERING_IDS.contains(&st.id) {
            out.push_str(
                "<p class=\"meta\">This id names different statements in 3.1.1 and 5.0, and a violation \
                 is listed by id: it may break the other version's statement.</p>\n",
            );
        }
    }
    if let Some(list) = fields.get(&(st.protocol, st.id)) {
        out.push_str("<h3>Packet fields it governs</h3><p class=\"fields\">");
        let links: Vec<String> = list
            .iter()
            .map(|(ty, path)| {
                format!(
                    "<a href=\"fields.html#{}\">{} {}</a>",
                    field_anchor(Some(*ty), path),
                    ty.name(),
                    esc(path)
                )
            })
            .collect();
        out.push_str(&links.join(", "));
        out.push_str("</p>\n");
    }
    brokers(out, book, st);
    out.push_str("</article>\n");
}

/// The real brokers' verdicts on the statement, from the committed matrix.
fn brokers(out: &mut String, book: &Book, st: &Statement) {
    let Some(b) = &book.brokers else { return };
    let Some(cells) = b.cells.get(&(st.protocol, st.id.to_string())) else {
        return;
    };
    out.push_str("<h3>Real brokers</h3><table class=\"brokers\"><tr>");
    for name in &b.names {
        let _ = write!(out, "<th>{}</th>", esc(name));
    }
    out.push_str("</tr><tr>");
    for i in 0..b.names.len() {
        match cells.get(i).and_then(Option::as_ref) {
            Some(cell) => {
                let title = if cell.cases.is_empty() {
                    String::new()
                } else {
                    format!(" title=\"{}\"", esc(&cell.cases.join(", ")))
                };
                let _ = write!(out, "<td{title}>{}</td>", status_mark(&cell.status));
            }
            None => out.push_str("<td>—</td>"),
        }
    }
    out.push_str("</tr></table>\n");
    let _ = writeln!(
        out,
        "<p class=\"meta\">known: a divergence the broker's baseline lists; skip: the broker lacks the feature or version. From <code>{}</code>.</p>",
        esc(&b.source)
    );
}
