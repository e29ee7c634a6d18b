//! Topic names, topic filters and matching (section 4.7; shared subscriptions 4.8.2).

/// Why a topic name or filter is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Zero length (MQTT-4.7.3-1).
    Empty,
    /// A topic name containing `+` or `#`.
    WildcardInName,
    /// `#` that is not the whole last level (`a/#/b`, `a#`).
    MultiLevelMisplaced,
    /// `+` that does not fill a whole level (`a+`, `+b`).
    SingleLevelMisplaced,
    /// `$share/` followed by an empty share name (`$share//a`, `$share/`).
    ShareNameEmpty,
    /// A share name with `+` or `#`.
    ShareNameInvalid,
    /// `$share/name` without `/filter`.
    SharedFilterMissing,
}

impl TopicError {
    pub fn describe(self) -> &'static str {
        match self {
            TopicError::Empty => "is empty",
            TopicError::WildcardInName => "contains a wildcard character ('+' or '#')",
            TopicError::MultiLevelMisplaced => {
                "uses '#' somewhere other than as the whole last level"
            }
            TopicError::SingleLevelMisplaced => "uses '+' without it filling a whole level",
            TopicError::ShareNameEmpty => "is a shared subscription with an empty share name",
            TopicError::ShareNameInvalid => {
                "has a shared-subscription share name that contains '+' or '#'"
            }
            TopicError::SharedFilterMissing => {
                "is a shared subscription without a topic filter after the share name"
            }
        }
    }
}

