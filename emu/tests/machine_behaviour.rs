//! Acceptance tests of the emulated VIPT machine and of the memory-manager model on it.
//!
//! Everything runs on the `tiny` preset (4 CPUs, 4 KiB pages, 128-byte lines, 128 sets × 2
//! ways, 16 KiB alias boundary = 4 page colours) with [`FirstChooser`] (no speculation, way 0,
//! slot 0), so every step is deterministic and every assertion names an exact value or line
//! state.
//!
//! Machine level (page tables built by hand, instructions issued directly):
//!
//! * (a) inequivalent aliases of one page disagree until flushed, and a stale clean line of the
//!   second alias survives an `fdc` through the first;
//! * (b) `fdc` without a translation is nullified and leaves the dirty line alone;
//! * (c) `fdc` through a translation to another page acts on that page only;
//! * (d) a 2.6.14 `_PAGE_FLUSH` PTE still lets `fdc` flush the old page; a current cleared PTE
//!   does not;
//! * (e) a stale TLB entry on another CPU keeps sending stores to the old page until purged;
//! * (g) equivalent aliases are coherent across CPUs by snooping, inequivalent ones are not;
//! * (h) a store through a TLB entry with the D bit clear traps.
//!
//! Kernel level (the MMU core driven through [`Executor`]):
//!
//! * (f) reclaim of an anonymous page with a dirty user-alias line loses the store without a
//!   `flush_cache_page`, and keeps it with one;
//! * (h) a user store into a clean shared writable file mapping sets `_PAGE_DIRTY`.

use vipt_emu::addr::{CpuId, Pfn, PhysAddr, SpaceId, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::{Indexing, Preset};
use vipt_emu::machine::{FlushOutcome, Machine, MissPolicy, Trap};
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{ArchHooks, Executor, GenericHooks, HookFuture, Kernel, Mapping, MmId, Op, OpResult, Vma};
use vipt_emu::pte::{Pte, PteFlags, PteKind, PteLayout};
use vipt_emu::tlb::{Rights, TlbEntry};

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);
const C2: CpuId = CpuId(2);

/// The user space of the hand-built page tables.
const SP: SpaceId = SpaceId(1);
/// Page-table frames of the hand-built tables.
const PGD: Pfn = Pfn(0);
const PTE_PAGE: Pfn = Pfn(1);
/// Data frames, well apart from the tables.
const P: Pfn = Pfn(5);
const Q: Pfn = Pfn(9);

/// Colour 0 (sets 0..32 on tiny).
const A1: VirtAddr = VirtAddr(0x1_0000);
/// Colour 1: an inequivalent alias of [`A1`] when both map one frame.
const A2: VirtAddr = VirtAddr(0x1_1000);
/// `A1 + 16 KiB`: colour 0 again, an equivalent alias of [`A1`].
const A1_EQ: VirtAddr = VirtAddr(0x1_4000);
/// Colour 0, in a 2 MiB region whose pgd entry is empty (no PTE page at all).
const NO_TABLE: VirtAddr = VirtAddr(0x40_0000);

/// The word of a page the tests use (word 3 of line 0).
const WORD: usize = 3;
/// What memory holds at [`WORD`] of each data frame before a test stores anything.
const OLD_P: u64 = 0x01d0_0005;
const OLD_Q: u64 = 0x01d0_0009;

/// A writable, dirty, accessed user page.
fn rw() -> PteFlags {
    PteFlags::PRESENT
        | PteFlags::USER
        | PteFlags::READ
        | PteFlags::WRITE
        | PteFlags::DIRTY
        | PteFlags::ACCESSED
}

/// The state of one physical line in one CPU's cache, seen through one virtual index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// No valid line with that tag in that set.
    Absent,
    /// Valid, clean, holding this value at the word of interest.
    Clean(u64),
    /// Valid, dirty, holding this value at the word of interest.
    Dirty(u64),
}

