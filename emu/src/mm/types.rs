//! The memory manager's objects: page descriptors, VMAs, files, anon objects, swap, mms.
//!
//! All of them live in arenas inside [`MmState`](crate::mm::MmState) and are named by small copyable ids, so a
//! kernel routine can hold a name across a preemption point without holding a borrow.

use std::fmt;

use crate::addr::{PAGE_SIZE, Pfn, SpaceId, VirtAddr, WORDS_PER_PAGE};

macro_rules! id {
    ($(#[$m:meta])* $name:ident, $p:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u32);
        impl $name {
            /// Index into the arena.
            pub fn index(self) -> usize { self.0 as usize }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { write!(f, concat!($p, "{}"), self.0) }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Debug::fmt(self, f) }
        }
    };
}
id!(
    /// An address space (a process's `mm_struct`).
    MmId, "mm"
);
id!(
    /// A VMA.
    VmaId, "vma"
);
id!(
    /// A file (its inode and `address_space`).
    FileId, "file"
);
id!(
    /// An `anon_vma`: the reverse-map root shared by a VMA and its fork descendants.
    AnonId, "anon"
);
id!(
    /// A kernel-allocated buffer that user space maps shared (an io_uring ring).
    RingId, "ring"
);

bitflags::bitflags! {
    /// Page-descriptor flags (the kernel's `PG_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct PageFlags: u16 {
        /// `PG_locked`: held by [`crate::mm::LockId::Page`] (mirrored here for inspection).
        const LOCKED = 1 << 0;
        /// `PG_dirty`: memory is newer than the backing store.
        const DIRTY = 1 << 1;
        /// `PG_uptodate`: contents are valid.
        const UPTODATE = 1 << 2;
        /// `PG_swapcache`: the page is in the swap cache (`private` is its slot).
        const SWAPCACHE = 1 << 3;
        /// `PG_dcache_dirty` (`PG_arch_1`): the kernel alias was written while the file had no
        /// user mapping; flush deferred to `update_mmu_cache`.
        const DCACHE_DIRTY = 1 << 4;
        /// The frame is a page-table page.
        const PAGETABLE = 1 << 5;
    }
}

/// What a page belongs to (`page->mapping`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Mapping {
    /// Free, a page table, or a page in flight.
    #[default]
    None,
    /// A page-cache page of a file; `index` is its page offset.
    File(FileId),
    /// An anonymous page; `index` is its linear page index in the VMA that first mapped it
    /// (`linear_page_index`: the virtual page number it was first mapped at, until `mremap`
    /// moves the VMA with its `vm_pgoff`).
    Anon(AnonId),
}

/// A page descriptor (`struct page`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageDesc {
    /// References (page cache, swap cache, each mapping PTE, temporary gets).
    /// Invariant: 0 exactly when the frame is on the free list.
    pub refcount: u32,
    /// PTEs that map the page. Invariant: `mapcount <= refcount`.
    pub mapcount: u32,
    /// Flags.
    pub flags: PageFlags,
    /// Owner.
    pub mapping: Mapping,
    /// File page offset or anon virtual page number.
    pub index: u64,
    /// Swap slot while in the swap cache.
    pub private: u32,
}

/// A virtual memory area. Copyable: routines take a snapshot under the lock that keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// Its id.
    pub id: VmaId,
    /// Owning mm.
    pub mm: MmId,
    /// Space of the owning mm.
    pub space: SpaceId,
    /// First byte (page aligned).
    pub start: VirtAddr,
    /// One past the last byte (page aligned).
    pub end: VirtAddr,
    /// File page offset of `start` (for anon VMAs: `start`'s virtual page number).
    pub pgoff: u64,
    /// Backing file, or anonymous.
    pub file: Option<FileId>,
    /// `VM_SHARED`.
    pub shared: bool,
    /// `VM_WRITE`.
    pub writable: bool,
    /// `VM_EXEC`.
    pub exec: bool,
    /// `PROT_NONE` (by `mprotect`): no access; its present PTEs lack `_PAGE_USER` and
    /// `_PAGE_WRITE` (PowerPC's `PAGE_NONE`).
    pub prot_none: bool,
    /// Reverse-map root for its anonymous pages (created on first need).
    pub anon: Option<AnonId>,
    /// The kernel buffer it maps (`vm_insert_pages` by a driver's `mmap`, as io_uring's), if
    /// any: every PTE is installed by that `mmap`; it has no file, no anon pages, no fault
    /// handler.
    pub ring: Option<RingId>,
}

impl Vma {
    /// Does the VMA contain `va`?
    pub fn contains(&self, va: VirtAddr) -> bool {
        self.start <= va && va < self.end
    }
    /// File page offset of `va` (`linear_page_index`: for anonymous memory the index its pages
    /// keep as `page->index`, which `mremap` carries along with `vm_pgoff`).
    pub fn pgoff_of(&self, va: VirtAddr) -> u64 {
        self.pgoff + self.start.pages_to(va.page_base())
    }
    /// User address of page offset `pgoff`, if inside the VMA.
    pub fn addr_of(&self, pgoff: u64) -> Option<VirtAddr> {
        let first = self.pgoff;
        let n = self.start.pages_to(self.end);
        (pgoff >= first && pgoff < first + n).then(|| self.start.add_pages(pgoff - first))
    }
    /// Number of pages.
    pub fn pages(&self) -> u64 {
        self.start.pages_to(self.end)
    }
    /// Private (copy-on-write) mapping?
    pub fn is_cow(&self) -> bool {
        !self.shared
    }
}

