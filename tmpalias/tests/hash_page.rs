//! Issue 7, family 2: `hash_page`, a software TLB-miss handler that updates the PTE without
//! the page-table lock (PowerPC), racing with unmap, reclaim and `mprotect(PROT_NONE)`
//! (`hash-two-update`, broken; `hash-cas`, correct), as deterministic interleavings on the
//! `pipt` machine with [`FirstChooser`].
//!
//! Every user access that misses the TLB traps to `hash_page`, which reads the PTE, marks it
//! accessed (and dirty for a store), sets `_PAGE_HASHPTE` and inserts the translation; if the
//! PTE is not present or denies the access, the miss goes to the page-fault path.
//!
//! - `hash-two-update` computes two plain stores from one lockless read (accessed/dirty, then
//!   the hash bit), checks the access only after the first and inserts the translation from
//!   the value read. CPU 1 stopped just after its read while CPU 0 clears the PTE (reclaim,
//!   munmap): its first store makes the cleared PTE present again ([`Obs::PteResurrected`]).
//!   Stopped just before its insert: the translation goes in for a PTE no longer present
//!   ([`Obs::InsertNonPresent`]). A store denied by `mprotect(PROT_NONE)` still sets
//!   `_PAGE_DIRTY` ([`Obs::DirtyWithoutWrite`]), and a stale store after the `mprotect` puts
//!   `_PAGE_USER` back ([`Obs::PteUpdateLost`]): the load through `PROT_NONE` succeeds.
//! - `hash-cas` checks the access first and sets every bit with one compare-and-swap that also
//!   sets `_PAGE_BUSY`, held across the insert; every other PTE updater waits while it is held.
//!   A PTE changed after the read makes the swap fail; the reread sees the change (a cleared
//!   PTE goes to the fault path, a `PROT_NONE` one is denied); a clear that comes after the swap
//!   waits for the insert, and its TLB flush then removes the new translation.
//!
//! CPU 0 sets up and clears; CPU 1 runs the access whose `hash_page` is stopped. `hash_page`
//! runs with interrupts off, a lockless walker like `gup_fast`: a munmap that frees the PTE page
//! (each file mapping owns one) clears and flushes, then waits for the walker to leave before it
//! frees the table. The munmap in which a stale store resurrects a PTE is of an anonymous page
//! beside a keeper mapping, whose PTE page stays. After a resurrection the core's accounting is
//! corrupt (a free frame mapped): those runs stop there.

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::hash::{PAGE_BUSY, PAGE_HASHPTE};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Errno, Executor, Kernel, LockId, MmId, Obs, Op, OpResult, PageFlags, StepError};
use vipt_emu::pte::{Pte, PteFlags};
use vipt_tmpalias::Registry;

/// Sets up, then clears the PTE or changes its protection.
const C0: CpuId = CpuId(0);
/// Runs the access whose `hash_page` races with C0.
const C1: CpuId = CpuId(1);

const TWO: &str = "hash-two-update";
const CAS: &str = "hash-cas";

/// Word 0 of the page.
const MAGIC: u64 = 0x5a5a;
/// A value C1 tries to store.
const OTHER: u64 = 0x0bad;

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

/// One mapped page: `pfn` is the page its PTE maps once set up.
#[derive(Clone, Copy, Debug)]
struct Rig {
    mm: MmId,
    va: VirtAddr,
    pfn: Pfn,
}

/// A shared writable mapping of a 1-page file whose word 0 holds [`MAGIC`], loaded by C0: the
/// PTE is present, young, hashed and clean; C0's TLB holds the translation, C1's does not. The
/// mapping owns its PTE page (file mappings are placed 4 MiB apart), so munmap frees it.
fn setup(k: &Kernel, ex: &mut Executor<'_>) -> Rig {
    let f = k.create_file(1, 0);
    k.state().files[f.index()].disk[0][0] = MAGIC;
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared: true, writable: true, fixed: None };
    let va = mmap(ex, mm, args);
    assert_eq!(run(ex, C0, Op::Load { mm, va }), OpResult::Value(MAGIC));
    let pfn = k.follow_pfn(mm, va).expect("the load mapped the page");
    let r = Rig { mm, va, pfn };
    let want = PteFlags::PRESENT | PteFlags::USER | PteFlags::READ | PteFlags::WRITE | PteFlags::ACCESSED;
    assert_eq!(pte(k, &r).flags(), want | PAGE_HASHPTE);
    assert!(tlb_pfn(k, C0, &r).is_some() && tlb_pfn(k, C1, &r).is_none());
    assert_eq!(hazards(k, &r), []);
    r
}

