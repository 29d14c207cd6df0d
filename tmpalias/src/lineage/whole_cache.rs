//! `whole-cache`: flush everything, every time.

use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::{MmId, MmuGather, Vma};
use vipt_emu::pte::Pte;

/// Every cache hook purges every TLB (no move-in from a stale translation) and then flushes
/// every CPU's whole D-cache. Copies and clears are bracketed by whole flushes, and so are the
/// points where translations disappear: `ptep_clear_flush` and the mmu_gather's `tlb_flush`
/// flush everything again after the PTEs are cleared, so a store that slipped in between the
/// first flush and the clear cannot leave a dirty line on a page about to be freed. Always
/// correct on an aliasing cache and the most expensive: the cost ceiling the other lineages
/// are measured against. Not a historical kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct WholeCache;

impl WholeCache {
    /// The knobs: the current miss handlers and generic mm.
    pub const CONFIG: ArchConfig = ArchConfig::GENERIC;
}

/// `flush_tlb_all`, then `flush_cache_all` twice. One pass is not atomic: a line that a
/// concurrent access refills, in a set the pass has already visited, from memory that a later
/// set's dirty line has not yet updated, would survive it. After the first pass memory holds
/// everything that was dirty, so the second pass drops those refills and whatever is filled
/// during it is fresh.
async fn flush_everything(cx: ArchCtx<'_>) {
    cx.flush_tlb_all().await;
    cx.flush_cache_all().await;
    cx.flush_cache_all().await;
}

impl ArchHooks for WholeCache {
    fn ptep_clear_flush<'a>(&'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.arch().ptep_get_and_clear(vma.mm, va).await;
            flush_everything(cx).await;
            old
        })
    }
    fn tlb_flush<'a>(&'a self, cx: ArchCtx<'a>, _tlb: &'a MmuGather) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, _s: VirtAddr, _e: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, _va: VirtAddr, _p: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, _p: Pfn) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_anon_page<'a>(&'a self, cx: ArchCtx<'a>, _v: Vma, _p: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn flush_icache_page<'a>(&'a self, cx: ArchCtx<'a>, _v: Vma, _p: Pfn) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(cx))
    }
    fn copy_user_highpage<'a>(
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, _va: VirtAddr, _v: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_everything(cx).await;
            cx.copy_page_kernel(to, from).await;
            flush_everything(cx).await;
        })
    }
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.clear_page_kernel(page).await;
            flush_everything(cx).await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_everything(cx).await;
            cx.kernel_store(page.word(va.word_in_page()).kernel_va(), value).await;
            flush_everything(cx).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            flush_everything(cx).await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
