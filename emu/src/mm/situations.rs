//! Situations: the cases the flush contract distinguishes, counted as a run meets them.
//!
//! `cachetlb.rst` states each flush routine's contract by the state a page is in when the
//! routine runs: mapped by user space or not (the deferred `PG_dcache_dirty` flush), shared or
//! private, at one colour or several; read or written by the kernel through another address
//! (`access_process_vm`, COW); racing the routines that unmap it (reclaim, truncate, zap); and,
//! on a machine that moves lines in speculatively and keeps TLB entries until purged, what
//! other CPUs do inside the steps between a flush and the TLB purge or PTE change it must come
//! before, or between a PTE check and the flush that depends on it. A campaign that never meets
//! a situation cannot find a bug that needs it; the counts say what a campaign exercised.
//!
//! Every situation is detected where the core already is when it happens, from the step
//! sequence itself: no lineage marks anything. The counters are plain `u64`s indexed by
//! [`Situation`]; nothing here allocates or hashes.

use std::cell::{Cell, RefCell};

use crate::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use crate::mm::{Kernel, Mapping, MmId, Op, PageFlags};
use crate::pte::{Pte, PteFlags, PteKind};

macro_rules! situations {
    ($($(#[doc = $doc:literal])+ $var:ident = $name:literal,)*) => {
        /// A situation of the flush contract (see the module docs); [`Situation::ALL`] lists
        /// them in their report order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Situation {
            $($(#[doc = $doc])+ $var,)*
        }

        impl Situation {
            /// Every situation, in report order.
            pub const ALL: &'static [Situation] = &[$(Situation::$var,)*];

            /// Its stable name (JSON key and table row).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Situation::$var => $name,)*
                }
            }

            /// What it means, in one line.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Situation::$var => concat!($($doc),+),)*
                }
            }
        }
    };
}

