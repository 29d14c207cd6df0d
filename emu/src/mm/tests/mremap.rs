//! `mremap` and the kernel-buffer (io_uring ring) mapping: the routines they call, in the order
//! and under the locks of Linux, and what they leave behind.

use super::order::{first, hooks, nothing, private_file, probed_with, run, shared_file, watched};
use super::{anon, mapped};
use crate::addr::{PAGE_SIZE, SHM_COLOUR, VirtAddr};
use crate::arch::ArchConfig;
use crate::config::Preset;
use crate::mm::situations::Situation;
use crate::mm::vmscan::ReclaimTarget;
use crate::mm::{Errno, Executor, MremapArgs, Op, OpResult};
use crate::pte::PteKind;

fn moved(old_pages: u64, new_pages: u64, fixed: Option<VirtAddr>) -> MremapArgs {
    MremapArgs { old_pages, new_pages, maymove: true, fixed }
}

/// A target far above what `mmap` hands out, at the colour `colour` (in pages) of the tiny
/// machine's four.
fn target(colour: u64) -> VirtAddr {
    VirtAddr::new(0x0900_0000 + colour * PAGE_SIZE)
}

/// `move_page_tables`: `flush_cache_range` of the old range while its PTEs still translate,
/// then under the page-table lock each present PTE taken with `ptep_get_and_clear` and set at
/// the new address with `set_pte_at`, then `flush_tlb_range` of the old range before the lock
/// is dropped; the old VMA goes afterwards. The data follows the move.
#[test]
fn mremap_flushes_the_old_range_moves_pte_by_pte_under_the_lock_then_flushes_the_tlb() {
    let (k, log) = probed_with(Preset::Tiny, ArchConfig::GENERIC, true);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(2) }));
    run(&mut ex, Op::Store { mm, va: a, value: 5 });
    run(&mut ex, Op::Store { mm, va: a.add_pages(1), value: 6 });
    // At the same colour: the generic routines flush nothing, which only a PIPT machine or
    // an equivalent alias survives.
    let to = target(a.vpn().raw() % 4);
    let pte_old = |k: &crate::mm::Kernel| k.peek_pte(mm, a).0;
    let (r, calls) =
        watched(&k, &mut ex, &log, Op::Mremap { mm, va: a, args: moved(2, 2, Some(to)) }, &pte_old);
    assert_eq!(r, OpResult::Mapped(to));
    let h = hooks(&calls);
    let fcr = first(&calls, "flush_cache_range");
    assert_eq!(calls[fcr].at, (a, a.add_pages(2)), "the old range");
    assert_ne!(calls[fcr].seen, 0, "flushed while the old PTE still translates");
    let moves: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].hook == "ptep_get_and_clear").collect();
    assert_eq!(moves.len(), 2, "{h:?}");
    for (n, &i) in moves.iter().enumerate() {
        assert!(i > fcr);
        assert_eq!(calls[i].at.0, a.add_pages(n as u64));
        assert_eq!(calls[i + 1].hook, "set_pte_at", "{h:?}");
        assert_eq!(calls[i + 1].at.0, to.add_pages(n as u64));
        assert_eq!((calls[i].ptls.clone(), calls[i + 1].ptls.clone()), (vec![mm], vec![mm]));
    }
    let ftr = first(&calls, "flush_tlb_range");
    assert!(ftr > moves[1] + 1, "{h:?}");
    assert_eq!(calls[ftr].at, (a, a.add_pages(2)));
    assert_eq!(calls[ftr].ptls, vec![mm], "the TLB is flushed before the page-table lock is dropped");
    assert!(k.layout().pte_none(k.peek_pte(mm, a)) && k.state().find_vma(mm, a).is_none());
    assert_eq!(run(&mut ex, Op::Load { mm, va: to }), OpResult::Value(5));
    assert_eq!(run(&mut ex, Op::Load { mm, va: to.add_pages(1) }), OpResult::Value(6));
    assert_eq!(run(&mut ex, Op::Load { mm, va: a }), OpResult::Err(Errno::Segv));
}

