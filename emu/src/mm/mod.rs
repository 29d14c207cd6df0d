//! The shared MMU core: a model of Linux's generic memory manager running on the
//! [`Machine`], reaching the architecture only through [`ArchHooks`].
//!
//! Every kernel routine is an `async fn` running on one CPU. Each machine action it performs
//! (a load, a store, a flush of one line, one PTE read or write, a lock acquisition, one TLB
//! operation, one DMA transfer) is preceded by [`Kernel::step`], a preemption point at which
//! the executor ([`exec`]) may switch to another CPU. Between two steps a routine runs
//! atomically, so kernel data structures (page cache, VMA lists, page descriptors) are
//! updated atomically too; PTEs and caches, the state the flush contract is about, are touched
//! one action per step.
//!
//! State lives in two `RefCell`s: the machine and the kernel's objects. No borrow is ever held
//! across an `.await`.

pub mod clean;
pub mod exec;
pub mod fault;
pub mod filemap;
pub mod fork;
pub mod gather;
pub mod gup;
pub mod hash;
pub mod hooks;
pub mod lock;
pub mod mmap;
pub mod observe;
pub mod ops;
pub mod types;
pub mod vmscan;

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SpaceId, VirtAddr, WORDS_PER_PAGE};
use crate::choice::ChoiceKind;
use crate::machine::{FlushOutcome, Machine, Trap};
use crate::pgtable::PteSlot;
use crate::pte::{Pte, PteLayout};

pub use clean::CleanMode;
pub use exec::{Executor, StepError};
pub use fault::FixupMode;
pub use gather::MmuGather;
pub use hash::HashMode;
pub use hooks::{ArchHooks, GenericHooks, HookFuture, UnmapOrder};
pub use lock::{LockId, LockMode};
pub use observe::Obs;
pub use ops::{Errno, Op, OpResult};
pub use types::{AnonId, FileId, Mapping, MmId, PageDesc, PageFlags, Vma, VmaId};

use types::{AnonVma, FileObj, MmStruct, SwapSlot};

