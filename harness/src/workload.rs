//! Workloads: files, processes, mappings and one program of operations per CPU, generated
//! from a seed. Small on purpose, so that rare coincidences (a swap offset that decodes to a
//! live pfn, two mappings of one page at different colours) happen often.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
        let salt = match family {
            Family::Mixed => 0x005e_ed0f_7a11_0ad5,
            Family::Gather => 0x6a7e_e12f_0000_0003,
            Family::Clean => 0xc1ea_0d17_0000_0004,
            Family::Hash => 0x4a54_0000_0000_0002,
        };
        let mut g = Gen { rng: ChaCha8Rng::seed_from_u64(seed ^ salt), next_value: 0 };
        match family {
            Family::Mixed => g.workload(max_cpus),
            Family::Gather => g.gather(max_cpus),
            Family::Clean => g.clean(max_cpus),
            Family::Hash => g.hash(max_cpus),
        }
    }
}

/// What [`Gen::thread_programs`] drew for one operation.
struct Slot {
    cpu: usize,
    proc: Proc,
    map: u8,
    page: u8,
    word: u16,
}

struct Gen {
    rng: ChaCha8Rng,
    next_value: u64,
}

impl Gen {
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn value(&mut self, cpu: usize) -> u64 {
        self.next_value += 1;
        ((cpu as u64 + 1) << 32) | self.next_value
    }

    fn workload(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(2..=max_cpus.clamp(2, 4)) as u8;
        let nfiles = self.rng.random_range(1..=3u8);
        let files: Vec<FileSpec> = (0..nfiles)
            .map(|_| FileSpec { pages: self.rng.random_range(1..=3), colour: self.rng.random_range(0..1024) })
            .collect();
        let procs = self.rng.random_range(2..=3u8);
        let mut maps = Vec::new();
        let mut fixed_slot = 0u64;
        for p in 0..procs {
            for _ in 0..self.rng.random_range(2..=3) {
                let r = self.rng.random_range(0..100);
                let kind = if r < 35 {
                    MapKind::Anon
                } else {
                    let file = self.rng.random_range(0..nfiles);
                    let pgoff = self.rng.random_range(0..files[file as usize].pages);
                    MapKind::File { file, pgoff, shared: r < 75 }
                };
                let pages = self.rng.random_range(1..=2);
                // Now and then a shared file mapping at a chosen, possibly non-congruent,
                // address: kernels that check MAP_FIXED refuse the odd colours.
                let fixed = match kind {
                    MapKind::File { shared: true, .. } if self.rng.random_range(0..100) < 15 => {
                        fixed_slot += 1;
                        Some(FIXED_BASE + fixed_slot * SHM_COLOUR + self.rng.random_range(0..8) * PAGE_SIZE)
                    }
                    _ => None,
                };
                maps.push(MapSpec { proc: p, kind, pages, fixed });
            }
        }
        let maps_of = |p: u8| maps.iter().filter(|m| m.proc == p).count() as u8;
        let mut programs = Vec::new();
        for cpu in 0..cpus as usize {
            let reclaimer = cpu + 1 == cpus as usize && cpus > 2;
            let n = if reclaimer { self.rng.random_range(3..=8) } else { self.rng.random_range(4..=10) };
            let mut forks = 0u8;
            let mut prog = Vec::with_capacity(n);
            let home = self.rng.random_range(0..procs);
            for _ in 0..n {
                let proc = if forks > 0 && self.rng.random_range(0..100) < 30 {
                    Proc::Child(self.rng.random_range(0..forks))
                } else if self.rng.random_range(0..100) < 70 {
                    Proc::Init(home)
                } else {
                    Proc::Init(self.rng.random_range(0..procs))
                };
                let base = match proc {
                    Proc::Init(p) => p,
                    Proc::Child(_) => home,
                };
                let nm = maps_of(base).max(1);
                let map = self.rng.random_range(0..nm);
                let page = self.rng.random_range(0..2u8);
                let word = self.pick(&WORDS);
                let file = self.rng.random_range(0..nfiles);
                let pgoff = self.rng.random_range(0..MAX_FILE_PAGES.min(files[file as usize].pages + 1));
                let r = self.rng.random_range(0..100);
                let op = if reclaimer {
                    match r {
                        0..=64 => WOp::Reclaim { target: Target::User { proc, map, page } },
                        65..=84 => WOp::Reclaim { target: Target::File { file, pgoff } },
                        85..=94 => WOp::Fsync { file },
                        _ => WOp::Msync { proc, map },
                    }
                } else {
                    match r {
                        0..=19 => WOp::Load { proc, map, page, word },
                        20..=41 => WOp::Store { proc, map, page, word, value: self.value(cpu) },
                        42..=49 => WOp::Write { file, pgoff, word, value: self.value(cpu) },
                        50..=57 => WOp::Read { file, pgoff, word },
                        58..=61 => WOp::Peek { proc, map, page, word },
                        62..=64 => WOp::Poke { proc, map, page, word, value: self.value(cpu) },
                        65..=70 => {
                            forks += 1;
                            WOp::Fork { proc }
                        }
                        71..=73 => WOp::Msync { proc, map },
                        74..=75 => WOp::Fsync { file },
                        76..=77 => WOp::Truncate {
                            file,
                            pages: self.rng.random_range(0..=files[file as usize].pages),
                        },
                        78..=79 => WOp::Munmap { proc, map },
                        80..=81 => WOp::Remap { proc, map },
                        82 => WOp::Exit { proc },
                        83..=86 => WOp::Futex { proc, map, page, word, value: self.value(cpu) },
                        _ => WOp::Reclaim { target: Target::User { proc, map, page } },
                    }
                };
                prog.push(op);
            }
            programs.push(prog);
        }
        Workload { cpus, files, procs, maps, programs }
    }
    /// A process for an operation of a program whose home process is `home`: mostly the
    /// home one, now and then a child forked by this program.
    fn thread_proc(&mut self, home: u8, forks: u8) -> Proc {
        if forks > 0 && self.rng.random_range(0..100) < 25 {
            Proc::Child(self.rng.random_range(0..forks))
        } else {
            Proc::Init(home)
        }
    }

