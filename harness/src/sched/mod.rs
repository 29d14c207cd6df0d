//! Schedulers. Each is a [`vipt_emu::choice::Chooser`] (three methods: `choose`, `next_cpu`,
//! `op_finished`), one file per strategy. Every nondeterministic choice of a run — next CPU,
//! cache and TLB victims, speculative move-ins, `i_mmap` positions, swap slots — is drawn
//! through the scheduler, and [`Recorder`] keeps the list so [`Replay`] can re-run it bit for
//! bit.

mod bytes;
mod pct;
mod record;
mod replay;
mod window;

pub use bytes::Bytes;
pub use pct::Pct;
pub use record::{Recorder, Tape};
pub use replay::Replay;
pub use vipt_emu::choice::SeededChooser as Random;
pub use window::Window;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use vipt_emu::choice::{ChoiceKind, Chooser};

/// The scheduler used for a seeded run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// Uniformly random choices.
    #[default]
    Random,
    /// Probabilistic concurrency testing with `depth` priority levels.
    Pct,
    /// Preempts CPUs at the edges of race windows found from their next steps ([`Window`]).
    Window,
    /// Choices read from fuzz input ([`Bytes`]); such runs are replayed from their recorded
    /// choice list, never from a seed (the seed then only picks the workload).
    Fuzz,
}

impl SchedulerKind {
    /// The chooser for `seed`.
    pub fn chooser(self, seed: u64) -> Box<dyn Chooser> {
        match self {
            SchedulerKind::Random | SchedulerKind::Fuzz => Box::new(Random::new(seed)),
            SchedulerKind::Pct => Box::new(Pct::new(seed, pct::DEFAULT_DEPTH, pct::DEFAULT_STEPS)),
            SchedulerKind::Window => Box::new(Window::new(seed)),
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedulerKind::Random => "random",
            SchedulerKind::Pct => "pct",
            SchedulerKind::Window => "window",
            SchedulerKind::Fuzz => "fuzz",
        })
    }
}

impl FromStr for SchedulerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "random" => Ok(SchedulerKind::Random),
            "pct" => Ok(SchedulerKind::Pct),
            "window" => Ok(SchedulerKind::Window),
            _ => Err(format!("unknown scheduler `{s}` (known: random, pct, window)")),
        }
    }
}

/// The choice made when a replayed or byte-driven run has no recorded choice left: the
/// first option, and never a speculative move-in.
pub fn default_choice(kind: ChoiceKind, n: u32) -> u32 {
    if kind == ChoiceKind::Speculate { n.saturating_sub(1) } else { 0 }
}
