//! The order in which the core calls the architecture, and what it holds when it does.
//!
//! A probe lineage (the generic routines, patched so that each watched routine logs its call
//! and then stops at a labelled preemption point) runs one operation at a time; the driver
//! steps the CPU and, at each probe's stop, notes which page-table locks the CPU holds, its
//! `current->mm`, and whatever the test watches (a PTE, a swap count, a page table).

use std::cell::RefCell;
use std::rc::Rc;

use super::{C0, anon, mapped};
use crate::addr::{Pfn, VirtAddr};
use crate::arch::{ArchConfig, ArchCtx, ArchHooks, FixupMode, GenericHooks, HookFuture, Patch, Patched};
use crate::choice::FirstChooser;
use crate::config::Preset;
use crate::machine::{Machine, MissPolicy};
use crate::mm::mmap::MmapArgs;
use crate::mm::vmscan::ReclaimTarget;
use crate::mm::{Action, Executor, Kernel, LockId, MmId, Obs, Op, OpResult, Vma};
use crate::pte::{Pte, PteFlags, PteKind};

/// One call of a watched routine.
#[derive(Clone, Debug)]
pub(super) struct Call {
    /// The routine.
    pub(super) hook: &'static str,
    /// The address it was called for, or the range (`start`, `end`).
    pub(super) at: (VirtAddr, VirtAddr),
    /// The PTE value it was asked to write (`set_pte_at`, `ptep_set_access_flags`).
    pub(super) pte: Option<Pte>,
    /// The mms whose page-table lock the CPU held at the call (filled in by the driver).
    pub(super) ptls: Vec<MmId>,
    /// `current->mm` at the call.
    current: Option<MmId>,
    /// What the test's watch saw at the call.
    pub(super) seen: u64,
    /// Whether the driver saw the call (it was made by the operation under test).
    driven: bool,
}

pub(super) type Log = Rc<RefCell<Vec<Call>>>;

/// The generic routines, each watched routine logging its call and then stopping at a label.
/// `flush_tlb_range` and `flush_dcache_page` are watched only when `.1` is set.
pub(super) struct Probe(Log, bool);

impl Probe {
    fn call(&self, hook: &'static str, at: (VirtAddr, VirtAddr), pte: Option<Pte>) {
        self.0.borrow_mut().push(Call {
            hook,
            at,
            pte,
            ptls: Vec::new(),
            current: None,
            seen: 0,
            driven: false,
        });
    }
}

/// The label every probe stops at.
const PROBE: &str = "probe";

fn page(va: VirtAddr) -> (VirtAddr, VirtAddr) {
    (va, va)
}