/// A 1-page anonymous mapping right after a 1-page keeper mapping (anonymous mappings are
/// packed, so they share a PTE page that outlives a munmap of the second), stored to by C0.
fn setup_anon_beside_keeper(k: &Kernel, ex: &mut Executor<'_>) -> Rig {
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: None, shared: false, writable: true, fixed: None };
    let keeper = mmap(ex, mm, args);
    let va = mmap(ex, mm, args);
    assert_eq!(va, keeper.add_pages(1));
    assert_eq!(run(ex, C0, Op::Store { mm, va, value: MAGIC }), OpResult::Value(MAGIC));
    let pfn = k.follow_pfn(mm, va).expect("the store mapped the page");
    let r = Rig { mm, va, pfn };
    assert!(tlb_pfn(k, C1, &r).is_none());
    assert_eq!(hazards(k, &r), []);
    r
}

fn pte(k: &Kernel, r: &Rig) -> Pte {
    k.peek_pte(r.mm, r.va)
}

fn present(k: &Kernel, r: &Rig) -> bool {
    k.layout().pte_present(pte(k, r))
}

/// The frame `cpu`'s TLB translates the page to, if it holds an entry for it.
fn tlb_pfn(k: &Kernel, cpu: CpuId, r: &Rig) -> Option<Pfn> {
    let space = k.mm_space(r.mm);
    let m = k.machine();
    m.cpu(cpu).tlb.entries().iter().find(|e| e.space == space && e.vpn == r.va.vpn()).map(|e| e.pfn)
}

/// A broken invariant, by the CPU that broke it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hazard {
    Resurrected(CpuId),
    InsertNonPresent(CpuId),
    UpdateLost(CpuId),
    DirtyWithoutWrite(CpuId),
    /// `FreedReachable` or `StaleTlb`, by any CPU.
    Reachable,
}

/// The invariant observations since the last call (each about the rig's page).
fn hazards(k: &Kernel, r: &Rig) -> Vec<Hazard> {
    let mut obs = Vec::new();
    k.drain_observations(&mut obs);
    let at = |mm: MmId, va: VirtAddr| {
        assert_eq!((mm, va.page_base()), (r.mm, r.va), "an observation about another page");
    };
    obs.iter()
        .filter_map(|o| match o.obs {
            Obs::PteResurrected { cpu, mm, va, .. } => {
                at(mm, va);
                Some(Hazard::Resurrected(cpu))
            }
            Obs::InsertNonPresent { cpu, mm, va, .. } => {
                at(mm, va);
                Some(Hazard::InsertNonPresent(cpu))
            }
            Obs::PteUpdateLost { cpu, mm, va, .. } => {
                at(mm, va);
                Some(Hazard::UpdateLost(cpu))
            }
            Obs::DirtyWithoutWrite { cpu, mm, va, .. } => {
                at(mm, va);
                Some(Hazard::DirtyWithoutWrite(cpu))
            }
            Obs::FreedReachable { .. } | Obs::StaleTlb { .. } => Some(Hazard::Reachable),
            _ => None,
        })
        .collect()
}

