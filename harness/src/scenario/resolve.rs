//! Operation resolution: a workload operation ([`WOp`]), which names processes, mappings and
//! pages by workload index, against the current shadow state gives a [`Flight`]: the kernel
//! operation to run, the logical word it touches and what it claims against the others.

use vipt_emu::addr::{SHM_COLOUR, VirtAddr};
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{FileId, Op};

use super::admit::{Claims, Class, Rules, Teardown};
use super::shadow::Shadow;
use crate::oracle::{Loc, OpRef, PageLoc};
use crate::workload::{MapKind, Proc, Target, WOp};

/// An operation of a program, from its resolution to its completion.
#[derive(Clone, Debug)]
pub(super) struct Flight {
    /// The workload operation.
    pub(super) op: WOp,
    /// The CPU whose program it is (it runs there).
    pub(super) cpu: usize,
    /// Its index in that program.
    pub(super) index: usize,
    /// The step it started at (0 until it starts).
    pub(super) start: u64,
    /// The process it acts on (index into [`Shadow::procs`]), if it names one.
    pub(super) proc: Option<usize>,
    /// With `proc`: the mapping it acts on (0 when it names none).
    pub(super) map: usize,
    /// For an access: the page of the mapping (the workload's page modulo its length).
    pub(super) page: u64,
    /// For an access: the word of that page.
    pub(super) word: u16,
    /// What it holds against the other running operations.
    pub(super) claims: Claims,
    /// The logical page `get_user_pages` pinned, for `access_process_vm` and `gup_fast`: its
    /// access goes to that page whatever the mapping maps later.
    pub(super) pinned: Option<PageLoc>,
    /// A `gup_fast` whose address was mapped by nothing the runner knows of when it pinned
    /// (a mapping being created or torn down at that moment): its read is not judged.
    pub(super) unjudged: bool,
    /// The words it has written so far whose writes stay open until it completes.
    pub(super) written: Vec<Loc>,
    /// The kernel operation.
    pub(super) emu: Op,
}

impl Flight {
    /// The operation, as the oracle names it.
    pub(super) fn by(&self) -> OpRef {
        OpRef { cpu: self.cpu as u8, index: Some(self.index as u16) }
    }
}

