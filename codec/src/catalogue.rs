//! The statement catalogue: one entry per normative statement of MQTT 3.1.1 and
//! MQTT 5.0, keyed by the standards' own ids (`MQTT-x.y.z-n`).
//!
//! The data lives in `codec/spec/mqtt-3.1.1.tsv` and `codec/spec/mqtt-5.0.tsv`
//! (columns `id section level binds wire summary`, tab-separated, header first).
//! Both files are compiled into the crate and parsed lazily, once, on first use.
//! Summaries are the project's own wording, not text from the standards.
//!
//! MQTT 3.1 has no numbered statements of its own; it is checked against the
//! 3.1.1 catalogue (see [`Protocol::catalogue_version`]).

use std::fmt;
use std::sync::OnceLock;

use crate::Protocol;

const V3_1_1_TSV: &str = include_str!("../spec/mqtt-3.1.1.tsv");
const V5_TSV: &str = include_str!("../spec/mqtt-5.0.tsv");
const UNCHECKED_TSV: &str = include_str!("../spec/unchecked.tsv");

/// Known alternative spellings of catalogue ids: (catalogue, alias, canonical id).
///
/// The body of MQTT 5.0 numbers the transport statement `MQTT-4.2-1`, its
/// Appendix B `MQTT-4.2.0-1`; the catalogue uses the former.
const ALIASES: &[(Protocol, &str, &str)] = &[(Protocol::V5, "MQTT-4.2.0-1", "MQTT-4.2-1")];

/// Misprinted ids of the 3.1.1 standard, mapped to the ids the catalogue uses
/// (compared after an optional `MQTT-` prefix has been removed).
const MISPRINTS: &[(&str, &str)] = &[
    ("3.1.2.7", "3.1.2-7"),
    ("3-8.3-4", "3.8.3-4"),
    ("3.3.1.-1", "3.3.1-1"),
];

/// The strength of a normative statement (its strongest keyword).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Must,
    MustNot,
    Should,
    ShouldNot,
    May,
}

impl Level {
    /// "MUST", "MUST NOT", "SHOULD", "SHOULD NOT" or "MAY".
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::MustNot => "MUST NOT",
            Level::Should => "SHOULD",
            Level::ShouldNot => "SHOULD NOT",
            Level::May => "MAY",
        }
    }

    /// Parses the catalogue's level column; RFC 2119 synonyms are accepted too.
    fn parse(s: &str) -> Option<Level> {
        let s = s.trim();
        let is = |k: &str| s.eq_ignore_ascii_case(k);
        if is("MUST") || is("REQUIRED") || is("SHALL") {
            Some(Level::Must)
        } else if is("MUST NOT") || is("SHALL NOT") {
            Some(Level::MustNot)
        } else if is("SHOULD") || is("RECOMMENDED") {
            Some(Level::Should)
        } else if is("SHOULD NOT") || is("NOT RECOMMENDED") {
            Some(Level::ShouldNot)
        } else if is("MAY") || is("OPTIONAL") {
            Some(Level::May)
        } else {
            None
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who has to obey a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binds {
    Server,
    Client,
    Both,
}

impl Binds {
    /// "server", "client" or "both".
    pub fn as_str(self) -> &'static str {
        match self {
            Binds::Server => "server",
            Binds::Client => "client",
            Binds::Both => "both",
        }
    }

    fn parse(s: &str) -> Option<Binds> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("server") {
            Some(Binds::Server)
        } else if s.eq_ignore_ascii_case("client") {
            Some(Binds::Client)
        } else if s.eq_ignore_ascii_case("both") {
            Some(Binds::Both)
        } else {
            None
        }
    }
}

impl fmt::Display for Binds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a harness talking to a broker can check a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The broker's compliance is observable on the wire.
    Yes,
    /// A client-side rule: checked by sending a violating packet and expecting
    /// the broker to refuse it.
    Reject,
    /// Not observable from the wire.
    No,
}

