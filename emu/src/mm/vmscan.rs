//! Reclaim of one page (`shrink_page_list` for a list of one): `try_to_unmap` with
//! `flush_cache_page` and `ptep_clear_flush` per mapping, `pageout` by DMA, then free.

use crate::addr::{CpuId, Pfn, VirtAddr};
use crate::arch::UnmapOrder;
use crate::choice::ChoiceKind;
use crate::mm::situations::Routine;
use crate::mm::types::{Mapping, Vma};
use crate::mm::{Errno, FileId, Kernel, LockId, MmId, PageFlags};
use crate::pte::{PteFlags, PteKind};

/// Which page the reclaim actor goes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReclaimTarget {
    /// A frame number.
    Pfn(Pfn),
    /// The page-cache page of a file page.
    FilePage {
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
    },
    /// Whatever page a user address maps now.
    User {
        /// Mm.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
}

impl Kernel {
    fn resolve_target(&self, t: ReclaimTarget) -> Option<Pfn> {
        match t {
            ReclaimTarget::Pfn(p) => Some(p),
            ReclaimTarget::FilePage { file, pgoff } => {
                let s = self.state();
                let f = s.files.get(file.index())?;
                // A shmem page written out and still in the swap cache.
                f.cached(pgoff).or_else(|| s.swap[f.swap_slot(pgoff)? as usize].cache)
            }
            ReclaimTarget::User { mm, va } => {
                if self.state().mms.get(mm.index())?.dead {
                    return None;
                }
                self.follow_pfn(mm, va)
            }
        }
    }

    /// Reclaims one page. `Busy` when it is locked, not a reclaimable page, or still mapped
    /// after the unmap attempt; `NoMem` when no swap slot is left.
    pub async fn reclaim(&self, cpu: CpuId, target: ReclaimTarget) -> Result<(), Errno> {
        let page = self.resolve_target(target).ok_or(Errno::Busy)?;
        {
            let s = self.state();
            let d = s.pages.get(page.index()).ok_or(Errno::Busy)?;
            if d.refcount == 0 || d.mapping == Mapping::None || d.flags.contains(PageFlags::PAGETABLE) {
                return Err(Errno::Busy);
            }
        }
        self.get_page(page); // isolate_lru_page
        if !self.trylock(cpu, LockId::Page(page)).await {
            self.put_page(page);
            return Err(Errno::Busy);
        }
        let r = self.shrink_locked_page(cpu, page).await;
        self.unlock(cpu, LockId::Page(page));
        self.put_page(page);
        r
    }

    async fn shrink_locked_page(&self, cpu: CpuId, page: Pfn) -> Result<(), Errno> {
        let d = self.page(page);
        let anon = match d.mapping {
            Mapping::Anon(a) => Some(a),
            Mapping::File(f) if self.is_shmem(f) => return self.shrink_shmem_page(cpu, f, page).await,
            Mapping::File(_) => None,
            Mapping::None => return Err(Errno::Busy),
        };
        if anon.is_some() && !d.flags.contains(PageFlags::SWAPCACHE) {
            self.add_to_swap(page)?;
        }
        self.page_referenced(cpu, page).await;
        self.try_to_unmap(cpu, page).await;
        if self.page(page).mapcount > 0 {
            return Err(Errno::Busy);
        }
        let d = self.page(page);
        if d.flags.contains(PageFlags::DIRTY) {
            // pageout
            self.clear_page_flags(page, PageFlags::DIRTY);
            match d.mapping {
                Mapping::Anon(_) => {
                    let data = self.dma_page_out(cpu, page).await;
                    let slot = self.page(page).private as usize;
                    self.state().swap[slot].data = Some(data);
                }
                Mapping::File(f) => {
                    self.page_mkclean(cpu, page).await;
                    let data = self.dma_page_out(cpu, page).await;
                    if let Some(dst) = self.state().files[f.index()].disk.get_mut(d.index as usize) {
                        *dst = data;
                    }
                }
                Mapping::None => {}
            }
        }
        // Remove from the page cache or swap cache; the frame is freed with the last reference.
        let mut s = self.state();
        let d = s.pages[page.index()];
        // `__remove_mapping`: only the cache's reference and ours may remain
        // (`page_ref_freeze(page, 2)`); a pin from `get_user_pages` keeps the page cached. A
        // page dirtied again during `pageout` (a `get_user_pages` writer that has already
        // dropped its pin) is kept too: its new data is not on disk or in swap.
        if d.mapcount > 0 || d.refcount != 2 || d.flags.contains(PageFlags::DIRTY) {
            return Err(Errno::Busy);
        }
        match d.mapping {
            Mapping::File(f) => {
                if s.files[f.index()].cached(d.index) == Some(page) {
                    s.files[f.index()].pages[d.index as usize] = None;
                }
            }
            Mapping::Anon(_) => {
                let slot = d.private as usize;
                s.swap[slot].cache = None;
                if s.swap[slot].count == 0 {
                    s.swap[slot].data = None;
                }
            }
            Mapping::None => return Ok(()),
        }
        let dm = &mut s.pages[page.index()];
        dm.mapping = Mapping::None;
        dm.flags.remove(PageFlags::SWAPCACHE);
        dm.private = 0;
        drop(s);
        self.put_page(page); // the page cache's or swap cache's reference
        Ok(())
    }