impl Patch for Probe {
    fn set_pte_at<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr, pte: Pte,
    ) -> HookFuture<'a, ()> {
        self.call("set_pte_at", page(va), Some(pte));
        Box::pin(async move {
            cx.label(PROBE).await;
            base.set_pte_at(cx, mm, va, pte).await
        })
    }
    fn ptep_get_and_clear<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        self.call("ptep_get_and_clear", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.ptep_get_and_clear(cx, mm, va).await
        })
    }
    fn pte_clear<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        self.call("pte_clear", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.pte_clear(cx, mm, va).await
        })
    }
    fn ptep_set_access_flags<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, entry: Pte, dirty: bool,
    ) -> HookFuture<'a, bool> {
        self.call("ptep_set_access_flags", page(va), Some(entry));
        Box::pin(async move {
            cx.label(PROBE).await;
            base.ptep_set_access_flags(cx, vma, va, entry, dirty).await
        })
    }
    fn ptep_set_wrprotect<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        self.call("ptep_set_wrprotect", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.ptep_set_wrprotect(cx, mm, va).await
        })
    }
    fn ptep_clear_flush<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        self.call("ptep_clear_flush", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.ptep_clear_flush(cx, vma, va).await
        })
    }
    fn flush_cache_range<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        self.call("flush_cache_range", (start, end), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_cache_range(cx, vma, start, end).await
        })
    }
    fn flush_cache_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        self.call("flush_cache_page", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_cache_page(cx, vma, va, pfn).await
        })
    }
    fn flush_icache_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        self.call("flush_icache_page", page(pfn.kernel_va()), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_icache_page(cx, vma, pfn).await
        })
    }
    fn update_mmu_cache<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pte: Pte,
    ) -> HookFuture<'a, ()> {
        self.call("update_mmu_cache", page(va), Some(pte));
        Box::pin(async move {
            cx.label(PROBE).await;
            base.update_mmu_cache(cx, vma, va, pte).await
        })
    }
    fn copy_to_user_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, pfn: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        self.call("copy_to_user_page", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.copy_to_user_page(cx, vma, pfn, va, value).await
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, pfn: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        self.call("copy_from_user_page", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.copy_from_user_page(cx, vma, pfn, va).await
        })
    }
    fn flush_tlb_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        self.call("flush_tlb_page", page(va), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_tlb_page(cx, vma, va).await
        })
    }
    fn flush_tlb_range<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if !self.1 {
            return base.flush_tlb_range(cx, mm, start, end);
        }
        self.call("flush_tlb_range", (start, end), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_tlb_range(cx, mm, start, end).await
        })
    }
    fn flush_dcache_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        if !self.1 {
            return base.flush_dcache_page(cx, pfn);
        }
        self.call("flush_dcache_page", page(pfn.kernel_va()), None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.flush_dcache_page(cx, pfn).await
        })
    }
    fn tlb_flush<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, tlb: &'a crate::mm::MmuGather,
    ) -> HookFuture<'a, ()> {
        let at = tlb.range().unwrap_or((VirtAddr::new(0), VirtAddr::new(0)));
        self.call("tlb_flush", at, None);
        Box::pin(async move {
            cx.label(PROBE).await;
            base.tlb_flush(cx, tlb).await
        })
    }
}

/// A kernel on the tiny VIPT machine with the probe over the generic routines and `config`,
/// and its log.
fn probed(config: ArchConfig) -> (Kernel, Log) {
    probed_with(Preset::Tiny, config, false)
}

/// [`probed`] on `preset`, watching `flush_tlb_range` and `flush_dcache_page` too when `all`.
pub(super) fn probed_with(preset: Preset, config: ArchConfig, all: bool) -> (Kernel, Log) {
    let log: Log = Rc::default();
    let hooks = Patched::new(Box::new(GenericHooks), Probe(log.clone(), all));
    let m = Machine::new(preset.config(), Box::new(FirstChooser));
    let k = Kernel::new(m, Box::new(hooks), config);
    k.record_observations();
    (k, log)
}

pub(super) fn run(ex: &mut Executor<'_>, op: Op) -> OpResult {
    ex.spawn(C0, op);
    ex.run_to_completion(C0).unwrap()
}

/// Runs `op` on CPU 0 with the log cleared first; at each probe's stop notes the
/// page-table locks held, `current->mm` and `watch`. Returns the result and the calls.
pub(super) fn watched(
    k: &Kernel, ex: &mut Executor<'_>, log: &Log, op: Op, watch: &dyn Fn(&Kernel) -> u64,
) -> (OpResult, Vec<Call>) {
    log.borrow_mut().clear();
    ex.spawn(C0, op);
    loop {
        if k.pending(C0) == Action::Label(PROBE) {
            let ptls = {
                let s = k.state();
                (0..s.mms.len() as u32).map(MmId).filter(|&m| s.locks.holds(LockId::Ptl(m), C0)).collect()
            };
            let mut l = log.borrow_mut();
            let c = l.iter_mut().rev().find(|c| !c.driven).expect("a probe stops after logging its call");
            c.ptls = ptls;
            c.current = k.current_mm(C0);
            c.seen = watch(k);
            c.driven = true;
        }
        if let Some(r) = ex.step_cpu(C0).unwrap() {
            let calls = log.borrow().clone();
            assert!(calls.iter().all(|c| c.driven), "every call was seen at its stop");
            return (r, calls);
        }
    }
}

