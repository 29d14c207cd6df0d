//! Workloads: files, processes, mappings and one program of operations per CPU, generated
//! from a seed. Small on purpose, so that rare coincidences (a swap offset that decodes to a
//! live pfn, two mappings of one page at different colours) happen often.
//!
//! This module holds what a workload is (and what a reproducer file stores of it) and its
//! validation; `generate` draws one from a seed, per workload family.

mod generate;

use serde::{Deserialize, Serialize};

use vipt_emu::addr::{PAGE_SIZE, SHM_COLOUR, WORDS_PER_PAGE};
use vipt_tmpalias::Family;

/// The words of each page that workloads touch: two in the first line, one in each of two
/// later lines, and the last word of the page.
pub const WORDS: [u16; 5] = [0, 1, 17, 40, 511];

/// Largest file size in pages (files may grow by `write(2)` up to this).
pub const MAX_FILE_PAGES: u64 = 4;

/// Base of the range where `MAP_FIXED` mappings are placed (far above what `mmap` hands out).
pub const FIXED_BASE: u64 = 0x0900_0000;

/// Largest mapping in pages. An operation's page is taken modulo its mapping's length, and is
/// below this.
pub const MAX_MAP_PAGES: u64 = 4;

/// Most files of a workload.
pub const MAX_FILES: usize = 8;

/// Most initial processes of a workload.
pub const MAX_PROCS: usize = 8;

/// Most set-up mappings of a workload.
pub const MAX_MAPS: usize = 32;

/// Most operations of one program.
pub const MAX_PROGRAM_OPS: usize = 256;

/// Most kernel buffers (io_uring-like rings) of a workload.
pub const MAX_RINGS: usize = 4;

/// Colour offsets of files are below this many pages (the 4 MiB alias boundary of the
/// largest machine).
pub const COLOURS: u64 = 1024;

/// A file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// Initial size in pages.
    pub pages: u64,
    /// Colour offset in pages (where its page 0 lands modulo 4 MiB).
    pub colour: u64,
    /// A shmem (tmpfs) file: no backing store but swap, its pages start as holes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shmem: bool,
}

/// A kernel buffer (an io_uring-like ring of one page) the kernel allocates at set-up; user
/// space maps it with [`MapKind::Ring`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingSpec {
    /// Colour offset in pages of the file it is mapped through (where kernels that place the
    /// mapping by that file put it, whatever the kernel address).
    pub colour: u64,
}

/// What a mapping maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MapKind {
    /// Private anonymous memory.
    Anon,
    /// `MAP_SHARED | MAP_ANONYMOUS`: a new shmem object per `mmap`, shared with the children
    /// forked after it.
    SharedAnon,
    /// A file from page `pgoff`.
    File {
        /// File index.
        file: u8,
        /// First page.
        pgoff: u64,
        /// `MAP_SHARED` (else `MAP_PRIVATE`).
        shared: bool,
    },
    /// Kernel buffer `ring`, mapped shared by its driver's `mmap` (one page).
    Ring {
        /// Ring index.
        ring: u8,
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
        /// Page (taken modulo the mapping's length).
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
        /// Page (taken modulo the mapping's length).
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
        /// Page (taken modulo the mapping's length).
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
        /// Page (taken modulo the mapping's length).
        page: u8,
        /// Word.
        word: u16,
        /// May overlap a `truncate` of the mapping's file (the README's second workload
        /// rule, refined for kernel reads): a tracer's `PTRACE_PEEKDATA`, which does not wait
        /// for the file's truncation.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        racy: bool,
    },
    /// `access_process_vm` write.
    Poke {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// Page (taken modulo the mapping's length).
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
        /// Page (taken modulo the mapping's length).
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
    /// `mremap` of a whole mapping: to `pages` pages (grown if more than it has, at most
    /// [`MAX_MAP_PAGES`]; never shrunk), `MREMAP_MAYMOVE` if `maymove`, to `fixed` with
    /// `MREMAP_FIXED`.
    Mremap {
        /// Process.
        proc: Proc,
        /// Mapping.
        map: u8,
        /// New length in pages.
        pages: u64,
        /// `MREMAP_MAYMOVE`.
        maymove: bool,
        /// `MREMAP_FIXED` address (implies `MREMAP_MAYMOVE`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fixed: Option<u64>,
    },
    /// The kernel posts a word to kernel buffer `ring` through its kernel address (a
    /// completion, `io_fill_cqe_aux`).
    RingPost {
        /// Ring.
        ring: u8,
        /// Word.
        word: u16,
        /// Value.
        value: u64,
    },
    /// The kernel reads a word of kernel buffer `ring` through its kernel address (a
    /// submission, `io_get_sqe`).
    RingFetch {
        /// Ring.
        ring: u8,
        /// Word.
        word: u16,
    },
}

