//! Issue 7, family 3: `mmu_gather` range tracking and deferred page-table freeing, with a
//! lockless `gup_fast` walker (`gather-range` and `gather-fullmm`, correct; `gather-no-sync`
//! and `gather-first-page`, broken), as deterministic interleavings on the `pipt` machine with
//! [`FirstChooser`].
//!
//! `munmap` zaps the PTEs into a gather, unhooks a PTE page no VMA uses any more, and finishes
//! the gather: TLB flush, then (if a table was gathered and the lineage waits) a wait for every
//! CPU inside a `gup_fast` walk (taking and releasing its [`LockId::Irq`]), then the frees.
//!
//! - `gather-no-sync` frees the table without waiting: CPU 1, stopped in `gup_fast` just after
//!   reading the PMD, can still read the freed table ([`Obs::FreedReachable`] with `walker`).
//!   On the correct lineages the same munmap blocks until the walker leaves.
//! - `gather-first-page` flushes only the first page of the gathered range: a second page
//!   touched by CPU 1 stays in its TLB after the munmap ([`Obs::StaleTlb`]) and, anonymous, is
//!   freed while still reachable (CPU 1 can still load it).
//! - Cost: `gather-fullmm` purges the whole mm at every gather flush; `gather-range` purges the
//!   VMA's range at the end of the VMA, and the whole mm when a freed table widens the final
//!   flush past the ceiling.
//!
//! File mappings are placed at 4 MiB-coloured addresses, so each one owns its PTE page;
//! anonymous ones are packed, so a small "keeper" mapping makes the next one share its PTE page.

use vipt_emu::addr::{CpuId, PAGE_SIZE, Pfn, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::counters::Counters;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Action, Errno, Executor, Kernel, LockId, MmId, Obs, Op, OpResult, StepError};
use vipt_emu::pgtable::PMD_SIZE;
use vipt_tmpalias::Registry;

/// The CPU that munmaps.
const C0: CpuId = CpuId(0);
/// The CPU that walks (`gup_fast`) or holds the TLB entries.
const C1: CpuId = CpuId(1);

const MAGIC: u64 = 0x5a5a;

// ----- rig --------------------------------------------------------------------------------

fn kernel(name: &str) -> Kernel {
    let l = Registry::builtin().get(name).cloned().unwrap_or_else(|| panic!("no lineage {name}"));
    let k = l.boot(Preset::Pipt.config(), Box::new(FirstChooser));
    k.record_observations();
    k
}

fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

fn mmap(ex: &mut Executor<'_>, mm: MmId, args: MmapArgs) -> VirtAddr {
    match run(ex, C0, Op::Mmap { mm, args }) {
        OpResult::Mapped(va) => va,
        other => panic!("mmap failed: {other:?}"),
    }
}

/// A shared mapping of the first `pages` pages of a new file (owns its PTE page).
fn map_file(k: &Kernel, ex: &mut Executor<'_>, mm: MmId, pages: u64) -> VirtAddr {
    let f = k.create_file(pages, 0);
    mmap(ex, mm, MmapArgs { pages, file: Some((f, 0)), shared: true, writable: true, fixed: None })
}

fn map_anon(ex: &mut Executor<'_>, mm: MmId, pages: u64) -> VirtAddr {
    mmap(ex, mm, MmapArgs { pages, file: None, shared: false, writable: true, fixed: None })
}

fn load(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr) -> OpResult {
    run(ex, cpu, Op::Load { mm, va })
}

fn munmap(ex: &mut Executor<'_>, mm: MmId, va: VirtAddr, pages: u64) {
    assert_eq!(run(ex, C0, Op::Munmap { mm, va, pages }), OpResult::Done);
}

/// The PTE page the PMD of `va` names now.
fn pmd(k: &Kernel, mm: MmId, va: VirtAddr) -> Option<Pfn> {
    let pgd = k.state().mms[mm.index()].pgd;
    k.machine().pt.pmd(pgd, va)
}

fn is_table(k: &Kernel, pfn: Pfn) -> bool {
    k.machine().pt.is_table(pfn)
}

