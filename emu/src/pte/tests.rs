//! Tests of the PTE layouts: encodings, round trips and the `translation_exists` filters.

use super::*;

const BOTH: [PteLayout; 2] = [PteLayout::Linux2614, PteLayout::Current];

/// A valid kind for `layout`, built from primitive inputs: `sel` picks the variant, `a` and
/// `b` supply the fields (reduced into range), `c` the exclusive marker.
fn arbitrary_kind(layout: PteLayout, sel: u8, a: u32, b: u32, c: bool) -> PteKind {
    let flags = PteFlags::from_bits_truncate(u64::from(b) & PteFlags::MASK);
    let variants = match layout {
        PteLayout::Linux2614 => 5,
        PteLayout::Current => 3,
    };
    match sel % variants {
        0 => PteKind::None,
        1 => PteKind::Present { pfn: Pfn::new(a & ((1 << 20) - 1)), flags: flags | PteFlags::PRESENT },
        2 => {
            let mut ty = (b >> 12) as u8 & 0x1f;
            let offset = a % (layout.max_swap_offset() + 1);
            let exclusive = c && layout == PteLayout::Current;
            if ty == 0 && offset == 0 && !exclusive {
                ty = 1; // the all-zero swap entry is the none pte
            }
            PteKind::Swap { ty, offset, exclusive }
        }
        3 => PteKind::FlushOnly {
            pfn: Pfn::new(a & ((1 << 20) - 1)),
            flags: (flags | PteFlags::FLUSH) - PteFlags::PRESENT,
        },
        _ => PteKind::File { pgoff: a % (layout.max_file_pgoff().unwrap() + 1) },
    }
}

fn round_trips(layout: PteLayout, kind: PteKind) -> bool {
    let pte = layout.encode(kind);
    layout.is_encodable(kind) && layout.decode(pte) == kind && layout.encode(layout.decode(pte)) == pte
}

quickcheck::quickcheck! {
    fn pte_round_trip_linux2614(sel: u8, a: u32, b: u32, c: bool) -> bool {
        round_trips(PteLayout::Linux2614, arbitrary_kind(PteLayout::Linux2614, sel, a, b, c))
    }

    fn pte_round_trip_current(sel: u8, a: u32, b: u32, c: bool) -> bool {
        round_trips(PteLayout::Current, arbitrary_kind(PteLayout::Current, sel, a, b, c))
    }

    fn pte_round_trip_full_range_pfn(a: u32, b: u32) -> bool {
        let flags = PteFlags::from_bits_truncate(u64::from(b)) | PteFlags::PRESENT;
        BOTH.iter().all(|&l| round_trips(l, PteKind::Present { pfn: Pfn::new(a), flags }))
    }

    /// Every 32-bit word decodes to an encodable kind, and re-encoding gives the word back
    /// (a file pte loses the low bits other than `_PAGE_FILE`, which decode ignores).
    fn pte_decode_of_any_32bit_word_is_canonical(v: u32) -> bool {
        let pte = Pte(u64::from(v));
        BOTH.iter().all(|&l| {
            let kind = l.decode(pte);
            let back = l.encode(kind);
            let expected = match kind {
                PteKind::File { .. } => Pte(pte.0 & !0x7df),
                _ => pte,
            };
            l.is_encodable(kind) && back == expected && l.decode(back) == kind
                && l.pte_file(pte) == matches!(kind, PteKind::File { .. })
                && l.pte_present(pte) == matches!(kind, PteKind::Present { .. })
        })
    }

    /// The 2.6.14 filter is exactly "nonzero" in both layouts.
    fn pte_filter_2614_is_nonzero(v: u64) -> bool {
        BOTH.iter().all(|&l| l.translation_filter_2614(Pte(v)) == (v != 0))
    }
}

#[test]
fn linux2614_swap_slots_16n_to_16n_plus_15_look_like_pfn_n() {
    let l = PteLayout::Linux2614;
    for n in 0..64u32 {
        for k in 0..16u32 {
            for ty in 0..3u8 {
                let offset = 16 * n + k;
                if ty == 0 && offset == 0 {
                    continue; // value 0: the none pte, not a swap entry
                }
                let pte = l.swp_entry(ty, offset);
                assert_eq!(l.decode(pte), PteKind::Swap { ty, offset, exclusive: false });
                assert_eq!(pte.raw_pfn(), Pfn::new(n), "{pte:?}");
                assert!(!l.pte_none(pte) && !l.pte_present(pte) && !l.pte_file(pte));
                assert!(l.translation_matches_2614(pte, Pfn::new(n)), "{pte:?}");
                assert!(!l.translation_matches_2615(pte, Pfn::new(n)), "{pte:?}");
                assert!(!l.translation_matches_2614(pte, Pfn::new(n + 1)));
            }
        }
    }
}

