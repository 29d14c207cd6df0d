//! `linux-2.4` and `linux-2.5-rmap`: parisc Linux before `_PAGE_FLUSH`, with reclaim
//! flushing before (2.4.10 and later 2.4) or after (2.5 rmap) it clears the PTE.

use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture, Patch, Patched, UnmapOrder};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{LockId, MmId, Vma};
use vipt_emu::pte::Pte;

use crate::lineage::Linux26;
use crate::parisc;

/// Parisc before `_PAGE_FLUSH` (2.4.20 / 2.5.45), in two reclaim orders.
///
/// The generic side, verified against source:
/// * mainline 2.4.0–2.4.9 (`try_to_swap_out` in `mm/vmscan.c`, e.g. 2.4.0) did
///   `ptep_get_and_clear`, `flush_tlb_page`, and only then `flush_cache_page`;
/// * 2.4.10 moved `flush_cache_page` before `ptep_get_and_clear` (Hugh Dickins, LKML
///   2005-10-24: "That issue was fixed four years ago in 2.4.10"), as 2.4.17's
///   `try_to_swap_out` shows: [`Linux24::CONFIG`], lineage `linux-2.4`;
/// * the 2.5 pte_chains rmap (merged in 2.5.27 from Rik van Riel's 2.4 rmap, itself based on
///   2.4.9) brought the old order back in `try_to_unmap_one`: "Nuke the page table entry"
///   with `ptep_get_and_clear`, `flush_tlb_page`, `flush_cache_page`, until Hugh Dickins'
///   "flush_cache_page while pte valid" (against 2.5.47, November 2002; the same went to the
///   2.4-ac rmap trees): [`Linux24::CONFIG_RMAP`], lineage `linux-2.5-rmap`.
///
/// With the PTE zeroed first (no `_PAGE_FLUSH` entry yet), reclaim's `flush_cache_page` by
/// user address has no translation and every `fdc` is nullified: dirty user lines survive the
/// free (historic bug B1). Flushing first, the same flush works.
///
/// The parisc side, **not verified against a 2.4 or 2.5 parisc tree** (none was found):
/// * `flush_dcache_page`: flush the kernel alias, then `fdc` the page through the **first**
///   VMA of `i_mmap` that covers it, with no check that the VMA maps it at all: a VMA whose
///   PTE is gone has every `fdc` nullified; one that COWed flushes its private copy;
/// * `flush_cache_page` flushes by user address without a translation check;
///   `copy_user_page` copies through the kernel alias without flushing the source's user
///   alias; `MAP_FIXED` is not colour-checked; the rest is 2.6.14's.
///
/// What the sources found do show: mainline 2.4.0's own parisc port flushed the whole local
/// cache in every hook (`include/asm-parisc/pgalloc.h`), and the 2.6.5 parisc
/// `__flush_dcache_page` flushed the first shared mapping of the current mm by user address
/// and returned.
///
/// Sources: `Robin329/Linux-2.4.0` `mm/vmscan.c`, `include/asm-parisc/pgalloc.h`;
/// `rickgaiser/linux-2.4.17-ps2` `mm/vmscan.c`; Andrew Morton, "\[patch 1/13\] minimal rmap"
/// (LKML 2002-07-16, `mm/rmap.c` of 2.5.26+); Hugh Dickins, "\[PATCH\] flush_cache_page while pte
/// valid" (LKML 2002-11-11, `Pine.LNX.4.44.0211111808240.1236-100000@localhost.localdomain`);
/// Hugh Dickins, LKML 2005-10-24 (`Pine.LNX.4.61.0510241714280.4543@goblin.wat.veritas.com`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux24;

impl Linux24 {
    /// 2.4.10–2.4.19: 2.6.14's knobs without `_PAGE_FLUSH` PTEs; reclaim flushes, then clears.
    pub const CONFIG: ArchConfig = ArchConfig {
        miss: MissPolicy { flush_ptes: false, ..MissPolicy::LINUX_2614 },
        unmap_order: UnmapOrder::FlushThenClear,
        ..Linux26::CONFIG
    };

    /// 2.5 pte_chains rmap before `_PAGE_FLUSH`: reclaim clears the PTE, then flushes (B1).
    pub const CONFIG_RMAP: ArchConfig =
        ArchConfig { unmap_order: UnmapOrder::ClearThenFlush, ..Linux24::CONFIG };

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
