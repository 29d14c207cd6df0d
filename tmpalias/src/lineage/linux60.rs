//! `linux-6.0`: the 2022 design with its PA8800/PA8900 path, before the 2024 fixes (historic
//! bug B17).

use vipt_emu::addr::{Pfn, SHM_COLOUR, SpaceId, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, LockId, MmId, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::pacache;
use crate::parisc;

/// Parisc 5.19–6.9: `arch/parisc/kernel/cache.c` @ `03ab8e62` and the `pgtable.h` of that
/// range. Every user-page routine branches on `parisc_requires_coherency()` (PA8800/PA8900).
///
/// On PA8800/PA8900 (`requires_coherency`):
/// * `flush_user_cache_page` flushes **by user address** in the target mm (`fdc` over the
///   page with the target's space and page table loaded), then purges its TLB entry; an `fdc`
///   without a translation is nullified;
/// * `flush_cache_page` and `flush_anon_page` call it unconditionally; `flush_dcache_page`
///   calls it for each mapping whose PTE passes `pte_needs_flush` (present, accessed,
///   cacheable), read without the page-table lock;
/// * `flush_cache_mm`/`flush_cache_range` below `dc_size × ncpus` flush page by page
///   (`flush_cache_pages`: the same PTE check, then `flush_user_cache_page`).
///
/// Elsewhere:
/// * `__flush_cache_page` is the tmpalias flush by physical address alone (no TLB purge);
///   `flush_cache_page` calls it unconditionally (no PTE check);
/// * `flush_dcache_page` purges every mapping's TLB entry and tmpalias-flushes once per colour
///   (private mappings never count as flushed); `flush_anon_page` purges, then flushes by
///   tmpalias; `flush_cache_mm`/`flush_cache_range` flush every TLB and the whole cache.
///
/// On every machine:
/// * `flush_kernel_dcache_page_addr` (kernel-alias flush, `kunmap`, `__update_cache`) is `fdc`
///   over the kernel address, then a kernel TLB purge;
/// * `flush_cache_page_if_present` (`copy_user_highpage`, `copy_to_user_page`,
///   `copy_from_user_page`) looks at the PTE without the lock and calls `flush_cache_page` only
///   if `pte_needs_flush`; `copy_to_user_page` ends with `fdc` over the bytes it stored
///   through the kernel alias (no purge), `copy_from_user_page` with nothing;
/// * `set_pte_at`: `__update_cache` for a present user PTE, the store, `purge_tlb_entries`;
///   `pte_clear` is `set_pte_at(.., 0)`; parisc's own `ptep_get_and_clear` reads the PTE and
///   then `set_pte_at(.., 0)` (two steps); `ptep_set_wrprotect` and `ptep_test_and_clear_young`
///   go through `set_pte_at` too, so each purges the TLB entry;
/// * `ptep_clear_flush_young` is the generic one (test-and-clear young, then `flush_tlb_page`
///   if it was young); `ptep_clear_flush` is the generic one: it clears the PTE and flushes the
///   TLB entry, **not the cache**;
/// * `update_mmu_cache` is `__update_cache`: a deferred kernel-alias flush
///   (`PG_dcache_dirty`), or on PA8800/PA8900 a kernel-alias flush anyway.
///
/// The holes (B17, fixed in 6.10 by "parisc: Try to fix random segmentation faults in
/// package builds", see `linux-6.10`): (b) a store between reclaim's `flush_cache_page` and
/// `ptep_clear_flush` leaves a dirty line on a page that is then freed, because
/// `ptep_clear_flush` flushes no cache; (c) on every machine `flush_cache_page_if_present`
/// skips the source flush of a COW copy whose faulting PTE is not present yet (a private
/// mapping's first write), so the copy reads memory past another mapping's dirty line; and on
/// PA8800/PA8900 every PTE check is racy and the flushes go through the user address, so a PTE
/// cleared or aged between check and flush leaves lines behind.
///
/// Placement (`arch_get_unmapped_area`, io_uring's ring placement) is that of 6.0 (5.19–6.3):
/// shared anonymous memory first fit, rings at their file's colour; 6.4–6.9 differ there (see
/// [`Linux60::CONFIG`] and the `arch_get_unmapped_area` hook).
///
/// Sources: `torvalds/linux` `arch/parisc/kernel/cache.c` @ `03ab8e62`,
/// `arch/parisc/include/asm/pgtable.h` @ `f05ff964` (a 5.16–6.2 state) and
/// `arch/parisc/include/asm/cacheflush.h` @ `0604aa87`; the v2 posting of the 6.10 fix (based
/// on 6.8.9), whose pre-image shows the same routines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux60;

impl Linux60 {
    /// The knobs: the current miss handlers and generic mm, with io_uring's placement of 6.0
    /// (by the ring file's colour, not the kernel address's: the congruent placement came with
    /// d808459b2e31 in 6.4, routed through the architecture's `get_unmapped_area` by
    /// 32832a407a71 and 56675f8b9f9b in 6.5; 6.1-stable has it from 6.1.51).
    pub const CONFIG: ArchConfig = ArchConfig { io_uring_coloured: false, ..ArchConfig::GENERIC };
}

/// `__update_cache` (6.0): a deferred kernel-alias flush, or on PA8800/PA8900 any kernel
/// alias, with the `fdc` + kernel purge `flush_kernel_dcache_page_addr`.
async fn update_cache(cx: ArchCtx<'_>, pte: Pte) {
    let page = pte.raw_pfn();
    if !cx.pfn_valid(page) {
        return;
    }
    let deferred = parisc::page_file(cx, page).is_some() && cx.test_and_clear_dcache_dirty(page);
    if deferred || cx.requires_coherency() {
        parisc::flush_kernel_page_and_purge(cx, page).await;
    }
}

/// `set_pte_at` (6.0 macro): `__update_cache` for a present user PTE, the store, then
/// `purge_tlb_entries`.
async fn set_pte_at(cx: ArchCtx<'_>, mm: MmId, va: VirtAddr, pte: Pte) {
    if cx.layout().pte_present(pte) && pte.has(PteFlags::USER) {
        update_cache(cx, pte).await;
    }
    cx.write_pte(mm, va, pte).await;
    cx.purge_tlb(cx.mm_space(mm), va).await;
}

/// `flush_user_cache_page` (PA8800/PA8900): `fdc` over the page at its user address in the
/// target mm, then `flush_tlb_page`.
async fn flush_user_cache_page(cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr) {
    cx.label("flush_user_cache_page").await;
    parisc::flush_user_page(cx, vma, va).await;
    cx.arch().flush_tlb_page(*vma, va.page_base()).await;
}

/// `__flush_cache_page` (6.0): the tmpalias flush by physical address, no TLB purge.
async fn flush_cache_page_tmpalias(cx: ArchCtx<'_>, va: VirtAddr, page: Pfn) {
    pacache::flush_dcache_page_asm(cx, page, va).await;
}

/// `get_ptep` and `pte_needs_flush`, without the page-table lock.
async fn pte_needs_flush(cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr) -> Option<Pte> {
    let pte = cx.read_pte(vma.mm, va).await;
    parisc::pte_needs_cache_flush(pte).then_some(pte)
}

/// `flush_cache_page_if_present`: the racy PTE check, then `flush_cache_page`.
async fn flush_cache_page_if_present(cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr, pfn: Pfn) {
    if pte_needs_flush(cx, vma, va).await.is_some() {
        cx.label("flush_cache_page_if_present: pte needs flush").await;
        cx.arch().flush_cache_page(*vma, va, pfn).await;
    }
}

/// `flush_cache_pages`: each page whose PTE needs a flush, by user address on PA8800/PA8900,
/// else by tmpalias (a PTE with an invalid pfn ends the walk, after a `WARN_ON`).
async fn flush_cache_pages(cx: ArchCtx<'_>, vma: &Vma, start: VirtAddr, end: VirtAddr) {
    let mut va = start.page_base();
    while va < end {
        if let Some(pte) = pte_needs_flush(cx, vma, va).await {
            if cx.requires_coherency() {
                flush_user_cache_page(cx, vma, va).await;
            } else {
                if !cx.pfn_valid(pte.raw_pfn()) {
                    return;
                }
                flush_cache_page_tmpalias(cx, va, pte.raw_pfn()).await;
            }
        }
        va = va.add_pages(1);
    }
}

impl ArchHooks for Linux60 {
    /// The placement of 5.19–6.3 ([`parisc::get_unmapped_area_last_mmap`]): the lineage stands
    /// for 6.0 here. 6.4–6.9 (and 6.1.51 on) place `MAP_SHARED | MAP_ANONYMOUS` at colour 0
    /// (567b35159e76), as `linux-6.10` does.
    fn arch_get_unmapped_area<'a>(
        &'a self, cx: ArchCtx<'a>, mm: MmId, args: MmapArgs,
    ) -> HookFuture<'a, Result<VirtAddr, Errno>> {
        Box::pin(async move { parisc::get_unmapped_area_last_mmap(cx, mm, &args) })
    }
    fn set_pte_at<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr, pte: Pte) -> HookFuture<'a, ()> {
        Box::pin(set_pte_at(cx, mm, va, pte))
    }
    /// `pte_clear` = `set_pte_at(mm, addr, xp, __pte(0))`.
    fn pte_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, ()> {
        cx.arch().set_pte_at(mm, va, Pte::NONE)
    }
    /// parisc `ptep_get_and_clear`: `old_pte = *ptep; set_pte_at(mm, addr, ptep, __pte(0))`.
    fn ptep_get_and_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.read_pte(mm, va).await;
            cx.arch().set_pte_at(mm, va, Pte::NONE).await;
            old
        })
    }
    /// `ptep_set_wrprotect` = `set_pte_at(mm, addr, ptep, pte_wrprotect(*ptep))`.
    fn ptep_set_wrprotect<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let old = cx.read_pte(mm, va).await;
            cx.arch().set_pte_at(mm, va, old.without_flags(PteFlags::WRITE)).await;
        })
    }
    /// The generic `ptep_clear_flush_young` over parisc's `ptep_test_and_clear_young` (read;
    /// if young, `set_pte_at` of the old PTE), then `flush_tlb_page` if it was young.
    fn ptep_clear_flush_young<'a>(&'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let pte = cx.read_pte(vma.mm, va).await;
            if !pte.has(PteFlags::ACCESSED) {
                return false;
            }
            cx.arch().set_pte_at(vma.mm, va, pte.without_flags(PteFlags::ACCESSED)).await;
            cx.arch().flush_tlb_page(vma, va).await;
            true
        })
    }
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let vmas = cx.mm_vmas(mm);
            if parisc::flush_whole_cache(cx, parisc::mapped_bytes(&vmas)) {
                cx.flush_tlb_all().await;
                cx.flush_cache_all().await;
                return;
            }
            for v in vmas {
                flush_cache_pages(cx, &v, v.start, v.end).await;
            }
        })
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::flush_whole_cache(cx, start.bytes_to(end)) {
                cx.arch().flush_tlb_range(vma.mm, start, end).await;
                cx.flush_cache_all().await;
                return;
            }
            flush_cache_pages(cx, &vma, start, end).await;
        })
    }
    /// `flush_cache_page`: `WARN_ON(!pfn_valid)`; on PA8800/PA8900 `flush_user_cache_page`,
    /// else `__flush_cache_page`. No PTE check.
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if !cx.pfn_valid(pfn) {
                return;
            }
            if cx.requires_coherency() {
                flush_user_cache_page(cx, &vma, va).await;
            } else {
                flush_cache_page_tmpalias(cx, va, pfn).await;
            }
        })
    }
    fn flush_anon_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if !parisc::page_anon(cx, page) {
                return;
            }
            if cx.requires_coherency() {
                flush_user_cache_page(cx, &vma, va).await;
                return;
            }
            cx.arch().flush_tlb_page(vma, va.page_base()).await;
            pacache::flush_dcache_page_asm(cx, page, va).await;
        })
    }
    fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(cx, page) {
                return;
            }
            parisc::flush_kernel_page_and_purge(cx, page).await;
            let Some(file) = parisc::page_file(cx, page) else {
                return;
            };
            cx.lock(LockId::FlushDcacheMmap(file)).await;
            let mut old: Option<VirtAddr> = None;
            for (vma, va) in cx.file_mappings(page) {
                if cx.requires_coherency() {
                    if pte_needs_flush(cx, &vma, va).await.is_some() {
                        cx.label("flush_dcache_page: pte needs flush").await;
                        flush_user_cache_page(cx, &vma, va).await;
                    }
                    continue;
                }
                cx.arch().flush_tlb_page(vma, va).await;
                if old.is_none_or(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    flush_cache_page_tmpalias(cx, va, page).await;
                    if !vma.shared {
                        continue;
                    }
                    if old.is_some() {
                        cx.note("INEQUIVALENT ALIASES");
                    }
                    old = Some(va);
                }
            }
            cx.unlock(LockId::FlushDcacheMmap(file));
        })
    }
    /// `flush_icache_page`: `flush_kernel_dcache_page_addr(page_address(page))` (`fdc` over
    /// the kernel alias, then purge its TLB entry) and `flush_kernel_icache_page` (no I-cache
    /// here).
    fn flush_icache_page<'a>(&'a self, cx: ArchCtx<'a>, _vma: Vma, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(cx, page))
    }
    fn update_mmu_cache<'a>(
        &'a self, cx: ArchCtx<'a>, _vma: Vma, _va: VirtAddr, pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(update_cache(cx, pte))
    }
    fn copy_user_highpage<'a>(
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, va: VirtAddr, vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_cache_page_if_present(cx, &vma, va, from).await;
            cx.copy_page_kernel(to, from).await;
            // kunmap_local(kto), kunmap_local(kfrom): flush_kernel_dcache_page_addr each.
            parisc::flush_kernel_page_and_purge(cx, to).await;
            parisc::flush_kernel_page_and_purge(cx, from).await;
        })
    }
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.clear_page_kernel(page).await;
            parisc::flush_kernel_page_and_purge(cx, page).await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_cache_page_if_present(cx, &vma, va, page).await;
            let kva = page.word(va.word_in_page()).kernel_va();
            cx.kernel_store(kva, value).await;
            // flush_kernel_dcache_range_asm(dst, dst + len): the stored line only.
            cx.fdc(SpaceId::KERNEL, kva).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            flush_cache_page_if_present(cx, &vma, va, page).await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
    fn kunmap<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(cx, page))
    }
    /// `flush_tlb_mm` (`tlbflush.h`): `flush_tlb_all`.
    fn flush_tlb_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_tlb_all())
    }
}
