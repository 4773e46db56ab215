//! Fuzz target `pypi_metadata`: feeds libFuzzer's input to `arca::fuzzing::pypi_metadata` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::pypi_metadata(data));
