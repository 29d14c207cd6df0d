//! `linux-2.4`: parisc Linux 2.4 before `_PAGE_FLUSH` (2.4.0–2.4.19).

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::{ArchHooks, HookFuture, Kernel, LockId, MmId, UnmapOrder, Vma};
use vipt_emu::pte::{Pte, PteLayout};

use crate::parisc;
use crate::window;

/// Kernel 2.4 (before 2.4.20), parisc.
///
/// * `flush_dcache_page`: flush the kernel alias, then `fdc` the page through the **first**
///   VMA of `i_mmap` that covers it, with no check that the VMA maps it at all: a VMA whose
///   PTE is gone has every `fdc` nullified; one that COWed flushes its private copy.
/// * `ptep_get_and_clear` zeroes the PTE (`_PAGE_FLUSH` came only in 2.4.20), and the rmap of
///   that era cleared the PTE **before** calling `flush_cache_page` ([`UnmapOrder::ClearThenFlush`]),
///   so reclaim's flush has no translation and is nullified: dirty user lines survive the
///   free (historic bug B1).
/// * `flush_cache_page` flushes by user address without a translation check;
///   `copy_user_page` copies through the kernel alias without flushing the source's user
///   alias; `MAP_FIXED` is not colour-checked.
///
/// Source: Hugh Dickins, LKML 2005-10-24 (`Pine.LNX.4.61.0510241714280.4543@goblin.wat.veritas.com`):
/// "PA-RISC's _PAGE_FLUSH got added a year later in 2.4.20 and 2.5.45" because generic code
/// "cleared the pte and then called flush_cache_page".
#[derive(Clone, Copy, Debug, Default)]
pub struct Linux24;

impl ArchHooks for Linux24 {
    fn name(&self) -> &str {
        "linux-2.4"
    }
    fn miss_policy(&self) -> MissPolicy {
        MissPolicy {
            layout: PteLayout::Linux2614,
            flush_ptes: false,
            tmpalias_data: true,
            tmpalias_nonaccess: false,
        }
    }
    fn map_fixed_checks_colour(&self) -> bool {
        false
    }
    fn unmap_order(&self) -> UnmapOrder {
        UnmapOrder::ClearThenFlush
    }
    fn flush_cache_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(k.flush_cache_all(cpu))
    }
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        _vma: Vma,
        _s: VirtAddr,
        _e: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(k.flush_cache_all(cpu))
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            parisc::flush_user_page(k, cpu, &vma, va).await;
        })
    }
    fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(k, page) {
                return;
            }
            parisc::flush_kernel_page(k, cpu, page).await;
            let Some(file) = parisc::page_file(k, page) else {
                return;
            };
            k.lock(cpu, LockId::FlushDcacheMmap(file)).await;
            if let Some((vma, va)) = k.file_mappings(page).first().copied() {
                parisc::flush_user_page(k, cpu, &vma, va).await;
            }
            k.unlock(cpu, LockId::FlushDcacheMmap(file));
        })
    }
    fn flush_kernel_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page(k, cpu, page))
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
        _va: VirtAddr,
        _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            k.copy_page_kernel(cpu, to, from).await;
            parisc::flush_kernel_page(k, cpu, to).await;
        })
    }
    fn clear_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            parisc::purge_kernel_page(k, cpu, page).await;
            window::clear_user_page_asm(k, cpu, page, va).await;
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
            parisc::flush_user_page(k, cpu, &vma, va).await;
            let kva = page.word(va.word_in_page()).kernel_va();
            k.kernel_store(cpu, kva, value).await;
            k.fdc(cpu, vipt_emu::addr::SpaceId::KERNEL, kva).await;
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
            parisc::flush_user_page(k, cpu, &vma, va).await;
            k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
