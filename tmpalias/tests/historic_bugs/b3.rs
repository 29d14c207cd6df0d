//! Historic bug B3.
//!
//! James's "the racer already did it": after CPU0's check passed for B, a racer changes B's PTE.
//! B is congruent with A, so a flush through B's address is a flush of A's dirty X. (a) reclaim
//! flushes through B before clearing; without that flush `pageout` writes OLD and marks P clean,
//! and CPU0's later fdc (through B's `_PAGE_FLUSH` PTE) saves memory but not the disk. (b) after
//! the COW, B's PTE maps Q and CPU0 flushes Q; only do_wp_page's flush of P saves X. (c) munmap
//! flushes the range, then leaves a `_PAGE_FLUSH` PTE that keeps CPU0's fdc effective; with a
//! zeroed PTE CPU0's fdcs are nullified and only the racer's own flush saves X. The racer that
//! does not flush is `TestKnobs::no_flush_on`; `recheck` moves on to A when B's PTE changed; 6.x
//! flushes P by physical address whatever B's PTE says.

use vipt_emu::addr::CpuId;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Errno, Executor, FileId, Kernel, LockId, Op, OpResult};
use vipt_emu::pte::PteKind;
use vipt_tmpalias::Lineage;

use crate::rig::*;

/// The racer of B3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Racer {
    /// (a) reclaim of P: `try_to_unmap` of B and A, `pageout`.
    Reclaim,
    /// (b) B writes: `do_wp_page` COWs, B's PTE now maps a new page Q.
    Cow,
    /// (c) B `munmap`s: `unmap_page_range` clears B's PTE (then waits for `flush_dcache_mmap_lock`).
    Zap,
}

/// B3 outcome: the `read(2)` racing with the racer and how many of its fdcs (after the stop
/// point) were nullified; the disk after the race; `read(2)` after P was dropped from the page
/// cache and read back from disk.
#[derive(Debug, PartialEq, Eq)]
struct B3 {
    read: u64,
    nullified: u64,
    disk: u64,
    reread: u64,
}

/// Stops a `read(2)` on `cpu` inside `flush_dcache_page`, after the walk of `i_mmap` has
/// chosen the mapping it will flush and before that flush.
fn stop_in_flush_dcache_page(k: &Kernel, ex: &mut Executor<'_>, cpu: CpuId, f: FileId, lineage: &str) {
    match lineage {
        // translation_exists passed for the first VMA (B).
        "linux-2.6.14" | "linux-2.6.15" | "recheck" => run_until_nth(ex, cpu, 1, is_label),
        // The lock is taken and the mappings listed; next is B's TLB purge.
        "linux-6.x" | "linux-6.10" => {
            run_until_nth(ex, cpu, 1, |a| *a == Action::Lock(LockId::FlushDcacheMmap(f)));
            assert_eq!(ex.step_cpu(cpu), Ok(None));
            assert_eq!(k.pending(cpu), Action::Tlb);
        }
        // flush_tlb_all, then flush_cache_all: nothing to choose.
        "whole-cache" => run_until_nth(ex, cpu, 1, is_tlb),
        other => panic!("no stop point for {other}"),
    }
}

