//! Architecture primitives: the one-step machine actions of the kernel and its PTE accesses.
//!
//! Each `async` method here is exactly one micro-step (or a fixed loop of them, one per line or
//! per set), performed by the machine when the executor next polls the CPU: a user or kernel
//! access, one line of a page copy, one `fdc`/`pdc`/`fdce`, one TLB purge, one DMA transfer, one
//! PTE read or atomic PTE write. Arch code reaches them through [`crate::arch::ArchCtx`];
//! generic code calls them directly. PTE writes report to the monitor
//! ([`crate::mm::monitor`]), which checks the PTE invariants at the very step of the write.

use std::future::Future;

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SpaceId, VirtAddr, WORDS_PER_PAGE};
use crate::choice::ChoiceKind;
use crate::machine::{FlushOutcome, TmpaliasRegs, Trap};
use crate::mm::hash;
use crate::mm::{Action, Kernel, LockId, LockMode, MmId};
use crate::pgtable::PteSlot;
use crate::pte::Pte;

impl Kernel {
    // ----- PTE access (one step each) ---------------------------------------------------

    /// Where the PTE for `va` of `mm` lives, if its PTE page exists (the page-table walk).
    pub fn pte_slot(&self, mm: MmId, va: VirtAddr) -> Option<PteSlot> {
        let pgd = self.s.borrow().mms[mm.index()].pgd;
        self.m.borrow().pt.walk(pgd, va)
    }

