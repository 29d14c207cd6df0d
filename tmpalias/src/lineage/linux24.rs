//! `linux-2.4`: parisc Linux 2.4 before `_PAGE_FLUSH` (2.4.0–2.4.19).

use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture, Patch, Patched, UnmapOrder};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{LockId, MmId, Vma};
use vipt_emu::pte::Pte;

use crate::lineage::Linux26;
use crate::parisc;

/// Kernel 2.4 (before 2.4.20), parisc.
///
/// * `flush_dcache_page`: flush the kernel alias, then `fdc` the page through the **first**
///   VMA of `i_mmap` that covers it, with no check that the VMA maps it at all: a VMA whose
///   PTE is gone has every `fdc` nullified; one that COWed flushes its private copy.
/// * `ptep_get_and_clear` zeroes the PTE (`_PAGE_FLUSH` came only in 2.4.20), and the rmap of
///   that era cleared the PTE **before** calling `flush_cache_page` ([`UnmapOrder::ClearThenFlush`]),
///   so reclaim's flush has no translation and is nullified: dirty user lines survive the
///   free (historic bug B1).
/// * `flush_cache_page` flushes by user address without a translation check;
///   `copy_user_page` copies through the kernel alias without flushing the source's user
///   alias; `MAP_FIXED` is not colour-checked.
///
/// Source: Hugh Dickins, LKML 2005-10-24 (`Pine.LNX.4.61.0510241714280.4543@goblin.wat.veritas.com`):
/// "PA-RISC's _PAGE_FLUSH got added a year later in 2.4.20 and 2.5.45" because generic code
/// "cleared the pte and then called flush_cache_page".
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux24;

impl Linux24 {
    /// The knobs: 2.6.14's, but no `_PAGE_FLUSH` PTEs and the rmap's clear-then-flush order.
    pub const CONFIG: ArchConfig = ArchConfig {
        miss: MissPolicy { flush_ptes: false, ..MissPolicy::LINUX_2614 },
        unmap_order: UnmapOrder::ClearThenFlush,
        ..Linux26::CONFIG
    };

    /// The routines: what 2.4 shares with 2.6.14 (the kernel-alias flushes, `copy_user_page`
    /// through the kernel alias, `clear_user_page` through tmpalias, the deferred
    /// `PG_dcache_dirty` flush, whole-cache `flush_cache_mm`), patched with what differs.
    pub fn hooks() -> Box<dyn ArchHooks> {
        Box::new(Patched::new(Box::new(Linux26::LINUX_2614), Linux24))
    }
}

impl Patch for Linux24 {
    fn ptep_get_and_clear<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        Box::pin(async move { cx.xchg_pte(mm, va, Pte::NONE).await })
    }
    fn flush_cache_range<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, _vma: Vma, _s: VirtAddr, _e: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_cache_page<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            parisc::flush_user_page(cx, &vma, va).await;
        })
    }
    fn flush_dcache_page<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, page: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(cx, page) {
                return;
            }
            parisc::flush_kernel_page(cx, page).await;
            let Some(file) = parisc::page_file(cx, page) else { return };
            cx.lock(LockId::FlushDcacheMmap(file)).await;
            if let Some((vma, va)) = cx.file_mappings(page).first().copied() {
                parisc::flush_user_page(cx, &vma, va).await;
            }
            cx.unlock(LockId::FlushDcacheMmap(file));
        })
    }
}
