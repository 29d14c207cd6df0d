//! `mmap` with parisc colouring, `munmap`, zapping through an [`MmuGather`],
//! `unmap_mapping_range` and `exit_mmap`.

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SHM_COLOUR, TASK_SIZE, USER_BASE, VirtAddr};
use crate::choice::ChoiceKind;
use crate::mm::gather::MmuGather;
use crate::mm::tlbflush::TlbFlushOwed;
use crate::mm::types::{Mapping, Vma, file_colour};
use crate::mm::{Errno, FileId, Kernel, LockId, MmId, VmaId};
use crate::pgtable::PMD_SIZE;
use crate::pte::{PteFlags, PteKind};

/// What `mmap` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapArgs {
    /// Length in pages (≥ 1).
    pub pages: u64,
    /// File and page offset, or anonymous.
    pub file: Option<(FileId, u64)>,
    /// `MAP_SHARED` (file mappings only).
    pub shared: bool,
    /// `PROT_WRITE`.
    pub writable: bool,
    /// `MAP_FIXED` address.
    pub fixed: Option<VirtAddr>,
}

impl Kernel {
    fn range_free(&self, mm: MmId, start: VirtAddr, end: VirtAddr) -> bool {
        let s = self.state();
        s.mms[mm.index()].vmas.iter().all(|&v| {
            let v = s.vma(v);
            end <= v.start || v.end <= start
        })
    }

    /// `arch_get_unmapped_area`: file mappings (shared or private) are placed so that file
    /// page `k` lands at colour `(file colour + k) mod 4 MiB`; anonymous ones first-fit.
    /// `MAP_FIXED` of a shared file mapping at another colour is refused when the lineage
    /// checks it.
    pub fn get_unmapped_area(&self, mm: MmId, a: &MmapArgs) -> Result<VirtAddr, Errno> {
        let len = a.pages * PAGE_SIZE;
        let colour = a.file.map(|(f, pgoff)| file_colour(self.state().files[f.index()].colour, pgoff));
        if let Some(addr) = a.fixed {
            if addr.page_offset() != 0 || addr.raw() < USER_BASE || addr.raw() + len > TASK_SIZE {
                return Err(Errno::Inval);
            }
            if let Some(c) = colour
                && a.shared
                && self.config.map_fixed_checks_colour
                && addr.colour(SHM_COLOUR) != c
            {
                return Err(Errno::Inval);
            }
            if !self.range_free(mm, addr, addr.add_bytes(len)) {
                return Err(Errno::Inval);
            }
            return Ok(addr);
        }
        let (mut addr, stride) = match colour {
            Some(c) => (USER_BASE.div_ceil(SHM_COLOUR) * SHM_COLOUR + c, SHM_COLOUR),
            None => (USER_BASE, PAGE_SIZE),
        };
        while addr + len <= TASK_SIZE {
            if self.range_free(mm, VirtAddr::new(addr), VirtAddr::new(addr + len)) {
                return Ok(VirtAddr::new(addr));
            }
            addr += stride;
        }
        Err(Errno::NoMem)
    }

    /// `mmap`: creates a VMA and links it into its file's `i_mmap` at a seeded position.
    pub async fn sys_mmap(&self, cpu: CpuId, mm: MmId, a: MmapArgs) -> Result<VirtAddr, Errno> {
        if a.pages == 0 || (a.file.is_none() && a.shared) {
            return Err(Errno::Inval);
        }
        if let Some((f, _)) = a.file
            && f.index() >= self.state().files.len()
        {
            return Err(Errno::Inval);
        }
        self.lock(cpu, LockId::MmapSem(mm)).await;
        let r = self.mmap_locked(cpu, mm, a).await;
        self.unlock(cpu, LockId::MmapSem(mm));
        r
    }

    async fn mmap_locked(&self, cpu: CpuId, mm: MmId, a: MmapArgs) -> Result<VirtAddr, Errno> {
        let start = self.get_unmapped_area(mm, &a)?;
        let end = start.add_pages(a.pages);
        let vma = Vma {
            id: VmaId(0),
            mm,
            space: self.mm_space(mm),
            start,
            end,
            pgoff: a.file.map_or(start.vpn().raw(), |(_, p)| p),
            file: a.file.map(|(f, _)| f),
            shared: a.shared,
            writable: a.writable,
            exec: false,
            prot_none: false,
            anon: None,
        };
        let id = self.insert_vma(vma);
        if let Some(f) = vma.file {
            self.link_file_vma(cpu, f, id).await;
        }
        Ok(start)
    }

