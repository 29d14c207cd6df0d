//! The deterministic executor: one task (an operation's future) per CPU, polled one
//! micro-step at a time. No threads: which CPU moves next is the caller's or the chooser's
//! choice, so a run is a pure function of its choices.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use arrayvec::ArrayVec;

use crate::addr::CpuId;
use crate::choice::ChoiceKind;
use crate::mm::situations::OpClass;
use crate::mm::{Action, Kernel, Op, OpResult};

/// Speculative move-ins happen before a micro-step with probability `1 / SPECULATION_ODDS`
/// when enabled.
pub const SPECULATION_ODDS: u32 = 8;

/// Why the executor could not go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Every busy CPU waits for a lock: a deadlock (a bug of the core).
    #[error("deadlock: every busy CPU is blocked on a lock")]
    Deadlock,
    /// The CPU asked to run is blocked on a lock another CPU holds.
    #[error("{0:?} is blocked on a lock")]
    Blocked(CpuId),
    /// The CPU asked to run has no operation.
    #[error("{0:?} is idle")]
    Idle(CpuId),
    /// The step budget ran out.
    #[error("step limit reached")]
    StepLimit,
}

type Task<'k> = Pin<Box<dyn Future<Output = OpResult> + 'k>>;

/// What a busy CPU runs.
enum Running<'k> {
    /// An operation, in the CPU's [`OpSlot`].
    Op,
    /// An arbitrary routine ([`Executor::spawn_task`]).
    Task(Task<'k>),
}

/// A CPU's reusable home for an operation's future: allocated once, at the CPU's first
/// operation, and refilled in place for each later one (no allocation per operation). It runs
/// what [`Kernel::run_op`] runs, with `run_op`'s own work around the operation (the situation
/// detectors reset for its class on the first poll, and again once it completes) done by the
/// slot, so that each micro-step polls one nested future fewer.
trait OpSlot<'k> {
    /// Puts the future of `op` in the slot (which holds none).
    fn start(&mut self, op: Op);
    /// Polls the future in the slot; drops it once it completes.
    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<OpResult>;
    /// Drops the future in the slot, if any.
    fn clear(&mut self);
}

/// [`OpSlot`] of `cpu` on `k` for the futures `make` returns (`Kernel::run_op_inner`).
struct SlotOf<'k, M, F> {
    k: &'k Kernel,
    cpu: CpuId,
    make: M,
    fut: Pin<Box<Option<F>>>,
    /// The operation in the slot, until its first poll.
    unstarted: Option<Op>,
}

impl<'k, M: Fn(Op) -> F, F: Future<Output = OpResult> + 'k> OpSlot<'k> for SlotOf<'k, M, F> {
    fn start(&mut self, op: Op) {
        debug_assert!(self.fut.is_none());
        self.fut.set(Some((self.make)(op)));
        self.unstarted = Some(op);
    }

    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<OpResult> {
        let sit = &self.k.slots[self.cpu.index()].sit;
        if let Some(op) = self.unstarted.take() {
            sit.reset(OpClass::of(&op));
        }
        let r = self.fut.as_mut().as_pin_mut().expect("an operation in the slot").poll(cx);
        if r.is_ready() {
            self.fut.set(None);
            sit.reset(OpClass::Other);
        }
        r
    }

    fn clear(&mut self) {
        self.fut.set(None);
        self.unstarted = None;
    }
}

/// The operation slot of `cpu` on `k`.
fn op_slot<'k>(k: &'k Kernel, cpu: CpuId) -> Box<dyn OpSlot<'k> + 'k> {
    Box::new(SlotOf { k, cpu, make: move |op| k.run_op_inner(cpu, op), fut: Box::pin(None), unstarted: None })
}

/// Runs operations on the CPUs of a [`Kernel`].
pub struct Executor<'k> {
    k: &'k Kernel,
    tasks: Vec<Option<Running<'k>>>,
    /// Per CPU, once it has run an operation: the slot its operations run in.
    slots: Vec<Option<Box<dyn OpSlot<'k> + 'k>>>,
    /// Offer speculative move-ins in [`Executor::schedule_step`].
    pub speculation: bool,
    /// Micro-steps executed so far.
    pub steps: u64,
    /// When `Some`, every micro-step is logged: its number, CPU and the action performed.
    pub log: Option<Vec<(u64, CpuId, Action)>>,
}

