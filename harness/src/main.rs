//! `vipt`: campaigns, checks, replays and shrinking of VIPT cache-flush scenarios.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// `println!` that ends the program quietly when stdout is closed (`vipt replay | head`).
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}
use vipt_emu::config::Preset;
use vipt_harness::campaign::{CampaignConfig, LineageResult, parse_seeds, run_campaign};
use vipt_harness::repro::Reproducer;
use vipt_harness::scenario::RunConfig;
use vipt_harness::sched::SchedulerKind;
use vipt_harness::shrink::shrink;
use vipt_tmpalias::{Lineage, Registry};

/// Emulates PA-RISC-style VIPT caches under a model of the Linux memory manager and checks
/// whether kernel flush routines keep data correct.
#[derive(Parser, Debug)]
#[command(name = "vipt", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the registered kernel lineages.
    Lineages {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run seeds on lineages and report violations (the default command).
    Campaign(CampaignArgs),
    /// Like campaign for one lineage; exit status 1 when a violation is found (for CI).
    Check(CampaignArgs),
    /// Re-run a reproducer file bit for bit and explain its violation.
    Replay {
        /// Reproducer file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Include every micro-step in the timeline.
        #[arg(long)]
        steps: bool,
    },
    /// Run the kernel's boot-time flush measurement on an emulated machine and price
    /// `flush_dcache_page` per lineage.
    Cost {
        /// Machine preset.
        #[arg(long, default_value = "rp3440")]
        preset: Preset,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write an SVG chart of flush cost against mappings (on the `tiny` machine).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Turn a cargo-fuzz `scenario` input (a crash artifact) into a reproducer file.
    ImportFuzz {
        /// The fuzz input.
        file: PathBuf,
        /// Lineage it was fuzzed with (default: $VIPT_LINEAGE, else linux-6.x).
        #[arg(long)]
        lineage: Option<String>,
        /// Where to write the reproducer (default: FILE with `.json`).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Reduce a reproducer while the same kind of violation still occurs.
    Shrink {
        /// Reproducer file.
        file: PathBuf,
        /// Where to write the minimal reproducer (default: FILE with `.min.json`).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
struct CampaignArgs {
    /// Lineage to run (repeatable; default: every lineage of the default set).
    #[arg(long = "lineage")]
    lineages: Vec<String>,
    /// Seed range `A..B` (end exclusive) or a single seed.
    #[arg(long, default_value = "0..2000", value_parser = parse_seeds)]
    seeds: std::ops::Range<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Scheduler: random or pct.
    #[arg(long, default_value = "random")]
    scheduler: SchedulerKind,
    /// Machine preset: tiny, pa8700, pa8800, pa8800-64m (hypothetical: no kernel can be clean
    /// on it), pipt, rp3440.
    #[arg(long, default_value = "tiny")]
    preset: Preset,
    /// Directory for reproducer files.
    #[arg(long, default_value = "vipt-out")]
    out: PathBuf,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Do not offer speculative move-ins.
    #[arg(long)]
    no_speculation: bool,
    /// Let user accesses overlap the teardown of their mapping (known window, see README).
    #[arg(long)]
    racy_teardown: bool,
    /// Let user accesses overlap access_process_vm writes (known window, see README).
    #[arg(long)]
    racy_poke: bool,
}

impl Default for CampaignArgs {
    fn default() -> Self {
        CampaignArgs {
            lineages: Vec::new(),
            seeds: 0..2000,
            jobs: None,
            scheduler: SchedulerKind::Random,
            preset: Preset::Tiny,
            out: PathBuf::from("vipt-out"),
            json: false,
            no_speculation: false,
            racy_teardown: false,
            racy_poke: false,
        }
    }
}

/// A user error: one line on stderr, exit status 2.
struct UserError(String);

impl<E: std::fmt::Display> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // One line for a bad invocation, as for every other user error.
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            eprintln!("vipt: {line} (see `vipt --help`)");
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let registry = Registry::builtin();
    let result = match cli.cmd.unwrap_or(Cmd::Campaign(CampaignArgs::default())) {
        Cmd::Lineages { json } => lineages(&registry, json),
        Cmd::Campaign(a) => campaign(&registry, &a, false),
        Cmd::Check(a) => campaign(&registry, &a, true),
        Cmd::Replay { file, json, steps } => replay(&registry, &file, json, steps),
        Cmd::Shrink { file, out } => shrink_cmd(&registry, &file, out),
        Cmd::ImportFuzz { file, lineage, out } => import_fuzz(&registry, &file, lineage, out),
        Cmd::Cost { preset, json, plot } => cost(&registry, preset, json, plot),
    };
    match result {
        Ok(code) => code,
        Err(UserError(msg)) => {
            eprintln!("vipt: {msg}");
            ExitCode::from(2)
        }
    }
}

fn lineages(registry: &Registry, json: bool) -> Result<ExitCode, UserError> {
    if json {
        let list: Vec<serde_json::Value> = registry
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "summary": l.summary, "kernel": l.kernel, "bugs": l.bugs,
                    "preset": l.preset.map(|p| p.name()), "default": l.default,
                    "family": l.family.name(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "lineages": list }))?);
    } else {
        for l in registry.iter() {
            let bugs = if l.bugs.is_empty() { String::new() } else { format!(" [{}]", l.bugs.join(" ")) };
            let opt = if l.default { "" } else { " (optional)" };
            let family = match l.family {
                vipt_tmpalias::Family::Mixed => String::new(),
                f => format!(" {{{} workloads}}", f.name()),
            };
            println!("{:<18} {:<30} {}{bugs}{family}{opt}", l.name, l.kernel, l.summary);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn campaign(registry: &Registry, a: &CampaignArgs, check: bool) -> Result<ExitCode, UserError> {
    let chosen: Vec<&Lineage> = if a.lineages.is_empty() {
        if check {
            return Err(UserError("check needs --lineage NAME".into()));
        }
        registry.defaults().collect()
    } else {
        a.lineages
            .iter()
            .map(|n| {
                registry
                    .get(n)
                    .ok_or_else(|| UserError(format!("unknown lineage `{n}` (known: {})", registry.names())))
            })
            .collect::<Result<_, _>>()?
    };
    if a.jobs == Some(0) {
        return Err(UserError("--jobs must be at least 1".into()));
    }
    let cfg = CampaignConfig {
        seeds: a.seeds.clone(),
        jobs: a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        scheduler: a.scheduler,
        run: RunConfig {
            preset: a.preset,
            speculation: !a.no_speculation,
            racy_teardown: a.racy_teardown,
            racy_poke: a.racy_poke,
            ..RunConfig::default()
        },
        out: Some(a.out.clone()),
        progress: !a.json,
    };
    let results = run_campaign(&cfg, &chosen);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "lineages": results }))?);
    } else {
        print_table(&results, &chosen);
        if a.preset.is_hypothetical() {
            println!(
                "note: `{}` is a hypothetical machine: its alias boundary is above the kernel's 4 MiB \
                 colouring, so no kernel can be clean on it",
                a.preset
            );
        }
    }
    let found = results.iter().any(|r| r.violations > 0);
    Ok(if check && found { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_table(results: &[LineageResult], lineages: &[&Lineage]) {
    println!(
        "{:<18} {:>9} {:>10} {:>10} {:>9} {:>9} {:>8}  classes of first violations (historic bugs it can show)",
        "lineage", "scenarios", "violations", "first seed", "to first", "s to 1st", "seconds"
    );
    for (r, l) in results.iter().zip(lineages) {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
        let secs = r.seconds_to_first.map_or("-".to_string(), |s| format!("{s:.3}"));
        let classes: Vec<String> = r.classes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let bugs = if l.bugs.is_empty() { String::new() } else { format!(" ({})", l.bugs.join(" ")) };
        println!(
            "{:<18} {:>9} {:>10} {:>10} {:>9} {:>9} {:>8.2}  {}{bugs}",
            r.name,
            r.scenarios,
            r.violations,
            opt(r.first_violation_seed),
            opt(r.scenarios_to_first),
            secs,
            r.seconds,
            if classes.is_empty() { "clean".to_string() } else { classes.join(", ") },
        );
        if r.anomalies > 0 {
            println!(
                "{:<18} {} scenario(s) hit a deadlock or step limit: a bug of the core",
                "", r.anomalies
            );
        }
        if r.gather_mm_flushes + r.gather_range_flushes > 0 && l.family == vipt_tmpalias::Family::Gather {
            println!(
                "{:<18} mmu_gather flushes: {} whole-mm, {} range",
                "", r.gather_mm_flushes, r.gather_range_flushes
            );
        }
        if let Some(p) = &r.reproducer {
            println!("{:<18} reproducer: {p}", "");
        }
    }
}

fn load(registry: &Registry, file: &std::path::Path) -> Result<(Reproducer, Lineage), UserError> {
    let r = Reproducer::load(file, registry)?;
    let l = registry
        .get(&r.lineage)
        .cloned()
        .ok_or_else(|| UserError(format!("unknown lineage `{}`", r.lineage)))?;
    Ok((r, l))
}

fn replay(
    registry: &Registry, file: &std::path::Path, json: bool, steps: bool,
) -> Result<ExitCode, UserError> {
    let (r, l) = load(registry, file)?;
    let o = r.replay(&l, true);
    let first = o.violations.first();
    let same = first.is_some_and(|v| v.fingerprint() == r.expect.fingerprint);
    if json {
        let out = serde_json::json!({
            "lineage": r.lineage,
            "expected": r.expect.fingerprint,
            "fingerprint": first.map(|v| v.fingerprint()),
            "reproduced": same,
            "violations": o.violations,
            "steps": o.steps,
            "anomaly": o.anomaly,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "lineage {} on {}, {} operations, {} choices, {} micro-steps",
            r.lineage,
            r.preset,
            r.workload.ops(),
            r.choices.len(),
            o.steps
        );
        if let Some(a) = &o.anomaly {
            println!("anomaly: {a}");
        }
        match first {
            None => println!("clean: the recorded violation ({}) did not occur", r.expect.fingerprint),
            Some(v) => {
                println!(
                    "{}: {}",
                    if same {
                        "reproduced"
                    } else {
                        "a different violation (the expected one did not occur first)"
                    },
                    v.summary()
                );
                println!("fingerprint: {}", v.fingerprint());
                for d in &v.detail {
                    println!("  {d}");
                }
                println!("timeline (operations{}):", if steps { " and micro-steps" } else { "" });
                for e in o.timeline.iter().filter(|e| (steps || !e.is_step()) && e.step <= v.step) {
                    println!("  {e}");
                }
                if o.violations.len() > 1 {
                    println!("{} more violation(s) follow from it", o.violations.len() - 1);
                }
            }
        }
    }
    Ok(if first.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn shrink_cmd(
    registry: &Registry, file: &std::path::Path, out: Option<PathBuf>,
) -> Result<ExitCode, UserError> {
    let (r, l) = load(registry, file)?;
    let Some(rep) = shrink(&r, &l) else {
        eprintln!("vipt: {}: the run is clean, nothing to shrink", file.display());
        return Ok(ExitCode::from(1));
    };
    let out = out.unwrap_or_else(|| file.with_extension("min.json"));
    rep.result.save(&out)?;
    println!(
        "shrunk in {} runs: operations {} -> {}, cpus {} -> {}, mappings {} -> {}, choices {} -> {}",
        rep.runs,
        rep.ops.0,
        rep.ops.1,
        rep.cpus.0,
        rep.cpus.1,
        rep.maps.0,
        rep.maps.1,
        rep.choices.0,
        rep.choices.1
    );
    println!("{}", rep.result.expect.summary);
    println!("written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn import_fuzz(
    registry: &Registry, file: &std::path::Path, lineage: Option<String>, out: Option<PathBuf>,
) -> Result<ExitCode, UserError> {
    use vipt_harness::fuzz::{DEFAULT_LINEAGE, FuzzOutcome, scenario_from_bytes};
    let name =
        lineage.or_else(|| std::env::var("VIPT_LINEAGE").ok()).unwrap_or_else(|| DEFAULT_LINEAGE.into());
    let l = registry
        .get(&name)
        .ok_or_else(|| UserError(format!("unknown lineage `{name}` (known: {})", registry.names())))?;
    let data = std::fs::read(file).map_err(|e| UserError(format!("{}: {e}", file.display())))?;
    match scenario_from_bytes(&data, l) {
        FuzzOutcome::Clean => {
            println!("clean on {name}: this input shows no violation");
            Ok(ExitCode::SUCCESS)
        }
        FuzzOutcome::Anomaly(a) => {
            println!("anomaly on {name}: {a}");
            Ok(ExitCode::from(1))
        }
        FuzzOutcome::Violation(r) => {
            let out = out.unwrap_or_else(|| file.with_extension("json"));
            r.save(&out)?;
            println!("{}", r.expect.summary);
            println!("written to {} (replay it with `vipt replay`)", out.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn cost(
    registry: &Registry, preset: Preset, json: bool, plot: Option<PathBuf>,
) -> Result<ExitCode, UserError> {
    use vipt_harness::cost::{Dirty, boot_timing, flush_cost, plot_svg};
    let t = boot_timing(preset);
    let lineages: Vec<&Lineage> = registry.defaults().collect();
    let per: Vec<(String, u64, u64)> = lineages
        .iter()
        .map(|l| (l.name.clone(), flush_cost(l, preset, 1, Dirty::All), flush_cost(l, preset, 8, Dirty::All)))
        .collect();
    if json {
        let ls: Vec<serde_json::Value> = per
            .iter()
            .map(|(n, a, b)| serde_json::json!({ "name": n, "one_mapping_cycles": a, "eight_mappings_cycles": b }))
            .collect();
        let out = serde_json::json!({
            "preset": preset.name(),
            "whole_cache_cycles": t.whole_cache_cycles,
            "range_bytes": t.range_bytes,
            "range_cycles": t.range_cycles,
            "threshold_bytes": t.threshold_bytes,
            "lineages": ls,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{} (emulated cycles)", preset.name());
        println!(
            "Whole cache flush {} cycles, flushing {} bytes {} cycles",
            t.whole_cache_cycles, t.range_bytes, t.range_cycles
        );
        println!("Calculated flush threshold is {} KiB", t.threshold_bytes / 1024);
        println!();
        println!("flush_dcache_page of a page with every line dirty:");
        println!("{:<18} {:>14} {:>16}", "lineage", "1 mapping", "8 mappings");
        for (n, a, b) in &per {
            println!("{n:<18} {a:>14} {b:>16}");
        }
    }
    if let Some(path) = plot {
        let xs = [1usize, 2, 4, 8, 16];
        let series: Vec<(String, Vec<u64>)> = lineages
            .iter()
            .map(|l| {
                (l.name.clone(), xs.iter().map(|&n| flush_cost(l, Preset::Tiny, n, Dirty::All)).collect())
            })
            .collect();
        let svg = plot_svg("flush_dcache_page on tiny, every line dirty", &xs, &series);
        std::fs::write(&path, svg).map_err(|e| UserError(format!("{}: {e}", path.display())))?;
        if !json {
            println!("plot written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
