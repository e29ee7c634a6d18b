//! The scenario library built into the binary, so that `cargo install` alone
//! gives a working tool: `run` and `coverage` use it when they are given no
//! path and there is no `scenarios/` directory where they run (a directory,
//! or paths given, always win), and `scenarios export DIR` writes it out.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir, File};

use crate::scenario::{self, ParseError, Scenario};

static SCENARIOS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");

/// What reports call the built-in library.
pub const NAME: &str = "built-in scenarios";

fn files() -> Vec<&'static File<'static>> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<&'static File<'static>>) {
        out.extend(dir.files());
        for d in dir.dirs() {
            walk(d, out);
        }
    }
    let mut out = Vec::new();
    walk(&SCENARIOS, &mut out);
    out.sort_by_key(|f| f.path());
    out
}

fn is_scenario(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// The built-in scenarios, ids and file names as if read from `scenarios/`.
pub fn load() -> Result<Vec<Scenario>, Vec<ParseError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files().into_iter().filter(|f| is_scenario(f.path())) {
        let file = Path::new("scenarios").join(f.path()).display().to_string();
        let parsed = match f.contents_utf8() {
            Some(text) => scenario::parse_scenario(&file, text),
            None => Err(ParseError {
                file: file.clone(),
                pos: None,
                message: "is not UTF-8".into(),
                hint: None,
            }),
        };
        match parsed {
            Ok(mut s) => {
                let id: Vec<String> = f
                    .path()
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                s.id = id.join("/");
                out.push(s);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The text of the built-in scenario `file` (`scenarios/shared/…/x.yaml`,
/// as [`load`] names it), for pages that show a scenario beside its run.
pub fn source(file: &str) -> Option<&'static str> {
    let inner = Path::new(file).strip_prefix("scenarios").ok()?;
    SCENARIOS.get_file(inner)?.contents_utf8()
}

/// Writes the library (scenarios and their README files) under `dir`,
/// creating it; refuses to overwrite a file that differs. Returns the files written.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for f in files() {
        let path = dir.join(f.path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        match std::fs::read(&path) {
            Ok(old) if old == f.contents() => continue,
            Ok(_) => {
                return Err(format!(
                    "{} exists and differs from the built-in scenario; \
                     export into an empty directory, or remove it first",
                    path.display()
                ))
            }
            Err(_) => {}
        }
        std::fs::write(&path, f.contents())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_library_is_the_scenarios_directory() {
        let built_in = super::load().expect("the built-in scenarios parse");
        let on_disk = crate::scenario::load_paths(&["scenarios".into()]).expect("scenarios/");
        let ids = |v: &[crate::scenario::Scenario]| {
            v.iter()
                .map(|s| (s.id.clone(), s.file.clone()))
                .collect::<Vec<_>>()
        };
        assert!(!built_in.is_empty());
        assert_eq!(ids(&built_in), ids(&on_disk));
    }
}
