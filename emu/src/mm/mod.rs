//! The shared MMU core: a model of Linux's generic memory manager running on the
//! [`Machine`], reaching the architecture only through [`crate::arch`].
//!
//! Every kernel routine is an `async fn` running on one CPU. Each machine action it performs
//! (a load, a store, a flush of one line, one PTE read or write, a lock acquisition, one TLB
//! operation, one DMA transfer) is preceded by [`Kernel::step`], a preemption point at which
//! the executor ([`exec`]) may switch to another CPU. Between two steps a routine runs
//! atomically, so kernel data structures (page cache, VMA lists, page descriptors) are
//! updated atomically too; PTEs and caches, the state the flush contract is about, are touched
//! one action per step.
//!
//! The core is in layers; each may call the ones below it, never one above:
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | generic mm operations | [`ops`], [`fault`], [`filemap`], [`mmap`], [`mremap`], [`ring`], [`fork`], [`vmscan`], [`gup`], [`gather`], [`clean`], [`hash`] | the kernel routines programs invoke, in Linux's order, calling the architecture through [`Kernel::arch`] |
//! | the monitor | [`monitor`], [`observe`] | observations for the oracle and the invariant checks, stamped with the step where they happen |
//! | mm state and objects | [`state`], [`types`] | page descriptors, frames, mms, VMAs, files, anon objects, swap |
//! | architecture primitives | [`prim`], [`lock`] | the one-step machine actions (loads, stores, flushes, purges, PTE reads and writes, DMA) and locks |
//! | the machine | [`crate::machine`] | caches, TLBs, memory, page-table storage, miss handlers |
//!
//! The arch routines ([`crate::arch::ArchHooks`]) sit beside the generic operations: they are
//! called by them and use only the primitives and the few object queries that
//! [`crate::arch::ArchCtx`] exposes.
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
pub mod lock;
pub mod mmap;
pub mod monitor;
pub mod mremap;
pub mod observe;
pub mod ops;
pub mod prim;
pub mod ring;
pub mod shmem;
pub mod situations;
pub mod state;
pub mod tlbflush;
pub mod types;
pub mod vmscan;

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use crate::arch::{Arch, ArchConfig, ArchCtx, ArchHooks};
use crate::machine::Machine;
use crate::pte::{Pte, PteLayout};

pub use exec::{Executor, StepError};
pub use gather::MmuGather;
pub use lock::{LockId, LockMode};
pub use mremap::MremapArgs;
pub use observe::{Obs, Observation};
pub use ops::{Errno, Op, OpResult};
pub use state::MmState;
pub use types::{AnonId, FileId, Mapping, MmId, PageDesc, PageFlags, RingId, Vma, VmaId};

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
    /// `fdce` on a set of some CPU's cache, and on the empty sets that follow it.
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

/// Per-CPU state of the kernel. Each field is owned by one layer, named on it.
#[derive(Debug)]
struct CpuSlot {
    /// What the CPU does when next run (the executor and [`Kernel::step`]).
    pending: Cell<Action>,
    /// The lock the CPU waits for, if blocked ([`lock`]). Invariant: `Some` only while the
    /// lock is unavailable in that mode or the CPU has not retried since it became free.
    blocked: Cell<Option<(LockId, LockMode)>>,
    /// The mm of the process the CPU runs (`current->mm`), if any ([`ops`]).
    current: Cell<Option<MmId>>,
    /// A new private page about to be installed at `(mm, va)` ([`monitor`]): the PTE write
    /// that maps it is observed as the install, whichever routine step performs it. Set only
    /// while a [`monitor::PendingInstall`] of this CPU is alive.
    pending_install: Cell<Option<(MmId, VirtAddr, Pfn)>>,
    /// The page-table page a lockless walk (`gup_fast`, `hash_page`) of this CPU may read, from
    /// the moment it read the PMD until it re-enables interrupts ([`monitor`]). Set only while
    /// the CPU holds [`LockId::Irq`] of itself.
    walker: Cell<Option<Pfn>>,
    /// While this CPU runs an `mmu_gather`'s `tlb_flush`: `Some((whole_mm, range))`, what it
    /// has purged so far, for the flush counters ([`monitor`]).
    gather_flush: Cell<Option<(bool, bool)>>,
    /// Between `ptep_modify_prot_start` and `ptep_modify_prot_commit` of this CPU: the PTE of
    /// `(mm, va)` and the value the start returned ([`monitor`]), against which the commit's
    /// write is judged.
    modifying: Cell<Option<(MmId, VirtAddr, Pte)>>,
    /// The situation detectors' state ([`situations`]).
    sit: situations::SitSlot,
}