/// The state of the line holding `pa` in `cpu`'s cache at the set `va` indexes.
fn line(m: &Machine, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Line {
    let bytes = m.config().line_bytes;
    match m.cached_line(cpu, va, pa) {
        None => Line::Absent,
        Some((meta, data)) => {
            assert!(meta.valid, "lookup returned an invalid line");
            assert_eq!(meta.tag, pa.0 / bytes, "lookup returned another line");
            let v = data[((pa.0 % bytes) / 8) as usize];
            if meta.dirty { Line::Dirty(v) } else { Line::Clean(v) }
        }
    }
}

/// `cpu`'s TLB entries for the page of `va` in [`SP`].
fn tlb_entries(m: &Machine, cpu: CpuId, va: VirtAddr) -> Vec<TlbEntry> {
    m.cpu(cpu).tlb.entries().iter().filter(|e| e.space == SP && e.vpn == va.vpn()).copied().collect()
}

// ----- machine-level rig ------------------------------------------------------------------

/// A tiny machine with one user space whose first 2 MiB are covered by one PTE page.
struct Rig {
    m: Machine,
    layout: PteLayout,
}

impl Rig {
    fn new(policy: MissPolicy) -> Self {
        let mut m = Machine::new(Preset::Tiny.config(), policy, Box::new(FirstChooser));
        m.pt.install(PGD);
        m.pt.install(PTE_PAGE);
        m.pt.set_pmd(PGD, A1, Some(PTE_PAGE));
        m.attach_space(SP, PGD);
        m.mem.write(P.word(WORD), OLD_P);
        m.mem.write(Q.word(WORD), OLD_Q);
        Rig { m, layout: policy.layout }
    }

    fn current() -> Self {
        Rig::new(MissPolicy::CURRENT)
    }

    fn set_pte(&mut self, va: VirtAddr, pte: Pte) {
        let slot = self.m.pt.slot(PGD, va).expect("va is under the PTE page");
        self.m.pt.set_pte(slot, pte);
    }

    fn pte(&self, va: VirtAddr) -> Pte {
        self.m.pt.lookup(PGD, va)
    }

    fn map(&mut self, va: VirtAddr, pfn: Pfn, flags: PteFlags) -> Pte {
        let pte = self.layout.mk_pte(pfn, flags);
        self.set_pte(va, pte);
        pte
    }

    fn line(&self, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Line {
        line(&self.m, cpu, va, pa)
    }

    fn mem(&self, pa: PhysAddr) -> u64 {
        self.m.mem.read(pa)
    }
}

#[test]
fn tiny_geometry_is_what_these_tests_assume() {
    let cfg = Preset::Tiny.config();
    assert_eq!(cfg.cpus, 4);
    assert_eq!(cfg.line_bytes, 128);
    assert_eq!((cfg.sets, cfg.ways), (128, 2));
    assert_eq!(cfg.indexing, Indexing::Virtual { alias_boundary: 16 * 1024 });
    assert_eq!(cfg.colours(), 4);
    let r = Rig::current();
    let pa = P.word(WORD);
    assert_eq!(r.m.set_index(A1.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(A1_EQ.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(NO_TABLE.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(A2.with_word(WORD), pa), 32);
    assert!(r.m.equivalent(A1, A1_EQ));
    assert!(!r.m.equivalent(A1, A2));
    assert_eq!(r.m.pt.slot(PGD, NO_TABLE), None);
}

// ----- (a) inequivalent aliases ------------------------------------------------------------

/// (a1) A store through A1 is invisible through the inequivalent alias A2, and once A2 holds a
/// clean stale copy, an `fdc` through A1 (which writes memory) does not remove it: only a
/// flush or purge through A2 itself does.
#[test]
fn a1_inequivalent_aliases_differ_until_flushed_and_a_stale_clean_alias_line_survives() {
    let mut r = Rig::current();
    r.map(A1, P, rw());
    r.map(A2, P, rw());
    let (a1, a2, pa) = (A1.with_word(WORD), A2.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xa1a1;

    r.m.store(C0, SP, a1, NEW).unwrap();
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.mem(pa), OLD_P);

    // A2 indexes another set: the load misses there and fills from (old) memory.
    assert_eq!(r.m.load(C0, SP, a2), Ok(OLD_P));
    assert_eq!(r.line(C0, a2, pa), Line::Clean(OLD_P));
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));

    // fdc through the storing alias writes the line back and invalidates it at A1's index...
    assert_eq!(r.m.fdc(C0, SP, a1), FlushOutcome::Done { pa });
    assert_eq!(r.mem(pa), NEW);
    assert_eq!(r.line(C0, a1, pa), Line::Absent);
    // ...but A2's clean stale line sits at another index and survives.
    assert_eq!(r.line(C0, a2, pa), Line::Clean(OLD_P));
    assert_eq!(r.m.load(C0, SP, a2), Ok(OLD_P));

    // pdc through A2 drops the stale line; now both aliases agree with memory.
    assert_eq!(r.m.pdc(C0, SP, a2), FlushOutcome::Done { pa });
    assert_eq!(r.line(C0, a2, pa), Line::Absent);
    assert_eq!(r.mem(pa), NEW);
    assert_eq!(r.m.load(C0, SP, a2), Ok(NEW));
    assert_eq!(r.m.load(C0, SP, a1), Ok(NEW));
    assert_eq!(r.line(C0, a2, pa), Line::Clean(NEW));
    assert_eq!(r.line(C0, a1, pa), Line::Clean(NEW));
    assert_eq!(r.m.counters.nullified, 0);
}

/// (a2) When A2 has not been read yet, an `fdc` through the storing alias A1 is enough: the
/// first load through A2 (here on another CPU) fills from memory and sees the new value.
#[test]
fn a2_inequivalent_aliases_agree_after_fdc_when_second_alias_was_not_cached() {
    let mut r = Rig::current();
    r.map(A1, P, rw());
    r.map(A2, P, rw());
    let (a1, a2, pa) = (A1.with_word(WORD), A2.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xa2a2;

    r.m.store(C0, SP, a1, NEW).unwrap();
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.mem(pa), OLD_P);

    assert_eq!(r.m.fdc(C0, SP, a1), FlushOutcome::Done { pa });
    assert_eq!(r.mem(pa), NEW);
    assert_eq!(r.line(C0, a1, pa), Line::Absent);
    assert_eq!(r.m.cached_word(a2, pa), None);

    assert_eq!(r.m.load(C1, SP, a2), Ok(NEW));
    assert_eq!(r.line(C1, a2, pa), Line::Clean(NEW));
    assert_eq!(r.m.load(C0, SP, a2), Ok(NEW));
}

/// (a, flush vs purge) `pdc` through the storing alias discards its dirty line: memory keeps
/// the old value and the next load through that alias reads it.
#[test]
fn a3_pdc_discards_a_dirty_alias_line_without_write_back() {
    let mut r = Rig::current();
    r.map(A1, P, rw());
    let (a1, pa) = (A1.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xa3a3;

    r.m.store(C0, SP, a1, NEW).unwrap();
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.m.pdc(C1, SP, a1), FlushOutcome::Done { pa });
    assert_eq!(r.m.counters.write_backs, 0);
    assert_eq!(r.line(C0, a1, pa), Line::Absent);
    assert_eq!(r.mem(pa), OLD_P);
    assert_eq!(r.m.load(C0, SP, a1), Ok(OLD_P));
}

// ----- (b) fdc without a translation -------------------------------------------------------

/// (b) `fdc` on an address with no translation (zero PTE, or no PTE page at all; no TLB
/// entry) is nullified, even when it indexes exactly the set of a dirty line of the page.
#[test]
fn b_fdc_without_translation_is_nullified_and_dirty_line_survives() {
    let mut r = Rig::current();
    r.map(A1, P, rw());
    let (a1, pa) = (A1.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xb0b0;
    r.m.store(C0, SP, a1, NEW).unwrap();
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));

    // A1_EQ indexes the same set as A1 but its PTE is empty; NO_TABLE has no PTE page.
    assert_eq!(r.pte(A1_EQ), Pte::NONE);
    let before = r.m.counters;
    assert_eq!(r.m.fdc(C0, SP, A1_EQ.with_word(WORD)), FlushOutcome::Nullified);
    assert_eq!(r.m.counters.nullified, before.nullified + 1);
    assert_eq!(r.m.counters.nadtlb_misses, before.nadtlb_misses + 1);
    assert_eq!(r.m.fdc(C1, SP, NO_TABLE.with_word(WORD)), FlushOutcome::Nullified);
    // A pdc without a translation does not discard the dirty data either.
    assert_eq!(r.m.pdc(C2, SP, A1_EQ.with_word(WORD)), FlushOutcome::Nullified);
    assert_eq!(r.m.counters.nullified, before.nullified + 3);
    assert_eq!(r.m.counters.fdc, before.fdc + 2);
    assert_eq!(r.m.counters.write_backs, before.write_backs);

    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.m.dirty_lines_of(P), 1);
    assert_eq!(r.mem(pa), OLD_P);
    // The nullified flush left no translation behind.
    assert_eq!(r.m.load(C0, SP, A1_EQ.with_word(WORD)), Err(Trap::PageFault { write: false }));

    // Control: with a translation the same line is flushed.
    assert_eq!(r.m.fdc(C1, SP, a1), FlushOutcome::Done { pa });
    assert_eq!(r.line(C0, a1, pa), Line::Absent);
    assert_eq!(r.mem(pa), NEW);
}

// ----- (c) fdc through a translation to another page ---------------------------------------

/// (c) The PTE of `X` now maps Q while the dirty line at `X`'s index belongs to P: `fdc X`
/// compares against Q's tag, so it writes back and invalidates Q's line there and leaves P's.
#[test]
fn c_fdc_through_translation_to_other_page_flushes_that_page_not_the_dirty_one() {
    let mut r = Rig::current();
    let x = A1.with_word(WORD);
    let y = A1_EQ.with_word(WORD); // same index as x
    let (pa_p, pa_q) = (P.word(WORD), Q.word(WORD));
    const NEW_P: u64 = 0xc0de_0005;
    const NEW_Q: u64 = 0xc0de_0009;

    r.map(A1, P, rw());
    r.map(A1_EQ, Q, rw());
    r.m.store(C0, SP, x, NEW_P).unwrap();
    r.m.store(C0, SP, y, NEW_Q).unwrap();
    // Both dirty lines share set 0 (one per way).
    assert_eq!(r.line(C0, x, pa_p), Line::Dirty(NEW_P));
    assert_eq!(r.line(C0, x, pa_q), Line::Dirty(NEW_Q));

    // Re-point X at Q (as COW would) and purge X so the fdc walks the new PTE.
    r.map(A1, Q, rw());
    r.m.purge_tlb(C0, SP, A1);
    let before = r.m.counters;
    assert_eq!(r.m.fdc(C0, SP, x), FlushOutcome::Done { pa: pa_q });
    assert_eq!(r.m.counters.nullified, before.nullified);
    assert_eq!(r.m.counters.write_backs, before.write_backs + 1);

    // P untouched...
    assert_eq!(r.line(C0, x, pa_p), Line::Dirty(NEW_P));
    assert_eq!(r.mem(pa_p), OLD_P);
    assert_eq!(r.m.dirty_lines_of(P), 1);
    // ...Q flushed instead.
    assert_eq!(r.line(C0, x, pa_q), Line::Absent);
    assert_eq!(r.mem(pa_q), NEW_Q);
    assert_eq!(r.m.dirty_lines_of(Q), 0);
}

// ----- (d) _PAGE_FLUSH ---------------------------------------------------------------------

/// (d) 2.6.14: `ptep_get_and_clear` leaves a `_PAGE_FLUSH` entry (pfn kept, PRESENT cleared);
/// the non-access miss handler turns it into a flush-only translation, so `fdc` still flushes
/// the old page, while loads and move-ins get nothing from it.
#[test]
fn d_flush_pte_of_2614_lets_fdc_flush_the_old_page() {
    let mut r = Rig::new(MissPolicy::LINUX_2614);
    assert_eq!(r.layout, PteLayout::Linux2614);
    let (a1, pa) = (A1.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xd0d0;
    let old = r.map(A1, P, rw());
    r.m.store(C0, SP, a1, NEW).unwrap();
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));

    let cleared = r.layout.after_get_and_clear(old);
    assert_eq!(
        r.layout.decode(cleared),
        PteKind::FlushOnly { pfn: P, flags: (rw() - PteFlags::PRESENT) | PteFlags::FLUSH }
    );
    assert!(r.layout.pte_none(cleared));
    r.set_pte(A1, cleared);
    r.m.purge_tlb(C0, SP, A1);

    assert_eq!(r.m.fdc(C0, SP, a1), FlushOutcome::Done { pa });
    assert_eq!(r.m.counters.nullified, 0);
    assert_eq!(r.line(C0, a1, pa), Line::Absent);
    assert_eq!(r.m.dirty_lines_of(P), 0);
    assert_eq!(r.mem(pa), NEW);

    // The miss handler inserted a flush-only translation to the old frame...
    assert_eq!(
        tlb_entries(&r.m, C0, A1),
        vec![TlbEntry {
            space: SP,
            vpn: A1.vpn(),
            pfn: P,
            rights: Rights::empty(),
            dirty: false,
            flush_only: true,
        }]
    );
    // ...which allows no move-in and no data access: a load drops it, walks and faults.
    assert!(!r.m.speculate(C0));
    assert_eq!(r.m.load(C0, SP, a1), Err(Trap::PageFault { write: false }));
    assert_eq!(tlb_entries(&r.m, C0, A1), vec![]);
    assert_eq!(r.m.cached_word(a1, pa), None);
}

