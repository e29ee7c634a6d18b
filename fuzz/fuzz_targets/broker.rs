#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| reference_broker::fuzzing::run(data));
