//! One CPU's write-back, write-allocate D-cache: sets × ways of lines, each with a valid bit,
//! a dirty bit, a physical tag, the virtual way it was filled through, and its data words.
//!
//! This type is storage only; the coherence protocol (snooping, write-back to memory, flush
//! broadcast) lives in [`crate::machine`], which sees every CPU's cache at once.

/// State of one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMeta {
    /// The line holds data.
    pub valid: bool,
    /// The data differs from memory and must be written back before the line is dropped.
    /// Invariant: `dirty` implies `valid`.
    pub dirty: bool,
    /// Physical line number (`pa / line_bytes`); meaningful only when `valid`.
    pub tag: u64,
    /// Which of the alias boundary's virtual ways the line was filled through (see
    /// [`crate::machine::LineId::alias`]); part of the line's identity with `tag`, so that
    /// aliases not congruent modulo the boundary never share a line. Meaningful only when
    /// `valid`.
    pub alias: u32,
}

/// A D-cache.
#[derive(Clone, Debug)]
pub struct DCache {
    sets: usize,
    ways: usize,
    words_per_line: usize,
    /// `sets * ways` entries, set-major.
    meta: Vec<LineMeta>,
    /// `sets * ways * words_per_line` words, in the same order as `meta`. The words of an
    /// invalid line are never read: a fill overwrites all of them before the line is valid.
    data: Vec<u64>,
    /// One bit per set, set whenever a line of the set may have become valid (every
    /// [`DCache::set_meta`] and [`DCache::set_dirty`] marks its set) and cleared only by
    /// [`DCache::next_occupied`] once it finds the set empty: a superset of the sets holding a
    /// valid line, so that a search for the next occupied set skips 64 empty sets per word.
    maybe_occupied: Vec<u64>,
    /// One bit per set whose metadata may differ from [`LineMeta::default`]: marked like
    /// `maybe_occupied` and cleared only by [`DCache::reset`], which restores exactly these.
    touched: Vec<u64>,
    /// Per physical line number below the machine's memory: how many valid lines of this
    /// cache carry it as their tag. A lookup of a tag held nowhere in the cache is answered
    /// without searching its set; a tag beyond the table is searched for as usual.
    resident: Vec<u16>,
}

impl DCache {
    /// An empty (all invalid) cache for a machine of `tags` physical lines.
    pub fn new(sets: usize, ways: usize, words_per_line: usize, tags: usize) -> Self {
        DCache {
            sets,
            ways,
            words_per_line,
            meta: vec![LineMeta::default(); sets * ways],
            data: vec![0; sets * ways * words_per_line],
            maybe_occupied: vec![0; sets.div_ceil(64)],
            touched: vec![0; sets.div_ceil(64)],
            resident: vec![0; tags],
        }
    }

    /// Is this cache of the given geometry (as [`DCache::new`] takes it)?
    pub fn has_geometry(&self, sets: usize, ways: usize, words_per_line: usize, tags: usize) -> bool {
        (self.sets, self.ways, self.words_per_line, self.resident.len()) == (sets, ways, words_per_line, tags)
    }

    /// Empties the cache: afterwards it is indistinguishable from [`DCache::new`] of its
    /// geometry (the words of its invalid lines aside, which are never read). Costs a pass
    /// over the sets it used, not over the whole cache.
    pub fn reset(&mut self) {
        for word in 0..self.touched.len() {
            let mut bits = std::mem::take(&mut self.touched[word]);
            while bits != 0 {
                let set = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let base = set * self.ways;
                for m in &mut self.meta[base..base + self.ways] {
                    if m.valid
                        && let Some(n) = self.resident.get_mut(m.tag as usize)
                    {
                        *n -= 1;
                    }
                    *m = LineMeta::default();
                }
            }
            self.maybe_occupied[word] = 0;
        }
        debug_assert!(self.resident.iter().all(|&n| n == 0));
    }

    /// Data words of the whole cache.
    pub fn words(&self) -> usize {
        self.data.len()
    }

    /// Number of sets.
    pub fn sets(&self) -> usize {
        self.sets
    }

    /// Ways per set.
    pub fn ways(&self) -> usize {
        self.ways
    }

    fn slot(&self, set: usize, way: usize) -> usize {
        set * self.ways + way
    }

    /// The way of `set` holding physical line `tag` filled through virtual way `alias`, if any.
    pub fn lookup(&self, set: usize, tag: u64, alias: u32) -> Option<usize> {
        if self.resident.get(tag as usize) == Some(&0) {
            return None;
        }
        let base = set * self.ways;
        self.meta[base..base + self.ways].iter().position(|m| m.valid && m.tag == tag && m.alias == alias)
    }

    /// Does any valid line of this cache carry physical line `tag`, whatever its set and
    /// virtual way? (May answer `true` for a tag beyond the machine's memory.)
    pub fn may_hold(&self, tag: u64) -> bool {
        self.resident.get(tag as usize) != Some(&0)
    }

    /// The first invalid way of `set`, if any.
    pub fn free_way(&self, set: usize) -> Option<usize> {
        let base = set * self.ways;
        self.meta[base..base + self.ways].iter().position(|m| !m.valid)
    }

    /// Metadata of a line.
    pub fn meta(&self, set: usize, way: usize) -> LineMeta {
        self.meta[self.slot(set, way)]
    }

    fn mark(&mut self, set: usize) {
        self.maybe_occupied[set / 64] |= 1 << (set % 64);
        self.touched[set / 64] |= 1 << (set % 64);
    }

