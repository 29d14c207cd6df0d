//! The historic bugs (B1, B2, …), each as a handcrafted, deterministic interleaving,
//! and the B14 hypothesis of a PA8800 alias boundary above 4 MiB.
//!
//! Every test but B14's (which compares `pa8800` with the hypothetical `pa8800-64m`) runs on
//! the `tiny` preset (4 CPUs, 4 KiB pages, 128-byte lines, 16 KiB alias
//! boundary: only `(va / 4096) mod 4` picks the cache colour) with [`FirstChooser`]: no
//! speculation, way 0, first swap slot, every new VMA at the front of its file's `i_mmap`.
//! CPUs are driven one by one (`spawn` + `run_until` / `step_cpu` / `run_to_completion`), so
//! each race window is hit at an exact micro-step. Each bug test asserts the exact stale value
//! the buggy lineage produces (a user load, a `read(2)`, a swap slot, the file's disk block, a
//! COW copy), and each fixed test runs the same interleaving on the fixed lineages and asserts
//! the value the program wrote.
//!
//! Frames are handed out lowest first and freed frames are reused first, so page numbers are
//! deterministic; the scenarios assert the colours they rely on (user colour ≠ colour of the
//! page's kernel alias, `pfn mod 4`) instead of trusting them.

mod rig;

mod b1;
mod b13;
mod b14;
mod b17;
mod b2;
mod b21;
mod b3;
mod b7;
