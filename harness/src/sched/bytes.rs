//! Choices read from fuzz input.

use vipt_emu::addr::CpuId;
use vipt_emu::choice::{ChoiceKind, Chooser};

use super::default_choice;

/// Takes each choice from the next byte of the input (two bytes when there are more than 256
/// options); when the input runs out, [`default_choice`].
pub struct Bytes {
    data: Vec<u8>,
    pos: usize,
}

impl Bytes {
    /// Choices from `data`.
    pub fn new(data: &[u8]) -> Self {
        Bytes { data: data.to_vec(), pos: 0 }
    }

    fn take(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let width = if n > 256 { 2 } else { 1 };
        if self.pos + width > self.data.len() {
            return default_choice(kind, n);
        }
        let mut v = 0u32;
        for _ in 0..width {
            v = (v << 8) | self.data[self.pos] as u32;
            self.pos += 1;
        }
        v % n
    }
}

impl Chooser for Bytes {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        self.take(kind, n)
    }

    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        runnable[self.take(ChoiceKind::Schedule, runnable.len() as u32) as usize]
    }
}
