//! The page cache, the swap cache, DMA to and from backing store, and the file system calls:
//! `write(2)`, `read(2)`, `fsync`, `msync` and `truncate`.

use crate::addr::{CpuId, Pfn, SpaceId, VirtAddr, WORDS_PER_PAGE};
use crate::mm::shmem::Sgp;
use crate::mm::situations::Routine;
use crate::mm::types::{Mapping, Vma};
use crate::mm::{Action, Errno, FileId, Kernel, LockId, LockMode, MmId, Obs, PageFlags};
use crate::pte::{PteFlags, PteKind};

/// How often a page lookup may find its page truncated under it before giving up.
const MAX_LOOKUP_RETRIES: usize = 16;

impl Kernel {
    /// `add_to_page_cache_lru` of the new frame `page` at `pgoff` of `file`, locked by `cpu`
    /// (`__filemap_add_folio` with the folio locked): the caller fills it.
    pub(crate) fn add_new_page_to_cache_locked(&self, cpu: CpuId, file: FileId, pgoff: u64, page: Pfn) {
        let mut s = self.state();
        let d = &mut s.pages[page.index()];
        d.mapping = Mapping::File(file);
        d.index = pgoff;
        d.refcount += 1; // the page cache's reference
        s.files[file.index()].pages[pgoff as usize] = Some(page);
        let ok = s.locks.try_acquire(LockId::Page(page), cpu, LockMode::Exclusive);
        debug_assert!(ok);
        s.pages[page.index()].flags.insert(PageFlags::LOCKED);
    }

    /// The new frame `page` joins the swap cache for `slot`, locked by `cpu`, owned by
    /// `mapping` at `index` (`add_to_swap_cache`), and `swap_read_folio` reads the slot into it
    /// by DMA (zeros for a slot never written); the page is then up to date.
    pub(crate) async fn swap_read_new_page(
        &self, cpu: CpuId, page: Pfn, mapping: Mapping, index: u64, slot: u32,
    ) {
        let data = {
            let mut s = self.state();
            let d = &mut s.pages[page.index()];
            d.mapping = mapping;
            d.index = index;
            d.private = slot;
            d.flags.insert(PageFlags::SWAPCACHE | PageFlags::LOCKED);
            d.refcount += 1; // the swap cache's reference
            s.swap[slot as usize].cache = Some(page);
            let ok = s.locks.try_acquire(LockId::Page(page), cpu, LockMode::Exclusive);
            debug_assert!(ok);
            s.swap[slot as usize].data.clone()
        };
        let data = data.unwrap_or_else(|| vec![0u64; WORDS_PER_PAGE].into_boxed_slice());
        self.dma_page_in(cpu, page, &data).await;
        self.set_page_flags(page, PageFlags::UPTODATE);
    }

    // ----- DMA with the generic DMA-API cache maintenance -------------------------------

    /// The DMA API's cache maintenance for `page`: every line flushed (or purged) in real mode
    /// at its physical address, i.e. at the kernel alias's colour, one step per line. No
    /// translation is made, so nothing can be speculated in afterwards.
    pub async fn dma_sync(&self, cpu: CpuId, page: Pfn, purge: bool) {
        let line = self.machine().config().line_bytes;
        let mut off = 0;
        while off < crate::addr::PAGE_SIZE {
            let pa = page.phys().add_bytes(off);
            let va = pa.kernel_va();
            self.step(
                cpu,
                if purge {
                    Action::Pdc { space: SpaceId::KERNEL, va }
                } else {
                    Action::Fdc { space: SpaceId::KERNEL, va }
                },
            )
            .await;
            self.machine().flush_phys(cpu, pa, purge);
            off += line;
        }
    }

    /// Writes `page` out by DMA (`dma_map_page(DMA_TO_DEVICE)`): dirty lines of the kernel
    /// alias are written back first, then the device reads memory.
    pub async fn dma_page_out(&self, cpu: CpuId, page: Pfn) -> Box<[u64]> {
        self.dma_sync(cpu, page, false).await;
        let mut buf = vec![0u64; WORDS_PER_PAGE].into_boxed_slice();
        self.dma_read(cpu, page, &mut buf).await;
        buf
    }

