//! `mqtt-harness book DIR`: the site it writes, checked as files — every
//! statement of both catalogues has its anchor, every checked statement
//! links to the scenarios that check it, the scenario pages hold their
//! exchanges with the reference broker, every link of every page (and of
//! the search index) resolves to a file and an anchor that exist, and no
//! page reaches for the network — and how it refuses a bad DIR.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use mqtt_codec::catalogue;
use mqtt_harness::book;
use support::{TempDir, BIN};

/// Held while the whole library runs: two runs at once on a loaded machine
/// would crowd the spec timers of the keep-alive scenarios.
static WHOLE_LIBRARY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn harness(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the harness runs")
}

/// The book was written: exit status 0, or 1 with the cases that did not
/// pass against the reference broker named. A few scenarios of the library
/// race on a loaded machine (a second CONNECT taking over before the
/// broker has read the first connection's DISCONNECT); what is checked here
/// is the book, which is written either way.
fn written(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(1) => assert!(
            err.contains("did not pass against the reference broker (their pages show how)"),
            "{err}"
        ),
        other => panic!("exit status {other:?}: {err}"),
    }
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wrote "));
}

/// The book of the whole library, built once for every test here (in the
/// target's scratch directory: a static is never dropped to clean up).
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("book");
        let _ = std::fs::remove_dir_all(&dir);
        let _one = WHOLE_LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
        let out = harness(&["book", &dir.display().to_string()]);
        written(&out);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("wrote "), "{text}");
        assert!(
            text.contains("real brokers from targets/matrix.json"),
            "{text}"
        );
        dir
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file below `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)
            .expect("a readable directory")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The values of attribute `attr` (`href`, `src`, `id`) in `html`, unescaped.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let end = rest.find('"').expect("a closed attribute");
        out.push(
            rest[..end]
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        );
        rest = &rest[end..];
    }
    out
}

/// `base/../x` → `x`; `None` where it climbs out of the site.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Checks every link: each one's file exists in the site and, with a
/// fragment, has an element with that id. Returns the links checked.
fn check_links(site: &Path) -> usize {
    let all = files(site);
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for f in all
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "html"))
    {
        let set: BTreeSet<String> = attrs(&read(&site.join(f)), "id").into_iter().collect();
        ids.insert(f.clone(), set);
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    let mut links: Vec<(PathBuf, String)> = Vec::new();
    for f in ids.keys() {
        let html = read(&site.join(f));
        for l in attrs(&html, "href").into_iter().chain(attrs(&html, "src")) {
            links.push((f.clone(), l));
        }
    }
    // The search index's urls are relative to the site's root.
    let index = read(&site.join("search-index.js"));
    let json = index
        .split_once("window.BOOK_INDEX = ")
        .map(|(_, j)| j.trim_end().trim_end_matches(';'))
        .expect("the index assigns BOOK_INDEX");
    let entries: serde_json::Value = serde_json::from_str(json).expect("the index is JSON");
    for e in entries.as_array().expect("a list") {
        links.push((
            PathBuf::from("index.html"),
            e[3].as_str().expect("a url").to_string(),
        ));
    }
    for (from, link) in links {
        checked += 1;
        assert!(
            !link.contains("://") && !link.starts_with("//"),
            "{}: an outside link {link}",
            from.display()
        );
        let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
        let target = if file.is_empty() {
            Some(from.clone())
        } else {
            normalize(&from.parent().unwrap_or(Path::new("")).join(file))
        };
        let Some(target) = target.filter(|t| site.join(t).is_file()) else {
            broken.push(format!("{}: {link} (no such file)", from.display()));
            continue;
        };
        if !fragment.is_empty() && !ids.get(&target).is_some_and(|s| s.contains(fragment)) {
            broken.push(format!("{}: {link} (no such anchor)", from.display()));
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken links:\n{}",
        broken.len(),
        broken.join("\n")
    );
    checked
}

#[test]
fn every_link_resolves_and_nothing_comes_from_the_network() {
    let site = built();
    let n = check_links(site);
    assert!(n > 10_000, "the pages link a lot: {n}");
}

#[test]
fn every_statement_has_its_anchor_and_every_checked_one_links_to_its_scenarios() {
    let site = built();
    let coverage = harness(&["coverage", "--json"]);
    let coverage: serde_json::Value =
        serde_json::from_slice(&coverage.stdout).expect("coverage --json");
    let mut checked = 0;
    for p in book::VERSIONS {
        for st in catalogue::statements(p) {
            let href = book::statement_href("", p, st.id).expect("a catalogue statement");
            let (file, id) = href.split_once('#').expect("a fragment");
            let page = read(&site.join(file));
            let at = page
                .find(&format!("<article class=\"statement\" id=\"{id}\""))
                .unwrap_or_else(|| panic!("{id} [{p}] has no block in {file}"));
            let block = &page[at..at + page[at..].find("</article>").expect("closed")];
            assert!(block.contains(&book::esc(st.summary)), "{id}: {block}");
            let row = coverage["statements"]
                .as_array()
                .expect("statements")
                .iter()
                .find(|r| r["id"] == st.id && r["protocol"] == p.as_str())
                .unwrap_or_else(|| panic!("{id} [{p}] in coverage"));
            let scenarios = row["scenarios"].as_array().expect("a list");
            if scenarios.is_empty() {
                let reason = row["reason"].as_str().expect("a reason");
                assert!(
                    block.contains("Not checked by a scenario: "),
                    "{id}: {block}"
                );
                assert!(
                    block.contains(&book::esc(reason.trim_end_matches('.'))),
                    "{id} [{p}] gives coverage's reason {reason}: {block}"
                );
            } else {
                checked += 1;
                for s in scenarios {
                    let s = s.as_str().expect("an id");
                    assert!(
                        block.contains(&format!("\">{s}</a>")),
                        "{id} [{p}] links to {s}: {block}"
                    );
                }
                assert!(block.contains("reference broker: "), "{block}");
            }
        }
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn a_scenario_page_shows_its_yaml_beside_its_exchanges_field_by_field() {
    let site = built();
    let page = read(&site.join("scenarios/shared--3.12-pingreq--pingresp.html"));
    assert!(
        page.contains("<h1>PINGREQ is answered with PINGRESP</h1>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"ln\" id=\"L13\"> 13</span>   - c: { send: PINGREQ }"),
        "the YAML with line numbers: {page}"
    );
    for p in ["3.1", "3.1.1", "5.0"] {
        assert!(
            page.contains(&format!("<section class=\"case\" id=\"case-{p}\"><h3><a class=\"anchor\" href=\"#case-{p}\">MQTT {p}</a> <span class=\"mark m-pass\">pass</span>")),
            "{p}: {page}"
        );
    }
    // Packet 1 of the 5.0 case: the CONNECT, its fields linked to the table
    // and to their statements; PINGRESP comes back, in hex on demand.
    let connect = &page[page.find("id=\"case-5.0-1\"").expect("packet 1")..];
    assert!(
        connect.contains("<b class=\"ptype\">CONNECT</b>"),
        "{connect}"
    );
    assert!(connect.contains(
        "<a class=\"field\" href=\"../spec/fields.html#f-CONNECT-protocol\">protocol</a></th><td><code>&quot;5.0&quot;</code></td>"
    ));
    assert!(connect
        .contains("<a class=\"st\" href=\"../spec/5.0-3.1.html#MQTT-3.1.2-1\">MQTT-3.1.2-1</a>"));
    assert!(page.contains("<b class=\"ptype\">PINGRESP</b>"));
    assert!(page.contains(
        "<details class=\"hex\"><summary>hex · 2 bytes</summary><pre>d0 00</pre></details>"
    ));
    assert!(page.contains(
        "<code>--violate MQTT-3.12.4-1</code>: the reference broker never answers PINGREQ"
    ));
    // Bytes sent raw on purpose: what a receiver makes of them, and the rule.
    let raw = read(&site.join("scenarios/shared--1.5-strings--null-in-topic.html"));
    assert!(raw.contains("<b class=\"ptype\">raw bytes</b>"), "{raw}");
    assert!(raw.contains(
        "<p class=\"raw\">Raw bytes: a receiver refuses them at byte 5: topic: contains U+0000, against <a class=\"st\" href=\"../spec/5.0-1.5.html#MQTT-1.5.4-2\">MQTT-1.5.4-2</a>.</p>"
    ), "{raw}");
    assert!(
        raw.contains("<p class=\"meta brokers\">Real brokers (<code>targets/matrix.json</code>): fails on rumqttd 0.20.0 (5.0) (known).</p>"),
        "{raw}"
    );
    // The statement links back.
    let chapter = read(&site.join("spec/5.0-3.12.html"));
    assert!(chapter.contains(
        "<a class=\"case\" href=\"../scenarios/shared--3.12-pingreq--pingresp.html#case-5.0\">5.0</a> <span class=\"mark m-pass\">pass</span>"
    ));
    assert!(
        chapter.contains("<th>mosquitto 2.0.11</th>"),
        "real brokers: {chapter}"
    );
    // The field table links to the statement.
    let fields = read(&site.join("spec/fields.html"));
    assert!(fields.contains("<tr id=\"f-PUBLISH-topic\">"));
    // …and back to the scenarios whose exchanges show the field.
    let username = &fields[fields
        .find("<tr id=\"f-CONNECT-username\">")
        .expect("a row")..];
    let username = &username[..username.find("</tr>").expect("closed")];
    assert!(
        username.contains("<a href=\"../scenarios/shared--3.2-connack--bad-password.html\">shared/3.2-connack/bad-password</a>"),
        "{username}"
    );
    let index = read(&site.join("search-index.js"));
    assert!(index.contains(
        "[\"statement 5.0\",\"MQTT-3.12.4-1\",\"Server answers each PINGREQ with a PINGRESP."
    ));
}

fn refused(out: &Output, message: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(message), "{err}");
}

#[test]
fn a_dir_that_is_not_empty_is_refused_unless_forced_and_then_only_the_books_files_change() {
    let dir = TempDir::new("book-force");
    let site = dir.path.join("site");
    std::fs::create_dir_all(&site).expect("a dir");
    std::fs::write(site.join("mine.txt"), "keep me").expect("a file");
    std::fs::write(site.join("index.html"), "old").expect("a file");
    let shown = site.display().to_string();
    let one = "scenarios/shared/3.12-pingreq/pingresp.yaml";
    let out = harness(&["book", &shown, "--scenarios", one]);
    refused(
        &out,
        &format!("error: {shown} is not empty; give a new or empty directory, or --force"),
    );
    assert_eq!(read(&site.join("index.html")), "old", "nothing written");

    let out = harness(&["book", &shown, "--scenarios", one, "--force", "--no-matrix"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 scenarios,\n3 cases recorded"));
    assert_eq!(read(&site.join("mine.txt")), "keep me");
    assert!(read(&site.join("index.html")).contains("no real brokers' results were given"));
    check_links(&site);
}

#[test]
fn a_dir_that_cannot_be_one_and_a_bad_matrix_are_refused_before_anything_runs() {
    let dir = TempDir::new("book-bad");
    let file = dir.path.join("file");
    std::fs::write(&file, "x").expect("a file");
    let out = harness(&["book", &file.display().to_string()]);
    refused(&out, "is not a directory; give a directory for the book");
    let below = file.join("site");
    let out = harness(&["book", &below.display().to_string()]);
    refused(&out, &format!("error: cannot write {}: ", below.display()));
    let out = harness(&[
        "book",
        &dir.path.join("a").display().to_string(),
        "--matrix",
        &file.display().to_string(),
    ]);
    refused(
        &out,
        "is not the JSON that `mqtt-harness matrix --json` writes",
    );
    let out = harness(&[
        "book",
        &dir.path.join("b").display().to_string(),
        "--matrix",
        "no/such.json",
    ]);
    refused(&out, "cannot read no/such.json");
}

#[test]
fn the_link_checker_finds_a_missing_file_and_a_missing_anchor() {
    let dir = TempDir::new("book-links");
    let site = &dir.path;
    std::fs::create_dir_all(site.join("spec")).expect("a dir");
    std::fs::write(
        site.join("search-index.js"),
        "window.BOOK_INDEX = [[\"k\",\"t\",\"x\",\"spec/a.html#here\"]];\n",
    )
    .expect("a file");
    std::fs::write(
        site.join("spec/a.html"),
        "<p id=\"here\"><a href=\"../index.html\">x</a></p>",
    )
    .expect("a file");
    std::fs::write(
        site.join("index.html"),
        "<a href=\"spec/a.html#here\">ok</a>",
    )
    .expect("a file");
    assert_eq!(check_links(site), 2 + 1);
    for bad in ["spec/a.html#gone", "spec/b.html", "../outside.html"] {
        std::fs::write(site.join("index.html"), format!("<a href=\"{bad}\">x</a>"))
            .expect("a file");
        let caught = std::panic::catch_unwind(|| check_links(site));
        assert!(caught.is_err(), "{bad} is reported");
    }
}

#[test]
fn text_from_a_scenario_is_escaped_and_a_case_failing_on_the_reference_broker_is_shown_and_exits_1()
{
    let dir = TempDir::new("book-escape");
    let scenario = dir.path.join("odd <b>&.yaml");
    std::fs::write(
        &scenario,
        "name: \"</pre><script>alert(1)</script> & more\"\n\
         description: a \"quoted\" <i>description</i>\n\
         statements:\n  \"5.0\": [MQTT-3.12.4-1]\n\
         protocols: [\"5.0\"]\n\
         clients:\n  c: {}\n\
         steps:\n  - c: { send: PINGREQ }\n  - c: { expect: SUBACK, timeout: 300ms }\n",
    )
    .expect("a scenario");
    let site = dir.path.join("site");
    let out = harness(&[
        "book",
        &site.display().to_string(),
        "--no-matrix",
        "--scenarios",
        &scenario.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: 1 case(s) did not pass against the reference broker (their pages show how):\n  odd <b>&"),
        "{err}"
    );
    let page = read(&site.join("scenarios/odd__b__.html"));
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<i>"), "{page}");
    assert!(
        page.contains("<h1>&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</h1>"),
        "{page}"
    );
    assert!(
        page.contains("a &quot;quoted&quot; &lt;i&gt;description&lt;/i&gt;"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"mark m-fail\">fail</span>"),
        "{page}"
    );
    assert!(
        page.contains("<p class=\"why\">step 2 (line 10): expected SUBACK"),
        "{page}"
    );
    // The statement says its scenario failed there.
    let chapter = read(&site.join("spec/5.0-3.12.html"));
    assert!(
        chapter.contains("#case-5.0\">5.0</a> <span class=\"mark m-fail\">fail</span>"),
        "{chapter}"
    );
    let index = read(&site.join("search-index.js"));
    assert!(
        !index.contains('<'),
        "no tag can start in the index: {index}"
    );
    check_links(&site);
}

#[test]
fn away_from_a_checkout_the_book_shows_the_built_in_library_without_real_brokers() {
    let dir = TempDir::new("book-installed");
    let _one = WHOLE_LIBRARY.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BIN)
        .args(["book", "site"])
        .current_dir(&dir.path)
        .output()
        .expect("the harness runs");
    written(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no real brokers' results"), "{text}");
    let page = read(
        &dir.path
            .join("site/scenarios/shared--3.12-pingreq--pingresp.html"),
    );
    assert!(
        page.contains(
            "<span class=\"ln\" id=\"L1\">  1</span> name: PINGREQ is answered with PINGRESP"
        ),
        "the built-in YAML: {page}"
    );
}
