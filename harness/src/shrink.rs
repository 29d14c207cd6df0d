//! Shrinking a reproducer: fewer CPUs, operations, mappings and choices, while a violation
//! of the same class still comes first (or, for a run that did not finish, while it still
//! stops the same way with no violation).

use vipt_tmpalias::Lineage;

use crate::repro::{Expect, Reproducer};
use crate::workload::Workload;

/// How a shrink went.
#[derive(Clone, Debug)]
pub struct ShrinkReport {
    /// The minimal reproducer found.
    pub result: Reproducer,
    /// Runs tried.
    pub runs: usize,
    /// Operations before and after.
    pub ops: (usize, usize),
    /// CPUs before and after.
    pub cpus: (u8, u8),
    /// Set-up mappings before and after.
    pub maps: (usize, usize),
    /// Choices before and after.
    pub choices: (usize, usize),
    /// Shrinking stopped because it had used its budget of runs (a smaller reproducer may
    /// exist); otherwise nothing more could be removed.
    pub budget_hit: bool,
}

/// The default bound on runs, so shrinking always ends quickly.
pub const MAX_RUNS: usize = 4000;

struct Shrinker<'a> {
    lineage: &'a Lineage,
    class: String,
    best: Reproducer,
    runs: usize,
    max_runs: usize,
    cpus: usize,
}

impl Shrinker<'_> {
    /// Does `w` with `choices` still show the class? If so it becomes the best.
    fn try_candidate(&mut self, w: Workload, choices: Vec<u32>) -> bool {
        if self.runs >= self.max_runs || w.validate(self.cpus).is_err() {
            return false;
        }
        self.runs += 1;
        let o = self.best.rerun(self.lineage, &w, choices.clone());
        // The first finding must be of the class: replay checks the first one.
        match Expect::of_outcome(&o) {
            Some(e) if e.class == self.class => {
                self.best.expect = e;
                self.best.workload = w;
                self.best.choices = choices;
                true
            }
            _ => false,
        }
    }

    fn drop_cpus(&mut self) -> bool {
        let mut progress = false;
        let mut i = 0;
        while self.best.workload.cpus > 1 && i < self.best.workload.programs.len() {
            let mut w = self.best.workload.clone();
            w.programs.remove(i);
            w.cpus -= 1;
            if self.try_candidate(w, self.best.choices.clone()) {
                progress = true;
            } else {
                i += 1;
            }
        }
        progress
    }

    fn drop_ops(&mut self) -> bool {
        let mut progress = false;
        for p in 0..self.best.workload.programs.len() {
            let mut i = self.best.workload.programs[p].len();
            while i > 0 {
                i -= 1;
                if i >= self.best.workload.programs[p].len() {
                    continue;
                }
                let w = self.best.workload.without_op(p, i);
                if self.try_candidate(w, self.best.choices.clone()) {
                    progress = true;
                }
            }
        }
        progress
    }

    fn drop_maps(&mut self) -> bool {
        let mut progress = false;
        let mut i = self.best.workload.maps.len();
        while i > 0 {
            i -= 1;
            if i >= self.best.workload.maps.len() {
                continue;
            }
            let w = self.best.workload.without_map(i);
            if self.try_candidate(w, self.best.choices.clone()) {
                progress = true;
            }
        }
        progress
    }

    fn shorten_choices(&mut self) -> bool {
        let mut progress = false;
        // Cut the tail (defaults take over), halving the cut until nothing more goes.
        let mut cut = self.best.choices.len() / 2;
        while cut > 0 {
            let n = self.best.choices.len();
            if cut <= n
                && self.try_candidate(self.best.workload.clone(), self.best.choices[..n - cut].to_vec())
            {
                progress = true;
            } else {
                cut /= 2;
            }
        }
        // Zero runs of choices (the first option), in decreasing chunk sizes.
        let mut chunk = self.best.choices.len().next_power_of_two() / 2;
        while chunk > 0 && self.runs < self.max_runs {
            let mut start = 0;
            while start < self.best.choices.len() {
                let end = (start + chunk).min(self.best.choices.len());
                if self.best.choices[start..end].iter().any(|&c| c != 0) {
                    let mut c = self.best.choices.clone();
                    c[start..end].iter_mut().for_each(|x| *x = 0);
                    if self.try_candidate(self.best.workload.clone(), c) {
                        progress = true;
                    }
                }
                start = end;
            }
            chunk /= 2;
        }
        progress
    }
}

/// Shrinks `repro` with `lineage` within [`MAX_RUNS`] runs ([`shrink_within`]).
pub fn shrink(repro: &Reproducer, lineage: &Lineage) -> Option<ShrinkReport> {
    shrink_within(repro, lineage, MAX_RUNS)
}

/// Shrinks `repro` with `lineage`, keeping the class of what its run shows first (a
/// violation, or why it does not finish), trying at most `max_runs` runs. Returns `None` if
/// its run is clean.
pub fn shrink_within(repro: &Reproducer, lineage: &Lineage, max_runs: usize) -> Option<ShrinkReport> {
    let o = repro.replay(lineage, false);
    let first = Expect::of_outcome(&o)?;
    let preset: vipt_emu::config::Preset = repro.preset.parse().unwrap_or(vipt_emu::config::Preset::Tiny);
    let cpus = lineage.preset.unwrap_or(preset).config().cpus;
    let mut s =
        Shrinker { lineage, class: first.class.clone(), best: repro.clone(), runs: 1, max_runs, cpus };
    s.best.expect = first;
    loop {
        let mut progress = s.drop_cpus();
        progress |= s.drop_ops();
        progress |= s.drop_maps();
        progress |= s.shorten_choices();
        if !progress || s.runs >= s.max_runs {
            break;
        }
    }
    s.best.seed = None;
    Some(ShrinkReport {
        ops: (repro.workload.ops(), s.best.workload.ops()),
        cpus: (repro.workload.cpus, s.best.workload.cpus),
        maps: (repro.workload.maps.len(), s.best.workload.maps.len()),
        choices: (repro.choices.len(), s.best.choices.len()),
        budget_hit: s.runs >= s.max_runs,
        runs: s.runs,
        result: s.best,
    })
}
