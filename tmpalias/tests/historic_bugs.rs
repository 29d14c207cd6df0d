//! The historic bugs of parisc-facts §8, each as a handcrafted, deterministic interleaving.
//!
//! Every test runs on the `tiny` preset (4 CPUs, 4 KiB pages, 128-byte lines, 16 KiB alias
//! boundary: only `(va / 4096) mod 4` picks the cache colour) with [`FirstChooser`]: no
//! speculation, way 0, first swap slot, every new VMA at the front of its file's `i_mmap`.
//! CPUs are driven one by one (`spawn` + `run_until` / `step_cpu` / `run_to_completion`), so
//! each race window is hit at an exact micro-step. Each bug test asserts the exact stale value
//! the buggy lineage produces (a user load, a `read(2)`, a swap slot, the file's disk block, a
//! COW copy), and each fixed test runs the same interleaving on the fixed lineages and asserts
//! the value the program wrote.
//!
//! Frames are handed out lowest first and freed frames are reused first, so page numbers are
//! deterministic; the scenarios assert the colours they rely on (user colour ≠ colour of the
//! page's kernel alias, `pfn mod 4`) instead of trusting them.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::choice::{ChoiceKind, Chooser, FirstChooser};
use vipt_emu::config::Preset;
use vipt_emu::machine::{Machine, MissPolicy};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{
    Action, ArchHooks, Errno, Executor, FileId, HookFuture, Kernel, LockId, MmId, MmuGather, Op, OpResult,
    StepError, UnmapOrder, Vma,
};
use vipt_emu::pgtable::PMD_SIZE;
use vipt_emu::pte::{Pte, PteFlags, PteKind, PteLayout};
use vipt_tmpalias::Registry;
use vipt_tmpalias::lineage::Linux26;

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);
const C2: CpuId = CpuId(2);
const C3: CpuId = CpuId(3);

/// What the file's disk block holds at word 0 / word 1 before anything runs.
const OLD: u64 = 0x01d0;
/// Values programs store.
const X: u64 = 0xaaaa;
const Y: u64 = 0xbbbb;
const V1: u64 = 0x0001;
const V2: u64 = 0x0002;
const NEW: u64 = 0x0e0e;

/// Lines in a page on `tiny` (fdc per page).
const LINES: u64 = 32;

/// The lineages that must be correct on `tiny`.
const FIXED: [&str; 2] = ["linux-6.x", "whole-cache"];

// ----- rig --------------------------------------------------------------------------------

fn hooks(name: &str) -> Box<dyn ArchHooks> {
    Registry::builtin().get(name).unwrap_or_else(|| panic!("no lineage {name}")).hooks()
}

fn kernel_with(hooks: Box<dyn ArchHooks>) -> Kernel {
    let m = Machine::new(Preset::Tiny.config(), hooks.miss_policy(), Box::new(FirstChooser));
    Kernel::new(m, hooks)
}

fn kernel(name: &str) -> Kernel {
    kernel_with(hooks(name))
}

/// A file of `pages` pages whose disk block 0 holds [`OLD`] at words 0 and 1.
fn file(k: &Kernel, pages: u64, colour: u64) -> FileId {
    let f = k.create_file(pages, colour);
    let mut s = k.state();
    s.files[f.index()].disk[0][0] = OLD;
    s.files[f.index()].disk[0][1] = OLD;
    f
}

fn run(ex: &mut Executor<'_>, cpu: CpuId, op: Op) -> OpResult {
    ex.spawn(cpu, op);
    ex.run_to_completion(cpu).unwrap()
}

fn value(r: OpResult) -> u64 {
    match r {
        OpResult::Value(v) => v,
        other => panic!("expected a value, got {other:?}"),
    }
}

fn load(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr) -> u64 {
    value(run(ex, cpu, Op::Load { mm, va }))
}

fn store(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, va: VirtAddr, v: u64) {
    assert_eq!(run(ex, cpu, Op::Store { mm, va, value: v }), OpResult::Value(v));
}

fn read(ex: &mut Executor<'_>, cpu: CpuId, f: FileId, word: usize) -> u64 {
    value(run(ex, cpu, Op::Read { file: f, pgoff: 0, word }))
}

fn write(ex: &mut Executor<'_>, cpu: CpuId, f: FileId, word: usize, v: u64) {
    assert_eq!(run(ex, cpu, Op::Write { file: f, pgoff: 0, word, value: v }), OpResult::Done);
}

fn mmap_file(
    ex: &mut Executor<'_>,
    cpu: CpuId,
    mm: MmId,
    f: FileId,
    shared: bool,
    fixed: Option<VirtAddr>,
) -> OpResult {
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared, writable: true, fixed };
    run(ex, cpu, Op::Mmap { mm, args })
}

fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

fn map_file(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, f: FileId, shared: bool) -> VirtAddr {
    mapped(mmap_file(ex, cpu, mm, f, shared, None))
}

fn map_anon(ex: &mut Executor<'_>, cpu: CpuId, mm: MmId, pages: u64) -> VirtAddr {
    let args = MmapArgs { pages, file: None, shared: false, writable: true, fixed: None };
    mapped(run(ex, cpu, Op::Mmap { mm, args }))
}

/// Runs `cpu` until its pending action satisfies `pred` for the `n`th time (n ≥ 1).
fn run_until_nth(ex: &mut Executor<'_>, cpu: CpuId, n: usize, pred: impl Fn(&Action) -> bool) {
    for _ in 0..n {
        let r = ex.run_until(cpu, &pred).unwrap();
        assert_eq!(r, None, "{cpu:?} finished before the stop point");
    }
}