    /// `add_to_swap`: a seeded free slot; the page enters the swap cache, dirty.
    fn add_to_swap(&self, page: Pfn) -> Result<(), Errno> {
        let free: u32 = self.state().swap.iter().skip(1).filter(|s| s.is_free()).count() as u32;
        if free == 0 {
            return Err(Errno::NoMem);
        }
        let k = self.choose(ChoiceKind::SwapSlot, free) as usize;
        let mut s = self.state();
        let slot = (1..s.swap.len()).filter(|&i| s.swap[i].is_free()).nth(k).expect("k < free");
        s.swap[slot].cache = Some(page);
        let d = &mut s.pages[page.index()];
        d.flags.insert(PageFlags::SWAPCACHE | PageFlags::DIRTY);
        d.private = slot as u32;
        d.refcount += 1;
        Ok(())
    }

    /// The start of an `rmap_walk`: takes the lock that keeps `page`'s mappings (the file's
    /// `i_mmap` lock or the `anon_vma` lock) and returns it with the VMAs that may map the
    /// page and its address in each; `None` for a page that belongs to nothing.
    async fn rmap_walk_lock(&self, cpu: CpuId, page: Pfn) -> Option<(LockId, Vec<(Vma, VirtAddr)>)> {
        let d = self.page(page);
        let lock = match d.mapping {
            Mapping::File(f) => LockId::IMmap(f),
            Mapping::Anon(a) => LockId::AnonVma(a),
            Mapping::None => return None,
        };
        self.lock(cpu, lock).await;
        let maps = match d.mapping {
            Mapping::File(_) => self.file_mappings(page),
            _ => self.anon_mappings(page),
        };
        Some((lock, maps))
    }

    /// One mapping of an rmap walk: unless `va` of `vma` has no PTE page (`None`), takes the
    /// page-table lock (held on return) and reads the PTE; whether it still maps `page`.
    async fn lock_mapping_pte(&self, cpu: CpuId, vma: &Vma, va: VirtAddr, page: Pfn) -> Option<bool> {
        self.pte_slot(vma.mm, va)?;
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        let pte = self.read_pte(cpu, vma.mm, va).await;
        Some(matches!(self.layout().decode(pte), PteKind::Present { pfn, .. } if pfn == page))
    }

    /// `page_referenced`: ages every PTE mapping `page` (`ptep_clear_flush_young`); returns
    /// how many were young. Reclaim here goes on regardless, as for a page found old on a
    /// second pass, so aging and unmapping are two separate windows other CPUs can race with.
    pub async fn page_referenced(&self, cpu: CpuId, page: Pfn) -> usize {
        let Some((lock, maps)) = self.rmap_walk_lock(cpu, page).await else { return 0 };
        let mut young = 0;
        for (vma, va) in maps {
            let Some(maps_page) = self.lock_mapping_pte(cpu, &vma, va, page).await else { continue };
            if maps_page && self.arch(cpu).ptep_clear_flush_young(vma, va).await {
                young += 1;
            }
            self.unlock(cpu, LockId::Ptl(vma.mm));
        }
        self.unlock(cpu, lock);
        young
    }

    /// `try_to_unmap`: every PTE mapping `page` is flushed and cleared (`flush_cache_page`,
    /// then `ptep_clear_flush`); anon PTEs become swap entries.
    pub async fn try_to_unmap(&self, cpu: CpuId, page: Pfn) {
        let d = self.page(page);
        let Some((lock, maps)) = self.rmap_walk_lock(cpu, page).await else { return };
        for (vma, va) in maps {
            let Some(maps_page) = self.lock_mapping_pte(cpu, &vma, va, page).await else { continue };
            if maps_page {
                let old = match self.config.unmap_order {
                    UnmapOrder::FlushThenClear => {
                        {
                            let _r = self.enter_routine(cpu, Routine::FlushCachePage, page);
                            self.arch(cpu).flush_cache_page(vma, va, page).await;
                        }
                        self.arch(cpu).ptep_clear_flush(vma, va).await
                    }
                    UnmapOrder::ClearThenFlush => {
                        let old = self.arch(cpu).ptep_clear_flush(vma, va).await;
                        {
                            let _r = self.enter_routine(cpu, Routine::FlushCachePage, page);
                            self.arch(cpu).flush_cache_page(vma, va, page).await;
                        }
                        old
                    }
                };
                if old.has(PteFlags::DIRTY) {
                    self.set_page_flags(page, PageFlags::DIRTY);
                }
                if matches!(d.mapping, Mapping::Anon(_)) {
                    let slot = self.page(page).private;
                    self.state().swap[slot as usize].count += 1;
                    let swp = self.layout().swp_entry(0, slot);
                    self.arch(cpu).set_pte_at(vma.mm, va, swp).await;
                }
                self.page_remove_rmap(page);
                self.put_page(page);
            }
            self.unlock(cpu, LockId::Ptl(vma.mm));
        }
        self.unlock(cpu, lock);
    }
}
