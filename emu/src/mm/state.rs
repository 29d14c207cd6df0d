//! The memory manager's state and objects: the arenas of [`MmState`], frame allocation and
//! reference counting, the object queries routines make between steps, and the set-up of
//! files and address spaces.
//!
//! Nothing here is a micro-step: kernel data structures change atomically between two steps.
//! Freeing a frame reports to the monitor ([`crate::mm::monitor`]), which checks that nothing
//! can still reach it.

use crate::addr::{PAGE_SIZE, Pfn, SHM_COLOUR, SpaceId, VirtAddr};
use crate::config::MachineConfig;
use crate::mm::lock::LockTable;
use crate::mm::types::{AnonVma, FileObj, MmStruct, RingObj, SwapSlot};
use crate::mm::{FileId, Kernel, Mapping, MmId, PageDesc, PageFlags, Vma, VmaId};

/// The kernel's objects (everything but the machine).
#[derive(Debug, Default)]
pub struct MmState {
    /// Page descriptors, by pfn.
    pub pages: Vec<PageDesc>,
    /// Free frames; the last is allocated next (recently freed frames are reused first).
    /// Invariant: a frame is here exactly when its descriptor's `refcount` is 0.
    pub free: Vec<Pfn>,
    /// Mms, by id.
    pub mms: Vec<MmStruct>,
    /// VMAs, by id (`None` once freed; ids are not reused).
    pub vmas: Vec<Option<Vma>>,
    /// Files, by id.
    pub files: Vec<FileObj>,
    /// Anon objects, by id.
    pub anons: Vec<AnonVma>,
    /// Swap slots (slot 0 is the header and never used).
    pub swap: Vec<SwapSlot>,
    /// Kernel buffers mapped into user space, by id.
    pub rings: Vec<RingObj>,
    /// Held locks.
    pub locks: LockTable,
    /// Shmem pages swap-in took from the swap cache and that are not mapped again yet: the
    /// file page each is, and a user address it was mapped at before it was written out
    /// (situation counting only).
    pub swapin_was_at: Vec<(Pfn, (FileId, u64), VirtAddr)>,
}

impl MmState {
    /// The objects of a freshly booted kernel on a machine of `cfg`: every frame free (the
    /// lowest allocated first), every swap slot free.
    pub fn new(cfg: &MachineConfig) -> Self {
        MmState {
            pages: vec![PageDesc::default(); cfg.frames],
            free: (0..cfg.frames as u32).rev().map(Pfn::new).collect(),
            swap: vec![SwapSlot::default(); cfg.swap_slots],
            ..MmState::default()
        }
    }

    /// A VMA that must exist.
    pub fn vma(&self, id: VmaId) -> Vma {
        self.vmas[id.index()].expect("live vma")
    }

    /// The VMA of `mm` containing `va`.
    pub fn find_vma(&self, mm: MmId, va: VirtAddr) -> Option<Vma> {
        self.mms[mm.index()].vmas.iter().map(|&v| self.vma(v)).find(|v| v.contains(va))
    }

    /// Snapshots of the VMAs of `mm`, in address order.
    pub fn mm_vmas(&self, mm: MmId) -> Vec<Vma> {
        self.mms[mm.index()].vmas.iter().map(|&v| self.vma(v)).collect()
    }

    /// Snapshots of the VMAs of `mm` that overlap `[start, end)`, in address order.
    pub fn vmas_overlapping(&self, mm: MmId, start: VirtAddr, end: VirtAddr) -> Vec<Vma> {
        self.mms[mm.index()]
            .vmas
            .iter()
            .map(|&v| self.vma(v))
            .filter(|v| v.start < end && start < v.end)
            .collect()
    }
}

impl Kernel {
    // ----- objects ----------------------------------------------------------------------

    /// Space of `mm`.
    pub fn mm_space(&self, mm: MmId) -> SpaceId {
        self.s.borrow().mms[mm.index()].space
    }

    /// Snapshot of a VMA.
    pub fn vma(&self, id: VmaId) -> Vma {
        self.s.borrow().vma(id)
    }

    /// Snapshots of the VMAs of `mm`, in address order.
    pub fn mm_vmas(&self, mm: MmId) -> Vec<Vma> {
        self.s.borrow().mm_vmas(mm)
    }

    /// Snapshot of a page descriptor.
    pub fn page(&self, pfn: Pfn) -> PageDesc {
        self.s.borrow().pages[pfn.index()]
    }

    /// Sets page flags.
    pub fn set_page_flags(&self, pfn: Pfn, f: PageFlags) {
        self.s.borrow_mut().pages[pfn.index()].flags.insert(f);
    }

    /// Clears page flags; returns whether any was set.
    pub fn clear_page_flags(&self, pfn: Pfn, f: PageFlags) -> bool {
        let mut s = self.s.borrow_mut();
        let had = s.pages[pfn.index()].flags.intersects(f);
        s.pages[pfn.index()].flags.remove(f);
        had
    }

    /// The VMAs of `page`'s file that cover it, with the user address there, in `i_mmap`
    /// order (the caller holds the file's `i_mmap` or `flush_dcache_mmap` lock). Empty for
    /// non-file pages.
    pub fn file_mappings(&self, page: Pfn) -> Vec<(Vma, VirtAddr)> {
        let s = self.s.borrow();
        let d = s.pages[page.index()];
        let Mapping::File(f) = d.mapping else {
            return Vec::new();
        };
        s.files[f.index()]
            .i_mmap
            .iter()
            .filter_map(|&v| {
                let vma = s.vma(v);
                vma.addr_of(d.index).map(|a| (vma, a))
            })
            .collect()
    }

