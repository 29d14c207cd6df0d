//! `tmpalias`: the 3.x kernels that first flushed user pages through the tmpalias window.

use vipt_emu::addr::{Pfn, SHM_COLOUR, SpaceId, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, LockId, MmId, Vma};
use vipt_emu::pte::Pte;

use crate::pacache;
use crate::parisc;

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
/// Placement (`arch_get_unmapped_area`) is that of 3.0–3.6 (`arch/parisc/kernel/sys_parisc.c`
/// of v3.0, unchanged in v3.2 and v3.6), the 2.6.12 rule
/// ([`parisc::get_unmapped_area_2612`]): a file mapping starts at the file's colour whatever
/// its page offset, `MAP_SHARED | MAP_ANONYMOUS` at colour 0, and `MAP_FIXED` is taken as
/// asked (no colour check). Later 3.x kernels of the range differ: 3.7 adds the page offset to
/// the colour (`offset = (offset + (pgoff << PAGE_SHIFT)) & 0x3FF000`), and 3.9 (with the
/// `vm_unmapped_area` conversion) refuses a `MAP_FIXED` shared mapping, file or anonymous,
/// whose address is not at the colour of its page offset alone
/// (`(addr - (pgoff << PAGE_SHIFT)) & (SHMLBA - 1)`, the file's own offset left out; SHMLBA
/// was 4 MiB then); the check with the file's offset came in 3.13 (`shared_align_offset`).
///
/// `clear_user_page` purges the kernel alias and its kernel TLB entry, then zeroes the page
/// through the tmpalias window at the user's colour. The miss handlers of this era serve the
/// window for every kind of access: loads and stores get an ordinary translation, flush
/// instructions (IIR opcode 1, memory management) one with only the T bit, which moves
/// nothing in (`do_alias` in `entry.S`).
///
/// Sources: `torvalds/linux` 3.0.8 `arch/parisc/kernel/cache.c`; a 3.4 tree's `cache.c` and
/// `cacheflush.h` (`CyanogenMod/android_kernel_htc_msm8974`) and a 3.6 tree's `entry.S`
/// (`New-B/Linux3.6`); John David Anglin, "parisc:
/// fixes and cleanups in page cache flushing (1/4)"; Dave Anglin, "Fix non-access data TLB
/// cache flush faults" (2022, `lp:f8835298`).
#[derive(Clone, Copy, Debug)]
pub struct Linux3x {
    /// B7 half-fix (i): `set_pte_at`, `ptep_get_and_clear` and `ptep_set_wrprotect` purge the
    /// TLB entry (the 2013 TLB patch).
    pub purge_on_pte_change: bool,
    /// B7 half-fix (ii): `copy_user_page` flushes the source through tmpalias first.
    pub flush_source_before_copy: bool,
}

impl Linux3x {
    /// 3.0–3.9 as shipped.
    pub const TMPALIAS: Linux3x = Linux3x { purge_on_pte_change: false, flush_source_before_copy: false };
    /// With the 2013 TLB-purge patch only (B7 half-fix i).
    pub const PURGE: Linux3x = Linux3x { purge_on_pte_change: true, flush_source_before_copy: false };
    /// With the pre-copy source flush only (B7 half-fix ii).
    pub const PRECOPY: Linux3x = Linux3x { purge_on_pte_change: false, flush_source_before_copy: true };

    /// The knobs: the current miss handlers (tmpalias for loads, stores and flushes); no colour
    /// check of `MAP_FIXED` (3.0–3.8). A kernel buffer is placed by the colour of the file it
    /// is mapped through (3.x has no io_uring; a driver `mmap` without a `get_unmapped_area` of
    /// its own is placed so).
    pub const CONFIG: ArchConfig =
        ArchConfig { map_fixed_checks_colour: false, io_uring_coloured: false, ..ArchConfig::GENERIC };

    async fn flush_page_tmpalias(&self, cx: ArchCtx<'_>, vma: &Vma, va: VirtAddr, page: Pfn) {
        cx.purge_tlb(vma.space, va).await;
        pacache::flush_dcache_page_asm(cx, page, va).await;
    }
}

impl ArchHooks for Linux3x {
    /// `arch_get_unmapped_area` of v3.0 (to v3.6): the 2.6.12 rule.
    fn arch_get_unmapped_area<'a>(
        &'a self, cx: ArchCtx<'a>, mm: MmId, args: MmapArgs,
    ) -> HookFuture<'a, Result<VirtAddr, Errno>> {
        Box::pin(async move { parisc::get_unmapped_area_2612(cx, mm, &args) })
    }
    fn set_pte_at<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr, pte: Pte) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.write_pte(mm, va, pte).await;
            if self.purge_on_pte_change {
                cx.purge_tlb(cx.mm_space(mm), va).await;
            }
        })
    }
    fn ptep_get_and_clear<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.xchg_pte(mm, va, Pte::NONE).await;
            if self.purge_on_pte_change {
                cx.purge_tlb(cx.mm_space(mm), va).await;
            }
            old
        })
    }
    fn ptep_set_wrprotect<'a>(&'a self, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.update_pte(mm, va, |p| p.without_flags(vipt_emu::pte::PteFlags::WRITE)).await;
            if self.purge_on_pte_change {
                cx.purge_tlb(cx.mm_space(mm), va).await;
            }
        })
    }
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { parisc::flush_cache_range_2x(cx, &vma, start, end).await })
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move { self.flush_page_tmpalias(cx, &vma, va, pfn).await })
    }
    fn flush_anon_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::page_anon(cx, page) {
                self.flush_page_tmpalias(cx, &vma, va, page).await;
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
            let mut old: Option<VirtAddr> = None;
            for (vma, va) in cx.file_mappings(page) {
                cx.purge_tlb(vma.space, va).await;
                if old.is_none_or(|o| o.colour(SHM_COLOUR) != va.colour(SHM_COLOUR)) {
                    pacache::flush_dcache_page_asm(cx, page, va).await;
                    old = Some(va);
                }
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
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, va: VirtAddr, _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if self.flush_source_before_copy {
                pacache::flush_dcache_page_asm(cx, from, va).await;
            }
            cx.copy_page_kernel(to, from).await;
            parisc::flush_kernel_page_and_purge(cx, to).await;
        })
    }
    /// `clear_user_page` (3.4 `cache.c`): `purge_kernel_dcache_page`, `pdtlb_kernel`, then
    /// `clear_user_page_asm` through the tmpalias window.
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(parisc::clear_user_page_3x(cx, page, va))
    }
    /// `flush_icache_page` (3.4 `cacheflush.h`): `flush_kernel_dcache_page(page)`, which is
    /// `flush_kernel_dcache_page_addr` (`fdc` over the kernel alias, then `pdtlb_kernel`), and
    /// `flush_kernel_icache_page` (no I-cache here).
    fn flush_icache_page<'a>(&'a self, cx: ArchCtx<'a>, _vma: Vma, page: Pfn) -> HookFuture<'a, ()> {
        Box::pin(parisc::flush_kernel_page_and_purge(cx, page))
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            self.flush_page_tmpalias(cx, &vma, va, page).await;
            let kva = page.word(va.word_in_page()).kernel_va();
            cx.kernel_store(kva, value).await;
            cx.fdc(SpaceId::KERNEL, kva).await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            self.flush_page_tmpalias(cx, &vma, va, page).await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
}