impl WOp {
    /// The process it names, if any.
    fn proc_mut(&mut self) -> Option<&mut Proc> {
        match self {
            WOp::Load { proc, .. }
            | WOp::Store { proc, .. }
            | WOp::Futex { proc, .. }
            | WOp::Peek { proc, .. }
            | WOp::Poke { proc, .. }
            | WOp::Fork { proc }
            | WOp::Exit { proc }
            | WOp::Munmap { proc, .. }
            | WOp::Remap { proc, .. }
            | WOp::Msync { proc, .. }
            | WOp::GupFast { proc, .. }
            | WOp::Mprotect { proc, .. }
            | WOp::Mremap { proc, .. }
            | WOp::Reclaim { target: Target::User { proc, .. } } => Some(proc),
            _ => None,
        }
    }

    /// The process and the mapping it names, if it names a mapping.
    fn proc_map_mut(&mut self) -> Option<(Proc, &mut u8)> {
        match self {
            WOp::Load { proc, map, .. }
            | WOp::Store { proc, map, .. }
            | WOp::Futex { proc, map, .. }
            | WOp::Peek { proc, map, .. }
            | WOp::Poke { proc, map, .. }
            | WOp::Munmap { proc, map }
            | WOp::Remap { proc, map }
            | WOp::Msync { proc, map }
            | WOp::GupFast { proc, map, .. }
            | WOp::Mprotect { proc, map, .. }
            | WOp::Mremap { proc, map, .. }
            | WOp::Reclaim { target: Target::User { proc, map, .. } } => Some((*proc, map)),
            _ => None,
        }
    }

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
            WOp::Mremap { .. } => "mremap",
            WOp::RingPost { .. } => "io_fill_cqe",
            WOp::RingFetch { .. } => "io_get_sqe",
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
    /// Kernel buffers allocated at set-up, before the mappings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rings: Vec<RingSpec>,
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

