//! `swbits-*`: software-tracked young/dirty bits and the futex path (issue 7, family 1).
//!
//! Not a parisc lineage: the race is architecture-neutral and runs on the `pipt` machine with
//! the generic hooks. Only the miss handler's policy and `fixup_user_fault` change.

use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, FixupMode, GenericHooks};

/// An architecture that tracks `_PAGE_ACCESSED` and `_PAGE_DIRTY` in software (PowerPC e500):
/// the TLB miss handler refuses a PTE that is not young, and maps a clean page read-only, so
/// the first load of an old page and the first store to a clean one fault, and the fault path
/// must mark the PTE.
///
/// A futex operation stores with page faults disabled. When the store traps, it calls
/// `fixup_user_fault` and retries. Three kernels:
/// * `swbits-gup` (before 2.6.38): `fixup_user_fault` was `get_user_pages(write)`, which finds
///   the page present and writable and returns without marking the PTE dirty. The retry faults
///   again, for ever (the livelock fixed by "mm: add fixup_user_fault()", 2011, and discussed
///   again for gup in 2013–2014).
/// * `swbits-fault`: `fixup_user_fault` calls `handle_mm_fault`, whose tail marks the PTE young
///   and dirty.
/// * `swbits-gup-marks`: gup itself marks the PTE young and dirty for a write it permits.
#[derive(Clone, Copy, Debug)]
pub struct SoftDirty {
    /// Lineage name.
    pub name: &'static str,
    /// How `fixup_user_fault` works.
    pub mode: FixupMode,
}

impl SoftDirty {
    /// `fixup_user_fault` through gup that does not mark: livelocks.
    pub const GUP: SoftDirty = SoftDirty { name: "swbits-gup", mode: FixupMode::Gup { marks: false } };
    /// `fixup_user_fault` through `handle_mm_fault`.
    pub const FAULT: SoftDirty = SoftDirty { name: "swbits-fault", mode: FixupMode::Fault };
    /// gup marks young and dirty itself.
    pub const GUP_MARKS: SoftDirty =
        SoftDirty { name: "swbits-gup-marks", mode: FixupMode::Gup { marks: true } };
}

impl ArchHooks for SoftDirty {
    fn name(&self) -> &str {
        self.name
    }
    fn delegate(&self) -> Option<&dyn ArchHooks> {
        Some(&GenericHooks)
    }
    fn miss_policy(&self) -> MissPolicy {
        MissPolicy { sw_young_dirty: true, ..MissPolicy::CURRENT }
    }
    fn fixup_mode(&self) -> FixupMode {
        self.mode
    }
}