/// Steps `cpu` until its operation completes (`Some`) or it blocks on a lock (`None`).
fn run_or_block(ex: &mut Executor<'_>, cpu: CpuId) -> Option<OpResult> {
    loop {
        match ex.step_cpu(cpu) {
            Ok(Some(r)) => return Some(r),
            Ok(None) => {}
            Err(StepError::Blocked(_)) => return None,
            Err(e) => panic!("{e}"),
        }
    }
}

fn is_label(a: &Action) -> bool {
    matches!(a, Action::Label(_))
}

fn is_tlb(a: &Action) -> bool {
    matches!(a, Action::Tlb)
}

fn page_of(k: &Kernel, f: FileId) -> Pfn {
    k.state().files[f.index()].cached(0).expect("page cached")
}

/// The colour (`pfn mod 4` on tiny) of a page's kernel linear-map alias.
fn kernel_colour(p: Pfn) -> u64 {
    u64::from(p.0) % 4
}

fn user_colour(va: VirtAddr) -> u64 {
    (va.0 >> 12) % 4
}

fn nullified(k: &Kernel) -> u64 {
    k.machine().counters.nullified
}

/// Word `w` of swap slot `slot`, as written by `pageout`.
fn swap_word(k: &Kernel, slot: usize, w: usize) -> u64 {
    k.state().swap[slot].data.as_ref().expect("slot written")[w]
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

/// [`FirstChooser`], except that `add_to_swap` takes the `slot`th swap slot (all free).
struct SwapSlotChooser(u32);

impl Chooser for SwapSlotChooser {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        match kind {
            ChoiceKind::SwapSlot => self.0 - 1,
            _ => FirstChooser.choose(kind, n),
        }
    }
}

// ----- a built-in lineage with test knobs --------------------------------------------------

/// A built-in lineage with one of three test modifications; every other hook is the
/// lineage's own.
struct Patched {
    inner: Box<dyn ArchHooks>,
    /// `flush_cache_page` and `flush_cache_range` do nothing on this CPU: the racer that does
    /// not flush before changing the PTE (B3).
    no_flush_on: Option<CpuId>,
    /// `ptep_get_and_clear` writes 0 instead of a `_PAGE_FLUSH` entry (pre-2.4.20).
    zeroing_clear: bool,
    /// Overrides `unmap_order` (B1 on a `_PAGE_FLUSH` kernel).
    unmap_order: Option<UnmapOrder>,
}

impl Patched {
    fn new(name: &str) -> Self {
        Patched { inner: hooks(name), no_flush_on: None, zeroing_clear: false, unmap_order: None }
    }
}

/// Forwards hooks taking `(k, cpu, args…)` to `self.inner`.
macro_rules! forward {
    ($($hook:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        fn $hook<'a>(&'a self, k: &'a Kernel, cpu: CpuId, $($arg: $ty),*) -> HookFuture<'a, $ret> {
            self.inner.$hook(k, cpu, $($arg),*)
        }
    )*};
}

impl ArchHooks for Patched {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn miss_policy(&self) -> MissPolicy {
        self.inner.miss_policy()
    }
    fn map_fixed_checks_colour(&self) -> bool {
        self.inner.map_fixed_checks_colour()
    }
    fn unmap_order(&self) -> UnmapOrder {
        self.unmap_order.unwrap_or_else(|| self.inner.unmap_order())
    }
    fn ptep_get_and_clear<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        if self.zeroing_clear {
            Box::pin(k.xchg_pte(cpu, mm, va, Pte::NONE))
        } else {
            self.inner.ptep_get_and_clear(k, cpu, mm, va)
        }
    }
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        if self.no_flush_on == Some(cpu) {
            return Box::pin(async {});
        }
        self.inner.flush_cache_page(k, cpu, vma, va, pfn)
    }
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        start: VirtAddr,
        end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if self.no_flush_on == Some(cpu) {
            return Box::pin(async {});
        }
        self.inner.flush_cache_range(k, cpu, vma, start, end)
    }
    forward! {
        set_pte_at(mm: MmId, va: VirtAddr, pte: Pte) -> ();
        ptep_set_wrprotect(mm: MmId, va: VirtAddr) -> ();
        ptep_clear_flush_young(vma: Vma, va: VirtAddr) -> bool;
        ptep_clear_flush(vma: Vma, va: VirtAddr) -> Pte;
        flush_cache_mm(mm: MmId) -> ();
        flush_dcache_page(page: Pfn) -> ();
        flush_anon_page(vma: Vma, page: Pfn, va: VirtAddr) -> ();
        flush_kernel_dcache_page(page: Pfn) -> ();
        update_mmu_cache(vma: Vma, va: VirtAddr, pte: Pte) -> ();
        copy_user_highpage(to: Pfn, from: Pfn, va: VirtAddr, vma: Vma) -> ();
        clear_user_highpage(page: Pfn, va: VirtAddr) -> ();
        copy_to_user_page(vma: Vma, page: Pfn, va: VirtAddr, value: u64) -> ();
        copy_from_user_page(vma: Vma, page: Pfn, va: VirtAddr) -> u64;
        kmap(page: Pfn) -> ();
        kunmap(page: Pfn) -> ();
        flush_tlb_page(vma: Vma, va: VirtAddr) -> ();
        flush_tlb_range(mm: MmId, start: VirtAddr, end: VirtAddr) -> ();
        flush_tlb_mm(mm: MmId) -> ();
        flush_tlb_all() -> ();
        tlb_flush(tlb: &'a MmuGather) -> ();
    }
}