pub(super) fn nothing(_: &Kernel) -> u64 {
    0
}

pub(super) fn hooks(calls: &[Call]) -> Vec<&'static str> {
    calls.iter().map(|c| c.hook).collect()
}

pub(super) fn first(calls: &[Call], hook: &str) -> usize {
    calls.iter().position(|c| c.hook == hook).unwrap_or_else(|| panic!("no {hook} in {:?}", hooks(calls)))
}

pub(super) fn shared_file(file: crate::mm::FileId, pages: u64) -> MmapArgs {
    MmapArgs { pages, file: Some((file, 0)), shared: true, writable: true, fixed: None }
}

pub(super) fn private_file(file: crate::mm::FileId, pages: u64) -> MmapArgs {
    MmapArgs { pages, file: Some((file, 0)), shared: false, writable: true, fixed: None }
}

/// An anonymous page stored to, reclaimed to swap: the mm, its address and the slot.
fn swapped_out(k: &Kernel, ex: &mut Executor<'_>) -> (MmId, VirtAddr, u32) {
    let mm = k.create_mm().unwrap();
    let va = mapped(run(ex, Op::Mmap { mm, args: anon(1) }));
    assert_eq!(run(ex, Op::Store { mm, va, value: 7 }), OpResult::Value(7));
    assert_eq!(run(ex, Op::Reclaim { target: ReclaimTarget::User { mm, va } }), OpResult::Done);
    let PteKind::Swap { offset, .. } = k.layout().decode(k.peek_pte(mm, va)) else {
        panic!("not swapped out: {:?}", k.peek_pte(mm, va))
    };
    (mm, va, offset)
}

// ----- update_mmu_cache under the page-table lock -----------------------------------------

/// Every fault path that installs or upgrades a PTE calls `update_mmu_cache` with the
/// page-table lock of the faulting mm still held: anonymous, file (shared read, private
/// write), COW of an anonymous page, write-fault reuse, swap-in.
#[test]
fn update_mmu_cache_runs_under_the_page_table_lock_on_every_fault_path() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let f = k.create_file(2, 0);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 2) }));
    let p = mapped(run(&mut ex, Op::Mmap { mm, args: private_file(f, 1) }));
    let mut faults = vec![
        ("anonymous", Op::Store { mm, va: a, value: 1 }),
        ("shared file read", Op::Load { mm, va: s }),
        ("private file write", Op::Store { mm, va: p, value: 2 }),
    ];
    // COW: after a fork the parent's anonymous page is read-only and mapped twice.
    faults.push(("fork", Op::Fork { mm }));
    faults.push(("cow", Op::Store { mm, va: a, value: 3 }));
    // Reuse: a shared page made read-only by mprotect and back takes a write fault.
    faults.push(("mprotect none", Op::Mprotect { mm, va: s, pages: 2, none: true }));
    faults.push(("mprotect back", Op::Mprotect { mm, va: s, pages: 2, none: false }));
    faults.push(("reuse", Op::Store { mm, va: s, value: 4 }));
    let mut seen = 0;
    for (what, op) in faults {
        let (r, calls) = watched(&k, &mut ex, &log, op, &nothing);
        assert!(!matches!(r, OpResult::Err(_)), "{what}: {r:?}");
        for c in calls.iter().filter(|c| c.hook == "update_mmu_cache") {
            assert_eq!(c.ptls, vec![mm], "{what}: update_mmu_cache without the page-table lock");
            seen += 1;
        }
    }
    assert_eq!(seen, 5, "anonymous, shared read, private write, COW and reuse each installed a PTE");
    let (sm, sva, _) = swapped_out(&k, &mut ex);
    let (r, calls) = watched(&k, &mut ex, &log, Op::Load { mm: sm, va: sva }, &nothing);
    assert_eq!(r, OpResult::Value(7));
    let c = &calls[first(&calls, "update_mmu_cache")];
    assert_eq!(c.ptls, vec![sm], "swap-in: update_mmu_cache without the page-table lock");
}

