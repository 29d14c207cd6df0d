//! Kernel-level tests (the MMU core driven through [`Executor`]): (f) reclaim of an anonymous
//! page with a dirty user-alias line, with and without `flush_cache_page`; (h) a user store
//! into a clean shared writable file mapping sets `_PAGE_DIRTY`.

use vipt_emu::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, GenericHooks, HookFuture};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::machine::Machine;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Executor, Kernel, Mapping, MmId, Op, OpResult, Vma};
use vipt_emu::pte::{PteFlags, PteKind};

use crate::common::*;

// ----- kernel-level helpers ----------------------------------------------------------------

fn kernel(hooks: Box<dyn ArchHooks>) -> Kernel {
    let m = Machine::new(Preset::Tiny.config(), Box::new(FirstChooser));
    Kernel::new(m, hooks, ArchConfig::GENERIC)
}

fn one(k: &Kernel, cpu: CpuId, op: Op) -> OpResult {
    Executor::new(k).run_sequential(&[(cpu, op)]).unwrap()[0]
}

fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

fn anon(pages: u64) -> MmapArgs {
    MmapArgs { pages, file: None, shared: false, writable: true, fixed: None }
}

/// Test-local lineage: the PIPT defaults, plus the two flushes that reclaim of an anonymous
/// page needs on a VIPT machine:
///
/// * `flush_cache_page` writes back and invalidates the user alias of the page while its PTE
///   still maps it (so `try_to_unmap` puts the user's stores in memory before `pageout`);
/// * `clear_user_highpage` flushes the kernel alias after zeroing through it. Without this the
///   dirty zero lines of the clear stay in the kernel-alias sets and `dma_page_out`'s
///   kernel-alias flush writes them back *over* the user's flushed stores (see
///   `f_flush_cache_page_alone_is_undone_by_dirty_kernel_alias_of_the_clear`).
struct Flushing;

impl ArchHooks for Flushing {
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        flush_user_page(cx, vma, va)
    }

    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.clear_page_kernel(page).await;
            cx.flush_page_lines(SpaceId::KERNEL, page.kernel_va()).await;
        })
    }
}

/// Only `flush_cache_page` of [`Flushing`] (the clear leaves its kernel-alias lines dirty).
struct FlushCachePageOnly;

impl ArchHooks for FlushCachePageOnly {
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        flush_user_page(cx, vma, va)
    }
}

/// `fdc` over every line of the user page at `va` of `vma`, through the user address.
fn flush_user_page<'a>(cx: ArchCtx<'a>, vma: Vma, va: VirtAddr) -> HookFuture<'a, ()> {
    Box::pin(async move {
        cx.flush_page_lines(vma.space, va).await;
    })
}

/// The value stored by the reclaim scenarios.
const SECRET: u64 = 0x5ec2_e7ed;

/// What [`store_then_reclaim`] leaves behind.
struct Reclaimed {
    k: Kernel,
    mm: MmId,
    va: VirtAddr,
    pfn: Pfn,
    slot: usize,
}

/// Maps one anonymous page, stores [`SECRET`] at [`WORD`] on CPU0 (a write fault: the page is
/// zeroed through its kernel alias), then reclaims it on CPU1.
fn store_then_reclaim(hooks: Box<dyn ArchHooks>) -> Reclaimed {
    let k = kernel(hooks);
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
    assert_eq!(va, A1);
    let w = va.with_word(WORD);
    assert_eq!(one(&k, C0, Op::Store { mm, va: w, value: SECRET }), OpResult::Value(SECRET));
    let pfn = k.follow_pfn(mm, va).expect("mapped after the store");
    assert_eq!(k.page(pfn).refcount, 1);
    assert_eq!(k.page(pfn).mapcount, 1);
    // The store sits dirty in CPU0's cache under the user alias; memory still holds zero.
    {
        let m = k.machine();
        assert_eq!(line(&m, C0, w, pfn.word(WORD)), Line::Dirty(SECRET));
        assert_eq!(m.mem.read(pfn.word(WORD)), 0);
        // The user alias (colour 0) and the kernel alias are inequivalent.
        assert!(!m.equivalent(w, pfn.word(WORD).kernel_va()));
    }

    assert_eq!(one(&k, C1, Op::Reclaim { target: ReclaimTarget::User { mm, va } }), OpResult::Done);
    let pte = k.peek_pte(mm, va);
    let PteKind::Swap { ty: 0, offset, exclusive: false } = k.layout().decode(pte) else {
        panic!("expected a swap entry after reclaim, got {pte:?}");
    };
    assert_eq!(offset, 1, "FirstChooser takes the first free slot");
    // The frame went back to the free list.
    let d = k.page(pfn);
    assert_eq!((d.refcount, d.mapcount, d.mapping), (0, 0, Mapping::None));
    assert_eq!(k.state().free.last(), Some(&pfn));
    assert_eq!(k.state().swap[offset as usize].count, 1);
    Reclaimed { k, mm, va, pfn, slot: offset as usize }
}

fn swap_word(k: &Kernel, slot: usize) -> u64 {
    k.state().swap[slot].data.as_ref().expect("the page was written to swap")[WORD]
}