/// Runs `cpu` until its pending action is `stop` (not yet performed).
fn stop_before(ex: &mut Executor<'_>, cpu: CpuId, stop: Action) {
    assert_eq!(ex.run_until(cpu, |a| *a == stop).unwrap(), None, "{cpu:?} finished before {stop:?}");
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

/// Starts `op` (an access of the rig's page) on C1 and stops its `hash_page` just after the PTE
/// read, before its first PTE write (the plain store, or the compare-and-swap).
fn c1_after_read(k: &Kernel, ex: &mut Executor<'_>, r: &Rig, op: Op) {
    let (mm, va) = (r.mm, r.va);
    ex.spawn(C1, op);
    stop_before(
        ex,
        C1,
        Action::UserAccess { space: k.mm_space(mm), va, write: matches!(op, Op::Store { .. }) },
    );
    assert_eq!(ex.step_cpu(C1), Ok(None), "the access misses the TLB");
    assert_eq!(k.pending(C1), Action::Lock(LockId::Irq(C1)), "hash_page runs with interrupts off");
    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(k.pending(C1), Action::PteRead { mm, va });
    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(k.pending(C1), Action::PteWrite { mm, va });
}

/// Starts a load of the rig's page on C1 and stops its `hash_page` just before the insert.
fn c1_before_insert(ex: &mut Executor<'_>, r: &Rig) {
    ex.spawn(C1, Op::Load { mm: r.mm, va: r.va });
    stop_before(ex, C1, Action::Tlb);
}

/// How C0 takes the page away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clear {
    /// munmap of the mapping (its PTE page freed too, unless a keeper shares it).
    Munmap,
    /// Reclaim of the page the address maps.
    Reclaim,
}

impl Clear {
    fn op(self, r: &Rig) -> Op {
        match self {
            Clear::Munmap => Op::Munmap { mm: r.mm, va: r.va, pages: 1 },
            Clear::Reclaim => Op::Reclaim { target: ReclaimTarget::User { mm: r.mm, va: r.va } },
        }
    }
}

fn mprotect_none(r: &Rig) -> Op {
    Op::Mprotect { mm: r.mm, va: r.va, pages: 1, none: true }
}

// ----- the step sequence ------------------------------------------------------------------

/// C1's load of a present PTE it has no translation for, stop by stop: its pending action, and
/// whether a `hash_page` holds the PTE busy and the PTE carries `_PAGE_BUSY` then. The actions
/// are checked here (the same for both versions); the busy bits are returned.
fn load_stops(name: &str) -> Vec<(bool, bool)> {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    let (mm, va) = (r.mm, r.va);
    ex.spawn(C1, Op::Load { mm, va });
    let mut stops = Vec::new();
    loop {
        stops.push((k.pending(C1), (k.pte_busy_held(mm, va), pte(&k, &r).has(PAGE_BUSY))));
        if let Some(res) = ex.step_cpu(C1).unwrap() {
            assert_eq!(res, OpResult::Value(MAGIC));
            break;
        }
    }
    let access = Action::UserAccess { space: k.mm_space(mm), va, write: false };
    let actions = [
        Action::Begin("load"),
        Action::Begin("load"),
        access,
        Action::Lock(LockId::Irq(C1)),
        Action::PteRead { mm, va },
        Action::PteWrite { mm, va },
        Action::Tlb,
        Action::PteWrite { mm, va },
        access,
    ];
    assert_eq!(stops.iter().map(|s| s.0).collect::<Vec<_>>(), actions, "{name}");
    assert_eq!(tlb_pfn(&k, C1, &r), Some(r.pfn));
    let bits = PAGE_BUSY | PAGE_HASHPTE | PteFlags::ACCESSED;
    assert_eq!(pte(&k, &r).flags() & bits, PAGE_HASHPTE | PteFlags::ACCESSED);
    assert_eq!(hazards(&k, &r), []);
    stops.into_iter().map(|s| s.1).collect()
}

/// Both versions: begin, miss, PTE read, PTE write, insert, PTE write, retried access; only
/// `hash-cas` holds the PTE busy (lock and bit), from its compare-and-swap to its last write.
#[test]
fn a_load_miss_reads_writes_inserts_and_writes_again() {
    let busy = |from_swap: bool| {
        let (no, b) = ((false, false), (from_swap, from_swap));
        // Begin, Begin, access, Lock(Irq), PteRead, PteWrite, Tlb, PteWrite, access.
        vec![no, no, no, no, no, no, b, b, no]
    };
    assert_eq!(load_stops(TWO), busy(false));
    assert_eq!(load_stops(CAS), busy(true));
}

