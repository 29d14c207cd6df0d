//! Tests of the MMU core through the sequential driver.

use super::*;
use crate::arch::{ArchCtx, ArchHooks, GenericHooks, HookFuture};
use crate::choice::FirstChooser;
use crate::config::Preset;
use crate::machine::Machine;
use crate::mm::mmap::MmapArgs;

mod mremap;
mod order;
mod reuse;
mod shmem;
mod situations;

pub(crate) fn kernel(preset: Preset, hooks: Box<dyn ArchHooks>) -> Kernel {
    let m = Machine::new(preset.config(), Box::new(FirstChooser));
    Kernel::new(m, hooks, ArchConfig::GENERIC)
}

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);

fn run(k: &Kernel, ops: &[(CpuId, Op)]) -> Vec<OpResult> {
    Executor::new(k).run_sequential(ops).unwrap()
}

fn one(k: &Kernel, cpu: CpuId, op: Op) -> OpResult {
    run(k, &[(cpu, op)])[0]
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

#[test]
fn anon_store_then_load_round_trips() {
    let k = kernel(Preset::Tiny, Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(2) }));
    assert_eq!(one(&k, C0, Op::Store { mm, va, value: 7 }), OpResult::Value(7));
    assert_eq!(one(&k, C0, Op::Load { mm, va }), OpResult::Value(7));
    assert_eq!(one(&k, C1, Op::Load { mm, va: va.add_pages(1) }), OpResult::Value(0));
}

/// `flush_cache_all` from CPU 1, as a task.
fn flush_task(k: &Kernel) -> std::pin::Pin<Box<dyn std::future::Future<Output = OpResult> + '_>> {
    Box::pin(async move {
        k.flush_cache_all(C1).await;
        OpResult::Done
    })
}

/// `flush_cache_all` on an aliasing machine: a step per occupied set (each step also covers
/// the empty sets after its own), every set counted, every dirty line written back; and a line
/// filled during the pass, in a set the pass has not reached yet, is still flushed by it.
#[test]
fn flush_cache_all_steps_over_empty_sets_and_counts_every_set() {
    let k = kernel(Preset::Pa8700, Box::new(GenericHooks));
    let (sets, cpus) = (k.machine().config().sets, k.ncpus());
    let line = k.machine().config().line_bytes;
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(2) }));
    one(&k, C0, Op::Store { mm, va, value: 7 });
    let mut ex = Executor::new(&k);
    ex.spawn_task(C1, "flush_cache_all", flush_task(&k));
    ex.run_to_completion(C1).unwrap();
    // The fault's zero-fill lines are gone; now one dirty line of the page.
    one(&k, C0, Op::Store { mm, va, value: 8 });
    let valid = |k: &Kernel| {
        let m = k.machine();
        (0..m.ncpus()).map(|c| m.cpu(CpuId(c as u8)).cache.occupancy().0).sum::<usize>()
    };
    let set_of = |k: &Kernel, va: VirtAddr| {
        let pa = k.peek_pte(mm, va).raw_pfn().phys().add_bytes(va.page_offset());
        k.machine().set_index(va, pa)
    };
    let first = set_of(&k, va);
    assert!(first + 1 < sets);
    assert_eq!(valid(&k), 1);
    let fdce0 = k.machine().counters.fdce;
    let mut ex = Executor::new(&k);
    ex.spawn_task(C1, "flush_cache_all", flush_task(&k));
    // The task's start, then one step: sets 0.. of CPU0's cache up to the occupied one,
    // which is next.
    ex.step_cpu(C1).unwrap();
    assert_eq!(k.pending(C1), Action::Fdce { target: C0, set: 0 });
    ex.step_cpu(C1).unwrap();
    assert_eq!(k.pending(C1), Action::Fdce { target: C0, set: first });
    let next_line = va.add_bytes(line);
    ex.spawn(C0, Op::Store { mm, va: next_line, value: 9 });
    ex.run_to_completion(C0).unwrap();
    assert_eq!(set_of(&k, next_line), first + 1);
    let before = ex.steps;
    ex.run_to_completion(C1).unwrap();
    let flush_steps = 2 + ex.steps - before;
    assert_eq!(valid(&k), 0, "every line flushed, the one filled during the pass too");
    assert_eq!(k.machine().counters.fdce - fdce0, (sets * cpus) as u64, "one fdce counted per set");
    // The start; CPU0: sets 0..first, first, first + 1 and the rest; one step for each other
    // (empty) cache.
    assert_eq!(flush_steps, 1 + 3 + (cpus - 1) as u64);
    let pa = |va: VirtAddr| k.peek_pte(mm, va).raw_pfn().phys().add_bytes(va.page_offset());
    let (a, b) = (pa(va), pa(next_line));
    assert_eq!(k.machine().mem.slice(a, 1)[0], 8);
    assert_eq!(k.machine().mem.slice(b, 1)[0], 9);
}

