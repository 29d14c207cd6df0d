//! `hash-*`: lockless PTE updates by a software TLB-miss handler (PowerPC `hash_page`).
//!
//! Not a parisc lineage: the generic routines on the `pipt` machine, with user TLB misses
//! trapping to the kernel's stepped `hash_page` (`vipt_emu::mm::hash`), which updates
//! accessed, dirty and the hash bit of the PTE without the page-table lock while other CPUs
//! unmap, reclaim, COW and `mprotect(PROT_NONE)` the same pages. Each variant is a
//! configuration of [`vipt_emu::arch::GenericHooks`] patched with [`PowerpcPteUpdates`].

use vipt_emu::addr::VirtAddr;
use vipt_emu::arch::{ArchConfig, ArchCtx, ArchHooks, GenericHooks, HashMode, HookFuture, Patch, Patched};
use vipt_emu::machine::MissPolicy;
use vipt_emu::mm::Vma;
use vipt_emu::pte::{Pte, PteFlags};

/// Trapping user misses handled by `hash_page` in `mode`.
const fn hash_page(hash: HashMode) -> ArchConfig {
    ArchConfig { miss: MissPolicy { hash_miss: true, ..MissPolicy::CURRENT }, hash, ..ArchConfig::GENERIC }
}

/// Two plain updates from one read, the access checked after the first. Broken: a stale
/// update resurrects a cleared PTE, a translation is inserted for a PTE no longer present,
/// and a denied store still sets `_PAGE_DIRTY`.
pub const TWO_UPDATE: ArchConfig = hash_page(HashMode::TwoUpdate);
/// The compare-and-swap loop with `_PAGE_BUSY` held across the insert. Correct.
pub const CAS: ArchConfig = hash_page(HashMode::CasLoop);

/// The routines of both variants: the generic ones with PowerPC's own PTE updates.
pub fn hooks() -> Box<dyn ArchHooks> {
    Box::new(Patched::new(Box::new(GenericHooks), PowerpcPteUpdates))
}

/// PowerPC's PTE updaters where they differ from the generic ones. With `hash_page` changing
/// PTEs without the page-table lock, every kernel update of a present PTE is an atomic
/// `pte_update` (a `ldarx`/`stdcx.` loop that spins while `_PAGE_BUSY` is set), never a
/// store of a value read earlier.
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerpcPteUpdates;

impl Patch for PowerpcPteUpdates {
    /// `ptep_set_access_flags` (`arch/powerpc/mm/pgtable.c`, 2.6.x to 6.x): if the PTE differs
    /// from `entry`, `__ptep_set_access_flags` ORs the access bits of `entry` (dirty,
    /// accessed, write, exec) into it with `pte_update(.., clr = 0, set)`, then
    /// `flush_tlb_page`. Bits another CPU set meanwhile (a `hash_page` marking the PTE dirty)
    /// stay set; the generic version's `set_pte_at(entry)` would overwrite them.
    fn ptep_set_access_flags<'a>(
        &'a self, _base: &'a dyn ArchHooks, cx: ArchCtx<'a>, vma: Vma, va: VirtAddr, entry: Pte, _dirty: bool,
    ) -> HookFuture<'a, bool> {
        Box::pin(async move {
            let changed = cx.read_pte(vma.mm, va).await != entry;
            if changed {
                let set =
                    entry.flags() & (PteFlags::DIRTY | PteFlags::ACCESSED | PteFlags::WRITE | PteFlags::EXEC);
                cx.update_pte(vma.mm, va, move |p| p.with_flags(set)).await;
                cx.arch().flush_tlb_page(vma, va).await;
            }
            changed
        })
    }
}
