//! `vipt campaign` and `vipt check`: seeds on lineages, a table or JSON.

use std::path::PathBuf;

use clap::Args;
use vipt_emu::config::Preset;
use vipt_harness::campaign::{
    CampaignConfig, CampaignReport, LineageResult, SeedRange, parse_seeds, run_campaign,
};
use vipt_harness::scenario::RunConfig;
use vipt_harness::sched::SchedulerKind;
use vipt_harness::shard::{CampaignJson, RunSettings, Shard, ShardJson, parse_shard};
use vipt_tmpalias::{Family, Lineage, Registry};

use super::files::check_out_dir;
use super::out::{Out, outln, q, warn};
use super::status::{CmdResult, Failure, Status};
use super::{check_family, parse_family, parse_preset, parse_scheduler};

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct CampaignArgs {
    /// Lineage to run (repeatable; default: every lineage of the default set).
    #[arg(long = "lineage", value_name = "NAME")]
    lineages: Vec<String>,
    #[command(flatten)]
    opts: RunArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct CheckArgs {
    /// Lineage to check (required; repeatable).
    #[arg(long = "lineage", value_name = "NAME", required = true)]
    lineages: Vec<String>,
    #[command(flatten)]
    opts: RunArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct RunArgs {
    /// Seeds: `A..B` (end excluded), `A..=B` (end included) or a single seed; seeds are
    /// 0..=18446744073709551615.
    #[arg(long, default_value = "0..2000", value_parser = parse_seeds, allow_hyphen_values = true)]
    seeds: SeedRange,
    /// Run only part K (from 0) of N disjoint, contiguous parts of the seeds, for one machine
    /// of N; `vipt merge` combines the N JSON outputs into that of the whole range.
    #[arg(long, value_name = "K/N", value_parser = parse_shard, allow_hyphen_values = true)]
    shard: Option<Shard>,
    /// Worker threads (default: all cores; never more than chunks of 16 seeds).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Scheduler: random, pct or window.
    #[arg(long, default_value = "random", value_parser = parse_scheduler)]
    scheduler: SchedulerKind,
    /// Workload family to draw every lineage's seeds from instead of its own: `sharing` (the
    /// mixed workloads with shmem files and shared anonymous memory) is run by every lineage of
    /// the mixed family, `reuse` (the gather workloads with an address unmapped and mapped again
    /// under a thread that keeps accessing it) by every lineage of the gather family. Without
    /// --lineage, the default lineages that can run it.
    #[arg(long, value_name = "NAME", value_parser = parse_family)]
    family: Option<Family>,
    /// Machine preset: tiny, pa8700, pa8800, pa8800-64m (hypothetical: no kernel can be clean
    /// on it), pipt, rp3440 [default: tiny]. Lineages that pin their machine (the MMU-race
    /// families run on pipt) ignore it, with a warning.
    #[arg(long, value_parser = parse_preset)]
    preset: Option<Preset>,
    /// Directory for reproducer files (checked before the run).
    #[arg(long, default_value = "vipt-out", value_name = "DIR")]
    out: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// After the table, print which situations of the flush contract the scenarios met: per
    /// lineage, how many scenarios met each at least once (and how often it was met).
    #[arg(long)]
    situations: bool,
    /// Do not offer speculative move-ins.
    #[arg(long)]
    no_speculation: bool,
    /// Let user accesses overlap the teardown of their mapping (known window, see README).
    #[arg(long)]
    racy_teardown: bool,
    /// Let user accesses overlap access_process_vm writes (known window, see README).
    #[arg(long)]
    racy_poke: bool,
    /// Let mremap move MAP_SHARED|MAP_ANONYMOUS mappings (known placement hazard, see README).
    #[arg(long)]
    move_shared_anon: bool,
    /// Stop each scenario after N micro-steps (default: a budget that follows from its
    /// workload and the machine); a scenario stopped there is unfinished.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_steps: Option<u64>,
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            seeds: SeedRange::exclusive(0, 2000).expect("a non-empty range"),
            shard: None,
            jobs: None,
            scheduler: SchedulerKind::Random,
            family: None,
            preset: None,
            out: PathBuf::from("vipt-out"),
            json: false,
            situations: false,
            no_speculation: false,
            racy_teardown: false,
            racy_poke: false,
            move_shared_anon: false,
            max_steps: None,
        }
    }
}

/// `vipt campaign`: status 0 whatever it finds.
pub(crate) fn campaign(registry: &Registry, a: &CampaignArgs, out: &mut Out) -> CmdResult {
    run(registry, &a.lineages, &a.opts, false, out)
}

