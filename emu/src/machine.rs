//! The emulated multiprocessor: memory, per-CPU VIPT D-caches and TLBs, the instructions that
//! touch them, and the software TLB miss handlers.
//!
//! Every public method here is one *machine action*: the kernel model calls at most one of them
//! per micro-step, so each is atomic with respect to the other CPUs. A TLB miss is handled
//! inside the instruction that takes it (walk, insert, set `_PAGE_ACCESSED`), as the
//! interruption handlers of `entry.S` run with interrupts off.
//!
//! Coherence: an access snoops the other CPUs only at its own set index for its own physical
//! tag, so equivalent aliases (same set) stay coherent and inequivalent ones do not.

use crate::addr::{CpuId, PAGE_SIZE, Pfn, PhysAddr, SHM_COLOUR, SpaceId, VirtAddr, WORD_BYTES};
use crate::cache::{DCache, LineMeta};
use crate::choice::{ChoiceKind, Chooser};
use crate::config::{Indexing, MachineConfig};
use crate::counters::Counters;
use crate::pgtable::PageTables;
use crate::pte::{PteFlags, PteKind, PteLayout};
use crate::tlb::{Rights, Tlb, TlbEntry};
use crate::trace::{Insn, Trace, TraceEvent, What};

/// Why a load or store did not complete. The kernel model handles it and retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// No usable translation, or the translation forbids the access: the page-fault path.
    PageFault {
        /// The access was a store.
        write: bool,
    },
    /// A store through a writable translation whose D bit is clear.
    DirtyBit,
    /// No translation of a user page, on a machine whose misses are handled by kernel code
    /// ([`MissPolicy::hash_miss`]): the kernel's `hash_page` runs and inserts one.
    TlbMiss {
        /// The access was a store.
        write: bool,
    },
}

/// How the software miss handlers behave: which PTE layout they decode and which special
/// translations they manufacture. Chosen by the kernel lineage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissPolicy {
    /// The PTE layout of the page tables.
    pub layout: PteLayout,
    /// Non-access misses insert a flush-only translation for a non-present PTE with
    /// `_PAGE_FLUSH` set (2.6-era `nadtlb_check_flush`). Only meaningful with
    /// [`PteLayout::Linux2614`].
    pub flush_ptes: bool,
    /// Loads and stores inside the tmpalias window get a translation from the CPU's tmpalias
    /// registers (`dtlb_check_alias`).
    pub tmpalias_data: bool,
    /// Non-access instructions inside the tmpalias window get a flush-only translation from
    /// the CPU's tmpalias registers (`nadtlb_check_alias`, 3.x and later).
    pub tmpalias_nonaccess: bool,
    /// Young and dirty are tracked by software (PowerPC e500 style): the data miss handler
    /// never sets `_PAGE_ACCESSED`, refuses a PTE without it, and refuses a store to a PTE
    /// without `_PAGE_DIRTY`; the page-fault path must set them. (parisc sets young in the miss
    /// handler and dirty in the dirty-bit trap.)
    pub sw_young_dirty: bool,
    /// User-space misses are not handled inside the instruction: they trap
    /// ([`Trap::TlbMiss`]) to kernel code that walks the page table, updates the PTE without
    /// the page-table lock and inserts the translation (PowerPC `hash_page`), one step at a
    /// time, so other CPUs can change the PTE in between.
    pub hash_miss: bool,
}

impl MissPolicy {
    /// Current kernels: no `_PAGE_FLUSH`, tmpalias for data and non-access misses.
    pub const CURRENT: MissPolicy = MissPolicy {
        layout: PteLayout::Current,
        flush_ptes: false,
        tmpalias_data: true,
        tmpalias_nonaccess: true,
        sw_young_dirty: false,
        hash_miss: false,
    };
    /// 2.6.14: `_PAGE_FLUSH` honoured, tmpalias only for loads and stores.
    pub const LINUX_2614: MissPolicy = MissPolicy {
        layout: PteLayout::Linux2614,
        flush_ptes: true,
        tmpalias_data: true,
        tmpalias_nonaccess: false,
        sw_young_dirty: false,
        hash_miss: false,
    };
}

/// The physical pages a CPU's tmpalias window currently points at (registers r26 and r23).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TmpaliasRegs {
    /// Page behind the "to" half of the window.
    pub to: Option<Pfn>,
    /// Page behind the "from" half of the window.
    pub from: Option<Pfn>,
}