// ----- a PTE cleared between the read and the first write ---------------------------------

/// `hash-two-update`: C1 stopped just after its PTE read; C0 reclaims the page (PTE cleared,
/// page freed); C1's stale store makes the PTE present again, mapping the freed frame.
#[test]
fn two_update_resurrects_a_pte_reclaimed_after_its_read() {
    let k = kernel(TWO);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    let read = pte(&k, &r);
    c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

    assert_eq!(run(&mut ex, C0, Clear::Reclaim.op(&r)), OpResult::Done);
    assert_eq!(pte(&k, &r), Pte::NONE);
    assert_eq!(k.page(r.pfn).refcount, 0, "the page was freed");
    assert_eq!(hazards(&k, &r), []);

    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(hazards(&k, &r), [Hazard::Resurrected(C1)]);
    assert_eq!(pte(&k, &r), read, "the PTE read before the reclaim is back");
    assert_eq!(k.follow_pfn(r.mm, r.va), Some(r.pfn));
    assert_eq!(k.page(r.pfn).refcount, 0, "mapping a free frame");
    // The core's accounting is corrupt now (a free frame mapped): the run stops here.
}

/// `hash-two-update`: the same with munmap of an anonymous page whose PTE page a neighbouring
/// mapping keeps: the PTE comes back in an address range no VMA covers.
#[test]
fn two_update_resurrects_a_pte_unmapped_after_its_read() {
    let k = kernel(TWO);
    let mut ex = Executor::new(&k);
    let r = setup_anon_beside_keeper(&k, &mut ex);
    let read = pte(&k, &r);
    c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

    assert_eq!(run(&mut ex, C0, Clear::Munmap.op(&r)), OpResult::Done);
    assert!(k.pte_slot(r.mm, r.va).is_some(), "the keeper keeps the PTE page");
    assert_eq!(pte(&k, &r), Pte::NONE);
    assert_eq!(k.page(r.pfn).refcount, 0);
    assert_eq!(hazards(&k, &r), []);

    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(hazards(&k, &r), [Hazard::Resurrected(C1)]);
    assert_eq!(pte(&k, &r), read.with_flags(PteFlags::ACCESSED));
    assert!(k.state().find_vma(r.mm, r.va).is_none());
    assert_eq!(k.page(r.pfn).refcount, 0);
}

/// `hash-cas`: C1 stopped just after its PTE read; C0 reclaims the page; C1's compare-and-swap
/// fails, the reread finds no PTE and the load re-faults the page from the file.
#[test]
fn cas_rereads_a_pte_reclaimed_after_its_read_and_refaults() {
    let k = kernel(CAS);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

    assert_eq!(run(&mut ex, C0, Clear::Reclaim.op(&r)), OpResult::Done);
    assert_eq!(pte(&k, &r), Pte::NONE);

    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(pte(&k, &r), Pte::NONE, "the compare-and-swap failed");
    assert_eq!(k.pending(C1), Action::PteRead { mm: r.mm, va: r.va }, "and reads again");

    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Value(MAGIC)));
    let pfn = k.follow_pfn(r.mm, r.va).expect("faulted in again");
    assert_eq!(tlb_pfn(&k, C1, &r), Some(pfn));
    assert_eq!(k.page(pfn).refcount, 2, "page cache and the PTE");
    assert_eq!(hazards(&k, &r), []);
}

