//! An owed TLB flush as a value: a routine that changed PTEs without flushing their TLB
//! entries holds a [`TlbFlushOwed`] until it flushes, so rule 1 of
//! [`crate::arch::ArchHooks`] (flush cache, change PTE, flush TLB) cannot be left half done
//! unnoticed. Zaps use the [`crate::mm::MmuGather`], which owes the same and more.

use crate::addr::{CpuId, VirtAddr};
use crate::mm::{Kernel, MmId, Vma};

/// Which TLB entries are owed a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owed {
    /// One page of a VMA (`flush_tlb_page`).
    Page(Vma, VirtAddr),
    /// A range of an mm (`flush_tlb_range`).
    Range(MmId, VirtAddr, VirtAddr),
    /// A whole mm (`flush_tlb_mm`).
    Mm(MmId),
}

/// TLB entries that may still translate PTEs the holder changed: [`TlbFlushOwed::flush`]
/// performs the flush through the architecture. Dropping one unflushed is a bug of the core
/// (caught in debug builds).
#[must_use = "PTEs were changed: their TLB flush is owed"]
#[derive(Debug)]
pub struct TlbFlushOwed {
    owed: Owed,
    flushed: bool,
}

impl TlbFlushOwed {
    /// The page `va` of `vma` is owed `flush_tlb_page`.
    pub fn page(vma: Vma, va: VirtAddr) -> Self {
        TlbFlushOwed { owed: Owed::Page(vma, va), flushed: false }
    }

    /// `[start, end)` of `mm` is owed `flush_tlb_range`.
    pub fn range(mm: MmId, start: VirtAddr, end: VirtAddr) -> Self {
        TlbFlushOwed { owed: Owed::Range(mm, start, end), flushed: false }
    }

    /// All of `mm` is owed `flush_tlb_mm`.
    pub fn mm(mm: MmId) -> Self {
        TlbFlushOwed { owed: Owed::Mm(mm), flushed: false }
    }

    /// Performs the owed flush on `cpu`.
    pub async fn flush(mut self, k: &Kernel, cpu: CpuId) {
        self.flushed = true;
        match self.owed {
            Owed::Page(vma, va) => k.arch(cpu).flush_tlb_page(vma, va).await,
            Owed::Range(mm, start, end) => k.arch(cpu).flush_tlb_range(mm, start, end).await,
            Owed::Mm(mm) => k.arch(cpu).flush_tlb_mm(mm).await,
        }
    }
}

impl Drop for TlbFlushOwed {
    fn drop(&mut self) {
        if !std::thread::panicking() && !crate::mm::exec::abandoning() {
            debug_assert!(self.flushed, "a TLB flush owed for {:?} was dropped", self.owed);
        }
    }
}
