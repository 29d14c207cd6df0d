//! `whole-cache`: flush everything, every time.

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::mm::{ArchHooks, HookFuture, Kernel, MmId, MmuGather, Vma};
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

/// `flush_tlb_all`, then `flush_cache_all` twice. One pass is not atomic: a line that a
/// concurrent access refills, in a set the pass has already visited, from memory that a later
/// set's dirty line has not yet updated, would survive it. After the first pass memory holds
/// everything that was dirty, so the second pass drops those refills and whatever is filled
/// during it is fresh.
async fn flush_everything(k: &Kernel, cpu: CpuId) {
    k.arch().flush_tlb_all(k, cpu).await;
    k.flush_cache_all(cpu).await;
    k.flush_cache_all(cpu).await;
}

impl ArchHooks for WholeCache {
    fn name(&self) -> &str {
        "whole-cache"
    }
    fn ptep_clear_flush<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = k.arch().ptep_get_and_clear(k, cpu, vma.mm, va).await;
            flush_everything(k, cpu).await;
            old
        })
    }
    fn tlb_flush<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _tlb: &'a MmuGather) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_cache_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _v: Vma,
        _s: VirtAddr,
        _e: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _v: Vma,
        _va: VirtAddr,
        _p: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _p: Pfn) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_anon_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _v: Vma,
        _p: Pfn,
        _va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn flush_kernel_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _p: Pfn) -> HookFuture<'a, ()> {
        Box::pin(flush_everything(k, cpu))
    }
    fn copy_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        to: Pfn,
        from: Pfn,
        _va: VirtAddr,
        _v: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_everything(k, cpu).await;
            k.copy_page_kernel(cpu, to, from).await;
            flush_everything(k, cpu).await;
        })
    }
    fn clear_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        page: Pfn,
        _va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            k.clear_page_kernel(cpu, page).await;
            flush_everything(k, cpu).await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _v: Vma,
        page: Pfn,
        va: VirtAddr,
        value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            flush_everything(k, cpu).await;
            k.kernel_store(cpu, page.word(va.word_in_page()).kernel_va(), value).await;
            flush_everything(k, cpu).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _v: Vma,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            flush_everything(k, cpu).await;
            k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