// ----- B1 ---------------------------------------------------------------------------------
//
// 2.4-era rmap cleared the PTE and then called flush_cache_page: the fdcs through the user
// address find no translation and are nullified, so `pageout` writes memory (OLD) to the disk and
// the freed frame keeps the store as a dirty line. Flushing first (2.6+), or clearing to a
// `_PAGE_FLUSH` PTE that still yields a flush-only translation (the 2.4.20 fix), saves the store.

/// B1 outcome: what reached the disk, what `read(2)` returns afterwards, dirty lines left on
/// the freed frame, nullified flushes during reclaim.
#[derive(Debug, PartialEq, Eq)]
struct B1 {
    disk: u64,
    read_back: u64,
    dirty_lines_left: usize,
    nullified: u64,
}

/// A process stores [`NEW`] into its shared file mapping (colour 0); reclaim then takes the
/// page: `try_to_unmap`, `pageout` to the file's disk block, free.
fn b1_scenario(k: &Kernel) -> B1 {
    let f = file(k, 1, 0);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(k);
    let va = map_file(&mut ex, C0, mm, f, true);
    store(&mut ex, C0, mm, va, NEW);
    let p = page_of(k, f);
    assert_ne!(user_colour(va), kernel_colour(p), "the user alias must not be the kernel's");
    let n0 = nullified(k);
    assert_eq!(
        run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } }),
        OpResult::Done
    );
    let nullified = nullified(k) - n0;
    assert_eq!(k.state().files[f.index()].cached(0), None, "the page was reclaimed");
    let dirty_lines_left = k.machine().dirty_lines_of(p);
    B1 {
        disk: k.disk_word(f, 0, 0).unwrap(),
        read_back: read(&mut ex, C2, f, 0),
        dirty_lines_left,
        nullified,
    }
}

/// Store to a shared file page, then reclaim on 2.4: PTE cleared first, flush nullified, disk keeps OLD.
#[test]
fn b1_clear_then_flush_nullifies_reclaim_flush_and_loses_store() {
    let k = kernel("linux-2.4");
    let got = b1_scenario(&k);
    assert_eq!(got, B1 { disk: OLD, read_back: OLD, dirty_lines_left: 1, nullified: LINES });
}

/// Same store + reclaim on 6.x, whole-cache, and 2.6.14 made to clear first (FLUSH PTE): disk gets NEW.
#[test]
fn b1_fixed_by_flush_pte_in_2614_and_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let got = b1_scenario(&kernel(name));
        assert_eq!(got, B1 { disk: NEW, read_back: NEW, dirty_lines_left: 0, nullified: 0 }, "{name}");
    }
    // 2.6.14 run in the 2.4 order: the FLUSH PTE left by ptep_get_and_clear still lets the
    // non-access miss handler build a flush-only translation, so the late flush works.
    let mut late = Patched::new("linux-2.6.14");
    late.unmap_order = Some(UnmapOrder::ClearThenFlush);
    let got = b1_scenario(&kernel_with(Box::new(late)));
    assert_eq!(got, B1 { disk: NEW, read_back: NEW, dirty_lines_left: 0, nullified: 0 });
}

// ----- B2 ---------------------------------------------------------------------------------
//
// `write(2)` calls flush_dcache_page, which walks i_mmap: B first. B's swap PTE passes the 2.6.14
// filter and `pte_pfn` "matches" P, so the fdcs go to B's unmapped address (all nullified) and
// the walk stops. A's dirty line (X, OLD) is never flushed: A reads OLD at word 1, and `fsync`
// writes that line over the kernel's Y. Hugh's 2.6.15 filter skips B and flushes A.

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
    let slot = 16 * p.0;
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
    for name in ["linux-2.6.15", FIXED[0], FIXED[1]] {
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
    assert_eq!(pte, layout.swp_entry(0, 16 * p.0));
    assert_eq!(pte.raw_pfn(), p);
    assert!(layout.translation_matches_2614(pte, p));
    assert!(!layout.translation_matches_2615(pte, p));
    let vma = k.state().find_vma(b, va_b).unwrap();
    assert!(block_on(Linux26::LINUX_2614.translation_exists(k, C3, &vma, va_b, p)));
    assert!(!block_on(Linux26::LINUX_2614.translation_exists(k, C3, &vma, va_b, Pfn(p.0 + 1))));
    assert!(!block_on(Linux26::LINUX_2615.translation_exists(k, C3, &vma, va_b, p)));
    assert!(!block_on(Linux26::RECHECK.translation_exists(k, C3, &vma, va_b, p)));
}

// ----- B3 ---------------------------------------------------------------------------------
//
// James's "the racer already did it": after CPU0's check passed for B, a racer changes B's PTE.
// B is congruent with A, so a flush through B's address is a flush of A's dirty X. (a) reclaim
// flushes through B before clearing; without that flush `pageout` writes OLD and marks P clean,
// and CPU0's later fdc (through B's `_PAGE_FLUSH` PTE) saves memory but not the disk. (b) after
// the COW, B's PTE maps Q and CPU0 flushes Q; only do_wp_page's flush of P saves X. (c) munmap
// flushes the range, then leaves a `_PAGE_FLUSH` PTE that keeps CPU0's fdc effective; with a
// zeroed PTE CPU0's fdcs are nullified and only the racer's own flush saves X. The racer that
// does not flush is `Patched::no_flush_on`; `recheck` moves on to A when B's PTE changed; 6.x
// flushes P by physical address whatever B's PTE says.

