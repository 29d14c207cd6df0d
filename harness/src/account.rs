//! The account of a violation in kernel terms, from a traced run: which operation read what,
//! where the value it should have seen sat, which kernel routines ran on the page in between
//! and which of them missed the line (or which stale TLB entry was used), with the lineage's
//! own comment on the routine; and the spans ([`RoutineSpan`], [`OpSpan`]) the drawing uses.

use vipt_emu::addr::{CpuId, PAGE_SIZE};
use vipt_emu::mm::situations::Situation;
use vipt_emu::trace::{Insn, Trace, TraceEvent, What};
use vipt_tmpalias::comments::routine_comment;

use crate::oracle::{PageLoc, Violation, ViolationKind};
use crate::scenario::{Outcome, TimelineEvent};

/// One run of an arch routine on a CPU (from the trace's routine records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutineSpan {
    /// The CPU.
    pub cpu: CpuId,
    /// The routine's kernel name.
    pub name: &'static str,
    /// Step of its begin record.
    pub begin: u64,
    /// Step of its end record (the run's last step when it never ended).
    pub end: u64,
    /// How many routines enclose it (0: called by the core).
    pub depth: usize,
}

/// One operation of a CPU's program, from its begin to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSpan {
    /// The CPU.
    pub cpu: CpuId,
    /// Its index in the program (`cpuN#index`).
    pub index: usize,
    /// The operation as the timeline shows it.
    pub op: String,
    /// First step.
    pub begin: u64,
    /// Last step (the run's last when it never ended).
    pub end: u64,
    /// What it returned, when it ended.
    pub result: Option<String>,
}

/// The routine spans of `trace`, in order of their begin.
pub fn routine_spans(trace: &Trace, last_step: u64) -> Vec<RoutineSpan> {
    let mut open: Vec<Vec<usize>> = Vec::new();
    let mut spans: Vec<RoutineSpan> = Vec::new();
    for e in &trace.events {
        let What::Routine { name, begin } = e.what else { continue };
        let c = e.cpu.index();
        if open.len() <= c {
            open.resize(c + 1, Vec::new());
        }
        if begin {
            let depth = open[c].len();
            open[c].push(spans.len());
            spans.push(RoutineSpan { cpu: e.cpu, name, begin: e.step, end: last_step, depth });
        } else if let Some(i) = open[c].pop() {
            spans[i].end = e.step;
        }
    }
    spans
}

/// The operation spans of an outcome's timeline.
pub fn op_spans(o: &Outcome) -> Vec<OpSpan> {
    let mut spans: Vec<OpSpan> = Vec::new();
    for e in &o.timeline {
        match e.event {
            TimelineEvent::Begin { index, op } => spans.push(OpSpan {
                cpu: e.cpu,
                index,
                op: format!("{op:?}"),
                begin: e.step,
                end: o.steps,
                result: None,
            }),
            TimelineEvent::End { index, result, .. } => {
                if let Some(s) = spans.iter_mut().rev().find(|s| s.cpu == e.cpu && s.index == index) {
                    s.end = e.step;
                    s.result = Some(result.to_string());
                }
            }
            TimelineEvent::Step(_) => {}
        }
    }
    spans
}

/// The routines open on `cpu` at `step`, outermost first, as `a > b`.
fn routines_at(spans: &[RoutineSpan], cpu: CpuId, step: u64) -> Option<String> {
    let names: Vec<&str> =
        spans.iter().filter(|s| s.cpu == cpu && s.begin <= step && step <= s.end).map(|s| s.name).collect();
    (!names.is_empty()).then(|| names.join(" > "))
}

/// The operation running on `cpu` at `step`. An operation's own micro-steps come after the
/// step it begins at, which is the step its predecessor on that CPU ended at: a step both
/// share belongs to the one that ended there.
fn op_at(ops: &[OpSpan], cpu: CpuId, step: u64) -> Option<&OpSpan> {
    let on = |s: &&OpSpan| s.cpu == cpu && s.begin <= step && step <= s.end;
    ops.iter().filter(on).find(|s| s.begin < step).or_else(|| ops.iter().rev().find(on))
}

fn op_name(ops: &[OpSpan], cpu: CpuId, step: u64) -> String {
    match op_at(ops, cpu, step) {
        Some(s) => format!("cpu{}#{} {}", cpu.0, s.index, s.op),
        None => format!("cpu{} outside the programs (set-up or the final read-back)", cpu.0),
    }
}

/// The line a store put a value in.
#[derive(Clone, Copy)]
struct Holder {
    cpu: CpuId,
    set: u32,
    alias: u32,
    tag: u64,
    step: u64,
}

