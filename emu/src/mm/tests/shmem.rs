//! shmem files and `MAP_SHARED | MAP_ANONYMOUS` through the sequential driver: the last store
//! to a shmem word survives swap-out and swap-in, by the slot or by the swap cache; holes,
//! `fsync`, `ftruncate`; shared anonymous memory placed at colour 0, shared with a fork,
//! reclaimed through the swap cache and released with its last mapping.

use super::*;
use crate::addr::{PAGE_SIZE, SHM_COLOUR};
use crate::choice::{ChoiceKind, Chooser};
use crate::mm::situations::Situation;
use crate::mm::vmscan::ReclaimTarget;

/// Picks 0 for every choice but those of kind `kind`, for which it picks `pick`.
struct Pick(ChoiceKind, u32);

impl Chooser for Pick {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        if kind == self.0 { self.1.min(n - 1) } else { 0 }
    }
}

/// A kernel (the generic routines on the pipt machine) whose swap writes complete later (`later`: the written-out page stays in the
/// swap cache) or at once.
fn kernel_with(later: bool) -> Kernel {
    kernel_on(Preset::Pipt, later)
}

fn kernel_on(preset: Preset, later: bool) -> Kernel {
    let chooser: Box<dyn Chooser> =
        if later { Box::new(Pick(ChoiceKind::Other, 1)) } else { Box::new(FirstChooser) };
    // `MAP_FIXED` at any colour, as 2.6 took it.
    let config = ArchConfig { map_fixed_checks_colour: false, ..ArchConfig::GENERIC };
    Kernel::new(Machine::new(preset.config(), chooser), Box::new(GenericHooks), config)
}

fn shared(file: FileId, pages: u64) -> MmapArgs {
    MmapArgs { pages, file: Some((file, 0)), shared: true, writable: true, fixed: None }
}

fn reclaim_file(file: FileId, pgoff: u64) -> Op {
    Op::Reclaim { target: ReclaimTarget::FilePage { file, pgoff } }
}

fn sit(k: &Kernel, s: Situation) -> u64 {
    k.situations().get(s)
}

#[test]
fn a_shmem_store_survives_swap_out_and_swap_in_from_the_slot() {
    let k = kernel_with(false);
    let f = k.create_shmem_file(2, 0);
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: shared(f, 2) }));
    one(&k, C0, Op::Store { mm, va: va.with_word(3), value: 0x55 });
    let page = k.follow_pfn(mm, va).unwrap();
    assert_eq!(one(&k, C1, reclaim_file(f, 0)), OpResult::Done);
    // Unmapped, out of the page cache, written to a slot and freed from the swap cache.
    assert_eq!(k.follow_pfn(mm, va), None);
    let slot = {
        let s = k.state();
        assert_eq!(s.files[f.index()].cached(0), None);
        let slot = s.files[f.index()].swap_slot(0).expect("a swap entry in the mapping");
        assert_eq!(s.swap[slot as usize].count, 1);
        assert_eq!(s.swap[slot as usize].cache, None);
        assert_eq!(s.swap[slot as usize].data.as_ref().unwrap()[3], 0x55);
        assert_eq!(s.pages[page.index()].refcount, 0, "the frame is free");
        slot
    };
    assert_eq!(one(&k, C1, Op::Load { mm, va: va.with_word(3) }), OpResult::Value(0x55));
    let s = k.state();
    let back = s.files[f.index()].cached(0).expect("back in the page cache");
    assert!(s.pages[back.index()].flags.contains(PageFlags::DIRTY), "dirty: its slot is gone");
    assert!(!s.pages[back.index()].flags.contains(PageFlags::SWAPCACHE));
    assert!(s.swap[slot as usize].is_free() && s.files[f.index()].swap_slot(0).is_none());
    drop(s);
    assert_eq!(sit(&k, Situation::ShmemSwapinFromSlot), 1);
    assert_eq!(sit(&k, Situation::ShmemSwapinFromCache), 0);
}

