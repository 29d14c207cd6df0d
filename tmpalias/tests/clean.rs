//! Issue 7, family 4: the dirty-log clean of a shared mapping with its TLB flush deferred
//! (`clean-deferred`, broken; `clean-flush-locked` and `clean-external-lock`, correct), as
//! deterministic interleavings on the `pipt` machine with [`FirstChooser`].
//!
//! A clean walks the file's shared mappings; per page, under the page-table lock, it reads the
//! PTE ("scan") and, if dirty, clears `_PAGE_DIRTY` atomically ("clean") and sets the page's
//! bit in the file's dirty log; then it flushes the TLB and harvests the log. TLB entries cache
//! the D bit: until the flush, a CPU that stored to the page before the clean stores again
//! without trapping and without dirtying the PTE, so that store is recorded only by the bit.
//!
//! The bug (`clean-deferred`): cleaner B walks first (nothing dirty yet) and stops before its
//! harvest; CPU X stores to page P (its TLB now caches D=1); cleaner A clears P's PTE dirty bit,
//! sets P's bit and stops before its deferred flush; B harvests, taking A's bit; X stores again
//! through its stale D=1 entry (no trap, the PTE stays clean); A flushes and harvests nothing.
//! The second store is in neither the PTE nor the log: no later clean ever harvests it.
//!
//! Cleaners take `i_mmap_lock` shared, as Linux does, so B may also walk while A is stopped;
//! the schedule here (B walks first) is one of the orders in which the race exists.
//!
//! With the flush under the page-table lock, A's bit is set only once X's entry is gone, so a
//! store after B's harvest traps and dirties the PTE. With the driver's lock, B cannot even
//! begin its walk (it blocks on [`LockId::DirtyLog`]) until A has flushed and harvested.
//!
//! A sweep stops A after every number of its micro-steps in the bug's schedule: only
//! `clean-deferred` has stop points (two: before its deferred-flush label and before its purge)
//! where P's bit is harvestable while X's stale D=1 entry is alive, and exactly those lose.
//! Finally, with one cleaner, a store before the scan, between scan and clean, between clean and
//! flush, or after the flush is never lost, on any variant.
//!
//! Every scenario ends by checking the contract the harness checks ("lost dirtiness"): every
//! user store to P is followed by a harvest ([`Obs::DirtySynced`]) naming P.

use vipt_emu::addr::{CpuId, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Action, Executor, FileId, Kernel, LockId, MmId, Obs, Op, OpResult, StepError};
use vipt_emu::pte::PteFlags;
use vipt_tmpalias::Registry;

/// Set-up and the final clean.
const C0: CpuId = CpuId(0);
/// Cleaner A (the one stopped mid-clean).
const A: CpuId = CpuId(1);
/// Cleaner B (the one that harvests A's bit).
const B: CpuId = CpuId(2);
/// The CPU that stores to the page.
const X: CpuId = CpuId(3);

/// The file page mapped (page 1 of a 2-page file, so its bit is not bit 0).
const PGOFF: u64 = 1;
/// Its bit in the dirty log.
const P: u64 = 1 << PGOFF;

const V1: u64 = 0x0001;
const V2: u64 = 0x0002;
const V3: u64 = 0x0003;

const HARVEST: Action = Action::Label("harvest dirty log");
const DEFERRED_FLUSH: Action = Action::Label("deferred flush_tlb_range");

// ----- rig --------------------------------------------------------------------------------

fn kernel(name: &str) -> Kernel {
    let l = Registry::builtin().get(name).cloned().unwrap_or_else(|| panic!("no lineage {name}"));
    let mut cfg = Preset::Pipt.config();
    cfg.cpus = cfg.cpus.max(4);
    let k = l.boot(cfg, Box::new(FirstChooser));
    k.record_observations();
    k
}

/// One shared, writable mapping of page [`PGOFF`] of a 2-page file.
#[derive(Clone, Copy, Debug)]
struct Rig {
    f: FileId,
    mm: MmId,
    va: VirtAddr,
}