impl Wire {
    /// "yes", "reject" or "no".
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Yes => "yes",
            Wire::Reject => "reject",
            Wire::No => "no",
        }
    }

    fn parse(s: &str) -> Option<Wire> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("yes") {
            Some(Wire::Yes)
        } else if s.eq_ignore_ascii_case("reject") {
            Some(Wire::Reject)
        } else if s.eq_ignore_ascii_case("no") {
            Some(Wire::No)
        } else {
            None
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One normative statement of a standard.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The standard's id, e.g. `MQTT-3.1.2-3`.
    pub id: &'static str,
    /// `Protocol::V3_1_1` or `Protocol::V5`.
    pub protocol: Protocol,
    /// The section the statement appears in, e.g. `3.1.2.3`.
    pub section: &'static str,
    pub level: Level,
    pub binds: Binds,
    pub wire: Wire,
    /// A one-line summary in the project's own words.
    pub summary: &'static str,
}

/// All statements of the catalogue governing `protocol`, in the standard's order.
/// MQTT 3.1 uses the 3.1.1 catalogue.
pub fn statements(protocol: Protocol) -> &'static [Statement] {
    static V3_1_1: OnceLock<Vec<Statement>> = OnceLock::new();
    static V5: OnceLock<Vec<Statement>> = OnceLock::new();
    match protocol.catalogue_version() {
        Protocol::V5 => V5.get_or_init(|| parse_catalogue(V5_TSV, Protocol::V5)),
        _ => V3_1_1.get_or_init(|| parse_catalogue(V3_1_1_TSV, Protocol::V3_1_1)),
    }
}

/// A statement the catalogue marks observable on the wire that no scenario
/// can check after all, and why (`codec/spec/unchecked.tsv`: columns `id
/// protocol reason`, header first, `#` lines are comments).
#[derive(Debug, Clone)]
pub struct Unchecked {
    pub id: &'static str,
    /// `Protocol::V3_1_1` or `Protocol::V5`.
    pub protocol: Protocol,
    /// Why, in the project's own words.
    pub reason: &'static str,
}

/// Every statement judged not checkable by a scenario, in file order.
pub fn unchecked() -> &'static [Unchecked] {
    static ROWS: OnceLock<Vec<Unchecked>> = OnceLock::new();
    ROWS.get_or_init(|| parse_unchecked(UNCHECKED_TSV))
}

/// Why statement `id` of `protocol`'s catalogue is not checked by a scenario,
/// where the project judges it cannot be.
pub fn unchecked_reason(protocol: Protocol, id: &str) -> Option<&'static str> {
    let version = protocol.catalogue_version();
    unchecked()
        .iter()
        .find(|u| u.protocol == version && u.id == id)
        .map(|u| u.reason)
}

fn parse_unchecked(text: &'static str) -> Vec<Unchecked> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let mut fields = line.split('\t');
            let id = fields.next()?.trim();
            let protocol = Protocol::parse(fields.next()?.trim())?;
            let reason = fields.next()?.trim();
            (fields.next().is_none() && !reason.is_empty()).then_some(Unchecked {
                id,
                protocol,
                reason,
            })
        })
        .collect()
}

/// The statement `id` of the catalogue governing `protocol`.
///
/// `id` is matched exactly first; failing that, it is normalised with
/// [`normalize_id`] (so `"3.1.2-3"` works) and known alternative numberings
/// (5.0's `MQTT-4.2.0-1`) are resolved.
pub fn lookup(protocol: Protocol, id: &str) -> Option<&'static Statement> {
    let catalogue = statements(protocol);
    if let Some(found) = catalogue.iter().find(|s| s.id == id) {
        return Some(found);
    }
    let key = normalize_id(id)?;
    let version = protocol.catalogue_version();
    let key = ALIASES
        .iter()
        .find(|(p, alias, _)| *p == version && *alias == key)
        .map_or(key.as_str(), |(_, _, canonical)| canonical);
    catalogue.iter().find(|s| s.id == key)
}

/// The statement `id` in every catalogue that has it: 3.1.1 first, then 5.0.
pub fn lookup_any(id: &str) -> Vec<&'static Statement> {
    [Protocol::V3_1_1, Protocol::V5]
        .into_iter()
        .filter_map(|p| lookup(p, id))
        .collect()
}