/// Resolves operation `index` of program `cpu` against the current state: the kernel op, or
/// `None` when it names something that does not exist (any more), or a poke the rules forbid.
/// `colours` is the number of cache colours of the machine (1 when physically indexed).
pub(super) fn resolve(
    sh: &Shadow, rules: &Rules, colours: u64, cpu: usize, index: usize, op: WOp,
) -> Option<Flight> {
    let mut f = Flight {
        op,
        cpu,
        index,
        start: 0,
        proc: None,
        map: 0,
        page: 0,
        word: 0,
        claims: Claims::default(),
        pinned: None,
        unjudged: false,
        written: Vec::new(),
        emu: Op::Fsync { file: FileId(0) },
    };
    let user = |p: Proc, map: u8, page: u8| -> Option<(usize, usize, u64, VirtAddr)> {
        let pi = sh.proc_index(cpu, p)?;
        let m = sh.procs[pi].maps.get(map as usize)?;
        let page = page as u64 % m.pages;
        Some((pi, map as usize, page, m.va?.add_pages(page)))
    };
    match op {
        WOp::Load { proc, map, page, word }
        | WOp::Store { proc, map, page, word, .. }
        | WOp::Futex { proc, map, page, word, .. }
        | WOp::Peek { proc, map, page, word, .. }
        | WOp::Poke { proc, map, page, word, .. } => {
            let (pi, mi, pg, va) = user(proc, map, page)?;
            let va = va.with_word(word as usize);
            let mm = sh.procs[pi].mm;
            (f.proc, f.map, f.page, f.word) = (Some(pi), mi, pg, word);
            f.claims.access = Some((pi, mi));
            let pl = sh.page_loc(pi, mi, pg)?;
            f.emu = match op {
                WOp::Load { .. } => Op::Load { mm, va },
                WOp::Store { value, .. } => {
                    f.claims.gate = Some((pl, Class::User(va.vpn().raw() % colours)));
                    Op::Store { mm, va, value }
                }
                WOp::Futex { value, .. } => {
                    f.claims.gate = Some((pl, Class::User(va.vpn().raw() % colours)));
                    Op::Futex { mm, va, value }
                }
                WOp::Peek { racy, .. } => {
                    f.claims.kernel_read = racy;
                    Op::AccessVm { mm, va, store: None }
                }
                WOp::Poke { value, .. } => {
                    if !rules.may_poke(sh.procs[pi].maps[mi].kind) {
                        return None;
                    }
                    f.claims.gate = Some((pl, Class::Kernel));
                    f.claims.poke = true;
                    Op::AccessVm { mm, va, store: Some(value) }
                }
                _ => unreachable!(),
            };
        }
        WOp::Write { file, pgoff, word, value } => {
            f.claims.gate = Some((PageLoc::File { file, pgoff }, Class::Kernel));
            f.emu = Op::Write { file: sh.files[file as usize], pgoff, word: word as usize, value };
        }
        WOp::Read { file, pgoff, word } => {
            f.emu = Op::Read { file: sh.files[file as usize], pgoff, word: word as usize };
        }
        WOp::Fork { proc } => {
            let pi = sh.proc_index(cpu, proc)?;
            f.proc = Some(pi);
            f.emu = Op::Fork { mm: sh.procs[pi].mm };
        }
        WOp::Exit { proc } => {
            let pi = sh.proc_index(cpu, proc)?;
            f.proc = Some(pi);
            f.claims.teardown = Some(Teardown::Proc(pi));
            f.emu = Op::Exit { mm: sh.procs[pi].mm };
        }
        WOp::Munmap { proc, map } | WOp::Msync { proc, map } | WOp::Remap { proc, map } => {
            let pi = sh.proc_index(cpu, proc)?;
            let m = sh.procs[pi].maps.get(map as usize)?;
            (f.proc, f.map) = (Some(pi), map as usize);
            if !matches!(op, WOp::Msync { .. }) {
                f.claims.remaps = Some((pi, map as usize));
            }
            if matches!(op, WOp::Munmap { .. }) {
                f.claims.teardown = Some(Teardown::Map(pi, map as usize));
            }
            let mm = sh.procs[pi].mm;
            f.emu = match (op, m.va) {
                (WOp::Munmap { .. }, Some(va)) => Op::Munmap { mm, va, pages: m.pages },
                (WOp::Msync { .. }, Some(va)) => Op::Msync { mm, va, pages: m.pages },
                (WOp::Remap { .. }, None) => sh.map_op(mm, m.kind, m.pages, None)?,
                _ => return None,
            };
        }
        WOp::Mremap { proc, map, pages, maymove, fixed } => {
            // The old range is torn down as the PTEs move (rule 2), and the shadow moves the
            // mapping when the call completes (one remap at a time per mapping).
            let pi = sh.proc_index(cpu, proc)?;
            let m = sh.procs[pi].maps.get(map as usize)?;
            (f.proc, f.map) = (Some(pi), map as usize);
            f.claims.remaps = Some((pi, map as usize));
            f.claims.teardown = Some(Teardown::Map(pi, map as usize));
            let va = m.va?;
            // Workload rule 4: a private file mapping moves only to its own colour (the
            // kernel takes any address, but the page-cache pages it still maps are then
            // inequivalent aliases of the other mappings of the file, coherent with them only
            // at flush points). The target keeps its 4 MiB slot.
            let (maymove, fixed) = match m.kind {
                MapKind::File { shared: false, .. } => {
                    (maymove, fixed.map(|a| a - a % SHM_COLOUR + va.colour(SHM_COLOUR)))
                }
                // A shared anonymous mapping only grows in place, unless the rule is lifted:
                // a move places it by its shmem object's colour, not the colour 0 its mmap
                // (and a fork's copy) has.
                MapKind::SharedAnon if !rules.move_shared_anon => (false, None),
                _ => (maymove, fixed),
            };
            let args = Shadow::mremap_args(m.pages, pages, maymove, fixed);
            f.emu = Op::Mremap { mm: sh.procs[pi].mm, va, args };
        }
        WOp::RingPost { ring, word, value } => {
            // The kernel's store is a writer at its kernel address's colour (rule 1).
            let &(id, pl, colour) = sh.rings.get(ring as usize)?;
            f.word = word;
            f.claims.gate = Some((pl, Class::User(colour % colours)));
            f.emu = Op::FillCqe { ring: id, page: 0, word: word as usize, value };
        }
        WOp::RingFetch { ring, word } => {
            let &(id, _, _) = sh.rings.get(ring as usize)?;
            f.word = word;
            f.emu = Op::GetSqe { ring: id, page: 0, word: word as usize };
        }
        WOp::GupFast { proc, map, page, word } => {
            // Lockless by design: no teardown rule holds it back (its read goes through
            // the page it pinned, not through the mapping).
            let (pi, mi, pg, va) = user(proc, map, page)?;
            (f.proc, f.map, f.page, f.word) = (Some(pi), mi, pg, word);
            sh.page_loc(pi, mi, pg)?;
            f.emu = Op::GupFast { mm: sh.procs[pi].mm, va: va.with_word(word as usize) };
        }
        WOp::Clean { file } => f.emu = Op::CleanDirty { file: sh.files[file as usize] },
        WOp::Mprotect { proc, map, none } => {
            let pi = sh.proc_index(cpu, proc)?;
            let m = sh.procs[pi].maps.get(map as usize)?;
            (f.proc, f.map) = (Some(pi), map as usize);
            f.emu = Op::Mprotect { mm: sh.procs[pi].mm, va: m.va?, pages: m.pages, none };
        }
        WOp::Fsync { file } => f.emu = Op::Fsync { file: sh.files[file as usize] },
        WOp::Truncate { file, pages } => {
            f.claims.teardown = Some(Teardown::File(file));
            f.emu = Op::Truncate { file: sh.files[file as usize], pages };
        }
        WOp::Reclaim { target } => {
            let t = match target {
                Target::User { proc, map, page } => {
                    let (pi, _, _, va) = user(proc, map, page)?;
                    ReclaimTarget::User { mm: sh.procs[pi].mm, va }
                }
                Target::File { file, pgoff } => {
                    ReclaimTarget::FilePage { file: sh.files[file as usize], pgoff }
                }
            };
            f.emu = Op::Reclaim { target: t };
        }
    }
    Some(f)
}
