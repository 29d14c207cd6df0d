//! Acceptance tests of the emulated VIPT machine and of the memory-manager model on it.
//!
//! Everything runs on the `tiny` preset (4 CPUs, 4 KiB pages, 128-byte lines, 128 sets × 2
//! ways, 16 KiB alias boundary = 4 page colours) with [`FirstChooser`] (no speculation, way 0,
//! slot 0), so every step is deterministic and every assertion names an exact value or line
//! state.
//!
//! Machine level (page tables built by hand, instructions issued directly):
//!
//! * (a) inequivalent aliases of one page disagree until flushed, and a stale clean line of the
//!   second alias survives an `fdc` through the first;
//! * (b) `fdc` without a translation is nullified and leaves the dirty line alone;
//! * (c) `fdc` through a translation to another page acts on that page only;
//! * (d) a 2.6.14 `_PAGE_FLUSH` PTE still lets `fdc` flush the old page; a current cleared PTE
//!   does not;
//! * (e) a stale TLB entry on another CPU keeps sending stores to the old page until purged;
//! * (g) equivalent aliases are coherent across CPUs by snooping, inequivalent ones are not;
//! * (h) a store through a TLB entry with the D bit clear traps;
//! * (i) on every preset (these tests build their own machines), aliases of one line share it
//!   exactly when they are congruent modulo the alias boundary.
//!
//! Kernel level (the MMU core driven through [`Executor`]):
//!
//! * (f) reclaim of an anonymous page with a dirty user-alias line loses the store without a
//!   `flush_cache_page`, and keeps it with one;
//! * (h) a user store into a clean shared writable file mapping sets `_PAGE_DIRTY`.

mod common;
mod kernel;
mod machine;
