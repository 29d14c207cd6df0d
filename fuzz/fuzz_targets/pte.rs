//! PTE encode/decode and the translation_exists filters against a plain reference model.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vipt_harness::fuzz::fuzz_pte(data));
