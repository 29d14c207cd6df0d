//! (i) Cache indexing on every preset: two virtual addresses of one physical line share a cache
//! line exactly when they are congruent modulo the alias boundary (always on the PIPT
//! machine), and `Machine::equivalent` says the same. Pinned cases: on `pa8700` aliases one way
//! (384 KiB) apart share a set but not a line; on `rp3440` the set bits above the 4 MiB
//! boundary come from the physical address, so the upper half of the sets is used.

use quickcheck::{QuickCheck, TestResult};
use vipt_emu::addr::{PAGE_SIZE, Pfn, SHM_COLOUR, TASK_SIZE, VirtAddr, WORD_BYTES};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::{Indexing, Preset};
use vipt_emu::machine::Machine;
use vipt_emu::pgtable::PMD_SIZE;

use crate::common::*;

/// A `preset` machine with two CPUs, a user space [`SP`] rooted at [`PGD`], and no mappings.
fn machine(preset: Preset) -> Machine {
    let mut cfg = preset.config();
    cfg.cpus = 2;
    let mut m = Machine::new(cfg, Box::new(FirstChooser));
    m.pt.install(PGD);
    m.attach_space(SP, PGD);
    m
}

/// Frames below this one are kept for page tables.
const FIRST_DATA_FRAME: u32 = 4;

/// Maps `va` to `pfn` in [`SP`], giving its 2 MiB region a PTE page (the first free frame of
/// 1..[`FIRST_DATA_FRAME`]) if it has none.
fn map(m: &mut Machine, va: VirtAddr, pfn: Pfn) {
    if m.pt.walk(PGD, va).is_none() {
        let table =
            (1..FIRST_DATA_FRAME).map(Pfn::new).find(|&t| !m.pt.is_table(t)).expect("a free table frame");
        m.pt.install(table);
        m.pt.set_pmd(PGD, va, Some(table));
    }
    let pte = m.policy.layout.mk_pte(pfn, rw());
    let slot = m.pt.walk(PGD, va).expect("PTE page installed");
    m.pt.set_pte(slot, pte);
}

/// The alias boundary the test computes congruence with (for PIPT: any, nothing depends on it).
fn boundary(preset: Preset) -> u64 {
    match preset.config().indexing {
        Indexing::Virtual { alias_boundary } => alias_boundary,
        Indexing::Physical => 4 * PAGE_SIZE,
    }
}

/// A pair of user addresses of one physical word, drawn so that congruent pairs, pairs one
/// cache way apart and unrelated pairs all occur: `va2 = va1 + k · stride` (modulo
/// `TASK_SIZE`, a multiple of every boundary, so congruence is kept), where the stride is the
/// boundary, the way size, half the boundary or a page, by `mode`.
fn pair(preset: Preset, page1: u32, mode: u8, k: u16, word: u8) -> (VirtAddr, VirtAddr) {
    let cfg = preset.config();
    let way = cfg.line_bytes * cfg.sets as u64;
    let b = boundary(preset);
    let stride = match mode % 4 {
        0 => b,
        1 => way,
        2 => b / 2,
        _ => PAGE_SIZE,
    };
    let pages = TASK_SIZE / PAGE_SIZE;
    let off = (word as u64 % (PAGE_SIZE / WORD_BYTES)) * WORD_BYTES;
    let va1 = (page1 as u64 % pages) * PAGE_SIZE + off;
    let va2 = (va1 + k as u64 * stride) % TASK_SIZE;
    (VirtAddr::new(va1), VirtAddr::new(va2))
}

