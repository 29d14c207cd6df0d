//! `tmpalias`: the 3.x kernels that first flushed user pages through the tmpalias window.

use vipt_emu::addr::{CpuId, Pfn, SHM_COLOUR, SpaceId, VirtAddr};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, HookFuture, Kernel, LockId, Mapping, MmId, Vma};
use vipt_emu::pte::Pte;

use crate::parisc;
use crate::window;

/// Kernel 3.0–3.9 parisc, after James Bottomley's "parisc: flush pages through tmpalias
/// space" (`f311847c2fcebd81912e2f0caf8a461dec28db41`).
///
/// Step by step, `flush_dcache_page(page)`:
/// 1. unmapped file: `PG_dcache_dirty`, done; 2. `fdc` the kernel alias, then purge its TLB
///    entry; 3. anonymous: done; 4. for every VMA covering the page: purge its TLB entry
///    ("the TLB is the engine of coherence"), and if its colour differs from the previous
///    flushed one, flush the page **by physical address** through the tmpalias window at that
///    colour. No PTE is looked at, so no race with a changing PTE can lose the flush.
///
/// `flush_cache_page` is a TLB purge plus a tmpalias flush; `flush_anon_page` the same for
/// anonymous pages. What 3.x still got wrong (the options select the 2013 half-fixes):
/// * `copy_user_page` copies through the kernel alias **without flushing the source's user
///   alias**, and `set_pte_at`/`ptep_set_wrprotect` purge no TLB entry, so a thread writing
///   through a stale writable TLB entry during `fork` dirties lines the COW copy misses (B7,
///   "minifail", fixed in 3.10 by `6d2ddc2f9414` and the TLB patch `7139bc15`);
/// * `flush_cache_range` of the current mm flushes by **user address**, so the `fdc`s of a
///   page whose PTE is gone are nullified while its lines may still be cached (B13).
///
/// Sources: `torvalds/linux` 3.0.8 `arch/parisc/kernel/cache.c`; John David Anglin, "parisc:
/// fixes and cleanups in page cache flushing (1/4)"; Dave Anglin, "Fix non-access data TLB
/// cache flush faults" (2022, `lp:f8835298`).
#[derive(Clone, Copy, Debug)]
pub struct Linux3x {
    /// Lineage name.
    pub name: &'static str,
    /// B7 half-fix (i): `set_pte_at`, `ptep_get_and_clear` and `ptep_set_wrprotect` purge the
    /// TLB entry (the 2013 TLB patch).
    pub purge_on_pte_change: bool,
    /// B7 half-fix (ii): `copy_user_page` flushes the source through tmpalias first.
    pub flush_source_before_copy: bool,
}

impl Linux3x {
    /// 3.0–3.9 as shipped.
    pub const TMPALIAS: Linux3x =
        Linux3x { name: "tmpalias", purge_on_pte_change: false, flush_source_before_copy: false };

    async fn flush_page_tmpalias(&self, k: &Kernel, cpu: CpuId, vma: &Vma, va: VirtAddr, page: Pfn) {
        k.purge_tlb(cpu, vma.space, va).await;
        window::flush_dcache_page_asm(k, cpu, page, va).await;
    }
}

impl ArchHooks for Linux3x {
    fn name(&self) -> &str {
        self.name
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
            if self.purge_on_pte_change {
                k.purge_tlb(cpu, k.mm_space(mm), va).await;
            }
        })
    }
    fn ptep_get_and_clear<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = k.xchg_pte(cpu, mm, va, Pte::NONE).await;
            if self.purge_on_pte_change {
                k.purge_tlb(cpu, k.mm_space(mm), va).await;
            }
            old
        })
    }
    fn ptep_set_wrprotect<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            k.update_pte(cpu, mm, va, |p| p.without_flags(vipt_emu::pte::PteFlags::WRITE)).await;
            if self.purge_on_pte_change {
                k.purge_tlb(cpu, k.mm_space(mm), va).await;
            }
        })
    }
    fn flush_cache_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(k.flush_cache_all(cpu))
    }
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        start: VirtAddr,
        end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { parisc::flush_cache_range_2x(k, cpu, &vma, start, end).await })
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_page_tmpalias(k, cpu, &vma, va, pfn).await })
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
                self.flush_page_tmpalias(k, cpu, &vma, va, page).await;
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
            let mut old: Option<VirtAddr> = None;
            for (vma, va) in k.file_mappings(page) {
                k.purge_tlb(cpu, vma.space, va).await;
                if old.is_none_or(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    window::flush_dcache_page_asm(k, cpu, page, va).await;
                    old = Some(va);
                }
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
        _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if self.flush_source_before_copy {
                window::flush_dcache_page_asm(k, cpu, from, va).await;
            }
            k.copy_page_kernel(cpu, to, from).await;
            parisc::flush_kernel_page_and_purge(k, cpu, to).await;
        })
    }
    fn clear_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(parisc::clear_user_page_2x(k, cpu, page, va))
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
            self.flush_page_tmpalias(k, cpu, &vma, va, page).await;
            let kva = page.word(va.word_in_page()).kernel_va();
            k.kernel_store(cpu, kva, value).await;
            k.fdc(cpu, SpaceId::KERNEL, kva).await;
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
            self.flush_page_tmpalias(k, cpu, &vma, va, page).await;
            k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