situations! {
    /// `flush_dcache_page` of a page-cache page no user mapping maps (parisc defers the flush).
    FdpUnmapped = "flush_dcache_page.unmapped",
    /// `flush_dcache_page` of a page mapped shared, every mapping at one colour.
    FdpSharedOneColour = "flush_dcache_page.shared_one_colour",
    /// `flush_dcache_page` of a page mapped shared at two colours or more.
    FdpSharedColours = "flush_dcache_page.shared_colours",
    /// `flush_dcache_page` of a page mapped only privately (not yet COWed), at one colour.
    FdpPrivateOneColour = "flush_dcache_page.private_one_colour",
    /// `flush_dcache_page` of a page mapped only privately, at two colours or more.
    FdpPrivateColours = "flush_dcache_page.private_colours",
    /// `flush_dcache_page` of a page mapped both shared and privately.
    FdpSharedAndPrivate = "flush_dcache_page.shared_and_private",
    /// `flush_dcache_page` of an anonymous page (a `get_user_pages` write).
    FdpAnon = "flush_dcache_page.anon",
    /// A page whose flush was deferred (`PG_dcache_dirty`) gets a user PTE (a fault or swap-in
    /// installs it; the flag is still set when the core calls `set_pte_at`).
    DeferredThenMapped = "deferred_flush.then_mapped",
    /// `access_process_vm` reads an anonymous page of another process.
    ApvmReadAnon = "access_process_vm.read_anon",
    /// `access_process_vm` reads a page-cache page of another process.
    ApvmReadFile = "access_process_vm.read_file",
    /// `access_process_vm` writes an anonymous page of another process.
    ApvmWriteAnon = "access_process_vm.write_anon",
    /// COW copies a page that has dirty lines at a colour other than the faulting address's.
    CowDirtyOtherColour = "cow.source_dirty_other_colour",
    /// `mmap(MAP_FIXED)` maps a file page at a colour other than an existing mapping's.
    FixedOtherColour = "mmap.fixed_other_colour",
    /// Reclaim unmaps a page while another CPU runs `flush_dcache_page` on it.
    ReclaimFlushDcachePage = "race.reclaim.flush_dcache_page",
    /// Reclaim unmaps a page while another CPU runs `flush_cache_page` on it.
    ReclaimFlushCachePage = "race.reclaim.flush_cache_page",
    /// Reclaim unmaps a page while another CPU runs `flush_anon_page` on it.
    ReclaimFlushAnonPage = "race.reclaim.flush_anon_page",
    /// Reclaim unmaps a page while another CPU's COW copies it.
    ReclaimCopyUserHighpage = "race.reclaim.copy_user_highpage",
    /// Reclaim unmaps a page while another CPU's `access_process_vm` copies to or from it.
    ReclaimCopyUserPage = "race.reclaim.copy_to_from_user_page",
    /// Truncate unmaps a page while another CPU runs `flush_dcache_page` on it.
    TruncateFlushDcachePage = "race.truncate.flush_dcache_page",
    /// Truncate unmaps a page while another CPU runs `flush_cache_page` on it.
    TruncateFlushCachePage = "race.truncate.flush_cache_page",
    /// Truncate unmaps a page while another CPU runs `flush_anon_page` on it.
    TruncateFlushAnonPage = "race.truncate.flush_anon_page",
    /// Truncate unmaps a page while another CPU's COW copies it.
    TruncateCopyUserHighpage = "race.truncate.copy_user_highpage",
    /// Truncate unmaps a page while another CPU's `access_process_vm` copies to or from it.
    TruncateCopyUserPage = "race.truncate.copy_to_from_user_page",
    /// A zap (munmap, exit) unmaps a page while another CPU runs `flush_dcache_page` on it.
    ZapFlushDcachePage = "race.zap.flush_dcache_page",
    /// A zap unmaps a page while another CPU runs `flush_cache_page` on it.
    ZapFlushCachePage = "race.zap.flush_cache_page",
    /// A zap unmaps a page while another CPU runs `flush_anon_page` on it.
    ZapFlushAnonPage = "race.zap.flush_anon_page",
    /// A zap unmaps a page while another CPU's COW copies it.
    ZapCopyUserHighpage = "race.zap.copy_user_highpage",
    /// A zap unmaps a page while another CPU's `access_process_vm` copies to or from it.
    ZapCopyUserPage = "race.zap.copy_to_from_user_page",
    /// A speculative move-in of a page between a CPU's flush of it and the TLB purge or PTE
    /// write that follows on that CPU (the flush-to-purge window).
    SpecInFlushWindow = "window.speculative_fill_after_flush",
    /// A user access, by another CPU, to a page inside its flush-to-purge window.
    AccessInFlushWindow = "window.access_after_flush",
    /// A PTE a CPU read (a check such as `translation_exists`) changed before that CPU's next
    /// flush, which depends on the check.
    PteChangedAfterCheck = "window.pte_changed_after_check",
    /// A user access through a TLB entry whose PTE was cleared (not present now).
    StaleAfterClear = "stale_tlb.after_clear",
    /// A user store through a writable TLB entry whose PTE is write-protected now.
    StaleAfterWrprotect = "stale_tlb.after_wrprotect",
    /// A user access through a TLB entry whose PTE maps another page now.
    StaleAfterRemap = "stale_tlb.after_remap",
    /// A plain PTE store (not an atomic update) removed a dirty bit the PTE gained after the
    /// storing CPU's operation first read it: a store to the page since is in no dirty bit.
    DirtyDropped = "pte.dirty_dropped",
    /// Reclaim unmaps a shmem page from two or more user addresses and moves it to the swap
    /// cache (`shmem_writepage`).
    ShmemToSwapCacheShared = "shmem.to_swap_cache_shared",
    /// Reclaim unmaps a shmem page from user addresses at two colours or more and moves it to
    /// the swap cache.
    ShmemToSwapCacheColours = "shmem.to_swap_cache_colours",
    /// A shmem page is brought back from the swap cache, the frame it was written out from.
    ShmemSwapinFromCache = "shmem.swapin_from_swap_cache",
    /// A shmem page is read back from its swap slot into a new frame.
    ShmemSwapinFromSlot = "shmem.swapin_from_slot",
    /// A shmem page brought back from the swap cache is mapped next at another colour than it
    /// was mapped at when it went there.
    ShmemSwapinOtherColour = "shmem.swapin_other_colour",
    /// A page of a `MAP_SHARED | MAP_ANONYMOUS` mapping gets a PTE while another process (a
    /// fork) maps it at the same colour.
    SharedAnonShared = "shared_anon.shared",
    /// A page of a `MAP_SHARED | MAP_ANONYMOUS` mapping gets a PTE at another colour than an
    /// existing mapping of it.
    SharedAnonColours = "shared_anon.colours",
    /// `mremap` moves a present page to an address of another colour (a private anonymous
    /// mapping placed first-fit, or `MREMAP_FIXED`).
    MremapOtherColour = "mremap.moved_other_colour",
    /// `mremap` moves a present page to another colour while a cache holds a dirty line of it
    /// at the old address's colour (what the move's `flush_cache_range` must write back).
    MremapDirtyOtherColour = "mremap.moved_dirty_other_colour",
    /// A kernel buffer (an io_uring ring) is mapped into user space at a colour other than its
    /// kernel address's (io_uring's placement before 6.4).
    RingUserOtherColour = "kernel_buffer.mapped_other_colour",
    /// The kernel reads or writes a word of a kernel buffer while a cache holds a dirty line of
    /// that word at a user mapping's colour other than the kernel address's.
    RingKernelUserDirtyOtherColour = "kernel_buffer.kernel_access_user_dirty_other_colour",
}

