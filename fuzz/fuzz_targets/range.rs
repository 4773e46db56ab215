//! Fuzz target `range`: feeds libFuzzer's input to `arca::fuzzing::range` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::range(data));
