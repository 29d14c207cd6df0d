//! Emulator throughput: loads and stores through the TLB and the VIPT cache.
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vipt_benches::{access_loop, machine_with_pages};
use vipt_emu::addr::CpuId;
use vipt_emu::config::Preset;

const ACCESSES: u64 = 100_000;

fn emulator(c: &mut Criterion) {
    let mut g = c.benchmark_group("emulator_accesses");
    g.throughput(Throughput::Elements(ACCESSES));
    for preset in [Preset::Tiny, Preset::Pa8700] {
        let mut m = machine_with_pages(preset);
        g.bench_with_input(BenchmarkId::from_parameter(preset.name()), &preset, |b, _| {
            b.iter(|| access_loop(&mut m, CpuId(0), ACCESSES))
        });
    }
    g.finish();
}

criterion_group!(benches, emulator);
criterion_main!(benches);
