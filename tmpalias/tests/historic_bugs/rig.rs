//! The shared rig of the historic-bug tests: CPUs, stored values, kernels booted on `tiny`,
//! one-shot operations, stop-point helpers, colour and cache probes, and a built-in lineage
//! with test knobs.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch, ready};
use vipt_emu::choice::{ChoiceKind, Chooser, FirstChooser};
use vipt_emu::config::{MachineConfig, Preset};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Action, Executor, FileId, Kernel, MmId, Op, OpResult, StepError, Vma};
use vipt_emu::pte::Pte;
use vipt_tmpalias::{Lineage, Registry};

pub(crate) const C0: CpuId = CpuId(0);
pub(crate) const C1: CpuId = CpuId(1);
pub(crate) const C2: CpuId = CpuId(2);
pub(crate) const C3: CpuId = CpuId(3);

/// What the file's disk block holds at word 0 / word 1 before anything runs.
pub(crate) const OLD: u64 = 0x01d0;
/// Values programs store.
pub(crate) const X: u64 = 0xaaaa;
pub(crate) const Y: u64 = 0xbbbb;
pub(crate) const V1: u64 = 0x0001;
pub(crate) const V2: u64 = 0x0002;
pub(crate) const NEW: u64 = 0x0e0e;

/// Lines in a page on `tiny` (fdc per page).
pub(crate) const LINES: u64 = 32;

/// The lineages that must be correct on `tiny`.
pub(crate) const FIXED: [&str; 3] = ["linux-6.x", "linux-6.10", "whole-cache"];

pub(crate) fn lineage(name: &str) -> Lineage {
    Registry::builtin().get(name).cloned().unwrap_or_else(|| panic!("no lineage {name}"))
}

pub(crate) fn kernel_with(l: &Lineage) -> Kernel {
    l.boot(Preset::Tiny.config(), Box::new(FirstChooser))
}

pub(crate) fn kernel(name: &str) -> Kernel {
    kernel_with(&lineage(name))
}

/// `tiny` as a PA8800/PA8900 would run it: `parisc_requires_coherency()` is true, so the
/// lineages take their PA8800/PA8900 paths (its small mms stay below the whole-cache
/// threshold).
pub(crate) fn tiny_coherent() -> MachineConfig {
    MachineConfig { requires_coherency: true, ..Preset::Tiny.config() }
}

/// A kernel of lineage `name` on machine `cfg`.
pub(crate) fn kernel_on(name: &str, cfg: MachineConfig) -> Kernel {
    lineage(name).boot(cfg, Box::new(FirstChooser))
}

/// A file of `pages` pages whose disk block 0 holds [`OLD`] at words 0 and 1.
pub(crate) fn file(k: &Kernel, pages: u64, colour: u64) -> FileId {
    let f = k.create_file(pages, colour);
    let mut s = k.state();
    s.files[f.index()].disk[0][0] = OLD;
    s.files[f.index()].disk[0][1] = OLD;
    f
}

pub(crate) fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

