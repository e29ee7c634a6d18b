//! The JUnit XML report (`run --junit FILE`), as CI test views (Jenkins,
//! GitLab, GitHub checks) read it: one `<testsuite>` named `mqtt-harness` and
//! the scenario root (stable from run to run; the target, which for the
//! embedded broker has a random port, is a property), one `<testcase>` per
//! scenario × protocol.
//!
//! - A failed check (the broker broke a statement) is `<failure>`, a case that
//!   could not run `<error>`, a skipped one `<skipped>`; `<testsuite>` counts
//!   each (`tests`, `failures`, `errors`, `skipped`).
//! - It agrees with the exit status: a known divergence (in the baseline) is
//!   `<skipped type="known-divergence" message="known divergence: REASON">`
//!   with the baseline's reason and the failure in its body; a listed case
//!   that passes is `<failure type="fixed-divergence">`, and a baseline entry
//!   that matches no case of a whole run is a `<failure
//!   type="stale-baseline-entry">` test case of its own. A flaky case (failed,
//!   then passed on a retry) passes, with the properties `flaky` and
//!   `attempts` and a note in `<system-out>`; with `--fail-on-flaky` it is
//!   `<failure type="flaky">`.
//! - Classnames: Jenkins takes what precedes a classname's last dot as its
//!   package, so the dots of a section number become `_`: the cases of
//!   `shared/3.12-pingreq/…` are in class `3_12-pingreq` of package `shared`
//!   (`classname="shared.3_12-pingreq"`).
//! - Times: a test case's `time` is its own; cases run in parallel, so they
//!   add up to more than the run: the suite's `time` is the run's wall time,
//!   and its property `time` says so, with the sum.
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="mqtt-harness" tests="2" failures="1" errors="0" skipped="0" time="1.004">
//!   <testsuite name="mqtt-harness scenarios" tests="2" failures="1" errors="0" skipped="0"
//!              time="1.004" timestamp="2026-11-25T21:00:00Z" hostname="localhost">
//!     <properties>
//!       <property name="target" value="mqtt://127.0.0.1:40123"/>
//!       <property name="exit_status" value="1"/> …
//!     </properties>
//!     <testcase name="pingresp [5.0]" classname="shared.3_12-pingreq" time="0.003"
//!               file="scenarios/shared/3.12-pingreq/pingresp.yaml"/>
//!     <testcase name="qos1 [5.0]" classname="shared.3_3-publish" time="1.001" file="…">
//!       <failure type="MQTT-3.3.4-1" message="step 4 (line 14): expected PUBACK …"><![CDATA[…]]></failure>
//!       <system-out><![CDATA[publisher -> {"type":"PUBLISH",…} [32 0b …]]]></system-out>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! The `sample` test below asserts the exact output of such a report.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::report::console;
use crate::results::{CaseResult, Mark, RunReport};

/// The report of a run that ended now.
pub fn render(report: &RunReport) -> String {
    let started = SystemTime::now()
        .checked_sub(report.duration)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    render_at(report, started)
}

