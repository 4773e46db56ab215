//! Fuzz target `helm`: feeds libFuzzer's input to `arca::fuzzing::helm` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::helm(data));
