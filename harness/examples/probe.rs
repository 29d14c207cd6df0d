//! Per lineage, over seeds 0..N: violations, unfinished scenarios, steps per scenario, how
//! much of its step budget the hungriest scenario used, and the classes of first violations.
//!
//! `cargo run --release -p vipt-harness --example probe -- [N] [LINEAGE] [PRESET]`
use vipt_emu::config::Preset;
use vipt_harness::scenario::{RunConfig, run_seed, step_budget, workload_for};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(200, |s| s.parse().expect("N is a number"));
    let only = args.get(2).cloned().filter(|s| s != "all");
    let preset: Preset = args.get(3).map_or(Preset::Tiny, |s| s.parse().expect("a preset"));
    let reg = Registry::builtin();
    let cfg = RunConfig { preset, ..RunConfig::default() };
    for l in reg.iter() {
        if only.as_ref().is_some_and(|o| o != &l.name) {
            continue;
        }
        let t = std::time::Instant::now();
        let (mut viol, mut unfinished, mut steps, mut first) = (0, 0, 0u64, None);
        let (mut max_steps, mut max_share) = (0u64, 0f64);
        let mut classes = std::collections::BTreeMap::new();
        let mc = l.preset.unwrap_or(preset).config();
        for seed in 0..n {
            let o = run_seed(l, &cfg, SchedulerKind::Random, seed);
            steps += o.steps;
            max_steps = max_steps.max(o.steps);
            // The steps the run would take if every fdce set were a step of its own.
            let uncoalesced = o.steps + o.counters.fdce;
            let budget = step_budget(&workload_for(l, &cfg, seed), &mc);
            max_share = max_share.max(uncoalesced as f64 / budget as f64);
            if let Some(u) = &o.unfinished {
                unfinished += 1;
                if unfinished <= 2 {
                    println!("  unfinished seed {seed}: {}", u.summary());
                }
            }
            if !o.violations.is_empty() {
                viol += 1;
                first.get_or_insert(seed);
                *classes.entry(o.violations[0].class()).or_insert(0) += 1;
            }
        }
        println!(
            "{:14} viol {viol:5} unfinished {unfinished:3} first {first:?} steps/scen {} max {max_steps} \
             max budget share (uncoalesced) {max_share:.5} {:.2}s {:?}",
            l.name,
            steps / n.max(1),
            t.elapsed().as_secs_f64(),
            classes
        );
    }
}
