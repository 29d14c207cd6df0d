//! `hash-*`: lockless PTE updates by a software TLB-miss handler (PowerPC `hash_page`;
//! issue 7, family 2).
//!
//! Not a parisc lineage: the generic hooks on the `pipt` machine, with user TLB misses
//! trapping to the kernel's stepped `hash_page` (`vipt_emu::mm::hash`), which updates
//! accessed, dirty and the hash bit of the PTE without the page-table lock while other CPUs
//! unmap, reclaim, COW and `mprotect(PROT_NONE)` the same pages.

use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, GenericHooks, HashMode};

/// A `hash_page` variant.
#[derive(Clone, Copy, Debug)]
pub struct HashPage {
    /// Lineage name.
    pub name: &'static str,
    /// How the PTE is updated.
    pub mode: HashMode,
}

impl HashPage {
    /// Two plain updates from one read, the access checked after the first. Broken: a stale
    /// update resurrects a cleared PTE, a translation is inserted for a PTE no longer present,
    /// and a denied store still sets `_PAGE_DIRTY`.
    pub const TWO_UPDATE: HashPage = HashPage { name: "hash-two-update", mode: HashMode::TwoUpdate };
    /// The compare-and-swap loop with `_PAGE_BUSY` held across the insert. Correct.
    pub const CAS: HashPage = HashPage { name: "hash-cas", mode: HashMode::CasLoop };
}

impl ArchHooks for HashPage {
    fn name(&self) -> &str {
        self.name
    }
    fn delegate(&self) -> Option<&dyn ArchHooks> {
        Some(&GenericHooks)
    }
    fn miss_policy(&self) -> MissPolicy {
        MissPolicy { hash_miss: true, ..MissPolicy::CURRENT }
    }
    fn hash_mode(&self) -> HashMode {
        self.mode
    }
}
