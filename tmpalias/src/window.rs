//! The per-CPU tmpalias window and the routines that use it.
//!
//! The window is a kernel virtual range of 8 MiB just below the linear map: a "to" half and a
//! "from" half of 4 MiB each. A routine that must touch physical page `P` at the colour of user
//! address `uva` loads `P` into the CPU's tmpalias registers, purges any stale TLB entry of the
//! window address first (the registers change but an old entry would still point at the old
//! page), and then accesses `window + (uva mod 4 MiB)`. The miss handler manufactures the
//! translation from the registers: for loads and stores a normal one, for flush instructions a
//! flush-only one (no data move-in). Nothing is written to any page table, and since one CPU
//! runs one routine at a time the registers are private to it (`preempt_disable`).

use vipt_emu::addr::{CpuId, PAGE_SIZE, Pfn, SHM_COLOUR, SpaceId, TMPALIAS_MAP_START, VirtAddr};
use vipt_emu::machine::TmpaliasRegs;
use vipt_emu::mm::Kernel;

/// Address in the window congruent to user address `uva` (page aligned): the "to" half, or
/// the "from" half one bit above.
pub fn alias_addr(uva: VirtAddr, from: bool) -> VirtAddr {
    let off = uva.0 & (SHM_COLOUR - 1) & !(PAGE_SIZE - 1);
    VirtAddr(TMPALIAS_MAP_START + off + if from { SHM_COLOUR } else { 0 })
}

/// Points the window at `to` (and `from`) and purges the window addresses from the local TLB.
async fn map(k: &Kernel, cpu: CpuId, uva: VirtAddr, to: Pfn, from: Option<Pfn>) -> VirtAddr {
    k.set_tmpalias(cpu, TmpaliasRegs { to: Some(to), from });
    let a = alias_addr(uva, false);
    k.purge_tlb_local(cpu, SpaceId::KERNEL, a).await;
    if from.is_some() {
        k.purge_tlb_local(cpu, SpaceId::KERNEL, alias_addr(uva, true)).await;
    }
    a
}

/// `flush_dcache_page_asm(phys, vaddr)`: writes back and invalidates every line of `page` at
/// the colour of `uva`, through a flush-only alias. Needs a miss handler that serves
/// non-access misses in the window (3.x and later).
pub async fn flush_dcache_page_asm(k: &Kernel, cpu: CpuId, page: Pfn, uva: VirtAddr) {
    let a = map(k, cpu, uva, page, None).await;
    k.flush_page_lines(cpu, SpaceId::KERNEL, a).await;
}

/// `purge_dcache_page_asm(phys, vaddr)`: invalidates, without write-back, every line of
/// `page` at the colour of `uva`.
pub async fn purge_dcache_page_asm(k: &Kernel, cpu: CpuId, page: Pfn, uva: VirtAddr) {
    let a = map(k, cpu, uva, page, None).await;
    k.purge_page_lines(cpu, SpaceId::KERNEL, a).await;
}

/// `copy_user_page_asm(to, from, vaddr)`: copies `from` to `to` through aliases congruent
/// with `uva`, so the destination's lines land at the user's colour.
pub async fn copy_user_page_asm(k: &Kernel, cpu: CpuId, to: Pfn, from: Pfn, uva: VirtAddr) {
    let a = map(k, cpu, uva, to, Some(from)).await;
    k.copy_page_via(cpu, a, alias_addr(uva, true)).await;
}

/// `clear_user_page_asm(page, vaddr)`: zeroes `page` through an alias congruent with `uva`.
pub async fn clear_user_page_asm(k: &Kernel, cpu: CpuId, page: Pfn, uva: VirtAddr) {
    let a = map(k, cpu, uva, page, None).await;
    k.clear_page_via(cpu, a).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_is_congruent_with_the_user_address() {
        let uva = VirtAddr(0x0123_4567);
        let a = alias_addr(uva, false);
        assert_eq!(a.colour(SHM_COLOUR), uva.page_base().colour(SHM_COLOUR));
        assert!(a.in_tmpalias_window());
        let f = alias_addr(uva, true);
        assert_eq!(f.0 - a.0, SHM_COLOUR);
        assert!(f.in_tmpalias_window());
        assert_eq!(alias_addr(VirtAddr(0), false).0, TMPALIAS_MAP_START);
    }
}
