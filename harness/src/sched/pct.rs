//! PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
//! ASPLOS 2010).
//!
//! Each CPU gets a random distinct priority; the highest-priority runnable CPU always runs.
//! At `depth - 1` change points, chosen uniformly among the first `steps` scheduling
//! decisions, the running CPU's priority drops below every initial priority. A bug of depth
//! `d` among `n` CPUs and `k` steps is found with probability at least `1 / (n k^(d-1))`.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vipt_emu::addr::CpuId;
use vipt_emu::choice::{ChoiceKind, Chooser};

/// Default bug depth.
pub const DEFAULT_DEPTH: u32 = 3;
/// Default estimate of scheduling decisions per run.
pub const DEFAULT_STEPS: u64 = 4000;

/// The PCT scheduler.
pub struct Pct {
    rng: ChaCha8Rng,
    /// Priority per CPU (higher runs first). Invariant: distinct values.
    priority: [i64; 8],
    /// Decision indices at which the running CPU is demoted, ascending.
    change_points: Vec<u64>,
    /// Scheduling decisions so far.
    decisions: u64,
    /// Next priority given at a change point (decreasing, below all initial ones).
    next_low: i64,
}

impl Pct {
    /// A PCT scheduler for `seed` with bug depth `depth` over about `steps` decisions.
    pub fn new(seed: u64, depth: u32, steps: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut priority = [0i64; 8];
        let mut order: Vec<i64> = (0..8).collect();
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        for (p, o) in priority.iter_mut().zip(order) {
            *p = 100 + o;
        }
        let mut change_points: Vec<u64> = (1..depth).map(|_| rng.random_range(0..steps.max(1))).collect();
        change_points.sort_unstable();
        Pct { rng, priority, change_points, decisions: 0, next_low: 99 }
    }
}

impl Chooser for Pct {
    fn choose(&mut self, _kind: ChoiceKind, n: u32) -> u32 {
        if n <= 1 { 0 } else { self.rng.random_range(0..n) }
    }

    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        let pick =
            *runnable.iter().max_by_key(|c| self.priority[c.index()]).expect("runnable is never empty");
        while self.change_points.first() == Some(&self.decisions) {
            self.change_points.remove(0);
            self.priority[pick.index()] = self.next_low;
            self.next_low -= 1;
        }
        self.decisions += 1;
        pick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_runs_until_demoted() {
        let mut p = Pct::new(1, 1, 10);
        let cpus = [CpuId(0), CpuId(1), CpuId(2)];
        let first = p.next_cpu(&cpus);
        for _ in 0..50 {
            assert_eq!(p.next_cpu(&cpus), first, "without change points the top CPU always runs");
        }
        let mut q = Pct::new(1, 2, 1);
        let a = q.next_cpu(&cpus);
        let b = q.next_cpu(&cpus);
        assert_ne!(a, b, "a change point at decision 0 demotes the first CPU");
    }
}