/// Observations since the last call, `FreedReachable` and `StaleTlb` only.
fn reports(k: &Kernel) -> Vec<Obs> {
    let mut obs = Vec::new();
    k.drain_observations(&mut obs);
    obs.into_iter()
        .map(|o| o.obs)
        .filter(|o| matches!(o, Obs::FreedReachable { .. } | Obs::StaleTlb { .. }))
        .collect()
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

/// A 1-page shared file mapping, loaded by C1; C1 then starts `gup_fast` on it and is stopped
/// just after reading the PMD (before reading the PTE). Returns the mm, the page and its table.
fn walker_inside(k: &Kernel, ex: &mut Executor<'_>) -> (MmId, VirtAddr, Pfn) {
    let mm = k.create_mm().unwrap();
    let va = map_file(k, ex, mm, 1);
    assert_eq!(load(ex, C1, mm, va), OpResult::Value(0));
    let table = pmd(k, mm, va).expect("the load allocated the PTE page");
    ex.spawn(C1, Op::GupFast { mm, va });
    assert_eq!(ex.run_until(C1, |a| *a == Action::Label("gup_fast: read pmd")).unwrap(), None);
    assert_eq!(ex.run_until(C1, |a| matches!(a, Action::PteRead { .. })).unwrap(), None);
    assert_eq!(k.pending(C1), Action::PteRead { mm, va });
    assert!(k.in_lockless_walk(C1));
    (mm, va, table)
}

// ----- tables freed under gup_fast ----------------------------------------------------------

/// `gather-no-sync`: the munmap frees the PTE page while CPU 1's walk still holds it; the walk
/// then finds the table gone and falls back to the slow path, which finds no VMA.
#[test]
fn no_sync_frees_the_table_under_a_gup_fast_walker() {
    let k = kernel("gather-no-sync");
    let mut ex = Executor::new(&k);
    let (mm, va, table) = walker_inside(&k, &mut ex);
    reports(&k);

    munmap(&mut ex, mm, va, 1);
    assert!(!is_table(&k, table), "the table was freed");
    let r = reports(&k);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        matches!(r[0], Obs::FreedReachable { cpu: C0, pfn, table: true, holder: C1, walker: true, .. } if pfn == table),
        "{r:?}"
    );

    assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Err(Errno::Segv));
    assert!(!k.in_lockless_walk(C1));
    assert_eq!(reports(&k), vec![]);
}

/// `gather-range` and `gather-fullmm`: the munmap blocks on CPU 1's interrupts-off section
/// before freeing the (already unhooked) table, and completes once the walker has left.
#[test]
fn waiting_gathers_block_the_munmap_until_the_walker_leaves() {
    for name in ["gather-range", "gather-fullmm"] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let (mm, va, table) = walker_inside(&k, &mut ex);

        ex.spawn(C0, Op::Munmap { mm, va, pages: 1 });
        assert_eq!(run_or_block(&mut ex, C0), None, "{name}");
        assert_eq!(k.pending(C0), Action::Lock(LockId::Irq(C1)), "{name}");
        assert!(!k.can_run(C0), "{name}");
        assert_eq!(ex.step_cpu(C0), Err(StepError::Blocked(C0)), "{name}");
        assert_eq!(pmd(&k, mm, va), None, "{name}: unhooked");
        assert!(is_table(&k, table), "{name}: not freed yet");

        // The walk reads the cleared PTE, leaves its walk, and its slow path waits for the
        // munmap's mmap_sem.
        assert_eq!(run_or_block(&mut ex, C1), None, "{name}");
        assert!(!k.in_lockless_walk(C1), "{name}");
        assert_eq!(k.pending(C1), Action::Lock(LockId::MmapSem(mm)), "{name}");

        assert!(k.can_run(C0), "{name}");
        assert_eq!(ex.run_to_completion(C0).unwrap(), OpResult::Done, "{name}");
        assert!(!is_table(&k, table), "{name}: freed after the walk");
        assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Err(Errno::Segv), "{name}");
        assert_eq!(reports(&k), vec![], "{name}");
    }
}

// ----- range tracking -----------------------------------------------------------------------

