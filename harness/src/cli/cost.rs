//! `vipt cost`: the kernel's boot-time flush measurement and `flush_dcache_page`'s cost.

use std::path::PathBuf;

use clap::Args;
use vipt_emu::config::Preset;
use vipt_harness::cost::{Dirty, boot_timing, flush_cost, plot_svg};
use vipt_harness::text::shown_path;
use vipt_tmpalias::{Lineage, Registry};

use super::files::check_out_file;
use super::out::{Out, outln};
use super::parse_preset;
use super::status::{CmdResult, Failure, Status};

#[derive(Args, Debug)]
pub(crate) struct CostArgs {
    /// Machine preset.
    #[arg(long, default_value = "rp3440", value_parser = parse_preset)]
    preset: Preset,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart of flush cost against mappings (on the `tiny` machine).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Status 0; 2 (before anything is printed) when the plot cannot be written.
pub(crate) fn run(registry: &Registry, a: &CostArgs, out: &mut Out) -> CmdResult {
    if let Some(path) = &a.plot {
        check_out_file("--plot", path)?;
    }
    let preset = a.preset;
    let t = boot_timing(preset);
    let lineages: Vec<&Lineage> = registry.defaults().collect();
    let per: Vec<(String, u64, u64)> = lineages
        .iter()
        .map(|l| (l.name.clone(), flush_cost(l, preset, 1, Dirty::All), flush_cost(l, preset, 8, Dirty::All)))
        .collect();
    if let Some(path) = &a.plot {
        let xs = [1usize, 2, 4, 8, 16];
        let series: Vec<(String, Vec<u64>)> = lineages
            .iter()
            .map(|l| {
                (l.name.clone(), xs.iter().map(|&n| flush_cost(l, Preset::Tiny, n, Dirty::All)).collect())
            })
            .collect();
        let svg = plot_svg("flush_dcache_page on tiny, every line dirty", &xs, &series);
        std::fs::write(path, svg).map_err(|e| Failure(format!("--plot {}: {e}", shown_path(path))))?;
    }
    if a.json {
        let ls: Vec<serde_json::Value> = per
            .iter()
            .map(|(n, a, b)| serde_json::json!({ "name": n, "one_mapping_cycles": a, "eight_mappings_cycles": b }))
            .collect();
        let v = serde_json::json!({
            "preset": preset.name(),
            "whole_cache_cycles": t.whole_cache_cycles,
            "range_bytes": t.range_bytes,
            "range_cycles": t.range_cycles,
            "threshold_bytes": t.threshold_bytes,
            "lineages": ls,
        });
        outln!(out, "{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(out, "{} (emulated cycles)", preset.name());
        outln!(
            out,
            "Whole cache flush {} cycles, flushing {} bytes {} cycles",
            t.whole_cache_cycles,
            t.range_bytes,
            t.range_cycles
        );
        outln!(out, "Calculated flush threshold is {} KiB", t.threshold_bytes / 1024);
        outln!(out);
        outln!(out, "flush_dcache_page of a page with every line dirty:");
        outln!(out, "{:<18} {:>14} {:>16}", "lineage", "1 mapping", "8 mappings");
        for (n, a, b) in &per {
            outln!(out, "{n:<18} {a:>14} {b:>16}");
        }
        if let Some(path) = &a.plot {
            outln!(out, "plot written to {}", path.display());
        }
    }
    Ok(Status::Clean)
}
