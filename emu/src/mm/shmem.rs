//! shmem (tmpfs) files and `MAP_SHARED | MAP_ANONYMOUS`: page-cache pages whose only backing
//! store is swap.
//!
//! Modelled from `mm/shmem.c` (`shmem_getpage_gfp` of 3.x, `shmem_get_folio_gfp` and
//! `shmem_swapin_folio` of 6.x: the same steps on folios), `mm/vmscan.c` (`shrink_folio_list`,
//! `pageout`) and `mm/swap_state.c` (the swap cache):
//!
//! * a shmem page is found, faulted and mapped like any page-cache page (shared at several
//!   addresses, placed by the lineage's `arch_get_unmapped_area`);
//! * a hole is filled by a new page zeroed through the kernel alias (`clear_highpage`), then
//!   `flush_dcache_page`; `read(2)` of a hole allocates nothing and reads zeros (`SGP_READ`);
//! * reclaim unmaps it (`try_to_unmap`: `flush_cache_page`, `ptep_clear_flush` per mapping;
//!   file PTEs are cleared, not turned into swap entries), then `pageout` calls
//!   `shmem_writepage` (`shmem_writeout` since 6.15): a swap slot (`get_swap_page`,
//!   `folio_alloc_swap`), the page into the swap cache (`add_to_swap_cache`), the slot into
//!   the mapping in the page's place (`shmem_delete_from_page_cache`, which also clears
//!   `folio->mapping`: arch code sees no mapping on it, [`crate::arch::ArchCtx::page_mapping`],
//!   though the descriptor keeps the owner for the model's bookkeeping), and `swap_writepage`,
//!   which writes the slot by DMA. No cache flush of its own: only the DMA API's, as for any
//!   page written out. Whether the write completed by the time reclaim looks again is a
//!   seeded choice (a synchronous device frees the page from the swap cache in the same pass;
//!   otherwise it stays there until a later pass finds it clean);
//! * swap-in (`shmem_swapin_folio`): the swap-cache page if it is still there (the same frame,
//!   which may next be mapped at another colour), else a new frame read from the slot; locked,
//!   the entry confirmed (`shmem_confirm_swap`), the page put back in the page cache in the
//!   slot's place (`shmem_add_to_page_cache`), out of the swap cache (`delete_from_swap_cache`),
//!   dirty, and the slot freed (`swap_free`);
//! * `fsync` does nothing (`noop_fsync`); `ftruncate` (`shmem_setattr` → `shmem_truncate_range`)
//!   unmaps, drops the pages and frees the swap entries beyond the new size
//!   (`shmem_free_swap` → `free_swap_and_cache`), and unmaps again;
//! * `MAP_SHARED | MAP_ANONYMOUS` (`shmem_zero_setup`): the VMA gets a new shmem object of its
//!   length at page offset 0; `fork` shares it like any shared file mapping; when its last
//!   mapping goes, the object is truncated away (the final `fput` → `shmem_evict_inode`).

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SHM_COLOUR, VirtAddr};
use crate::choice::ChoiceKind;
use crate::mm::situations::Situation;
use crate::mm::types::Mapping;
use crate::mm::{Errno, FileId, Kernel, LockId, PageFlags};

/// How often a shmem lookup may find its page or swap entry changed under it before giving up.
const MAX_SHMEM_RETRIES: usize = 16;

/// What a lookup may do at a hole (`enum sgp_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sgp {
    /// `SGP_READ`: a hole stays a hole (`read(2)` reads zeros).
    Read,
    /// `SGP_CACHE` / `SGP_WRITE`: a hole gets a new zeroed page.
    Cache,
}

impl Kernel {
    /// Is `file` a shmem file?
    pub fn is_shmem(&self, file: FileId) -> bool {
        self.state().files[file.index()].shmem
    }

