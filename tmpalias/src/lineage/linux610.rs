//! `linux-6.10`: the parisc cache code from the 2024 tmpalias rework up to the July 2025
//! `set_pte_at()` fix (kernels 6.10–6.16).

use vipt_emu::addr::{Pfn, SHM_COLOUR, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::{LockId, MmId, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::pacache;
use crate::parisc;

/// Parisc 6.10–6.16: `arch/parisc/kernel/cache.c` after "parisc: Try to fix random
/// segmentation faults in package builds" (`72d95924ee35`, v6.10), with the `pgtable.h` of that
/// range (`set_ptes` purging each entry, `pte_clear`, `ptep_set_wrprotect` and
/// `ptep_test_and_clear_young` storing with `set_pte`, which purges nothing; no parisc
/// `ptep_get_and_clear`).
///
/// `__flush_cache_page(vma, vmaddr, phys)` is the workhorse: purge the TLB entry of `vmaddr`
/// on every CPU (no CPU may speculate the page any more), then flush the physical page
/// through a flush-only tmpalias alias at `vmaddr`'s colour. It needs no PTE, so nothing that
/// happens to the PTE concurrently can make it miss.
///
/// Step by step, `flush_dcache_page(page)` (`flush_dcache_folio`):
/// 1. page-cache page of an unmapped file: `PG_dcache_dirty`, done;
/// 2. flush the kernel alias: purge its TLB entry, then tmpalias flush at its colour;
/// 3. anonymous: done;
/// 4. under `flush_dcache_mmap_lock`, for each VMA covering the page: if no shared mapping
///    was flushed yet or this one's colour differs, `__flush_cache_page`; private VMAs never
///    count as "flushed" (any number of private mappings may exist); shared VMAs of an already
///    flushed colour are skipped (equivalent aliases).
///
/// The PTE routines:
/// * `set_pte_at` (the generic `set_ptes(.., 1)` over parisc's `set_ptes`): a present user PTE
///   first gets `__update_cache` (the deferred kernel-alias flush, every install on
///   PA8800/PA8900), then the store, then `purge_tlb_entries`;
/// * `pte_clear` and `ptep_set_wrprotect` store with `set_pte`: no purge, so another CPU keeps
///   the old translation (a writable one after `ptep_set_wrprotect`) until the caller's TLB
///   flush;
/// * `ptep_get_and_clear` is the generic one: read the PTE, then `pte_clear` — two steps, not
///   an atomic exchange; so is `ptep_set_wrprotect` (read, then store);
/// * `ptep_clear_flush` (parisc's own) clears the PTE and then flushes the page by physical
///   address; `ptep_clear_flush_young` (parisc's own) reads the PTE and, if young, stores it old
///   with `set_pte`: no TLB purge and, with `CONFIG_FLUSH_PAGE_ACCESSED` 0 as shipped, no flush.
///
/// Also: `copy_user_highpage` flushes the source's user alias before copying through kernel
/// aliases, and every `kunmap` flushes the kernel alias; `flush_cache_mm`/`flush_cache_range`
/// flush the whole cache (after a TLB flush) except on PA8800/PA8900 for small ranges, which
/// are flushed page by page when present; `flush_icache_pages` flushes the kernel alias
/// (`flush_kernel_dcache_page_addr`) before a user mapping of a page-cache page is set.
///
/// Sources: `torvalds/linux` `arch/parisc/kernel/cache.c` @ `52ce9406` (unchanged in these
/// routines since 6.10), the merged commit text of `72d95924ee35` ("Drop parisc implementation
/// of ptep_get_and_clear. We can use default."), `hdeller/linux`
/// `arch/parisc/include/asm/pgtable.h` @ `97ed1c82`, the 6.12-stable backport of
/// `802e55488bc2` (its pre-image is this lineage's `pgtable.h`), `include/linux/pgtable.h`
/// (generic `ptep_get_and_clear`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux610;

impl Linux610 {
    /// Its knobs: the current miss handlers and generic mm.
    pub const CONFIG: ArchConfig = ArchConfig::GENERIC;
}

/// `__flush_cache_page`: purge the TLB entry, then flush by physical address via tmpalias.
pub async fn flush_cache_page_phys(cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr, page: Pfn) {
    cx.arch().flush_tlb_page(*vma, va.page_base()).await;
    pacache::flush_dcache_page_asm(cx, page, va).await;
}

/// `__update_cache` (6.10+): a deferred kernel-alias flush, or on PA8800/PA8900 any kernel
/// alias, with the tmpalias `flush_kernel_dcache_page_addr`.
pub async fn update_cache(cx: ArchCtx<'_>, pte: Pte) {
    if !cx.layout().pte_present(pte) || !cx.pfn_valid(pte.raw_pfn()) {
        return;
    }
    let page = pte.raw_pfn();
    let deferred = parisc::page_file(cx, page).is_some() && cx.test_and_clear_dcache_dirty(page);
    if deferred || cx.requires_coherency() {
        parisc::flush_kernel_page_tmpalias(cx, page).await;
    }
}

/// `set_ptes(mm, addr, ptep, pte, 1)` (6.6+): `__update_cache` for a present user PTE, the
/// store, then `purge_tlb_entries` (every CPU).
pub async fn set_ptes(cx: ArchCtx<'_>, mm: MmId, va: VirtAddr, pte: Pte) {
    if cx.layout().pte_present(pte) && pte.has(PteFlags::USER) {
        update_cache(cx, pte).await;
    }
    cx.write_pte(mm, va, pte).await;
    cx.purge_tlb(cx.mm_space(mm), va).await;
}

impl Linux610 {
    /// `flush_cache_pages`: each present page of the range, by physical address.
    async fn flush_cache_pages(&self, cx: ArchCtx<'_>, vma: &Vma, start: VirtAddr, end: VirtAddr) {
        let mut va = start.page_base();
        while va < end {
            let pte = cx.read_pte(vma.mm, va).await;
            if cx.layout().pte_present(pte) && cx.pfn_valid(pte.raw_pfn()) {
                flush_cache_page_phys(cx, vma, va, pte.raw_pfn()).await;
            }
            va = va.add_pages(1);
        }
    }
}

impl ArchHooks for Linux610 {
    fn set_pte_at<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr, pte: Pte) -> HookFuture<'a, ()> {
        Box::pin(set_ptes(cx, mm, va, pte))
    }
    /// `pte_clear` = `set_pte(ptep, __pte(0))`: a plain store, no TLB purge.
    fn pte_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(cx.write_pte(mm, va, Pte::NONE))
    }
    /// The generic `ptep_get_and_clear`: `ptep_get`, then `pte_clear` (two steps).
    fn ptep_get_and_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.read_pte(mm, va).await;
            cx.arch().pte_clear(mm, va).await;
            old
        })
    }
    /// `ptep_set_wrprotect` = `set_pte(ptep, pte_wrprotect(*ptep))`: read, then store; no
    /// TLB purge.
    fn ptep_set_wrprotect<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let old = cx.read_pte(mm, va).await;
            cx.write_pte(mm, va, old.without_flags(PteFlags::WRITE)).await;
        })
    }
    fn ptep_clear_flush<'a>(&'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.arch().ptep_get_and_clear(vma.mm, va).await;
            if cx.layout().pte_present(old) && cx.pfn_valid(old.raw_pfn()) {
                flush_cache_page_phys(cx, &vma, va, old.raw_pfn()).await;
            } else if !cx.layout().pte_none(old) {
                cx.arch().flush_tlb_page(vma, va).await;
            }
            old
        })
    }
    /// parisc `ptep_clear_flush_young` (`cache.c`): `ptep_get`; if young, `set_pte` of the old
    /// PTE. Neither the TLB nor the cache is flushed (`CONFIG_FLUSH_PAGE_ACCESSED` is 0).
    fn ptep_clear_flush_young<'a>(&'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let pte = cx.read_pte(vma.mm, va).await;
            if !pte.has(PteFlags::ACCESSED) {
                return false;
            }
            cx.write_pte(vma.mm, va, pte.without_flags(PteFlags::ACCESSED)).await;
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
                self.flush_cache_pages(cx, &v, v.start, v.end).await;
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
            self.flush_cache_pages(cx, &vma, start, end).await;
        })
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { flush_cache_page_phys(cx, &vma, va, pfn).await })
    }
    fn flush_anon_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::page_anon(cx, page) {
                flush_cache_page_phys(cx, &vma, va, page).await;
            }
        })
    }
    fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(cx, page) {
                return;
            }
            parisc::flush_kernel_page_tmpalias(cx, page).await;
            let Some(file) = parisc::page_file(cx, page) else {
                return;
            };
            cx.lock(LockId::FlushDcacheMmap(file)).await;
            let mut old: Option<VirtAddr> = None;
            for (vma, va) in cx.file_mappings(page) {
                if old.is_none_or(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    flush_cache_page_phys(cx, &vma, va, page).await;
                }
                if !vma.shared {
                    continue;
                }
                if old.is_some_and(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    cx.note("INEQUIVALENT ALIASES");
                }
                old = Some(va);
            }
            cx.unlock(LockId::FlushDcacheMmap(file));
        })
    }
    /// `flush_icache_pages`: `flush_kernel_dcache_page_addr` (purge the kernel TLB entry, then
    /// tmpalias flush of the kernel alias) and `flush_kernel_icache_page_addr` (no I-cache here).
    fn flush_icache_page<'a>(&'a self, cx: ArchCtx<'a>, _vma: Vma, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_tmpalias(cx, page))
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
            flush_cache_page_phys(cx, &vma, va, from).await;
            cx.copy_page_kernel(to, from).await;
            parisc::flush_kernel_page_tmpalias(cx, to).await;
            parisc::flush_kernel_page_tmpalias(cx, from).await;
        })
    }
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.clear_page_kernel(page).await;
            parisc::flush_kernel_page_tmpalias(cx, page).await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_cache_page_phys(cx, &vma, va, page).await;
            cx.kernel_store(page.word(va.word_in_page()).kernel_va(), value).await;
            parisc::flush_kernel_page_tmpalias(cx, page).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            flush_cache_page_phys(cx, &vma, va, page).await;
            let v = cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await;
            parisc::flush_kernel_page_tmpalias(cx, page).await;
            v
        })
    }
    fn kunmap<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_tmpalias(cx, page))
    }
    fn flush_tlb_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_tlb_all())
    }
}
