//! Harness throughput: scenarios per second, one core, each lineage on the workloads of its
//! own seeds (all four lineages draw the standard mixed family).
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, scenarios);
criterion_main!(benches);
