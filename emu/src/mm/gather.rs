//! `mmu_gather`: batches the pages and page tables a zap removes, so that they are freed only
//! after the TLB flush that makes them unreachable (ordering rule 2 of
//! [`crate::arch::ArchHooks`]).
//!
//! The generic `mmu_gather` of `include/asm-generic/tlb.h` and `mm/mmu_gather.c` (Linux 6.x,
//! the same since the range tracking of 4.x): each VMA a zap (or an `mprotect`) walks is
//! bracketed by [`MmuGather::start_vma`] (`tlb_start_vma`: `flush_cache_range` over the whole
//! VMA, unless the whole mm goes) and [`MmuGather::end_vma`] (`tlb_end_vma`: the TLB flush of
//! what the VMA's walk cleared, `tlb_flush_mmu_tlbonly`, unless the whole mm goes), so the
//! flush of one VMA's PTEs comes before its VMA is unlinked and before page tables are freed;
//! [`MmuGather::finish`] (`tlb_finish_mmu`) flushes what is left (freed page tables, or the
//! whole mm on exit) and only then frees.

use crate::addr::{CpuId, PAGE_SIZE, Pfn, VirtAddr};
use crate::mm::Kernel;
use crate::mm::types::{MmId, Vma};

/// A gather in progress. It owes a TLB flush: [`MmuGather::finish`] performs it and then frees
/// what was gathered. Dropping an unfinished, non-empty gather is a bug of the core (caught in
/// debug builds).
#[must_use = "an mmu_gather owes a TLB flush and frees: call finish()"]
#[derive(Debug)]
pub struct MmuGather {
    /// The mm whose PTEs are being cleared.
    pub mm: MmId,
    /// Tearing down the whole mm (exit): the flush covers the whole space.
    pub fullmm: bool,
    /// Lowest address whose TLB entry is owed a flush; `None` while nothing is owed (after a
    /// flush the range is reset, `__tlb_reset_range`). Invariant: every PTE cleared or changed
    /// since the last flush lies in `[start, end)`.
    start: Option<VirtAddr>,
    end: VirtAddr,
    /// Pages whose mapping reference is dropped after the flush.
    pages: Vec<Pfn>,
    /// Page-table pages freed after the flush.
    tables: Vec<Pfn>,
    /// Every present PTE cleared since the last flush: its address and the page it mapped.
    /// After the flush no CPU may still translate any of them (checked by
    /// [`MmuGather::flush_tlb_only`]).
    cleared: Vec<(VirtAddr, Pfn)>,
    finished: bool,
}

impl MmuGather {
    /// `tlb_gather_mmu`.
    pub fn new(mm: MmId, fullmm: bool) -> Self {
        MmuGather {
            mm,
            fullmm,
            start: None,
            end: VirtAddr::new(0),
            pages: Vec::new(),
            tables: Vec::new(),
            cleared: Vec::new(),
            finished: false,
        }
    }

    /// `tlb_remove_tlb_entry` (`tlb_flush_pte_range`): the PTE of `va` was cleared or changed
    /// and its TLB entry is owed a flush.
    pub fn remove_tlb_entry(&mut self, va: VirtAddr) {
        let va = va.page_base();
        self.start = Some(self.start.map_or(va, |s| s.min(va)));
        self.end = self.end.max(va.add_bytes(PAGE_SIZE));
    }

    /// The present PTE of `va`, which mapped `pfn`, was cleared: `tlb_remove_tlb_entry`,
    /// remembering the translation for the post-flush check.
    pub fn remove_pte(&mut self, va: VirtAddr, pfn: Pfn) {
        self.remove_tlb_entry(va);
        self.cleared.push((va.page_base(), pfn));
    }

    /// `tlb_remove_page`: drop a reference to `pfn` after the flush.
    pub fn remove_page(&mut self, pfn: Pfn) {
        self.pages.push(pfn);
    }

    /// `pte_free_tlb`: free page-table page `pfn`, which mapped `[start, end)`, after the flush.
    pub fn free_table(&mut self, pfn: Pfn, start: VirtAddr, end: VirtAddr) {
        self.tables.push(pfn);
        self.remove_tlb_entry(start);
        self.remove_tlb_entry(end.sub_bytes(PAGE_SIZE));
    }

    /// The range whose TLB entries must go, if any PTE was cleared.
    pub fn range(&self) -> Option<(VirtAddr, VirtAddr)> {
        self.start.map(|s| (s, self.end))
    }

    /// Pages gathered so far.
    pub fn pages(&self) -> &[Pfn] {
        &self.pages
    }

    /// `tlb_start_vma`: before the walk of `vma`, unless the whole mm goes (`exit_mmap` has
    /// called `flush_cache_mm` already), `flush_cache_range` over the whole VMA,
    /// `[vm_start, vm_end)`, whatever part of it the walk covers.
    pub async fn start_vma(&mut self, k: &Kernel, cpu: CpuId, vma: &Vma) {
        if self.fullmm {
            return;
        }
        k.arch(cpu).flush_cache_range(*vma, vma.start, vma.end).await;
    }

    /// `tlb_end_vma`: after the walk of `vma`, unless the whole mm goes, the TLB flush of what
    /// it cleared or changed (`tlb_flush_mmu_tlbonly`), before the VMA is unlinked and its page
    /// tables are freed.
    pub async fn end_vma(&mut self, k: &Kernel, cpu: CpuId, _vma: &Vma) {
        if self.fullmm {
            return;
        }
        self.flush_tlb_only(k, cpu).await;
    }

    /// `tlb_flush_mmu_tlbonly`: if any TLB entry is owed a flush, the arch's `tlb_flush`; then
    /// the check that no CPU still translates a PTE cleared since the last flush
    /// ([`crate::mm::Obs::StaleTlb`]); then the range is reset. Counts the flush as a whole-mm
    /// or a range flush by what it purged. Nothing is freed here.
    pub async fn flush_tlb_only(&mut self, k: &Kernel, cpu: CpuId) {
        if self.start.is_none() {
            return;
        }
        k.record_gather_flush(cpu, true);
        k.arch(cpu).tlb_flush(self).await;
        let (whole, range) = k.record_gather_flush(cpu, false);
        if whole {
            k.machine().counters.gather_mm_flushes += 1;
        } else if range {
            k.machine().counters.gather_range_flushes += 1;
        }
        k.check_gather_flushed(cpu, self.mm, &self.cleared);
        self.cleared.clear();
        self.start = None;
        self.end = VirtAddr::new(0);
    }

    /// `tlb_finish_mmu`: the flush of whatever is still owed ([`MmuGather::flush_tlb_only`]:
    /// freed page tables, or on exit the whole mm); then, if page tables are freed, the wait
    /// for lockless walkers ([`ArchConfig::tlb_table_sync`](crate::arch::ArchConfig::tlb_table_sync));
    /// then the frees.
    pub async fn finish(mut self, k: &Kernel, cpu: CpuId) {
        self.flush_tlb_only(k, cpu).await;
        if !self.tables.is_empty() && k.arch_config().tlb_table_sync {
            k.sync_lockless_walkers(cpu).await;
        }
        for &p in &self.pages {
            k.put_page(p);
        }
        for &t in &self.tables {
            k.free_table_page(t);
        }
        self.finished = true;
    }
}

impl Drop for MmuGather {
    fn drop(&mut self) {
        if !std::thread::panicking() && !crate::mm::exec::abandoning() {
            debug_assert!(
                self.finished || (self.pages.is_empty() && self.tables.is_empty() && self.start.is_none()),
                "mmu_gather dropped with a TLB flush owed"
            );
        }
    }
}
