//! `mremap` and the kernel buffer (io_uring ring) on the lineages: deterministic interleavings
//! of one CPU after another on `tiny` (four colours).
//!
//! * A dirty anonymous page that `mremap` moves to another colour reads back at the new
//!   address on the correct lineages, whose `flush_cache_range` (called by `move_page_tables`
//!   before the PTEs move) writes the old colour's lines back; a lineage that skips that flush
//!   reads stale memory there.
//! * A ring mapped the way io_uring has placed it since 6.4 is an equivalent alias of the
//!   kernel address, so the kernel's fetch sees a user store and a user load sees the kernel's
//!   post; placed by the ring file's colour (6.0, and every kernel before 6.4), neither does.
//! * A `MAP_SHARED | MAP_ANONYMOUS` mapping is placed at colour 0 by `mmap`, which has no file
//!   yet, but a move by `mremap` is placed by the colour of the shmem object `shmem_zero_setup`
//!   gave it: the moved mapping and a fork's copy of the original are inequivalent aliases, and
//!   a store through one is not seen through the other, whatever the flush routines do.

use vipt_emu::addr::{CpuId, PAGE_SIZE, VirtAddr};
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Executor, Kernel, MmId, MremapArgs, Op, OpResult, RingId, Vma};
use vipt_tmpalias::{Lineage, Registry};

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);
const X: u64 = 0xaaaa;
const Y: u64 = 0xbbbb;

fn lineage(name: &str) -> Lineage {
    Registry::builtin().get(name).cloned().unwrap_or_else(|| panic!("no lineage {name}"))
}

fn boot(l: &Lineage) -> Kernel {
    l.boot(Preset::Tiny.config(), Box::new(FirstChooser))
}

fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

fn load(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr) -> u64 {
    match run(ex, cpu, Op::Load { mm, va }) {
        OpResult::Value(v) => v,
        other => panic!("load: {other:?}"),
    }
}

/// `linux-6.x` whose `flush_cache_range` does nothing.
#[derive(Clone)]
struct NoRangeFlush;

impl Patch for NoRangeFlush {
    fn flush_cache_range<'a>(
        &'a self, _: &'a dyn ArchHooks, _cx: ArchCtx<'a>, _vma: Vma, _start: VirtAddr, _end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// CPU0 stores to an anonymous page (a dirty line at its colour); CPU1 `mremap`s the mapping
/// to an address of the next colour; CPU0 loads there. Returns the value loaded.
fn moved_dirty_page(l: &Lineage) -> u64 {
    let k = boot(l);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: None, shared: false, writable: true, fixed: None };
    let OpResult::Mapped(a) = run(&mut ex, C0, Op::Mmap { mm, args }) else { panic!() };
    assert_eq!(run(&mut ex, C0, Op::Store { mm, va: a, value: X }), OpResult::Value(X));
    let to = VirtAddr::new(0x0900_0000 + (a.vpn().raw() % 4 + 1) * PAGE_SIZE);
    assert!(!k.machine().equivalent(a, to));
    let args = MremapArgs { old_pages: 1, new_pages: 1, maymove: true, fixed: Some(to) };
    assert_eq!(run(&mut ex, C1, Op::Mremap { mm, va: a, args }), OpResult::Mapped(to));
    load(&mut ex, C0, mm, to)
}

#[test]
fn a_dirty_anonymous_page_moved_to_another_colour_reads_back_unless_the_range_flush_is_skipped() {
    for name in ["linux-6.x", "linux-6.10", "whole-cache", "linux-2.6.15", "tmpalias", "linux-6.0"] {
        assert_eq!(moved_dirty_page(&lineage(name)), X, "{name}");
    }
    let broken =
        lineage("linux-6.x").patched("no-range-flush", "flush_cache_range does nothing", NoRangeFlush);
    assert_eq!(moved_dirty_page(&broken), 0, "the store is still in the old colour's line");
}

/// A kernel of `l` with one ring mapped by one process, the ring file's colour one off the
/// kernel address's: the mm, the ring, the user address and whether it is an equivalent alias
/// of the kernel address.
fn ring_rig(k: &Kernel, ex: &mut Executor<'_>) -> (MmId, RingId, VirtAddr, bool) {
    let mm = k.create_mm().unwrap();
    let ring = k.create_ring(0).unwrap();
    let kva = k.ring_pages(ring)[0].kernel_va();
    k.state().rings[ring.index()].file_colour = kva.vpn().raw() % 4 + 1;
    let OpResult::Mapped(u) = run(ex, C0, Op::RingMmap { mm, ring }) else { panic!() };
    (mm, ring, u, k.machine().equivalent(u, kva))
}