/// (d, contrast) The current layout clears the PTE to zero: the same `fdc` is nullified and
/// the dirty line survives with memory still old.
#[test]
fn d_cleared_pte_of_current_layout_nullifies_fdc_and_line_survives() {
    let mut r = Rig::current();
    let (a1, pa) = (A1.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0xd1d1;
    let old = r.map(A1, P, rw());
    r.m.store(C0, SP, a1, NEW).unwrap();

    let cleared = r.layout.after_get_and_clear(old);
    assert_eq!(cleared, Pte::NONE);
    r.set_pte(A1, cleared);
    r.m.purge_tlb(C0, SP, A1);

    assert_eq!(r.m.fdc(C0, SP, a1), FlushOutcome::Nullified);
    assert_eq!(r.m.counters.nullified, 1);
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.m.dirty_lines_of(P), 1);
    assert_eq!(r.mem(pa), OLD_P);
}

// ----- (e) stale TLB entries ---------------------------------------------------------------

/// (e) CPU1 caches a translation X→P; the PTE is rewritten to X→Q without a purge. CPU1's
/// stores keep landing in P (CPU0, with no entry, already sees Q); after a broadcast purge
/// CPU1's next store reaches Q.
#[test]
fn e_store_through_stale_tlb_entry_reaches_old_page_until_purged() {
    let mut r = Rig::current();
    let x = A1.with_word(WORD);
    let (pa_p, pa_q) = (P.word(WORD), Q.word(WORD));
    const V1: u64 = 0xe001;
    const V2: u64 = 0xe002;
    const V3: u64 = 0xe003;

    r.map(A1, P, rw());
    r.m.store(C1, SP, x, V1).unwrap();
    assert_eq!(r.line(C1, x, pa_p), Line::Dirty(V1));

    r.map(A1, Q, rw()); // no purge
    r.m.store(C1, SP, x, V2).unwrap();
    assert_eq!(r.line(C1, x, pa_p), Line::Dirty(V2));
    assert_eq!(r.m.cached_word(x, pa_p), Some((C1, true, V2)));
    assert_eq!(r.m.cached_word(x, pa_q), None);

    // CPU0 has no entry: it walks the new PTE and reads Q.
    assert_eq!(r.m.load(C0, SP, x), Ok(OLD_Q));
    assert_eq!(r.line(C0, x, pa_q), Line::Clean(OLD_Q));

    // Write CPU1's set back: the stale store is in P's memory, Q's is untouched.
    let set = r.m.set_index(x, pa_p);
    r.m.fdce(C1, C1, set);
    assert_eq!(r.line(C1, x, pa_p), Line::Absent);
    assert_eq!(r.mem(pa_p), V2);
    assert_eq!(r.mem(pa_q), OLD_Q);

    r.m.purge_tlb(C0, SP, A1);
    r.m.store(C1, SP, x, V3).unwrap();
    assert_eq!(r.line(C1, x, pa_q), Line::Dirty(V3));
    assert_eq!(r.line(C1, x, pa_p), Line::Absent);
    assert_eq!(r.line(C0, x, pa_q), Line::Absent); // invalidated by the store's snoop
    assert_eq!(r.mem(pa_p), V2);
    assert_eq!(r.m.fdc(C1, SP, x), FlushOutcome::Done { pa: pa_q });
    assert_eq!(r.mem(pa_q), V3);
    assert_eq!(r.mem(pa_p), V2);
}

