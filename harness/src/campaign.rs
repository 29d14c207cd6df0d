//! Campaigns: every seed of a range on every chosen lineage, on all cores.
//!
//! Seeds are handed out in chunks to worker threads; each scenario depends only on its seed,
//! so the results (counts, first failing seed, violation classes, unfinished scenarios) are the
//! same whatever the number of threads. Only the seconds differ from run to run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vipt_emu::mm::situations::{Situation, Situations};
use vipt_tmpalias::Lineage;

use crate::repro::Reproducer;
use crate::scenario::{RunConfig, Unfinished, UnfinishedKind, run_seed};
use crate::sched::SchedulerKind;
use crate::text::shown;

/// A range of seeds, first and last included, so that every seed can be named (`u64::MAX`
/// too). Written `A..B` (end excluded), `A..=B` (end included) or `A` (one seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    first: u64,
    last: u64,
}

impl SeedRange {
    /// Seeds `first..=last`; `None` when `first > last`.
    pub fn new(first: u64, last: u64) -> Option<SeedRange> {
        (first <= last).then_some(SeedRange { first, last })
    }

    /// Seeds `start..end` (end excluded); `None` when empty.
    pub fn exclusive(start: u64, end: u64) -> Option<SeedRange> {
        end.checked_sub(1).and_then(|last| SeedRange::new(start, last))
    }

    /// The first seed.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The last seed (included).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// How many seeds (up to 2⁶⁴, hence `u128`).
    pub fn count(&self) -> u128 {
        (self.last - self.first) as u128 + 1
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..={}", self.first, self.last)
        }
    }
}

impl FromStr for SeedRange {
    type Err = String;
    fn from_str(s: &str) -> Result<SeedRange, String> {
        parse_seeds(s)
    }
}

/// Parses `A..B` (end excluded), `A..=B` (end included) or a single seed `A`; seeds are
/// `0..=18446744073709551615`.
pub fn parse_seeds(s: &str) -> Result<SeedRange, String> {
    let seed = |t: &str| -> Result<u64, String> {
        let t = t.trim();
        if t.is_empty() {
            return Err(format!("`{}`: a seed is missing (expected A..B, A..=B or a single seed)", shown(s)));
        }
        if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) && t.len() > 1 {
            return Err(format!("seed `{}` is negative: seeds are 0..={}", shown(t), u64::MAX));
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse().map_err(|_| format!("seed `{}` is past the last seed {}", shown(t), u64::MAX));
        }
        Err(format!("`{}` is not a seed (a number 0..={})", shown(t), u64::MAX))
    };
    if let Some((a, b)) = s.split_once("..=") {
        let (a, b) = (seed(a)?, seed(b)?);
        return SeedRange::new(a, b)
            .ok_or_else(|| format!("seed range `{}` is empty (A..=B needs A <= B)", shown(s)));
    }
    if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (seed(a)?, seed(b)?);
        return SeedRange::exclusive(a, b).filter(|_| a < b).ok_or_else(|| {
            format!("seed range `{}` is empty (A..B needs A < B; A..=B includes B)", shown(s))
        });
    }
    let a = seed(s)?;
    Ok(SeedRange { first: a, last: a })
}

/// What to run.
#[derive(Clone, Debug)]
pub struct CampaignConfig {
    /// Seeds.
    pub seeds: SeedRange,
    /// Worker threads wanted (≥ 1; never more are used than there are chunks of seeds).
    pub jobs: usize,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Scenario options.
    pub run: RunConfig,
    /// Where reproducers go (`None`: nowhere).
    pub out: Option<PathBuf>,
    /// Show a progress bar on stderr for campaigns longer than a second.
    pub progress: bool,
}

/// Unfinished scenarios of a lineage, by kind.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UnfinishedCounts {
    /// Deadlocks.
    pub deadlock: u64,
    /// Livelocks (an operation stopped at a retry bound of the core).
    pub livelock: u64,
    /// Runs that used up their step budget.
    pub step_budget: u64,
}

impl UnfinishedCounts {
    fn add(&mut self, kind: UnfinishedKind, n: u64) {
        match kind {
            UnfinishedKind::Deadlock => self.deadlock += n,
            UnfinishedKind::Livelock => self.livelock += n,
            UnfinishedKind::StepBudget => self.step_budget += n,
        }
    }

    fn merge(&mut self, o: &UnfinishedCounts) {
        self.deadlock += o.deadlock;
        self.livelock += o.livelock;
        self.step_budget += o.step_budget;
    }

    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.deadlock + self.livelock + self.step_budget
    }
}

