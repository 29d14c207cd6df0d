//! Explanation: what a report says about each violation, from the machine trace — where a
//! loaded value came from, the writes of the word, the history of the cache lines its values
//! went through, the nullified flushes before it, and the operations around it.

use std::fmt::Write as _;

use vipt_emu::addr::VirtAddr;
use vipt_emu::machine::Machine;
use vipt_emu::trace::What;

use super::timeline::TimelineEntry;
use crate::oracle::{Oracle, ViolationKind};

/// How many steps before a violation's start an operation in the timeline still counts as
/// overlapping it.
const OVERLAP_STEPS: u64 = 2000;

/// Where the load of this step got its value: which CPU's line, at which set and virtual way
/// (together the alias's colour), and whether it was already cached or filled from memory now.
pub(super) fn read_source(m: &Machine) -> String {
    let line = m.config().line_bytes;
    match m.last_read {
        Some(r) => format!(
            "value read from cpu{}'s line at set {} virtual way {} (physical line {:#x}), {}",
            r.cpu.0,
            r.set,
            r.alias,
            r.tag * line,
            if r.hit { "a line already in the cache" } else { "filled from memory by this load" }
        ),
        None => "value source unknown".into(),
    }
}

/// Adds, to each violation of `oracle`, where the wrong value sat and the history of that
/// line, and the operations of `timeline` around it. Needs the machine's trace: without one,
/// nothing is added.
pub(super) fn explain_violations(m: &Machine, oracle: &mut Oracle, timeline: Option<&[TimelineEntry]>) {
    let Some(trace) = &m.trace else { return };
    let line_bytes = m.config().line_bytes;
    let mut violations = std::mem::take(&mut oracle.violations);
    for v in &mut violations {
        // Which stores wrote the observed and the expected values.
        for w in oracle.history(v.loc) {
            v.detail.push(format!(
                "write {:#x} by {} over steps {}..={}",
                w.value,
                w.by,
                w.start,
                if w.end == u64::MAX { "running".to_string() } else { w.end.to_string() }
            ));
        }
        // The cache lines of the word's physical line(s) that stores of these values went
        // through, and every event on them.
        let (values, source_line) = match &v.kind {
            ViolationKind::WrongValue { observed, allowed, source_line, .. } => {
                (allowed.iter().copied().chain([*observed]).collect(), *source_line)
            }
            ViolationKind::Broken { .. } => (Vec::new(), None),
        };
        let mut tags: Vec<u64> = trace
            .events
            .iter()
            .filter_map(|e| match e.what {
                What::Store { tag, value, .. } if values.contains(&value) => Some(tag),
                _ => None,
            })
            .collect();
        tags.extend(source_line);
        tags.sort_unstable();
        tags.dedup();
        for tag in tags {
            let mut s = format!("line pa {:#x}:", tag * line_bytes);
            for e in trace.line_history(tag).filter(|e| e.step <= v.step) {
                let _ = write!(s, "\n    step {:>6} cpu{} {:?}", e.step, e.cpu.0, e.what);
            }
            v.detail.push(s);
        }
        // Nullified flushes before the read, one line per run of consecutive ones.
        let mut runs: Vec<(u64, u64, u8, String, VirtAddr, VirtAddr, usize)> = Vec::new();
        for e in trace.events.iter().filter(|e| e.step <= v.step) {
            if let What::Nullified { insn, space, va } = e.what {
                let name = format!("{insn:?} {space}");
                match runs.last_mut() {
                    Some(r) if r.2 == e.cpu.0 && r.3 == name && e.step <= r.1 + 8 => {
                        r.1 = e.step;
                        r.5 = va;
                        r.6 += 1;
                    }
                    _ => runs.push((e.step, e.step, e.cpu.0, name, va, va, 1)),
                }
            }
        }
        for (a, b, cpu, name, lo, hi, n) in runs {
            v.detail.push(format!(
                "steps {a}..={b}: cpu{cpu}: {n} × {name} nullified (no translation), {lo}..={hi}"
            ));
        }
        if let Some(tl) = timeline {
            v.overlapping = tl
                .iter()
                .filter(|e| e.step + OVERLAP_STEPS >= v.start() && e.step <= v.step)
                .map(TimelineEntry::to_string)
                .collect();
        }
    }
    oracle.violations = violations;
}