/// `vipt check`: status 1 on a violation, 3 on an unfinished scenario without one.
pub(crate) fn check(registry: &Registry, a: &CheckArgs, out: &mut Out) -> CmdResult {
    run(registry, &a.lineages, &a.opts, true, out)
}

/// `campaign` (`check == false`: status 0 whatever it finds) or `check` (1 on a violation, 3
/// on an unfinished scenario without one).
fn run(registry: &Registry, names: &[String], a: &RunArgs, check: bool, out: &mut Out) -> CmdResult {
    let chosen: Vec<&Lineage> = if names.is_empty() {
        if check {
            return Err(Failure("check needs --lineage NAME".into()));
        }
        registry.defaults().filter(|l| l.family_for(a.family).is_ok()).collect()
    } else {
        names
            .iter()
            .map(|n| {
                registry.get(n).ok_or_else(|| {
                    Failure(format!("unknown lineage `{}` (known: {})", q(n), registry.names()))
                })
            })
            .collect::<Result<_, _>>()?
    };
    check_family(&chosen, a.family)?;
    if a.jobs == Some(0) {
        return Err(Failure("--jobs must be at least 1".into()));
    }
    let seeds = match a.shard {
        None => a.seeds,
        Some(sh) => sh.of(a.seeds).ok_or_else(|| {
            Failure(format!("--shard {sh}: the seeds {} are fewer than {} parts", a.seeds, sh.count))
        })?,
    };
    check_out_dir("--out", &a.out)?;
    let preset = a.preset.unwrap_or(Preset::Tiny);
    let mut ignored = None;
    if let Some(asked) = a.preset {
        let pinned: Vec<String> = chosen
            .iter()
            .filter_map(|l| l.preset.filter(|p| *p != asked).map(|p| format!("{} runs on {p}", l.name)))
            .collect();
        if !pinned.is_empty() {
            ignored = Some(format!(
                "--preset {asked} is ignored where a lineage pins its machine: {}",
                pinned.join(", ")
            ));
        }
    }
    let cfg = CampaignConfig {
        seeds,
        jobs: a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        scheduler: a.scheduler,
        run: RunConfig {
            preset,
            speculation: !a.no_speculation,
            racy_teardown: a.racy_teardown,
            racy_poke: a.racy_poke,
            move_shared_anon: a.move_shared_anon,
            max_steps: a.max_steps,
            family: a.family,
            ..RunConfig::default()
        },
        out: Some(a.out.clone()),
        progress: !a.json,
    };
    let report = run_campaign(&cfg, &chosen);
    // A reproducer that could not be written is status 2, whose line is the only one on
    // stderr; the results are printed all the same.
    let lost = report.save_errors.first().map(|e| Failure(format!("a reproducer could not be written: {e}")));
    if let Some(e) = report.spawn_error.as_ref().filter(|_| lost.is_none()) {
        warn(&format!(
            "only {} of {} worker threads could be started ({e}); the campaign ran on {}",
            report.workers, report.workers_wanted, report.workers
        ));
    }
    for n in ignored.iter().chain(&report.notes).filter(|_| lost.is_none()) {
        warn(n);
    }
    let results = &report.lineages;
    if a.json {
        let doc = CampaignJson {
            lineages: results.clone(),
            run: RunSettings {
                preset: preset.name().into(),
                scheduler: a.scheduler,
                speculation: !a.no_speculation,
                racy_teardown: a.racy_teardown,
                racy_poke: a.racy_poke,
                move_shared_anon: a.move_shared_anon,
                max_steps: a.max_steps,
                family: a.family.map(|f| f.name().to_string()),
            },
            seeds: a.seeds.to_string(),
            shard: a.shard.map(|s| ShardJson { index: s.index, count: s.count, seeds: seeds.to_string() }),
        };
        outln!(out, "{}", serde_json::to_string_pretty(&doc)?);
    } else {
        if let Some(sh) = a.shard {
            outln!(out, "shard {sh} of seeds {}: seeds {seeds}", a.seeds);
        }
        print_table(out, results, &chosen);
        if a.situations {
            print_situations(out, results);
        }
        if preset.is_hypothetical() {
            outln!(
                out,
                "note: `{}` is a hypothetical machine: its alias boundary is above the kernel's 4 MiB \
                 colouring, so no kernel can be clean on it",
                preset
            );
        }
    }
    match lost {
        Some(f) => Err(f),
        None => Ok(status(&report, check)),
    }
}

