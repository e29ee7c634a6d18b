//! Hex text ⇄ bytes, as people paste it: `30 03 00 01 61`, `30:03:00`,
//! `0x30 0x03`, `300300016`… Separators are whitespace, `:` and `,`; each
//! byte group may carry a `0x` prefix and must have an even number of digits.

use std::fmt;

/// Why a piece of text is not hex bytes; `position` is the 1-based character
/// index in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexError {
    pub position: usize,
    pub problem: HexProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexProblem {
    /// A character that is neither a hex digit nor a separator.
    NotHex(char),
    /// A group with an odd number of digits (`digits` long).
    OddDigits { group: String, digits: usize },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            HexProblem::NotHex(c) => write!(
                f,
                "{c:?} at character {} is not a hex digit (0-9, a-f) or a separator (space, ':' or ',')",
                self.position
            ),
            HexProblem::OddDigits { group, digits } => write!(
                f,
                "the group {group:?} starting at character {} has {digits} hex digit(s); \
                 every byte takes exactly two (write 06, not 6)",
                self.position
            ),
        }
    }
}

impl std::error::Error for HexError {}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ':' || c == ','
}

/// Parses hex text into bytes.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars.get(i).copied().is_some_and(is_separator) {
            i += 1;
            continue;
        }
        // One group: an optional 0x prefix, then hex digits up to a separator.
        let group_start = i;
        if chars.get(i) == Some(&'0') && matches!(chars.get(i + 1), Some('x' | 'X')) {
            i += 2;
        }
        let digits_start = i;
        let mut pending: Option<u8> = None;
        while let Some(&c) = chars.get(i) {
            if is_separator(c) {
                break;
            }
            let Some(d) = c.to_digit(16) else {
                return Err(HexError {
                    position: i + 1,
                    problem: HexProblem::NotHex(c),
                });
            };
            // to_digit(16) is below 16, so the cast cannot truncate.
            let d = d as u8;
            match pending.take() {
                None => pending = Some(d),
                Some(high) => out.push(high << 4 | d),
            }
            i += 1;
        }
        if pending.is_some() {
            return Err(HexError {
                position: group_start + 1,
                problem: HexProblem::OddDigits {
                    group: chars.get(group_start..i).unwrap_or(&[]).iter().collect(),
                    digits: i - digits_start,
                },
            });
        }
    }
    Ok(out)
}

/// Lower-case hex without separators: `300700`.
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Lower-case hex with a space between bytes: `30 07 00`.
pub fn spaced(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_spellings() {
        let want = vec![0x30, 0x03, 0x00, 0x01, 0x61];
        for text in [
            "30 03 00 01 61",
            "3003000161",
            "30:03:00:01:61",
            "0x30 0x03 0x00 0x01 0x61",
            "0x3003000161",
            " 30,03,\n00 01\t61 ",
            "30 03 00 01 61".to_uppercase().as_str(),
        ] {
            assert_eq!(parse(text), Ok(want.clone()), "{text:?}");
        }
        assert_eq!(parse(""), Ok(vec![]));
    }

    #[test]
    fn says_where_it_went_wrong() {
        let e = parse("30 0g").unwrap_err();
        assert_eq!(e.position, 5);
        assert_eq!(e.problem, HexProblem::NotHex('g'));
        let e = parse("30 6 00").unwrap_err();
        assert_eq!(e.position, 4);
        assert!(e.to_string().contains("write 06"), "{e}");
        let e = parse("0x6").unwrap_err();
        assert_eq!(e.position, 1);
    }

    #[test]
    fn formats() {
        assert_eq!(encode(&[0x30, 0xff, 0]), "30ff00");
        assert_eq!(spaced(&[0x30, 0xff, 0]), "30 ff 00");
        assert_eq!(spaced(&[]), "");
    }
}
