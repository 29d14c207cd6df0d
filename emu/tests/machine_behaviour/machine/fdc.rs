//! `fdc` and the translation it goes through: (b) without a translation it is nullified and
//! leaves the dirty line alone; (c) through a translation to another page it acts on that
//! page only; (d) a 2.6.14 `_PAGE_FLUSH` PTE still lets it flush the old page, a current
//! cleared PTE does not.

use vipt_emu::machine::{FlushOutcome, MissPolicy, Trap};
use vipt_emu::pte::{Pte, PteFlags, PteKind, PteLayout};
use vipt_emu::tlb::{Rights, TlbEntry};

use super::Rig;
use crate::common::*;

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
    assert!(r.m.speculate(C0).is_none());
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
