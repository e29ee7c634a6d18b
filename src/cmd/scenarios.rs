//! `mqtt-harness scenarios export DIR`: writes the scenario library built
//! into the binary to DIR, to read, edit or extend it (`run DIR` then runs it).

use std::io::{Read, Write};
use std::path::PathBuf;

use super::{CmdError, Status};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Write the built-in scenario library (YAML files and READMEs) to DIR,
    /// creating it; files already there and identical are left alone.
    Export {
        /// Where to write it, e.g. `scenarios`.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    match &args.action {
        Action::Export { dir } => {
            let written = crate::library::export(dir).map_err(CmdError::Usage)?;
            writeln!(
                out,
                "wrote {} file(s) to {}; run them with `mqtt-harness run {}`",
                written.len(),
                dir.display(),
                dir.display()
            )?;
            Ok(Status::Pass)
        }
    }
}
