//! (a) inequivalent aliases of one page disagree until flushed, and a stale clean line of the
//! second alias survives an `fdc` through the first; (g) equivalent aliases are coherent
//! across CPUs by snooping, inequivalent ones are not.

use vipt_emu::machine::FlushOutcome;

use super::Rig;
use crate::common::*;

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