pub(crate) fn value(r: OpResult) -> u64 {
    match r {
        OpResult::Value(v) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

pub(crate) fn load(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr) -> u64 {
    value(run(ex, cpu, Op::Load { mm, va }))
}

pub(crate) fn store(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr, v: u64) {
    assert_eq!(run(ex, cpu, Op::Store { mm, va, value: v }), OpResult::Value(v));
}

pub(crate) fn read(ex: &mut Executor<'_>, cpu: CpuId, f: FileId, word: usize) -> u64 {
    value(run(ex, cpu, Op::Read { file: f, pgoff: 0, word }))
}

pub(crate) fn write(ex: &mut Executor<'_>, cpu: CpuId, f: FileId, word: usize, v: u64) {
    assert_eq!(run(ex, cpu, Op::Write { file: f, pgoff: 0, word, value: v }), OpResult::Done);
}

pub(crate) fn mmap_file(
    ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, f: FileId, shared: bool, fixed: Option<VirtAddr>,
) -> OpResult {
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared, writable: true, fixed };
    run(ex, cpu, Op::Mmap { mm, args })
}

pub(crate) fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

pub(crate) fn map_file(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, f: FileId, shared: bool) -> VirtAddr {
    mapped(mmap_file(ex, cpu, mm, f, shared, None))
}

pub(crate) fn map_anon(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, pages: u64) -> VirtAddr {
    let args = MmapArgs { pages, file: None, shared: false, writable: true, fixed: None };
    mapped(run(ex, cpu, Op::Mmap { mm, args }))
}

/// Runs `cpu` until its pending action satisfies `pred` for the `n`th time (n ≥ 1).
pub(crate) fn run_until_nth(ex: &mut Executor<'_>, cpu: CpuId, n: usize, pred: impl Fn(&Action) -> bool) {
    for _ in 0..n {
        let r = ex.run_until(cpu, &pred).unwrap();
        assert_eq!(r, None, "{cpu:?} finished before the stop point");
    }
}

/// Steps `cpu` until its operation completes (`Some`) or it blocks on a lock (`None`).
pub(crate) fn run_or_block(ex: &mut Executor<'_>, cpu: CpuId) -> Option<OpResult> {
    loop {
        match ex.step_cpu(cpu) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(StepError::Blocked(_)) => return None,
            Err(e) => panic!("{e}"),
        }
    }
}

pub(crate) fn is_label(a: &Action) -> bool {
    matches!(a, Action::Label(_))
}

pub(crate) fn is_tlb(a: &Action) -> bool {
    matches!(a, Action::Tlb)
}

pub(crate) fn page_of(k: &Kernel, f: FileId) -> Pfn {
    k.state().files[f.index()].cached(0).expect("page cached")
}

/// The colour (`pfn mod 4` on tiny) of a page's kernel linear-map alias.
pub(crate) fn kernel_colour(p: Pfn) -> u64 {
    u64::from(p.raw()) % 4
}

pub(crate) fn user_colour(va: VirtAddr) -> u64 {
    (va.raw() >> 12) % 4
}

pub(crate) fn nullified(k: &Kernel) -> u64 {
    k.machine().counters.nullified
}

/// Word `w` of swap slot `slot`, as written by `pageout`.
pub(crate) fn swap_word(k: &Kernel, slot: usize, w: usize) -> u64 {
    k.state().swap[slot].data.as_ref().expect("slot written")[w]
}

/// Polls a kernel routine to completion outside the executor (each step yields once).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// [`FirstChooser`], except that `add_to_swap` takes the `slot`th swap slot (all free).
pub(crate) struct SwapSlotChooser(pub(crate) u32);

impl Chooser for SwapSlotChooser {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        match kind {
            ChoiceKind::SwapSlot => self.0 - 1,
            _ => FirstChooser.choose(kind, n),
        }
    }
}

// ----- a built-in lineage with test knobs --------------------------------------------------

/// Test modifications of a built-in lineage; every other routine is the lineage's own.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TestKnobs {
    /// `flush_cache_page` and `flush_cache_range` do nothing on this CPU: the racer that does
    /// not flush before changing the PTE (B3).
    pub(crate) no_flush_on: Option<CpuId>,
    /// `ptep_get_and_clear` writes 0 instead of a `_PAGE_FLUSH` entry (pre-2.4.20).
    pub(crate) zeroing_clear: bool,
}

impl Patch for TestKnobs {
    fn ptep_get_and_clear<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        if self.zeroing_clear {
            Box::pin(cx.xchg_pte(mm, va, Pte::NONE))
        } else {
            base.ptep_get_and_clear(cx, mm, va)
        }
    }
    fn flush_cache_page<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        if self.no_flush_on == Some(cx.cpu()) {
            return ready(());
        }
        base.flush_cache_page(cx, vma, va, pfn)
    }
    fn flush_cache_range<'a>(
        &'a self, base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, start: VirtAddr, end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if self.no_flush_on == Some(cx.cpu()) {
            return ready(());
        }
        base.flush_cache_range(cx, vma, start, end)
    }
}
