//! Every statement id cited in the project's sources and scenarios must exist in
//! the statement catalogue (3.1.1 or 5.0).
//!
//! The test walks `codec/src`, `reference-broker/src`, `src` and `scenarios/`
//! (relative to the workspace root; missing directories are fine), collects
//! every string of the form `MQTT-<digits>(.<digits>)*-<digits>`, and fails
//! with `file:line: id` for each one that no catalogue knows.

use std::fs;
use std::path::{Path, PathBuf};

use mqtt_codec::catalogue::lookup_any;

/// Directories scanned, relative to the workspace root.
const SCANNED: &[&str] = &["codec/src", "reference-broker/src", "src", "scenarios"];

/// The catalogue files themselves (never scanned), relative to the workspace root.
const EXCLUDED: &[&str] = &["codec/spec/mqtt-3.1.1.tsv", "codec/spec/mqtt-5.0.tsv"];

/// Every id in `text` as (1-based line number, id).
fn scan_ids(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let mut from = 0;
        while let Some(offset) = line[from..].find("MQTT-") {
            let start = from + offset;
            match match_id(bytes, start + "MQTT-".len()) {
                Some(end) => {
                    found.push((index + 1, line[start..end].to_string()));
                    from = end;
                }
                None => from = start + "MQTT-".len(),
            }
        }
    }
    found
}

/// Matches `<digits>(.<digits>)*-<digits>` at `pos`; returns the end offset.
fn match_id(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut i = digits(bytes, pos)?;
    while bytes.get(i) == Some(&b'.') {
        match digits(bytes, i + 1) {
            Some(end) => i = end,
            None => break,
        }
    }
    if bytes.get(i) != Some(&b'-') {
        return None;
    }
    digits(bytes, i + 1)
}

/// Matches one or more ASCII digits at `pos`; returns the end offset.
fn digits(bytes: &[u8], pos: usize) -> Option<usize> {
    let len = bytes
        .get(pos..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (len > 0).then_some(pos + len)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// All regular files under `dir`, recursively; skips hidden entries, `target`
/// directories and symbolic links. A missing directory yields nothing.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if name != "target" {
                files_under(&entry.path(), out);
            }
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

#[test]
fn cited_statement_ids_exist() {
    let root = workspace_root();
    let excluded: Vec<PathBuf> = EXCLUDED
        .iter()
        .filter_map(|p| root.join(p).canonicalize().ok())
        .collect();
    let mut files = Vec::new();
    for dir in SCANNED {
        files_under(&root.join(dir), &mut files);
    }

    let mut unknown = Vec::new();
    let mut checked = 0usize;
    for file in &files {
        if file
            .canonicalize()
            .is_ok_and(|canonical| excluded.contains(&canonical))
        {
            continue;
        }
        let Ok(bytes) = fs::read(file) else {
            continue;
        };
        if bytes.contains(&0) {
            continue; // binary file
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (line, id) in scan_ids(&text) {
            checked += 1;
            if lookup_any(&id).is_empty() {
                unknown.push(format!("{shown}:{line}: {id}"));
            }
        }
    }

    assert!(
        unknown.is_empty(),
        "{} of {checked} cited statement ids are in neither catalogue:\n{}",
        unknown.len(),
        unknown.join("\n")
    );
}

#[test]
fn scanner_reports_a_bogus_id() {
    let text = "fine\n// see MQTT-3.1.2-3 and also MQTT-9.9.9-9, then stop.\n";
    let ids = scan_ids(text);
    assert_eq!(
        ids,
        vec![
            (2, "MQTT-3.1.2-3".to_string()),
            (2, "MQTT-9.9.9-9".to_string())
        ]
    );
    let unknown: Vec<_> = ids
        .iter()
        .filter(|(_, id)| lookup_any(id).is_empty())
        .map(|(_, id)| id.as_str())
        .collect();
    assert_eq!(unknown, vec!["MQTT-9.9.9-9"]);
}

#[test]
fn scanner_shapes() {
    let ids = |t: &str| -> Vec<String> { scan_ids(t).into_iter().map(|(_, id)| id).collect() };
    assert_eq!(ids("[MQTT-4.2-1]."), vec!["MQTT-4.2-1"]);
    assert_eq!(ids("\"MQTT-3.14.4-3\","), vec!["MQTT-3.14.4-3"]);
    assert_eq!(ids("MQTT-1-2"), vec!["MQTT-1-2"]);
    assert_eq!(
        ids("MQTT-3.1.2-12x MQTT-3.1.2-1"),
        vec!["MQTT-3.1.2-12", "MQTT-3.1.2-1"]
    );
    assert_eq!(ids("MQTT-MQTT-3.1.2-3"), vec!["MQTT-3.1.2-3"]);
    assert!(ids("MQTT-3.1.2 MQTT- MQTT-3.1.2- MQTT-.1-1 mqtt-3.1.2-3 MQTT-3.3.1.-1").is_empty());
    assert!(ids("").is_empty());
}

#[test]
fn catalogue_is_visible_from_tests() {
    assert_eq!(lookup_any("MQTT-3.1.2-3").len(), 2);
    assert!(lookup_any("MQTT-9.9.9-9").is_empty());
}