/// Checks a topic name (as in PUBLISH, a will, a response topic). The
/// empty name is checked by the caller, since 5.0 allows it with a Topic Alias.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    // A fold without early exit vectorises; topic names are short.
    if name
        .bytes()
        .fold(false, |w, b| w | (b == b'+') | (b == b'#'))
    {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Whether any of the 16 bytes is NUL, `+` or `#` (non-zero if so).
/// Written as a fold without early exit so that it compiles to a few
/// vector instructions; so is [`which16`].
#[inline(always)]
fn special16(w: &[u8; 16]) -> u8 {
    w.iter().fold(0u8, |m, &c| {
        m | u8::from(c == 0) | u8::from(c == b'+') | u8::from(c == b'#')
    })
}

/// Whether every one of the 16 bytes is below 0x80: their OR, tested at the
/// top bit. A fold, so it stays in vector registers beside the scans of the
/// same window (the library's `is_ascii` works on 8-byte words, and the
/// compiler then took the window apart byte by byte for the scan).
#[inline(always)]
pub(crate) fn ascii16(w: &[u8; 16]) -> bool {
    w.iter().fold(0u8, |m, &c| m | c) < 0x80
}

/// Whether the 16 bytes hold a NUL (non-zero if so).
#[inline(always)]
fn nul16(w: &[u8; 16]) -> u8 {
    w.iter().fold(0u8, |m, &c| m | u8::from(c == 0))
}

/// Whether the 16 bytes hold `+` or `#` (non-zero if so).
#[inline(always)]
fn wild16(w: &[u8; 16]) -> u8 {
    w.iter()
        .fold(0u8, |m, &c| m | u8::from(c == b'+') | u8::from(c == b'#'))
}

/// Which of NUL (bit 0) and `+` or `#` (bit 1) the 16 bytes hold.
#[inline(always)]
fn which16(w: &[u8; 16]) -> u8 {
    w.iter().fold(0u8, |m, &c| {
        m | u8::from(c == 0) | (u8::from((c == b'+') | (c == b'#')) << 1)
    })
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A string shorter than sixteen bytes as two words that between them
/// hold every one of its bytes (overlapping where it is shorter than 16),
/// every other byte 0x01: ASCII, neither NUL nor a wildcard. A string that
/// short was copied into a padded window for the scan (a `memcpy` call) and
/// tested for ASCII byte by byte. `None` from sixteen bytes on.
#[inline(always)]
pub(crate) fn short_words(b: &[u8]) -> Option<(u64, u64)> {
    let n = b.len();
    let word8 = |at: usize| {
        b.get(at..at + 8)
            .and_then(|w| w.first_chunk::<8>())
            .map(|w| u64::from_le_bytes(*w))
    };
    let word4 = |at: usize| {
        b.get(at..at + 4)
            .and_then(|w| w.first_chunk::<4>())
            .map(|w| u64::from(u32::from_le_bytes(*w)) | (LO << 32))
    };
    match n {
        16.. => None,
        8.. => Some((word8(0)?, word8(n - 8)?)),
        4.. => Some((word4(0)?, word4(n - 4)?)),
        1.. => {
            // One to three bytes: the first, the middle and the last.
            let byte = |at: usize| u64::from(b.get(at).copied().unwrap_or(1));
            let w = (LO << 24) | byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16;
            Some((w, w))
        }
        0 => Some((LO, LO)),
    }
}

/// Whether any byte of `v` is zero (exact as a yes or no; which byte is
/// not told).
#[inline(always)]
fn zero_byte(v: u64) -> bool {
    v.wrapping_sub(LO) & !v & HI != 0
}

/// Whether every byte of the two words is below 0x80.
#[inline(always)]
pub(crate) fn words_ascii((x, y): (u64, u64)) -> bool {
    (x | y) & HI == 0
}

/// NUL (first) and wildcard (second) in the two words of [`short_words`].
#[inline(always)]
fn scan_words((x, y): (u64, u64)) -> (bool, bool) {
    let plus = LO * u64::from(b'+');
    let hash = LO * u64::from(b'#');
    let nul = zero_byte(x) | zero_byte(y);
    let wild =
        zero_byte(x ^ plus) | zero_byte(y ^ plus) | zero_byte(x ^ hash) | zero_byte(y ^ hash);
    (nul, wild)
}

/// One pass over `b`, sixteen bytes at a time: whether it holds a NUL byte
/// and whether it holds a wildcard (`+` or `#`).
#[inline(always)]
pub(crate) fn scan_nul_wildcard(b: &[u8]) -> (bool, bool) {
    let window = |c: &[u8]| special16(c.try_into().unwrap_or(&[1; 16]));
    let any = match (b.first_chunk::<16>(), b.last_chunk::<16>()) {
        // 16 to 32 bytes, the usual topic: two windows that overlap (which
        // changes nothing) and cover every byte.
        (Some(head), Some(tail)) if b.len() <= 32 => special16(head) | special16(tail),
        (Some(_), Some(tail)) => {
            let mut chunks = b.chunks_exact(16);
            let mut any = 0;
            for c in &mut chunks {
                any |= window(c);
            }
            any | special16(tail)
        }
        // Shorter: two words, padded with a byte that is none of the three.
        _ => match short_words(b) {
            Some(w) => return scan_words(w),
            // Not reached (every length below 16 has its words): the
            // second pass answers.
            None => 1,
        },
    };
    if any == 0 {
        return (false, false);
    }
    which(b)
}

/// Which of the two `b` holds (a topic name with a NUL or a wildcard comes
/// here): a second pass, as cheap as the first, kept out of the hot path.
#[inline(never)]
fn which(b: &[u8]) -> (bool, bool) {
    scan_filter(b)
}

/// [`scan_nul_wildcard`] for a topic filter, where a wildcard is common:
/// the one pass that tells NUL and wildcard apart, without the first pass
/// that only asks whether either is there.
#[inline(always)]
pub(crate) fn scan_filter(b: &[u8]) -> (bool, bool) {
    // The windows of `scan_nul_wildcard`, each call to `which16` written
    // out: through a closure parameter LLVM kept it out of line (a call of
    // about 20 instructions per window).
    let found = match (b.first_chunk::<16>(), b.last_chunk::<16>()) {
        // Two answers, each a fold to a flag: compared and masked per
        // window, where one fold to two bits needed a horizontal OR.
        (Some(head), Some(tail)) if b.len() <= 32 => {
            let nul = (nul16(head) | nul16(tail)) != 0;
            let wild = (wild16(head) | wild16(tail)) != 0;
            return (nul, wild);
        }
        (Some(_), Some(tail)) => {
            let mut chunks = b.chunks_exact(16);
            let mut found = 0;
            for c in &mut chunks {
                found |= which16(c.try_into().unwrap_or(&[1; 16]));
            }
            found | which16(tail)
        }
        // Shorter: as in `scan_nul_wildcard`.
        _ => match short_words(b) {
            Some(w) => return scan_words(w),
            // Not reached (every length below 16 has its words).
            None => {
                let wild = b.iter().any(|&c| c == b'+' || c == b'#');
                return (b.contains(&0), wild);
            }
        },
    };
    (found & 1 != 0, found & 2 != 0)
}

/// Checks a topic filter. With `shared` (5.0), `$share/{name}/{filter}` is
/// checked as a shared subscription.
pub fn validate_filter(filter: &str, shared: bool) -> Result<(), TopicError> {
    validate_filter_scanned(filter, shared, true)
}

/// [`validate_filter`] for a filter whose bytes are known to hold no `+`
/// or `#` when `wildcards` is false (the decoder's one pass over a string
/// tells it so): then only emptiness and the shared-subscription form are
/// left to check.
#[inline]
pub(crate) fn validate_filter_scanned(
    filter: &str,
    shared: bool,
    wildcards: bool,
) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    let plain = if shared {
        match split_shared(filter) {
            Some(Ok((_, f))) => f,
            Some(Err(e)) => return Err(e),
            None => filter,
        }
    } else {
        filter
    };
    if !wildcards || wildcards_placed(plain.as_bytes()) {
        return Ok(());
    }
    misplaced(plain)
}

/// Whether every `#` is the whole last level and every `+` a whole level:
/// the rule [`misplaced`] checks level by level, as a check of each pair of
/// neighbouring bytes `(x, y)`: no `#` may have a byte after it; a `+` may
/// be followed only by `/`; and a `+` or `#` may follow only a `/` (the
/// start and the end count as `/`). The pairs are taken sixteen at a time,
/// from two windows one byte apart, without early exit (it vectorises); the
/// last windows overlap the ones before, which checks some pairs twice.
#[inline]
fn wildcards_placed(b: &[u8]) -> bool {
    let Some(pairs) = b.len().checked_sub(1).filter(|&p| p > 0) else {
        return true;
    };
    if pairs <= 16 {
        // Padded with `/` pairs, which pass.
        let (mut x, mut y) = ([b'/'; 16], [b'/'; 16]);
        for (i, w) in b.windows(2).enumerate() {
            if let (Some(a), Some(c), [p, q]) = (x.get_mut(i), y.get_mut(i), w) {
                *a = *p;
                *c = *q;
            }
        }
        return !misplaced16(&x, &y);
    }
    let mut start = 0;
    loop {
        // Never past the last pair: `pairs > 16`.
        let at = start.min(pairs - 16);
        let x = b.get(at..at + 16).and_then(|w| w.first_chunk::<16>());
        let y = b.get(at + 1..at + 17).and_then(|w| w.first_chunk::<16>());
        match (x, y) {
            (Some(x), Some(y)) if !misplaced16(x, y) => {}
            _ => return false,
        }
        if at == pairs - 16 {
            return true;
        }
        start += 16;
    }
}

/// Whether any of the sixteen pairs `(x[i], y[i])` breaks the rule of
/// [`wildcards_placed`].
#[inline(always)]
fn misplaced16(x: &[u8; 16], y: &[u8; 16]) -> bool {
    x.iter().zip(y).fold(0u8, |bad, (&x, &y)| {
        bad | u8::from(x == b'#')
            | u8::from((x == b'+') & (y != b'/'))
            | u8::from(((y == b'+') | (y == b'#')) & (x != b'/'))
    }) != 0
}

/// Which wildcard of a filter is misplaced, level by level (the first
/// level at fault; `#` before `+` within it). `Ok` if none is.
#[cold]
fn misplaced(plain: &str) -> Result<(), TopicError> {
    let mut levels = plain.split('/').peekable();
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if level.contains('#') && (level != "#" || !last) {
            return Err(TopicError::MultiLevelMisplaced);
        }
        if level.contains('+') && level != "+" {
            return Err(TopicError::SingleLevelMisplaced);
        }
    }
    Ok(())
}

