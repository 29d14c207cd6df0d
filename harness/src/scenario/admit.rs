//! Admission under the workload rules: whether an operation may start while others run.
//!
//! The oracle promises no violation on a correct kernel only for workloads that follow the
//! README's *Workload rules*; the runner enforces them by holding an operation back until what
//! it clashes with has completed (an `mremap` claims the teardown of the mapping it moves;
//! the colour of its `MREMAP_FIXED` target is rule 4's, settled when it is resolved). Each operation states what it [`Claims`] when it
//! is resolved; [`Rules::may_start`] compares that with the claims of every running one:
//!
//! 1. two writers of one page through inequivalent aliases never overlap ([`Class`]);
//! 2. no user access to a mapping overlaps its teardown ([`Teardown`]), unless
//!    [`RunConfig::racy_teardown`](super::RunConfig::racy_teardown); a tracer's read
//!    ([`Claims::kernel_read`]) may overlap the truncation of the mapping's file;
//! 3. a poke overlaps no other access to its mapping, and goes to anonymous and private
//!    mappings only, unless [`RunConfig::racy_poke`](super::RunConfig::racy_poke);
//!
//! and, for the runner's own bookkeeping, one `munmap` or re-`mmap` at a time per mapping.

use super::shadow::Shadow;
use crate::oracle::PageLoc;
use crate::workload::MapKind;

/// What a teardown operation removes; no user access to those mappings may overlap it.
///
/// This is the second workload rule. Between `flush_cache_range` and the PTE clear of a zap, a
/// racing thread can re-walk the still present PTE, store (or let the CPU speculate) and leave
/// lines that nothing flushes any more: the store is lost or the freed page is corrupted
/// later. Every lineage but `whole-cache` has that window (current parisc included: the
/// generic `mmu_gather` flushes only the TLB after clearing); `RunConfig::racy_teardown`
/// turns the rule off to study it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Teardown {
    /// `munmap` of one mapping of a process.
    Map(usize, usize),
    /// Exit of a process.
    Proc(usize),
    /// `truncate` of a file.
    File(u8),
}

/// Class of a writer for the "no concurrent writes through inequivalent aliases" rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// The kernel's alias (`write(2)`, a poke).
    Kernel,
    /// A user mapping of this colour.
    User(u64),
}

/// What a running operation holds against the others. Processes and mappings are indices into
/// [`Shadow::procs`] and its `maps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Claims {
    /// A write through an alias of some class to a page (rule 1).
    pub(super) gate: Option<(PageLoc, Class)>,
    /// A user access to mapping `.1` of process `.0`.
    pub(super) access: Option<(usize, usize)>,
    /// With `access`: the access is a kernel read through the page `get_user_pages` pins (a
    /// tracer's `access_process_vm` read), which the refined second rule lets overlap a
    /// `truncate` of the mapping's file ([`Teardown::File`]). It leaves no dirty line: the
    /// read goes through the kernel's alias of a page it holds a reference on, and what it
    /// leaves cached there is clean, as after any read. The `truncate` keeps the VMA, so the
    /// address still names the same mapping: the pin comes either before the zap (the page
    /// read is the one the mapping showed, kept alive by the pin) or after it, when the fault
    /// finds the page beyond the end of the file (the size shrinks before the zap) and the
    /// read fails. A `munmap` or exit removes the VMA, and a new mapping may take the address;
    /// the rule still holds those back.
    pub(super) kernel_read: bool,
    /// The teardown of mappings.
    pub(super) teardown: Option<Teardown>,
    /// A poke (`access_process_vm` write): the target is stopped, as under ptrace, so no
    /// other access to that mapping may overlap it. Set only with `access`.
    pub(super) poke: bool,
    /// A `munmap` or re-`mmap` of mapping `.1` of process `.0`: one at a time per mapping, as
    /// the shadow tracks one address per mapping.
    pub(super) remaps: Option<(usize, usize)>,
}

/// Which of the rules hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    /// Rule 2 lifted: user accesses may overlap the teardown of their mapping.
    pub(super) racy_teardown: bool,
    /// Rule 3 lifted: pokes may overlap other accesses and go to shared file mappings.
    pub(super) racy_poke: bool,
    /// Rule 4's shared anonymous half lifted: `mremap` may move such a mapping.
    pub(super) move_shared_anon: bool,
}

