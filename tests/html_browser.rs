//! The HTML report in a real browser: Debian's headless Chromium loads the
//! page `run --html` wrote, runs its script, and we check what it then shows
//! (`--dump-dom` gives the document after the script ran): the verdict banner,
//! a failure's reason outside any folded element, a known divergence with the
//! baseline's reason, the per-section totals, and a filter applied through the
//! URL fragment. A screenshot is taken as well. Without Chromium this test
//! fails: `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");
const CHROMIUM: &str = "/usr/bin/chromium";

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("html_browser")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Runs Chromium headless on `url` with `extra` flags, in a fresh profile,
/// bounded by a deadline; returns its stdout.
fn chromium(dir: &Path, url: &str, extra: &[&str]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    );
    let profile = dir.join(format!("profile-{}", extra.len()));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    // Bounded: a browser that hangs fails the test instead of stalling CI.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait().expect("chromium can be waited for") {
            Some(status) => {
                assert!(status.success(), "chromium failed: {status}");
                break;
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("chromium did not finish within 120 s");
            }
            // std has no wait with a timeout: poll the exit, bounded above.
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader.join().expect("the reader ends")
}

/// The text of the element with `id`, tags removed.
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let open = dom[start..].find('>').map_or(start, |i| start + i + 1);
    let close = dom[open..].find("</").map_or(dom.len(), |i| open + i);
    dom[open..close].to_string()
}

/// The opening tag of the row with this id.
fn row_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("<tr id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id}"));
    let end = dom[at..].find('>').map_or(dom.len(), |i| at + i + 1);
    &dom[at..end]
}

#[test]
fn the_report_reads_at_a_glance_in_a_real_browser() {
    let dir = scratch_dir("page");
    let baseline = dir.join("baseline.yaml");
    std::fs::write(
        &baseline,
        "divergences:\n  - id: shared/3.12-pingreq/pingresp\n    protocol: \"3.1.1\"\n    \
         message: Accepted for this test; PINGREQ goes unanswered.\n",
    )
    .expect("baseline");
    let html = dir.join("report.html");
    let out = Command::new(BIN)
        .args([
            "run",
            "scenarios/shared/3.12-pingreq/pingresp.yaml",
            "scenarios/shared/3.14-disconnect/reserved-flags.yaml",
            "--violate",
            "MQTT-3.12.4-1",
            "--timeout",
            "300ms",
            "--baseline",
        ])
        .arg(&baseline)
        .arg("--html")
        .arg(&html)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the harness runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let url = format!("file://{}", html.display());

    let dom = chromium(&dir, &url, &["--dump-dom"]);
    assert!(dom.contains("data-filter=\"all\""), "the script ran: {dom}");
    let banner = text_of(&dom, "verdict");
    assert!(
        banner.starts_with("Divergences: 2 failed (not in the baseline)"),
        "{banner}"
    );
    assert!(
        dom.contains("exit status 1 · 2 passed, 3 failed (1 known)"),
        "{dom}"
    );
    // The failure's reason is in its row, not folded into <details>.
    let fail = row_tag(&dom, "case-shared-3.12-pingreq-pingresp-5.0");
    assert!(fail.contains("data-mark=\"fail\""), "{fail}");
    assert!(
        dom.contains("<td class=\"reason\"><p class=\"why\">step 2 (line 14): expected PINGRESP; got nothing within 300 ms</p><details>"),
        "{dom}"
    );
    let known = row_tag(&dom, "case-shared-3.12-pingreq-pingresp-3.1.1");
    assert!(known.contains("data-mark=\"known\""), "{known}");
    assert!(
        dom.contains(
            "<p class=\"why\">baseline: Accepted for this test; PINGREQ goes unanswered.</p>"
        ),
        "{dom}"
    );
    assert!(
        dom.contains("3.12-pingreq<span class=\"totals\">3 cases: <b class=\"t-fail\">2 fail</b> <b class=\"t-known\">1 known</b></span>"),
        "{dom}"
    );
    assert!(
        dom.contains(
            "3.14-disconnect<span class=\"totals\">2 cases: <b class=\"t-pass\">2 pass</b></span>"
        ),
        "{dom}"
    );
    assert_eq!(text_of(&dom, "showing"), "Showing all 5 cases.");

    // A filter through the fragment: only the failures remain.
    let filtered = chromium(&dir, &format!("{url}#filter=fail"), &["--dump-dom"]);
    assert!(filtered.contains("data-filter=\"fail\""), "{filtered}");
    assert_eq!(text_of(&filtered, "showing"), "Showing 2 of 5 cases: fail.");
    assert!(!row_tag(&filtered, "case-shared-3.12-pingreq-pingresp-5.0").contains("hidden"));
    assert!(row_tag(&filtered, "case-shared-3.12-pingreq-pingresp-3.1.1").contains("hidden"));
    assert!(
        row_tag(&filtered, "case-shared-3.14-disconnect-reserved-flags-5.0").contains("hidden")
    );
    assert!(
        filtered.contains("<section data-group=\"\" class=\"section\" id=\"section-3.14-disconnect\" hidden=\"\">"),
        "a section with nothing to show is hidden: {filtered}"
    );

    let png = dir.join("report.png");
    chromium(
        &dir,
        &url,
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", png.display()),
        ],
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 10_000,
        "it shows something: {} bytes",
        bytes.len()
    );
}