// ----- (f) reclaim of an anonymous page ----------------------------------------------------

/// (f) With the PIPT hooks nothing flushes the user alias before `pageout`: the swap slot gets
/// the stale zero, and the store is left in a dirty line of a frame that is already free.
#[test]
fn f_reclaim_without_flush_cache_page_writes_stale_data_to_swap() {
    let Reclaimed { k, va, pfn, slot, .. } = store_then_reclaim(Box::new(GenericHooks));
    assert_eq!(swap_word(&k, slot), 0);
    let m = k.machine();
    assert_eq!(m.mem.read(pfn.word(WORD)), 0);
    assert_eq!(line(&m, C0, va.with_word(WORD), pfn.word(WORD)), Line::Dirty(SECRET));
    assert_eq!(m.dirty_lines_of(pfn), 1);
}

/// (f) With `flush_cache_page` (and a clear that flushes its kernel alias) the user's store
/// reaches memory before `pageout`, so the swap slot holds it and swap-in returns it.
#[test]
fn f_reclaim_with_flush_cache_page_writes_user_store_to_swap() {
    let Reclaimed { k, mm, va, pfn, slot } = store_then_reclaim(Box::new(Flushing));
    assert_eq!(swap_word(&k, slot), SECRET);
    {
        let m = k.machine();
        assert_eq!(m.mem.read(pfn.word(WORD)), SECRET);
        assert_eq!(m.dirty_lines_of(pfn), 0);
        assert_eq!(m.cached_word(va.with_word(WORD), pfn.word(WORD)), None);
    }

    // Swap-in on the CPU that stored.
    assert_eq!(one(&k, C0, Op::Load { mm, va: va.with_word(WORD) }), OpResult::Value(SECRET));
    let back = k.follow_pfn(mm, va).expect("swapped in");
    assert_eq!(k.page(back).mapcount, 1);
    assert!(k.state().swap[slot].is_free());
    assert_eq!(k.state().swap[slot].data, None);
}

/// (f, subtlety) `flush_cache_page` alone is not enough on this machine: the PIPT
/// `clear_user_highpage` zeroes the page through the kernel alias and leaves those lines
/// dirty; `dma_page_out` flushes the kernel alias just before the DMA, and the write-back of
/// the zero line lands on top of the user store `flush_cache_page` had just written.
#[test]
fn f_flush_cache_page_alone_is_undone_by_dirty_kernel_alias_of_the_clear() {
    let Reclaimed { k, pfn, slot, .. } = store_then_reclaim(Box::new(FlushCachePageOnly));
    assert_eq!(swap_word(&k, slot), 0);
    let m = k.machine();
    assert_eq!(m.mem.read(pfn.word(WORD)), 0);
    assert_eq!(m.dirty_lines_of(pfn), 0);
}

// ----- (h) dirty-bit trap, kernel level ----------------------------------------------------

/// (h) A read fault on a shared writable file mapping installs a writable but clean PTE; the
/// first store takes the dirty-bit trap, whose handler sets `_PAGE_DIRTY`. A first-touch
/// store instead installs a dirty PTE directly, without a trap.
#[test]
fn h_user_store_into_shared_file_mapping_sets_page_dirty_via_dbit_trap() {
    let k = kernel(Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let file = k.create_file(2, 0);
    let va = mapped(one(
        &k,
        C0,
        Op::Mmap {
            mm,
            args: MmapArgs { pages: 2, file: Some((file, 0)), shared: true, writable: true, fixed: None },
        },
    ));
    let w = va.with_word(WORD);

    assert_eq!(one(&k, C0, Op::Load { mm, va: w }), OpResult::Value(0));
    let PteKind::Present { pfn, flags } = k.layout().decode(k.peek_pte(mm, va)) else {
        panic!("expected a present PTE after the read fault");
    };
    assert!(flags.contains(PteFlags::WRITE | PteFlags::USER | PteFlags::READ));
    assert!(!flags.contains(PteFlags::DIRTY));

    let traps = k.machine().counters.dbit_traps;
    const V: u64 = 0xd1e7;
    assert_eq!(one(&k, C0, Op::Store { mm, va: w, value: V }), OpResult::Value(V));
    assert_eq!(k.machine().counters.dbit_traps, traps + 1);
    assert_eq!(
        k.layout().decode(k.peek_pte(mm, va)),
        PteKind::Present { pfn, flags: flags | PteFlags::DIRTY }
    );
    assert_eq!(one(&k, C0, Op::Load { mm, va: w }), OpResult::Value(V));

    // Second page: the first touch is a store, so the fault installs a dirty PTE; no trap.
    let w1 = va.add_pages(1).with_word(WORD);
    assert_eq!(one(&k, C0, Op::Store { mm, va: w1, value: V + 1 }), OpResult::Value(V + 1));
    assert_eq!(k.machine().counters.dbit_traps, traps + 1);
    let pte1 = k.peek_pte(mm, va.add_pages(1));
    assert!(pte1.has(PteFlags::PRESENT | PteFlags::WRITE | PteFlags::DIRTY));
}