/// The moved VMA keeps `vm_pgoff`, so the anonymous page keeps `page->index` and rmap finds it
/// at its new address: reclaim unmaps it there, swap-in brings the value back.
#[test]
fn a_moved_anonymous_page_keeps_its_index_and_rmap_finds_it_at_the_new_address() {
    // A PIPT machine: the generic routines flush nothing, and need not.
    let k = super::kernel(crate::config::Preset::Pipt, Box::new(crate::arch::GenericHooks));
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Store { mm, va: a, value: 9 });
    let page = k.follow_pfn(mm, a).unwrap();
    let index = k.page(page).index;
    let to = target(2);
    assert_eq!(run(&mut ex, Op::Mremap { mm, va: a, args: moved(1, 1, Some(to)) }), OpResult::Mapped(to));
    assert_eq!(k.page(page).index, index);
    assert_eq!(k.anon_mappings(page).iter().map(|(_, va)| *va).collect::<Vec<_>>(), vec![to]);
    let r = run(&mut ex, Op::Reclaim { target: ReclaimTarget::User { mm, va: to } });
    assert_eq!(r, OpResult::Done, "{:?}", k.page(page));
    assert!(matches!(k.layout().decode(k.peek_pte(mm, to)), PteKind::Swap { .. }));
    assert_eq!(run(&mut ex, Op::Load { mm, va: to }), OpResult::Value(9));
    // An anonymous VMA that never had a page takes the new address's page number.
    let b = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    let to = target(8);
    run(&mut ex, Op::Mremap { mm, va: b, args: moved(1, 1, Some(to)) });
    assert_eq!(k.state().find_vma(mm, to).unwrap().pgoff, to.vpn().raw());
}

/// Growing: in place when the pages after the mapping are free (no PTE touched), else moved
/// with `MREMAP_MAYMOVE`, else `ENOMEM`; and the refusals of a range that is not one VMA,
/// shrinking, `MREMAP_FIXED` without `MREMAP_MAYMOVE` and a target overlapping the source.
#[test]
fn mremap_grows_in_place_or_moves_or_fails_and_refuses_what_it_cannot_do() {
    let (k, log) = probed_with(Preset::Pipt, ArchConfig::GENERIC, true);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Store { mm, va: a, value: 3 });
    let grow = MremapArgs { old_pages: 1, new_pages: 2, maymove: false, fixed: None };
    let (r, calls) = watched(&k, &mut ex, &log, Op::Mremap { mm, va: a, args: grow }, &nothing);
    assert_eq!(r, OpResult::Mapped(a));
    assert!(calls.is_empty(), "in place: {:?}", hooks(&calls));
    let tail = k.state().find_vma(mm, a.add_pages(1)).map(|v| v.id);
    let head = k.state().find_vma(mm, a).map(|v| v.id);
    assert_eq!(tail, head);
    assert_eq!(run(&mut ex, Op::Load { mm, va: a.add_pages(1) }), OpResult::Value(0));
    // A mapping right after it: growing again needs a move.
    let b = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    assert_eq!(b, a.add_pages(2));
    let grow = MremapArgs { old_pages: 2, new_pages: 3, maymove: false, fixed: None };
    assert_eq!(run(&mut ex, Op::Mremap { mm, va: a, args: grow }), OpResult::Err(Errno::NoMem));
    let r = run(&mut ex, Op::Mremap { mm, va: a, args: MremapArgs { maymove: true, ..grow } });
    let to = mapped(r);
    assert_eq!(to, b.add_pages(1), "first fit after the blocking mapping");
    assert_eq!(run(&mut ex, Op::Load { mm, va: to }), OpResult::Value(3));
    let pages = k.state().find_vma(mm, to).unwrap().pages();
    assert_eq!(pages, 3);
    let bad = [
        MremapArgs { old_pages: 1, new_pages: 1, maymove: true, fixed: None },
        MremapArgs { old_pages: 3, new_pages: 2, maymove: true, fixed: None },
        MremapArgs { old_pages: 3, new_pages: 3, maymove: false, fixed: Some(target(0)) },
        MremapArgs { old_pages: 3, new_pages: 3, maymove: true, fixed: Some(to.add_pages(1)) },
    ];
    for args in bad {
        assert_eq!(run(&mut ex, Op::Mremap { mm, va: to, args }), OpResult::Err(Errno::Inval), "{args:?}");
    }
}

