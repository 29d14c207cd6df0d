//! Historic bug B7.
//!
//! 2.6.14 and 3.x flush_cache_mm flush the cache but no TLB, and ptep_set_wrprotect purges
//! nothing, so T1 keeps storing through its writable entry; the parent's COW copies X through the
//! kernel alias without flushing T1's user-colour line and loses V2 (which stays in X, the
//! child's). Half-fix (i) (purge on PTE change) only closes the window after the write-protect;
//! half-fix (ii) (flush the source before copying) makes every copy complete: in this model it
//! loses no store. What (ii) still lets through is a store after the write-protect, via the stale
//! entry, into X, which the child keeps; fork allows that for a store concurrent with it, and
//! linux-6.10 does the same once T1 re-creates its entry before the write-protect (6.10 does not
//! purge in ptep_set_wrprotect; 6.x does). 6.x, 6.10 and whole-cache flush every TLB in
//! flush_cache_mm and flush the source before copying.

use vipt_emu::mm::{Action, Executor, Op, OpResult};
use vipt_emu::pte::PteFlags;

use crate::rig::*;

/// Where in `fork` thread T1's second store lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ForkWindow {
    /// After `flush_cache_mm`, before `ptep_set_wrprotect` of the page (the PTE is writable).
    BeforeWrprotect,
    /// After `ptep_set_wrprotect` (and its purge, if the lineage purges), before
    /// `flush_tlb_mm`: only a stale TLB entry still allows the store.
    AfterWrprotect,
}

/// B7 outcome: whether T1's store had to wait for the fork (it faulted), and what the parent
/// and the child read at word 0 after the parent's COW.
#[derive(Debug, PartialEq, Eq)]
struct B7 {
    store_waited_for_fork: bool,
    parent: u64,
    child: u64,
}

/// Thread T1 (CPU0) stored V1 into anon page X (colour 0); thread T2 (CPU1) forks and stops at
/// `window`; T1 stores V2 to word 0; the fork ends; T1 stores to word 1, so the parent COWs
/// X; then parent (CPU0) and child (CPU2) load word 0.
fn b7_scenario(name: &str, window: ForkWindow) -> B7 {
    let k = kernel(name);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, mm, 1);
    store(&mut ex, C0, mm, va, V1);
    let x = k.follow_pfn(mm, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));

    ex.spawn(C1, Op::Fork { mm });
    match window {
        ForkWindow::BeforeWrprotect => {
            run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm, va });
            assert!(k.peek_pte(mm, va).has(PteFlags::WRITE));
        }
        ForkWindow::AfterWrprotect => {
            // The next PTE write is the child's set_pte_at.
            run_until_nth(&mut ex, C1, 1, |a| matches!(a, Action::PteWrite { mm: m, .. } if *m != mm));
            assert!(!k.peek_pte(mm, va).has(PteFlags::WRITE));
        }
    }
    ex.spawn(C0, Op::Store { mm, va, value: V2 });
    let early = run_or_block(&mut ex, C0);
    let OpResult::Forked(child) = ex.run_to_completion(C1).unwrap() else { panic!("fork failed") };
    match early {
        Some(r) => assert_eq!(r, OpResult::Value(V2)),
        None => assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Value(V2))),
    }
    store(&mut ex, C0, mm, va.with_word(1), Y);
    assert_ne!(k.follow_pfn(mm, va), Some(x), "the parent COWed");
    assert_eq!(k.follow_pfn(child, va), Some(x), "the child keeps X");
    B7 {
        store_waited_for_fork: early.is_none(),
        parent: load(&mut ex, C0, mm, va),
        child: load(&mut ex, C2, child, va),
    }
}

/// T1 stores V2 before/after fork's wrprotect (stale TLB entry), parent COWs: the parent reads V1.
#[test]
fn b7_store_through_stale_tlb_entry_after_wrprotect_is_missed_by_cow_copy() {
    for name in ["linux-2.6.14", "tmpalias"] {
        let lost = B7 { store_waited_for_fork: false, parent: V1, child: V2 };
        assert_eq!(b7_scenario(name, ForkWindow::AfterWrprotect), lost, "{name}");
        assert_eq!(b7_scenario(name, ForkWindow::BeforeWrprotect), lost, "{name}");
    }
}

/// tmpalias+purge: V2 after wrprotect waits for the fork; V2 before it is missed by the COW copy (V1).
#[test]
fn b7_purge_half_fix_still_loses_a_store_made_before_wrprotect() {
    let after = b7_scenario("tmpalias+purge", ForkWindow::AfterWrprotect);
    assert_eq!(after, B7 { store_waited_for_fork: true, parent: V2, child: V1 });
    let before = b7_scenario("tmpalias+purge", ForkWindow::BeforeWrprotect);
    assert_eq!(before, B7 { store_waited_for_fork: false, parent: V1, child: V2 });
}

/// tmpalias+precopy: the COW copy has V2 in both windows (no loss); V2 after wrprotect reaches the child.
#[test]
fn b7_precopy_half_fix_copies_every_store_but_a_stale_store_reaches_the_child() {
    let before = b7_scenario("tmpalias+precopy", ForkWindow::BeforeWrprotect);
    assert_eq!(before, B7 { store_waited_for_fork: false, parent: V2, child: V2 });
    let after = b7_scenario("tmpalias+precopy", ForkWindow::AfterWrprotect);
    assert_eq!(after, B7 { store_waited_for_fork: false, parent: V2, child: V2 });
}

/// 6.x/whole-cache: V2 before wrprotect is copied; V2 after it faults and COWs after the fork.
#[test]
fn b7_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let before = b7_scenario(name, ForkWindow::BeforeWrprotect);
        assert_eq!(before, B7 { store_waited_for_fork: false, parent: V2, child: V2 }, "{name}");
        let after = b7_scenario(name, ForkWindow::AfterWrprotect);
        assert_eq!(after, B7 { store_waited_for_fork: true, parent: V2, child: V1 }, "{name}");
    }
}
