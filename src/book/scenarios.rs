//! The scenario pages: a scenario's YAML beside its exchanges with the
//! reference broker, one per protocol; and the list of scenarios.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mqtt_codec::Protocol;

use super::{esc, exchange, layout, statement_link, violations_of, Book, Page};
use crate::scenario::Scenario;

/// `scenarios/index.html`: every scenario, by its directory.
pub fn index(book: &Book, files: &BTreeMap<String, String>) -> Page {
    let mut by: BTreeMap<String, Vec<&Scenario>> = BTreeMap::new();
    for s in &book.scenarios {
        let dir = s.id.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        by.entry(dir).or_default().push(s);
    }
    let mut body = format!(
        "<h1>Scenarios</h1>\n<p class=\"lead\">{} scenarios, each a packet exchange that checks named statements.</p>\n",
        book.scenarios.len()
    );
    for (dir, list) in by {
        let _ = write!(
            body,
            "<h2>{}</h2><ul class=\"scenarios\">",
            esc(if dir.is_empty() { "(top)" } else { &dir })
        );
        for s in list {
            let file = files.get(&s.id).map_or("", String::as_str);
            let _ = write!(
                body,
                "<li><a href=\"{}\">{}</a> — {}</li>",
                esc(file),
                esc(&s.id),
                esc(&s.name)
            );
        }
        body.push_str("</ul>\n");
    }
    Page {
        path: "scenarios/index.html".into(),
        contents: layout("../", "Scenarios", &body),
    }
}

/// One page per scenario.
pub fn pages(book: &Book, files: &BTreeMap<String, String>) -> Vec<Page> {
    let cases = book.cases();
    book.scenarios
        .iter()
        .map(|s| {
            let file = files.get(&s.id).cloned().unwrap_or_default();
            let mut body = String::new();
            head(&mut body, s);
            let source = book.sources.get(&s.id);
            body.push_str("<div class=\"beside\"><section class=\"yaml\"><h2>The scenario</h2>");
            match source {
                Some(text) => yaml(&mut body, text),
                None => body.push_str("<p class=\"meta\">Its file could not be read.</p>"),
            }
            checks(&mut body, s);
            body.push_str("</section><section class=\"runs\"><h2>Against the reference broker</h2>\n");
            for (i, p) in s.protocols.iter().enumerate() {
                let anchor = format!("case-{p}");
                let case = cases.get(&(s.id.as_str(), *p));
                let status = case.map_or("not run", |c| c.status.as_str());
                let _ = writeln!(
                    body,
                    "<section class=\"case\" id=\"{anchor}\"><h3><a class=\"anchor\" href=\"#{anchor}\">MQTT {p}</a> \
                     <span class=\"mark m-{status}\">{status}</span></h3>",
                    status = esc(status)
                );
                if let Some(c) = case {
                    if let Some(m) = &c.message {
                        let _ = write!(body, "<p class=\"why\">{}</p>", esc(m));
                    }
                    let _ = writeln!(
                        body,
                        "<details class=\"exchange\"{}><summary>exchange · {} packets · {} ms</summary>",
                        if i == 0 { " open" } else { "" },
                        c.exchange.len(),
                        c.duration.as_millis()
                    );
                    exchange::render(&mut body, c, &anchor);
                    body.push_str("</details>\n");
                }
                if let Some(b) = &book.brokers {
                    let failing = b.failing(&format!("{} [{p}]", s.id));
                    let text = if failing.is_empty() {
                        "fails on none of them".to_string()
                    } else {
                        let list: Vec<String> = failing
                            .iter()
                            .map(|(name, status)| format!("{} ({})", esc(name), esc(status)))
                            .collect();
                        format!("fails on {}", list.join(", "))
                    };
                    let _ = writeln!(
                        body,
                        "<p class=\"meta brokers\">Real brokers (<code>{}</code>): {text}.</p>",
                        esc(&b.source)
                    );
                }
                body.push_str("</section>\n");
            }
            body.push_str("</section></div>\n");
            Page {
                path: format!("scenarios/{file}"),
                contents: layout("../", &s.name, &body),
            }
        })
        .collect()
}

/// Name, description, what it needs.
fn head(out: &mut String, s: &Scenario) {
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p class=\"meta\"><code>{}</code> · <code>{}</code> · MQTT {}</p>",
        esc(&s.name),
        esc(&s.id),
        esc(&s.file),
        s.protocols
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(d) = &s.description {
        let _ = writeln!(out, "<p class=\"lead\">{}</p>", esc(d.trim()));
    }
    if !s.requires.is_empty() || s.setup.is_some() {
        let mut needs: Vec<String> = s.requires.iter().map(|c| c.as_str().to_string()).collect();
        if let Some(setup) = s.setup {
            needs.push(format!("a broker set up as `{setup}`"));
        }
        let _ = writeln!(
            out,
            "<p class=\"meta\">Needs: {}</p>",
            esc(&needs.join(", "))
        );
    }
}

/// The statements it checks per version, and the violations that make it fail.
fn checks(out: &mut String, s: &Scenario) {
    out.push_str("<h2>Checks</h2><dl class=\"checks\">");
    let mut all: BTreeSet<&'static str> = BTreeSet::new();
    let mut seen: Vec<Protocol> = Vec::new();
    for &p in &s.protocols {
        let catalogue = p.catalogue_version();
        let ids = s.checked_statements(p);
        let under: Vec<&str> = s
            .protocols
            .iter()
            .filter(|q| q.catalogue_version() == catalogue && s.checked_statements(**q) == ids)
            .map(|q| q.as_str())
            .collect();
        if seen
            .iter()
            .any(|q| q.catalogue_version() == catalogue && s.checked_statements(*q) == ids)
        {
            continue;
        }
        seen.push(p);
        let _ = write!(out, "<dt>MQTT {}</dt><dd>", under.join(", "));
        for id in &ids {
            let summary = mqtt_codec::catalogue::lookup(catalogue, id).map_or("", |st| st.summary);
            let _ = write!(
                out,
                "<div>{} {}</div>",
                statement_link("../", catalogue, id),
                esc(summary)
            );
            for v in violations_of(id) {
                all.insert(v.behaviour);
            }
        }
        out.push_str("</dd>");
    }
    out.push_str("</dl>\n");
    if !all.is_empty() {
        out.push_str("<h2>Makes it fail</h2><ul class=\"violations\">");
        for v in reference_broker::violation::VIOLATIONS
            .iter()
            .filter(|v| all.contains(v.behaviour))
        {
            let _ = write!(
                out,
                "<li><code>--violate {}</code>: the reference broker {}</li>",
                esc(v.ids.first().copied().unwrap_or("")),
                esc(v.behaviour)
            );
        }
        out.push_str("</ul>\n");
    }
}

/// The YAML with line numbers (`#L12`), so a failure's line can be found.
fn yaml(out: &mut String, text: &str) {
    out.push_str("<pre class=\"src\">");
    for (i, line) in text.lines().enumerate() {
        let _ = writeln!(
            out,
            "<span class=\"ln\" id=\"L{n}\">{n:>3}</span> {}",
            esc(line),
            n = i + 1
        );
    }
    out.push_str("</pre>");
}
