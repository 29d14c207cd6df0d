//! Campaigns: every seed of a range on every chosen lineage, on all cores.
//!
//! Seeds are handed out in chunks to worker threads; each scenario depends only on its seed,
//! so the results (counts, first failing seed, violation classes) are the same whatever the
//! number of threads. Only the seconds differ from run to run.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use vipt_tmpalias::Lineage;

use crate::repro::Reproducer;
use crate::scenario::{RunConfig, run_seed};
use crate::sched::SchedulerKind;

/// What to run.
#[derive(Clone, Debug)]
pub struct CampaignConfig {
    /// Seeds, end exclusive.
    pub seeds: Range<u64>,
    /// Worker threads (≥ 1).
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

/// Results for one lineage.
#[derive(Clone, Debug, Serialize, PartialEq)]
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
    /// Scenarios whose run itself went wrong (deadlock, step limit): bugs of the core.
    pub anomalies: u64,
    /// First-violation classes and how many scenarios showed each.
    pub classes: BTreeMap<String, u64>,
    /// Reproducer written for the first failing seed.
    pub reproducer: Option<String>,
    /// Wall-clock seconds for the whole lineage (varies).
    pub seconds: f64,
    /// `mmu_gather` flushes that flushed the whole mm, summed over the scenarios.
    pub gather_mm_flushes: u64,
    /// `mmu_gather` flushes that purged a range, summed over the scenarios.
    pub gather_range_flushes: u64,
}

#[derive(Default)]
struct Tally {
    scenarios: u64,
    violations: u64,
    anomalies: u64,
    first: Option<(u64, Duration)>,
    classes: BTreeMap<String, u64>,
    first_anomaly: Option<(u64, String)>,
    mm_flushes: u64,
    range_flushes: u64,
}

/// Chunk of seeds a worker takes at a time.
const CHUNK: u64 = 16;

/// Runs one lineage over the campaign's seeds.
pub fn run_lineage(cfg: &CampaignConfig, lineage: &Lineage, bar: &indicatif::ProgressBar) -> LineageResult {
    let start = Instant::now();
    let next = AtomicU64::new(cfg.seeds.start);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..cfg.jobs.max(1) {
            scope.spawn(|| {
                let mut local = Tally::default();
                loop {
                    let lo = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if lo >= cfg.seeds.end {
                        break;
                    }
                    let hi = (lo + CHUNK).min(cfg.seeds.end);
                    for seed in lo..hi {
                        let o = run_seed(lineage, &cfg.run, cfg.scheduler, seed);
                        local.scenarios += 1;
                        local.mm_flushes += o.counters.gather_mm_flushes;
                        local.range_flushes += o.counters.gather_range_flushes;
                        // A run that went wrong after a violation is that violation's
                        // consequence (a broken variant corrupts state); only a run that went
                        // wrong with no violation is a bug of the core.
                        if let Some(a) = o.anomaly.filter(|_| o.violations.is_empty()) {
                            local.anomalies += 1;
                            if local.first_anomaly.as_ref().is_none_or(|(s, _)| seed < *s) {
                                local.first_anomaly = Some((seed, a));
                            }
                        }
                        if let Some(v) = o.violations.first() {
                            local.violations += 1;
                            *local.classes.entry(v.class()).or_default() += 1;
                            if local.first.is_none_or(|(s, _)| seed < s) {
                                local.first = Some((seed, start.elapsed()));
                            }
                        }
                    }
                    bar.inc(hi - lo);
                }
                let mut t = tally.lock().expect("no worker panics while holding the tally");
                t.scenarios += local.scenarios;
                t.violations += local.violations;
                t.anomalies += local.anomalies;
                t.mm_flushes += local.mm_flushes;
                t.range_flushes += local.range_flushes;
                for (k, v) in local.classes {
                    *t.classes.entry(k).or_default() += v;
                }
                if let Some((s, d)) = local.first
                    && t.first.is_none_or(|(s0, _)| s < s0)
                {
                    t.first = Some((s, d));
                }
                if let Some((s, a)) = local.first_anomaly
                    && t.first_anomaly.as_ref().is_none_or(|(s0, _)| s < *s0)
                {
                    t.first_anomaly = Some((s, a));
                }
            });
        }
    });
    let t = tally.into_inner().expect("workers done");
    if let Some((seed, a)) = &t.first_anomaly {
        bar.suspend(|| eprintln!("warning: {}: seed {seed}: {a}", lineage.name));
    }
    let reproducer = match (&cfg.out, t.first) {
        (Some(dir), Some((seed, _))) => {
            Reproducer::record(lineage, &cfg.run, cfg.scheduler, seed).and_then(|r| {
                let path = dir.join(format!("{}-seed{seed}.json", lineage.name));
                match r.save(&path) {
                    Ok(()) => Some(path.display().to_string()),
                    Err(e) => {
                        bar.suspend(|| eprintln!("warning: {e}"));
                        None
                    }
                }
            })
        }
        _ => None,
    };
    LineageResult {
        name: lineage.name.clone(),
        scenarios: t.scenarios,
        violations: t.violations,
        first_violation_seed: t.first.map(|(s, _)| s),
        scenarios_to_first: t.first.map(|(s, _)| s - cfg.seeds.start + 1),
        seconds_to_first: t.first.map(|(_, d)| d.as_secs_f64()),
        anomalies: t.anomalies,
        classes: t.classes,
        reproducer,
        seconds: start.elapsed().as_secs_f64(),
        gather_mm_flushes: t.mm_flushes,
        gather_range_flushes: t.range_flushes,
    }
}

/// Runs every lineage in turn, each on all workers.
pub fn run_campaign(cfg: &CampaignConfig, lineages: &[&Lineage]) -> Vec<LineageResult> {
    let total = (cfg.seeds.end - cfg.seeds.start) * lineages.len() as u64;
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::hidden());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg:>16} [{bar:40}] {pos}/{len} scenarios, {per_sec}, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let begun = Instant::now();
    let mut results = Vec::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let bar2 = &bar;
        let done2 = &done;
        if cfg.progress {
            // Show the bar only once the campaign has run for a second.
            scope.spawn(move || {
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
            results.push(run_lineage(cfg, l, &bar));
        }
        done.store(true, Ordering::Relaxed);
    });
    bar.finish_and_clear();
    results
}

/// Parses `A..B` (end exclusive) or a single seed `A`.
pub fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let bad = || format!("malformed seed range `{s}` (expected A..B with A < B, or a single seed)");
    match s.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            if a >= b {
                return Err(bad());
            }
            Ok(a..b)
        }
        None => {
            let a: u64 = s.trim().parse().map_err(|_| bad())?;
            a.checked_add(1).map(|b| a..b).ok_or_else(bad)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_and_reject_garbage() {
        assert_eq!(parse_seeds("0..10"), Ok(0..10));
        assert_eq!(parse_seeds("7"), Ok(7..8));
        for bad in ["", "..", "5..5", "9..3", "a..b", "1..2..3", "-1..4", "18446744073709551615"] {
            assert!(parse_seeds(bad).is_err(), "{bad:?} accepted");
        }
    }
}
