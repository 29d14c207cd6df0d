//! Historic bug B21.
//!
//! 2.x accept a shared MAP_FIXED at another colour and flush only the first mapping of i_mmap
//! that maps the page (B, at colour 1): A's line at colour 0 stays stale. 6.x refuses the
//! mapping and flushes every private mapping and one shared mapping per colour.

use vipt_emu::addr::VirtAddr;
use vipt_emu::mm::{Errno, Executor, OpResult};

use crate::rig::*;

/// Colour 1 on tiny, colour 0x101000 of 4 MiB: not congruent with the file's colour 0.
const ODD: VirtAddr = VirtAddr::new(0x0050_1000);

/// A shared at colour 0, B `MAP_FIXED` at colour 1 (the page's kernel alias at colour 3), both
/// read OLD, then write(2) stores NEW: what A and B read after it.
fn non_congruent_pair_after_write(name: &str) -> (u64, u64) {
    let k = kernel(name);
    let f = file(&k, 1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let mut ex = Executor::new(&k);
    let va_a = map_file(&mut ex, C0, a, f, true);
    let va_b = mapped(mmap_file(&mut ex, C1, b, f, true, Some(ODD)));
    assert_eq!((load(&mut ex, C0, a, va_a), load(&mut ex, C1, b, va_b)), (OLD, OLD));
    let p = page_of(&k, f);
    assert_eq!([user_colour(va_a), user_colour(va_b), kernel_colour(p)], [0, 1, 3], "{name}");
    write(&mut ex, C2, f, 0, NEW);
    (load(&mut ex, C0, a, va_a), load(&mut ex, C1, b, va_b))
}

/// 2.x flush only the first mapping, B: A reads OLD, B NEW.
#[test]
fn b21_non_congruent_map_fixed_alias_is_left_stale() {
    for name in ["linux-2.4", "linux-2.6.14", "linux-2.6.15", "recheck"] {
        assert_eq!(non_congruent_pair_after_write(name), (OLD, NEW), "{name}");
    }
}

/// 6.x/whole-cache refuse B's MAP_FIXED; B congruent plus private C at colour 1: all three read NEW.
#[test]
fn b21_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        let k = kernel(name);
        let f = file(&k, 1, 0);
        let (a, b, c) = (k.create_mm().unwrap(), k.create_mm().unwrap(), k.create_mm().unwrap());
        let mut ex = Executor::new(&k);
        let va_a = map_file(&mut ex, C0, a, f, true);
        assert_eq!(mmap_file(&mut ex, C1, b, f, true, Some(ODD)), OpResult::Err(Errno::Inval), "{name}");
        let va_b = map_file(&mut ex, C1, b, f, true);
        let va_c = mapped(mmap_file(&mut ex, C3, c, f, false, Some(ODD)));
        assert_eq!([user_colour(va_a), user_colour(va_b), user_colour(va_c)], [0, 0, 1]);
        let loads =
            |ex: &mut Executor<'_>| [load(ex, C0, a, va_a), load(ex, C1, b, va_b), load(ex, C3, c, va_c)];
        assert_eq!(loads(&mut ex), [OLD; 3]);
        write(&mut ex, C2, f, 0, NEW);
        assert_eq!(loads(&mut ex), [NEW; 3], "{name}");
    }
}

/// 3.0 (the `tmpalias` lineages) takes B's `MAP_FIXED` at another colour too, but its
/// `flush_dcache_page` flushes one mapping per colour through the tmpalias window: both read NEW.
#[test]
fn b21_tmpalias_takes_the_non_congruent_alias_and_flushes_every_colour() {
    for name in ["tmpalias", "tmpalias+purge", "tmpalias+precopy"] {
        assert_eq!(non_congruent_pair_after_write(name), (NEW, NEW), "{name}");
    }
}
