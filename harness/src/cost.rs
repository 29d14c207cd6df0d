//! The cost model at work: the kernel's boot-time flush measurement
//! (`parisc_setup_cache_timing`) run on an emulated machine, and the emulated cost of
//! `flush_dcache_page` per lineage against the number of mappings and dirty lines.

use std::fmt::Write as _;

use serde::Serialize;
use vipt_emu::addr::{CpuId, PAGE_OFFSET, PAGE_SIZE, Pfn, SpaceId, VirtAddr};
use vipt_emu::arch::{ArchConfig, GenericHooks};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::counters::Counters;
use vipt_emu::machine::Machine;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Executor, Kernel, Op, OpResult};
use vipt_tmpalias::Lineage;

/// Bytes the kernel's range measurement flushes (the rp3440 log flushed 16 MiB).
pub const RANGE_BYTES: u64 = 16 << 20;

/// The three figures `parisc_setup_cache_timing` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BootTiming {
    /// Cycles of a whole-cache flush on every CPU (`flush_data_cache`, measured on the boot
    /// CPU while the others flush their own caches in parallel).
    pub whole_cache_cycles: u64,
    /// Bytes flushed by range.
    pub range_bytes: u64,
    /// Cycles of `flush_kernel_dcache_range` over them.
    pub range_cycles: u64,
    /// `L1_CACHE_ALIGN(range_bytes * whole / range)`: above this, a whole-cache flush is cheaper.
    pub threshold_bytes: u64,
}

fn run_task<'k>(
    k: &'k Kernel, name: &'static str,
    task: std::pin::Pin<Box<dyn std::future::Future<Output = OpResult> + 'k>>,
) -> Counters {
    let before = k.machine().counters;
    let mut ex = Executor::new(k);
    ex.spawn_task(CpuId(0), name, task);
    ex.run_to_completion(CpuId(0)).expect("a lone task never blocks");
    k.machine().counters.since(&before)
}

/// Runs the boot-time measurement on `preset`.
pub fn boot_timing(preset: Preset) -> BootTiming {
    let cfg = preset.config();
    let costs = cfg.costs;
    let ncpus = cfg.cpus as u64;
    let kernel =
        Kernel::new(Machine::new(cfg, Box::new(FirstChooser)), Box::new(GenericHooks), ArchConfig::GENERIC);
    let k = &kernel;
    // Whole cache: the boot CPU's own share of the `fdce` loop (the others run theirs at the
    // same time) plus its IPIs.
    let mut whole = run_task(
        k,
        "flush_data_cache",
        Box::pin(async {
            k.cx(CpuId(0)).flush_cache_all().await;
            OpResult::Done
        }),
    );
    whole.fdce /= ncpus;
    whole.write_backs /= ncpus;
    let whole_cache_cycles = whole.cycles(&costs);
    // Range: `fdc` over the kernel linear map, one line at a time.
    let frames = k.machine().config().frames as u64;
    let range_bytes = RANGE_BYTES.min(frames * PAGE_SIZE);
    let line = k.machine().config().line_bytes;
    let range = run_task(
        k,
        "flush_kernel_dcache_range",
        Box::pin(async move {
            let mut off = 0;
            while off < range_bytes {
                k.cx(CpuId(0)).fdc(SpaceId::KERNEL, VirtAddr::new(PAGE_OFFSET + off)).await;
                off += line;
            }
            OpResult::Done
        }),
    );
    let range_cycles = range.cycles(&costs);
    let raw = range_bytes as u128 * whole_cache_cycles as u128 / range_cycles.max(1) as u128;
    let threshold_bytes = (raw as u64).div_ceil(line) * line;
    BootTiming { whole_cache_cycles, range_bytes, range_cycles, threshold_bytes }
}

/// How many lines of the page are dirty when `flush_dcache_page` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dirty {
    /// None (each mapping has loaded one word).
    None,
    /// Every other line.
    Half,
    /// Every line.
    All,
}

impl Dirty {
    /// All three, in order.
    pub const ALL: [Dirty; 3] = [Dirty::None, Dirty::Half, Dirty::All];

    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Dirty::None => "none",
            Dirty::Half => "half",
            Dirty::All => "all",
        }
    }
}

/// A kernel with one file page mapped shared (at the kernel's congruent address) by
/// `mappings` processes, written through those mappings as `dirty` says: ready for
/// `flush_dcache_page`.
pub struct FlushBench {
    /// The kernel.
    pub kernel: Kernel,
    /// The page-cache page.
    pub page: Pfn,
}

