//! `linux-6.0`: the 2022 PA8800/PA8900 design, before the 2024 fixes (historic bug B17).

use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::{LockId, MmId, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::parisc;

/// Kernel 5.19–6.9 parisc on PA8800/PA8900 (`parisc_requires_coherency()`), cache.c @
/// `03ab8e62`. This lineage takes that path on every machine.
///
/// * `flush_cache_page(vma, addr, pfn)` first looks at the PTE without the lock and flushes
///   only if `pte_needs_cache_flush` (present and **accessed**); the flush goes through the
///   **user address** in the target mm (`flush_user_cache_page`), then the TLB entry is
///   purged.
/// * `flush_dcache_page` flushes every mapping whose PTE passes the same check, by user
///   address.
/// * `ptep_clear_flush` is the generic one: it clears the PTE and flushes the TLB entry, and
///   no cache.
/// * Page aging (`ptep_clear_flush_young`) clears `_PAGE_ACCESSED` without purging the TLB,
///   so a CPU keeps writing through its entry while the PTE looks old.
///
/// Together: (b) reclaim ages a page, its owner keeps storing, `flush_cache_page` sees an old
/// PTE and skips the flush, `ptep_clear_flush` drops the translation, the page is written to
/// swap from memory and freed with dirty lines still in the cache; (c) a presence check sees
/// the PTE present, a racer clears it, the `fdc`s by user address are nullified. The 2024 fix
/// ("parisc: Try to fix random segmentation faults in package builds", v6.10) made
/// `ptep_clear_flush` flush by physical address and dropped the checks: see `linux-6.x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux60;

impl Linux60 {
    /// The knobs: the current miss handlers and generic mm.
    pub const CONFIG: ArchConfig = ArchConfig::GENERIC;

    /// `flush_user_cache_page`: `fdc` by user address in the target mm, then purge the TLB.
    async fn flush_user_cache_page(&self, cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr) {
        parisc::flush_user_page(cx, vma, va).await;
        cx.arch().flush_tlb_page(*vma, va.page_base()).await;
    }

    /// The racy check, then the user-address flush.
    async fn flush_if_needed(&self, cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr) {
        let pte = cx.read_pte(vma.mm, va).await;
        if parisc::pte_needs_cache_flush(pte) {
            cx.label("flush_cache_page: pte needs flush").await;
            self.flush_user_cache_page(cx, vma, va).await;
        }
    }

    async fn flush_range_pages(&self, cx: ArchCtx<'_>, vma: &Vma, start: VirtAddr, end: VirtAddr) {
        let mut va = start.page_base();
        while va < end {
            self.flush_if_needed(cx, vma, va).await;
            va = va.add_pages(1);
        }
    }
}

impl ArchHooks for Linux60 {
    fn set_pte_at<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr, pte: Pte) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.write_pte(mm, va, pte).await;
            cx.purge_tlb(cx.mm_space(mm), va).await;
        })
    }
    fn ptep_clear_flush_young<'a>(&'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let old = cx.update_pte(vma.mm, va, |p| p.without_flags(PteFlags::ACCESSED)).await;
            old.has(PteFlags::ACCESSED)
        })
    }
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(async move {
            for v in cx.mm_vmas(mm) {
                self.flush_range_pages(cx, &v, v.start, v.end).await;
            }
        })
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_range_pages(cx, &vma, start, end).await })
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_if_needed(cx, &vma, va).await })
    }
    fn flush_anon_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::page_anon(cx, page) {
                self.flush_if_needed(cx, &vma, va).await;
            }
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
            for (vma, va) in cx.file_mappings(page) {
                self.flush_if_needed(cx, &vma, va).await;
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
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, va: VirtAddr, vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            self.flush_if_needed(cx, &vma, va).await;
            cx.copy_page_kernel(to, from).await;
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
            self.flush_if_needed(cx, &vma, va).await;
            cx.kernel_store(page.word(va.word_in_page()).kernel_va(), value).await;
            parisc::flush_kernel_page_and_purge(cx, page).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            self.flush_if_needed(cx, &vma, va).await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
    fn kunmap<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(cx, page))
    }
}
