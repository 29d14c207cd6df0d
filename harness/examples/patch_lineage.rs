//! Patch one routine and one knob of a built-in lineage, then run a seeded campaign on it.
//!
//! `linux-6.x` with a 2.6-style `flush_dcache_page` that flushes only the first mapping of the
//! page (after the kernel alias), and `MAP_FIXED` that no longer checks colours: two shared
//! mappings of one page can then sit at different colours, and one flush misses the other.
use vipt_emu::addr::Pfn;
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch};
use vipt_emu::mm::LockId;
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Registry, parisc};

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

fn main() {
    let registry = Registry::builtin();
    let base = registry.get("linux-6.x").unwrap();
    let patched = base
        .patched("linux-6.x-first-mapping", "flush_dcache_page flushes one mapping", FirstMappingOnly)
        .configure(|c| c.map_fixed_checks_colour = false);
    let cfg = RunConfig::default();
    for l in [base, &patched] {
        let failing: Vec<u64> = (0..2000)
            .filter(|&s| !run_seed(l, &cfg, SchedulerKind::Random, s).violations.is_empty())
            .collect();
        println!("{:>24}: {} of 2000 seeds fail, first {:?}", l.name, failing.len(), failing.first());
    }
}