// ----- (g) coherence among equivalent aliases ----------------------------------------------

/// (g) Equivalent aliases (same index) are kept coherent across CPUs by snooping; an
/// inequivalent alias on another CPU misses the snoop and reads memory.
#[test]
fn g_equivalent_aliases_are_coherent_across_cpus_inequivalent_are_not() {
    let mut r = Rig::current();
    r.map(A1, P, rw());
    r.map(A1_EQ, P, rw());
    r.map(A2, P, rw());
    let (x, x_eq, y, pa) = (A1.with_word(WORD), A1_EQ.with_word(WORD), A2.with_word(WORD), P.word(WORD));
    const V1: u64 = 0x9001;
    const V2: u64 = 0x9002;

    r.m.store(C0, SP, x, V1).unwrap();
    // Inequivalent alias on CPU1: its set has no copy anywhere; it reads old memory.
    assert_eq!(r.m.load(C1, SP, y), Ok(OLD_P));
    assert_eq!(r.line(C1, y, pa), Line::Clean(OLD_P));
    assert_eq!(r.line(C0, x, pa), Line::Dirty(V1));
    assert_eq!(r.mem(pa), OLD_P);

    // Equivalent alias on CPU1: the fill snoops CPU0's dirty line, which is written back.
    assert_eq!(r.m.load(C1, SP, x_eq), Ok(V1));
    assert_eq!(r.line(C1, x_eq, pa), Line::Clean(V1));
    assert_eq!(r.line(C0, x, pa), Line::Clean(V1));
    assert_eq!(r.mem(pa), V1);
    // The inequivalent alias still holds its stale copy.
    assert_eq!(r.m.load(C1, SP, y), Ok(OLD_P));

    // And back: a store on CPU1 invalidates CPU0's copy; CPU0's next load snoops it.
    r.m.store(C1, SP, x_eq, V2).unwrap();
    assert_eq!(r.line(C0, x, pa), Line::Absent);
    assert_eq!(r.line(C1, x_eq, pa), Line::Dirty(V2));
    assert_eq!(r.m.load(C0, SP, x), Ok(V2));
    assert_eq!(r.line(C1, x_eq, pa), Line::Clean(V2));
    assert_eq!(r.mem(pa), V2);
    assert_eq!(r.m.load(C1, SP, y), Ok(OLD_P));
}