    /// One program per CPU for the focused families: each CPU runs threads of a home process
    /// (or children it forked), and `op` picks each operation from the drawn process, mapping,
    /// page and word.
    fn thread_programs(
        &mut self, cpus: u8, procs: u8, maps: &[MapSpec], len: std::ops::RangeInclusive<usize>,
        mut op: impl FnMut(&mut Self, Slot) -> WOp,
    ) -> Vec<Vec<WOp>> {
        let maps_of = |p: u8| maps.iter().filter(|m| m.proc == p).count() as u8;
        let mut programs = Vec::with_capacity(cpus as usize);
        for cpu in 0..cpus as usize {
            let home = self.rng.random_range(0..procs);
            let mut forks = 0u8;
            let n = self.rng.random_range(len.clone());
            let mut prog = Vec::with_capacity(n);
            for _ in 0..n {
                let proc = self.thread_proc(home, forks);
                let map = self.rng.random_range(0..maps_of(home).max(1));
                let page = self.rng.random_range(0..2u8);
                let word = self.pick(&WORDS);
                let o = op(self, Slot { cpu, proc, map, page, word });
                if matches!(o, WOp::Fork { .. }) {
                    forks += 1;
                }
                prog.push(o);
            }
            programs.push(prog);
        }
        programs
    }

    /// The set-up mappings of the focused families: for each of `procs` processes, a number
    /// drawn from `per_proc` of mappings of the kind `kind` draws. A file mapping covers its
    /// whole file from page 0, an anonymous one one or two pages.
    fn proc_maps(
        &mut self, procs: u8, per_proc: std::ops::RangeInclusive<i32>, files: &[FileSpec],
        mut kind: impl FnMut(&mut Self) -> MapKind,
    ) -> Vec<MapSpec> {
        let mut maps = Vec::new();
        for p in 0..procs {
            for _ in 0..self.rng.random_range(per_proc.clone()) {
                let kind = kind(self);
                let pages = match kind {
                    MapKind::File { file, .. } => files[file as usize].pages,
                    MapKind::Anon => self.rng.random_range(1..=2),
                };
                maps.push(MapSpec { proc: p, kind, pages, fixed: None });
            }
        }
        maps
    }

