//! The matrix as JSON and as one self-contained HTML page (no script, no
//! external resource), both rendered from [`Matrix`] alone.
//!
//! ```json
//! {"exit_status": 1,
//!  "brokers": [{"name": "mosquitto", "source": "mqtt://127.0.0.1:1883",
//!               "cases": {"pass": 175, "fail": 0, "known": 10, "skip": 0, "error": 0},
//!               "statements": {"pass": 230, …}, "diverges": false, "unreachable": null,
//!               "baseline": {"stale": [], "fixed": []}, "duration_ms": 61234}],
//!  "sections": [{"protocol": "3.1.1", "section": "3.1", "title": "CONNECT",
//!                "totals": [{"pass": 20, …}],
//!                "statements": [{"id": "MQTT-3.1.0-1", "summary": "…",
//!                                "cells": [{"status": "pass", "cases": []}, null]}]}]}
//! ```
//!
//! `cells` and `totals` follow the order of `brokers`; a `null` cell is a
//! statement that broker's run had no case for.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::compare::{Cell, Column, Matrix, Totals};

fn totals_json(t: &Totals) -> Value {
    json!({"pass": t.pass, "fail": t.fail, "known": t.known, "skip": t.skip, "error": t.error})
}

fn broker_json(c: &Column) -> Value {
    let keys = |v: &[(String, mqtt_codec::Protocol)]| -> Vec<Value> {
        v.iter()
            .map(|(id, p)| json!({"id": id, "protocol": p.as_str()}))
            .collect()
    };
    json!({
        "name": c.name,
        "source": c.source,
        "cases": totals_json(&c.cases),
        "statements": totals_json(&c.statements),
        "diverges": c.diverges(),
        "unreachable": c.unreachable,
        "baseline": {"stale": keys(&c.baseline.stale), "fixed": keys(&c.baseline.fixed)},
        "duration_ms": c.duration_ms,
    })
}

/// The matrix as JSON.
pub fn to_json(m: &Matrix) -> Value {
    let sections: Vec<Value> = m
        .sections
        .iter()
        .map(|s| {
            let rows: Vec<Value> = s
                .rows
                .iter()
                .map(|r| {
                    let cells: Vec<Value> = r
                        .cells
                        .iter()
                        .map(|c| match c {
                            Some(v) => json!({"status": v.cell.as_str(), "cases": v.cases}),
                            None => Value::Null,
                        })
                        .collect();
                    json!({"id": r.id, "summary": r.summary, "cells": cells})
                })
                .collect();
            json!({
                "protocol": s.protocol.as_str(),
                "section": s.number,
                "title": s.title,
                "totals": s.totals.iter().map(totals_json).collect::<Vec<_>>(),
                "statements": rows,
            })
        })
        .collect();
    json!({
        "exit_status": m.exit_code(),
        "brokers": m.columns.iter().map(broker_json).collect::<Vec<_>>(),
        "sections": sections,
    })
}

