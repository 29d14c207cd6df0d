//! The monitor: observations for the oracle, and the kernel's invariants checked at the step
//! where they can break.
//!
//! Observations ([`Obs`]) are stamped with the current micro-step in one place,
//! [`Kernel::observe`], and kept until the harness drains them. The invariant checks are
//! called by the layers that can break them:
//!
//! | invariant | checked by | reported as |
//! |---|---|---|
//! | `_PAGE_DIRTY` is newly set only on a present PTE that permits a user write | every PTE write (`Kernel::pte_written`) | [`Obs::DirtyWithoutWrite`] |
//! | a new private page becomes visible at the PTE write that maps it | every PTE write, against the CPU's [`PendingInstall`] | [`Obs::Installed`] |
//! | a lockless PTE store brings no cleared PTE back and undoes no later change | `Kernel::lockless_store_checked` | [`Obs::PteResurrected`], [`Obs::PteUpdateLost`] |
//! | a translation is inserted only for a present PTE of the same page | `Kernel::check_insert` | [`Obs::InsertNonPresent`] |
//! | after an `mmu_gather` flush no CPU translates a PTE it cleared | `Kernel::check_gather_flushed` | [`Obs::StaleTlb`] |
//! | no frame is freed while a TLB entry or a lockless walker can reach it | [`Kernel::put_page`] → `Kernel::check_unreachable` | [`Obs::FreedReachable`] |
//!
//! The monitor also keeps, per CPU, which page-table page a lockless walker may be reading
//! (for the last check) and what an `mmu_gather`'s flush purged (for the flush counters).

use crate::addr::{CpuId, Pfn, VirtAddr};
use crate::mm::{Kernel, MmId, Obs, Observation};
use crate::pte::{Pte, PteFlags, PteKind};

/// A new private page (a COW copy or a zero-filled anonymous page) announced for `(mm, va)`
/// by its CPU: the PTE write that maps it, whichever step of whichever routine performs it,
/// emits [`Obs::Installed`]. The announcement must be settled — [`PendingInstall::finish`]
/// once the install happened, [`PendingInstall::cancel`] if it was abandoned — before the CPU
/// announces another.
#[must_use = "an announced install must be finished or cancelled"]
#[derive(Debug)]
pub struct PendingInstall {
    cpu: CpuId,
    settled: bool,
}

impl PendingInstall {
    /// The install happened: emits the observation now if no PTE write emitted it (a routine
    /// that never wrote the PTE through the core's PTE primitives).
    pub fn finish(mut self, k: &Kernel) {
        self.settled = true;
        if let Some((mm, va, new)) = k.slots[self.cpu.index()].pending_install.take() {
            k.observe(Obs::Installed { cpu: self.cpu, mm, va, new });
        }
    }

    /// The install lost a race and was abandoned: forgets it.
    pub fn cancel(mut self, k: &Kernel) {
        self.settled = true;
        k.slots[self.cpu.index()].pending_install.set(None);
    }

    /// [`PendingInstall::finish`] if `installed`, else [`PendingInstall::cancel`].
    pub fn settle(self, k: &Kernel, installed: bool) {
        if installed { self.finish(k) } else { self.cancel(k) }
    }
}

impl Drop for PendingInstall {
    fn drop(&mut self) {
        if !std::thread::panicking() && !crate::mm::exec::abandoning() {
            debug_assert!(self.settled, "an announced install was neither finished nor cancelled");
        }
    }
}

impl Kernel {
    // ----- observations -----------------------------------------------------------------

    /// Starts recording observations.
    pub fn record_observations(&self) {
        self.obs.borrow_mut().get_or_insert_with(Vec::new);
    }

    /// Takes the observations recorded since the last call (recording goes on).
    #[inline]
    pub fn drain_observations(&self, into: &mut Vec<Observation>) {
        if let Some(v) = self.obs.borrow_mut().as_mut()
            && !v.is_empty()
        {
            into.append(v);
        }
    }

    /// Records `obs`, stamped with the current micro-step, if recording.
    pub fn observe(&self, obs: Obs) {
        let step = self.now();
        if let Some(v) = self.obs.borrow_mut().as_mut() {
            v.push(Observation { step, obs });
        }
    }

    // ----- PTE invariants ---------------------------------------------------------------

    /// Announces that `new` is about to be mapped at `va` of `mm` by `cpu` (see
    /// [`PendingInstall`]).
    pub fn expect_install(&self, cpu: CpuId, mm: MmId, va: VirtAddr, new: Pfn) -> PendingInstall {
        let slot = &self.slots[cpu.index()].pending_install;
        debug_assert!(slot.get().is_none(), "{cpu:?} announced an install while one is pending");
        slot.set(Some((mm, va.page_base(), new)));
        PendingInstall { cpu, settled: false }
    }

    /// Called by every atomic PTE write ([`Kernel::update_pte`] and the writes built on it):
    /// the dirty invariant, and the install a pending announcement of `cpu` waits for. A
    /// write inside a protection change of this CPU's (between `ptep_modify_prot_start` and
    /// its commit) is judged against the value the start took, not the cleared PTE between.
    pub(crate) fn pte_written(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) {
        let before = match self.slots[cpu.index()].modifying.get() {
            Some((m, v, taken)) if (m, v) == (mm, va.page_base()) => taken,
            _ => old,
        };
        self.check_dirty(cpu, mm, va, before, new);
        self.sit_pte_written(cpu, old);
        let slot = &self.slots[cpu.index()].pending_install;
        if let Some((m, v, page)) = slot.get()
            && (m, v) == (mm, va.page_base())
            && self.layout.pte_present(new)
            && new.raw_pfn() == page
        {
            slot.set(None);
            self.observe(Obs::Installed { cpu, mm, va: v, new: page });
        }
    }