// ----- (h) dirty-bit trap, machine level ---------------------------------------------------

/// (h) A store through a writable TLB entry whose D bit is clear traps with `DirtyBit` before
/// touching the cache; the TLB keeps the clear D bit until purged, even after the PTE gets it.
/// A store to a read-only page is a page fault instead.
#[test]
fn h_store_through_tlb_entry_without_d_bit_traps() {
    let mut r = Rig::current();
    let (a1, pa) = (A1.with_word(WORD), P.word(WORD));
    const NEW: u64 = 0x4444;
    r.map(A1, P, rw() - PteFlags::DIRTY);

    assert_eq!(r.m.store(C0, SP, a1, NEW), Err(Trap::DirtyBit));
    assert_eq!(r.m.counters.dbit_traps, 1);
    assert_eq!(r.m.cached_word(a1, pa), None);
    assert_eq!(r.mem(pa), OLD_P);
    // The entry is fine for loads.
    assert_eq!(r.m.load(C0, SP, a1), Ok(OLD_P));

    // The PTE gets D, but the TLB entry still has it clear.
    r.map(A1, P, rw());
    assert_eq!(r.m.store(C0, SP, a1, NEW), Err(Trap::DirtyBit));
    assert_eq!(r.m.counters.dbit_traps, 2);
    r.m.purge_tlb_local(C0, SP, A1);
    assert_eq!(r.m.store(C0, SP, a1, NEW), Ok(()));
    assert_eq!(r.line(C0, a1, pa), Line::Dirty(NEW));
    assert_eq!(r.m.counters.dbit_traps, 2);

    // No WRITE right: a write page fault, not a dirty-bit trap.
    r.map(A2, P, PteFlags::PRESENT | PteFlags::USER | PteFlags::READ);
    assert_eq!(r.m.store(C0, SP, A2.with_word(WORD), NEW), Err(Trap::PageFault { write: true }));
    assert_eq!(r.m.counters.dbit_traps, 2);
}

