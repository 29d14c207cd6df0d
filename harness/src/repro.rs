//! Reproducer files: a self-contained, versioned, human-readable JSON description of one run
//! (machine, lineage, options, workload, every choice) and of the violation it showed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vipt_emu::config::Preset;
use vipt_tmpalias::{Lineage, Registry};

use crate::oracle::Violation;
use crate::scenario::{Outcome, Recording, RunConfig, record_seed, run};
use crate::sched::{Replay, SchedulerKind};
use crate::workload::Workload;

/// The `format` field of every reproducer.
pub const FORMAT: &str = "vipt-reproducer";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// What the run is expected to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// Fingerprint of the first violation ([`Violation::fingerprint`]).
    pub fingerprint: String,
    /// Its class ([`Violation::class`]), which shrinking preserves.
    pub class: String,
    /// One line for people.
    pub summary: String,
}

/// A reproducer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reproducer {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Lineage name.
    pub lineage: String,
    /// Machine preset name.
    pub preset: String,
    /// Seed the run came from, if it came from one.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Scheduler that made the choices.
    pub scheduler: SchedulerKind,
    /// Speculative move-ins offered.
    pub speculation: bool,
    /// Racy teardown allowed ([`RunConfig::racy_teardown`]).
    #[serde(default)]
    pub racy_teardown: bool,
    /// Racy pokes allowed ([`RunConfig::racy_poke`]).
    #[serde(default)]
    pub racy_poke: bool,
    /// The workload.
    pub workload: Workload,
    /// Every choice of the run, in order.
    pub choices: Vec<u32>,
    /// The violation it shows.
    pub expect: Expect,
}

/// Why a reproducer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid JSON of the right shape.
    #[error("{path}: not a vipt reproducer: {msg}")]
    Parse {
        /// Path.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// Well formed but inconsistent (unknown lineage, bad preset, out-of-range workload).
    #[error("{path}: {msg}")]
    Invalid {
        /// Path.
        path: String,
        /// What is wrong.
        msg: String,
    },
}

impl Reproducer {
    /// Parses and validates reproducer text (`path` is for messages).
    pub fn parse(text: &str, path: &str, registry: &Registry) -> Result<Reproducer, ReproError> {
        let r: Reproducer = serde_json::from_str(text)
            .map_err(|e| ReproError::Parse { path: path.into(), msg: e.to_string() })?;
        let invalid = |msg: String| ReproError::Invalid { path: path.into(), msg };
        if r.format != FORMAT {
            return Err(invalid(format!("format is `{}`, expected `{FORMAT}`", r.format)));
        }
        if r.version != VERSION {
            return Err(invalid(format!(
                "version {} is not supported (this build reads {VERSION})",
                r.version
            )));
        }
        let preset: Preset = r.preset.parse().map_err(|e| invalid(format!("{e}")))?;
        if registry.get(&r.lineage).is_none() {
            return Err(invalid(format!("unknown lineage `{}` (known: {})", r.lineage, registry.names())));
        }
        r.workload.validate(preset.config().cpus).map_err(|e| invalid(format!("workload: {e}")))?;
        if r.choices.len() > 10_000_000 {
            return Err(invalid("too many choices".into()));
        }
        Ok(r)
    }

    /// Reads and validates a reproducer file.
    pub fn load(path: &Path, registry: &Registry) -> Result<Reproducer, ReproError> {
        let p = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ReproError::Io { path: p.clone(), source })?;
        Reproducer::parse(&text, &p, registry)
    }

    /// Writes the reproducer as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), ReproError> {
        let p = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ReproError::Io { path: p.clone(), source })?;
        }
        let text = serde_json::to_string_pretty(self).expect("reproducers serialise");
        std::fs::write(path, text + "\n").map_err(|source| ReproError::Io { path: p, source })
    }

    /// The run configuration it describes.
    pub fn run_config(&self, trace: bool) -> RunConfig {
        RunConfig {
            preset: self.preset.parse().unwrap_or(Preset::Tiny),
            speculation: self.speculation,
            trace,
            racy_teardown: self.racy_teardown,
            racy_poke: self.racy_poke,
            ..RunConfig::default()
        }
    }

    /// Re-runs it with its recorded choices.
    pub fn replay(&self, lineage: &Lineage, trace: bool) -> Outcome {
        run(&self.run_config(trace), lineage, &self.workload, Box::new(Replay::new(self.choices.clone())))
    }

    /// Re-runs `workload` with `choices` and this reproducer's options.
    pub fn rerun(&self, lineage: &Lineage, workload: &Workload, choices: Vec<u32>) -> Outcome {
        run(&self.run_config(false), lineage, workload, Box::new(Replay::new(choices)))
    }

    /// Records seed `seed` of a campaign as a reproducer, if it shows a violation.
    pub fn record(
        lineage: &Lineage, cfg: &RunConfig, scheduler: SchedulerKind, seed: u64,
    ) -> Option<Reproducer> {
        let Recording { workload, choices, outcome } = record_seed(lineage, cfg, scheduler, seed);
        let v = outcome.violations.first()?;
        Some(Reproducer {
            format: FORMAT.into(),
            version: VERSION,
            lineage: lineage.name.clone(),
            preset: lineage.preset.unwrap_or(cfg.preset).name().into(),
            seed: Some(seed),
            scheduler,
            speculation: cfg.speculation,
            racy_teardown: cfg.racy_teardown,
            racy_poke: cfg.racy_poke,
            workload,
            choices,
            expect: Expect::of(v),
        })
    }
}

impl Expect {
    /// The expectation a violation sets.
    pub fn of(v: &Violation) -> Expect {
        Expect { fingerprint: v.fingerprint(), class: v.class(), summary: v.summary() }
    }
}
