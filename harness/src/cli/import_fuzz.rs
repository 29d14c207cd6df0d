//! `vipt import-fuzz`: a cargo-fuzz `scenario` input turned into a reproducer.

use std::path::PathBuf;

use clap::Args;
use vipt_harness::fuzz::{DEFAULT_LINEAGE, FuzzOutcome, scenario_from_bytes_in};
use vipt_harness::repro::read_bounded;
use vipt_tmpalias::{Family, Registry};

use super::files::check_out_file;
use super::out::{Out, outln, q};
use super::parse_family;
use super::status::{CmdResult, Failure, Status};

/// The largest fuzz input read (libFuzzer's inputs are a few KiB).
pub(crate) const MAX_FUZZ_BYTES: u64 = 1 << 20;

#[derive(Args, Debug)]
pub(crate) struct ImportFuzzArgs {
    /// The fuzz input (at most 1 MiB).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Lineage it was fuzzed with (default: $VIPT_LINEAGE, else linux-6.x).
    #[arg(long, value_name = "NAME")]
    lineage: Option<String>,
    /// Workload family it was fuzzed with (default: $VIPT_FAMILY, else the lineage's own).
    #[arg(long, value_name = "NAME", value_parser = parse_family)]
    family: Option<Family>,
    /// Where to write the reproducer (default: FILE with `.json`).
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
}

/// Status 1 when the input shows a violation, 3 when its run does not finish without one
/// (a reproducer is written for both), 0 when clean.
pub(crate) fn run(registry: &Registry, a: &ImportFuzzArgs, out: &mut Out) -> CmdResult {
    let name = a
        .lineage
        .clone()
        .or_else(|| std::env::var("VIPT_LINEAGE").ok())
        .unwrap_or_else(|| DEFAULT_LINEAGE.into());
    let l = registry
        .get(&name)
        .ok_or_else(|| Failure(format!("unknown lineage `{}` (known: {})", q(&name), registry.names())))?;
    let family = match a.family {
        Some(f) => Some(f),
        None => match std::env::var("VIPT_FAMILY") {
            Ok(n) => Some(parse_family(&n).map_err(|e| Failure(format!("VIPT_FAMILY: {e}")))?),
            Err(_) => None,
        },
    };
    l.family_for(family).map_err(Failure)?;
    let dest = a.out.clone().unwrap_or_else(|| a.file.with_extension("json"));
    let data = read_bounded(&a.file, MAX_FUZZ_BYTES)?;
    check_out_file("output", &dest)?;
    let (r, status) = match scenario_from_bytes_in(&data, l, family) {
        FuzzOutcome::Clean => {
            outln!(out, "clean on {name}: this input shows no violation and finishes");
            return Ok(Status::Clean);
        }
        FuzzOutcome::Violation(r) => (r, Status::Violation),
        FuzzOutcome::Unfinished(r) => (r, Status::Unfinished),
    };
    r.save(&dest)?;
    outln!(out, "{}", r.expect.summary);
    outln!(out, "written to {} (replay it with `vipt replay`)", dest.display());
    Ok(status)
}
