//! `hash-*`: lockless PTE updates by a software TLB-miss handler (PowerPC `hash_page`).
//!
//! Not a parisc lineage: the generic routines on the `pipt` machine, with user TLB misses
//! trapping to the kernel's stepped `hash_page` (`vipt_emu::mm::hash`), which updates
//! accessed, dirty and the hash bit of the PTE without the page-table lock while other CPUs
//! unmap, reclaim, COW and `mprotect(PROT_NONE)` the same pages. Each variant is a
//! configuration of [`vipt_emu::arch::GenericHooks`].

use vipt_emu::arch::{ArchConfig, HashMode};
use vipt_emu::machine::MissPolicy;

/// Trapping user misses handled by `hash_page` in `mode`.
const fn hash_page(hash: HashMode) -> ArchConfig {
    ArchConfig { miss: MissPolicy { hash_miss: true, ..MissPolicy::CURRENT }, hash, ..ArchConfig::GENERIC }
}

/// Two plain updates from one read, the access checked after the first. Broken: a stale
/// update resurrects a cleared PTE, a translation is inserted for a PTE no longer present,
/// and a denied store still sets `_PAGE_DIRTY`.
pub const TWO_UPDATE: ArchConfig = hash_page(HashMode::TwoUpdate);
/// The compare-and-swap loop with `_PAGE_BUSY` held across the insert. Correct.
pub const CAS: ArchConfig = hash_page(HashMode::CasLoop);
