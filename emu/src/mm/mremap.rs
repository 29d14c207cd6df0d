//! `mremap`: moving a mapping (`MREMAP_MAYMOVE`, `MREMAP_FIXED`) and growing it (in place when
//! the range after it is free, else by a move).
//!
//! The model follows `mm/mremap.c` of Linux 6.x (`torvalds/linux` @ 000c0691: `do_mremap`,
//! `mremap_to`, `vrm_set_new_addr`, `move_vma`, `move_page_tables`, `move_ptes`) and `copy_vma`
//! (`mm/vma.c`; `mm/mmap.c` before 6.11):
//!
//! * the new address comes from `get_unmapped_area(vma->vm_file, new_addr, new_len,
//!   vma->vm_pgoff, MAP_SHARED if VM_MAYSHARE, MAP_FIXED if MREMAP_FIXED)`, which is the
//!   architecture's [`crate::arch::ArchHooks::arch_get_unmapped_area`]: on parisc a file
//!   mapping, shared or private, keeps its colour (`do_color_align` for a `filp`), a private
//!   anonymous one goes first-fit and so its pages may change colour; an `MREMAP_FIXED`
//!   address of a shared file mapping at another colour is refused as `MAP_FIXED` is;
//! * `copy_vma` makes the new VMA with the old `vm_pgoff` (an anonymous VMA that never had an
//!   `anon_vma` gets the new address's page number instead) and links it into the rmap
//!   *after* the old one: an rmap walker then meets the old PTE, the new one or both, so
//!   `move_ptes` needs no rmap lock (`need_rmap_locks` is false for a VMA `copy_vma` created);
//! * `move_page_tables` calls `flush_cache_range` over the old range once, then per
//!   page-table page `move_ptes` under the page-table lock (the model's one lock per mm stands
//!   for both the old and the new PTL): each PTE that is not `pte_none` is taken with
//!   `ptep_get_and_clear` (`get_and_clear_full_ptes` for one page) and written at the new
//!   address with `set_pte_at`; if a present PTE moved, `flush_tlb_range` of the old range
//!   before the lock is dropped (since eb66ae030829, v4.20: "mremap: properly flush TLB
//!   before releasing the page");
//! * the old VMA is then unmapped (`do_vmi_munmap`): its zap finds no PTE, unlinks it and frees
//!   its page tables.
//!
//! Anonymous pages keep `page->index`: the moved VMA keeps `vm_pgoff`, so `vma_address` finds
//! them at the new address ([`crate::mm::Kernel::anon_mappings`]).
//!
//! 2.6 (2.6.12 to 3.6) differed in `move_ptes`: it took `i_mmap_lock` for file VMAs and used
//! `ptep_clear_flush` per PTE (each TLB entry purged at once) instead of one `flush_tlb_range`;
//! the same flush-cache, move, flush-TLB order. The model uses the 6.x sequence for every
//! lineage.

use crate::addr::{CpuId, PAGE_SIZE, VirtAddr};
use crate::mm::mmap::{MmapArgs, pmd_end};
use crate::mm::situations::Situation;
use crate::mm::types::{Vma, VmaId};
use crate::mm::{Errno, Kernel, LockId, MmId};

/// What `mremap` is asked for. The range must be one whole VMA (this core does not split VMAs)
/// and may not shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MremapArgs {
    /// `old_len` in pages.
    pub old_pages: u64,
    /// `new_len` in pages (at least `old_pages`).
    pub new_pages: u64,
    /// `MREMAP_MAYMOVE`.
    pub maymove: bool,
    /// `MREMAP_FIXED` and its `new_address` (requires `maymove`).
    pub fixed: Option<VirtAddr>,
}

impl Kernel {
    /// `mremap(va, old_len, new_len, flags, new_address)` of `mm` (`do_mremap`, Linux 6.x):
    /// returns where the mapping is now. `mmap_lock` is taken exclusively for the call.
    ///
    /// Refused with `Inval`: unaligned addresses, `MREMAP_FIXED` without `MREMAP_MAYMOVE`, a
    /// range that is not exactly one VMA, shrinking, a target overlapping the source, and a
    /// kernel-buffer mapping (io_uring's are `VM_DONTEXPAND`; their moves are not modelled).
    /// `NoMem` when the mapping cannot grow in place and may not move.
    pub async fn sys_mremap(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, a: MremapArgs,
    ) -> Result<VirtAddr, Errno> {
        if va.page_offset() != 0
            || a.old_pages == 0
            || a.new_pages < a.old_pages
            || (a.fixed.is_some() && !a.maymove)
            || a.fixed.is_some_and(|f| f.page_offset() != 0)
        {
            return Err(Errno::Inval);
        }
        self.lock(cpu, LockId::MmapSem(mm)).await;
        let r = self.mremap_locked(cpu, mm, va, a).await;
        self.unlock(cpu, LockId::MmapSem(mm));
        r
    }