thread_local! {
    /// Set while an [`Executor`] drops the operations it never completed.
    static ABANDONING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Is an executor dropping operations it never completed? Their guards (an announced install,
/// an owed TLB flush) go with them unsettled; the checks that they are settled are off then.
pub(crate) fn abandoning() -> bool {
    ABANDONING.with(|a| a.get())
}

impl Drop for Executor<'_> {
    /// Operations still running when the executor goes (a run stopped before its end) are
    /// dropped where they stand.
    fn drop(&mut self) {
        ABANDONING.with(|a| a.set(true));
        for (task, slot) in self.tasks.iter_mut().zip(&mut self.slots) {
            match task.take() {
                Some(Running::Op) => slot.as_mut().expect("the slot of a running operation").clear(),
                Some(Running::Task(t)) => drop(t),
                None => {}
            }
        }
        ABANDONING.with(|a| a.set(false));
    }
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("steps", &self.steps).finish_non_exhaustive()
    }
}

impl<'k> Executor<'k> {
    /// An executor with every CPU idle and speculation off.
    pub fn new(k: &'k Kernel) -> Self {
        let n = k.ncpus();
        Executor {
            k,
            tasks: (0..n).map(|_| None).collect(),
            slots: (0..n).map(|_| None).collect(),
            speculation: false,
            steps: 0,
            log: None,
        }
    }

    /// Starts `op` on `cpu`, which must be idle. Nothing runs until the CPU is stepped.
    pub fn spawn(&mut self, cpu: CpuId, op: Op) {
        assert!(self.tasks[cpu.index()].is_none(), "{cpu:?} is busy");
        let k = self.k;
        self.slots[cpu.index()].get_or_insert_with(|| op_slot(k, cpu)).start(op);
        self.tasks[cpu.index()] = Some(Running::Op);
        k.slots[cpu.index()].pending.set(Action::Begin(op.name()));
    }

    /// Starts an arbitrary kernel routine on `cpu`, which must be idle (for tools and
    /// benchmarks that run one hook, e.g. `flush_dcache_page`, as micro-steps).
    pub fn spawn_task(
        &mut self, cpu: CpuId, name: &'static str, task: Pin<Box<dyn Future<Output = OpResult> + 'k>>,
    ) {
        assert!(self.tasks[cpu.index()].is_none(), "{cpu:?} is busy");
        self.tasks[cpu.index()] = Some(Running::Task(task));
        self.k.slots[cpu.index()].pending.set(Action::Begin(name));
    }

    /// Is `cpu` without an operation?
    pub fn is_idle(&self, cpu: CpuId) -> bool {
        self.tasks[cpu.index()].is_none()
    }

    /// Are all CPUs idle?
    pub fn all_idle(&self) -> bool {
        self.tasks.iter().all(Option::is_none)
    }

    /// Busy CPUs that can make progress now.
    pub fn runnable(&self) -> ArrayVec<CpuId, 8> {
        self.busy_and_runnable().1
    }

    /// Is any CPU busy, and which busy CPUs can make progress now (in CPU order)?
    fn busy_and_runnable(&self) -> (bool, ArrayVec<CpuId, 8>) {
        let mut out = ArrayVec::new();
        let mut busy = false;
        for (i, t) in self.tasks.iter().enumerate() {
            if t.is_some() {
                busy = true;
                let c = CpuId(i as u8);
                if self.k.can_run(c) {
                    out.push(c);
                }
            }
        }
        (busy, out)
    }

    /// Performs `cpu`'s pending action and runs it to its next preemption point. Returns the
    /// operation's result if it completed.
    pub fn step_cpu(&mut self, cpu: CpuId) -> Result<Option<OpResult>, StepError> {
        if self.tasks[cpu.index()].is_none() {
            return Err(StepError::Idle(cpu));
        }
        if !self.k.can_run(cpu) {
            return Err(StepError::Blocked(cpu));
        }
        Ok(self.poll_cpu(cpu))
    }