/// The racer of B3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Racer {
    /// (a) reclaim of P: `try_to_unmap` of B and A, `pageout`.
    Reclaim,
    /// (b) B writes: `do_wp_page` COWs, B's PTE now maps a new page Q.
    Cow,
    /// (c) B `munmap`s: `zap_range` clears B's PTE (then waits for `flush_dcache_mmap_lock`).
    Zap,
}

/// B3 outcome: the `read(2)` racing with the racer and how many of its fdcs (after the stop
/// point) were nullified; the disk after the race; `read(2)` after P was dropped from the page
/// cache and read back from disk.
#[derive(Debug, PartialEq, Eq)]
struct B3 {
    read: u64,
    nullified: u64,
    disk: u64,
    reread: u64,
}

/// Stops a `read(2)` on `cpu` inside `flush_dcache_page`, after the walk of `i_mmap` has
/// chosen the mapping it will flush and before that flush.
fn stop_in_flush_dcache_page(k: &Kernel, ex: &mut Executor<'_>, cpu: CpuId, f: FileId, lineage: &str) {
    match lineage {
        // translation_exists passed for the first VMA (B).
        "linux-2.6.14" | "linux-2.6.15" | "recheck" => run_until_nth(ex, cpu, 1, is_label),
        // The lock is taken and the mappings listed; next is B's TLB purge.
        "linux-6.x" => {
            run_until_nth(ex, cpu, 1, |a| *a == Action::Lock(LockId::FlushDcacheMmap(f)));
            assert_eq!(ex.step_cpu(cpu), Ok(None));
            assert_eq!(k.pending(cpu), Action::Tlb);
        }
        // flush_tlb_all, then flush_cache_all: nothing to choose.
        "whole-cache" => run_until_nth(ex, cpu, 1, is_tlb),
        other => panic!("no stop point for {other}"),
    }
}

/// A maps P shared (colour 0) and has X dirty in word 0; B maps P privately at the same
/// colour and has read it (linked first in `i_mmap`). CPU0 `read(2)`s word 0 and stops in
/// `flush_dcache_page` before flushing through B; CPU1 runs the racer; CPU0 finishes.
fn b3_scenario(hooks: Box<dyn ArchHooks>, racer: Racer) -> B3 {
    let lineage = hooks.name().to_string();
    let k = kernel_with(hooks);
    let f = file(&k, 1, 0);
    let a = k.create_mm().unwrap();
    let b = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va_a = map_file(&mut ex, C3, a, f, true);
    let va_b = map_file(&mut ex, C3, b, f, false);
    assert_eq!(user_colour(va_a), user_colour(va_b));
    assert_eq!(load(&mut ex, C3, b, va_b), OLD);
    store(&mut ex, C2, a, va_a, X);
    let p = page_of(&k, f);
    assert_ne!(user_colour(va_a), kernel_colour(p));

    ex.spawn(C0, Op::Read { file: f, pgoff: 0, word: 0 });
    stop_in_flush_dcache_page(&k, &mut ex, C0, f, &lineage);
    let walks_under_lock = lineage != "whole-cache";
    match racer {
        Racer::Reclaim => {
            // The reader holds a reference: the page is written out but stays cached.
            let r = run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
            assert_eq!(r, OpResult::Err(Errno::Busy));
        }
        Racer::Cow => {
            store(&mut ex, C1, b, va_b.with_word(1), Y);
        }
        Racer::Zap => {
            // unlink_vma waits for the flush_dcache_mmap_lock CPU0 holds (if it takes it).
            ex.spawn(C1, Op::Munmap { mm: b, va: va_b, pages: 1 });
            assert_eq!(run_or_block(&mut ex, C1).is_none(), walks_under_lock);
        }
    }
    if walks_under_lock {
        // What B's PTE says when CPU0 flushes through it.
        let kind = k.layout().decode(k.peek_pte(b, va_b));
        match (racer, kind) {
            (Racer::Cow, PteKind::Present { pfn, .. }) => assert_ne!(pfn, p, "B maps its copy"),
            (Racer::Reclaim | Racer::Zap, PteKind::FlushOnly { pfn, .. }) => assert_eq!(pfn, p),
            (Racer::Reclaim | Racer::Zap, PteKind::None) => {}
            other => panic!("unexpected PTE after the racer: {other:?}"),
        }
    }
    let n0 = nullified(&k);
    let raced = value(ex.run_to_completion(C0).unwrap());
    let nullified = nullified(&k) - n0;
    if !ex.is_idle(C1) {
        assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    }
    // Write everything back, drop P from the page cache, read it again from disk.
    assert_eq!(run(&mut ex, C2, Op::Fsync { file: f }), OpResult::Done);
    let disk = k.disk_word(f, 0, 0).unwrap();
    assert_eq!(run(&mut ex, C2, Op::Munmap { mm: a, va: va_a, pages: 1 }), OpResult::Done);
    if !matches!(racer, Racer::Zap) {
        assert_eq!(run(&mut ex, C2, Op::Munmap { mm: b, va: va_b, pages: 1 }), OpResult::Done);
    }
    let target = ReclaimTarget::FilePage { file: f, pgoff: 0 };
    assert_eq!(run(&mut ex, C2, Op::Reclaim { target }), OpResult::Done);
    let reread = read(&mut ex, C2, f, 0);
    B3 { read: raced, nullified, disk, reread }
}

