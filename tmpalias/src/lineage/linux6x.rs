//! `linux-6.x`: today's parisc cache code, `linux-6.10` with the July 2025 `set_pte_at()` fix.

use vipt_emu::addr::VirtAddr;
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture, Patch, Patched};
use vipt_emu::mm::MmId;
use vipt_emu::pte::{Pte, PteFlags};

use crate::lineage::Linux610;

/// Today's parisc: [`Linux610`] patched with "parisc: Define and use set_pte_at()"
/// (`802e55488bc2`, July 2025, in 6.17, Cc stable 5.12+): "When a PTE is changed, we need to
/// flush the PTE. set_pte_at() was lost in the folio update."
///
/// * `pte_clear` becomes `set_pte_at(mm, addr, ptep, __pte(0))`: the store, then
///   `purge_tlb_entries` on every CPU. The generic `ptep_get_and_clear` (read, then
///   `pte_clear`) therefore purges too, and so do zap and `ptep_clear_flush` through it: its
///   routine is unchanged, it reaches the patched `pte_clear` as a sibling call.
/// * `ptep_set_wrprotect` becomes `set_pte_at(mm, addr, ptep, pte_wrprotect(*ptep))`: read the
///   PTE, then `__update_cache` (the PTE is present and user), the store, the purge. After it
///   no CPU keeps a writable translation.
/// * `ptep_test_and_clear_young` becomes `set_pte_at(.., pte_mkold(pte))`; nothing here calls
///   it: page aging goes through parisc's `ptep_clear_flush_young` in `cache.c`, which still
///   stores with `set_pte` and purges nothing (`cache.c` @ `52ce9406`, after this fix).
///
/// Everything else, knobs included, is `linux-6.10`'s.
///
/// Sources: the 6.12-stable backport of `802e55488bc2` (a four-line diff of
/// `arch/parisc/include/asm/pgtable.h`); `torvalds/linux` `arch/parisc/kernel/cache.c` @
/// `52ce9406`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux6x;

impl Linux6x {
    /// Its knobs: `linux-6.10`'s.
    pub const CONFIG: ArchConfig = Linux610::CONFIG;

    /// The routines: `linux-6.10` with this patch.
    pub fn hooks() -> Box<dyn ArchHooks> {
        Box::new(Patched::new(Box::new(Linux610), Linux6x))
    }
}

impl Patch for Linux6x {
    /// `pte_clear` = `set_pte_at(mm, addr, ptep, __pte(0))`.
    fn pte_clear<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        cx.arch().set_pte_at(mm, va, Pte::NONE)
    }
    /// `ptep_set_wrprotect` = `set_pte_at(mm, addr, ptep, pte_wrprotect(*ptep))`.
    fn ptep_set_wrprotect<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let old = cx.read_pte(mm, va).await;
            cx.arch().set_pte_at(mm, va, old.without_flags(PteFlags::WRITE)).await;
        })
    }
}
