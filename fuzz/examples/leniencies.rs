//! Tallies the differential harness's disagreements over corpus directories
//! (`cargo run --release --example leniencies -- DIR...`), printing a
//! Markdown table: peer, kind of difference, whom the spec supports, how
//! many inputs show it, and the shortest of them (hex, selector byte first).

use std::collections::BTreeMap;

use mqtt_codec_fuzz::differential::{compare, Side};

fn main() {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: leniencies DIR...");
        std::process::exit(2);
    }
    let mut rows: BTreeMap<(&'static str, String, Side), (usize, Vec<u8>)> = BTreeMap::new();
    let mut inputs = 0;
    for dir in &dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("leniencies: cannot read {dir}: {e}");
                std::process::exit(2);
            }
        };
        for entry in entries.flatten() {
            let Ok(data) = std::fs::read(entry.path()) else {
                continue;
            };
            inputs += 1;
            for d in compare(&data) {
                let row = rows
                    .entry((d.peer, d.class, d.side))
                    .or_insert((0, data.clone()));
                row.0 += 1;
                if data.len() < row.1.len() {
                    row.1 = data.clone();
                }
            }
        }
    }
    println!("{inputs} inputs\n");
    println!("| peer | difference | spec supports | inputs | shortest (hex) |");
    println!("|---|---|---|---|---|");
    for ((peer, class, side), (n, example)) in rows {
        let hex: String = example.iter().map(|b| format!("{b:02x}")).collect();
        println!("| {peer} | {class} | {side:?} | {n} | `{hex}` |");
    }
}