fn lineage_with_racer(name: &str, racer_flushes: bool, zeroing_clear: bool) -> Box<dyn ArchHooks> {
    let mut h = Patched::new(name);
    h.no_flush_on = (!racer_flushes).then_some(C1);
    h.zeroing_clear = zeroing_clear;
    Box::new(h)
}

const COHERENT: B3 = B3 { read: X, nullified: 0, disk: X, reread: X };

/// read(2) passes translation_exists for B, CPU1 reclaims P: the disk gets X iff the reclaim flushes first.
#[test]
fn b3a_reclaim_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Reclaim), COHERENT, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, false), Racer::Reclaim);
        assert_eq!(hole, B3 { read: X, nullified: 0, disk: OLD, reread: OLD }, "{name}");
    }
}

/// read(2) passes translation_exists for B, B COWs on CPU1: read(2) gets X iff do_wp_page flushes first.
#[test]
fn b3b_cow_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Cow), COHERENT, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, false), Racer::Cow);
        assert_eq!(hole, B3 { read: OLD, nullified: 0, disk: X, reread: X }, "{name}");
    }
}

/// read(2) passes translation_exists for B, B munmaps on CPU1: X lost only with a zeroed PTE and no flush.
#[test]
fn b3c_zap_between_check_and_flush_coherent_iff_racer_flushes() {
    for name in ["linux-2.6.14", "linux-2.6.15"] {
        assert_eq!(b3_scenario(lineage_with_racer(name, true, false), Racer::Zap), COHERENT, "{name}");
        assert_eq!(b3_scenario(lineage_with_racer(name, false, false), Racer::Zap), COHERENT, "{name}");
        let zeroed = B3 { nullified: LINES, ..COHERENT };
        assert_eq!(b3_scenario(lineage_with_racer(name, true, true), Racer::Zap), zeroed, "{name}");
        let hole = b3_scenario(lineage_with_racer(name, false, true), Racer::Zap);
        assert_eq!(hole, B3 { read: OLD, nullified: LINES, disk: X, reread: X }, "{name}");
    }
}

/// recheck, same race with non-flushing COW and zap racers: the re-check moves on to A, read(2) gets X.
#[test]
fn b3_recheck_survives_non_flushing_cow_and_zap_racers() {
    assert_eq!(b3_scenario(lineage_with_racer("recheck", false, false), Racer::Cow), COHERENT);
    let zap = b3_scenario(lineage_with_racer("recheck", false, true), Racer::Zap);
    assert_eq!(zap, B3 { nullified: LINES, ..COHERENT });
}

/// The three racers hit 6.x/whole-cache flush_dcache_page before its user flush: read(2) gets X.
#[test]
fn b3_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for racer in [Racer::Reclaim, Racer::Cow, Racer::Zap] {
            assert_eq!(b3_scenario(hooks(name), racer), COHERENT, "{name} {racer:?}");
        }
    }
}

// ----- B7 ---------------------------------------------------------------------------------
//
// 2.6.14 and 3.x flush_cache_mm flush the cache but no TLB, and ptep_set_wrprotect purges
// nothing, so T1 keeps storing through its writable entry; the parent's COW copies X through the
// kernel alias without flushing T1's user-colour line and loses V2 (which stays in X, the
// child's). Half-fix (i) (purge on PTE change) only closes the window after the write-protect;
// half-fix (ii) (flush the source before copying) makes every copy complete: in this model it
// loses no store. What (ii) still lets through is a store after the write-protect, via the stale
// entry, into X, which the child keeps; fork allows that for a store concurrent with it, and
// linux-6.x does the same once T1 re-creates its entry before the write-protect (6.x, too, does
// not purge in ptep_set_wrprotect). 6.x and whole-cache flush every TLB in flush_cache_mm and
// flush the source before copying.

/// Where in `fork` thread T1's second store lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ForkWindow {
    /// After `flush_cache_mm`, before `ptep_set_wrprotect` of the page (the PTE is writable).
    BeforeWrprotect,
    /// After `ptep_set_wrprotect` (and its purge, if the lineage purges), before
    /// `flush_tlb_mm`: only a stale TLB entry still allows the store.
    AfterWrprotect,
}

/// B7 outcome: whether T1's store had to wait for the fork (it faulted), and what the parent
/// and the child read at word 0 after the parent's COW.
#[derive(Debug, PartialEq, Eq)]
struct B7 {
    store_waited_for_fork: bool,
    parent: u64,
    child: u64,
}