// ----- shadow-model property tests ------------------------------------------------------

use crate::mm::vmscan::ReclaimTarget;
use quickcheck::{QuickCheck, TestResult};

/// Words of each page the property tests touch: two in the first line, one in the second,
/// and the last word of the page.
const WORDS: [usize; 4] = [0, 1, 16, 511];

/// Flushes every CPU's whole cache at every cache hook: slow and always correct. The core
/// must call the hooks at the right places for this to stay clean on a VIPT machine.
struct WholeCache;

impl ArchHooks for WholeCache {
    fn flush_cache_mm<'a>(&'a self, cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_cache_range<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, _s: VirtAddr, _e: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_cache_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, _va: VirtAddr, _p: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, _p: Pfn) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn flush_anon_page<'a>(&'a self, cx: ArchCtx<'a>, _v: Vma, _p: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(cx.flush_cache_all())
    }
    fn copy_user_highpage<'a>(
        &'a self, cx: ArchCtx<'a>, to: Pfn, from: Pfn, _va: VirtAddr, _v: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.flush_cache_all().await;
            cx.copy_page_kernel(to, from).await;
            cx.flush_cache_all().await;
        })
    }
    fn clear_user_highpage<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn, _va: VirtAddr) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.clear_page_kernel(page).await;
            cx.flush_cache_all().await;
        })
    }
    fn copy_to_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, page: Pfn, va: VirtAddr, value: u64,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.kernel_store(page.word(va.word_in_page()).kernel_va(), value).await;
            cx.flush_cache_all().await;
        })
    }
    fn copy_from_user_page<'a>(
        &'a self, cx: ArchCtx<'a>, _v: Vma, page: Pfn, va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        Box::pin(async move {
            cx.flush_cache_all().await;
            cx.kernel_load(page.word(va.word_in_page()).kernel_va()).await
        })
    }
}

#[derive(Clone, Debug)]
enum ShadowKind {
    Anon,
    File { file: usize, pgoff: u64, shared: bool },
}

#[derive(Clone, Debug)]
struct ShadowMap {
    va: VirtAddr,
    pages: u64,
    kind: ShadowKind,
    /// Private copy of each page (anon pages always have one; private file pages after COW).
    private: Vec<Option<[u64; 4]>>,
}

#[derive(Clone, Debug)]
struct ShadowProc {
    mm: MmId,
    maps: Vec<ShadowMap>,
}

/// What a program can observe, modelled at the system-call level.
#[derive(Clone, Debug)]
struct Shadow {
    files: Vec<Vec<[u64; 4]>>,
    procs: Vec<ShadowProc>,
}

impl Shadow {
    /// Value a load would see, or the error it would get.
    fn load(&self, p: usize, m: usize, page: u64, w: usize) -> Result<u64, Errno> {
        let map = &self.procs[p].maps[m];
        if let Some(copy) = map.private[page as usize] {
            return Ok(copy[w]);
        }
        match map.kind {
            ShadowKind::Anon => unreachable!("anon pages always have a private copy"),
            ShadowKind::File { file, pgoff, .. } => {
                self.files[file].get((pgoff + page) as usize).map(|pg| pg[w]).ok_or(Errno::Bus)
            }
        }
    }

    fn store(&mut self, p: usize, m: usize, page: u64, w: usize, v: u64) -> Result<(), Errno> {
        let map = &self.procs[p].maps[m];
        if map.private[page as usize].is_some() {
            self.procs[p].maps[m].private[page as usize].as_mut().unwrap()[w] = v;
            return Ok(());
        }
        let ShadowKind::File { file, pgoff, shared } = map.kind else { unreachable!() };
        let idx = (pgoff + page) as usize;
        let Some(pg) = self.files[file].get(idx).copied() else {
            return Err(Errno::Bus);
        };
        if shared {
            self.files[file][idx][w] = v;
        } else {
            let mut copy = pg;
            copy[w] = v;
            self.procs[p].maps[m].private[page as usize] = Some(copy);
        }
        Ok(())
    }

