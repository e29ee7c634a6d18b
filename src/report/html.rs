//! A self-contained HTML page of a run (`run --html FILE`), for a person to
//! read at a glance: no external resource, its CSS and script inline
//! (`html.css`, `html.js`).
//!
//! - A verdict banner that says what the exit status says (the same
//!   [`ExitStatus`]), with notes on fixed and stale baseline entries and an
//!   interruption.
//! - What needs a look first: every failure, error, fixed and flaky case with
//!   its reason visible (not folded away).
//! - The cases grouped by spec section (the scenario id's second path
//!   component, `3.12-pingreq`), in section order, with per-section totals;
//!   failures first in each. Known divergences are grey, with the baseline's
//!   reason. Each case has an anchor (`#case-shared-3.12-pingreq-pingresp-5.0`).
//! - The statements: one row per (protocol, statement), failed only where a
//!   case failed it, with the cases that did.
//! - Filters that work offline: `#filter=fail` (fail and fixed), `error`,
//!   `known`, `flaky`, `skip`, `pass`, or several (`#filter=fail,flaky`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::console;
use crate::results::{CaseResult, ExitStatus, Mark, RunReport};

const STYLE: &str = include_str!("html.css");
const SCRIPT: &str = include_str!("html.js");

/// The marks in the order the page shows them, with their filter names.
const MARKS: &[(Mark, &str)] = &[
    (Mark::Fail, "fail"),
    (Mark::Error, "error"),
    (Mark::Fixed, "fixed"),
    (Mark::Flaky, "flaky"),
    (Mark::Known, "known"),
    (Mark::Skip, "skip"),
    (Mark::Pass, "pass"),
];

/// Text for HTML: `&`, `<`, `>` and both quotes escaped (text and attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The anchor of a case: `case-shared-3.12-pingreq-pingresp-5.0`.
pub fn anchor(c: &CaseResult) -> String {
    let raw = format!("case-{}-{}", c.id, c.protocol);
    raw.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-') {
                ch
            } else {
                '-'
            }
        })
        .collect()
}

/// The spec section a case belongs to: its id's second path component.
pub fn section(c: &CaseResult) -> &str {
    c.id.split('/')
        .nth(1)
        .filter(|_| c.id.matches('/').count() >= 2)
        .unwrap_or("other")
}

/// `3.12-pingreq` sorts after `3.3-publish`: by its numbers, then its name.
fn section_key(name: &str) -> (Vec<u32>, String) {
    let number: String = name
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let parts = number
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect::<Vec<u32>>();
    let parts = if parts.is_empty() {
        vec![u32::MAX]
    } else {
        parts
    };
    (parts, name.to_string())
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let status = report.exit_status();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>mqtt-harness: {verdict} — {target}</title><style>{STYLE}</style></head>\n\
         <body data-filter=\"all\">\n<h1>mqtt-harness run</h1>\n\
         <p class=\"meta\">Target <code>{target}</code> · scenarios <code>{suite}</code> · \
         {secs:.2} s · mqtt-harness {version}</p>\n",
        verdict = status.as_str().replace('_', " "),
        target = esc(&report.target),
        suite = esc(&report.suite),
        secs = report.duration.as_secs_f64(),
        version = esc(&report.tool_version),
    );
    banner(&mut out, report, status);
    filters(&mut out, report);
    attention(&mut out, report);
    sections(&mut out, report);
    statements(&mut out, report);
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

fn banner(out: &mut String, r: &RunReport, status: ExitStatus) {
    let s = r.summary();
    let new = r.new_failures();
    let (fixed, stale) = (r.fixed().len(), r.stale());
    let headline = match status {
        ExitStatus::Conforming if s.known > 0 => format!(
            "Conforming: every case passed or was skipped, or failed only as the baseline lists ({} known)",
            s.known
        ),
        ExitStatus::Conforming => "Conforming: every case passed or was skipped".to_string(),
        ExitStatus::Divergences => {
            let mut parts = Vec::new();
            if new > 0 {
                parts.push(format!("{new} failed (not in the baseline)"));
            }
            if fixed > 0 {
                parts.push(format!("{fixed} baseline entries fixed"));
            }
            if r.stale_fails() {
                parts.push(format!("{} baseline entries stale", stale.len()));
            }
            if r.policy.fail_on_flaky && s.flaky > 0 {
                parts.push(format!("{} flaky (--fail-on-flaky)", s.flaky));
            }
            format!("Divergences: {}", parts.join(", "))
        }
        ExitStatus::CouldNotRun => format!(
            "Could not run: {} case(s) errored (the target was unreachable or broke off)",
            s.errors
        ),
        ExitStatus::NothingSelected => "Nothing selected: no case ran".to_string(),
        ExitStatus::Interrupted(signal) => format!(
            "Interrupted by {}: only the {} case(s) that finished are shown",
            signal.name(),
            r.cases.len()
        ),
        ExitStatus::BadInput => "Bad input".to_string(),
    };
    let _ = writeln!(
        out,
        "<div class=\"banner {}\" id=\"verdict\">{}<small>exit status {} · {} passed{}, {} failed{}, {} skipped, {} errors</small></div>",
        status.as_str(),
        esc(&headline),
        status.code(),
        s.passed,
        if s.flaky > 0 { format!(" ({} flaky)", s.flaky) } else { String::new() },
        s.failed,
        if s.known > 0 { format!(" ({} known)", s.known) } else { String::new() },
        s.skipped,
        s.errors
    );
    let mut notes = Vec::new();
    for (id, p) in &stale {
        notes.push(format!(
            "{}: the baseline entry <code>{}</code> [{p}] matches no case of this run{}",
            if r.policy.restricted {
                "warning"
            } else {
                "stale"
            },
            esc(id),
            if r.policy.restricted {
                " (a restricted run may have left it out)"
            } else {
                "; remove it from the baseline"
            }
        ));
    }
    if r.interrupted.is_some() {
        notes.push("The run was interrupted: cases that had not finished are not listed.".into());
    }
    if !notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for n in notes {
            let _ = write!(out, "<li>{n}</li>");
        }
        out.push_str("</ul>\n");
    }
}

