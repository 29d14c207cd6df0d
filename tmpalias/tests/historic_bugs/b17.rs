//! Historic bug B17.
//!
//! 5.19–6.9 (`linux-6.0`): ptep_clear_flush is the generic one and flushes no cache, and
//! flush_cache_page_if_present (COW copies, ptrace peeks and pokes) flushes the user alias only
//! when the PTE at that address passes `pte_needs_flush`. (b) a store between reclaim's
//! flush_cache_page and ptep_clear_flush stays dirty on a page that is freed and given to
//! another process. (c) a COW copy of a page-cache page into a private mapping sees that
//! mapping's PTE not present yet, skips the source flush and copies stale memory past another
//! mapping's dirty line. Both happen with and without `parisc_requires_coherency()`. 6.10 and
//! later flush by physical address with no PTE check, in flush_cache_page,
//! copy_user_highpage and again in ptep_clear_flush.

use vipt_emu::config::{MachineConfig, Preset};
use vipt_emu::mm::vmscan::ReclaimTarget;
use vipt_emu::mm::{Action, Executor, LockId, Op, OpResult};

use crate::rig::*;

/// The two machines: `tiny`, and `tiny` taking the PA8800/PA8900 paths.
fn machines() -> [MachineConfig; 2] {
    [Preset::Tiny.config(), tiny_coherent()]
}

/// B17 (b) outcome: the swap slot's word 0, dirty lines left on the freed frame, what the
/// frame's next owner (same colour) reads first, what the original owner reads after swap-in.
#[derive(Debug, PartialEq, Eq)]
struct B17b {
    swap: u64,
    dirty_lines_left: usize,
    new_owner: u64,
    owner_reload: u64,
}

/// Where in reclaim the owner's second store lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReclaimWindow {
    /// After `page_referenced` aged the PTE, before `try_to_unmap`.
    AfterAging,
    /// After `try_to_unmap`'s `flush_cache_page`, before `ptep_clear_flush` clears the PTE.
    BeforeClear,
}

/// The owner (CPU0) stored V1 into anon page X (colour 0). Reclaim (CPU1) stops at `window`;
/// the owner stores V2; reclaim finishes (swap slot 1). Another process faults in an anon page
/// at colour 0 (it gets X's frame) and reads it; the owner reads its page back from swap.
fn b17b_scenario(name: &str, cfg: MachineConfig, window: ReclaimWindow) -> B17b {
    let k = kernel_on(name, cfg);
    let owner = k.create_mm().unwrap();
    let other = k.create_mm().unwrap();
    let mut ex = Executor::new(&k);
    let va = map_anon(&mut ex, C0, owner, 1);
    let vo = map_anon(&mut ex, C2, other, 2);
    assert_eq!(user_colour(va), user_colour(vo));
    store(&mut ex, C2, other, vo.add_pages(1), 0x0e); // the other's PTE page exists already
    store(&mut ex, C0, owner, va, V1);
    let x = k.follow_pfn(owner, va).unwrap();
    assert_ne!(user_colour(va), kernel_colour(x));
    let vipt_emu::mm::Mapping::Anon(anon) = k.page(x).mapping else { panic!("anon page") };

    ex.spawn(C1, Op::Reclaim { target: ReclaimTarget::User { mm: owner, va } });
    // The second anon_vma lock is try_to_unmap's.
    run_until_nth(&mut ex, C1, 2, |a| *a == Action::Lock(LockId::AnonVma(anon)));
    if window == ReclaimWindow::BeforeClear {
        // The first PTE write of try_to_unmap is ptep_clear_flush's.
        run_until_nth(&mut ex, C1, 1, |a| *a == Action::PteWrite { mm: owner, va });
    }
    store(&mut ex, C0, owner, va, V2);
    assert_eq!(ex.run_to_completion(C1), Ok(OpResult::Done));
    let swap = swap_word(&k, 1, 0);
    let dirty_lines_left = k.machine().dirty_lines_of(x);

    let new_owner = load(&mut ex, C2, other, vo);
    assert_eq!(k.follow_pfn(other, vo), Some(x), "the other process got X's frame");
    B17b { swap, dirty_lines_left, new_owner, owner_reload: load(&mut ex, C0, owner, va) }
}

