//! `hash_page`: a TLB miss handled by kernel code that updates the PTE without the page-table
//! lock (PowerPC's hash MMU), on machines with [`MissPolicy::hash_miss`].
//!
//! The handler reads the PTE, checks the access, marks it accessed (and dirty for a store),
//! records that a translation now exists (`_PAGE_HASHPTE`, so that whoever clears the PTE
//! knows to flush it) and inserts the translation. Other CPUs may clear or change the PTE at
//! any step in between; the page-table lock is not taken. Two versions:
//!
//! * [`HashMode::TwoUpdate`]: two plain read-modify-write updates from one read (first
//!   accessed/dirty, then the hash bit), the access checked only after the first; the
//!   translation inserted from the value read.
//! * [`HashMode::CasLoop`]: one compare-and-swap loop that checks the access first and sets
//!   every bit together with `_PAGE_BUSY`; the translation is inserted while the PTE is busy
//!   (every PTE updater waits for busy to clear: `Kernel::update_pte`), then busy is dropped.
//!
//! Invariants (checked where they can break): a lockless store never makes a cleared
//! PTE present again, nor undoes any other change (`Kernel::store_pte_lockless`,
//! `Obs::PteResurrected`, `Obs::PteUpdateLost`); no translation
//! is inserted for a PTE that is not present ([`Kernel::hash_insert`], `Obs::InsertNonPresent`);
//! `_PAGE_DIRTY` is never set on a PTE that does not permit a user write
//! (`Obs::DirtyWithoutWrite`).
//!
//! [`MissPolicy::hash_miss`]: crate::machine::MissPolicy::hash_miss

use crate::addr::{CpuId, VirtAddr};
use crate::arch::HashMode;
use crate::mm::{Kernel, LockId, MmId};
use crate::pte::{Pte, PteFlags, PteKind};

/// `_PAGE_BUSY`: the PTE is being updated by `hash_page`. The hash lineages borrow PA bit 27
/// (`_PAGE_DMB`), which the parisc model never sets on a user PTE.
pub const PAGE_BUSY: PteFlags = PteFlags::DMB;
/// `_PAGE_HASHPTE`: a translation of this PTE may exist. Borrows PA bit 28 (`_PAGE_GATEWAY`),
/// never set on a user PTE otherwise.
pub const PAGE_HASHPTE: PteFlags = PteFlags::GATEWAY;

/// Retries of the compare-and-swap loop before the miss is handed to the page-fault path.
const MAX_CAS_RETRIES: usize = 64;

/// Does a PTE with `flags` permit a user access (a store when `write`)?
fn permits(flags: PteFlags, write: bool) -> bool {
    flags.contains(PteFlags::USER | PteFlags::READ) && (!write || flags.contains(PteFlags::WRITE))
}

impl Kernel {
    /// The TLB-miss handler for a user access at `va` of `mm`: true if it inserted a
    /// translation (retry the access), false for the page-fault path.
    ///
    /// It runs as an exception handler, with interrupts off: a lockless page-table walker
    /// like `gup_fast` (it holds [`LockId::Irq`] of its CPU and records the table it reads),
    /// so a gather waits for it before freeing that table.
    pub async fn hash_page(&self, cpu: CpuId, mm: MmId, va: VirtAddr, write: bool) -> bool {
        self.local_irq_save(cpu).await;
        let pgd = self.state().mms[mm.index()].pgd;
        let table = self.machine().pt.pmd(pgd, va);
        self.set_walker(cpu, table);
        let inserted = match self.config.hash {
            HashMode::TwoUpdate => self.hash_page_two_update(cpu, mm, va, write).await,
            HashMode::CasLoop => self.hash_page_cas(cpu, mm, va, write).await,
        };
        self.local_irq_restore(cpu);
        inserted
    }

    async fn hash_page_two_update(&self, cpu: CpuId, mm: MmId, va: VirtAddr, write: bool) -> bool {
        let old = self.read_pte(cpu, mm, va).await;
        let PteKind::Present { flags, .. } = self.layout().decode(old) else { return false };
        let mut marked = PteFlags::ACCESSED;
        if write {
            marked |= PteFlags::DIRTY;
        }
        let first = old.with_flags(marked);
        self.store_pte_lockless(cpu, mm, va, old, first).await;
        if !permits(flags, write) {
            return false;
        }
        self.hash_insert(cpu, mm, va, first).await;
        self.store_pte_lockless(cpu, mm, va, first, first.with_flags(PAGE_HASHPTE)).await;
        true
    }

    async fn hash_page_cas(&self, cpu: CpuId, mm: MmId, va: VirtAddr, write: bool) -> bool {
        let busy = LockId::PteBusy(mm, va.vpn().raw());
        for _ in 0..MAX_CAS_RETRIES {
            let old = self.read_pte(cpu, mm, va).await;
            if old.has(PAGE_BUSY) && self.pte_busy_held(mm, va) {
                // Another CPU's hash_page holds it: wait, then read again.
                self.lock(cpu, busy).await;
                self.unlock(cpu, busy);
                continue;
            }
            let PteKind::Present { flags, .. } = self.layout().decode(old) else { return false };
            if !permits(flags, write) {
                return false;
            }
            let mut set = PteFlags::ACCESSED | PAGE_HASHPTE;
            if write {
                set |= PteFlags::DIRTY;
            }
            let new = old.without_flags(PAGE_BUSY).with_flags(set);
            if self.cmpxchg_pte(cpu, mm, va, old, new.with_flags(PAGE_BUSY)).await {
                // Busy is taken in the same step as the swap that set it.
                let took = self.state().locks.try_acquire(busy, cpu, crate::mm::LockMode::Exclusive);
                debug_assert!(took, "a PTE without _PAGE_BUSY has no busy holder");
                self.hash_insert(cpu, mm, va, new).await;
                self.release_pte_busy(cpu, mm, va, new).await;
                return true;
            }
        }
        false
    }

    /// Inserts the translation `pte` of `va` of `mm` into this CPU's TLB (one step). The
    /// invariant checked: the PTE is present and maps the same page now.
    pub async fn hash_insert(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        self.step(cpu, crate::mm::Action::Tlb).await;
        let PteKind::Present { pfn, flags } = self.layout().decode(pte) else { return };
        self.check_insert(cpu, mm, va, pfn);
        let space = self.mm_space(mm);
        self.machine().insert_translation(cpu, space, va, pfn, flags);
    }

    /// Stores `pte` (busy clear) over the PTE this CPU holds busy, and releases it.
    async fn release_pte_busy(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        self.step(cpu, crate::mm::Action::PteWrite { mm, va }).await;
        if let Some(slot) = self.pte_slot(mm, va) {
            let mut m = self.machine();
            let old = m.pt.pte(slot);
            m.pt.set_pte(slot, pte);
            if m.tracing() {
                let space = self.mm_space(mm);
                m.pte_changed(cpu, space, va, old, pte);
            }
        }
        self.unlock(cpu, LockId::PteBusy(mm, va.vpn().raw()));
    }
}