/// Thread T1 (CPU0) stored V1 into anon page X (colour 0); thread T2 (CPU1) forks and stops at
/// `window`; T1 stores V2 to word 0; the fork ends; T1 stores to word 1, so the parent COWs
/// X; then parent (CPU0) and child (CPU2) load word 0.
fn b7_scenario(name: &str, window: ForkWindow) -> B7 {
    let k = kernel(name);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, mm, 1);
    store(&mut ex, C0, mm, va, V1);
    let x = k.follow_pfn(mm, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));

    ex.spawn(C1, Op::Fork { mm });
    match window {
        ForkWindow::BeforeWrprotect => {
            run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm, va });
            assert!(k.peek_pte(mm, va).has(PteFlags::WRITE));
        }
        ForkWindow::AfterWrprotect => {
            // The next PTE write is the child's set_pte_at.
            run_until_nth(&mut ex, C1, 1, |a| matches!(a, Action::PteWrite { mm: m, .. } if *m != mm));
            assert!(!k.peek_pte(mm, va).has(PteFlags::WRITE));
        }
    }
    ex.spawn(C0, Op::Store { mm, va, value: V2 });
    let early = run_or_block(&mut ex, C0);
    let OpResult::Forked(child) = ex.run_to_completion(C1).unwrap() else { panic!("fork failed") };
    match early {
        Some(r) => assert_eq!(r, OpResult::Value(V2)),
        None => assert_eq!(ex.run_to_completion(C0), Ok(OpResult::Value(V2))),
    }
    store(&mut ex, C0, mm, va.with_word(1), Y);
    assert_ne!(k.follow_pfn(mm, va), Some(x), "the parent COWed");
    assert_eq!(k.follow_pfn(child, va), Some(x), "the child keeps X");
    B7 {
        store_waited_for_fork: early.is_none(),
        parent: load(&mut ex, C0, mm, va),
        child: load(&mut ex, C2, child, va),
    }
}

/// T1 stores V2 before/after fork's wrprotect (stale TLB entry), parent COWs: the parent reads V1.
#[test]
fn b7_store_through_stale_tlb_entry_after_wrprotect_is_missed_by_cow_copy() {
    for name in ["linux-2.6.14", "tmpalias"] {
        let lost = B7 { store_waited_for_fork: false, parent: V1, child: V2 };
        assert_eq!(b7_scenario(name, ForkWindow::AfterWrprotect), lost, "{name}");
        assert_eq!(b7_scenario(name, ForkWindow::BeforeWrprotect), lost, "{name}");
    }
}

/// tmpalias+purge: V2 after wrprotect waits for the fork; V2 before it is missed by the COW copy (V1).
#[test]
fn b7_purge_half_fix_still_loses_a_store_made_before_wrprotect() {
    let after = b7_scenario("tmpalias+purge", ForkWindow::AfterWrprotect);
    assert_eq!(after, B7 { store_waited_for_fork: true, parent: V2, child: V1 });
    let before = b7_scenario("tmpalias+purge", ForkWindow::BeforeWrprotect);
    assert_eq!(before, B7 { store_waited_for_fork: false, parent: V1, child: V2 });
}

/// tmpalias+precopy: the COW copy has V2 in both windows (no loss); V2 after wrprotect reaches the child.
#[test]
fn b7_precopy_half_fix_copies_every_store_but_a_stale_store_reaches_the_child() {
    let before = b7_scenario("tmpalias+precopy", ForkWindow::BeforeWrprotect);
    assert_eq!(before, B7 { store_waited_for_fork: false, parent: V2, child: V2 });
    let after = b7_scenario("tmpalias+precopy", ForkWindow::AfterWrprotect);
    assert_eq!(after, B7 { store_waited_for_fork: false, parent: V2, child: V2 });
}

/// 6.x/whole-cache: V2 before wrprotect is copied; V2 after it faults and COWs after the fork.
#[test]
fn b7_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let before = b7_scenario(name, ForkWindow::BeforeWrprotect);
        assert_eq!(before, B7 { store_waited_for_fork: false, parent: V2, child: V2 }, "{name}");
        let after = b7_scenario(name, ForkWindow::AfterWrprotect);
        assert_eq!(after, B7 { store_waited_for_fork: true, parent: V2, child: V1 }, "{name}");
    }
}

// ----- B13 --------------------------------------------------------------------------------
//
// 3.x flush_cache_range of the current mm flushes by user address. Over a PTE that reclaim has
// cleared every fdc is nullified, so a line loaded between reclaim's flush and its clear
// survives the munmap; the next mapping of the reused frame at that colour reads it. 6.x flushes
// in ptep_clear_flush by physical address and flushes ranges through the whole cache (or present
// pages only, via tmpalias).

/// B13 outcome: P's line at the user colour after the `munmap` (dirty?, word 0), fdcs of the
/// `munmap` that were nullified, and what a new mapping of the file reads after a `write(2)`.
#[derive(Debug, PartialEq, Eq)]
struct B13 {
    line_after_munmap: Option<(bool, u64)>,
    nullified_in_munmap: u64,
    reload: u64,
}

/// A process maps file page P shared at colour 0 and reads it. Reclaim (CPU1) flushes it and
/// stops before clearing the PTE; the process reads it again (a clean line at colour 0), then
/// reclaim clears the PTE and frees P. The process unmaps the VMA (a range flush over a
/// non-present page); the kernel `write(2)`s NEW into the file, whose page reuses P's frame;
/// the file is mapped again at colour 0 and read.
fn b13_scenario(name: &str) -> B13 {
    let k = kernel(name);
    let f = file(&k, 1, 0);
    let g = k.create_file(1, 1);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_file(&mut ex, C0, mm, f, true);
    // A second VMA under the same PTE page keeps that page (and P's frame order) alive.
    let vg = map_file(&mut ex, C0, mm, g, true);
    assert_eq!(va.0 / PMD_SIZE, vg.0 / PMD_SIZE);
    assert_eq!(load(&mut ex, C0, mm, va), OLD);
    let p = page_of(&k, f);
    assert_ne!(user_colour(va), kernel_colour(p));

    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::FilePage { file: f, pgoff: 0 } });
    // The second i_mmap lock is try_to_unmap's; its first PTE write is the clear.
    run_until_nth(&mut ex, C1, 2, |a| *a == Action::Lock(LockId::IMmap(f)));
    run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm, va });
    assert_eq!(load(&mut ex, C0, mm, va), OLD);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    assert_eq!(k.state().files[f.index()].cached(0), None);

    let n0 = nullified(&k);
    assert_eq!(run(&mut ex, C0, Op::Munmap { mm, va, pages: 1 }), OpResult::Done);
    let nullified_in_munmap = nullified(&k) - n0;
    let line_after_munmap = k.machine().cached_word(va, p.word(0)).map(|(_, dirty, v)| (dirty, v));

    write(&mut ex, C2, f, 0, NEW);
    assert_eq!(page_of(&k, f), p, "the new page-cache page reuses P's frame");
    let va2 = map_file(&mut ex, C0, mm, f, true);
    assert_eq!(user_colour(va2), user_colour(va));
    B13 { line_after_munmap, nullified_in_munmap, reload: load(&mut ex, C0, mm, va2) }
}

