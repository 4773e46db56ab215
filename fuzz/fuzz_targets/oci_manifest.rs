//! Fuzz target `oci_manifest`: feeds libFuzzer's input to `arca::fuzzing::oci_manifest` (see that function for
//! the input layout).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| arca::fuzzing::oci_manifest(data));
