//! Historic bug B2.
//!
//! `write(2)` calls flush_dcache_page, which walks i_mmap: B first. B's swap PTE passes the 2.6.14
//! filter and `pte_pfn` "matches" P, so the fdcs go to B's unmapped address (all nullified) and
//! the walk stops. A's dirty line (X, OLD) is never flushed: A reads OLD at word 1, and `fsync`
//! writes that line over the kernel's Y. Hugh's 2.6.15 filter skips B and flushes A.

use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Executor, FileId, Kernel, MmId, Op, OpResult};
use vipt_emu::pte::{PteKind, PteLayout};
use vipt_tmpalias::lineage::Linux26;

use crate::rig::*;

/// The state of B2 just before the kernel writes the page.
struct B2Setup<'k> {
    k: &'k Kernel,
    ex: Executor<'k>,
    f: FileId,
    a: MmId,
    va_a: VirtAddr,
    b: MmId,
    va_b: VirtAddr,
    p: Pfn,
}

/// File page P (pfn N); process A maps it shared at colour 0, process B privately at the same
/// address and is linked first in `i_mmap`; B's COW copy is swapped out to slot 16·N, whose
/// 2.6.14 swap PTE reads as pfn N.
fn b2_setup(k: &Kernel) -> B2Setup<'_> {
    let f = file(k, 1, 0);
    let a = k.create_mm().unwrap();
    let b = k.create_mm().unwrap();
    let mut ex = Executor::new(k);
    let va_a = map_file(&mut ex, C0, a, f, true);
    let va_b = map_file(&mut ex, C1, b, f, false);
    store(&mut ex, C1, b, va_b.with_word(2), 0xb); // COW: B now maps a private copy
    let p = page_of(k, f);
    assert_ne!(user_colour(va_a), kernel_colour(p));
    let slot = 16 * p.raw();
    k.machine().replace_chooser(Box::new(SwapSlotChooser(slot)));
    assert_eq!(
        run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::User { mm: b, va: va_b } }),
        OpResult::Done
    );
    k.machine().replace_chooser(Box::new(FirstChooser));
    let pte = k.peek_pte(b, va_b);
    assert!(matches!(k.layout().decode(pte), PteKind::Swap { offset, .. } if offset == slot));
    let i_mmap: Vec<MmId> = {
        let s = k.state();
        s.files[f.index()].i_mmap.iter().map(|&v| s.vma(v).mm).collect()
    };
    assert_eq!(i_mmap, [b, a], "B's private VMA is walked first");
    B2Setup { k, ex, f, a, va_a, b, va_b, p }
}

/// B2 outcome: A's load of word 1 after the `write(2)`, the disk after `fsync`, nullified
/// fdcs during the `write(2)`.
#[derive(Debug, PartialEq, Eq)]
struct B2 {
    load: u64,
    disk: [u64; 2],
    nullified: u64,
}

/// A stores X to word 0 (dirty line at colour 0); the kernel `write(2)`s Y to word 1 (same
/// line); A loads word 1; `fsync`.
fn b2_scenario(k: &Kernel) -> B2 {
    let B2Setup { k, mut ex, f, a, va_a, .. } = b2_setup(k);
    store(&mut ex, C0, a, va_a, X);
    let n0 = nullified(k);
    write(&mut ex, C2, f, 1, Y);
    let nullified = nullified(k) - n0;
    let load = load(&mut ex, C0, a, va_a.with_word(1));
    assert_eq!(run(&mut ex, C2, Op::Fsync { file: f }), OpResult::Done);
    B2 { load, disk: [k.disk_word(f, 0, 0).unwrap(), k.disk_word(f, 0, 1).unwrap()], nullified }
}

/// B's COW copy swapped to slot 16·N, A dirties P, write(2) flushes only B's swap PTE: A reads OLD.
#[test]
fn b2_swap_pte_passes_2614_filter_and_loses_flush() {
    let got = b2_scenario(&kernel("linux-2.6.14"));
    assert_eq!(got, B2 { load: OLD, disk: [X, OLD], nullified: 2 * LINES });
}

/// Same interleaving on 2.6.15, 6.x and whole-cache: A's line is flushed, A reads Y, disk holds X and Y.
#[test]
fn b2_fixed_in_linux_2615_6x_and_whole_cache() {
    for name in ["linux-2.6.15"].into_iter().chain(FIXED) {
        let got = b2_scenario(&kernel(name));
        assert_eq!(got, B2 { load: Y, disk: [X, Y], nullified: 0 }, "{name}");
    }
}

/// B's swap PTE for slot 16·N: 2.6.14 translation_exists says it maps pfn N, 2.6.15 and recheck say no.
#[test]
fn b2_translation_exists_2614_accepts_swap_pte_2615_rejects() {
    let k = kernel("linux-2.6.14");
    let B2Setup { k, b, va_b, p, .. } = b2_setup(&k);
    let pte = k.peek_pte(b, va_b);
    let layout = PteLayout::Linux2614;
    assert_eq!(pte, layout.swp_entry(0, 16 * p.raw()));
    assert_eq!(pte.raw_pfn(), p);
    assert!(layout.translation_matches_2614(pte, p));
    assert!(!layout.translation_matches_2615(pte, p));
    let vma = k.state().find_vma(b, va_b).unwrap();
    assert!(block_on(Linux26::LINUX_2614.translation_exists(k.cx(C3), &vma, va_b, p)));
    assert!(!block_on(Linux26::LINUX_2614.translation_exists(k.cx(C3), &vma, va_b, Pfn::new(p.raw() + 1))));
    assert!(!block_on(Linux26::LINUX_2615.translation_exists(k.cx(C3), &vma, va_b, p)));
    assert!(!block_on(Linux26::RECHECK.translation_exists(k.cx(C3), &vma, va_b, p)));
}