/// Normalise user input like "mqtt-3.1.2-3" or "3.1.2-3" to "MQTT-3.1.2-3".
///
/// Accepts surrounding whitespace and brackets (`[MQTT-3.1.2-3]`), a missing or
/// lower-case `MQTT-` prefix, leading zeros, and the misprints of the 3.1.1
/// standard (`3.1.2.7`, `3-8.3-4`, `3.3.1.-1`). Returns `None` unless the
/// input has the shape `<digits>(.<digits>)*-<digits>`; it does not check that
/// the id exists (use [`lookup`] or [`lookup_any`] for that).
pub fn normalize_id(s: &str) -> Option<String> {
    let mut body = s.trim();
    body = body.strip_prefix('[').unwrap_or(body);
    body = body.strip_suffix(']').unwrap_or(body).trim();
    if let Some(rest) = strip_prefix_ignore_case(body, "mqtt-") {
        body = rest;
    }
    if let Some((_, fixed)) = MISPRINTS.iter().find(|(bad, _)| *bad == body) {
        body = fixed;
    }
    let (section, number) = body.rsplit_once('-')?;
    let mut out = String::with_capacity(body.len() + 5);
    out.push_str("MQTT-");
    for (i, part) in section.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(digits(part)?);
    }
    out.push('-');
    out.push_str(digits(number)?);
    Some(out)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// `part` without leading zeros (keeping at least one digit), if it is a
/// non-empty run of ASCII digits.
fn digits(part: &str) -> Option<&str> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = part.trim_start_matches('0');
    Some(if trimmed.is_empty() { "0" } else { trimmed })
}

/// Parses one catalogue file; malformed rows and the header are skipped.
fn parse_catalogue(text: &'static str, protocol: Protocol) -> Vec<Statement> {
    text.lines()
        .filter_map(|line| parse_row(line, protocol))
        .collect()
}