/// 6.0: the owner stores between reclaim's flush and the clear, ptep_clear_flush flushes no
/// cache: swap gets V1, the freed frame keeps V2 dirty and its next owner reads V2.
#[test]
fn b17b_store_between_flush_and_clear_stays_dirty_on_the_freed_page() {
    for cfg in machines() {
        let got = b17b_scenario("linux-6.0", cfg.clone(), ReclaimWindow::BeforeClear);
        let want = B17b { swap: V1, dirty_lines_left: 1, new_owner: V2, owner_reload: V1 };
        assert_eq!(got, want, "coherency {}", cfg.requires_coherency);
    }
}

/// 6.0 ages through set_pte_at, which purges the owner's TLB entry: its next store walks the
/// table again, marks the PTE accessed, and reclaim's flush_cache_page catches it.
#[test]
fn b17b_a_store_after_aging_is_flushed_on_6_0() {
    for cfg in machines() {
        let got = b17b_scenario("linux-6.0", cfg.clone(), ReclaimWindow::AfterAging);
        let want = B17b { swap: V2, dirty_lines_left: 0, new_owner: 0, owner_reload: V2 };
        assert_eq!(got, want, "coherency {}", cfg.requires_coherency);
    }
}

/// Both windows on 6.x, 6.10 and whole-cache: swap gets V2, no dirty line is left, the next
/// owner reads 0.
#[test]
fn b17b_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for cfg in machines() {
            for window in [ReclaimWindow::AfterAging, ReclaimWindow::BeforeClear] {
                let got = b17b_scenario(name, cfg.clone(), window);
                let want = B17b { swap: V2, dirty_lines_left: 0, new_owner: 0, owner_reload: V2 };
                assert_eq!(got, want, "{name} coherency {} {window:?}", cfg.requires_coherency);
            }
        }
    }
}

/// B17 (c) outcome: what B's private copy holds at word 0, nullified flushes during the copy.
#[derive(Debug, PartialEq, Eq)]
struct B17c {
    copy: u64,
    nullified: u64,
}

/// A maps file page P shared and stores X into word 0 (a dirty line at colour 0); B maps P
/// privately at the same colour, never touched. B stores Y into word 1: a write fault on a
/// PTE that is not present, so the page is COWed from P with copy_user_highpage. B then loads
/// word 0.
fn b17c_scenario(name: &str, cfg: MachineConfig) -> B17c {
    let k = kernel_on(name, cfg);
    let f = file(&k, 1, 0);
    let (a, b) = (k.create_mm().unwrap(), k.create_mm().unwrap());
    let mut ex = Executor::new(&k);
    let va = map_file(&mut ex, C0, a, f, true);
    let vb = map_file(&mut ex, C1, b, f, false);
    assert_eq!(user_colour(va), user_colour(vb));
    store(&mut ex, C0, a, va, X);
    let p = page_of(&k, f);
    assert_ne!(user_colour(va), kernel_colour(p), "the user alias must not be the kernel's");
    let n0 = nullified(&k);
    store(&mut ex, C1, b, vb.with_word(1), Y);
    let nullified = nullified(&k) - n0;
    assert_ne!(k.follow_pfn(b, vb), Some(p), "B has its own copy");
    B17c { copy: load(&mut ex, C1, b, vb), nullified }
}

/// 6.0: flush_cache_page_if_present finds B's PTE not present and skips the source flush; the
/// copy through the kernel alias reads memory, which lacks A's X.
#[test]
fn b17c_cow_copy_skips_the_source_flush_while_the_faulting_pte_is_not_present() {
    for cfg in machines() {
        let got = b17c_scenario("linux-6.0", cfg.clone());
        assert_eq!(got, B17c { copy: OLD, nullified: 0 }, "coherency {}", cfg.requires_coherency);
    }
}

/// 6.x, 6.10 and whole-cache flush the source by physical address first: B's copy has X.
#[test]
fn b17c_fixed_in_linux_6x_and_whole_cache() {
    for name in FIXED {
        for cfg in machines() {
            let got = b17c_scenario(name, cfg.clone());
            assert_eq!(got, B17c { copy: X, nullified: 0 }, "{name} coherency {}", cfg.requires_coherency);
        }
    }
}
