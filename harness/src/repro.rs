//! Reproducer files: a self-contained, versioned, human-readable JSON description of one run
//! (machine, lineage, options, workload, every choice) and of what it showed: its first
//! violation, or why it did not finish.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vipt_emu::config::Preset;
use vipt_tmpalias::{Family, Lineage, Registry};

use crate::oracle::Violation;
use crate::scenario::{Outcome, Recording, RunConfig, Unfinished, record_seed, run};
use crate::sched::{Replay, SchedulerKind};
use crate::text::{shown, shown_path};
use crate::workload::Workload;

/// The `format` field of every reproducer.
pub const FORMAT: &str = "vipt-reproducer";
/// The version this build writes and reads. Version 2: a whole-cache flush step covers the
/// empty sets after its own, so the choices of version 1 files drive other runs.
pub const VERSION: u32 = 2;
/// The largest reproducer file read, in bytes (64 MiB); a larger one is refused before more
/// than this is read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The most choices a reproducer holds.
pub const MAX_CHOICES: usize = 10_000_000;

/// What the run is expected to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// Fingerprint of the first violation ([`Violation::fingerprint`]), or of why the run did
    /// not finish ([`Unfinished::fingerprint`]).
    pub fingerprint: String,
    /// Its class ([`Violation::class`], [`Unfinished::class`]), which shrinking preserves.
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
    /// `mremap` may move shared anonymous mappings ([`RunConfig::move_shared_anon`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub move_shared_anon: bool,
    /// The step limit the run had, when one was given ([`RunConfig::max_steps`]; otherwise
    /// the budget of the workload on the machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// The workload family the run was drawn from, when it is not the lineage's own
    /// ([`RunConfig::family`]); its checks judge the replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The workload.
    pub workload: Workload,
    /// Every choice of the run, in order.
    pub choices: Vec<u32>,
    /// The violation it shows, or why it does not finish.
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
    /// Larger than the bound of what is read ([`MAX_FILE_BYTES`] for a reproducer).
    #[error("{path}: larger than {limit} bytes, the most such a file may be")]
    TooLarge {
        /// Path.
        path: String,
        /// The bound.
        limit: u64,
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
    /// The run drew more choices than a reproducer holds.
    #[error(
        "{lineage} seed {seed}: the run drew more than {MAX_CHOICES} choices, too many for a reproducer (re-run the seed instead)"
    )]
    TooLong {
        /// Lineage.
        lineage: String,
        /// Seed.
        seed: u64,
    },
}

/// Reads at most `limit` bytes of `path`; a longer file (or device) is refused after reading
/// `limit + 1` bytes, never more.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReproError> {
    let p = shown_path(path);
    let io = |source| ReproError::Io { path: p.clone(), source };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut data = Vec::new();
    f.take(limit + 1).read_to_end(&mut data).map_err(io)?;
    if data.len() as u64 > limit {
        return Err(ReproError::TooLarge { path: p, limit });
    }
    Ok(data)
}

impl Reproducer {
    /// Parses and validates reproducer text (`path` is for messages).
    pub fn parse(text: &str, path: &str, registry: &Registry) -> Result<Reproducer, ReproError> {
        let invalid = |msg: String| ReproError::Invalid { path: path.into(), msg };
        // The version first, so that a file of another version says so rather than failing
        // on a field that version lacks.
        if let Ok(v) = serde_json::from_str::<VersionOnly>(text)
            && v.format.as_deref() == Some(FORMAT)
            && let Some(version) = v.version
            && version != VERSION as u64
        {
            return Err(invalid(format!(
                "reproducer format version {version} is not supported: this build reads version {VERSION} only \
                 (re-record it from its seed, or replay it with the build that wrote it)"
            )));
        }
        let r: Reproducer = serde_json::from_str(text)
            .map_err(|e| ReproError::Parse { path: path.into(), msg: shown_error(&e.to_string()) })?;
        if r.format != FORMAT {
            return Err(invalid(format!("format is `{}`, expected `{FORMAT}`", shown(&r.format))));
        }
        if r.version != VERSION {
            return Err(invalid(format!(
                "reproducer format version {} is not supported: this build reads version {VERSION} only",
                r.version
            )));
        }
        let preset: Preset = r.preset.parse().map_err(|_| {
            invalid(format!("unknown preset `{}` (known: {})", shown(&r.preset), preset_names()))
        })?;
        let Some(lineage) = registry.get(&r.lineage) else {
            return Err(invalid(format!(
                "unknown lineage `{}` (known: {})",
                shown(&r.lineage),
                registry.names()
            )));
        };
        if let Some(name) = &r.family {
            let f: Family = name.parse().map_err(|e: String| invalid(shown(&e)))?;
            lineage.family_for(Some(f)).map_err(invalid)?;
        }
        let cpus = lineage.preset.unwrap_or(preset).config().cpus;
        r.workload.validate(cpus).map_err(|e| invalid(format!("workload: {e}")))?;
        if r.choices.len() > MAX_CHOICES {
            return Err(invalid(format!(
                "{} choices, more than the {MAX_CHOICES} a reproducer may hold",
                r.choices.len()
            )));
        }
        if r.max_steps == Some(0) {
            return Err(invalid("max_steps must be at least 1".into()));
        }
        Ok(r)
    }

