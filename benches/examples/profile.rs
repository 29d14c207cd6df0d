//! A fixed amount of work for `valgrind --tool=callgrind`, which counts host instructions
//! exactly where wall time on a shared machine is noisy (see `benches/README.md`):
//!
//! ```sh
//! cargo build --release -p vipt-benches --example profile
//! valgrind --tool=callgrind target/release/examples/profile accesses tiny 1000000
//! valgrind --tool=callgrind target/release/examples/profile scenarios linux-6.x 200
//! ```
//!
//! `accesses PRESET N` runs the emulator benchmark's loop of `N` loads and stores;
//! `scenarios LINEAGE N` runs seeds `0..N` of a lineage as the campaign does (workload
//! generation included) and prints the micro-steps they took; `fuzz LINEAGE N` runs the
//! `scenario` fuzz target's body on `N` fixed inputs of 512 bytes.
#![forbid(unsafe_code)]

use vipt_benches::{access_loop, fuzz_inputs, machine_with_pages};
use vipt_emu::addr::CpuId;
use vipt_emu::config::Preset;
use vipt_harness::fuzz::{FuzzOutcome, scenario_from_bytes};
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::Registry;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: profile accesses PRESET N | profile scenarios LINEAGE N | profile fuzz LINEAGE N";
    let (what, name, n) = match args.as_slice() {
        [_, what, name, n] => (what.as_str(), name.as_str(), n.parse::<u64>().expect(usage)),
        _ => panic!("{usage}"),
    };
    match what {
        "accesses" => {
            let preset = *Preset::ALL.iter().find(|p| p.name() == name).expect("a preset name");
            let mut m = machine_with_pages(preset);
            let sum = access_loop(&mut m, CpuId(0), n);
            println!("{n} accesses on {name}: checksum {sum}");
        }
        "scenarios" => {
            let registry = Registry::builtin();
            let l = registry.get(name).expect("a lineage name");
            let cfg = RunConfig::default();
            let (mut steps, mut violations) = (0u64, 0usize);
            for seed in 0..n {
                let o = run_seed(l, &cfg, SchedulerKind::Random, seed);
                steps += o.steps;
                violations += usize::from(!o.violations.is_empty());
            }
            println!("{n} scenarios of {name}: {steps} micro-steps, {violations} with a violation");
        }
        "fuzz" => {
            let registry = Registry::builtin();
            let l = registry.get(name).expect("a lineage name");
            let inputs = fuzz_inputs(n as usize, 512);
            let found =
                inputs.iter().filter(|d| !matches!(scenario_from_bytes(d, l), FuzzOutcome::Clean)).count();
            println!("{n} fuzz inputs on {name}: {found} not clean");
        }
        _ => panic!("{usage}"),
    }
}