    /// `step_cpu` for a CPU known to be busy and runnable.
    fn poll_cpu(&mut self, cpu: CpuId) -> Option<OpResult> {
        self.steps += 1;
        self.k.machine().step = self.steps;
        if let Some(log) = &mut self.log {
            log.push((self.steps, cpu, self.k.pending(cpu)));
        }
        let mut cx = Context::from_waker(Waker::noop());
        let polled = match self.tasks[cpu.index()].as_mut().expect("a busy CPU") {
            Running::Op => {
                self.slots[cpu.index()].as_mut().expect("the slot of a running operation").poll_op(&mut cx)
            }
            Running::Task(task) => task.as_mut().poll(&mut cx),
        };
        match polled {
            Poll::Ready(r) => {
                self.tasks[cpu.index()] = None;
                self.k.slots[cpu.index()].pending.set(Action::Idle);
                self.k.machine().chooser().op_finished(cpu);
                Some(r)
            }
            Poll::Pending => None,
        }
    }

    /// Runs `cpu` alone until its operation completes.
    pub fn run_to_completion(&mut self, cpu: CpuId) -> Result<OpResult, StepError> {
        loop {
            if let Some(r) = self.step_cpu(cpu)? {
                return Ok(r);
            }
        }
    }

    /// Runs `cpu` alone until its *pending* action satisfies `pred` (the action has not been
    /// performed yet), or its operation completes (then `Ok(Some(result))`).
    pub fn run_until(
        &mut self, cpu: CpuId, pred: impl Fn(&Action) -> bool,
    ) -> Result<Option<OpResult>, StepError> {
        loop {
            if let Some(r) = self.step_cpu(cpu)? {
                return Ok(Some(r));
            }
            if pred(&self.k.pending(cpu)) {
                return Ok(None);
            }
        }
    }

    /// One scheduling decision: maybe a speculative move-in, then one micro-step of a
    /// runnable CPU chosen by the machine's chooser. `Ok(None)` when every CPU is idle.
    pub fn schedule_step(&mut self) -> Result<Option<(CpuId, Option<OpResult>)>, StepError> {
        let (busy, runnable) = self.busy_and_runnable();
        if !busy {
            return Ok(None);
        }
        if runnable.is_empty() {
            return Err(StepError::Deadlock);
        }
        if self.speculation {
            let mut m = self.k.machine();
            if m.choose(ChoiceKind::Speculate, SPECULATION_ODDS) == 0 {
                let n = m.ncpus() as u32;
                let c = CpuId(m.choose(ChoiceKind::SpeculateWhere, n) as u8);
                if let Some(pfn) = m.speculate(c) {
                    drop(m);
                    self.k.sit_speculated(pfn);
                }
            }
        }
        let cpu = if runnable.len() == 1 {
            runnable[0]
        } else {
            let mut m = self.k.machine();
            let ch = m.chooser();
            if ch.sees_actions() {
                let pending: ArrayVec<Action, 8> = runnable.iter().map(|&c| self.k.pending(c)).collect();
                ch.next_cpu_seeing(&runnable, &pending)
            } else {
                ch.next_cpu(&runnable)
            }
        };
        let r = self.poll_cpu(cpu);
        Ok(Some((cpu, r)))
    }

