//! Runs N scenarios of one lineage on one thread (for profiling).
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(500, |s| s.parse().unwrap());
    let name = args.get(2).map_or("linux-6.x", |s| s.as_str());
    let reg = Registry::builtin();
    let l = reg.get(name).unwrap();
    let cfg = RunConfig::default();
    let t = std::time::Instant::now();
    let mut steps = 0;
    for seed in 0..n {
        steps += run_seed(l, &cfg, SchedulerKind::Random, seed).steps;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name}: {n} scenarios in {s:.2}s = {:.0}/s, {:.0} steps/scenario, {:.1} ns/step",
        n as f64 / s,
        steps as f64 / n as f64,
        s * 1e9 / steps as f64
    );
}
