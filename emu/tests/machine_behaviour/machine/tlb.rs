//! TLB entries that outlive their PTE: (e) a stale entry on another CPU keeps sending stores
//! to the old page until purged; (h) a store through an entry with the D bit clear traps.

use vipt_emu::machine::{FlushOutcome, Trap};
use vipt_emu::pte::PteFlags;

use super::Rig;
use crate::common::*;

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
