//! Cost of bare micro-steps (a label yield, no machine action) through the executor.
use vipt_emu::addr::CpuId;
use vipt_emu::arch::{ArchConfig, GenericHooks};
use vipt_emu::choice::SeededChooser;
use vipt_emu::config::Preset;
use vipt_emu::machine::Machine;
use vipt_emu::mm::{Executor, Kernel, OpResult};
fn main() {
    let m = Machine::new(Preset::Tiny.config(), Box::new(SeededChooser::new(1)));
    let k = Kernel::new(m, Box::new(GenericHooks), ArchConfig::GENERIC);
    let n: u64 = std::env::args().nth(1).map_or(2_000_000, |s| s.parse().unwrap());
    let t = std::time::Instant::now();
    let mut ex = Executor::new(&k);
    ex.speculation = true;
    for c in 0..2u8 {
        let kr = &k;
        ex.spawn_task(
            CpuId(c),
            "spin",
            Box::pin(async move {
                for _ in 0..n / 2 {
                    kr.label(CpuId(c), "x").await;
                }
                OpResult::Done
            }),
        );
    }
    while ex.schedule_step().unwrap().is_some() {}
    let s = t.elapsed().as_secs_f64();
    println!("{:.1} ns per scheduled bare step (speculation offered)", s * 1e9 / n as f64);
}