    /// Replaces the metadata of a line.
    pub fn set_meta(&mut self, set: usize, way: usize, new: LineMeta) {
        self.mark(set);
        let s = self.slot(set, way);
        let old = std::mem::replace(&mut self.meta[s], new);
        if old.valid
            && let Some(n) = self.resident.get_mut(old.tag as usize)
        {
            *n -= 1;
        }
        if new.valid
            && let Some(n) = self.resident.get_mut(new.tag as usize)
        {
            *n += 1;
        }
    }

    /// Sets or clears the dirty bit of a line.
    pub fn set_dirty(&mut self, set: usize, way: usize, dirty: bool) {
        self.mark(set);
        let s = self.slot(set, way);
        self.meta[s].dirty = dirty;
    }

    /// Does `set` hold a valid line?
    pub fn occupied(&self, set: usize) -> bool {
        let base = set * self.ways;
        self.meta[base..base + self.ways].iter().any(|m| m.valid)
    }

    /// The first set at or after `from` that holds a valid line, if any.
    pub fn next_occupied(&mut self, from: usize) -> Option<usize> {
        let mut set = from;
        while set < self.sets {
            let (word, bit) = (set / 64, set % 64);
            let bits = self.maybe_occupied[word] >> bit;
            if bits == 0 {
                set = (word + 1) * 64;
                continue;
            }
            set += bits.trailing_zeros() as usize;
            if set >= self.sets {
                break;
            }
            if self.occupied(set) {
                return Some(set);
            }
            self.maybe_occupied[set / 64] &= !(1 << (set % 64));
            set += 1;
        }
        None
    }

    /// Data words of a line.
    pub fn data(&self, set: usize, way: usize) -> &[u64] {
        let s = self.slot(set, way) * self.words_per_line;
        &self.data[s..s + self.words_per_line]
    }

    /// Word `i` of a line (`i < words_per_line`).
    #[inline]
    pub fn word(&self, set: usize, way: usize, i: usize) -> u64 {
        debug_assert!(i < self.words_per_line);
        self.data[self.slot(set, way) * self.words_per_line + i]
    }

    /// Sets word `i` of a line (`i < words_per_line`).
    #[inline]
    pub fn set_word(&mut self, set: usize, way: usize, i: usize, value: u64) {
        debug_assert!(i < self.words_per_line);
        let s = self.slot(set, way) * self.words_per_line;
        self.data[s + i] = value;
    }

    /// Mutable data words of a line.
    pub fn data_mut(&mut self, set: usize, way: usize) -> &mut [u64] {
        let s = self.slot(set, way) * self.words_per_line;
        &mut self.data[s..s + self.words_per_line]
    }

    /// Count of valid and of dirty lines.
    pub fn occupancy(&self) -> (usize, usize) {
        let valid = self.meta.iter().filter(|m| m.valid).count();
        let dirty = self.meta.iter().filter(|m| m.dirty).count();
        (valid, dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_occupied_finds_every_set_with_a_valid_line_and_no_other() {
        let mut c = DCache::new(200, 2, 4, 16);
        assert_eq!(c.next_occupied(0), None);
        for set in [3, 64, 65, 130, 199] {
            c.set_meta(set, 1, LineMeta { valid: true, tag: 9, ..LineMeta::default() });
        }
        // Touched but left invalid: marked, and found empty.
        c.set_dirty(100, 0, false);
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(s) = c.next_occupied(from) {
            found.push(s);
            from = s + 1;
        }
        assert_eq!(found, [3, 64, 65, 130, 199]);
        c.set_meta(64, 1, LineMeta::default());
        assert_eq!(c.next_occupied(4), Some(65));
        assert_eq!(c.next_occupied(66), Some(130));
        assert_eq!(c.next_occupied(200), None);
    }
    /// A line's metadata drawn from a few tags and ways, so that lines collide.
    fn meta_of(bits: u8) -> LineMeta {
        let valid = bits & 1 != 0;
        LineMeta {
            valid,
            dirty: valid && bits & 2 != 0,
            tag: u64::from(bits >> 2) % 6,
            alias: u32::from(bits >> 5) % 2,
        }
    }

    quickcheck::quickcheck! {
        /// Whatever lines are installed, dirtied and dropped, a lookup answers what a search of
        /// the set answers (the count of resident tags only skips searches that would fail),
        /// tags beyond the table included; and a reset cache is a new one.
        fn lookup_agrees_with_a_search_and_reset_empties(ops: Vec<(u8, u8, u8)>) -> bool {
            // Tags 0..6 are drawn; the table covers 0..4, so tags 4 and 5 take the slow path.
            let mut c = DCache::new(8, 2, 2, 4);
            let agrees = |c: &DCache| {
                (0..8).all(|set| {
                    (0..6u64).all(|tag| {
                        (0..2u32).all(|alias| {
                            let want = (0..2).find(|&w| {
                                let m = c.meta(set, w);
                                m.valid && m.tag == tag && m.alias == alias
                            });
                            c.lookup(set, tag, alias) == want
                        })
                    })
                })
            };
            for &(set, way, bits) in &ops {
                let (set, way) = (set as usize % 8, way as usize % 2);
                if bits & 0x80 != 0 {
                    c.set_dirty(set, way, false);
                } else {
                    c.set_meta(set, way, meta_of(bits));
                }
                if !agrees(&c) {
                    return false;
                }
            }
            c.reset();
            let fresh = DCache::new(8, 2, 2, 4);
            (0..8).all(|set| (0..2).all(|w| c.meta(set, w) == fresh.meta(set, w)))
                && c.next_occupied(0).is_none()
                && c.resident == fresh.resident
                && agrees(&c)
        }
    }
}