    /// Reads `data` into `page` by DMA (`DMA_FROM_DEVICE`): the kernel alias is written back
    /// before and invalidated after, so no stale kernel-alias line survives.
    pub async fn dma_page_in(&self, cpu: CpuId, page: Pfn, data: &[u64]) {
        self.dma_sync(cpu, page, false).await;
        self.dma_write(cpu, page, data).await;
        self.dma_sync(cpu, page, true).await;
    }

    // ----- page cache -------------------------------------------------------------------

    /// `find_lock_page` with read-in: the page-cache page at `pgoff` of `file`, locked, with a
    /// reference for the caller. `Bus` beyond end of file.
    pub async fn find_lock_page(&self, cpu: CpuId, file: FileId, pgoff: u64) -> Result<Pfn, Errno> {
        if self.is_shmem(file) {
            let page = self.shmem_get_page(cpu, file, pgoff, Sgp::Cache).await?;
            return page.ok_or(Errno::Again);
        }
        for _ in 0..MAX_LOOKUP_RETRIES {
            let cached = {
                let s = self.state();
                let f = &s.files[file.index()];
                if pgoff >= f.size {
                    return Err(Errno::Bus);
                }
                f.cached(pgoff)
            };
            if let Some(page) = cached {
                self.get_page(page);
                self.lock(cpu, LockId::Page(page)).await;
                let d = self.page(page);
                let size = self.state().files[file.index()].size;
                if d.mapping == Mapping::File(file) && d.index == pgoff && pgoff < size {
                    return Ok(page);
                }
                self.unlock(cpu, LockId::Page(page));
                self.put_page(page);
                continue;
            }
            let page = self.alloc_page().ok_or(Errno::NoMem)?;
            self.add_new_page_to_cache_locked(cpu, file, pgoff, page);
            let data = self.state().files[file.index()].disk.get(pgoff as usize).cloned();
            let data = data.unwrap_or_else(|| vec![0u64; WORDS_PER_PAGE].into_boxed_slice());
            self.dma_page_in(cpu, page, &data).await;
            self.set_page_flags(page, PageFlags::UPTODATE);
            return Ok(page);
        }
        Err(Errno::Again)
    }

    /// The swap-cache page of `slot`, locked, with a reference; read in if needed.
    pub async fn swapin_lock_page(
        &self, cpu: CpuId, vma: &Vma, va: VirtAddr, slot: u32,
    ) -> Result<Pfn, Errno> {
        for _ in 0..MAX_LOOKUP_RETRIES {
            let cached = {
                let s = self.state();
                let sl = s.swap.get(slot as usize).ok_or(Errno::Segv)?;
                if sl.is_free() {
                    return Err(Errno::Segv);
                }
                sl.cache
            };
            if let Some(page) = cached {
                self.get_page(page);
                self.lock(cpu, LockId::Page(page)).await;
                let d = self.page(page);
                if d.flags.contains(PageFlags::SWAPCACHE) && d.private == slot {
                    return Ok(page);
                }
                self.unlock(cpu, LockId::Page(page));
                self.put_page(page);
                continue;
            }
            let page = self.alloc_page().ok_or(Errno::NoMem)?;
            let anon = vma.anon.ok_or(Errno::Segv)?;
            self.swap_read_new_page(cpu, page, Mapping::Anon(anon), vma.pgoff_of(va), slot).await;
            return Ok(page);
        }
        Err(Errno::Again)
    }

    /// `swap_free`: one fewer swap PTE refers to `slot`. The slot's data is dropped when
    /// nothing refers to it any more; a swap-cache page stays until its owner removes it.
    pub fn swap_free(&self, slot: u32) {
        let mut s = self.state();
        let sl = &mut s.swap[slot as usize];
        sl.count = sl.count.saturating_sub(1);
        if sl.count == 0 && sl.cache.is_none() {
            sl.data = None;
        }
    }

    /// `try_to_free_swap` (caller holds the page lock or knows nobody does): a swap-cache page
    /// no swap PTE refers to leaves the swap cache, dirty (it is now the only copy).
    pub fn try_to_free_swap(&self, page: Pfn) -> bool {
        let mut s = self.state();
        let d = s.pages[page.index()];
        if !d.flags.contains(PageFlags::SWAPCACHE) {
            return false;
        }
        let slot = d.private as usize;
        if s.swap[slot].count > 0 {
            return false;
        }
        s.swap[slot].cache = None;
        s.swap[slot].data = None;
        let d = &mut s.pages[page.index()];
        d.flags.remove(PageFlags::SWAPCACHE);
        d.flags.insert(PageFlags::DIRTY);
        d.private = 0;
        drop(s);
        self.put_page(page);
        true
    }