impl CpuSlot {
    fn new() -> Self {
        CpuSlot {
            pending: Cell::new(Action::Idle),
            blocked: Cell::new(None),
            current: Cell::new(None),
            pending_install: Cell::new(None),
            walker: Cell::new(None),
            gather_flush: Cell::new(None),
            modifying: Cell::new(None),
            sit: situations::SitSlot::default(),
        }
    }
}

/// The kernel: machine, objects, the architecture's routines and knobs, the monitor.
pub struct Kernel {
    m: RefCell<Machine>,
    s: RefCell<MmState>,
    hooks: Box<dyn ArchHooks>,
    config: ArchConfig,
    slots: Vec<CpuSlot>,
    layout: PteLayout,
    /// Observations, when recording ([`monitor`]).
    obs: RefCell<Option<Vec<Observation>>>,
    /// The CPU whose routine runs now (the last one resumed from a preemption point).
    running: Cell<CpuId>,
    /// The situations met so far ([`situations`]).
    sit: RefCell<situations::Situations>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The preemption point followed by the work of one machine action, as one future: on its
/// first poll it records `action` as the CPU's next action and yields; on the second it
/// marks the CPU as running and performs `then`. It behaves exactly as
/// `async { k.step(cpu, action).await; then() }` does, in one state machine instead of three
/// nested ones (each micro-step of a primitive polls it).
pub(crate) struct StepThen<'k, F> {
    k: &'k Kernel,
    cpu: CpuId,
    action: Action,
    yielded: bool,
    then: Option<F>,
}

impl<T, F: FnOnce() -> T + Unpin> Future for StepThen<'_, F> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        if !this.yielded {
            this.k.slots[this.cpu.index()].pending.set(this.action);
            this.yielded = true;
            return Poll::Pending;
        }
        this.k.running.set(this.cpu);
        let then = this.then.take().expect("a step polled after it completed");
        Poll::Ready(then())
    }
}

impl Kernel {
    /// A kernel on `machine` with the architecture's routines `hooks` and knobs `config`. The
    /// machine's miss handlers take the policy of `config`.
    pub fn new(mut machine: Machine, hooks: Box<dyn ArchHooks>, config: ArchConfig) -> Self {
        machine.policy = config.miss;
        let s = MmState::new(machine.config());
        let ncpus = machine.ncpus();
        Kernel {
            m: RefCell::new(machine),
            s: RefCell::new(s),
            hooks,
            config,
            slots: (0..ncpus).map(|_| CpuSlot::new()).collect(),
            layout: config.miss.layout,
            obs: RefCell::new(None),
            running: Cell::new(CpuId(0)),
            sit: RefCell::new(situations::Situations::default()),
        }
    }

    /// The current micro-step.
    pub fn now(&self) -> u64 {
        self.m.borrow().step
    }

    /// The architecture's routines on `cpu`: how generic code calls the lineage (the outermost
    /// routines, so a patch applies everywhere).
    pub fn arch(&self, cpu: CpuId) -> Arch<'_> {
        self.cx(cpu).arch()
    }

    /// The handle arch code runs with on `cpu` (for tools that run arch code outside a
    /// routine, such as the cost model).
    pub fn cx(&self, cpu: CpuId) -> ArchCtx<'_> {
        ArchCtx::new(self, cpu)
    }

    /// The routines as stored (for [`ArchCtx`]).
    pub(crate) fn hooks(&self) -> &dyn ArchHooks {
        &*self.hooks
    }

    /// The architecture's knobs.
    pub fn arch_config(&self) -> &ArchConfig {
        &self.config
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

    /// The mm of the process `cpu` runs (`current->mm`): the mm the current operation runs
    /// in, `None` for kernel threads (reclaim) and for operations of no process of the
    /// workload (`write(2)` on a file, `access_process_vm` by its tracer: the target's mm is
    /// never current there).
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
    pub fn step(&self, cpu: CpuId, action: Action) -> impl Future<Output = ()> + '_ {
        self.step_then(cpu, action, || ())
    }

    /// The preemption point, then `then` (the action itself) once the CPU is resumed: what
    /// `self.step(cpu, action).await; then()` does, as one future.
    pub(crate) fn step_then<T, F: FnOnce() -> T + Unpin>(
        &self, cpu: CpuId, action: Action, then: F,
    ) -> StepThen<'_, F> {
        StepThen { k: self, cpu, action, yielded: false, then: Some(then) }
    }

    /// A labelled preemption point with no action (for tests and timelines).
    pub async fn label(&self, cpu: CpuId, label: &'static str) {
        self.step(cpu, Action::Label(label)).await
    }
}

#[cfg(test)]
mod tests;
