//! Event counters and their conversion to emulated cycles.

use crate::config::CostTable;

/// Counts of every costed event of a run (summed over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Loads executed (user and kernel), including line loads.
    pub loads: u64,
    /// Stores executed, including line stores.
    pub stores: u64,
    /// Loads and stores that hit in the local cache.
    pub hits: u64,
    /// Lines filled from memory on a miss.
    pub fills: u64,
    /// Lines filled speculatively.
    pub speculative_fills: u64,
    /// Dirty lines written back (eviction, snoop, flush).
    pub write_backs: u64,
    /// `fdc` instructions executed (nullified ones included).
    pub fdc: u64,
    /// `pdc` instructions executed (nullified ones included).
    pub pdc: u64,
    /// `fdce` steps executed (one set each).
    pub fdce: u64,
    /// Data TLB misses of loads and stores.
    pub tlb_misses: u64,
    /// Non-access TLB misses (flush and purge instructions).
    pub nadtlb_misses: u64,
    /// Non-access instructions nullified for want of a translation.
    pub nullified: u64,
    /// Dirty-bit traps.
    pub dbit_traps: u64,
    /// Page faults taken.
    pub page_faults: u64,
    /// Local TLB purges (one entry).
    pub purges_local: u64,
    /// Broadcast TLB purges (one entry on every CPU).
    pub purges_broadcast: u64,
    /// Whole-TLB flushes of one CPU.
    pub tlb_flush_all: u64,
    /// Inter-processor interrupts sent.
    pub ipis: u64,
    /// Words moved by DMA.
    pub dma_words: u64,
    /// `mmu_gather` flushes that flushed the whole mm (not costed: their purges are).
    pub gather_mm_flushes: u64,
    /// `mmu_gather` flushes that purged a range (not costed: their purges are).
    pub gather_range_flushes: u64,
}

impl Counters {
    /// Emulated cycles under `t`.
    pub fn cycles(&self, t: &CostTable) -> u64 {
        let misses = self.loads + self.stores - self.hits;
        self.hits * t.access_hit
            + (self.fills + self.speculative_fills) * t.line_fill
            + misses.saturating_sub(self.fills) * t.access_hit
            + self.write_backs * t.write_back
            + (self.fdc + self.pdc) * t.flush_line
            + self.fdce * t.flush_entry
            + (self.tlb_misses + self.nadtlb_misses) * t.tlb_miss
            + self.nullified * t.nullified
            + (self.dbit_traps + self.page_faults) * t.trap
            + self.purges_local * t.purge_local
            + self.purges_broadcast * t.purge_broadcast
            + self.tlb_flush_all * t.purge_local
            + self.ipis * t.ipi
    }

    /// Field-wise difference `self - earlier` (for measuring one routine).
    pub fn since(&self, earlier: &Counters) -> Counters {
        macro_rules! d {
            ($($f:ident),*) => { Counters { $($f: self.$f - earlier.$f),* } };
        }
        d!(
            loads,
            stores,
            hits,
            fills,
            speculative_fills,
            write_backs,
            fdc,
            pdc,
            fdce,
            tlb_misses,
            nadtlb_misses,
            nullified,
            dbit_traps,
            page_faults,
            purges_local,
            purges_broadcast,
            tlb_flush_all,
            ipis,
            dma_words,
            gather_mm_flushes,
            gather_range_flushes
        )
    }
}
