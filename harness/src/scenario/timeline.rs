//! The timeline of a traced run: when each operation of the programs began and ended, and
//! every micro-step, as typed entries in step order that render as the report's lines.

use std::fmt;

use vipt_emu::addr::CpuId;
use vipt_emu::mm::{Action, OpResult};

use crate::workload::WOp;

/// One entry of a run's timeline: at a step, on a CPU, an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The micro-step count when it happened.
    pub step: u64,
    /// The CPU.
    pub cpu: CpuId,
    /// What happened.
    pub event: TimelineEvent,
}

/// What a timeline entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineEvent {
    /// Operation `index` of the CPU's program began.
    Begin {
        /// Its index in the program.
        index: usize,
        /// The operation.
        op: WOp,
    },
    /// Operation `index` of the CPU's program completed.
    End {
        /// Its index in the program.
        index: usize,
        /// Its name ([`WOp::name`]).
        op: &'static str,
        /// What it returned.
        result: OpResult,
    },
    /// The CPU performed a micro-step.
    Step(Action),
}

impl TimelineEntry {
    /// Is it a micro-step (rather than an operation's begin or end)?
    pub fn is_step(&self) -> bool {
        matches!(self.event, TimelineEvent::Step(_))
    }
}

impl fmt::Display for TimelineEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, cpu) = (self.step, self.cpu.0);
        match self.event {
            TimelineEvent::Begin { index, op } => write!(f, "{step:>6} cpu{cpu} begin #{index} {op:?}"),
            TimelineEvent::End { index, op, result } => {
                write!(f, "{step:>6} cpu{cpu} end   #{index} {op} -> {result}")
            }
            TimelineEvent::Step(a) => write!(f, "{step:>6} cpu{cpu}   . {a:?}"),
        }
    }
}

/// Adds the executor's log of micro-steps (step, CPU, action) to the operations of `timeline`
/// and puts everything in step order. The sort is stable: entries of one step keep their
/// order, operations before micro-steps.
pub(super) fn add_steps(timeline: &mut Vec<TimelineEntry>, log: Vec<(u64, CpuId, Action)>) {
    timeline.extend(log.into_iter().map(|(step, cpu, a)| TimelineEntry {
        step,
        cpu,
        event: TimelineEvent::Step(a),
    }));
    timeline.sort_by_key(|e| e.step);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Proc;

    #[test]
    fn entries_render_as_report_lines_in_a_stable_step_order() {
        let load = WOp::Load { proc: Proc::Init(0), map: 1, page: 0, word: 17 };
        let mut tl = vec![
            TimelineEntry { step: 29, cpu: CpuId(2), event: TimelineEvent::Begin { index: 0, op: load } },
            TimelineEntry {
                step: 1032,
                cpu: CpuId(2),
                event: TimelineEvent::End { index: 0, op: load.name(), result: OpResult::Value(5) },
            },
        ];
        add_steps(&mut tl, vec![(1032, CpuId(1), Action::Idle), (30, CpuId(2), Action::Begin("load"))]);
        let lines: Vec<String> = tl.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "    29 cpu2 begin #0 Load { proc: Init(0), map: 1, page: 0, word: 17 }".to_string(),
                "    30 cpu2   . Begin(\"load\")".into(),
                format!("  1032 cpu2 end   #0 load -> {}", OpResult::Value(5)),
                "  1032 cpu1   . Idle".into(),
            ]
        );
        assert_eq!(tl.iter().map(TimelineEntry::is_step).collect::<Vec<_>>(), [false, true, false, true]);
    }
}