/// Where the moved mapping lands is `arch_get_unmapped_area`'s (current parisc placement):
/// a private anonymous mapping goes first-fit, so its page may change colour; a file mapping,
/// shared or private, keeps its colour; `MREMAP_FIXED` of a shared file mapping at another
/// colour is refused as `MAP_FIXED` is, and accepted by a lineage that does not check.
#[test]
fn a_moved_private_anonymous_page_may_change_colour_a_file_page_keeps_its_colour() {
    let (k, _log) = probed_with(Preset::Tiny, ArchConfig::GENERIC, false);
    let mut ex = Executor::new(&k);
    let colours = k.machine().config().colours();
    assert_eq!(colours, 4);
    let f = k.create_file(4, 1);
    let mm = k.create_mm().unwrap();
    let colour = |va: VirtAddr| va.vpn().raw() % colours;
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Mmap { mm, args: anon(1) });
    let to = mapped(run(&mut ex, Op::Mremap { mm, va: a, args: moved(1, 2, None) }));
    assert_ne!(colour(to), colour(a), "first fit after the blocker");
    for args in [shared_file(f, 1), private_file(f, 1)] {
        let s = mapped(run(&mut ex, Op::Mmap { mm, args }));
        let blocker = crate::mm::mmap::MmapArgs { fixed: Some(s.add_pages(1)), ..anon(1) };
        assert_eq!(run(&mut ex, Op::Mmap { mm, args: blocker }), OpResult::Mapped(s.add_pages(1)));
        let to = mapped(run(&mut ex, Op::Mremap { mm, va: s, args: moved(1, 2, None) }));
        assert_ne!(to, s);
        assert_eq!(to.colour(SHM_COLOUR), s.colour(SHM_COLOUR), "shared {}", args.shared);
        assert_eq!(run(&mut ex, Op::Munmap { mm, va: s.add_pages(1), pages: 1 }), OpResult::Done);
    }
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 1) }));
    let other = target((colour(s) + 1) % colours);
    assert_eq!(
        run(&mut ex, Op::Mremap { mm, va: s, args: moved(1, 1, Some(other)) }),
        OpResult::Err(Errno::Inval)
    );
    let lax = ArchConfig { map_fixed_checks_colour: false, ..ArchConfig::GENERIC };
    let (k, _log) = probed_with(Preset::Tiny, lax, false);
    let mut ex = Executor::new(&k);
    let f = k.create_file(1, 1);
    let mm = k.create_mm().unwrap();
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 1) }));
    let other = target((colour(s) + 1) % colours);
    assert_eq!(
        run(&mut ex, Op::Mremap { mm, va: s, args: moved(1, 1, Some(other)) }),
        OpResult::Mapped(other)
    );
    assert!(k.state().find_vma(mm, other).is_some_and(|v| v.file == Some(f)));
}

/// The situation counters: a present page moved to another colour, and one that a cache holds
/// dirty at the old colour when it moves; a move to an equivalent address counts neither.
#[test]
fn a_move_to_another_colour_with_dirty_lines_at_the_old_one_is_counted() {
    let (k, _log) = probed_with(Preset::Tiny, ArchConfig::GENERIC, false);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Store { mm, va: a, value: 1 });
    let same = target(a.vpn().raw() % 4);
    run(&mut ex, Op::Mremap { mm, va: a, args: moved(1, 1, Some(same)) });
    assert_eq!(k.situations().get(Situation::MremapOtherColour), 0);
    let other = target(a.vpn().raw() % 4 + 5);
    run(&mut ex, Op::Mremap { mm, va: same, args: moved(1, 1, Some(other)) });
    assert_eq!(k.situations().get(Situation::MremapOtherColour), 1);
    assert_eq!(k.situations().get(Situation::MremapDirtyOtherColour), 1, "the store's line is dirty");
}

