//! Page-table pages: a two-level table (pgd → PTE pages) per space, and the one walker
//! ([`PageTables::walk`]) that the TLB miss handlers and the memory manager both use. A
//! lockless walker (`gup_fast`) takes the same two levels one step at a time
//! ([`PageTables::pmd`], then [`PageTables::entry`] at [`pte_index`]).
//!
//! Page-table pages are real frames taken from the frame allocator and freed like pages, but
//! their words are kept here rather than in [`crate::memory::Memory`]: the miss handler reads
//! them with absolute (coherent) accesses, and a stale write-back to a recycled frame cannot
//! scramble a live table. Each PTE word is read and written as one atomic action.

use crate::addr::{PAGE_SHIFT, Pfn, VirtAddr};
use crate::pte::Pte;

/// PTEs per PTE page (one page of 8-byte entries).
pub const PTRS_PER_PTE: usize = 512;
/// Bytes of address space one PTE page maps (2 MiB).
pub const PMD_SIZE: u64 = (PTRS_PER_PTE as u64) << PAGE_SHIFT;
/// Entries of the pgd page.
pub const PTRS_PER_PGD: usize = 512;

/// The location of one PTE: its page-table page and the index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PteSlot {
    /// The PTE page.
    pub page: Pfn,
    /// Index within it.
    pub index: usize,
}

/// Storage for every page-table page of the machine.
#[derive(Clone, Debug)]
pub struct PageTables {
    /// Indexed by pfn; `Some` while the frame is a page-table page.
    pages: Vec<Option<Box<[u64]>>>,
}

/// Index of `va` in the pgd.
pub fn pgd_index(va: VirtAddr) -> usize {
    ((va.raw() / PMD_SIZE) as usize) % PTRS_PER_PGD
}

/// Index of `va` in its PTE page.
pub fn pte_index(va: VirtAddr) -> usize {
    (va.raw() >> PAGE_SHIFT) as usize % PTRS_PER_PTE
}

impl PageTables {
    /// Room for `frames` frames, none a page table yet.
    pub fn new(frames: usize) -> Self {
        PageTables { pages: vec![None; frames] }
    }

    /// Makes `pfn` a zeroed page-table page.
    pub fn install(&mut self, pfn: Pfn) {
        self.pages[pfn.index()] = Some(vec![0; PTRS_PER_PTE].into_boxed_slice());
    }

    /// Stops using `pfn` as a page-table page.
    pub fn remove(&mut self, pfn: Pfn) {
        self.pages[pfn.index()] = None;
    }

    /// Is `pfn` currently a page-table page?
    pub fn is_table(&self, pfn: Pfn) -> bool {
        self.pages.get(pfn.index()).is_some_and(Option::is_some)
    }

    /// Raw entry `index` of table page `pfn` (0 if `pfn` is not a table).
    pub fn entry(&self, pfn: Pfn, index: usize) -> u64 {
        self.pages.get(pfn.index()).and_then(|p| p.as_ref()).map_or(0, |p| p[index])
    }

    /// Sets entry `index` of table page `pfn`.
    pub fn set_entry(&mut self, pfn: Pfn, index: usize, value: u64) {
        if let Some(Some(p)) = self.pages.get_mut(pfn.index()) {
            p[index] = value;
        }
    }

    /// The PTE page a pgd entry points to.
    pub fn pmd(&self, pgd: Pfn, va: VirtAddr) -> Option<Pfn> {
        let e = self.entry(pgd, pgd_index(va));
        (e & 1 == 1).then_some(Pfn::new((e >> PAGE_SHIFT) as u32))
    }

    /// Points the pgd entry for `va` at PTE page `pte_page` (or clears it).
    pub fn set_pmd(&mut self, pgd: Pfn, va: VirtAddr, pte_page: Option<Pfn>) {
        let v = pte_page.map_or(0, |p| ((p.raw() as u64) << PAGE_SHIFT) | 1);
        self.set_entry(pgd, pgd_index(va), v);
    }

    /// The walk: where the PTE for `va` lives under `pgd`, if its PTE page exists.
    pub fn walk(&self, pgd: Pfn, va: VirtAddr) -> Option<PteSlot> {
        self.pmd(pgd, va).map(|page| PteSlot { page, index: pte_index(va) })
    }

    /// The PTE at `slot`.
    pub fn pte(&self, slot: PteSlot) -> Pte {
        Pte(self.entry(slot.page, slot.index))
    }

    /// Writes the PTE at `slot`.
    pub fn set_pte(&mut self, slot: PteSlot, pte: Pte) {
        self.set_entry(slot.page, slot.index, pte.0);
    }

    /// The PTE for `va` under `pgd` (`Pte::NONE` without a PTE page).
    pub fn lookup(&self, pgd: Pfn, va: VirtAddr) -> Pte {
        self.walk(pgd, va).map_or(Pte::NONE, |s| self.pte(s))
    }

    /// Does PTE page `pfn` hold only zero entries?
    pub fn is_empty_table(&self, pfn: Pfn) -> bool {
        self.pages.get(pfn.index()).and_then(|p| p.as_ref()).is_none_or(|p| p.iter().all(|&e| e == 0))
    }
}
