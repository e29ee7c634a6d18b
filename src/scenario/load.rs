//! Scenario files on disk: reading one, finding them under directories, and
//! the stable id of each.

use std::path::{Path, PathBuf};

use super::{parse_scenario, ParseError, Scenario};

/// Reads a scenario file; `id` is derived from its path.
pub fn load_file(path: &Path) -> Result<Scenario, ParseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ParseError::new(&file, None, format!("cannot read the scenario file: {e}")))?;
    let mut s = parse_scenario(&file, &text)?;
    s.id = scenario_id(path, None);
    Ok(s)
}

/// Every scenario under `paths` (files, or directories searched recursively
/// for `*.yaml` / `*.yml`), sorted by file name. All parse errors are returned.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Scenario>, Vec<ParseError>> {
    let mut files: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            if let Err(e) = walk(p, &mut found) {
                errors.push(ParseError::new(
                    p.display().to_string(),
                    None,
                    format!("cannot read the directory: {e}"),
                ));
            }
            files.extend(found.into_iter().map(|f| (f, Some(p.clone()))));
        } else if p.exists() {
            files.push((p.clone(), None));
        } else {
            errors.push(ParseError::new(
                p.display().to_string(),
                None,
                "no such file or directory; give scenario files or directories holding *.yaml",
            ));
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::new();
    for (f, root) in files {
        match load_file(&f) {
            Ok(mut s) => {
                s.id = scenario_id(&f, root.as_deref());
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

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The path below the last `scenarios` component, else below `root`, else
/// the file stem; without extension, with `/` separators.
pub(crate) fn scenario_id(path: &Path, root: Option<&Path>) -> String {
    let no_ext = path.with_extension("");
    let comps: Vec<String> = no_ext
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(i) = comps.iter().rposition(|c| c == "scenarios") {
        let rest = comps.get(i + 1..).unwrap_or(&[]);
        if !rest.is_empty() {
            return rest.join("/");
        }
    }
    if let Some(rel) = root.and_then(|r| no_ext.strip_prefix(r).ok()) {
        let s: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if !s.is_empty() {
            return s.join("/");
        }
    }
    no_ext.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