    /// Checks that every number is in range and every index names something the workload
    /// can have (for files read from disk), on a machine with `max_cpus` CPUs: the CPUs, the
    /// files, processes and mappings of the set-up, and in each operation its process (an
    /// initial one, or a child of a `fork` earlier in the same program), its mapping (of that
    /// initial process; for a child, of some process), page, word, file and page offset.
    pub fn validate(&self, max_cpus: usize) -> Result<(), String> {
        if self.cpus == 0 || self.cpus as usize > max_cpus {
            return Err(format!("{} cpus, but the machine has 1..={max_cpus}", self.cpus));
        }
        if self.programs.len() != self.cpus as usize {
            return Err(format!(
                "{} programs for {} cpus: one program per cpu is required",
                self.programs.len(),
                self.cpus
            ));
        }
        if self.files.len() > MAX_FILES {
            return Err(format!("{} files, more than {MAX_FILES}", self.files.len()));
        }
        if self.procs == 0 || self.procs as usize > MAX_PROCS {
            return Err(format!("{} processes; a workload has 1..={MAX_PROCS}", self.procs));
        }
        if self.maps.len() > MAX_MAPS {
            return Err(format!("{} mappings, more than {MAX_MAPS}", self.maps.len()));
        }
        if self.rings.len() > MAX_RINGS {
            return Err(format!("{} kernel buffers, more than {MAX_RINGS}", self.rings.len()));
        }
        if let Some((i, r)) = self.rings.iter().enumerate().find(|(_, r)| r.colour >= COLOURS) {
            return Err(format!(
                "kernel buffer {i} has colour offset {}; offsets are 0..{COLOURS} pages",
                r.colour
            ));
        }
        let nrings = self.rings.len();
        let ring_ok = |r: u8| -> Result<(), String> {
            if (r as usize) < nrings {
                Ok(())
            } else {
                Err(format!("kernel buffer {r}, but the workload has {nrings}"))
            }
        };
        for (i, f) in self.files.iter().enumerate() {
            if f.pages == 0 || f.pages > MAX_FILE_PAGES {
                return Err(format!("file {i} has {} pages; files have 1..={MAX_FILE_PAGES}", f.pages));
            }
            if f.colour >= COLOURS {
                return Err(format!(
                    "file {i} has colour offset {}; offsets are 0..{COLOURS} pages",
                    f.colour
                ));
            }
        }
        let nfiles = self.files.len();
        let file_ok = |f: u8| -> Result<(), String> {
            if (f as usize) < nfiles {
                Ok(())
            } else {
                Err(format!("file {f}, but the workload has {nfiles} files"))
            }
        };
        let pgoff_ok = |p: u64| -> Result<(), String> {
            if p < MAX_FILE_PAGES {
                Ok(())
            } else {
                Err(format!("page offset {p}; files have at most {MAX_FILE_PAGES} pages"))
            }
        };
        for (i, m) in self.maps.iter().enumerate() {
            let at = |e: String| format!("mapping {i}: {e}");
            if m.proc >= self.procs {
                return Err(at(format!("process {}, but the workload has {} processes", m.proc, self.procs)));
            }
            if m.pages == 0 || m.pages > MAX_MAP_PAGES {
                return Err(at(format!("{} pages; mappings have 1..={MAX_MAP_PAGES}", m.pages)));
            }
            if let MapKind::File { file, pgoff, .. } = m.kind {
                file_ok(file).and(pgoff_ok(pgoff)).map_err(at)?;
            }
            if let MapKind::Ring { ring } = m.kind {
                ring_ok(ring).map_err(at)?;
                if m.pages != 1 || m.fixed.is_some() {
                    return Err(at("a kernel buffer is mapped whole (one page), never MAP_FIXED".into()));
                }
            }
            if let Some(a) = m.fixed {
                let end = FIXED_BASE + 16 * SHM_COLOUR;
                if a % PAGE_SIZE != 0 {
                    return Err(at(format!("MAP_FIXED address {a:#x} is not page-aligned")));
                }
                if !(FIXED_BASE..end).contains(&a) {
                    return Err(at(format!(
                        "MAP_FIXED address {a:#x} is outside the fixed range {FIXED_BASE:#x}..{end:#x}"
                    )));
                }
            }
        }
        let maps_of = |p: u8| self.maps.iter().filter(|m| m.proc == p).count();
        let most_maps = (0..self.procs).map(maps_of).max().unwrap_or(0);
        for (c, prog) in self.programs.iter().enumerate() {
            if prog.len() > MAX_PROGRAM_OPS {
                return Err(format!(
                    "program {c} has {} operations, more than {MAX_PROGRAM_OPS}",
                    prog.len()
                ));
            }
            let mut forks = 0usize;
            for (j, op) in prog.iter().enumerate() {
                let at = |e: String| format!("program {c} operation {j} ({}): {e}", op.name());
                let proc_ok = |p: Proc| -> Result<(), String> {
                    match p {
                        Proc::Init(i) if i >= self.procs => {
                            Err(format!("process {i}, but the workload has {} processes", self.procs))
                        }
                        Proc::Child(n) if n as usize >= forks => Err(format!(
                            "child {n}, but the program forks {forks} times before this operation"
                        )),
                        _ => Ok(()),
                    }
                };
                let map_ok = |p: Proc, map: u8| -> Result<(), String> {
                    proc_ok(p)?;
                    let (n, whose) = match p {
                        Proc::Init(i) => (maps_of(i), format!("process {i} has")),
                        Proc::Child(_) => (most_maps, "a process has at most".to_string()),
                    };
                    if (map as usize) < n {
                        Ok(())
                    } else {
                        Err(format!("mapping {map}, but {whose} {n} mappings"))
                    }
                };
                let page_ok = |page: u8| -> Result<(), String> {
                    if (page as u64) < MAX_MAP_PAGES {
                        Ok(())
                    } else {
                        Err(format!("page {page}; mappings have at most {MAX_MAP_PAGES} pages"))
                    }
                };
                let word_ok = |w: u16| -> Result<(), String> {
                    if (w as usize) < WORDS_PER_PAGE {
                        Ok(())
                    } else {
                        Err(format!("word {w}; a page has {WORDS_PER_PAGE} words"))
                    }
                };
                let access = |p: Proc, map: u8, page: u8| map_ok(p, map).and(page_ok(page));
                match *op {
                    WOp::Load { proc, map, page, word }
                    | WOp::Store { proc, map, page, word, .. }
                    | WOp::Futex { proc, map, page, word, .. }
                    | WOp::Peek { proc, map, page, word, .. }
                    | WOp::Poke { proc, map, page, word, .. }
                    | WOp::GupFast { proc, map, page, word } => access(proc, map, page).and(word_ok(word)),
                    WOp::Write { file, pgoff, word, .. } | WOp::Read { file, pgoff, word } => {
                        file_ok(file).and(pgoff_ok(pgoff)).and(word_ok(word))
                    }
                    WOp::Fork { proc } | WOp::Exit { proc } => proc_ok(proc),
                    WOp::Munmap { proc, map }
                    | WOp::Remap { proc, map }
                    | WOp::Msync { proc, map }
                    | WOp::Mprotect { proc, map, .. } => map_ok(proc, map),
                    WOp::Fsync { file } | WOp::Clean { file } => file_ok(file),
                    WOp::Truncate { file, pages } => file_ok(file).and(if pages <= MAX_FILE_PAGES {
                        Ok(())
                    } else {
                        Err(format!("{pages} pages; files have at most {MAX_FILE_PAGES}"))
                    }),
                    WOp::Reclaim { target: Target::User { proc, map, page } } => access(proc, map, page),
                    WOp::Mremap { proc, map, pages, fixed, .. } => {
                        map_ok(proc, map).and(if pages == 0 || pages > MAX_MAP_PAGES {
                            Err(format!("{pages} pages; mappings have 1..={MAX_MAP_PAGES}"))
                        } else if fixed.is_some_and(|a| {
                            a % PAGE_SIZE != 0 || !(FIXED_BASE..FIXED_BASE + 16 * SHM_COLOUR).contains(&a)
                        }) {
                            Err(format!(
                                "MREMAP_FIXED address {:#x} is not a page of the fixed range",
                                fixed.unwrap_or(0)
                            ))
                        } else {
                            Ok(())
                        })
                    }
                    WOp::RingPost { ring, word, .. } | WOp::RingFetch { ring, word } => {
                        ring_ok(ring).and(word_ok(word))
                    }
                    WOp::Reclaim { target: Target::File { file, pgoff } } => {
                        file_ok(file).and(pgoff_ok(pgoff))
                    }
                }
                .map_err(at)?;
                if matches!(op, WOp::Fork { .. }) {
                    forks += 1;
                }
            }
        }
        Ok(())
    }