impl FlushBench {
    /// Builds the set-up on `preset` (or the lineage's own machine).
    pub fn new(lineage: &Lineage, preset: Preset, mappings: usize, dirty: Dirty) -> FlushBench {
        let cfg = lineage.preset.unwrap_or(preset).config();
        let ncpus = cfg.cpus;
        let lines = cfg.lines_per_page();
        let wpl = cfg.words_per_line();
        let k = lineage.boot(cfg, Box::new(FirstChooser));
        let file = k.create_file(1, 0);
        let mut ops = Vec::new();
        {
            let mut ex = Executor::new(&k);
            for i in 0..mappings {
                let cpu = CpuId((i % ncpus) as u8);
                let mm = k.create_mm().expect("frames for the bench's processes");
                let args =
                    MmapArgs { pages: 1, file: Some((file, 0)), shared: true, writable: true, fixed: None };
                ex.spawn(cpu, Op::Mmap { mm, args });
                let OpResult::Mapped(va) = ex.run_to_completion(cpu).expect("no contention") else {
                    panic!("the bench's mmap failed")
                };
                ops.push((cpu, Op::Load { mm, va }));
                let stride = match dirty {
                    Dirty::None => 0,
                    Dirty::Half => 2,
                    Dirty::All => 1,
                };
                if stride > 0 {
                    for l in (0..lines).step_by(stride) {
                        ops.push((
                            cpu,
                            Op::Store { mm, va: va.with_word(l * wpl), value: (i * 1000 + l) as u64 + 1 },
                        ));
                    }
                }
            }
            ex.run_sequential(&ops).expect("no contention");
        }
        let page = k.state().files[file.index()].cached(0).expect("the page is cached");
        FlushBench { kernel: k, page }
    }

    /// Runs `flush_dcache_page` on CPU 0; returns the counters it caused.
    pub fn flush(&self) -> Counters {
        let (k, page) = (&self.kernel, self.page);
        run_task(
            k,
            "flush_dcache_page",
            Box::pin(async move {
                k.arch(CpuId(0)).flush_dcache_page(page).await;
                OpResult::Done
            }),
        )
    }

    /// Emulated cycles of `counters` on this machine.
    pub fn cycles(&self, c: &Counters) -> u64 {
        c.cycles(&self.kernel.machine().config().costs)
    }
}

/// Emulated cycles of one `flush_dcache_page` for `lineage`.
pub fn flush_cost(lineage: &Lineage, preset: Preset, mappings: usize, dirty: Dirty) -> u64 {
    let b = FlushBench::new(lineage, preset, mappings, dirty);
    let c = b.flush();
    b.cycles(&c)
}

/// An SVG line chart: emulated cycles (log scale) against the number of mappings, one line
/// per series.
pub fn plot_svg(title: &str, xs: &[usize], series: &[(String, Vec<u64>)]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 440.0, 80.0, 200.0, 40.0, 50.0);
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(1).max(10) as f64;
    let min = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|&v| v > 0).min().unwrap_or(1).max(1)
        as f64;
    let (lo, hi) = (min.log10().floor(), max.log10().ceil().max(min.log10().floor() + 1.0));
    let px = |i: usize| left + (w - left - right) * i as f64 / (xs.len().max(2) - 1) as f64;
    let py = |v: u64| top + (h - top - bottom) * (1.0 - ((v.max(1) as f64).log10() - lo) / (hi - lo));
    let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
        "#17becf",
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#,
        (w - right + left) / 2.0
    );
    for e in (lo as i32)..=(hi as i32) {
        let y = py(10u64.pow(e as u32));
        let _ = writeln!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="lightgray"/>"#,
            w - right
        );
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">1e{e}</text>"#, left - 6.0, y + 4.0);
    }
    for (i, x) in xs.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{x}</text>"#,
            px(i),
            h - bottom + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">mappings of the page</text>"#,
        (w - right + left) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">emulated cycles</text>"#,
        h / 2.0,
        h / 2.0
    );
    for (n, (name, vals)) in series.iter().enumerate() {
        let c = colours[n % colours.len()];
        let zero = vals.iter().all(|&v| v == 0);
        if !zero {
            let pts: Vec<String> =
                vals.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", px(i), py(v))).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
        }
        let ly = top + 18.0 * n as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="3"/>"#,
            w - right + 12.0,
            w - right + 32.0
        );
        let label = if zero { format!("{name} (0: not drawn)") } else { name.clone() };
        let _ = writeln!(s, r#"<text x="{}" y="{}">{label}</text>"#, w - right + 38.0, ly + 4.0);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipt_tmpalias::Registry;

    #[test]
    fn rp3440_reproduces_the_boot_log_within_ten_percent() {
        let t = boot_timing(Preset::Rp3440);
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.10;
        assert!(near(t.whole_cache_cycles, 2_696_560), "{t:?}");
        assert_eq!(t.range_bytes, 16 << 20);
        assert!(near(t.range_cycles, 5_080_984), "{t:?}");
        assert!(near(t.threshold_bytes, 8695 * 1024), "{t:?}");
    }

    #[test]
    fn flush_costs_order_as_the_designs_say() {
        let r = Registry::builtin();
        let cost = |name: &str, n| flush_cost(r.get(name).unwrap(), Preset::Tiny, n, Dirty::All);
        // The 2022 PA8800 path flushes every mapping; current kernels one per colour.
        let pa8800 = |n| flush_cost(r.get("linux-6.0").unwrap(), Preset::Pa8800, n, Dirty::All);
        let (a, b, c) = (pa8800(1), pa8800(2), pa8800(8));
        assert!(a < b && b < c && c - a >= 6 * (b - a), "{a} {b} {c}");
        assert_eq!(cost("linux-6.x", 8), cost("linux-6.x", 1));
        // Whole-cache is the ceiling, PIPT the floor.
        assert!(cost("whole-cache", 1) > cost("linux-6.x", 8));
        assert_eq!(cost("pipt", 8), 0);
    }
}
