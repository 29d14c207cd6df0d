//! `gather-*`: `mmu_gather` range tracking and deferred freeing, with a lockless walker
//! (issue 7, family 3).
//!
//! Not a parisc lineage: the generic hooks on the `pipt` machine, whose TLB purges are
//! broadcast without interrupting other CPUs (as on ARM64 or PowerPC). Only `tlb_flush` and
//! the page-table freeing rule change. The workloads unmap and remap mappings (each file
//! mapping owns its page-table page, so unmapping it frees the table) while other threads of
//! the process run `gup_fast`.

use vipt_emu::addr::{CpuId, PAGE_SIZE};
use vipt_emu::mm::{ArchHooks, GenericHooks, HookFuture, Kernel, MmuGather};

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

/// An `mmu_gather` variant.
#[derive(Clone, Copy, Debug)]
pub struct Gather {
    /// Lineage name.
    pub name: &'static str,
    /// What `tlb_flush` purges.
    pub flush: GatherFlush,
    /// Wait for lockless walkers before freeing page tables (`tlb_remove_table_sync_one`,
    /// `MMU_GATHER_RCU_TABLE_FREE`). Without it, a table can be freed under `gup_fast`.
    pub table_sync: bool,
}

impl Gather {
    /// The generic gather: range flush, walkers waited for. Correct.
    pub const RANGE: Gather = Gather { name: "gather-range", flush: GatherFlush::Range, table_sync: true };
    /// Whole-mm flushes, walkers waited for. Correct; the cost comparison.
    pub const FULLMM: Gather = Gather { name: "gather-fullmm", flush: GatherFlush::FullMm, table_sync: true };
    /// A range that stops at the first cleared PTE. Broken.
    pub const FIRST_PAGE: Gather =
        Gather { name: "gather-first-page", flush: GatherFlush::FirstPage, table_sync: true };
    /// Broadcast invalidation without waiting for walkers before freeing tables. Broken.
    pub const NO_SYNC: Gather =
        Gather { name: "gather-no-sync", flush: GatherFlush::Range, table_sync: false };
}

impl ArchHooks for Gather {
    fn name(&self) -> &str {
        self.name
    }
    fn delegate(&self) -> Option<&dyn ArchHooks> {
        Some(&GenericHooks)
    }
    fn tlb_table_sync(&self) -> bool {
        self.table_sync
    }
    fn tlb_flush<'a>(&'a self, k: &'a Kernel, cpu: CpuId, tlb: &'a MmuGather) -> HookFuture<'a, ()> {
        Box::pin(async move {
            let Some((start, end)) = tlb.range() else { return };
            match self.flush {
                GatherFlush::Range if !tlb.fullmm && start.pages_to(end) <= FLUSH_CEILING => {
                    k.arch().flush_tlb_range(k, cpu, tlb.mm, start, end).await
                }
                GatherFlush::Range | GatherFlush::FullMm => k.arch().flush_tlb_mm(k, cpu, tlb.mm).await,
                GatherFlush::FirstPage => {
                    k.arch().flush_tlb_range(k, cpu, tlb.mm, start, start.add_bytes(PAGE_SIZE)).await
                }
            }
        })
    }
}
