//! Flush primitives shared by the parisc lineages: what `pacache.S` and the small helpers of
//! `cache.c` provide, written against the core's micro-step API.

use vipt_emu::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use vipt_emu::mm::{FileId, Kernel, Mapping, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::window;

/// 2.6-era `__flush_cache_page(vma, vmaddr)`: `fdc` over the page at its user address, in the
/// VMA's space (switching `%sr3`/`%cr25` to it when it is not current). Every `fdc` needs a
/// translation: without one it is silently nullified. Returns how many were.
pub async fn flush_user_page(k: &Kernel, cpu: CpuId, vma: &Vma, va: VirtAddr) -> usize {
    k.flush_page_lines(cpu, vma.space, va.page_base()).await
}

/// `FLUSH_THRESHOLD` of the 2.6 `cache.c` (and the 3.x default when no boot measurement
/// overrides it): range flushes of 512 KiB or more flush the whole cache.
pub const FLUSH_THRESHOLD: u64 = 0x80000;

/// 2.6/3.x `flush_cache_range`: by user address, line by line, when the VMA belongs to the
/// current mm (only its space is in `%sr3`); otherwise the whole cache. A page of the range
/// without a translation has its `fdc`s nullified (B13).
pub async fn flush_cache_range_2x(k: &Kernel, cpu: CpuId, vma: &Vma, start: VirtAddr, end: VirtAddr) {
    if k.current_mm(cpu) == Some(vma.mm) {
        flush_user_dcache_range(k, cpu, vma, start, end, FLUSH_THRESHOLD).await;
    } else {
        k.flush_cache_all(cpu).await;
    }
}

/// `flush_user_dcache_range(start, end)`: `fdc` over every line of `[start, end)` in the
/// VMA's space, or the whole cache at or above `threshold` bytes.
pub async fn flush_user_dcache_range(
    k: &Kernel,
    cpu: CpuId,
    vma: &Vma,
    start: VirtAddr,
    end: VirtAddr,
    threshold: u64,
) {
    if end.0 - start.0 >= threshold {
        k.flush_cache_all(cpu).await;
        return;
    }
    let line = k.machine().config().line_bytes;
    let mut a = start.align_down(line);
    while a < end {
        k.fdc(cpu, vma.space, a).await;
        a = a.add_bytes(line);
    }
}

/// 2.6-era `flush_kernel_dcache_page`: `fdc` over the page's kernel linear-map address.
pub async fn flush_kernel_page(k: &Kernel, cpu: CpuId, page: Pfn) {
    k.flush_kernel_page(cpu, page).await;
}

/// 3.x and 2022 `flush_kernel_dcache_page_addr`: `fdc` over the kernel address, then purge
/// its TLB entry so nothing is moved in again.
pub async fn flush_kernel_page_and_purge(k: &Kernel, cpu: CpuId, page: Pfn) {
    flush_kernel_page(k, cpu, page).await;
    k.purge_tlb(cpu, SpaceId::KERNEL, page.kernel_va()).await;
}

/// 2.6/3.x `clear_user_page`: purge the kernel alias, then zero the page through a tmpalias
/// alias at the user's colour.
pub async fn clear_user_page_2x(k: &Kernel, cpu: CpuId, page: Pfn, va: VirtAddr) {
    purge_kernel_page(k, cpu, page).await;
    window::clear_user_page_asm(k, cpu, page, va).await;
}

/// `purge_kernel_dcache_page`: `pdc` over the page's kernel address.
pub async fn purge_kernel_page(k: &Kernel, cpu: CpuId, page: Pfn) {
    k.purge_page_lines(cpu, SpaceId::KERNEL, page.kernel_va()).await;
}

/// Current `flush_kernel_dcache_page_addr`: purge the kernel TLB entry (no move-in), then
/// flush through a tmpalias alias at the kernel address's colour.
pub async fn flush_kernel_page_tmpalias(k: &Kernel, cpu: CpuId, page: Pfn) {
    let kva = page.kernel_va();
    k.purge_tlb(cpu, SpaceId::KERNEL, kva).await;
    window::flush_dcache_page_asm(k, cpu, page, kva).await;
}

/// `page_mapping()` for `flush_dcache_page`: the file of a page-cache page; `None` for
/// anonymous and swap-cache pages.
pub fn page_file(k: &Kernel, page: Pfn) -> Option<FileId> {
    match k.page(page).mapping {
        Mapping::File(f) => Some(f),
        _ => None,
    }
}

/// The opening of every parisc `flush_dcache_page`: a page-cache page of a file nobody maps
/// gets `PG_dcache_dirty` and its flush is deferred to `update_mmu_cache`. Returns `true`
/// when deferred.
pub fn defer_if_unmapped(k: &Kernel, page: Pfn) -> bool {
    match page_file(k, page) {
        Some(f) if !k.file_mapped(f) => {
            k.set_page_flags(page, vipt_emu::mm::PageFlags::DCACHE_DIRTY);
            true
        }
        _ => false,
    }
}

/// `update_mmu_cache` of the parisc lineages: a deferred kernel-alias flush is done now.
pub async fn update_cache_deferred(k: &Kernel, cpu: CpuId, pte: Pte, flush: bool) {
    if !k.layout().pte_present(pte) {
        return;
    }
    let page = pte.raw_pfn();
    if !k.machine().mem.pfn_valid(page) {
        return;
    }
    if page_file(k, page).is_some()
        && k.clear_page_flags(page, vipt_emu::mm::PageFlags::DCACHE_DIRTY)
        && flush
    {
        flush_kernel_page(k, cpu, page).await;
    }
}

/// `pte_needs_cache_flush`: present, accessed and cacheable.
pub fn pte_needs_cache_flush(pte: Pte) -> bool {
    pte.has(PteFlags::PRESENT | PteFlags::ACCESSED) && !pte.has(PteFlags::NO_CACHE)
}

/// Does the machine need the PA8800/PA8900 treatment (`parisc_requires_coherency`)?
pub fn requires_coherency(k: &Kernel) -> bool {
    matches!(k.machine().config().name, "pa8800" | "rp3440")
}
