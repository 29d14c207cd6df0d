//! `linux-2.6.14`, `linux-2.6.15` and `recheck`: the 2.6 parisc cache code with `_PAGE_FLUSH`
//! PTEs and `translation_exists()`.

use vipt_emu::addr::{Pfn, SpaceId, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, LockId, MmId, Vma};
use vipt_emu::pte::Pte;

use crate::parisc;

/// Which `translation_exists()` filter the lineage uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// 2.6.14: `pte_none(*pte) && !(pte & _PAGE_FLUSH)` means "no translation"; every other
    /// non-zero PTE, swap and file entries included, passes. `flush_dcache_page` then reads
    /// the PTE a second time for `pte_pfn(*pte) != pfn`.
    Loose2614,
    /// 2.6.15 (Hugh Dickins): read the PTE once; it must have `_PAGE_FLUSH` or
    /// `_PAGE_PRESENT` and the right pfn.
    Hugh2615,
}

/// Kernel 2.6.14 / 2.6.15 parisc, and the `recheck` proposal.
///
/// Step by step, `flush_dcache_page(page)`:
/// 1. a page-cache page of an unmapped file only gets `PG_dcache_dirty`;
/// 2. `flush_kernel_dcache_page`: `fdc` over the kernel alias;
/// 3. anonymous pages stop here;
/// 4. under `flush_dcache_mmap_lock`, walk `i_mmap` for VMAs covering the page: skip one
///    whose PTE fails `translation_exists()` (see [`Filter`]) or maps another pfn; otherwise
///    `fdc` the page through that VMA's user address and **stop** — the comment claims all
///    mappings are congruent, so one flush serves all. `recheck` instead re-reads the PTE
///    after the flush and goes on to the next VMA if it changed (Hugh's suggestion).
///
/// Also: `ptep_get_and_clear` leaves a `_PAGE_FLUSH` PTE (pfn kept, present cleared) that the
/// non-access miss handler turns into a flush-only translation; `set_pte_at` and
/// `ptep_set_wrprotect` purge no TLB entry; `copy_user_page` copies through the kernel alias
/// with no flush of the source's user alias; `MAP_FIXED` is not colour-checked;
/// `flush_cache_range` flushes by user address only for the current mm; `mmap` places a file
/// mapping at the file's colour whatever its page offset ([`parisc::get_unmapped_area_2612`]).
///
/// Historic bugs reachable: B2 (swap/file PTE passes the loose filter, nullified flush,
/// `break`), B3 (PTE changes between the check and the flush), B7 (copy without source flush,
/// no purge on write-protect), B21 (non-congruent `MAP_FIXED` alias, one flush only).
///
/// Sources: `torvalds/linux` @ `1da177e4` `arch/parisc/kernel/cache.c`,
/// `include/asm-parisc/cacheflush.h`, `pgtable.h`; Hugh Dickins, "[PATCH 3/9] mm: parisc pte
/// atomicity", `Pine.LNX.4.61.0510221722260.18047@goblin.wat.veritas.com`.
#[derive(Clone, Copy, Debug)]
pub struct Linux26 {
    /// `translation_exists()` filter.
    pub filter: Filter,
    /// Re-check the PTE after flushing and go on if it changed.
    pub recheck: bool,
}

impl Linux26 {
    /// 2.6.14.
    pub const LINUX_2614: Linux26 = Linux26 { filter: Filter::Loose2614, recheck: false };
    /// 2.6.15.
    pub const LINUX_2615: Linux26 = Linux26 { filter: Filter::Hugh2615, recheck: false };
    /// 2.6.15 plus re-checking the PTE after the flush.
    pub const RECHECK: Linux26 = Linux26 { filter: Filter::Hugh2615, recheck: true };

    /// The knobs of every 2.6 lineage: the 2.6.14 PTE layout with `_PAGE_FLUSH` PTEs honoured
    /// by the non-access miss handler, tmpalias only for loads and stores, and `MAP_FIXED`
    /// not colour-checked; a kernel buffer placed by the colour of the file it is mapped through
    /// (no io_uring yet: as a driver `mmap` without a `get_unmapped_area` of its own).
    pub const CONFIG: ArchConfig = ArchConfig {
        miss: MissPolicy::LINUX_2614,
        map_fixed_checks_colour: false,
        io_uring_coloured: false,
        ..ArchConfig::GENERIC
    };

