//! How each parisc era changes PTEs, flushes a page by user address and flushes the kernel
//! alias, in handcrafted, deterministic runs on `tiny` (4 CPUs, 4 colours, [`FirstChooser`]).
//!
//! * `linux-6.10` stores PTEs in `pte_clear` and `ptep_set_wrprotect` with `set_pte`, which
//!   purges no TLB entry; `linux-6.x` goes through `set_pte_at`, which does.
//! * The generic `ptep_get_and_clear` of 6.10+ and the `ptep_clear_flush_young` of `cache.c`
//!   read the PTE and store it in a second step, as does 6.0's own `ptep_get_and_clear` and its
//!   `ptep_test_and_clear_young`. A dirty-bit trap on another CPU between the two steps sets
//!   `_PAGE_DIRTY`, and the store takes it away: reclaim then drops a dirty file page
//!   without writing it back.
//! * The generic `ptep_set_access_flags` stores the fault's `entry` over a dirty bit the trap set
//!   after the fault read the PTE; PowerPC's ORs the bits in.
//! * `linux-6.0` flushes a page in `flush_cache_page` by tmpalias with no PTE check, except on
//!   PA8800/PA8900, where it flushes by user address.
//! * 3.x `clear_user_page` purges the kernel translation of the page; 2.6's does not.
//! * `flush_icache_page` writes back the kernel alias in every era; from 3.x on it also purges
//!   the kernel translation.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use vipt_emu::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::{MachineConfig, Preset};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::situations::Situation;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Executor, FileId, Kernel, MmId, Op, OpResult, StepError, Vma};
use vipt_emu::pte::{Pte, PteFlags};
use vipt_emu::tlb::Rights;
use vipt_tmpalias::Registry;

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);
const C2: CpuId = CpuId(2);
const OLD: u64 = 0x01d0;
const V1: u64 = 0x0001;
const V2: u64 = 0x0002;
/// Lines in a page on `tiny`.
const LINES: u64 = 32;

fn boot(name: &str, cfg: MachineConfig) -> Kernel {
    Registry::builtin()
        .get(name)
        .unwrap_or_else(|| panic!("no lineage {name}"))
        .boot(cfg, Box::new(FirstChooser))
}

fn kernel(name: &str) -> Kernel {
    boot(name, Preset::Tiny.config())
}

fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

/// Polls a kernel routine to completion outside the executor (each step yields once).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A one-page anonymous mapping into which CPU0 stored [`V1`]: CPU0 holds a writable, dirty
/// translation of it.
struct Anon {
    mm: MmId,
    va: VirtAddr,
    page: Pfn,
    vma: Vma,
}

fn anon_page(k: &Kernel, ex: &mut Executor<'_>) -> Anon {
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: None, shared: false, writable: true, fixed: None };
    let va = mapped(run(ex, C0, Op::Mmap { mm, args }));
    assert_eq!(run(ex, C0, Op::Store { mm, va, value: V1 }), OpResult::Value(V1));
    let page = k.follow_pfn(mm, va).unwrap();
    let vma = k.state().find_vma(mm, va).unwrap();
    Anon { mm, va, page, vma }
}

/// Does any CPU hold a translation of `va` in `space` that allows stores?
fn writable_translation(k: &Kernel, space: SpaceId, va: VirtAddr) -> bool {
    let m = k.machine();
    (0..m.ncpus()).any(|c| {
        m.cpu(CpuId(c as u8)).tlb.entries().iter().any(|e| {
            e.space == space && e.vpn == va.vpn() && !e.flush_only && e.rights.contains(Rights::WRITE)
        })
    })
}

/// 6.10: after ptep_set_wrprotect CPU0 still holds a writable translation and its next store
/// goes through without a fault; 6.x purges it and the store faults.
#[test]
fn ptep_set_wrprotect_leaves_a_writable_translation_on_6_10_and_none_on_6_x() {
    for (name, stale) in [("linux-6.10", true), ("linux-6.x", false)] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let a = anon_page(&k, &mut ex);
        assert!(writable_translation(&k, a.vma.space, a.va), "{name}: CPU0 holds a writable entry");
        block_on(k.arch(C1).ptep_set_wrprotect(a.mm, a.va));
        assert!(!k.peek_pte(a.mm, a.va).has(PteFlags::WRITE), "{name}");
        assert_eq!(writable_translation(&k, a.vma.space, a.va), stale, "{name}");
        let faults = k.machine().counters.page_faults;
        assert_eq!(run(&mut ex, C0, Op::Store { mm: a.mm, va: a.va, value: V2 }), OpResult::Value(V2));
        let faulted = k.machine().counters.page_faults > faults;
        assert_eq!(faulted, !stale, "{name}");
    }
}