    // ----- write(2) and read(2) ---------------------------------------------------------

    /// `write(2)` of one word at `(pgoff, word)` of `file`, through the kernel alias. Extends
    /// the file if needed. The kernel store happens between entry and return.
    pub async fn sys_write(
        &self, cpu: CpuId, file: FileId, pgoff: u64, word: usize, value: u64,
    ) -> Result<(), Errno> {
        if word >= WORDS_PER_PAGE {
            return Err(Errno::Inval);
        }
        self.lock(cpu, LockId::Inode(file)).await;
        let r = self.write_locked(cpu, file, pgoff, word, value).await;
        self.unlock(cpu, LockId::Inode(file));
        r
    }

    async fn write_locked(
        &self, cpu: CpuId, file: FileId, pgoff: u64, word: usize, value: u64,
    ) -> Result<(), Errno> {
        self.extend_file(file, pgoff + 1);
        let page = self.find_lock_page(cpu, file, pgoff).await?;
        if self.file_writably_mapped(file) {
            {
                let _r = self.enter_flush_dcache_page(cpu, page);
                self.arch(cpu).flush_dcache_page(page).await;
            }
        }
        self.arch(cpu).kmap(page).await;
        self.kernel_store(cpu, page.word(word).kernel_va(), value).await;
        self.observe(Obs::FileWrite { cpu, file, pgoff, word, value });
        self.arch(cpu).kunmap(page).await;
        {
            let _r = self.enter_flush_dcache_page(cpu, page);
            self.arch(cpu).flush_dcache_page(page).await;
        }
        self.set_page_flags(page, PageFlags::DIRTY);
        self.unlock(cpu, LockId::Page(page));
        self.put_page(page);
        Ok(())
    }

    /// `read(2)` of one word; `None` at or beyond end of file.
    pub async fn sys_read(
        &self, cpu: CpuId, file: FileId, pgoff: u64, word: usize,
    ) -> Result<Option<u64>, Errno> {
        if word >= WORDS_PER_PAGE {
            return Err(Errno::Inval);
        }
        self.sys_read_words(cpu, file, pgoff, &[word as u16]).await
    }

