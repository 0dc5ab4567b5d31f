#![no_main]
use libfuzzer_sys::fuzz_target;

// To be written with the filter.
fuzz_target!(|_data: &[u8]| {});
