//! Program-level observations: what programs read and write, and when, for the oracle.
//!
//! The core emits one [`Obs`] at the micro-step where a program-visible access happens. The
//! oracle judges these, never the caches or page tables, so it cannot be fooled by how a
//! lineage implements its flushes.

use crate::addr::{CpuId, Pfn, VirtAddr};
use crate::mm::{FileId, MmId};

/// One observation. `step` is the executor's micro-step counter when it happened.
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
        /// When.
        step: u64,
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
        /// When.
        step: u64,
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
        /// When.
        step: u64,
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
        /// When.
        step: u64,
    },
    /// A COW copy into `new` for `va` of `mm` finished (its contents are what the copy
    /// produced, as the user alias sees them now). It counts only once installed.
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
        /// When it finished.
        step: u64,
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
        /// When.
        step: u64,
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
        /// When.
        step: u64,
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
        /// When.
        step: u64,
    },
}
