//! One CPU's software-managed, fully associative TLB.

use arrayvec::ArrayVec;

use crate::addr::{Pfn, SpaceId, Vpn};

/// The most entries any preset's TLB has.
pub const MAX_TLB_ENTRIES: usize = 512;

bitflags::bitflags! {
    /// Access rights a TLB entry grants to loads and stores.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u8 {
        /// Loads allowed.
        const READ = 1;
        /// Stores allowed (subject to the D bit).
        const WRITE = 2;
        /// Instruction fetch allowed.
        const EXEC = 4;
        /// User-mode (privilege level 3) accesses allowed.
        const USER = 8;
    }
}

/// A translation cached by a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Space of the virtual page.
    pub space: SpaceId,
    /// Virtual page.
    pub vpn: Vpn,
    /// Physical frame it translates to.
    pub pfn: Pfn,
    /// Rights for loads and stores.
    pub rights: Rights,
    /// The D bit: a store through an entry with `dirty == false` traps to the dirty-bit handler.
    pub dirty: bool,
    /// Flush-only translation (T bit / promote-only rights): usable by `fdc`/`pdc` only; no
    /// load, store or data move-in goes through it.
    pub flush_only: bool,
}

impl TlbEntry {
    /// May the CPU speculatively move lines of this page into its cache?
    pub fn allows_move_in(&self) -> bool {
        !self.flush_only && self.rights.contains(Rights::READ)
    }
}

/// A TLB. Stale entries keep working until purged: nothing here looks at page tables.
#[derive(Clone, Debug)]
pub struct Tlb {
    capacity: usize,
    entries: ArrayVec<TlbEntry, MAX_TLB_ENTRIES>,
    /// Index of the last entry that hit, tried first (a one-entry micro-TLB; not a semantic
    /// part of the model).
    last: usize,
}

impl Tlb {
    /// An empty TLB with room for `capacity` entries (≤ [`MAX_TLB_ENTRIES`]).
    pub fn new(capacity: usize) -> Self {
        assert!((1..=MAX_TLB_ENTRIES).contains(&capacity));
        Tlb { capacity, entries: ArrayVec::new(), last: 0 }
    }

    /// Index of the entry for `(space, vpn)`.
    pub fn lookup(&mut self, space: SpaceId, vpn: Vpn) -> Option<usize> {
        if let Some(e) = self.entries.get(self.last)
            && e.space == space
            && e.vpn == vpn
        {
            return Some(self.last);
        }
        let i = self.entries.iter().position(|e| e.space == space && e.vpn == vpn)?;
        self.last = i;
        Some(i)
    }

    /// The entry at `index`.
    pub fn entry(&self, index: usize) -> &TlbEntry {
        &self.entries[index]
    }

    /// All entries.
    pub fn entries(&self) -> &[TlbEntry] {
        &self.entries
    }

    /// Is the TLB full?
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Inserts `e`, replacing the entry for the same page if any, else the entry at `victim`
    /// when full (the caller draws `victim` in `0..capacity`).
    pub fn insert(&mut self, e: TlbEntry, victim: usize) {
        if let Some(i) = self.lookup(e.space, e.vpn) {
            self.entries[i] = e;
        } else if self.is_full() {
            self.entries[victim] = e;
            self.last = victim;
        } else {
            self.entries.push(e);
            self.last = self.entries.len() - 1;
        }
    }

    /// Removes the entry for `(space, vpn)`; true if there was one.
    pub fn purge(&mut self, space: SpaceId, vpn: Vpn) -> bool {
        match self.lookup(space, vpn) {
            Some(i) => {
                self.entries.swap_remove(i);
                self.last = 0;
                true
            }
            None => false,
        }
    }

    /// Removes every entry of `space`.
    pub fn purge_space(&mut self, space: SpaceId) {
        self.entries.retain(|e| e.space != space);
        self.last = 0;
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.last = 0;
    }
}
