//! How far a campaign reaches: `linux-6.x` with one historic mistake put back, through the
//! public `Patch` API, and how many seeds each scheduler needs to catch it.
//!
//! Each regression replaces one routine of `linux-6.x`:
//!
//! | name | mistake |
//! |---|---|
//! | `fdp-first-mapping` | `flush_dcache_page` flushes the first mapping only (the 2.6 "all mappings are congruent, one flush serves all") |
//! | `no-deferred-flush` | `update_mmu_cache` ignores `PG_dcache_dirty`: a page the kernel wrote while unmapped is mapped without its deferred flush |
//! | `flush-before-purge` | `flush_cache_page` flushes through the tmpalias window before purging the user TLB entry (the order before the 2024 rework) |
//! | `cow-no-source-flush` | `copy_user_highpage` copies without flushing the source's user alias |
//! | `fork-no-flush` | `flush_cache_mm` does nothing: fork write-protects PTEs whose dirty lines were never flushed |
//! | `range-flush-none` | `flush_cache_range` does nothing: munmap, mprotect and `mremap`'s `move_page_tables` leave the old colour's dirty lines |
//! | `io-uring-file-colour` | io_uring's placement before 6.4: a ring is mapped at the colour of its file, not of its kernel address (a knob, not a routine) |
//!
//! `cargo run --release -p vipt-harness --example regressions -- [SEEDS] [SCHEDULER...]
//! [--family NAME]` (default `2000`, every scheduler, the lineage's own family): per regression
//! and scheduler, the seeds among `0..SEEDS` that fail on the regression and not on `linux-6.x`
//! itself, and the first.
use vipt_emu::addr::{Pfn, VirtAddr};
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch};
use vipt_emu::mm::{LockId, MmId, Vma};
use vipt_emu::pte::Pte;
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Lineage, Registry, pacache, parisc};

#[derive(Clone)]
struct FirstMappingOnly;

impl Patch for FirstMappingOnly {
    fn flush_dcache_page<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, page: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            if parisc::defer_if_unmapped(cx, page) {
                return;
            }
            parisc::flush_kernel_page_tmpalias(cx, page).await;
            let Some(file) = parisc::page_file(cx, page) else { return };
            cx.lock(LockId::FlushDcacheMmap(file)).await;
            if let Some((vma, va)) = cx.file_mappings(page).first().copied() {
                cx.arch().flush_cache_page(vma, va, page).await;
            }
            cx.unlock(LockId::FlushDcacheMmap(file));
        })
    }
}

#[derive(Clone)]
struct NoDeferredFlush;

impl Patch for NoDeferredFlush {
    fn update_mmu_cache<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, _vma: Vma, _va: VirtAddr, pte: Pte,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            // The flag is consumed, the flush forgotten.
            if cx.layout().pte_present(pte) && cx.pfn_valid(pte.raw_pfn()) {
                let _ = cx.test_and_clear_dcache_dirty(pte.raw_pfn());
            }
        })
    }
}

#[derive(Clone)]
struct FlushBeforePurge;

impl Patch for FlushBeforePurge {
    fn flush_cache_page<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            pacache::flush_dcache_page_asm(cx, pfn, va).await;
            cx.arch().flush_tlb_page(vma, va.page_base()).await;
        })
    }
}

#[derive(Clone)]
struct CowNoSourceFlush;

impl Patch for CowNoSourceFlush {
    fn copy_user_highpage<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, to: Pfn, from: Pfn, _va: VirtAddr, _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.copy_page_kernel(to, from).await;
            parisc::flush_kernel_page_tmpalias(cx, to).await;
            parisc::flush_kernel_page_tmpalias(cx, from).await;
        })
    }
}

#[derive(Clone)]
struct ForkNoFlush;

impl Patch for ForkNoFlush {
    fn flush_cache_mm<'a>(&'a self, _: &'a dyn ArchHooks, _cx: ArchCtx<'a>, _mm: MmId) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[derive(Clone)]
struct NoRangeFlush;

impl Patch for NoRangeFlush {
    fn flush_cache_range<'a>(
        &'a self, _: &'a dyn ArchHooks, _cx: ArchCtx<'a>, _vma: Vma, _start: VirtAddr, _end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async {})
    }
}

#[derive(Clone)]
struct Unchanged;

impl Patch for Unchanged {}

fn regressions(base: &Lineage) -> Vec<Lineage> {
    vec![
        base.patched("fdp-first-mapping", "flush_dcache_page flushes one mapping", FirstMappingOnly),
        base.patched("no-deferred-flush", "update_mmu_cache skips the deferred flush", NoDeferredFlush),
        base.patched("flush-before-purge", "flush_cache_page flushes, then purges", FlushBeforePurge),
        base.patched("cow-no-source-flush", "COW copies an unflushed source", CowNoSourceFlush),
        base.patched("fork-no-flush", "flush_cache_mm does nothing", ForkNoFlush),
        base.patched("range-flush-none", "flush_cache_range does nothing", NoRangeFlush),
        base.patched("io-uring-file-colour", "rings placed by their file's colour", Unchanged)
            .configure(|c| c.io_uring_coloured = false),
    ]
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = RunConfig::default();
    if let Some(i) = args.iter().position(|a| a == "--family") {
        let name = args.get(i + 1).expect("--family takes a family name");
        cfg.family = Some(name.parse().unwrap_or_else(|e: String| panic!("{e}")));
        args.drain(i..i + 2);
    }
    let mut args = args.into_iter();
    let seeds: u64 = args.next().map_or(2000, |s| s.parse().expect("SEEDS is a number"));
    let mut scheds: Vec<SchedulerKind> = args.map(|s| s.parse().expect("a scheduler")).collect();
    if scheds.is_empty() {
        scheds = vec![SchedulerKind::Random, SchedulerKind::Pct, SchedulerKind::Window];
    }
    let registry = Registry::builtin();
    let base = registry.get("linux-6.x").expect("linux-6.x is built in");
    let fails = |l: &Lineage, s: SchedulerKind| -> Vec<u64> {
        (0..seeds).filter(|&seed| !run_seed(l, &cfg, s, seed).violations.is_empty()).collect()
    };
    // Seeds that fail on linux-6.x itself (its known windows) say nothing of a regression.
    let base_fails: Vec<Vec<u64>> = scheds.iter().map(|&s| fails(base, s)).collect();
    for (&s, b) in scheds.iter().zip(&base_fails) {
        println!("linux-6.x itself fails {} seeds with {s} (left out below)", b.len());
    }
    println!("{:<22} {:>8} {:>10} {:>10}", "regression", "sched", "failing", "first");
    for l in regressions(base) {
        for (&s, b) in scheds.iter().zip(&base_fails) {
            let failing: Vec<u64> = fails(&l, s).into_iter().filter(|seed| !b.contains(seed)).collect();
            let first = failing.first().map_or("-".to_string(), |f| f.to_string());
            println!("{:<22} {:>8} {:>10} {:>10}", l.name, s.to_string(), failing.len(), first);
        }
    }
}