/// 6.10's pte_clear is a plain store: CPU0 keeps translating the page. 6.x's purges.
#[test]
fn pte_clear_purges_the_translation_on_6_x_only() {
    for (name, stale) in [("linux-6.10", true), ("linux-6.x", false)] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let a = anon_page(&k, &mut ex);
        block_on(k.arch(C1).pte_clear(a.mm, a.va));
        assert_eq!(k.peek_pte(a.mm, a.va), Pte::NONE, "{name}");
        assert_eq!(k.machine().tlb_translates(a.vma.space, a.va, a.page).is_some(), stale, "{name}");
    }
}

/// The generic ptep_get_and_clear returns the old PTE on both; through 6.x's pte_clear it
/// purges too.
#[test]
fn ptep_get_and_clear_purges_the_translation_on_6_x_only() {
    for (name, stale) in [("linux-6.10", true), ("linux-6.x", false)] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let a = anon_page(&k, &mut ex);
        let before = k.peek_pte(a.mm, a.va);
        let old = block_on(k.arch(C1).ptep_get_and_clear(a.mm, a.va));
        assert_eq!(old, before, "{name}");
        assert!(old.has(PteFlags::PRESENT | PteFlags::DIRTY), "{name}");
        assert_eq!(k.peek_pte(a.mm, a.va), Pte::NONE, "{name}");
        assert_eq!(k.machine().tlb_translates(a.vma.space, a.va, a.page).is_some(), stale, "{name}");
    }
}

/// A file page mapped shared by a process that has only loaded it: its PTE is present,
/// young and clean, and CPU0 holds a translation without the D bit.
fn clean_file_mapping(k: &Kernel, ex: &mut Executor<'_>) -> (FileId, MmId, VirtAddr) {
    let f = k.create_file(1, 0);
    k.state().files[f.index()].disk[0][0] = OLD;
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared: true, writable: true, fixed: None };
    let va = mapped(run(ex, C0, Op::Mmap { mm, args }));
    assert_eq!(run(ex, C0, Op::Load { mm, va }), OpResult::Value(OLD));
    let pte = k.peek_pte(mm, va);
    assert!(pte.has(PteFlags::PRESENT | PteFlags::ACCESSED) && !pte.has(PteFlags::DIRTY));
    (f, mm, va)
}

/// What survives a store made by a dirty-bit trap inside reclaim's read-modify-write of the
/// PTE: the file's disk block and a `read(2)` after the page is gone.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    disk: u64,
    read_back: u64,
    /// The run met `pte.dirty_dropped`: a plain PTE store removed the trap's dirty bit.
    dropped: bool,
}

/// Reclaim (CPU1) of the file page stops just before its `nth` PTE store; CPU0 stores [`V2`]
/// (its translation lacks the D bit: a dirty-bit trap sets `_PAGE_DIRTY` first); reclaim
/// finishes. 1: aging's store (`ptep_clear_flush_young`); 2: the clear of `ptep_clear_flush`.
/// Where reclaim holds `pa_dbit_lock` at that point, the trap waits for it and the store lands
/// after reclaim, in the page read back from disk.
fn store_inside_reclaim(name: &str, nth: usize) -> Outcome {
    let k = kernel(name);
    let mut ex = Executor::new(&k);
    let (f, mm, va) = clean_file_mapping(&k, &mut ex);
    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
    for _ in 0..nth {
        let r = ex.run_until(C1, |a| matches!(a, Action::PteWrite { mm: m, .. } if *m == mm)).unwrap();
        assert_eq!(r, None, "{name}: reclaim finished early");
    }
    let traps = k.machine().counters.dbit_traps;
    ex.spawn(C0, Op::Store { mm, va, value: V2 });
    let stored = loop {
        match ex.step_cpu(C0) {
            Ok(Some(r)) => break Some(r),
            Ok(None) => {}
            Err(StepError::Blocked(_)) => break None,
            Err(e) => panic!("{name}: {e}"),
        }
    };
    assert_eq!(k.machine().counters.dbit_traps, traps + 1, "{name}: the store took a dirty-bit trap");
    assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Done, "{name}");
    assert_eq!(k.state().files[f.index()].cached(0), None, "{name}: the page was reclaimed");
    let stored = stored.unwrap_or_else(|| ex.run_to_completion(C0).unwrap());
    assert_eq!(stored, OpResult::Value(V2), "{name}");
    let read_back = match run(&mut ex, C2, Op::Read { file: f, pgoff: 0, word: 0 }) {
        OpResult::Value(v) => v,
        other => panic!("{name}: read failed: {other:?}"),
    };
    let dropped = k.situations().get(Situation::DirtyDropped) > 0;
    Outcome { disk: k.disk_word(f, 0, 0).unwrap(), read_back, dropped }
}