fn filters(out: &mut String, r: &RunReport) {
    let mut counts: BTreeMap<Mark, usize> = BTreeMap::new();
    for c in &r.cases {
        *counts.entry(r.mark(c)).or_default() += 1;
    }
    let n = |m: Mark| counts.get(&m).copied().unwrap_or(0);
    out.push_str("<nav class=\"filters\" aria-label=\"filters\"><a href=\"#\">all ");
    let _ = write!(out, "{}</a>", r.cases.len());
    for (label, count) in [
        ("fail", n(Mark::Fail) + n(Mark::Fixed)),
        ("error", n(Mark::Error)),
        ("known", n(Mark::Known)),
        ("flaky", n(Mark::Flaky)),
        ("skip", n(Mark::Skip)),
        ("pass", n(Mark::Pass)),
    ] {
        let _ = write!(out, "<a href=\"#filter={label}\">{label} {count}</a>");
    }
    let _ = writeln!(
        out,
        "</nav>\n<p id=\"showing\">Showing all {} cases.</p>",
        r.cases.len()
    );
}

/// Why a case is marked as it is, in one line: what the page shows beside it.
fn reason(r: &RunReport, c: &CaseResult, mark: Mark) -> String {
    let message = esc(c.message.as_deref().unwrap_or(""));
    match mark {
        Mark::Pass => String::new(),
        Mark::Known => format!(
            "<p class=\"why\">baseline: {}</p><p class=\"why base\">{message}</p>",
            esc(r.known_reason(c).unwrap_or("(the entry gives no message)"))
        ),
        Mark::Fixed => "<p class=\"why\">passes now, but the baseline lists it: remove it from the baseline</p>".into(),
        Mark::Flaky => format!(
            "<p class=\"why\">passed on attempt {}; first: {}</p>",
            c.attempts,
            esc(c.earlier.first().map_or("", String::as_str))
        ),
        Mark::Fail | Mark::Error | Mark::Skip => format!("<p class=\"why\">{message}</p>"),
    }
}

fn row(out: &mut String, r: &RunReport, c: &CaseResult, in_section: bool) {
    let mark = r.mark(c);
    let id = anchor(c);
    let (row_id, case_attr) = if in_section {
        (format!(" id=\"{id}\""), " data-case")
    } else {
        (String::new(), "")
    };
    let _ = write!(
        out,
        "<tr{row_id} data-mark=\"{m}\"{case_attr}><td><span class=\"mark m-{m}\">{m}</span></td>\
         <td><a class=\"anchor\" href=\"#{id}\">{}</a><br><small>{}</small></td><td>{}</td><td class=\"reason\">{}",
        esc(&c.id),
        esc(&c.name),
        c.protocol,
        reason(r, c, mark),
        m = mark.as_str(),
    );
    let details = console::details(c, false);
    let exchange = console::exchange_text(c);
    if in_section && (!details.is_empty() || !exchange.is_empty()) {
        let mut body = details;
        if !exchange.is_empty() {
            body.push_str(if body.is_empty() {
                "exchange:\n"
            } else {
                "\n\nexchange:\n"
            });
            body.push_str(&exchange);
        }
        let _ = write!(
            out,
            "<details><summary>details</summary><pre>{}</pre></details>",
            esc(&body)
        );
    }
    let _ = writeln!(
        out,
        "</td><td class=\"ms\">{}</td></tr>",
        c.duration.as_millis()
    );
}

const HEAD: &str = "<colgroup><col class=\"c-mark\"><col class=\"c-case\"><col class=\"c-proto\"><col><col class=\"c-ms\"></colgroup>\
<tr><th>mark</th><th>scenario</th><th>protocol</th><th>reason</th><th class=\"ms\">ms</th></tr>\n";

