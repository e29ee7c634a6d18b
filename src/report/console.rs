//! The console report: one line per case as it ends, the details of what
//! failed, and a summary line.
//!
//! ```text
//! PASS  v5/3.12-pingreq/pingresp [5.0]  PINGREQ is answered with PINGRESP  (3 ms)
//! FAIL  shared/3.3-publish/qos1 [3.1.1]  QoS 1 PUBLISH is acknowledged  (5004 ms)
//!       step 4 (scenarios/shared/3.3-publish/qos1.yaml:14): expected PUBACK {"id":7}
//!       got:   nothing within 5 s
//!       MQTT-3.3.4-1  Receiver of a PUBLISH answers with the acknowledgement its QoS calls for.
//!       exchange:
//!         publisher -> {"type":"PUBLISH",…} [32 0b …]
//! SKIP  v5/4.8-shared/round-robin [5.0]  requires shared_subscriptions: …
//!
//! 14 passed, 1 failed, 1 skipped, 0 errors in 5.21 s; statements: 30 pass, 2 fail, 1 skip
//! ```
//!
//! Colours unless `NO_COLOR` is set or the output is not a terminal.

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::results::{CaseResult, RunReport, Status};

/// Whether to colour output written to stdout.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn label(status: Status, color: bool) -> String {
    let (text, code) = match status {
        Status::Pass => ("PASS ", "32"),
        Status::Fail => ("FAIL ", "1;31"),
        Status::Skip => ("SKIP ", "33"),
        Status::Error => ("ERROR", "1;35"),
    };
    paint(text, code, color)
}

/// The case's line, and for anything but a pass the lines that say why.
pub fn case_text(c: &CaseResult, color: bool) -> String {
    case_text_known(c, false, color)
}

/// As [`case_text`]; a `known` failure (one the baseline lists) is marked KNOWN.
pub fn case_text_known(c: &CaseResult, known: bool, color: bool) -> String {
    let tag = if known && c.status == Status::Fail {
        paint("KNOWN", "33", color)
    } else {
        label(c.status, color)
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{} {} [{}]  {}  ({} ms)",
        tag,
        c.id,
        c.protocol,
        c.name,
        c.duration.as_millis()
    );
    match c.status {
        Status::Pass => {}
        Status::Skip | Status::Error => {
            if let Some(m) = &c.message {
                let _ = write!(out, "\n      {m}");
            }
        }
        Status::Fail => {
            if let Some(f) = &c.failure {
                let at = match f.pos {
                    Some(p) => format!("step {} ({}:{})", f.step, c.file, p.line),
                    None => format!("step {}", f.step),
                };
                let _ = write!(out, "\n      {at}: expected {}", f.expected);
                let _ = write!(out, "\n      got:   {}", f.got);
                if let Some(h) = &f.got_hex {
                    let _ = write!(out, "\n      bytes: {h}");
                }
            } else if let Some(m) = &c.message {
                let _ = write!(out, "\n      {m}");
            }
            for (id, summary) in c.statement_summaries() {
                let _ = write!(out, "\n      {}  {summary}", paint(&id, "1", color));
            }
        }
    }
    if c.status != Status::Pass && !c.exchange.is_empty() {
        out.push_str("\n      exchange:");
        for e in &c.exchange {
            let _ = write!(out, "\n        {e}");
        }
    }
    out
}

/// `14 passed, 1 failed, 1 skipped, 0 errors in 5.21 s; statements: …`
pub fn summary_line(r: &RunReport, color: bool) -> String {
    let s = r.summary();
    let count = |st: Status| r.statements.iter().filter(|x| x.status == st).count();
    let failed = format!("{} failed", s.failed);
    let errors = format!("{} errors", s.errors);
    let known = s.failed - r.new_failures();
    let known = if known > 0 {
        format!(" ({known} known from the baseline)")
    } else {
        String::new()
    };
    format!(
        "{} passed, {}{known}, {} skipped, {} in {:.2} s against {}; statements: {} pass, {} fail, {} skip",
        s.passed,
        if s.failed > 0 { paint(&failed, "1;31", color) } else { failed },
        s.skipped,
        if s.errors > 0 { paint(&errors, "1;35", color) } else { errors },
        r.duration.as_secs_f64(),
        r.target,
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Failure;
    use crate::scenario::Pos;
    use mqtt_codec::Protocol;
    use std::time::Duration;

    #[test]
    fn a_failure_reads_like_this() {
        let c = CaseResult {
            id: "shared/3.12-pingreq/pingresp".into(),
            file: "scenarios/shared/3.12-pingreq/pingresp.yaml".into(),
            name: "PINGREQ is answered with PINGRESP".into(),
            protocol: Protocol::V5,
            status: Status::Fail,
            statements: vec!["MQTT-3.12.4-1".into()],
            duration: Duration::from_millis(300),
            message: Some("step 2 (line 14): expected PINGRESP; got nothing within 300 ms".into()),
            failure: Some(Failure {
                step: 2,
                pos: Some(Pos {
                    line: 14,
                    column: 3,
                }),
                expected: "PINGRESP".into(),
                got: "nothing within 300 ms".into(),
                got_hex: None,
            }),
            exchange: Vec::new(),
        };
        assert_eq!(
            case_text(&c, false),
            "FAIL  shared/3.12-pingreq/pingresp [5.0]  PINGREQ is answered with PINGRESP  (300 ms)
      step 2 (scenarios/shared/3.12-pingreq/pingresp.yaml:14): expected PINGRESP
      got:   nothing within 300 ms
      MQTT-3.12.4-1  Server answers each PINGREQ with a PINGRESP."
        );
        assert_eq!(
            case_text_known(&c, true, false).lines().next(),
            Some("KNOWN shared/3.12-pingreq/pingresp [5.0]  PINGREQ is answered with PINGRESP  (300 ms)")
        );
    }
}