/// The next machine action a CPU will perform when it is next run. Tests stop a CPU just
/// before a chosen action; timelines print them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing pending (idle CPU).
    Idle,
    /// The first step of an operation.
    Begin(&'static str),
    /// A user load or store.
    UserAccess {
        /// Space.
        space: SpaceId,
        /// Address.
        va: VirtAddr,
        /// Store?
        write: bool,
    },
    /// A kernel load or store (linear map or tmpalias).
    KernelAccess {
        /// Address.
        va: VirtAddr,
        /// Store?
        write: bool,
    },
    /// Copying or clearing one line of a page.
    CopyLine {
        /// Destination address.
        to: VirtAddr,
    },
    /// `fdc`.
    Fdc {
        /// Space.
        space: SpaceId,
        /// Address.
        va: VirtAddr,
    },
    /// `pdc`.
    Pdc {
        /// Space.
        space: SpaceId,
        /// Address.
        va: VirtAddr,
    },
    /// `fdce` on a set of some CPU's cache.
    Fdce {
        /// Cache owner.
        target: CpuId,
        /// Set.
        set: usize,
    },
    /// Reading a PTE.
    PteRead {
        /// Mm.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// Writing (or exchanging) a PTE.
    PteWrite {
        /// Mm.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// Taking a lock.
    Lock(LockId),
    /// A TLB purge or flush.
    Tlb,
    /// A DMA transfer of a page.
    Dma(Pfn),
    /// A labelled point of a routine (e.g. just after a check).
    Label(&'static str),
}

/// Per-CPU scheduling state shared with the executor.
#[derive(Debug)]
struct CpuSlot {
    /// What the CPU does when next run.
    pending: Cell<Action>,
    /// The lock the CPU waits for, if blocked.
    blocked: Cell<Option<(LockId, LockMode)>>,
    /// The mm of the process the CPU runs (`current->mm`), if any.
    current: Cell<Option<MmId>>,
    /// A COW copy about to be installed at `(mm, va)`: the PTE write that maps the page is
    /// observed as the install, whichever hook step performs it.
    pending_install: Cell<Option<(MmId, VirtAddr, Pfn)>>,
    /// The page-table page a lockless walk (`gup_fast`) of this CPU may read, from the
    /// moment it read the PMD until it re-enables interrupts. Set only while the CPU holds
    /// [`LockId::Irq`] of itself.
    walker: Cell<Option<Pfn>>,
    /// While this CPU runs an `mmu_gather`'s `tlb_flush`: `Some((whole_mm, range))`, what it
    /// has purged so far (for the flush counters).
    gather_flush: Cell<Option<(bool, bool)>>,
}

/// The kernel's objects (everything but the machine).
#[derive(Debug, Default)]
pub struct MmState {
    /// Page descriptors, by pfn.
    pub pages: Vec<PageDesc>,
    /// Free frames; the last is allocated next (recently freed frames are reused first).
    pub free: Vec<Pfn>,
    /// Mms, by id.
    pub mms: Vec<MmStruct>,
    /// VMAs, by id (`None` once freed; ids are not reused).
    pub vmas: Vec<Option<Vma>>,
    /// Files, by id.
    pub files: Vec<FileObj>,
    /// Anon objects, by id.
    pub anons: Vec<AnonVma>,
    /// Swap slots (slot 0 is the header and never used).
    pub swap: Vec<SwapSlot>,
    /// Held locks.
    pub locks: lock::LockTable,
}

impl MmState {
    /// A VMA that must exist.
    pub fn vma(&self, id: VmaId) -> Vma {
        self.vmas[id.index()].expect("live vma")
    }

    /// The VMA of `mm` containing `va`.
    pub fn find_vma(&self, mm: MmId, va: VirtAddr) -> Option<Vma> {
        self.mms[mm.index()].vmas.iter().map(|&v| self.vma(v)).find(|v| v.contains(va))
    }
}

/// The kernel: machine, objects, hooks.
pub struct Kernel {
    m: RefCell<Machine>,
    s: RefCell<MmState>,
    hooks: Box<dyn ArchHooks>,
    slots: Vec<CpuSlot>,
    layout: PteLayout,
    /// Observations, when recording.
    obs: RefCell<Option<Vec<Obs>>>,
    /// The CPU whose routine runs now (the last one resumed from a preemption point).
    running: Cell<CpuId>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("hooks", &self.hooks.name()).finish_non_exhaustive()
    }
}

/// A future that is pending once: the preemption point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

impl Kernel {
    /// A kernel on `machine` with `hooks`. The machine's miss policy is set from the hooks.
    pub fn new(mut machine: Machine, hooks: Box<dyn ArchHooks>) -> Self {
        machine.policy = hooks.miss_policy();
        let frames = machine.config().frames;
        let ncpus = machine.ncpus();
        let swap_slots = machine.config().swap_slots;
        let s = MmState {
            pages: vec![PageDesc::default(); frames],
            free: (0..frames as u32).rev().map(Pfn).collect(),
            swap: vec![SwapSlot::default(); swap_slots],
            ..MmState::default()
        };
        let layout = machine.policy.layout;
        Kernel {
            m: RefCell::new(machine),
            s: RefCell::new(s),
            hooks,
            slots: (0..ncpus)
                .map(|_| CpuSlot {
                    pending: Cell::new(Action::Idle),
                    blocked: Cell::new(None),
                    current: Cell::new(None),
                    pending_install: Cell::new(None),
                    walker: Cell::new(None),
                    gather_flush: Cell::new(None),
                })
                .collect(),
            layout,
            obs: RefCell::new(None),
            running: Cell::new(CpuId(0)),
        }
    }

    /// Starts recording [`Obs`] events.
    pub fn record_observations(&self) {
        self.obs.borrow_mut().get_or_insert_with(Vec::new);
    }

    /// Takes the observations recorded since the last call (recording goes on).
    pub fn drain_observations(&self, into: &mut Vec<Obs>) {
        if let Some(v) = self.obs.borrow_mut().as_mut() {
            into.append(v);
        }
    }

    /// Records an observation if recording.
    pub fn observe(&self, o: Obs) {
        if let Some(v) = self.obs.borrow_mut().as_mut() {
            v.push(o);
        }
    }

    /// The current micro-step.
    pub fn now(&self) -> u64 {
        self.m.borrow().step
    }

    /// The hooks (call hooks through this, so an outer lineage's overrides apply).
    pub fn arch(&self) -> &dyn ArchHooks {
        &*self.hooks
    }

    /// The PTE layout in force.
    pub fn layout(&self) -> PteLayout {
        self.layout
    }

    /// Borrow the machine (never across an `.await`).
    pub fn machine(&self) -> RefMut<'_, Machine> {
        self.m.borrow_mut()
    }

    /// Borrow the kernel objects (never across an `.await`).
    pub fn state(&self) -> RefMut<'_, MmState> {
        self.s.borrow_mut()
    }

    /// Consumes the kernel, returning the machine.
    pub fn into_machine(self) -> Machine {
        self.m.into_inner()
    }

    /// Number of CPUs.
    pub fn ncpus(&self) -> usize {
        self.slots.len()
    }

    /// The action `cpu` performs when next run.
    pub fn pending(&self, cpu: CpuId) -> Action {
        self.slots[cpu.index()].pending.get()
    }

    /// The mm of the process `cpu` runs (`current->mm`): the mm the current operation acts
    /// for, `None` for kernel threads (reclaim, `write(2)` on a file).
    pub fn current_mm(&self, cpu: CpuId) -> Option<MmId> {
        self.slots[cpu.index()].current.get()
    }

    /// Sets `current->mm` of `cpu`.
    pub fn set_current_mm(&self, cpu: CpuId, mm: Option<MmId>) {
        self.slots[cpu.index()].current.set(mm);
    }

    /// Can `cpu` make progress (not blocked on a held lock)?
    pub fn can_run(&self, cpu: CpuId) -> bool {
        match self.slots[cpu.index()].blocked.get() {
            None => true,
            Some((id, mode)) => self.s.borrow().locks.available(id, mode),
        }
    }

    /// The preemption point before every machine action: records `action` as `cpu`'s next
    /// action and yields to the executor.
    pub async fn step(&self, cpu: CpuId, action: Action) {
        self.slots[cpu.index()].pending.set(action);
        YieldOnce(false).await;
        self.running.set(cpu);
    }

    /// A labelled preemption point with no action (for tests and timelines).
    pub async fn label(&self, cpu: CpuId, label: &'static str) {
        self.step(cpu, Action::Label(label)).await
    }

    // ----- locks ------------------------------------------------------------------------

    /// Takes `id` exclusively, blocking while it is held.
    pub async fn lock(&self, cpu: CpuId, id: LockId) {
        self.lock_mode(cpu, id, LockMode::Exclusive).await
    }

    /// Takes `id` in `mode`, blocking while incompatible holders exist.
    pub async fn lock_mode(&self, cpu: CpuId, id: LockId, mode: LockMode) {
        let slot = &self.slots[cpu.index()];
        loop {
            self.step(cpu, Action::Lock(id)).await;
            if self.s.borrow_mut().locks.try_acquire(id, cpu, mode) {
                slot.blocked.set(None);
                if let LockId::Page(p) = id {
                    self.s.borrow_mut().pages[p.index()].flags.insert(PageFlags::LOCKED);
                }
                return;
            }
            slot.blocked.set(Some((id, mode)));
        }
    }

    /// Takes `id` if free; never blocks (`trylock_page`).
    pub async fn trylock(&self, cpu: CpuId, id: LockId) -> bool {
        self.step(cpu, Action::Lock(id)).await;
        let ok = self.s.borrow_mut().locks.try_acquire(id, cpu, LockMode::Exclusive);
        if ok && let LockId::Page(p) = id {
            self.s.borrow_mut().pages[p.index()].flags.insert(PageFlags::LOCKED);
        }
        ok
    }

    /// Releases `id` (not a preemption point).
    pub fn unlock(&self, cpu: CpuId, id: LockId) {
        let mut s = self.s.borrow_mut();
        s.locks.release(id, cpu);
        if let LockId::Page(p) = id {
            s.pages[p.index()].flags.remove(PageFlags::LOCKED);
        }
    }

    // ----- objects ----------------------------------------------------------------------

    /// Space of `mm`.
    pub fn mm_space(&self, mm: MmId) -> SpaceId {
        self.s.borrow().mms[mm.index()].space
    }

    /// Snapshot of a VMA.
    pub fn vma(&self, id: VmaId) -> Vma {
        self.s.borrow().vma(id)
    }

    /// Snapshot of a page descriptor.
    pub fn page(&self, pfn: Pfn) -> PageDesc {
        self.s.borrow().pages[pfn.index()]
    }

    /// Sets page flags.
    pub fn set_page_flags(&self, pfn: Pfn, f: PageFlags) {
        self.s.borrow_mut().pages[pfn.index()].flags.insert(f);
    }

    /// Clears page flags; returns whether any was set.
    pub fn clear_page_flags(&self, pfn: Pfn, f: PageFlags) -> bool {
        let mut s = self.s.borrow_mut();
        let had = s.pages[pfn.index()].flags.intersects(f);
        s.pages[pfn.index()].flags.remove(f);
        had
    }

    /// The VMAs of `page`'s file that cover it, with the user address there, in `i_mmap`
    /// order (the caller holds the file's `i_mmap` or `flush_dcache_mmap` lock). Empty for
    /// non-file pages.
    pub fn file_mappings(&self, page: Pfn) -> Vec<(Vma, VirtAddr)> {
        let s = self.s.borrow();
        let d = s.pages[page.index()];
        let Mapping::File(f) = d.mapping else {
            return Vec::new();
        };
        s.files[f.index()]
            .i_mmap
            .iter()
            .filter_map(|&v| {
                let vma = s.vma(v);
                vma.addr_of(d.index).map(|a| (vma, a))
            })
            .collect()
    }

    /// The VMAs that may map anonymous `page`, with its address there (the caller holds the
    /// anon lock).
    pub fn anon_mappings(&self, page: Pfn) -> Vec<(Vma, VirtAddr)> {
        let s = self.s.borrow();
        let d = s.pages[page.index()];
        let Mapping::Anon(a) = d.mapping else {
            return Vec::new();
        };
        let va = crate::addr::Vpn(d.index).addr();
        s.anons[a.index()]
            .vmas
            .iter()
            .map(|&v| s.vma(v))
            .filter(|v| v.contains(va))
            .map(|v| (v, va))
            .collect()
    }

    /// Is the file `f` mapped by any VMA (`mapping_mapped`)?
    pub fn file_mapped(&self, f: FileId) -> bool {
        self.s.borrow().files[f.index()].mapped()
    }

    /// Is the file mapped by a shared writable VMA (`mapping_writably_mapped`)?
    pub fn file_writably_mapped(&self, f: FileId) -> bool {
        let s = self.s.borrow();
        s.files[f.index()].i_mmap.iter().any(|&v| {
            let v = s.vma(v);
            v.shared && v.writable
        })
    }

    // ----- frames -----------------------------------------------------------------------

    /// Allocates a frame with refcount 1 (`alloc_page`); `None` when memory is exhausted.
    pub fn alloc_page(&self) -> Option<Pfn> {
        let mut s = self.s.borrow_mut();
        let pfn = s.free.pop()?;
        s.pages[pfn.index()] = PageDesc { refcount: 1, ..PageDesc::default() };
        Some(pfn)
    }

    /// Takes a reference (`get_page`).
    pub fn get_page(&self, pfn: Pfn) {
        self.s.borrow_mut().pages[pfn.index()].refcount += 1;
    }

    /// Drops a reference; frees the frame when it was the last (`put_page`). Freeing touches
    /// no cache: whatever lines of the frame are still cached stay there.
    pub fn put_page(&self, pfn: Pfn) {
        let mut s = self.s.borrow_mut();
        let d = &mut s.pages[pfn.index()];
        assert!(d.refcount > 0, "put_page on free {pfn:?}");
        d.refcount -= 1;
        if d.refcount == 0 {
            assert_eq!(d.mapcount, 0, "freeing mapped {pfn:?}");
            let table = d.flags.contains(PageFlags::PAGETABLE);
            *d = PageDesc::default();
            s.free.push(pfn);
            drop(s);
            self.check_unreachable(pfn, table);
        }
    }

    /// The invariant of freeing (rule 2 of [`hooks`]): no CPU can reach a frame that is freed,
    /// neither through a TLB entry of a user space nor from inside a lockless page-table walk.
    /// Emits [`Obs::FreedReachable`] otherwise.
    fn check_unreachable(&self, pfn: Pfn, table: bool) {
        let holder = self.machine().tlb_holder(pfn).map(|c| (c, false)).or_else(|| {
            self.slots.iter().position(|sl| sl.walker.get() == Some(pfn)).map(|i| (CpuId(i as u8), true))
        });
        if let Some((holder, walker)) = holder {
            let (cpu, step) = (self.running.get(), self.now());
            self.observe(Obs::FreedReachable { cpu, pfn, table, holder, walker, step });
        }
    }

    /// `local_irq_save` for a lockless page-table walk: from now on `cpu` takes no IPI until
    /// [`Kernel::local_irq_restore`] (a CPU waiting for it blocks on [`LockId::Irq`]).
    pub async fn local_irq_save(&self, cpu: CpuId) {
        self.lock(cpu, LockId::Irq(cpu)).await;
    }

    /// `local_irq_restore` at the end of a lockless walk: the walk reads no table any more.
    pub fn local_irq_restore(&self, cpu: CpuId) {
        self.set_walker(cpu, None);
        self.unlock(cpu, LockId::Irq(cpu));
    }

    /// Sets or clears the page-table page `cpu`'s lockless walk may read.
    pub fn set_walker(&self, cpu: CpuId, table: Option<Pfn>) {
        self.slots[cpu.index()].walker.set(table);
    }

    /// Is `cpu` inside a lockless page-table walk?
    pub fn in_lockless_walk(&self, cpu: CpuId) -> bool {
        self.slots[cpu.index()].walker.get().is_some()
    }

    /// `tlb_remove_table_sync_one`: an IPI to every other CPU, waiting for each to take it,
    /// which a CPU inside a lockless walk (interrupts off) does only once the walk is over.
    /// Steps only for the CPUs that are inside a walk now.
    pub async fn sync_lockless_walkers(&self, cpu: CpuId) {
        for t in 0..self.ncpus() {
            let t = CpuId(t as u8);
            if t != cpu && self.in_lockless_walk(t) {
                self.lock(cpu, LockId::Irq(t)).await;
                self.unlock(cpu, LockId::Irq(t));
            }
        }
    }

    /// Allocates a zeroed page-table page.
    pub fn alloc_table_page(&self) -> Option<Pfn> {
        let pfn = self.alloc_page()?;
        self.set_page_flags(pfn, PageFlags::PAGETABLE);
        self.m.borrow_mut().pt.install(pfn);
        Some(pfn)
    }

    /// Frees a page-table page.
    pub fn free_table_page(&self, pfn: Pfn) {
        self.m.borrow_mut().pt.remove(pfn);
        // `put_page` still sees `PAGETABLE` and reports the frame as a table if reachable.
        self.put_page(pfn);
        self.clear_page_flags(pfn, PageFlags::PAGETABLE);
    }

    // ----- PTE access (one step each) ---------------------------------------------------

    /// Where the PTE for `va` of `mm` lives, if its PTE page exists.
    pub fn pte_slot(&self, mm: MmId, va: VirtAddr) -> Option<PteSlot> {
        let pgd = self.s.borrow().mms[mm.index()].pgd;
        self.m.borrow().pt.slot(pgd, va)
    }

    /// Reads the PTE for `va` of `mm` (`Pte::NONE` without a PTE page).
    pub async fn read_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr) -> Pte {
        self.step(cpu, Action::PteRead { mm, va }).await;
        self.peek_pte(mm, va)
    }

    /// The PTE for `va` of `mm`, read without a preemption point (for inspection and for
    /// use right after another step).
    pub fn peek_pte(&self, mm: MmId, va: VirtAddr) -> Pte {
        match self.pte_slot(mm, va) {
            Some(slot) => self.m.borrow().pt.pte(slot),
            None => Pte::NONE,
        }
    }

    /// Writes the PTE for `va` of `mm` (nothing if its PTE page is gone). Waits while
    /// `hash_page` holds the PTE busy.
    pub async fn write_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        self.update_pte(cpu, mm, va, |_| pte).await;
    }

    /// Declares that `new` is about to be mapped at `va` of `mm` by this CPU (a COW copy): the
    /// PTE write that maps it emits [`Obs::Installed`] at its own step.
    pub fn expect_install(&self, cpu: CpuId, mm: MmId, va: VirtAddr, new: Pfn) {
        self.slots[cpu.index()].pending_install.set(Some((mm, va.page_base(), new)));
    }

    /// Emits the install observation now if it is still owed (the hook never wrote the PTE
    /// through the core's PTE primitives).
    pub fn finish_install(&self, cpu: CpuId) {
        if let Some((mm, va, new)) = self.slots[cpu.index()].pending_install.take() {
            let step = self.now();
            self.observe(Obs::Installed { cpu, mm, va, new, step });
        }
    }

    /// Forgets an owed install observation (the install lost a race and was abandoned).
    pub fn cancel_install(&self, cpu: CpuId) {
        self.slots[cpu.index()].pending_install.set(None);
    }

    /// The invariant: `_PAGE_DIRTY` is only ever newly set on a present PTE that permits a
    /// user write (`_PAGE_WRITE` and `_PAGE_USER`).
    fn check_dirty(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) {
        use crate::pte::PteFlags;
        if self.layout.pte_present(new)
            && new.has(PteFlags::DIRTY)
            && !new.has(PteFlags::WRITE | PteFlags::USER)
            && !old.has(PteFlags::DIRTY)
        {
            let step = self.now();
            self.observe(Obs::DirtyWithoutWrite { cpu, mm, va, step });
        }
    }

    fn note_install(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        let slot = &self.slots[cpu.index()].pending_install;
        if let Some((m, v, new)) = slot.get()
            && (m, v) == (mm, va.page_base())
            && self.layout.pte_present(pte)
            && pte.raw_pfn() == new
        {
            slot.set(None);
            let step = self.now();
            self.observe(Obs::Installed { cpu, mm, va: v, new, step });
        }
    }

    /// Atomically exchanges the PTE, returning the old value.
    pub async fn xchg_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) -> Pte {
        self.update_pte(cpu, mm, va, |_| pte).await
    }

    /// Atomically replaces the PTE by `f(old)`, returning the old value. While the PTE is
    /// held busy by `hash_page` ([`crate::mm::hash::PAGE_BUSY`], only on machines with
    /// [`crate::machine::MissPolicy::hash_miss`]) it waits, as `pte_update` spins on
    /// `_PAGE_BUSY`.
    pub async fn update_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, f: impl FnOnce(Pte) -> Pte) -> Pte {
        loop {
            self.step(cpu, Action::PteWrite { mm, va }).await;
            let Some(slot) = self.pte_slot(mm, va) else {
                return Pte::NONE;
            };
            let hash = self.m.borrow().policy.hash_miss;
            if hash && self.pte_busy_held(mm, va) {
                let busy = LockId::PteBusy(mm, va.vpn().0);
                self.lock(cpu, busy).await;
                self.unlock(cpu, busy);
                continue;
            }
            let mut m = self.m.borrow_mut();
            let old = m.pt.pte(slot);
            // Only `hash_page` sets busy; a value derived from a PTE read while it was busy
            // (a copy at fork, a read-modify-write) must not carry the bit.
            let new = if hash { f(old).without_flags(hash::PAGE_BUSY) } else { f(old) };
            m.pt.set_pte(slot, new);
            drop(m);
            self.check_dirty(cpu, mm, va, old, new);
            self.note_install(cpu, mm, va, new);
            return old;
        }
    }

    /// Does a `hash_page` hold the PTE of `va` of `mm` busy now?
    pub fn pte_busy_held(&self, mm: MmId, va: VirtAddr) -> bool {
        !self.s.borrow().locks.available(LockId::PteBusy(mm, va.vpn().0), LockMode::Exclusive)
    }

    /// Replaces the PTE by `new` if it still holds `old` (one atomic step, `cmpxchg`);
    /// returns whether it did. Does not wait for `_PAGE_BUSY`: the caller compares against
    /// a value it read.
    pub async fn cmpxchg_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) -> bool {
        self.step(cpu, Action::PteWrite { mm, va }).await;
        let Some(slot) = self.pte_slot(mm, va) else {
            return false;
        };
        let mut m = self.m.borrow_mut();
        if m.pt.pte(slot) != old {
            return false;
        }
        m.pt.set_pte(slot, new);
        drop(m);
        self.check_dirty(cpu, mm, va, old, new);
        true
    }

    /// A plain store of `new` to the PTE, computed by a lockless path from a value it read
    /// earlier (no atomicity with that read, no wait for `_PAGE_BUSY`). The invariant checked:
    /// it never makes present a PTE that is not present now, nor maps again a page the PTE no
    /// longer maps (a cleared or replaced PTE brought back to life, [`Obs::PteResurrected`]);
    /// and it never overwrites a change made since `read`, the value it was computed from (a
    /// lost update, [`Obs::PteUpdateLost`]).
    pub async fn store_pte_lockless(&self, cpu: CpuId, mm: MmId, va: VirtAddr, read: Pte, new: Pte) {
        self.step(cpu, Action::PteWrite { mm, va }).await;
        let Some(slot) = self.pte_slot(mm, va) else { return };
        let old = self.m.borrow().pt.pte(slot);
        self.m.borrow_mut().pt.set_pte(slot, new);
        let present = |p: Pte| self.layout.pte_present(p);
        if present(new) && (!present(old) || old.raw_pfn() != new.raw_pfn()) {
            let step = self.now();
            self.observe(Obs::PteResurrected { cpu, mm, va, step });
        } else if old != read {
            let step = self.now();
            self.observe(Obs::PteUpdateLost { cpu, mm, va, step });
        }
        self.check_dirty(cpu, mm, va, old, new);
    }

    // ----- machine actions (one step each) ----------------------------------------------

    /// A user load or store by `cpu` in `space` (no fault handling: see [`fault`]).
    pub async fn user_access_raw(
        &self,
        cpu: CpuId,
        space: SpaceId,
        va: VirtAddr,
        store: Option<u64>,
    ) -> Result<u64, Trap> {
        self.step(cpu, Action::UserAccess { space, va, write: store.is_some() }).await;
        let mut m = self.m.borrow_mut();
        match store {
            Some(v) => m.store(cpu, space, va, v).map(|()| v),
            None => m.load(cpu, space, va),
        }
    }

    /// A kernel load from `va` (linear map or tmpalias window).
    pub async fn kernel_load(&self, cpu: CpuId, va: VirtAddr) -> u64 {
        self.step(cpu, Action::KernelAccess { va, write: false }).await;
        self.m
            .borrow_mut()
            .load(cpu, SpaceId::KERNEL, va)
            .unwrap_or_else(|t| panic!("kernel load of {va:?} trapped: {t:?}"))
    }

    /// A kernel store to `va`.
    pub async fn kernel_store(&self, cpu: CpuId, va: VirtAddr, value: u64) {
        self.step(cpu, Action::KernelAccess { va, write: true }).await;
        self.m
            .borrow_mut()
            .store(cpu, SpaceId::KERNEL, va, value)
            .unwrap_or_else(|t| panic!("kernel store to {va:?} trapped: {t:?}"))
    }

    /// Copies page `from` to page `to` line by line through kernel addresses `from_va` and
    /// `to_va` (linear map or tmpalias), one step per line.
    pub async fn copy_page_via(&self, cpu: CpuId, to_va: VirtAddr, from_va: VirtAddr) {
        let line = self.m.borrow().config().line_bytes;
        let wpl = self.m.borrow().config().words_per_line();
        let mut buf = [0u64; WORDS_PER_PAGE];
        let buf = &mut buf[..wpl];
        let mut off = 0;
        while off < PAGE_SIZE {
            let to = to_va.add_bytes(off);
            self.step(cpu, Action::CopyLine { to }).await;
            let mut m = self.m.borrow_mut();
            m.load_line(cpu, SpaceId::KERNEL, from_va.add_bytes(off), buf)
                .unwrap_or_else(|t| panic!("kernel copy load trapped: {t:?}"));
            m.store_line(cpu, SpaceId::KERNEL, to, buf)
                .unwrap_or_else(|t| panic!("kernel copy store trapped: {t:?}"));
            off += line;
        }
    }

    /// Zeroes the page at kernel address `va` line by line, one step per line.
    pub async fn clear_page_via(&self, cpu: CpuId, va: VirtAddr) {
        let line = self.m.borrow().config().line_bytes;
        let wpl = self.m.borrow().config().words_per_line();
        let zeros = [0u64; WORDS_PER_PAGE];
        let mut off = 0;
        while off < PAGE_SIZE {
            let to = va.add_bytes(off);
            self.step(cpu, Action::CopyLine { to }).await;
            self.m
                .borrow_mut()
                .store_line(cpu, SpaceId::KERNEL, to, &zeros[..wpl])
                .unwrap_or_else(|t| panic!("kernel clear trapped: {t:?}"));
            off += line;
        }
    }

    /// `copy_page` through the kernel linear map.
    pub async fn copy_page_kernel(&self, cpu: CpuId, to: Pfn, from: Pfn) {
        self.copy_page_via(cpu, to.kernel_va(), from.kernel_va()).await
    }

    /// `clear_page` through the kernel linear map.
    pub async fn clear_page_kernel(&self, cpu: CpuId, page: Pfn) {
        self.clear_page_via(cpu, page.kernel_va()).await
    }

    /// `fdc va` in `space`.
    pub async fn fdc(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.step(cpu, Action::Fdc { space, va }).await;
        self.m.borrow_mut().fdc(cpu, space, va)
    }

    /// `pdc va` in `space`.
    pub async fn pdc(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.step(cpu, Action::Pdc { space, va }).await;
        self.m.borrow_mut().pdc(cpu, space, va)
    }

    /// `fdc` over every line of the page at `va` in `space` (`flush_user_dcache_page` /
    /// `flush_kernel_dcache_page`). Returns how many of the flushes were nullified.
    pub async fn flush_page_lines(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> usize {
        let line = self.m.borrow().config().line_bytes;
        let base = va.page_base();
        let mut nullified = 0;
        let mut off = 0;
        while off < PAGE_SIZE {
            if self.fdc(cpu, space, base.add_bytes(off)).await == FlushOutcome::Nullified {
                nullified += 1;
            }
            off += line;
        }
        nullified
    }

    /// `pdc` over every line of the page at `va` in `space`.
    pub async fn purge_page_lines(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> usize {
        let line = self.m.borrow().config().line_bytes;
        let base = va.page_base();
        let mut nullified = 0;
        let mut off = 0;
        while off < PAGE_SIZE {
            if self.pdc(cpu, space, base.add_bytes(off)).await == FlushOutcome::Nullified {
                nullified += 1;
            }
            off += line;
        }
        nullified
    }

    /// Flushes the kernel linear-map alias of `page` (`flush_kernel_dcache_page`, 2.6 style).
    pub async fn flush_kernel_page(&self, cpu: CpuId, page: Pfn) {
        self.flush_page_lines(cpu, SpaceId::KERNEL, page.kernel_va()).await;
    }

    /// Flushes every CPU's whole D-cache (`flush_cache_all`: an IPI to each other CPU, `fdce`
    /// over every set).
    pub async fn flush_cache_all(&self, cpu: CpuId) {
        let (ncpus, sets) = {
            let m = self.m.borrow();
            (m.ncpus(), m.config().sets)
        };
        for t in 0..ncpus {
            let target = CpuId(t as u8);
            if target != cpu {
                self.m.borrow_mut().ipi(cpu, target);
            }
            for set in 0..sets {
                self.step(cpu, Action::Fdce { target, set }).await;
                self.m.borrow_mut().fdce(cpu, target, set);
            }
        }
    }

    /// Starts (`true`) or ends recording what `cpu`'s TLB purges are, for an `mmu_gather`'s
    /// flush; returns what was purged since the start: `(whole mm or more, a range)`.
    pub fn record_gather_flush(&self, cpu: CpuId, start: bool) -> (bool, bool) {
        let slot = &self.slots[cpu.index()].gather_flush;
        let was = slot.get().unwrap_or((false, false));
        slot.set(start.then_some((false, false)));
        was
    }

    fn note_purge(&self, cpu: CpuId, whole: bool) {
        let slot = &self.slots[cpu.index()].gather_flush;
        if let Some((mm, range)) = slot.get() {
            slot.set(Some((mm || whole, range || !whole)));
        }
    }

    /// Broadcast purge of `(space, va)`.
    pub async fn purge_tlb(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.note_purge(cpu, false);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb(cpu, space, va);
    }

    /// Local purge of `(space, va)`.
    pub async fn purge_tlb_local(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.note_purge(cpu, false);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb_local(cpu, space, va);
    }

    /// Purges every translation of `space` on every CPU.
    pub async fn purge_tlb_space(&self, cpu: CpuId, space: SpaceId) {
        self.note_purge(cpu, true);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb_space(cpu, space);
    }

    /// Flushes every CPU's whole TLB (IPIs to the others).
    pub async fn flush_tlb_all_cpus(&self, cpu: CpuId) {
        self.note_purge(cpu, true);
        let n = self.ncpus();
        for t in 0..n {
            let target = CpuId(t as u8);
            self.step(cpu, Action::Tlb).await;
            let mut m = self.m.borrow_mut();
            if target != cpu {
                m.ipi(cpu, target);
            }
            m.flush_tlb_cpu(cpu, target);
        }
    }

    /// Sets `cpu`'s tmpalias registers (not a memory action; no step).
    pub fn set_tmpalias(&self, cpu: CpuId, regs: crate::machine::TmpaliasRegs) {
        self.m.borrow_mut().set_tmpalias(cpu, regs);
    }

    /// DMA of a page from memory into `buf`.
    pub async fn dma_read(&self, cpu: CpuId, pfn: Pfn, buf: &mut [u64]) {
        self.step(cpu, Action::Dma(pfn)).await;
        self.m.borrow_mut().dma_read_page(cpu, pfn, buf);
    }

    /// DMA of `buf` into a page of memory.
    pub async fn dma_write(&self, cpu: CpuId, pfn: Pfn, buf: &[u64]) {
        self.step(cpu, Action::Dma(pfn)).await;
        self.m.borrow_mut().dma_write_page(cpu, pfn, buf);
    }

    /// Draws a choice from the machine's chooser.
    pub fn choose(&self, kind: ChoiceKind, n: u32) -> u32 {
        self.m.borrow_mut().choose(kind, n)
    }

    /// Records a note in the machine trace.
    pub fn note(&self, cpu: CpuId, note: &'static str) {
        self.m.borrow_mut().note(cpu, note);
    }

    // ----- set-up -----------------------------------------------------------------------

    /// Creates a file of `pages` zero pages whose colour offset is `colour` pages.
    pub fn create_file(&self, pages: u64, colour: u64) -> FileId {
        let mut s = self.s.borrow_mut();
        s.files.push(FileObj::new(pages, colour % (crate::addr::SHM_COLOUR / PAGE_SIZE)));
        FileId(s.files.len() as u32 - 1)
    }

    /// Creates an empty address space; `None` when no frame is left for its pgd.
    pub fn create_mm(&self) -> Option<MmId> {
        let pgd = self.alloc_table_page()?;
        let mut s = self.s.borrow_mut();
        let id = MmId(s.mms.len() as u32);
        let space = SpaceId(id.0 + 1);
        s.mms.push(MmStruct { space, pgd, vmas: Vec::new(), dead: false });
        drop(s);
        self.m.borrow_mut().attach_space(space, pgd);
        Some(id)
    }

    /// The word the backing store of file `f` holds at `(pgoff, word)`, if within the file.
    pub fn disk_word(&self, f: FileId, pgoff: u64, word: usize) -> Option<u64> {
        self.s.borrow().files[f.index()].disk.get(pgoff as usize).map(|p| p[word])
    }
}

#[cfg(test)]
mod tests;
