//! `vipt shrink`: a reproducer reduced while it still shows the same class of outcome.

use std::path::PathBuf;

use clap::Args;
use vipt_harness::shrink::{MAX_RUNS, shrink_within};
use vipt_harness::text::shown_path;
use vipt_tmpalias::Registry;

use super::files::{check_out_file, load};
use super::out::{Out, outln};
use super::status::{CmdResult, Failure, Status};

#[derive(Args, Debug)]
pub(crate) struct ShrinkArgs {
    /// Reproducer file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the minimal reproducer (default: FILE with `.min.json`).
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Stop after this many runs; a smaller reproducer may then exist.
    #[arg(long, value_name = "N", default_value_t = MAX_RUNS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_runs: usize,
}

/// Status 0 when the minimal reproducer is written; 2 when the file's run shows nothing to
/// keep (it is clean) or the output cannot be written.
pub(crate) fn run(registry: &Registry, a: &ShrinkArgs, out: &mut Out) -> CmdResult {
    let (r, l) = load(registry, &a.file)?;
    let dest = a.out.clone().unwrap_or_else(|| a.file.with_extension("min.json"));
    check_out_file("output", &dest)?;
    let Some(rep) = shrink_within(&r, &l, a.max_runs) else {
        return Err(Failure(format!(
            "{}: the run is clean (no violation, and it finishes): nothing to shrink",
            shown_path(&a.file)
        )));
    };
    rep.result.save(&dest)?;
    let removed = (rep.ops.0, rep.cpus.0, rep.maps.0, rep.choices.0)
        != (rep.ops.1, rep.cpus.1, rep.maps.1, rep.choices.1);
    let how = match (rep.budget_hit, removed) {
        (true, _) => format!("stopped at its budget of {} runs (a smaller reproducer may exist)", a.max_runs),
        (false, true) => format!("shrunk in {} runs (nothing more could be removed)", rep.runs),
        (false, false) => format!("nothing could be removed ({} runs)", rep.runs),
    };
    outln!(
        out,
        "{how}: operations {} -> {}, cpus {} -> {}, mappings {} -> {}, choices {} -> {}",
        rep.ops.0,
        rep.ops.1,
        rep.cpus.0,
        rep.cpus.1,
        rep.maps.0,
        rep.maps.1,
        rep.choices.0,
        rep.choices.1
    );
    outln!(out, "{}", rep.result.expect.summary);
    outln!(out, "written to {}", dest.display());
    Ok(Status::Clean)
}