/// The user side stores a submission word, the kernel fetches it; the user side reads a
/// completion word (caching its line), the kernel posts it, the user side reads it again.
/// Returns what the kernel fetched and what the second user read returned.
fn ring_round_trip(l: &Lineage) -> (bool, u64, u64) {
    let k = boot(l);
    let mut ex = Executor::new(&k);
    let (mm, ring, u, congruent) = ring_rig(&k, &mut ex);
    assert_eq!(run(&mut ex, C0, Op::Store { mm, va: u.with_word(1), value: X }), OpResult::Value(X));
    let OpResult::Value(fetched) = run(&mut ex, C1, Op::GetSqe { ring, page: 0, word: 1 }) else { panic!() };
    assert_eq!(load(&mut ex, C0, mm, u.with_word(40)), 0);
    assert_eq!(run(&mut ex, C1, Op::FillCqe { ring, page: 0, word: 40, value: Y }), OpResult::Done);
    let seen = load(&mut ex, C0, mm, u.with_word(40));
    (congruent, fetched, seen)
}

#[test]
fn a_ring_placed_at_its_kernel_colour_is_coherent_and_one_placed_by_its_file_is_not() {
    for name in ["linux-6.x", "linux-6.10", "whole-cache"] {
        assert_eq!(ring_round_trip(&lineage(name)), (true, X, Y), "{name}");
    }
    assert_eq!(
        ring_round_trip(&lineage("linux-6.0")),
        (false, 0, 0),
        "the user store and the post stay unseen"
    );
    let before = lineage("linux-6.x").configure(|c| c.io_uring_coloured = false);
    assert_eq!(ring_round_trip(&before), (false, 0, 0));
}

/// The shmem object's colour offset (in pages) for the moved shared anonymous mapping.
const OBJECT_COLOUR: u64 = 1;

/// Process A maps one shared anonymous page and stores to it, forks B, and grows its mapping
/// with `MREMAP_MAYMOVE` while the next page is taken, so it moves; B stores `Y` through the
/// original address and A loads through the new one. Returns whether the two addresses are
/// equivalent and what A loaded.
fn shared_anon_moved(l: &Lineage) -> (bool, u64) {
    let k = l.boot(l.preset.unwrap_or(Preset::Tiny).config(), Box::new(FirstChooser));
    let mut ex = Executor::new(&k);
    let a = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: None, shared: true, writable: true, fixed: None };
    let OpResult::Mapped(va) = run(&mut ex, C0, Op::Mmap { mm: a, args }) else { panic!() };
    let object = k.state().find_vma(a, va).and_then(|v| v.file).expect("shmem_zero_setup gave it a file");
    k.state().files[object.index()].colour = OBJECT_COLOUR;
    let next = MmapArgs { pages: 1, file: None, shared: false, writable: true, fixed: Some(va.add_pages(1)) };
    assert!(matches!(run(&mut ex, C0, Op::Mmap { mm: a, args: next }), OpResult::Mapped(_)));
    assert_eq!(run(&mut ex, C0, Op::Store { mm: a, va, value: X }), OpResult::Value(X));
    let OpResult::Forked(b) = run(&mut ex, C0, Op::Fork { mm: a }) else { panic!() };
    let grow = MremapArgs { old_pages: 1, new_pages: 2, maymove: true, fixed: None };
    let OpResult::Mapped(moved) = run(&mut ex, C0, Op::Mremap { mm: a, va, args: grow }) else { panic!() };
    assert_ne!(moved, va, "the mapping moved");
    assert_eq!(load(&mut ex, C0, a, moved), X, "{}: A reads its own store at the new address", l.name);
    assert_eq!(run(&mut ex, C1, Op::Store { mm: b, va, value: Y }), OpResult::Value(Y));
    let equivalent = k.machine().equivalent(va, moved);
    (equivalent, load(&mut ex, C0, a, moved))
}

#[test]
fn a_shared_anonymous_mapping_moved_by_mremap_is_an_inequivalent_alias_of_its_fork_copy() {
    for name in ["linux-6.x", "linux-6.10", "linux-6.0", "whole-cache", "linux-2.6.15"] {
        assert_eq!(shared_anon_moved(&lineage(name)), (false, X), "{name}: B's store is unseen");
    }
    assert_eq!(shared_anon_moved(&lineage("pipt")).1, Y, "no aliases on the PIPT machine");
}
