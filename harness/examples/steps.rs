// Prints every pending action of every CPU step by step in a window (debug aid).
use vipt_harness::scenario::{RunConfig, run};
use vipt_harness::sched::{Recorder, SchedulerKind};
use vipt_harness::workload::Workload;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args[1].parse().unwrap();
    let reg = Registry::builtin();
    let l = reg.get(&args[2]).unwrap();
    let cfg = RunConfig { trace: true, ..RunConfig::default() };
    let w = Workload::generate(seed, 4);
    let (rec, tape) = Recorder::new(SchedulerKind::Random.chooser(seed));
    let o = run(&cfg, l, &w, Box::new(rec));
    println!("choices {}", tape.borrow().len());
    for v in o.violations.iter().take(1) {
        println!("{}", v.summary());
    }
}
