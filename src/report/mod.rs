//! Reporters: sibling modules over one result model ([`crate::results`]).
//!
//! - [`console`]: one line per case as it ends, details of failures, a summary line;
//! - [`json`]: the `--json FILE` contract of DESIGN.md.
//!
//! JUnit XML and HTML are to come as further siblings over the same model.

pub mod console;
pub mod json;
