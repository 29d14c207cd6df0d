//! The shadow model: the processes, mappings and logical pages the workload has created, as
//! the runner knows them from the operations that completed.
//!
//! The oracle judges logical words ([`PageLoc`]), not frames: a page of a mapping is either the
//! file page it maps or a private page of its own. This module keeps, per mapping, which one
//! each page is, answers "which logical page does this address map now", and applies what a
//! completed operation does to that picture: `fork` shares every view with the child, `exit`
//! ends a process, `munmap` and a re-`mmap` move a mapping (a re-`mmap` with fresh private
//! pages), `mremap` moves it with its pages (and grows it by fresh ones), `truncate` sends
//! private mappings back to the file beyond the new size, and an install
//! ([`Shadow::install`]) gives a page a private page of its own. A kernel buffer is one logical
//! page that every mapping of it and the kernel's own accesses share.

use vipt_emu::addr::VirtAddr;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{FileId, MmId, MremapArgs, Op, OpResult, RingId};

use crate::oracle::{Oracle, PageLoc};
use crate::workload::{MAX_MAP_PAGES, MapKind, Proc, WOp};

/// Logical view of one page of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum View {
    /// The file page (shared mappings; private ones before their COW).
    File,
    /// A private page.
    Private(PageLoc),
}

/// A mapping of a process.
#[derive(Clone, Debug)]
pub(super) struct MapState {
    /// What it maps (as the workload specified it).
    pub(super) kind: MapKind,
    /// Its length in pages; kept across re-`mmap`s, grown only by `mremap`.
    pub(super) pages: u64,
    /// Where it is mapped; `None` while it is not (its `mmap` failed, or after its `munmap`).
    pub(super) va: Option<VirtAddr>,
    /// One view per page (`pages` of them). An anonymous mapping's views are always private.
    views: Vec<View>,
}

/// A process as the runner sees it.
#[derive(Clone, Debug)]
pub(super) struct ProcState {
    /// Its mm in the kernel.
    pub(super) mm: MmId,
    /// False once its `exit` completed; operations naming it are skipped from then on.
    pub(super) alive: bool,
    /// Its mappings: the set-up mappings of an initial process in workload order (the `map`
    /// index operations use), or a copy of the parent's at the fork.
    pub(super) maps: Vec<MapState>,
}

/// The shadow of the kernel's processes, mappings and files.
#[derive(Clone, Debug)]
pub(super) struct Shadow {
    /// Every process, initial ones first (their index is the workload's), then children in
    /// the order their forks completed. Never shrinks: an exited process stays, not alive.
    pub(super) procs: Vec<ProcState>,
    /// Per program: indices into `procs` of the children it forked, in order
    /// ([`Proc::Child`] numbers them).
    children: Vec<Vec<usize>>,
    /// The kernel file of each workload file, by workload index.
    pub(super) files: Vec<FileId>,
    /// Each kernel buffer of the workload, by workload index: the kernel's buffer, the logical
    /// page it is, and the cache colour of its kernel address.
    pub(super) rings: Vec<(RingId, PageLoc, u64)>,
}

impl Shadow {
    /// An empty shadow for a workload of `programs` programs.
    pub(super) fn new(programs: usize) -> Self {
        Shadow {
            procs: Vec::new(),
            children: vec![Vec::new(); programs],
            files: Vec::new(),
            rings: Vec::new(),
        }
    }

    /// Adds an initial process.
    pub(super) fn add_proc(&mut self, mm: MmId) {
        self.procs.push(ProcState { mm, alive: true, maps: Vec::new() });
    }

    /// Adds a set-up mapping to process `p`, mapped at `va` if its `mmap` succeeded.
    pub(super) fn add_map(
        &mut self, p: usize, kind: MapKind, pages: u64, va: Option<VirtAddr>, oracle: &mut Oracle,
    ) {
        let views = self.fresh_views(kind, pages, oracle);
        self.procs[p].maps.push(MapState { kind, pages, va, views });
    }

