//! The oracle: per-word *regular register* semantics over the intervals of program-level
//! operations (the README's *Workload rules*).
//!
//! Every logical word — a file page word, a word of a private page (anonymous memory, or a
//! private file mapping after its COW), or a word of a kernel buffer — has a history of writes, each an interval of
//! micro-steps. A read over `[start, end]` may return the value of any write that overlaps it,
//! or of a write that completed before it began and was not followed by another write that
//! also completed before it began. Anything else is a violation. Nothing here looks at caches
//! or page tables: only at what programs stored and what they got back.
//!
//! A shmem (tmpfs) file's words are file words like any other: their expected value is the
//! last store or `write(2)`, whether the page has since been written out to swap, sits in the
//! swap cache, or was read back into another frame; a hole reads 0, and truncation zeroes
//! what lies beyond the new size. A `MAP_SHARED | MAP_ANONYMOUS` mapping's pages are logical
//! pages of their own (numbered like private pages), which a `fork` shares with the child
//! instead of copying and no fault replaces; a re-`mmap` of it starts a new, zeroed object.
//!
//! A kernel buffer (an io_uring-like ring, [`PageLoc::Ring`]) is one logical page however many
//! processes map it and wherever `mremap` or a re-`mmap` puts them: a word's writes are user
//! stores through any mapping of it and the kernel's posts through its kernel address
//! (`io_fill_cqe`, a write over the step of its store); its reads are user loads, the
//! kernel's fetches (`io_get_sqe`, [`ReadKind::RingRead`], over the step of its load) and a
//! final fetch of every word after the programs. So a ring word's expected value is its last
//! store, by user or kernel, whichever alias it went through.
//!
//! The MMU race families add invariants that are not about a value read. The core checks
//! each at the step where it can break and emits an observation; the runner
//! ([`crate::scenario`]) records it here with [`Oracle::flag`] as a broken [`Invariant`]:
//! a futex retry loop that never ends (`Livelock`, at the op's end), `_PAGE_DIRTY` set on a PTE
//! that forbids the write (`DirtyWithoutWrite`, `Kernel::check_dirty`), a lockless PTE store
//! over a change it did not see (`PteResurrected`, `PteUpdateLost`,
//! `Kernel::store_pte_lockless`), a translation inserted for a PTE that is not present
//! (`InsertNonPresent`, `Kernel::hash_insert`), a translation left after an `mmu_gather`
//! flush (`StaleTlb`, `MmuGather::flush_tlb_only`), a frame freed while a TLB entry or a lockless
//! walker can reach it (`FreedReachable`, `Kernel::put_page`), and a store that no dirty-log
//! harvest ever named (`LostDirty`, checked by the clean family's check after a final clean).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A logical page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PageLoc {
    /// A page of a file.
    File {
        /// File index.
        file: u8,
        /// Page offset.
        pgoff: u64,
    },
    /// A private page (anonymous, or a COW copy), numbered in order of creation.
    Private {
        /// Its number.
        id: u32,
    },
    /// A kernel buffer (an io_uring-like ring) of the workload: one page that the kernel
    /// reads and writes through its kernel address and every mapping of it through its own.
    Ring {
        /// Ring index.
        ring: u8,
    },
    /// A physical frame, for violations about a frame rather than a word (freed while
    /// reachable, stale TLB entries).
    Frame {
        /// Its number.
        pfn: u32,
    },
}

/// A logical word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// The page.
    pub page: PageLoc,
    /// The word within it.
    pub word: u16,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            PageLoc::File { file, pgoff } => write!(f, "file{file}:page{pgoff}:word{}", self.word),
            PageLoc::Private { id } => write!(f, "private#{id}:word{}", self.word),
            PageLoc::Ring { ring } => write!(f, "ring{ring}:word{}", self.word),
            PageLoc::Frame { pfn } => write!(f, "frame{pfn}"),
        }
    }
}

/// What kind of program-level read returned a wrong value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadKind {
    /// A user load.
    UserLoad,
    /// A `read(2)` word.
    FileRead,
    /// An `access_process_vm` read.
    RemoteRead,
    /// A word a COW copy copied.
    CowCopy,
    /// The final read-back through a user mapping.
    FinalLoad,
    /// The final read-back through `read(2)`.
    FinalRead,
    /// The kernel's read of a kernel-buffer word through its kernel address (`io_get_sqe`).
    RingRead,
}