// ----- kernel-level helpers ----------------------------------------------------------------

fn kernel(hooks: Box<dyn ArchHooks>) -> Kernel {
    let m = Machine::new(Preset::Tiny.config(), hooks.miss_policy(), Box::new(FirstChooser));
    Kernel::new(m, hooks)
}

fn one(k: &Kernel, cpu: CpuId, op: Op) -> OpResult {
    Executor::new(k).run_sequential(&[(cpu, op)]).unwrap()[0]
}

fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

fn anon(pages: u64) -> MmapArgs {
    MmapArgs { pages, file: None, shared: false, writable: true, fixed: None }
}

/// Test-local lineage: the PIPT defaults, plus the two flushes that reclaim of an anonymous
/// page needs on a VIPT machine:
///
/// * `flush_cache_page` writes back and invalidates the user alias of the page while its PTE
///   still maps it (so `try_to_unmap` puts the user's stores in memory before `pageout`);
/// * `clear_user_highpage` flushes the kernel alias after zeroing through it. Without this the
///   dirty zero lines of the clear stay in the kernel-alias sets and `dma_page_out`'s
///   kernel-alias flush writes them back *over* the user's flushed stores (see
///   `f_flush_cache_page_alone_is_undone_by_dirty_kernel_alias_of_the_clear`).
struct Flushing;