    /// The logical page of kernel buffer `ring` (workload index).
    pub(super) fn ring_page(&self, ring: u8) -> Option<PageLoc> {
        self.rings.get(ring as usize).map(|r| r.1)
    }

    /// The workload index of the kernel's buffer `ring`.
    pub(super) fn ring_index(&self, ring: RingId) -> Option<u8> {
        self.rings.iter().position(|r| r.0 == ring).map(|i| i as u8)
    }

    /// The operation that maps a mapping of `kind` (`mmap`, or a kernel buffer's `mmap`).
    pub(super) fn map_op(&self, mm: MmId, kind: MapKind, pages: u64, fixed: Option<VirtAddr>) -> Option<Op> {
        match kind {
            MapKind::Ring { ring } => Some(Op::RingMmap { mm, ring: self.rings.get(ring as usize)?.0 }),
            _ => Some(Op::Mmap { mm, args: self.mmap_args(kind, pages, fixed) }),
        }
    }

    /// The `mremap` arguments of a mapping of `pages` pages asked to become `to` pages.
    pub(super) fn mremap_args(pages: u64, to: u64, maymove: bool, fixed: Option<u64>) -> MremapArgs {
        MremapArgs {
            old_pages: pages,
            new_pages: to.clamp(pages, MAX_MAP_PAGES.max(pages)),
            maymove: maymove || fixed.is_some(),
            fixed: fixed.map(VirtAddr::new),
        }
    }

    /// The workload index of kernel file `file`.
    pub(super) fn file_index(&self, file: FileId) -> Option<u8> {
        self.files.iter().position(|&x| x == file).map(|i| i as u8)
    }

    /// The `mmap` arguments of a mapping of `kind`.
    pub(super) fn mmap_args(&self, kind: MapKind, pages: u64, fixed: Option<VirtAddr>) -> MmapArgs {
        match kind {
            MapKind::Anon | MapKind::Ring { .. } => {
                MmapArgs { pages, file: None, shared: false, writable: true, fixed: None }
            }
            MapKind::SharedAnon => MmapArgs { pages, file: None, shared: true, writable: true, fixed },
            MapKind::File { file, pgoff, shared } => MmapArgs {
                pages,
                file: Some((self.files[file as usize], pgoff)),
                shared,
                writable: true,
                fixed,
            },
        }
    }

    /// The index in `procs` of the live process that program `cpu` names `p`.
    pub(super) fn proc_index(&self, cpu: usize, p: Proc) -> Option<usize> {
        let i = match p {
            Proc::Init(i) => i as usize,
            Proc::Child(n) => *self.children[cpu].get(n as usize)?,
        };
        (i < self.procs.len() && self.procs[i].alive).then_some(i)
    }

    /// Logical page behind page `page` of mapping `map` of process `p`.
    pub(super) fn page_loc(&self, p: usize, map: usize, page: u64) -> Option<PageLoc> {
        let m = self.procs[p].maps.get(map)?;
        match (m.views[page as usize], m.kind) {
            (View::Private(pl), _) => Some(pl),
            (View::File, MapKind::File { file, pgoff, .. }) => {
                Some(PageLoc::File { file, pgoff: pgoff + page })
            }
            (View::File, MapKind::Anon | MapKind::SharedAnon | MapKind::Ring { .. }) => None,
        }
    }

    /// The process, mapping and page that map `va` of `mm` now.
    pub(super) fn find_page(&self, mm: MmId, va: VirtAddr) -> Option<(usize, usize, u64)> {
        let va = va.page_base();
        self.procs.iter().enumerate().filter(|(_, p)| p.mm == mm).find_map(|(pi, p)| {
            p.maps.iter().enumerate().find_map(|(mi, m)| {
                let base = m.va?;
                (base <= va && va < base.add_pages(m.pages)).then(|| (pi, mi, base.pages_to(va)))
            })
        })
    }

    /// The logical page `va` of `mm` maps now, as far as the runner knows its mappings.
    pub(super) fn logical_page(&self, mm: MmId, va: VirtAddr) -> Option<PageLoc> {
        self.find_page(mm, va).and_then(|(p, map, page)| self.page_loc(p, map, page))
    }