/// parisc's ptep_clear_flush_young (6.10+) and 6.0's ptep_test_and_clear_young store the old
/// PTE they read before the trap: `_PAGE_DIRTY` is gone, reclaim sees a clean page and drops
/// it, and the completed store is lost. An atomic clear of the young bit keeps it.
#[test]
fn aging_loses_a_dirty_bit_set_between_its_read_and_its_store() {
    for name in ["linux-6.0", "linux-6.10", "linux-6.x"] {
        assert_eq!(
            store_inside_reclaim(name, 1),
            Outcome { disk: OLD, read_back: OLD, dropped: true },
            "{name}"
        );
    }
    for name in ["linux-2.6.15", "whole-cache"] {
        assert_eq!(
            store_inside_reclaim(name, 1),
            Outcome { disk: V2, read_back: V2, dropped: false },
            "{name}"
        );
    }
}

/// The generic ptep_get_and_clear (6.10+) and 6.0's own read the PTE, then clear it: a dirty
/// bit set in between is not in the value returned, so reclaim drops the page unwritten. An
/// atomic exchange (the generic default) sees it, and 2.6's clear under `pa_dbit_lock` makes
/// the trap wait until the PTE is gone, so the store faults the page back in. (On 6.0, whose
/// ptep_clear_flush flushes no cache, the store also stays behind as a dirty line on the freed
/// frame, and the page read back from disk into that frame shows it.)
#[test]
fn get_and_clear_loses_a_dirty_bit_set_between_its_read_and_its_clear() {
    for name in ["linux-6.10", "linux-6.x"] {
        assert_eq!(
            store_inside_reclaim(name, 2),
            Outcome { disk: OLD, read_back: OLD, dropped: true },
            "{name}"
        );
    }
    assert_eq!(store_inside_reclaim("linux-6.0", 2), Outcome { disk: OLD, read_back: V2, dropped: true });
    assert_eq!(store_inside_reclaim("whole-cache", 2), Outcome { disk: V2, read_back: V2, dropped: false });
    // 2.6.15 clears under pa_dbit_lock, which the trap takes too: the store waits for the clear.
    assert_eq!(store_inside_reclaim("linux-2.6.15", 2), Outcome { disk: OLD, read_back: V2, dropped: false });
}

/// 6.0's flush_cache_page of a page whose PTE is already gone: without
/// `parisc_requires_coherency()` it flushes by tmpalias (no PTE involved) and writes the
/// dirty line back; on PA8800/PA8900 it flushes by user address and every `fdc` is nullified.
#[test]
fn flush_cache_page_of_6_0_ignores_the_pte_except_on_pa8800() {
    let coherent = MachineConfig { requires_coherency: true, ..Preset::Tiny.config() };
    for (cfg, nullified, dirty_left) in [(Preset::Tiny.config(), 0, 0), (coherent, LINES, 1)] {
        let coh = cfg.requires_coherency;
        let k = boot("linux-6.0", cfg);
        let mut ex = Executor::new(&k);
        let a = anon_page(&k, &mut ex);
        let cx = k.cx(C1);
        block_on(cx.write_pte(a.mm, a.va, Pte::NONE));
        block_on(cx.purge_tlb(a.vma.space, a.va));
        let n0 = k.machine().counters.nullified;
        block_on(k.arch(C1).flush_cache_page(a.vma, a.va, a.page));
        assert_eq!(k.machine().counters.nullified - n0, nullified, "coherency {coh}");
        assert_eq!(k.machine().dirty_lines_of(a.page), dirty_left as usize, "coherency {coh}");
        let in_memory = k.machine().mem.read(a.page.word(0));
        assert_eq!(in_memory == V1, dirty_left == 0, "coherency {coh}");
    }
}

/// A page-cache page, a VMA mapping it, and a kernel translation of the page on CPU0 (a load
/// through the kernel alias).
fn kernel_mapped_page(k: &Kernel, ex: &mut Executor<'_>) -> (Pfn, Vma) {
    let f = k.create_file(1, 0);
    k.state().files[f.index()].disk[0][0] = OLD;
    assert_eq!(run(ex, C0, Op::Read { file: f, pgoff: 0, word: 0 }), OpResult::Value(OLD));
    let page = k.state().files[f.index()].cached(0).unwrap();
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared: true, writable: true, fixed: None };
    let va = mapped(run(ex, C0, Op::Mmap { mm, args }));
    assert_eq!(block_on(k.cx(C0).kernel_load(page.word(0).kernel_va())), OLD);
    assert!(k.machine().tlb_translates(SpaceId::KERNEL, page.kernel_va(), page).is_some());
    (page, k.state().find_vma(mm, va).unwrap())
}

