//! Drawing a workload from a seed: the mixed flush-contract workload and the focused families,
//! every number from one ChaCha generator seeded by the seed and the family.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use vipt_tmpalias::Family;

use super::*;

/// The workload of `seed` in `family` for a machine with `max_cpus` CPUs.
pub(super) fn generate(seed: u64, max_cpus: usize, family: Family) -> Workload {
    let salt = match family {
        Family::Mixed => 0x005e_ed0f_7a11_0ad5,
        Family::Gather => 0x6a7e_e12f_0000_0003,
        Family::Clean => 0xc1ea_0d17_0000_0004,
        Family::Hash => 0x4a54_0000_0000_0002,
        Family::Sharing => 0x54a2_ed00_0000_0005,
        Family::Reuse => 0x2e05_e000_0000_0006,
    };
    let mut g = Gen { rng: ChaCha8Rng::seed_from_u64(seed ^ salt), next_value: 0 };
    match family {
        Family::Mixed => g.workload(max_cpus),
        Family::Gather => g.gather(max_cpus),
        Family::Clean => g.clean(max_cpus),
        Family::Hash => g.hash(max_cpus),
        Family::Sharing => g.sharing(max_cpus),
        Family::Reuse => g.reuse(max_cpus),
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
            .map(|_| FileSpec {
                pages: self.rng.random_range(1..=3),
                colour: self.rng.random_range(0..1024),
                shmem: false,
            })
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
                        58..=61 => WOp::Peek { proc, map, page, word, racy: false },
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
        Workload { cpus, files, procs, rings: Vec::new(), maps, programs }
    }
    /// [`Family::Sharing`]: the mixed workload of the seed's own draw, to which each operation
    /// group of the family adds its set-up and operations, one function per group.
    fn sharing(&mut self, max_cpus: usize) -> Workload {
        let mut w = self.workload(max_cpus);
        self.shmem_group(&mut w);
        self.shared_anon_group(&mut w);
        self.deferred_group(&mut w);
        self.race_group(&mut w);
        self.remaps(&mut w);
        self.rings(&mut w);
        self.stale_group(&mut w);
        w
    }

    /// The stale-TLB group (two workloads of three, on two CPUs or more): one program changes
    /// the PTE of a page of an initial process while another, a thread of the same process,
    /// stores to one word of that page and then loads and stores it 24 to 40 times more, both
    /// near the start of their programs so that they overlap (a reclaim's flush loops take far
    /// more steps than a few accesses). The change is one of: a load and two reclaims of the
    /// page (the first finds it young and only ages it, the second unmaps it: `try_to_unmap`'s
    /// `flush_cache_page` and `ptep_clear_flush`); a store, a `fork` of the process, a store
    /// (fork write-protects the PTE, the store copies the page: `wp_page_copy`) and the
    /// child's exit, so that the child keeps no copy of the other mappings; or an `munmap` of
    /// the mapping, an `mmap` of it again and a store that faults the page in anew. Each
    /// access of the thread that lands between a PTE change and the TLB purge after it goes
    /// through the entry the old PTE gave.
    fn stale_group(&mut self, w: &mut Workload) {
        if w.programs.len() < 2 || self.rng.random_range(0..3) == 0 {
            return;
        }
        let a = self.rng.random_range(0..w.programs.len());
        let b = (a + self.rng.random_range(1..w.programs.len())) % w.programs.len();
        let p = self.rng.random_range(0..w.procs);
        let mine: Vec<u8> = w
            .maps
            .iter()
            .filter(|m| m.proc == p)
            .enumerate()
            .filter(|(_, m)| !matches!(m.kind, MapKind::Ring { .. }))
            .map(|(i, _)| i as u8)
            .collect();
        if mine.is_empty() {
            return;
        }
        let map = self.pick(&mine);
        let page = self.rng.random_range(0..2u8);
        let word = self.pick(&WORDS);
        let proc = Proc::Init(p);
        let store = WOp::Store { proc, map, page, word, value: self.value(a) };
        let load = WOp::Load { proc, map, page, word };
        let pos_a = self.rng.random_range(0..=w.programs[a].len().min(2));
        // The index of the child a fork inserted at `pos_a` makes.
        let child = w.programs[a][..pos_a].iter().filter(|o| matches!(o, WOp::Fork { .. })).count() as u8;
        let change = match self.rng.random_range(0..3) {
            0 => {
                let reclaim = WOp::Reclaim { target: Target::User { proc, map, page } };
                vec![load, reclaim, reclaim]
            }
            // The child exits at once, so that it keeps no copy of the other mappings.
            1 => vec![store, WOp::Fork { proc }, store, WOp::Exit { proc: Proc::Child(child) }],
            _ => vec![WOp::Munmap { proc, map }, WOp::Remap { proc, map }, store],
        };
        // A store first, so that the thread's entry is a writable one.
        let mut accesses = vec![WOp::Store { proc, map, page, word, value: self.value(b) }];
        for _ in 0..self.rng.random_range(24..=40) {
            accesses.push(if self.rng.random_range(0..3) == 0 {
                WOp::Store { proc, map, page, word, value: self.value(b) }
            } else {
                WOp::Load { proc, map, page, word }
            });
        }
        w.programs[a].splice(pos_a..pos_a, change);
        let pos_b = self.rng.random_range(0..=w.programs[b].len().min(2));
        w.programs[b].splice(pos_b..pos_b, accesses);
    }

    /// The race group (every other workload, on two CPUs or more): operations that unmap a
    /// page while another CPU is inside a flush routine for it, placed near the start of two
    /// programs so that they overlap. One of:
    ///
    /// * a `munmap` of an anonymous mapping against an `access_process_vm` read of the same
    ///   page in a child forked just before (`flush_anon_page` of a page the parent's zap
    ///   unmaps);
    /// * a `truncate` to 0 of a file against a load, a store (the COW copy,
    ///   `copy_user_highpage`, of the page the load mapped) and tracer reads
    ///   (`access_process_vm`: `flush_anon_page`, `copy_from_user_page`) of that COWed page
    ///   of a private mapping of the file, which `truncate` unmaps too (`even_cows`). The
    ///   reads may overlap the truncation (the refined second workload rule); the load and
    ///   store only with racy teardowns;
    /// * three stores to a page through a shared mapping of a file, each followed by an
    ///   `msync`, whose `flush_cache_page` of the page runs while a `truncate` to 0 (two times
    ///   in three) or a reclaim of the page unmaps it from another process's shared mapping
    ///   (dirtied too).
    fn race_group(&mut self, w: &mut Workload) {
        if w.programs.len() < 2 || self.rng.random_range(0..2) == 0 {
            return;
        }
        let a = self.rng.random_range(0..w.programs.len());
        let b = (a + self.rng.random_range(1..w.programs.len())) % w.programs.len();
        // Every set-up mapping as (process, its index in the process, spec).
        let mut all: Vec<(u8, u8, MapSpec)> = Vec::new();
        for p in 0..w.procs {
            for (i, m) in w.maps.iter().filter(|m| m.proc == p).enumerate() {
                all.push((p, i as u8, m.clone()));
            }
        }
        let file_pages = |f: u8| w.files[f as usize].pages;
        let p = self.rng.random_range(0..w.procs);
        let anon: Vec<u8> =
            all.iter().filter(|(q, _, m)| *q == p && m.kind == MapKind::Anon).map(|&(_, i, _)| i).collect();
        // (process, mapping, page, file) of the pages inside their file of private file
        // mappings.
        let private: Vec<(u8, u8, u8, u8)> = all
            .iter()
            .flat_map(|(q, i, m)| match m.kind {
                MapKind::File { file, pgoff, shared: false } => (0..m.pages)
                    .filter(|pg| pgoff + pg < file_pages(file))
                    .map(|pg| (*q, *i, pg as u8, file))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            })
            .collect();
        // Pairs of shared mappings of one file page in two processes: ((process, mapping,
        // page) twice, file, page offset).
        let mut shared = Vec::new();
        for (q1, i1, m1) in &all {
            let MapKind::File { file: f1, pgoff: o1, shared: true } = m1.kind else { continue };
            for (q2, i2, m2) in &all {
                let MapKind::File { file: f2, pgoff: o2, shared: true } = m2.kind else { continue };
                if q1 == q2 || f1 != f2 {
                    continue;
                }
                for pg1 in 0..m1.pages {
                    let at = o1 + pg1;
                    if at < file_pages(f1) && (o2..o2 + m2.pages).contains(&at) {
                        shared.push(((*q1, *i1, pg1 as u8), (*q2, *i2, (at - o2) as u8), f1, at));
                    }
                }
            }
        }
        let mut kinds = Vec::new();
        if !anon.is_empty() {
            kinds.push(0);
        }
        if !private.is_empty() {
            kinds.push(1);
        }
        if !shared.is_empty() {
            kinds.push(2);
        }
        if kinds.is_empty() {
            return;
        }
        let word = self.pick(&WORDS);
        let pos_a = self.rng.random_range(0..=w.programs[a].len().min(2));
        let kind = self.pick(&kinds);
        let at_start = kind == 2;
        let (ops_a, ops_b) = match kind {
            0 => {
                let map = self.pick(&anon);
                let page = self.rng.random_range(0..2u8);
                // The child's index among the forks of program `a` before the inserted ones.
                let child =
                    w.programs[a][..pos_a].iter().filter(|o| matches!(o, WOp::Fork { .. })).count() as u8;
                let value = self.value(a);
                let ops_a = vec![
                    WOp::Store { proc: Proc::Init(p), map, page, word, value },
                    WOp::Fork { proc: Proc::Init(p) },
                    WOp::Peek { proc: Proc::Child(child), map, page, word, racy: false },
                ];
                (ops_a, vec![WOp::Munmap { proc: Proc::Init(p), map }])
            }
            1 => {
                let (q, map, page, file) = self.pick(&private);
                let proc = Proc::Init(q);
                let value = self.value(a);
                let peek = WOp::Peek { proc, map, page, word, racy: true };
                let ops_a = vec![
                    WOp::Load { proc, map, page, word },
                    WOp::Store { proc, map, page, word, value },
                    peek,
                    peek,
                    peek,
                ];
                (ops_a, vec![WOp::Truncate { file, pages: 0 }])
            }
            _ => {
                let ((q1, m1, pg1), (q2, m2, pg2), file, pgoff) = self.pick(&shared);
                let (v1, v2) = (self.value(a), self.value(b));
                let mut ops_a = Vec::new();
                for v in [v1, self.value(a), self.value(a)] {
                    ops_a.push(WOp::Store { proc: Proc::Init(q1), map: m1, page: pg1, word, value: v });
                    ops_a.push(WOp::Msync { proc: Proc::Init(q1), map: m1 });
                }
                // Truncate twice as often: reclaim meets flush_cache_page elsewhere too.
                let unmap = if self.rng.random_range(0..3) != 0 {
                    WOp::Truncate { file, pages: 0 }
                } else {
                    WOp::Reclaim { target: Target::File { file, pgoff } }
                };
                let store = WOp::Store { proc: Proc::Init(q2), map: m2, page: pg2, word, value: v2 };
                (ops_a, vec![store, unmap])
            }
        };
        let pos_a = if at_start { 0 } else { pos_a };
        w.programs[a].splice(pos_a..pos_a, ops_a);
        let pos_b = self.rng.random_range(0..=w.programs[b].len().min(2));
        let pos_b = if at_start { 0 } else { pos_b };
        w.programs[b].splice(pos_b..pos_b, ops_b);
    }

    /// The deferred-flush group (every other workload): a file of its own with one set-up
    /// mapping, which a program unmaps, writes with `write(2)` while nothing maps the file
    /// (`flush_dcache_page` then only marks the page `PG_dcache_dirty`), maps again and loads
    /// the word it wrote: the fault's `update_mmu_cache` owes the deferred flush.
    fn deferred_group(&mut self, w: &mut Workload) {
        if self.rng.random_range(0..2) == 0 || w.files.len() >= MAX_FILES || w.maps.len() >= MAX_MAPS {
            return;
        }
        let file = w.files.len() as u8;
        let pages = self.rng.random_range(1..=2);
        w.files.push(FileSpec { pages, colour: self.rng.random_range(0..COLOURS), shmem: false });
        let proc = self.rng.random_range(0..w.procs);
        let map = w.maps.iter().filter(|m| m.proc == proc).count() as u8;
        let shared = self.rng.random_range(0..2) == 0;
        w.maps.push(MapSpec { proc, kind: MapKind::File { file, pgoff: 0, shared }, pages, fixed: None });
        let cpu = self.rng.random_range(0..w.programs.len());
        let page = self.rng.random_range(0..pages) as u8;
        let word = self.pick(&WORDS);
        let value = self.value(cpu);
        let proc = Proc::Init(proc);
        let ops = [
            WOp::Munmap { proc, map },
            WOp::Write { file, pgoff: u64::from(page), word, value },
            WOp::Remap { proc, map },
            WOp::Load { proc, map, page, word },
        ];
        let pos = self.rng.random_range(0..=w.programs[cpu].len());
        w.programs[cpu].splice(pos..pos, ops);
    }

    /// Inserts `op(slot)` at a seeded position of a seeded program, for an initial process
    /// drawn for it and one of that process's set-up mappings (`None` from `op`: nothing).
    fn insert_op(&mut self, w: &mut Workload, mut op: impl FnMut(&mut Self, Slot) -> Option<WOp>) {
        let cpu = self.rng.random_range(0..w.programs.len());
        let p = self.rng.random_range(0..w.procs);
        let nm = w.maps.iter().filter(|m| m.proc == p).count().max(1) as u8;
        let map = self.rng.random_range(0..nm);
        let page = self.rng.random_range(0..2u8);
        let word = self.pick(&WORDS);
        let pos = self.rng.random_range(0..=w.programs[cpu].len());
        if let Some(o) = op(self, Slot { cpu, proc: Proc::Init(p), map, page, word }) {
            w.programs[cpu].insert(pos, o);
        }
    }

    /// The shmem group: some of the files (at least one) become shmem (tmpfs) files, whose
    /// pages reclaim moves through the swap cache while they stay mapped elsewhere, and more
    /// reclaims of their pages (by file page and by user address) and accesses to them join
    /// the programs.
    fn shmem_group(&mut self, w: &mut Workload) {
        let first = self.rng.random_range(0..w.files.len());
        for (i, f) in w.files.iter_mut().enumerate() {
            f.shmem = i == first || self.rng.random_range(0..100) < 40;
        }
        // (process, its mapping index, file) of every set-up mapping of a shmem file.
        let mut maps = Vec::new();
        for p in 0..w.procs {
            for (i, m) in w.maps.iter().filter(|m| m.proc == p).enumerate() {
                if let MapKind::File { file, .. } = m.kind
                    && w.files[file as usize].shmem
                {
                    maps.push((p, i as u8, file));
                }
            }
        }
        let files: Vec<(u8, u64)> =
            w.files.iter().enumerate().filter(|(_, f)| f.shmem).map(|(i, f)| (i as u8, f.pages)).collect();
        for _ in 0..self.rng.random_range(3..=7) {
            self.insert_op(w, |g, Slot { cpu, page, word, .. }| {
                let (file, pages) = g.pick(&files);
                let pgoff = g.rng.random_range(0..pages);
                let user = (!maps.is_empty()).then(|| g.pick(&maps));
                Some(match (g.rng.random_range(0..100), user) {
                    (0..=34, _) | (_, None) => WOp::Reclaim { target: Target::File { file, pgoff } },
                    (35..=59, Some((p, map, _))) => {
                        WOp::Reclaim { target: Target::User { proc: Proc::Init(p), map, page } }
                    }
                    (60..=79, Some((p, map, _))) => WOp::Load { proc: Proc::Init(p), map, page, word },
                    (80..=89, Some((p, map, _))) => {
                        WOp::Store { proc: Proc::Init(p), map, page, word, value: g.value(cpu) }
                    }
                    _ => WOp::Read { file, pgoff, word },
                })
            });
        }
    }

    /// The shared anonymous group: a process gets a `MAP_SHARED | MAP_ANONYMOUS` mapping
    /// (now and then at a `MAP_FIXED` address of any colour), one or two programs fork it at
    /// their end and touch it from the child, and others touch and reclaim it from the parent.
    fn shared_anon_group(&mut self, w: &mut Workload) {
        if w.maps.len() >= MAX_MAPS {
            return;
        }
        let p = self.rng.random_range(0..w.procs);
        let map = w.maps.iter().filter(|m| m.proc == p).count() as u8;
        let fixed = (self.rng.random_range(0..100) < 20)
            .then(|| FIXED_BASE + 15 * SHM_COLOUR + self.rng.random_range(0..8) * PAGE_SIZE);
        w.maps.push(MapSpec {
            proc: p,
            kind: MapKind::SharedAnon,
            pages: self.rng.random_range(1..=2),
            fixed,
        });
        let touch = |g: &mut Self, cpu: usize, proc: Proc| {
            let page = g.rng.random_range(0..2u8);
            let word = g.pick(&WORDS);
            match g.rng.random_range(0..100) {
                0..=34 => WOp::Store { proc, map, page, word, value: g.value(cpu) },
                35..=69 => WOp::Load { proc, map, page, word },
                70..=84 => WOp::Reclaim { target: Target::User { proc, map, page } },
                85..=92 => WOp::Peek { proc, map, page, word, racy: false },
                _ => WOp::Futex { proc, map, page, word, value: g.value(cpu) },
            }
        };
        for _ in 0..self.rng.random_range(1..=2) {
            let cpu = self.rng.random_range(0..w.programs.len());
            let child = w.programs[cpu].iter().filter(|o| matches!(o, WOp::Fork { .. })).count() as u8;
            w.programs[cpu].push(WOp::Fork { proc: Proc::Init(p) });
            for _ in 0..self.rng.random_range(2..=4) {
                let o = touch(self, cpu, Proc::Child(child));
                w.programs[cpu].push(o);
            }
        }
        for _ in 0..self.rng.random_range(3..=6) {
            let cpu = self.rng.random_range(0..w.programs.len());
            let pos = self.rng.random_range(0..=w.programs[cpu].len());
            let o = match self.rng.random_range(0..100) {
                0..=89 => touch(self, cpu, Proc::Init(p)),
                90..=94 => WOp::Munmap { proc: Proc::Init(p), map },
                _ => WOp::Remap { proc: Proc::Init(p), map },
            };
            w.programs[cpu].insert(pos, o);
        }
    }

    /// Inserts `op` at a random place of program `cpu`.
    fn insert(&mut self, w: &mut Workload, cpu: usize, op: WOp) {
        let at = self.rng.random_range(0..=w.programs[cpu].len());
        w.programs[cpu].insert(at, op);
    }

    /// The `mremap` group of [`Family::Sharing`]: in about two programs of three, one to three
    /// `mremap`s of a mapping of an initial process: grown (by up to two pages) and moved by
    /// `MREMAP_MAYMOVE` where the range after it is taken, or moved with `MREMAP_FIXED` to a
    /// chosen address of any colour, so that a private anonymous page lands at another
    /// colour while a shared file page may not under today's checks. Each `MREMAP_FIXED` target
    /// is a 4 MiB slot of its own above the set-up's fixed mappings (at a drawn page of it), so
    /// no `mremap` unmaps another mapping; there are five such slots (the shared anonymous group uses the sixth).
    fn remaps(&mut self, w: &mut Workload) {
        let maps_of = |w: &Workload, p: u8| w.maps.iter().filter(|m| m.proc == p).count() as u8;
        let mut slot = 0u64;
        for cpu in 0..w.cpus as usize {
            if self.rng.random_range(0..3) == 0 {
                continue;
            }
            for _ in 0..self.rng.random_range(1..=3) {
                let p = self.rng.random_range(0..w.procs);
                let n = maps_of(w, p);
                if n == 0 {
                    continue;
                }
                let map = self.rng.random_range(0..n);
                let pages = self.rng.random_range(1..=MAX_MAP_PAGES);
                let fixed = (slot < 5 && self.rng.random_range(0..100) < 45).then(|| {
                    slot += 1;
                    FIXED_BASE + (9 + slot) * SHM_COLOUR + self.rng.random_range(0..8) * PAGE_SIZE
                });
                let maymove = fixed.is_some() || self.rng.random_range(0..100) < 80;
                self.insert(w, cpu, WOp::Mremap { proc: Proc::Init(p), map, pages, maymove, fixed });
            }
        }
    }

    /// The kernel-buffer group of [`Family::Sharing`]: one or two io_uring-like rings, each
    /// mapped by one or two of the initial processes (a mapping appended to theirs); user loads
    /// and stores to the ring's words through those mappings and the kernel's posts and fetches
    /// through its own address, scattered over the programs.
    fn rings(&mut self, w: &mut Workload) {
        let nrings = self.rng.random_range(1..=2u8);
        for ring in 0..nrings {
            w.rings.push(RingSpec { colour: self.rng.random_range(0..COLOURS) });
            let mut mappers = Vec::new();
            for _ in 0..self.rng.random_range(1..=2) {
                let p = self.rng.random_range(0..w.procs);
                if mappers.iter().any(|&(q, _)| q == p) || w.maps.len() >= MAX_MAPS {
                    continue;
                }
                let map = w.maps.iter().filter(|m| m.proc == p).count() as u8;
                w.maps.push(MapSpec { proc: p, kind: MapKind::Ring { ring }, pages: 1, fixed: None });
                mappers.push((p, map));
            }
            if mappers.is_empty() {
                continue;
            }
            for cpu in 0..w.cpus as usize {
                for _ in 0..self.rng.random_range(1..=4) {
                    let word = self.pick(&WORDS);
                    let (p, map) = self.pick(&mappers);
                    let proc = Proc::Init(p);
                    let op = match self.rng.random_range(0..100) {
                        0..=29 => WOp::RingPost { ring, word, value: self.value(cpu) },
                        30..=54 => WOp::RingFetch { ring, word },
                        55..=79 => WOp::Store { proc, map, page: 0, word, value: self.value(cpu) },
                        _ => WOp::Load { proc, map, page: 0, word },
                    };
                    self.insert(w, cpu, op);
                }
            }
        }
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
                    MapKind::Anon | MapKind::SharedAnon => self.rng.random_range(1..=2),
                    MapKind::Ring { .. } => 1,
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
        let files: Vec<FileSpec> = (0..nfiles)
            .map(|_| FileSpec { pages: self.rng.random_range(1..=2), colour: 0, shmem: false })
            .collect();
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
        Workload { cpus, files, procs, rings: Vec::new(), maps, programs }
    }

    /// [`Family::Reuse`]: the gather workload of the seed's own draw with the address-reuse
    /// group added.
    fn reuse(&mut self, max_cpus: usize) -> Workload {
        let mut w = self.gather(max_cpus);
        self.reuse_group(&mut w);
        w
    }

    /// The address-reuse group: an anonymous mapping of two pages added to an initial process;
    /// near the start of one program a thread of it stores to both pages and then loads and
    /// stores (mostly the second) 24 to 40 times; near the start of another, the mapping is
    /// unmapped, mapped again (where `mmap` places it, often the address it just left) and its
    /// second page stored to, which faults in a new page. If the `munmap` left a TLB entry of
    /// the old second page behind, the thread's next access goes through it while the PTE maps
    /// the new page.
    fn reuse_group(&mut self, w: &mut Workload) {
        if w.programs.len() < 2 || w.maps.len() >= MAX_MAPS {
            return;
        }
        let a = self.rng.random_range(0..w.programs.len());
        let b = (a + self.rng.random_range(1..w.programs.len())) % w.programs.len();
        let p = self.rng.random_range(0..w.procs);
        let map = w.maps.iter().filter(|m| m.proc == p).count() as u8;
        w.maps.push(MapSpec { proc: p, kind: MapKind::Anon, pages: 2, fixed: None });
        let proc = Proc::Init(p);
        let word = self.pick(&WORDS);
        let mut accesses = vec![
            WOp::Store { proc, map, page: 0, word, value: self.value(a) },
            WOp::Store { proc, map, page: 1, word, value: self.value(a) },
        ];
        for _ in 0..self.rng.random_range(24..=40) {
            let page = u8::from(self.rng.random_range(0..4) != 0);
            accesses.push(if self.rng.random_range(0..3) == 0 {
                WOp::Store { proc, map, page, word, value: self.value(a) }
            } else {
                WOp::Load { proc, map, page, word }
            });
        }
        let pos_a = self.rng.random_range(0..=w.programs[a].len().min(2));
        w.programs[a].splice(pos_a..pos_a, accesses);
        let change = vec![
            WOp::Munmap { proc, map },
            WOp::Remap { proc, map },
            WOp::Store { proc, map, page: 1, word, value: self.value(b) },
        ];
        let pos_b = self.rng.random_range(0..=w.programs[b].len().min(2));
        w.programs[b].splice(pos_b..pos_b, change);
    }

    /// [`Family::Hash`]: threads of one or two processes load and store while others unmap,
    /// remap, `mprotect` to `PROT_NONE` and back, fork and reclaim the same pages, so that a
    /// lockless TLB-miss handler races every kind of PTE change.
    fn hash(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(2..=max_cpus.clamp(2, 4)) as u8;
        let files = vec![FileSpec { pages: self.rng.random_range(1..=2), colour: 0, shmem: false }];
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
        Workload { cpus, files, procs, rings: Vec::new(), maps, programs }
    }

    /// [`Family::Clean`]: one device-like file, mapped shared by one or two processes;
    /// threads store to it and load from it while some clean its dirty log.
    fn clean(&mut self, max_cpus: usize) -> Workload {
        let cpus = self.rng.random_range(3.min(max_cpus).max(2)..=max_cpus.clamp(2, 4)) as u8;
        let pages = self.rng.random_range(1..=2);
        let files = vec![FileSpec { pages, colour: 0, shmem: false }];
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
        Workload { cpus, files, procs, rings: Vec::new(), maps, programs }
    }
}