    /// Page `page` of mapping `map` of process `p` now has the private page `pl` (a COW copy
    /// or a zero-filled anonymous page was installed).
    pub(super) fn install(&mut self, p: usize, map: usize, page: u64, pl: PageLoc) {
        self.procs[p].maps[map].views[page as usize] = View::Private(pl);
    }

    /// Applies what `f`, run by program `cpu`, did when it completed with `result`.
    pub(super) fn completed(
        &mut self, cpu: usize, op: WOp, proc: Option<usize>, map: usize, result: OpResult,
        oracle: &mut Oracle,
    ) {
        match (op, result) {
            (WOp::Fork { .. }, OpResult::Forked(child)) => {
                // The child shares the parent's private pages, as the kernel does; either
                // side's next COW or zero-fill fault gives it a page of its own (`Obs::Installed`).
                let parent = proc.expect("fork has a process");
                let maps = self.procs[parent].maps.clone();
                self.procs.push(ProcState { mm: child, alive: true, maps });
                self.children[cpu].push(self.procs.len() - 1);
            }
            (WOp::Exit { .. }, OpResult::Done) => {
                self.procs[proc.expect("exit has a process")].alive = false;
            }
            (WOp::Munmap { .. }, OpResult::Done) => {
                self.procs[proc.expect("munmap has a process")].maps[map].va = None;
            }
            (WOp::Remap { .. }, OpResult::Mapped(va)) => {
                let p = proc.expect("remap has a process");
                let (kind, pages) = (self.procs[p].maps[map].kind, self.procs[p].maps[map].pages);
                let views = self.fresh_views(kind, pages, oracle);
                let m = &mut self.procs[p].maps[map];
                m.va = Some(va);
                m.views = views;
            }
            (WOp::Mremap { pages: to, maymove, fixed, .. }, OpResult::Mapped(va)) => {
                // The pages move with the mapping; a grown tail is fresh.
                let p = proc.expect("mremap has a process");
                let (kind, pages) = (self.procs[p].maps[map].kind, self.procs[p].maps[map].pages);
                let new = Shadow::mremap_args(pages, to, maymove, fixed).new_pages;
                let tail = self.fresh_views(kind, new - pages, oracle);
                let m = &mut self.procs[p].maps[map];
                m.va = Some(va);
                m.pages = new;
                m.views.extend(tail);
                // `MREMAP_FIXED` unmapped whatever else the process had at the target.
                if fixed.is_some() {
                    let end = va.add_pages(new);
                    for (i, o) in self.procs[p].maps.iter_mut().enumerate() {
                        if i != map && o.va.is_some_and(|a| a < end && va < a.add_pages(o.pages)) {
                            o.va = None;
                        }
                    }
                }
            }
            (WOp::Truncate { file, pages }, OpResult::Done) => {
                for p in &mut self.procs {
                    for m in &mut p.maps {
                        if let MapKind::File { file: mf, pgoff, shared: false } = m.kind
                            && mf == file
                        {
                            for (i, v) in m.views.iter_mut().enumerate() {
                                if pgoff + i as u64 >= pages {
                                    *v = View::File;
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

impl Shadow {
    /// The views of a new mapping (or of the pages a mapping grows by): fresh pages of its own
    /// for anonymous memory (private or shared), the file for a file, the buffer's one logical
    /// page for a kernel buffer.
    fn fresh_views(&self, kind: MapKind, pages: u64, oracle: &mut Oracle) -> Vec<View> {
        (0..pages)
            .map(|_| match kind {
                // A shared anonymous object's pages are logical pages of their own, which a
                // fork shares and no fault replaces (a shmem page is never COWed in a shared
                // mapping).
                MapKind::Anon | MapKind::SharedAnon => View::Private(oracle.new_private()),
                MapKind::File { .. } => View::File,
                MapKind::Ring { ring } => match self.ring_page(ring) {
                    Some(pl) => View::Private(pl),
                    None => View::File,
                },
            })
            .collect()
    }
}