    /// [`Family::Gather`]: threads of one or two processes store, load and run `gup_fast`
    /// while others unmap and remap their mappings. Each file mapping lies in a page-table
    /// page of its own, so unmapping it frees that table.
    fn gather(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(2..=max_cpus.clamp(2, 4)) as u8;
        let nfiles = self.rng.random_range(1..=2u8);
        let files: Vec<FileSpec> =
            (0..nfiles).map(|_| FileSpec { pages: self.rng.random_range(1..=2), colour: 0 }).collect();
        let procs = self.rng.random_range(1..=2u8);
        let maps = self.proc_maps(procs, 2..=3, &files, |g| {
            if g.rng.random_range(0..100) < 30 {
                MapKind::Anon
            } else {
                let file = g.rng.random_range(0..nfiles);
                MapKind::File { file, pgoff: 0, shared: g.rng.random_range(0..100) < 60 }
            }
        });
        let programs = self.thread_programs(
            cpus,
            procs,
            &maps,
            5..=12,
            |g, Slot { cpu, proc, map, page, word }| match g.rng.random_range(0..100) {
                0..=14 => WOp::Load { proc, map, page, word },
                15..=34 => WOp::Store { proc, map, page, word, value: g.value(cpu) },
                35..=59 => WOp::GupFast { proc, map, page, word },
                60..=72 => WOp::Munmap { proc, map },
                73..=87 => WOp::Remap { proc, map },
                88..=91 => WOp::Fork { proc },
                92..=95 => WOp::Reclaim { target: Target::User { proc, map, page } },
                _ => {
                    let file = g.rng.random_range(0..nfiles);
                    WOp::Truncate { file, pages: g.rng.random_range(0..=files[file as usize].pages) }
                }
            },
        );
        Workload { cpus, files, procs, maps, programs }
    }

    /// [`Family::Hash`]: threads of one or two processes load and store while others unmap,
    /// remap, `mprotect` to `PROT_NONE` and back, fork and reclaim the same pages, so that a
    /// lockless TLB-miss handler races every kind of PTE change.
    fn hash(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(2..=max_cpus.clamp(2, 4)) as u8;
        let files = vec![FileSpec { pages: self.rng.random_range(1..=2), colour: 0 }];
        let procs = self.rng.random_range(1..=2u8);
        let maps = self.proc_maps(procs, 1..=2, &files, |g| {
            let r = g.rng.random_range(0..100);
            if r < 40 { MapKind::Anon } else { MapKind::File { file: 0, pgoff: 0, shared: r < 80 } }
        });
        let programs = self.thread_programs(
            cpus,
            procs,
            &maps,
            6..=12,
            |g, Slot { cpu, proc, map, page, word }| match g.rng.random_range(0..100) {
                0..=24 => WOp::Load { proc, map, page, word },
                25..=54 => WOp::Store { proc, map, page, word, value: g.value(cpu) },
                55..=62 => WOp::Mprotect { proc, map, none: true },
                63..=70 => WOp::Mprotect { proc, map, none: false },
                71..=77 => WOp::Munmap { proc, map },
                78..=84 => WOp::Remap { proc, map },
                85..=88 => WOp::Fork { proc },
                _ => WOp::Reclaim { target: Target::User { proc, map, page } },
            },
        );
        Workload { cpus, files, procs, maps, programs }
    }

    /// [`Family::Clean`]: one device-like file, mapped shared by one or two processes;
    /// threads store to it and load from it while some clean its dirty log.
    fn clean(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(3.min(max_cpus).max(2)..=max_cpus.clamp(2, 4)) as u8;
        let pages = self.rng.random_range(1..=2);
        let files = vec![FileSpec { pages, colour: 0 }];
        let procs = self.rng.random_range(1..=2u8);
        let maps =
            self.proc_maps(procs, 1..=2, &files, |_| MapKind::File { file: 0, pgoff: 0, shared: true });
        let programs = self.thread_programs(
            cpus,
            procs,
            &maps,
            6..=12,
            |g, Slot { cpu, proc, map, page, word }| match g.rng.random_range(0..100) {
                0..=14 => WOp::Load { proc, map, page, word },
                15..=59 => WOp::Store { proc, map, page, word, value: g.value(cpu) },
                60..=64 => WOp::Futex { proc, map, page, word, value: g.value(cpu) },
                65..=95 => WOp::Clean { file: 0 },
                _ => WOp::Fork { proc },
            },
        );
        Workload { cpus, files, procs, maps, programs }
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