#[test]
fn linux2614_file_pte_raw_pfn_is_half_the_pgoff() {
    let l = PteLayout::Linux2614;
    let max = l.max_file_pgoff().unwrap();
    for pgoff in (0..512).chain([max - 1, max]) {
        let pte = l.pgoff_to_pte(pgoff).unwrap();
        assert_eq!(l.decode(pte), PteKind::File { pgoff });
        assert!(l.pte_file(pte) && !l.pte_none(pte) && !l.pte_present(pte));
        assert_eq!(pte.raw_pfn(), Pfn::new(pgoff >> 1));
        assert!(l.translation_matches_2614(pte, Pfn::new(pgoff >> 1)));
        assert!(!l.translation_matches_2615(pte, Pfn::new(pgoff >> 1)));
    }
    assert_eq!(l.pgoff_to_pte(max + 1), None);
}

#[test]
fn current_swap_raw_pfn_is_offset_over_32() {
    let l = PteLayout::Current;
    let max = l.max_swap_offset();
    for offset in (1..4096).chain([max - 1, max]) {
        for (ty, exclusive) in [(0, false), (7, true), (31, false)] {
            let pte = l.swp_entry_exclusive(ty, offset, exclusive);
            assert_eq!(pte.raw_pfn(), Pfn::new(offset >> 5), "{pte:?}");
            assert_eq!(l.decode(pte), PteKind::Swap { ty, offset, exclusive });
            assert!(l.translation_matches_2614(pte, Pfn::new(offset >> 5)));
        }
    }
}

#[test]
fn current_layout_has_no_file_or_flush_ptes() {
    let l = PteLayout::Current;
    assert_eq!(l.pgoff_to_pte(0), None);
    assert_eq!(l.max_file_pgoff(), None);
    // Old FILE and FLUSH bit patterns are plain swap entries now, and not pte_none.
    for v in [0x20, 0x400, 0x420, 0x5420] {
        assert!(!l.pte_file(Pte(v)) && !l.pte_none(Pte(v)));
        assert!(matches!(l.decode(Pte(v)), PteKind::Swap { .. }));
    }
    assert!(l.pte_none(Pte::NONE));
    assert_eq!(l.after_get_and_clear(l.mk_pte(Pfn::new(9), PteFlags::PRESENT)), Pte::NONE);
}

#[test]
fn current_layout_bit_10_is_swap_offset_bit_3_so_the_2615_filter_does_not_fit_it() {
    let l = PteLayout::Current;
    let pte = l.swp_entry(1, 8 + 32 * 5);
    assert!(pte.has(PteFlags::FLUSH));
    assert_eq!(pte.raw_pfn(), Pfn::new(5));
    assert!(l.translation_matches_2615(pte, Pfn::new(5)));
    assert!(!l.translation_matches_2615(l.swp_entry(1, 32 * 5), Pfn::new(5)));
}

#[test]
fn flush_only_pte_is_none_yet_passes_both_filters() {
    let l = PteLayout::Linux2614;
    let rw = PteFlags::READ | PteFlags::WRITE | PteFlags::USER | PteFlags::ACCESSED;
    let old = l.mk_pte(Pfn::new(7), rw | PteFlags::PRESENT);
    let cleared = l.after_get_and_clear(old);
    assert_eq!(cleared, Pte((7 << 12) | 0x903 | 0x400));
    assert_eq!(l.decode(cleared), PteKind::FlushOnly { pfn: Pfn::new(7), flags: rw | PteFlags::FLUSH });
    assert!(l.pte_none(cleared));
    assert!(!l.pte_present(cleared) && !l.pte_file(cleared));
    assert!(l.translation_filter_2614(cleared));
    assert!(l.translation_matches_2614(cleared, Pfn::new(7)));
    assert!(l.translation_matches_2615(cleared, Pfn::new(7)));
    assert!(!l.translation_matches_2615(cleared, Pfn::new(8)));
    assert!(!l.translation_matches_2614(cleared, Pfn::new(8)));
    // A flush-only entry for pfn 0 with no other bits is still nonzero and not filtered.
    let bare = l.after_get_and_clear(Pte::NONE);
    assert_eq!(bare, Pte(0x400));
    assert!(l.pte_none(bare) && l.translation_filter_2614(bare));
    assert!(l.translation_matches_2615(bare, Pfn::new(0)));
}

