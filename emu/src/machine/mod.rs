//! The emulated multiprocessor: memory, per-CPU VIPT D-caches and TLBs, the instructions that
//! touch them, and the software TLB miss handlers.
//!
//! This module holds the machine's state, loads and stores, the cache protocol (fill, snoop,
//! write-back), speculative move-in and DMA; [`miss`] the TLB miss handlers and the page-table
//! walker, [`flush`] cache and TLB maintenance, [`tmpalias`] the per-CPU tmpalias window, and
//! [`inspect`] read-only views for checks and reports.
//!
//! Every public method here is one *machine action*: the kernel model calls at most one of them
//! per micro-step, so each is atomic with respect to the other CPUs. A TLB miss is handled
//! inside the instruction that takes it (walk, insert, set `_PAGE_ACCESSED`), as the
//! interruption handlers of `entry.S` run with interrupts off.
//!
//! Indexing: two virtual addresses of one physical line share a cache line exactly when they
//! are congruent modulo the alias boundary ([`Machine::line_id`]).
//!
//! Coherence: an access snoops the other CPUs only for its own line (set, physical tag and
//! virtual way), so equivalent aliases stay coherent and inequivalent ones do not.

pub mod flush;
pub mod inspect;
pub mod miss;
pub mod tmpalias;

use crate::addr::{CpuId, Pfn, PhysAddr, SpaceId, VirtAddr, WORD_BYTES};
use crate::cache::{DCache, LineMeta};
use crate::choice::{ChoiceKind, Chooser};
use crate::config::{Indexing, MachineConfig};
use crate::counters::Counters;
use crate::pgtable::PageTables;
use crate::pte::{PteFlags, PteLayout};
use crate::tlb::{Rights, Tlb};
use crate::trace::{Insn, Trace, TraceEvent, What};

pub use tmpalias::TmpaliasRegs;

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

/// Which cache line a physical line occupies when accessed through one virtual address: the
/// set, the physical tag and the virtual way. Every lookup, snoop and flush by address matches
/// all three; `fdce` empties a set whatever its lines' tags and ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineId {
    /// The set.
    pub set: usize,
    /// The physical line number (`pa / line_bytes`): the write-back address.
    pub tag: u64,
    /// Which of the alias boundary's virtual ways the address falls in: the virtual line
    /// index below the boundary divided by the number of sets. Nonzero only on a VIPT cache
    /// whose boundary spans more lines than one way has sets; always 0 on a PIPT cache.
    pub alias: u32,
}

/// How the set (and virtual way) of an access is formed, derived from the configuration.
#[derive(Clone, Copy, Debug)]
enum IndexRule {
    /// PIPT: the set from the physical line number.
    Physical,
    /// VIPT whose alias boundary holds at least as many lines as a way has sets: with `x` the
    /// virtual line index below the boundary, set = `x mod sets` and the virtual way
    /// `x div sets` is part of the line's identity, so addresses congruent modulo the boundary
    /// share a line and no others do. Real caches of this shape (PA8700: a 384 KiB way under a
    /// 4 MiB boundary) may let some inequivalent aliases collide; the architecture does not
    /// promise it, so the model never does (docs/FIDELITY.md, `shmparam.h`: aliases are
    /// supported only when their addresses are identical modulo `SHM_COLOUR`; §9.1).
    VirtualWays {
        /// `alias_boundary - 1`.
        boundary_mask: u64,
    },
    /// VIPT whose alias boundary holds fewer lines than a way has sets (rp3440 as PDC reports
    /// it: an 8 MiB way under a 4 MiB boundary, docs/FIDELITY.md). A simplification: the
    /// set bits above the boundary come from the physical address, the same for every alias
    /// of the line, so set = `(x + (pa div boundary) · lines_below) mod sets` and the virtual
    /// way is 0. Aliases congruent modulo the boundary share a line, others land in distinct
    /// sets, and every set of the way is used.
    PhysicalHigh {
        /// `alias_boundary - 1`.
        boundary_mask: u64,
        /// log2 of the alias boundary.
        boundary_shift: u32,
        /// Lines below the boundary (`alias_boundary / line_bytes`).
        lines_below: u64,
    },
}