#[test]
fn a_shmem_page_still_in_the_swap_cache_comes_back_as_the_same_frame() {
    let k = kernel_with(true);
    let f = k.create_shmem_file(1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let va = mapped(one(&k, C0, Op::Mmap { mm: a, args: shared(f, 1) }));
    let vb = mapped(one(&k, C0, Op::Mmap { mm: b, args: shared(f, 1) }));
    one(&k, C0, Op::Store { mm: a, va, value: 9 });
    assert_eq!(one(&k, C1, Op::Load { mm: b, va: vb }), OpResult::Value(9));
    let page = k.follow_pfn(a, va).unwrap();
    assert_eq!(one(&k, C1, Op::Reclaim { target: ReclaimTarget::User { mm: b, va: vb } }), OpResult::Done);
    {
        let s = k.state();
        let d = s.pages[page.index()];
        assert!(d.flags.contains(PageFlags::SWAPCACHE) && d.mapcount == 0);
        assert_eq!(s.swap[d.private as usize].cache, Some(page));
        assert_eq!(s.files[f.index()].swap_slot(0), Some(d.private));
    }
    assert_eq!(sit(&k, Situation::ShmemToSwapCacheShared), 1, "unmapped from two addresses");
    // A reclaim by file page finds it in the swap cache (its write is still in flight).
    assert_eq!(one(&k, C1, reclaim_file(f, 0)), OpResult::Done);
    assert_eq!(one(&k, C0, Op::Load { mm: b, va: vb }), OpResult::Value(9));
    assert_eq!(k.follow_pfn(b, vb), Some(page), "the same frame");
    assert_eq!(sit(&k, Situation::ShmemSwapinFromCache), 1);
    assert_eq!(sit(&k, Situation::ShmemSwapinFromSlot), 0);
    // `write(2)` and `read(2)` see the user's store and write their own.
    assert_eq!(one(&k, C1, Op::Read { file: f, pgoff: 0, word: 0 }), OpResult::Value(9));
    one(&k, C1, Op::Write { file: f, pgoff: 0, word: 1, value: 10 });
    assert_eq!(one(&k, C0, Op::Load { mm: a, va: va.with_word(1) }), OpResult::Value(10));
}

/// Arch code sees no mapping on a shmem page in the swap cache (`shmem_delete_from_page_cache`
/// clears `folio->mapping`), nor while it is read back from its slot, and the file again once
/// the swap-in has put it back in the page cache.
#[test]
fn arch_code_sees_no_mapping_on_a_shmem_page_in_the_swap_cache() {
    let k = kernel_with(true);
    let f = k.create_shmem_file(1, 0);
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: shared(f, 1) }));
    one(&k, C0, Op::Store { mm, va, value: 7 });
    let page = k.follow_pfn(mm, va).unwrap();
    assert_eq!(k.cx(C0).page_mapping(page), Mapping::File(f));
    assert_eq!(one(&k, C1, reclaim_file(f, 0)), OpResult::Done);
    assert!(k.page(page).flags.contains(PageFlags::SWAPCACHE), "still in the swap cache");
    assert_eq!(k.cx(C0).page_mapping(page), Mapping::None);
    assert_eq!(one(&k, C0, Op::Load { mm, va }), OpResult::Value(7));
    assert_eq!(k.follow_pfn(mm, va), Some(page));
    assert_eq!(k.cx(C0).page_mapping(page), Mapping::File(f));
}

#[test]
fn holes_read_as_zeros_fsync_writes_nothing_and_truncate_frees_swap() {
    let k = kernel_with(false);
    let f = k.create_shmem_file(2, 0);
    let free_frames = k.state().free.len();
    assert_eq!(one(&k, C0, Op::Read { file: f, pgoff: 1, word: 5 }), OpResult::Value(0));
    assert_eq!(k.state().free.len(), free_frames, "a read of a hole allocates nothing");
    assert_eq!(one(&k, C0, Op::Read { file: f, pgoff: 2, word: 0 }), OpResult::Eof);
    one(&k, C0, Op::Write { file: f, pgoff: 1, word: 5, value: 3 });
    let steps = k.now();
    assert_eq!(one(&k, C0, Op::Fsync { file: f }), OpResult::Done);
    assert!(k.now() <= steps + 1, "noop_fsync: no write-out");
    assert!(k.state().files[f.index()].disk.is_empty());
    one(&k, C1, reclaim_file(f, 1));
    let slot = k.state().files[f.index()].swap_slot(1).expect("written out");
    assert_eq!(one(&k, C0, Op::Truncate { file: f, pages: 1 }), OpResult::Done);
    assert!(k.state().swap[slot as usize].is_free(), "the swap entry went with the page");
    one(&k, C0, Op::Write { file: f, pgoff: 1, word: 0, value: 4 });
    assert_eq!(one(&k, C0, Op::Read { file: f, pgoff: 1, word: 5 }), OpResult::Value(0));
    assert_eq!(one(&k, C0, Op::Read { file: f, pgoff: 1, word: 0 }), OpResult::Value(4));
    // A page only read since it was zeroed is clean: reclaim drops it, swap untouched.
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: shared(f, 1) }));
    assert_eq!(one(&k, C0, Op::Load { mm, va }), OpResult::Value(0));
    assert_eq!(one(&k, C1, reclaim_file(f, 0)), OpResult::Done);
    assert!(
        k.state().files[f.index()].cached(0).is_none() && k.state().files[f.index()].swap_slot(0).is_none()
    );
    assert_eq!(one(&k, C0, Op::Load { mm, va }), OpResult::Value(0));
}