// ----- flush_icache_page before set_pte_at --------------------------------------------------

/// `flush_icache_page` of the page about to be mapped comes, under the page-table lock, right
/// before the `set_pte_at` that maps it, on a file fault (the page-cache page, or the copy of
/// a private write) and on swap-in; COW and an anonymous zero-fill do not call it.
#[test]
fn flush_icache_page_precedes_set_pte_at_in_file_faults_and_swap_in_only() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let f = k.create_file(2, 0);
    let mm = k.create_mm().unwrap();
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 1) }));
    let p = mapped(run(&mut ex, Op::Mmap { mm, args: private_file(f, 1) }));
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    let pte_at = |va: VirtAddr| move |k: &Kernel| k.peek_pte(mm, va).0;
    for (what, va, op) in
        [("shared read", s, Op::Load { mm, va: s }), ("private write", p, Op::Store { mm, va: p, value: 5 })]
    {
        let (r, calls) = watched(&k, &mut ex, &log, op, &pte_at(va));
        assert!(matches!(r, OpResult::Value(_)), "{what}: {r:?}");
        let i = first(&calls, "flush_icache_page");
        assert_eq!(calls[i + 1].hook, "set_pte_at", "{what}: {:?}", hooks(&calls));
        assert_eq!(calls[i].seen, 0, "{what}: the PTE is still none at flush_icache_page");
        assert_eq!(calls[i].ptls, vec![mm], "{what}");
        let mapped_pfn = calls[i + 1].pte.unwrap().raw_pfn();
        assert_eq!(calls[i].at.0, mapped_pfn.kernel_va(), "{what}: the page being mapped");
    }
    // Anonymous zero-fill and COW: none.
    for op in [Op::Store { mm, va: a, value: 1 }, Op::Fork { mm }, Op::Store { mm, va: a, value: 2 }] {
        let (_, calls) = watched(&k, &mut ex, &log, op, &nothing);
        assert!(!hooks(&calls).contains(&"flush_icache_page"), "{op:?}: {:?}", hooks(&calls));
    }
    // Swap-in.
    let (mm, va, _) = swapped_out(&k, &mut ex);
    let (r, calls) = watched(&k, &mut ex, &log, Op::Load { mm, va }, &|k: &Kernel| k.peek_pte(mm, va).0);
    assert_eq!(r, OpResult::Value(7));
    let i = first(&calls, "flush_icache_page");
    assert_eq!(calls[i + 1].hook, "set_pte_at", "{:?}", hooks(&calls));
    assert!(matches!(k.layout().decode(Pte(calls[i].seen)), PteKind::Swap { .. }), "still the swap entry");
    assert_eq!(calls[i].ptls, vec![mm]);
}

// ----- write-fault reuse --------------------------------------------------------------------

/// `wp_page_reuse`: under the page-table lock, `flush_cache_page` of the mapped page, then
/// `ptep_set_access_flags` with the PTE made young, dirty and writable (the generic version:
/// `set_pte_at`, `flush_tlb_page`), then `update_mmu_cache`.
#[test]
fn write_fault_reuse_flushes_the_page_then_sets_the_access_flags_under_the_lock() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let f = k.create_file(1, 0);
    let mm = k.create_mm().unwrap();
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 1) }));
    run(&mut ex, Op::Load { mm, va: s });
    run(&mut ex, Op::Mprotect { mm, va: s, pages: 1, none: true });
    run(&mut ex, Op::Mprotect { mm, va: s, pages: 1, none: false });
    let before = k.peek_pte(mm, s);
    assert!(!before.has(PteFlags::WRITE));
    let (r, calls) = watched(&k, &mut ex, &log, Op::Store { mm, va: s, value: 9 }, &nothing);
    assert_eq!(r, OpResult::Value(9));
    assert_eq!(
        hooks(&calls),
        ["flush_cache_page", "ptep_set_access_flags", "set_pte_at", "flush_tlb_page", "update_mmu_cache"]
    );
    assert!(calls.iter().all(|c| c.ptls == vec![mm]), "{calls:?}");
    let entry = calls[1].pte.unwrap();
    assert_eq!(entry, before.with_flags(PteFlags::WRITE | PteFlags::DIRTY | PteFlags::ACCESSED));
    assert_eq!(k.peek_pte(mm, s), entry);
}

