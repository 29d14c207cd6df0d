//! A lineage defined outside `vipt-tmpalias`: `linux-6.x` whose COW copy forgets to flush the
//! source's user alias first (the pre-2013 "minifail" mistake). A [`Patch`] replaces that one
//! routine; every other routine and every knob stay `linux-6.x`'s. It is registered under a
//! new name and run next to `linux-6.x` on one deterministic scenario.

use vipt_emu::addr::{CpuId, Pfn, VirtAddr};
use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture, Patch};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Executor, Op, OpResult, Vma};
use vipt_tmpalias::{Lineage, Registry, parisc};

/// `copy_user_highpage` through the kernel aliases only, with no flush of the source first.
#[derive(Clone)]
struct NoSourceFlush;

impl Patch for NoSourceFlush {
    fn copy_user_highpage<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, to: Pfn, from: Pfn, _va: VirtAddr, _vma: Vma,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            cx.copy_page_kernel(to, from).await; // reads `from` through its kernel alias only
            parisc::flush_kernel_page_tmpalias(cx, to).await;
            parisc::flush_kernel_page_tmpalias(cx, from).await;
        })
    }
}

/// Process A stores 0xa into word 0 of a shared file mapping (colour 0; the page's kernel
/// alias has colour 3 on `tiny`); process B, mapping the same page privately, writes word 1
/// (COW) and then loads word 0: it must see A's 0xa. Returns B's load.
fn scenario(lineage: &Lineage) -> u64 {
    let k = lineage.boot(Preset::Tiny.config(), Box::new(FirstChooser));
    let f = k.create_file(1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let map = |shared| MmapArgs { pages: 1, file: Some((f, 0)), shared, writable: true, fixed: None };
    let mut ex = Executor::new(&k);
    let mut run = |cpu, op| ex.run_sequential(&[(CpuId(cpu), op)]).unwrap()[0];
    let (OpResult::Mapped(va_a), OpResult::Mapped(va_b)) =
        (run(0, Op::Mmap { mm: a, args: map(true) }), run(1, Op::Mmap { mm: b, args: map(false) }))
    else {
        panic!("mmap failed")
    };
    run(0, Op::Store { mm: a, va: va_a, value: 0xa });
    run(1, Op::Store { mm: b, va: va_b.with_word(1), value: 0xb }); // COW of the file page
    match run(1, Op::Load { mm: b, va: va_b }) {
        OpResult::Value(v) => v,
        other => panic!("load failed: {other:?}"),
    }
}

fn main() {
    let mut registry = Registry::builtin();
    let base = registry.get("linux-6.x").unwrap();
    let custom = base.patched("linux-6.x-no-source-flush", "COW copy without source flush", NoSourceFlush);
    registry.register(custom.kernel("6.17+, patched").bugs(&["B7"])).unwrap();
    for name in ["linux-6.x-no-source-flush", "linux-6.x"] {
        let v = scenario(registry.get(name).unwrap());
        println!("{name:>26}: B's COW copy reads word 0 = {v:#x} (A stored 0xa)");
    }
}