/// Results for one lineage.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineageResult {
    /// Lineage name.
    pub name: String,
    /// Scenarios run.
    pub scenarios: u64,
    /// Scenarios with at least one violation.
    pub violations: u64,
    /// Lowest seed with a violation.
    pub first_violation_seed: Option<u64>,
    /// Scenarios from the start of the range up to and including the first failing seed.
    pub scenarios_to_first: Option<u64>,
    /// Wall-clock seconds from the lineage's start to the moment its first failing seed was
    /// judged (varies from run to run).
    pub seconds_to_first: Option<f64>,
    /// Scenarios that did not finish (deadlock, livelock, step budget) and showed no
    /// violation. A run that goes wrong after a violation is that violation's consequence
    /// and counts as a violation only.
    pub unfinished: u64,
    /// The unfinished scenarios by kind.
    pub unfinished_kinds: UnfinishedCounts,
    /// Lowest seed that did not finish (with no violation).
    pub first_unfinished_seed: Option<u64>,
    /// What happened to it.
    pub first_unfinished: Option<String>,
    /// First-violation classes and how many scenarios showed each.
    pub classes: BTreeMap<String, u64>,
    /// Reproducer written for the first failing seed.
    pub reproducer: Option<String>,
    /// Reproducer written for the first unfinished seed.
    pub unfinished_reproducer: Option<String>,
    /// Wall-clock seconds for the whole lineage (varies).
    pub seconds: f64,
    /// `mmu_gather` flushes that flushed the whole mm, summed over the scenarios.
    pub gather_mm_flushes: u64,
    /// `mmu_gather` flushes that purged a range, summed over the scenarios.
    pub gather_range_flushes: u64,
    /// How often the scenarios met each situation of the flush contract, summed; a JSON
    /// object in the situations' report order.
    pub situations: SituationCounts,
    /// How many scenarios met each situation at least once, in the same order.
    pub situation_seeds: SituationCounts,
    /// Scenarios with a violation that also dropped a dirty bit in a plain PTE store
    /// (`pte.dirty_dropped`): on the current parisc lineages, the kernel's own lost-dirty-bit
    /// windows rather than a new bug.
    #[serde(default)]
    pub violations_dirty_dropped: u64,
    /// Scenarios with a violation that also mapped a shared anonymous page at two colours
    /// (`shared_anon.colours`, reachable only with `move_shared_anon`): the placement hazard
    /// of docs/FINDINGS.md section 4 rather than a flush routine's bug.
    #[serde(default)]
    pub violations_shared_anon_colours: u64,
}

/// Situation counts, serialised as a JSON object `{name: count}` in report order
/// ([`Situation::ALL`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SituationCounts(pub Situations);

impl Serialize for SituationCounts {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(Situation::ALL.len()))?;
        for (s, n) in self.0.iter() {
            map.serialize_entry(s.name(), &n)?;
        }
        map.end()
    }
}

/// Reads what [`SituationCounts`] writes: a name the build does not know is an error, a name
/// missing counts 0.
impl<'de> Deserialize<'de> for SituationCounts {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, u64>::deserialize(de)?;
        let mut c = Situations::default();
        for (name, n) in map {
            let s = Situations::by_name(&name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown situation `{}`", shown(&name))))?;
            c.add_n(s, n);
        }
        Ok(SituationCounts(c))
    }
}

/// What a campaign did: the results per lineage, and what went wrong around them.
#[derive(Clone, Debug)]
pub struct CampaignReport {
    /// One result per lineage, in the order given.
    pub lineages: Vec<LineageResult>,
    /// Worker threads used (the fewest any lineage ran with).
    pub workers: usize,
    /// Worker threads wanted (the jobs, at most one per chunk of seeds).
    pub workers_wanted: usize,
    /// Why fewer workers than wanted ran, if they did.
    pub spawn_error: Option<String>,
    /// Reproducers that could not be written (the output failed).
    pub save_errors: Vec<String>,
    /// Reproducers that were not written because the run was too long for one.
    pub notes: Vec<String>,
}

#[derive(Default)]
struct Tally {
    scenarios: u64,
    violations: u64,
    unfinished: UnfinishedCounts,
    first: Option<(u64, Duration)>,
    classes: BTreeMap<String, u64>,
    first_unfinished: Option<(u64, Unfinished)>,
    mm_flushes: u64,
    range_flushes: u64,
    situations: Situations,
    situation_seeds: Situations,
    violations_dirty_dropped: u64,
    violations_shared_anon_colours: u64,
}

impl Tally {
    fn merge(&mut self, local: Tally) {
        self.scenarios += local.scenarios;
        self.violations += local.violations;
        self.unfinished.merge(&local.unfinished);
        self.mm_flushes += local.mm_flushes;
        self.range_flushes += local.range_flushes;
        self.situations.merge(&local.situations);
        self.situation_seeds.merge(&local.situation_seeds);
        self.violations_dirty_dropped += local.violations_dirty_dropped;
        self.violations_shared_anon_colours += local.violations_shared_anon_colours;
        for (k, v) in local.classes {
            *self.classes.entry(k).or_default() += v;
        }
        if let Some((s, d)) = local.first
            && self.first.is_none_or(|(s0, _)| s < s0)
        {
            self.first = Some((s, d));
        }
        if let Some((s, u)) = local.first_unfinished
            && self.first_unfinished.as_ref().is_none_or(|(s0, _)| s < *s0)
        {
            self.first_unfinished = Some((s, u));
        }
    }
}

