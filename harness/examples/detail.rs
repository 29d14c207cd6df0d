//! Prints the workload of a seed, the timeline of its run and its first violations.
use vipt_harness::scenario::{RunConfig, run, workload_for};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args[1].parse().unwrap();
    let reg = Registry::builtin();
    let l = reg.get(&args[2]).unwrap();
    let cfg = RunConfig { trace: true, ..RunConfig::default() };
    let w = workload_for(l, &cfg, seed);
    println!("{}", serde_json::to_string_pretty(&w).unwrap());
    let o = run(&cfg, l, &w, SchedulerKind::Random.chooser(seed));
    for e in &o.timeline {
        println!("{e}");
    }
    for v in o.violations.iter().take(3) {
        println!("VIOLATION {}", v.summary());
        for d in &v.detail {
            println!("  {d}");
        }
    }
}