/// A kernel buffer's `mmap` (`vm_insert_pages`): placed congruent with the kernel address when
/// io_uring colours (6.4 and later), at the ring file's colour before; each page
/// `flush_dcache_page`d, then its PTE set under the page-table lock; the buffer holds its
/// reference for life, the mapping one more. Fork copies the PTE; a fault on a hole is
/// `SIGBUS`; the kernel's post and fetch go through the kernel address.
#[test]
fn a_kernel_buffer_is_mapped_by_inserting_its_pages_and_placed_by_era() {
    for coloured in [true, false] {
        let (k, log) = probed_with(
            Preset::Tiny,
            ArchConfig { io_uring_coloured: coloured, ..ArchConfig::GENERIC },
            true,
        );
        let mut ex = Executor::new(&k);
        let mm = k.create_mm().unwrap();
        let ring = k.create_ring(2).unwrap();
        let page = k.ring_pages(ring)[0];
        let kcolour = page.kernel_va().vpn().raw() % 4;
        assert_ne!(kcolour, 2, "the test needs a frame whose colour is not the file's");
        let (r, calls) = watched(&k, &mut ex, &log, Op::RingMmap { mm, ring }, &nothing);
        let u = mapped(r);
        assert_eq!(k.machine().equivalent(u, page.kernel_va()), coloured);
        if !coloured {
            assert_eq!(u.vpn().raw() % 4, 2, "the file's colour");
        }
        assert_eq!(k.situations().get(Situation::RingUserOtherColour), u64::from(!coloured));
        assert_eq!(hooks(&calls), vec!["flush_dcache_page", "set_pte_at"]);
        assert_eq!(calls[1].ptls, vec![mm]);
        assert_eq!(k.follow_pfn(mm, u), Some(page));
        assert_eq!((k.page(page).refcount, k.page(page).mapcount), (2, 1));
        assert_eq!(run(&mut ex, Op::FillCqe { ring, page: 0, word: 3, value: 77 }), OpResult::Done);
        assert_eq!(k.machine().mem.read(page.word(3)), 0, "a cached kernel store, no flush");
        assert_eq!(run(&mut ex, Op::GetSqe { ring, page: 0, word: 3 }), OpResult::Value(77));
        let OpResult::Forked(child) = run(&mut ex, Op::Fork { mm }) else { panic!() };
        assert_eq!(k.follow_pfn(child, u), Some(page));
        assert_eq!(run(&mut ex, Op::Exit { mm: child }), OpResult::Done);
        assert_eq!(
            run(&mut ex, Op::Mremap { mm, va: u, args: moved(1, 1, Some(target(0))) }),
            OpResult::Err(Errno::Inval)
        );
        assert_eq!(run(&mut ex, Op::Munmap { mm, va: u, pages: 1 }), OpResult::Done);
        assert_eq!((k.page(page).refcount, k.page(page).mapcount), (1, 0), "the buffer keeps its page");
    }
}

/// On a VIPT machine without flushes (the PIPT routines), a user store at a colour other than
/// the kernel address's is not what the kernel's fetch reads, and the situation is counted;
/// at the kernel address's colour it is.
#[test]
fn the_kernel_reads_a_stale_word_through_a_non_congruent_buffer_mapping() {
    for coloured in [true, false] {
        let (k, _log) = probed_with(
            Preset::Tiny,
            ArchConfig { io_uring_coloured: coloured, ..ArchConfig::GENERIC },
            false,
        );
        let mut ex = Executor::new(&k);
        let mm = k.create_mm().unwrap();
        let ring = k.create_ring(2).unwrap();
        let u = mapped(run(&mut ex, Op::RingMmap { mm, ring }));
        run(&mut ex, Op::Store { mm, va: u.with_word(2), value: 0x51 });
        let got = run(&mut ex, Op::GetSqe { ring, page: 0, word: 2 });
        assert_eq!(got, OpResult::Value(if coloured { 0x51 } else { 0 }));
        let n = k.situations().get(Situation::RingKernelUserDirtyOtherColour);
        assert_eq!(n, u64::from(!coloured));
    }
}