/// `hash-cas`: the same with munmap (the PTE page freed too): the reread finds no PTE, the
/// fault path no VMA, and the load fails with `SEGV`.
#[test]
fn cas_rereads_a_pte_unmapped_after_its_read_and_segfaults() {
    for setup in [setup, setup_anon_beside_keeper] {
        let k = kernel(CAS);
        let mut ex = Executor::new(&k);
        let r = setup(&k, &mut ex);
        c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

        // With its PTE page to free, munmap clears the PTE, flushes, then waits for C1 to
        // leave its walk before freeing the table.
        ex.spawn(C0, Clear::Munmap.op(&r));
        let unmapped = run_or_block(&mut ex, C0);
        assert_eq!(pte(&k, &r), Pte::NONE);
        assert_eq!(ex.step_cpu(C1), Ok(None));
        assert_eq!(k.pending(C1), Action::PteRead { mm: r.mm, va: r.va });
        if unmapped.is_none() {
            assert_eq!(k.pending(C0), Action::Lock(LockId::Irq(C1)));
            // C1 leaves its walk, then its fault path waits for the munmap's mmap_sem.
            assert_eq!(run_or_block(&mut ex, C1), None);
            assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Done));
        }
        assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Err(Errno::Segv)));
        assert_eq!(pte(&k, &r), Pte::NONE);
        assert_eq!(tlb_pfn(&k, C1, &r), None);
        assert_eq!(hazards(&k, &r), []);
    }
}

// ----- a PTE cleared before the insert ----------------------------------------------------

/// `hash-two-update`: C1 stopped just before its insert; C0 unmaps or reclaims the page and
/// flushes the TLBs; C1 then inserts a translation of the page (no longer mapped; freed by
/// reclaim) for a PTE not present.
#[test]
fn two_update_inserts_a_translation_after_the_pte_was_cleared() {
    for clear in [Clear::Munmap, Clear::Reclaim] {
        let k = kernel(TWO);
        let mut ex = Executor::new(&k);
        let r = setup(&k, &mut ex);
        c1_before_insert(&mut ex, &r);
        assert!(!k.pte_busy_held(r.mm, r.va));

        // munmap clears and flushes, then waits for C1's walk before it frees the PTE page
        // (and drops its page reference); reclaim runs to the end.
        ex.spawn(C0, clear.op(&r));
        let done = run_or_block(&mut ex, C0);
        assert_eq!(done.is_none(), clear == Clear::Munmap, "{clear:?}");
        assert_eq!((present(&k, &r), tlb_pfn(&k, C0, &r)), (false, None), "{clear:?}");
        // The page cache keeps the page after munmap (and the waiting gather still holds its
        // reference); reclaim frees it.
        let refs = if clear == Clear::Munmap { 2 } else { 0 };
        assert_eq!((k.page(r.pfn).mapcount, k.page(r.pfn).refcount), (0, refs), "{clear:?}");
        assert_eq!(hazards(&k, &r), [], "{clear:?}");

        assert_eq!(ex.step_cpu(C1), Ok(None));
        assert_eq!(hazards(&k, &r), [Hazard::InsertNonPresent(C1)], "{clear:?}");
        assert_eq!(tlb_pfn(&k, C1, &r), Some(r.pfn), "{clear:?}");
        assert!(!present(&k, &r), "{clear:?}");
        let page = k.page(r.pfn);
        assert_eq!((page.mapcount, page.refcount), (0, refs), "{clear:?}: a translation of an unmapped page");
        if done.is_none() {
            // C1 leaves its walk (its second store resurrects the PTE) and its retried load
            // is served by the translation it inserted, while the munmap is still running.
            assert_eq!(run_or_block(&mut ex, C1), Some(OpResult::Value(MAGIC)));
            assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Done));
        }
    }
}

