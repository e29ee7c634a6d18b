//! Where a report goes: a file (its directory created before the run, so
//! that a bad path fails before any case runs), or `-`, standard output.

use std::path::{Path, PathBuf};

/// A report's destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

impl Dest {
    /// `-` is standard output; for a file, its directory is created now and
    /// a path that cannot be a file is refused, naming `flag`.
    pub fn prepare(path: &Path, flag: &str) -> Result<Dest, String> {
        if path.as_os_str() == "-" {
            return Ok(Dest::Stdout);
        }
        if path.is_dir() {
            return Err(format!(
                "{flag} {}: is a directory; give a file name in it (or - for standard output)",
                path.display()
            ));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "{flag} {}: cannot create the directory {}: {e}",
                    path.display(),
                    dir.display()
                )
            })?;
        }
        Ok(Dest::File(path.to_path_buf()))
    }

    /// Writes `text`: to the file, or to `stdout`.
    pub fn write(
        &self,
        what: &str,
        text: &str,
        stdout: &mut dyn std::io::Write,
    ) -> Result<(), String> {
        match self {
            Dest::Stdout => stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write the {what} to standard output: {e}")),
            Dest::File(path) => std::fs::write(path, text)
                .map_err(|e| format!("cannot write the {what} to {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_directories_and_refuses_what_cannot_be_a_file() {
        let root = std::env::temp_dir().join(format!("mqtt-harness-dest-{}", std::process::id()));
        let file = root.join("a/b/report.json");
        assert_eq!(Dest::prepare(&file, "--json"), Ok(Dest::File(file.clone())));
        assert!(root.join("a/b").is_dir());
        let e = Dest::prepare(&root.join("a"), "--json").unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        std::fs::write(root.join("plain"), "").unwrap();
        let e = Dest::prepare(&root.join("plain/x.json"), "--junit").unwrap_err();
        assert!(e.starts_with("--junit "), "{e}");
        assert!(e.contains("cannot create the directory"), "{e}");
        assert_eq!(Dest::prepare(Path::new("-"), "--json"), Ok(Dest::Stdout));
        let _ = std::fs::remove_dir_all(root);
    }
}
