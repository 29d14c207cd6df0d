//! `vipt-tmpalias`: the per-CPU tmpalias window and the parisc kernel lineages.
//!
//! A *lineage* is a set of routines ([`vipt_emu::arch::ArchHooks`]) and knobs
//! ([`vipt_emu::arch::ArchConfig`]) standing for what one era of parisc Linux did in
//! `flush_dcache_page` and its relatives. Each is documented with its kernel
//! version, what it does step by step and its sources; [`registry::Registry::builtin`] lists
//! them by name. The historic bugs (labels B1, B2, …) are each reachable in one of them:
//!
//! | bug | lineage |
//! |---|---|
//! | B1 (flush after clear, no `_PAGE_FLUSH`) | `linux-2.5-rmap` |
//! | B2 (`translation_exists` accepts swap/file PTEs) | `linux-2.6.14` |
//! | B3 (PTE changes between check and flush) | `linux-2.6.14`, `linux-2.6.15`, `recheck` |
//! | B7 (COW copy misses lines written through a stale TLB entry) | `linux-2.6.x`, `tmpalias`, `tmpalias+purge` (with the pre-copy flush, `tmpalias+precopy`, copies are complete) |
//! | B13 (range flush by user address nullified on a hole) | `tmpalias` |
//! | B17 (racy PTE checks; `ptep_clear_flush` without flush) | `linux-6.0` |
//! | B21 (non-congruent `MAP_FIXED`; one flush only) | `linux-2.4`, `linux-2.5-rmap`, `linux-2.6.x` |
//!
//! Two PTE routines by era: `pte_clear` is a plain store of 0 up to 3.x (the default routine), `set_pte_at(.., 0)` (a store and a TLB purge) in `linux-6.0` and
//! `linux-6.x`, a plain store again in `linux-6.10`; and no parisc `pgtable.h` from 2.6.12 to
//! today defines `__HAVE_ARCH_PTEP_SET_ACCESS_FLAGS`, so `ptep_set_access_flags` is the generic
//! one everywhere (the default routine, which stores through the lineage's `set_pte_at` and
//! then calls its `flush_tlb_page`).
//!
//! A downstream crate adds its own lineage by implementing `ArchHooks`, or by patching a
//! built-in one ([`Lineage::patched`] with a [`vipt_emu::arch::Patch`]), and
//! [`registry::Registry::register`]ing it; see `examples/custom_lineage.rs` and
//! `examples/patch_lineage.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod comments;
pub mod lineage;
pub mod pacache;
pub mod parisc;
pub mod registry;

pub use registry::{Family, Lineage, Registry};