    /// Reads the PTE for `va` of `mm` (`Pte::NONE` without a PTE page).
    pub fn read_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr) -> impl Future<Output = Pte> + '_ {
        self.step_then(cpu, Action::PteRead { mm, va }, move || {
            let pte = self.peek_pte(mm, va);
            self.sit_pte_read(cpu, mm, va, pte);
            pte
        })
    }

    /// The PTE for `va` of `mm`, read without a preemption point (for inspection and for
    /// use right after another step).
    pub fn peek_pte(&self, mm: MmId, va: VirtAddr) -> Pte {
        match self.pte_slot(mm, va) {
            Some(slot) => self.m.borrow().pt.pte(slot),
            None => Pte::NONE,
        }
    }

    /// Writes the PTE for `va` of `mm` (nothing if its PTE page is gone). Waits while
    /// `hash_page` holds the PTE busy.
    pub(crate) async fn write_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte) {
        let old = self.update_pte(cpu, mm, va, |_| pte).await;
        self.sit_plain_pte_store(cpu, mm, va, old, pte);
    }

    /// Atomically exchanges the PTE, returning the old value.
    pub(crate) fn xchg_pte(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, pte: Pte,
    ) -> impl Future<Output = Pte> + '_ {
        self.update_pte(cpu, mm, va, move |_| pte)
    }

    /// Atomically replaces the PTE by `f(old)`, returning the old value. While the PTE is
    /// held busy by `hash_page` ([`crate::mm::hash::PAGE_BUSY`], only on machines with
    /// [`crate::machine::MissPolicy::hash_miss`]) it waits, as `pte_update` spins on
    /// `_PAGE_BUSY`.
    pub(crate) async fn update_pte(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, f: impl FnOnce(Pte) -> Pte,
    ) -> Pte {
        loop {
            self.step(cpu, Action::PteWrite { mm, va }).await;
            let Some(slot) = self.pte_slot(mm, va) else {
                return Pte::NONE;
            };
            let hash = self.m.borrow().policy.hash_miss;
            if hash && self.pte_busy_held(mm, va) {
                let busy = LockId::PteBusy(mm, va.vpn().raw());
                self.lock(cpu, busy).await;
                self.unlock(cpu, busy);
                continue;
            }
            let mut m = self.m.borrow_mut();
            let old = m.pt.pte(slot);
            // Only `hash_page` sets busy; a value derived from a PTE read while it was busy
            // (a copy at fork, a read-modify-write) must not carry the bit.
            let new = if hash { f(old).without_flags(hash::PAGE_BUSY) } else { f(old) };
            m.pt.set_pte(slot, new);
            if m.tracing() {
                let space = self.mm_space(mm);
                m.pte_changed(cpu, space, va, old, new);
            }
            drop(m);
            self.pte_written(cpu, mm, va, old, new);
            return old;
        }
    }

    /// Does a `hash_page` hold the PTE of `va` of `mm` busy now?
    pub fn pte_busy_held(&self, mm: MmId, va: VirtAddr) -> bool {
        !self.s.borrow().locks.available(LockId::PteBusy(mm, va.vpn().raw()), LockMode::Exclusive)
    }

    /// Replaces the PTE by `new` if it still holds `old` (one atomic step, `cmpxchg`);
    /// returns whether it did. Does not wait for `_PAGE_BUSY`: the caller compares against
    /// a value it read.
    pub(crate) async fn cmpxchg_pte(&self, cpu: CpuId, mm: MmId, va: VirtAddr, old: Pte, new: Pte) -> bool {
        self.step(cpu, Action::PteWrite { mm, va }).await;
        let Some(slot) = self.pte_slot(mm, va) else {
            return false;
        };
        let mut m = self.m.borrow_mut();
        if m.pt.pte(slot) != old {
            return false;
        }
        m.pt.set_pte(slot, new);
        if m.tracing() {
            let space = self.mm_space(mm);
            m.pte_changed(cpu, space, va, old, new);
        }
        drop(m);
        self.check_dirty(cpu, mm, va, old, new);
        true
    }

    /// A plain store of `new` to the PTE, computed by a lockless path from `read`, a value it
    /// read earlier (no atomicity with that read, no wait for `_PAGE_BUSY`). The monitor
    /// checks that it brings no cleared PTE back and undoes no later change
    /// ([`Kernel::lockless_store_checked`]).
    pub(crate) async fn store_pte_lockless(&self, cpu: CpuId, mm: MmId, va: VirtAddr, read: Pte, new: Pte) {
        self.step(cpu, Action::PteWrite { mm, va }).await;
        let Some(slot) = self.pte_slot(mm, va) else { return };
        let old = self.m.borrow().pt.pte(slot);
        let mut m = self.m.borrow_mut();
        m.pt.set_pte(slot, new);
        if m.tracing() {
            let space = self.mm_space(mm);
            m.pte_changed(cpu, space, va, old, new);
        }
        drop(m);
        self.lockless_store_checked(cpu, mm, va, read, old, new);
    }

    // ----- machine actions (one step each) ----------------------------------------------

    /// A user load or store by `cpu` in `space` (no fault handling: see [`fault`]).
    pub(crate) fn user_access_raw(
        &self, cpu: CpuId, space: SpaceId, va: VirtAddr, store: Option<u64>,
    ) -> impl Future<Output = Result<u64, Trap>> + '_ {
        self.step_then(cpu, Action::UserAccess { space, va, write: store.is_some() }, move || {
            let mut m = self.m.borrow_mut();
            match store {
                Some(v) => m.store(cpu, space, va, v).map(|()| v),
                None => m.load(cpu, space, va),
            }
        })
    }

    /// A kernel load from `va` (linear map or tmpalias window).
    pub(crate) fn kernel_load(&self, cpu: CpuId, va: VirtAddr) -> impl Future<Output = u64> + '_ {
        self.step_then(cpu, Action::KernelAccess { va, write: false }, move || {
            self.m
                .borrow_mut()
                .load(cpu, SpaceId::KERNEL, va)
                .unwrap_or_else(|t| panic!("kernel load of {va:?} trapped: {t:?}"))
        })
    }

    /// A kernel store to `va`.
    pub(crate) fn kernel_store(&self, cpu: CpuId, va: VirtAddr, value: u64) -> impl Future<Output = ()> + '_ {
        self.step_then(cpu, Action::KernelAccess { va, write: true }, move || {
            self.m
                .borrow_mut()
                .store(cpu, SpaceId::KERNEL, va, value)
                .unwrap_or_else(|t| panic!("kernel store to {va:?} trapped: {t:?}"))
        })
    }

    /// Copies page `from` to page `to` line by line through kernel addresses `from_va` and
    /// `to_va` (linear map or tmpalias), one step per line.
    pub(crate) async fn copy_page_via(&self, cpu: CpuId, to_va: VirtAddr, from_va: VirtAddr) {
        let line = self.m.borrow().config().line_bytes;
        let wpl = self.m.borrow().config().words_per_line();
        // A line's words (a heap buffer keeps the routine's future small).
        let mut buf = vec![0u64; wpl];
        let mut off = 0;
        while off < PAGE_SIZE {
            let to = to_va.add_bytes(off);
            self.step(cpu, Action::CopyLine { to }).await;
            let mut m = self.m.borrow_mut();
            m.load_line(cpu, SpaceId::KERNEL, from_va.add_bytes(off), &mut buf)
                .unwrap_or_else(|t| panic!("kernel copy load trapped: {t:?}"));
            m.store_line(cpu, SpaceId::KERNEL, to, &buf)
                .unwrap_or_else(|t| panic!("kernel copy store trapped: {t:?}"));
            off += line;
        }
    }

    /// Zeroes the page at kernel address `va` line by line, one step per line.
    pub(crate) async fn clear_page_via(&self, cpu: CpuId, va: VirtAddr) {
        let line = self.m.borrow().config().line_bytes;
        let wpl = self.m.borrow().config().words_per_line();
        static ZEROS: [u64; WORDS_PER_PAGE] = [0; WORDS_PER_PAGE];
        let mut off = 0;
        while off < PAGE_SIZE {
            let to = va.add_bytes(off);
            self.step(cpu, Action::CopyLine { to }).await;
            self.m
                .borrow_mut()
                .store_line(cpu, SpaceId::KERNEL, to, &ZEROS[..wpl])
                .unwrap_or_else(|t| panic!("kernel clear trapped: {t:?}"));
            off += line;
        }
    }

    /// `fdc va` in `space`.
    pub(crate) fn fdc(
        &self, cpu: CpuId, space: SpaceId, va: VirtAddr,
    ) -> impl Future<Output = FlushOutcome> + '_ {
        self.step_then(cpu, Action::Fdc { space, va }, move || {
            let o = self.m.borrow_mut().fdc(cpu, space, va);
            self.sit_flushed(
                cpu,
                match o {
                    FlushOutcome::Done { pa } => Some(pa.pfn()),
                    FlushOutcome::Nullified => None,
                },
            );
            o
        })
    }

    /// `pdc va` in `space`.
    pub(crate) fn pdc(
        &self, cpu: CpuId, space: SpaceId, va: VirtAddr,
    ) -> impl Future<Output = FlushOutcome> + '_ {
        self.step_then(cpu, Action::Pdc { space, va }, move || {
            let o = self.m.borrow_mut().pdc(cpu, space, va);
            self.sit_flushed(
                cpu,
                match o {
                    FlushOutcome::Done { pa } => Some(pa.pfn()),
                    FlushOutcome::Nullified => None,
                },
            );
            o
        })
    }

    /// `fdc` over every line of the page at `va` in `space` (`flush_user_dcache_page` /
    /// `flush_kernel_dcache_page`). Returns how many of the flushes were nullified.
    pub(crate) fn flush_page_lines(
        &self, cpu: CpuId, space: SpaceId, va: VirtAddr,
    ) -> impl Future<Output = usize> + '_ {
        self.page_lines(cpu, space, va, false)
    }

    /// `pdc` over every line of the page at `va` in `space`.
    pub(crate) fn purge_page_lines(
        &self, cpu: CpuId, space: SpaceId, va: VirtAddr,
    ) -> impl Future<Output = usize> + '_ {
        self.page_lines(cpu, space, va, true)
    }

    /// The `fdc,m` (or `pdc,m`) loop over a page, one step per line; the nullified count.
    async fn page_lines(&self, cpu: CpuId, space: SpaceId, va: VirtAddr, purge: bool) -> usize {
        let line = self.m.borrow().config().line_bytes;
        let base = va.page_base();
        let mut nullified = 0;
        let mut off = 0;
        while off < PAGE_SIZE {
            let a = base.add_bytes(off);
            let outcome = if purge { self.pdc(cpu, space, a).await } else { self.fdc(cpu, space, a).await };
            if outcome == FlushOutcome::Nullified {
                nullified += 1;
            }
            off += line;
        }
        nullified
    }

    /// Flushes every CPU's whole D-cache (`flush_cache_all`: an IPI to each other CPU, `fdce`
    /// over every set). Each step flushes one set and, in the same step, the run of empty sets
    /// that follows it ([`crate::machine::Machine::fdce_run`]), so a pass over a mostly empty
    /// cache takes a step per occupied set; the counters count every set.
    pub(crate) async fn flush_cache_all(&self, cpu: CpuId) {
        let (ncpus, sets) = {
            let m = self.m.borrow();
            (m.ncpus(), m.config().sets)
        };
        for t in 0..ncpus {
            let target = CpuId(t as u8);
            if target != cpu {
                self.m.borrow_mut().ipi(cpu, target);
            }
            let mut set = 0;
            while set < sets {
                self.step(cpu, Action::Fdce { target, set }).await;
                set = self.m.borrow_mut().fdce_run(cpu, target, set);
            }
        }
    }

    /// Broadcast purge of `(space, va)`.
    pub(crate) async fn purge_tlb(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.note_purge(cpu, false);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb(cpu, space, va);
        self.sit_purged(cpu);
    }

    /// Local purge of `(space, va)`.
    pub(crate) async fn purge_tlb_local(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.note_purge(cpu, false);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb_local(cpu, space, va);
        self.sit_purged(cpu);
    }

    /// Purges every translation of `space` on every CPU.
    pub(crate) async fn purge_tlb_space(&self, cpu: CpuId, space: SpaceId) {
        self.note_purge(cpu, true);
        self.step(cpu, Action::Tlb).await;
        self.m.borrow_mut().purge_tlb_space(cpu, space);
        self.sit_purged(cpu);
    }

    /// Flushes every CPU's whole TLB (IPIs to the others).
    pub(crate) async fn flush_tlb_all_cpus(&self, cpu: CpuId) {
        self.note_purge(cpu, true);
        let n = self.ncpus();
        for t in 0..n {
            let target = CpuId(t as u8);
            self.step(cpu, Action::Tlb).await;
            let mut m = self.m.borrow_mut();
            if target != cpu {
                m.ipi(cpu, target);
            }
            m.flush_tlb_cpu(cpu, target);
        }
        self.sit_purged(cpu);
    }

    /// Sets `cpu`'s tmpalias registers (not a memory action; no step).
    pub(crate) fn set_tmpalias(&self, cpu: CpuId, regs: TmpaliasRegs) {
        self.m.borrow_mut().set_tmpalias(cpu, regs);
    }

    /// DMA of a page from memory into `buf`.
    pub(crate) fn dma_read<'a>(
        &'a self, cpu: CpuId, pfn: Pfn, buf: &'a mut [u64],
    ) -> impl Future<Output = ()> + 'a {
        self.step_then(cpu, Action::Dma(pfn), move || self.m.borrow_mut().dma_read_page(cpu, pfn, buf))
    }

    /// DMA of `buf` into a page of memory.
    pub(crate) fn dma_write<'a>(
        &'a self, cpu: CpuId, pfn: Pfn, buf: &'a [u64],
    ) -> impl Future<Output = ()> + 'a {
        self.step_then(cpu, Action::Dma(pfn), move || self.m.borrow_mut().dma_write_page(cpu, pfn, buf))
    }

    /// Draws a choice from the machine's chooser.
    pub(crate) fn choose(&self, kind: ChoiceKind, n: u32) -> u32 {
        self.m.borrow_mut().choose(kind, n)
    }

    /// Records a note in the machine trace.
    pub(crate) fn note(&self, cpu: CpuId, note: &'static str) {
        self.m.borrow_mut().note(cpu, note);
    }

    /// Is the machine recording its trace? (False while the machine is borrowed elsewhere,
    /// which no routine call does.)
    pub(crate) fn tracing(&self) -> bool {
        self.m.try_borrow().is_ok_and(|m| m.tracing())
    }

    /// Records an arch routine's begin or end in the machine trace.
    pub(crate) fn routine(&self, cpu: CpuId, name: &'static str, begin: bool) {
        if let Ok(mut m) = self.m.try_borrow_mut() {
            m.routine(cpu, name, begin);
        }
    }
}
