//! A self-contained HTML page of a run (`run --html FILE`): no scripts, no
//! external resources. A summary, one row per case (failures, errors and skips
//! open to what was expected, what came and the exchange), and the
//! per-statement verdicts.

use std::fmt::Write as _;

use crate::report::console;
use crate::results::{RunReport, Status};

fn esc(s: &str) -> String {
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

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:2em}\
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}.skip{color:#9a6700}.error{color:#8250df;font-weight:bold}\
pre{white-space:pre-wrap;background:#f6f8fa;padding:8px;margin:4px 0}details summary{cursor:pointer}";

/// The page.
pub fn render(report: &RunReport) -> String {
    let s = report.summary();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mqtt-harness run — {target}</title>\
         <style>{STYLE}</style></head><body>\n<h1>mqtt-harness run</h1>\n<p>Target: <code>{target}</code> — \
         <span class=\"pass\">{} passed</span>, <span class=\"fail\">{} failed</span>, \
         <span class=\"skip\">{} skipped</span>, <span class=\"error\">{} errors</span> in {:.2} s</p>\n",
        s.passed,
        s.failed,
        s.skipped,
        s.errors,
        report.duration.as_secs_f64(),
        target = esc(&report.target),
    );
    out.push_str("<h2>Scenarios</h2>\n<table><tr><th>status</th><th>scenario</th><th>protocol</th><th>statements</th><th>ms</th></tr>\n");
    for c in &report.cases {
        let status = if c.status == Status::Fail && report.is_known(c) {
            "known".to_string()
        } else {
            c.status.as_str().to_string()
        };
        let name = if c.status == Status::Pass {
            format!("{}<br><small>{}</small>", esc(&c.id), esc(&c.name))
        } else {
            format!(
                "<details><summary>{}<br><small>{}</small></summary><pre>{}</pre></details>",
                esc(&c.id),
                esc(&c.name),
                esc(&console::case_text(c, false))
            )
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"{}\">{}</td><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.status.as_str(),
            esc(&status),
            c.protocol,
            esc(&c.statements.join(" ")),
            c.duration.as_millis()
        );
    }
    out.push_str("</table>\n<h2>Statements</h2>\n<table><tr><th>status</th><th>statement</th><th>protocol</th><th>summary</th><th>scenarios</th></tr>\n");
    for st in &report.statements {
        let summary = mqtt_codec::catalogue::lookup(st.protocol, &st.id).map_or("", |x| x.summary);
        let _ = writeln!(
            out,
            "<tr><td class=\"{0}\">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
            st.status.as_str(),
            esc(&st.id),
            st.protocol,
            esc(summary),
            esc(&st.cases.join(", "))
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CaseResult;
    use mqtt_codec::Protocol;
    use std::time::Duration;

    #[test]
    fn escapes_and_lists_cases_and_statements() {
        let case = CaseResult {
            id: "a/<b>".into(),
            file: "f.yaml".into(),
            name: "n & m".into(),
            protocol: Protocol::V5,
            status: Status::Fail,
            statements: vec!["MQTT-3.12.4-1".into()],
            failed_statements: vec!["MQTT-3.12.4-1".into()],
            passed_statements: Vec::new(),
            duration: Duration::from_millis(3),
            message: Some("expected <x>".into()),
            failure: None,
            exchange: vec![],
            attempts: 1,
            earlier: vec![],
        };
        let r = RunReport::new("mqtt://h:1".into(), vec![case], Duration::from_millis(5));
        let page = render(&r);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("a/&lt;b&gt;") && page.contains("n &amp; m"));
        assert!(page.contains("expected &lt;x&gt;"));
        assert!(page.contains("<td class=\"fail\">fail</td><td>MQTT-3.12.4-1</td><td>5.0</td>"));
        assert!(!page.contains("<script"));
    }
}
