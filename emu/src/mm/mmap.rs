//! `mmap` with parisc colouring, `munmap`, `mprotect`, zapping through an [`MmuGather`],
//! `unmap_mapping_range` and `exit_mmap`.

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SHM_COLOUR, TASK_SIZE, USER_BASE, VirtAddr};
use crate::choice::ChoiceKind;
use crate::mm::gather::MmuGather;
use crate::mm::types::{Mapping, Vma, file_colour};
use crate::mm::{Errno, FileId, Kernel, LockId, MmId, VmaId};
use crate::pgtable::PMD_SIZE;
use crate::pte::{Pte, PteFlags, PteKind};

/// The end of the page-table page (the 2 MiB region) that holds the PTE of `va`
/// (`pmd_addr_end`, without the clamp).
pub(crate) fn pmd_end(va: VirtAddr) -> VirtAddr {
    VirtAddr::new((va.raw() / PMD_SIZE + 1) * PMD_SIZE)
}

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

    /// `vm_unmapped_area` and the `MAP_FIXED` checks of `get_unmapped_area`: for `MAP_FIXED`,
    /// the address asked for if it is page aligned, inside the user range and free; otherwise
    /// the lowest free range of `a.pages` pages from the mmap base whose start has colour
    /// `colour` (a byte offset below `SHM_COLOUR`), or the lowest free range at all for
    /// `None`. Colour checks of `MAP_FIXED` are the architecture's
    /// ([`crate::arch::ArchHooks::arch_get_unmapped_area`]).
    pub fn unmapped_area(&self, mm: MmId, a: &MmapArgs, colour: Option<u64>) -> Result<VirtAddr, Errno> {
        let len = a.pages * PAGE_SIZE;
        if let Some(addr) = a.fixed {
            if addr.page_offset() != 0 || addr.raw() < USER_BASE || addr.raw() + len > TASK_SIZE {
                return Err(Errno::Inval);
            }
            if !self.range_free(mm, addr, addr.add_bytes(len)) {
                return Err(Errno::Inval);
            }
            return Ok(addr);
        }
        let (mut addr, stride) = match colour {
            Some(c) => (USER_BASE.div_ceil(SHM_COLOUR) * SHM_COLOUR + c % SHM_COLOUR, SHM_COLOUR),
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

    /// The current parisc `arch_get_unmapped_area` (`arch/parisc/kernel/sys_parisc.c`, 6.4
    /// and later, `arch_get_unmapped_area_common`; for file mappings the same since 3.7):
    /// file mappings, shared or private,
    /// are placed so that file page `k` lands at colour `(file colour + k) mod 4 MiB`
    /// (`COLOR_ALIGN` / `shared_align_offset`); private anonymous ones first-fit. `MAP_FIXED`
    /// of a shared file mapping at another colour is refused when the lineage checks it
    /// ([`crate::arch::ArchConfig::map_fixed_checks_colour`]; the check with the file's own
    /// offset came in 3.13, 3.9 checked the page offset alone).
    ///
    /// `MAP_SHARED | MAP_ANONYMOUS` comes here without a file (`shmem_zero_setup` runs after
    /// the placement) and with page offset 0 (`get_unmapped_area` sets it since c01d5b300774,
    /// 4.8): it is colour aligned at colour 0 (`do_color_align` with
    /// `GET_FILP_PGOFF(NULL) == 0`, as rewritten by 567b35159e76 in 6.4, and 6.1.51 in
    /// 6.1-stable), and its `MAP_FIXED` is never refused (the check needs `filp`).
    pub fn get_unmapped_area_coloured(&self, mm: MmId, a: &MmapArgs) -> Result<VirtAddr, Errno> {
        let colour = a.file.map(|(f, pgoff)| file_colour(self.state().files[f.index()].colour, pgoff));
        if let (Some(addr), Some(c)) = (a.fixed, colour)
            && a.shared
            && self.config.map_fixed_checks_colour
            && addr.colour(SHM_COLOUR) != c
        {
            return Err(Errno::Inval);
        }
        let colour = if a.file.is_none() && a.shared { Some(0) } else { colour };
        self.unmapped_area(mm, a, colour)
    }

    /// `mmap`: creates a VMA and links it into its file's `i_mmap` at a seeded position.
    pub async fn sys_mmap(&self, cpu: CpuId, mm: MmId, a: MmapArgs) -> Result<VirtAddr, Errno> {
        if a.pages == 0 {
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
        let start = self.arch(cpu).arch_get_unmapped_area(mm, a).await?;
        if let (Some(_), Some((f, pgoff))) = (a.fixed, a.file) {
            let c = file_colour(self.state().files[f.index()].colour, pgoff);
            if !self.machine().equivalent(start, VirtAddr::new(c)) {
                self.met(crate::mm::situations::Situation::FixedOtherColour);
            }
        }
        let end = start.add_pages(a.pages);
        // `MAP_SHARED | MAP_ANONYMOUS`: `mmap_region` calls `shmem_zero_setup`, which gives
        // the VMA a new shmem object of its length, mapped from page offset 0.
        let file = match a.file {
            None if a.shared => Some((self.shmem_zero_setup(a.pages), 0)),
            f => f,
        };
        let vma = Vma {
            id: VmaId(0),
            mm,
            space: self.mm_space(mm),
            start,
            end,
            pgoff: file.map_or(start.vpn().raw(), |(_, p)| p),
            file: file.map(|(f, _)| f),
            shared: a.shared,
            writable: a.writable,
            exec: false,
            prot_none: false,
            anon: None,
            ring: None,
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
        self.release_files(cpu, &vmas).await;
        Ok(())
    }

    /// After the mappings `vmas` went: the final `fput` of any shared anonymous object none
    /// maps any more ([`Kernel::release_anon_shared`]).
    async fn release_files(&self, cpu: CpuId, vmas: &[Vma]) {
        let files: Vec<FileId> = vmas.iter().filter_map(|v| v.file).collect();
        if files.iter().any(|f| self.state().files[f.index()].anon_shared) {
            self.release_anon_shared(cpu, &files).await;
        }
    }

    /// `mprotect` of whole VMAs inside `[va, va + pages)`: to `PROT_NONE` (`none`: present
    /// PTEs lose `_PAGE_USER` and `_PAGE_WRITE`, PowerPC's `PAGE_NONE`), or back (they regain
    /// `_PAGE_USER`; writes fault again to regain `_PAGE_WRITE`).
    ///
    /// `do_mprotect_pkey` of Linux 6.x (`mm/mprotect.c`): one `mmu_gather` for the call, and
    /// per VMA `change_protection_range` ([`Kernel::change_protection_range`]). 2.6's
    /// `change_protection` flushed the cache range, changed the PTEs under the lock and called
    /// `flush_tlb_range` before dropping it: the same order, without the gather.
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
        let mut tlb = MmuGather::new(mm, false);
        for vma in &vmas {
            if let Some(v) = self.state().vmas[vma.id.index()].as_mut() {
                v.prot_none = none;
            }
            self.change_protection_range(cpu, &mut tlb, vma, none).await;
        }
        tlb.finish(self, cpu).await;
        self.unlock(cpu, LockId::MmapSem(mm));
        Ok(())
    }

    /// `change_protection_range` (`mm/mprotect.c`, Linux 6.x) over the whole of `vma`:
    /// `tlb_start_vma` (`flush_cache_range` over the VMA), then per page-table page under its
    /// lock (`change_pte_range`) each present PTE replaced through
    /// [`Kernel::ptep_modify_prot_start`] and [`Kernel::ptep_modify_prot_commit`] and its TLB
    /// entry owed to the gather (the generic `pte_needs_flush` is always true); then
    /// `tlb_end_vma` (the TLB flush). Swap entries keep their value (nothing of them depends
    /// on the protection here).
    pub async fn change_protection_range(&self, cpu: CpuId, tlb: &mut MmuGather, vma: &Vma, none: bool) {
        tlb.start_vma(self, cpu, vma).await;
        let layout = self.layout();
        let mut va = vma.start;
        while va < vma.end {
            let table_end = pmd_end(va).min(vma.end);
            if self.pte_slot(vma.mm, va).is_some() {
                self.lock(cpu, LockId::Ptl(vma.mm)).await;
                while va < table_end {
                    if layout.pte_present(self.read_pte(cpu, vma.mm, va).await) {
                        let old = self.ptep_modify_prot_start(cpu, vma, va).await;
                        let new = if none {
                            old.without_flags(PteFlags::USER | PteFlags::WRITE)
                        } else {
                            old.with_flags(PteFlags::USER)
                        };
                        self.ptep_modify_prot_commit(cpu, vma, va, old, new).await;
                        tlb.remove_tlb_entry(va);
                    }
                    va = va.add_pages(1);
                }
                self.unlock(cpu, LockId::Ptl(vma.mm));
            }
            va = table_end;
        }
        tlb.end_vma(self, cpu, vma).await;
    }

    /// `ptep_modify_prot_start` (`include/linux/pgtable.h`, the generic version every lineage
    /// here uses): [`crate::arch::ArchHooks::ptep_get_and_clear`], so that no hardware or
    /// trap handler update of the PTE can slip in before the commit. Caller holds the
    /// page-table lock. The monitor judges the commit against the value returned here, not
    /// against the cleared PTE in between.
    pub async fn ptep_modify_prot_start(&self, cpu: CpuId, vma: &Vma, va: VirtAddr) -> Pte {
        let old = self.arch(cpu).ptep_get_and_clear(vma.mm, va).await;
        self.begin_pte_modification(cpu, vma.mm, va, old);
        old
    }

    /// `ptep_modify_prot_commit` (generic version): [`crate::arch::ArchHooks::set_pte_at`] of
    /// `pte`, which replaces the value [`Kernel::ptep_modify_prot_start`] returned (`old_pte`,
    /// which only some architectures' versions use).
    /// Caller holds the page-table lock; the TLB flush is the caller's.
    pub async fn ptep_modify_prot_commit(&self, cpu: CpuId, vma: &Vma, va: VirtAddr, _old: Pte, pte: Pte) {
        self.arch(cpu).set_pte_at(vma.mm, va, pte).await;
        self.end_pte_modification(cpu);
    }

    /// `unmap_region` (`mm/vma.c`, Linux 6.x; `mm/mmap.c` before 6.11): detaches `vmas` from
    /// `mm`, zaps each ([`Kernel::unmap_page_range`]: cache flush of the VMA, PTEs cleared, TLB
    /// flush), unlinks them from rmap and frees their page tables (`free_pgtables`), and
    /// finishes the gather (the flush of the freed tables, then the frees).
    pub async fn unmap_region(&self, cpu: CpuId, mm: MmId, vmas: &[Vma], fullmm: bool) {
        {
            let mut s = self.state();
            s.mms[mm.index()].vmas.retain(|v| !vmas.iter().any(|x| x.id == *v));
        }
        let mut tlb = MmuGather::new(mm, fullmm);
        for vma in vmas {
            self.unmap_page_range(cpu, &mut tlb, vma, vma.start, vma.end).await;
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

    /// `unmap_page_range` (`mm/memory.c`, Linux 6.x) over `[start, end)` of `vma` into `tlb`:
    /// `tlb_start_vma` (`flush_cache_range` over the whole VMA, unless the whole mm goes);
    /// then per page-table page, under its lock (`zap_pte_range`), each PTE of the range
    /// zapped: a present one cleared with `ptep_get_and_clear` and its page gathered, a swap
    /// entry's slot released and the entry cleared with `pte_clear`; then `tlb_end_vma` (the
    /// TLB flush of what was cleared, unless the whole mm goes).
    pub async fn unmap_page_range(
        &self, cpu: CpuId, tlb: &mut MmuGather, vma: &Vma, start: VirtAddr, end: VirtAddr,
    ) {
        tlb.start_vma(self, cpu, vma).await;
        let mut va = start;
        while va < end {
            let table_end = pmd_end(va).min(end);
            if self.pte_slot(vma.mm, va).is_some() {
                self.lock(cpu, LockId::Ptl(vma.mm)).await;
                while va < table_end {
                    self.zap_pte(cpu, tlb, vma, va).await;
                    va = va.add_pages(1);
                }
                self.unlock(cpu, LockId::Ptl(vma.mm));
            }
            va = table_end;
        }
        tlb.end_vma(self, cpu, vma).await;
    }

    /// One PTE of `zap_pte_range` (caller holds the page-table lock): a present PTE is cleared
    /// with `ptep_get_and_clear` (`zap_present_ptes`; a file page whose PTE was dirty becomes
    /// dirty) and its page gathered; a swap entry drops its reference to the slot
    /// (`free_swap_and_cache`) and is then cleared with `pte_clear` (`zap_nonpresent_ptes`,
    /// `clear_not_present_full_ptes`); anything else that is not `pte_none` is cleared with
    /// `pte_clear`.
    async fn zap_pte(&self, cpu: CpuId, tlb: &mut MmuGather, vma: &Vma, va: VirtAddr) {
        let layout = self.layout();
        let pte = self.read_pte(cpu, vma.mm, va).await;
        if layout.pte_none(pte) {
            return;
        }
        match layout.decode(pte) {
            PteKind::Present { pfn, .. } => {
                let old = self.arch(cpu).ptep_get_and_clear(vma.mm, va).await;
                tlb.remove_pte(va, pfn);
                if self.machine().mem.pfn_valid(pfn) {
                    if matches!(self.page(pfn).mapping, Mapping::File(_)) && old.has(PteFlags::DIRTY) {
                        self.set_page_flags(pfn, crate::mm::PageFlags::DIRTY);
                    }
                    self.page_remove_rmap(pfn);
                    tlb.remove_page(pfn);
                }
            }
            PteKind::Swap { offset, .. } => {
                self.free_swap_and_cache(offset);
                self.arch(cpu).pte_clear(vma.mm, va).await;
            }
            _ => self.arch(cpu).pte_clear(vma.mm, va).await,
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
            // `zap_page_range_single`: a gather of its own per VMA.
            let mut tlb = MmuGather::new(vma.mm, false);
            self.unmap_page_range(cpu, &mut tlb, &vma, start, vma.end).await;
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
        self.release_files(cpu, &vmas).await;
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
