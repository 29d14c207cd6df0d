//! Historic bug B13.
//!
//! 3.x flush_cache_range of the current mm flushes by user address. Over a PTE that reclaim has
//! cleared every fdc is nullified, so a line loaded between reclaim's flush and its clear
//! survives the munmap; the next mapping of the reused frame at that colour reads it. 6.x flushes
//! in ptep_clear_flush by physical address and flushes ranges through the whole cache (or present
//! pages only, via tmpalias).

use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Executor, LockId, Op, OpResult};
use vipt_emu::pgtable::PMD_SIZE;

use crate::rig::*;

/// B13 outcome: P's line at the user colour after the `munmap` (dirty?, word 0), fdcs of the
/// `munmap` that were nullified, and what a new mapping of the file reads after a `write(2)`.
#[derive(Debug, PartialEq, Eq)]
struct B13 {
    line_after_munmap: Option<(bool, u64)>,
    nullified_in_munmap: u64,
    reload: u64,
}

/// A process maps file page P shared at colour 0 and reads it. Reclaim (CPU1) flushes it and
/// stops before clearing the PTE; the process reads it again (a clean line at colour 0), then
/// reclaim clears the PTE and frees P. The process unmaps the VMA (a range flush over a
/// non-present page); the kernel `write(2)`s NEW into the file, whose page reuses P's frame;
/// the file is mapped again at colour 0 and read.
fn b13_scenario(name: &str) -> B13 {
    let k = kernel(name);
    let f = file(&k, 1, 0);
    let g = k.create_file(1, 1);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_file(&mut ex, C0, mm, f, true);
    // A second VMA under the same PTE page keeps that page (and P's frame order) alive.
    let vg = map_file(&mut ex, C0, mm, g, true);
    assert_eq!(va.raw() / PMD_SIZE, vg.raw() / PMD_SIZE);
    assert_eq!(load(&mut ex, C0, mm, va), OLD);
    let p = page_of(&k, f);
    assert_ne!(user_colour(va), kernel_colour(p));

    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
    // The second i_mmap lock is try_to_unmap's; its first PTE write is the clear.
    run_until_nth(&mut ex, C1, 2, |a| *a == Action::Lock(LockId::IMmap(f)));
    run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm, va });
    assert_eq!(load(&mut ex, C0, mm, va), OLD);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    assert_eq!(k.state().files[f.index()].cached(0), None);

    let n0 = nullified(&k);
    assert_eq!(run(&mut ex, C0, Op::Munmap { mm, va, pages: 1 }), OpResult::Done);
    let nullified_in_munmap = nullified(&k) - n0;
    let line_after_munmap = k.machine().cached_word(va, p.word(0)).map(|(_, dirty, v)| (dirty, v));

    write(&mut ex, C2, f, 0, NEW);
    assert_eq!(page_of(&k, f), p, "the new page-cache page reuses P's frame");
    let va2 = map_file(&mut ex, C0, mm, f, true);
    assert_eq!(user_colour(va2), user_colour(va));
    B13 { line_after_munmap, nullified_in_munmap, reload: load(&mut ex, C0, mm, va2) }
}

/// Load between reclaim's flush and clear; munmap's range flush over the hole is nullified: reload is OLD.
#[test]
fn b13_range_flush_over_hole_is_nullified_and_stale_line_survives() {
    let got = b13_scenario("tmpalias");
    assert_eq!(got, B13 { line_after_munmap: Some((false, OLD)), nullified_in_munmap: LINES, reload: OLD });
}

/// Same interleaving on 6.x and whole-cache: no line survives, no fdc is nullified, the reload reads NEW.
#[test]
fn b13_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let got = b13_scenario(name);
        assert_eq!(got, B13 { line_after_munmap: None, nullified_in_munmap: 0, reload: NEW }, "{name}");
    }
}