fn status(report: &CampaignReport, check: bool) -> Status {
    if !check {
        return Status::Clean;
    }
    let violation = report.lineages.iter().any(|r| r.violations > 0);
    let unfinished = report.lineages.iter().any(|r| r.unfinished > 0);
    Status::of(violation, unfinished)
}

fn print_table(out: &mut Out, results: &[LineageResult], lineages: &[&Lineage]) {
    outln!(
        out,
        "{:<18} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8}  classes of first violations (historic bugs it can show)",
        "lineage",
        "scenarios",
        "violations",
        "unfinished",
        "first seed",
        "to first",
        "s to 1st",
        "seconds"
    );
    for (r, l) in results.iter().zip(lineages) {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
        let secs = r.seconds_to_first.map_or("-".to_string(), |s| format!("{s:.3}"));
        let classes: Vec<String> = r.classes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let bugs = if l.bugs.is_empty() { String::new() } else { format!(" ({})", l.bugs.join(" ")) };
        let verdict = match (classes.is_empty(), r.unfinished) {
            (true, 0) => "clean".to_string(),
            (true, _) => "no violation".to_string(),
            (false, _) => classes.join(", "),
        };
        outln!(
            out,
            "{:<18} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8.2}  {verdict}{bugs}",
            r.name,
            r.scenarios,
            r.violations,
            r.unfinished,
            opt(r.first_violation_seed),
            opt(r.scenarios_to_first),
            secs,
            r.seconds,
        );
        if r.gather_mm_flushes + r.gather_range_flushes > 0 && l.family == Family::Gather {
            outln!(
                out,
                "{:<18} mmu_gather flushes: {} whole-mm, {} range",
                "",
                r.gather_mm_flushes,
                r.gather_range_flushes
            );
        }
        if let Some(p) = &r.reproducer {
            outln!(out, "{:<18} reproducer: {p}", "");
        }
        if r.violations_dirty_dropped > 0 {
            outln!(
                out,
                "{:<18} {} of the {} dropped a dirty bit in a plain PTE store (pte.dirty_dropped; see docs/FINDINGS.md, section 3)",
                "",
                r.violations_dirty_dropped,
                r.violations
            );
        }
        if r.violations_shared_anon_colours > 0 {
            outln!(
                out,
                "{:<18} {} of the {} mapped shared anonymous memory at two colours (shared_anon.colours; see docs/FINDINGS.md, section 4)",
                "",
                r.violations_shared_anon_colours,
                r.violations
            );
        }
        if let (Some(seed), Some(what)) = (r.first_unfinished_seed, &r.first_unfinished) {
            let k = &r.unfinished_kinds;
            outln!(
                out,
                "{:<18} unfinished: {} deadlock, {} livelock, {} step budget; first: seed {seed}: {what}",
                "",
                k.deadlock,
                k.livelock,
                k.step_budget
            );
            if let Some(p) = &r.unfinished_reproducer {
                outln!(out, "{:<18} reproducer of the unfinished seed: {p}", "");
            }
        }
    }
}

/// The situations table: a row per situation, a column per lineage; each cell is the number of
/// scenarios that met the situation at least once, and how often it was met in all.
fn print_situations(out: &mut Out, results: &[LineageResult]) {
    use vipt_emu::mm::situations::Situation;
    let width = |r: &LineageResult| {
        Situation::ALL
            .iter()
            .map(|&s| cell(r.situation_seeds.0.get(s), r.situations.0.get(s)).len())
            .chain([r.name.len()])
            .max()
            .unwrap_or(1)
    };
    let widths: Vec<usize> = results.iter().map(width).collect();
    let name_w = Situation::ALL.iter().map(|s| s.name().len()).max().unwrap_or(9);
    outln!(out);
    outln!(out, "situations met: scenarios that met each (times met in all)");
    let mut head = format!("{:<name_w$}", "situation");
    for (r, w) in results.iter().zip(&widths) {
        head.push_str(&format!("  {:>w$}", r.name));
    }
    outln!(out, "{head}");
    for &s in Situation::ALL {
        let mut row = format!("{:<name_w$}", s.name());
        for (r, w) in results.iter().zip(&widths) {
            row.push_str(&format!("  {:>w$}", cell(r.situation_seeds.0.get(s), r.situations.0.get(s))));
        }
        outln!(out, "{row}");
    }
}

fn cell(seeds: u64, times: u64) -> String {
    if seeds == 0 { "-".to_string() } else { format!("{seeds} ({times})") }
}
