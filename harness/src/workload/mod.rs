//! Workloads: files, processes, mappings and one program of operations per CPU, generated
//! from a seed. Small on purpose, so that rare coincidences (a swap offset that decodes to a
//! live pfn, two mappings of one page at different colours) happen often.
//!
//! This module holds what a workload is (and what a reproducer file stores of it) and its
//! validation; `generate` draws one from a seed, per workload family.

mod generate;

use serde::{Deserialize, Serialize};

use vipt_emu::addr::{PAGE_SIZE, SHM_COLOUR};
use vipt_tmpalias::Family;

/// The words of each page that workloads touch: two in the first line, one in each of two
/// later lines, and the last word of the page.
pub const WORDS: [u16; 5] = [0, 1, 17, 40, 511];

/// Largest file size in pages (files may grow by `write(2)` up to this).
pub const MAX_FILE_PAGES: u64 = 4;

/// Base of the range where `MAP_FIXED` mappings are placed (far above what `mmap` hands out).
pub const FIXED_BASE: u64 = 0x0900_0000;

/// A file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// Initial size in pages.
    pub pages: u64,
    /// Colour offset in pages (where its page 0 lands modulo 4 MiB).
    pub colour: u64,
}

/// What a mapping maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MapKind {
    /// Private anonymous memory.
    Anon,
    /// A file from page `pgoff`.
    File {
        /// File index.
        file: u8,
        /// First page.
        pgoff: u64,
        /// `MAP_SHARED` (else `MAP_PRIVATE`).
        shared: bool,
    },
}

/// A mapping created during set-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSpec {
    /// Owning initial process.
    pub proc: u8,
    /// What it maps.
    pub kind: MapKind,
    /// Length in pages.
    pub pages: u64,
    /// `MAP_FIXED` address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u64>,
}

/// A process as an operation names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proc {
    /// Initial process `n`.
    Init(u8),
    /// The `n`-th child forked by this same program.
    Child(u8),
}

/// Which page the reclaim actor goes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Whatever a user page maps now.
    User {
        /// Process.
        proc: Proc,
        /// Mapping index.
        map: u8,
        /// Page within it.
        page: u8,
    },
    /// A page-cache page.
    File {
        /// File.
        file: u8,
        /// Page offset.
        pgoff: u64,
    },
}

/// One operation of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WOp {
    /// User load.
    Load {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
    },
    /// User store.
    Store {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
        /// Value.
        value: u64,
    },
    /// A store with page faults disabled (a futex operation).
    Futex {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
        /// Value.
        value: u64,
    },
    /// `write(2)` of one word.
    Write {
        /// File.
        file: u8,
        /// Page offset.
        pgoff: u64,
        /// Word.
        word: u16,
        /// Value.
        value: u64,
    },
    /// `read(2)` of one word.
    Read {
        /// File.
        file: u8,
        /// Page offset.
        pgoff: u64,
        /// Word.
        word: u16,
    },
    /// `access_process_vm` read.
    Peek {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
    },
    /// `access_process_vm` write.
    Poke {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
        /// Value.
        value: u64,
    },
    /// `fork`.
    Fork {
        /// Parent.
        proc: Proc,
    },
    /// Process exit.
    Exit {
        /// Process.
        proc: Proc,
    },
    /// `munmap` of a whole mapping.
    Munmap {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
    },
    /// Map an unmapped mapping again (same object, wherever `mmap` puts it).
    Remap {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
    },
    /// `msync` of a whole mapping.
    Msync {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
    },
    /// `fsync`.
    Fsync {
        /// File.
        file: u8,
    },
    /// `ftruncate`.
    Truncate {
        /// File.
        file: u8,
        /// New size in pages.
        pages: u64,
    },
    /// Reclaim of one page.
    Reclaim {
        /// Which.
        target: Target,
    },
    /// `get_user_pages_fast` of a page, then a kernel read of one word of it.
    GupFast {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page.
        page: u8,
        /// Word.
        word: u16,
    },
    /// A driver's dirty-log clean and harvest of every shared mapping of a file.
    Clean {
        /// File.
        file: u8,
    },
    /// `mprotect` of a whole mapping to `PROT_NONE` (`none`) or back.
    Mprotect {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// To `PROT_NONE`.
        none: bool,
    },
}

impl WOp {
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            WOp::Load { .. } => "load",
            WOp::Store { .. } => "store",
            WOp::Futex { .. } => "futex",
            WOp::Write { .. } => "write",
            WOp::Read { .. } => "read",
            WOp::Peek { .. } => "peek",
            WOp::Poke { .. } => "poke",
            WOp::Fork { .. } => "fork",
            WOp::Exit { .. } => "exit",
            WOp::Munmap { .. } => "munmap",
            WOp::Remap { .. } => "remap",
            WOp::Msync { .. } => "msync",
            WOp::Fsync { .. } => "fsync",
            WOp::Truncate { .. } => "truncate",
            WOp::Reclaim { .. } => "reclaim",
            WOp::GupFast { .. } => "gup_fast",
            WOp::Clean { .. } => "clean",
            WOp::Mprotect { .. } => "mprotect",
        }
    }
}

/// A complete workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// CPUs used (one program each).
    pub cpus: u8,
    /// Files.
    pub files: Vec<FileSpec>,
    /// Initial processes.
    pub procs: u8,
    /// Mappings set up before the programs start, in order.
    pub maps: Vec<MapSpec>,
    /// One program per CPU.
    pub programs: Vec<Vec<WOp>>,
}

