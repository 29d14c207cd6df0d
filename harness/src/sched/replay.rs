//! Replaying a recorded choice list.

use vipt_emu::addr::CpuId;
use vipt_emu::choice::{ChoiceKind, Chooser};

use super::default_choice;

/// Answers with the recorded choices in order; out-of-range values are reduced modulo the
/// number of options and an exhausted list falls back to [`default_choice`], so a list
/// edited by the shrinker still drives a well-defined run.
pub struct Replay {
    choices: Vec<u32>,
    pos: usize,
}

impl Replay {
    /// Replays `choices`.
    pub fn new(choices: Vec<u32>) -> Self {
        Replay { choices, pos: 0 }
    }

    fn next(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        let v = match self.choices.get(self.pos) {
            Some(&v) => v % n.max(1),
            None => default_choice(kind, n),
        };
        self.pos += 1;
        v
    }
}

impl Chooser for Replay {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        self.next(kind, n)
    }

    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        runnable[self.next(ChoiceKind::Schedule, runnable.len() as u32) as usize]
    }
}
