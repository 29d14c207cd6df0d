//! Runs one seed of a lineage with tracing and prints how many choices it drew and its first
//! violation (debug aid).
use vipt_harness::scenario::{Recording, RunConfig, record_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args[1].parse().unwrap();
    let reg = Registry::builtin();
    let l = reg.get(&args[2]).unwrap();
    let cfg = RunConfig { trace: true, ..RunConfig::default() };
    let Recording { choices, outcome: o, .. } = record_seed(l, &cfg, SchedulerKind::Random, seed);
    println!("choices {}", choices.len());
    for v in o.violations.iter().take(1) {
        println!("{}", v.summary());
    }
}