/// `hash-cas`: C1 stopped just before its insert holds the PTE busy; C0's unmap or reclaim
/// blocks at its PTE update until C1 has inserted and released it; the clear and its TLB flush
/// then remove C1's translation, and C1's retried load faults (`SEGV` after munmap; the page
/// read back in after reclaim).
#[test]
fn cas_clear_waits_for_the_insert_and_flushes_it() {
    for clear in [Clear::Munmap, Clear::Reclaim] {
        let k = kernel(CAS);
        let mut ex = Executor::new(&k);
        let r = setup(&k, &mut ex);
        let busy = LockId::PteBusy(r.mm, r.va.vpn().raw());
        c1_before_insert(&mut ex, &r);
        assert!(k.pte_busy_held(r.mm, r.va));
        assert!(pte(&k, &r).has(PAGE_BUSY));

        ex.log = Some(Vec::new());
        ex.spawn(C0, clear.op(&r));
        assert_eq!(run_or_block(&mut ex, C0), None, "{clear:?}");
        let last = ex.log.take().unwrap().last().copied().unwrap();
        assert_eq!((last.1, last.2), (C0, Action::Lock(busy)), "{clear:?}");
        assert_eq!(k.pending(C0), Action::Lock(busy), "{clear:?}");
        assert!(!k.can_run(C0));
        assert_eq!(ex.step_cpu(C0), Err(StepError::Blocked(C0)));
        assert_eq!(k.follow_pfn(r.mm, r.va), Some(r.pfn), "{clear:?}: the PTE is not cleared yet");

        assert_eq!(ex.step_cpu(C1), Ok(None));
        assert_eq!(tlb_pfn(&k, C1, &r), Some(r.pfn));
        assert!(!k.can_run(C0), "busy is held until C1's last PTE write");
        assert_eq!(k.pending(C1), Action::PteWrite { mm: r.mm, va: r.va });
        assert_eq!(ex.step_cpu(C1), Ok(None));
        assert!(!k.pte_busy_held(r.mm, r.va));
        assert!(!pte(&k, &r).has(PAGE_BUSY) && pte(&k, &r).has(PAGE_HASHPTE));
        assert!(k.can_run(C0));
        assert!(matches!(k.pending(C1), Action::UserAccess { .. }));

        assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Done), "{clear:?}");
        assert!(!present(&k, &r), "{clear:?}");
        assert_eq!(tlb_pfn(&k, C1, &r), None, "{clear:?}: the flush removed C1's translation");
        assert_eq!(hazards(&k, &r), [], "{clear:?}");

        let expected = match clear {
            Clear::Munmap => OpResult::Err(Errno::Segv),
            Clear::Reclaim => OpResult::Value(MAGIC),
        };
        assert_eq!(ex.run_to_completion(C1), Ok(expected), "{clear:?}");
        assert_eq!(hazards(&k, &r), [], "{clear:?}");
    }
}

// ----- mprotect(PROT_NONE) ------------------------------------------------------------------

/// A store by C1 to the rig's page after `mprotect(PROT_NONE)` of its clean PTE; then munmap.
/// Returns (the store's result, the PTE after it, the hazards, the page dirty after munmap).
fn store_after_mprotect_none(name: &str) -> (OpResult, Pte, Pte, Vec<Hazard>, bool) {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    assert_eq!(run(&mut ex, C0, mprotect_none(&r)), OpResult::Done);
    let protected = pte(&k, &r);
    assert!(protected.has(PteFlags::PRESENT | PteFlags::READ));
    assert!(!protected.flags().intersects(PteFlags::USER | PteFlags::WRITE | PteFlags::DIRTY));
    assert_eq!(tlb_pfn(&k, C0, &r), None, "mprotect flushed the TLBs");

    let res = run(&mut ex, C1, Op::Store { mm: r.mm, va: r.va, value: OTHER });
    let after = pte(&k, &r);
    let hz = hazards(&k, &r);
    assert_eq!(tlb_pfn(&k, C1, &r), None);
    assert_eq!(run(&mut ex, C0, Op::Munmap { mm: r.mm, va: r.va, pages: 1 }), OpResult::Done);
    let dirty = k.page(r.pfn).flags.contains(PageFlags::DIRTY);
    assert_eq!(hazards(&k, &r), []);
    (res, protected, after, hz, dirty)
}

/// `hash-two-update`: a store `PROT_NONE` denies fails with `SEGV`, but its first PTE write,
/// before the access check, has set `_PAGE_DIRTY`; munmap then marks the unwritten page dirty.
#[test]
fn two_update_marks_dirty_a_store_mprotect_denies() {
    let (res, protected, after, hz, dirty) = store_after_mprotect_none(TWO);
    assert_eq!(res, OpResult::Err(Errno::Segv));
    assert_eq!(hz, [Hazard::DirtyWithoutWrite(C1)]);
    assert_eq!(after, protected.with_flags(PteFlags::DIRTY));
    assert!(dirty);
}