/// What a non-access instruction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushOutcome {
    /// It acted on this physical line (whether or not any cache held it).
    Done {
        /// The physical address it acted on.
        pa: PhysAddr,
    },
    /// No translation: the miss handler nullified it and nothing happened.
    Nullified,
}

/// One CPU's private state.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// Its D-cache.
    pub cache: DCache,
    /// Its TLB.
    pub tlb: Tlb,
    /// Its tmpalias registers.
    pub tmpalias: TmpaliasRegs,
}

/// Geometry derived from the configuration, for the hot paths (no divisions).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// log2 of the line size.
    line_shift: u32,
    /// `sets - 1` when the number of sets is a power of two.
    set_mask: Option<usize>,
}

/// The machine.
pub struct Machine {
    cfg: MachineConfig,
    geo: Geometry,
    /// Physical memory.
    pub mem: crate::memory::Memory,
    /// Page-table pages.
    pub pt: PageTables,
    cpus: Vec<Cpu>,
    /// Page-table root of each space (index = space id); `None` for unused ids and the kernel.
    spaces: Vec<Option<Pfn>>,
    /// Miss-handler behaviour.
    pub policy: MissPolicy,
    /// Event counters.
    pub counters: Counters,
    chooser: Box<dyn Chooser>,
    /// Event log, when enabled.
    pub trace: Option<Trace>,
    /// Current micro-step number (advanced by the executor), stamped on trace events.
    pub step: u64,
    /// Where the last load found its line: for violation reports.
    pub last_read: Option<LineRead>,
}