    async fn mremap_locked(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, a: MremapArgs,
    ) -> Result<VirtAddr, Errno> {
        let vma = self.state().find_vma(mm, va).ok_or(Errno::Segv)?;
        if vma.start != va || vma.pages() != a.old_pages || vma.ring.is_some() {
            return Err(Errno::Inval);
        }
        let new_len = a.new_pages * PAGE_SIZE;
        if let Some(target) = a.fixed {
            // `mremap_to`: overlapping ranges are refused, the target is unmapped first
            // (`do_munmap`), then `get_unmapped_area` with `MAP_FIXED` checks the address.
            let end = target.add_bytes(new_len);
            if vma.start < end && target < vma.end {
                return Err(Errno::Inval);
            }
            let victims = self.state().vmas_overlapping(mm, target, end);
            if victims.iter().any(|v| v.start < target || v.end > end) {
                return Err(Errno::Inval);
            }
            if !victims.is_empty() {
                self.unmap_region(cpu, mm, &victims, false).await;
            }
            let new_addr = self
                .arch(cpu)
                .arch_get_unmapped_area(mm, remap_args(&vma, a.new_pages, Some(target)))
                .await?;
            return Ok(self.move_vma(cpu, &vma, new_addr, a.new_pages).await);
        }
        if a.new_pages == a.old_pages {
            return Ok(va);
        }
        // `vma_expandable`: the pages after the VMA are free (and inside the user range).
        let end = vma.end.add_bytes(new_len - a.old_pages * PAGE_SIZE);
        let free =
            end.raw() <= crate::addr::TASK_SIZE && self.state().vmas_overlapping(mm, vma.end, end).is_empty();
        if free {
            self.expand_vma(cpu, &vma, end).await;
            return Ok(va);
        }
        if !a.maymove {
            return Err(Errno::NoMem);
        }
        let new_addr = self.arch(cpu).arch_get_unmapped_area(mm, remap_args(&vma, a.new_pages, None)).await?;
        Ok(self.move_vma(cpu, &vma, new_addr, a.new_pages).await)
    }

    /// Growing in place (`vma_merge_extend` → `vma_expand`): the VMA's end moves under the
    /// rmap locks (`vma_prepare`: `i_mmap_lock_write`, `anon_vma_lock_write`); no PTE changes.
    async fn expand_vma(&self, cpu: CpuId, vma: &Vma, end: VirtAddr) {
        if let Some(f) = vma.file {
            self.lock(cpu, LockId::IMmap(f)).await;
            self.lock(cpu, LockId::FlushDcacheMmap(f)).await;
        }
        if let Some(an) = vma.anon {
            self.lock(cpu, LockId::AnonVma(an)).await;
        }
        if let Some(v) = self.state().vmas[vma.id.index()].as_mut() {
            v.end = end;
        }
        if let Some(an) = vma.anon {
            self.unlock(cpu, LockId::AnonVma(an));
        }
        if let Some(f) = vma.file {
            self.unlock(cpu, LockId::FlushDcacheMmap(f));
            self.unlock(cpu, LockId::IMmap(f));
        }
    }

    /// `move_vma`: `copy_vma` (the new VMA, linked after the old one), `move_page_tables`, then
    /// the old VMA unmapped. Returns the new address.
    async fn move_vma(&self, cpu: CpuId, old: &Vma, new_addr: VirtAddr, new_pages: u64) -> VirtAddr {
        let new = self.copy_vma(cpu, old, new_addr, new_pages).await;
        self.move_page_tables(cpu, old, &new).await;
        let old = self.vma(old.id);
        self.unmap_region(cpu, old.mm, &[old], false).await;
        new_addr
    }

    /// `copy_vma` for a new VMA (no merge): the old one's flags, file, `vm_pgoff` and
    /// `anon_vma` at `new_addr` (an anonymous VMA without an `anon_vma` takes the new address's
    /// page number as `vm_pgoff`, as no page carries the old one), linked into the file's
    /// `i_mmap` and the `anon_vma` right after the old VMA (`vma_link`, `anon_vma_clone`).
    async fn copy_vma(&self, cpu: CpuId, old: &Vma, new_addr: VirtAddr, new_pages: u64) -> Vma {
        let old = self.vma(old.id);
        let pgoff = if old.file.is_none() && old.anon.is_none() { new_addr.vpn().raw() } else { old.pgoff };
        let vma = Vma { id: VmaId(0), start: new_addr, end: new_addr.add_pages(new_pages), pgoff, ..old };
        let id = self.insert_vma(vma);
        if let Some(f) = old.file {
            self.lock(cpu, LockId::IMmap(f)).await;
            self.lock(cpu, LockId::FlushDcacheMmap(f)).await;
            insert_after(&mut self.state().files[f.index()].i_mmap, old.id, id);
            self.unlock(cpu, LockId::FlushDcacheMmap(f));
            self.unlock(cpu, LockId::IMmap(f));
        }
        if let Some(an) = old.anon {
            self.lock(cpu, LockId::AnonVma(an)).await;
            insert_after(&mut self.state().anons[an.index()].vmas, old.id, id);
            self.unlock(cpu, LockId::AnonVma(an));
        }
        self.vma(id)
    }

