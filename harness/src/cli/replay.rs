//! `vipt replay`: a reproducer re-run bit for bit, and what it shows.

use std::path::Path;

use clap::Args;
use vipt_harness::account::{LEGEND, account};
use vipt_harness::repro::Expect;
use vipt_tmpalias::Registry;

use vipt_emu::config::Preset;
use vipt_harness::text::shown_path;

use vipt_harness::html::{PageInfo, page};

use super::files::{check_out_file, load};
use super::out::{Out, outln, q, warn};
use super::status::{CmdResult, Failure, Status};

#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// Reproducer file.
    #[arg(value_name = "FILE")]
    file: std::path::PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Include every micro-step in the timeline.
    #[arg(long)]
    steps: bool,
    /// Run the reproducer's workload on lineage NAME instead of its own, with its recorded
    /// choices as far as they apply (the schedule diverges where the kernels' routines differ).
    #[arg(long, value_name = "NAME")]
    lineage: Option<String>,
    /// Also write the drawing of the run to OUT.html: one self-contained page (inline SVG, no
    /// outside scripts or fonts) to open in a browser. Checked before the run.
    #[arg(long, value_name = "OUT.html")]
    html: Option<std::path::PathBuf>,
}

/// Status 1 when a violation occurs, 3 when the run does not finish without one, 0 when clean.
pub(crate) fn run(registry: &Registry, a: &ReplayArgs, out: &mut Out) -> CmdResult {
    if let Some(h) = &a.html {
        check_out_file("--html", h)?;
    }
    replay(registry, &a.file, a.json, a.steps, a.lineage.as_deref(), a.html.as_deref(), out)
}

fn replay(
    registry: &Registry, file: &Path, json: bool, steps: bool, other: Option<&str>, html: Option<&Path>,
    out: &mut Out,
) -> CmdResult {
    let (r, own) = load(registry, file)?;
    let l = match other {
        None => own.clone(),
        Some(name) => {
            let l = registry.get(name).cloned().ok_or_else(|| {
                Failure(format!("unknown lineage `{}` (known: {})", q(name), registry.names()))
            })?;
            let preset: Preset = r.preset.parse().unwrap_or(Preset::Tiny);
            let cpus = l.preset.unwrap_or(preset).config().cpus;
            r.workload.validate(cpus).map_err(|e| {
                Failure(format!("{}: the workload does not fit {}'s machine: {e}", shown_path(file), l.name))
            })?;
            let asked = r.run_config(false).family;
            l.family_for(asked).map_err(|e| Failure(format!("{}: {e}", shown_path(file))))?;
            if l.family_for(asked) != own.family_for(asked) {
                warn(&format!(
                    "{} belongs to another workload family than {}: its checks may not apply to this workload",
                    l.name, own.name
                ));
            }
            l
        }
    };
    let elsewhere = l.name != own.name;
    let o = r.replay(&l, true);
    let machine = l.preset.unwrap_or(r.preset.parse().unwrap_or(Preset::Tiny)).config();
    if let Some(h) = html {
        let acct = account(&o, &l.name, machine.line_bytes);
        let head = match (o.violations.first(), &o.unfinished) {
            (Some(v), _) => v.summary(),
            (None, Some(u)) => format!("the run did not finish: {}", u.summary()),
            (None, None) => "clean".to_string(),
        };
        let title = format!("{} on {}: {head}", l.name, machine.name);
        let info =
            PageInfo { title: &title, account: &acct, line_bytes: machine.line_bytes, sets: machine.sets };
        std::fs::write(h, page(&o, &info))
            .map_err(|e| Failure(format!("--html {}: cannot write: {e}", shown_path(h))))?;
    }
    let first = o.violations.first();
    let found = Expect::of_outcome(&o);
    let same = !elsewhere && found.as_ref().is_some_and(|e| e.fingerprint == r.expect.fingerprint);
    let status = Status::of(first.is_some(), o.unfinished.is_some());
    if json {
        let v = serde_json::json!({
            "lineage": l.name,
            "recorded_on": r.lineage,
            "expected": r.expect.fingerprint,
            "fingerprint": found.as_ref().map(|e| &e.fingerprint),
            "reproduced": same,
            "violations": o.violations,
            "unfinished": o.unfinished,
            "steps": o.steps,
        });
        outln!(out, "{}", serde_json::to_string_pretty(&v)?);
        return Ok(status);
    }
    if elsewhere {
        outln!(
            out,
            "the workload of a {} reproducer on {}, with its recorded choices as far as they apply",
            r.lineage,
            l.name
        );
    }
    let family = r.family.as_ref().map_or(String::new(), |f| format!(" ({f} workload family)"));
    outln!(
        out,
        "lineage {}{family} on {}, {} operations, {} choices, {} micro-steps",
        l.name,
        l.preset.map_or(r.preset.clone(), |p| p.name().to_string()),
        r.workload.ops(),
        r.choices.len(),
        o.steps
    );
    let verdict = |out: &mut Out, what: &str| {
        outln!(
            out,
            "{}: {what}",
            if elsewhere {
                "on this lineage"
            } else if same {
                "reproduced"
            } else {
                "a different outcome (the expected one did not occur first)"
            }
        );
    };
    match (first, &o.unfinished) {
        (None, None) if elsewhere => outln!(
            out,
            "clean on {}: the outcome recorded on {} ({}) did not occur",
            l.name,
            r.lineage,
            r.expect.fingerprint
        ),
        (None, None) => outln!(out, "clean: the recorded outcome ({}) did not occur", r.expect.fingerprint),
        (None, Some(u)) => {
            verdict(out, &format!("the run did not finish: {}", u.summary()));
            outln!(out, "fingerprint: {}", u.fingerprint());
            outln!(out, "timeline (operations{}):", if steps { " and micro-steps" } else { "" });
            for e in o.timeline.iter().filter(|e| steps || !e.is_step()) {
                outln!(out, "  {e}");
            }
        }
        (Some(v), unfinished) => {
            verdict(out, &v.summary());
            outln!(out, "fingerprint: {}", v.fingerprint());
            outln!(out, "in kernel terms:");
            for a in account(&o, &l.name, machine.line_bytes) {
                outln!(out, "  {a}");
            }
            let f = shown_path(file);
            outln!(
                out,
                "next: `vipt shrink {f}` (the smallest run that still shows it), `vipt replay {f} --html {f}.html` \
                 (the drawing), `--steps` (every micro-step), `--lineage linux-6.x` (the same workload on the current code)"
            );
            outln!(out, "details:");
            for d in &v.detail {
                outln!(out, "  {d}");
            }
            outln!(out, "timeline (operations{}):", if steps { " and micro-steps" } else { "" });
            for e in o.timeline.iter().filter(|e| (steps || !e.is_step()) && e.step <= v.step) {
                outln!(out, "  {e}");
            }
            if o.violations.len() > 1 {
                outln!(out, "{} more violation(s) follow from it", o.violations.len() - 1);
            }
            if let Some(u) = unfinished {
                outln!(out, "then the run did not finish: {}", u.summary());
            }
            outln!(out, "notation:");
            for n in LEGEND {
                outln!(out, "  {n}");
            }
        }
    }
    Ok(status)
}
