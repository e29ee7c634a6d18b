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
