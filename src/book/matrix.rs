//! Real brokers' results for the book: the committed comparison that
//! `mqtt-harness matrix --json` writes (`targets/matrix.json`), read as the
//! contract it is (fields may be added, so unknown ones are ignored).

use std::collections::HashMap;
use std::path::Path;

use mqtt_codec::Protocol;
use serde::Deserialize;

/// Larger than any comparison of a few brokers; checked before reading.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The brokers and their verdict on each (catalogue version, statement id).
#[derive(Debug, Clone, Default)]
pub struct Brokers {
    /// The file, as given.
    pub source: String,
    pub names: Vec<String>,
    /// One cell per broker, in `names` order; `None` where its run had no case citing it.
    pub cells: HashMap<(Protocol, String), Vec<Option<Cell>>>,
}

/// One broker's verdict on one statement.
#[derive(Debug, Clone, Deserialize)]
pub struct Cell {
    /// `pass`, `fail`, `known` (a baseline divergence), `skip` or `error`.
    pub status: String,
    /// The cases that failed it.
    #[serde(default)]
    pub cases: Vec<String>,
}

#[derive(Deserialize)]
struct File {
    brokers: Vec<Broker>,
    sections: Vec<Section>,
}

#[derive(Deserialize)]
struct Broker {
    name: String,
}

#[derive(Deserialize)]
struct Section {
    protocol: String,
    statements: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    cells: Vec<Option<Cell>>,
}

impl Brokers {
    /// The brokers on which case `name` (`id [protocol]`) failed, with the
    /// verdict (`fail`, or `known` where their baseline lists it), from the
    /// cases the matrix names on its failed statements.
    pub fn failing(&self, name: &str) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for cells in self.cells.values() {
            for (broker, cell) in self.names.iter().zip(cells) {
                let Some(cell) = cell else { continue };
                if cell.cases.iter().any(|c| c == name)
                    && !out.iter().any(|(b, _)| *b == broker.as_str())
                {
                    out.push((broker, &cell.status));
                }
            }
        }
        out.sort_by_key(|(b, _)| self.names.iter().position(|n| n == b));
        out
    }

    /// Reads `path`; the error says what is wrong and what to do.
    pub fn read(path: &Path) -> Result<Brokers, String> {
        let shown = path.display();
        let len = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {shown}: {e}; give the JSON `mqtt-harness matrix --json` wrote, or --no-matrix"))?
            .len();
        if len > MAX_BYTES {
            return Err(format!(
                "{shown} is {len} bytes, more than the {MAX_BYTES} a matrix of brokers takes; is it the right file?"
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        Brokers::parse(&shown.to_string(), &text)
    }

    /// Parses the text of a matrix JSON file named `source`.
    pub fn parse(source: &str, text: &str) -> Result<Brokers, String> {
        let file: File = serde_json::from_str(text).map_err(|e| {
            format!(
                "{source} is not the JSON that `mqtt-harness matrix --json` writes: {e} \
                 (line {}, column {}); regenerate it, or pass --no-matrix",
                e.line(),
                e.column()
            )
        })?;
        let names: Vec<String> = file.brokers.into_iter().map(|b| b.name).collect();
        let mut cells = HashMap::new();
        for section in file.sections {
            let Some(p) = Protocol::parse(&section.protocol) else {
                return Err(format!(
                    "{source}: `{}` is not a protocol version (3.1.1 or 5.0)",
                    section.protocol
                ));
            };
            for row in section.statements {
                if row.cells.len() != names.len() {
                    return Err(format!(
                        "{source}: statement {} has {} cells for {} brokers",
                        row.id,
                        row.cells.len(),
                        names.len()
                    ));
                }
                cells.insert((p.catalogue_version(), row.id), row.cells);
            }
        }
        Ok(Brokers {
            source: source.to_string(),
            names,
            cells,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_matrix_reads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/matrix.json");
        let b = Brokers::read(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            b.names.iter().any(|n| n.starts_with("mosquitto")),
            "{:?}",
            b.names
        );
        let cells = b
            .cells
            .get(&(Protocol::V3_1_1, "MQTT-3.12.4-1".to_string()))
            .expect("PINGREQ is in the matrix");
        assert_eq!(cells.len(), b.names.len());
    }

    #[test]
    fn a_wrong_file_is_refused_with_what_to_do() {
        let e = Brokers::parse("x.json", "{\"brokers\": 3}")
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("x.json is not the JSON that `mqtt-harness matrix --json` writes"),
            "{e}"
        );
        let e = Brokers::parse(
            "x.json",
            r#"{"brokers":[{"name":"a"}],"sections":[{"protocol":"5.0","statements":[{"id":"MQTT-1","cells":[]}]}]}"#,
        )
        .err()
        .unwrap_or_default();
        assert_eq!(e, "x.json: statement MQTT-1 has 0 cells for 1 brokers");
    }
}
