//! Reporters: sibling modules over one result model ([`crate::results`]).
//!
//! - [`console`]: one line per case as it ends, details of failures, a summary line;
//! - [`json`]: the `--json FILE` contract of DESIGN.md;
//! - [`junit`]: JUnit XML for CI (`--junit FILE`);
//! - [`html`]: a self-contained page (`--html FILE`);
//! - [`output`]: where each goes (a file, or `-` for standard output).

pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod output;
