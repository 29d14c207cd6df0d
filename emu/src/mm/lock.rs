//! Kernel locks, and interrupts off. Acquiring a lock is a micro-step; a CPU that finds it
//! held blocks (the executor does not run it) until it is released.

use crate::addr::{CpuId, Pfn};
use crate::mm::types::{AnonId, FileId, MmId, PageFlags};
use crate::mm::{Action, Kernel};

/// A lock of the memory manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockId {
    /// `i_rwsem` (inode lock) of a file: serialises `write(2)` and `truncate`.
    Inode(FileId),
    /// `mmap_sem` of an mm (a read-write semaphore).
    MmapSem(MmId),
    /// The page-table lock of an mm.
    Ptl(MmId),
    /// `i_mmap_lock` of a file: guards its `i_mmap` list for rmap walks and VMA changes.
    IMmap(FileId),
    /// `flush_dcache_mmap_lock` of a file (`tree_lock`): guards `i_mmap` for
    /// `flush_dcache_page`, which takes only this one.
    FlushDcacheMmap(FileId),
    /// The lock of an `anon_vma`.
    AnonVma(AnonId),
    /// `PG_locked` of a page.
    Page(Pfn),
    /// `pa_dbit_lock`: serialises the dirty-bit trap handler with PTE updates.
    PaDbit,
    /// The driver lock that serialises harvests of a file's dirty log (the external lock
    /// of [`crate::arch::CleanMode::ExternalLock`]).
    DirtyLog(FileId),
    /// Interrupts disabled on a CPU (`local_irq_save`). Held exclusively by that CPU's
    /// lockless page-table walker; a CPU that must wait for the walker to finish (the IPI of
    /// `tlb_remove_table_sync_one`) takes and releases it.
    Irq(CpuId),
    /// `_PAGE_BUSY` of the PTE of a page of an mm (by virtual page number): held by
    /// `hash_page` between its compare-and-swap and its insert; PTE updaters wait for it.
    PteBusy(MmId, u64),
}

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Readers (`MmapSem`, and `IMmap` by dirty-log cleans).
    Shared,
    /// One holder.
    Exclusive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    id: LockId,
    cpu: CpuId,
    mode: LockMode,
}

/// The locks currently held. Few at a time, so a vector.
#[derive(Clone, Debug, Default)]
pub struct LockTable {
    held: Vec<Held>,
}

impl LockTable {
    /// Could `mode` be granted on `id` now?
    pub fn available(&self, id: LockId, mode: LockMode) -> bool {
        self.held
            .iter()
            .filter(|h| h.id == id)
            .all(|h| mode == LockMode::Shared && h.mode == LockMode::Shared)
    }

    /// Takes `id` for `cpu` if available.
    pub fn try_acquire(&mut self, id: LockId, cpu: CpuId, mode: LockMode) -> bool {
        if self.available(id, mode) {
            self.held.push(Held { id, cpu, mode });
            true
        } else {
            false
        }
    }

    /// Releases one hold of `id` by `cpu`. Panics if `cpu` does not hold it (a core bug).
    pub fn release(&mut self, id: LockId, cpu: CpuId) {
        let i = self
            .held
            .iter()
            .rposition(|h| h.id == id && h.cpu == cpu)
            .unwrap_or_else(|| panic!("{cpu:?} releases {id:?} it does not hold"));
        self.held.remove(i);
    }

    /// Does `cpu` hold `id`?
    pub fn holds(&self, id: LockId, cpu: CpuId) -> bool {
        self.held.iter().any(|h| h.id == id && h.cpu == cpu)
    }

    /// Is anything held by `cpu`?
    pub fn any_held_by(&self, cpu: CpuId) -> bool {
        self.held.iter().any(|h| h.cpu == cpu)
    }
}

impl Kernel {
    /// Takes `id` exclusively, blocking while it is held.
    pub async fn lock(&self, cpu: CpuId, id: LockId) {
        self.lock_mode(cpu, id, LockMode::Exclusive).await
    }

    /// Takes `id` in `mode`, blocking while incompatible holders exist.
    pub async fn lock_mode(&self, cpu: CpuId, id: LockId, mode: LockMode) {
        let slot = &self.slots[cpu.index()];
        loop {
            self.step(cpu, Action::Lock(id)).await;
            if self.s.borrow_mut().locks.try_acquire(id, cpu, mode) {
                slot.blocked.set(None);
                if let LockId::Page(p) = id {
                    self.s.borrow_mut().pages[p.index()].flags.insert(PageFlags::LOCKED);
                }
                return;
            }
            slot.blocked.set(Some((id, mode)));
        }
    }

    /// Takes `id` if free; never blocks (`trylock_page`).
    pub async fn trylock(&self, cpu: CpuId, id: LockId) -> bool {
        self.step(cpu, Action::Lock(id)).await;
        let ok = self.s.borrow_mut().locks.try_acquire(id, cpu, LockMode::Exclusive);
        if ok && let LockId::Page(p) = id {
            self.s.borrow_mut().pages[p.index()].flags.insert(PageFlags::LOCKED);
        }
        ok
    }

    /// Releases `id` (not a preemption point).
    pub fn unlock(&self, cpu: CpuId, id: LockId) {
        let mut s = self.s.borrow_mut();
        s.locks.release(id, cpu);
        if let LockId::Page(p) = id {
            s.pages[p.index()].flags.remove(PageFlags::LOCKED);
        }
    }
    /// `local_irq_save` for a lockless page-table walk: from now on `cpu` takes no IPI until
    /// [`Kernel::local_irq_restore`] (a CPU waiting for it blocks on [`LockId::Irq`]).
    pub async fn local_irq_save(&self, cpu: CpuId) {
        self.lock(cpu, LockId::Irq(cpu)).await;
    }

    /// `local_irq_restore` at the end of a lockless walk: the walk reads no table any more.
    pub fn local_irq_restore(&self, cpu: CpuId) {
        self.set_walker(cpu, None);
        self.unlock(cpu, LockId::Irq(cpu));
    }

    /// `tlb_remove_table_sync_one`: an IPI to every other CPU, waiting for each to take it,
    /// which a CPU inside a lockless walk (interrupts off) does only once the walk is over.
    /// Steps only for the CPUs that are inside a walk now.
    pub async fn sync_lockless_walkers(&self, cpu: CpuId) {
        for t in 0..self.ncpus() {
            let t = CpuId(t as u8);
            if t != cpu && self.in_lockless_walk(t) {
                self.lock(cpu, LockId::Irq(t)).await;
                self.unlock(cpu, LockId::Irq(t));
            }
        }
    }
}