    /// Runs the operations in `ops` one after another, each to completion on its CPU, with no
    /// interleaving (the sequential driver). Returns each result.
    pub fn run_sequential(&mut self, ops: &[(CpuId, Op)]) -> Result<Vec<OpResult>, StepError> {
        ops.iter()
            .map(|&(cpu, op)| {
                self.spawn(cpu, op);
                self.run_to_completion(cpu)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::VirtAddr;
    use crate::arch::{ArchConfig, GenericHooks};
    use crate::choice::SeededChooser;
    use crate::config::Preset;
    use crate::machine::Machine;
    use crate::mm::mmap::MmapArgs;

    fn kernel(seed: u64) -> Kernel {
        let m = Machine::new(Preset::Tiny.config(), Box::new(SeededChooser::new(seed)));
        Kernel::new(m, Box::new(GenericHooks), ArchConfig::GENERIC)
    }

    /// Runs `programs` (one list of operations per CPU, 0 and 1) concurrently, the scheduler's
    /// choices drawn from the kernel's seeded chooser, each operation started either in the
    /// CPU's reused slot (`spawn`) or as a fresh boxed future of [`Kernel::run_op`]
    /// (`spawn_task`); stops after `limit` steps, leaving the rest to be dropped. Returns the
    /// results, the step log with the operation class each CPU's situation detectors saw
    /// after each step, and the machine's counters and situations.
    #[allow(clippy::type_complexity)]
    fn drive(
        seed: u64, programs: &[Vec<Op>; 2], fresh_futures: bool, limit: u64,
    ) -> (
        Vec<(CpuId, OpResult)>,
        Vec<(u64, CpuId, Action)>,
        Vec<[OpClass; 2]>,
        crate::counters::Counters,
        String,
    ) {
        let k = kernel(seed);
        let mm = k.create_mm().unwrap();
        let mut ex = Executor::new(&k);
        ex.speculation = true;
        ex.log = Some(Vec::new());
        let args = MmapArgs { pages: 2, file: None, shared: false, writable: true, fixed: None };
        let base = match ex.run_sequential(&[(CpuId(0), Op::Mmap { mm, args })]).unwrap()[0] {
            OpResult::Mapped(va) => va,
            r => panic!("mmap: {r:?}"),
        };
        let at = |op: Op| match op {
            Op::Load { va, .. } => Op::Load { mm, va: base.add_bytes(va.raw()) },
            Op::Store { va, value, .. } => Op::Store { mm, va: base.add_bytes(va.raw()), value },
            Op::Munmap { pages, .. } => Op::Munmap { mm, va: base, pages },
            other => other,
        };
        let mut next = [0usize; 2];
        let mut results = Vec::new();
        let mut classes = Vec::new();
        while ex.steps < limit {
            for (c, program) in programs.iter().enumerate() {
                let cpu = CpuId(c as u8);
                if ex.is_idle(cpu) && next[c] < program.len() {
                    let op = at(program[next[c]]);
                    next[c] += 1;
                    if fresh_futures {
                        let k = &k;
                        ex.spawn_task(cpu, op.name(), Box::pin(k.run_op(cpu, op)));
                    } else {
                        ex.spawn(cpu, op);
                    }
                }
            }
            match ex.schedule_step().unwrap() {
                None => break,
                Some((cpu, Some(r))) => results.push((cpu, r)),
                Some((_, None)) => {}
            }
            classes.push([0, 1].map(|c| k.slots[c].sit.op.get()));
        }
        let log = ex.log.take().unwrap();
        drop(ex);
        let m = k.machine();
        (results, log, classes, m.counters, format!("{:?}", k.situations()))
    }

    quickcheck::quickcheck! {
        /// An operation run in a CPU's reused slot behaves exactly as a fresh future of
        /// `Kernel::run_op` does: the same results, the same micro-steps with the same actions,
        /// the same operation class seen by the situation detectors, the same counters and
        /// situations, whether the run ends or is stopped midway.
        fn reused_slots_run_operations_as_fresh_futures_do(
            seed: u64, ops: Vec<(u8, u8, u8)>, limit: u16
        ) -> bool {
            let mut programs: [Vec<Op>; 2] = [Vec::new(), Vec::new()];
            for (i, &(kind, cpu, word)) in ops.iter().take(24).enumerate() {
                let va = VirtAddr::new(u64::from(word % 16) * 512);
                let (mm, value) = (crate::mm::MmId(0), i as u64);
                let op = match kind % 8 {
                    0 => Op::Munmap { mm, va, pages: 2 },
                    1..=3 => Op::Store { mm, va, value },
                    _ => Op::Load { mm, va },
                };
                programs[usize::from(cpu % 2)].push(op);
            }
            let limit = u64::from(limit % 400) + 1;
            drive(seed, &programs, false, limit) == drive(seed, &programs, true, limit)
        }
    }
}