/// An invariant of the memory manager that broke at one step (not a value read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    /// A futex store that never completed (its `fixup_user_fault` retry loop hit its bound).
    Livelock,
    /// `_PAGE_DIRTY` was set on a PTE that does not permit writes.
    DirtyWithoutWrite,
    /// A store to a device-like shared mapping was followed by no harvest of the dirty log
    /// naming its page (recorded neither in the PTE dirty bit nor in the log).
    LostDirty,
    /// A frame was freed while a TLB entry or a lockless walker could reach it.
    FreedReachable,
    /// An `mmu_gather` flush left a translation of a PTE it cleared.
    StaleTlb,
    /// A lockless PTE update made a cleared PTE present again.
    PteResurrected,
    /// A translation was inserted for a PTE that is not present.
    InsertNonPresent,
    /// A lockless PTE update undid a change made after its read.
    PteUpdateLost,
}

impl fmt::Display for ReadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadKind::UserLoad => "user load",
            ReadKind::FileRead => "read(2)",
            ReadKind::RemoteRead => "access_process_vm read",
            ReadKind::CowCopy => "COW copy",
            ReadKind::FinalLoad => "final load",
            ReadKind::FinalRead => "final read(2)",
            ReadKind::RingRead => "io_get_sqe read",
        })
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::Livelock => "futex livelock",
            Invariant::DirtyWithoutWrite => "dirty without write",
            Invariant::LostDirty => "lost dirtiness",
            Invariant::FreedReachable => "freed while reachable",
            Invariant::StaleTlb => "stale TLB after gather flush",
            Invariant::PteResurrected => "cleared PTE resurrected",
            Invariant::InsertNonPresent => "translation for non-present PTE",
            Invariant::PteUpdateLost => "lost PTE update",
        })
    }
}

/// Which operation did something: CPU and index in its program (`None` for set-up and the
/// final read-back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpRef {
    /// CPU.
    pub cpu: u8,
    /// Index in the CPU's program.
    pub index: Option<u16>,
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "cpu{}#{}", self.cpu, i),
            None => write!(f, "cpu{}(final)", self.cpu),
        }
    }
}

/// One write in a word's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRec {
    /// First step of the write's interval.
    pub start: u64,
    /// Last step; `u64::MAX` while the writing operation is still running.
    pub end: u64,
    /// Value written.
    pub value: u64,
    /// Writer.
    pub by: OpRef,
}

/// What a violation is: a wrong value, or a broken invariant, each with only what it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ViolationKind {
    /// A read returned a value the semantics do not allow.
    WrongValue {
        /// What read it.
        read: ReadKind,
        /// The value returned.
        observed: u64,
        /// The values the semantics allowed (never containing `observed`).
        allowed: Vec<u64>,
        /// First step of the read interval (its last is the violation's step).
        start: u64,
        /// Physical line (its number, `pa / line size`) the value was read from, when known.
        #[serde(default)]
        source_line: Option<u64>,
    },
    /// An invariant broke at the violation's step.
    Broken {
        /// Which.
        invariant: Invariant,
    },
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViolationKind::WrongValue { read, .. } => read.fmt(f),
            ViolationKind::Broken { invariant } => invariant.fmt(f),
        }
    }
}

/// A wrong value or a broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// What went wrong.
    pub kind: ViolationKind,
    /// The word (for an invariant about a frame rather than a word, the frame).
    pub loc: Loc,
    /// The step it happened at: the last step of a wrong read's interval (the read itself), or
    /// the step at which the invariant broke.
    pub step: u64,
    /// The operation that read the value or broke the invariant.
    pub by: OpRef,
    /// Explanation lines, filled in by the runner: where a wrong value came from, or what broke
    /// an invariant; then, when tracing, the writes of the word and the history of its lines.
    pub detail: Vec<String>,
    /// Operations in flight at the time (when tracing).
    pub overlapping: Vec<String>,
}

impl Violation {
    /// The read kind, for a wrong value.
    pub fn read_kind(&self) -> Option<ReadKind> {
        match self.kind {
            ViolationKind::WrongValue { read, .. } => Some(read),
            ViolationKind::Broken { .. } => None,
        }
    }

    /// The invariant, for a broken one.
    pub fn invariant(&self) -> Option<Invariant> {
        match self.kind {
            ViolationKind::WrongValue { .. } => None,
            ViolationKind::Broken { invariant } => Some(invariant),
        }
    }

    /// First step of the interval the violation covers: a wrong read's start, or the step at
    /// which the invariant broke.
    pub fn start(&self) -> u64 {
        match self.kind {
            ViolationKind::WrongValue { start, .. } => start,
            ViolationKind::Broken { .. } => self.step,
        }
    }

    /// The value returned and the values allowed. A broken invariant has no value: its
    /// fingerprint and summary show 0 and an empty set, so that their format is one for every
    /// violation.
    fn values(&self) -> (u64, &[u64]) {
        match &self.kind {
            ViolationKind::WrongValue { observed, allowed, .. } => (*observed, allowed),
            ViolationKind::Broken { .. } => (0, &[]),
        }
    }