/// Splits `$share/{name}/{filter}` into the share name and the filter.
/// `None` when the filter is not a shared subscription at all.
pub fn split_shared(filter: &str) -> Option<Result<(&str, &str), TopicError>> {
    let rest = filter.strip_prefix("$share/")?;
    let Some((name, inner)) = rest.split_once('/') else {
        return Some(Err(if rest.is_empty() {
            TopicError::ShareNameEmpty
        } else if rest.contains(['+', '#']) {
            TopicError::ShareNameInvalid
        } else {
            TopicError::SharedFilterMissing
        }));
    };
    if name.is_empty() {
        return Some(Err(TopicError::ShareNameEmpty));
    }
    if name.contains(['+', '#']) {
        return Some(Err(TopicError::ShareNameInvalid));
    }
    if inner.is_empty() {
        return Some(Err(TopicError::SharedFilterMissing));
    }
    Some(Ok((name, inner)))
}

/// Whether a topic name matches a (non-shared) topic filter. Filters whose
/// first level is a wildcard do not match names beginning with `$`
/// (MQTT-4.7.2-1). Comparison is byte for byte, without normalisation (MQTT-4.7.3-4).
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether the filter contains a wildcard.
pub fn has_wildcard(filter: &str) -> bool {
    filter.bytes().any(|b| b == b'+' || b == b'#')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length around the 16- and 32-byte window edges, each of the
    /// three special bytes at every position.
    #[test]
    fn scan_finds_nul_and_wildcards_anywhere() {
        for len in 0..=80usize {
            let text = vec![b'a'; len];
            assert_eq!(scan_nul_wildcard(&text), (false, false), "{len}");
            for at in 0..len {
                for (byte, expect) in [
                    (0u8, (true, false)),
                    (b'+', (false, true)),
                    (b'#', (false, true)),
                ] {
                    let mut b = text.clone();
                    b[at] = byte;
                    assert_eq!(
                        scan_nul_wildcard(&b),
                        expect,
                        "len {len}, {byte:#x} at {at}"
                    );
                    assert_eq!(
                        scan_filter(&b),
                        expect,
                        "filter: len {len}, {byte:#x} at {at}"
                    );
                }
                // Both at once, the NUL anywhere after a wildcard.
                let mut b = text.clone();
                b[0] = b'#';
                b[at] = 0;
                let expect = (true, at != 0);
                assert_eq!(
                    scan_nul_wildcard(&b),
                    expect,
                    "len {len}, both, NUL at {at}"
                );
                assert_eq!(
                    scan_filter(&b),
                    expect,
                    "filter: len {len}, both, NUL at {at}"
                );
            }
        }
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "a//b",
            "sport/tennis/+",
            "$SYS/#",
        ] {
            assert_eq!(validate_filter(ok, true), Ok(()), "{ok}");
        }
        assert_eq!(validate_filter("", false), Err(TopicError::Empty));
        assert_eq!(
            validate_filter("a/#/b", false),
            Err(TopicError::MultiLevelMisplaced)
        );
        assert_eq!(
            validate_filter("a#", false),
            Err(TopicError::MultiLevelMisplaced)
        );
        assert_eq!(
            validate_filter("a+", false),
            Err(TopicError::SingleLevelMisplaced)
        );
        assert_eq!(
            validate_filter("+a/b", false),
            Err(TopicError::SingleLevelMisplaced)
        );
    }

    /// The wildcard check against the level-by-level rule, for every
    /// filter of up to eight bytes over `a / + #`, plain, after a share
    /// name, and padded on either side to lengths around the 16- and
    /// 32-byte windows; and the decoder's no-wildcard shortcut on them.
    #[test]
    fn wildcard_scan_matches_the_level_rule() {
        let alphabet = [b'a', b'/', b'+', b'#'];
        let mut filter = Vec::new();
        for len in 0..=8u32 {
            for n in 0..alphabet.len().pow(len) {
                filter.clear();
                let mut k = n;
                for _ in 0..len {
                    filter.push(alphabet[k % alphabet.len()]);
                    k /= alphabet.len();
                }
                // Test code: the alphabet is ASCII, so the bytes are UTF-8.
                let f = std::str::from_utf8(&filter).unwrap();
                let levels = if f.is_empty() {
                    Err(TopicError::Empty)
                } else {
                    misplaced(f)
                };
                assert_eq!(validate_filter(f, false), levels, "{f}");
                let wild = f.contains(['+', '#']);
                assert_eq!(validate_filter_scanned(f, false, wild), levels, "{f}");
                assert_eq!(
                    wildcards_placed(filter.as_slice()),
                    misplaced(f).is_ok(),
                    "{f}"
                );
                let shared = format!("$share/g/{f}");
                let expect = match split_shared(&shared) {
                    Some(Ok((_, inner))) => misplaced(inner),
                    Some(Err(e)) => Err(e),
                    // Test code: the string starts with `$share/` by construction.
                    None => unreachable!(),
                };
                assert_eq!(validate_filter(&shared, true), expect, "{shared}");
                assert_eq!(
                    validate_filter_scanned(&shared, true, wild),
                    expect,
                    "{shared}"
                );
            }
        }
    }

    /// The windowed wildcard check against the level-by-level rule for a
    /// `+` or `#` at every position, alone or beside a `/`, of plain
    /// filters of every length to 80 (across the 16-, 17- and 32-pair
    /// edges), and the filter scan against the name scan on them and on a
    /// NUL beside a `#`.
    #[test]
    fn wildcards_placed_matches_the_level_rule_at_every_length() {
        for len in 1..=80usize {
            let base: Vec<u8> = (0..len)
                .map(|i| if i % 5 == 4 { b'/' } else { b'a' })
                .collect();
            for at in 0..len {
                for (c, d) in [
                    (b'+', b'a'),
                    (b'#', b'a'),
                    (b'+', b'/'),
                    (b'#', b'/'),
                    (0, b'#'),
                ] {
                    for near in [at.wrapping_sub(1), at + 1] {
                        let mut f = base.clone();
                        if let Some(n) = f.get_mut(near) {
                            *n = d;
                        }
                        f[at] = c;
                        // Test code: the bytes are ASCII.
                        let s = std::str::from_utf8(&f).unwrap();
                        assert_eq!(wildcards_placed(&f), misplaced(s).is_ok(), "{s}");
                        assert_eq!(scan_filter(&f), scan_nul_wildcard(&f), "{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn shared() {
        assert_eq!(split_shared("$share/g/a/+"), Some(Ok(("g", "a/+"))));
        assert_eq!(split_shared("a/b"), None);
        assert_eq!(
            split_shared("$share//a"),
            Some(Err(TopicError::ShareNameEmpty))
        );
        assert_eq!(
            split_shared("$share/g"),
            Some(Err(TopicError::SharedFilterMissing))
        );
        assert_eq!(
            split_shared("$share/g+/a"),
            Some(Err(TopicError::ShareNameInvalid))
        );
        assert_eq!(
            validate_filter("$share/g/a#", true),
            Err(TopicError::MultiLevelMisplaced)
        );
        // Without shared-subscription support the name is an ordinary filter.
        assert_eq!(validate_filter("$share/g", false), Ok(()));
    }

    #[test]
    fn scan() {
        for len in 0..40usize {
            for at in 0..len {
                for (c, nul, wild) in [
                    (0u8, true, false),
                    (b'+', false, true),
                    (b'#', false, true),
                    (0x80, false, false),
                    (0xFF, false, false),
                    (b'/', false, false),
                ] {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    assert_eq!(scan_nul_wildcard(&v), (nul, wild), "{v:?}");
                    assert_eq!(scan_filter(&v), (nul, wild), "{v:?}");
                }
            }
            assert_eq!(scan_nul_wildcard(&vec![0x01; len]), (false, false));
        }
    }

    #[test]
    fn matching() {
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(matches("+", ""));
        assert!(!matches("a/+", "a"));
        assert!(matches("+/+", "/x"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(!matches("A", "a"));
    }
}
