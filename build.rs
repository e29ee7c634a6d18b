// The scenario library is built into the binary (src/library.rs): rebuild
// when it changes.
fn main() {
    println!("cargo:rerun-if-changed=scenarios");
}