/// Load between reclaim's flush and clear; munmap's range flush over the hole is nullified: reload is OLD.
#[test]
fn b13_range_flush_over_hole_is_nullified_and_stale_line_survives() {
    let got = b13_scenario("tmpalias");
    assert_eq!(got, B13 { line_after_munmap: Some((false, OLD)), nullified_in_munmap: LINES, reload: OLD });
}

/// Same interleaving on 6.x and whole-cache: no line survives, no fdc is nullified, the reload reads NEW.
#[test]
fn b13_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let got = b13_scenario(name);
        assert_eq!(got, B13 { line_after_munmap: None, nullified_in_munmap: 0, reload: NEW }, "{name}");
    }
}

// ----- B17 --------------------------------------------------------------------------------
//
// 6.0 (PA8800 path): page aging clears `_PAGE_ACCESSED` without a TLB purge, flush_cache_page
// flushes only a present and accessed PTE, by user address, and ptep_clear_flush flushes no
// cache. (b) reclaim skips the flush of the just-aged PTE and frees X with the owner's store
// dirty in the cache. (c) a presence check passes, reclaim clears the PTE (skipping its own
// flush), and the checker's fdcs by user address are nullified. 6.x flushes by physical address
// with no PTE check, in flush_cache_page and again in ptep_clear_flush.

/// B17 (b) outcome: the swap slot's word 0, dirty lines left on the freed frame, what the
/// frame's next owner (same colour) reads first, what the original owner reads after swap-in.
#[derive(Debug, PartialEq, Eq)]
struct B17b {
    swap: u64,
    dirty_lines_left: usize,
    new_owner: u64,
    owner_reload: u64,
}

/// Where in reclaim the owner's second store lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReclaimWindow {
    /// After `page_referenced` aged the PTE, before `try_to_unmap`.
    AfterAging,
    /// After `try_to_unmap`'s `flush_cache_page`, before `ptep_clear_flush` clears the PTE.
    BeforeClear,
}

/// The owner (CPU0) stored V1 into anon page X (colour 0). Reclaim (CPU1) stops at `window`;
/// the owner stores V2; reclaim finishes (swap slot 1). Another process faults in an anon page
/// at colour 0 (it gets X's frame) and reads it; the owner reads its page back from swap.
fn b17b_scenario(name: &str, window: ReclaimWindow) -> B17b {
    let k = kernel(name);
    let owner = k.create_mm().unwrap();
    let other = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, owner, 1);
    let vo = map_anon(&mut ex, C2, other, 2);
    assert_eq!(user_colour(va), user_colour(vo));
    store(&mut ex, C2, other, vo.add_pages(1), 0x0e); // the other's PTE page exists already
    store(&mut ex, C0, owner, va, V1);
    let x = k.follow_pfn(owner, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));
    let vipt_emu::mm::Mapping::Anon(anon) = k.page(x).mapping else { panic!("anon page") };

    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::User { mm: owner, va } });
    // The second anon_vma lock is try_to_unmap's.
    run_until_nth(&mut ex, C1, 2, |a| *a == Action::Lock(LockId::AnonVma(anon)));
    if window == ReclaimWindow::BeforeClear {
        run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm: owner, va });
    }
    store(&mut ex, C0, owner, va, V2);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    let swap = swap_word(&k, 1, 0);
    let dirty_lines_left = k.machine().dirty_lines_of(x);

    let new_owner = load(&mut ex, C2, other, vo);
    assert_eq!(k.follow_pfn(other, vo), Some(x), "the other process got X's frame");
    B17b { swap, dirty_lines_left, new_owner, owner_reload: load(&mut ex, C0, owner, va) }
}

/// 6.0: owner stores after aging or before the clear, reclaim skips the flush: swap 0, next owner sees V2.
#[test]
fn b17b_reclaim_skips_flush_of_old_pte_and_frees_page_with_dirty_lines() {
    for window in [ReclaimWindow::AfterAging, ReclaimWindow::BeforeClear] {
        let got = b17b_scenario("linux-6.0", window);
        assert_eq!(got, B17b { swap: 0, dirty_lines_left: 1, new_owner: V2, owner_reload: 0 }, "{window:?}");
    }
}