/// The property on `preset`: a store through `va1` on CPU0 is seen by a load through `va2` on
/// CPU0 without any flush, and by a load through `va2` on CPU1 (a snoop), exactly when `va1`
/// and `va2` are congruent modulo the boundary (always on PIPT); `Machine::equivalent` and
/// `Machine::line_id` agree.
fn shares_a_line_iff_congruent(
    preset: Preset, page1: u32, mode: u8, k: u16, frame: u16, word: u8,
) -> TestResult {
    let (va1, va2) = pair(preset, page1, mode, k, word);
    if va1.page_base() == va2.page_base() {
        return TestResult::discard();
    }
    let mut m = machine(preset);
    let frames = m.config().frames as u32;
    let pfn = Pfn::new(FIRST_DATA_FRAME + frame as u32 % (frames - FIRST_DATA_FRAME));
    map(&mut m, va1, pfn);
    map(&mut m, va2, pfn);
    let pa = pfn.phys().add_bytes(va1.page_offset());
    const OLD: u64 = 0x01d;
    const NEW: u64 = 0x2e3;
    m.mem.write(pa, OLD);

    let shared = match preset.config().indexing {
        Indexing::Virtual { alias_boundary } => (va1.raw() ^ va2.raw()) % alias_boundary == 0,
        Indexing::Physical => true,
    };
    m.store(C0, SP, va1, NEW).unwrap();
    let same_cpu = m.load(C0, SP, va2).unwrap();
    let other_cpu = m.load(C1, SP, va2).unwrap();
    let expect = if shared { NEW } else { OLD };
    let ok = same_cpu == expect
        && other_cpu == expect
        && m.equivalent(va1, va2) == shared
        && (m.line_id(va1, pa) == m.line_id(va2, pa)) == shared;
    if ok {
        TestResult::passed()
    } else {
        TestResult::error(format!(
            "{preset}: {va1} and {va2} (congruent: {shared}) on pfn {}: CPU0 read {same_cpu:#x}, CPU1 read \
             {other_cpu:#x}, equivalent {}, lines {:?} and {:?}",
            pfn.raw(),
            m.equivalent(va1, va2),
            m.line_id(va1, pa),
            m.line_id(va2, pa)
        ))
    }
}

/// Cases of the property per preset (fewer on rp3440, whose 32 MiB caches are slow to build).
/// The match is exhaustive, so a new preset does not compile until it has its property below.
fn cases(preset: Preset) -> u64 {
    match preset {
        Preset::Tiny | Preset::Pa8700 | Preset::Pa8800 | Preset::Pa8800Boundary64M | Preset::Pipt => 300,
        Preset::Rp3440 => 60,
    }
}

macro_rules! congruence_property {
    ($($name:ident: $preset:expr;)*) => {$(
        #[test]
        fn $name() {
            fn prop(page1: u32, mode: u8, k: u16, frame: u16, word: u8) -> TestResult {
                shares_a_line_iff_congruent($preset, page1, mode, k, frame, word)
            }
            QuickCheck::new().tests(cases($preset)).quickcheck(prop as fn(u32, u8, u16, u16, u8) -> TestResult);
        }
    )*};
}

congruence_property! {
    i1_tiny_aliases_share_a_line_iff_congruent: Preset::Tiny;
    i1_pa8700_aliases_share_a_line_iff_congruent: Preset::Pa8700;
    i1_pa8800_aliases_share_a_line_iff_congruent: Preset::Pa8800;
    i1_pa8800_64m_aliases_share_a_line_iff_congruent: Preset::Pa8800Boundary64M;
    i1_pipt_aliases_always_share_a_line: Preset::Pipt;
    i1_rp3440_aliases_share_a_line_iff_congruent: Preset::Rp3440;
}

