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
        let s = self.slot(set, way);
        &mut self.meta[s]
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