fn parse_row(line: &'static str, protocol: Protocol) -> Option<Statement> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = line.split('\t');
    let id = fields.next()?.trim();
    let section = fields.next()?.trim();
    let level = Level::parse(fields.next()?)?;
    let binds = Binds::parse(fields.next()?)?;
    let wire = Wire::parse(fields.next()?)?;
    let summary = fields.next()?.trim();
    if fields.next().is_some() || section.is_empty() || summary.is_empty() {
        return None;
    }
    // Ids must already be in canonical form; this also rejects the header row.
    if normalize_id(id).as_deref() != Some(id) {
        return None;
    }
    Some(Statement {
        id,
        protocol,
        section,
        level,
        binds,
        wire,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Data rows of a TSV file: every non-empty line but the header.
    fn data_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    #[test]
    fn header_is_as_documented() {
        for text in [V3_1_1_TSV, V5_TSV] {
            assert_eq!(
                text.lines().next(),
                Some("id\tsection\tlevel\tbinds\twire\tsummary")
            );
        }
    }

    #[test]
    fn every_row_parses() {
        for (text, protocol) in [(V3_1_1_TSV, Protocol::V3_1_1), (V5_TSV, Protocol::V5)] {
            for line in data_lines(text) {
                assert!(
                    parse_row(line, protocol).is_some(),
                    "{protocol}: row does not parse: {line:?}"
                );
            }
            assert_eq!(statements(protocol).len(), data_lines(text).len());
        }
    }

    #[test]
    fn every_unchecked_row_names_an_observable_statement() {
        assert_eq!(UNCHECKED_TSV.lines().next(), Some("id\tprotocol\treason"));
        let rows: Vec<&str> = data_lines(UNCHECKED_TSV)
            .into_iter()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(unchecked().len(), rows.len(), "a row does not parse");
        let mut seen = HashSet::new();
        for u in unchecked() {
            assert!(
                matches!(u.protocol, Protocol::V3_1_1 | Protocol::V5),
                "{}: protocol {}",
                u.id,
                u.protocol
            );
            let st = statements(u.protocol).iter().find(|s| s.id == u.id);
            // A test of the committed catalogue files: a failing row is what it reports.
            let st = st.unwrap_or_else(|| panic!("{} is not a {} statement", u.id, u.protocol));
            assert_ne!(
                st.wire,
                Wire::No,
                "{} {} is already marked not observable",
                u.id,
                u.protocol
            );
            assert!(
                seen.insert((u.id, u.protocol)),
                "{} {} twice",
                u.id,
                u.protocol
            );
            assert!(
                u.reason.split_whitespace().count() >= 8,
                "{}: say why",
                u.id
            );
            assert_eq!(unchecked_reason(u.protocol, u.id), Some(u.reason));
        }
        assert_eq!(unchecked_reason(Protocol::V3_1_1, "MQTT-3.1.2-3"), None);
    }

    #[test]
    fn counts() {
        assert_eq!(statements(Protocol::V3_1_1).len(), 141);
        assert_eq!(statements(Protocol::V5).len(), 251);
        // 3.1 shares the 3.1.1 catalogue.
        assert!(std::ptr::eq(
            statements(Protocol::V3_1),
            statements(Protocol::V3_1_1)
        ));
    }

    #[test]
    fn wire_totals_match_reference() {
        let count = |p, w| statements(p).iter().filter(|s| s.wire == w).count();
        assert_eq!(count(Protocol::V3_1_1, Wire::Yes), 104);
        assert_eq!(count(Protocol::V3_1_1, Wire::Reject), 25);
        assert_eq!(count(Protocol::V3_1_1, Wire::No), 12);
        assert_eq!(count(Protocol::V5, Wire::Yes), 202);
        assert_eq!(count(Protocol::V5, Wire::Reject), 40);
        assert_eq!(count(Protocol::V5, Wire::No), 9);
    }

    #[test]
    fn ids_are_unique_and_canonical() {
        for protocol in [Protocol::V3_1_1, Protocol::V5] {
            let mut seen = HashSet::new();
            for s in statements(protocol) {
                assert!(seen.insert(s.id), "{protocol}: duplicate id {}", s.id);
                assert_eq!(s.protocol, protocol);
                assert_eq!(normalize_id(s.id).as_deref(), Some(s.id));
                assert!(!s.summary.contains('\t'));
            }
        }
    }

    #[test]
    fn summaries_are_one_short_line() {
        for protocol in [Protocol::V3_1_1, Protocol::V5] {
            for s in statements(protocol) {
                let words = s.summary.split_whitespace().count();
                assert!((6..=25).contains(&words), "{}: {words} words", s.id);
            }
        }
    }

    #[test]
    fn numbering_quirks() {
        // Implied levels of keyword-less statements.
        assert_eq!(
            lookup(Protocol::V3_1_1, "MQTT-2.3.1-4").map(|s| s.level),
            Some(Level::Must)
        );
        assert_eq!(
            lookup(Protocol::V5, "MQTT-3.1.2-12").map(|s| s.level),
            Some(Level::Must)
        );
        assert_eq!(
            lookup(Protocol::V5, "MQTT-3.8.3-4").map(|s| s.level),
            Some(Level::MustNot)
        );
        // 5.0 transport statement under both numberings.
        let transport = lookup(Protocol::V5, "MQTT-4.2-1").map(|s| s.id);
        assert_eq!(transport, Some("MQTT-4.2-1"));
        assert_eq!(
            lookup(Protocol::V5, "MQTT-4.2.0-1").map(|s| s.id),
            transport
        );
        assert!(lookup(Protocol::V3_1_1, "MQTT-4.2.0-1").is_none());
        // 3.1.1 misprints resolve to the catalogue ids. (Built at run time:
        // the id scanner of tests/catalogue_ids.rs would read a bogus id in it.)
        let misprint = format!("[MQTT-{}]", "3-8.3-4");
        assert_eq!(
            lookup(Protocol::V3_1_1, &misprint).map(|s| s.id),
            Some("MQTT-3.8.3-4")
        );
        assert_eq!(
            lookup(Protocol::V3_1_1, "MQTT-3.3.1.-1").map(|s| s.id),
            Some("MQTT-3.3.1-1")
        );
        assert_eq!(
            lookup(Protocol::V3_1_1, "MQTT-3.1.2.7").map(|s| s.id),
            Some("MQTT-3.1.2-7")
        );
    }

    #[test]
    fn lookup_by_version() {
        let s = lookup(Protocol::V3_1, "MQTT-3.1.2-3");
        assert_eq!(s.map(|s| s.protocol), Some(Protocol::V3_1_1));
        assert_eq!(
            lookup(Protocol::V5, "mqtt-3.1.2-30").map(|s| s.id),
            Some("MQTT-3.1.2-30")
        );
        assert!(lookup(Protocol::V3_1_1, "MQTT-3.1.2-30").is_none());
        assert!(lookup(Protocol::V5, "no such id").is_none());
    }

    #[test]
    fn lookup_any_orders_3_1_1_first() {
        let both: Vec<_> = lookup_any("3.1.2-3").iter().map(|s| s.protocol).collect();
        assert_eq!(both, vec![Protocol::V3_1_1, Protocol::V5]);
        let only5: Vec<_> = lookup_any("MQTT-1.5.5-1")
            .iter()
            .map(|s| s.protocol)
            .collect();
        assert_eq!(only5, vec![Protocol::V5]);
        // Built at run time so that the id scanner does not see a bogus id here.
        let bogus = format!("MQTT-{}", "9.9.9-9");
        assert!(lookup_any(&bogus).is_empty());
    }

    #[test]
    fn normalize() {
        let cases = [
            ("mqtt-3.1.2-3", Some("MQTT-3.1.2-3")),
            ("3.1.2-3", Some("MQTT-3.1.2-3")),
            ("  [MQTT-3.1.2-3] ", Some("MQTT-3.1.2-3")),
            ("Mqtt-4.2-1", Some("MQTT-4.2-1")),
            ("3.01.2-03", Some("MQTT-3.1.2-3")),
            ("4.1.0-1", Some("MQTT-4.1.0-1")),
            ("3.1.2.7", Some("MQTT-3.1.2-7")),
            ("3-8.3-4", Some("MQTT-3.8.3-4")),
            ("3.3.1.-1", Some("MQTT-3.3.1-1")),
            ("", None),
            ("MQTT-", None),
            ("3.1.2", None),
            ("3.1.2-", None),
            ("-3", None),
            ("3..2-1", None),
            ("3.1.2-x", None),
            ("3.1.2-3-4", None),
            ("MQTT 3.1.2-3", None),
            ("é3.1-1", None),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_id(input).as_deref(), want, "input {input:?}");
        }
    }

    #[test]
    fn malformed_rows_are_skipped() {
        let text: &'static str = "id\tsection\tlevel\tbinds\twire\tsummary\n\
            MQTT-1.5.3-1\t1.5.3\tMUST\tboth\tyes\tA well-formed row.\r\n\
            MQTT-1.5.3-2\t1.5.3\tMUST\tboth\n\
            MQTT-1.5.3-3\t1.5.3\tOUGHT\tboth\tyes\tUnknown level.\n\
            MQTT-1.5.3-3\t1.5.3\tMUST\teveryone\tyes\tUnknown binds.\n\
            MQTT-1.5.3-3\t1.5.3\tMUST\tboth\tmaybe\tUnknown wire.\n\
            MQTT-1.5.3-3\t1.5.3\tMUST\tboth\tyes\tToo\tmany fields.\n\
            1.5.3-3\t1.5.3\tMUST\tboth\tyes\tNot canonical.\n\
            MQTT-1.5.3-3\t\tMUST\tboth\tyes\tNo section.\n\
            MQTT-1.5.3-3\t1.5.3\tMUST\tboth\tyes\t\n\
            \n\
            MQTT-2.2.2-1\t2.2.2\tshould not\tclient\tno\tLower-case level.\n";
        let parsed = parse_catalogue(text, Protocol::V3_1_1);
        let ids: Vec<_> = parsed.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec!["MQTT-1.5.3-1", "MQTT-2.2.2-1"]);
        assert_eq!(parsed[0].summary, "A well-formed row.");
        assert_eq!(parsed[1].level, Level::ShouldNot);
        assert_eq!(parsed[1].binds, Binds::Client);
        assert_eq!(parsed[1].wire, Wire::No);
    }

    #[test]
    fn level_parsing_and_names() {
        for level in [
            Level::Must,
            Level::MustNot,
            Level::Should,
            Level::ShouldNot,
            Level::May,
        ] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        for binds in [Binds::Server, Binds::Client, Binds::Both] {
            assert_eq!(Binds::parse(binds.as_str()), Some(binds));
        }
        for wire in [Wire::Yes, Wire::Reject, Wire::No] {
            assert_eq!(Wire::parse(wire.as_str()), Some(wire));
        }
        assert_eq!(Level::parse("SHALL NOT"), Some(Level::MustNot));
        assert_eq!(Level::parse("MUSTNOT"), None);
    }
}
