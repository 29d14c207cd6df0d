//! Reclaim must not drop a page that a `get_user_pages` writer dirtied again during `pageout`.
//!
//! The sequence (found by the `swbits-*` campaign, seed 52728, and reachable on every lineage):
//! reclaim ages and unmaps an anonymous page, clears `PG_dirty` and writes the page to swap.
//! Meanwhile `access_process_vm`, which looked the page up before `try_to_unmap` cleared its
//! PTE, stores into it and marks it dirty, then drops its pin before the write-out finishes.
//! `__remove_mapping` then sees only the swap cache's reference and ours; it must still keep
//! the page, because its new data is neither in the swap slot nor anywhere else.

use vipt_emu::addr::CpuId;
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Errno, Executor, Op, OpResult};
use vipt_tmpalias::Registry;

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);
const C2: CpuId = CpuId(2);
const OLD: u64 = 0x01d0;
const POKED: u64 = 0x0b0b;

#[test]
fn a_page_redirtied_during_pageout_stays_in_the_swap_cache() {
    let k = Registry::builtin().get("pipt").unwrap().boot(Preset::Pipt.config(), Box::new(FirstChooser));
    let mut ex = Executor::new(&k);
    let run = |ex: &mut Executor<'_>, cpu, op| {
        ex.spawn(cpu, op);
        ex.run_to_completion(cpu).unwrap()
    };
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: None, shared: false, writable: true, fixed: None };
    let OpResult::Mapped(va) = run(&mut ex, C0, Op::Mmap { mm, args }) else { panic!("mmap failed") };
    assert_eq!(run(&mut ex, C0, Op::Store { mm, va, value: OLD }), OpResult::Value(OLD));

    // Reclaim ages the page (first PTE read), then stops before try_to_unmap reads the PTE.
    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::User { mm, va } });
    for _ in 0..2 {
        assert_eq!(ex.run_until(C1, |a| matches!(a, Action::PteRead { .. })).unwrap(), None);
    }
    // The poke finds the page still mapped and pins it; it stops before its store.
    ex.spawn(C0, Op::AccessVm { mm, va, store: Some(POKED) });
    assert_eq!(ex.run_until(C0, |a| matches!(a, Action::KernelAccess { write: true, .. })).unwrap(), None);
    // Reclaim unmaps, clears PG_dirty, flushes, and stops before the DMA to swap.
    assert_eq!(ex.run_until(C1, |a| matches!(a, Action::Dma(_))).unwrap(), None);
    // The poke stores, dirties the page and drops its pin.
    assert_eq!(ex.run_to_completion(C0).unwrap(), OpResult::Value(POKED));
    // The page was dirtied again: reclaim keeps it.
    assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Err(Errno::Busy));
    // The swap-in finds the page in the swap cache, with the poked value.
    assert_eq!(run(&mut ex, C2, Op::Load { mm, va }), OpResult::Value(POKED));
}

/// Picks 1 for every choice of kind `Other` (a swap write completes later, so the written-out
/// page stays in the swap cache), 0 for the rest.
struct Later;

impl vipt_emu::choice::Chooser for Later {
    fn choose(&mut self, kind: vipt_emu::choice::ChoiceKind, n: u32) -> u32 {
        u32::from(kind == vipt_emu::choice::ChoiceKind::Other && n > 1)
    }
}

/// A shmem page in the swap cache has no mapping (`shmem_delete_from_page_cache` sets
/// `folio->mapping = NULL`), so 6.x's `flush_dcache_folio` finds no `folio_flush_mapping()`: it
/// does not defer but flushes the kernel alias, even though the file it came from is mapped by
/// nobody (for a page-cache page of such a file it would set `PG_dcache_dirty` and return
/// without a flush).
#[test]
fn flush_dcache_page_of_a_shmem_page_in_the_swap_cache_flushes_the_kernel_alias() {
    use vipt_emu::mm::PageFlags;
    for name in ["linux-6.x", "linux-6.10", "linux-6.0"] {
        let k = Registry::builtin().get(name).unwrap().boot(Preset::Tiny.config(), Box::new(Later));
        let f = k.create_shmem_file(1, 0);
        let mut ex = Executor::new(&k);
        ex.spawn(C0, Op::Write { file: f, pgoff: 0, word: 0, value: POKED });
        assert_eq!(ex.run_to_completion(C0).unwrap(), OpResult::Done);
        let page = k.state().files[f.index()].cached(0).expect("the page is cached");
        ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
        assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Done);
        assert!(k.page(page).flags.contains(PageFlags::SWAPCACHE), "{name}: still in the swap cache");
        let kernel = &k;
        ex.spawn_task(
            C2,
            "flush_dcache_page",
            Box::pin(async move {
                kernel.arch(C2).flush_dcache_page(page).await;
                OpResult::Done
            }),
        );
        let fdc_before = k.machine().counters;
        assert_eq!(ex.run_to_completion(C2).unwrap(), OpResult::Done);
        let c = k.machine().counters.since(&fdc_before);
        assert!(c.fdc > 0, "{name}: the kernel alias is flushed: {c:?}");
    }
}