impl ArchHooks for Flushing {
    fn name(&self) -> &str {
        "test-flushing"
    }

    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        flush_user_page(k, cpu, vma, va)
    }

    fn clear_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        page: Pfn,
        _va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        Box::pin(async move {
            k.clear_page_kernel(cpu, page).await;
            k.flush_kernel_page(cpu, page).await;
        })
    }
}

/// Only `flush_cache_page` of [`Flushing`] (the clear leaves its kernel-alias lines dirty).
struct FlushCachePageOnly;

impl ArchHooks for FlushCachePageOnly {
    fn name(&self) -> &str {
        "test-flush-cache-page-only"
    }

    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        _pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        flush_user_page(k, cpu, vma, va)
    }
}

/// `fdc` over every line of the user page at `va` of `vma`, through the user address.
fn flush_user_page<'a>(k: &'a Kernel, cpu: CpuId, vma: Vma, va: VirtAddr) -> HookFuture<'a, ()> {
    Box::pin(async move {
        k.flush_page_lines(cpu, vma.space, va).await;
    })
}

/// The value stored by the reclaim scenarios.
const SECRET: u64 = 0x5ec2_e7ed;

/// What [`store_then_reclaim`] leaves behind.
struct Reclaimed {
    k: Kernel,
    mm: MmId,
    va: VirtAddr,
    pfn: Pfn,
    slot: usize,
}

/// Maps one anonymous page, stores [`SECRET`] at [`WORD`] on CPU0 (a write fault: the page is
/// zeroed through its kernel alias), then reclaims it on CPU1.
fn store_then_reclaim(hooks: Box<dyn ArchHooks>) -> Reclaimed {
    let k = kernel(hooks);
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(1) }));
    assert_eq!(va, A1);
    let w = va.with_word(WORD);
    assert_eq!(one(&k, C0, Op::Store { mm, va: w, value: SECRET }), OpResult::Value(SECRET));
    let pfn = k.follow_pfn(mm, va).expect("mapped after the store");
    assert_eq!(k.page(pfn).refcount, 1);
    assert_eq!(k.page(pfn).mapcount, 1);
    // The store sits dirty in CPU0's cache under the user alias; memory still holds zero.
    {
        let m = k.machine();
        assert_eq!(line(&m, C0, w, pfn.word(WORD)), Line::Dirty(SECRET));
        assert_eq!(m.mem.read(pfn.word(WORD)), 0);
        // The user alias (colour 0) and the kernel alias are inequivalent.
        assert!(!m.equivalent(w, pfn.word(WORD).kernel_va()));
    }

    assert_eq!(one(&k, C1, Op::Reclaim { target: ReclaimTarget::User { mm, va } }), OpResult::Done);
    let pte = k.peek_pte(mm, va);
    let PteKind::Swap { ty: 0, offset, exclusive: false } = k.layout().decode(pte) else {
        panic!("expected a swap entry after reclaim, got {pte:?}");
    };
    assert_eq!(offset, 1, "FirstChooser takes the first free slot");
    // The frame went back to the free list.
    let d = k.page(pfn);
    assert_eq!((d.refcount, d.mapcount, d.mapping), (0, 0, Mapping::None));
    assert_eq!(k.state().free.last(), Some(&pfn));
    assert_eq!(k.state().swap[offset as usize].count, 1);
    Reclaimed { k, mm, va, pfn, slot: offset as usize }
}

fn swap_word(k: &Kernel, slot: usize) -> u64 {
    k.state().swap[slot].data.as_ref().expect("the page was written to swap")[WORD]
}

// ----- (f) reclaim of an anonymous page ----------------------------------------------------

/// (f) With the PIPT hooks nothing flushes the user alias before `pageout`: the swap slot gets
/// the stale zero, and the store is left in a dirty line of a frame that is already free.
#[test]
fn f_reclaim_without_flush_cache_page_writes_stale_data_to_swap() {
    let Reclaimed { k, va, pfn, slot, .. } = store_then_reclaim(Box::new(GenericHooks));
    assert_eq!(swap_word(&k, slot), 0);
    let m = k.machine();
    assert_eq!(m.mem.read(pfn.word(WORD)), 0);
    assert_eq!(line(&m, C0, va.with_word(WORD), pfn.word(WORD)), Line::Dirty(SECRET));
    assert_eq!(m.dirty_lines_of(pfn), 1);
}

