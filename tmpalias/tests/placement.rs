//! `arch_get_unmapped_area` per era: where `mmap` puts a file mapping decides whether two
//! mappings of one file page are equivalent aliases.

use vipt_emu::addr::{CpuId, PAGE_SIZE, SHM_COLOUR, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, Executor, Op, OpResult};
use vipt_tmpalias::Registry;

/// Maps 2 pages of a 3-page file (colour 1) at page offset 0 in one mm and at page offset 1
/// in another; returns where file page 1 lands in each, and what a shared `MAP_FIXED` one page
/// off the file's colour returns.
fn place(lineage: &str) -> (VirtAddr, VirtAddr, OpResult) {
    let l = Registry::builtin().get(lineage).unwrap().clone();
    let k = l.boot(Preset::Tiny.config(), Box::new(FirstChooser));
    let f = k.create_file(3, 1);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let mut ex = Executor::new(&k);
    let mut mmap = |mm, pgoff, fixed| {
        let args = MmapArgs { pages: 2, file: Some((f, pgoff)), shared: true, writable: true, fixed };
        ex.spawn(CpuId(0), Op::Mmap { mm, args });
        ex.run_to_completion(CpuId(0)).unwrap()
    };
    let at = |r: OpResult| match r {
        OpResult::Mapped(va) => va,
        other => panic!("{lineage}: {other:?}"),
    };
    let va_a = at(mmap(a, 0, None));
    let va_b = at(mmap(b, 1, None));
    let c = k.create_mm().unwrap();
    let off_colour = VirtAddr::new(16 * SHM_COLOUR + 2 * PAGE_SIZE);
    let fixed = mmap(c, 0, Some(off_colour));
    (va_a.add_pages(1), va_b, fixed)
}

/// Today's policy: page 1 is congruent in both mappings (file colour plus page offset), and a
/// shared `MAP_FIXED` at another colour is refused.
#[test]
fn current_placement_colours_by_page_offset_and_refuses_fixed_aliases() {
    let (p_a, p_b, fixed) = place("linux-6.x");
    assert_eq!(p_a.colour(SHM_COLOUR), p_b.colour(SHM_COLOUR));
    assert_eq!(p_a.colour(SHM_COLOUR), 2 * PAGE_SIZE, "file colour 1 + page 1");
    assert_eq!(fixed, OpResult::Err(Errno::Inval));
}

/// 2.6.12's `get_shared_area`, unchanged in 3.0 to 3.6 (the `tmpalias` lineages), starts every
/// mapping of the file at the file's colour whatever its page offset: page 1 lands a page apart
/// in the two mappings (inequivalent on `tiny`), and `MAP_FIXED` is taken as asked.
#[test]
fn placement_of_2_6_and_3_0_ignores_the_page_offset_and_checks_no_fixed_colour() {
    for name in ["linux-2.6.14", "linux-2.6.15", "recheck", "tmpalias", "tmpalias+purge", "tmpalias+precopy"]
    {
        let (p_a, p_b, fixed) = place(name);
        assert_eq!(p_a.colour(SHM_COLOUR), 2 * PAGE_SIZE, "{name}");
        assert_eq!(p_b.colour(SHM_COLOUR), PAGE_SIZE, "{name}: the mapping at offset 1 starts at colour 1");
        assert_eq!(fixed, OpResult::Mapped(VirtAddr::new(16 * SHM_COLOUR + 2 * PAGE_SIZE)), "{name}");
    }
}

/// Where `MAP_SHARED | MAP_ANONYMOUS` lands after a one-page private mapping (so that first
/// fit is one page past colour 0), and what a `MAP_FIXED` one at an odd colour returns.
fn place_shared_anon(lineage: &str) -> (VirtAddr, VirtAddr, OpResult) {
    let l = Registry::builtin().get(lineage).unwrap().clone();
    let k = l.boot(Preset::Tiny.config(), Box::new(FirstChooser));
    let mm = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let mut mmap = |shared, fixed| {
        let args = MmapArgs { pages: 1, file: None, shared, writable: true, fixed };
        ex.spawn(CpuId(0), Op::Mmap { mm, args });
        ex.run_to_completion(CpuId(0)).unwrap()
    };
    let at = |r: OpResult| match r {
        OpResult::Mapped(va) => va,
        other => panic!("{lineage}: {other:?}"),
    };
    let private = at(mmap(false, None));
    let va = at(mmap(true, None));
    let odd = VirtAddr::new(16 * SHM_COLOUR + 3 * PAGE_SIZE);
    (private, va, mmap(true, Some(odd)))
}

/// Shared anonymous memory has no file when it is placed: colour 0 in the 2.6 and 3.0
/// `get_shared_area(NULL, ...)` and since the 6.4 rewrite 567b35159e76 (`GET_FILP_PGOFF(NULL)`
/// is 0), first fit in the `GET_LAST_MMAP` era (3.14 to 6.3) that `linux-6.0` models
/// (`last_mmap` 0: no alignment). `MAP_FIXED` of it is never refused for its colour in the eras
/// modelled: 2.6 and 3.0 check nothing, the `GET_LAST_MMAP` check and today's need a file (only
/// 3.9 to 3.13, which no lineage stands for, checked shared anonymous memory too).
#[test]
fn shared_anonymous_memory_is_placed_at_colour_0_except_in_the_last_mmap_era() {
    for name in ["linux-2.6.14", "recheck", "tmpalias", "linux-6.10", "linux-6.x", "whole-cache"] {
        let (private, va, fixed) = place_shared_anon(name);
        assert_ne!(private.add_pages(1).colour(SHM_COLOUR), 0);
        assert_eq!(va.colour(SHM_COLOUR), 0, "{name}");
        assert_eq!(fixed, OpResult::Mapped(VirtAddr::new(16 * SHM_COLOUR + 3 * PAGE_SIZE)), "{name}");
    }
    let (private, va, fixed) = place_shared_anon("linux-6.0");
    assert_eq!(va, private.add_pages(1), "first fit, right after the private page");
    assert!(matches!(fixed, OpResult::Mapped(_)));
}