/// How many situations there are.
pub const COUNT: usize = Situation::ALL.len();

/// Situation counts of a run (or summed over runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situations {
    counts: [u64; COUNT],
}

impl Default for Situations {
    fn default() -> Self {
        Situations { counts: [0; COUNT] }
    }
}

impl Situations {
    /// How often `s` was met.
    pub fn get(&self, s: Situation) -> u64 {
        self.counts[s as usize]
    }

    /// Counts `s` once more.
    pub fn add(&mut self, s: Situation) {
        self.counts[s as usize] += 1;
    }

    /// Counts `s` `n` times more.
    pub fn add_n(&mut self, s: Situation, n: u64) {
        self.counts[s as usize] += n;
    }

    /// The situation named `name`.
    pub fn by_name(name: &str) -> Option<Situation> {
        Situation::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// Adds `o`'s counts.
    pub fn merge(&mut self, o: &Situations) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
    }

    /// Every situation with its count, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (Situation, u64)> + '_ {
        Situation::ALL.iter().map(|&s| (s, self.counts[s as usize]))
    }
}

/// The kind of operation a CPU runs, as far as situations care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum OpClass {
    /// Anything else.
    #[default]
    Other,
    /// Reclaim.
    Reclaim,
    /// `ftruncate`.
    Truncate,
    /// `munmap` or exit.
    Zap,
}

impl OpClass {
    pub(crate) fn of(op: &Op) -> OpClass {
        match op {
            Op::Reclaim { .. } => OpClass::Reclaim,
            Op::Truncate { .. } => OpClass::Truncate,
            Op::Munmap { .. } | Op::Exit { .. } => OpClass::Zap,
            _ => OpClass::Other,
        }
    }
}

/// A flush routine the core called, for the race situations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routine {
    /// `flush_dcache_page`.
    FlushDcachePage,
    /// `flush_cache_page`.
    FlushCachePage,
    /// `flush_anon_page`.
    FlushAnonPage,
    /// `copy_user_highpage`.
    CopyUserHighpage,
    /// `copy_to_user_page` / `copy_from_user_page`.
    CopyUserPage,
}

