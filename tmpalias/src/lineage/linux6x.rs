//! `linux-6.x`: the current parisc cache code.

use vipt_emu::addr::{CpuId, Pfn, SHM_COLOUR, VirtAddr};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, HookFuture, Kernel, LockId, Mapping, MmId, PageFlags, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::parisc;
use crate::window;

/// Current parisc (cache.c @ `52ce9406`, pgtable.h @ `97ed1c82`, mid-2025).
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
/// Also: `set_pte_at` flushes a deferred kernel alias (`__update_cache`) and purges the TLB
/// entry; `ptep_clear_flush` clears the PTE and then flushes the page by physical address;
/// `copy_user_highpage` flushes the source's user alias before copying through kernel aliases,
/// and every `kunmap` flushes the kernel alias; `flush_cache_mm`/`flush_cache_range` flush the
/// whole cache (after a TLB flush) except on PA8800/PA8900 for small ranges, which are flushed
/// page by page when present.
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux6x;

/// `__flush_cache_page`: purge the TLB entry, then flush by physical address via tmpalias.
pub async fn flush_cache_page_phys(k: &Kernel, cpu: CpuId, vma: &Vma, va: VirtAddr, page: Pfn) {
    k.arch().flush_tlb_page(k, cpu, *vma, va.page_base()).await;
    window::flush_dcache_page_asm(k, cpu, page, va).await;
}

impl Linux6x {
    /// `__update_cache`: a deferred kernel-alias flush, or on PA8800 any kernel alias.
    async fn update_cache(&self, k: &Kernel, cpu: CpuId, pte: Pte) {
        if !k.layout().pte_present(pte) || !k.machine().mem.pfn_valid(pte.raw_pfn()) {
            return;
        }
        let page = pte.raw_pfn();
        let deferred =
            parisc::page_file(k, page).is_some() && k.clear_page_flags(page, PageFlags::DCACHE_DIRTY);
        if deferred || parisc::requires_coherency(k) {
            parisc::flush_kernel_page_tmpalias(k, cpu, page).await;
        }
    }

    /// Threshold of the whole-cache path: `dc_size * num_online_cpus()`.
    fn threshold(k: &Kernel) -> u64 {
        let m = k.machine();
        m.config().cache_bytes() * m.ncpus() as u64
    }

    /// `flush_cache_pages`: each present page of the range, by physical address.
    async fn flush_cache_pages(&self, k: &Kernel, cpu: CpuId, vma: &Vma, start: VirtAddr, end: VirtAddr) {
        let mut va = start.page_base();
        while va < end {
            let pte = k.read_pte(cpu, vma.mm, va).await;
            if k.layout().pte_present(pte) && k.machine().mem.pfn_valid(pte.raw_pfn()) {
                flush_cache_page_phys(k, cpu, vma, va, pte.raw_pfn()).await;
            }
            va = va.add_pages(1);
        }
    }
}

impl ArchHooks for Linux6x {
    fn name(&self) -> &str {
        "linux-6.x"
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
            if k.layout().pte_present(pte) && pte.has(PteFlags::USER) {
                self.update_cache(k, cpu, pte).await;
            }
            k.write_pte(cpu, mm, va, pte).await;
            k.purge_tlb(cpu, k.mm_space(mm), va).await;
        })
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
            if k.layout().pte_present(old) && k.machine().mem.pfn_valid(old.raw_pfn()) {
                flush_cache_page_phys(k, cpu, &vma, va, old.raw_pfn()).await;
            } else if !k.layout().pte_none(old) {
                k.arch().flush_tlb_page(k, cpu, vma, va).await;
            }
            old
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
            let total: u64 = vmas.iter().map(|v| v.end.0 - v.start.0).sum();
            if !parisc::requires_coherency(k) || total >= Self::threshold(k) {
                k.arch().flush_tlb_all(k, cpu).await;
                k.flush_cache_all(cpu).await;
                return;
            }
            for v in vmas {
                self.flush_cache_pages(k, cpu, &v, v.start, v.end).await;
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
        Box::pin(async move {
            if !parisc::requires_coherency(k) || end.0 - start.0 >= Self::threshold(k) {
                k.arch().flush_tlb_range(k, cpu, vma.mm, start, end).await;
                k.flush_cache_all(cpu).await;
                return;
            }
            self.flush_cache_pages(k, cpu, &vma, start, end).await;
        })
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { flush_cache_page_phys(k, cpu, &vma, va, pfn).await })
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
                flush_cache_page_phys(k, cpu, &vma, va, page).await;
            }
        })
    }
    fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(k, page) {
                return;
            }
            parisc::flush_kernel_page_tmpalias(k, cpu, page).await;
            let Some(file) = parisc::page_file(k, page) else {
                return;
            };
            k.lock(cpu, LockId::FlushDcacheMmap(file)).await;
            let mut old: Option<VirtAddr> = None;
            for (vma, va) in k.file_mappings(page) {
                if old.is_none_or(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    flush_cache_page_phys(k, cpu, &vma, va, page).await;
                }
                if !vma.shared {
                    continue;
                }
                if old.is_some_and(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    k.note(cpu, "INEQUIVALENT ALIASES");
                }
                old = Some(va);
            }
            k.unlock(cpu, LockId::FlushDcacheMmap(file));
        })
    }
    fn flush_kernel_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_tmpalias(k, cpu, page))
    }
    fn update_mmu_cache<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _vma: Vma,
        _va: VirtAddr,
        pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(self.update_cache(k, cpu, pte))
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
            flush_cache_page_phys(k, cpu, &vma, va, from).await;
            k.copy_page_kernel(cpu, to, from).await;
            parisc::flush_kernel_page_tmpalias(k, cpu, to).await;
            parisc::flush_kernel_page_tmpalias(k, cpu, from).await;
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
            parisc::flush_kernel_page_tmpalias(k, cpu, page).await;
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
            flush_cache_page_phys(k, cpu, &vma, va, page).await;
            k.kernel_store(cpu, page.word(va.word_in_page()).kernel_va(), value).await;
            parisc::flush_kernel_page_tmpalias(k, cpu, page).await;
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
            flush_cache_page_phys(k, cpu, &vma, va, page).await;
            let v = k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await;
            parisc::flush_kernel_page_tmpalias(k, cpu, page).await;
            v
        })
    }
    fn kunmap<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_tmpalias(k, cpu, page))
    }
    fn flush_tlb_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(k.flush_tlb_all_cpus(cpu))
    }
}