    /// `shmem_get_folio_gfp`: the page at `pgoff` of shmem `file`, locked, with a reference
    /// for the caller; swapped in if it is swapped out; a hole filled with a new zeroed page
    /// unless `sgp` is [`Sgp::Read`] (then `Ok(None)`). `Bus` at or beyond end of file.
    pub async fn shmem_get_page(
        &self, cpu: CpuId, file: FileId, pgoff: u64, sgp: Sgp,
    ) -> Result<Option<Pfn>, Errno> {
        for _ in 0..MAX_SHMEM_RETRIES {
            let (cached, slot) = {
                let s = self.state();
                let f = &s.files[file.index()];
                if pgoff >= f.size {
                    return Err(Errno::Bus);
                }
                (f.cached(pgoff), f.swap_slot(pgoff))
            };
            if let Some(page) = cached {
                self.get_page(page);
                self.lock(cpu, LockId::Page(page)).await;
                let d = self.page(page);
                let size = self.state().files[file.index()].size;
                if d.mapping == Mapping::File(file)
                    && d.index == pgoff
                    && !d.flags.contains(PageFlags::SWAPCACHE)
                    && pgoff < size
                {
                    return Ok(Some(page));
                }
                self.unlock(cpu, LockId::Page(page));
                self.put_page(page);
                continue;
            }
            if let Some(slot) = slot {
                match self.shmem_swapin(cpu, file, pgoff, slot).await? {
                    Some(page) => return Ok(Some(page)),
                    None => continue,
                }
            }
            if sgp == Sgp::Read {
                return Ok(None);
            }
            let page = self.alloc_page().ok_or(Errno::NoMem)?;
            self.add_new_page_to_cache_locked(cpu, file, pgoff, page);
            // `clear_highpage` through the kernel alias, then `flush_dcache_page`.
            self.clear_page_via(cpu, page.kernel_va()).await;
            {
                let _r = self.enter_flush_dcache_page(cpu, page);
                self.arch(cpu).flush_dcache_page(page).await;
            }
            self.set_page_flags(page, PageFlags::UPTODATE);
            return Ok(Some(page));
        }
        Err(Errno::Again)
    }

    /// `shmem_swapin_folio`: page `pgoff` of `file` is swapped out to `slot`. The swap-cache
    /// page if there is one, else a new frame read from the slot; locked and confirmed, it goes
    /// back to the page cache, dirty, and the slot is freed. `Ok(None)` when the entry changed
    /// meanwhile (a racing swap-in or truncate): the caller looks again.
    async fn shmem_swapin(
        &self, cpu: CpuId, file: FileId, pgoff: u64, slot: u32,
    ) -> Result<Option<Pfn>, Errno> {
        let cached = self.state().swap[slot as usize].cache;
        let (page, from_cache) = match cached {
            Some(page) => {
                self.get_page(page);
                self.lock(cpu, LockId::Page(page)).await;
                let d = self.page(page);
                if !d.flags.contains(PageFlags::SWAPCACHE) || d.private != slot {
                    self.unlock(cpu, LockId::Page(page));
                    self.put_page(page);
                    return Ok(None);
                }
                (page, true)
            }
            None => {
                let page = self.alloc_page().ok_or(Errno::NoMem)?;
                self.swap_read_new_page(cpu, page, Mapping::File(file), pgoff, slot).await;
                (page, false)
            }
        };
        // `shmem_confirm_swap`, under the page lock.
        let confirmed = self.state().files[file.index()].swap_slot(pgoff) == Some(slot);
        if !confirmed {
            self.unlock(cpu, LockId::Page(page));
            // Truncation frees the entry with `free_swap_and_cache`, which only trylocks the
            // page: a swap-cache page nothing refers to any more is cleaned up here.
            self.swap_cache_drop_unused(page);
            self.put_page(page);
            return Ok(None);
        }
        let was_at = {
            let mut s = self.state();
            let was_at = s.swap[slot as usize].was_at.take();
            s.files[file.index()].pages[pgoff as usize] = Some(page);
            s.files[file.index()].swapped[pgoff as usize] = 0;
            s.swap[slot as usize].cache = None;
            let d = &mut s.pages[page.index()];
            // The swap cache's reference becomes the page cache's.
            d.flags.remove(PageFlags::SWAPCACHE);
            d.flags.insert(PageFlags::DIRTY);
            d.private = 0;
            d.mapping = Mapping::File(file);
            d.index = pgoff;
            was_at
        };
        self.swap_free(slot);
        if from_cache {
            self.met(Situation::ShmemSwapinFromCache);
            if let Some(va) = was_at {
                let mut s = self.state();
                s.swapin_was_at.retain(|&(p, _, _)| p != page);
                if s.swapin_was_at.len() >= 16 {
                    s.swapin_was_at.remove(0);
                }
                s.swapin_was_at.push((page, (file, pgoff), va));
            }
        } else {
            self.met(Situation::ShmemSwapinFromSlot);
        }
        Ok(Some(page))
    }