    /// `ptep_modify_prot_start` of `cpu` took `taken` from the PTE of `va` of `mm`: until
    /// [`Kernel::end_pte_modification`], this CPU's writes to it are the commit.
    pub(crate) fn begin_pte_modification(&self, cpu: CpuId, mm: MmId, va: VirtAddr, taken: Pte) {
        self.slots[cpu.index()].modifying.set(Some((mm, va.page_base(), taken)));
    }

    /// The commit of `cpu`'s protection change is done.
    pub(crate) fn end_pte_modification(&self, cpu: CpuId) {
        self.slots[cpu.index()].modifying.set(None);
    }

    /// The invariant: `_PAGE_DIRTY` is only ever newly set on a present PTE that permits a
    /// user write (`_PAGE_WRITE` and `_PAGE_USER`).
    pub(crate) fn check_dirty(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) {
        if self.layout.pte_present(new)
            && new.has(PteFlags::DIRTY)
            && !new.has(PteFlags::WRITE | PteFlags::USER)
            && !old.has(PteFlags::DIRTY)
        {
            self.observe(Obs::DirtyWithoutWrite { cpu, mm, va });
        }
    }

    /// A lockless store replaced `old` by `new`, computed from `read`: it must not make
    /// present a PTE that is not present now, nor map again a page the PTE no longer maps (a
    /// cleared or replaced PTE brought back to life, [`Obs::PteResurrected`]); nor overwrite
    /// a change made since `read` (a lost update, [`Obs::PteUpdateLost`]). The dirty
    /// invariant holds too.
    pub(crate) fn lockless_store_checked(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, read: Pte, old: Pte, new: Pte,
    ) {
        let present = |p: Pte| self.layout.pte_present(p);
        if present(new) && (!present(old) || old.raw_pfn() != new.raw_pfn()) {
            self.observe(Obs::PteResurrected { cpu, mm, va });
        } else if old != read {
            self.observe(Obs::PteUpdateLost { cpu, mm, va });
        }
        self.check_dirty(cpu, mm, va, old, new);
    }

    /// A translation built from `pte` is being inserted for `va` of `mm`: the PTE must be
    /// present and map the same page now ([`Obs::InsertNonPresent`]).
    pub(crate) fn check_insert(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pfn: Pfn) {
        let now = self.peek_pte(mm, va);
        let still = matches!(self.layout.decode(now), PteKind::Present { pfn: p, .. } if p == pfn);
        if !still {
            self.observe(Obs::InsertNonPresent { cpu, mm, va });
        }
    }

    // ----- reachability -----------------------------------------------------------------

    /// An `mmu_gather`'s flush by `cpu` is over: no CPU may still translate any `(va, pfn)`
    /// whose PTE in `mm` it cleared ([`Obs::StaleTlb`]).
    pub(crate) fn check_gather_flushed(&self, cpu: CpuId, mm: MmId, cleared: &[(VirtAddr, Pfn)]) {
        if cleared.is_empty() {
            return;
        }
        let space = self.mm_space(mm);
        for &(va, pfn) in cleared {
            let holder = self.machine().tlb_translates(space, va, pfn);
            if let Some(holder) = holder {
                self.observe(Obs::StaleTlb { cpu, mm, va, pfn, holder });
            }
        }
    }

    /// The invariant of freeing (rule 2 of [`crate::arch::ArchHooks`]): no CPU can reach a
    /// frame that is freed, neither through a TLB entry of a user space nor from inside a
    /// lockless page-table walk ([`Obs::FreedReachable`]).
    pub(crate) fn check_unreachable(&self, pfn: Pfn, table: bool) {
        let holder = self.machine().tlb_holder(pfn).map(|c| (c, false)).or_else(|| {
            self.slots.iter().position(|sl| sl.walker.get() == Some(pfn)).map(|i| (CpuId(i as u8), true))
        });
        if let Some((holder, walker)) = holder {
            let cpu = self.running.get();
            self.observe(Obs::FreedReachable { cpu, pfn, table, holder, walker });
        }
    }

    /// Sets or clears the page-table page `cpu`'s lockless walk may read.
    pub fn set_walker(&self, cpu: CpuId, table: Option<Pfn>) {
        self.slots[cpu.index()].walker.set(table);
    }

    /// Is `cpu` inside a lockless page-table walk?
    pub fn in_lockless_walk(&self, cpu: CpuId) -> bool {
        self.slots[cpu.index()].walker.get().is_some()
    }

    // ----- flush accounting -------------------------------------------------------------

    /// Starts (`true`) or ends recording what `cpu`'s TLB purges are, for an `mmu_gather`'s
    /// flush; returns what was purged since the start: `(whole mm or more, a range)`.
    pub(crate) fn record_gather_flush(&self, cpu: CpuId, start: bool) -> (bool, bool) {
        let slot = &self.slots[cpu.index()].gather_flush;
        let was = slot.get().unwrap_or((false, false));
        slot.set(start.then_some((false, false)));
        was
    }

    /// A TLB purge by `cpu`, of a whole space or more (`whole`) or of one page.
    pub(crate) fn note_purge(&self, cpu: CpuId, whole: bool) {
        let slot = &self.slots[cpu.index()].gather_flush;
        if let Some((mm, range)) = slot.get() {
            slot.set(Some((mm || whole, range || !whole)));
        }
    }
}
