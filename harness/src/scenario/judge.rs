//! Judging: each observation the core emits ([`Obs`]) becomes what the oracle records — a
//! write, a read to check, a broken invariant — for the logical word the observing operation
//! touches.
//!
//! A user access or a `write(2)`/`read(2)` word is judged at its step, against the word its
//! flight resolved to (or the page `get_user_pages` pinned). A COW copy is held until its
//! install: then it is judged as a read of its source and adopted as the first write of the new
//! private page, which the shadow model maps from then on. The core's invariant checks become
//! violations with one line of explanation; the family check ([`FamilyCheck`]) sees every
//! observation and every judged user store.

use vipt_emu::addr::{CpuId, Pfn};
use vipt_emu::machine::Machine;
use vipt_emu::mm::{Errno, Kernel, Mapping, Obs, Observation, Op, OpResult};

use super::explain::read_source;
use super::family::FamilyCheck;
use super::resolve::Flight;
use super::shadow::Shadow;
use crate::oracle::{Invariant, Loc, OpRef, Oracle, PageLoc, ReadKind, ViolationKind};
use crate::workload::{MAX_FILE_PAGES, WORDS, WOp};

/// A COW copy waiting for its install.
#[derive(Clone, Debug)]
struct PendingCopy {
    /// The copying CPU.
    cpu: CpuId,
    /// The frame copied into; the install of that frame by that CPU adopts the copy.
    new: Pfn,
    /// The copied value of each of [`WORDS`], read through the new frame.
    vals: [u64; WORDS.len()],
    /// The copy's interval, judged as a read of its source.
    start: u64,
    end: u64,
    /// The operation that copied.
    by: OpRef,
}

/// The judge's state.
pub(super) struct Judge {
    /// Every write and read of the run, and the violations found.
    pub(super) oracle: Oracle,
    /// COW copies made and not yet installed: at most one per CPU, dropped when its CPU
    /// starts another copy or its operation completes (the copy was abandoned).
    pending_copies: Vec<PendingCopy>,
    /// Fault injection: the number of the user load whose value is corrupted
    /// (`RunConfig::corrupt_load`).
    corrupt_load: Option<u64>,
    /// User loads judged so far (the number of the next one).
    pub(super) loads: u64,
    /// The page tables are corrupt (a cleared PTE was brought back to life): the run stops at
    /// once, as a real kernel would at its first "bad page map", before the core trips over
    /// the inconsistency.
    pub(super) fatal: bool,
    /// The check of the lineage's workload family, if it has one.
    check: Option<Box<dyn FamilyCheck>>,
}

/// The word `cpu`'s flight touches, its operation and its start.
fn flight_loc(sh: &Shadow, flights: &[Option<Flight>], cpu: usize) -> Option<(Loc, OpRef, u64)> {
    let f = flights[cpu].as_ref()?;
    let p = f.proc?;
    let pl = match f.pinned {
        Some(pl) => pl,
        None => sh.page_loc(p, f.map, f.page)?,
    };
    Some((Loc { page: pl, word: f.word }, f.by(), f.start))
}

/// The operation `cpu` is running, or just the CPU between operations.
fn current_op(flights: &[Option<Flight>], cpu: CpuId) -> OpRef {
    flights[cpu.index()].as_ref().map_or(OpRef { cpu: cpu.0, index: None }, Flight::by)
}

impl Judge {
    /// A judge with an empty oracle.
    pub(super) fn new(corrupt_load: Option<u64>, check: Option<Box<dyn FamilyCheck>>) -> Self {
        Judge {
            oracle: Oracle::new(),
            pending_copies: Vec::new(),
            corrupt_load,
            loads: 0,
            fatal: false,
            check,
        }
    }

    /// `f` starts at `f.start`: a truncate writes zeros beyond the new size for as long as
    /// it runs.
    pub(super) fn op_started(&mut self, f: &mut Flight) {
        if let WOp::Truncate { file, pages } = f.op {
            for pgoff in pages..MAX_FILE_PAGES {
                for word in WORDS {
                    let loc = Loc { page: PageLoc::File { file, pgoff }, word };
                    self.oracle.write(loc, f.start, u64::MAX, 0, f.by());
                    f.written.push(loc);
                }
            }
        }
    }

    /// `f` completed at step `now` with `result`: its open writes end, its pending copy is
    /// abandoned, and a futex that hit its retry bound is a livelock.
    pub(super) fn op_finished(&mut self, sh: &Shadow, f: &Flight, result: OpResult, now: u64) {
        self.pending_copies.retain(|c| c.cpu.index() != f.cpu);
        self.oracle.finish_writes(f.by(), now, &f.written);
        if let (WOp::Futex { word, .. }, OpResult::Err(Errno::Again)) = (f.op, result) {
            // The futex path's retry loop never made its atomic store succeed.
            if let Some(page) = f.proc.and_then(|p| sh.page_loc(p, f.map, f.page)) {
                self.oracle.flag(Invariant::Livelock, Loc { page, word }, now, f.by());
            }
        }
    }

