//! `clean-*`: write-protect/clean of a device-like shared mapping with the TLB flush
//! deferred.
//!
//! Not a parisc lineage: the generic routines on the `pipt` machine, whose TLB entries cache
//! the D bit (a store through an entry with D set neither traps nor touches the PTE). Only the
//! ordering of the clean's TLB flush changes (see `vipt_emu::mm::clean`), so each variant is a
//! configuration of [`vipt_emu::arch::GenericHooks`].

use vipt_emu::arch::{ArchConfig, CleanMode};

/// A dirty-log clean ordered as `clean`.
const fn cleaning(clean: CleanMode) -> ArchConfig {
    ArchConfig { clean, ..ArchConfig::GENERIC }
}

/// Flush batched after the page-table lock is dropped, cleaners not serialised. Broken.
pub const DEFERRED: ArchConfig = cleaning(CleanMode::Deferred);
/// Each PTE's translation purged under the page-table lock before its bit is set.
pub const FLUSH_LOCKED: ArchConfig = cleaning(CleanMode::FlushUnderLock);
/// Flush batched, cleaners serialised by the driver's lock.
pub const EXTERNAL_LOCK: ArchConfig = cleaning(CleanMode::ExternalLock);
