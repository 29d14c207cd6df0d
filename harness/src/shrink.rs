//! Shrinking a reproducer: fewer CPUs, operations, mappings and choices, while a violation
//! of the same class still occurs.

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
}

/// Upper bound on runs, so shrinking always ends quickly.
pub const MAX_RUNS: usize = 4000;

struct Shrinker<'a> {
    lineage: &'a Lineage,
    class: String,
    best: Reproducer,
    runs: usize,
}

impl Shrinker<'_> {
    /// Does `w` with `choices` still show the class? If so it becomes the best.
    fn try_candidate(&mut self, w: Workload, choices: Vec<u32>) -> bool {
        if self.runs >= MAX_RUNS || w.validate(8).is_err() {
            return false;
        }
        self.runs += 1;
        let o = self.best.rerun(self.lineage, &w, choices.clone());
        // The first violation must be of the class: replay checks the first one.
        match o.violations.first() {
            Some(v) if v.class() == self.class => {
                self.best.expect = Expect::of(v);
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
                let mut w = self.best.workload.clone();
                w.programs[p].remove(i);
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
            let mut w = self.best.workload.clone();
            w.maps.remove(i);
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
        while chunk > 0 && self.runs < MAX_RUNS {
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

/// Shrinks `repro` (which must reproduce) with `lineage`. Returns `None` if it does not
/// reproduce to begin with.
pub fn shrink(repro: &Reproducer, lineage: &Lineage) -> Option<ShrinkReport> {
    let o = repro.replay(lineage, false);
    let first = o.violations.first()?;
    let mut s = Shrinker { lineage, class: first.class(), best: repro.clone(), runs: 1 };
    s.best.expect = Expect::of(first);
    loop {
        let mut progress = s.drop_cpus();
        progress |= s.drop_ops();
        progress |= s.drop_maps();
        progress |= s.shorten_choices();
        if !progress || s.runs >= MAX_RUNS {
            break;
        }
    }
    s.best.seed = None;
    Some(ShrinkReport {
        ops: (repro.workload.ops(), s.best.workload.ops()),
        cpus: (repro.workload.cpus, s.best.workload.cpus),
        maps: (repro.workload.maps.len(), s.best.workload.maps.len()),
        choices: (repro.choices.len(), s.best.choices.len()),
        runs: s.runs,
        result: s.best,
    })
}