/// What a test case ends as.
enum Outcome {
    Pass,
    /// `<failure>`, `<error>` or `<skipped>`: element, type, message, body.
    Not(&'static str, String, String, Option<String>),
}

/// The report, with `started` as the suite's timestamp (fixed in tests).
pub fn render_at(report: &RunReport, started: SystemTime) -> String {
    let mut cases = String::new();
    let (mut failures, mut errors, mut skipped) = (0usize, 0usize, 0usize);
    for c in &report.cases {
        let outcome = outcome(report, c);
        if let Outcome::Not(element, ..) = &outcome {
            match *element {
                "failure" => failures += 1,
                "error" => errors += 1,
                _ => skipped += 1,
            }
        }
        test_case(&mut cases, c, outcome);
    }
    let mut tests = report.cases.len();
    if report.stale_fails() {
        for (id, p) in report.stale() {
            tests += 1;
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase name=\"{}\" classname=\"baseline\" time=\"0.000\">\n      \
                 <failure type=\"stale-baseline-entry\" message=\"{}\"/>\n    </testcase>",
                attr(&format!("{id} [{p}]")),
                attr("the baseline lists this case, but it matches no case of this run: remove it from the baseline")
            );
        }
    }
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\"",
        seconds(report.duration)
    );
    let sum: Duration = report.cases.iter().map(|c| c.duration).sum();
    let status = report.exit_status();
    let mut properties = vec![
        ("target", report.target.clone()),
        ("tool_version", report.tool_version.clone()),
        ("exit_status", status.code().to_string()),
        ("verdict", status.as_str().to_string()),
        ("interrupted", report.interrupted.is_some().to_string()),
        (
            "time",
            format!(
                "the testsuite's time is the run's wall time; its cases ran in parallel and their times add up to {} s",
                seconds(sum)
            ),
        ),
    ];
    if let Some(signal) = report.interrupted {
        properties.push((
            "note",
            format!(
                "interrupted by {}: only the {} case(s) that finished are reported",
                signal.name(),
                report.cases.len()
            ),
        ));
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"mqtt-harness\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {counts} timestamp=\"{}\" hostname=\"localhost\">",
        attr(&format!("mqtt-harness {}", report.suite)),
        timestamp(started)
    );
    out.push_str("    <properties>\n");
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn outcome(report: &RunReport, c: &CaseResult) -> Outcome {
    let message = c.message.clone().unwrap_or_default();
    let details = Some(console::details(c, false)).filter(|d| !d.is_empty());
    match report.mark(c) {
        Mark::Pass => Outcome::Pass,
        Mark::Flaky if !report.policy.fail_on_flaky => Outcome::Pass,
        Mark::Flaky => Outcome::Not(
            "failure",
            "flaky".into(),
            format!(
                "failed, then passed on attempt {} (--fail-on-flaky)",
                c.attempts
            ),
            Some(c.earlier.join("\n")),
        ),
        Mark::Fixed => Outcome::Not(
            "failure",
            "fixed-divergence".into(),
            "passes, but the baseline lists it as a known divergence: remove it from the baseline"
                .into(),
            None,
        ),
        Mark::Known => Outcome::Not(
            "skipped",
            "known-divergence".into(),
            format!(
                "known divergence: {}",
                report.known_reason(c).unwrap_or(&message)
            ),
            details,
        ),
        Mark::Skip => Outcome::Not("skipped", "skip".into(), message, None),
        Mark::Fail => Outcome::Not("failure", c.statements.join(" "), message, details),
        Mark::Error => Outcome::Not("error", "error".into(), message, None),
    }
}

fn test_case(out: &mut String, c: &CaseResult, outcome: Outcome) {
    let (class, base) = match c.id.rsplit_once('/') {
        Some((dir, base)) => (class_name(dir), base.to_string()),
        None => (String::from("scenarios"), c.id.clone()),
    };
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\" file=\"{}\"",
        attr(&format!("{base} [{}]", c.protocol)),
        attr(&class),
        seconds(c.duration),
        attr(&c.file)
    );
    let mut inner = String::new();
    if c.attempts > 1 {
        let _ = write!(
            inner,
            "      <properties>\n        <property name=\"flaky\" value=\"{}\"/>\n        \
             <property name=\"attempts\" value=\"{}\"/>\n      </properties>\n",
            c.is_flaky(),
            c.attempts
        );
    }
    if let Outcome::Not(element, type_, message, body) = outcome {
        let _ = write!(
            inner,
            "      <{element} type=\"{}\" message=\"{}\"",
            attr(&type_),
            attr(&message)
        );
        match body.filter(|b| !b.is_empty()) {
            Some(b) => {
                let _ = writeln!(inner, ">{}</{element}>", cdata(&b));
            }
            None => inner.push_str("/>\n"),
        }
    }
    let mut system_out = String::new();
    if c.is_flaky() {
        let _ = writeln!(
            system_out,
            "flaky: passed on attempt {} of {}",
            c.attempts, c.attempts
        );
        for (i, e) in c.earlier.iter().enumerate() {
            let _ = writeln!(system_out, "attempt {}: {e}", i + 1);
        }
    }
    system_out.push_str(&console::exchange_text(c));
    let system_out = system_out.trim_end();
    if !system_out.is_empty() {
        let _ = writeln!(
            inner,
            "      <system-out>{}</system-out>",
            cdata(system_out)
        );
    }
    if inner.is_empty() {
        out.push_str("/>\n");
    } else {
        let _ = write!(out, ">\n{inner}    </testcase>\n");
    }
}