/// A file: page cache, backing store and the VMAs that map it.
#[derive(Clone, Debug, Default)]
pub struct FileObj {
    /// Size in pages (`i_size`).
    pub size: u64,
    /// Page cache: `pages[pgoff]`.
    pub pages: Vec<Option<Pfn>>,
    /// Backing store, one page of words per page offset below `size`.
    pub disk: Vec<Box<[u64]>>,
    /// `i_mmap`: VMAs mapping the file, in the (seeded) order rmap and `flush_dcache_page`
    /// walk them.
    pub i_mmap: Vec<VmaId>,
    /// Colour offset of the file in pages (`get_offset` of its `address_space` pointer).
    pub colour: u64,
    /// The dirty log a driver keeps for a device-like mapping of the file: bit `pgoff` is
    /// set when a clean found that page's PTE dirty (`clean_record_shared_mapping_range`), and
    /// the whole log is harvested (read and cleared) at the end of each clean.
    pub dirty_log: u64,
    /// A shmem (tmpfs) file: its pages have no backing store but swap. A page reclaim writes
    /// out leaves the page cache for the swap cache, and `swapped[pgoff]` holds its slot (the
    /// swap entry `shmem_writeout` stores in the mapping); `disk` is unused.
    pub shmem: bool,
    /// The object `shmem_zero_setup` made for a `MAP_SHARED | MAP_ANONYMOUS` mapping: no file
    /// descriptor names it, and it is truncated away when its last mapping goes.
    pub anon_shared: bool,
    /// Of a shmem file: per page offset, the swap slot of a page that is swapped out (0: none).
    pub swapped: Vec<u32>,
}

impl FileObj {
    /// A file of `pages` zero pages with colour offset `colour`.
    pub fn new(pages: u64, colour: u64) -> Self {
        FileObj {
            size: pages,
            pages: vec![None; pages as usize],
            disk: (0..pages).map(|_| vec![0u64; WORDS_PER_PAGE].into_boxed_slice()).collect(),
            i_mmap: Vec::new(),
            colour,
            dirty_log: 0,
            shmem: false,
            anon_shared: false,
            swapped: Vec::new(),
        }
    }

    /// A shmem file of `pages` zero pages (holes) with colour offset `colour`.
    pub fn new_shmem(pages: u64, colour: u64) -> Self {
        FileObj {
            shmem: true,
            disk: Vec::new(),
            swapped: vec![0; pages as usize],
            ..FileObj::new(pages, colour)
        }
    }

    /// Of a shmem file: the swap slot page `pgoff` is swapped out to, if it is.
    pub fn swap_slot(&self, pgoff: u64) -> Option<u32> {
        self.swapped.get(pgoff as usize).copied().filter(|&s| s != 0)
    }
    /// The page-cache page at `pgoff`.
    pub fn cached(&self, pgoff: u64) -> Option<Pfn> {
        self.pages.get(pgoff as usize).copied().flatten()
    }
    /// Is any VMA mapping the file (`mapping_mapped`)?
    pub fn mapped(&self) -> bool {
        !self.i_mmap.is_empty()
    }
}

/// An `anon_vma`: the VMAs whose anonymous pages it can find.
#[derive(Clone, Debug, Default)]
pub struct AnonVma {
    /// VMAs linked to it.
    pub vmas: Vec<VmaId>,
}

/// A kernel buffer mapped into user space (an io_uring ring): pages the kernel allocated and
/// reads and writes through their linear (kernel) address.
#[derive(Clone, Debug, Default)]
pub struct RingObj {
    /// Its pages; the buffer holds a reference to each for its life.
    pub pages: Vec<Pfn>,
    /// The colour offset in pages of the file user space maps it through (the io_uring anon
    /// inode's `f_mapping`), by which kernels before 6.4 placed the mapping.
    pub file_colour: u64,
}

/// One swap slot.
#[derive(Clone, Debug, Default)]
pub struct SwapSlot {
    /// Swap PTEs referring to it. The slot is free when this is 0 and `cache` is `None`.
    pub count: u32,
    /// Contents written by `pageout` (None until written).
    pub data: Option<Box<[u64]>>,
    /// The swap-cache page for it.
    pub cache: Option<Pfn>,
    /// For a shmem page written out to it: a user address the page was mapped at just before
    /// (for the situation of a page mapped next at another colour).
    pub was_at: Option<VirtAddr>,
}

impl SwapSlot {
    /// Is the slot free?
    pub fn is_free(&self) -> bool {
        self.count == 0 && self.cache.is_none()
    }
}

/// An address space.
#[derive(Clone, Debug)]
pub struct MmStruct {
    /// Its space id.
    pub space: SpaceId,
    /// Page-table root.
    pub pgd: Pfn,
    /// VMAs sorted by start address.
    pub vmas: Vec<VmaId>,
    /// Torn down by exit.
    pub dead: bool,
}

/// Page offset within 4 MiB colour space of a file page under the kernel's colouring.
pub fn file_colour(file_colour: u64, pgoff: u64) -> u64 {
    ((file_colour + pgoff) * PAGE_SIZE) % crate::addr::SHM_COLOUR
}
