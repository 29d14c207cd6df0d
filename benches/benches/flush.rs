//! `flush_dcache_page` per lineage against the number of mappings of the page and the number of
//! dirty lines: host time per call, with the emulated cycles of each case written beside it to
//! `target/criterion/flush_dcache_page/emulated-cycles.csv`.
use std::fmt::Write as _;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vipt_emu::config::Preset;
use vipt_harness::cost::{Dirty, FlushBench};
use vipt_tmpalias::Registry;

fn flush(c: &mut Criterion) {
    let registry = Registry::builtin();
    let mut csv = String::from("lineage,mappings,dirty,emulated_cycles,fdc,write_backs,fdce,purges\n");
    let mut g = c.benchmark_group("flush_dcache_page");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for l in registry.defaults() {
        for mappings in [1usize, 2, 4, 8, 16] {
            for dirty in Dirty::ALL {
                let probe = FlushBench::new(l, Preset::Tiny, mappings, dirty);
                let cnt = probe.flush();
                let _ = writeln!(
                    csv,
                    "{},{mappings},{},{},{},{},{},{}",
                    l.name,
                    dirty.name(),
                    probe.cycles(&cnt),
                    cnt.fdc,
                    cnt.write_backs,
                    cnt.fdce,
                    cnt.purges_local + cnt.purges_broadcast
                );
                g.throughput(Throughput::Elements(mappings as u64));
                let id = BenchmarkId::new(&l.name, format!("{mappings}x{}", dirty.name()));
                g.bench_function(id, |b| {
                    b.iter_batched(
                        || FlushBench::new(l, Preset::Tiny, mappings, dirty),
                        |bench| bench.flush(),
                        BatchSize::LargeInput,
                    )
                });
            }
        }
    }
    g.finish();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion/flush_dcache_page");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("emulated-cycles.csv"), csv);
    }
}

criterion_group!(benches, flush);
criterion_main!(benches);
