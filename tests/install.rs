//! What a user who ran `cargo install` alone gets: the scenario library built
//! into the binary (and `scenarios export`), shell completions and a man page
//! generated from the flags, `explain` over the catalogue and its sections,
//! and `decode` finding the version in a CONNECT.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the mqtt-harness binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Output {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("install")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Pipes `input` into `program args`, returning its exit code and stderr.
fn pipe(program: &str, args: &[&str], input: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("it ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_a_scenarios_directory_the_built_in_library_runs() {
    let empty = scratch_dir("elsewhere");
    let out = run_in(
        &empty,
        &[
            "run",
            "--filter",
            "3.12-pingreq/pingresp",
            "--protocol",
            "5.0",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS  shared/3.12-pingreq/pingresp [5.0]"),
        "{}",
        out.stdout
    );
    let listed = run_in(&empty, &["run", "--list"]);
    let here = run(&["run", "--list"]);
    assert_eq!(listed.stdout, here.stdout, "the same library as scenarios/");

    let exported = empty.join("lib");
    let out = run_in(&empty, &["scenarios", "export", "lib"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("wrote "), "{}", out.stdout);
    assert!(exported.join("shared/3.12-pingreq/pingresp.yaml").is_file());
    assert!(exported.join("README.md").is_file());
    let again = run_in(&empty, &["scenarios", "export", "lib"]);
    assert_eq!(
        again.code, 0,
        "identical files are left alone: {}",
        again.stderr
    );
    std::fs::write(exported.join("README.md"), "changed").expect("write");
    let refused = run_in(&empty, &["scenarios", "export", "lib"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("exists and differs"),
        "{}",
        refused.stderr
    );
    let from_export = run_in(&empty, &["run", "lib", "--list"]);
    assert_eq!(
        from_export.stdout, here.stdout,
        "the export runs as the library does"
    );
}

#[test]
fn completions_are_scripts_the_shell_parses() {
    let out = run(&["completions", "bash"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("--wait-for-target"),
        "the run flags are in it"
    );
    let (code, err) = pipe("bash", &["-n"], &out.stdout);
    assert_eq!(code, 0, "bash parses it: {err}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("mqtt-harness"), "{shell}");
    }
    assert_eq!(run(&["completions", "tcsh"]).code, 2);
}

#[test]
fn man_pages_are_roff_that_groff_reads_without_a_warning() {
    for args in [&["man"][..], &["man", "run"]] {
        let out = run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains(".SH NAME"), "{}", out.stdout);
        let (code, err) = pipe("groff", &["-k", "-man", "-Tutf8", "-ww", "-z"], &out.stdout);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
    }
    let run_page = run(&["man", "run"]).stdout;
    assert!(run_page.contains(".TH mqtt-harness-run 1"), "{run_page}");
    assert!(run_page.contains("wait\\-for\\-target"), "{run_page}");
    assert!(
        run_page.contains("Exit status:"),
        "the exit status table is on the page"
    );
    let out = run(&["man", "nosuch"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("`nosuch` is not a subcommand"),
        "{}",
        out.stderr
    );
}

#[test]
fn explain_lists_the_catalogue_and_a_section() {
    let all = run(&["explain"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(
        all.stdout.lines().count(),
        141 + 251,
        "every statement of 3.1.1 and 5.0"
    );
    assert_eq!(run(&["explain", "--list"]).stdout, all.stdout);
    let v5 = run(&["explain", "--list", "--protocol", "5.0"]);
    assert_eq!(v5.stdout.lines().count(), 251);
    let section = run(&["explain", "3.3.1", "--protocol", "3.1.1"]);
    assert_eq!(section.code, 0, "{}", section.stderr);
    let ids: Vec<&str> = section
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        ids.contains(&"MQTT-3.3.1-4") && ids.contains(&"MQTT-3.3.1-12"),
        "{ids:?}"
    );
    assert!(
        ids.iter().all(|id| id.starts_with("MQTT-3.3.1-")),
        "{ids:?}"
    );
    assert!(
        section
            .stdout
            .starts_with("MQTT-3.3.1-1   3.1.1 3.3.1.1   MUST      "),
        "{}",
        section.stdout
    );
    let none = run(&["explain", "9.9"]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("no statement in section 9.9"),
        "{}",
        none.stderr
    );
}

#[test]
fn decode_takes_the_version_from_the_connect_it_starts_with() {
    let connect_5 = "101100044d5154540502003c00000474657374";
    let out = run(&["decode", "--json", connect_5]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("\"protocol\":\"5.0\""),
        "{}",
        out.stdout
    );
    let connect_311 = "101000044d5154540402003c000474657374";
    let out = run(&["decode", "--json", &format!("{connect_311} c000")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("\"protocol\":\"3.1.1\""),
        "{}",
        out.stdout
    );
    let out = run(&["decode", "--json", "c000"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("does not start with a CONNECT")
            && out.stderr.contains("give --protocol"),
        "{}",
        out.stderr
    );
    let out = run(&["decode", "--protocol", "3.1.1", "--json", "c000"]);
    assert_eq!(out.code, 0, "--protocol still works: {}", out.stderr);
}

#[test]
fn a_license_file_matches_the_manifest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("a LICENSE file");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}