    /// A short stable identifier of the violation: same run, same fingerprint.
    pub fn fingerprint(&self) -> String {
        format!("{}@{}={:#x}@{}", self.kind, self.loc, self.values().0, self.step)
    }

    /// The class the shrinker preserves: what kind of violation of what kind of word.
    pub fn class(&self) -> String {
        let page = match self.loc.page {
            PageLoc::File { .. } => "file",
            PageLoc::Private { .. } => "private",
            PageLoc::Ring { .. } => "ring",
            PageLoc::Frame { .. } => "frame",
        };
        format!("{}:{}", self.kind, page)
    }

    /// One line for people: who read what over which steps, what came back, what was allowed.
    pub fn summary(&self) -> String {
        let (observed, allowed) = self.values();
        let allowed: Vec<String> = allowed.iter().map(|v| format!("{v:#x}")).collect();
        format!(
            "{} by {} of {} over steps {}..={} returned {:#x}; allowed {{{}}}",
            self.kind,
            self.by,
            self.loc,
            self.start(),
            self.step,
            observed,
            allowed.join(", ")
        )
    }
}

/// The oracle's state.
#[derive(Clone, Debug, Default)]
pub struct Oracle {
    hist: BTreeMap<Loc, Vec<WriteRec>>,
    next_private: u32,
    /// Violations found, in order.
    pub violations: Vec<Violation>,
    /// Reads checked.
    pub reads: u64,
    /// Writes recorded.
    pub writes: u64,
}

impl Oracle {
    /// An oracle where every word is 0.
    pub fn new() -> Self {
        Oracle::default()
    }

    /// A fresh private page (all words 0 until written).
    pub fn new_private(&mut self) -> PageLoc {
        self.next_private += 1;
        PageLoc::Private { id: self.next_private - 1 }
    }

    /// Records a write over `[start, end]` (`end == u64::MAX`: still running).
    pub fn write(&mut self, loc: Loc, start: u64, end: u64, value: u64, by: OpRef) {
        self.writes += 1;
        self.hist.entry(loc).or_default().push(WriteRec { start, end, value, by });
    }

    /// Ends every running write by `by` at `end`.
    pub fn finish_writes(&mut self, by: OpRef, end: u64, locs: &[Loc]) {
        for loc in locs {
            if let Some(h) = self.hist.get_mut(loc) {
                for w in h.iter_mut().filter(|w| w.by == by && w.end == u64::MAX) {
                    w.end = end;
                }
            }
        }
    }

