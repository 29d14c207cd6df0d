//! `swbits-*`: software-tracked young/dirty bits and the futex path.
//!
//! Not a parisc lineage: the race is architecture-neutral and runs on the `pipt` machine with
//! the generic routines. Only the miss handler's policy and `fixup_user_fault` change, so each
//! variant is a configuration of [`vipt_emu::arch::GenericHooks`].
//!
//! An architecture that tracks `_PAGE_ACCESSED` and `_PAGE_DIRTY` in software (PowerPC e500):
//! the TLB miss handler refuses a PTE that is not young, and maps a clean page read-only, so
//! the first load of an old page and the first store to a clean one fault, and the fault path
//! must mark the PTE.
//!
//! A futex operation stores with page faults disabled. When the store traps, it calls
//! `fixup_user_fault` and retries. Three kernels:
//! * `swbits-gup` (before 2.6.38): `fixup_user_fault` was `get_user_pages(write)`, which finds
//!   the page present and writable and returns without marking the PTE dirty. The retry faults
//!   again, for ever (the livelock fixed by "mm: add fixup_user_fault()", 2011, and discussed
//!   again for gup in 2013–2014).
//! * `swbits-fault`: `fixup_user_fault` calls `handle_mm_fault`, whose tail marks the PTE young
//!   and dirty.
//! * `swbits-gup-marks`: gup itself marks the PTE young and dirty for a write it permits.

use vipt_emu::arch::{ArchConfig, FixupMode};
use vipt_emu::machine::MissPolicy;

/// Software young/dirty with `fixup_user_fault` working as `fixup`.
const fn soft_dirty(fixup: FixupMode) -> ArchConfig {
    ArchConfig {
        miss: MissPolicy { sw_young_dirty: true, ..MissPolicy::CURRENT },
        fixup,
        ..ArchConfig::GENERIC
    }
}

/// `fixup_user_fault` through gup that does not mark: livelocks.
pub const GUP: ArchConfig = soft_dirty(FixupMode::Gup { marks: false });
/// `fixup_user_fault` through `handle_mm_fault`.
pub const FAULT: ArchConfig = soft_dirty(FixupMode::Fault);
/// gup marks young and dirty itself.
pub const GUP_MARKS: ArchConfig = soft_dirty(FixupMode::Gup { marks: true });
