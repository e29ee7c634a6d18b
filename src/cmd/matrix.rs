//! `mqtt-harness matrix FILE --html F --json F`: the scenario suite against
//! several brokers, compared statement by statement.
//!
//! FILE (YAML) lists the brokers; paths in it are relative to its directory:
//!
//! ```yaml
//! targets:
//!   - name: mosquitto 2.0.11
//!     url: mqtt://127.0.0.1:1883          # run the suite against it…
//!     profile: mosquitto/profile.yaml
//!     baseline: mosquitto/baseline.yaml
//!     jobs: 1                             # optional: cases at once (default --jobs)
//!   - name: aedes 1.2.0
//!     report: aedes/report.json           # …or read a committed `run --json` report
//!     baseline: aedes/baseline.yaml
//! ```
//!
//! `--from-reports [NAME=]FILE…` adds brokers from reports without a FILE
//! (the name defaults to the report's directory for `…/NAME/report.json`,
//! else its file stem, and a `baseline.yaml` beside the report is its
//! baseline). Brokers run one after the other, each through the library
//! (`run::run`), so their timings do not disturb each other.
//!
//! Exit status: 0 every broker conforms or diverges only as its baseline
//! says (and the baseline is exact: no stale entry, none fixed), 1
//! otherwise, 2 bad input, 3 a broker could not be run against (every case,
//! or some, could not run).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{CmdError, Status};
use crate::net::Target;
use crate::report::{html, json};
use crate::run::{self as runner, RunOptions};
use crate::{baseline, profile, scenario};

pub mod compare;
pub mod page;

use compare::{Column, Matrix};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The targets file (YAML): `targets: [{name, url | report, profile?, baseline?}]`.
    pub file: Option<PathBuf>,
    /// Brokers from `run --json` reports, not run: [NAME=]FILE (repeatable
    /// after the flag). A baseline.yaml beside a report is its baseline.
    #[arg(long = "from-reports", num_args = 1.., value_name = "[NAME=]FILE")]
    pub from_reports: Vec<String>,
    /// Write the self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the JSON comparison to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Scenario files or directories (repeatable; default scenarios/).
    #[arg(long = "scenarios", value_name = "PATH")]
    pub scenarios: Vec<PathBuf>,
    /// Only scenarios whose id, file or name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Cases run at once against each broker (default: as `run`).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Deadline of each expect step and connection attempt (300ms, 5s…).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Cut every `expect_silence` longer than this to this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_silence: Option<Duration>,
    /// Also write each run broker's reports here: DIR/NAME.json and DIR/NAME.html.
    #[arg(long, value_name = "DIR")]
    pub write_reports: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    scenario::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration; write e.g. 500ms or 5s"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    targets: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    profile: Option<PathBuf>,
    #[serde(default)]
    baseline: Option<PathBuf>,
    #[serde(default)]
    report: Option<PathBuf>,
    /// Cases at once against this broker (one that leaks state between
    /// concurrent cases runs them one at a time); default --jobs.
    #[serde(default)]
    jobs: Option<usize>,
}

/// Where one broker's results come from.
#[derive(Debug)]
enum Source {
    Run {
        target: Target,
        profile: Option<PathBuf>,
        jobs: Option<usize>,
    },
    Report(PathBuf),
}

#[derive(Debug)]
struct Broker {
    name: String,
    source: Source,
    baseline: Option<PathBuf>,
}

/// The brokers of a targets file's text; `file` names it in errors and
/// `dir` anchors its relative paths.
fn parse_targets(file: &str, dir: &Path, text: &str) -> Result<Vec<Broker>, String> {
    const SHAPE: &str =
        "a targets file is `targets:` and a list of `{name, url | report, profile?, baseline?}`";
    let f: TargetsFile = serde_norway::from_str(text).map_err(|e| match e.location() {
        Some(l) => format!("{file}:{}:{}: {e}; {SHAPE}", l.line(), l.column()),
        None => format!("{file}: {e}; {SHAPE}"),
    })?;
    if f.targets.is_empty() {
        return Err(format!("{file}: `targets` is empty; {SHAPE}"));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for e in f.targets {
        if !names.insert(e.name.clone()) {
            return Err(format!("{file}: two targets are named `{}`", e.name));
        }
        let at = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        let source = match (e.url, e.report) {
            (Some(url), None) => Source::Run {
                target: Target::parse(&url)
                    .map_err(|m| format!("{file}: target `{}`: {m}", e.name))?,
                profile: e.profile.map(at),
                jobs: e.jobs,
            },
            (None, Some(report)) => Source::Report(at(report)),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{file}: target `{}` has both `url` and `report`: give `url` to run the suite, or `report` to read a run's JSON report",
                    e.name
                ))
            }
            (None, None) => {
                return Err(format!(
                    "{file}: target `{}` has neither `url` (run the suite against it) nor `report` (a `run --json` report)",
                    e.name
                ))
            }
        };
        out.push(Broker {
            name: e.name,
            source,
            baseline: e.baseline.map(at),
        });
    }
    Ok(out)
}

