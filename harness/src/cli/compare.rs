//! `vipt compare`: two lineages seed by seed.

use std::collections::BTreeMap;

use clap::Args;
use vipt_emu::config::Preset;
use vipt_harness::campaign::{SeedRange, parse_seeds};
use vipt_harness::compare::{Failing, compare};
use vipt_harness::scenario::RunConfig;
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Family, Lineage, Registry};

use super::out::{Out, outln, q, warn};
use super::status::{CmdResult, Failure, Status};
use super::{check_family, parse_family, parse_preset, parse_scheduler};

/// Seeds listed per class in the table (the JSON lists them all).
const SHOWN_SEEDS: usize = 12;

#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    /// Lineage A (typically the older kernel).
    #[arg(value_name = "A")]
    a: String,
    /// Lineage B (typically the one with the fix).
    #[arg(value_name = "B")]
    b: String,
    /// Seeds: `A..B`, `A..=B` or a single seed.
    #[arg(long, default_value = "0..2000", value_parser = parse_seeds, allow_hyphen_values = true)]
    seeds: SeedRange,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    jobs: Option<u64>,
    /// Scheduler: random, pct or window.
    #[arg(long, default_value = "random", value_parser = parse_scheduler)]
    scheduler: SchedulerKind,
    /// Machine preset (as for campaign).
    #[arg(long, default_value = "tiny", value_parser = parse_preset)]
    preset: Preset,
    /// Workload family to draw the seeds from instead of the lineages' own (as for campaign).
    #[arg(long, value_name = "NAME", value_parser = parse_family)]
    family: Option<Family>,
    /// Do not offer speculative move-ins.
    #[arg(long)]
    no_speculation: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn lineage<'r>(registry: &'r Registry, name: &str) -> Result<&'r Lineage, Failure> {
    registry
        .get(name)
        .ok_or_else(|| Failure(format!("unknown lineage `{}` (known: {})", q(name), registry.names())))
}

/// Status 0 once the comparison is printed, whatever it shows; 2 on bad input.
pub(crate) fn run(registry: &Registry, a: &CompareArgs, out: &mut Out) -> CmdResult {
    let (la, lb) = (lineage(registry, &a.a)?, lineage(registry, &a.b)?);
    check_family(&[la, lb], a.family)?;
    let cfg = RunConfig {
        preset: a.preset,
        speculation: !a.no_speculation,
        family: a.family,
        ..RunConfig::default()
    };
    let jobs =
        a.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let c = compare(la, lb, &cfg, a.scheduler, a.seeds, jobs);
    if !c.same_scenarios {
        warn(&format!(
            "{} and {} run different machines or workload families: a seed is not the same scenario on both",
            la.name, lb.name
        ));
    }
    if a.json {
        outln!(out, "{}", serde_json::to_string_pretty(&c)?);
        return Ok(Status::Clean);
    }
    outln!(
        out,
        "{} against {}, seeds {}: {} scenarios each; fail on both: {}, on neither: {}",
        c.a,
        c.b,
        c.seeds,
        c.scenarios,
        c.both,
        c.neither
    );
    for (name, other, only) in [(&c.a, &c.b, &c.only_a), (&c.b, &c.a, &c.only_b)] {
        outln!(out, "fail on {name} and not on {other}: {} seeds", only.len());
        let mut by_class: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for Failing { seed, class } in only {
            by_class.entry(class).or_default().push(*seed);
        }
        for (class, seeds) in by_class {
            let shown: Vec<String> = seeds.iter().take(SHOWN_SEEDS).map(u64::to_string).collect();
            let more = if seeds.len() > SHOWN_SEEDS {
                format!(" and {} more (--json lists them all)", seeds.len() - SHOWN_SEEDS)
            } else {
                String::new()
            };
            outln!(out, "  {class}: {} seeds: {}{more}", seeds.len(), shown.join(" "));
        }
    }
    if let Some(f) = c.only_a.first().or(c.only_b.first()) {
        let l = if c.only_a.first() == Some(f) { &c.a } else { &c.b };
        outln!(
            out,
            "next: `vipt check --lineage {l} --seeds {}` writes its reproducer to vipt-out/; `vipt replay` explains it",
            f.seed
        );
    }
    Ok(Status::Clean)
}
