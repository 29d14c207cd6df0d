//! Which violations of the current kernel are the lost-dirty-bit windows of docs/FINDINGS.md
//! §3: seeds are run on `linux-6.x` and on `linux-6.x` whose three read-then-store PTE
//! updates (`ptep_clear_flush_young`, `ptep_get_and_clear`, `ptep_set_access_flags`) are made
//! single atomic updates through the public `Patch` API. A seed that fails on the first and not
//! on the second fails through one of those windows.
//!
//! `cargo run --release -p vipt-harness --example atomic_pte -- FAMILY PRESET SCHEDULER SEEDS`
//! (e.g. `sharing tiny window 20000`): the failing seeds of each, and those failing on both.
use vipt_emu::addr::VirtAddr;
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch};
use vipt_emu::mm::{MmId, Vma};
use vipt_emu::pte::{Pte, PteFlags};
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Family, Registry};

#[derive(Clone)]
struct AtomicPte;

impl Patch for AtomicPte {
    fn ptep_clear_flush_young<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr,
    ) -> HookFuture<'a, bool> {
        Box::pin(async move {
            cx.update_pte(vma.mm, va, |p| p.without_flags(PteFlags::ACCESSED)).await.has(PteFlags::ACCESSED)
        })
    }
    fn ptep_get_and_clear<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, mm: MmId, va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        Box::pin(async move {
            let old = cx.xchg_pte(mm, va, Pte::NONE).await;
            cx.arch().pte_clear(mm, va).await;
            old
        })
    }
    fn ptep_set_access_flags<'a>(
        &'a self, _: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, entry: Pte, _dirty: bool,
    ) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let layout = cx.layout();
            let add = [PteFlags::ACCESSED, PteFlags::DIRTY, PteFlags::WRITE]
                .into_iter()
                .filter(|&f| entry.has(f))
                .fold(PteFlags::empty(), |a, f| a | f);
            let merge = move |p: Pte| {
                if layout.pte_present(p) && p.raw_pfn() == entry.raw_pfn() { p.with_flags(add) } else { p }
            };
            let old = cx.update_pte(vma.mm, va, merge).await;
            let changed = merge(old) != old;
            if changed {
                cx.arch().flush_tlb_page(vma, va).await;
            }
            changed
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let family: Family = args.first().map_or("sharing", |s| s.as_str()).parse().expect("a family");
    let preset = args.get(1).map_or("tiny", |s| s.as_str()).parse().expect("a preset");
    let scheduler: SchedulerKind = args.get(2).map_or("window", |s| s.as_str()).parse().expect("a scheduler");
    let seeds: u64 = args.get(3).map_or(2000, |s| s.parse().expect("a seed count"));
    let reg = Registry::builtin();
    let base = reg.get("linux-6.x").expect("built in");
    let atomic = base.patched("linux-6.x-atomic-pte", "atomic PTE read-modify-writes", AtomicPte);
    let cfg = RunConfig { preset, family: Some(family), ..RunConfig::default() };
    let fails = |l| -> Vec<u64> {
        (0..seeds).filter(|&s| !run_seed(l, &cfg, scheduler, s).violations.is_empty()).collect()
    };
    let (a, b) = (fails(base), fails(&atomic));
    let both: Vec<u64> = a.iter().copied().filter(|s| b.contains(s)).collect();
    println!("linux-6.x fails {} seeds: {a:?}", a.len());
    println!("with atomic PTE updates: {} seeds: {b:?}", b.len());
    println!("on both: {both:?}");
}