/// `[NAME=]FILE` of `--from-reports`.
fn report_broker(arg: &str) -> Broker {
    let (name, path) = match arg.split_once('=') {
        Some((n, p)) if !n.is_empty() && !n.contains('/') => {
            (Some(n.to_string()), PathBuf::from(p))
        }
        _ => (None, PathBuf::from(arg)),
    };
    let name = name.unwrap_or_else(|| {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(arg);
        let dir = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|s| s.to_str());
        match dir {
            Some(d) if stem == "report" => d.to_string(),
            _ => stem.to_string(),
        }
    });
    let beside = path.with_file_name("baseline.yaml");
    Broker {
        name,
        baseline: beside.is_file().then_some(beside),
        source: Source::Report(path),
    }
}

fn read(path: &Path, what: &str) -> Result<String, CmdError> {
    std::fs::read_to_string(path)
        .map_err(|e| CmdError::Usage(format!("cannot read the {what} {}: {e}", path.display())))
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}

fn summary_line(c: &Column) -> String {
    let t = &c.cases;
    format!(
        "{} pass, {} fail, {} known, {} skip, {} error in {:.1} s",
        t.pass,
        t.fail,
        t.known,
        t.skip,
        t.error,
        c.duration_ms as f64 / 1000.0
    )
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let mut brokers = Vec::new();
    if let Some(file) = &args.file {
        let text = read(file, "targets file")?;
        let dir = file.parent().unwrap_or(Path::new("."));
        brokers =
            parse_targets(&file.display().to_string(), dir, &text).map_err(CmdError::Usage)?;
    }
    for arg in &args.from_reports {
        brokers.push(report_broker(arg));
    }
    if brokers.is_empty() {
        return Err(CmdError::Usage(
            "no brokers: give a targets file, or --from-reports with `run --json` reports".into(),
        ));
    }
    if let Some(dup) = duplicate_name(&brokers) {
        return Err(CmdError::Usage(format!(
            "two brokers are named `{dup}`: name reports with NAME=FILE"
        )));
    }

    // What every broker needs before anything runs: bad input fails at once.
    let mut baselines = Vec::new();
    for b in &brokers {
        baselines.push(match &b.baseline {
            Some(p) => Some(
                baseline::parse(&p.display().to_string(), &read(p, "baseline")?)
                    .map_err(CmdError::Usage)?,
            ),
            None => None,
        });
    }
    let mut profiles = Vec::new();
    for b in &brokers {
        profiles.push(match &b.source {
            Source::Run {
                profile: Some(p), ..
            } => Some(Arc::new(
                profile::load_profile(p).map_err(|e| CmdError::Usage(e.to_string()))?,
            )),
            _ => None,
        });
    }
    let runs = brokers
        .iter()
        .any(|b| matches!(b.source, Source::Run { .. }));
    let scenarios = if runs {
        let all = super::load_scenarios(&args.scenarios)?;
        runner::select(all, args.filter.as_deref(), &[])
    } else {
        Vec::new()
    };
    let rt = if runs {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?,
        )
    } else {
        None
    };
    if let Some(dir) = &args.write_reports {
        std::fs::create_dir_all(dir)
            .map_err(|e| CmdError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    }

    let total = brokers.len();
    let mut columns = Vec::new();
    for (i, ((b, base), prof)) in brokers.iter().zip(&baselines).zip(profiles).enumerate() {
        let (report, source) = match (&b.source, &rt) {
            (Source::Report(path), _) => {
                let text = read(path, "report")?;
                let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    CmdError::Usage(format!(
                        "{}:{}:{}: {e}; a report is what `run --json FILE` writes",
                        path.display(),
                        e.line(),
                        e.column()
                    ))
                })?;
                (v, path.display().to_string())
            }
            (Source::Run { target, jobs, .. }, Some(rt)) => {
                write!(out, "[{}/{total}] {} at {target}: ", i + 1, b.name)?;
                out.flush()?;
                let opts = RunOptions {
                    jobs: jobs.or(args.jobs).unwrap_or_else(runner::default_jobs),
                    step_timeout: args.timeout,
                    max_silence: args.max_silence,
                    profile: prof,
                    ..RunOptions::new(target.clone())
                };
                let mut report = rt.block_on(runner::run(scenarios.clone(), &opts, |_| {}));
                if let Some(base) = base {
                    report.baseline = base.known.clone();
                    report.intermittent = base.intermittent.clone();
                    report.known_reasons = base.reasons.clone();
                }
                report.suite = super::scenario_source(&args.scenarios);
                if let Some(dir) = &args.write_reports {
                    let stem = dir.join(slug(&b.name));
                    write_file(
                        &stem.with_extension("json"),
                        "report",
                        json::render(&report),
                    )?;
                    write_file(
                        &stem.with_extension("html"),
                        "report",
                        html::render(&report),
                    )?;
                }
                (json::to_json(&report), target.to_string())
            }
            (Source::Run { .. }, None) => continue,
        };
        let column = compare::column(&b.name, &source, &report, base.as_ref())
            .map_err(|e| CmdError::Usage(format!("{}: {e}", source)))?;
        if matches!(b.source, Source::Run { .. }) {
            writeln!(out, "{}", summary_line(&column))?;
        } else {
            writeln!(
                out,
                "[{}/{total}] {} from {source}: {}",
                i + 1,
                b.name,
                summary_line(&column)
            )?;
        }
        if let Some(why) = &column.unreachable {
            writeln!(out, "      could not run: {why}")?;
        }
        for (id, p) in &column.baseline.fixed {
            writeln!(out, "      fixed: {id} [{}] passes now: remove it from the baseline (or mark it intermittent)", p.as_str())?;
        }
        for (id, p) in &column.baseline.stale {
            writeln!(
                out,
                "      stale: {id} [{}] is in the baseline but matches no case of the run",
                p.as_str()
            )?;
        }
        columns.push(column);
    }

    let matrix = Matrix::new(columns);
    if let Some(path) = &args.json {
        write_file(path, "JSON matrix", page::render_json(&matrix))?;
    }
    if let Some(path) = &args.html {
        write_file(path, "HTML matrix", page::render_html(&matrix))?;
    }
    match matrix.exit_code() {
        0 => Ok(Status::Pass),
        3 => {
            let down: Vec<String> = matrix
                .columns
                .iter()
                .filter(|c| c.unreachable.is_some() || c.cases.error > 0)
                .map(|c| match &c.unreachable {
                    Some(why) => format!("{}: {why}", c.name),
                    None => format!("{}: {} case(s) could not run", c.name, c.cases.error),
                })
                .collect();
            Err(CmdError::Runtime(format!(
                "a broker could not be run against:\n  {}",
                down.join("\n  ")
            )))
        }
        _ => Ok(Status::Fail),
    }
}

