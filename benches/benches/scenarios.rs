//! Harness throughput: scenarios per second, one core, each lineage on the workloads of its
//! own seeds (all four lineages draw the standard mixed family); a campaign on one and on two
//! worker threads (how `--jobs` scales); and the `scenario` fuzz target's body on fixed
//! inputs (executions per second without libFuzzer's instrumentation).
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vipt_benches::fuzz_inputs;
use vipt_harness::campaign::{CampaignConfig, SeedRange, run_campaign};
use vipt_harness::fuzz::{DEFAULT_LINEAGE, FuzzOutcome, scenario_from_bytes};
use vipt_harness::scenario::{RunConfig, run, workload_for};
use vipt_harness::sched::SchedulerKind;
use vipt_harness::workload::Workload;
use vipt_tmpalias::Registry;

const SCENARIOS: u64 = 64;

fn scenarios(c: &mut Criterion) {
    let registry = Registry::builtin();
    let cfg = RunConfig::default();
    let mut g = c.benchmark_group("scenarios");
    g.throughput(Throughput::Elements(SCENARIOS));
    g.sample_size(20);
    for name in ["pipt", "linux-2.6.14", "linux-6.x", "whole-cache"] {
        let l = registry.get(name).expect("built-in");
        let workloads: Vec<Workload> = (0..SCENARIOS).map(|s| workload_for(l, &cfg, s)).collect();
        g.bench_with_input(BenchmarkId::from_parameter(name), &workloads, |b, ws| {
            b.iter(|| {
                let mut steps = 0;
                for (seed, w) in ws.iter().enumerate() {
                    steps += run(&cfg, l, w, SchedulerKind::Random.chooser(seed as u64)).steps;
                }
                steps
            })
        });
    }
    g.finish();
}

/// Seeds per iteration of the campaign benchmark.
const CAMPAIGN_SEEDS: u64 = 256;

fn campaign(c: &mut Criterion) {
    let registry = Registry::builtin();
    let l = registry.get("linux-6.x").expect("built-in");
    let mut g = c.benchmark_group("campaign_linux-6.x");
    g.throughput(Throughput::Elements(CAMPAIGN_SEEDS));
    g.sample_size(10);
    for jobs in [1, 2] {
        let cfg = CampaignConfig {
            seeds: SeedRange::exclusive(0, CAMPAIGN_SEEDS).expect("a range"),
            jobs,
            scheduler: SchedulerKind::Random,
            run: RunConfig::default(),
            out: None,
            progress: false,
        };
        g.bench_with_input(BenchmarkId::new("jobs", jobs), &cfg, |b, cfg| {
            b.iter(|| run_campaign(cfg, &[l]).lineages.len())
        });
    }
    g.finish();
}

/// Fuzz inputs per iteration of the fuzz benchmark.
const FUZZ_INPUTS: usize = 32;

fn fuzz(c: &mut Criterion) {
    let registry = Registry::builtin();
    let l = registry.get(DEFAULT_LINEAGE).expect("built-in");
    let inputs = fuzz_inputs(FUZZ_INPUTS, 512);
    let mut g = c.benchmark_group("fuzz_scenario");
    g.throughput(Throughput::Elements(FUZZ_INPUTS as u64));
    g.sample_size(20);
    g.bench_with_input(BenchmarkId::from_parameter(DEFAULT_LINEAGE), &inputs, |b, inputs| {
        b.iter(|| inputs.iter().filter(|d| !matches!(scenario_from_bytes(d, l), FuzzOutcome::Clean)).count())
    });
    g.finish();
}

criterion_group!(benches, scenarios, campaign, fuzz);
criterion_main!(benches);
