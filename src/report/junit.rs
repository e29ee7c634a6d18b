//! The JUnit XML report (`run --junit FILE`), as CI systems read it: one
//! `<testcase>` per scenario × protocol; a failed check is `<failure>`, a case
//! that could not run is `<error>`, a skipped one `<skipped>`.
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="mqtt-harness" tests="2" failures="1" errors="0" skipped="0" time="1.004">
//!   <testsuite name="mqtt://127.0.0.1:40123" tests="2" failures="1" errors="0" skipped="0" time="1.004">
//!     <testcase classname="shared.3.12-pingreq" name="pingresp [5.0]" file="scenarios/shared/3.12-pingreq/pingresp.yaml" time="0.003"/>
//!     <testcase classname="shared.3.3-publish" name="qos1 [5.0]" file="…" time="1.001">
//!       <failure message="step 4 (line 14): expected PUBACK {&quot;id&quot;:7}; got nothing within 1 s">…</failure>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```

use std::fmt::Write as _;

use crate::report::console;
use crate::results::{RunReport, Status};

/// XML text escaping (attributes and content).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn render(report: &RunReport) -> String {
    let s = report.summary();
    let tests = report.cases.len();
    let time = report.duration.as_secs_f64();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{tests}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\"",
        s.failed, s.errors, s.skipped
    );
    let _ = writeln!(out, "<testsuites name=\"mqtt-harness\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {counts}>",
        esc(&report.target)
    );
    for c in &report.cases {
        let (class, name) = match c.id.rsplit_once('/') {
            Some((dir, base)) => (dir.replace('/', "."), base.to_string()),
            None => (String::from("scenarios"), c.id.clone()),
        };
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{} [{}]\" file=\"{}\" time=\"{:.3}\"",
            esc(&class),
            esc(&name),
            c.protocol,
            esc(&c.file),
            c.duration.as_secs_f64()
        );
        let message = esc(c.message.as_deref().unwrap_or(""));
        match c.status {
            Status::Pass => out.push_str("/>\n"),
            Status::Skip => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{message}\"/>\n    </testcase>"
                );
            }
            Status::Fail | Status::Error => {
                let tag = if c.status == Status::Fail {
                    "failure"
                } else {
                    "error"
                };
                let body = esc(&console::case_text(c, false));
                let _ = writeln!(
                    out,
                    ">\n      <{tag} message=\"{message}\">{body}</{tag}>\n    </testcase>"
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CaseResult;
    use mqtt_codec::Protocol;
    use std::time::Duration;

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

    #[test]
    fn sample() {
        let r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                case("a/ping", Status::Pass, None),
                case("a/skip", Status::Skip, Some("requires qos2: <none>")),
            ],
            Duration::from_millis(5),
        );
        assert_eq!(
            render(&r),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<testsuites name=\"mqtt-harness\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\" time=\"0.005\">
  <testsuite name=\"mqtt://h:1\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\" time=\"0.005\">
    <testcase classname=\"a\" name=\"ping [5.0]\" file=\"scenarios/a/ping.yaml\" time=\"0.003\"/>
    <testcase classname=\"a\" name=\"skip [5.0]\" file=\"scenarios/a/skip.yaml\" time=\"0.003\">
      <skipped message=\"requires qos2: &lt;none&gt;\"/>
    </testcase>
  </testsuite>
</testsuites>
"
        );
    }
}