/// `shared/3.12-pingreq` → `shared.3_12-pingreq`: path components joined by
/// dots, the dots within them (section numbers) made `_`.
fn class_name(dir: &str) -> String {
    let parts: Vec<String> = dir.split('/').map(|p| p.replace('.', "_")).collect();
    parts.join(".")
}

/// Seconds with milliseconds: `0.003`.
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// `2026-11-25T21:00:00Z`.
fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Text that XML 1.0 can carry: characters it forbids are written `\u{…}`.
fn xml_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let allowed = matches!(c, '\t' | '\n' | '\r')
            || matches!(c as u32, 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF);
        if allowed {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    out
}

/// An attribute value, escaped (line breaks kept as character references).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in xml_chars(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Element text as CDATA; a `]]>` inside is split over two sections.
fn cdata(s: &str) -> String {
    format!(
        "<![CDATA[{}]]>",
        xml_chars(s).replace("]]>", "]]]]><![CDATA[>")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Direction, Exchange};
    use crate::results::{Failure, Status};
    use crate::scenario::Pos;
    use mqtt_codec::Protocol;

    fn case(id: &str, status: Status, message: Option<&str>) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: format!("scenarios/{id}.yaml"),
            name: "n".into(),
            protocol: Protocol::V5,
            status,
            statements: vec![],
            failed_statements: Vec::new(),
            passed_statements: Vec::new(),
            duration: Duration::from_millis(3),
            message: message.map(Into::into),
            failure: None,
            exchange: vec![],
            attempts: 1,
            earlier: vec![],
        }
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_640_400)
    }

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(timestamp(at()), "2026-11-25T21:00:00Z");
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn sample() {
        let mut fail = case(
            "shared/3.12-pingreq/pingresp",
            Status::Fail,
            Some("step 2 (line 9): expected PINGRESP; got nothing within 300 ms"),
        );
        fail.statements = vec!["MQTT-3.12.4-1".into()];
        fail.failure = Some(Failure {
            step: 2,
            pos: Some(Pos { line: 9, column: 3 }),
            expected: "PINGRESP".into(),
            got: "nothing within 300 ms".into(),
            got_hex: None,
        });
        fail.exchange = vec![Exchange {
            at: tokio::time::Instant::now(),
            client: "c".into(),
            direction: Direction::Sent,
            packet: Some(serde_json::json!({"type": "PINGREQ"})),
            hex: "c0 00".into(),
            note: None,
        }];
        let r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                case("a/ping", Status::Pass, None),
                case("a/skip", Status::Skip, Some("requires qos2: <none>")),
                case("b", Status::Error, Some("cannot connect")),
                fail,
            ],
            Duration::from_millis(5),
        );
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="mqtt-harness" tests="4" failures="1" errors="1" skipped="1" time="0.005">
  <testsuite name="mqtt-harness scenarios" tests="4" failures="1" errors="1" skipped="1" time="0.005" timestamp="2026-11-25T21:00:00Z" hostname="localhost">
    <properties>
      <property name="target" value="mqtt://h:1"/>
      <property name="tool_version" value="0.1.0"/>
      <property name="exit_status" value="3"/>
      <property name="verdict" value="could_not_run"/>
      <property name="interrupted" value="false"/>
      <property name="time" value="the testsuite's time is the run's wall time; its cases ran in parallel and their times add up to 0.012 s"/>
    </properties>
    <testcase name="ping [5.0]" classname="a" time="0.003" file="scenarios/a/ping.yaml"/>
    <testcase name="skip [5.0]" classname="a" time="0.003" file="scenarios/a/skip.yaml">
      <skipped type="skip" message="requires qos2: &lt;none&gt;"/>
    </testcase>
    <testcase name="b [5.0]" classname="scenarios" time="0.003" file="scenarios/b.yaml">
      <error type="error" message="cannot connect"/>
    </testcase>
    <testcase name="pingresp [5.0]" classname="shared.3_12-pingreq" time="0.003" file="scenarios/shared/3.12-pingreq/pingresp.yaml">
      <failure type="MQTT-3.12.4-1" message="step 2 (line 9): expected PINGRESP; got nothing within 300 ms"><![CDATA[step 2 (scenarios/shared/3.12-pingreq/pingresp.yaml:9): expected PINGRESP
got:   nothing within 300 ms
MQTT-3.12.4-1  Server answers each PINGREQ with a PINGRESP.]]></failure>
      <system-out><![CDATA[c -> {"type":"PINGREQ"} [c0 00]]]></system-out>
    </testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(
            render_at(&r, at()),
            expected.replace("0.1.0", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn baseline_divergences_flaky_cases_and_stale_entries_agree_with_the_exit_status() {
        let mut again = case("k/again", Status::Fail, Some("expected X; got Y"));
        again.statements = vec!["MQTT-3.12.4-1".into()];
        let flaky = case("k/retried", Status::Fail, Some("expected X; got Y")).retried(case(
            "k/retried",
            Status::Pass,
            None,
        ));
        let mut r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                again,
                case("k/fixed", Status::Pass, None),
                case("k/flaky", Status::Pass, None),
                flaky,
            ],
            Duration::ZERO,
        );
        for id in ["k/again", "k/fixed", "k/flaky", "k/gone"] {
            r.baseline.insert((id.into(), Protocol::V5));
        }
        r.known_reasons.insert(
            ("k/again".into(), Protocol::V5),
            "mosquitto answers \"Y\"".into(),
        );
        r.intermittent.insert(("k/flaky".into(), Protocol::V5));
        assert_eq!(r.exit_code(), 1, "a fixed entry fails the run");
        let xml = render_at(&r, at());
        assert!(
            xml.contains(r#"<testsuite name="mqtt-harness scenarios" tests="5" failures="2" errors="0" skipped="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<skipped type="known-divergence" message="known divergence: mosquitto answers &quot;Y&quot;">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure type="fixed-divergence" message="passes, but the baseline lists it as a known divergence: remove it from the baseline"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="flaky [5.0]" classname="k" time="0.003" file="scenarios/k/flaky.yaml"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"k/gone [5.0]\" classname=\"baseline\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure type=\"stale-baseline-entry\""),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"flaky\" value=\"true\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<system-out><![CDATA[flaky: passed on attempt 2 of 2\nattempt 1: fail: expected X; got Y]]></system-out>"),
            "{xml}"
        );
        r.policy.restricted = true;
        r.policy.fail_on_flaky = true;
        let xml = render_at(&r, at());
        assert!(
            !xml.contains("stale-baseline-entry"),
            "a restricted run only warns: {xml}"
        );
        assert!(xml.contains("<failure type=\"flaky\""), "{xml}");
    }

    #[test]
    fn text_the_xml_cannot_carry_is_made_safe() {
        let mut c = case("a/x", Status::Error, Some("bad \u{1} byte\nnext"));
        c.exchange = vec![Exchange {
            at: tokio::time::Instant::now(),
            client: "c".into(),
            direction: Direction::Received,
            packet: None,
            hex: String::new(),
            note: Some("payload ]]> inside".into()),
        }];
        let r = RunReport::new("mqtt://h:1".into(), vec![c], Duration::ZERO);
        let xml = render_at(&r, at());
        assert!(
            xml.contains(r#"message="bad \u{1} byte&#10;next""#),
            "{xml}"
        );
        assert!(
            xml.contains("<![CDATA[c <- (payload ]]]]><![CDATA[> inside)]]>"),
            "{xml}"
        );
    }
}