// ----- the young/dirty tail of handle_pte_fault, and fork's old child PTEs ------------------

/// Software-tracked young/dirty bits: fork leaves the child's PTE old, so its first load
/// faults on a present PTE; the fault's tail makes it young through `ptep_set_access_flags`
/// under the page-table lock, then `update_mmu_cache`. The parent's writable COW page was
/// write-protected (both PTEs read-only) with both page-table locks held.
#[test]
fn fork_leaves_old_child_ptes_that_the_fault_tail_makes_young_through_the_hook() {
    let sw = ArchConfig {
        miss: MissPolicy { sw_young_dirty: true, ..MissPolicy::CURRENT },
        ..ArchConfig::GENERIC
    };
    let (k, log) = probed(sw);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Store { mm, va: a, value: 6 });
    assert!(k.peek_pte(mm, a).has(PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::WRITE));
    let (r, calls) = watched(&k, &mut ex, &log, Op::Fork { mm }, &nothing);
    let OpResult::Forked(child) = r else { panic!("{r:?}") };
    let w = &calls[first(&calls, "ptep_set_wrprotect")];
    let mut both = vec![mm, child];
    both.sort();
    assert_eq!(w.ptls, both, "the parent's write-protect with both page-table locks held");
    let c = calls.iter().find(|c| c.hook == "set_pte_at").unwrap();
    assert_eq!(c.ptls, both, "the child's PTE set with both page-table locks held");
    let (parent_pte, child_pte) = (k.peek_pte(mm, a), k.peek_pte(child, a));
    assert!(!parent_pte.has(PteFlags::WRITE) && !child_pte.has(PteFlags::WRITE));
    assert!(!child_pte.has(PteFlags::ACCESSED), "the child's PTE is old: {child_pte:?}");
    assert!(parent_pte.has(PteFlags::ACCESSED), "the parent's keeps its young bit");
    assert_eq!(child_pte.raw_pfn(), parent_pte.raw_pfn());

    let (r, calls) = watched(&k, &mut ex, &log, Op::Load { mm: child, va: a }, &nothing);
    assert_eq!(r, OpResult::Value(6));
    assert_eq!(hooks(&calls), ["ptep_set_access_flags", "set_pte_at", "flush_tlb_page", "update_mmu_cache"]);
    assert!(calls.iter().all(|c| c.ptls == vec![child]), "{calls:?}");
    assert_eq!(k.peek_pte(child, a), child_pte.with_flags(PteFlags::ACCESSED));
}

/// A write fault on a PTE that already permits it and is young and dirty (this CPU's TLB
/// entry is stale and read-only) is spurious: `ptep_set_access_flags` changes nothing, so no
/// `update_mmu_cache`, and `flush_tlb_fix_spurious_fault` (the generic `flush_tlb_page`)
/// drops the stale entry, all under the page-table lock; the store then completes.
#[test]
fn a_spurious_write_fault_flushes_the_stale_translation_and_changes_no_pte() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, Op::Store { mm, va: a, value: 1 });
    let pte = k.peek_pte(mm, a);
    assert!(pte.has(PteFlags::WRITE | PteFlags::DIRTY | PteFlags::ACCESSED));
    let space = k.mm_space(mm);
    k.machine().purge_tlb(C0, space, a);
    k.machine().insert_translation(C0, space, a, pte.raw_pfn(), pte.flags() - PteFlags::WRITE);
    let (r, calls) = watched(&k, &mut ex, &log, Op::Store { mm, va: a, value: 2 }, &nothing);
    assert_eq!(r, OpResult::Value(2));
    assert_eq!(hooks(&calls), ["ptep_set_access_flags", "flush_tlb_page"]);
    assert!(calls.iter().all(|c| c.ptls == vec![mm]), "{calls:?}");
    assert_eq!(k.peek_pte(mm, a), pte);
}