fn same_line(e: &TraceEvent, h: &Holder) -> bool {
    let (set, alias, tag) = match e.what {
        What::WriteBack { set, alias, tag }
        | What::Evict { set, alias, tag }
        | What::Invalidate { set, alias, tag, .. }
        | What::Store { set, alias, tag, .. }
        | What::Fill { set, alias, tag, .. } => (set, alias, tag),
        _ => return false,
    };
    e.cpu == h.cpu && set == h.set && alias == h.alias && tag == h.tag
}

/// The account of `o`'s first violation, as lines: empty without a trace or a violation.
/// `lineage` names the kernel (for its comments), `line_bytes` is the machine's line size.
pub fn account(o: &Outcome, lineage: &str, line_bytes: u64) -> Vec<String> {
    let (Some(trace), Some(v)) = (&o.trace, o.violations.first()) else { return Vec::new() };
    let spans = routine_spans(trace, o.steps);
    let ops = op_spans(o);
    let mut out = Vec::new();
    let reader = match v.by.index {
        Some(_) => op_name(&ops, CpuId(v.by.cpu), v.step),
        None => format!("{}, the read-back through the kernel at the end,", v.by),
    };
    match &v.kind {
        ViolationKind::WrongValue { observed, allowed, source_line, .. } => {
            wrong_value(
                &mut out,
                o,
                trace,
                v,
                &spans,
                &ops,
                lineage,
                line_bytes,
                *observed,
                allowed,
                *source_line,
                &reader,
            );
        }
        ViolationKind::Broken { invariant } => {
            out.push(format!("{invariant} at step {} by {reader}, on {}.", v.step, v.loc));
            for d in &v.detail {
                out.push(format!("  {d}"));
            }
            broken(&mut out, trace, v, &spans, &ops, lineage);
        }
    }
    if o.situations.get(Situation::DirtyDropped) > 0 {
        out.push(DIRTY_DROPPED.to_string());
    }
    if o.situations.get(Situation::SharedAnonColours) > 0 {
        out.push(SHARED_ANON_COLOURS.to_string());
    }
    out
}

/// What the account adds when the run met [`Situation::SharedAnonColours`].
pub const SHARED_ANON_COLOURS: &str = "This run mapped a page of shared anonymous memory at two colours (situation \
     shared_anon.colours): an mremap placed a MAP_SHARED|MAP_ANONYMOUS mapping by its shmem object's colour while its \
     other mappings have colour 0, so they are inequivalent aliases that no flush routine keeps coherent. The current \
     parisc placement does this: docs/FINDINGS.md, section 4.";

/// What the account adds when the run met [`Situation::DirtyDropped`].
pub const DIRTY_DROPPED: &str = "This run dropped a dirty bit (situation pte.dirty_dropped): a plain PTE store \
     replaced a PTE whose dirty bit was set after the storing operation first read it, so a store to the page is in \
     no dirty bit and reclaim may drop the page unwritten. The current parisc kernel has this window (the dirty-bit \
     trap takes no PTE lock): docs/FINDINGS.md, section 3.";

