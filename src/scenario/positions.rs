//! Where the steps of a scenario file start, for reports (`file:line:col`
//! of a failed step). Errors do not use this: they carry the position the
//! YAML parser gives the offending key or value.

use super::Pos;

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The positions of the items of the top-level `steps:` sequence (block style).
pub(crate) fn step_positions(text: &str) -> Vec<Pos> {
    let mut out = Vec::new();
    let mut in_steps = false;
    let mut item_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = indent_of(line);
        if !in_steps {
            if indent == 0 && (trimmed.starts_with("steps:") || trimmed.starts_with("\"steps\":")) {
                in_steps = true;
            }
            continue;
        }
        if indent == 0 && !trimmed.starts_with('-') {
            break;
        }
        if trimmed.starts_with("- ") || trimmed == "-" {
            let want = *item_indent.get_or_insert(indent);
            if indent == want {
                out.push(Pos {
                    line: i + 1,
                    column: indent + 1,
                });
            }
        }
    }
    out
}