/// A gup that marks the PTE (the fix of the futex livelock on software young/dirty) makes a
/// clean PTE dirty through `ptep_set_access_flags` under the page-table lock, then
/// `update_mmu_cache`; the futex store then completes.
#[test]
fn a_marking_gup_dirties_the_pte_through_ptep_set_access_flags() {
    let config = ArchConfig {
        miss: MissPolicy { sw_young_dirty: true, ..MissPolicy::CURRENT },
        fixup: FixupMode::Gup { marks: true },
        ..ArchConfig::GENERIC
    };
    let (k, log) = probed(config);
    let mut ex = Executor::new(&k);
    let f = k.create_file(1, 0);
    let mm = k.create_mm().unwrap();
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 1) }));
    run(&mut ex, Op::Load { mm, va: s });
    let clean = k.peek_pte(mm, s);
    assert!(clean.has(PteFlags::WRITE) && !clean.has(PteFlags::DIRTY));
    let (r, calls) = watched(&k, &mut ex, &log, Op::Futex { mm, va: s, value: 3 }, &nothing);
    assert_eq!(r, OpResult::Value(3));
    let i = first(&calls, "ptep_set_access_flags");
    assert_eq!(calls[i].ptls, vec![mm]);
    assert_eq!(calls[i].pte, Some(clean.with_flags(PteFlags::DIRTY | PteFlags::ACCESSED)));
    assert_eq!(
        calls[i + 1..][..3].iter().map(|c| c.hook).collect::<Vec<_>>(),
        ["set_pte_at", "flush_tlb_page", "update_mmu_cache"]
    );
    assert!(calls[i + 3].ptls == vec![mm]);
}

// ----- swap-in frees the slot first ---------------------------------------------------------

/// `do_swap_page` frees the swap slot (and the page leaves the swap cache) before the
/// `set_pte_at` that maps the page.
#[test]
fn swap_in_frees_the_slot_before_set_pte_at() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let (mm, va, slot) = swapped_out(&k, &mut ex);
    assert_eq!(k.state().swap[slot as usize].count, 1);
    let watch = |k: &Kernel| {
        let s = k.state();
        let sl = &s.swap[slot as usize];
        u64::from(sl.count) | if sl.cache.is_some() { 1 << 32 } else { 0 }
    };
    let (r, calls) = watched(&k, &mut ex, &log, Op::Load { mm, va }, &watch);
    assert_eq!(r, OpResult::Value(7));
    let set = &calls[first(&calls, "set_pte_at")];
    assert_eq!(set.seen, 0, "slot freed and out of the swap cache before set_pte_at");
    assert_eq!(set.ptls, vec![mm]);
}

// ----- zap: cache flush of the whole VMA, TLB flush before unlink and table free ----------------

