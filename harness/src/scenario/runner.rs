//! The runner: the driving loop of a scenario. It sets the workload up with operations run one
//! at a time, then runs the programs concurrently under the executor — resolving and admitting
//! each CPU's next operation, stepping whichever CPU the scheduler picks, feeding every
//! observation to the judge, and applying each completed operation to the shadow model — and
//! finally runs what the family check wants run once the programs are done.

use vipt_emu::addr::{CpuId, VirtAddr};
use vipt_emu::mm::{Errno, Executor, Kernel, Obs, Observation, Op, OpResult, StepError};

use super::RunConfig;
use super::admit::Rules;
use super::family::FamilyCheck;
use super::judge::Judge;
use super::resolve::{Flight, resolve};
use super::shadow::Shadow;
use super::timeline::{TimelineEntry, TimelineEvent};
use super::unfinished::{Unfinished, UnfinishedKind};
use crate::oracle::PageLoc;
use crate::workload::{WOp, Workload};

/// The state of one run.
pub(super) struct Runner<'k> {
    /// The kernel under test (and through it the machine).
    pub(super) k: &'k Kernel,
    /// Its executor: one task per CPU; its step count is the run's clock.
    pub(super) ex: Executor<'k>,
    /// The workload being run.
    w: &'k Workload,
    /// What the workload created, as far as the completed operations tell.
    pub(super) shadow: Shadow,
    /// Per CPU: the operation it runs, from its start until the step it completes.
    flights: Vec<Option<Flight>>,
    /// The oracle and everything judged.
    pub(super) judge: Judge,
    /// The workload rules in force.
    rules: Rules,
    /// Cache colours of the machine (1 when physically indexed).
    colours: u64,
    /// Per CPU: the index of the next operation of its program to resolve; every operation
    /// before it has started or was skipped.
    pc: Vec<usize>,
    /// Buffer the observations of a step are drained into (empty between drains).
    obs: Vec<Observation>,
    /// Operations completed, set-up and read-back included.
    pub(super) ops: usize,
    /// When tracing: the operations as they began and ended, in that order.
    pub(super) timeline: Option<Vec<TimelineEntry>>,
    /// Why the run did not finish (deadlock, livelock, step budget); the run stops there.
    pub(super) unfinished: Option<Unfinished>,
    /// The step budget: the run stops once it has taken this many steps.
    budget: u64,
    /// Admission may have changed since [`Runner::spawn_ready`] last ran: what it decides
    /// depends only on the idle CPUs, the claims of the running operations and the shadow
    /// model, which change only when an operation completes or the judge adopts a page
    /// (`Obs::Installed`). Between two such events it would start nothing, so it is skipped.
    readmit: bool,
}

impl<'k> Runner<'k> {
    /// A runner for `w` on `k`, a machine with `colours` cache colours, judging with the
    /// family check `check`.
    pub(super) fn new(
        k: &'k Kernel, w: &'k Workload, cfg: &RunConfig, colours: u64, budget: u64,
        check: Option<Box<dyn FamilyCheck>>,
    ) -> Self {
        Runner {
            k,
            ex: Executor::new(k),
            w,
            shadow: Shadow::new(w.cpus as usize),
            flights: vec![None; w.cpus as usize],
            judge: Judge::new(cfg.corrupt_load, check),
            rules: Rules {
                racy_teardown: cfg.racy_teardown,
                racy_poke: cfg.racy_poke,
                move_shared_anon: cfg.move_shared_anon,
            },
            colours,
            pc: vec![0; w.cpus as usize],
            obs: Vec::new(),
            ops: 0,
            timeline: cfg.trace.then(Vec::new),
            unfinished: None,
            budget,
            readmit: true,
        }
    }

    /// The current step.
    pub(super) fn now(&self) -> u64 {
        self.ex.steps
    }

