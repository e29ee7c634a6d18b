//! The JUnit XML report (`run --junit FILE`), written with the `junit-report`
//! crate, as CI systems read it: one `<testsuite>` named by the target, one
//! `<testcase>` per scenario × protocol. A failed check (the broker broke a
//! statement) is `<failure>`, a case that could not run is `<error>`, a
//! skipped one `<skipped>`. A failure's body says where, what was expected,
//! what came and the statements; the packets exchanged go to `<system-out>`.
//!
//! With `--baseline`, the report agrees with the exit status: a known
//! divergence that fails again is `<skipped type="known-divergence">` (its
//! failure in the body), so that a CI test view stays green on accepted
//! deviations; a listed case that now passes is a `<failure
//! type="fixed-divergence">`, since the run fails until the baseline drops it
//! (entries marked intermittent excepted).
//!
//! The suite's `time` is the sum of its cases' times (the crate computes
//! it): cases run in parallel, so it is more than the run's wall time, which
//! the console and JSON reports give. A run with one passing case and one
//! failing case (the crate writes no line breaks; they are added here to
//! read it):
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?>
//! <testsuites>
//!   <testsuite id="0" name="mqtt://127.0.0.1:40123" package="testsuite/mqtt://127.0.0.1:40123"
//!              tests="2" errors="0" failures="1" hostname="localhost"
//!              timestamp="2026-11-25T21:00:00Z" time="1.004">
//!     <testcase name="pingresp [5.0]" time="0.003" classname="shared.3.12-pingreq"
//!               file="scenarios/shared/3.12-pingreq/pingresp.yaml"/>
//!     <testcase name="qos1 [5.0]" time="1.001" classname="shared.3.3-publish"
//!               file="scenarios/shared/3.3-publish/qos1.yaml">
//!       <failure type="MQTT-3.3.4-1" message="step 4 (line 14): expected PUBACK {&quot;id&quot;:7}; got nothing within 1 s">
//!         <![CDATA[step 4 (scenarios/shared/3.3-publish/qos1.yaml:14): expected PUBACK {"id":7}
//! got:   nothing within 1 s
//! MQTT-3.3.4-1  …]]></failure>
//!       <system-out><![CDATA[publisher -> {"type":"PUBLISH",…} [32 0b …]]]></system-out>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! The `sample` test below asserts the exact output of such a report (a
//! pass, a skip, an error and a failure with its exchange).

use std::time::{Duration, SystemTime};

use junit_report::{OffsetDateTime, ReportBuilder, TestCase, TestResult, TestSuite};

use crate::report::console;
use crate::results::{CaseResult, RunReport, Status};

/// The report of a run that ended now.
pub fn render(report: &RunReport) -> String {
    let started = SystemTime::now()
        .checked_sub(report.duration)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    render_at(report, OffsetDateTime::from(started))
}

/// The report, with `started` as the suite's timestamp (fixed in tests).
pub fn render_at(report: &RunReport, started: OffsetDateTime) -> String {
    let mut suite = TestSuite::new(&text(&report.target));
    suite.set_timestamp(started);
    suite.add_testcases(report.cases.iter().map(|c| test_case(report, c)));
    let mut out = Vec::new();
    // Writing to a Vec cannot fail on I/O; the crate's XML writer reports
    // nothing else for well-formed input, which `text` guarantees.
    if let Err(e) = ReportBuilder::new()
        .add_testsuite(suite)
        .build()
        .write_xml(&mut out)
    {
        return format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- the JUnit report could not be written: {} -->\n",
            text(&e.to_string()).replace("--", "- -")
        );
    }
    let mut xml = String::from_utf8_lossy(&out).into_owned();
    xml.push('\n');
    xml
}

fn test_case(report: &RunReport, c: &CaseResult) -> TestCase {
    let (class, base) = match c.id.rsplit_once('/') {
        Some((dir, base)) => (dir.replace('/', "."), base.to_string()),
        None => (String::from("scenarios"), c.id.clone()),
    };
    let name = text(&format!("{base} [{}]", c.protocol));
    let message = text(c.message.as_deref().unwrap_or(""));
    let details = Some(text(&console::details(c, false))).filter(|d| !d.is_empty());
    let known = report.is_known(c);
    let intermittent = report.intermittent.contains(&(c.id.clone(), c.protocol));
    let result = match c.status {
        Status::Pass if known && !intermittent => TestResult::Failure {
            type_: "fixed-divergence".into(),
            message: "passes, but the baseline lists it as a known divergence: \
                      remove it from the baseline"
                .into(),
            cause: None,
        },
        Status::Pass => TestResult::Success,
        Status::Fail if known => TestResult::SkippedWithCause {
            type_: "known-divergence".into(),
            message: text(&format!("known divergence (baseline): {message}")),
            cause: details,
        },
        Status::Skip => TestResult::SkippedWithCause {
            type_: "skip".into(),
            message,
            cause: None,
        },
        Status::Fail => TestResult::Failure {
            type_: text(&c.statements.join(" ")),
            message,
            cause: details,
        },
        Status::Error => TestResult::Error {
            type_: "error".into(),
            message,
            cause: None,
        },
    };
    let exchange = console::exchange_text(c);
    TestCase {
        name,
        time: duration(c.duration),
        result,
        classname: Some(text(&class)),
        filepath: Some(text(&c.file)),
        system_out: Some(text(&exchange)).filter(|x| !x.is_empty()),
        system_err: None,
    }
}

