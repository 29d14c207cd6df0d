//! The software TLB miss handlers of `entry.S`: the data miss handler for loads and stores
//! (`dtlb_miss`) and the non-access handler for flush instructions (`nadtlb_miss`).
//!
//! A miss is handled inside the instruction that takes it (walk, insert, set `_PAGE_ACCESSED`),
//! as the real handlers run with interruptions off. Both handlers walk the page table of the
//! faulting space with [`Machine::walk`], the one walker the memory manager uses too, and build
//! their entries with the constructors below, so a translation means the same thing whichever
//! handler made it.

use crate::addr::{CpuId, PhysAddr, SpaceId, VirtAddr, Vpn};
use crate::choice::ChoiceKind;
use crate::machine::tmpalias;
use crate::machine::{Machine, Trap, rights_of};
use crate::pgtable::PteSlot;
use crate::pte::{Pte, PteFlags, PteKind};
use crate::tlb::{Rights, TlbEntry};
use crate::trace::What;

/// Which handler is building a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handler {
    /// `dtlb_miss`: a load or store.
    Access,
    /// `nadtlb_miss`: `fdc`, `pdc` (and `lpa`, `probe`).
    NonAccess,
}

/// The translation of a present user PTE. With software young/dirty (`clean_read_only`) a
/// clean page is mapped without write rights, so its first store faults.
fn pte_entry(
    space: SpaceId, vpn: Vpn, pfn: crate::addr::Pfn, flags: PteFlags, clean_read_only: bool,
) -> TlbEntry {
    let mut rights = rights_of(flags);
    if clean_read_only && !flags.contains(PteFlags::DIRTY) {
        rights.remove(Rights::WRITE);
    }
    TlbEntry { space, vpn, pfn, rights, dirty: flags.contains(PteFlags::DIRTY), flush_only: false }
}

/// A flush-only translation (T bit / promote-only rights): usable by flush instructions only.
fn flush_only_entry(space: SpaceId, vpn: Vpn, pfn: crate::addr::Pfn) -> TlbEntry {
    TlbEntry { space, vpn, pfn, rights: Rights::empty(), dirty: false, flush_only: true }
}

impl Machine {
    /// The one page-table walker: where the PTE of `va` in `space` lives, if the space has a
    /// page table and its PTE page exists.
    pub fn walk(&self, space: SpaceId, va: VirtAddr) -> Option<PteSlot> {
        self.pt.walk(self.space_root(space)?, va)
    }

    fn tlb_insert(&mut self, cpu: CpuId, e: TlbEntry) {
        let victim = if self.cpus[cpu.index()].tlb.is_full() {
            self.choose(ChoiceKind::TlbVictim, self.cfg.tlb_entries as u32) as usize
        } else {
            0
        };
        self.cpus[cpu.index()].tlb.insert(e, victim);
        if self.trace.is_some() {
            let va = e.vpn.addr();
            self.ev(
                cpu,
                What::TlbInsert { space: e.space, va, pfn: e.pfn, flush_only: e.flush_only, dirty: e.dirty },
            );
        }
    }

    /// A kernel-space translation: the tmpalias window from the CPU's registers (if the era's
    /// handler serves this kind of miss there), else the linear map of an existing frame.
    fn kernel_entry(&self, cpu: CpuId, va: VirtAddr, handler: Handler) -> Option<TlbEntry> {
        let (space, vpn) = (SpaceId::KERNEL, va.vpn());
        if tmpalias::in_window(va) {
            let served = match handler {
                Handler::Access => self.policy.tmpalias_data,
                Handler::NonAccess => self.policy.tmpalias_nonaccess,
            };
            if !served {
                return None;
            }
            let pfn = self.cpus[cpu.index()].tmpalias.page_for(va)?;
            return Some(match handler {
                Handler::Access => TlbEntry {
                    space,
                    vpn,
                    pfn,
                    rights: Rights::READ | Rights::WRITE,
                    dirty: true,
                    flush_only: false,
                },
                Handler::NonAccess => flush_only_entry(space, vpn, pfn),
            });
        }
        let pa = va.linear_map_phys()?;
        if !self.mem.pfn_valid(pa.pfn()) {
            return None;
        }
        Some(TlbEntry {
            space,
            vpn,
            pfn: pa.pfn(),
            rights: Rights::READ | Rights::WRITE | Rights::EXEC,
            dirty: true,
            flush_only: false,
        })
    }

    /// Sets `_PAGE_ACCESSED` in the PTE at `slot` if it is not set (the handlers' young bit).
    fn mark_accessed(&mut self, slot: PteSlot, pte: Pte, flags: PteFlags) {
        if !flags.contains(PteFlags::ACCESSED) {
            self.pt.set_pte(slot, pte.with_flags(PteFlags::ACCESSED));
        }
    }

