//! `linux-6.0`: the 2022 PA8800/PA8900 design, before the 2024 fixes (historic bug B17).

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, HookFuture, Kernel, LockId, Mapping, MmId, Vma};
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
    /// `flush_user_cache_page`: `fdc` by user address in the target mm, then purge the TLB.
    async fn flush_user_cache_page(&self, k: &Kernel, cpu: CpuId, vma: &Vma, va: VirtAddr) {
        parisc::flush_user_page(k, cpu, vma, va).await;
        k.arch().flush_tlb_page(k, cpu, *vma, va.page_base()).await;
    }

    /// The racy check, then the user-address flush.
    async fn flush_if_needed(&self, k: &Kernel, cpu: CpuId, vma: &Vma, va: VirtAddr) {
        let pte = k.read_pte(cpu, vma.mm, va).await;
        if parisc::pte_needs_cache_flush(pte) {
            k.label(cpu, "flush_cache_page: pte needs flush").await;
            self.flush_user_cache_page(k, cpu, vma, va).await;
        }
    }

    async fn flush_range_pages(&self, k: &Kernel, cpu: CpuId, vma: &Vma, start: VirtAddr, end: VirtAddr) {
        let mut va = start.page_base();
        while va < end {
            self.flush_if_needed(k, cpu, vma, va).await;
            va = va.add_pages(1);
        }
    }
}

impl ArchHooks for Linux60 {
    fn name(&self) -> &str {
        "linux-6.0"
    }
    fn miss_policy(&self) -> MissPolicy {
        MissPolicy::CURRENT
    }
    fn set_pte_at<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
        pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            k.write_pte(cpu, mm, va, pte).await;
            k.purge_tlb(cpu, k.mm_space(mm), va).await;
        })
    }
    fn ptep_clear_flush_young<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
    ) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let old = k.update_pte(cpu, vma.mm, va, |p| p.without_flags(PteFlags::ACCESSED)).await;
            old.has(PteFlags::ACCESSED)
        })
    }
    fn flush_cache_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let vmas: Vec<Vma> = {
                let s = k.state();
                s.mms[mm.index()].vmas.iter().map(|&v| s.vma(v)).collect()
            };
            for v in vmas {
                self.flush_range_pages(k, cpu, &v, v.start, v.end).await;
            }
        })
    }
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        start: VirtAddr,
        end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_range_pages(k, cpu, &vma, start, end).await })
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_if_needed(k, cpu, &vma, va).await })
    }
    fn flush_anon_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if matches!(k.page(page).mapping, Mapping::Anon(_)) {
                self.flush_if_needed(k, cpu, &vma, va).await;
            }
        })
    }
    fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(k, page) {
                return;
            }
            parisc::flush_kernel_page_and_purge(k, cpu, page).await;
            let Some(file) = parisc::page_file(k, page) else {
                return;
            };
            k.lock(cpu, LockId::FlushDcacheMmap(file)).await;
            for (vma, va) in k.file_mappings(page) {
                self.flush_if_needed(k, cpu, &vma, va).await;
            }
            k.unlock(cpu, LockId::FlushDcacheMmap(file));
        })
    }
    fn flush_kernel_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(k, cpu, page))
    }
    fn update_mmu_cache<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _vma: Vma,
        _va: VirtAddr,
        pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(parisc::update_cache_deferred(k, cpu, pte, true))
    }
    fn copy_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        to: Pfn,
        from: Pfn,
        va: VirtAddr,
        vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            self.flush_if_needed(k, cpu, &vma, va).await;
            k.copy_page_kernel(cpu, to, from).await;
            parisc::flush_kernel_page_and_purge(k, cpu, to).await;
            parisc::flush_kernel_page_and_purge(k, cpu, from).await;
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
            parisc::flush_kernel_page_and_purge(k, cpu, page).await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
        value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            self.flush_if_needed(k, cpu, &vma, va).await;
            k.kernel_store(cpu, page.word(va.word_in_page()).kernel_va(), value).await;
            parisc::flush_kernel_page_and_purge(k, cpu, page).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            self.flush_if_needed(k, cpu, &vma, va).await;
            k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await
        })
    }
    fn kunmap<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(k, cpu, page))
    }
}
