//! Fuzz target `cargo_publish`: feeds libFuzzer's input to `arca::fuzzing::cargo_publish` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::cargo_publish(data));
