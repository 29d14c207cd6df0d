//! The knobs of an architecture: plain values a lineage supplies with its routines, for the
//! places where generic code asks the architecture *how* rather than calling it.
//!
//! They are data, not hooks, so a lineage that patches another inherits every knob it does
//! not change (see [`crate::arch::Patched`]), and a test can flip one without wrapping a
//! routine.

use crate::machine::MissPolicy;

/// How `try_to_unmap` orders the cache flush and the PTE clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapOrder {
    /// `flush_cache_page`, then `ptep_clear_flush` (Linux 2.6 and later): the cache is flushed
    /// while the translation exists (ordering rule 1 of [`crate::arch::ArchHooks`]).
    FlushThenClear,
    /// `ptep_clear_flush`, then `flush_cache_page` (2.4.0–2.4.9 and the 2.5 pte_chains rmap;
    /// the bug that `_PAGE_FLUSH` PTEs were invented to survive).
    ClearThenFlush,
}

/// How the core's `fixup_user_fault` makes a faulting atomic access (the futex path) succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixupMode {
    /// `handle_mm_fault` (since 2.6.38's `fixup_user_fault`): marks the PTE young and dirty.
    Fault,
    /// `get_user_pages(write)`, which only makes the page present and writable; with `marks`
    /// it also sets young and dirty in the PTE (the other fix). Without it, on a machine that
    /// tracks young/dirty in software, the atomic access keeps faulting: a livelock.
    Gup {
        /// gup marks the PTE young and dirty.
        marks: bool,
    },
}

/// How a dirty-log clean (`clean_record_shared_mapping_range`) orders its TLB flush against
/// the page-table lock and against other cleaners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanMode {
    /// The flush is batched per VMA after the page-table lock is dropped, and cleaners are
    /// not serialised: a concurrent clean may harvest a bit before its flush (lost dirtiness).
    Deferred,
    /// Each cleaned PTE's translation is purged before the page-table lock is dropped, and
    /// only then is its bit set: a harvested bit never has a stale dirty translation behind it.
    FlushUnderLock,
    /// The flush is batched as in `Deferred`, but the caller holds a lock of its own
    /// ([`crate::mm::LockId::DirtyLog`]) across the walk, the flush and the harvest.
    ExternalLock,
}

/// How `hash_page` updates the PTE, on a machine whose TLB misses trap to the kernel
/// ([`MissPolicy::hash_miss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashMode {
    /// Two plain updates from one lockless read; the access checked after the first.
    TwoUpdate,
    /// A compare-and-swap loop holding `_PAGE_BUSY` across the insert.
    CasLoop,
}

/// Everything about an architecture that is a choice rather than a routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchConfig {
    /// How the machine's software miss handlers behave under this kernel: PTE layout,
    /// `_PAGE_FLUSH` and tmpalias handling, software young/dirty, trapping misses.
    pub miss: MissPolicy,
    /// Does `mmap(MAP_FIXED)` of a shared file mapping reject a non-congruent address?
    /// Post-condition when true: every shared mapping of a file page has the file's colour.
    /// Current kernels check; 2.6.14 bypassed the check.
    pub map_fixed_checks_colour: bool,
    /// The order in which `try_to_unmap` flushes and clears a PTE.
    pub unmap_order: UnmapOrder,
    /// How `fixup_user_fault` works (the futex path).
    pub fixup: FixupMode,
    /// How a dirty-log clean orders its TLB flush.
    pub clean: CleanMode,
    /// How `hash_page` updates the PTE (machines with [`MissPolicy::hash_miss`] only).
    pub hash: HashMode,
    /// Does `tlb_finish_mmu` wait for lockless page-table walkers (`gup_fast`, which runs
    /// with interrupts off) before it frees page-table pages (`tlb_remove_table_sync_one`,
    /// or RCU table freeing)? Post-condition when true: no walker that could have read a
    /// freed table is still inside its walk. Needed wherever the TLB flush itself does not
    /// interrupt every CPU (broadcast invalidation).
    pub tlb_table_sync: bool,
    /// Does io_uring place a ring's user mapping congruent with the ring's kernel address?
    /// When true (since 6.4: d808459b2e31 "io_uring: Adjust mapping wrt architecture aliasing
    /// requirements" gave io_uring a `get_unmapped_area` aligned to the kernel address; since
    /// 6.5, 32832a407a71 and 56675f8b9f9b "io_uring/parisc: Adjust pgoff in io_uring mmap() for
    /// parisc", it asks the architecture's `get_unmapped_area` with no file, `MAP_SHARED` and
    /// `pgoff` = the kernel address's page number, which parisc colours by; in 6.1-stable from
    /// 6.1.51): post-condition, the user and kernel addresses of every ring page are
    /// equivalent. When false (before those commits) the mapping is placed
    /// by the colour of the file it is mapped through, whatever the kernel address, and the
    /// kernel, which flushes nothing around ring accesses, sees stale lines.
    pub io_uring_coloured: bool,
}

impl ArchConfig {
    /// The generic kernel of today on the current parisc miss handlers: the defaults every
    /// lineage starts from.
    pub const GENERIC: ArchConfig = ArchConfig {
        miss: MissPolicy::CURRENT,
        map_fixed_checks_colour: true,
        unmap_order: UnmapOrder::FlushThenClear,
        fixup: FixupMode::Fault,
        clean: CleanMode::ExternalLock,
        hash: HashMode::CasLoop,
        tlb_table_sync: true,
        io_uring_coloured: true,
    };
}

impl Default for ArchConfig {
    fn default() -> Self {
        ArchConfig::GENERIC
    }
}