    /// The data-TLB miss handler: a translation for a load or store, or a page fault.
    fn access_miss(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, write: bool) -> Option<TlbEntry> {
        self.counters.tlb_misses += 1;
        if space == SpaceId::KERNEL {
            return self.kernel_entry(cpu, va, Handler::Access);
        }
        let slot = self.walk(space, va)?;
        let pte = self.pt.pte(slot);
        match self.policy.layout.decode(pte) {
            PteKind::Present { pfn, flags } if self.mem.pfn_valid(pfn) => {
                if write && !flags.contains(PteFlags::WRITE) {
                    return None;
                }
                let sw = self.policy.sw_young_dirty;
                if sw {
                    if !flags.contains(PteFlags::ACCESSED) || (write && !flags.contains(PteFlags::DIRTY)) {
                        return None;
                    }
                } else {
                    self.mark_accessed(slot, pte, flags);
                }
                Some(pte_entry(space, va.vpn(), pfn, flags, sw))
            }
            _ => None,
        }
    }

    /// Translates a load or store, taking a miss if needed, and checks rights.
    #[inline(always)]
    pub(super) fn translate_access(
        &mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, write: bool,
    ) -> Result<PhysAddr, Trap> {
        let entry = match self.cpus[cpu.index()].tlb.lookup_entry(space, va.vpn()) {
            Some(e) if !e.flush_only => *e,
            _ => self.access_tlb_miss(cpu, space, va, write)?,
        };
        let need = if write { Rights::WRITE } else { Rights::READ };
        let user = space != SpaceId::KERNEL;
        if !entry.rights.contains(need) || (user && !entry.rights.contains(Rights::USER)) {
            self.counters.page_faults += 1;
            return Err(Trap::PageFault { write });
        }
        if write && !entry.dirty {
            self.counters.dbit_traps += 1;
            return Err(Trap::DirtyBit);
        }
        Ok(entry.pfn.phys().add_bytes(va.page_offset()))
    }

    /// [`Machine::translate_access`] without a usable TLB entry: a flush-only translation is
    /// dropped, then the miss is taken (the entry inserted) or trapped.
    #[inline(never)]
    fn access_tlb_miss(
        &mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, write: bool,
    ) -> Result<TlbEntry, Trap> {
        let vpn = va.vpn();
        let tlb = &mut self.cpus[cpu.index()].tlb;
        // A flush-only translation grants no data access: drop it and walk.
        if tlb.lookup(space, vpn).is_some() {
            tlb.purge(space, vpn);
        }
        if self.policy.hash_miss && space != SpaceId::KERNEL {
            self.counters.tlb_misses += 1;
            return Err(Trap::TlbMiss { write });
        }
        let Some(e) = self.access_miss(cpu, space, va, write) else {
            self.counters.page_faults += 1;
            return Err(Trap::PageFault { write });
        };
        self.tlb_insert(cpu, e);
        Ok(e)
    }

    /// Translation for a non-access instruction (`fdc`, `pdc`, `lpa`): TLB, then the
    /// non-access miss handler. `None` means the handler nullifies the instruction.
    #[inline]
    pub fn translate_nonaccess(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Option<PhysAddr> {
        match self.cpus[cpu.index()].tlb.lookup_entry(space, va.vpn()) {
            Some(e) => Some(e.pfn.phys().add_bytes(va.page_offset())),
            None => self.nonaccess_tlb_miss(cpu, space, va),
        }
    }

    /// [`Machine::translate_nonaccess`] without a TLB entry: the non-access miss handler.
    #[inline(never)]
    fn nonaccess_tlb_miss(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Option<PhysAddr> {
        let vpn = va.vpn();
        let off = va.page_offset();
        self.counters.nadtlb_misses += 1;
        let e = if space == SpaceId::KERNEL {
            self.kernel_entry(cpu, va, Handler::NonAccess)?
        } else {
            let slot = self.walk(space, va)?;
            let pte = self.pt.pte(slot);
            match self.policy.layout.decode(pte) {
                PteKind::Present { pfn, flags } if self.mem.pfn_valid(pfn) => {
                    self.mark_accessed(slot, pte, flags);
                    pte_entry(space, vpn, pfn, flags, false)
                }
                PteKind::FlushOnly { pfn, .. } if self.policy.flush_ptes && self.mem.pfn_valid(pfn) => {
                    flush_only_entry(space, vpn, pfn)
                }
                _ => return None,
            }
        };
        self.tlb_insert(cpu, e);
        Some(e.pfn.phys().add_bytes(off))
    }

    /// Inserts a translation of `va` in `space` to `pfn` with the rights and D bit of
    /// `flags` into `cpu`'s TLB (the hash-table insert of a software `hash_page`).
    pub fn insert_translation(
        &mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, pfn: crate::addr::Pfn, flags: PteFlags,
    ) {
        self.tlb_insert(cpu, pte_entry(space, va.vpn(), pfn, flags, false));
    }
}