/// Chunk of seeds a worker takes at a time.
const CHUNK: u128 = 16;

/// Worker threads for `jobs` over `seeds`: never more than there are chunks of seeds.
pub fn workers_for(jobs: usize, seeds: SeedRange) -> usize {
    let chunks = seeds.count().div_ceil(CHUNK);
    (jobs.max(1) as u128).min(chunks) as usize
}

/// How many workers ran, of those wanted.
struct Spawned {
    started: usize,
    error: Option<String>,
}

/// Runs `work` on `wanted` threads: the calling thread and `wanted - 1` spawned ones. When a
/// thread cannot be spawned, no more are tried and the work goes on with those that started
/// (the calling thread at least).
fn on_workers(wanted: usize, work: &(dyn Fn() + Sync)) -> Spawned {
    let mut spawned = Spawned { started: 1, error: None };
    std::thread::scope(|scope| {
        for _ in 1..wanted {
            match std::thread::Builder::new().name("vipt-worker".into()).spawn_scoped(scope, work) {
                Ok(_) => spawned.started += 1,
                Err(e) => {
                    spawned.error = Some(e.to_string());
                    break;
                }
            }
        }
        work();
    });
    spawned
}

/// One lineage's run: its result, the workers it ran with and a reproducer that could not be
/// written.
struct LineageRun {
    result: LineageResult,
    spawned: Spawned,
    save_errors: Vec<String>,
    notes: Vec<String>,
}

/// Runs one lineage over the campaign's seeds.
fn run_lineage(cfg: &CampaignConfig, lineage: &Lineage, bar: &indicatif::ProgressBar) -> LineageRun {
    let start = Instant::now();
    let chunks = cfg.seeds.count().div_ceil(CHUNK);
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let work = || {
        let mut local = Tally::default();
        loop {
            // At most one fetch per worker past the last chunk: no wrap-around.
            let c = next.fetch_add(1, Ordering::Relaxed) as u128;
            if c >= chunks {
                break;
            }
            let lo = cfg.seeds.first as u128 + c * CHUNK;
            let hi = (lo + CHUNK - 1).min(cfg.seeds.last as u128);
            for seed in lo as u64..=hi as u64 {
                let o = run_seed(lineage, &cfg.run, cfg.scheduler, seed);
                local.scenarios += 1;
                local.mm_flushes += o.counters.gather_mm_flushes;
                local.range_flushes += o.counters.gather_range_flushes;
                local.situations.merge(&o.situations);
                for (sit, n) in o.situations.iter() {
                    if n > 0 {
                        local.situation_seeds.add(sit);
                    }
                }
                if let Some(v) = o.violations.first() {
                    local.violations += 1;
                    if o.situations.get(Situation::DirtyDropped) > 0 {
                        local.violations_dirty_dropped += 1;
                    }
                    if o.situations.get(Situation::SharedAnonColours) > 0 {
                        local.violations_shared_anon_colours += 1;
                    }
                    *local.classes.entry(v.class()).or_default() += 1;
                    if local.first.is_none_or(|(s, _)| seed < s) {
                        local.first = Some((seed, start.elapsed()));
                    }
                } else if let Some(u) = o.unfinished {
                    // A run that went wrong after a violation is that violation's consequence
                    // (a broken variant corrupts state): only one without is unfinished.
                    local.unfinished.add(u.kind, 1);
                    if local.first_unfinished.as_ref().is_none_or(|(s, _)| seed < *s) {
                        local.first_unfinished = Some((seed, u));
                    }
                }
            }
            bar.inc((hi - lo + 1) as u64);
        }
        tally.lock().unwrap_or_else(|e| e.into_inner()).merge(local);
    };
    let spawned = on_workers(workers_for(cfg.jobs, cfg.seeds), &work);
    let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    let (mut save_errors, mut notes) = (Vec::new(), Vec::new());
    let mut save = |seed: u64, suffix: &str| -> Option<String> {
        let dir = cfg.out.as_ref()?;
        let r = match Reproducer::record(lineage, &cfg.run, cfg.scheduler, seed) {
            Ok(r) => r?,
            Err(e) => {
                notes.push(e.to_string());
                return None;
            }
        };
        let path = dir.join(format!("{}-seed{seed}{suffix}.json", lineage.name));
        match r.save(&path) {
            Ok(()) => Some(path.display().to_string()),
            Err(e) => {
                save_errors.push(e.to_string());
                None
            }
        }
    };
    let reproducer = t.first.and_then(|(seed, _)| save(seed, ""));
    let unfinished_reproducer = t.first_unfinished.as_ref().and_then(|(seed, _)| save(*seed, "-unfinished"));
    let result = LineageResult {
        name: lineage.name.clone(),
        scenarios: t.scenarios,
        violations: t.violations,
        first_violation_seed: t.first.map(|(s, _)| s),
        scenarios_to_first: t.first.map(|(s, _)| s - cfg.seeds.first + 1),
        seconds_to_first: t.first.map(|(_, d)| d.as_secs_f64()),
        unfinished: t.unfinished.total(),
        unfinished_kinds: t.unfinished,
        first_unfinished_seed: t.first_unfinished.as_ref().map(|(s, _)| *s),
        first_unfinished: t.first_unfinished.as_ref().map(|(_, u)| u.summary()),
        classes: t.classes,
        reproducer,
        unfinished_reproducer,
        seconds: start.elapsed().as_secs_f64(),
        gather_mm_flushes: t.mm_flushes,
        gather_range_flushes: t.range_flushes,
        situations: SituationCounts(t.situations),
        situation_seeds: SituationCounts(t.situation_seeds),
        violations_dirty_dropped: t.violations_dirty_dropped,
        violations_shared_anon_colours: t.violations_shared_anon_colours,
    };
    LineageRun { result, spawned, save_errors, notes }
}