/// Whole milliseconds, as the console shows them (`time="0.003"`).
fn duration(d: Duration) -> junit_report::Duration {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    junit_report::Duration::milliseconds(ms)
}

/// Text that XML 1.0 can carry: characters it forbids are written as
/// `\u{…}`, and `]]>` is broken so that a CDATA section cannot end early
/// (the crate escapes attributes, but writes CDATA as it is given).
fn text(s: &str) -> String {
    use std::fmt::Write as _;
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
    out.replace("]]>", "]] >")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Failure;
    use crate::scenario::Pos;
    use bytes::Bytes;
    use mqtt_codec::Packet;
    use mqtt_codec::Protocol;
    use mqtt_net::{Direction, LogEntry};

    fn case(id: &str, status: Status, message: Option<&str>) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: format!("scenarios/{id}.yaml"),
            name: "n".into(),
            protocol: Protocol::V5,
            status,
            statements: vec![],
            duration: Duration::from_millis(3),
            message: message.map(Into::into),
            failure: None,
            exchange: vec![],
        }
    }

    fn at() -> OffsetDateTime {
        // 2026-11-25T21:00:00Z
        OffsetDateTime::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1795640400))
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
        fail.exchange = vec![LogEntry {
            at: tokio::time::Instant::now(),
            client: "c".into(),
            direction: Direction::Sent,
            protocol: Protocol::V5,
            packet: Some(Packet::PingReq),
            bytes: Bytes::from_static(&[0xc0, 0x00]),
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
        let expected = concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<testsuites><testsuite id="0" name="mqtt://h:1" package="testsuite/mqtt://h:1" tests="4" errors="1" failures="1" hostname="localhost" timestamp="2026-11-25T21:00:00Z" time="0.012">"#,
            r#"<testcase name="ping [5.0]" time="0.003" classname="a" file="scenarios/a/ping.yaml"/>"#,
            r#"<testcase name="skip [5.0]" time="0.003" classname="a" file="scenarios/a/skip.yaml"><skipped type="skip" message="requires qos2: &lt;none&gt;"/></testcase>"#,
            r#"<testcase name="b [5.0]" time="0.003" classname="scenarios" file="scenarios/b.yaml"><error type="error" message="cannot connect"/></testcase>"#,
            r#"<testcase name="pingresp [5.0]" time="0.003" classname="shared.3.12-pingreq" file="scenarios/shared/3.12-pingreq/pingresp.yaml">"#,
            r#"<failure type="MQTT-3.12.4-1" message="step 2 (line 9): expected PINGRESP; got nothing within 300 ms"><![CDATA[step 2 (scenarios/shared/3.12-pingreq/pingresp.yaml:9): expected PINGRESP"#,
            "\ngot:   nothing within 300 ms\nMQTT-3.12.4-1  Server answers each PINGREQ with a PINGRESP.]]></failure>",
            r#"<system-out><![CDATA[c -> {"type":"PINGREQ"} [c0 00]]]></system-out>"#,
            "</testcase></testsuite></testsuites>\n",
        );
        assert_eq!(render_at(&r, at()), expected);
    }

    #[test]
    fn baseline_divergences_agree_with_the_exit_status() {
        let mut again = case("k/again", Status::Fail, Some("expected X; got Y"));
        again.statements = vec!["MQTT-3.12.4-1".into()];
        let mut r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                again,
                case("k/fixed", Status::Pass, None),
                case("k/flaky", Status::Pass, None),
            ],
            Duration::ZERO,
        );
        for id in ["k/again", "k/fixed", "k/flaky"] {
            r.baseline.insert((id.into(), Protocol::V5));
        }
        r.intermittent.insert(("k/flaky".into(), Protocol::V5));
        assert_eq!(r.exit_code(), 1, "a fixed entry fails the run");
        let xml = render_at(&r, at());
        assert!(
            xml.contains(r#"tests="3" errors="0" failures="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="again [5.0]" time="0.003" classname="k" file="scenarios/k/again.yaml"><skipped type="known-divergence" message="known divergence (baseline): expected X; got Y">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure type="fixed-divergence" message="passes, but the baseline lists it as a known divergence: remove it from the baseline"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="flaky [5.0]" time="0.003" classname="k" file="scenarios/k/flaky.yaml"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn text_the_xml_cannot_carry_is_made_safe() {
        let mut c = case("a/x", Status::Error, Some("bad \u{1} byte"));
        c.exchange = vec![LogEntry {
            at: tokio::time::Instant::now(),
            client: "c".into(),
            direction: Direction::Received,
            protocol: Protocol::V5,
            packet: None,
            bytes: Bytes::new(),
            note: Some("payload ]]> inside".into()),
        }];
        let r = RunReport::new("mqtt://h:1".into(), vec![c], Duration::ZERO);
        let xml = render_at(&r, at());
        assert!(xml.contains(r#"message="bad \u{1} byte""#), "{xml}");
        assert!(
            xml.contains("<![CDATA[c <- (payload ]] > inside)]]>"),
            "{xml}"
        );
    }
}
