//! Per lineage, over seeds 0..N: violations, anomalies, steps per scenario and the classes of
//! first violations.
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(200, |s| s.parse().unwrap());
    let only = args.get(2).cloned();
    let reg = Registry::builtin();
    let cfg = RunConfig::default();
    for l in reg.iter() {
        if only.as_ref().is_some_and(|o| o != &l.name) {
            continue;
        }
        let t = std::time::Instant::now();
        let (mut viol, mut anom, mut steps, mut first) = (0, 0, 0u64, None);
        let mut classes = std::collections::BTreeMap::new();
        for seed in 0..n {
            let o = run_seed(l, &cfg, SchedulerKind::Random, seed);
            steps += o.steps;
            if o.anomaly.is_some() {
                anom += 1;
                if anom <= 2 {
                    println!("  anomaly seed {seed}: {:?}", o.anomaly);
                }
            }
            if !o.violations.is_empty() {
                viol += 1;
                first.get_or_insert(seed);
                *classes.entry(o.violations[0].class()).or_insert(0) += 1;
            }
        }
        println!(
            "{:14} viol {viol:5} anom {anom:3} first {first:?} steps/scen {} {:.2}s {:?}",
            l.name,
            steps / n,
            t.elapsed().as_secs_f64(),
            classes
        );
    }
}