/// Runs every lineage in turn, each on all workers.
pub fn run_campaign(cfg: &CampaignConfig, lineages: &[&Lineage]) -> CampaignReport {
    let total = cfg.seeds.count().saturating_mul(lineages.len() as u128).min(u64::MAX as u128) as u64;
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:>16} [{bar:40}] {pos}/{len} scenarios, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let begun = Instant::now();
    let wanted = workers_for(cfg.jobs, cfg.seeds);
    let mut report = CampaignReport {
        lineages: Vec::new(),
        workers: wanted,
        workers_wanted: wanted,
        spawn_error: None,
        save_errors: Vec::new(),
        notes: Vec::new(),
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (bar2, done2) = (&bar, &done);
        if cfg.progress {
            // Show the bar only once the campaign has run for a second. Without a thread for
            // it (none could be spawned) there is no bar, and nothing else changes.
            let _ = std::thread::Builder::new().name("vipt-progress".into()).spawn_scoped(scope, move || {
                while !done2.load(Ordering::Relaxed) {
                    if begun.elapsed() > Duration::from_secs(1) && bar2.is_hidden() {
                        bar2.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        for l in lineages {
            bar.set_message(l.name.clone());
            let run = run_lineage(cfg, l, &bar);
            report.workers = report.workers.min(run.spawned.started);
            if report.spawn_error.is_none() {
                report.spawn_error = run.spawned.error;
            }
            report.save_errors.extend(run.save_errors);
            report.notes.extend(run.notes);
            report.lineages.push(run.result);
        }
        done.store(true, Ordering::Relaxed);
    });
    bar.finish_and_clear();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_every_form_and_reject_garbage() {
        let r = |a, b| SeedRange::new(a, b).unwrap();
        assert_eq!(parse_seeds("0..10"), Ok(r(0, 9)));
        assert_eq!(parse_seeds("0..=10"), Ok(r(0, 10)));
        assert_eq!(parse_seeds("7"), Ok(r(7, 7)));
        assert_eq!(parse_seeds("5..=5"), Ok(r(5, 5)));
        assert_eq!(parse_seeds("18446744073709551615"), Ok(r(u64::MAX, u64::MAX)));
        assert_eq!(
            parse_seeds("18446744073709551600..=18446744073709551615"),
            Ok(r(u64::MAX - 15, u64::MAX))
        );
        assert_eq!(parse_seeds("0..=18446744073709551615").unwrap().count(), 1 << 64);
        for bad in [
            "",
            "..",
            "5..5",
            "9..3",
            "9..=3",
            "a..b",
            "1..2..3",
            "-1..4",
            "18446744073709551616",
            "1..=",
            "x",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_seeds("-1..5").unwrap_err().contains("negative"), "{:?}", parse_seeds("-1..5"));
        assert!(parse_seeds("18446744073709551616").unwrap_err().contains("past the last seed"));
    }

    #[test]
    fn no_more_workers_than_chunks_of_seeds() {
        let seeds = |a, b| SeedRange::new(a, b).unwrap();
        assert_eq!(workers_for(1_000_000, seeds(0, 49)), 4);
        assert_eq!(workers_for(2, seeds(0, 49)), 2);
        assert_eq!(workers_for(0, seeds(0, 0)), 1);
        assert_eq!(workers_for(100_000, seeds(0, u64::MAX)), 100_000);
    }
}