/// `hash-cas`: the same store is denied before any PTE write: `SEGV`, the PTE unchanged and
/// clean, the page clean after munmap.
#[test]
fn cas_leaves_clean_a_store_mprotect_denies() {
    let (res, protected, after, hz, dirty) = store_after_mprotect_none(CAS);
    assert_eq!(res, OpResult::Err(Errno::Segv));
    assert_eq!(hz, []);
    assert_eq!(after, protected);
    assert!(!dirty);
}

/// `hash-two-update`: C1's load stopped just after its PTE read; C0 `mprotect(PROT_NONE)`s the
/// mapping; C1's stale store puts `_PAGE_USER` (and `_PAGE_WRITE`) back, and the load succeeds
/// although the VMA is `PROT_NONE`.
#[test]
fn two_update_undoes_mprotect_none() {
    let k = kernel(TWO);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    let read = pte(&k, &r);
    c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

    assert_eq!(run(&mut ex, C0, mprotect_none(&r)), OpResult::Done);
    assert_eq!(pte(&k, &r), read.without_flags(PteFlags::USER | PteFlags::WRITE));

    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(hazards(&k, &r), [Hazard::UpdateLost(C1)]);
    assert_eq!(pte(&k, &r), read, "USER and WRITE are back");
    assert!(k.state().find_vma(r.mm, r.va).unwrap().prot_none);

    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Value(MAGIC)), "a load through PROT_NONE");
    assert_eq!(tlb_pfn(&k, C1, &r), Some(r.pfn));
    assert_eq!(hazards(&k, &r), []);
}

/// `hash-cas`: the same interleaving: the compare-and-swap fails, the reread sees the PTE
/// without `_PAGE_USER`, and the load fails with `SEGV`; the PTE keeps lacking `_PAGE_USER`.
#[test]
fn cas_load_after_mprotect_none_segfaults() {
    let k = kernel(CAS);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    c1_after_read(&k, &mut ex, &r, Op::Load { mm: r.mm, va: r.va });

    assert_eq!(run(&mut ex, C0, mprotect_none(&r)), OpResult::Done);
    let protected = pte(&k, &r);
    assert!(!protected.has(PteFlags::USER));

    assert_eq!(ex.step_cpu(C1), Ok(None));
    assert_eq!(pte(&k, &r), protected, "the compare-and-swap failed");
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Err(Errno::Segv)));
    assert_eq!(pte(&k, &r), protected);
    assert_eq!(tlb_pfn(&k, C1, &r), None);
    assert_eq!(hazards(&k, &r), []);
}

/// `hash-cas`: C1 stopped just before its insert holds the PTE busy; C0's `mprotect(PROT_NONE)`
/// waits for it, then removes `_PAGE_USER` and flushes C1's new translation: the retried load
/// fails with `SEGV`.
#[test]
fn cas_mprotect_waits_for_the_insert_and_flushes_it() {
    let k = kernel(CAS);
    let mut ex = Executor::new(&k);
    let r = setup(&k, &mut ex);
    c1_before_insert(&mut ex, &r);
    ex.spawn(C0, mprotect_none(&r));
    assert_eq!(run_or_block(&mut ex, C0), None);
    assert_eq!(k.pending(C0), Action::Lock(LockId::PteBusy(r.mm, r.va.vpn().raw())));
    assert!(pte(&k, &r).has(PteFlags::USER));

    assert_eq!(ex.run_until(C1, |a| matches!(a, Action::UserAccess { .. })), Ok(None));
    assert_eq!(tlb_pfn(&k, C1, &r), Some(r.pfn));
    assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Done));
    assert!(!pte(&k, &r).has(PteFlags::USER));
    assert_eq!(tlb_pfn(&k, C1, &r), None);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Err(Errno::Segv)));
    assert_eq!(hazards(&k, &r), []);
}
