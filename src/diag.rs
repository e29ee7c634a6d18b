//! The one way an error in an input file is shown to people (after hurl
//! and rustc): what is wrong, `--> file:line:col`, the offending line with a
//! caret under the column, and what to do.
//!
//! ```text
//! unknown field `paylod` (did you mean `payload`?); a PUBLISH takes …
//!   --> packets.yaml:3:3
//!    |
//!  3 |   paylod: hi
//!    |   ^
//!    = help: …
//! ```

/// `title`, then where in `file` (1-based line and column) with the line
/// taken from `text`, then `hint`. Without a position: `file: title`.
pub fn render(
    title: &str,
    file: &str,
    at: Option<(usize, usize)>,
    text: Option<&str>,
    hint: Option<&str>,
) -> String {
    let Some((line, column)) = at else {
        let mut s = format!("{file}: {title}");
        if let Some(h) = hint {
            s.push_str(&format!("\n   = help: {h}"));
        }
        return s;
    };
    let mut s = format!("{title}\n  --> {file}:{line}:{column}");
    let gutter = line.to_string();
    let pad = " ".repeat(gutter.len());
    if let Some(src) = text.and_then(|t| t.lines().nth(line.saturating_sub(1))) {
        // Tabs stay tabs so that the caret lines up under them.
        let caret_at: String = src
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        s.push_str(&format!(
            "\n {pad} |\n {gutter} | {src}\n {pad} | {caret_at}^"
        ));
    }
    if let Some(h) = hint {
        s.push_str(&format!("\n {pad} = help: {h}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caret_under_the_column() {
        let text = "a: 1\nbb: 2\n";
        assert_eq!(
            render("bad", "f.yaml", Some((2, 2)), Some(text), Some("fix it")),
            "bad\n  --> f.yaml:2:2\n   |\n 2 | bb: 2\n   |  ^\n   = help: fix it"
        );
        assert_eq!(
            render("bad", "f.yaml", None, Some(text), None),
            "f.yaml: bad"
        );
    }
}
