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
//! Colours as `--color` says: on a terminal unless `NO_COLOR` is set
//! (`CLICOLOR_FORCE` colours a pipe too). The run ends with a recap of what
//! needs a look (failures, errors, flaky and fixed cases), the summary and
//! the verdict with its exit status.

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::results::{CaseResult, Mark, RunReport, Status};

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

/// `--color`: when to colour the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it elsewhere.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream, from the environment: NO_COLOR (set and
    /// not empty) turns colour off, CLICOLOR_FORCE (set, not empty, not `0`)
    /// turns it on where the stream is not a terminal; NO_COLOR wins over it,
    /// and `always` / `never` over both.
    pub fn resolve(self, is_terminal: bool) -> bool {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        self.decide(
            is_terminal,
            var("NO_COLOR").is_some(),
            var("CLICOLOR_FORCE").is_some_and(|v| v != "0"),
        )
    }

    /// [`ColorChoice::resolve`] without the environment.
    pub fn decide(self, is_terminal: bool, no_color: bool, force: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && (force || is_terminal),
        }
    }
}

/// Whether to colour output written to stdout (`--color auto`).
pub fn use_color() -> bool {
    ColorChoice::Auto.resolve(std::io::stdout().is_terminal())
}

/// How much the console says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// Only the failures, errors and flaky cases, at the end, and the summary (`-q`).
    Quiet,
    /// A line per case as it ends, what went wrong under it, a recap at the end.
    #[default]
    Normal,
    /// As normal, with the whole exchange of every case, passing ones too (`-v`).
    Verbose,
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn label(mark: Mark, color: bool) -> String {
    let (text, code) = match mark {
        Mark::Pass => ("PASS ", "32"),
        Mark::Fail => ("FAIL ", "1;31"),
        Mark::Skip => ("SKIP ", "33"),
        Mark::Error => ("ERROR", "1;35"),
        Mark::Known => ("KNOWN", "36"),
        Mark::Flaky => ("FLAKY", "1;33"),
        Mark::Fixed => ("FIXED", "1;31"),
    };
    paint(text, code, color)
}

fn mark_of(c: &CaseResult, known: bool) -> Mark {
    Mark::of(c, known, false)
}

/// The case's line, and for anything but a pass the lines that say why.
pub fn case_text(c: &CaseResult, color: bool) -> String {
    case_text_marked(c, mark_of(c, false), None, false, color)
}

/// As [`case_text`]; a `known` failure (one the baseline lists) is marked KNOWN.
pub fn case_text_known(c: &CaseResult, known: bool, color: bool) -> String {
    case_text_marked(c, mark_of(c, known), None, false, color)
}