/// `gather-first-page`, 2-page anonymous mapping sharing its PTE page: the flush purges only the
/// first page; C1 keeps translating the second, freed page and can still read it.
#[test]
fn first_page_range_leaves_the_second_page_stale_and_reachable() {
    for name in ["gather-first-page", "gather-range"] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let mm = k.create_mm().unwrap();
        let keeper = map_anon(&mut ex, mm, 1);
        let va = map_anon(&mut ex, mm, 2);
        let va2 = va.add_bytes(PAGE_SIZE);
        assert_eq!(keeper.raw() / PMD_SIZE, va2.raw() / PMD_SIZE, "one PTE page");
        assert_eq!(load(&mut ex, C1, mm, va), OpResult::Value(0));
        assert_eq!(load(&mut ex, C1, mm, va2), OpResult::Value(0));
        assert_eq!(run(&mut ex, C1, Op::Store { mm, va: va2, value: MAGIC }), OpResult::Value(MAGIC));
        let p2 = k.follow_pfn(mm, va2).unwrap();
        let space = k.mm_space(mm);
        reports(&k);

        munmap(&mut ex, mm, va, 2);
        assert!(pmd(&k, mm, va).is_some(), "{name}: the keeper holds the table");
        let stale = k.machine().tlb_translates(space, va2, p2);
        let r = reports(&k);
        if name == "gather-first-page" {
            assert_eq!(stale, Some(C1));
            assert_eq!(r.len(), 2, "{r:?}");
            assert!(
                matches!(r[0], Obs::StaleTlb { cpu: C0, mm: m, va: v, pfn, holder: C1, .. }
                    if m == mm && v == va2 && pfn == p2),
                "{r:?}"
            );
            assert!(
                matches!(r[1], Obs::FreedReachable { cpu: C0, pfn, table: false, holder: C1, walker: false, .. }
                    if pfn == p2),
                "{r:?}"
            );
            // Use after free: the stale entry still reaches the freed frame.
            assert_eq!(load(&mut ex, C1, mm, va2), OpResult::Value(MAGIC));
        } else {
            assert_eq!(stale, None, "{name}");
            assert_eq!(r, vec![], "{name}");
            assert_eq!(load(&mut ex, C1, mm, va2), OpResult::Err(Errno::Segv), "{name}");
        }
        assert_eq!(load(&mut ex, C1, mm, va), OpResult::Err(Errno::Segv), "{name}: first page purged");
    }
}

/// `gather-first-page`, 2-page shared file mapping (its table is freed too): the second page
/// stays in C1's TLB, but the page cache keeps the page, so nothing freed is reachable.
#[test]
fn first_page_range_on_a_file_mapping_is_stale_but_frees_nothing_reachable() {
    for name in ["gather-first-page", "gather-range"] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let mm = k.create_mm().unwrap();
        let va = map_file(&k, &mut ex, mm, 2);
        assert_eq!(va.raw() % PMD_SIZE, 0, "the range (widened to the table's 2 MiB) starts at va");
        let va2 = va.add_bytes(PAGE_SIZE);
        assert_eq!(load(&mut ex, C1, mm, va), OpResult::Value(0));
        assert_eq!(load(&mut ex, C1, mm, va2), OpResult::Value(0));
        let (p2, table) = (k.follow_pfn(mm, va2).unwrap(), pmd(&k, mm, va).unwrap());
        reports(&k);

        munmap(&mut ex, mm, va, 2);
        assert!(!is_table(&k, table), "{name}: table freed");
        let r = reports(&k);
        if name == "gather-first-page" {
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(
                matches!(r[0], Obs::StaleTlb { holder: C1, va: v, pfn, .. } if v == va2 && pfn == p2),
                "{r:?}"
            );
        } else {
            assert_eq!(r, vec![], "{name}");
        }
    }
}

// ----- cost ---------------------------------------------------------------------------------

/// The gather flush counters of one munmap of a touched 1-page anonymous mapping, with or
/// without a keeper mapping sharing its PTE page: `(whole-mm flushes, range flushes)`.
fn munmap_flushes(name: &str, keeper: bool) -> (u64, u64) {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    if keeper {
        map_anon(&mut ex, mm, 1);
    }
    let va = map_anon(&mut ex, mm, 1);
    assert_eq!(load(&mut ex, C0, mm, va), OpResult::Value(0));
    let before: Counters = k.machine().counters;
    munmap(&mut ex, mm, va, 1);
    assert_eq!(pmd(&k, mm, va).is_some(), keeper, "{name}: the table is freed iff no keeper");
    let d = k.machine().counters.since(&before);
    (d.gather_mm_flushes, d.gather_range_flushes)
}

/// `gather-fullmm` purges the whole mm at every flush the gather makes, even for one page:
/// once at the end of the VMA (`tlb_end_vma`), and once more in `tlb_finish_mmu` when the
/// munmap freed the PTE page.
#[test]
fn fullmm_flushes_the_whole_mm_at_every_gather_flush() {
    assert_eq!(munmap_flushes("gather-fullmm", true), (1, 0));
    assert_eq!(munmap_flushes("gather-fullmm", false), (2, 0));
}

/// `gather-range` purges only the range when no table is freed.
#[test]
fn range_counts_one_range_flush_when_no_table_is_freed() {
    assert_eq!(munmap_flushes("gather-range", true), (0, 1));
}

/// `gather-range`: the VMA's PTEs are flushed by range at the end of the VMA; freeing the PTE
/// page afterwards owes its whole 2 MiB, past the ceiling: `tlb_finish_mmu` purges the whole
/// mm.
#[test]
fn range_widened_by_a_freed_table_flushes_the_whole_mm() {
    assert_eq!(munmap_flushes("gather-range", false), (1, 1));
}