    /// A swap-cache page whose slot no mapping or PTE refers to any more leaves the swap cache
    /// (`folio_free_swap`), if nobody holds its lock.
    fn swap_cache_drop_unused(&self, page: Pfn) {
        let mut s = self.state();
        let d = s.pages[page.index()];
        if !d.flags.contains(PageFlags::SWAPCACHE) || d.flags.contains(PageFlags::LOCKED) {
            return;
        }
        let slot = d.private as usize;
        if s.swap[slot].count > 0 || s.swap[slot].cache != Some(page) {
            return;
        }
        s.swap[slot].cache = None;
        s.swap[slot].data = None;
        s.swap[slot].was_at = None;
        let dm = &mut s.pages[page.index()];
        dm.flags.remove(PageFlags::SWAPCACHE);
        dm.mapping = Mapping::None;
        dm.private = 0;
        drop(s);
        self.put_page(page); // the swap cache's reference
    }

    /// Reclaim of a locked shmem page (`shrink_folio_list`, caller holds our reference and
    /// the page lock). A page in the page cache is unmapped and, if dirty, written out to a
    /// swap slot (`pageout` → `shmem_writepage`); a clean one is dropped (a hole: it held
    /// zeros). A page in the swap cache (written out by an earlier pass) is written again if
    /// dirty, then freed from the swap cache once its write completed.
    pub(crate) async fn shrink_shmem_page(&self, cpu: CpuId, file: FileId, page: Pfn) -> Result<(), Errno> {
        if !self.page(page).flags.contains(PageFlags::SWAPCACHE) {
            self.page_referenced(cpu, page).await;
            let unmapped = self.shmem_mappings(page);
            self.try_to_unmap(cpu, page).await;
            if self.page(page).mapcount > 0 {
                return Err(Errno::Busy);
            }
            let d = self.page(page);
            if !d.flags.contains(PageFlags::DIRTY) {
                // `__remove_mapping` of a clean page: only the page cache's reference and ours.
                let mut s = self.state();
                let d = s.pages[page.index()];
                if d.refcount != 2 || d.flags.contains(PageFlags::DIRTY) {
                    return Err(Errno::Busy);
                }
                if s.files[file.index()].cached(d.index) == Some(page) {
                    s.files[file.index()].pages[d.index as usize] = None;
                }
                s.pages[page.index()].mapping = Mapping::None;
                drop(s);
                self.put_page(page);
                return Ok(());
            }
            // `pageout`: `folio_clear_dirty_for_io`, then `shmem_writepage`.
            self.clear_page_flags(page, PageFlags::DIRTY);
            {
                let s = self.state();
                let pgoff = s.pages[page.index()].index;
                let f = &s.files[file.index()];
                if pgoff >= f.size || f.cached(pgoff) != Some(page) {
                    // Truncated meanwhile: truncation drops it.
                    drop(s);
                    self.set_page_flags(page, PageFlags::DIRTY);
                    return Err(Errno::Busy);
                }
            }
            let Some(slot) = self.get_swap_slot() else {
                self.set_page_flags(page, PageFlags::DIRTY); // redirty
                return Err(Errno::NoMem);
            };
            {
                let mut s = self.state();
                let pgoff = s.pages[page.index()].index;
                // `add_to_swap_cache` and `swap_shmem_alloc`: the mapping's entry is the
                // slot's one reference.
                s.swap[slot as usize].cache = Some(page);
                s.swap[slot as usize].count = 1;
                s.swap[slot as usize].was_at = unmapped.first;
                let d = &mut s.pages[page.index()];
                d.flags.insert(PageFlags::SWAPCACHE);
                d.private = slot;
                d.refcount += 1;
                // `shmem_delete_from_page_cache`: the slot takes the page's place.
                s.files[file.index()].pages[pgoff as usize] = None;
                s.files[file.index()].swapped[pgoff as usize] = slot;
            }
            self.put_page(page); // the page cache's reference
            if unmapped.count >= 2 {
                self.met(Situation::ShmemToSwapCacheShared);
            }
            if unmapped.colours {
                self.met(Situation::ShmemToSwapCacheColours);
            }
            self.shmem_swap_write(cpu, page, slot).await;
        } else if self.page(page).flags.contains(PageFlags::DIRTY) {
            // A dirty swap-cache page: `pageout` → `swap_writepage` again.
            self.clear_page_flags(page, PageFlags::DIRTY);
            let slot = self.page(page).private;
            self.shmem_swap_write(cpu, page, slot).await;
        }
        // The write completes now (a synchronous device) or later (then the page stays in
        // the swap cache until a later pass). A page whose entry a truncation freed meanwhile
        // is nobody's: it goes now either way.
        let orphan = {
            let s = self.state();
            s.swap[s.pages[page.index()].private as usize].count == 0
        };
        if self.choose(ChoiceKind::Other, 2) == 1 && !orphan {
            return Ok(());
        }
        // `__remove_mapping` → `__delete_from_swap_cache`.
        let mut s = self.state();
        let d = s.pages[page.index()];
        if d.mapcount > 0 || d.refcount != 2 || d.flags.contains(PageFlags::DIRTY) {
            return Err(Errno::Busy);
        }
        let slot = d.private as usize;
        s.swap[slot].cache = None;
        if s.swap[slot].count == 0 {
            s.swap[slot].data = None;
            s.swap[slot].was_at = None;
        }
        let dm = &mut s.pages[page.index()];
        dm.mapping = Mapping::None;
        dm.flags.remove(PageFlags::SWAPCACHE);
        dm.private = 0;
        drop(s);
        self.put_page(page); // the swap cache's reference
        Ok(())
    }