impl Rules {
    /// May an operation poke (write through `access_process_vm`) into a mapping of `kind`?
    pub(super) fn may_poke(&self, kind: MapKind) -> bool {
        self.racy_poke
            || !matches!(
                kind,
                MapKind::File { shared: true, .. } | MapKind::SharedAnon | MapKind::Ring { .. }
            )
    }

    /// May an operation claiming `f` start now, given the claims of what is running?
    pub(super) fn may_start<'a>(
        &self, sh: &Shadow, f: &Claims, running: impl IntoIterator<Item = &'a Claims>,
    ) -> bool {
        running.into_iter().all(|g| {
            let writes_clash =
                matches!((f.gate, g.gate), (Some((p1, c1)), Some((p2, c2))) if p1 == p2 && c1 != c2);
            let teardown_clash = !self.racy_teardown
                && (matches!((f.access, g.teardown), (Some((p, m)), Some(t)) if clashes(sh, t, f, p, m))
                    || matches!((g.access, f.teardown), (Some((p, m)), Some(t)) if clashes(sh, t, g, p, m)));
            let poke_clash =
                !self.racy_poke && (f.poke || g.poke) && f.access.is_some() && f.access == g.access;
            let remap_clash = f.remaps.is_some() && f.remaps == g.remaps;
            !writes_clash && !teardown_clash && !poke_clash && !remap_clash
        })
    }
}

/// Must access `a` (to mapping `map` of process `p`) wait for teardown `t`?
fn clashes(sh: &Shadow, t: Teardown, a: &Claims, p: usize, map: usize) -> bool {
    !(a.kernel_read && matches!(t, Teardown::File(_))) && tears(sh, t, p, map)
}

/// Does teardown `t` remove mapping `map` of process `p`?
fn tears(sh: &Shadow, t: Teardown, p: usize, map: usize) -> bool {
    match t {
        Teardown::Map(tp, tm) => (tp, tm) == (p, map),
        Teardown::Proc(tp) => tp == p,
        Teardown::File(file) => {
            matches!(sh.procs[p].maps.get(map).map(|m| m.kind), Some(MapKind::File { file: f, .. }) if f == file)
        }
    }
}

#[cfg(test)]
mod tests {
    use vipt_emu::addr::VirtAddr;
    use vipt_emu::mm::MmId;

    use super::*;
    use crate::oracle::Oracle;

    /// One process with one private mapping of file 0 and one anonymous mapping.
    fn shadow() -> Shadow {
        let mut sh = Shadow::new(2);
        let mut oracle = Oracle::new();
        sh.add_proc(MmId(0));
        let file = MapKind::File { file: 0, pgoff: 0, shared: false };
        sh.add_map(0, file, 1, Some(VirtAddr::new(0x1000_0000)), &mut oracle);
        sh.add_map(0, MapKind::Anon, 1, Some(VirtAddr::new(0x2000_0000)), &mut oracle);
        sh
    }

    fn access(map: usize, kernel_read: bool) -> Claims {
        Claims { access: Some((0, map)), kernel_read, ..Claims::default() }
    }

    fn teardown(t: Teardown) -> Claims {
        Claims { teardown: Some(t), ..Claims::default() }
    }

    #[test]
    fn a_tracer_read_overlaps_the_truncation_of_its_file_only() {
        let sh = shadow();
        let rules = Rules { racy_teardown: false, racy_poke: false, move_shared_anon: false };
        let truncate = teardown(Teardown::File(0));
        let munmap = teardown(Teardown::Map(0, 0));
        let exit = teardown(Teardown::Proc(0));
        // Either way round: a tracer's read and a truncate of the file it maps.
        assert!(rules.may_start(&sh, &access(0, true), [&truncate]));
        assert!(rules.may_start(&sh, &truncate, [&access(0, true)]));
        // A user access (or a read not marked as a tracer's) waits for the truncate.
        assert!(!rules.may_start(&sh, &access(0, false), [&truncate]));
        assert!(!rules.may_start(&sh, &truncate, [&access(0, false)]));
        // A munmap or exit removes the VMA: even the tracer's read waits for those.
        for t in [&munmap, &exit] {
            assert!(!rules.may_start(&sh, &access(0, true), [t]));
            assert!(!rules.may_start(&sh, t, [&access(0, true)]));
        }
        // Racy teardowns admit everything.
        let racy = Rules { racy_teardown: true, racy_poke: false, move_shared_anon: false };
        assert!(racy.may_start(&sh, &access(0, false), [&truncate, &munmap]));
    }
}
