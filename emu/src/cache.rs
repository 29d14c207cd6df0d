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
    /// `sets * ways * words_per_line` words, in the same order as `meta`.
    data: Vec<u64>,
    /// One bit per set, set whenever a line of the set may have become valid (every
    /// [`DCache::meta_mut`] marks its set) and cleared only by [`DCache::next_occupied`] once
    /// it finds the set empty: a superset of the sets holding a valid line, so that a search
    /// for the next occupied set skips 64 empty sets per word.
    maybe_occupied: Vec<u64>,
}

impl DCache {
    /// An empty (all invalid) cache.
    pub fn new(sets: usize, ways: usize, words_per_line: usize) -> Self {
        DCache {
            sets,
            ways,
            words_per_line,
            meta: vec![LineMeta::default(); sets * ways],
            data: vec![0; sets * ways * words_per_line],
            maybe_occupied: vec![0; sets.div_ceil(64)],
        }
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
        let base = set * self.ways;
        self.meta[base..base + self.ways].iter().position(|m| m.valid && m.tag == tag && m.alias == alias)
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

    /// Mutable metadata of a line.
    pub fn meta_mut(&mut self, set: usize, way: usize) -> &mut LineMeta {
        self.maybe_occupied[set / 64] |= 1 << (set % 64);
        let s = self.slot(set, way);
        &mut self.meta[s]
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
        let mut c = DCache::new(200, 2, 4);
        assert_eq!(c.next_occupied(0), None);
        for set in [3, 64, 65, 130, 199] {
            *c.meta_mut(set, 1) = LineMeta { valid: true, tag: 9, ..LineMeta::default() };
        }
        // Touched but left invalid: marked, and found empty.
        c.meta_mut(100, 0).dirty = false;
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(s) = c.next_occupied(from) {
            found.push(s);
            from = s + 1;
        }
        assert_eq!(found, [3, 64, 65, 130, 199]);
        *c.meta_mut(64, 1) = LineMeta::default();
        assert_eq!(c.next_occupied(4), Some(65));
        assert_eq!(c.next_occupied(66), Some(130));
        assert_eq!(c.next_occupied(200), None);
    }
}
