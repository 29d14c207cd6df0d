//! Flush primitives shared by the parisc lineages: what `pacache.S` and the small helpers of
//! `cache.c` provide, written against the architecture handle [`ArchCtx`].

use vipt_emu::addr::{PAGE_SIZE, Pfn, SpaceId, VirtAddr};
use vipt_emu::arch::ArchCtx;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, FileId, Mapping, MmId, Vma};
use vipt_emu::pte::{Pte, PteFlags};

use crate::pacache;

/// 2.6-era `__flush_cache_page(vma, vmaddr)`: `fdc` over the page at its user address, in the
/// VMA's space (switching `%sr3`/`%cr25` to it when it is not current). Every `fdc` needs a
/// translation: without one it is silently nullified. Returns how many were.
pub async fn flush_user_page(cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr) -> usize {
    cx.flush_page_lines(vma.space, va.page_base()).await
}

/// `FLUSH_THRESHOLD` of the 2.6 `cache.c` (and the 3.x default when no boot measurement
/// overrides it): range flushes of 512 KiB or more flush the whole cache.
pub const FLUSH_THRESHOLD: u64 = 0x80000;

/// 2.6/3.x `flush_cache_range`: by user address, line by line, when the VMA belongs to the
/// current mm (only its space is in `%sr3`); otherwise the whole cache. A page of the range
/// without a translation has its `fdc`s nullified (B13).
pub async fn flush_cache_range_2x(cx: ArchCtx<'_>, vma: &Vma, start: VirtAddr, end: VirtAddr) {
    if cx.current_mm() == Some(vma.mm) {
        flush_user_dcache_range(cx, vma, start, end, FLUSH_THRESHOLD).await;
    } else {
        cx.flush_cache_all().await;
    }
}

/// The whole-cache decision of `flush_cache_mm` and `flush_cache_range` from 6.0 on
/// (`cache.c`): always without `parisc_requires_coherency()`, else when `bytes` reach the
/// threshold `dc_size * num_online_cpus()` (`parisc_setup_cache_timing`).
pub fn flush_whole_cache(cx: ArchCtx<'_>, bytes: u64) -> bool {
    !cx.requires_coherency() || bytes >= cx.dcache_bytes() * cx.ncpus() as u64
}

/// The bytes `vmas` span (`flush_cache_mm` sums `vma->vm_end - vma->vm_start`).
pub fn mapped_bytes(vmas: &[Vma]) -> u64 {
    vmas.iter().map(|v| v.start.bytes_to(v.end)).sum()
}

/// `flush_user_dcache_range(start, end)`: `fdc` over every line of `[start, end)` in the
/// VMA's space, or the whole cache at or above `threshold` bytes.
pub async fn flush_user_dcache_range(
    cx: ArchCtx<'_>, vma: &Vma, start: VirtAddr, end: VirtAddr, threshold: u64,
) {
    if start.bytes_to(end) >= threshold {
        cx.flush_cache_all().await;
        return;
    }
    let line = cx.line_bytes();
    let mut a = start.align_down(line);
    while a < end {
        cx.fdc(vma.space, a).await;
        a = a.add_bytes(line);
    }
}

/// 2.6-era `flush_kernel_dcache_page`: `fdc` over the page's kernel linear-map address.
pub async fn flush_kernel_page(cx: ArchCtx<'_>, page: Pfn) {
    cx.flush_page_lines(SpaceId::KERNEL, page.kernel_va()).await;
}

/// 3.x–6.9 `flush_kernel_dcache_page_addr`: `fdc` over the kernel address, then purge its TLB
/// entry so nothing is moved in again.
pub async fn flush_kernel_page_and_purge(cx: ArchCtx<'_>, page: Pfn) {
    flush_kernel_page(cx, page).await;
    cx.purge_tlb(SpaceId::KERNEL, page.kernel_va()).await;
}

/// 2.6 `clear_user_page` (`page.h`): purge the kernel alias (`purge_kernel_dcache_page`,
/// `pdc` without write-back), then zero the page through a tmpalias alias at the user's colour.
pub async fn clear_user_page_2x(cx: ArchCtx<'_>, page: Pfn, va: VirtAddr) {
    purge_kernel_page(cx, page).await;
    pacache::clear_user_page_asm(cx, page, va).await;
}

/// 3.x `clear_user_page` (`cache.c`): `purge_kernel_dcache_page`, then `pdtlb_kernel` of the
/// kernel address (every CPU), then `clear_user_page_asm` through a tmpalias alias at the
/// user's colour.
pub async fn clear_user_page_3x(cx: ArchCtx<'_>, page: Pfn, va: VirtAddr) {
    purge_kernel_page(cx, page).await;
    cx.purge_tlb(SpaceId::KERNEL, page.kernel_va()).await;
    pacache::clear_user_page_asm(cx, page, va).await;
}

/// `purge_kernel_dcache_page`: `pdc` over the page's kernel address.
pub async fn purge_kernel_page(cx: ArchCtx<'_>, page: Pfn) {
    cx.purge_page_lines(SpaceId::KERNEL, page.kernel_va()).await;
}