#[allow(clippy::too_many_arguments)]
fn wrong_value(
    out: &mut Vec<String>, o: &Outcome, trace: &Trace, v: &Violation, spans: &[RoutineSpan], ops: &[OpSpan],
    lineage: &str, line_bytes: u64, observed: u64, allowed: &[u64], source_line: Option<u64>, reader: &str,
) {
    let allowed_s: Vec<String> = allowed.iter().map(|a| format!("{a:#x}")).collect();
    out.push(format!(
        "{} by {reader} read {} over steps {}..={} and got {observed:#x}; the semantics allow {{{}}}.",
        v.kind,
        v.loc,
        v.start(),
        v.step,
        allowed_s.join(", ")
    ));
    // The store of the value it should have seen: the last one of an allowed value before the
    // read (a user store, or the kernel's store through its alias).
    let store = trace.events.iter().rfind(|e| {
        e.step <= v.step && matches!(e.what, What::Store { value, .. } if allowed.contains(&value))
    });
    let Some(store) = store else {
        out.push("No store of an allowed value is in the trace (the allowed value is what memory or the disk held first).".into());
        if let Some(e) = trace
            .events
            .iter()
            .rfind(|e| e.step <= v.step && matches!(e.what, What::Store { value, .. } if value == observed))
            && let What::Store { set, alias, tag, va, .. } = e.what
        {
            let by = routines_at(spans, e.cpu, e.step)
                .map_or("a user store".to_string(), |r| format!("inside {r}"));
            out.push(format!(
                "The value read, {observed:#x}, was stored at step {} by {} ({by}) through {va} into cpu{}'s line at set {set}, \
                 way {alias} (physical line {:#x}): a store the read should no longer see.",
                e.step,
                op_name(ops, e.cpu, e.step),
                e.cpu.0,
                tag * line_bytes
            ));
        }
        why_stale_fill(out, trace, v, spans, source_line);
        return;
    };
    let What::Store { set, alias, tag, va, value } = store.what else { unreachable!() };
    let h = Holder { cpu: store.cpu, set, alias, tag, step: store.step };
    let by = routines_at(spans, store.cpu, store.step)
        .map_or("a user store".to_string(), |r| format!("inside {r}"));
    out.push(format!(
        "{value:#x} was stored at step {} by {} ({by}) through {va} into cpu{}'s line at set {set}, virtual way {alias} \
         (physical line {:#x}).",
        store.step,
        op_name(ops, store.cpu, store.step),
        store.cpu.0,
        tag * line_bytes
    ));
    // What became of that line before the read.
    let fate = trace.events.iter().find(|e| {
        e.step > h.step
            && e.step <= v.step
            && same_line(e, &h)
            && matches!(e.what, What::WriteBack { .. } | What::Invalidate { .. } | What::Evict { .. })
    });
    let issuer = |step: u64| {
        trace
            .events
            .iter()
            .find(|e| e.step == step && matches!(e.what, What::Flush { .. } | What::Nullified { .. }))
            .and_then(|e| routines_at(spans, e.cpu, e.step).map(|r| format!("{r} on cpu{}", e.cpu.0)))
    };
    match fate.map(|e| (e.step, e.what)) {
        Some((s, What::Invalidate { by: Insn::Pdc, .. })) => out.push(format!(
            "That line was purged (pdc: invalidated without write-back, the value discarded) at step {s}{}.",
            issuer(s).map_or(String::new(), |r| format!(" by {r}"))
        )),
        Some((s, What::WriteBack { .. })) => {
            out.push(format!(
                "That line was written back at step {s}{}; the read found an older copy elsewhere.",
                issuer(s).map_or(String::new(), |r| format!(" by {r}"))
            ));
        }
        Some((s, What::Evict { .. })) => out.push(format!("That line was evicted at step {s}.")),
        Some((s, _)) => out.push(format!(
            "That line was invalidated at step {s}{}.",
            issuer(s).map_or(String::new(), |r| format!(" by {r}"))
        )),
        None => out.push(format!(
            "At the read the value still sat in that line, never written back: the line that holds {value:#x} is \
             cpu{}'s at set {set}, way {alias}.",
            h.cpu.0
        )),
    }
    let kept_until = fate.map_or(v.step, |e| e.step);
    let page_lines = PAGE_SIZE / line_bytes;
    let first_line = tag - tag % page_lines;
    let pfn = tag * line_bytes / PAGE_SIZE;
    // After it reached memory: older copies written over it, and the page's trips to and from
    // the disk.
    if let Some(f) = fate.filter(|e| matches!(e.what, What::WriteBack { .. } | What::Evict { .. })) {
        for e in trace.events.iter().filter(|e| e.step > f.step && e.step <= v.step) {
            match e.what {
                What::WriteBack { set: s2, alias: a2, tag: t2 } if t2 == tag && !same_line(e, &h) => {
                    let by = issuer(e.step).map_or(String::new(), |r| format!(" by {r}"));
                    out.push(format!(
                        "At step {} cpu{}'s older copy of the line (set {s2}, way {a2}) was written back over it{by}.",
                        e.step, e.cpu.0
                    ));
                }
                _ => {}
            }
        }
    }
    for e in trace.events.iter().filter(|e| e.step > h.step && e.step <= v.step) {
        if let What::Dma { pfn: p, to_memory } = e.what
            && p.raw() as u64 == pfn
        {
            out.push(format!(
                "At step {} {} ({}).",
                e.step,
                if to_memory {
                    "the disk was read into the page's frame"
                } else {
                    "the page's frame was written to the disk"
                },
                op_name(ops, e.cpu, e.step)
            ));
        }
    }
    if let Some(src) = source_line.filter(|s| *s / page_lines != tag / page_lines) {
        out.push(format!(
            "The read went to another frame (physical line {:#x}): the page was freed or dropped and read in again.",
            src * line_bytes
        ));
    }
    let fill = why_stale_fill(out, trace, v, spans, source_line.or(Some(tag)));
    let deadline = fill.map_or(v.step, |(f, _)| f);
    if let Some((f, rset)) = fill {
        if rset != set && source_line.is_none_or(|s| s == tag) {
            out.push(format!(
                "The two lines are inequivalent aliases of one physical line (set {rset} and set {set}): the cache keeps \
                 them coherent only if the kernel flushes the one before the other is used."
            ));
        }
        if let Some(fs) = fate.map(|e| e.step).filter(|fs| *fs > f) {
            out.push(format!(
                "The read took memory's copy at step {f}, before the value's line was written back at step {fs}."
            ));
        }
    }
    let kept_until = kept_until.min(deadline);
    // The routines that flushed lines of the page while the value sat in the line, and
    // whether they reached it.
    let on_page = |t: u64| t >= first_line && t < first_line + page_lines;
    let mut reported = 0;
    let mut missed: Vec<&'static str> = Vec::new();
    for s in spans.iter().filter(|s| s.depth == 0 && s.end >= h.step && s.begin <= kept_until) {
        let evs: Vec<&TraceEvent> =
            trace.events.iter().filter(|e| e.step >= s.begin && e.step <= s.end).collect();
        let flushes = evs
            .iter()
            .filter(|e| e.cpu == s.cpu && matches!(e.what, What::Flush { tag: t, .. } if on_page(t)))
            .count();
        let nullified =
            evs.iter().filter(|e| e.cpu == s.cpu && matches!(e.what, What::Nullified { .. })).count();
        let holds_read = s.cpu.0 == v.by.cpu && s.begin <= deadline && deadline <= s.end;
        if flushes == 0 && nullified == 0 && !holds_read {
            continue;
        }
        let reached_at = evs
            .iter()
            .find(|e| {
                e.step > h.step
                    && same_line(e, &h)
                    && matches!(e.what, What::WriteBack { .. } | What::Invalidate { .. })
                    && evs
                        .iter()
                        .any(|f| f.step == e.step && f.cpu == s.cpu && matches!(f.what, What::Flush { .. }))
            })
            .map(|e| e.step);
        let inner: Vec<&str> = spans
            .iter()
            .filter(|i| i.cpu == s.cpu && i.depth > 0 && i.begin >= s.begin && i.end <= s.end)
            .map(|i| i.name)
            .collect();
        let mut inner_d: Vec<&str> = inner.clone();
        inner_d.dedup();
        if reported == 0 {
            out.push(format!(
                "Kernel routines on the page while the value sat only in that line (steps {}..={kept_until}):",
                h.step
            ));
        }
        reported += 1;
        let verdict = match reached_at {
            Some(r) if r <= deadline => format!("it reached the line at step {r}"),
            Some(r) => format!(
                "it reached the line at step {r}, too late: the read had taken memory's copy at {deadline}"
            ),
            None => format!("it missed cpu{}'s line at set {set} (way {alias})", h.cpu.0),
        };
        out.push(format!(
            "  steps {}..={} cpu{} {}{} during {}{}: {flushes} flush(es) of the page's lines, {nullified} nullified (no translation) — {verdict}",
            s.begin,
            s.end,
            s.cpu.0,
            s.name,
            if inner_d.is_empty() { String::new() } else { format!(" (calling {})", inner_d.join(", ")) },
            op_at(ops, s.cpu, s.begin).map_or("set-up or read-back".to_string(), |o| format!("cpu{}#{}", s.cpu.0, o.index)),
            if holds_read { ", the routine that read the value" } else { "" },
        ));
        if reached_at.is_none_or(|r| r > deadline) && !missed.contains(&s.name) {
            missed.push(s.name);
        }
    }
    if reported == 0 {
        out.push(format!(
            "No kernel routine flushed a line of the page while the value sat only in that line (steps {}..={kept_until}): \
             nothing wrote it back before the read.",
            h.step
        ));
    }
    for name in missed {
        match routine_comment(lineage, name) {
            Some(c) => out.push(format!("{lineage} on {name}: {c}")),
            None => out.push(format!(
                "{lineage}'s source has no comment on {name} (a generic or inherited routine)."
            )),
        }
    }
    let _ = o;
}