    /// `swap_writepage`: the page written to its slot by DMA.
    async fn shmem_swap_write(&self, cpu: CpuId, page: Pfn, slot: u32) {
        let data = self.dma_page_out(cpu, page).await;
        self.state().swap[slot as usize].data = Some(data);
    }

    /// `get_swap_page`: a seeded free slot, or `None` when swap is full.
    fn get_swap_slot(&self) -> Option<u32> {
        let free: u32 = self.state().swap.iter().skip(1).filter(|s| s.is_free()).count() as u32;
        if free == 0 {
            return None;
        }
        let k = self.choose(ChoiceKind::SwapSlot, free) as usize;
        let s = self.state();
        (1..s.swap.len()).filter(|&i| s.swap[i].is_free()).nth(k).map(|i| i as u32)
    }

    /// The user addresses that map shmem page `page` now: how many, the first, and whether
    /// two are at different colours (for the situations of its write-out).
    fn shmem_mappings(&self, page: Pfn) -> Unmapped {
        let mut u = Unmapped { count: 0, first: None, colours: false };
        for (vma, va) in self.file_mappings(page) {
            if self.follow_pfn(vma.mm, va) != Some(page) {
                continue;
            }
            u.count += 1;
            match u.first {
                None => u.first = Some(va),
                Some(f) => u.colours |= !self.machine().equivalent(f, va),
            }
        }
        u
    }

