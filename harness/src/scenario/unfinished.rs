//! Scenarios that did not finish: a deadlock, a livelock, or a run that used up its step
//! budget. They are an outcome of their own, never mistaken for a clean run.

use serde::{Deserialize, Serialize};
use vipt_emu::addr::PAGE_SIZE;
use vipt_emu::config::MachineConfig;
use vipt_emu::mm::fault::MAX_ACCESS_RETRIES;

use crate::workload::{MAX_FILE_PAGES, WORDS, WOp, Workload};

/// Why a scenario did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfinishedKind {
    /// No CPU could move: every busy CPU waited for a lock, or an operation waited at the
    /// workload gate with nothing running.
    Deadlock,
    /// An operation kept failing and retrying until the core's retry bound stopped it.
    Livelock,
    /// The run used up its step budget ([`step_budget`]).
    StepBudget,
}

impl UnfinishedKind {
    /// The name messages and JSON use: `deadlock`, `livelock`, `step budget`.
    pub fn name(self) -> &'static str {
        match self {
            UnfinishedKind::Deadlock => "deadlock",
            UnfinishedKind::Livelock => "livelock",
            UnfinishedKind::StepBudget => "step budget",
        }
    }
}

impl std::fmt::Display for UnfinishedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A scenario that stopped before its programs and the read-back were done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unfinished {
    /// Deadlock, livelock or step budget.
    pub kind: UnfinishedKind,
    /// The step at which the run stopped.
    pub step: u64,
    /// What happened, for people.
    pub detail: String,
}

impl Unfinished {
    /// One line: the kind, what happened, the step.
    pub fn summary(&self) -> String {
        format!("{}: {} (step {})", self.kind, self.detail, self.step)
    }

    /// What a reproducer of this run expects: the kind and the step (a replay is bit for bit,
    /// so the same run stops at the same step).
    pub fn fingerprint(&self) -> String {
        format!("unfinished {}@{}", self.kind, self.step)
    }

    /// The class shrinking preserves: `unfinished: <kind>`.
    pub fn class(&self) -> String {
        format!("unfinished: {}", self.kind)
    }
}

/// How many times the budget lets one operation run the most expensive routine of the machine
/// (the core's bound on the retries of one access).
pub const ROUTINES_PER_OP: u64 = MAX_ACCESS_RETRIES as u64;

/// The micro-steps of the most expensive routine on a machine of `mc`: a whole-cache flush
/// counted one step per set per CPU, as if no step covered empty sets, plus a page's worth of
/// line copies and flushes and a fixed allowance for the PTE, lock and TLB steps around them.
pub fn routine_steps(mc: &MachineConfig) -> u64 {
    let lines = PAGE_SIZE / mc.line_bytes;
    (mc.sets * mc.cpus) as u64 + 4 * lines + 256
}

/// The operations a run of `w` can perform, set-up and read-back included: the set-up
/// mappings, the programs' operations, and a read-back of every word of every mapping of
/// every process that can exist (initial ones and one child per `fork`) and of every file page.
pub fn run_ops_bound(w: &Workload) -> u64 {
    let forks = w.programs.iter().flatten().filter(|op| matches!(op, WOp::Fork { .. })).count() as u64;
    let procs = w.procs as u64 + forks;
    let map_pages: u64 = w.maps.iter().map(|m| m.pages).sum();
    let readback = procs * map_pages * WORDS.len() as u64 + w.files.len() as u64 * MAX_FILE_PAGES;
    // One more per file for a family's final operations.
    w.maps.len() as u64 + w.ops() as u64 + readback + w.files.len() as u64 + 1
}

/// The step budget of a run of `w` on a machine of `mc`: every operation it can perform
/// ([`run_ops_bound`]) running the machine's most expensive routine ([`routine_steps`])
/// [`ROUTINES_PER_OP`] times. Correct kernels stay far below it: over thousands of seeds the
/// hungriest `whole-cache` scenario on `rp3440`, where a flush of every cache passes 262 144
/// sets, would use under 2 % of it even if every set flushed were a step of its own. A run
/// that reaches it is reported as unfinished, never as clean.
pub fn step_budget(w: &Workload, mc: &MachineConfig) -> u64 {
    run_ops_bound(w).saturating_mul(ROUTINES_PER_OP).saturating_mul(routine_steps(mc))
}
