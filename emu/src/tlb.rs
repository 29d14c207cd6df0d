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
    /// A direct-mapped index in front of the search: per hash of `(space, vpn)`, the index
    /// of an entry that had that page when it was recorded. Only a hint — an index is used
    /// only after its entry is checked to be the page looked for, and a miss falls back to the
    /// search — so it never changes an answer (not a semantic part of the model either).
    hint: [u16; HINTS],
}

/// Slots of [`Tlb`]'s direct-mapped hint.
const HINTS: usize = 64;

fn hint_slot(space: SpaceId, vpn: Vpn) -> usize {
    let h = vpn.raw() ^ (u64::from(space.0) << 7) ^ (vpn.raw() >> 6);
    (h as usize) % HINTS
}

impl Tlb {
    /// An empty TLB with room for `capacity` entries (≤ [`MAX_TLB_ENTRIES`]).
    pub fn new(capacity: usize) -> Self {
        assert!((1..=MAX_TLB_ENTRIES).contains(&capacity));
        Tlb { capacity, entries: ArrayVec::new(), last: 0, hint: [0; HINTS] }
    }

    /// Index of the entry for `(space, vpn)`.
    #[inline(always)]
    pub fn lookup(&mut self, space: SpaceId, vpn: Vpn) -> Option<usize> {
        if let Some(e) = self.entries.get(self.last)
            && e.space == space
            && e.vpn == vpn
        {
            return Some(self.last);
        }
        self.lookup_beyond_last(space, vpn)
    }

    /// The entry for `(space, vpn)`, if any ([`Tlb::lookup`]'s entry).
    #[inline(always)]
    pub fn lookup_entry(&mut self, space: SpaceId, vpn: Vpn) -> Option<&TlbEntry> {
        let i = self.lookup(space, vpn)?;
        self.entries.get(i)
    }

    /// [`Tlb::lookup`] once the last entry that hit is not the one: the hint, then the search.
    #[inline(never)]
    fn lookup_beyond_last(&mut self, space: SpaceId, vpn: Vpn) -> Option<usize> {
        let slot = hint_slot(space, vpn);
        let h = self.hint[slot] as usize;
        if let Some(e) = self.entries.get(h)
            && e.space == space
            && e.vpn == vpn
        {
            self.last = h;
            return Some(h);
        }
        let i = self.entries.iter().position(|e| e.space == space && e.vpn == vpn)?;
        self.last = i;
        self.hint[slot] = i as u16;
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
        self.hint[hint_slot(e.space, e.vpn)] = self.last as u16;
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

#[cfg(test)]
mod hint_tests {
    use super::*;
    use quickcheck::quickcheck;

    #[derive(Clone, Debug)]
    enum TlbOp {
        Insert(u8, u8, u8),
        Purge(u8, u8),
        PurgeSpace(u8),
        Clear,
    }

    impl quickcheck::Arbitrary for TlbOp {
        fn arbitrary(g: &mut quickcheck::Gen) -> Self {
            let (space, vpn, victim) = (u8::arbitrary(g) % 3, u8::arbitrary(g) % 40, u8::arbitrary(g));
            match u8::arbitrary(g) % 10 {
                0..=5 => TlbOp::Insert(space, vpn, victim),
                6..=7 => TlbOp::Purge(space, vpn),
                8 => TlbOp::PurgeSpace(space),
                _ => TlbOp::Clear,
            }
        }
    }

    quickcheck! {
        /// Whatever the inserts and purges, a lookup finds exactly the entry a search of every
        /// entry finds: the hint only ever shortens the search.
        fn lookup_agrees_with_a_full_search(ops: Vec<TlbOp>, capacity: u8) -> bool {
            let capacity = (capacity as usize % 20) + 1;
            let mut t = Tlb::new(capacity);
            let entry = |space: u8, vpn: u8| TlbEntry {
                space: SpaceId(space.into()),
                vpn: Vpn::new(vpn.into()),
                pfn: Pfn::new(vpn.into()),
                rights: Rights::READ,
                dirty: false,
                flush_only: false,
            };
            ops.iter().all(|op| {
                match *op {
                    TlbOp::Insert(s, v, victim) => t.insert(entry(s, v), victim as usize % capacity),
                    TlbOp::Purge(s, v) => {
                        t.purge(SpaceId(s.into()), Vpn::new(v.into()));
                    }
                    TlbOp::PurgeSpace(s) => t.purge_space(SpaceId(s.into())),
                    TlbOp::Clear => t.clear(),
                }
                (0..3u32).all(|s| {
                    (0..40u64).all(|v| {
                        let want = t.entries().iter().position(|e| e.space == SpaceId(s) && e.vpn == Vpn::new(v));
                        t.lookup(SpaceId(s), Vpn::new(v)) == want
                    })
                })
            })
        }
    }
}