/// What needs a look (failures first), then the known divergences: the
/// cases whose reason a reader wants first, each linked to its row.
fn attention(out: &mut String, r: &RunReport) {
    type Wanted = fn(Mark) -> bool;
    let lists: [(&str, &str, Wanted); 2] = [
        ("attention", "Needs a look", Mark::needs_attention),
        ("known", "Known divergences (baseline)", |m| {
            m == Mark::Known
        }),
    ];
    for (id, title, wanted) in lists {
        let mut cases: Vec<&CaseResult> = r.cases.iter().filter(|c| wanted(r.mark(c))).collect();
        if cases.is_empty() {
            continue;
        }
        cases.sort_by_key(|c| r.mark(c));
        let _ = write!(
            out,
            "<section data-group id=\"{id}\"><h2>{title} ({})</h2>\n<table>{HEAD}",
            cases.len()
        );
        for c in cases {
            row(out, r, c, false);
        }
        out.push_str("</table></section>\n");
    }
}

fn sections(out: &mut String, r: &RunReport) {
    let mut by: BTreeMap<(Vec<u32>, String), Vec<&CaseResult>> = BTreeMap::new();
    for c in &r.cases {
        by.entry(section_key(section(c))).or_default().push(c);
    }
    out.push_str("<h2>Cases by section</h2>\n");
    for ((_, name), mut cases) in by {
        cases.sort_by_key(|c| (r.mark(c), c.id.clone(), c.protocol));
        let mut totals = String::new();
        for (mark, label) in MARKS {
            let n = cases.iter().filter(|c| r.mark(c) == *mark).count();
            if n > 0 {
                let _ = write!(totals, " <b class=\"t-{label}\">{n} {label}</b>");
            }
        }
        let _ = write!(
            out,
            "<section data-group class=\"section\" id=\"section-{0}\"><h3>{0}<span class=\"totals\">{1} cases:{totals}</span></h3>\n<table>{HEAD}",
            esc(&name),
            cases.len()
        );
        for c in cases {
            row(out, r, c, true);
        }
        out.push_str("</table></section>\n");
    }
}

fn statements(out: &mut String, r: &RunReport) {
    if r.statements.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section data-group id=\"statements\"><h2>Statements ({})</h2>\n<table><colgroup><col class=\"c-mark\">\
         <col class=\"c-st\"><col class=\"c-proto\"><col><col></colgroup><tr><th>mark</th><th>statement</th>\
         <th>protocol</th><th>summary</th><th>failed by</th></tr>\n",
        r.statements.len()
    );
    for st in &r.statements {
        let failing: Vec<&CaseResult> = r
            .cases
            .iter()
            .filter(|c| c.protocol == st.protocol && c.failed_statements.contains(&st.id))
            .collect();
        let mark = if failing.iter().any(|c| r.mark(c) == Mark::Fail) {
            Mark::Fail
        } else if !failing.is_empty() {
            Mark::Known
        } else {
            match st.status {
                crate::results::Status::Pass => Mark::Pass,
                _ => Mark::Skip,
            }
        };
        let summary = mqtt_codec::catalogue::lookup(st.protocol, &st.id).map_or("", |x| x.summary);
        let links: Vec<String> = failing
            .iter()
            .map(|c| format!("<a href=\"#{}\">{}</a>", anchor(c), esc(&c.id)))
            .collect();
        let _ = writeln!(
            out,
            "<tr data-mark=\"{m}\"><td><span class=\"mark m-{m}\">{m}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&st.id),
            st.protocol,
            esc(summary),
            links.join(" "),
            m = mark.as_str()
        );
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;
    use mqtt_codec::Protocol;
    use std::time::Duration;

    fn case(id: &str, status: Status) -> CaseResult {
        CaseResult {
            file: "f.yaml".into(),
            name: "n & m".into(),
            statements: vec!["MQTT-3.12.4-1".into()],
            failed_statements: if status == Status::Fail {
                vec!["MQTT-3.12.4-1".into()]
            } else {
                vec![]
            },
            duration: Duration::from_millis(3),
            message: Some("expected <x>".into()).filter(|_| status != Status::Pass),
            ..CaseResult::new(id, Protocol::V5, status)
        }
    }

    #[test]
    fn escapes_groups_by_section_and_agrees_with_the_exit_status() {
        let r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                case("shared/3.12-pingreq/<b>", Status::Fail),
                case("shared/3.3-publish/qos1", Status::Pass),
                case("v5/3.12-pingreq/other", Status::Pass),
            ],
            Duration::from_millis(5),
        );
        let page = render(&r);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("shared/3.12-pingreq/&lt;b&gt;") && page.contains("n &amp; m"));
        assert!(page.contains("<p class=\"why\">expected &lt;x&gt;</p>"));
        assert!(page.contains("<div class=\"banner divergences\" id=\"verdict\">Divergences: 1 failed (not in the baseline)<small>exit status 1"));
        let s33 = page.find("id=\"section-3.3-publish\"").unwrap();
        let s312 = page.find("id=\"section-3.12-pingreq\"").unwrap();
        assert!(s33 < s312, "sections in spec order");
        assert!(page.contains("3.12-pingreq<span class=\"totals\">2 cases: <b class=\"t-fail\">1 fail</b> <b class=\"t-pass\">1 pass</b></span>"));
        assert!(page.contains("id=\"case-shared-3.12-pingreq--b--5.0\""));
        assert!(
            !page.contains("src=\"http") && !page.contains("href=\"http"),
            "self-contained"
        );
    }
}
