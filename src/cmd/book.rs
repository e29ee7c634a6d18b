//! `mqtt-harness book DIR`: the spec as a static site to read offline
//! (see [`crate::book`] for what it holds).
//!
//! ```text
//! $ mqtt-harness book /tmp/book
//! wrote 244 files to /tmp/book: 392 statements in 51 chapters, 187 scenarios,
//! 288 cases recorded against the reference broker (288 passed) in 4.5 s;
//! real brokers from targets/matrix.json
//! open /tmp/book/index.html
//! ```
//!
//! The library runs once against the embedded reference broker with every
//! exchange kept; the pages are then written from that one run.
//!
//! DIR is created if missing. An existing DIR that is not empty is refused
//! unless `--force` is given; then the book's own files are written over
//! and nothing else in DIR is touched or removed (pages of an older book
//! that the new one no longer has stay, unlinked).
//!
//! Exit status: 0 the book was written and every case passed or was skipped
//! against the reference broker; 1 it was written, but some case failed or
//! errored there (its page shows how); 2 bad input (DIR, a scenario, the
//! matrix file) or DIR could not be written; 3 the embedded broker could
//! not start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CmdError, Status};
use crate::book::{Book, Brokers};
use crate::results::Status as CaseStatus;

/// The real brokers' results `book` reads when given none, where they exist.
const DEFAULT_MATRIX: &str = "targets/matrix.json";

/// A scenario file larger than this is not shown (its run still is).
const MAX_SOURCE: u64 = 1024 * 1024;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The directory to write the site into (created if missing; must be
    /// empty unless --force).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Scenario files or directories (repeatable; default scenarios/, or the
    /// library built into the binary where there is none).
    #[arg(long = "scenarios", value_name = "PATH")]
    pub scenarios: Vec<PathBuf>,
    /// Real brokers' results: the JSON `mqtt-harness matrix --json` writes.
    /// Default: targets/matrix.json where it exists.
    #[arg(long, value_name = "FILE", conflicts_with = "no_matrix")]
    pub matrix: Option<PathBuf>,
    /// Leave real brokers' results out.
    #[arg(long)]
    pub no_matrix: bool,
    /// Write into a DIR that is not empty: the book's files are overwritten,
    /// nothing else is touched.
    #[arg(long)]
    pub force: bool,
    /// Deadline of each expect step of the recording run.
    #[arg(long, value_parser = super::run::parse_timeout, default_value = "5s")]
    pub timeout: Duration,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    prepare_dir(&args.dir, args.force)?;
    let brokers = brokers(args)?;
    let scenarios = super::load_scenarios(&args.scenarios)?;
    let sources = scenarios
        .iter()
        .filter_map(|s| source(&s.file).map(|text| (s.id.clone(), text)))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let started = Instant::now();
    let report = rt
        .block_on(super::mutate::run_with(
            scenarios.clone(),
            None,
            args.timeout,
            true,
        ))
        .map_err(CmdError::Runtime)?;
    let book = Book {
        scenarios,
        sources,
        report,
        brokers,
    };
    let pages = book.pages();
    for page in &pages {
        let path = args.dir.join(&page.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| cannot_write(parent, &e))?;
        }
        std::fs::write(&path, &page.contents).map_err(|e| cannot_write(&path, &e))?;
    }
    let cases = &book.report.cases;
    let passed = cases
        .iter()
        .filter(|c| c.status == CaseStatus::Pass)
        .count();
    let bad: Vec<String> = cases
        .iter()
        .filter(|c| matches!(c.status, CaseStatus::Fail | CaseStatus::Error))
        .map(|c| format!("{} [{}]: {}", c.id, c.protocol, c.status))
        .collect();
    let chapters = crate::book::chapters();
    writeln!(
        out,
        "wrote {} files to {}: {} statements in {} chapters, {} scenarios,\n{} cases recorded against the reference broker ({passed} passed) in {:.1} s;\n{}",
        pages.len(),
        args.dir.display(),
        chapters.iter().map(|c| c.statements.len()).sum::<usize>(),
        chapters.len(),
        book.scenarios.len(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        match &book.brokers {
            Some(b) => format!("real brokers from {}", b.source),
            None => "no real brokers' results".to_string(),
        }
    )?;
    writeln!(out, "open {}", args.dir.join("index.html").display())?;
    if bad.is_empty() {
        return Ok(Status::Pass);
    }
    eprintln!(
        "warning: {} case(s) did not pass against the reference broker (their pages show how):\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
    Ok(Status::Fail)
}

fn cannot_write(path: &Path, e: &std::io::Error) -> CmdError {
    CmdError::Usage(format!(
        "cannot write {}: {e}; give a directory you can write",
        path.display()
    ))
}

/// Checks DIR before anything runs: a directory (or nothing yet), empty
/// unless `force`, and writable. At most an empty DIR is left behind when
/// something fails later, which a second try accepts.
fn prepare_dir(dir: &Path, force: bool) -> Result<(), CmdError> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => {
            return Err(CmdError::Usage(format!(
                "{shown} is not a directory; give a directory for the book"
            )))
        }
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir)
                .map_err(|e| CmdError::Usage(format!("cannot read {shown}: {e}")))?;
            if entries.next().is_some() && !force {
                return Err(CmdError::Usage(format!(
                    "{shown} is not empty; give a new or empty directory, or --force to write \
                     the book's files into it (nothing else there is touched)"
                )));
            }
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| cannot_write(dir, &e))?;
    // A directory can exist and refuse files: try one, and take it away.
    let probe = dir.join(".mqtt-harness-book-probe");
    std::fs::write(&probe, b"").map_err(|e| cannot_write(dir, &e))?;
    std::fs::remove_file(&probe).map_err(|e| cannot_write(&probe, &e))?;
    Ok(())
}

/// The matrix given, or the default one where it exists (a broken default
/// is left out with a warning; a broken one given is an error).
fn brokers(args: &Args) -> Result<Option<Brokers>, CmdError> {
    if args.no_matrix {
        return Ok(None);
    }
    match &args.matrix {
        Some(path) => Brokers::read(path).map(Some).map_err(CmdError::Usage),
        None if Path::new(DEFAULT_MATRIX).is_file() => {
            match Brokers::read(Path::new(DEFAULT_MATRIX)) {
                Ok(b) => Ok(Some(b)),
                Err(e) => {
                    eprintln!("warning: real brokers left out: {e}");
                    Ok(None)
                }
            }
        }
        None => Ok(None),
    }
}

/// A scenario's YAML: its file, or the built-in library's copy.
fn source(file: &str) -> Option<String> {
    let path = Path::new(file);
    match std::fs::metadata(path) {
        Ok(m) if m.len() <= MAX_SOURCE => std::fs::read_to_string(path).ok(),
        Ok(_) => None,
        Err(_) => crate::library::source(file).map(str::to_string),
    }
}