/// The JSON as pretty-printed text with a final newline.
pub fn render_json(m: &Matrix) -> String {
    let mut s = serde_json::to_string_pretty(&to_json(m)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

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
h1{margin-bottom:.2em}table{border-collapse:collapse;margin-bottom:2em}\
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.pass{background:#dafbe1;color:#1a7f37}td.fail{background:#ffebe9;color:#cf222e;font-weight:bold}\
td.known{background:#fff8c5;color:#7d4e00}td.skip{background:#f6f8fa;color:#6e7781}\
td.error{background:#fbefff;color:#8250df;font-weight:bold}td.none{color:#bbb}\
tr.section th{background:#eaeef2;font-weight:600}tr.section td{background:#eaeef2;font-size:12px}\
.verdict{font-weight:bold}.ok{color:#1a7f37}.bad{color:#cf222e}small{color:#57606a}\
span.k{display:inline-block;padding:0 6px;margin-right:4px;border-radius:3px}\
span.pass{background:#dafbe1}span.fail{background:#ffebe9}span.known{background:#fff8c5}\
span.skip{background:#f6f8fa}span.error{background:#fbefff}";

fn short_totals(t: &Totals) -> String {
    let mut parts = Vec::new();
    for (c, mark) in [
        (Cell::Pass, "pass"),
        (Cell::Fail, "fail"),
        (Cell::Known, "known"),
        (Cell::Skip, "skip"),
        (Cell::Error, "error"),
    ] {
        let n = t.get(c);
        if n > 0 {
            parts.push(format!("{n} {mark}"));
        }
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// The page.
pub fn render_html(m: &Matrix) -> String {
    let mut out = String::new();
    let code = m.exit_code();
    let verdict = match code {
        0 => "<span class=\"verdict ok\">every broker conforms, or diverges only as its baseline lists</span>",
        3 => "<span class=\"verdict bad\">a broker could not be run against</span>",
        _ => "<span class=\"verdict bad\">divergences outside a baseline</span>",
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mqtt-harness matrix</title><style>{STYLE}</style></head><body>\n\
         <h1>MQTT conformance matrix</h1>\n<p>{} brokers, {} statements — {verdict}</p>\n\
         <p>Legend: <span class=\"k pass\">pass</span><span class=\"k fail\">fail</span>\
         <span class=\"k known\">known</span> (a divergence the broker's baseline lists)\
         <span class=\"k skip\">skip</span> (no case applied: version or feature absent, or \
         not reached)<span class=\"k error\">error</span> (could not run)</p>\n",
        m.columns.len(),
        m.sections.iter().map(|s| s.rows.len()).sum::<usize>(),
    );

    out.push_str(
        "<h2>Brokers</h2>\n<table id=\"brokers\"><tr><th>broker</th><th>cases: pass</th>\
         <th>fail</th><th>known</th><th>skip</th><th>error</th><th>statements</th>\
         <th>baseline</th><th>source</th></tr>\n",
    );
    for c in &m.columns {
        let mut base = Vec::new();
        if !c.baseline.stale.is_empty() {
            base.push(format!("{} stale", c.baseline.stale.len()));
        }
        if !c.baseline.fixed.is_empty() {
            base.push(format!("{} fixed", c.baseline.fixed.len()));
        }
        let base = if base.is_empty() {
            "exact".to_string()
        } else {
            base.join(", ")
        };
        let name = match &c.unreachable {
            Some(why) => format!(
                "{}<br><small class=\"bad\">{}</small>",
                esc(&c.name),
                esc(why)
            ),
            None => esc(&c.name),
        };
        let _ = writeln!(
            out,
            "<tr data-broker=\"{}\"><th>{name}</th><td class=\"n pass\">{}</td><td class=\"n fail\">{}</td>\
             <td class=\"n known\">{}</td><td class=\"n skip\">{}</td><td class=\"n error\">{}</td>\
             <td>{}</td><td>{base}</td><td><small>{}</small></td></tr>",
            esc(&c.name),
            c.cases.pass,
            c.cases.fail,
            c.cases.known,
            c.cases.skip,
            c.cases.error,
            esc(&short_totals(&c.statements)),
            esc(&c.source),
        );
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Statements</h2>\n<table id=\"matrix\"><tr><th>statement</th>");
    for c in &m.columns {
        let _ = write!(out, "<th>{}</th>", esc(&c.name));
    }
    out.push_str("<th>summary</th></tr>\n");
    for s in &m.sections {
        let _ = write!(
            out,
            "<tr class=\"section\" id=\"s-{p}-{n}\"><th>MQTT {p} · {n} {t}</th>",
            p = s.protocol.as_str(),
            n = esc(&s.number),
            t = esc(s.title),
        );
        for t in &s.totals {
            let _ = write!(out, "<td>{}</td>", esc(&short_totals(t)));
        }
        let _ = writeln!(out, "<td>{} statements</td></tr>", s.rows.len());
        for r in &s.rows {
            let _ = write!(out, "<tr><td><code>{}</code></td>", esc(&r.id));
            for c in &r.cells {
                match c {
                    Some(v) if v.cases.is_empty() => {
                        let _ = write!(out, "<td class=\"{0}\">{0}</td>", v.cell.as_str());
                    }
                    Some(v) => {
                        let _ = write!(
                            out,
                            "<td class=\"{0}\" title=\"{1}\">{0}</td>",
                            v.cell.as_str(),
                            esc(&v.cases.join("\n"))
                        );
                    }
                    None => out.push_str("<td class=\"none\">·</td>"),
                }
            }
            let _ = writeln!(out, "<td><small>{}</small></td></tr>", esc(r.summary));
        }
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::compare::{column, Matrix};
    use super::*;

    #[test]
    fn json_and_page_show_the_same_matrix() {
        let report = json!({
            "summary": {"duration_ms": 5},
            "scenarios": [{"id": "s/<x>", "protocol": "5.0", "status": "fail",
                           "statements": ["MQTT-3.12.4-1"], "failed_statements": ["MQTT-3.12.4-1"]}],
            "statements": [{"id": "MQTT-3.12.4-1", "protocol": "5.0", "status": "fail"}]
        });
        let m = Matrix::new(vec![column("b & c", "mqtt://h:1", &report, None).unwrap()]);
        let j = to_json(&m);
        assert_eq!(j["exit_status"], 1);
        assert_eq!(j["brokers"][0]["cases"]["fail"], 1);
        assert_eq!(j["sections"][0]["title"], "PINGREQ");
        assert_eq!(
            j["sections"][0]["statements"][0]["cells"][0],
            json!({"status": "fail", "cases": ["s/<x> [5.0]"]})
        );
        let page = render_html(&m);
        assert!(page.starts_with("<!DOCTYPE html>") && !page.contains("<script"));
        assert!(page.contains("<th>b &amp; c</th>"));
        assert!(page.contains("<td class=\"fail\" title=\"s/&lt;x&gt; [5.0]\">fail</td>"));
        assert!(page.contains("MQTT 5.0 · 3.12 PINGREQ"));
    }
}
