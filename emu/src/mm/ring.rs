//! A kernel-allocated buffer mapped into user space, as io_uring's rings are: the kernel
//! allocates the pages, a driver `mmap` inserts them into the caller's page table
//! (`vm_insert_pages`), and from then on the kernel reads and writes words through the pages'
//! linear (kernel) address while user space loads and stores through its mapping. Nothing
//! flushes a cache around those accesses: the ring is coherent on a VIPT machine only if the
//! user mapping is an equivalent alias of the kernel address.
//!
//! The routines follow io_uring of Linux 6.x (`io_uring/memmap.c`, `io_uring/io_uring.c`):
//!
//! * [`Kernel::io_uring_mmap`]: `io_uring_get_unmapped_area`, then `io_uring_mmap` →
//!   `vm_insert_pages` (`mm/memory.c`: per page `validate_page_before_insert`, which calls
//!   `flush_dcache_folio`, then under the page-table lock `insert_page_into_pte_locked`: the
//!   page gains a reference and a mapping, `set_pte_at`; no `update_mmu_cache`). 6.1–6.9
//!   mapped with `remap_pfn_range`, which sets the same PTEs without the flush.
//! * Placement ([`crate::arch::ArchConfig::io_uring_coloured`]): since 6.4 the mapping is
//!   placed congruent with the kernel address. 6.4's `io_uring_mmu_get_unmapped_area`
//!   (d808459b2e31) searched itself (`vm_unmapped_area` with `align_offset` = the kernel
//!   address, `align_mask` the colour mask); since 6.5 (32832a407a71, 56675f8b9f9b; in
//!   6.1-stable from 6.1.51) it passes no file, `MAP_SHARED` and `pgoff` = the kernel address's
//!   page number to parisc's `arch_get_unmapped_area` (`do_color_align` for `MAP_SHARED`,
//!   `shared_align_offset(0, pgoff)`), with the same result. Before (up to 6.3), the mapping
//!   was placed by the file it is mapped through, at that file's colour whatever the kernel
//!   address.
//! * [`Kernel::io_fill_cqe`]: the kernel posts a completion, a store through the kernel
//!   address (`io_fill_cqe_aux` → `io_get_cqe`, `WRITE_ONCE`; `io_commit_cqring`'s
//!   `smp_store_release` of the tail is an ordinary store too).
//! * [`Kernel::io_get_sqe`]: the kernel fetches a submission, a load through the kernel
//!   address (`io_get_sqe`, `READ_ONCE`).

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SHM_COLOUR, VirtAddr, WORDS_PER_PAGE};
use crate::mm::fault::user_flags;
use crate::mm::mmap::MmapArgs;
use crate::mm::situations::Situation;
use crate::mm::types::{RingId, RingObj, Vma, VmaId};
use crate::mm::{Errno, Kernel, LockId, MmId, Obs, PageFlags};

impl Kernel {
    /// Creates a kernel buffer of one page (`io_mem_alloc`, a zeroed `__get_free_pages`),
    /// mapped through a file of colour offset `file_colour` pages. Set-up only (before any
    /// program runs: the frame of a fresh machine is zero and nothing caches it). `None` when
    /// memory is exhausted.
    pub fn create_ring(&self, file_colour: u64) -> Option<RingId> {
        let page = self.alloc_page()?;
        self.set_page_flags(page, PageFlags::UPTODATE);
        self.machine().mem.frame_mut(page).fill(0);
        let mut s = self.state();
        s.rings.push(RingObj { pages: vec![page], file_colour: file_colour % (SHM_COLOUR / PAGE_SIZE) });
        Some(RingId(s.rings.len() as u32 - 1))
    }

    /// The pages of kernel buffer `ring`.
    pub fn ring_pages(&self, ring: RingId) -> Vec<Pfn> {
        self.state().rings.get(ring.index()).map_or_else(Vec::new, |r| r.pages.clone())
    }

    /// The page of `ring` that holds page `page` of its mapping.
    fn ring_page(&self, ring: RingId, page: u64) -> Result<Pfn, Errno> {
        let s = self.state();
        let r = s.rings.get(ring.index()).ok_or(Errno::Inval)?;
        r.pages.get(page as usize).copied().ok_or(Errno::Inval)
    }

    /// `io_uring_get_unmapped_area` (6.4 and later) or the file's own placement (before): the
    /// start of a free range for the whole of `ring` in `mm`.
    pub fn io_uring_get_unmapped_area(&self, mm: MmId, ring: RingId) -> Result<VirtAddr, Errno> {
        let (first, file_colour, pages) = {
            let s = self.state();
            let r = s.rings.get(ring.index()).ok_or(Errno::Inval)?;
            (r.pages[0], r.file_colour, r.pages.len() as u64)
        };
        let colour = if self.config.io_uring_coloured {
            // `pgoff = (uintptr_t)ptr >> PAGE_SHIFT` with no file and `MAP_SHARED`.
            first.kernel_va().raw() % SHM_COLOUR
        } else {
            // The ring file's colour and the mmap offset `IORING_OFF_SQ_RING` (0).
            file_colour * PAGE_SIZE
        };
        let args = MmapArgs { pages, file: None, shared: true, writable: true, fixed: None };
        self.unmapped_area(mm, &args, Some(colour))
    }

