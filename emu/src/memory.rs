//! Physical memory: frames of data words, read and written by cache fills, write-backs and DMA.

use crate::addr::{Pfn, PhysAddr, WORD_BYTES, WORDS_PER_PAGE};

/// A frame nobody has written yet reads as zeros.
static ZERO_FRAME: [u64; WORDS_PER_PAGE] = [0; WORDS_PER_PAGE];

/// Physical memory. Never cached itself: the caches sit in front of it. A frame's words are
/// allocated on its first write (a scenario touches few of them), and read as zeros until then.
#[derive(Clone, Debug)]
pub struct Memory {
    frames: Vec<Option<Box<[u64; WORDS_PER_PAGE]>>>,
}

impl Memory {
    /// `frames` zeroed frames.
    pub fn new(frames: usize) -> Self {
        Memory { frames: vec![None; frames] }
    }

    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Does `pfn` name a frame of this memory (`pfn_valid`)?
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        pfn.index() < self.frames()
    }

    fn split(pa: PhysAddr) -> (usize, usize) {
        let w = (pa.raw() / WORD_BYTES) as usize;
        (w / WORDS_PER_PAGE, w % WORDS_PER_PAGE)
    }

    fn frame_words(&self, f: usize) -> &[u64; WORDS_PER_PAGE] {
        self.frames[f].as_deref().unwrap_or(&ZERO_FRAME)
    }

    fn frame_words_mut(&mut self, f: usize) -> &mut [u64; WORDS_PER_PAGE] {
        self.frames[f].get_or_insert_with(|| Box::new([0; WORDS_PER_PAGE]))
    }

    /// The word at `pa`.
    pub fn read(&self, pa: PhysAddr) -> u64 {
        let (f, w) = Self::split(pa);
        self.frame_words(f)[w]
    }

    /// Writes the word at `pa`.
    pub fn write(&mut self, pa: PhysAddr, value: u64) {
        let (f, w) = Self::split(pa);
        self.frame_words_mut(f)[w] = value;
    }

    /// The words starting at `pa` (within one frame: a line or a page).
    pub fn slice(&self, pa: PhysAddr, words: usize) -> &[u64] {
        let (f, w) = Self::split(pa);
        &self.frame_words(f)[w..w + words]
    }

    /// Mutable words starting at `pa` (within one frame).
    pub fn slice_mut(&mut self, pa: PhysAddr, words: usize) -> &mut [u64] {
        let (f, w) = Self::split(pa);
        &mut self.frame_words_mut(f)[w..w + words]
    }

    /// The whole frame.
    pub fn frame(&self, pfn: Pfn) -> &[u64] {
        self.frame_words(pfn.index())
    }

    /// The whole frame, mutably.
    pub fn frame_mut(&mut self, pfn: Pfn) -> &mut [u64] {
        self.frame_words_mut(pfn.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_frames_read_zero_and_writes_stick() {
        let mut m = Memory::new(4);
        let pa = Pfn::new(2).word(7);
        assert_eq!(m.read(pa), 0);
        assert!(m.frame(Pfn::new(3)).iter().all(|&w| w == 0));
        m.write(pa, 9);
        assert_eq!(m.read(pa), 9);
        assert_eq!(m.slice(Pfn::new(2).word(6), 2), &[0, 9]);
        m.slice_mut(Pfn::new(1).word(0), 2).copy_from_slice(&[1, 2]);
        assert_eq!(m.frame(Pfn::new(1))[..3], [1, 2, 0]);
    }
}