/// (i2) pa8700: 6144 sets of 64 B make a 384 KiB way under a 4 MiB boundary. Two aliases 384
/// KiB apart index the same set but are not congruent: they hold separate lines, a store
/// through one is not seen through the other, and `fdc` through one leaves the other's line.
/// Aliases 4 MiB apart share the line.
#[test]
fn i2_pa8700_aliases_one_way_apart_share_a_set_but_not_a_line() {
    let mut m = machine(Preset::Pa8700);
    let way = 384 * 1024;
    assert_eq!(m.config().line_bytes * m.config().sets as u64, way);
    let va1 = A1.with_word(WORD);
    let va2 = va1.add_bytes(way);
    let va_eq = va1.add_bytes(SHM_COLOUR);
    for va in [va1, va2, va_eq] {
        map(&mut m, va, P);
    }
    let pa = P.word(WORD);
    m.mem.write(pa, OLD_P);

    assert_eq!(m.set_index(va1, pa), m.set_index(va2, pa));
    assert_ne!(m.line_id(va1, pa), m.line_id(va2, pa));
    assert!(!m.equivalent(va1, va2));
    assert_eq!(m.line_id(va1, pa), m.line_id(va_eq, pa));
    assert!(m.equivalent(va1, va_eq));

    const NEW: u64 = 0x8700;
    m.store(C0, SP, va1, NEW).unwrap();
    assert_eq!(m.load(C0, SP, va2), Ok(OLD_P));
    assert_eq!(m.load(C1, SP, va2), Ok(OLD_P));
    assert_eq!(m.load(C1, SP, va_eq), Ok(NEW));
    // Both lines sit in one set; flushing through va2 writes back nothing of va1's.
    assert_eq!(line(&m, C0, va2, pa), Line::Clean(OLD_P));
    m.fdc(C0, SP, va2);
    assert_eq!(m.mem.read(pa), NEW, "the snoop for va_eq wrote va1's line back");
    assert_eq!(line(&m, C0, va1, pa), Line::Clean(NEW));
    assert_eq!(line(&m, C0, va2, pa), Line::Absent);
    // fdce empties the set whatever the lines' virtual ways.
    m.store(C0, SP, va1, NEW + 1).unwrap();
    assert_eq!(m.load(C0, SP, va2), Ok(NEW));
    let set = m.set_index(va1, pa);
    m.fdce(C0, C0, set);
    assert_eq!(line(&m, C0, va1, pa), Line::Absent);
    assert_eq!(line(&m, C0, va2, pa), Line::Absent);
    assert_eq!(m.mem.read(pa), NEW + 1);
}

/// (i3) rp3440: an 8 MiB way (65536 sets of 128 B) under a 4 MiB boundary. The set bit above
/// the boundary comes from the physical address: a page in the second 4 MiB of memory is
/// cached in the upper half of the sets, for every alias of it, and its aliases still share a
/// line exactly when congruent.
#[test]
fn i3_rp3440_uses_the_sets_above_the_boundary_through_physical_bits() {
    let mut m = machine(Preset::Rp3440);
    assert_eq!(m.config().sets, 65536);
    let half = 32768;
    let low = P;
    let high = Pfn::new(P.raw() + (SHM_COLOUR / PAGE_SIZE) as u32);
    let va1 = A1.with_word(WORD);
    let va_eq = va1.add_bytes(SHM_COLOUR);
    let va2 = va1.add_bytes(PMD_SIZE);
    let (pa_low, pa_high) = (low.word(WORD), high.word(WORD));

    assert!(m.set_index(va1, pa_low) < half);
    assert_eq!(m.set_index(va1, pa_high), m.set_index(va1, pa_low) + half);
    assert_eq!(m.set_index(va_eq, pa_high), m.set_index(va1, pa_high));
    assert!(m.set_index(va2, pa_high) >= half);
    assert_ne!(m.set_index(va2, pa_high), m.set_index(va1, pa_high));
    assert_eq!(m.line_id(va1, pa_high).alias, 0);

    for va in [va1, va_eq, va2] {
        map(&mut m, va, high);
    }
    m.mem.write(pa_high, OLD_Q);
    const NEW: u64 = 0x3440;
    m.store(C0, SP, va1, NEW).unwrap();
    assert_eq!(m.last_read.map(|r| r.set as usize), Some(m.set_index(va1, pa_high)));
    assert!(m.last_read.is_some_and(|r| r.set as usize >= half));
    assert_eq!(m.load(C0, SP, va2), Ok(OLD_Q));
    assert_eq!(m.load(C1, SP, va2), Ok(OLD_Q));
    assert_eq!(m.load(C1, SP, va_eq), Ok(NEW));
}
