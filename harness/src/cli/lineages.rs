//! `vipt lineages`: the registered kernel lineages.

use clap::Args;
use vipt_tmpalias::{Family, Registry};

use super::out::{Out, outln};
use super::status::{CmdResult, Status};

#[derive(Args, Debug)]
pub(crate) struct LineagesArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Status 0.
pub(crate) fn run(registry: &Registry, a: &LineagesArgs, out: &mut Out) -> CmdResult {
    if a.json {
        let list: Vec<serde_json::Value> = registry
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "summary": l.summary, "kernel": l.kernel, "bugs": l.bugs,
                    "preset": l.preset.map(|p| p.name()), "default": l.default,
                    "family": l.family.name(),
                    "runs_families": l.family.runs().iter().map(|f| f.name()).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(out, "{}", serde_json::to_string_pretty(&serde_json::json!({ "lineages": list }))?);
    } else {
        for l in registry.iter() {
            let bugs = if l.bugs.is_empty() { String::new() } else { format!(" [{}]", l.bugs.join(" ")) };
            let opt = if l.default { "" } else { " (optional)" };
            let family = match l.family {
                Family::Mixed => String::new(),
                f => format!(" {{{} workloads}}", f.name()),
            };
            outln!(out, "{:<18} {:<30} {}{bugs}{family}{opt}", l.name, l.kernel, l.summary);
        }
    }
    Ok(Status::Clean)
}