/// Where the read's line came from, when the read filled it from memory or from another alias.
/// Returns the step and set of that fill.
fn why_stale_fill(
    out: &mut Vec<String>, trace: &Trace, v: &Violation, spans: &[RoutineSpan], line: Option<u64>,
) -> Option<(u64, u32)> {
    let tag = line?;
    let fill = trace.events.iter().rfind(|e| {
        e.step <= v.step && e.cpu.0 == v.by.cpu && matches!(e.what, What::Fill { tag: t, .. } if t == tag)
    });
    if let Some(e) = fill
        && let What::Fill { set, alias, speculative, .. } = e.what
    {
        let how = if speculative { "a speculative move-in" } else { "a fill from memory" };
        let inside = routines_at(spans, e.cpu, e.step).map_or(String::new(), |r| format!(" inside {r}"));
        out.push(format!(
            "The reader's line (cpu{} set {set}, way {alias}) came from {how} at step {}{inside}: memory did not hold the value.",
            e.cpu.0, e.step
        ));
        return Some((e.step, set));
    }
    None
}

/// The TLB and PTE history around a broken invariant.
fn broken(
    out: &mut Vec<String>, trace: &Trace, v: &Violation, spans: &[RoutineSpan], ops: &[OpSpan], lineage: &str,
) {
    let from = v.step.saturating_sub(2000);
    let pfn = match v.loc.page {
        PageLoc::Frame { pfn } => Some(pfn),
        _ => None,
    };
    let mut shown = 0;
    let mut routines: Vec<&'static str> = Vec::new();
    for e in trace.events.iter().filter(|e| e.step >= from && e.step <= v.step) {
        let line = match e.what {
            What::TlbInsert { space, va, pfn: p, flush_only, .. } if pfn.is_none_or(|f| f == p.raw()) => {
                format!("TLB insert {space} {va} -> {p}{}", if flush_only { " (flush-only)" } else { "" })
            }
            What::Purge { space, va, broadcast } => {
                format!("TLB purge {space} {va}{}", if broadcast { " on every CPU" } else { "" })
            }
            What::PurgeSpace { space } => format!("TLB purge of all of {space}"),
            What::PteSet { space, va, old, new } => format!("PTE {space} {va}: {old:?} -> {new:?}"),
            _ => continue,
        };
        if shown == 0 {
            out.push(format!("TLB and PTE events in the {} steps before it:", v.step - from));
        }
        shown += 1;
        if shown > 24 {
            continue;
        }
        let r = routines_at(spans, e.cpu, e.step);
        if let Some(s) =
            spans.iter().rfind(|s| s.cpu == e.cpu && s.depth == 0 && s.begin <= e.step && e.step <= s.end)
            && !routines.contains(&s.name)
        {
            routines.push(s.name);
        }
        out.push(format!(
            "  step {} cpu{} {line}{} ({})",
            e.step,
            e.cpu.0,
            r.map_or(String::new(), |r| format!(" in {r}")),
            op_name(ops, e.cpu, e.step)
        ));
    }
    if shown > 24 {
        out.push(format!("  … {} more (see --html or --steps)", shown - 24));
    }
    for name in routines {
        if let Some(c) = routine_comment(lineage, name) {
            out.push(format!("{lineage} on {name}: {c}"));
        }
    }
}

