//! `mmu_gather`: batches the pages and page tables a zap removes, so that they are freed only
//! after the TLB flush that makes them unreachable (ordering rule 2 of
//! [`crate::arch::ArchHooks`]).

use crate::addr::{CpuId, PAGE_SIZE, Pfn, VirtAddr};
use crate::mm::Kernel;
use crate::mm::types::MmId;

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
    /// Lowest address whose PTE was cleared; `None` while nothing was. Invariant: every
    /// cleared PTE lies in `[start, end)`.
    start: Option<VirtAddr>,
    end: VirtAddr,
    /// Pages whose mapping reference is dropped after the flush.
    pages: Vec<Pfn>,
    /// Page-table pages freed after the flush.
    tables: Vec<Pfn>,
    /// Every cleared present PTE: its address and the page it mapped. After the flush no
    /// CPU may still translate any of them (checked in [`MmuGather::finish`]).
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

    /// `tlb_remove_tlb_entry`: the PTE of `va` was cleared.
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

    /// `tlb_finish_mmu`: the arch's `tlb_flush`; then the check that no CPU still
    /// translates a cleared PTE ([`crate::mm::Obs::StaleTlb`]); then, if page tables are freed, the wait
    /// for lockless walkers ([`ArchConfig::tlb_table_sync`](crate::arch::ArchConfig::tlb_table_sync));
    /// then the frees. Counts the flush as a whole-mm or a range flush by what it purged.
    pub async fn finish(mut self, k: &Kernel, cpu: CpuId) {
        k.record_gather_flush(cpu, true);
        k.arch(cpu).tlb_flush(&self).await;
        let (whole, range) = k.record_gather_flush(cpu, false);
        if whole {
            k.machine().counters.gather_mm_flushes += 1;
        } else if range {
            k.machine().counters.gather_range_flushes += 1;
        }
        k.check_gather_flushed(cpu, self.mm, &self.cleared);
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
        if !std::thread::panicking() {
            debug_assert!(
                self.finished || (self.pages.is_empty() && self.tables.is_empty() && self.start.is_none()),
                "mmu_gather dropped with a TLB flush owed"
            );
        }
    }
}
