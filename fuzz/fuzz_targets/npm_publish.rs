//! Fuzz target `npm_publish`: feeds libFuzzer's input to `arca::fuzzing::npm_publish` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::npm_publish(data));