fn setup(k: &Kernel, ex: &mut Executor<'_>) -> Rig {
    let f = k.create_file(2, 0);
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: Some((f, PGOFF)), shared: true, writable: true, fixed: None };
    let OpResult::Mapped(va) = run(ex, C0, Op::Mmap { mm, args }) else { panic!("mmap failed") };
    Rig { f, mm, va }
}

fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

/// A whole clean on `cpu`; returns the harvested mask.
fn clean(ex: &mut Executor<'_>, cpu: CpuId, r: &Rig) -> u64 {
    match run(ex, cpu, Op::CleanDirty { file: r.f }) {
        OpResult::Value(mask) => mask,
        other => panic!("clean failed: {other:?}"),
    }
}

/// A store by X; returns how many dirty-bit traps it took.
fn store(k: &Kernel, ex: &mut Executor<'_>, r: &Rig, value: u64) -> u64 {
    let before = k.machine().counters.dbit_traps;
    assert_eq!(run(ex, X, Op::Store { mm: r.mm, va: r.va, value }), OpResult::Value(value));
    k.machine().counters.dbit_traps - before
}

/// Runs `cpu` until its pending action is `stop` (not yet performed).
fn stop_at(ex: &mut Executor<'_>, cpu: CpuId, stop: impl Fn(&Action) -> bool) {
    assert_eq!(ex.run_until(cpu, stop).unwrap(), None, "{cpu:?} finished before its stop point");
}

/// Runs `cpu` until its pending action equals `stop`.
fn stop_before(ex: &mut Executor<'_>, cpu: CpuId, stop: Action) {
    stop_at(ex, cpu, |a| *a == stop);
}

/// Finishes an operation started earlier; returns the harvested mask.
fn finish_clean(ex: &mut Executor<'_>, cpu: CpuId) -> u64 {
    match ex.run_to_completion(cpu).unwrap() {
        OpResult::Value(mask) => mask,
        other => panic!("clean failed: {other:?}"),
    }
}

/// Steps `cpu` until it completes (`Some`) or blocks on a lock (`None`).
fn run_or_block(ex: &mut Executor<'_>, cpu: CpuId) -> Option<OpResult> {
    loop {
        match ex.step_cpu(cpu) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(StepError::Blocked(_)) => return None,
            Err(e) => panic!("{e}"),
        }
    }
}

fn pte_dirty(k: &Kernel, r: &Rig) -> bool {
    k.peek_pte(r.mm, r.va).has(PteFlags::DIRTY)
}

fn log(k: &Kernel, r: &Rig) -> u64 {
    k.state().files[r.f.index()].dirty_log
}

/// The D bit of `cpu`'s TLB entry for the page, if it holds one.
fn tlb_d(k: &Kernel, cpu: CpuId, r: &Rig) -> Option<bool> {
    let space = k.mm_space(r.mm);
    let m = k.machine();
    m.cpu(cpu).tlb.entries().iter().find(|e| e.space == space && e.vpn == r.va.vpn()).map(|e| e.dirty)
}

/// The values of the user stores to the page that no later harvest names (lost dirtiness).
fn lost_stores(k: &Kernel, r: &Rig) -> Vec<u64> {
    let mut obs = Vec::new();
    k.drain_observations(&mut obs);
    let harvested_after = |t: u64| {
        obs.iter().any(|o| {
            matches!(o.obs, Obs::DirtySynced { file, pages, .. } if file == r.f && pages & P != 0 && o.step > t)
        })
    };
    obs.iter()
        .filter_map(|o| match o.obs {
            Obs::User { mm, va, store: Some(v), .. } if mm == r.mm && va == r.va => {
                (!harvested_after(o.step)).then_some(v)
            }
            _ => None,
        })
        .collect()
}