    fn truncate(&mut self, file: usize, pages: u64) {
        let f = &mut self.files[file];
        let old = f.len() as u64;
        f.resize(pages as usize, [0; 4]);
        if pages < old {
            for proc in &mut self.procs {
                for map in &mut proc.maps {
                    if let ShadowKind::File { file: mf, pgoff, .. } = map.kind
                        && mf == file
                    {
                        for (i, slot) in map.private.iter_mut().enumerate() {
                            if pgoff + i as u64 >= pages {
                                *slot = None;
                            }
                        }
                    }
                }
            }
        }
    }
}

fn expect_value(got: OpResult, want: Result<u64, Errno>) -> bool {
    match (got, want) {
        (OpResult::Value(g), Ok(w)) => g == w,
        (OpResult::Err(g), Err(w)) => g == w,
        _ => false,
    }
}

/// Runs a random op list sequentially and checks every observation against the shadow, then
/// reads everything back, tears everything down and checks no frame or swap slot leaked.
/// `Err` carries a description of the first mismatch.
fn run_against_shadow(
    preset: Preset, hooks: Box<dyn ArchHooks>, raw: &[(u8, u8, u8, u8, u16)],
) -> Result<(), String> {
    let k = kernel(preset, hooks);
    let mut ex = Executor::new(&k);
    let frames = k.machine().config().frames;
    let files = [k.create_file(3, 0), k.create_file(2, 5)];
    let mut sh = Shadow { files: vec![vec![[0; 4]; 3], vec![[0; 4]; 2]], procs: Vec::new() };
    for _ in 0..2 {
        let mm = k.create_mm().unwrap();
        sh.procs.push(ShadowProc { mm, maps: Vec::new() });
    }
    let mut exec = |cpu: CpuId, op: Op| -> OpResult {
        ex.spawn(cpu, op);
        ex.run_to_completion(cpu).unwrap()
    };
    for (i, &(kind, a, b, c, v)) in raw.iter().enumerate() {
        let cpu = CpuId(c % 4);
        let value = ((i as u64) << 16) | v as u64 | 1;
        let np = sh.procs.len();
        if np == 0 {
            break;
        }
        let p = a as usize % np;
        let mm = sh.procs[p].mm;
        let nm = sh.procs[p].maps.len();
        let pick = |b: u8| -> Option<(usize, u64, usize)> {
            (nm > 0).then(|| {
                let m = b as usize % nm;
                let pages = sh.procs[p].maps[m].pages;
                (m, (b as u64 / 4) % pages, (b as usize / 2) % 4)
            })
        };
        let ctx = format!("op {i} {:?}", (kind, a, b, c, v));
        match kind % 14 {
            0 | 1 => {
                // mmap: anon, shared file, private file
                let choice = b % 3;
                let (args, skind) = match choice {
                    0 => (
                        MmapArgs { pages: 2, file: None, shared: false, writable: true, fixed: None },
                        ShadowKind::Anon,
                    ),
                    _ => {
                        let f = (b as usize / 3) % 2;
                        let pgoff = (b as u64 / 6) % 2;
                        let shared = choice == 1;
                        (
                            MmapArgs {
                                pages: 2,
                                file: Some((files[f], pgoff)),
                                shared,
                                writable: true,
                                fixed: None,
                            },
                            ShadowKind::File { file: f, pgoff, shared },
                        )
                    }
                };
                match exec(cpu, Op::Mmap { mm, args }) {
                    OpResult::Mapped(va) => {
                        let private = match skind {
                            ShadowKind::Anon => vec![Some([0; 4]); 2],
                            _ => vec![None; 2],
                        };
                        sh.procs[p].maps.push(ShadowMap { va, pages: 2, kind: skind, private });
                    }
                    OpResult::Err(Errno::NoMem) => return Ok(()),
                    r => return Err(format!("{ctx}: mmap gave {r:?}")),
                }
            }
            2..=4 => {
                let Some((m, page, w)) = pick(b) else {
                    continue;
                };
                let va = sh.procs[p].maps[m].va.add_pages(page).with_word(WORDS[w]);
                let got = exec(cpu, Op::Load { mm, va });
                if got == OpResult::Err(Errno::NoMem) {
                    return Ok(());
                }
                let want = sh.load(p, m, page, w);
                if !expect_value(got, want) {
                    return Err(format!("{ctx}: load {va} gave {got:?}, shadow {want:?}"));
                }
            }
            5..=7 => {
                let Some((m, page, w)) = pick(b) else {
                    continue;
                };
                let va = sh.procs[p].maps[m].va.add_pages(page).with_word(WORDS[w]);
                let got = exec(cpu, Op::Store { mm, va, value });
                if got == OpResult::Err(Errno::NoMem) {
                    return Ok(());
                }
                let want = sh.store(p, m, page, w, value).map(|()| value);
                if !expect_value(got, want) {
                    return Err(format!("{ctx}: store {va} gave {got:?}, shadow {want:?}"));
                }
            }
            8 => {
                let f = b as usize % 2;
                let pgoff = (b as u64 / 2) % 4;
                let w = WORDS[c as usize / 4 % 4];
                let wi = c as usize / 4 % 4;
                if b & 0x80 != 0 {
                    match exec(cpu, Op::Write { file: files[f], pgoff, word: w, value }) {
                        OpResult::Done => {
                            if sh.files[f].len() as u64 <= pgoff {
                                sh.files[f].resize(pgoff as usize + 1, [0; 4]);
                            }
                            sh.files[f][pgoff as usize][wi] = value;
                        }
                        OpResult::Err(Errno::NoMem) => return Ok(()),
                        r => return Err(format!("{ctx}: write gave {r:?}")),
                    }
                } else {
                    let got = exec(cpu, Op::Read { file: files[f], pgoff, word: w });
                    let want = sh.files[f].get(pgoff as usize).map(|pg| pg[wi]);
                    let ok = match (got, want) {
                        (OpResult::Value(g), Some(w)) => g == w,
                        (OpResult::Eof, None) => true,
                        (OpResult::Err(Errno::NoMem), _) => return Ok(()),
                        _ => false,
                    };
                    if !ok {
                        return Err(format!("{ctx}: read {f}:{pgoff}:{w} gave {got:?}, shadow {want:?}"));
                    }
                }
            }
            9 => {
                // reclaim a user page or a file page
                let target = match pick(b) {
                    Some((m, page, _)) if b & 1 == 0 => {
                        ReclaimTarget::User { mm, va: sh.procs[p].maps[m].va.add_pages(page) }
                    }
                    _ => ReclaimTarget::FilePage { file: files[b as usize % 2], pgoff: (b as u64 / 2) % 3 },
                };
                match exec(cpu, Op::Reclaim { target }) {
                    OpResult::Done | OpResult::Err(Errno::Busy) => {}
                    OpResult::Err(Errno::NoMem) => return Ok(()),
                    r => return Err(format!("{ctx}: reclaim gave {r:?}")),
                }
            }
            10 => {
                if np >= 4 {
                    continue;
                }
                match exec(cpu, Op::Fork { mm }) {
                    OpResult::Forked(child) => {
                        let mut cp = sh.procs[p].clone();
                        cp.mm = child;
                        sh.procs.push(cp);
                    }
                    OpResult::Err(Errno::NoMem) => return Ok(()),
                    r => return Err(format!("{ctx}: fork gave {r:?}")),
                }
            }
            11 => {
                if b % 3 == 0 && np > 1 {
                    if exec(cpu, Op::Exit { mm }) != OpResult::Done {
                        return Err(format!("{ctx}: exit failed"));
                    }
                    sh.procs.remove(p);
                } else if let Some((m, _, _)) = pick(b) {
                    let map = sh.procs[p].maps[m].clone();
                    let r = exec(cpu, Op::Munmap { mm, va: map.va, pages: map.pages });
                    if r != OpResult::Done {
                        return Err(format!("{ctx}: munmap gave {r:?}"));
                    }
                    sh.procs[p].maps.remove(m);
                }
            }
            12 => {
                let r = if b & 1 == 0 {
                    let Some((m, _, _)) = pick(b) else { continue };
                    let map = &sh.procs[p].maps[m];
                    exec(cpu, Op::Msync { mm, va: map.va, pages: map.pages })
                } else if b & 2 == 0 {
                    exec(cpu, Op::Fsync { file: files[b as usize / 4 % 2] })
                } else {
                    let f = b as usize / 4 % 2;
                    let pages = (b as u64 / 8) % 4;
                    let r = exec(cpu, Op::Truncate { file: files[f], pages });
                    if r == OpResult::Done {
                        sh.truncate(f, pages);
                    }
                    r
                };
                match r {
                    OpResult::Done => {}
                    OpResult::Err(Errno::NoMem) => return Ok(()),
                    r => return Err(format!("{ctx}: sync/truncate gave {r:?}")),
                }
            }
            _ => {
                // access_process_vm peek or poke
                let Some((m, page, w)) = pick(b) else {
                    continue;
                };
                let va = sh.procs[p].maps[m].va.add_pages(page).with_word(WORDS[w]);
                let poke = c & 0x80 != 0;
                let got = exec(cpu, Op::AccessVm { mm, va, store: poke.then_some(value) });
                if got == OpResult::Err(Errno::NoMem) {
                    return Ok(());
                }
                let want = if poke {
                    sh.store(p, m, page, w, value).map(|()| value)
                } else {
                    sh.load(p, m, page, w)
                };
                let want = want.map_err(|e| if e == Errno::Bus { Errno::Bus } else { e });
                if !expect_value(got, want) {
                    return Err(format!("{ctx}: access_process_vm {va} gave {got:?}, shadow {want:?}"));
                }
            }
        }
    }
    // Final read-back of every word of every mapping and every file, through the kernel.
    for (p, proc) in sh.procs.iter().enumerate() {
        for (m, map) in proc.maps.iter().enumerate() {
            for page in 0..map.pages {
                for (wi, &w) in WORDS.iter().enumerate() {
                    let va = map.va.add_pages(page).with_word(w);
                    let got = exec(CpuId(wi as u8 % 4), Op::Load { mm: proc.mm, va });
                    if got == OpResult::Err(Errno::NoMem) {
                        return Ok(());
                    }
                    let want = sh.load(p, m, page, wi);
                    if !expect_value(got, want) {
                        return Err(format!(
                            "final: load {va} of {:?} gave {got:?}, shadow {want:?}",
                            proc.mm
                        ));
                    }
                }
            }
        }
    }
    for (f, pages) in sh.files.iter().enumerate() {
        for (pgoff, words) in pages.iter().enumerate() {
            for (wi, &w) in WORDS.iter().enumerate() {
                let got = exec(CpuId(3), Op::Read { file: files[f], pgoff: pgoff as u64, word: w });
                if got == OpResult::Err(Errno::NoMem) {
                    return Ok(());
                }
                if got != OpResult::Value(words[wi]) {
                    return Err(format!("final: read {f}:{pgoff}:{w} gave {got:?}, shadow {}", words[wi]));
                }
            }
        }
    }
    // Tear down: nothing may leak.
    for proc in &sh.procs {
        assert_eq!(exec(CpuId(0), Op::Exit { mm: proc.mm }), OpResult::Done);
    }
    for &f in &files {
        assert_eq!(exec(CpuId(1), Op::Truncate { file: f, pages: 0 }), OpResult::Done);
    }
    let s = k.state();
    let mms_alive = s.mms.iter().filter(|m| !m.dead).count();
    if s.free.len() != frames - mms_alive {
        return Err(format!(
            "leak: {} of {frames} frames free with {mms_alive} live (empty) mms",
            s.free.len()
        ));
    }
    if let Some(i) = s.swap.iter().position(|sl| !sl.is_free()) {
        return Err(format!("leak: swap slot {i} still in use: {:?}", s.swap[i]));
    }
    Ok(())
}

