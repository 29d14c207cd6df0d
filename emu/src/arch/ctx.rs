//! [`ArchCtx`]: what architecture code may do, on the CPU it runs on.

use std::future::Future;

use crate::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use crate::arch::{Arch, ArchHooks};
use crate::machine::{FlushOutcome, TmpaliasRegs};
use crate::mm::mmap::MmapArgs;
use crate::mm::types::{FileId, Mapping, MmId, PageFlags, Vma};
use crate::mm::{Errno, Kernel, LockId};
use crate::pte::{Pte, PteLayout};

/// The handle an arch routine runs with: one CPU of one kernel. It offers the machine's cache
/// and TLB instructions, the tmpalias registers, PTE reads and writes, the locks arch code
/// takes, page copies and clears through the kernel alias, the few facts about pages and
/// mappings arch code consults (`page_mapping`, `mapping_mapped`, the `i_mmap` walk,
/// `PG_dcache_dirty`), machine facts, and the kernel's routines ([`ArchCtx::arch`]).
///
/// Every `async` operation is one or more micro-steps (preemption points); the others are not
/// steps. Nothing else of the memory manager is reachable from here.
#[derive(Clone, Copy)]
pub struct ArchCtx<'a> {
    k: &'a Kernel,
    cpu: CpuId,
}

impl std::fmt::Debug for ArchCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchCtx({})", self.cpu)
    }
}

impl<'a> ArchCtx<'a> {
    pub(crate) fn new(k: &'a Kernel, cpu: CpuId) -> Self {
        ArchCtx { k, cpu }
    }

    /// Is the machine recording its trace (routine begin/end records are wanted)?
    pub(super) fn tracing(self) -> bool {
        self.k.tracing()
    }

    /// Records the begin or end of routine `name` in the machine trace.
    pub(super) fn routine(self, name: &'static str, begin: bool) {
        self.k.routine(self.cpu, name, begin)
    }

