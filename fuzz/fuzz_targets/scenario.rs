//! The input picks the workload and every scheduling choice; `VIPT_LINEAGE` picks the kernel
//! (default `linux-6.x`), `VIPT_FAMILY` the workload family instead of its own (`sharing`). A
//! violation, or a run that does not finish, writes a reproducer and panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vipt_harness::fuzz::fuzz_scenario(data));
