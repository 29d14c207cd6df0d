//! Issue 7, family 1: software young/dirty bits and the futex retry loop, as deterministic
//! single-CPU sequences on the `pipt` machine with [`FirstChooser`].
//!
//! A load faults a shared file page in: its PTE is present, young, writable and clean. A futex
//! store to it then traps (the miss handler maps a clean page read-only) and the futex path calls
//! `fixup_user_fault`. Whether the retried store can ever succeed depends on who marks the PTE
//! dirty.

use vipt_emu::addr::{CpuId, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::mm::mmap::MmapArgs;
use vipt_emu::mm::{Errno, Executor, Kernel, MmId, Op, OpResult};
use vipt_emu::pte::PteFlags;
use vipt_tmpalias::Registry;

const C0: CpuId = CpuId(0);
const OLD: u64 = 0x01d0;
const NEW: u64 = 0x0f07;

fn kernel(name: &str) -> Kernel {
    let l = Registry::builtin().get(name).cloned().unwrap_or_else(|| panic!("no lineage {name}"));
    l.boot(Preset::Pipt.config(), Box::new(FirstChooser))
}

fn run(ex: &mut Executor<'_>, op: Op) -> OpResult {
    ex.spawn(C0, op);
    ex.run_to_completion(C0).unwrap()
}

/// Maps one page of a file whose word 0 holds [`OLD`] and loads it; returns the mapping.
fn mapped_and_read(k: &Kernel, ex: &mut Executor<'_>) -> (MmId, VirtAddr) {
    let f = k.create_file(1, 0);
    k.state().files[f.index()].disk[0][0] = OLD;
    let mm = k.create_mm().unwrap();
    let args = MmapArgs { pages: 1, file: Some((f, 0)), shared: true, writable: true, fixed: None };
    let OpResult::Mapped(va) = run(ex, Op::Mmap { mm, args }) else { panic!("mmap failed") };
    assert_eq!(run(ex, Op::Load { mm, va }), OpResult::Value(OLD));
    (mm, va)
}

fn pte_flags(k: &Kernel, mm: MmId, va: VirtAddr) -> PteFlags {
    k.peek_pte(mm, va).flags()
}

/// The read fault leaves the PTE young and clean on every `swbits-*` kernel.
#[test]
fn a_read_fault_maps_young_and_clean() {
    for name in ["swbits-gup", "swbits-fault", "swbits-gup-marks"] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let (mm, va) = mapped_and_read(&k, &mut ex);
        let flags = pte_flags(&k, mm, va);
        assert!(flags.contains(PteFlags::ACCESSED | PteFlags::WRITE), "{name}: {flags:?}");
        assert!(!flags.contains(PteFlags::DIRTY), "{name}: {flags:?}");
    }
}

/// Before 2.6.38: gup finds the page present and writable and returns without marking it
/// dirty, so every retry traps again and the futex gives up with `EAGAIN` (a livelock in the
/// real kernel, which had no bound). The word keeps its old value.
#[test]
fn gup_that_does_not_mark_dirty_livelocks_the_futex() {
    let k = kernel("swbits-gup");
    let mut ex = Executor::new(&k);
    let (mm, va) = mapped_and_read(&k, &mut ex);
    assert_eq!(run(&mut ex, Op::Futex { mm, va, value: NEW }), OpResult::Err(Errno::Again));
    assert!(!pte_flags(&k, mm, va).contains(PteFlags::DIRTY));
    assert_eq!(run(&mut ex, Op::Load { mm, va }), OpResult::Value(OLD));
    // An ordinary store takes the full fault path, which marks the PTE; it succeeds.
    assert_eq!(run(&mut ex, Op::Store { mm, va, value: NEW }), OpResult::Value(NEW));
    assert!(pte_flags(&k, mm, va).contains(PteFlags::DIRTY));
}

/// `fixup_user_fault` through `handle_mm_fault`, or a gup that marks: the retry succeeds.
#[test]
fn the_fixed_kernels_complete_the_futex_store() {
    for name in ["swbits-fault", "swbits-gup-marks"] {
        let k = kernel(name);
        let mut ex = Executor::new(&k);
        let (mm, va) = mapped_and_read(&k, &mut ex);
        assert!(matches!(run(&mut ex, Op::Futex { mm, va, value: NEW }), OpResult::Value(_)), "{name}");
        assert!(pte_flags(&k, mm, va).contains(PteFlags::DIRTY | PteFlags::ACCESSED), "{name}");
        assert_eq!(run(&mut ex, Op::Load { mm, va }), OpResult::Value(NEW), "{name}");
    }
}
