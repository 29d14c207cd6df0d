//! Nondeterministic choices.
//!
//! Every choice the machine or the memory manager makes that real hardware or a real kernel
//! would make by timing — which CPU runs next, which way a fill evicts, whether a speculative
//! move-in happens now, where a VMA lands in `i_mmap`, which swap slot is used — is drawn
//! through one [`Chooser`]. A seeded chooser makes a run reproducible bit for bit; the harness
//! wraps it to record, replay, or read the choices from fuzz input.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::addr::CpuId;

/// What a choice is for (recorded with it, so a replay can check it is aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChoiceKind {
    /// Which runnable CPU performs the next micro-step.
    Schedule,
    /// Whether a speculative move-in happens before the next micro-step.
    Speculate,
    /// Which TLB entry and line a speculative move-in fills.
    SpeculateWhere,
    /// Victim way of a D-cache fill into a full set.
    CacheVictim,
    /// Victim slot of a TLB insert into a full TLB.
    TlbVictim,
    /// Position of a new VMA in a file's `i_mmap` list.
    IMmapPos,
    /// Which free swap slot `add_to_swap` takes.
    SwapSlot,
    /// Anything else a workload or scheduler needs.
    Other,
}

/// The source of every nondeterministic choice of a run.
pub trait Chooser {
    /// A number in `0..n` (`n ≥ 1`) for a choice of kind `kind`.
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32;

    /// The CPU that performs the next micro-step, among `runnable` (never empty). The default
    /// draws uniformly through [`Chooser::choose`]; priority schedulers override it.
    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        runnable[self.choose(ChoiceKind::Schedule, runnable.len() as u32) as usize]
    }

    /// Called when a CPU finishes an operation (priority schedulers use it to re-rank).
    fn op_finished(&mut self, _cpu: CpuId) {}

    /// Does this chooser pick the next CPU from what each runnable CPU does next
    /// ([`Chooser::next_cpu_seeing`])? The executor then gathers the pending actions; others
    /// never pay for that.
    fn sees_actions(&self) -> bool {
        false
    }

    /// [`Chooser::next_cpu`] for a chooser that [`Chooser::sees_actions`]: `pending[i]` is the
    /// machine action `runnable[i]` performs when it is run (its next micro-step).
    fn next_cpu_seeing(&mut self, runnable: &[CpuId], _pending: &[crate::mm::Action]) -> CpuId {
        self.next_cpu(runnable)
    }
}

/// Draws every choice from a ChaCha8 generator seeded with one `u64`.
#[derive(Clone, Debug)]
pub struct SeededChooser {
    rng: ChaCha8Rng,
}

impl SeededChooser {
    /// A chooser for `seed`.
    pub fn new(seed: u64) -> Self {
        SeededChooser { rng: ChaCha8Rng::seed_from_u64(seed) }
    }
}

impl Chooser for SeededChooser {
    fn choose(&mut self, _kind: ChoiceKind, n: u32) -> u32 {
        debug_assert!(n >= 1);
        if n <= 1 { 0 } else { self.rng.random_range(0..n) }
    }
}

/// Always takes choice 0: no speculation, first way, first slot, first CPU. Handy for
/// handcrafted deterministic tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstChooser;

impl Chooser for FirstChooser {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        // "Speculate" is a yes/no whose 0 means "yes"; answer no.
        if kind == ChoiceKind::Speculate { n.saturating_sub(1) } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_chooser_is_deterministic_and_in_range() {
        let mut a = SeededChooser::new(42);
        let mut b = SeededChooser::new(42);
        for n in 1..200u32 {
            let x = a.choose(ChoiceKind::Other, n);
            assert!(x < n);
            assert_eq!(x, b.choose(ChoiceKind::Other, n));
        }
        let mut c = SeededChooser::new(43);
        let differs = (0..64).any(|_| a.choose(ChoiceKind::Other, 1000) != c.choose(ChoiceKind::Other, 1000));
        assert!(differs);
    }
}
