//! Arbitrary bytes into the reproducer parser and the seed-range parser: errors, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vipt_harness::fuzz::fuzz_reproducer(data));