/// Same two windows on 6.x and whole-cache: swap gets V2, no dirty line is left, the next owner reads 0.
#[test]
fn b17b_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for window in [ReclaimWindow::AfterAging, ReclaimWindow::BeforeClear] {
            let got = b17b_scenario(name, window);
            let want = B17b { swap: V2, dirty_lines_left: 0, new_owner: 0, owner_reload: V2 };
            assert_eq!(got, want, "{name} {window:?}");
        }
    }
}

/// B17 (c) outcome: what `access_process_vm` read, its nullified fdcs after the stop point,
/// the swap slot's word 0.
#[derive(Debug, PartialEq, Eq)]
struct B17c {
    peek: u64,
    nullified: u64,
    swap: u64,
}

/// The owner (CPU0) stored V1 into anon page X (colour 0). A debugger (CPU2) peeks the word
/// with `access_process_vm` and stops in `flush_anon_page` after its presence check; reclaim
/// (CPU1) ages, unmaps and swaps X out (busy: the debugger holds a reference); the peek goes on.
fn b17c_scenario(name: &str) -> B17c {
    let k = kernel(name);
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, mm, 1);
    store(&mut ex, C0, mm, va, V1);
    let x = k.follow_pfn(mm, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));

    ex.spawn(C2, Op::AccessVm { mm, va, store: None });
    if name == "linux-6.0" {
        run_until_nth(&mut ex, C2, 1, is_label);
        assert_eq!(k.pending(C2), Action::Label("flush_cache_page: pte needs flush"));
    } else {
        // 6.x and whole-cache start flush_anon_page with a TLB purge.
        run_until_nth(&mut ex, C2, 1, is_tlb);
    }
    let n0 = nullified(&k);
    let r = run(&mut ex, C1, Op::Reclaim { target: ReclaimTarget::User { mm, va } });
    assert_eq!(r, OpResult::Err(Errno::Busy));
    assert!(matches!(k.layout().decode(k.peek_pte(mm, va)), PteKind::Swap { offset: 1, .. }));
    let peek = value(ex.run_to_completion(C2).unwrap());
    B17c { peek, nullified: nullified(&k) - n0, swap: swap_word(&k, 1, 0) }
}

/// 6.0: a peek passes flush_anon_page's PTE check, reclaim swaps X out, its fdcs are nullified: reads 0.
#[test]
fn b17c_pte_cleared_between_presence_check_and_flush_nullifies_it() {
    let got = b17c_scenario("linux-6.0");
    assert_eq!(got, B17c { peek: 0, nullified: LINES, swap: 0 });
}

/// Same interleaving on 6.x and whole-cache: the peek flushes by physical address and reads V1.
#[test]
fn b17c_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        assert_eq!(b17c_scenario(name), B17c { peek: V1, nullified: 0, swap: V1 }, "{name}");
    }
}

// ----- B21 --------------------------------------------------------------------------------
//
// 2.x accept a shared MAP_FIXED at another colour and flush only the first mapping of i_mmap
// that maps the page (B, at colour 1): A's line at colour 0 stays stale. 6.x refuses the
// mapping and flushes every private mapping and one shared mapping per colour.

/// Colour 1 on tiny, colour 0x101000 of 4 MiB: not congruent with the file's colour 0.
const ODD: VirtAddr = VirtAddr(0x0050_1000);

/// A shared at colour 0, B MAP_FIXED at colour 1, both read, write(2) flushes only B: A OLD, B NEW.
#[test]
fn b21_non_congruent_map_fixed_alias_is_left_stale() {
    for name in ["linux-2.4", "linux-2.6.14", "linux-2.6.15", "recheck"] {
        let k = kernel(name);
        let f = file(&k, 1, 0);
        let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
        let mut ex = Executor::new(&k);
        let va_a = map_file(&mut ex, C0, a, f, true);
        let va_b = mapped(mmap_file(&mut ex, C1, b, f, true, Some(ODD)));
        assert_eq!((load(&mut ex, C0, a, va_a), load(&mut ex, C1, b, va_b)), (OLD, OLD));
        let p = page_of(&k, f);
        assert_eq!([user_colour(va_a), user_colour(va_b), kernel_colour(p)], [0, 1, 3]);
        write(&mut ex, C2, f, 0, NEW);
        assert_eq!((load(&mut ex, C0, a, va_a), load(&mut ex, C1, b, va_b)), (OLD, NEW), "{name}");
    }
}

/// 6.x/whole-cache refuse B's MAP_FIXED; B congruent plus private C at colour 1: all three read NEW.
#[test]
fn b21_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let k = kernel(name);
        let f = file(&k, 1, 0);
        let (a, b, c) = (k.create_mm().unwrap(), k.create_mm().unwrap(), k.create_mm().unwrap());
        let mut ex = Executor::new(&k);
        let va_a = map_file(&mut ex, C0, a, f, true);
        assert_eq!(mmap_file(&mut ex, C1, b, f, true, Some(ODD)), OpResult::Err(Errno::Inval), "{name}");
        let va_b = map_file(&mut ex, C1, b, f, true);
        let va_c = mapped(mmap_file(&mut ex, C3, c, f, false, Some(ODD)));
        assert_eq!([user_colour(va_a), user_colour(va_b), user_colour(va_c)], [0, 0, 1]);
        let loads =
            |ex: &mut Executor<'_>| [load(ex, C0, a, va_a), load(ex, C1, b, va_b), load(ex, C3, c, va_c)];
        assert_eq!(loads(&mut ex), [OLD; 3]);
        write(&mut ex, C2, f, 0, NEW);
        assert_eq!(loads(&mut ex), [NEW; 3], "{name}");
    }
}