/// (f) With `flush_cache_page` (and a clear that flushes its kernel alias) the user's store
/// reaches memory before `pageout`, so the swap slot holds it and swap-in returns it.
#[test]
fn f_reclaim_with_flush_cache_page_writes_user_store_to_swap() {
    let Reclaimed { k, mm, va, pfn, slot } = store_then_reclaim(Box::new(Flushing));
    assert_eq!(swap_word(&k, slot), SECRET);
    {
        let m = k.machine();
        assert_eq!(m.mem.read(pfn.word(WORD)), SECRET);
        assert_eq!(m.dirty_lines_of(pfn), 0);
        assert_eq!(m.cached_word(va.with_word(WORD), pfn.word(WORD)), None);
    }

    // Swap-in on the CPU that stored.
    assert_eq!(one(&k, C0, Op::Load { mm, va: va.with_word(WORD) }), OpResult::Value(SECRET));
    let back = k.follow_pfn(mm, va).expect("swapped in");
    assert_eq!(k.page(back).mapcount, 1);
    assert!(k.state().swap[slot].is_free());
    assert_eq!(k.state().swap[slot].data, None);
}

/// (f, subtlety) `flush_cache_page` alone is not enough on this machine: the PIPT
/// `clear_user_highpage` zeroes the page through the kernel alias and leaves those lines
/// dirty; `dma_page_out` flushes the kernel alias just before the DMA, and the write-back of
/// the zero line lands on top of the user store `flush_cache_page` had just written.
#[test]
fn f_flush_cache_page_alone_is_undone_by_dirty_kernel_alias_of_the_clear() {
    let Reclaimed { k, pfn, slot, .. } = store_then_reclaim(Box::new(FlushCachePageOnly));
    assert_eq!(swap_word(&k, slot), 0);
    let m = k.machine();
    assert_eq!(m.mem.read(pfn.word(WORD)), 0);
    assert_eq!(m.dirty_lines_of(pfn), 0);
}

// ----- (h) dirty-bit trap, kernel level ----------------------------------------------------

/// (h) A read fault on a shared writable file mapping installs a writable but clean PTE; the
/// first store takes the dirty-bit trap, whose handler sets `_PAGE_DIRTY`. A first-touch
/// store instead installs a dirty PTE directly, without a trap.
#[test]
fn h_user_store_into_shared_file_mapping_sets_page_dirty_via_dbit_trap() {
    let k = kernel(Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let file = k.create_file(2, 0);
    let va = mapped(one(
        &k,
        C0,
        Op::Mmap {
            mm,
            args: MmapArgs { pages: 2, file: Some((file, 0)), shared: true, writable: true, fixed: None },
        },
    ));
    let w = va.with_word(WORD);

    assert_eq!(one(&k, C0, Op::Load { mm, va: w }), OpResult::Value(0));
    let PteKind::Present { pfn, flags } = k.layout().decode(k.peek_pte(mm, va)) else {
        panic!("expected a present PTE after the read fault");
    };
    assert!(flags.contains(PteFlags::WRITE | PteFlags::USER | PteFlags::READ));
    assert!(!flags.contains(PteFlags::DIRTY));

    let traps = k.machine().counters.dbit_traps;
    const V: u64 = 0xd1e7;
    assert_eq!(one(&k, C0, Op::Store { mm, va: w, value: V }), OpResult::Value(V));
    assert_eq!(k.machine().counters.dbit_traps, traps + 1);
    assert_eq!(
        k.layout().decode(k.peek_pte(mm, va)),
        PteKind::Present { pfn, flags: flags | PteFlags::DIRTY }
    );
    assert_eq!(one(&k, C0, Op::Load { mm, va: w }), OpResult::Value(V));

    // Second page: the first touch is a store, so the fault installs a dirty PTE; no trap.
    let w1 = va.add_pages(1).with_word(WORD);
    assert_eq!(one(&k, C0, Op::Store { mm, va: w1, value: V + 1 }), OpResult::Value(V + 1));
    assert_eq!(k.machine().counters.dbit_traps, traps + 1);
    let pte1 = k.peek_pte(mm, va.add_pages(1));
    assert!(pte1.has(PteFlags::PRESENT | PteFlags::WRITE | PteFlags::DIRTY));
}