    /// `read(2)` of several words of one page: one `flush_dcache_page` (when the file is
    /// writably mapped), then each word loaded through the kernel alias and observed. Returns
    /// the last word read; `None` at or beyond end of file.
    pub async fn sys_read_words(
        &self, cpu: CpuId, file: FileId, pgoff: u64, words: &[u16],
    ) -> Result<Option<u64>, Errno> {
        if words.iter().any(|&w| w as usize >= WORDS_PER_PAGE) {
            return Err(Errno::Inval);
        }
        let found = if self.is_shmem(file) {
            // `shmem_file_read_iter` with `SGP_READ`: a hole reads zeros, allocating nothing.
            self.shmem_get_page(cpu, file, pgoff, Sgp::Read).await
        } else {
            self.find_lock_page(cpu, file, pgoff).await.map(Some)
        };
        let page = match found {
            Ok(Some(p)) => p,
            Ok(None) => {
                for &w in words {
                    self.observe(Obs::FileRead { cpu, file, pgoff, word: w as usize, value: 0 });
                }
                return Ok(words.last().map(|_| 0));
            }
            Err(Errno::Bus) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.unlock(cpu, LockId::Page(page));
        if self.file_writably_mapped(file) {
            {
                let _r = self.enter_flush_dcache_page(cpu, page);
                self.arch(cpu).flush_dcache_page(page).await;
            }
        }
        self.arch(cpu).kmap(page).await;
        let mut last = None;
        for &w in words {
            let word = w as usize;
            let v = self.kernel_load(cpu, page.word(word).kernel_va()).await;
            self.observe(Obs::FileRead { cpu, file, pgoff, word, value: v });
            last = Some(v);
        }
        self.arch(cpu).kunmap(page).await;
        self.put_page(page);
        Ok(last)
    }

    fn extend_file(&self, file: FileId, pages: u64) {
        let mut s = self.state();
        let f = &mut s.files[file.index()];
        while f.size < pages {
            f.size += 1;
            if f.shmem {
                if f.swapped.len() < f.size as usize {
                    f.swapped.push(0);
                }
            } else if f.disk.len() < f.size as usize {
                f.disk.push(vec![0u64; WORDS_PER_PAGE].into_boxed_slice());
            }
            if f.pages.len() < f.size as usize {
                f.pages.push(None);
            }
        }
    }

    // ----- writeback --------------------------------------------------------------------

    /// `page_mkclean`: write-protects and cleans every shared mapping of file page `page`
    /// (flush cache, clear PTE with TLB flush, set the clean PTE). Returns whether any PTE
    /// was dirty. Caller holds the page lock.
    pub async fn page_mkclean(&self, cpu: CpuId, page: Pfn) -> bool {
        let Mapping::File(file) = self.page(page).mapping else {
            return false;
        };
        let mut dirty = false;
        self.lock(cpu, LockId::IMmap(file)).await;
        for (vma, va) in self.file_mappings(page) {
            if !vma.shared {
                continue;
            }
            self.lock(cpu, LockId::Ptl(vma.mm)).await;
            let pte = self.read_pte(cpu, vma.mm, va).await;
            if let PteKind::Present { pfn, flags } = self.layout().decode(pte)
                && pfn == page
                && flags.intersects(PteFlags::WRITE | PteFlags::DIRTY)
            {
                {
                    let _r = self.enter_routine(cpu, Routine::FlushCachePage, page);
                    self.arch(cpu).flush_cache_page(vma, va, page).await;
                }
                let old = self.arch(cpu).ptep_clear_flush(vma, va).await;
                dirty |= old.has(PteFlags::DIRTY);
                let clean = old.without_flags(PteFlags::WRITE | PteFlags::DIRTY);
                let clean = if self.layout().pte_present(clean) {
                    clean
                } else {
                    pte.without_flags(PteFlags::WRITE | PteFlags::DIRTY)
                };
                self.arch(cpu).set_pte_at(vma.mm, va, clean).await;
            }
            self.unlock(cpu, LockId::Ptl(vma.mm));
        }
        self.unlock(cpu, LockId::IMmap(file));
        dirty
    }

    /// Writes back one dirty page-cache page (locked by the caller) to the file.
    async fn writeback_page(&self, cpu: CpuId, file: FileId, pgoff: u64, page: Pfn) {
        self.clear_page_flags(page, PageFlags::DIRTY);
        self.page_mkclean(cpu, page).await;
        let data = self.dma_page_out(cpu, page).await;
        let mut s = self.state();
        if let Some(d) = s.files[file.index()].disk.get_mut(pgoff as usize) {
            *d = data;
        }
    }

    /// `fsync`: writes every dirty page of `file` back to its backing store.
    pub async fn sys_fsync(&self, cpu: CpuId, file: FileId) -> Result<(), Errno> {
        if self.is_shmem(file) {
            // `noop_fsync`: a shmem file has nothing to write back to.
            return Ok(());
        }
        let size = self.state().files[file.index()].size;
        for pgoff in 0..size {
            let Some(page) = self.state().files[file.index()].cached(pgoff) else {
                continue;
            };
            if !self.page(page).flags.contains(PageFlags::DIRTY) {
                continue;
            }
            self.get_page(page);
            self.lock(cpu, LockId::Page(page)).await;
            let d = self.page(page);
            if d.mapping == Mapping::File(file) && d.index == pgoff && d.flags.contains(PageFlags::DIRTY) {
                self.writeback_page(cpu, file, pgoff, page).await;
            }
            self.unlock(cpu, LockId::Page(page));
            self.put_page(page);
        }
        Ok(())
    }

    /// `msync(MS_SYNC)` over `pages` pages at `va` of `mm`: moves PTE dirty bits of shared
    /// file mappings to their pages (flushing the user alias first), then `fsync`s the files.
    pub async fn sys_msync(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pages: u64) -> Result<(), Errno> {
        let end = va.page_base().add_pages(pages);
        self.lock_mode(cpu, LockId::MmapSem(mm), LockMode::Shared).await;
        let vmas = self.state().vmas_overlapping(mm, va.page_base(), end);
        let mut files = Vec::new();
        for vma in vmas {
            let (Some(file), true) = (vma.file, vma.shared) else {
                continue;
            };
            if !files.contains(&file) {
                files.push(file);
            }
            let mut a = vma.start.max(va.page_base());
            while a < vma.end.min(end) {
                self.lock(cpu, LockId::Ptl(mm)).await;
                let pte = self.read_pte(cpu, mm, a).await;
                if let PteKind::Present { pfn, flags } = self.layout().decode(pte)
                    && flags.contains(PteFlags::DIRTY)
                {
                    {
                        let _r = self.enter_routine(cpu, Routine::FlushCachePage, pfn);
                        self.arch(cpu).flush_cache_page(vma, a, pfn).await;
                    }
                    let old = self.arch(cpu).ptep_clear_flush(vma, a).await;
                    let base = if self.layout().pte_present(old) { old } else { pte };
                    self.arch(cpu).set_pte_at(mm, a, base.without_flags(PteFlags::DIRTY)).await;
                    self.set_page_flags(pfn, PageFlags::DIRTY);
                }
                self.unlock(cpu, LockId::Ptl(mm));
                a = a.add_pages(1);
            }
        }
        self.unlock(cpu, LockId::MmapSem(mm));
        for f in files {
            self.sys_fsync(cpu, f).await?;
        }
        Ok(())
    }

    // ----- truncate ---------------------------------------------------------------------

    /// `truncate` to `pages` pages: unmaps the pages beyond (private COW copies too), drops
    /// them from the page cache and the backing store.
    pub async fn sys_truncate(&self, cpu: CpuId, file: FileId, pages: u64) -> Result<(), Errno> {
        self.lock(cpu, LockId::Inode(file)).await;
        let r = self.truncate_locked(cpu, file, pages).await;
        self.unlock(cpu, LockId::Inode(file));
        r
    }

    async fn truncate_locked(&self, cpu: CpuId, file: FileId, pages: u64) -> Result<(), Errno> {
        let old = {
            let mut s = self.state();
            let f = &mut s.files[file.index()];
            let old = f.size;
            f.size = f.size.min(pages);
            // The blocks go with the size: a racing write(2) that extends the file again
            // must find zeros, not the truncated data.
            f.disk.truncate(f.size as usize);
            old
        };
        if pages >= old {
            self.extend_file(file, pages);
            return Ok(());
        }
        self.unmap_mapping_range(cpu, file, pages).await;
        for pgoff in pages..old {
            let Some(page) = self.state().files[file.index()].cached(pgoff) else {
                continue;
            };
            self.get_page(page);
            self.lock(cpu, LockId::Page(page)).await;
            if self.page(page).mapcount > 0 {
                // A racing fault mapped it again: unmap once more (Linux does the same).
                self.unmap_mapping_range(cpu, file, pages).await;
            }
            let owned = {
                let d = self.page(page);
                // A shmem page reclaim moved to the swap cache meanwhile has left the page
                // cache: its swap entry is freed below.
                d.mapping == Mapping::File(file)
                    && d.index == pgoff
                    && !d.flags.contains(PageFlags::SWAPCACHE)
            };
            if owned {
                let mut s = self.state();
                s.files[file.index()].pages[pgoff as usize] = None;
                let d = &mut s.pages[page.index()];
                d.mapping = Mapping::None;
                d.flags.remove(PageFlags::DIRTY);
                drop(s);
                self.put_page(page); // the page cache's reference
            }
            self.unlock(cpu, LockId::Page(page));
            self.put_page(page);
        }
        if self.is_shmem(file) {
            // `shmem_undo_range`: the swap entries beyond go too.
            self.shmem_free_swap_beyond(file, pages);
            let mut s = self.state();
            let f = &mut s.files[file.index()];
            f.swapped.truncate(f.size as usize);
        }
        // As `truncate_pagecache`: private pages COWed from the file after the first unmap
        // would outlive the truncation; a second unmap catches them.
        self.unmap_mapping_range(cpu, file, pages).await;
        Ok(())
    }
}