#[test]
fn shared_anonymous_memory_is_one_shmem_object_at_colour_0_shared_by_fork_and_reclaimed_through_swap() {
    let k = kernel_with(true);
    let mm = k.create_mm().unwrap();
    // A private page first, so that first fit would not land on colour 0.
    mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
    let args = MmapArgs { pages: 2, file: None, shared: true, writable: true, fixed: None };
    let va = mapped(one(&k, C0, Op::Mmap { mm, args }));
    assert_eq!(va.raw() % SHM_COLOUR, 0, "colour 0");
    let vma = k.state().find_vma(mm, va).unwrap();
    let f = vma.file.expect("shmem_zero_setup gave it a file");
    assert!(vma.shared && vma.pgoff == 0);
    assert!(k.state().files[f.index()].anon_shared && k.state().files[f.index()].size == 2);
    one(&k, C0, Op::Store { mm, va, value: 1 });
    let child = match one(&k, C0, Op::Fork { mm }) {
        OpResult::Forked(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(one(&k, C1, Op::Load { mm: child, va }), OpResult::Value(1));
    assert_eq!(sit(&k, Situation::SharedAnonShared), 1);
    one(&k, C1, Op::Store { mm: child, va: va.add_pages(1), value: 2 });
    assert_eq!(one(&k, C0, Op::Load { mm, va: va.add_pages(1) }), OpResult::Value(2));
    // Reclaim through the swap cache keeps the page shared: both see the last store.
    one(&k, C0, Op::Reclaim { target: ReclaimTarget::User { mm, va } });
    assert!(k.state().files[f.index()].swap_slot(0).is_some());
    one(&k, C0, Op::Store { mm: child, va, value: 3 });
    assert_eq!(one(&k, C1, Op::Load { mm, va }), OpResult::Value(3));
    // `MAP_FIXED` at any colour: no file, so no colour check.
    let odd = VirtAddr::new(0x0900_0000 + SHM_COLOUR + PAGE_SIZE);
    let fixed = MmapArgs { pages: 1, file: None, shared: true, writable: true, fixed: Some(odd) };
    assert_eq!(one(&k, C0, Op::Mmap { mm, args: fixed }), OpResult::Mapped(odd));
    // The last munmap releases the object and its pages.
    let frames = k.state().free.len();
    one(&k, C0, Op::Munmap { mm, va, pages: 2 });
    assert_eq!(k.state().files[f.index()].size, 2, "the child still maps it");
    one(&k, C1, Op::Exit { mm: child });
    assert_eq!(k.state().files[f.index()].size, 0);
    assert!(k.state().files[f.index()].pages.iter().all(Option::is_none));
    assert!(k.state().free.len() > frames, "its pages are free again");
}

/// The colour situations, on an aliasing machine (the generic routines flush nothing, so only
/// what is counted is looked at): a shmem page unmapped from two inequivalent `MAP_FIXED`
/// addresses on its way to the swap cache, then brought back from it and mapped next at a
/// third colour.
#[test]
fn a_shmem_page_unmapped_at_two_colours_and_mapped_back_at_another_is_counted() {
    let k = kernel_on(Preset::Tiny, true);
    let f = k.create_shmem_file(1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let at = |n: u64| VirtAddr::new(0x0900_0000 + n * PAGE_SIZE);
    let fixed = |va| MmapArgs { pages: 1, file: Some((f, 0)), shared: true, writable: true, fixed: Some(va) };
    let va = mapped(one(&k, C0, Op::Mmap { mm: a, args: fixed(at(0)) }));
    let vb = mapped(one(&k, C0, Op::Mmap { mm: b, args: fixed(at(1)) }));
    assert!(!k.machine().equivalent(va, vb));
    one(&k, C0, Op::Store { mm: a, va, value: 1 });
    one(&k, C0, Op::Load { mm: b, va: vb });
    assert_eq!(one(&k, C1, reclaim_file(f, 0)), OpResult::Done);
    assert_eq!(sit(&k, Situation::ShmemToSwapCacheShared), 1);
    assert_eq!(sit(&k, Situation::ShmemToSwapCacheColours), 1);
    // Back from the swap cache through a third mapping, at a colour neither had.
    let c = k.create_mm().unwrap();
    let vc = mapped(one(&k, C0, Op::Mmap { mm: c, args: fixed(at(2)) }));
    one(&k, C0, Op::Load { mm: c, va: vc });
    assert_eq!(sit(&k, Situation::ShmemSwapinFromCache), 1);
    assert_eq!(sit(&k, Situation::ShmemSwapinOtherColour), 1);
    // Mapped again where it was: not another colour.
    one(&k, C0, Op::Load { mm: a, va });
    assert_eq!(sit(&k, Situation::ShmemSwapinOtherColour), 1);
}