/// The legend of the report's notation.
pub const LEGEND: &[&str] = &[
    "cpu0#1       operation 1 (from 0) of CPU 0's program; cpu0(final) is the read-back at the end",
    "Init(2)      the workload's process 2; Child(0) the first process a fork created",
    "file0:page1:word7  a word of a file page; private#1:word7 a word of private page 1 (anonymous or a COW copy)",
    "sp0          address space 0 (sp0 is the kernel's; each process has its own)",
    "va:0x…       a virtual address; set/virtual way: where the line sits in the VIPT cache (its colour)",
    "allowed {…}  the values the read may return: the last write before it or one overlapping it",
    "             (allowed {} for a broken invariant, which has no value)",
    "N more violation(s) follow from it: later wrong reads the first one caused; only the first is explained",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn span(index: usize, begin: u64, end: u64) -> OpSpan {
        OpSpan { cpu: CpuId(0), index, op: format!("op{index}"), begin, end, result: None }
    }

    /// A store at the step where one operation ended and the next began is the ended one's:
    /// the next one's first micro-step comes later.
    #[test]
    fn a_step_shared_by_two_operations_belongs_to_the_one_that_ended_there() {
        let ops = [span(0, 3, 10), span(1, 10, 20), span(2, 20, 20), span(3, 20, 30)];
        assert_eq!(op_at(&ops, CpuId(0), 10).map(|s| s.index), Some(0));
        assert_eq!(op_at(&ops, CpuId(0), 11).map(|s| s.index), Some(1));
        assert_eq!(op_at(&ops, CpuId(0), 20).map(|s| s.index), Some(1));
        assert_eq!(op_at(&ops, CpuId(0), 21).map(|s| s.index), Some(3));
        // A step no operation ran yet (its begin) still names the operation that begins.
        assert_eq!(op_at(&ops, CpuId(0), 3).map(|s| s.index), Some(0));
        assert!(op_at(&ops, CpuId(1), 11).is_none());
    }
}
