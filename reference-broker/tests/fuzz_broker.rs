//! The broker fuzz harness (`reference_broker::fuzzing`, the `broker` target
//! in `fuzz/`) under `cargo test`: every committed seed, then a few thousand
//! scripts from a fixed pseudo-random sequence, so that a property the core
//! breaks fails the test suite too, reproducibly.

use std::path::Path;

use reference_broker::fuzzing;

#[test]
fn committed_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/broker");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/broker") {
        let path = entry.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a seed");
        fuzzing::run(&data);
        n += 1;
    }
    assert!(n > 0, "no seed in {}", dir.display());
}

#[test]
fn generated_scripts() {
    // xorshift64*: the same scripts on every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for i in 0..3000 {
        let len = 64 + (next() % 1500) as usize;
        let data: Vec<u8> = (0..len).map(|_| (next() >> 56) as u8).collect();
        let result = std::panic::catch_unwind(|| fuzzing::run(&data));
        if result.is_err() {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            panic!("script {i} broke a property; its bytes: {hex}");
        }
    }
}

/// The fuzzer's bytes of script `i` of the fixed sequence.
fn script(state: &mut u64) -> Vec<u8> {
    let mut next = || {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let len = 64 + (next() % 1500) as usize;
    (0..len).map(|_| (next() >> 56) as u8).collect()
}

/// How many of the first `n` generated scripts find something against a
/// core breaking `statement`, and the first finding's message.
fn findings(statement: &str, n: usize) -> (usize, Option<String>) {
    let mut state: u64 = 0x0123_4567_89AB_CDEF;
    let mut found = 0;
    let mut first = None;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..n {
        let data = script(&mut state);
        if let Err(e) = std::panic::catch_unwind(|| fuzzing::run_breaking(&data, &[statement])) {
            found += 1;
            if first.is_none() {
                first = e.downcast_ref::<String>().cloned();
            }
        }
    }
    std::panic::set_hook(hook);
    (found, first)
}

/// The semantic checks (the model of subscriptions, flow control and
/// sessions) catch a core that breaks what they check; each finding names
/// what broke.
#[test]
fn the_model_catches_deliberate_violations() {
    let cases: &[(&str, &str)] = &[
        ("MQTT-3.3.4-9", "above its receive maximum"),
        ("MQTT-3.8.3-3", "no subscription that permits it"),
        ("MQTT-4.7.2-1", "no subscription that permits it"),
        ("MQTT-3.8.4-6", "no subscription that permits it"),
        ("MQTT-3.2.2-1", "Session Present 1 after Clean Start 1"),
        ("MQTT-4.4.0-1", "never reached session"),
    ];
    let mut missed = Vec::new();
    for (statement, what) in cases {
        let (found, first) = findings(statement, 3000);
        let first = first.unwrap_or_default();
        if found == 0 || !first.contains(what) {
            missed.push(format!(
                "{statement}: {found} findings, first: {first:.2000}"
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "violations not caught as expected:\n{}",
        missed.join("\n")
    );
}