#[test]
fn none_and_present_under_both_layouts() {
    for l in BOTH {
        assert!(l.pte_none(Pte::NONE));
        assert!(!l.translation_filter_2614(Pte::NONE));
        assert!(!l.translation_matches_2614(Pte::NONE, Pfn::new(0)));
        assert!(!l.translation_matches_2615(Pte::NONE, Pfn::new(0)));
        assert_eq!(l.decode(Pte::NONE), PteKind::None);
        let pte = l.mk_pte(Pfn::new(0x1234), PteFlags::PRESENT | PteFlags::READ);
        assert!(l.pte_present(pte) && !l.pte_none(pte) && !l.pte_file(pte));
        assert!(l.translation_matches_2614(pte, Pfn::new(0x1234)));
        assert!(l.translation_matches_2615(pte, Pfn::new(0x1234)));
        assert!(!l.translation_matches_2615(pte, Pfn::new(0x1235)));
    }
}

#[test]
fn exact_bit_positions() {
    let (old, cur) = (PteLayout::Linux2614, PteLayout::Current);
    assert_eq!(old.swp_entry(1, 9), Pte(1 | (1 << 6) | (8 << 8)));
    assert_eq!(cur.swp_entry(1, 9), Pte(1 | (1 << 5) | (1 << 10)));
    assert_eq!(cur.swp_entry_exclusive(1, 9, true), Pte(1 | (1 << 5) | (1 << 8) | (1 << 10)));
    assert_eq!(old.swp_entry_exclusive(1, 9, true), old.swp_entry(1, 9));
    assert_eq!(old.swp_entry(31, 7), Pte(0x1f | (7 << 6)));
    assert_eq!(cur.swp_entry(31, 7), Pte(0x1f | (7 << 5)));
    assert_eq!(old.pgoff_to_pte(3), Some(Pte((3 << 11) | 0x20)));
    assert_eq!(old.mk_pte(Pfn::new(5), PteFlags::PRESENT | PteFlags::READ), Pte(0x5201));
    assert_eq!(old.swp_entry(0, 0), Pte::NONE);
    // 2.6.14 swap entries never touch FILE, PRESENT or FLUSH.
    let max = old.swp_entry(31, old.max_swap_offset());
    assert_eq!(max, Pte(0xffff_f9df));
    assert!(!max.has(PteFlags::FILE) && !max.has(PteFlags::PRESENT));
    assert!(!max.has(PteFlags::FLUSH));
    // Current swap entries never touch PRESENT.
    let max = cur.swp_entry_exclusive(31, cur.max_swap_offset(), true);
    assert_eq!(max, Pte(0xffff_fdff));
}

#[test]
fn flag_helpers_keep_the_pfn() {
    let pte = Pte(0x7000 | 0x201);
    assert_eq!(pte.flags(), PteFlags::PRESENT | PteFlags::READ);
    assert_eq!(pte.with_flags(PteFlags::WRITE), Pte(0x7203));
    assert_eq!(pte.without_flags(PteFlags::PRESENT), Pte(0x7001));
    let stray = PteFlags::from_bits_retain(0x1000) | PteFlags::DIRTY;
    assert_eq!(pte.with_flags(stray), Pte(0x7221));
    assert_eq!(pte.without_flags(PteFlags::from_bits_retain(0x7000)), pte);
    assert_eq!(PteFlags::FILE, PteFlags::DIRTY);
    assert_eq!(PteFlags::all().bits(), PteFlags::MASK);
    assert_eq!(format!("{pte:?}"), "Pte(0x7201)");
}

#[test]
#[should_panic(expected = "swap type")]
fn swap_type_must_fit_five_bits() {
    PteLayout::Linux2614.swp_entry(32, 1);
}

#[test]
#[should_panic(expected = "swap offset")]
fn swap_offset_must_fit_the_word() {
    let l = PteLayout::Current;
    l.swp_entry(1, l.max_swap_offset() + 1);
}

#[test]
#[should_panic(expected = "has no Current encoding")]
fn flush_only_has_no_current_encoding() {
    PteLayout::Current.encode(PteKind::FlushOnly { pfn: Pfn::new(1), flags: PteFlags::FLUSH });
}

#[test]
fn unencodable_kinds_are_reported() {
    let (old, cur) = (PteLayout::Linux2614, PteLayout::Current);
    let zero_swap = PteKind::Swap { ty: 0, offset: 0, exclusive: false };
    assert!(!old.is_encodable(zero_swap) && !cur.is_encodable(zero_swap));
    assert!(cur.is_encodable(PteKind::Swap { ty: 0, offset: 0, exclusive: true }));
    assert!(!old.is_encodable(PteKind::Swap { ty: 1, offset: 0, exclusive: true }));
    assert!(!old.is_encodable(PteKind::Present { pfn: Pfn::new(1), flags: PteFlags::READ }));
    assert!(!cur.is_encodable(PteKind::File { pgoff: 0 }));
    assert!(old.is_encodable(PteKind::File { pgoff: 0 }));
}
