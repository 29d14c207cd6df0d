//! Historic bug B17.
//!
//! 6.0 (PA8800 path): page aging clears `_PAGE_ACCESSED` without a TLB purge, flush_cache_page
//! flushes only a present and accessed PTE, by user address, and ptep_clear_flush flushes no
//! cache. (b) reclaim skips the flush of the just-aged PTE and frees X with the owner's store
//! dirty in the cache. (c) a presence check passes, reclaim clears the PTE (skipping its own
//! flush), and the checker's fdcs by user address are nullified. 6.x flushes by physical address
//! with no PTE check, in flush_cache_page and again in ptep_clear_flush.

use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Errno, Executor, LockId, Op, OpResult};
use vipt_emu::pte::PteKind;

use crate::rig::*;

/// B17 (b) outcome: the swap slot's word 0, dirty lines left on the freed frame, what the
/// frame's next owner (same colour) reads first, what the original owner reads after swap-in.
#[derive(Debug, PartialEq, Eq)]
struct B17b {
    swap: u64,
    dirty_lines_left: usize,
    new_owner: u64,
    owner_reload: u64,
}

/// Where in reclaim the owner's second store lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReclaimWindow {
    /// After `page_referenced` aged the PTE, before `try_to_unmap`.
    AfterAging,
    /// After `try_to_unmap`'s `flush_cache_page`, before `ptep_clear_flush` clears the PTE.
    BeforeClear,
}

/// The owner (CPU0) stored V1 into anon page X (colour 0). Reclaim (CPU1) stops at `window`;
/// the owner stores V2; reclaim finishes (swap slot 1). Another process faults in an anon page
/// at colour 0 (it gets X's frame) and reads it; the owner reads its page back from swap.
fn b17b_scenario(name: &str, window: ReclaimWindow) -> B17b {
    let k = kernel(name);
    let owner = k.create_mm().unwrap();
    let other = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, owner, 1);
    let vo = map_anon(&mut ex, C2, other, 2);
    assert_eq!(user_colour(va), user_colour(vo));
    store(&mut ex, C2, other, vo.add_pages(1), 0x0e); // the other's PTE page exists already
    store(&mut ex, C0, owner, va, V1);
    let x = k.follow_pfn(owner, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));
    let vipt_emu::mm::Mapping::Anon(anon) = k.page(x).mapping else { panic!("anon page") };

    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::User { mm: owner, va } });
    // The second anon_vma lock is try_to_unmap's.
    run_until_nth(&mut ex, C1, 2, |a| *a == Action::Lock(LockId::AnonVma(anon)));
    if window == ReclaimWindow::BeforeClear {
        run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm: owner, va });
    }
    store(&mut ex, C0, owner, va, V2);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    let swap = swap_word(&k, 1, 0);
    let dirty_lines_left = k.machine().dirty_lines_of(x);

    let new_owner = load(&mut ex, C2, other, vo);
    assert_eq!(k.follow_pfn(other, vo), Some(x), "the other process got X's frame");
    B17b { swap, dirty_lines_left, new_owner, owner_reload: load(&mut ex, C0, owner, va) }
}

/// 6.0: owner stores after aging or before the clear, reclaim skips the flush: swap 0, next owner sees V2.
#[test]
fn b17b_reclaim_skips_flush_of_old_pte_and_frees_page_with_dirty_lines() {
    for window in [ReclaimWindow::AfterAging, ReclaimWindow::BeforeClear] {
        let got = b17b_scenario("linux-6.0", window);
        assert_eq!(got, B17b { swap: 0, dirty_lines_left: 1, new_owner: V2, owner_reload: 0 }, "{window:?}");
    }
}

/// Same two windows on 6.x and whole-cache: swap gets V2, no dirty line is left, the next owner reads 0.
#[test]
fn b17b_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for window in [ReclaimWindow::AfterAging, ReclaimWindow::BeforeClear] {
            let got = b17b_scenario(name, window);
            let want = B17b { swap: V2, dirty_lines_left: 0, new_owner: 0, owner_reload: V2 };
            assert_eq!(got, want, "{name} {window:?}");
        }
    }
}

/// B17 (c) outcome: what `access_process_vm` read, its nullified fdcs after the stop point,
/// the swap slot's word 0.
#[derive(Debug, PartialEq, Eq)]
struct B17c {
    peek: u64,
    nullified: u64,
    swap: u64,
}

/// The owner (CPU0) stored V1 into anon page X (colour 0). A debugger (CPU2) peeks the word
/// with `access_process_vm` and stops in `flush_anon_page` after its presence check; reclaim
/// (CPU1) ages, unmaps and swaps X out (busy: the debugger holds a reference); the peek goes on.
fn b17c_scenario(name: &str) -> B17c {
    let k = kernel(name);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, mm, 1);
    store(&mut ex, C0, mm, va, V1);
    let x = k.follow_pfn(mm, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));

    ex.spawn(C2, Op::AccessVm { mm, va, store: None });
    if name == "linux-6.0" {
        run_until_nth(&mut ex, C2, 1, is_label);
        assert_eq!(k.pending(C2), Action::Label("flush_cache_page: pte needs flush"));
    } else {
        // 6.x and whole-cache start flush_anon_page with a TLB purge.
        run_until_nth(&mut ex, C2, 1, is_tlb);
    }
    let n0 = nullified(&k);
    let r = run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::User { mm, va } });
    assert_eq!(r, OpResult::Err(Errno::Busy));
    assert!(matches!(k.layout().decode(k.peek_pte(mm, va)), PteKind::Swap { offset: 1, .. }));
    let peek = value(ex.run_to_completion(C2).unwrap());
    B17c { peek, nullified: nullified(&k) - n0, swap: swap_word(&k, 1, 0) }
}

/// 6.0: a peek passes flush_anon_page's PTE check, reclaim swaps X out, its fdcs are nullified: reads 0.
#[test]
fn b17c_pte_cleared_between_presence_check_and_flush_nullifies_it() {
    let got = b17c_scenario("linux-6.0");
    assert_eq!(got, B17c { peek: 0, nullified: LINES, swap: 0 });
}

/// Same interleaving on 6.x and whole-cache: the peek flushes by physical address and reads V1.
#[test]
fn b17c_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        assert_eq!(b17c_scenario(name), B17c { peek: V1, nullified: 0, swap: V1 }, "{name}");
    }
}