    /// Adds `vma` to the arena and to its mm's sorted list; returns its id.
    pub fn insert_vma(&self, mut vma: Vma) -> VmaId {
        let mut s = self.state();
        let id = VmaId(s.vmas.len() as u32);
        vma.id = id;
        s.vmas.push(Some(vma));
        let pos = {
            let list = &s.mms[vma.mm.index()].vmas;
            list.iter().position(|&v| s.vma(v).start > vma.start).unwrap_or(list.len())
        };
        s.mms[vma.mm.index()].vmas.insert(pos, id);
        id
    }

    /// Links `vma` into `file`'s `i_mmap` (both locks held), at a seeded position.
    pub async fn link_file_vma(&self, cpu: CpuId, file: FileId, vma: VmaId) {
        self.lock(cpu, LockId::IMmap(file)).await;
        self.lock(cpu, LockId::FlushDcacheMmap(file)).await;
        let n = self.state().files[file.index()].i_mmap.len() as u32;
        let pos = self.choose(ChoiceKind::IMmapPos, n + 1) as usize;
        self.state().files[file.index()].i_mmap.insert(pos, vma);
        self.unlock(cpu, LockId::FlushDcacheMmap(file));
        self.unlock(cpu, LockId::IMmap(file));
    }

    /// Removes `vma` from its file's `i_mmap` and its anon object.
    async fn unlink_vma(&self, cpu: CpuId, vma: Vma) {
        if let Some(f) = vma.file {
            self.lock(cpu, LockId::IMmap(f)).await;
            self.lock(cpu, LockId::FlushDcacheMmap(f)).await;
            self.state().files[f.index()].i_mmap.retain(|&v| v != vma.id);
            self.unlock(cpu, LockId::FlushDcacheMmap(f));
            self.unlock(cpu, LockId::IMmap(f));
        }
        if let Some(a) = vma.anon {
            self.lock(cpu, LockId::AnonVma(a)).await;
            self.state().anons[a.index()].vmas.retain(|&v| v != vma.id);
            self.unlock(cpu, LockId::AnonVma(a));
        }
        self.state().vmas[vma.id.index()] = None;
    }

    /// `munmap` of whole VMAs inside `[va, va + pages)`. A VMA only partly inside the range
    /// is refused with `Inval` (this core does not split VMAs).
    pub async fn sys_munmap(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pages: u64) -> Result<(), Errno> {
        if va.page_offset() != 0 || pages == 0 {
            return Err(Errno::Inval);
        }
        let end = va.add_pages(pages);
        self.lock(cpu, LockId::MmapSem(mm)).await;
        let vmas = self.state().vmas_overlapping(mm, va, end);
        if vmas.iter().any(|v| v.start < va || v.end > end) {
            self.unlock(cpu, LockId::MmapSem(mm));
            return Err(Errno::Inval);
        }
        self.unmap_region(cpu, mm, &vmas, false).await;
        self.unlock(cpu, LockId::MmapSem(mm));
        Ok(())
    }

