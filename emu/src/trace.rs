//! The machine's event log: what happened to which cache line, for violation reports and
//! timelines. Recording is off unless [`crate::machine::Machine::enable_trace`] was called.

use crate::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use crate::pte::Pte;

/// A cache-maintenance or coherence instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insn {
    /// Flush data cache (write back and invalidate).
    Fdc,
    /// Purge data cache (invalidate, discard).
    Pdc,
    /// Flush data cache entry (by index, local).
    Fdce,
    /// A snoop from another CPU's store.
    Snoop,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// A line was filled from memory.
    Fill {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
        /// By speculative move-in.
        speculative: bool,
    },
    /// A line was chosen as victim (written back first if dirty).
    Evict {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
    },
    /// A dirty line was written back to memory.
    WriteBack {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
    },
    /// A word store.
    Store {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
        /// Virtual address used.
        va: VirtAddr,
        /// Value stored.
        value: u64,
    },
    /// A whole-line store.
    StoreLine {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
        /// Virtual address used.
        va: VirtAddr,
    },
    /// A line was invalidated.
    Invalidate {
        /// Set.
        set: u32,
        /// Virtual way ([`crate::machine::LineId::alias`]).
        alias: u32,
        /// Physical line.
        tag: u64,
        /// By which instruction.
        by: Insn,
    },
    /// A flush instruction completed with a translation.
    Flush {
        /// Instruction.
        insn: Insn,
        /// Space.
        space: SpaceId,
        /// Virtual address.
        va: VirtAddr,
        /// Physical line it acted on.
        tag: u64,
    },
    /// A flush instruction was nullified for want of a translation.
    Nullified {
        /// Instruction.
        insn: Insn,
        /// Space.
        space: SpaceId,
        /// Virtual address.
        va: VirtAddr,
    },
    /// A TLB entry was purged.
    Purge {
        /// Space.
        space: SpaceId,
        /// Address.
        va: VirtAddr,
        /// On every CPU.
        broadcast: bool,
    },
    /// Every entry of a space was purged on every CPU.
    PurgeSpace {
        /// Space.
        space: SpaceId,
    },
    /// A CPU's whole TLB was flushed.
    PurgeAll {
        /// CPU.
        target: CpuId,
    },
    /// A page moved by DMA.
    Dma {
        /// Frame.
        pfn: Pfn,
        /// Into memory (else out of it).
        to_memory: bool,
    },
    /// A kernel-level note.
    Note(&'static str),
    /// An arch routine (an [`crate::arch::ArchHooks`] method, called through
    /// [`crate::arch::Arch`]) began or ended on the CPU. Routines nest: a routine that calls a
    /// sibling shows the sibling's begin and end inside its own.
    Routine {
        /// The routine's kernel name (`flush_dcache_page`, `ptep_set_wrprotect`, …).
        name: &'static str,
        /// Its beginning (else its end).
        begin: bool,
    },
    /// A translation was inserted into the CPU's TLB (by a miss handler or `hash_page`).
    TlbInsert {
        /// Space.
        space: SpaceId,
        /// The page's virtual address.
        va: VirtAddr,
        /// The frame it translates to.
        pfn: Pfn,
        /// Flush-only (usable by `fdc`/`pdc` alone).
        flush_only: bool,
        /// Stores allowed without a dirty-bit trap.
        dirty: bool,
    },
    /// A PTE changed.
    PteSet {
        /// The mm's space.
        space: SpaceId,
        /// The virtual address it maps.
        va: VirtAddr,
        /// The value before.
        old: Pte,
        /// The value after.
        new: Pte,
    },
}

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Micro-step during which it happened.
    pub step: u64,
    /// CPU whose cache or action it is.
    pub cpu: CpuId,
    /// What.
    pub what: What,
}

/// The log.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Events in order.
    pub events: Vec<TraceEvent>,
}

impl Trace {
    /// The events that touched physical line `tag`.
    pub fn line_history(&self, tag: u64) -> impl Iterator<Item = &TraceEvent> {
        self.events.iter().filter(move |e| match e.what {
            What::Fill { tag: t, .. }
            | What::Evict { tag: t, .. }
            | What::WriteBack { tag: t, .. }
            | What::Store { tag: t, .. }
            | What::StoreLine { tag: t, .. }
            | What::Invalidate { tag: t, .. }
            | What::Flush { tag: t, .. } => t == tag,
            _ => false,
        })
    }
}
