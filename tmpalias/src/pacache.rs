//! The routines of `pacache.S` that work through the per-CPU tmpalias window.
//!
//! Each loads the physical page(s) into the CPU's tmpalias registers, purges the window
//! address(es) from the local TLB first (the registers changed, but an old entry would still
//! point at the old page: the 2022 fix "Unconditionally flush tlb entry in tmpalias
//! functions"), and then touches the page through the window address congruent to the user
//! address. The miss handler manufactures the translation from the registers (see
//! [`vipt_emu::machine::tmpalias`]): an ordinary one for loads and stores, a flush-only one
//! for flush instructions where the era's handler serves them. Nothing is written to any page
//! table, and since one CPU runs one routine at a time the registers are private to it
//! (`preempt_disable`).

use vipt_emu::addr::{Pfn, SpaceId, VirtAddr};
use vipt_emu::arch::ArchCtx;
use vipt_emu::machine::TmpaliasRegs;
use vipt_emu::machine::tmpalias::{Half, alias_addr};

/// Points the window at `to` (and `from`) and purges the window addresses from the local TLB;
/// returns the "to" address congruent with `uva`.
async fn map(cx: ArchCtx<'_>, uva: VirtAddr, to: Pfn, from: Option<Pfn>) -> VirtAddr {
    cx.set_tmpalias(TmpaliasRegs { to: Some(to), from });
    let a = alias_addr(uva, Half::To);
    cx.purge_tlb_local(SpaceId::KERNEL, a).await;
    if from.is_some() {
        cx.purge_tlb_local(SpaceId::KERNEL, alias_addr(uva, Half::From)).await;
    }
    a
}

/// `flush_dcache_page_asm(phys, vaddr)`: writes back and invalidates every line of `page` at
/// the colour of `uva`, through a flush-only alias. Needs a miss handler that serves
/// non-access misses in the window (3.x and later); otherwise every `fdc` is nullified.
pub async fn flush_dcache_page_asm(cx: ArchCtx<'_>, page: Pfn, uva: VirtAddr) {
    let a = map(cx, uva, page, None).await;
    cx.flush_page_lines(SpaceId::KERNEL, a).await;
}

/// `purge_dcache_page_asm(phys, vaddr)`: invalidates, without write-back, every line of
/// `page` at the colour of `uva`.
pub async fn purge_dcache_page_asm(cx: ArchCtx<'_>, page: Pfn, uva: VirtAddr) {
    let a = map(cx, uva, page, None).await;
    cx.purge_page_lines(SpaceId::KERNEL, a).await;
}

/// `copy_user_page_asm(to, from, vaddr)`: copies `from` to `to` through aliases congruent
/// with `uva`, so the destination's lines land at the user's colour.
pub async fn copy_user_page_asm(cx: ArchCtx<'_>, to: Pfn, from: Pfn, uva: VirtAddr) {
    let a = map(cx, uva, to, Some(from)).await;
    cx.copy_page_via(a, alias_addr(uva, Half::From)).await;
}

/// `clear_user_page_asm(page, vaddr)`: zeroes `page` through an alias congruent with `uva`.
pub async fn clear_user_page_asm(cx: ArchCtx<'_>, page: Pfn, uva: VirtAddr) {
    let a = map(cx, uva, page, None).await;
    cx.clear_page_via(a).await;
}