impl Workload {
    /// Total operations of all programs.
    pub fn ops(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Checks that every index is in range (for files read from disk).
    pub fn validate(&self, max_cpus: usize) -> Result<(), String> {
        if self.cpus == 0 || self.cpus as usize > max_cpus {
            return Err(format!("cpus must be 1..={max_cpus}"));
        }
        if self.programs.len() != self.cpus as usize {
            return Err("one program per cpu is required".into());
        }
        if self.files.len() > 8 || self.procs == 0 || self.procs > 8 || self.maps.len() > 32 {
            return Err("too many files, processes or mappings".into());
        }
        for f in &self.files {
            if f.pages == 0 || f.pages > MAX_FILE_PAGES {
                return Err(format!("file sizes must be 1..={MAX_FILE_PAGES} pages"));
            }
        }
        let nfiles = self.files.len() as u8;
        for m in &self.maps {
            if m.proc >= self.procs || m.pages == 0 || m.pages > 4 {
                return Err("mapping with a bad process or size".into());
            }
            if let MapKind::File { file, pgoff, .. } = m.kind
                && (file >= nfiles || pgoff >= MAX_FILE_PAGES)
            {
                return Err("mapping of a missing file".into());
            }
            if let Some(a) = m.fixed
                && (a % PAGE_SIZE != 0 || !(FIXED_BASE..FIXED_BASE + 16 * SHM_COLOUR).contains(&a))
            {
                return Err("MAP_FIXED address outside the fixed range".into());
            }
        }
        for prog in &self.programs {
            if prog.len() > 256 {
                return Err("programs are limited to 256 operations".into());
            }
            for op in prog {
                let word_ok = |w: u16| (w as usize) < vipt_emu::addr::WORDS_PER_PAGE;
                let file_ok = |f: u8, p: u64| f < nfiles && p < MAX_FILE_PAGES;
                let ok = match *op {
                    WOp::Load { word, .. }
                    | WOp::Store { word, .. }
                    | WOp::Futex { word, .. }
                    | WOp::Peek { word, .. }
                    | WOp::Poke { word, .. }
                    | WOp::GupFast { word, .. } => word_ok(word),
                    WOp::Write { file, pgoff, word, .. } | WOp::Read { file, pgoff, word } => {
                        file_ok(file, pgoff) && word_ok(word)
                    }
                    WOp::Fsync { file } | WOp::Clean { file } => file < nfiles,
                    WOp::Truncate { file, pages } => file < nfiles && pages <= MAX_FILE_PAGES,
                    WOp::Reclaim { target: Target::File { file, pgoff } } => file_ok(file, pgoff),
                    _ => true,
                };
                if !ok {
                    return Err(format!("operation out of range: {op:?}"));
                }
            }
        }
        Ok(())
    }

    /// Generates the [`Family::Mixed`] workload of `seed` for a machine with `max_cpus` CPUs.
    pub fn generate(seed: u64, max_cpus: usize) -> Workload {
        Workload::generate_for(seed, max_cpus, Family::Mixed)
    }

    /// Generates the workload of `seed` in `family` for a machine with `max_cpus` CPUs.
    pub fn generate_for(seed: u64, max_cpus: usize, family: Family) -> Workload {
        generate::generate(seed, max_cpus, family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_valid_and_varied() {
        let a = Workload::generate(7, 4);
        assert_eq!(a, Workload::generate(7, 4));
        assert_ne!(a, Workload::generate(8, 4));
        for seed in 0..500 {
            let w = Workload::generate(seed, 4);
            w.validate(4).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        let w2 = Workload::generate(3, 2);
        assert_eq!(w2.cpus, 2);
    }

    #[test]
    fn each_family_generates_valid_workloads_with_its_own_operations() {
        for family in [Family::Gather, Family::Clean, Family::Hash] {
            assert_eq!(Workload::generate_for(9, 4, family), Workload::generate_for(9, 4, family));
            assert_ne!(Workload::generate_for(9, 4, family), Workload::generate(9, 4));
            let mut own = 0;
            for seed in 0..200 {
                let w = Workload::generate_for(seed, 4, family);
                w.validate(4).unwrap_or_else(|e| panic!("{family:?} seed {seed}: {e}"));
                own += w
                    .programs
                    .iter()
                    .flatten()
                    .filter(|op| match family {
                        Family::Gather => matches!(op, WOp::GupFast { .. }),
                        Family::Clean => matches!(op, WOp::Clean { .. }),
                        Family::Hash => matches!(op, WOp::Mprotect { .. }),
                        Family::Mixed => false,
                    })
                    .count();
            }
            assert!(own > 200, "{family:?}: only {own} of its own operations in 200 workloads");
        }
        // The clean family maps only the device file, shared, so every store is tracked.
        let w = Workload::generate_for(3, 4, Family::Clean);
        assert!(w.maps.iter().all(|m| m.kind == MapKind::File { file: 0, pgoff: 0, shared: true }));
    }

    #[test]
    fn values_written_are_unique() {
        let w = Workload::generate(11, 4);
        let mut vals: Vec<u64> = w
            .programs
            .iter()
            .flatten()
            .filter_map(|op| match *op {
                WOp::Store { value, .. }
                | WOp::Futex { value, .. }
                | WOp::Write { value, .. }
                | WOp::Poke { value, .. } => Some(value),
                _ => None,
            })
            .collect();
        let n = vals.len();
        vals.sort_unstable();
        vals.dedup();
        assert_eq!(vals.len(), n);
        assert!(!vals.contains(&0));
    }

    #[test]
    fn workloads_round_trip_through_json() {
        let w = Workload::generate(5, 4);
        let s = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Workload>(&s).unwrap(), w);
    }
}