    /// `translation_exists(vma, addr[, pfn])` followed by the pfn comparison: does the PTE of
    /// `va` (looked at without any lock) say `pfn` is mapped there?
    pub async fn translation_exists(&self, cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr, pfn: Pfn) -> bool {
        let layout = cx.layout();
        let pte = cx.read_pte(vma.mm, va).await;
        match self.filter {
            Filter::Loose2614 => {
                if !layout.translation_filter_2614(pte) {
                    return false;
                }
                // The caller dereferences the PTE pointer again for the pfn.
                let again = cx.read_pte(vma.mm, va).await;
                again.raw_pfn() == pfn
            }
            Filter::Hugh2615 => layout.translation_matches_2615(pte, pfn),
        }
    }

    fn still_maps(&self, cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr, pfn: Pfn) -> bool {
        cx.layout().translation_matches_2615(cx.peek_pte(vma.mm, va), pfn)
    }
}

impl ArchHooks for Linux26 {
    fn arch_get_unmapped_area<'a>(
        &'a self, cx: ArchCtx<'a>, mm: MmId, args: MmapArgs,
    ) -> HookFuture<'a, Result<VirtAddr, Errno>> {
        Box::pin(async move { parisc::get_unmapped_area_2612(cx, mm, &args) })
    }
    fn ptep_get_and_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            cx.lock(LockId::PaDbit).await;
            let layout = cx.layout();
            let old = cx.update_pte(mm, va, move |p| layout.after_get_and_clear(p)).await;
            cx.unlock(LockId::PaDbit);
            old
        })
    }
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { parisc::flush_cache_range_2x(cx, &vma, start, end).await })
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let exists = match self.filter {
                // 2.6.14's flush_cache_page ignores its pfn argument.
                Filter::Loose2614 => cx.layout().translation_filter_2614(cx.read_pte(vma.mm, va).await),
                Filter::Hugh2615 => self.translation_exists(cx, &vma, va, pfn).await,
            };
            if exists {
                parisc::flush_user_page(cx, &vma, va).await;
            }
        })
    }
    fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(cx, page) {
                return;
            }
            parisc::flush_kernel_page(cx, page).await;
            let Some(file) = parisc::page_file(cx, page) else {
                return;
            };
            cx.lock(LockId::FlushDcacheMmap(file)).await;
            for (vma, va) in cx.file_mappings(page) {
                if !self.translation_exists(cx, &vma, va, page).await {
                    continue;
                }
                cx.label("flush_dcache_page: translation exists").await;
                parisc::flush_user_page(cx, &vma, va).await;
                if self.recheck && !self.still_maps(cx, &vma, va, page) {
                    continue;
                }
                break;
            }
            cx.unlock(LockId::FlushDcacheMmap(file));
        })
    }
    fn update_mmu_cache<'a>(
        &'a self, cx: ArchCtx<'a>, _vma: Vma, _va: VirtAddr, pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(parisc::update_cache_deferred(cx, pte))
    }
    fn copy_user_highpage<'a>(
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, _va: VirtAddr, _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.copy_page_kernel(to, from).await;
            parisc::flush_kernel_page(cx, to).await;
        })
    }
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(parisc::clear_user_page_2x(cx, page, va))
    }
    /// `flush_icache_page` (2.6.12 `cacheflush.h`): `flush_kernel_dcache_page(page_address(page))`
    /// (`fdc` over the kernel alias, no purge) and `flush_kernel_icache_page` (no I-cache here).
    fn flush_icache_page<'a>(&'a self, cx: ArchCtx<'a>, _vma: Vma, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page(cx, page))
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.arch().flush_cache_page(vma, va, page).await;
            let kva = page.word(va.word_in_page()).kernel_va();
            cx.kernel_store(kva, value).await;
            cx.fdc(SpaceId::KERNEL, kva).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            cx.arch().flush_cache_page(vma, va, page).await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