    /// The VMAs that may map anonymous `page`, with its address there (the caller holds the
    /// anon lock).
    pub fn anon_mappings(&self, page: Pfn) -> Vec<(Vma, VirtAddr)> {
        let s = self.s.borrow();
        let d = s.pages[page.index()];
        let Mapping::Anon(a) = d.mapping else {
            return Vec::new();
        };
        // `vma_address`: the page's index against each VMA's `vm_pgoff`, so a VMA `mremap`
        // moved finds the page at its new address.
        s.anons[a.index()]
            .vmas
            .iter()
            .map(|&v| s.vma(v))
            .filter_map(|v| v.addr_of(d.index).map(|a| (v, a)))
            .collect()
    }

    /// Is the file `f` mapped by any VMA (`mapping_mapped`)?
    pub fn file_mapped(&self, f: FileId) -> bool {
        self.s.borrow().files[f.index()].mapped()
    }

    /// Is the file mapped by a shared writable VMA (`mapping_writably_mapped`)?
    pub fn file_writably_mapped(&self, f: FileId) -> bool {
        let s = self.s.borrow();
        s.files[f.index()].i_mmap.iter().any(|&v| {
            let v = s.vma(v);
            v.shared && v.writable
        })
    }

    // ----- frames -----------------------------------------------------------------------

    /// Allocates a frame with refcount 1 (`alloc_page`); `None` when memory is exhausted.
    pub fn alloc_page(&self) -> Option<Pfn> {
        let mut s = self.s.borrow_mut();
        let pfn = s.free.pop()?;
        s.pages[pfn.index()] = PageDesc { refcount: 1, ..PageDesc::default() };
        Some(pfn)
    }

    /// Takes a reference (`get_page`).
    pub fn get_page(&self, pfn: Pfn) {
        self.s.borrow_mut().pages[pfn.index()].refcount += 1;
    }

    /// Drops a reference; frees the frame when it was the last (`put_page`). Freeing touches
    /// no cache: whatever lines of the frame are still cached stay there. The monitor checks
    /// that nothing can reach the freed frame (rule 2 of [`crate::arch::ArchHooks`]).
    pub fn put_page(&self, pfn: Pfn) {
        let mut s = self.s.borrow_mut();
        let d = &mut s.pages[pfn.index()];
        assert!(d.refcount > 0, "put_page on free {pfn:?}");
        d.refcount -= 1;
        if d.refcount == 0 {
            assert_eq!(d.mapcount, 0, "freeing mapped {pfn:?}");
            let table = d.flags.contains(PageFlags::PAGETABLE);
            *d = PageDesc::default();
            s.free.push(pfn);
            drop(s);
            self.check_unreachable(pfn, table);
        }
    }

    /// Allocates a zeroed page-table page.
    pub fn alloc_table_page(&self) -> Option<Pfn> {
        let pfn = self.alloc_page()?;
        self.set_page_flags(pfn, PageFlags::PAGETABLE);
        self.m.borrow_mut().pt.install(pfn);
        Some(pfn)
    }

    /// Frees a page-table page.
    pub fn free_table_page(&self, pfn: Pfn) {
        self.m.borrow_mut().pt.remove(pfn);
        // `put_page` still sees `PAGETABLE` and reports the frame as a table if reachable.
        self.put_page(pfn);
        self.clear_page_flags(pfn, PageFlags::PAGETABLE);
    }

    /// `page_remove_rmap`: one fewer PTE maps `page`.
    pub fn page_remove_rmap(&self, page: Pfn) {
        let mut s = self.s.borrow_mut();
        let d = &mut s.pages[page.index()];
        assert!(d.mapcount > 0, "mapcount underflow on {page:?}");
        d.mapcount -= 1;
    }

    // ----- set-up -----------------------------------------------------------------------

    /// Creates a shmem (tmpfs) file of `pages` pages, all holes, whose colour offset is
    /// `colour` pages (`shmem_file_setup`).
    pub fn create_shmem_file(&self, pages: u64, colour: u64) -> FileId {
        let mut s = self.s.borrow_mut();
        s.files.push(FileObj::new_shmem(pages, colour % (SHM_COLOUR / PAGE_SIZE)));
        FileId(s.files.len() as u32 - 1)
    }

    /// Creates a file of `pages` zero pages whose colour offset is `colour` pages.
    pub fn create_file(&self, pages: u64, colour: u64) -> FileId {
        let mut s = self.s.borrow_mut();
        s.files.push(FileObj::new(pages, colour % (SHM_COLOUR / PAGE_SIZE)));
        FileId(s.files.len() as u32 - 1)
    }

    /// Creates an empty address space; `None` when no frame is left for its pgd.
    pub fn create_mm(&self) -> Option<MmId> {
        let pgd = self.alloc_table_page()?;
        let mut s = self.s.borrow_mut();
        let id = MmId(s.mms.len() as u32);
        let space = SpaceId(id.0 + 1);
        s.mms.push(MmStruct { space, pgd, vmas: Vec::new(), dead: false });
        drop(s);
        self.m.borrow_mut().attach_space(space, pgd);
        Some(id)
    }

    /// The word the backing store of file `f` holds at `(pgoff, word)`, if within the file.
    pub fn disk_word(&self, f: FileId, pgoff: u64, word: usize) -> Option<u64> {
        self.s.borrow().files[f.index()].disk.get(pgoff as usize).map(|p| p[word])
    }
}
