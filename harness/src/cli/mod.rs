//! The `vipt` command line: one module per command, and the shared handling of arguments,
//! output and exit statuses ([`status`], [`out`], [`files`]).
//!
//! Every command returns a [`status::Status`] or a [`status::Failure`] (status 2, one line on
//! stderr) and writes its output through an [`out::Out`], so that a closed pipe ends the output
//! quietly and any other write failure is status 2.

mod campaign;
mod compare;
mod cost;
mod files;
mod import_fuzz;
mod lineages;
mod merge;
mod out;
mod replay;
mod shrink;
mod status;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};
use vipt_emu::config::Preset;
use vipt_harness::sched::SchedulerKind;
use vipt_harness::text::{SHOWN_CHARS, shown};
use vipt_tmpalias::{Family, Lineage, Registry};

use out::{Out, error};
use status::{EXIT_STATUS_HELP, Status};

/// Emulates PA-RISC-style VIPT caches under a model of the Linux memory manager and checks
/// whether kernel flush routines keep data correct.
#[derive(Parser, Debug)]
#[command(name = "vipt", version, about, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the registered kernel lineages.
    Lineages(lineages::LineagesArgs),
    /// Run seeds on lineages and report violations (the default command); exit status 0.
    #[command(after_help = EXIT_STATUS_HELP)]
    Campaign(campaign::CampaignArgs),
    /// Like campaign for the lineages named (at least one), for CI: exit status 1 on a violation, 3 on an
    /// unfinished scenario.
    #[command(after_help = EXIT_STATUS_HELP)]
    Check(campaign::CheckArgs),
    /// Run two lineages seed by seed and list the seeds that fail on one and not the other,
    /// with their classes; exit status 0.
    #[command(after_help = EXIT_STATUS_HELP)]
    Compare(compare::CompareArgs),
    /// Combine the JSON outputs of `campaign --json --shard K/N` for every K into the JSON of
    /// the whole seed range; exit status 0.
    #[command(after_help = EXIT_STATUS_HELP)]
    Merge(merge::MergeArgs),
    /// Re-run a reproducer file bit for bit and explain what it shows.
    #[command(after_help = EXIT_STATUS_HELP)]
    Replay(replay::ReplayArgs),
    /// Run the kernel's boot-time flush measurement on an emulated machine and price
    /// `flush_dcache_page` per lineage.
    Cost(cost::CostArgs),
    /// Turn a cargo-fuzz `scenario` input (a crash artifact) into a reproducer file.
    #[command(after_help = EXIT_STATUS_HELP)]
    ImportFuzz(import_fuzz::ImportFuzzArgs),
    /// Reduce a reproducer while the same kind of violation (or of unfinished run) still
    /// occurs first.
    #[command(after_help = EXIT_STATUS_HELP)]
    Shrink(shrink::ShrinkArgs),
}

/// Parses a preset name (clap value parser).
fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse().map_err(|_| {
        let known: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
        format!("unknown preset `{}` (known: {})", shown(s), known.join(", "))
    })
}

/// Parses a scheduler name (clap value parser).
fn parse_scheduler(s: &str) -> Result<SchedulerKind, String> {
    s.parse().map_err(|_| format!("unknown scheduler `{}` (known: random, pct, window)", shown(s)))
}

/// Parses a workload family name (clap value parser).
fn parse_family(s: &str) -> Result<Family, String> {
    s.parse().map_err(|e: String| e.replace(s, &shown(s)))
}

/// The workload family `asked` for each of `lineages`, or the first that cannot run it.
fn check_family(lineages: &[&Lineage], asked: Option<Family>) -> Result<(), status::Failure> {
    for l in lineages {
        l.family_for(asked).map_err(status::Failure)?;
    }
    Ok(())
}

/// A clap error as one line: its message and the context lines, without usage and tips; any
/// long value it quotes cut to size.
fn clap_line(e: &clap::Error) -> String {
    let mut msg = e
        .render()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Usage:")
                && !l.starts_with("For more information")
                && !l.starts_with("tip:")
        })
        .collect::<Vec<_>>()
        .join(" ");
    msg = msg.trim_start_matches("error: ").to_string();
    for kind in [ContextKind::InvalidValue, ContextKind::InvalidArg, ContextKind::InvalidSubcommand] {
        if let Some(ContextValue::String(v)) = e.get(kind)
            && v.chars().count() > SHOWN_CHARS
        {
            msg = msg.replace(v.as_str(), &shown(v));
        }
    }
    msg
}

/// Runs the command line and gives the process's exit status.
pub(crate) fn main() -> std::process::ExitCode {
    let mut out = Out::new();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            out::outln!(out, "{}", e.render().to_string().trim_end());
            return out.finish(Status::Clean).code();
        }
        Err(e) => {
            // One line for a bad invocation, as for every other user error.
            error(&format!("{} (see `vipt --help`)", clap_line(&e)));
            return Status::Error.code();
        }
    };
    let registry = Registry::builtin();
    let result = match cli.cmd.unwrap_or(Cmd::Campaign(campaign::CampaignArgs::default())) {
        Cmd::Lineages(a) => lineages::run(&registry, &a, &mut out),
        Cmd::Campaign(a) => campaign::campaign(&registry, &a, &mut out),
        Cmd::Check(a) => campaign::check(&registry, &a, &mut out),
        Cmd::Compare(a) => compare::run(&registry, &a, &mut out),
        Cmd::Merge(a) => merge::run(&a, &mut out),
        Cmd::Replay(a) => replay::run(&registry, &a, &mut out),
        Cmd::Shrink(a) => shrink::run(&registry, &a, &mut out),
        Cmd::ImportFuzz(a) => import_fuzz::run(&registry, &a, &mut out),
        Cmd::Cost(a) => cost::run(&registry, &a, &mut out),
    };
    let status = match result {
        Ok(s) => s,
        Err(status::Failure(msg)) => {
            error(&msg);
            Status::Error
        }
    };
    // A failed write to stdout is status 2 — unless the command already failed, whose line
    // then stays the only one.
    if status == Status::Error {
        drop(out);
        return status.code();
    }
    out.finish(status).code()
}