    /// `mprotect` of whole VMAs inside `[va, va + pages)`: to `PROT_NONE` (`none`: present
    /// PTEs lose `_PAGE_USER` and `_PAGE_WRITE`, PowerPC's `PAGE_NONE`), or back (they regain
    /// `_PAGE_USER`; writes fault again to regain `_PAGE_WRITE`). Flush cache (nothing to do for
    /// a protection change on a PIPT machine; the hook decides), change the PTEs under the
    /// page-table lock, then flush the TLB range.
    pub async fn sys_mprotect(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, pages: u64, none: bool,
    ) -> Result<(), Errno> {
        if va.page_offset() != 0 || pages == 0 {
            return Err(Errno::Inval);
        }
        let end = va.add_pages(pages);
        self.lock(cpu, LockId::MmapSem(mm)).await;
        let vmas = self.state().vmas_overlapping(mm, va, end);
        if vmas.is_empty() || vmas.iter().any(|v| v.start < va || v.end > end) {
            self.unlock(cpu, LockId::MmapSem(mm));
            return Err(if vmas.is_empty() { Errno::Segv } else { Errno::Inval });
        }
        let layout = self.layout();
        for vma in &vmas {
            self.arch(cpu).flush_cache_range(*vma, vma.start, vma.end).await;
            let owed = TlbFlushOwed::range(mm, vma.start, vma.end);
            if let Some(v) = self.state().vmas[vma.id.index()].as_mut() {
                v.prot_none = none;
            }
            let mut p = vma.start;
            while p < vma.end {
                if self.pte_slot(mm, p).is_some() {
                    self.lock(cpu, LockId::Ptl(mm)).await;
                    self.update_pte(cpu, mm, p, |pte| {
                        if !layout.pte_present(pte) {
                            pte
                        } else if none {
                            pte.without_flags(PteFlags::USER | PteFlags::WRITE)
                        } else {
                            pte.with_flags(PteFlags::USER)
                        }
                    })
                    .await;
                    self.unlock(cpu, LockId::Ptl(mm));
                }
                p = p.add_pages(1);
            }
            owed.flush(self, cpu).await;
        }
        self.unlock(cpu, LockId::MmapSem(mm));
        Ok(())
    }

    /// Detaches `vmas` from `mm`, zaps them, unlinks them from rmap, frees their page tables,
    /// and finishes the gather (TLB flush, then frees).
    pub async fn unmap_region(&self, cpu: CpuId, mm: MmId, vmas: &[Vma], fullmm: bool) {
        {
            let mut s = self.state();
            s.mms[mm.index()].vmas.retain(|v| !vmas.iter().any(|x| x.id == *v));
        }
        let mut tlb = MmuGather::new(mm, fullmm);
        for vma in vmas {
            self.zap_range(cpu, &mut tlb, vma, vma.start, vma.end).await;
        }
        for vma in vmas {
            self.unlink_vma(cpu, *vma).await;
        }
        self.free_pgtables(cpu, &mut tlb, mm, vmas).await;
        tlb.finish(self, cpu).await;
    }

    /// `free_pgtables`: PTE pages under `vmas` that no remaining VMA uses are unhooked and
    /// gathered for freeing after the TLB flush.
    async fn free_pgtables(&self, cpu: CpuId, tlb: &mut MmuGather, mm: MmId, vmas: &[Vma]) {
        let mut regions: Vec<u64> = Vec::new();
        for v in vmas {
            let mut r = v.start.raw() / PMD_SIZE;
            while r * PMD_SIZE < v.end.raw() {
                if !regions.contains(&r) {
                    regions.push(r);
                }
                r += 1;
            }
        }
        regions.sort_unstable();
        for r in regions {
            let (lo, hi) = (VirtAddr::new(r * PMD_SIZE), VirtAddr::new((r + 1) * PMD_SIZE));
            let used = {
                let s = self.state();
                s.mms[mm.index()].vmas.iter().any(|&v| {
                    let v = s.vma(v);
                    v.start < hi && lo < v.end
                })
            };
            if used {
                continue;
            }
            self.lock(cpu, LockId::Ptl(mm)).await;
            let pgd = self.state().mms[mm.index()].pgd;
            let table = self.machine().pt.pmd(pgd, lo);
            if let Some(t) = table {
                self.machine().pt.set_pmd(pgd, lo, None);
                tlb.free_table(t, lo, hi);
            }
            self.unlock(cpu, LockId::Ptl(mm));
        }
    }