/// munmap: `flush_cache_range` over the whole VMA before any PTE is cleared; the TLB flush of
/// the cleared PTEs (`tlb_end_vma`) while the VMA is still linked and its page table still
/// hooked; another flush for the freed table before it is freed. A swapped-out page's entry
/// is dropped with `pte_clear` after its slot, under the page-table lock.
#[test]
fn munmap_flushes_the_vma_cache_first_and_the_tlb_before_unlinking_and_freeing() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let (mm, va, slot) = swapped_out(&k, &mut ex);
    // A second page of its own VMA, present.
    let b = mapped(run(&mut ex, Op::Mmap { mm, args: anon(2) }));
    run(&mut ex, Op::Store { mm, va: b, value: 1 });
    let vma = k.state().find_vma(mm, b).unwrap();
    let table_and_vma = |k: &Kernel| {
        let pgd = k.state().mms[mm.index()].pgd;
        let table = k.machine().pt.pmd(pgd, b).is_some();
        let linked = k.state().vmas[vma.id.index()].is_some();
        u64::from(table) | u64::from(linked) << 1
    };
    let (r, calls) = watched(&k, &mut ex, &log, Op::Munmap { mm, va: b, pages: 2 }, &table_and_vma);
    assert_eq!(r, OpResult::Done);
    let fc = first(&calls, "flush_cache_range");
    assert_eq!(calls[fc].at, (vma.start, vma.end), "the whole VMA");
    assert!(calls[fc].ptls.is_empty());
    assert!(fc < first(&calls, "ptep_get_and_clear"));
    let clear = &calls[first(&calls, "ptep_get_and_clear")];
    assert_eq!(clear.ptls, vec![mm]);
    let tf = first(&calls, "tlb_flush");
    assert!(tf > first(&calls, "ptep_get_and_clear"));
    assert_eq!(calls[tf].at, (b, b.add_pages(1)), "the cleared PTE's range");
    assert_eq!(calls[tf].seen, 0b11, "flushed while the VMA is linked and the table hooked");
    // The swapped page's VMA shares the table with `b`'s: no table is freed yet.
    assert_eq!(calls.iter().filter(|c| c.hook == "tlb_flush").count(), 1, "{:?}", hooks(&calls));

    // The last VMA of the page table goes: the swap entry is dropped, and the table is
    // unhooked, flushed for, and only then freed.
    let pgd = k.state().mms[mm.index()].pgd;
    let table = k.machine().pt.pmd(pgd, va).expect("the shared page table");
    let watch = |k: &Kernel| {
        let count = u64::from(k.state().swap[slot as usize].count);
        let hooked = u64::from(k.machine().pt.pmd(pgd, va).is_some());
        let is_table = u64::from(k.machine().pt.is_table(table));
        count | hooked << 32 | is_table << 33
    };
    let (r, calls) = watched(&k, &mut ex, &log, Op::Munmap { mm, va, pages: 1 }, &watch);
    assert_eq!(r, OpResult::Done);
    let c = &calls[first(&calls, "pte_clear")];
    assert_eq!((c.at.0, c.ptls.clone(), c.seen & 0xffff_ffff), (va, vec![mm], 0), "pte_clear after the slot");
    assert_eq!(calls.iter().filter(|c| c.hook == "tlb_flush").count(), 1, "{:?}", hooks(&calls));
    let tf = &calls[first(&calls, "tlb_flush")];
    assert_eq!(tf.seen >> 32, 0b10, "flushed after the table is unhooked and before it is freed");
    assert!(!k.machine().pt.is_table(table), "freed after the flush");
}

/// Truncation zaps a VMA from its middle: `flush_cache_range` still covers the whole VMA.
#[test]
fn a_partial_zap_flushes_the_cache_of_the_whole_vma() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let f = k.create_file(2, 0);
    let mm = k.create_mm().unwrap();
    let s = mapped(run(&mut ex, Op::Mmap { mm, args: shared_file(f, 2) }));
    run(&mut ex, Op::Store { mm, va: s.add_pages(1), value: 1 });
    let (r, calls) = watched(&k, &mut ex, &log, Op::Truncate { file: f, pages: 1 }, &nothing);
    assert_eq!(r, OpResult::Done);
    let fc = &calls[first(&calls, "flush_cache_range")];
    assert_eq!(fc.at, (s, s.add_pages(2)));
    let tf = first(&calls, "tlb_flush");
    assert_eq!(calls[tf].at, (s.add_pages(1), s.add_pages(2)));
}

/// exit: `flush_cache_mm` instead of per-VMA cache flushes, and one whole-mm TLB flush at the
/// end of the full-mm gather.
#[test]
fn exit_skips_the_per_vma_flushes_of_a_full_mm_gather() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    for _ in 0..2 {
        let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(1) }));
        run(&mut ex, Op::Store { mm, va: a, value: 1 });
    }
    let (r, calls) = watched(&k, &mut ex, &log, Op::Exit { mm }, &nothing);
    assert_eq!(r, OpResult::Done);
    assert!(!hooks(&calls).contains(&"flush_cache_range"), "{:?}", hooks(&calls));
    assert_eq!(calls.iter().filter(|c| c.hook == "tlb_flush").count(), 1);
}