/// 3.x clear_user_page purges the kernel alias (`pdc`) and then its kernel TLB entry before
/// zeroing through tmpalias; 2.6's only purges the alias. Both leave zeros at the user colour.
#[test]
fn clear_user_page_purges_the_kernel_translation_from_3x_on() {
    for (name, kernel_translation_left) in [("tmpalias", false), ("linux-2.6.14", true)] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let (page, vma) = kernel_mapped_page(&k, &mut ex);
        // A user address of another colour than the kernel alias (`pfn mod 4` on tiny).
        let colour = |va: VirtAddr| (va.raw() >> 12) % 4;
        let kernel_colour = u64::from(page.raw()) % 4;
        let uva = (0..4).map(|i| vma.start.add_pages(i)).find(|&va| colour(va) != kernel_colour).unwrap();
        block_on(k.arch(C1).clear_user_highpage(page, uva));
        let left = k.machine().tlb_translates(SpaceId::KERNEL, page.kernel_va(), page).is_some();
        assert_eq!(left, kernel_translation_left, "{name}");
        assert_eq!(k.machine().view_word(uva, page.word(0)), 0, "{name}");
    }
}

/// flush_icache_page writes the kernel alias back in every era (a store through it reaches
/// memory); from 3.x on (`flush_kernel_dcache_page_addr`) it also purges the kernel
/// translation, which 2.6's `flush_kernel_dcache_page` leaves.
#[test]
fn flush_icache_page_writes_back_the_kernel_alias_and_purges_from_3x_on() {
    let cases = [
        ("linux-6.x", false),
        ("linux-6.10", false),
        ("linux-6.0", false),
        ("tmpalias", false),
        ("linux-2.6.15", true),
        ("linux-2.6.14", true),
        ("linux-2.4", true),
        ("whole-cache", false),
    ];
    for (name, kernel_translation_left) in cases {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let (page, vma) = kernel_mapped_page(&k, &mut ex);
        block_on(k.cx(C0).kernel_store(page.word(0).kernel_va(), V2));
        assert_eq!(k.machine().dirty_lines_of(page), 1, "{name}");
        block_on(k.arch(C1).flush_icache_page(vma, page));
        assert_eq!(k.machine().dirty_lines_of(page), 0, "{name}");
        assert_eq!(k.machine().mem.read(page.word(0)), V2, "{name}");
        let left = k.machine().tlb_translates(SpaceId::KERNEL, page.kernel_va(), page).is_some();
        assert_eq!(left, kernel_translation_left, "{name}");
    }
}

/// The generic `ptep_set_access_flags` (parisc has no override in any era) compares the PTE
/// with the fault's `entry`, made from the PTE the fault read first, and stores `entry` if they
/// differ. A dirty bit a dirty-bit trap set after that read makes them differ, and the store
/// takes it away: reclaim then drops the page unwritten. PowerPC's version (the `hash-*`
/// lineages) ORs the access bits in, so the dirty bit stays and the page is written back.
#[test]
fn access_flags_store_loses_a_dirty_bit_set_after_the_faults_read() {
    for (name, preset, kept) in [
        ("linux-6.x", Preset::Tiny, false),
        ("linux-6.10", Preset::Tiny, false),
        ("hash-cas", Preset::Pipt, true),
    ] {
        let k = boot(name, preset.config());
        let mut ex = Executor::new(&k);
        let (f, mm, va) = clean_file_mapping(&k, &mut ex);
        let vma = k.state().find_vma(mm, va).unwrap();
        // What the fault tail read at its start: present, young, clean.
        let entry = block_on(k.read_pte(C1, mm, va)).with_flags(PteFlags::ACCESSED);
        assert_eq!(run(&mut ex, C0, Op::Store { mm, va, value: V2 }), OpResult::Value(V2), "{name}");
        assert!(k.peek_pte(mm, va).has(PteFlags::DIRTY), "{name}: the store's trap dirtied the PTE");
        assert!(block_on(k.arch(C1).ptep_set_access_flags(vma, va, entry, false)), "{name}: changed");
        assert_eq!(k.peek_pte(mm, va).has(PteFlags::DIRTY), kept, "{name}: dirty bit after the update");
        assert_eq!(k.situations().get(Situation::DirtyDropped) > 0, !kept, "{name}: pte.dirty_dropped");
        let reclaim = Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } };
        assert_eq!(run(&mut ex, C1, reclaim), OpResult::Done, "{name}");
        assert_eq!(k.state().files[f.index()].cached(0), None, "{name}: the page was reclaimed");
        assert_eq!(k.disk_word(f, 0, 0).unwrap(), if kept { V2 } else { OLD }, "{name}: the disk");
    }
}