    /// `move_page_tables` from `old` to `new` (same length as `old`'s range moves; a grown
    /// tail has no PTEs yet): `flush_cache_range` of the old range, then per page-table page
    /// [`Kernel::move_ptes`].
    async fn move_page_tables(&self, cpu: CpuId, old: &Vma, new: &Vma) {
        self.note_mremap_colours(old, new);
        self.arch(cpu).flush_cache_range(*old, old.start, old.end).await;
        let mut from = old.start;
        while from < old.end {
            let to = new.start.add_bytes(old.start.bytes_to(from));
            // `get_extent`: to the nearer of the two page-table boundaries.
            let extent =
                old.start.bytes_to(old.end).min(from.bytes_to(pmd_end(from))).min(to.bytes_to(pmd_end(to)));
            let extent = extent.min(from.bytes_to(old.end));
            if self.pte_slot(old.mm, from).is_some() && self.pte_alloc(cpu, new.mm, to).await.is_ok() {
                self.move_ptes(cpu, old, from, from.add_bytes(extent), to).await;
            }
            from = from.add_bytes(extent);
        }
    }

    /// `move_ptes` over `[from, end)` of `old` to `to` (one page-table page each side): under
    /// the page-table lock, every PTE that is not `pte_none` is cleared with
    /// `ptep_get_and_clear` and set at the new address with `set_pte_at`; then, if a present
    /// PTE moved, `flush_tlb_range` of `[from, end)` before the lock is dropped.
    async fn move_ptes(&self, cpu: CpuId, old: &Vma, from: VirtAddr, end: VirtAddr, to: VirtAddr) {
        let layout = self.layout();
        let mm = old.mm;
        self.lock(cpu, LockId::Ptl(mm)).await;
        let mut force_flush = false;
        let (mut va, mut dst) = (from, to);
        while va < end {
            let pte = self.read_pte(cpu, mm, va).await;
            if !layout.pte_none(pte) {
                let pte = self.arch(cpu).ptep_get_and_clear(mm, va).await;
                force_flush |= layout.pte_present(pte);
                self.arch(cpu).set_pte_at(mm, dst, pte).await;
            }
            va = va.add_pages(1);
            dst = dst.add_pages(1);
        }
        if force_flush {
            self.arch(cpu).flush_tlb_range(mm, from, end).await;
        }
        self.unlock(cpu, LockId::Ptl(mm));
    }

    /// Before a move: counts the present pages that land at another colour, and those of them
    /// a cache holds a dirty line of at the old address's colour (which the move's
    /// `flush_cache_range` must write back, or the new address reads stale memory).
    fn note_mremap_colours(&self, old: &Vma, new: &Vma) {
        let mut va = old.start;
        while va < old.end {
            let to = new.start.add_bytes(old.start.bytes_to(va));
            if let Some(pfn) = self.follow_pfn(old.mm, va)
                && !self.machine().equivalent(va, to)
            {
                self.met(Situation::MremapOtherColour);
                if self.dirty_at(pfn, va) {
                    self.met(Situation::MremapDirtyOtherColour);
                }
            }
            va = va.add_pages(1);
        }
    }
}

/// Links `id` into an rmap list (`i_mmap`, an `anon_vma`'s VMAs) right after `after`, or at
/// the end if `after` is not in it.
fn insert_after(list: &mut Vec<VmaId>, after: VmaId, id: VmaId) {
    let pos = list.iter().position(|&v| v == after).map_or(list.len(), |p| p + 1);
    list.insert(pos, id);
}

/// The `get_unmapped_area` arguments `mremap` asks with (`vrm_set_new_addr`): the VMA's file
/// and `vm_pgoff`, `MAP_SHARED` for a shared VMA, `MAP_FIXED` at `fixed`.
fn remap_args(vma: &Vma, pages: u64, fixed: Option<VirtAddr>) -> MmapArgs {
    MmapArgs {
        pages,
        file: vma.file.map(|f| (f, vma.pgoff)),
        shared: vma.shared,
        writable: vma.writable,
        fixed,
    }
}
