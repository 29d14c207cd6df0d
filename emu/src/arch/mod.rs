//! The architecture interface: the only way the shared MMU core reaches the architecture, and
//! the only part of the kernel an architecture's code can reach.
//!
//! * [`ArchHooks`] — the routines (`flush_dcache_page`, `set_pte_at`, `tlb_flush`, …), each
//!   with its contract stated as a post-condition and a PIPT default, and the ordering rules of
//!   `cachetlb.rst` where they apply.
//! * [`ArchConfig`] — the knobs: plain values (miss-handler policy, unmap order, …) the lineage
//!   supplies with its routines.
//! * [`ArchCtx`] — the CPU-bound handle every routine receives: cache and TLB instructions,
//!   the tmpalias window, PTE reads and writes, the locks arch code takes, page copies through
//!   the kernel alias, the few facts about pages and mappings arch code consults, and the
//!   sibling routines. Nothing else of the memory manager is reachable from it.
//! * [`Patch`] and [`Patched`] — a lineage that changes some routines of another and keeps
//!   every other routine and knob of it, by construction.
//!
//! Machine facts (alias boundary, `parisc_requires_coherency`, cache size) come from the
//! machine's [`crate::config::MachineConfig`] through [`ArchCtx`], never from names.

mod config;
mod ctx;
mod hooks;

use std::future::Future;
use std::pin::Pin;

pub use config::{ArchConfig, CleanMode, FixupMode, HashMode, UnmapOrder};
pub use ctx::ArchCtx;
pub use hooks::{Arch, ArchHooks, GenericHooks, Patch, Patched};

/// The future a routine returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A completed future (for routines that do nothing).
pub fn ready<'a, T: 'a>(v: T) -> HookFuture<'a, T> {
    Box::pin(std::future::ready(v))
}
