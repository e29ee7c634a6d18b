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

/// Whether stdout is a terminal, where a progress line can be redrawn.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// The progress line of a long run on a terminal, redrawn under the case
/// lines as each case ends: `[12/63] 10 passed, 1 failed, 1 skipped, 0 errors  3.2 s`.
/// It is written only where stdout is a terminal (never into a file or a
/// pipe). With `NO_COLOR` set it has no colour and no escape sequence at all:
/// it is erased by overwriting it with spaces.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    done: usize,
    counts: [usize; 4],
    color: bool,
    started: std::time::Instant,
    /// The width of the line on screen (0: none shown).
    shown: usize,
}

impl Progress {
    pub fn new(total: usize, color: bool) -> Progress {
        Progress {
            total,
            done: 0,
            counts: [0; 4],
            color,
            started: std::time::Instant::now(),
            shown: 0,
        }
    }

    /// The line to write (no line break); remembers its width for [`Progress::erase`].
    pub fn draw(&mut self) -> String {
        let line = self.line();
        self.shown = line.chars().filter(|c| !c.is_control()).count();
        line
    }

    /// What erases the line on screen and returns to its start.
    pub fn erase(&mut self) -> String {
        let width = std::mem::take(&mut self.shown);
        if width == 0 {
            String::new()
        } else if self.color {
            "\r\x1b[2K".to_string()
        } else {
            format!("\r{}\r", " ".repeat(width))
        }
    }

    /// Counts a case that ended.
    pub fn case_done(&mut self, c: &CaseResult) {
        self.done += 1;
        let i = match c.status {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::Skip => 2,
            Status::Error => 3,
        };
        if let Some(n) = self.counts.get_mut(i) {
            *n += 1;
        }
    }

    /// The line, without a line break.
    pub fn line(&self) -> String {
        let [passed, failed, skipped, errors] = self.counts;
        let failed = format!("{failed} failed");
        let errors = format!("{errors} errors");
        format!(
            "[{}/{}] {passed} passed, {}, {skipped} skipped, {}  {:.1} s",
            self.done,
            self.total,
            if self.counts[1] > 0 {
                paint(&failed, "1;31", self.color)
            } else {
                failed
            },
            if self.counts[3] > 0 {
                paint(&errors, "1;35", self.color)
            } else {
                errors
            },
            self.started.elapsed().as_secs_f64()
        )
    }
}

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
    let details = details(c, color);
    if !details.is_empty() {
        for line in details.lines() {
            let _ = write!(out, "\n      {line}");
        }
    }
    if c.status != Status::Pass && !c.exchange.is_empty() {
        out.push_str("\n      exchange:");
        for line in exchange_text(c).lines() {
            let _ = write!(out, "\n        {line}");
        }
    }
    out
}

/// Why a case did not pass, without its header line and exchange: for a
/// failure the step, what was expected, what came (decoded and in hex) and
/// the statements' summaries; for a skip or an error its message.
pub fn details(c: &CaseResult, color: bool) -> String {
    let mut out = String::new();
    match c.status {
        Status::Pass => {}
        Status::Skip | Status::Error => {
            if let Some(m) = &c.message {
                out.push_str(m);
            }
        }
        Status::Fail => {
            if let Some(f) = &c.failure {
                let at = match f.pos {
                    Some(p) => format!("step {} ({}:{})", f.step, c.file, p.line),
                    None => format!("step {}", f.step),
                };
                let _ = write!(out, "{at}: expected {}", f.expected);
                let _ = write!(out, "\ngot:   {}", f.got);
                if let Some(h) = &f.got_hex {
                    let _ = write!(out, "\nbytes: {h}");
                }
            } else if let Some(m) = &c.message {
                out.push_str(m);
            }
            for (id, summary) in c.statement_summaries() {
                let _ = write!(out, "\n{}  {summary}", paint(&id, "1", color));
            }
        }
    }
    out
}

/// The packets the case exchanged, one per line (`client -> {…} [hex]`).
pub fn exchange_text(c: &CaseResult) -> String {
    let lines: Vec<String> = c.exchange.iter().map(super::entry_text).collect();
    lines.join("\n")
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
    fn the_progress_line_counts_cases() {
        let mut p = Progress::new(3, false);
        let mut c = CaseResult {
            id: "a".into(),
            file: "a.yaml".into(),
            name: "a".into(),
            protocol: Protocol::V5,
            status: Status::Pass,
            statements: vec![],
            duration: Duration::ZERO,
            message: None,
            failure: None,
            exchange: Vec::new(),
        };
        p.case_done(&c);
        c.status = Status::Fail;
        p.case_done(&c);
        let line = p.line();
        assert!(
            line.starts_with("[2/3] 1 passed, 1 failed, 0 skipped, 0 errors  "),
            "{line}"
        );
        assert!(
            !line.contains('\x1b'),
            "no colour when asked for none: {line}"
        );
        let mut coloured = Progress::new(1, true);
        coloured.case_done(&c);
        assert!(coloured.line().contains("\x1b[1;31m1 failed"));
        assert_eq!(p.erase(), "", "nothing shown yet");
        let shown = p.draw();
        assert_eq!(p.erase(), format!("\r{}\r", " ".repeat(shown.len())));
        coloured.draw();
        assert_eq!(coloured.erase(), "\r\x1b[2K");
    }

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