// ----- mprotect -----------------------------------------------------------------------------

/// mprotect: `flush_cache_range` over the VMA first; each present PTE taken with
/// `ptep_get_and_clear` and set again with `set_pte_at` under the page-table lock
/// (`ptep_modify_prot_start`/`commit`); the TLB flush after, without the lock. A dirty PTE
/// made `PROT_NONE` keeps its dirty bit, and that is no newly dirtied PTE.
#[test]
fn mprotect_modifies_ptes_between_the_cache_and_the_tlb_flush() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let mm = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm, args: anon(2) }));
    run(&mut ex, Op::Store { mm, va: a, value: 1 });
    let before = k.peek_pte(mm, a);
    let mut obs = Vec::new();
    k.drain_observations(&mut obs);
    let (r, calls) = watched(&k, &mut ex, &log, Op::Mprotect { mm, va: a, pages: 2, none: true }, &nothing);
    assert_eq!(r, OpResult::Done);
    assert_eq!(hooks(&calls), ["flush_cache_range", "ptep_get_and_clear", "set_pte_at", "tlb_flush"]);
    let ptls: Vec<_> = calls.iter().map(|c| c.ptls.clone()).collect();
    assert_eq!(ptls, [vec![], vec![mm], vec![mm], vec![]]);
    assert_eq!(calls[0].at, (a, a.add_pages(2)));
    assert_eq!(calls[3].at, (a, a.add_pages(1)));
    let after = k.peek_pte(mm, a);
    assert_eq!(after, before.without_flags(PteFlags::USER | PteFlags::WRITE));
    assert!(after.has(PteFlags::DIRTY));
    obs.clear();
    k.drain_observations(&mut obs);
    assert!(!obs.iter().any(|o| matches!(o.obs, Obs::DirtyWithoutWrite { .. })), "{obs:?}");
}

// ----- access_process_vm --------------------------------------------------------------------

/// `access_process_vm` runs in its caller: the target's mm is not `current->mm` while the
/// arch routines run, whether the caller is no process of the workload (the operation) or
/// another mm of it (a direct call).
#[test]
fn access_process_vm_keeps_the_callers_current_mm() {
    let (k, log) = probed(ArchConfig::GENERIC);
    let mut ex = Executor::new(&k);
    let target = k.create_mm().unwrap();
    let caller = k.create_mm().unwrap();
    let a = mapped(run(&mut ex, Op::Mmap { mm: target, args: anon(1) }));
    run(&mut ex, Op::Store { mm: target, va: a, value: 8 });
    let (r, calls) = watched(&k, &mut ex, &log, Op::AccessVm { mm: target, va: a, store: Some(4) }, &nothing);
    assert_eq!(r, OpResult::Value(4));
    let c = &calls[first(&calls, "copy_to_user_page")];
    assert_eq!(c.current, None, "the tracer is no process of the workload");

    log.borrow_mut().clear();
    let kr = &k;
    ex.spawn_task(
        C0,
        "access_process_vm",
        Box::pin(async move {
            kr.set_current_mm(C0, Some(caller));
            match kr.access_process_vm(C0, target, a, None).await {
                Ok(v) => OpResult::Value(v),
                Err(e) => OpResult::Err(e),
            }
        }),
    );
    let mut current = None;
    loop {
        if k.pending(C0) == Action::Label(PROBE)
            && log.borrow().last().is_some_and(|c| c.hook == "copy_from_user_page")
        {
            current = Some(k.current_mm(C0));
        }
        if let Some(r) = ex.step_cpu(C0).unwrap() {
            assert_eq!(r, OpResult::Value(4));
            break;
        }
    }
    assert_eq!(current, Some(Some(caller)), "current->mm is the caller's");
}