/// The case's line marked `mark`, then why: the baseline's `reason` for a
/// known divergence, earlier attempts of a flaky case, what failed; with
/// `all_exchanges` the exchange of a passing case too.
pub fn case_text_marked(
    c: &CaseResult,
    mark: Mark,
    reason: Option<&str>,
    all_exchanges: bool,
    color: bool,
) -> String {
    let mut out = String::new();
    let attempts = if c.attempts > 1 {
        format!(", {} attempts", c.attempts)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "{} {} [{}]  {}  ({} ms{attempts})",
        label(mark, color),
        c.id,
        c.protocol,
        c.name,
        c.duration.as_millis()
    );
    let mut why = String::new();
    match mark {
        Mark::Known => {
            let _ = writeln!(why, "baseline: {}", reason.unwrap_or("(the entry gives no message)"));
        }
        Mark::Fixed => why.push_str(
            "passes now, but the baseline lists it: remove it from the baseline (or mark it intermittent)\n",
        ),
        _ => {}
    }
    for (i, e) in c.earlier.iter().enumerate() {
        let _ = writeln!(why, "attempt {}: {e}", i + 1);
    }
    why.push_str(&details(c, color));
    for line in why.trim_end().lines() {
        let _ = write!(out, "\n      {line}");
    }
    if (c.status != Status::Pass || all_exchanges) && !c.exchange.is_empty() {
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
    let lines: Vec<String> = c.exchange.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// `14 passed, 1 failed, 1 skipped, 0 errors in 5.21 s; statements: …`
pub fn summary_line(r: &RunReport, color: bool) -> String {
    let s = r.summary();
    let count = |st: Status| r.statements.iter().filter(|x| x.status == st).count();
    let failed = format!("{} failed", s.failed);
    let errors = format!("{} errors", s.errors);
    let known = if s.known > 0 {
        format!(" ({} known from the baseline)", s.known)
    } else {
        String::new()
    };
    let flaky = if s.flaky > 0 {
        paint(&format!(" ({} flaky)", s.flaky), "1;33", color)
    } else {
        String::new()
    };
    format!(
        "{} passed{flaky}, {}{known}, {} skipped, {} in {:.2} s against {}; statements: {} pass, {} fail, {} skip",
        s.passed,
        if s.failed > s.known { paint(&failed, "1;31", color) } else { failed },
        s.skipped,
        if s.errors > 0 { paint(&errors, "1;35", color) } else { errors },
        r.duration.as_secs_f64(),
        r.target,
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
    )
}

/// What the console prints after the cases: a recap of every failure,
/// error, flaky and fixed case (`detailed`: each with why, as `-q` shows
/// them; else one line each), the summary, stale baseline entries, an
/// interruption, and the verdict with its exit status.
pub fn ending(r: &RunReport, detailed: bool, color: bool) -> String {
    let mut out = String::new();
    let attention: Vec<&CaseResult> = r
        .cases
        .iter()
        .filter(|c| r.mark(c).needs_attention())
        .collect();
    if !attention.is_empty() {
        let _ = writeln!(
            out,
            "\nfailures, errors and flaky cases ({}):",
            attention.len()
        );
        for c in attention {
            let mark = r.mark(c);
            if detailed {
                let _ = writeln!(
                    out,
                    "{}",
                    case_text_marked(c, mark, r.known_reason(c), false, color)
                );
            } else {
                let why = match mark {
                    Mark::Fixed => {
                        "passes now: remove it from the baseline (or mark it intermittent)"
                    }
                    Mark::Flaky => c.earlier.first().map_or("", String::as_str),
                    _ => c.message.as_deref().unwrap_or(""),
                };
                let _ = writeln!(
                    out,
                    "  {} {} [{}]  {why}",
                    label(mark, color),
                    c.id,
                    c.protocol
                );
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(r, color));
    let stale = r.stale();
    if !stale.is_empty() {
        let (what, then) = if r.policy.restricted {
            (
                "warning",
                "(this run is restricted, so it may only have left the case out)",
            )
        } else {
            ("stale", "remove it from the baseline: its scenario was renamed or deleted, or no longer runs under that version")
        };
        for (id, p) in stale {
            let _ = writeln!(
                out,
                "{what}: the baseline entry {id} [{p}] matches no case of this run; {then}"
            );
        }
    }
    if let Some(signal) = r.interrupted {
        let _ = writeln!(
            out,
            "interrupted by {}: the reports hold the {} case(s) that finished",
            signal.name(),
            r.cases.len()
        );
    }
    let status = r.exit_status();
    let _ = writeln!(
        out,
        "verdict: {} (exit status {})",
        status.as_str().replace('_', " "),
        status.code()
    );
    out
}

/// The console while a run goes: each case as it ends, and on a terminal a
/// progress line under them.
pub struct Live {
    pub verbosity: Verbosity,
    pub color: bool,
    pub progress: Option<Progress>,
    /// The baseline's entries (known, intermittent) and reasons.
    pub known: std::collections::BTreeSet<(String, mqtt_codec::Protocol)>,
    pub intermittent: std::collections::BTreeSet<(String, mqtt_codec::Protocol)>,
    pub reasons: std::collections::BTreeMap<(String, mqtt_codec::Protocol), String>,
}

impl Live {
    /// A case ended (or ran again: `retry`, which the progress does not count).
    pub fn case(&mut self, c: &CaseResult, retry: bool, out: &mut dyn std::io::Write) {
        if let Some(p) = self.progress.as_mut() {
            let _ = write!(out, "{}", p.erase());
        }
        if self.verbosity != Verbosity::Quiet {
            let key = c.key();
            let mark = Mark::of(
                c,
                self.known.contains(&key),
                self.intermittent.contains(&key),
            );
            let all = self.verbosity == Verbosity::Verbose;
            let reason = self.reasons.get(&key).map(String::as_str);
            let _ = writeln!(
                out,
                "{}",
                case_text_marked(c, mark, reason, all, self.color)
            );
        }
        if let Some(p) = self.progress.as_mut() {
            if !retry {
                p.case_done(c);
            }
            let _ = write!(out, "{}", p.draw());
        }
        let _ = out.flush();
    }

    /// Redraws the progress line (the time goes on).
    pub fn tick(&mut self, out: &mut dyn std::io::Write) {
        if let Some(p) = self.progress.as_mut() {
            let _ = write!(out, "{}{}", p.erase(), p.draw());
            let _ = out.flush();
        }
    }

    /// Erases the progress line for good.
    pub fn finish(&mut self, out: &mut dyn std::io::Write) {
        if let Some(p) = self.progress.as_mut() {
            let _ = write!(out, "{}", p.erase());
            let _ = out.flush();
        }
        self.progress = None;
    }
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
            failed_statements: Vec::new(),
            passed_statements: Vec::new(),
            duration: Duration::ZERO,
            message: None,
            failure: None,
            exchange: Vec::new(),
            attempts: 1,
            earlier: Vec::new(),
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
            failed_statements: vec!["MQTT-3.12.4-1".into()],
            passed_statements: Vec::new(),
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
            attempts: 1,
            earlier: Vec::new(),
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

    fn case(id: &str, status: Status) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: format!("scenarios/{id}.yaml"),
            name: "n".into(),
            protocol: Protocol::V5,
            status,
            statements: vec![],
            failed_statements: Vec::new(),
            passed_statements: Vec::new(),
            duration: Duration::from_millis(2),
            message: Some(format!("why {id}")).filter(|_| status != Status::Pass),
            failure: None,
            exchange: Vec::new(),
            attempts: 1,
            earlier: Vec::new(),
        }
    }

    #[test]
    fn colour_follows_the_flag_then_no_color_then_clicolor_force() {
        use ColorChoice::*;
        // (choice, terminal, NO_COLOR, CLICOLOR_FORCE) -> colour
        let table = [
            (Auto, true, false, false, true),
            (Auto, false, false, false, false),
            (Auto, true, true, false, false),
            (Auto, false, false, true, true),
            (Auto, false, true, true, false),
            (Always, false, true, false, true),
            (Never, true, false, true, false),
        ];
        for (choice, terminal, no_color, force, want) in table {
            assert_eq!(
                choice.decide(terminal, no_color, force),
                want,
                "{choice:?} {terminal} {no_color} {force}"
            );
        }
    }

    #[test]
    fn the_ending_recaps_what_needs_a_look_and_says_the_verdict() {
        let flaky = case("a/flaky", Status::Fail).retried(case("a/flaky", Status::Pass));
        let r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                case("a/fail", Status::Fail),
                case("a/pass", Status::Pass),
                case("a/error", Status::Error),
                flaky,
            ],
            Duration::from_millis(10),
        );
        let end = ending(&r, false, false);
        assert_eq!(
            end,
            "
failures, errors and flaky cases (3):
  ERROR a/error [5.0]  why a/error
  FAIL  a/fail [5.0]  why a/fail
  FLAKY a/flaky [5.0]  fail: why a/flaky

2 passed (1 flaky), 1 failed, 0 skipped, 1 errors in 0.01 s against mqtt://h:1; statements: 0 pass, 0 fail, 0 skip
verdict: could not run (exit status 3)
"
        );
        let quiet = ending(&r, true, false);
        assert!(
            quiet.contains("FAIL  a/fail [5.0]  n  (2 ms)\n      why a/fail\n"),
            "{quiet}"
        );
        assert!(
            quiet.contains(
                "FLAKY a/flaky [5.0]  n  (2 ms, 2 attempts)\n      attempt 1: fail: why a/flaky\n"
            ),
            "{quiet}"
        );
    }

    #[test]
    fn quiet_shows_no_case_line_and_verbose_shows_a_passing_exchange() {
        use crate::client::{Direction, Exchange};
        let mut pass = case("a/pass", Status::Pass);
        pass.exchange = vec![Exchange {
            at: tokio::time::Instant::now(),
            client: "c".into(),
            direction: Direction::Sent,
            packet: Some(serde_json::json!({"type": "PINGREQ"})),
            hex: "c0 00".into(),
            note: None,
        }];
        let live = |verbosity| Live {
            verbosity,
            color: false,
            progress: None,
            known: Default::default(),
            intermittent: Default::default(),
            reasons: Default::default(),
        };
        let shown = |verbosity| {
            let mut out = Vec::new();
            live(verbosity).case(&pass, false, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(shown(Verbosity::Quiet), "");
        assert_eq!(shown(Verbosity::Normal), "PASS  a/pass [5.0]  n  (2 ms)\n");
        assert_eq!(
            shown(Verbosity::Verbose),
            "PASS  a/pass [5.0]  n  (2 ms)\n      exchange:\n        c -> {\"type\":\"PINGREQ\"} [c0 00]\n"
        );
        let mut known = live(Verbosity::Normal);
        known.known.insert(("a/fail".into(), Protocol::V5));
        known
            .reasons
            .insert(("a/fail".into(), Protocol::V5), "accepted: X".into());
        let mut out = Vec::new();
        known.case(&case("a/fail", Status::Fail), false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "KNOWN a/fail [5.0]  n  (2 ms)\n      baseline: accepted: X\n      why a/fail\n"
        );
    }
}
