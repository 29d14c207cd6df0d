//! `gather-*`: `mmu_gather` range tracking and deferred freeing, with a lockless walker.
//!
//! Not a parisc lineage: the generic routines on the `pipt` machine, whose TLB purges are
//! broadcast without interrupting other CPUs (as on ARM64 or PowerPC). Only `tlb_flush` and
//! the page-table freeing rule (the knob [`ArchConfig::tlb_table_sync`]) change. The workloads unmap and remap mappings (each file
//! mapping owns its page-table page, so unmapping it frees the table) while other threads of
//! the process run `gup_fast`.

use vipt_emu::addr::PAGE_SIZE;
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, HookFuture};
use vipt_emu::mm::MmuGather;

/// Above this many pages a range flush purges the whole mm instead (x86's
/// `tlb_single_page_flush_ceiling`). Freeing a page table widens the range to the 2 MiB it
/// mapped, so those gathers flush the whole mm.
pub const FLUSH_CEILING: u64 = 33;

/// What `tlb_flush` purges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherFlush {
    /// The gathered range, or the whole mm on exit or above [`FLUSH_CEILING`] pages.
    Range,
    /// The whole mm, always (architectures without ranged invalidation; correct and dearer).
    FullMm,
    /// Only the first page of the range: range tracking that never extends the end (a
    /// plausible conversion bug; the check "the flushed range covers every cleared PTE").
    FirstPage,
}

/// An `mmu_gather` whose `tlb_flush` purges as `self.0` says; every other routine generic.
#[derive(Clone, Copy, Debug)]
pub struct Gather(pub GatherFlush);

impl Gather {
    /// The generic gather: range flush. Correct.
    pub const RANGE: Gather = Gather(GatherFlush::Range);
    /// Whole-mm flushes. Correct; the cost comparison.
    pub const FULLMM: Gather = Gather(GatherFlush::FullMm);
    /// A range that stops at the first cleared PTE. Broken.
    pub const FIRST_PAGE: Gather = Gather(GatherFlush::FirstPage);

    /// The knobs of the variants that wait for lockless walkers before freeing page tables
    /// (`tlb_remove_table_sync_one`, `MMU_GATHER_RCU_TABLE_FREE`).
    pub const CONFIG: ArchConfig = ArchConfig::GENERIC;
    /// Broadcast invalidation without waiting for walkers before freeing tables: a table can
    /// be freed under `gup_fast`. Broken (with [`Gather::RANGE`]).
    pub const NO_SYNC: ArchConfig = ArchConfig { tlb_table_sync: false, ..ArchConfig::GENERIC };
}

impl ArchHooks for Gather {
    fn tlb_flush<'a>(&'a self, cx: ArchCtx<'a>, tlb: &'a MmuGather) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let Some((start, end)) = tlb.range() else { return };
            match self.0 {
                GatherFlush::Range if !tlb.fullmm && start.pages_to(end) <= FLUSH_CEILING => {
                    cx.arch().flush_tlb_range(tlb.mm, start, end).await
                }
                GatherFlush::Range | GatherFlush::FullMm => cx.arch().flush_tlb_mm(tlb.mm).await,
                GatherFlush::FirstPage => {
                    cx.arch().flush_tlb_range(tlb.mm, start, start.add_bytes(PAGE_SIZE)).await
                }
            }
        })
    }
}
