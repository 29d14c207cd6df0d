//! Files the commands read and write: reproducers in, reproducers and plots out. Outputs are
//! checked before any work is done, so that a long run never ends in an output it cannot write.

use std::path::{Path, PathBuf};

use vipt_harness::repro::Reproducer;
use vipt_harness::text::shown_path;
use vipt_tmpalias::{Lineage, Registry};

use super::status::Failure;

/// Can a file be created in directory `dir`? Creates and removes a probe file there.
fn probe_create_in(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".vipt-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The nearest existing ancestor of `p` (itself included), `.` for a relative path with none.
fn existing_ancestor(p: &Path) -> PathBuf {
    let mut a = p;
    loop {
        if a.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
        if a.exists() {
            return a.to_path_buf();
        }
        match a.parent() {
            Some(parent) => a = parent,
            None => return PathBuf::from("."),
        }
    }
}

/// Checks that reproducers can be written to directory `dir` (created later if missing), so a
/// campaign fails before it runs rather than losing what it finds.
pub(crate) fn check_out_dir(flag: &str, dir: &Path) -> Result<(), Failure> {
    let shown = shown_path(dir);
    let base = existing_ancestor(dir);
    if !base.is_dir() {
        return Err(Failure(format!("{flag} {shown}: {} is not a directory", shown_path(&base))));
    }
    probe_create_in(&base)
        .map_err(|e| Failure(format!("{flag} {shown}: cannot write in {}: {e}", shown_path(&base))))
}

/// Checks that file `path` can be written (an existing file is opened for writing without
/// changing it; a new one must be creatable in its directory).
pub(crate) fn check_out_file(flag: &str, path: &Path) -> Result<(), Failure> {
    let shown = shown_path(path);
    if path.is_dir() {
        return Err(Failure(format!("{flag} {shown}: is a directory")));
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| Failure(format!("{flag} {shown}: cannot write: {e}")));
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let base = existing_ancestor(dir);
    if !base.is_dir() {
        return Err(Failure(format!("{flag} {shown}: {} is not a directory", shown_path(&base))));
    }
    probe_create_in(&base)
        .map_err(|e| Failure(format!("{flag} {shown}: cannot write in {}: {e}", shown_path(&base))))
}

/// Reads a reproducer and finds its lineage.
pub(crate) fn load(registry: &Registry, file: &Path) -> Result<(Reproducer, Lineage), Failure> {
    let r = Reproducer::load(file, registry)?;
    let l = registry
        .get(&r.lineage)
        .cloned()
        .ok_or_else(|| Failure(format!("unknown lineage `{}`", r.lineage)))?;
    Ok((r, l))
}
