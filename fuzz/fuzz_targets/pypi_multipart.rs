//! Fuzz target `pypi_multipart`: feeds libFuzzer's input to `arca::fuzzing::pypi_multipart` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::pypi_multipart(data));