/// A maps P shared (colour 0) and has X dirty in word 0; B maps P privately at the same
/// colour and has read it (linked first in `i_mmap`). CPU0 `read(2)`s word 0 and stops in
/// `flush_dcache_page` before flushing through B; CPU1 runs the racer; CPU0 finishes.
fn b3_scenario(l: Lineage, racer: Racer) -> B3 {
    let lineage = l.name.clone();
    let k = kernel_with(&l);
    let f = file(&k, 1, 0);
    let a = k.create_mm().unwrap();
    let b = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va_a = map_file(&mut ex, C3, a, f, true);
    let va_b = map_file(&mut ex, C3, b, f, false);
    assert_eq!(user_colour(va_a), user_colour(va_b));
    assert_eq!(load(&mut ex, C3, b, va_b), OLD);
    store(&mut ex, C2, a, va_a, X);
    let p = page_of(&k, f);
    assert_ne!(user_colour(va_a), kernel_colour(p));

    ex.spawn(C0, Op::Read { file: f, pgoff: 0, word: 0 });
    stop_in_flush_dcache_page(&k, &mut ex, C0, f, &lineage);
    let walks_under_lock = lineage != "whole-cache";
    match racer {
        Racer::Reclaim => {
            // The reader holds a reference: the page is written out but stays cached.
            let r = run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
            assert_eq!(r, OpResult::Err(Errno::Busy));
        }
        Racer::Cow => {
            store(&mut ex, C1, b, va_b.with_word(1), Y);
        }
        Racer::Zap => {
            // unlink_vma waits for the flush_dcache_mmap_lock CPU0 holds (if it takes it).
            ex.spawn(C1, Op::Munmap { mm: b, va: va_b, pages: 1 });
            assert_eq!(run_or_block(&mut ex, C1).is_none(), walks_under_lock);
        }
    }
    if walks_under_lock {
        // What B's PTE says when CPU0 flushes through it.
        let kind = k.layout().decode(k.peek_pte(b, va_b));
        match (racer, kind) {
            (Racer::Cow, PteKind::Present { pfn, .. }) => assert_ne!(pfn, p, "B maps its copy"),
            (Racer::Reclaim | Racer::Zap, PteKind::FlushOnly { pfn, .. }) => assert_eq!(pfn, p),
            (Racer::Reclaim | Racer::Zap, PteKind::None) => {}
            other => panic!("unexpected PTE after the racer: {other:?}"),
        }
    }
    let n0 = nullified(&k);
    let raced = value(ex.run_to_completion(C0).unwrap());
    let nullified = nullified(&k) - n0;
    if !ex.is_idle(C1) {
        assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    }
    // Write everything back, drop P from the page cache, read it again from disk.
    assert_eq!(run(&mut ex, C2, Op::Fsync { file: f }), OpResult::Done);
    let disk = k.disk_word(f, 0, 0).unwrap();
    assert_eq!(run(&mut ex, C2, Op::Munmap { mm: a, va: va_a, pages: 1 }), OpResult::Done);
    if !matches!(racer, Racer::Zap) {
        assert_eq!(run(&mut ex, C2, Op::Munmap { mm: b, va: va_b, pages: 1 }), OpResult::Done);
    }
    let target = ReclaimTarget::FilePage { file: f, pgoff: 0 };
    assert_eq!(run(&mut ex, C2, Op::Reclaim { target }), OpResult::Done);
    let reread = read(&mut ex, C2, f, 0);
    B3 { read: raced, nullified, disk, reread }
}

fn lineage_with_racer(name: &str, racer_flushes: bool, zeroing_clear: bool) -> Lineage {
    let knobs = TestKnobs { no_flush_on: (!racer_flushes).then_some(C1), zeroing_clear };
    lineage(name).patched(name, "a racer that may not flush", knobs)
}

const COHERENT: B3 = B3 { read: X, nullified: 0, disk: X, reread: X };

/// read(2) passes translation_exists for B, CPU1 reclaims P: the disk gets X iff the reclaim flushes first.
#[test]
fn b3a_reclaim_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Reclaim), COHERENT, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, false), Racer::Reclaim);
        assert_eq!(hole, B3 { read: X, nullified: 0, disk: OLD, reread: OLD }, "{name}");
    }
}

/// read(2) passes translation_exists for B, B COWs on CPU1: read(2) gets X iff do_wp_page flushes first.
#[test]
fn b3b_cow_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Cow), COHERENT, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, false), Racer::Cow);
        assert_eq!(hole, B3 { read: OLD, nullified: 0, disk: X, reread: X }, "{name}");
    }
}

/// read(2) passes translation_exists for B, B munmaps on CPU1: X lost only with a zeroed PTE and no flush.
#[test]
fn b3c_zap_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Zap), COHERENT, "{name}");
        assert_eq!(b3_scenario(lineage_with_racer(name, false, false), Racer::Zap), COHERENT, "{name}");
        let zeroed = B3 { nullified: LINES, ..COHERENT };
        assert_eq!(b3_scenario(lineage_with_racer(name, true, true), Racer::Zap), zeroed, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, true), Racer::Zap);
        assert_eq!(hole, B3 { read: OLD, nullified: LINES, disk: X, reread: X }, "{name}");
    }
}

/// recheck, same race with non-flushing COW and zap racers: the re-check moves on to A, read(2) gets X.
#[test]
fn b3_recheck_survives_non_flushing_cow_and_zap_racers() {
    assert_eq!(b3_scenario(lineage_with_racer("recheck", false, false), Racer::Cow), COHERENT);
    let zap = b3_scenario(lineage_with_racer("recheck", false, true), Racer::Zap);
    assert_eq!(zap, B3 { nullified: LINES, ..COHERENT });
}

/// The three racers hit 6.x/whole-cache flush_dcache_page before its user flush: read(2) gets X.
#[test]
fn b3_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for racer in [Racer::Reclaim, Racer::Cow, Racer::Zap] {
            assert_eq!(b3_scenario(lineage(name), racer), COHERENT, "{name} {racer:?}");
        }
    }
}
