//! The situation counters: each counts exactly the case it names.

use super::*;
use crate::mm::situations::Situation as S;

fn file_map(f: FileId, shared: bool, fixed: Option<VirtAddr>) -> MmapArgs {
    MmapArgs { pages: 1, file: Some((f, 0)), shared, writable: shared, fixed }
}

/// The shape counters that `write(2)` moved (it calls `flush_dcache_page` once more first
/// when the file is writably mapped).
fn shapes_met(k: &Kernel, f: FileId) -> Vec<S> {
    let before = k.situations();
    one(k, C0, Op::Write { file: f, pgoff: 0, word: 0, value: 1 });
    let after = k.situations();
    S::ALL
        .iter()
        .copied()
        .filter(|&s| s.name().starts_with("flush_dcache_page.") && after.get(s) > before.get(s))
        .collect()
}

/// `write(2)` meets the page unmapped, then mapped shared at one colour, then shared at two
/// (a `MAP_FIXED` alias a page apart, allowed when the lineage does not check colours), then
/// shared and private.
#[test]
fn flush_dcache_page_shapes_follow_the_mappings() {
    let mut k = kernel(Preset::Tiny, Box::new(GenericHooks));
    k.config.map_fixed_checks_colour = false;
    let f = k.create_file(1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    assert_eq!(shapes_met(&k, f), [S::FdpUnmapped]);
    let va = mapped(one(&k, C0, Op::Mmap { mm: a, args: file_map(f, true, None) }));
    assert_eq!(shapes_met(&k, f), [S::FdpUnmapped], "mapped but not faulted in yet");
    one(&k, C0, Op::Load { mm: a, va });
    assert_eq!(shapes_met(&k, f), [S::FdpSharedOneColour]);
    let other = va.add_pages(1);
    let vb = mapped(one(&k, C1, Op::Mmap { mm: b, args: file_map(f, true, Some(other)) }));
    assert_eq!(vb, other);
    assert_eq!(k.situations().get(S::FixedOtherColour), 1, "MAP_FIXED a colour away from the file's");
    one(&k, C1, Op::Load { mm: b, va: vb });
    assert_eq!(shapes_met(&k, f), [S::FdpSharedColours]);
    let c = k.create_mm().unwrap();
    let vc = mapped(one(&k, C1, Op::Mmap { mm: c, args: file_map(f, false, None) }));
    one(&k, C1, Op::Load { mm: c, va: vc });
    assert_eq!(shapes_met(&k, f), [S::FdpSharedAndPrivate]);
}

/// `access_process_vm` of an anonymous page, read then written.
#[test]
fn access_process_vm_counts_reads_and_writes_of_anonymous_pages() {
    let k = kernel(Preset::Pipt, Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
    one(&k, C0, Op::Store { mm, va, value: 3 });
    assert_eq!(one(&k, C1, Op::AccessVm { mm, va, store: None }), OpResult::Value(3));
    one(&k, C1, Op::AccessVm { mm, va, store: Some(4) });
    let s = k.situations();
    assert_eq!((s.get(S::ApvmReadAnon), s.get(S::ApvmWriteAnon), s.get(S::ApvmReadFile)), (1, 1, 0));
}

/// A user access of another CPU between a CPU's `fdc` of the page and its TLB purge counts
/// once the purge closes the window; with no purge after the flush it does not count.
#[test]
fn access_in_flush_window_counts_only_when_the_purge_follows() {
    for purge in [true, false] {
        let k = kernel(Preset::Tiny, Box::new(GenericHooks));
        let mm = k.create_mm().unwrap();
        let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
        one(&k, C0, Op::Store { mm, va, value: 3 });
        let space = k.mm_space(mm);
        let mut ex = Executor::new(&k);
        let kr = &k;
        ex.spawn_task(
            C0,
            "flush then purge",
            Box::pin(async move {
                kr.fdc(C0, space, va).await;
                kr.label(C0, "between").await;
                if purge {
                    kr.purge_tlb(C0, space, va).await;
                }
                OpResult::Done
            }),
        );
        ex.run_until(C0, |a| *a == Action::Label("between")).unwrap();
        ex.spawn(C1, Op::Load { mm, va });
        assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Value(3)));
        ex.run_to_completion(C0).unwrap();
        assert_eq!(k.situations().get(S::AccessInFlushWindow), u64::from(purge), "purge: {purge}");
    }
}

/// A PTE read, a change of that PTE by another CPU, then the reader's flush: the check the
/// flush depends on went stale.
#[test]
fn pte_change_between_check_and_flush_counts() {
    let k = kernel(Preset::Tiny, Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
    one(&k, C0, Op::Store { mm, va, value: 3 });
    let space = k.mm_space(mm);
    let mut ex = Executor::new(&k);
    let kr = &k;
    ex.spawn_task(
        C0,
        "check then flush",
        Box::pin(async move {
            let _ = kr.read_pte(C0, mm, va).await;
            kr.label(C0, "checked").await;
            kr.fdc(C0, space, va).await;
            OpResult::Done
        }),
    );
    ex.run_until(C0, |a| *a == Action::Label("checked")).unwrap();
    ex.spawn(C1, Op::Munmap { mm, va, pages: 1 });
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    ex.run_to_completion(C0).unwrap();
    assert_eq!(k.situations().get(S::PteChangedAfterCheck), 1);
}

/// The README's *Situations* section lists every situation by name, in report order.
#[test]
fn the_readme_lists_every_situation_in_order() {
    let readme = include_str!("../../../../README.md");
    let section = &readme[readme.find("## Situations").expect("a Situations section")..];
    let at: Vec<usize> = S::ALL
        .iter()
        .map(|s| {
            section.find(&format!("| `{}` |", s.name())).unwrap_or_else(|| panic!("{} listed", s.name()))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]));
}