/// Per-CPU state of the situation detectors.
#[derive(Debug, Default)]
pub(crate) struct SitSlot {
    /// The class of the operation the CPU runs.
    pub(crate) op: Cell<OpClass>,
    /// The outermost flush routine the CPU is in, and its page.
    pub(crate) routine: Cell<Option<(Routine, Pfn)>>,
    /// The page the CPU's last `fdc`/`pdc` acted on, until its next TLB purge or PTE write
    /// (the flush-to-purge window).
    pub(crate) flushed: Cell<Option<Pfn>>,
    /// The PTE the CPU last read and its value, until its next flush or PTE write.
    pub(crate) checked: Cell<Option<(MmId, VirtAddr, Pte)>>,
    /// What happened to the page of `flushed` since: [`HIT_SPEC`], [`HIT_ACCESS`]. Counted
    /// when the window closes with a TLB purge or PTE write, forgotten otherwise.
    pub(crate) hits: Cell<u8>,
    /// The first PTEs the operation read (page of `va` of `mm`) and whether each was dirty
    /// then, in the order read; the rest of the array is `None`.
    pub(crate) first_reads: RefCell<[Option<(MmId, VirtAddr, bool)>; FIRST_READS]>,
}

/// How many distinct PTEs an operation's first reads are kept of: enough for reclaim's rmap
/// walks over every mapping of a page in the workloads (a PTE read after the array is full is
/// not judged, and a dirty bit its operation drops goes uncounted).
const FIRST_READS: usize = 16;

/// A speculative move-in of the page inside the window.
const HIT_SPEC: u8 = 1;
/// A user access of another CPU to the page inside the window.
const HIT_ACCESS: u8 = 2;

impl SitSlot {
    pub(crate) fn reset(&self, op: OpClass) {
        self.op.set(op);
        self.routine.set(None);
        self.flushed.set(None);
        self.checked.set(None);
        self.hits.set(0);
        *self.first_reads.borrow_mut() = [None; FIRST_READS];
    }
}

/// While alive, its CPU is inside a flush routine (`Kernel::enter_routine`).
#[must_use = "the routine lasts as long as the guard"]
pub struct RoutineGuard<'k> {
    k: &'k Kernel,
    cpu: CpuId,
    prev: Option<(Routine, Pfn)>,
}

impl Drop for RoutineGuard<'_> {
    fn drop(&mut self) {
        self.k.slots[self.cpu.index()].sit.routine.set(self.prev);
    }
}

impl Kernel {
    /// The situations met so far.
    pub fn situations(&self) -> Situations {
        *self.sit.borrow()
    }

    /// Counts `s`.
    pub(crate) fn met(&self, s: Situation) {
        self.sit.borrow_mut().add(s);
    }

    fn colour_of(&self, va: VirtAddr) -> u64 {
        va.vpn().raw() % self.m.borrow().config().colours()
    }