/// Where a load got its value: a CPU's line at a set, already there or just filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRead {
    /// The CPU whose cache supplied it.
    pub cpu: CpuId,
    /// The set (so the alias's colour).
    pub set: u32,
    /// The physical line.
    pub tag: u64,
    /// The line was present (a hit) rather than filled from memory by this load.
    pub hit: bool,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("cfg", &self.cfg.name)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine with all caches and TLBs empty and memory zeroed. `cfg` must be valid.
    pub fn new(cfg: MachineConfig, policy: MissPolicy, chooser: Box<dyn Chooser>) -> Self {
        cfg.validate().expect("invalid machine configuration");
        let cpus = (0..cfg.cpus)
            .map(|_| Cpu {
                cache: DCache::new(cfg.sets, cfg.ways, cfg.words_per_line()),
                tlb: Tlb::new(cfg.tlb_entries),
                tmpalias: TmpaliasRegs::default(),
            })
            .collect();
        Machine {
            mem: crate::memory::Memory::new(cfg.frames),
            pt: PageTables::new(cfg.frames),
            cpus,
            spaces: Vec::new(),
            policy,
            counters: Counters::default(),
            chooser,
            trace: None,
            step: 0,
            last_read: None,
            geo: Geometry {
                line_shift: cfg.line_bytes.trailing_zeros(),
                set_mask: cfg.sets.is_power_of_two().then(|| cfg.sets - 1),
            },
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    /// Number of CPUs.
    pub fn ncpus(&self) -> usize {
        self.cpus.len()
    }

    /// A CPU's state (for inspection).
    pub fn cpu(&self, cpu: CpuId) -> &Cpu {
        &self.cpus[cpu.index()]
    }

    /// The chooser every nondeterministic choice is drawn from.
    pub fn chooser(&mut self) -> &mut dyn Chooser {
        &mut *self.chooser
    }

    /// Replaces the chooser, returning the old one.
    pub fn replace_chooser(&mut self, c: Box<dyn Chooser>) -> Box<dyn Chooser> {
        std::mem::replace(&mut self.chooser, c)
    }

    /// Draws a choice.
    pub fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        if n <= 1 { 0 } else { self.chooser.choose(kind, n) }
    }

    /// Starts recording trace events.
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Trace::default);
    }

    fn ev(&mut self, cpu: CpuId, what: What) {
        if let Some(t) = &mut self.trace {
            t.events.push(TraceEvent { step: self.step, cpu, what });
        }
    }

    /// Records a kernel-level note in the trace (no effect on the machine).
    pub fn note(&mut self, cpu: CpuId, note: &'static str) {
        self.ev(cpu, What::Note(note));
    }

    // ----- spaces -----------------------------------------------------------------------

    /// Makes `pgd` the page-table root the miss handlers use for `space`.
    pub fn attach_space(&mut self, space: SpaceId, pgd: Pfn) {
        let i = space.0 as usize;
        if self.spaces.len() <= i {
            self.spaces.resize(i + 1, None);
        }
        self.spaces[i] = Some(pgd);
    }

    /// Forgets `space` (its mm was torn down).
    pub fn detach_space(&mut self, space: SpaceId) {
        if let Some(s) = self.spaces.get_mut(space.0 as usize) {
            *s = None;
        }
    }

    /// The page-table root of `space`.
    pub fn space_root(&self, space: SpaceId) -> Option<Pfn> {
        self.spaces.get(space.0 as usize).copied().flatten()
    }

    // ----- geometry ---------------------------------------------------------------------

    /// The set an access to `va` (translating to `pa`) uses.
    pub fn set_index(&self, va: VirtAddr, pa: PhysAddr) -> usize {
        let slot = match self.cfg.indexing {
            Indexing::Virtual { alias_boundary } => (va.0 & (alias_boundary - 1)) >> self.geo.line_shift,
            Indexing::Physical => pa.0 >> self.geo.line_shift,
        } as usize;
        match self.geo.set_mask {
            Some(mask) => slot & mask,
            None => slot % self.cfg.sets,
        }
    }

    /// The tag (physical line number) of `pa`.
    pub fn tag(&self, pa: PhysAddr) -> u64 {
        pa.0 >> self.geo.line_shift
    }

    /// Are `a` and `b` equivalent aliases (same set for the same physical line) on this
    /// machine? Always true for PIPT.
    pub fn equivalent(&self, a: VirtAddr, b: VirtAddr) -> bool {
        self.set_index(a, PhysAddr(0)) == self.set_index(b, PhysAddr(0))
            || self.cfg.indexing == Indexing::Physical
    }

    fn word_in_line(&self, pa: PhysAddr) -> usize {
        ((pa.0 & (self.cfg.line_bytes - 1)) / WORD_BYTES) as usize
    }

    // ----- translation ------------------------------------------------------------------

    fn tlb_insert(&mut self, cpu: CpuId, e: TlbEntry) {
        let victim = if self.cpus[cpu.index()].tlb.is_full() {
            self.choose(ChoiceKind::TlbVictim, self.cfg.tlb_entries as u32) as usize
        } else {
            0
        };
        self.cpus[cpu.index()].tlb.insert(e, victim);
    }

    /// The data-TLB miss handler: a translation for a load or store, or a page fault.
    fn access_miss(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, write: bool) -> Option<TlbEntry> {
        self.counters.tlb_misses += 1;
        let vpn = va.vpn();
        if space == SpaceId::KERNEL {
            if va.in_tmpalias_window() {
                if !self.policy.tmpalias_data {
                    return None;
                }
                let regs = self.cpus[cpu.index()].tmpalias;
                let pfn = if va.0 & SHM_COLOUR == 0 { regs.to } else { regs.from }?;
                return Some(TlbEntry {
                    space,
                    vpn,
                    pfn,
                    rights: Rights::READ | Rights::WRITE,
                    dirty: true,
                    flush_only: false,
                });
            }
            let pa = va.linear_map_phys()?;
            if !self.mem.pfn_valid(pa.pfn()) {
                return None;
            }
            return Some(TlbEntry {
                space,
                vpn,
                pfn: pa.pfn(),
                rights: Rights::READ | Rights::WRITE | Rights::EXEC,
                dirty: true,
                flush_only: false,
            });
        }
        let pgd = self.space_root(space)?;
        let slot = self.pt.slot(pgd, va)?;
        let pte = self.pt.pte(slot);
        match self.policy.layout.decode(pte) {
            PteKind::Present { pfn, flags } if self.mem.pfn_valid(pfn) => {
                if write && !flags.contains(PteFlags::WRITE) {
                    return None;
                }
                if self.policy.sw_young_dirty {
                    if !flags.contains(PteFlags::ACCESSED) || (write && !flags.contains(PteFlags::DIRTY)) {
                        return None;
                    }
                } else if !flags.contains(PteFlags::ACCESSED) {
                    self.pt.set_pte(slot, pte.with_flags(PteFlags::ACCESSED));
                }
                let mut rights = rights_of(flags);
                if self.policy.sw_young_dirty && !flags.contains(PteFlags::DIRTY) {
                    // A clean page is mapped read-only: its first store faults.
                    rights.remove(Rights::WRITE);
                }
                Some(TlbEntry {
                    space,
                    vpn,
                    pfn,
                    rights,
                    dirty: flags.contains(PteFlags::DIRTY),
                    flush_only: false,
                })
            }
            _ => None,
        }
    }

    /// Translates a load or store, taking a miss if needed, and checks rights.
    fn translate_access(
        &mut self,
        cpu: CpuId,
        space: SpaceId,
        va: VirtAddr,
        write: bool,
    ) -> Result<PhysAddr, Trap> {
        let vpn = va.vpn();
        let tlb = &mut self.cpus[cpu.index()].tlb;
        let entry = match tlb.lookup(space, vpn) {
            Some(i) if !tlb.entry(i).flush_only => *tlb.entry(i),
            hit => {
                // A flush-only translation grants no data access: drop it and walk.
                if hit.is_some() {
                    tlb.purge(space, vpn);
                }
                if self.policy.hash_miss && space != SpaceId::KERNEL {
                    self.counters.tlb_misses += 1;
                    return Err(Trap::TlbMiss { write });
                }
                let Some(e) = self.access_miss(cpu, space, va, write) else {
                    self.counters.page_faults += 1;
                    return Err(Trap::PageFault { write });
                };
                self.tlb_insert(cpu, e);
                e
            }
        };
        let need = if write { Rights::WRITE } else { Rights::READ };
        let user = space != SpaceId::KERNEL;
        if !entry.rights.contains(need) || (user && !entry.rights.contains(Rights::USER)) {
            self.counters.page_faults += 1;
            return Err(Trap::PageFault { write });
        }
        if write && !entry.dirty {
            self.counters.dbit_traps += 1;
            return Err(Trap::DirtyBit);
        }
        Ok(PhysAddr(entry.pfn.phys().0 + va.page_offset()))
    }

    /// Translation for a non-access instruction (`fdc`, `pdc`, `lpa`): TLB, then the
    /// non-access miss handler. `None` means the handler nullifies the instruction.
    pub fn translate_nonaccess(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Option<PhysAddr> {
        let vpn = va.vpn();
        let off = va.page_offset();
        if let Some(i) = self.cpus[cpu.index()].tlb.lookup(space, vpn) {
            let pfn = self.cpus[cpu.index()].tlb.entry(i).pfn;
            return Some(PhysAddr(pfn.phys().0 + off));
        }
        self.counters.nadtlb_misses += 1;
        let e = if space == SpaceId::KERNEL {
            if va.in_tmpalias_window() {
                if !self.policy.tmpalias_nonaccess {
                    return None;
                }
                let regs = self.cpus[cpu.index()].tmpalias;
                let pfn = if va.0 & SHM_COLOUR == 0 { regs.to } else { regs.from }?;
                TlbEntry { space, vpn, pfn, rights: Rights::empty(), dirty: false, flush_only: true }
            } else {
                let pa = va.linear_map_phys()?;
                if !self.mem.pfn_valid(pa.pfn()) {
                    return None;
                }
                TlbEntry {
                    space,
                    vpn,
                    pfn: pa.pfn(),
                    rights: Rights::READ | Rights::WRITE | Rights::EXEC,
                    dirty: true,
                    flush_only: false,
                }
            }
        } else {
            let pgd = self.space_root(space)?;
            let slot = self.pt.slot(pgd, va)?;
            let pte = self.pt.pte(slot);
            match self.policy.layout.decode(pte) {
                PteKind::Present { pfn, flags } if self.mem.pfn_valid(pfn) => {
                    if !flags.contains(PteFlags::ACCESSED) {
                        self.pt.set_pte(slot, pte.with_flags(PteFlags::ACCESSED));
                    }
                    TlbEntry {
                        space,
                        vpn,
                        pfn,
                        rights: rights_of(flags),
                        dirty: flags.contains(PteFlags::DIRTY),
                        flush_only: false,
                    }
                }
                PteKind::FlushOnly { pfn, .. } if self.policy.flush_ptes && self.mem.pfn_valid(pfn) => {
                    TlbEntry { space, vpn, pfn, rights: Rights::empty(), dirty: false, flush_only: true }
                }
                _ => return None,
            }
        };
        self.tlb_insert(cpu, e);
        Some(PhysAddr(e.pfn.phys().0 + off))
    }

    // ----- cache protocol ---------------------------------------------------------------

    fn write_back(&mut self, cpu: CpuId, set: usize, way: usize) {
        let wpl = self.cfg.words_per_line();
        let line = self.cfg.line_bytes;
        let c = &mut self.cpus[cpu.index()].cache;
        let m = c.meta(set, way);
        debug_assert!(m.valid && m.dirty);
        let pa = PhysAddr(m.tag * line);
        self.mem.slice_mut(pa, wpl).copy_from_slice(c.data(set, way));
        c.meta_mut(set, way).dirty = false;
        self.counters.write_backs += 1;
        self.ev(cpu, What::WriteBack { set: set as u32, tag: m.tag });
    }

    /// Snoop: other CPUs' copies of `(set, tag)` are written back if dirty; and invalidated
    /// too when `invalidate`.
    fn snoop(&mut self, cpu: CpuId, set: usize, tag: u64, invalidate: bool) {
        for other in 0..self.cpus.len() {
            if other == cpu.index() {
                continue;
            }
            let oc = CpuId(other as u8);
            if let Some(way) = self.cpus[other].cache.lookup(set, tag) {
                if self.cpus[other].cache.meta(set, way).dirty {
                    self.write_back(oc, set, way);
                }
                if invalidate {
                    self.cpus[other].cache.meta_mut(set, way).valid = false;
                    self.ev(oc, What::Invalidate { set: set as u32, tag, by: Insn::Snoop });
                }
            }
        }
    }

    /// Brings `(set, tag)` into `cpu`'s cache, evicting a seeded victim if the set is full.
    fn fill(&mut self, cpu: CpuId, set: usize, tag: u64, speculative: bool) -> usize {
        self.snoop(cpu, set, tag, false);
        let ways = self.cfg.ways;
        let way = match self.cpus[cpu.index()].cache.free_way(set) {
            Some(w) => w,
            None => {
                let w = self.choose(ChoiceKind::CacheVictim, ways as u32) as usize;
                let m = self.cpus[cpu.index()].cache.meta(set, w);
                if m.dirty {
                    self.write_back(cpu, set, w);
                }
                self.ev(cpu, What::Evict { set: set as u32, tag: m.tag });
                w
            }
        };
        let wpl = self.cfg.words_per_line();
        let pa = PhysAddr(tag * self.cfg.line_bytes);
        let c = &mut self.cpus[cpu.index()].cache;
        c.data_mut(set, way).copy_from_slice(self.mem.slice(pa, wpl));
        *c.meta_mut(set, way) = LineMeta { valid: true, dirty: false, tag };
        if speculative {
            self.counters.speculative_fills += 1;
        } else {
            self.counters.fills += 1;
        }
        self.ev(cpu, What::Fill { set: set as u32, tag, speculative });
        way
    }

    fn line_for_read(&mut self, cpu: CpuId, set: usize, tag: u64) -> usize {
        let (way, hit) = match self.cpus[cpu.index()].cache.lookup(set, tag) {
            Some(w) => {
                self.counters.hits += 1;
                (w, true)
            }
            None => (self.fill(cpu, set, tag, false), false),
        };
        self.last_read = Some(LineRead { cpu, set: set as u32, tag, hit });
        way
    }

    fn line_for_write(&mut self, cpu: CpuId, set: usize, tag: u64) -> usize {
        self.snoop(cpu, set, tag, true);
        let w = self.line_for_read(cpu, set, tag);
        self.cpus[cpu.index()].cache.meta_mut(set, w).dirty = true;
        w
    }

    // ----- loads and stores -------------------------------------------------------------

    /// Loads the word at `va` in `space`.
    pub fn load(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Result<u64, Trap> {
        self.counters.loads += 1;
        let pa = self.translate_access(cpu, space, va, false)?;
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        let w = self.line_for_read(cpu, set, tag);
        let i = self.word_in_line(pa);
        Ok(self.cpus[cpu.index()].cache.data(set, w)[i])
    }

    /// Stores `value` at `va` in `space`.
    pub fn store(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, value: u64) -> Result<(), Trap> {
        self.counters.stores += 1;
        let pa = self.translate_access(cpu, space, va, true)?;
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        let w = self.line_for_write(cpu, set, tag);
        let i = self.word_in_line(pa);
        self.cpus[cpu.index()].cache.data_mut(set, w)[i] = value;
        self.ev(cpu, What::Store { set: set as u32, tag, va, value });
        Ok(())
    }

    /// Loads the whole line containing `va` into `buf` (`words_per_line` words).
    pub fn load_line(
        &mut self,
        cpu: CpuId,
        space: SpaceId,
        va: VirtAddr,
        buf: &mut [u64],
    ) -> Result<(), Trap> {
        self.counters.loads += 1;
        let va = va.align_down(self.cfg.line_bytes);
        let pa = self.translate_access(cpu, space, va, false)?;
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        let w = self.line_for_read(cpu, set, tag);
        buf.copy_from_slice(self.cpus[cpu.index()].cache.data(set, w));
        Ok(())
    }

    /// Stores `buf` over the whole line containing `va`.
    pub fn store_line(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, buf: &[u64]) -> Result<(), Trap> {
        self.counters.stores += 1;
        let va = va.align_down(self.cfg.line_bytes);
        let pa = self.translate_access(cpu, space, va, true)?;
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        let w = self.line_for_write(cpu, set, tag);
        self.cpus[cpu.index()].cache.data_mut(set, w).copy_from_slice(buf);
        self.ev(cpu, What::StoreLine { set: set as u32, tag, va });
        Ok(())
    }

    // ----- cache maintenance ------------------------------------------------------------

    fn flush_common(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, insn: Insn) -> FlushOutcome {
        let Some(pa) = self.translate_nonaccess(cpu, space, va) else {
            self.counters.nullified += 1;
            self.ev(cpu, What::Nullified { insn, space, va });
            return FlushOutcome::Nullified;
        };
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        for c in 0..self.cpus.len() {
            if let Some(way) = self.cpus[c].cache.lookup(set, tag) {
                if insn == Insn::Fdc && self.cpus[c].cache.meta(set, way).dirty {
                    self.write_back(CpuId(c as u8), set, way);
                }
                *self.cpus[c].cache.meta_mut(set, way) = LineMeta::default();
                self.ev(CpuId(c as u8), What::Invalidate { set: set as u32, tag, by: insn });
            }
        }
        self.ev(cpu, What::Flush { insn, space, va, tag });
        FlushOutcome::Done { pa }
    }

    /// `fdc va`: writes back (if dirty) and invalidates the line of `va`'s translation at
    /// `va`'s index, in every CPU's cache. Nullified without a translation.
    pub fn fdc(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.counters.fdc += 1;
        self.flush_common(cpu, space, va, Insn::Fdc)
    }

    /// `pdc va`: like [`Machine::fdc`] but discards dirty data.
    pub fn pdc(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.counters.pdc += 1;
        self.flush_common(cpu, space, va, Insn::Pdc)
    }

    /// `fdc` (or `pdc`) in real mode at physical address `pa`: the cache is indexed with the
    /// physical address, which is the kernel linear-map colour (`PAGE_OFFSET` is a multiple of
    /// every alias boundary), and no translation, TLB entry or miss is involved. The DMA API's
    /// cache maintenance works this way.
    pub fn flush_phys(&mut self, cpu: CpuId, pa: PhysAddr, purge: bool) {
        let insn = if purge { Insn::Pdc } else { Insn::Fdc };
        if purge {
            self.counters.pdc += 1;
        } else {
            self.counters.fdc += 1;
        }
        let va = pa.kernel_va();
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        for c in 0..self.cpus.len() {
            if let Some(way) = self.cpus[c].cache.lookup(set, tag) {
                if !purge && self.cpus[c].cache.meta(set, way).dirty {
                    self.write_back(CpuId(c as u8), set, way);
                }
                *self.cpus[c].cache.meta_mut(set, way) = LineMeta::default();
                self.ev(CpuId(c as u8), What::Invalidate { set: set as u32, tag, by: insn });
            }
        }
        self.ev(cpu, What::Flush { insn, space: SpaceId::KERNEL, va, tag });
    }

    /// `fdce` over one set of `target`'s cache: every way written back if dirty and
    /// invalidated. Local to `target`; executed by `cpu` (itself, or on its behalf by IPI).
    pub fn fdce(&mut self, cpu: CpuId, target: CpuId, set: usize) {
        self.counters.fdce += 1;
        for way in 0..self.cfg.ways {
            let m = self.cpus[target.index()].cache.meta(set, way);
            if m.valid {
                if m.dirty {
                    self.write_back(target, set, way);
                }
                *self.cpus[target.index()].cache.meta_mut(set, way) = LineMeta::default();
                self.ev(target, What::Invalidate { set: set as u32, tag: m.tag, by: Insn::Fdce });
            }
        }
        let _ = cpu;
    }

    /// Counts an IPI from `cpu` to `target`.
    pub fn ipi(&mut self, cpu: CpuId, target: CpuId) {
        self.counters.ipis += 1;
        let _ = (cpu, target);
    }

    // ----- TLB maintenance --------------------------------------------------------------

    /// `pdtlb,l`: purges `(space, va)` from `cpu`'s TLB only.
    pub fn purge_tlb_local(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.counters.purges_local += 1;
        self.cpus[cpu.index()].tlb.purge(space, va.vpn());
        self.ev(cpu, What::Purge { space, va, broadcast: false });
    }

    /// `pdtlb` (broadcast): purges `(space, va)` from every CPU's TLB.
    pub fn purge_tlb(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.counters.purges_broadcast += 1;
        for c in &mut self.cpus {
            c.tlb.purge(space, va.vpn());
        }
        self.ev(cpu, What::Purge { space, va, broadcast: true });
    }

    /// Purges every entry of `space` on every CPU (`flush_tlb_mm`).
    pub fn purge_tlb_space(&mut self, cpu: CpuId, space: SpaceId) {
        for c in &mut self.cpus {
            c.tlb.purge_space(space);
        }
        self.counters.tlb_flush_all += self.cpus.len() as u64;
        self.ev(cpu, What::PurgeSpace { space });
    }

    /// Empties `target`'s whole TLB.
    pub fn flush_tlb_cpu(&mut self, cpu: CpuId, target: CpuId) {
        self.counters.tlb_flush_all += 1;
        self.cpus[target.index()].tlb.clear();
        self.ev(cpu, What::PurgeAll { target });
    }

    /// Inserts a translation of `va` in `space` to `pfn` with the rights and D bit of
    /// `flags` into `cpu`'s TLB (the hash-table insert of a software `hash_page`).
    pub fn insert_translation(
        &mut self,
        cpu: CpuId,
        space: SpaceId,
        va: VirtAddr,
        pfn: Pfn,
        flags: PteFlags,
    ) {
        let e = TlbEntry {
            space,
            vpn: va.vpn(),
            pfn,
            rights: rights_of(flags),
            dirty: flags.contains(PteFlags::DIRTY),
            flush_only: false,
        };
        self.tlb_insert(cpu, e);
    }

    /// A CPU holding a TLB entry of a user space (not flush-only) that translates to `pfn`.
    pub fn tlb_holder(&self, pfn: Pfn) -> Option<CpuId> {
        self.cpus
            .iter()
            .position(|c| {
                c.tlb.entries().iter().any(|e| e.pfn == pfn && e.space != SpaceId::KERNEL && !e.flush_only)
            })
            .map(|i| CpuId(i as u8))
    }

    /// A CPU holding a TLB entry (not flush-only) for `va` of `space` that translates to `pfn`.
    pub fn tlb_translates(&self, space: SpaceId, va: VirtAddr, pfn: Pfn) -> Option<CpuId> {
        let vpn = va.vpn();
        self.cpus
            .iter()
            .position(|c| {
                c.tlb
                    .entries()
                    .iter()
                    .any(|e| e.space == space && e.vpn == vpn && e.pfn == pfn && !e.flush_only)
            })
            .map(|i| CpuId(i as u8))
    }

    /// Sets `cpu`'s tmpalias registers.
    pub fn set_tmpalias(&mut self, cpu: CpuId, regs: TmpaliasRegs) {
        self.cpus[cpu.index()].tmpalias = regs;
    }

    // ----- speculation ------------------------------------------------------------------

    /// A speculative move-in on `cpu`: a seeded line of a seeded page whose TLB entry allows
    /// move-in is filled (clean) unless already present. Returns whether a line was filled.
    pub fn speculate(&mut self, cpu: CpuId) -> bool {
        let lpp = self.cfg.lines_per_page();
        let n = self.cpus[cpu.index()].tlb.entries().iter().filter(|e| e.allows_move_in()).count();
        if n == 0 {
            return false;
        }
        let k = self.choose(ChoiceKind::SpeculateWhere, (n * lpp) as u32) as usize;
        let e = *self.cpus[cpu.index()]
            .tlb
            .entries()
            .iter()
            .filter(|e| e.allows_move_in())
            .nth(k / lpp)
            .expect("index within count");
        let off = (k % lpp) as u64 * self.cfg.line_bytes;
        let va = e.vpn.addr().add_bytes(off);
        let pa = PhysAddr(e.pfn.phys().0 + off);
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        if self.cpus[cpu.index()].cache.lookup(set, tag).is_some() {
            return false;
        }
        self.fill(cpu, set, tag, true);
        true
    }

    // ----- DMA --------------------------------------------------------------------------

    /// DMA from memory: copies frame `pfn` into `buf` (caches are not consulted).
    pub fn dma_read_page(&mut self, cpu: CpuId, pfn: Pfn, buf: &mut [u64]) {
        buf.copy_from_slice(self.mem.frame(pfn));
        self.counters.dma_words += buf.len() as u64;
        self.ev(cpu, What::Dma { pfn, to_memory: false });
    }

    /// DMA into memory: overwrites frame `pfn` with `buf` (caches are not consulted).
    pub fn dma_write_page(&mut self, cpu: CpuId, pfn: Pfn, buf: &[u64]) {
        self.mem.frame_mut(pfn).copy_from_slice(buf);
        self.counters.dma_words += buf.len() as u64;
        self.ev(cpu, What::Dma { pfn, to_memory: true });
    }

    // ----- inspection -------------------------------------------------------------------

    /// The line `cpu` holds for physical address `pa` when accessed through `va`.
    pub fn cached_line(&self, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Option<(LineMeta, &[u64])> {
        let (set, tag) = (self.set_index(va, pa), self.tag(pa));
        let c = &self.cpus[cpu.index()].cache;
        c.lookup(set, tag).map(|w| (c.meta(set, w), c.data(set, w)))
    }

    /// The word at `pa` in any CPU's cache when accessed through `va`, dirty copies first.
    pub fn cached_word(&self, va: VirtAddr, pa: PhysAddr) -> Option<(CpuId, bool, u64)> {
        let i = self.word_in_line(pa);
        let mut found = None;
        for c in 0..self.cpus.len() {
            if let Some((m, d)) = self.cached_line(CpuId(c as u8), va, pa) {
                if m.dirty {
                    return Some((CpuId(c as u8), true, d[i]));
                }
                found.get_or_insert((CpuId(c as u8), false, d[i]));
            }
        }
        found
    }

    /// What a load through `va` of physical address `pa` would return right now, without
    /// performing one: the coherent copy at `va`'s set if any CPU holds one, else memory.
    pub fn view_word(&self, va: VirtAddr, pa: PhysAddr) -> u64 {
        self.cached_word(va, pa).map_or_else(|| self.mem.read(pa), |(_, _, v)| v)
    }

    /// Number of dirty lines in all caches whose tag lies in frame `pfn`.
    pub fn dirty_lines_of(&self, pfn: Pfn) -> usize {
        let line = self.cfg.line_bytes;
        let lo = pfn.phys().0 / line;
        let hi = lo + PAGE_SIZE / line;
        let mut n = 0;
        for c in &self.cpus {
            for set in 0..c.cache.sets() {
                for way in 0..c.cache.ways() {
                    let m = c.cache.meta(set, way);
                    if m.dirty && (lo..hi).contains(&m.tag) {
                        n += 1;
                    }
                }
            }
        }
        n
    }
}

/// TLB rights for the flags of a present PTE.
pub fn rights_of(flags: PteFlags) -> Rights {
    let mut r = Rights::empty();
    if flags.contains(PteFlags::READ) {
        r |= Rights::READ;
    }
    if flags.contains(PteFlags::WRITE) {
        r |= Rights::WRITE;
    }
    if flags.contains(PteFlags::EXEC) {
        r |= Rights::EXEC;
    }
    if flags.contains(PteFlags::USER) {
        r |= Rights::USER;
    }
    r
}
