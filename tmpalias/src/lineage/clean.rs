//! `clean-*`: write-protect/clean of a device-like shared mapping with the TLB flush
//! deferred (issue 7, family 4).
//!
//! Not a parisc lineage: the generic hooks on the `pipt` machine, whose TLB entries cache the
//! D bit (a store through an entry with D set neither traps nor touches the PTE). Only the
//! ordering of the clean's TLB flush changes; see `vipt_emu::mm::clean`.

use vipt_emu::mm::{ArchHooks, CleanMode, GenericHooks};

/// A dirty-log clean variant.
#[derive(Clone, Copy, Debug)]
pub struct Clean {
    /// Lineage name.
    pub name: &'static str,
    /// How the flush is ordered.
    pub mode: CleanMode,
}

impl Clean {
    /// Flush batched after the page-table lock is dropped, cleaners not serialised. Broken.
    pub const DEFERRED: Clean = Clean { name: "clean-deferred", mode: CleanMode::Deferred };
    /// Each PTE's translation purged under the page-table lock before its bit is set.
    pub const FLUSH_LOCKED: Clean = Clean { name: "clean-flush-locked", mode: CleanMode::FlushUnderLock };
    /// Flush batched, cleaners serialised by the driver's lock.
    pub const EXTERNAL_LOCK: Clean = Clean { name: "clean-external-lock", mode: CleanMode::ExternalLock };
}

impl ArchHooks for Clean {
    fn name(&self) -> &str {
        self.name
    }
    fn delegate(&self) -> Option<&dyn ArchHooks> {
        Some(&GenericHooks)
    }
    fn clean_mode(&self) -> CleanMode {
        self.mode
    }
}