/// X's first store: faults the page in dirty; X's TLB caches D=1.
fn first_store(k: &Kernel, ex: &mut Executor<'_>, r: &Rig) {
    assert_eq!(store(k, ex, r, V1), 0, "a write fault maps the page dirty");
    assert!(pte_dirty(k, r));
    assert_eq!(tlb_d(k, X, r), Some(true));
}

// ----- two cleaners without the driver's lock -----------------------------------------------

/// What the schedule of the bug produces.
#[derive(Debug, PartialEq, Eq)]
struct Race {
    /// The PTE is dirty when A stops.
    pte_dirty_at_stop: bool,
    /// The dirty log when A stops.
    log_at_stop: u64,
    /// X's TLB entry for the page (its D bit) when A stops.
    x_entry_at_stop: Option<bool>,
    /// B's harvest.
    b: u64,
    /// Dirty-bit traps taken by X's second store.
    traps: u64,
    /// The PTE is dirty after X's second store.
    pte_dirty: bool,
    /// A's harvest.
    a: u64,
    /// X's TLB entry for the page (its D bit) once A has finished.
    x_entry_at_end: Option<bool>,
    /// A final clean's harvest.
    last: u64,
    /// Stores no later harvest names.
    lost: Vec<u64>,
}

/// The schedule of the bug: B walks and stops before its harvest; X stores; `stop_a` starts A
/// and runs it to its stop point (false if A completed instead); B harvests; X stores again; A
/// finishes; C0 cleans once more. `None` if A completed before its stop point.
fn race_with(name: &str, stop_a: impl FnOnce(&mut Executor<'_>) -> bool) -> Option<Race> {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    ex.spawn(B, Op::CleanDirty { file: r.f });
    stop_before(&mut ex, B, HARVEST);
    first_store(&k, &mut ex, &r);
    ex.spawn(A, Op::CleanDirty { file: r.f });
    if !stop_a(&mut ex) {
        return None;
    }
    let (pte_dirty_at_stop, log_at_stop, x_entry_at_stop) =
        (pte_dirty(&k, &r), log(&k, &r), tlb_d(&k, X, &r));
    let b = finish_clean(&mut ex, B);
    let traps = store(&k, &mut ex, &r, V2);
    let pte_dirty = pte_dirty(&k, &r);
    let a = finish_clean(&mut ex, A);
    let x_entry_at_end = tlb_d(&k, X, &r);
    let last = clean(&mut ex, C0, &r);
    Some(Race {
        pte_dirty_at_stop,
        log_at_stop,
        x_entry_at_stop,
        b,
        traps,
        pte_dirty,
        a,
        x_entry_at_end,
        last,
        lost: lost_stores(&k, &r),
    })
}

/// [`race_with`], A stopped just before its pending action is `a_stop`.
fn race(name: &str, a_stop: Action) -> Race {
    race_with(name, |ex| {
        stop_before(ex, A, a_stop);
        true
    })
    .unwrap()
}

/// `clean-deferred`: B harvests A's bit before A's flush, and X's second store, through its stale
/// D=1 entry, neither traps nor dirties the PTE; no clean ever harvests it.
#[test]
fn deferred_flush_loses_a_store_through_the_stale_dirty_entry() {
    let r = race("clean-deferred", DEFERRED_FLUSH);
    let lost = Race {
        pte_dirty_at_stop: false,
        log_at_stop: P,
        x_entry_at_stop: Some(true),
        b: P,
        traps: 0,
        pte_dirty: false,
        a: 0,
        x_entry_at_end: None,
        last: 0,
        lost: vec![V2],
    };
    assert_eq!(r, lost);
}

/// `clean-flush-locked`, A stopped after setting the bit: X's entry is already gone, so the
/// store after B's harvest traps, dirties the PTE and is harvested by the final clean.
#[test]
fn flush_under_lock_purges_before_the_bit_can_be_harvested() {
    let r = race("clean-flush-locked", HARVEST);
    let kept = Race {
        pte_dirty_at_stop: false,
        log_at_stop: P,
        x_entry_at_stop: None,
        b: P,
        traps: 1,
        pte_dirty: true,
        a: 0,
        x_entry_at_end: Some(true),
        last: P,
        lost: vec![],
    };
    assert_eq!(r, kept);
}

/// `clean-flush-locked`, A stopped between its clean and its purge: the bit is not set yet, so B
/// harvests nothing; the store through the stale entry is covered by A's bit, set after the purge.
#[test]
fn flush_under_lock_sets_the_bit_only_after_the_purge() {
    let r = race("clean-flush-locked", Action::Tlb);
    let kept = Race {
        pte_dirty_at_stop: false,
        log_at_stop: 0,
        x_entry_at_stop: Some(true),
        b: 0,
        traps: 0,
        pte_dirty: false,
        a: P,
        x_entry_at_end: None,
        last: 0,
        lost: vec![],
    };
    assert_eq!(r, kept);
}

/// Stopping A after every number of its micro-steps: a store is lost exactly when A stops with
/// P's bit in the log while X still holds its stale D=1 entry, which only `clean-deferred` allows.
#[test]
fn only_a_harvestable_bit_behind_a_stale_entry_loses_a_store() {
    for name in ["clean-deferred", "clean-flush-locked"] {
        let mut windows = 0;
        for n in 0.. {
            let Some(r) = race_with(name, |ex| (0..n).all(|_| ex.step_cpu(A).unwrap().is_none())) else {
                break;
            };
            let window = r.log_at_stop == P && r.x_entry_at_stop == Some(true);
            let expected: Vec<u64> = if window { vec![V2] } else { vec![] };
            assert_eq!(r.lost, expected, "{name} stopped after {n} steps: {r:?}");
            windows += usize::from(window);
        }
        // clean-deferred: stopped before its deferred-flush label, and before its purge.
        assert_eq!(windows, if name == "clean-deferred" { 2 } else { 0 }, "{name}");
    }
}

// ----- the driver's lock ---------------------------------------------------------------------

/// `clean-external-lock`, A stopped before its deferred flush: B blocks on the dirty-log lock
/// before its walk; the stale store is covered by A's own harvest, the store after B's harvest
/// traps and is harvested by the final clean.
#[test]
fn external_lock_blocks_the_second_cleaner_until_the_first_has_harvested() {
    let k = kernel("clean-external-lock");
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    first_store(&k, &mut ex, &r);
    ex.spawn(A, Op::CleanDirty { file: r.f });
    stop_before(&mut ex, A, DEFERRED_FLUSH);
    assert_eq!((pte_dirty(&k, &r), log(&k, &r)), (false, P));

    ex.spawn(B, Op::CleanDirty { file: r.f });
    assert_eq!(run_or_block(&mut ex, B), None);
    assert_eq!(k.pending(B), Action::Lock(LockId::DirtyLog(r.f)));
    assert!(!k.can_run(B));
    assert_eq!(ex.step_cpu(B), Err(StepError::Blocked(B)));

    // Through the stale D=1 entry: no trap, PTE clean, but A's bit is still in the log.
    assert_eq!(store(&k, &mut ex, &r, V2), 0);
    assert_eq!((pte_dirty(&k, &r), log(&k, &r)), (false, P));
    assert_eq!(finish_clean(&mut ex, A), P);
    assert!(k.can_run(B));
    assert_eq!(finish_clean(&mut ex, B), 0);

    assert_eq!(store(&k, &mut ex, &r, V3), 1, "A's flush removed X's entry");
    assert!(pte_dirty(&k, &r));
    assert_eq!(clean(&mut ex, C0, &r), P);
    assert_eq!(lost_stores(&k, &r), Vec::<u64>::new());
}

/// `clean-external-lock` refuses the schedule of the bug: B holds the lock from before its walk
/// to its harvest, so A cannot begin cleaning until B has harvested.
#[test]
fn external_lock_refuses_the_schedule_of_the_bug() {
    let k = kernel("clean-external-lock");
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    ex.spawn(B, Op::CleanDirty { file: r.f });
    stop_before(&mut ex, B, HARVEST);
    first_store(&k, &mut ex, &r);

    ex.spawn(A, Op::CleanDirty { file: r.f });
    assert_eq!(run_or_block(&mut ex, A), None);
    assert_eq!(k.pending(A), Action::Lock(LockId::DirtyLog(r.f)));
    assert!(pte_dirty(&k, &r), "A has not scanned");

    assert_eq!(finish_clean(&mut ex, B), 0);
    assert_eq!(finish_clean(&mut ex, A), P);
    assert_eq!(store(&k, &mut ex, &r, V2), 1);
    assert!(pte_dirty(&k, &r));
    assert_eq!(clean(&mut ex, C0, &r), P);
    assert_eq!(lost_stores(&k, &r), Vec::<u64>::new());
}

// ----- one cleaner: the four orderings of write, scan, clean and flush -----------------------

/// Where X's racing store falls in the single cleaner's sequence.
#[derive(Clone, Copy, Debug)]
enum Window {
    /// Before the scan (the PTE read).
    BeforeScan,
    /// Between the scan and the clean (the atomic PTE update).
    ScanToClean,
    /// Between the clean and the TLB flush.
    CleanToFlush,
    /// After the flush (before the harvest).
    AfterFlush,
}

impl Window {
    const ALL: [Window; 4] =
        [Window::BeforeScan, Window::ScanToClean, Window::CleanToFlush, Window::AfterFlush];

    /// The cleaner's pending action when the store happens.
    fn stop(self, name: &str, r: &Rig) -> Action {
        let (mm, va) = (r.mm, r.va);
        match self {
            Window::BeforeScan => Action::PteRead { mm, va },
            Window::ScanToClean => Action::PteWrite { mm, va },
            Window::CleanToFlush if name == "clean-flush-locked" => Action::Tlb,
            Window::CleanToFlush => DEFERRED_FLUSH,
            Window::AfterFlush => HARVEST,
        }
    }
}

/// X stores, cleaner A stops at `w`, X stores again, A finishes, C0 cleans once more. Returns
/// (traps of the racing store, PTE dirty after it, A's harvest, the final harvest).
fn one_cleaner(name: &str, w: Window) -> (u64, bool, u64, u64) {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    first_store(&k, &mut ex, &r);
    ex.spawn(A, Op::CleanDirty { file: r.f });
    stop_before(&mut ex, A, w.stop(name, &r));
    let traps = store(&k, &mut ex, &r, V2);
    let dirty = pte_dirty(&k, &r);
    let a = finish_clean(&mut ex, A);
    let last = clean(&mut ex, C0, &r);
    assert_eq!(lost_stores(&k, &r), Vec::<u64>::new(), "{name} {w:?}");
    (traps, dirty, a, last)
}

/// Every write lands in the PTE dirty bit or in the bitmap, wherever it falls relative to the
/// scan, the clean and the flush of one cleaner (on every variant: the bug needs a second
/// harvest).
#[test]
fn every_write_lands_in_the_pte_or_the_log_with_one_cleaner() {
    for name in ["clean-flush-locked", "clean-external-lock", "clean-deferred"] {
        for w in Window::ALL {
            let expected = match w {
                // The PTE is still dirty: the clean harvests the page, nothing is left after.
                Window::BeforeScan | Window::ScanToClean => (0, true, P, 0),
                // Through the stale entry: the PTE stays clean, the cleaner's bit covers it.
                Window::CleanToFlush => (0, false, P, 0),
                // The entry is gone: the store traps, dirties the PTE and the next clean has it.
                Window::AfterFlush => (1, true, P, P),
            };
            assert_eq!(one_cleaner(name, w), expected, "{name} {w:?}");
        }
    }
}