    /// The lineage's routines as stored in the kernel (the outermost one).
    pub(super) fn hooks(self) -> &'a dyn ArchHooks {
        self.k.hooks()
    }

    /// The CPU this code runs on (`smp_processor_id()`).
    pub fn cpu(self) -> CpuId {
        self.cpu
    }

    /// The kernel's routines on this CPU, for one routine to call another: the outermost
    /// lineage's, so a patch applies to sibling calls too.
    pub fn arch(self) -> Arch<'a> {
        Arch { cx: self }
    }

    // ----- machine facts ----------------------------------------------------------------

    /// D-cache line size in bytes (the stride of the `fdc,m` loops).
    pub fn line_bytes(self) -> u64 {
        self.k.machine().config().line_bytes
    }

    /// One CPU's D-cache size in bytes as the firmware reports it (`cache_info.dc_size`).
    pub fn dcache_bytes(self) -> u64 {
        self.k.machine().config().cache_bytes()
    }

    /// Number of CPUs (`num_online_cpus()`).
    pub fn ncpus(self) -> usize {
        self.k.machine().ncpus()
    }

    /// `parisc_requires_coherency()`: the machine is a PA8800/PA8900.
    pub fn requires_coherency(self) -> bool {
        self.k.machine().config().requires_coherency
    }

    /// `pfn_valid`.
    pub fn pfn_valid(self, pfn: Pfn) -> bool {
        self.k.machine().mem.pfn_valid(pfn)
    }

    /// The PTE layout the page tables use.
    pub fn layout(self) -> PteLayout {
        self.k.layout()
    }

    // ----- cache instructions -----------------------------------------------------------

    /// `fdc va` in `space` (one step). Silently nullified without a translation; the outcome
    /// says so for tests and reports, though real callers never learn it.
    pub fn fdc(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = FlushOutcome> + 'a {
        self.k.fdc(self.cpu, space, va)
    }

    /// `pdc va` in `space` (one step).
    pub fn pdc(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = FlushOutcome> + 'a {
        self.k.pdc(self.cpu, space, va)
    }

    /// `fdc,m` over every line of the page at `va` in `space`, one step per line
    /// (`flush_user_dcache_page`, `flush_kernel_dcache_page`). Returns how many were nullified.
    pub fn flush_page_lines(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = usize> + 'a {
        self.k.flush_page_lines(self.cpu, space, va)
    }

    /// `pdc,m` over every line of the page at `va` in `space` (`purge_kernel_dcache_page`).
    pub fn purge_page_lines(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = usize> + 'a {
        self.k.purge_page_lines(self.cpu, space, va)
    }

    /// `flush_cache_all` (`flush_data_cache` on each CPU): an IPI to every other CPU and `fdce`
    /// over every set of every cache, one step per occupied set (a step also covers the empty
    /// sets after its own; every set is counted).
    pub fn flush_cache_all(self) -> impl Future<Output = ()> + 'a {
        self.k.flush_cache_all(self.cpu)
    }

    // ----- TLB instructions -------------------------------------------------------------

    /// `pdtlb` (broadcast): purges `(space, va)` from every CPU's TLB (one step).
    pub fn purge_tlb(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = ()> + 'a {
        self.k.purge_tlb(self.cpu, space, va)
    }

    /// `pdtlb,l`: purges `(space, va)` from this CPU's TLB only (one step).
    pub fn purge_tlb_local(self, space: SpaceId, va: VirtAddr) -> impl Future<Output = ()> + 'a {
        self.k.purge_tlb_local(self.cpu, space, va)
    }

    /// Purges every translation of `space` on every CPU (one step).
    pub fn purge_tlb_space(self, space: SpaceId) -> impl Future<Output = ()> + 'a {
        self.k.purge_tlb_space(self.cpu, space)
    }

    /// `flush_tlb_all`: empties every CPU's TLB, an IPI to each other CPU (one step per CPU).
    pub fn flush_tlb_all(self) -> impl Future<Output = ()> + 'a {
        self.k.flush_tlb_all_cpus(self.cpu)
    }

    // ----- the tmpalias window ----------------------------------------------------------

    /// Loads this CPU's tmpalias registers (r26/r23; not a memory action, no step). The
    /// window addresses are in [`crate::machine::tmpalias`].
    pub fn set_tmpalias(self, regs: TmpaliasRegs) {
        self.k.set_tmpalias(self.cpu, regs)
    }

    // ----- PTEs -------------------------------------------------------------------------

    /// Reads the PTE of `va` in `mm` (one step; `Pte::NONE` without a PTE page).
    pub fn read_pte(self, mm: MmId, va: VirtAddr) -> impl Future<Output = Pte> + 'a {
        self.k.read_pte(self.cpu, mm, va)
    }

    /// The PTE of `va` in `mm`, without a preemption point: the value right after the step
    /// just performed.
    pub fn peek_pte(self, mm: MmId, va: VirtAddr) -> Pte {
        self.k.peek_pte(mm, va)
    }

    /// Writes the PTE (one step).
    pub fn write_pte(self, mm: MmId, va: VirtAddr, pte: Pte) -> impl Future<Output = ()> + 'a {
        self.k.write_pte(self.cpu, mm, va, pte)
    }

    /// Atomically exchanges the PTE, returning the old value (one step).
    pub fn xchg_pte(self, mm: MmId, va: VirtAddr, pte: Pte) -> impl Future<Output = Pte> + 'a {
        self.k.xchg_pte(self.cpu, mm, va, pte)
    }

    /// Atomically replaces the PTE by `f(old)`, returning the old value (one step).
    pub fn update_pte(
        self, mm: MmId, va: VirtAddr, f: impl FnOnce(Pte) -> Pte + 'a,
    ) -> impl Future<Output = Pte> + 'a {
        self.k.update_pte(self.cpu, mm, va, f)
    }

    // ----- locks ------------------------------------------------------------------------

    /// Takes `id` (`spin_lock`: a step, blocking while it is held). Arch code takes
    /// [`LockId::FlushDcacheMmap`] and [`LockId::PaDbit`].
    pub fn lock(self, id: LockId) -> impl Future<Output = ()> + 'a {
        self.k.lock(self.cpu, id)
    }

    /// Releases `id` (not a step).
    pub fn unlock(self, id: LockId) {
        self.k.unlock(self.cpu, id)
    }

    // ----- the kernel alias -------------------------------------------------------------

    /// A kernel load (linear map or tmpalias window; one step).
    pub fn kernel_load(self, va: VirtAddr) -> impl Future<Output = u64> + 'a {
        self.k.kernel_load(self.cpu, va)
    }

    /// A kernel store (one step).
    pub fn kernel_store(self, va: VirtAddr, value: u64) -> impl Future<Output = ()> + 'a {
        self.k.kernel_store(self.cpu, va, value)
    }

    /// `copy_page` through the kernel linear map, one step per line.
    pub fn copy_page_kernel(self, to: Pfn, from: Pfn) -> impl Future<Output = ()> + 'a {
        self.k.copy_page_via(self.cpu, to.kernel_va(), from.kernel_va())
    }

    /// `clear_page` through the kernel linear map, one step per line.
    pub fn clear_page_kernel(self, page: Pfn) -> impl Future<Output = ()> + 'a {
        self.k.clear_page_via(self.cpu, page.kernel_va())
    }

    /// Copies a page through kernel addresses `from_va` to `to_va` (the linear map or the
    /// tmpalias window), one step per line.
    pub fn copy_page_via(self, to_va: VirtAddr, from_va: VirtAddr) -> impl Future<Output = ()> + 'a {
        self.k.copy_page_via(self.cpu, to_va, from_va)
    }

    /// Zeroes the page at kernel address `va`, one step per line.
    pub fn clear_page_via(self, va: VirtAddr) -> impl Future<Output = ()> + 'a {
        self.k.clear_page_via(self.cpu, va)
    }

    // ----- address-space layout ---------------------------------------------------------

    /// `vm_unmapped_area` with the generic `MAP_FIXED` checks ([`Kernel::unmapped_area`]): a
    /// free range for `args` in `mm` whose start has colour `colour` (a byte offset below
    /// `SHM_COLOUR`), or any free range for `None`.
    pub fn unmapped_area(self, mm: MmId, args: &MmapArgs, colour: Option<u64>) -> Result<VirtAddr, Errno> {
        self.k.unmapped_area(mm, args, colour)
    }

    /// The current parisc placement ([`Kernel::get_unmapped_area_coloured`]).
    pub fn get_unmapped_area_coloured(self, mm: MmId, args: &MmapArgs) -> Result<VirtAddr, Errno> {
        self.k.get_unmapped_area_coloured(mm, args)
    }

    /// The colour offset, in pages, the kernel gives file `f` (`GET_FILP_PGOFF`, derived in
    /// the kernel from the address of `f->f_mapping`).
    pub fn file_colour_pages(self, f: FileId) -> u64 {
        self.k.state().files[f.index()].colour
    }

    // ----- what arch code knows of pages and mappings -----------------------------------

    /// `page->mapping`: the file of a page-cache page, the anon object of an anonymous page,
    /// and nothing for a shmem page in the swap cache. `shmem_writepage` (`shmem_writeout`
    /// since 6.15, `mm/shmem.c`) puts the page in the swap cache (`add_to_swap_cache`:
    /// `PG_swapcache`, the entry in `folio->swap`), then `shmem_delete_from_page_cache` puts
    /// the swap entry in the file's place and sets `folio->mapping = NULL`; a page read back
    /// from a slot is in the swap cache with no mapping until `shmem_add_to_page_cache`. So
    /// `folio_flush_mapping()` (`page_mapping_file()` from 4.17, cb9f753a3731) is `NULL` for
    /// it, as for any swap-cache page, and `PageAnon()` false. The model keeps the owner in the
    /// descriptor for its own bookkeeping (the kernel finds it by the swap entry); arch code
    /// does not see it.
    pub fn page_mapping(self, page: Pfn) -> Mapping {
        let d = self.k.page(page);
        match d.mapping {
            Mapping::File(_) if d.flags.contains(PageFlags::SWAPCACHE) => Mapping::None,
            m => m,
        }
    }

    /// `mapping_mapped`: does any VMA map file `f`?
    pub fn mapping_mapped(self, f: FileId) -> bool {
        self.k.file_mapped(f)
    }

    /// Sets `PG_dcache_dirty` (`PG_arch_1`) of `page`: its kernel-alias flush is deferred.
    pub fn set_dcache_dirty(self, page: Pfn) {
        self.k.set_page_flags(page, PageFlags::DCACHE_DIRTY)
    }

    /// `test_and_clear_bit(PG_dcache_dirty)`.
    pub fn test_and_clear_dcache_dirty(self, page: Pfn) -> bool {
        self.k.clear_page_flags(page, PageFlags::DCACHE_DIRTY)
    }

    /// The `i_mmap` walk (`vma_interval_tree_foreach`): the VMAs of `page`'s file that cover
    /// it, with the user address there, in `i_mmap` order. The caller holds the file's
    /// `flush_dcache_mmap` lock. Empty for pages that are not page-cache pages.
    pub fn file_mappings(self, page: Pfn) -> Vec<(Vma, VirtAddr)> {
        self.k.file_mappings(page)
    }

    /// The VMAs of `mm` in address order (`for_each_vma`).
    pub fn mm_vmas(self, mm: MmId) -> Vec<Vma> {
        self.k.mm_vmas(mm)
    }

    /// The space id of `mm` (its `context`).
    pub fn mm_space(self, mm: MmId) -> SpaceId {
        self.k.mm_space(mm)
    }

    /// `current->mm`: the mm of the process this CPU runs, `None` in a kernel thread or a
    /// process outside the workload. It is the caller's, not the target's, in
    /// `access_process_vm` (which reaches the target through `get_user_pages_remote`): arch
    /// code must not assume that a VMA it is handed belongs to the current mm.
    pub fn current_mm(self) -> Option<MmId> {
        self.k.current_mm(self.cpu)
    }

    // ----- for timelines ----------------------------------------------------------------

    /// A note in the machine trace (`pr_err`-style; not a step).
    pub fn note(self, note: &'static str) {
        self.k.note(self.cpu, note)
    }

    /// A labelled preemption point with no action, for tests and timelines.
    pub fn label(self, label: &'static str) -> impl Future<Output = ()> + 'a {
        self.k.label(self.cpu, label)
    }
}
