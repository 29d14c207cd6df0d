//! Physical memory: frames of data words, read and written by cache fills, write-backs and DMA.

use crate::addr::{Pfn, PhysAddr, WORD_BYTES, WORDS_PER_PAGE};

/// Physical memory. Never cached itself: the caches sit in front of it.
#[derive(Clone, Debug)]
pub struct Memory {
    words: Vec<u64>,
}

impl Memory {
    /// `frames` zeroed frames.
    pub fn new(frames: usize) -> Self {
        Memory { words: vec![0; frames * WORDS_PER_PAGE] }
    }

    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.words.len() / WORDS_PER_PAGE
    }

    /// Does `pfn` name a frame of this memory (`pfn_valid`)?
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        pfn.index() < self.frames()
    }

    fn word_index(pa: PhysAddr) -> usize {
        (pa.0 / WORD_BYTES) as usize
    }

    /// The word at `pa`.
    pub fn read(&self, pa: PhysAddr) -> u64 {
        self.words[Self::word_index(pa)]
    }

    /// Writes the word at `pa`.
    pub fn write(&mut self, pa: PhysAddr, value: u64) {
        let i = Self::word_index(pa);
        self.words[i] = value;
    }

    /// The words starting at `pa` (line or page granular).
    pub fn slice(&self, pa: PhysAddr, words: usize) -> &[u64] {
        let i = Self::word_index(pa);
        &self.words[i..i + words]
    }

    /// Mutable words starting at `pa`.
    pub fn slice_mut(&mut self, pa: PhysAddr, words: usize) -> &mut [u64] {
        let i = Self::word_index(pa);
        &mut self.words[i..i + words]
    }

    /// The whole frame.
    pub fn frame(&self, pfn: Pfn) -> &[u64] {
        self.slice(pfn.phys(), WORDS_PER_PAGE)
    }

    /// The whole frame, mutably.
    pub fn frame_mut(&mut self, pfn: Pfn) -> &mut [u64] {
        self.slice_mut(pfn.phys(), WORDS_PER_PAGE)
    }
}