    /// Judges a load of `loc` over `[start, end]` that returned `value`, at the step of the
    /// load: a violation says which line the value came from.
    pub(super) fn judge_load(
        &mut self, m: &Machine, kind: ReadKind, loc: Loc, (start, end): (u64, u64), value: u64, by: OpRef,
    ) {
        let line = m.last_read.map(|r| r.tag);
        if let Some(v) = self.oracle.read(kind, loc, start, end, value, by) {
            v.detail.push(read_source(m));
            if let ViolationKind::WrongValue { source_line, .. } = &mut v.kind {
                *source_line = line;
            }
        }
    }

    /// The operations the family check runs once the programs are done.
    pub(super) fn final_ops(&self, sh: &Shadow) -> Vec<Op> {
        self.check.as_ref().map_or_else(Vec::new, |c| c.final_ops(sh))
    }

    /// The family check's verdict, once its final operations ran.
    pub(super) fn at_end(&mut self) {
        if let Some(c) = &self.check {
            c.at_end(&mut self.oracle);
        }
    }

    /// Judges one observation. `flights` are the operations running, by CPU.
    pub(super) fn observe(
        &mut self, ob: Observation, k: &Kernel, sh: &mut Shadow, flights: &mut [Option<Flight>],
    ) {
        if let Some(c) = &mut self.check {
            c.on_observation(&ob, sh);
        }
        let (o, step) = (ob.obs, ob.step);
        match o {
            Obs::User { cpu, store, value, .. } => {
                let Some((loc, by, _)) = flight_loc(sh, flights, cpu.index()) else { return };
                match store {
                    Some(v) => {
                        self.oracle.write(loc, step, step, v, by);
                        if let Some(c) = &mut self.check {
                            c.on_user_store(loc, step, by);
                        }
                    }
                    None => {
                        let flip = self.corrupt_load == Some(self.loads);
                        self.loads += 1;
                        let value = if flip { value ^ (1 << 63) } else { value };
                        self.judge_load(&k.machine(), ReadKind::UserLoad, loc, (step, step), value, by);
                    }
                }
            }
            Obs::Remote { cpu, store, value, .. } => {
                if flights[cpu.index()].as_ref().is_some_and(|f| f.unjudged) {
                    return;
                }
                let Some((loc, by, start)) = flight_loc(sh, flights, cpu.index()) else { return };
                match store {
                    Some(v) => {
                        self.oracle.write(loc, start, u64::MAX, v, by);
                        if let Some(f) = &mut flights[cpu.index()] {
                            f.written.push(loc);
                        }
                    }
                    None => {
                        self.oracle.read(ReadKind::RemoteRead, loc, start, step, value, by);
                    }
                }
            }
            Obs::FileWrite { cpu, file, pgoff, word, value, .. } => {
                let Some(f) = &mut flights[cpu.index()] else { return };
                let fi = sh.file_index(file).unwrap_or(0);
                let loc = Loc { page: PageLoc::File { file: fi, pgoff }, word: word as u16 };
                f.written.push(loc);
                self.oracle.write(loc, f.start, u64::MAX, value, f.by());
            }
            Obs::RingWrite { cpu, ring, word, value, .. } => {
                let (Some(f), Some(page)) =
                    (&flights[cpu.index()], sh.ring_index(ring).and_then(|r| sh.ring_page(r)))
                else {
                    return;
                };
                self.oracle.write(Loc { page, word: word as u16 }, step, step, value, f.by());
            }
            Obs::RingRead { cpu, ring, word, value, .. } => {
                let Some(page) = sh.ring_index(ring).and_then(|r| sh.ring_page(r)) else { return };
                let by = current_op(flights, cpu);
                self.judge_load(
                    &k.machine(),
                    ReadKind::RingRead,
                    Loc { page, word: word as u16 },
                    (step, step),
                    value,
                    by,
                );
            }
            Obs::FileRead { cpu, file, pgoff, word, value } => {
                let Some(f) = &flights[cpu.index()] else { return };
                let fi = sh.file_index(file).unwrap_or(0);
                let loc = Loc { page: PageLoc::File { file: fi, pgoff }, word: word as u16 };
                self.oracle.read(ReadKind::FileRead, loc, f.start, step, value, f.by());
            }
            Obs::CowCopied { cpu, va, new, copy_start, .. } => {
                // Judged only once installed: a copy whose PTE changed meanwhile is discarded.
                let mut vals = [0u64; WORDS.len()];
                for (i, &w) in WORDS.iter().enumerate() {
                    vals[i] = k.machine().view_word(va.with_word(w as usize), new.word(w as usize));
                }
                let by = current_op(flights, cpu);
                // A CPU copies one page at a time; an earlier copy of its was abandoned.
                self.pending_copies.retain(|c| c.cpu != cpu);
                self.pending_copies.push(PendingCopy { cpu, new, vals, start: copy_start, end: step, by });
            }
            Obs::DirtyWithoutWrite { cpu, mm, va } => {
                let by = current_op(flights, cpu);
                if let Some(pl) = sh.logical_page(mm, va) {
                    self.oracle.flag(Invariant::DirtyWithoutWrite, Loc { page: pl, word: 0 }, step, by);
                }
            }
            // For the family check only.
            Obs::DirtySynced { .. } => {}
            Obs::FreedReachable { cpu, pfn, table, holder, walker } => {
                let by = current_op(flights, cpu);
                let what = if table { "page-table page" } else { "page" };
                let via = if walker { "from inside its gup_fast walk" } else { "through a TLB entry" };
                let detail = format!("{what} {pfn:?} freed while cpu{} can reach it {via}", holder.0);
                let loc = Loc { page: PageLoc::Frame { pfn: pfn.raw() }, word: 0 };
                self.oracle.flag(Invariant::FreedReachable, loc, step, by).detail.push(detail);
            }
            Obs::StaleTlb { cpu, mm, va, pfn, holder } => {
                let by = current_op(flights, cpu);
                let page = sh.logical_page(mm, va).unwrap_or(PageLoc::Frame { pfn: pfn.raw() });
                let detail = format!(
                    "after the gather's TLB flush cpu{} still translates {va} of {mm} to {pfn:?}",
                    holder.0
                );
                self.oracle.flag(Invariant::StaleTlb, Loc { page, word: 0 }, step, by).detail.push(detail);
            }
            Obs::PteResurrected { cpu, mm, va }
            | Obs::InsertNonPresent { cpu, mm, va }
            | Obs::PteUpdateLost { cpu, mm, va } => {
                self.fatal |= matches!(o, Obs::PteResurrected { .. });
                let invariant = match o {
                    Obs::PteResurrected { .. } => Invariant::PteResurrected,
                    Obs::InsertNonPresent { .. } => Invariant::InsertNonPresent,
                    _ => Invariant::PteUpdateLost,
                };
                let by = current_op(flights, cpu);
                let page = sh.logical_page(mm, va).unwrap_or(PageLoc::Frame { pfn: 0 });
                let detail = format!("PTE of {va} of {mm}");
                self.oracle.flag(invariant, Loc { page, word: 0 }, step, by).detail.push(detail);
            }
            Obs::Pinned { cpu, mm, va, .. }
                if flights[cpu.index()].as_ref().is_some_and(|f| matches!(f.op, WOp::GupFast { .. })) =>
            {
                // gup_fast is not held off by teardowns: the address may map something else
                // by now. What it pinned is whatever the address maps at this step.
                let pl = sh.logical_page(mm, va);
                if let Some(f) = &mut flights[cpu.index()] {
                    f.pinned = pl;
                    f.unjudged = pl.is_none();
                }
            }
            Obs::Pinned { cpu, mm, va, .. }
                if flights[cpu.index()].as_ref().is_some_and(|f| f.claims.kernel_read) =>
            {
                // A tracer's read may overlap a truncate of the mapping's file (the refined
                // second rule). Between the truncate's first unmap and its last, a fault that
                // passed the size check before the file shrank maps the page-cache page where
                // the COWed page was (`truncate_inode_pages` unmaps it once more): what the
                // read pinned is the page the PTE maps at this step.
                let file_page = k.follow_pfn(mm, va).map(|pfn| k.page(pfn)).and_then(|d| match d.mapping {
                    Mapping::File(f) => sh.file_index(f).map(|file| PageLoc::File { file, pgoff: d.index }),
                    _ => None,
                });
                let loc = file_page.or_else(|| flight_loc(sh, flights, cpu.index()).map(|(l, _, _)| l.page));
                if let Some(f) = &mut flights[cpu.index()] {
                    f.pinned = loc;
                }
            }
            Obs::Pinned { cpu, .. } => {
                let loc = flight_loc(sh, flights, cpu.index()).map(|(l, _, _)| l.page);
                if let Some(f) = &mut flights[cpu.index()]
                    // A futex pins only to fault the page in; its store goes through the user
                    // mapping afterwards, to whatever page that maps by then.
                    && !matches!(f.op, WOp::Futex { .. })
                {
                    f.pinned = loc;
                }
            }
            Obs::Installed { cpu, mm, va, new } => {
                let Some((p, map, page)) = sh.find_page(mm, va) else { return };
                let pl = self.oracle.new_private();
                // A COW copy: judged as a read of its source, then adopted. The PTE still maps
                // what the copy read from, so the source is the current view.
                if let Some(i) = self.pending_copies.iter().position(|c| (c.cpu, c.new) == (cpu, new)) {
                    let c = self.pending_copies.swap_remove(i);
                    if let Some(src) = sh.page_loc(p, map, page) {
                        for (i, &w) in WORDS.iter().enumerate() {
                            let loc = Loc { page: src, word: w };
                            self.oracle.read(ReadKind::CowCopy, loc, c.start, c.end, c.vals[i], c.by);
                        }
                    }
                    for (i, &w) in WORDS.iter().enumerate() {
                        self.oracle.write(Loc { page: pl, word: w }, step, step, c.vals[i], c.by);
                    }
                }
                // Otherwise a zero-filled anonymous page: every word starts at 0.
                sh.install(p, map, page, pl);
            }
        }
    }
}
