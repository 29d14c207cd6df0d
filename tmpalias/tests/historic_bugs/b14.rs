//! Hypothesis B14: the PA8800 alias boundary lies above 4 MiB, so tmpalias flushes cannot work
//! there (docs/FIDELITY.md: boundaries "up to 128MB" were tried, "It might be that using 64 MB
//! works fine").
//!
//! These tests run on `pa8800` (the kernel's 4 MiB boundary) and on the hypothetical
//! `pa8800-64m` (the same caches under a 64 MiB boundary) rather than on `tiny`. On
//! `pa8800-64m` no kernel is clean: it colours user mappings modulo 4 MiB, which leaves two
//! shared mappings of one page 4 MiB apart inequivalent, and its tmpalias window (congruent
//! with the user address modulo 4 MiB only) flushes a line the user alias never used. On
//! `pa8800` the same runs are coherent.

use vipt_emu::addr::SHM_COLOUR;
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::machine::tmpalias::{Half, alias_addr};
use vipt_emu::mm::{Executor, Kernel};

use crate::rig::*;

fn boot(name: &str, preset: Preset) -> Kernel {
    lineage(name).boot(preset.config(), Box::new(FirstChooser))
}

/// A shares the file page at the kernel's colour, B maps it MAP_FIXED 4 MiB further (a colour
/// the kernel accepts). A store through A, with nothing in between, reaches B's load exactly
/// when the boundary is 4 MiB: on `pa8800-64m` even `whole-cache` leaves B reading the old
/// value, as no kernel routine runs between the two accesses.
#[test]
fn b14_shared_mappings_4m_apart_are_inequivalent_above_a_4m_boundary() {
    for name in FIXED {
        for (preset, seen) in [(Preset::Pa8800, X), (Preset::Pa8800Boundary64M, OLD)] {
            let k = boot(name, preset);
            let f = file(&k, 1, 0);
            let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
            let mut ex = Executor::new(&k);
            let va_a = map_file(&mut ex, C0, a, f, true);
            let va_b = mapped(mmap_file(&mut ex, C1, b, f, true, Some(va_a.add_bytes(SHM_COLOUR))));
            assert_eq!(k.machine().equivalent(va_a, va_b), preset == Preset::Pa8800);
            assert_eq!((load(&mut ex, C0, a, va_a), load(&mut ex, C1, b, va_b)), (OLD, OLD));
            store(&mut ex, C0, a, va_a, X);
            assert_eq!(load(&mut ex, C1, b, va_b), seen, "{name} on {preset}");
        }
    }
}

/// A stores into its shared mapping, then `write(2)` stores NEW into the same word. The current
/// kernel's `flush_dcache_page` flushes A's colour through the tmpalias window: on `pa8800`
/// that evicts A's dirty line and A reads NEW; on `pa8800-64m` the window address is not
/// congruent with A's modulo 64 MiB, the flush acts on another line, and A keeps reading its
/// own stale store.
#[test]
fn b14_tmpalias_flush_misses_the_user_line_above_a_4m_boundary() {
    for (preset, seen) in [(Preset::Pa8800, NEW), (Preset::Pa8800Boundary64M, X)] {
        let k = boot("linux-6.x", preset);
        let f = file(&k, 1, 0);
        let a = k.create_mm().unwrap();
        let mut ex = Executor::new(&k);
        let va_a = map_file(&mut ex, C0, a, f, true);
        let window = alias_addr(va_a, Half::To);
        assert_eq!(window.colour(SHM_COLOUR), va_a.colour(SHM_COLOUR));
        assert_eq!(k.machine().equivalent(va_a, window), preset == Preset::Pa8800);
        store(&mut ex, C0, a, va_a, X);
        write(&mut ex, C2, f, 0, NEW);
        assert_eq!(load(&mut ex, C0, a, va_a), seen, "linux-6.x on {preset}");
    }
}