    /// Reads and validates a reproducer file of at most [`MAX_FILE_BYTES`].
    pub fn load(path: &Path, registry: &Registry) -> Result<Reproducer, ReproError> {
        let p = shown_path(path);
        let data = read_bounded(path, MAX_FILE_BYTES)?;
        let text = String::from_utf8(data)
            .map_err(|_| ReproError::Parse { path: p.clone(), msg: "not UTF-8 text".into() })?;
        Reproducer::parse(&text, &p, registry)
    }

    /// Writes the reproducer as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), ReproError> {
        let p = shown_path(path);
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
            move_shared_anon: self.move_shared_anon,
            max_steps: self.max_steps,
            family: self.family.as_deref().and_then(|f| f.parse().ok()),
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

    /// Records seed `seed` of a campaign as a reproducer, if it shows a violation or does not
    /// finish (`Ok(None)` when it is clean).
    pub fn record(
        lineage: &Lineage, cfg: &RunConfig, scheduler: SchedulerKind, seed: u64,
    ) -> Result<Option<Reproducer>, ReproError> {
        let Recording { workload, choices, outcome } = record_seed(lineage, cfg, scheduler, seed);
        let Some(expect) = Expect::of_outcome(&outcome) else { return Ok(None) };
        if choices.len() > MAX_CHOICES {
            return Err(ReproError::TooLong { lineage: lineage.name.clone(), seed });
        }
        Ok(Some(Reproducer {
            format: FORMAT.into(),
            version: VERSION,
            lineage: lineage.name.clone(),
            preset: lineage.preset.unwrap_or(cfg.preset).name().into(),
            seed: Some(seed),
            scheduler,
            speculation: cfg.speculation,
            racy_teardown: cfg.racy_teardown,
            racy_poke: cfg.racy_poke,
            move_shared_anon: cfg.move_shared_anon,
            max_steps: cfg.max_steps,
            family: cfg.family.map(|f| f.name().to_string()),
            workload,
            choices,
            expect,
        }))
    }
}

/// The fields that tell a file's format and version, whatever else it holds.
#[derive(Deserialize)]
struct VersionOnly {
    format: Option<String>,
    version: Option<u64>,
}

/// The names of the presets, for messages.
fn preset_names() -> String {
    Preset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// A parser's message with any quoted input in it cut to size.
fn shown_error(msg: &str) -> String {
    if msg.len() <= 4 * crate::text::SHOWN_CHARS { msg.to_string() } else { shown(msg) }
}

impl Expect {
    /// The expectation a violation sets.
    pub fn of(v: &Violation) -> Expect {
        Expect { fingerprint: v.fingerprint(), class: v.class(), summary: v.summary() }
    }

    /// The expectation a run that did not finish sets.
    pub fn of_unfinished(u: &Unfinished) -> Expect {
        Expect { fingerprint: u.fingerprint(), class: u.class(), summary: u.summary() }
    }

    /// What a reproducer of `o` expects: its first violation, else why it did not finish;
    /// `None` for a clean run.
    pub fn of_outcome(o: &Outcome) -> Option<Expect> {
        match (o.violations.first(), &o.unfinished) {
            (Some(v), _) => Some(Expect::of(v)),
            (None, Some(u)) => Some(Expect::of_unfinished(u)),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_bounded_refuses_a_device_without_reading_it_all() {
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(matches!(e, ReproError::TooLarge { .. }), "{e}");
        let d = std::env::temp_dir().join(format!("vipt-bounded-{}", std::process::id()));
        std::fs::write(&d, b"12345").unwrap();
        assert_eq!(read_bounded(&d, 5).unwrap(), b"12345");
        assert!(matches!(read_bounded(&d, 4), Err(ReproError::TooLarge { .. })));
        std::fs::remove_file(&d).unwrap();
    }
}