/// Geometry derived from the configuration, for the hot paths: no division where the number
/// of sets is a power of two.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// log2 of the line size.
    line_shift: u32,
    /// Number of sets.
    sets: u64,
    /// `sets - 1` and log2 of `sets` when the number of sets is a power of two.
    sets_pow2: Option<(u64, u32)>,
    /// `ceil(2^64 / sets)`, for [`Geometry::split`] when `sets` is not a power of two.
    sets_magic: u64,
    /// How the index is formed.
    rule: IndexRule,
}

impl Geometry {
    fn new(cfg: &MachineConfig) -> Self {
        let line_shift = cfg.line_bytes.trailing_zeros();
        let sets = cfg.sets as u64;
        let rule = match cfg.indexing {
            Indexing::Physical => IndexRule::Physical,
            Indexing::Virtual { alias_boundary } => {
                let lines_below = alias_boundary >> line_shift;
                if lines_below >= sets {
                    IndexRule::VirtualWays { boundary_mask: alias_boundary - 1 }
                } else {
                    IndexRule::PhysicalHigh {
                        boundary_mask: alias_boundary - 1,
                        boundary_shift: alias_boundary.trailing_zeros(),
                        lines_below,
                    }
                }
            }
        };
        Geometry {
            line_shift,
            sets,
            sets_pow2: sets.is_power_of_two().then(|| (sets - 1, sets.trailing_zeros())),
            sets_magic: (u64::MAX / sets).wrapping_add(1),
            rule,
        }
    }

    /// `(x mod sets, x div sets)`.
    #[inline(always)]
    fn split(&self, x: u64) -> (usize, u32) {
        match self.sets_pow2 {
            Some((mask, shift)) => ((x & mask) as usize, (x >> shift) as u32),
            // Division by the constant number of sets as a multiply-high: with
            // `sets_magic = ceil(2^64 / sets)`, `x · sets_magic / 2^64` is `x div sets` exactly
            // for every `x < 2^32` (the error, below `x / 2^64 < 2^-32`, stays under the
            // `1 / sets` between `x / sets` and the next integer), which every line index
            // below an alias boundary is.
            None if (x | self.sets) >> 32 == 0 => {
                let q = ((x as u128 * self.sets_magic as u128) >> 64) as u64;
                ((x - q * self.sets) as usize, q as u32)
            }
            None => ((x % self.sets) as usize, (x / self.sets) as u32),
        }
    }
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
    /// Per physical line below memory: bit `c` set exactly when CPU `c`'s cache holds a valid
    /// line with that tag, in any set and virtual way ([`DCache::may_hold`]). Snoops and
    /// flushes by address visit only these CPUs. Kept by [`Machine::set_line`].
    holders: Vec<u8>,
}

/// Where a load got its value: a CPU's line, already there or just filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRead {
    /// The CPU whose cache supplied it.
    pub cpu: CpuId,
    /// The set.
    pub set: u32,
    /// The virtual way ([`LineId::alias`]); with the set, it names the alias's colour.
    pub alias: u32,
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

/// The most caches a thread keeps for reuse ([`pooled_cache`]), and the largest it keeps
/// (in data words: the small presets', not the 32 MiB caches of the cost model's machines).
const CACHE_POOL_MAX: usize = 16;
const CACHE_POOL_MAX_WORDS: usize = 1 << 19;

thread_local! {
    /// Caches of machines this thread dropped, kept for the next machine: a campaign builds
    /// one machine per scenario, and a cache is the largest allocation of a machine.
    static CACHE_POOL: std::cell::RefCell<Vec<DCache>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Physical lines of a machine of configuration `cfg`.
fn tags_of(cfg: &MachineConfig) -> usize {
    (cfg.frames as u64 * crate::addr::PAGE_SIZE / cfg.line_bytes) as usize
}

/// An empty cache of `cfg`'s geometry: one from the thread's pool, reset, if it holds one of
/// that geometry, else a new one. The two are indistinguishable to the machine.
fn pooled_cache(cfg: &MachineConfig) -> DCache {
    let (sets, ways, wpl, tags) = (cfg.sets, cfg.ways, cfg.words_per_line(), tags_of(cfg));
    let reused = CACHE_POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().position(|c| c.has_geometry(sets, ways, wpl, tags))?;
        Some(p.swap_remove(i))
    });
    match reused {
        Some(mut c) => {
            c.reset();
            c
        }
        None => DCache::new(sets, ways, wpl, tags),
    }
}