    /// The workload without operation `i` of program `p`. When it is a `fork`, the program's
    /// later operations on that child go too, and those on its later children are renumbered.
    pub fn without_op(&self, p: usize, i: usize) -> Workload {
        let mut w = self.clone();
        let op = w.programs[p].remove(i);
        if matches!(op, WOp::Fork { .. }) {
            let child = self.programs[p][..i].iter().filter(|o| matches!(o, WOp::Fork { .. })).count() as u8;
            let tail = w.programs[p].split_off(i);
            for mut o in tail {
                match o.proc_mut() {
                    Some(Proc::Child(n)) if *n == child => continue,
                    Some(Proc::Child(n)) if *n > child => *n -= 1,
                    _ => {}
                }
                w.programs[p].push(o);
            }
        }
        w
    }

    /// The workload without set-up mapping `i`: operations on it by its process go too, and
    /// those on that process's later mappings are renumbered; operations of children that
    /// name a mapping past the largest process's are dropped.
    pub fn without_map(&self, i: usize) -> Workload {
        let mut w = self.clone();
        let gone = w.maps.remove(i);
        let k = self.maps[..i].iter().filter(|m| m.proc == gone.proc).count() as u8;
        let most = (0..w.procs).map(|p| w.maps.iter().filter(|m| m.proc == p).count()).max().unwrap_or(0);
        for prog in &mut w.programs {
            prog.retain_mut(|o| match o.proc_map_mut() {
                Some((Proc::Init(p), map)) if p == gone.proc && *map == k => false,
                Some((Proc::Init(p), map)) if p == gone.proc && *map > k => {
                    *map -= 1;
                    true
                }
                Some((Proc::Child(_), map)) => (*map as usize) < most,
                _ => true,
            });
        }
        w
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
        for family in [Family::Gather, Family::Clean, Family::Hash, Family::Sharing, Family::Reuse] {
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
                        Family::Gather | Family::Reuse => matches!(op, WOp::GupFast { .. }),
                        Family::Clean => matches!(op, WOp::Clean { .. }),
                        Family::Hash => matches!(op, WOp::Mprotect { .. }),
                        Family::Sharing => {
                            matches!(op, WOp::Reclaim { target: Target::File { .. } } | WOp::Fork { .. })
                        }
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
    fn sharing_workloads_move_mappings_and_map_kernel_buffers() {
        let (mut remaps, mut fixed, mut posts, mut fetches, mut ring_maps) = (0, 0, 0, 0, 0);
        for seed in 0..200 {
            let w = Workload::generate_for(seed, 4, Family::Sharing);
            w.validate(4).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(!w.rings.is_empty());
            ring_maps += w.maps.iter().filter(|m| matches!(m.kind, MapKind::Ring { .. })).count();
            for op in w.programs.iter().flatten() {
                match op {
                    WOp::Mremap { fixed: f, .. } => {
                        remaps += 1;
                        fixed += usize::from(f.is_some());
                    }
                    WOp::RingPost { .. } => posts += 1,
                    WOp::RingFetch { .. } => fetches += 1,
                    _ => {}
                }
            }
            let s = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Workload>(&s).unwrap(), w);
        }
        assert!(
            remaps > 300 && fixed > 100 && posts > 200 && fetches > 150 && ring_maps >= 200,
            "{remaps} {fixed} {posts} {fetches} {ring_maps}"
        );
        // The mixed family has none of it, and its files keep their form.
        let w = Workload::generate(3, 4);
        assert!(w.rings.is_empty() && !serde_json::to_string(&w).unwrap().contains("rings"));
        let mut bad = Workload::generate_for(1, 4, Family::Sharing);
        bad.programs[0].insert(0, WOp::RingFetch { ring: 7, word: 0 });
        assert!(bad.validate(4).unwrap_err().contains("kernel buffer 7, but the workload has"));
        let mut bad = Workload::generate_for(1, 4, Family::Sharing);
        bad.programs[0]
            .insert(0, WOp::Mremap { proc: Proc::Init(0), map: 0, pages: 9, maymove: true, fixed: None });
        assert!(bad.validate(4).unwrap_err().contains("9 pages"));
        let mut bad = Workload::generate_for(1, 4, Family::Sharing);
        let i = bad.maps.iter().position(|m| matches!(m.kind, MapKind::Ring { .. })).unwrap();
        bad.maps[i].pages = 2;
        assert!(bad.validate(4).unwrap_err().contains("mapped whole"));
    }

    #[test]
    fn a_sharing_workload_is_the_mixed_draw_with_shmem_files_and_a_shared_anonymous_mapping() {
        let mut with_fixed = 0;
        for seed in 0..300 {
            let w = Workload::generate_for(seed, 4, Family::Sharing);
            w.validate(4).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(w.files.iter().any(|f| f.shmem), "seed {seed}: no shmem file");
            let shared_anon: Vec<&MapSpec> =
                w.maps.iter().filter(|m| m.kind == MapKind::SharedAnon).collect();
            assert_eq!(shared_anon.len(), 1, "seed {seed}");
            with_fixed += usize::from(shared_anon[0].fixed.is_some());
            // A program forks the process that has it and touches it from the child.
            let owner = shared_anon[0].proc;
            assert!(
                w.programs.iter().flatten().any(|o| *o == WOp::Fork { proc: Proc::Init(owner) }),
                "seed {seed}"
            );
            assert!(w.without_map(w.maps.len() - 1).validate(4).is_ok(), "seed {seed}");
        }
        assert!((20..150).contains(&with_fixed), "{with_fixed} of 300 at a MAP_FIXED address");
        // The mixed family's workloads stay as they were: no shmem, nothing shared anonymous.
        for seed in 0..100 {
            let w = Workload::generate(seed, 4);
            assert!(w.files.iter().all(|f| !f.shmem) && w.maps.iter().all(|m| m.kind != MapKind::SharedAnon));
        }
        // A file that is not shmem serialises as before (no `shmem` field).
        let text = serde_json::to_string(&Workload::generate(1, 4)).unwrap();
        assert!(!text.contains("shmem"), "{text}");
        let text = serde_json::to_string(&Workload::generate_for(1, 4, Family::Sharing)).unwrap();
        assert!(text.contains("\"shmem\":true") && text.contains("\"kind\":\"shared_anon\""), "{text}");
    }

    #[test]
    fn every_index_of_an_operation_is_checked_against_the_workload() {
        let w = Workload::generate(7, 4);
        let p = w.maps[0].proc;
        let maps_of_p = w.maps.iter().filter(|m| m.proc == p).count() as u8;
        let with = |op: WOp| {
            let mut v = w.clone();
            v.programs[0].insert(0, op);
            v.validate(4)
        };
        let load = |proc, map, page, word| WOp::Load { proc, map, page, word };
        assert!(with(load(Proc::Init(p), maps_of_p - 1, 0, 0)).is_ok());
        let e = with(load(Proc::Init(p), 50, 0, 0)).unwrap_err();
        assert!(e.contains(&format!("mapping 50, but process {p} has {maps_of_p} mappings")), "{e}");
        let e = with(load(Proc::Init(9), 0, 0, 0)).unwrap_err();
        assert!(e.contains(&format!("process 9, but the workload has {} processes", w.procs)), "{e}");
        let e = with(load(Proc::Child(0), 0, 0, 0)).unwrap_err();
        assert!(e.contains("child 0, but the program forks 0 times before this operation"), "{e}");
        assert!(with(load(Proc::Init(p), 0, 4, 0)).unwrap_err().contains("page 4"));
        assert!(with(load(Proc::Init(p), 0, 0, 512)).unwrap_err().contains("word 512"));
        let e = with(WOp::Read { file: 9, pgoff: 0, word: 0 }).unwrap_err();
        assert!(e.starts_with("program 0 operation 0 (read): file 9"), "{e}");
        assert!(w.validate(w.cpus as usize - 1).unwrap_err().contains("cpus, but the machine has"));
        let mut odd = w.clone();
        odd.maps[0].fixed = Some(FIXED_BASE + 8);
        assert!(odd.validate(4).unwrap_err().contains("is not page-aligned"));
        odd.maps[0].fixed = Some(PAGE_SIZE);
        assert!(odd.validate(4).unwrap_err().contains("outside the fixed range"));
    }

    #[test]
    fn removing_a_fork_or_a_mapping_keeps_the_workload_valid() {
        let mut checked = (0, 0);
        for seed in 0..200 {
            let w = Workload::generate(seed, 4);
            for (p, prog) in w.programs.iter().enumerate() {
                for (i, op) in prog.iter().enumerate() {
                    if matches!(op, WOp::Fork { .. }) {
                        let v = w.without_op(p, i);
                        v.validate(4).unwrap_or_else(|e| panic!("seed {seed} without fork {p}/{i}: {e}"));
                        checked.0 += 1;
                    }
                }
            }
            for i in 0..w.maps.len() {
                let v = w.without_map(i);
                v.validate(4).unwrap_or_else(|e| panic!("seed {seed} without mapping {i}: {e}"));
                checked.1 += 1;
            }
        }
        assert!(checked.0 > 50 && checked.1 > 500, "{checked:?}");
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