    /// `mmap` of kernel buffer `ring` into `mm` (io_uring's `mmap`): places it, creates a
    /// shared writable VMA for it and inserts every page (`vm_insert_pages`). Returns the
    /// address.
    pub async fn io_uring_mmap(&self, cpu: CpuId, mm: MmId, ring: RingId) -> Result<VirtAddr, Errno> {
        self.lock(cpu, LockId::MmapSem(mm)).await;
        let r = self.io_uring_mmap_locked(cpu, mm, ring).await;
        self.unlock(cpu, LockId::MmapSem(mm));
        r
    }

    async fn io_uring_mmap_locked(&self, cpu: CpuId, mm: MmId, ring: RingId) -> Result<VirtAddr, Errno> {
        let start = self.io_uring_get_unmapped_area(mm, ring)?;
        let pages = self.ring_pages(ring);
        let vma = Vma {
            id: VmaId(0),
            mm,
            space: self.mm_space(mm),
            start,
            end: start.add_pages(pages.len() as u64),
            pgoff: 0,
            file: None,
            shared: true,
            writable: true,
            exec: false,
            prot_none: false,
            anon: None,
            ring: Some(ring),
        };
        let id = self.insert_vma(vma);
        let vma = self.vma(id);
        if !self.machine().equivalent(start, pages[0].kernel_va()) {
            self.met(Situation::RingUserOtherColour);
        }
        for (i, &page) in pages.iter().enumerate() {
            let va = start.add_pages(i as u64);
            self.pte_alloc(cpu, mm, va).await?;
            // `validate_page_before_insert`: `flush_dcache_folio`.
            {
                let _r = self.enter_flush_dcache_page(cpu, page);
                self.arch(cpu).flush_dcache_page(page).await;
            }
            // `insert_page_into_pte_locked`.
            self.lock(cpu, LockId::Ptl(mm)).await;
            if self.layout().pte_none(self.read_pte(cpu, mm, va).await) {
                {
                    let mut s = self.state();
                    let d = &mut s.pages[page.index()];
                    d.refcount += 1;
                    d.mapcount += 1;
                }
                let pte = self.layout().mk_pte(page, user_flags(&vma, true, false));
                self.arch(cpu).set_pte_at(mm, va, pte).await;
            }
            self.unlock(cpu, LockId::Ptl(mm));
        }
        Ok(start)
    }

    /// The kernel posts `value` to word `word` of page `page` of `ring` (a completion:
    /// `io_fill_cqe_aux`, `io_commit_cqring`): one store through the kernel address, no flush.
    pub async fn io_fill_cqe(
        &self, cpu: CpuId, ring: RingId, page: u64, word: usize, value: u64,
    ) -> Result<(), Errno> {
        let pfn = self.ring_page(ring, page)?;
        let word = word % WORDS_PER_PAGE;
        self.note_ring_access(ring, pfn, word);
        self.kernel_store(cpu, pfn.word(word).kernel_va(), value).await;
        self.observe(Obs::RingWrite { cpu, ring, page, word, value });
        Ok(())
    }

    /// The kernel reads word `word` of page `page` of `ring` (a submission: `io_get_sqe`): one
    /// load through the kernel address, no flush.
    pub async fn io_get_sqe(&self, cpu: CpuId, ring: RingId, page: u64, word: usize) -> Result<u64, Errno> {
        let pfn = self.ring_page(ring, page)?;
        let word = word % WORDS_PER_PAGE;
        self.note_ring_access(ring, pfn, word);
        let value = self.kernel_load(cpu, pfn.word(word).kernel_va()).await;
        self.observe(Obs::RingRead { cpu, ring, page, word, value });
        Ok(value)
    }

    /// Before a kernel access to `word` of ring page `pfn`: does a cache hold a dirty line of
    /// that word at a user mapping's address that is not equivalent to the kernel address?
    fn note_ring_access(&self, ring: RingId, pfn: Pfn, word: usize) {
        let users: Vec<VirtAddr> = {
            let s = self.state();
            s.vmas
                .iter()
                .flatten()
                .filter(|v| v.ring == Some(ring))
                .map(|v| {
                    v.start.add_pages(
                        s.rings[ring.index()].pages.iter().position(|&p| p == pfn).unwrap_or(0) as u64
                    )
                })
                .collect()
        };
        let kva = pfn.kernel_va();
        let dirty = users.iter().any(|&u| {
            let m = self.machine();
            !m.equivalent(u, kva) && {
                let (pa, at) = (pfn.word(word), u.with_word(word));
                (0..m.ncpus())
                    .any(|c| m.cached_line(CpuId(c as u8), at, pa).is_some_and(|(meta, _)| meta.dirty))
            }
        });
        if dirty {
            self.met(Situation::RingKernelUserDirtyOtherColour);
        }
    }
}