impl Drop for Machine {
    /// The caches go back to the thread's pool for the next machine.
    fn drop(&mut self) {
        let _ = CACHE_POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            for cpu in &mut self.cpus {
                if p.len() >= CACHE_POOL_MAX {
                    break;
                }
                if cpu.cache.words() > CACHE_POOL_MAX_WORDS {
                    continue;
                }
                p.push(std::mem::replace(&mut cpu.cache, DCache::new(0, 0, 0, 0)));
            }
        });
    }
}

impl Machine {
    /// A machine with all caches and TLBs empty and memory zeroed, its miss handlers those of
    /// the current kernel ([`MissPolicy::CURRENT`]; a kernel sets its own). `cfg` must be valid.
    pub fn new(cfg: MachineConfig, chooser: Box<dyn Chooser>) -> Self {
        cfg.validate().expect("invalid machine configuration");
        let cpus = (0..cfg.cpus)
            .map(|_| Cpu {
                cache: pooled_cache(&cfg),
                tlb: Tlb::new(cfg.tlb_entries),
                tmpalias: TmpaliasRegs::default(),
            })
            .collect();
        Machine {
            mem: crate::memory::Memory::new(cfg.frames),
            pt: PageTables::new(cfg.frames),
            cpus,
            spaces: Vec::new(),
            policy: MissPolicy::CURRENT,
            counters: Counters::default(),
            chooser,
            trace: None,
            step: 0,
            last_read: None,
            holders: vec![0; tags_of(&cfg)],
            geo: Geometry::new(&cfg),
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

    /// Is the trace being recorded?
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records the begin or end of an arch routine in the trace (no effect on the machine).
    pub fn routine(&mut self, cpu: CpuId, name: &'static str, begin: bool) {
        self.ev(cpu, What::Routine { name, begin });
    }

    /// Records a PTE change in the trace (no effect on the machine).
    pub fn pte_changed(
        &mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, old: crate::pte::Pte, new: crate::pte::Pte,
    ) {
        self.ev(cpu, What::PteSet { space, va: va.page_base(), old, new });
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

    /// The cache line an access to `va` (translating to `pa`) uses. On a VIPT machine two
    /// addresses of one physical line get the same `LineId` exactly when they are congruent
    /// modulo the alias boundary; on a PIPT machine every alias gets the same one. With `x`
    /// the virtual line index below the boundary: set = `x mod sets` and virtual way
    /// `x div sets` when the boundary holds at least a way's worth of lines; otherwise the set
    /// bits above the boundary come from `pa` (the same for every alias) and the virtual way
    /// is 0.
    #[inline(always)]
    pub fn line_id(&self, va: VirtAddr, pa: PhysAddr) -> LineId {
        let shift = self.geo.line_shift;
        let tag = pa.raw() >> shift;
        let (set, alias) = match self.geo.rule {
            IndexRule::Physical => (self.geo.split(tag).0, 0),
            IndexRule::VirtualWays { boundary_mask } => self.geo.split((va.raw() & boundary_mask) >> shift),
            IndexRule::PhysicalHigh { boundary_mask, boundary_shift, lines_below } => {
                let x = (va.raw() & boundary_mask) >> shift;
                (self.geo.split(x + (pa.raw() >> boundary_shift) * lines_below).0, 0)
            }
        };
        LineId { set, tag, alias }
    }

    /// The set an access to `va` (translating to `pa`) uses ([`Machine::line_id`]'s set).
    pub fn set_index(&self, va: VirtAddr, pa: PhysAddr) -> usize {
        self.line_id(va, pa).set
    }

    /// The tag (physical line number) of `pa`.
    pub fn tag(&self, pa: PhysAddr) -> u64 {
        pa.raw() >> self.geo.line_shift
    }

    /// Are `a` and `b`, two virtual addresses of one physical address, equivalent aliases
    /// (do they share its cache line)? Exactly when they are congruent modulo the alias
    /// boundary; always on a PIPT machine.
    pub fn equivalent(&self, a: VirtAddr, b: VirtAddr) -> bool {
        match self.cfg.indexing {
            Indexing::Virtual { alias_boundary } => a.colour(alias_boundary) == b.colour(alias_boundary),
            Indexing::Physical => true,
        }
    }

    fn word_in_line(&self, pa: PhysAddr) -> usize {
        ((pa.raw() & (self.cfg.line_bytes - 1)) / WORD_BYTES) as usize
    }

    // ----- cache protocol ---------------------------------------------------------------

    /// Replaces the metadata of line `(set, way)` of `cpu`'s cache, keeping
    /// [`Machine::holders`] exact. Every change of a line's validity or tag goes through here.
    fn set_line(&mut self, cpu: usize, set: usize, way: usize, new: LineMeta) {
        let c = &mut self.cpus[cpu].cache;
        let old = c.meta(set, way);
        c.set_meta(set, way, new);
        // The old tag is held still if another line of the cache carries it; the new one is
        // held now (a valid line of it is in the cache).
        if old.valid
            && let Some(h) = self.holders.get_mut(old.tag as usize)
        {
            if c.may_hold(old.tag) {
                *h |= 1 << cpu;
            } else {
                *h &= !(1 << cpu);
            }
        }
        if new.valid
            && let Some(h) = self.holders.get_mut(new.tag as usize)
        {
            *h |= 1 << cpu;
        }
    }

    /// The CPUs whose caches may hold a line with physical tag `tag`, one bit each: exactly
    /// those that do, for a tag below memory; every CPU beyond it.
    #[inline(always)]
    fn holders_of(&self, tag: u64) -> u32 {
        match self.holders.get(tag as usize) {
            Some(&h) => u32::from(h),
            None => (1u32 << self.cpus.len()) - 1,
        }
    }

    /// Writes back the dirty line at `(set, way)` of `cpu`'s cache, to the address its
    /// physical tag names.
    fn write_back(&mut self, cpu: CpuId, set: usize, way: usize) {
        let wpl = self.cfg.words_per_line();
        let line = self.cfg.line_bytes;
        let c = &mut self.cpus[cpu.index()].cache;
        let m = c.meta(set, way);
        debug_assert!(m.valid && m.dirty);
        let pa = PhysAddr::new(m.tag * line);
        copy_line(self.mem.slice_mut(pa, wpl), c.data(set, way));
        c.set_dirty(set, way, false);
        self.counters.write_backs += 1;
        self.ev(cpu, What::WriteBack { set: set as u32, alias: m.alias, tag: m.tag });
    }

    /// Snoop: other CPUs' copies of line `id` are written back if dirty; and invalidated too
    /// when `invalidate`.
    #[inline(always)]
    fn snoop(&mut self, cpu: CpuId, id: LineId, invalidate: bool) {
        // The other CPUs holding the tag, in CPU order.
        let others = self.holders_of(id.tag) & !(1 << cpu.index());
        if others != 0 {
            self.snoop_others(others, id, invalidate);
        }
    }

    /// [`Machine::snoop`] of the CPUs in the mask `others`.
    #[inline(never)]
    fn snoop_others(&mut self, mut others: u32, id: LineId, invalidate: bool) {
        let LineId { set, tag, alias } = id;
        while others != 0 {
            let other = others.trailing_zeros() as usize;
            others &= others - 1;
            let oc = CpuId(other as u8);
            if let Some(way) = self.cpus[other].cache.lookup(set, tag, alias) {
                if self.cpus[other].cache.meta(set, way).dirty {
                    self.write_back(oc, set, way);
                }
                if invalidate {
                    let m = self.cpus[other].cache.meta(set, way);
                    self.set_line(other, set, way, LineMeta { valid: false, ..m });
                    self.ev(oc, What::Invalidate { set: set as u32, alias, tag, by: Insn::Snoop });
                }
            }
        }
    }

    /// Brings line `id` into `cpu`'s cache, evicting a seeded victim if the set is full.
    #[inline(never)]
    fn fill(&mut self, cpu: CpuId, id: LineId, speculative: bool) -> usize {
        self.snoop(cpu, id, false);
        let LineId { set, tag, alias } = id;
        let ways = self.cfg.ways;
        let way = match self.cpus[cpu.index()].cache.free_way(set) {
            Some(w) => w,
            None => {
                let w = self.choose(ChoiceKind::CacheVictim, ways as u32) as usize;
                let m = self.cpus[cpu.index()].cache.meta(set, w);
                if m.dirty {
                    self.write_back(cpu, set, w);
                }
                self.ev(cpu, What::Evict { set: set as u32, alias: m.alias, tag: m.tag });
                w
            }
        };
        let wpl = self.cfg.words_per_line();
        let pa = PhysAddr::new(tag * self.cfg.line_bytes);
        let c = &mut self.cpus[cpu.index()].cache;
        copy_line(c.data_mut(set, way), self.mem.slice(pa, wpl));
        self.set_line(cpu.index(), set, way, LineMeta { valid: true, dirty: false, tag, alias });
        if speculative {
            self.counters.speculative_fills += 1;
        } else {
            self.counters.fills += 1;
        }
        self.ev(cpu, What::Fill { set: set as u32, alias, tag, speculative });
        way
    }

    #[inline(always)]
    fn line_for_read(&mut self, cpu: CpuId, id: LineId) -> usize {
        let (way, hit) = match self.cpus[cpu.index()].cache.lookup(id.set, id.tag, id.alias) {
            Some(w) => {
                self.counters.hits += 1;
                (w, true)
            }
            None => (self.fill(cpu, id, false), false),
        };
        self.last_read = Some(LineRead { cpu, set: id.set as u32, alias: id.alias, tag: id.tag, hit });
        way
    }

    #[inline(always)]
    fn line_for_write(&mut self, cpu: CpuId, id: LineId) -> usize {
        self.snoop(cpu, id, true);
        let w = self.line_for_read(cpu, id);
        self.cpus[cpu.index()].cache.set_dirty(id.set, w, true);
        w
    }

    // ----- loads and stores -------------------------------------------------------------

    /// Loads the word at `va` in `space`.
    pub fn load(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Result<u64, Trap> {
        self.counters.loads += 1;
        let pa = self.translate_access(cpu, space, va, false)?;
        let id = self.line_id(va, pa);
        let w = self.line_for_read(cpu, id);
        let i = self.word_in_line(pa);
        Ok(self.cpus[cpu.index()].cache.word(id.set, w, i))
    }

    /// Stores `value` at `va` in `space`.
    pub fn store(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, value: u64) -> Result<(), Trap> {
        self.counters.stores += 1;
        let pa = self.translate_access(cpu, space, va, true)?;
        let id = self.line_id(va, pa);
        let w = self.line_for_write(cpu, id);
        let i = self.word_in_line(pa);
        self.cpus[cpu.index()].cache.set_word(id.set, w, i, value);
        self.ev(cpu, What::Store { set: id.set as u32, alias: id.alias, tag: id.tag, va, value });
        Ok(())
    }

    /// Loads the whole line containing `va` into `buf` (`words_per_line` words).
    pub fn load_line(
        &mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, buf: &mut [u64],
    ) -> Result<(), Trap> {
        self.counters.loads += 1;
        let va = va.align_down(self.cfg.line_bytes);
        let pa = self.translate_access(cpu, space, va, false)?;
        let id = self.line_id(va, pa);
        let w = self.line_for_read(cpu, id);
        copy_line(buf, self.cpus[cpu.index()].cache.data(id.set, w));
        Ok(())
    }

    /// Stores `buf` over the whole line containing `va`.
    pub fn store_line(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, buf: &[u64]) -> Result<(), Trap> {
        self.counters.stores += 1;
        let va = va.align_down(self.cfg.line_bytes);
        let pa = self.translate_access(cpu, space, va, true)?;
        let id = self.line_id(va, pa);
        let w = self.line_for_write(cpu, id);
        copy_line(self.cpus[cpu.index()].cache.data_mut(id.set, w), buf);
        self.ev(cpu, What::StoreLine { set: id.set as u32, alias: id.alias, tag: id.tag, va });
        Ok(())
    }

    // ----- speculation ------------------------------------------------------------------

    /// A speculative move-in on `cpu`: a seeded line of a seeded page whose TLB entry allows
    /// move-in is filled (clean) unless already present. Returns the page of the line filled, if
    /// one was.
    pub fn speculate(&mut self, cpu: CpuId) -> Option<Pfn> {
        let lpp = self.cfg.lines_per_page();
        let n = self.cpus[cpu.index()].tlb.entries().iter().filter(|e| e.allows_move_in()).count();
        if n == 0 {
            return None;
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
        let pa = e.pfn.phys().add_bytes(off);
        let id = self.line_id(va, pa);
        if self.cpus[cpu.index()].cache.lookup(id.set, id.tag, id.alias).is_some() {
            return None;
        }
        self.fill(cpu, id, true);
        Some(e.pfn)
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
}

/// Copies one line's words (`dst.len() == src.len()`): the line sizes of the presets (8 and
/// 16 words) as fixed-size copies, which compile to a few vector moves rather than a call.
#[inline(always)]
fn copy_line(dst: &mut [u64], src: &[u64]) {
    match (<&mut [u64; 16]>::try_from(&mut *dst), <&[u64; 16]>::try_from(src)) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => match (<&mut [u64; 8]>::try_from(&mut *dst), <&[u64; 8]>::try_from(src)) {
            (Ok(d), Ok(s)) => *d = *s,
            _ => dst.copy_from_slice(src),
        },
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

#[cfg(test)]
mod split_tests {
    use super::*;
    use quickcheck::quickcheck;

    fn geometry(sets: usize) -> Geometry {
        let mut cfg = crate::config::Preset::Pa8700.config();
        cfg.sets = sets;
        Geometry::new(&cfg)
    }

    quickcheck! {
        /// The multiply-high split is `x mod sets, x div sets` for every set count and every
        /// line index, within its range and beyond it.
        fn split_is_exact_division(sets: u16, x: u64, small: u32) -> bool {
            let sets = sets.max(1) as usize;
            let g = geometry(sets);
            [x, u64::from(small), u64::from(u32::MAX), u64::from(u32::MAX) + 1].iter().all(|&x| {
                let s = sets as u64;
                g.split(x) == ((x % s) as usize, (x / s) as u32)
            })
        }
    }

    #[test]
    fn split_is_exact_at_the_edges_of_the_presets() {
        for sets in [1536usize, 6144, 3, 7, 65535, 65537] {
            let g = geometry(sets);
            for x in (0..200_000u64).chain([u64::from(u32::MAX) - 1, u64::from(u32::MAX)]) {
                let s = sets as u64;
                assert_eq!(g.split(x), ((x % s) as usize, (x / s) as u32), "sets {sets} x {x}");
            }
        }
    }
}

#[cfg(test)]
mod holder_tests {
    use super::*;
    use crate::choice::FirstChooser;
    use quickcheck::quickcheck;

    quickcheck! {
        /// Whatever fills, stores, snoops and flushes do, a CPU is recorded as holding a tag
        /// exactly when its cache has a valid line with that tag.
        fn holders_are_exactly_the_caches_with_the_tag(ops: Vec<(u8, u8, u16, u8)>) -> bool {
            let mut m = Machine::new(crate::config::Preset::Tiny.config(), Box::new(FirstChooser));
            let (sets, tags) = (m.cfg.sets, tags_of(&m.cfg) as u64);
            for &(op, cpu, tag, set) in &ops {
                let cpu = CpuId(cpu % m.cpus.len() as u8);
                // A few tags and sets, so that lines collide and evict; and tags beyond memory.
                // Fills only of tags in memory; flushes of tags beyond it too.
                let beyond = if op % 5 >= 2 { 4 } else { 0 };
                let id = LineId { set: set as usize % 4 * (sets / 4), tag: u64::from(tag) % (tags + beyond), alias: 0 };
                match op % 5 {
                    0 => {
                        m.line_for_read(cpu, id);
                    }
                    1 => {
                        m.line_for_write(cpu, id);
                    }
                    2 => m.flush_line_everywhere(cpu, id, Insn::Fdc, SpaceId::KERNEL, VirtAddr::new(0)),
                    3 => m.flush_line_everywhere(cpu, id, Insn::Pdc, SpaceId::KERNEL, VirtAddr::new(0)),
                    _ => m.fdce(cpu, cpu, id.set),
                }
            }
            (0..tags as usize).all(|tag| {
                (0..m.cpus.len()).all(|c| {
                    let cache = &m.cpus[c].cache;
                    let held = (0..sets).any(|s| (0..cache.ways()).any(|w| {
                        let l = cache.meta(s, w);
                        l.valid && l.tag == tag as u64
                    }));
                    (m.holders[tag] >> c & 1 == 1) == held && cache.may_hold(tag as u64) == held
                })
            })
        }
    }
}