    /// `cpu` enters flush routine `r` on `page` (the outermost one counts).
    pub(crate) fn enter_routine(&self, cpu: CpuId, r: Routine, page: Pfn) -> RoutineGuard<'_> {
        let slot = &self.slots[cpu.index()].sit.routine;
        let prev = slot.get();
        if prev.is_none() {
            slot.set(Some((r, page)));
        }
        RoutineGuard { k: self, cpu, prev }
    }

    /// The core is about to call `flush_dcache_page(page)` on `cpu`: counts the page's shape
    /// (who maps it, shared or private, at how many colours) and enters the routine.
    pub(crate) fn enter_flush_dcache_page(&self, cpu: CpuId, page: Pfn) -> RoutineGuard<'_> {
        let shape = {
            let s = self.s.borrow();
            let d = s.pages[page.index()];
            match d.mapping {
                Mapping::File(f) => {
                    // (shared, private) colours seen: the first colour and whether another.
                    let (mut shared, mut private) = (None::<(u64, bool)>, None::<(u64, bool)>);
                    for &v in &s.files[f.index()].i_mmap {
                        let vma = s.vma(v);
                        let Some(va) = vma.addr_of(d.index) else { continue };
                        let maps = matches!(self.layout.decode(self.peek_pte(vma.mm, va)),
                            PteKind::Present { pfn, .. } if pfn == page);
                        if !maps {
                            continue;
                        }
                        let c = self.colour_of(va);
                        let seen = if vma.shared { &mut shared } else { &mut private };
                        *seen = Some(match *seen {
                            None => (c, false),
                            Some((c0, many)) => (c0, many || c0 != c),
                        });
                    }
                    Some(match (shared, private) {
                        (None, None) => Situation::FdpUnmapped,
                        (Some(_), Some(_)) => Situation::FdpSharedAndPrivate,
                        (Some((_, false)), None) => Situation::FdpSharedOneColour,
                        (Some((_, true)), None) => Situation::FdpSharedColours,
                        (None, Some((_, false))) => Situation::FdpPrivateOneColour,
                        (None, Some((_, true))) => Situation::FdpPrivateColours,
                    })
                }
                Mapping::Anon(_) => Some(Situation::FdpAnon),
                _ => None,
            }
        };
        if let Some(s) = shape {
            self.met(s);
        }
        self.enter_routine(cpu, Routine::FlushDcachePage, page)
    }

    /// The core is about to install `pte` with `set_pte_at` (a fault, COW or swap-in): is a
    /// page whose flush was deferred being mapped?
    pub(crate) fn note_mapped(&self, pte: Pte) {
        if let PteKind::Present { pfn, .. } = self.layout.decode(pte)
            && self
                .s
                .borrow()
                .pages
                .get(pfn.index())
                .is_some_and(|d| d.flags.contains(PageFlags::DCACHE_DIRTY))
        {
            self.met(Situation::DeferredThenMapped);
        }
    }

    /// `access_process_vm` copies to (`write`) or from `page`. A write always meets an
    /// anonymous page: `get_user_pages` with `FOLL_WRITE` breaks COW first.
    pub(crate) fn note_apvm(&self, page: Pfn, write: bool) {
        let anon = matches!(self.s.borrow().pages[page.index()].mapping, Mapping::Anon(_));
        self.met(match (write, anon) {
            (false, true) => Situation::ApvmReadAnon,
            (false, false) => Situation::ApvmReadFile,
            (true, _) => Situation::ApvmWriteAnon,
        });
    }

    /// Does a cache of any CPU hold a dirty line of `pfn` at the colour of `va`?
    pub(crate) fn dirty_at(&self, pfn: Pfn, va: VirtAddr) -> bool {
        let m = self.m.borrow();
        let line = m.config().line_bytes;
        let mut off = 0;
        while off < crate::addr::PAGE_SIZE {
            let pa = pfn.phys().add_bytes(off);
            let at = va.page_base().add_bytes(off);
            if (0..m.ncpus())
                .any(|c| m.cached_line(CpuId(c as u8), at, pa).is_some_and(|(meta, _)| meta.dirty))
            {
                return true;
            }
            off += line;
        }
        false
    }

    /// COW is about to copy `from`, which faulted at `va`: does any cache hold a dirty line of
    /// it at another colour (through the kernel alias or another mapping)? Only the addresses
    /// the page is known at are looked up, a line each.
    pub(crate) fn note_cow_source(&self, from: Pfn, va: VirtAddr) {
        let mut others = [VirtAddr::new(0); 9];
        let mut n = 0;
        others[n] = from.kernel_va();
        n += 1;
        {
            let s = self.s.borrow();
            let d = s.pages[from.index()];
            if let Mapping::File(f) = d.mapping {
                for &v in &s.files[f.index()].i_mmap {
                    if n == others.len() {
                        break;
                    }
                    if let Some(a) = s.vma(v).addr_of(d.index) {
                        others[n] = a;
                        n += 1;
                    }
                }
            }
        }
        let m = self.m.borrow();
        let line = m.config().line_bytes;
        let fault = va.page_base();
        let found = others[..n].iter().filter(|&&o| !m.equivalent(o, fault)).any(|&o| {
            let mut off = 0;
            while off < crate::addr::PAGE_SIZE {
                let pa = from.phys().add_bytes(off);
                for c in 0..m.ncpus() {
                    if m.cached_line(CpuId(c as u8), o.add_bytes(off), pa).is_some_and(|(meta, _)| meta.dirty)
                    {
                        return true;
                    }
                }
                off += line;
            }
            false
        });
        drop(m);
        if found {
            self.met(Situation::CowDirtyOtherColour);
        }
    }

    /// `cpu`'s flush-to-purge window closes with a TLB purge or PTE write: what happened to
    /// its page inside it counts.
    fn close_window(&self, cpu: CpuId) {
        let me = &self.slots[cpu.index()].sit;
        if me.flushed.take().is_some() {
            let hits = me.hits.replace(0);
            if hits & HIT_SPEC != 0 {
                self.met(Situation::SpecInFlushWindow);
            }
            if hits & HIT_ACCESS != 0 {
                self.met(Situation::AccessInFlushWindow);
            }
        }
    }

    /// A PTE write by `cpu` replaced `old`: closes `cpu`'s windows, and counts a reclaim,
    /// truncate or zap that unmaps a page another CPU runs a flush routine on.
    pub(crate) fn sit_pte_written(&self, cpu: CpuId, old: Pte) {
        self.close_window(cpu);
        let me = &self.slots[cpu.index()].sit;
        me.checked.set(None);
        let op = me.op.get();
        if op == OpClass::Other {
            return;
        }
        let PteKind::Present { pfn, .. } = self.layout.decode(old) else { return };
        for (i, o) in self.slots.iter().enumerate() {
            if i == cpu.index() {
                continue;
            }
            if let Some((r, p)) = o.sit.routine.get()
                && p == pfn
            {
                use Situation as S;
                let s = match (op, r) {
                    (OpClass::Reclaim, Routine::FlushDcachePage) => S::ReclaimFlushDcachePage,
                    (OpClass::Reclaim, Routine::FlushCachePage) => S::ReclaimFlushCachePage,
                    (OpClass::Reclaim, Routine::FlushAnonPage) => S::ReclaimFlushAnonPage,
                    (OpClass::Reclaim, Routine::CopyUserHighpage) => S::ReclaimCopyUserHighpage,
                    (OpClass::Reclaim, Routine::CopyUserPage) => S::ReclaimCopyUserPage,
                    (OpClass::Truncate, Routine::FlushDcachePage) => S::TruncateFlushDcachePage,
                    (OpClass::Truncate, Routine::FlushCachePage) => S::TruncateFlushCachePage,
                    (OpClass::Truncate, Routine::FlushAnonPage) => S::TruncateFlushAnonPage,
                    (OpClass::Truncate, Routine::CopyUserHighpage) => S::TruncateCopyUserHighpage,
                    (OpClass::Truncate, Routine::CopyUserPage) => S::TruncateCopyUserPage,
                    (_, Routine::FlushDcachePage) => S::ZapFlushDcachePage,
                    (_, Routine::FlushCachePage) => S::ZapFlushCachePage,
                    (_, Routine::FlushAnonPage) => S::ZapFlushAnonPage,
                    (_, Routine::CopyUserHighpage) => S::ZapCopyUserHighpage,
                    (_, Routine::CopyUserPage) => S::ZapCopyUserPage,
                };
                self.met(s);
            }
        }
    }

    /// `cpu` read the PTE of `va` of `mm`: a check a later flush may depend on, and, if it is
    /// the operation's first read of that PTE, what a later plain store is judged against.
    pub(crate) fn sit_pte_read(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        let me = &self.slots[cpu.index()].sit;
        let page = va.page_base();
        me.checked.set(Some((mm, page, pte)));
        let mut reads = me.first_reads.borrow_mut();
        if let Some(free) = reads.iter().position(|r| r.is_none_or(|(m, v, _)| (m, v) == (mm, page)))
            && reads[free].is_none()
        {
            reads[free] = Some((mm, page, pte.has(PteFlags::DIRTY)));
        }
    }

    /// `cpu` stored `new` over `old` in the PTE of `va` of `mm` with a plain store: does it
    /// drop a dirty bit its operation did not see when it first read the PTE?
    pub(crate) fn sit_plain_pte_store(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) {
        if !self.layout.pte_present(old) || !old.has(PteFlags::DIRTY) || new.has(PteFlags::DIRTY) {
            return;
        }
        let page = va.page_base();
        let unseen = self.slots[cpu.index()]
            .sit
            .first_reads
            .borrow()
            .iter()
            .flatten()
            .any(|&(m, v, dirty)| (m, v) == (mm, page) && !dirty);
        if unseen {
            self.met(Situation::DirtyDropped);
        }
    }

    /// `cpu`'s `fdc`/`pdc` acted on `pfn` (or was nullified, `None`): the PTE it checked last
    /// may have changed since, and its flush-to-purge window opens. On every flushed line, so
    /// the common case (no check pending, the window already open on this page) is two loads.
    #[inline]
    pub(crate) fn sit_flushed(&self, cpu: CpuId, pfn: Option<Pfn>) {
        let me = &self.slots[cpu.index()].sit;
        if me.checked.get().is_some() {
            self.sit_check_consumed(cpu);
        }
        if pfn.is_some() && me.flushed.get() != pfn {
            me.flushed.set(pfn);
            me.hits.set(0);
        }
    }

    /// The first flush after a PTE read: did the PTE change in between?
    #[inline(never)]
    fn sit_check_consumed(&self, cpu: CpuId) {
        if let Some((mm, va, pte)) = self.slots[cpu.index()].sit.checked.take()
            && self.peek_pte(mm, va) != pte
        {
            self.met(Situation::PteChangedAfterCheck);
        }
    }

    /// `cpu` purged a TLB entry (or more): its flush-to-purge window closes.
    pub(crate) fn sit_purged(&self, cpu: CpuId) {
        self.close_window(cpu);
    }

    /// A speculative move-in filled a line of `pfn`.
    pub(crate) fn sit_speculated(&self, pfn: Pfn) {
        for s in &self.slots {
            if s.sit.flushed.get() == Some(pfn) {
                s.sit.hits.set(s.sit.hits.get() | HIT_SPEC);
            }
        }
    }

    /// A user access of `cpu` at `va` of `mm` (space `space`) completed: was it inside another
    /// CPU's flush window, and did it go through a TLB entry its PTE no longer backs?
    pub(crate) fn sit_user_access(&self, cpu: CpuId, mm: MmId, space: SpaceId, va: VirtAddr, store: bool) {
        let entry = {
            let m = self.m.borrow();
            m.tlb_entry(cpu, space, va)
        };
        let Some(e) = entry else { return };
        for (i, o) in self.slots.iter().enumerate() {
            if i != cpu.index() && o.sit.flushed.get() == Some(e.pfn) {
                o.sit.hits.set(o.sit.hits.get() | HIT_ACCESS);
            }
        }
        let pte = self.peek_pte(mm, va);
        match self.layout.decode(pte) {
            PteKind::Present { pfn, .. } if pfn != e.pfn => self.met(Situation::StaleAfterRemap),
            PteKind::Present { flags, .. } => {
                if store && e.rights.contains(crate::tlb::Rights::WRITE) && !flags.contains(PteFlags::WRITE) {
                    self.met(Situation::StaleAfterWrprotect);
                }
            }
            _ => self.met(Situation::StaleAfterClear),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_in_declaration_order() {
        let names: Vec<&str> = Situation::ALL.iter().map(|s| s.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "every name is distinct");
        for (i, s) in Situation::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "ALL is in declaration order");
            assert!(!s.meaning().is_empty());
        }
    }

    #[test]
    fn counts_add_and_merge() {
        let mut a = Situations::default();
        a.add(Situation::FdpAnon);
        a.add(Situation::FdpAnon);
        let mut b = Situations::default();
        b.add(Situation::StaleAfterClear);
        b.merge(&a);
        assert_eq!(b.get(Situation::FdpAnon), 2);
        assert_eq!(b.get(Situation::StaleAfterClear), 1);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