fn duplicate_name(brokers: &[Broker]) -> Option<String> {
    let mut seen = BTreeSet::new();
    brokers
        .iter()
        .find(|b| !seen.insert(b.name.as_str()))
        .map(|b| b.name.clone())
}

fn write_file(path: &Path, what: &str, text: String) -> Result<(), CmdError> {
    std::fs::write(path, text).map_err(|e| {
        CmdError::Usage(format!(
            "cannot write the {what} to {}: {e}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_targets_file_and_its_errors() {
        let dir = Path::new("/m");
        let b = parse_targets(
            "m.yaml",
            dir,
            "targets:\n  - name: a\n    url: mqtt://127.0.0.1:1883\n    profile: a/profile.yaml\n    jobs: 1\n  - name: b\n    report: b/report.json\n    baseline: /abs/b.yaml\n",
        )
        .unwrap();
        assert_eq!(b.len(), 2);
        match &b[0].source {
            Source::Run {
                target,
                profile,
                jobs,
            } => {
                assert_eq!((target.port, *jobs), (1883, Some(1)));
                assert_eq!(profile.as_deref(), Some(Path::new("/m/a/profile.yaml")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&b[1].source, Source::Report(p) if p == Path::new("/m/b/report.json")));
        assert_eq!(b[1].baseline.as_deref(), Some(Path::new("/abs/b.yaml")));

        let e = parse_targets("m.yaml", dir, "targets:\n  - name: a\n    utl: x\n").unwrap_err();
        assert!(
            e.starts_with("m.yaml:3:") && e.contains("unknown field `utl`"),
            "{e}"
        );
        let e = parse_targets("m.yaml", dir, "targets:\n  - name: a\n").unwrap_err();
        assert!(e.contains("neither `url`"), "{e}");
        let e = parse_targets(
            "m.yaml",
            dir,
            "targets:\n  - {name: a, url: \"mqtt://h:1\"}\n  - {name: a, url: \"mqtt://h:2\"}\n",
        )
        .unwrap_err();
        assert!(e.contains("two targets are named `a`"), "{e}");
        let e = parse_targets(
            "m.yaml",
            dir,
            "targets:\n  - {name: a, url: \"http://h\"}\n",
        )
        .unwrap_err();
        assert!(e.starts_with("m.yaml: target `a`: "), "{e}");
    }

    #[test]
    fn report_names() {
        assert_eq!(report_broker("targets/aedes/report.json").name, "aedes");
        assert_eq!(report_broker("out/run-2.json").name, "run-2");
        assert_eq!(report_broker("x=out/run-2.json").name, "x");
        assert_eq!(slug("RabbitMQ 3.10 + mqtt"), "rabbitmq-3.10---mqtt");
    }
}