fn verdict(r: Result<(), String>) -> TestResult {
    match r {
        Ok(()) => TestResult::passed(),
        Err(e) => TestResult::error(e),
    }
}

fn prop_pipt(raw: Vec<(u8, u8, u8, u8, u16)>) -> TestResult {
    verdict(run_against_shadow(Preset::Pipt, Box::new(GenericHooks), &raw))
}

fn prop_whole_cache(raw: Vec<(u8, u8, u8, u8, u16)>) -> TestResult {
    verdict(run_against_shadow(Preset::Tiny, Box::new(WholeCache), &raw))
}

#[test]
fn pipt_sequential_ops_match_the_shadow_model() {
    QuickCheck::new().tests(300).quickcheck(prop_pipt as fn(Vec<(u8, u8, u8, u8, u16)>) -> TestResult);
}

#[test]
fn whole_cache_hooks_on_vipt_match_the_shadow_model() {
    QuickCheck::new().tests(60).quickcheck(prop_whole_cache as fn(Vec<(u8, u8, u8, u8, u16)>) -> TestResult);
}

#[test]
fn generic_hooks_on_vipt_lose_data() {
    // The PIPT no-op hooks are wrong on an aliasing cache: some op list must show it.
    let bad = (0..200u16).any(|seed| {
        let raw: Vec<_> = (0..60u16)
            .map(|i| {
                let x = (seed as u32).wrapping_mul(7919).wrapping_add((i as u32).wrapping_mul(104_729));
                let h = x.wrapping_mul(2_654_435_761);
                ((h >> 24) as u8, (h >> 16) as u8, (h >> 8) as u8, h as u8, i)
            })
            .collect();
        run_against_shadow(Preset::Tiny, Box::new(GenericHooks), &raw).is_err()
    });
    assert!(bad, "no op list exposed the missing flushes");
}