/// Current `flush_kernel_dcache_page_addr`: purge the kernel TLB entry (no move-in), then
/// flush through a tmpalias alias at the kernel address's colour.
pub async fn flush_kernel_page_tmpalias(cx: ArchCtx<'_>, page: Pfn) {
    let kva = page.kernel_va();
    cx.purge_tlb(SpaceId::KERNEL, kva).await;
    pacache::flush_dcache_page_asm(cx, page, kva).await;
}

/// `page_mapping()` for `flush_dcache_page` (`folio_flush_mapping()` today): the file of a
/// page-cache page; `None` for anonymous pages and for a shmem page in the swap cache, whose
/// `folio->mapping` `shmem_delete_from_page_cache` cleared ([`ArchCtx::page_mapping`]).
pub fn page_file(cx: ArchCtx<'_>, page: Pfn) -> Option<FileId> {
    match cx.page_mapping(page) {
        Mapping::File(f) => Some(f),
        _ => None,
    }
}

/// `PageAnon()`.
pub fn page_anon(cx: ArchCtx<'_>, page: Pfn) -> bool {
    matches!(cx.page_mapping(page), Mapping::Anon(_))
}

/// The opening of every parisc `flush_dcache_page`: a page-cache page of a file nobody maps
/// gets `PG_dcache_dirty` and its flush is deferred to `update_mmu_cache`. Returns `true`
/// when deferred.
pub fn defer_if_unmapped(cx: ArchCtx<'_>, page: Pfn) -> bool {
    match page_file(cx, page) {
        Some(f) if !cx.mapping_mapped(f) => {
            cx.set_dcache_dirty(page);
            true
        }
        _ => false,
    }
}

/// `update_mmu_cache` of the parisc lineages: a deferred kernel-alias flush is done now.
pub async fn update_cache_deferred(cx: ArchCtx<'_>, pte: Pte) {
    if !cx.layout().pte_present(pte) {
        return;
    }
    let page = pte.raw_pfn();
    if !cx.pfn_valid(page) {
        return;
    }
    if page_file(cx, page).is_some() && cx.test_and_clear_dcache_dirty(page) {
        flush_kernel_page(cx, page).await;
    }
}

/// `pte_needs_cache_flush`: present, accessed and cacheable.
pub fn pte_needs_cache_flush(pte: Pte) -> bool {
    pte.has(PteFlags::PRESENT | PteFlags::ACCESSED) && !pte.has(PteFlags::NO_CACHE)
}

/// `arch_get_unmapped_area` as at `torvalds/linux` @ `1da177e4` (2.6.12-rc2,
/// `arch/parisc/kernel/sys_parisc.c`), the tree the 2.6 lineages are modelled from, and as in
/// v3.0 (unchanged up to v3.6), the placement of the `tmpalias` lineages: `MAP_FIXED` is
/// returned as asked (no colour check); a file mapping, shared or private, starts at the file's
/// colour offset (`get_offset(mapping)`, `get_shared_area`) *whatever its page offset*, so two
/// mappings of one file at page offsets that differ modulo the colours are not equivalent
/// aliases; a private anonymous mapping goes first-fit (`get_unshared_area`). The page offset
/// entered the colour in 3.7 (`offset = (offset + (pgoff << PAGE_SHIFT)) & 0x3FF000`).
///
/// `MAP_SHARED | MAP_ANONYMOUS` (no file yet) goes to `get_shared_area(NULL, ...)`, whose
/// offset is 0: colour 0.
pub fn get_unmapped_area_2612(cx: ArchCtx<'_>, mm: MmId, args: &MmapArgs) -> Result<VirtAddr, Errno> {
    let colour = args.file.map(|(f, _)| cx.file_colour_pages(f) * PAGE_SIZE);
    let colour = if args.file.is_none() && args.shared { Some(0) } else { colour };
    cx.unmapped_area(mm, args, colour)
}

/// `arch_get_unmapped_area` of the `GET_LAST_MMAP` era (3.14 to 6.3, as at `torvalds/linux` @
/// `072cf06e`, `arch/parisc/kernel/sys_parisc.c`): file mappings as today
/// ([`ArchCtx::get_unmapped_area_coloured`]: `last_mmap` is the file's `f_mapping` address,
/// never 0), but `MAP_SHARED | MAP_ANONYMOUS` has no file, so `last_mmap` is 0 and
/// `info.align_mask = last_mmap ? ... : 0` leaves it uncoloured: first fit. The rewrite
/// 567b35159e76 ("parisc: Cleanup mmap implementation regarding color alignment", v6.4, and
/// 6.1.51 in 6.1-stable) aligns it at colour 0 (`do_color_align`, `GET_FILP_PGOFF(NULL)`).
pub fn get_unmapped_area_last_mmap(cx: ArchCtx<'_>, mm: MmId, args: &MmapArgs) -> Result<VirtAddr, Errno> {
    if args.file.is_none() {
        return cx.unmapped_area(mm, args, None);
    }
    cx.get_unmapped_area_coloured(mm, args)
}