    /// The values a read of `loc` over `[start, end]` may return.
    pub fn allowed(&self, loc: Loc, start: u64, end: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for v in Self::allowed_in(self.history(loc), start, end) {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    /// The values of the writes of `h` (and of the initial zero) a read over `[start, end]`
    /// may return, in order, repeats included: those of the writes that overlap the read,
    /// and of those that end before it with no other write wholly between them and it.
    fn allowed_in(h: &[WriteRec], start: u64, end: u64) -> impl Iterator<Item = u64> + '_ {
        const INITIAL: WriteRec = WriteRec { start: 0, end: 0, value: 0, by: OpRef { cpu: 0, index: None } };
        let all = move || std::iter::once(&INITIAL).chain(h.iter());
        all()
            .filter(move |w| {
                let overlaps = w.start <= end && w.end >= start;
                let precedes = w.end < start;
                overlaps || (precedes && !all().any(|w2| w2.start > w.end && w2.end < start))
            })
            .map(|w| w.value)
    }

    /// The writes to `loc` (for reports).
    pub fn history(&self, loc: Loc) -> &[WriteRec] {
        self.hist.get(&loc).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Records a broken invariant; returns the violation, for its explanation.
    pub fn flag(&mut self, invariant: Invariant, loc: Loc, step: u64, by: OpRef) -> &mut Violation {
        self.push(ViolationKind::Broken { invariant }, loc, step, by)
    }

    fn push(&mut self, kind: ViolationKind, loc: Loc, step: u64, by: OpRef) -> &mut Violation {
        self.violations.push(Violation { kind, loc, step, by, detail: Vec::new(), overlapping: Vec::new() });
        self.violations.last_mut().expect("just pushed")
    }

    /// Checks a read; records and returns the violation if it is one.
    pub fn read(
        &mut self, kind: ReadKind, loc: Loc, start: u64, end: u64, observed: u64, by: OpRef,
    ) -> Option<&mut Violation> {
        self.reads += 1;
        if Self::allowed_in(self.history(loc), start, end).any(|v| v == observed) {
            return None;
        }
        let allowed = self.allowed(loc, start, end);
        let kind = ViolationKind::WrongValue { read: kind, observed, allowed, start, source_line: None };
        Some(self.push(kind, loc, end, by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Loc = Loc { page: PageLoc::File { file: 0, pgoff: 0 }, word: 0 };
    const BY: OpRef = OpRef { cpu: 1, index: Some(0) };

    #[test]
    fn initial_value_is_zero_and_latest_completed_write_wins() {
        let mut o = Oracle::new();
        assert_eq!(o.allowed(L, 5, 5), vec![0]);
        o.write(L, 10, 10, 7, BY);
        o.write(L, 20, 20, 8, BY);
        assert_eq!(o.allowed(L, 30, 30), vec![8]);
        assert_eq!(o.allowed(L, 15, 15), vec![7]);
        assert!(o.read(ReadKind::UserLoad, L, 30, 30, 7, BY).is_some());
        assert!(o.read(ReadKind::UserLoad, L, 30, 30, 8, BY).is_none());
    }

    #[test]
    fn overlapping_writes_may_or_may_not_be_seen() {
        let mut o = Oracle::new();
        o.write(L, 10, 10, 7, BY);
        o.write(L, 20, u64::MAX, 9, BY);
        let mut a = o.allowed(L, 25, 25);
        a.sort_unstable();
        assert_eq!(a, vec![7, 9]);
        o.finish_writes(BY, 30, &[L]);
        assert_eq!(o.allowed(L, 31, 31), vec![9]);
        let mut b = o.allowed(L, 25, 26);
        b.sort_unstable();
        assert_eq!(b, vec![7, 9]);
    }

    #[test]
    fn fingerprint_class_and_summary_keep_their_format() {
        let mut o = Oracle::new();
        let l = Loc { page: PageLoc::File { file: 1, pgoff: 0 }, word: 1 };
        o.write(l, 615, 615, 0x2_0000_0006, BY);
        let final_by = OpRef { cpu: 0, index: None };
        let v = o.read(ReadKind::FinalLoad, l, 1942, 1945, 0, final_by).unwrap().clone();
        assert_eq!(v.fingerprint(), "final load@file1:page0:word1=0x0@1945");
        assert_eq!(v.class(), "final load:file");
        assert_eq!(
            v.summary(),
            "final load by cpu0(final) of file1:page0:word1 over steps 1942..=1945 returned 0x0; allowed {0x200000006}"
        );
        assert_eq!((v.read_kind(), v.invariant(), v.start()), (Some(ReadKind::FinalLoad), None, 1942));
        // A broken invariant has no value: it renders as 0 with nothing allowed.
        let by = OpRef { cpu: 2, index: Some(4) };
        let v = o
            .flag(Invariant::FreedReachable, Loc { page: PageLoc::Frame { pfn: 3 }, word: 0 }, 441, by)
            .clone();
        assert_eq!(v.fingerprint(), "freed while reachable@frame3=0x0@441");
        assert_eq!(v.class(), "freed while reachable:frame");
        assert_eq!(
            v.summary(),
            "freed while reachable by cpu2#4 of frame3 over steps 441..=441 returned 0x0; allowed {}"
        );
        assert_eq!((v.read_kind(), v.invariant(), v.start()), (None, Some(Invariant::FreedReachable), 441));
        assert_eq!(o.violations.len(), 2);
    }

    #[test]
    fn concurrent_completed_writes_both_allowed() {
        let mut o = Oracle::new();
        o.write(L, 10, 20, 1, BY);
        o.write(L, 15, 25, 2, BY);
        let mut a = o.allowed(L, 30, 30);
        a.sort_unstable();
        assert_eq!(a, vec![1, 2]);
    }

    quickcheck::quickcheck! {
        /// A read passes exactly when its value is one of those `allowed` lists for its
        /// window, and a failing read reports that list.
        fn a_read_passes_exactly_when_its_value_is_allowed(
            writes: Vec<(u8, u8, u8)>, start: u8, len: u8, observed: u8
        ) -> bool {
            let mut o = Oracle::new();
            for &(s, d, v) in writes.iter().take(8) {
                let s = u64::from(s);
                o.write(L, s, s + u64::from(d % 16), u64::from(v % 4), BY);
            }
            let (start, end) = (u64::from(start), u64::from(start) + u64::from(len % 16));
            let allowed = o.allowed(L, start, end);
            let observed = u64::from(observed % 5);
            match o.read(ReadKind::UserLoad, L, start, end, observed, BY) {
                None => allowed.contains(&observed),
                Some(v) => {
                    !allowed.contains(&observed)
                        && matches!(&v.kind, ViolationKind::WrongValue { allowed: a, .. } if *a == allowed)
                }
            }
        }
    }
}
