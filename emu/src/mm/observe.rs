//! Program-level observations: what programs read and write, and when, for the oracle.
//!
//! The core emits one [`Obs`] at the micro-step where a program-visible access happens, and the
//! monitor ([`crate::mm::monitor`]) stamps it with that step, in one place, as an
//! [`Observation`]. The oracle judges these, never the caches or page tables, so it cannot be
//! fooled by how a lineage implements its flushes.

use crate::addr::{CpuId, Pfn, VirtAddr};
use crate::mm::{FileId, MmId, RingId};

/// An observation and the micro-step (the executor's counter) at which it happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// When.
    pub step: u64,
    /// What.
    pub obs: Obs,
}

/// What was observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obs {
    /// A user load (`store == None`) or store completed at `va` of `mm`.
    User {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
        /// The value stored, if a store.
        store: Option<u64>,
        /// The value loaded (or stored).
        value: u64,
    },
    /// `write(2)`'s kernel store of `value` to `(file, pgoff, word)`.
    FileWrite {
        /// CPU.
        cpu: CpuId,
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
        /// Word.
        word: usize,
        /// Value.
        value: u64,
    },
    /// `read(2)`'s kernel load of `(file, pgoff, word)`.
    FileRead {
        /// CPU.
        cpu: CpuId,
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
        /// Word.
        word: usize,
        /// Value read.
        value: u64,
    },
    /// The kernel's store of `value` to word `word` of page `page` of kernel buffer `ring`
    /// through its kernel address (`io_fill_cqe_aux`).
    RingWrite {
        /// CPU.
        cpu: CpuId,
        /// Buffer.
        ring: RingId,
        /// Page of the buffer.
        page: u64,
        /// Word.
        word: usize,
        /// Value.
        value: u64,
    },
    /// The kernel's load of word `word` of page `page` of kernel buffer `ring` through its
    /// kernel address (`io_get_sqe`).
    RingRead {
        /// CPU.
        cpu: CpuId,
        /// Buffer.
        ring: RingId,
        /// Page of the buffer.
        page: u64,
        /// Word.
        word: usize,
        /// Value read.
        value: u64,
    },
    /// `access_process_vm` read (`store == None`) the word at `va` of `mm`, or is about to
    /// write it (emitted before the store, so the write interval covers it).
    Remote {
        /// CPU.
        cpu: CpuId,
        /// Target process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
        /// The value written, if a write.
        store: Option<u64>,
        /// The value read (or written).
        value: u64,
    },
    /// A COW copy into `new` for `va` of `mm` finished at the observation's step (its contents
    /// are what the copy produced, as the user alias sees them now). It counts only once
    /// installed.
    CowCopied {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// User address of the page.
        va: VirtAddr,
        /// The new page.
        new: Pfn,
        /// Step at which the copy began.
        copy_start: u64,
    },
    /// A new private page was mapped at `va` of `mm`: a COW copy (announced by `CowCopied`)
    /// or a zero-filled anonymous page. From now on the process sees it; emitted at the very
    /// PTE write that maps it.
    Installed {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// User address.
        va: VirtAddr,
        /// The page.
        new: Pfn,
    },
    /// `get_user_pages` took its reference on the page mapped at `va` of `mm`: what the
    /// kernel then reads or writes is that page, whatever the process maps later.
    Pinned {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// A PTE write set `_PAGE_DIRTY` on a PTE without `_PAGE_WRITE`: dirty recorded for an
    /// access the PTE does not permit (an invariant every lineage must keep).
    DirtyWithoutWrite {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// A clean harvested the file's dirty log: the driver copies these pages (bit `pgoff`
    /// of `pages`) to its device now, so every store to them that completed before the step
    /// has reached the device.
    DirtySynced {
        /// CPU.
        cpu: CpuId,
        /// File.
        file: FileId,
        /// Bitmask of the page offsets harvested.
        pages: u64,
    },
    /// A frame was freed (a page, or a page-table page when `table`) while `holder` could
    /// still reach it: through a TLB entry, or (`walker`) from inside a lockless page-table
    /// walk. The frame may be reused at once, so the holder would read or write someone
    /// else's memory.
    FreedReachable {
        /// The freeing CPU.
        cpu: CpuId,
        /// The frame.
        pfn: Pfn,
        /// A page-table page.
        table: bool,
        /// The CPU that can still reach it.
        holder: CpuId,
        /// Reached by a lockless walker (else by a TLB entry).
        walker: bool,
    },
    /// An `mmu_gather`'s TLB flush finished and `holder` still translates `va` of `mm` to
    /// the page whose PTE the gather cleared: the flushed range missed a cleared PTE.
    StaleTlb {
        /// The CPU that finished the gather.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address of the cleared PTE.
        va: VirtAddr,
        /// The page it mapped.
        pfn: Pfn,
        /// The CPU whose TLB still holds the translation.
        holder: CpuId,
    },
    /// A lockless PTE update stored a present PTE over one that is not present now: a PTE
    /// cleared meanwhile (unmap, reclaim) brought back to life from a stale read.
    PteResurrected {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// `hash_page` inserted a translation of `va` of `mm` while its PTE is not present (or
    /// maps another page): a translation for a PTE without `_PAGE_PRESENT`.
    InsertNonPresent {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// A lockless PTE update stored over a change another CPU made after the update read the
    /// PTE (a flag change, such as a write-protect or `mprotect`, undone).
    PteUpdateLost {
        /// CPU.
        cpu: CpuId,
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
}
