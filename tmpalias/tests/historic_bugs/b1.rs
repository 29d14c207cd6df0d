//! Historic bug B1.
//!
//! The 2.5 pte_chains rmap cleared the PTE and then called flush_cache_page: the fdcs through
//! the user address find no translation and are nullified, so `pageout` writes memory (OLD) to
//! the disk and the freed frame keeps the store as a dirty line. Flushing first (2.4.10 and
//! later 2.4, 2.6+), or clearing to a `_PAGE_FLUSH` PTE that still yields a flush-only
//! translation (the parisc fix), saves the store.

use vipt_emu::arch::UnmapOrder;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Executor, Kernel, Op, OpResult};

use crate::rig::*;

/// B1 outcome: what reached the disk, what `read(2)` returns afterwards, dirty lines left on
/// the freed frame, nullified flushes during reclaim.
#[derive(Debug, PartialEq, Eq)]
struct B1 {
    disk: u64,
    read_back: u64,
    dirty_lines_left: usize,
    nullified: u64,
}

/// A process stores [`NEW`] into its shared file mapping (colour 0); reclaim then takes the
/// page: `try_to_unmap`, `pageout` to the file's disk block, free.
fn b1_scenario(k: &Kernel) -> B1 {
    let f = file(k, 1, 0);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(k);
    let va = map_file(&mut ex, C0, mm, f, true);
    store(&mut ex, C0, mm, va, NEW);
    let p = page_of(k, f);
    assert_ne!(user_colour(va), kernel_colour(p), "the user alias must not be the kernel's");
    let n0 = nullified(k);
    assert_eq!(
        run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } }),
        OpResult::Done
    );
    let nullified = nullified(k) - n0;
    assert_eq!(k.state().files[f.index()].cached(0), None, "the page was reclaimed");
    let dirty_lines_left = k.machine().dirty_lines_of(p);
    B1 {
        disk: k.disk_word(f, 0, 0).unwrap(),
        read_back: read(&mut ex, C2, f, 0),
        dirty_lines_left,
        nullified,
    }
}

/// Store to a shared file page, then reclaim on 2.5 rmap: PTE cleared first, flush nullified, disk keeps OLD.
#[test]
fn b1_clear_then_flush_nullifies_reclaim_flush_and_loses_store() {
    let k = kernel("linux-2.5-rmap");
    let got = b1_scenario(&k);
    assert_eq!(got, B1 { disk: OLD, read_back: OLD, dirty_lines_left: 1, nullified: LINES });
}

/// Same store + reclaim on 2.4 (flush first, same parisc hooks), 6.x, whole-cache, and 2.6.14 made
/// to clear first (FLUSH PTE): disk gets NEW.
#[test]
fn b1_fixed_by_flushing_first_or_by_the_flush_pte() {
    for name in FIXED.into_iter().chain(["linux-2.4"]) {
        let got = b1_scenario(&kernel(name));
        assert_eq!(got, B1 { disk: NEW, read_back: NEW, dirty_lines_left: 0, nullified: 0 }, "{name}");
    }
    // 2.6.14 run in the 2.4 order: the FLUSH PTE left by ptep_get_and_clear still lets the
    // non-access miss handler build a flush-only translation, so the late flush works.
    let late = lineage("linux-2.6.14").configure(|c| c.unmap_order = UnmapOrder::ClearThenFlush);
    let got = b1_scenario(&kernel_with(&late));
    assert_eq!(got, B1 { disk: NEW, read_back: NEW, dirty_lines_left: 0, nullified: 0 });
}