    /// Records why the run does not finish, unless a reason is already recorded. A livelock
    /// lets the concurrent phase go on (a violation may still follow); the others stop it.
    fn stop(&mut self, kind: UnfinishedKind, detail: String) {
        let step = self.now();
        self.unfinished.get_or_insert(Unfinished { kind, step, detail });
    }

    /// Stops the run with a deadlock: no busy CPU can move. Names what each one waits for.
    fn deadlock(&mut self, what: &str) {
        let waits: Vec<String> = (0..self.k.ncpus())
            .map(|c| CpuId(c as u8))
            .filter(|&c| !self.ex.is_idle(c))
            .map(|c| format!("{c:?} at {:?}", self.k.pending(c)))
            .collect();
        self.stop(UnfinishedKind::Deadlock, format!("{what}: {}", waits.join(", ")));
    }

    /// Has the run used up its step budget? If so it stops there.
    fn over_budget(&mut self) -> bool {
        let over = self.ex.steps >= self.budget;
        if over {
            let detail = format!("the run used up its budget of {} micro-steps", self.budget);
            self.stop(UnfinishedKind::StepBudget, detail);
        }
        over
    }

    /// Runs `op` alone on CPU 0 to its end (set-up and read-back), within the step budget.
    /// Once the run has stopped, runs nothing and returns `Err(Again)`.
    pub(super) fn sequential(&mut self, op: Op) -> OpResult {
        if self.unfinished.is_some() {
            return OpResult::Err(Errno::Again);
        }
        let name = op.name();
        self.ex.spawn(CpuId(0), op);
        let r = loop {
            if self.over_budget() {
                return OpResult::Err(Errno::Again);
            }
            match self.ex.step_cpu(CpuId(0)) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(e) => {
                    self.deadlock(&format!("{name} (set-up or read-back): {e}"));
                    return OpResult::Err(Errno::Again);
                }
            }
        };
        self.ops += 1;
        r
    }

    /// Creates the workload's files, initial processes and mappings.
    pub(super) fn setup(&mut self) {
        for f in &self.w.files {
            let file = if f.shmem {
                self.k.create_shmem_file(f.pages, f.colour)
            } else {
                self.k.create_file(f.pages, f.colour)
            };
            self.shadow.files.push(file);
        }
        for _ in 0..self.w.procs {
            self.shadow.add_proc(self.k.create_mm().expect("frames for the initial processes"));
        }
        for (i, r) in self.w.rings.iter().enumerate() {
            let id = self.k.create_ring(r.colour).expect("frames for the kernel buffers");
            let colour = self.k.ring_pages(id)[0].kernel_va().vpn().raw();
            self.shadow.rings.push((id, PageLoc::Ring { ring: i as u8 }, colour));
        }
        for spec in &self.w.maps {
            let p = spec.proc as usize;
            let mm = self.shadow.procs[p].mm;
            let op = self.shadow.map_op(mm, spec.kind, spec.pages, spec.fixed.map(VirtAddr::new));
            let va = match op.map(|op| self.sequential(op)) {
                Some(OpResult::Mapped(va)) => Some(va),
                _ => None,
            };
            self.shadow.add_map(p, spec.kind, spec.pages, va, &mut self.judge.oracle);
        }
        self.drain();
    }

    /// Starts the next operation of every idle CPU that may start one.
    fn spawn_ready(&mut self) {
        if !std::mem::take(&mut self.readmit) {
            return;
        }
        for cpu in 0..self.w.cpus as usize {
            while self.flights[cpu].is_none() && self.pc[cpu] < self.w.programs[cpu].len() {
                let index = self.pc[cpu];
                let op = self.w.programs[cpu][index];
                let Some(mut f) = resolve(&self.shadow, &self.rules, self.colours, cpu, index, op) else {
                    self.pc[cpu] += 1;
                    continue;
                };
                let running = self.flights.iter().flatten().map(|g| &g.claims);
                if !self.rules.may_start(&self.shadow, &f.claims, running) {
                    break;
                }
                self.pc[cpu] += 1;
                f.start = self.now();
                self.judge.op_started(&mut f);
                if let Some(t) = &mut self.timeline {
                    let event = TimelineEvent::Begin { index, op };
                    t.push(TimelineEntry { step: f.start, cpu: CpuId(cpu as u8), event });
                }
                self.ex.spawn(CpuId(cpu as u8), f.emu);
                self.flights[cpu] = Some(f);
            }
        }
    }

    /// The concurrent phase: every program to its end, or until the run goes wrong, the page
    /// tables are corrupt, or the step budget is used up.
    pub(super) fn concurrent(&mut self) {
        loop {
            if self.over_budget() {
                break;
            }
            self.spawn_ready();
            match self.ex.schedule_step() {
                Ok(None) => {
                    if self.pc.iter().zip(&self.w.programs).all(|(&pc, p)| pc >= p.len()) {
                        break;
                    }
                    // Every CPU idle but some operation waits at the gate: the gate only
                    // waits on running operations, so this is a bug of the harness.
                    let waiting: Vec<String> = (0..self.w.cpus as usize)
                        .filter(|&c| self.pc[c] < self.w.programs[c].len())
                        .map(|c| format!("cpu{c} operation {}", self.pc[c]))
                        .collect();
                    let detail =
                        format!("every CPU is idle but the workload gate holds back {}", waiting.join(", "));
                    self.stop(UnfinishedKind::Deadlock, detail);
                    break;
                }
                Ok(Some((cpu, done))) => {
                    self.drain();
                    if self.judge.fatal {
                        break;
                    }
                    if let Some(result) = done {
                        self.complete(cpu.index(), result);
                    }
                }
                Err(StepError::Deadlock) => {
                    self.deadlock("every busy CPU waits for a lock");
                    break;
                }
                Err(e) => {
                    self.deadlock(&e.to_string());
                    break;
                }
            }
        }
        self.drain();
    }

    /// CPU `cpu`'s operation completed with `result`.
    fn complete(&mut self, cpu: usize, result: OpResult) {
        let Some(f) = self.flights[cpu].take() else { return };
        self.readmit = true;
        self.ops += 1;
        let now = self.now();
        self.judge.op_finished(&self.shadow, &f, result, now);
        if let Some(t) = &mut self.timeline {
            let event = TimelineEvent::End { index: f.index, op: f.op.name(), result };
            t.push(TimelineEntry { step: now, cpu: CpuId(cpu as u8), event });
        }
        if result == OpResult::Err(Errno::Again) && !matches!(f.op, WOp::Futex { .. }) {
            let detail =
                format!("{} (cpu{cpu} operation {}) gave up at the core's retry bound", f.op.name(), f.index);
            self.stop(UnfinishedKind::Livelock, detail);
        }
        self.shadow.completed(cpu, f.op, f.proc, f.map, result, &mut self.judge.oracle);
        self.k.machine().chooser().op_finished(CpuId(cpu as u8));
    }

    /// Feeds the observations of the last step to the judge.
    #[inline]
    pub(super) fn drain(&mut self) {
        self.k.drain_observations(&mut self.obs);
        if !self.obs.is_empty() {
            self.judge_drained();
        }
    }

    /// Judges the observations [`Runner::drain`] took.
    #[inline(never)]
    fn judge_drained(&mut self) {
        let mut obs = std::mem::take(&mut self.obs);
        for o in obs.drain(..) {
            self.readmit |= matches!(o.obs, Obs::Installed { .. });
            self.judge.observe(o, self.k, &mut self.shadow, &mut self.flights);
        }
        self.obs = obs;
    }

    /// Once the programs are done: the family check's final operations, then its verdict.
    pub(super) fn final_checks(&mut self) {
        for op in self.judge.final_ops(&self.shadow) {
            self.sequential(op);
            self.drain();
        }
        self.judge.at_end();
    }
}