    /// `zap_page_range` over `[start, end)` of `vma` into `tlb`: `flush_cache_range` first
    /// (unless the whole mm is going), then each PTE cleared with `ptep_get_and_clear`; file
    /// pages whose PTE was dirty become dirty; anon and file pages are gathered; swap entries
    /// released.
    pub async fn zap_range(
        &self, cpu: CpuId, tlb: &mut MmuGather, vma: &Vma, start: VirtAddr, end: VirtAddr,
    ) {
        if !tlb.fullmm {
            self.arch(cpu).flush_cache_range(*vma, start, end).await;
        }
        let layout = self.layout();
        let mut va = start;
        while va < end {
            if self.pte_slot(vma.mm, va).is_none() {
                va = va.add_pages(1);
                continue;
            }
            self.lock(cpu, LockId::Ptl(vma.mm)).await;
            let pte = self.read_pte(cpu, vma.mm, va).await;
            if !layout.pte_none(pte) {
                match layout.decode(pte) {
                    PteKind::Present { pfn, .. } => {
                        let old = self.arch(cpu).ptep_get_and_clear(vma.mm, va).await;
                        tlb.remove_pte(va, pfn);
                        let page_ok = self.machine().mem.pfn_valid(pfn);
                        if page_ok {
                            if matches!(self.page(pfn).mapping, Mapping::File(_)) && old.has(PteFlags::DIRTY)
                            {
                                self.set_page_flags(pfn, crate::mm::PageFlags::DIRTY);
                            }
                            self.page_remove_rmap(pfn);
                            tlb.remove_page(pfn);
                        }
                    }
                    PteKind::Swap { offset, .. } => {
                        self.write_pte(cpu, vma.mm, va, crate::pte::Pte::NONE).await;
                        self.free_swap_and_cache(offset);
                    }
                    _ => {
                        self.write_pte(cpu, vma.mm, va, crate::pte::Pte::NONE).await;
                    }
                }
            }
            self.unlock(cpu, LockId::Ptl(vma.mm));
            va = va.add_pages(1);
        }
    }

    /// `free_swap_and_cache`: drops a swap PTE's reference to `slot`, and frees its swap-cache
    /// page too if nothing else refers to the slot and the page is not locked (`trylock_page`:
    /// a locked page belongs to someone, reclaim or swap-in, who will deal with it).
    pub fn free_swap_and_cache(&self, slot: u32) {
        if (slot as usize) >= self.state().swap.len() {
            return;
        }
        self.swap_free(slot);
        let cache = self.state().swap[slot as usize].cache;
        if let Some(page) = cache
            && !self.page(page).flags.contains(crate::mm::PageFlags::LOCKED)
        {
            self.try_to_free_swap(page);
        }
    }

    /// `unmap_mapping_range(mapping, from, 0, even_cows = 1)`: zaps every mapping of file
    /// pages at or beyond `from` in every VMA of `file`, private COW copies included.
    pub async fn unmap_mapping_range(&self, cpu: CpuId, file: FileId, from: u64) {
        self.lock(cpu, LockId::IMmap(file)).await;
        let vmas: Vec<Vma> = {
            let s = self.state();
            s.files[file.index()].i_mmap.iter().map(|&v| s.vma(v)).collect()
        };
        for vma in vmas {
            let first = vma.pgoff.max(from);
            let Some(start) = vma.addr_of(first) else {
                continue;
            };
            let mut tlb = MmuGather::new(vma.mm, false);
            self.zap_range(cpu, &mut tlb, &vma, start, vma.end).await;
            tlb.finish(self, cpu).await;
        }
        self.unlock(cpu, LockId::IMmap(file));
    }

    /// `exit_mmap`: `flush_cache_mm`, then every VMA zapped in one full-mm gather, page tables
    /// and the pgd freed, the space forgotten.
    pub async fn exit_mmap(&self, cpu: CpuId, mm: MmId) -> Result<(), Errno> {
        self.lock(cpu, LockId::MmapSem(mm)).await;
        if self.state().mms[mm.index()].dead {
            self.unlock(cpu, LockId::MmapSem(mm));
            return Err(Errno::Inval);
        }
        self.arch(cpu).flush_cache_mm(mm).await;
        let vmas = self.mm_vmas(mm);
        self.unmap_region(cpu, mm, &vmas, true).await;
        let (pgd, space) = {
            let mut s = self.state();
            s.mms[mm.index()].dead = true;
            (s.mms[mm.index()].pgd, s.mms[mm.index()].space)
        };
        self.machine().detach_space(space);
        self.free_table_page(pgd);
        self.unlock(cpu, LockId::MmapSem(mm));
        Ok(())
    }

    /// The pfn `va` of `mm` maps now, if present (no preemption point).
    pub fn follow_pfn(&self, mm: MmId, va: VirtAddr) -> Option<Pfn> {
        match self.layout().decode(self.peek_pte(mm, va)) {
            PteKind::Present { pfn, .. } => Some(pfn),
            _ => None,
        }
    }
}