    /// A PTE mapping `page` at `va` is about to be installed: counts a shmem page mapped at
    /// another colour than before it went to the swap cache and came back from it, and a page
    /// of a shared anonymous mapping that another process maps already (at the same colour, or
    /// at another).
    pub(crate) fn note_shmem_mapped(&self, page: Pfn, mm: crate::mm::MmId, va: VirtAddr) {
        let va = va.page_base();
        let before = {
            let mut s = self.state();
            if s.swapin_was_at.is_empty() && !s.any_anon_shared {
                return;
            }
            let d = s.pages[page.index()];
            match s.swapin_was_at.iter().position(|&(p, _, _)| p == page) {
                // Still the page that came back (not a frame reused since).
                Some(i) => {
                    let (_, at, was) = s.swapin_was_at.swap_remove(i);
                    (d.mapping == Mapping::File(at.0) && d.index == at.1).then_some(was)
                }
                None => None,
            }
        };
        if let Some(was) = before
            && !self.machine().equivalent(was, va)
        {
            self.met(Situation::ShmemSwapinOtherColour);
        }
        let anon_shared = match self.page(page).mapping {
            Mapping::File(f) => self.state().files[f.index()].anon_shared,
            _ => false,
        };
        if !anon_shared {
            return;
        }
        let others = self.file_mappings(page);
        let mut other_colour = false;
        let mut shared = false;
        for (vma, a) in others {
            if vma.mm == mm || self.follow_pfn(vma.mm, a) != Some(page) {
                continue;
            }
            shared = true;
            other_colour |= !self.machine().equivalent(a, va);
        }
        if other_colour {
            self.met(Situation::SharedAnonColours);
        } else if shared {
            self.met(Situation::SharedAnonShared);
        }
    }

    /// `shmem_zero_setup`: the shmem object of a new `MAP_SHARED | MAP_ANONYMOUS` mapping of
    /// `pages` pages. Its colour offset is where its `address_space` happens to lie (a seeded
    /// choice): the mapping itself was placed before the object existed.
    pub(crate) fn shmem_zero_setup(&self, pages: u64) -> FileId {
        let colour = self.choose(ChoiceKind::Other, (SHM_COLOUR / PAGE_SIZE) as u32) as u64;
        let f = self.create_shmem_file(pages, colour);
        let mut s = self.state();
        s.files[f.index()].anon_shared = true;
        s.any_anon_shared = true;
        drop(s);
        f
    }

    /// The final `fput` of the shared anonymous objects among `files` that no mapping maps
    /// any more: `shmem_evict_inode` truncates each to nothing.
    pub(crate) async fn release_anon_shared(&self, cpu: CpuId, files: &[FileId]) {
        for &f in files {
            let gone = {
                let s = self.state();
                let o = &s.files[f.index()];
                o.anon_shared && o.i_mmap.is_empty() && o.size > 0
            };
            if gone {
                let _ = self.sys_truncate(cpu, f, 0).await;
            }
        }
    }

    /// `shmem_undo_range` for the swap entries at and beyond `from` of shmem `file`
    /// (`shmem_free_swap` → `free_swap_and_cache`): each slot loses the mapping's reference,
    /// and a swap-cache page nobody holds leaves the swap cache.
    pub(crate) fn shmem_free_swap_beyond(&self, file: FileId, from: u64) {
        let slots: Vec<u32> = {
            let mut s = self.state();
            let f = &mut s.files[file.index()];
            let mut v = Vec::new();
            for e in f.swapped.iter_mut().skip(from as usize) {
                if *e != 0 {
                    v.push(*e);
                    *e = 0;
                }
            }
            v
        };
        for slot in slots {
            self.swap_free(slot);
            let cache = self.state().swap[slot as usize].cache;
            if let Some(page) = cache {
                self.swap_cache_drop_unused(page);
            }
        }
    }
}

/// The user mappings of a shmem page found by reclaim just before it unmaps them.
struct Unmapped {
    count: usize,
    first: Option<VirtAddr>,
    colours: bool,
}
