//! Seeds that fail on lineage A and not on lineage B (which bug A has that B fixed).
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (la, lb, n): (&str, &str, u64) = (&a[1], &a[2], a[3].parse().unwrap());
    let reg = Registry::builtin();
    let (la, lb) = (reg.get(la).unwrap(), reg.get(lb).unwrap());
    let cfg = RunConfig::default();
    let mut only = Vec::new();
    for seed in 0..n {
        let fails = |l| !run_seed(l, &cfg, SchedulerKind::Random, seed).violations.is_empty();
        if fails(la) && !fails(lb) {
            only.push(seed);
        }
    }
    println!(
        "{} seeds fail on {} but not {}: {:?}",
        only.len(),
        la.name,
        lb.name,
        &only[..only.len().min(20)]
    );
}
