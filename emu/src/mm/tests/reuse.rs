//! The write-fault reuse decision (`wp_can_reuse_anon_folio`).

use super::{C0, C1, anon, kernel, mapped};
use crate::arch::GenericHooks;
use crate::config::Preset;
use crate::mm::vmscan::ReclaimTarget;
use crate::mm::{Action, Executor, Op, OpResult};

/// A page shared by fork and swapped out from both processes: the parent swaps it in
/// (read-only, still in the swap cache for the child's entry), the child's swap-in frees the
/// swap cache and, holding the page lock, is about to map it. A write fault of the parent then
/// finds the page mapped once and out of the swap cache, but locked and referenced by that
/// swap-in: it copies instead of reusing, so the child keeps the old contents.
#[test]
fn a_write_fault_copies_a_page_another_swap_in_is_mapping() {
    let k = kernel(Preset::Pipt, Box::new(GenericHooks));
    let mut ex = Executor::new(&k);
    let run = |ex: &mut Executor<'_>, cpu, op| {
        ex.spawn(cpu, op);
        ex.run_to_completion(cpu).unwrap()
    };
    let mm = k.create_mm().unwrap();
    let va = mapped(run(&mut ex, C0, Op::Mmap { mm, args: anon(1) }));
    run(&mut ex, C0, Op::Store { mm, va, value: 7 });
    let OpResult::Forked(child) = run(&mut ex, C0, Op::Fork { mm }) else { panic!() };
    assert_eq!(run(&mut ex, C0, Op::Reclaim { target: ReclaimTarget::User { mm, va } }), OpResult::Done);
    assert_eq!(run(&mut ex, C0, Op::Load { mm, va }), OpResult::Value(7));
    ex.spawn(C1, Op::Load { mm: child, va });
    let at_install = |a: &Action| matches!(a, Action::PteWrite { mm: m, .. } if *m == child);
    assert_eq!(ex.run_until(C1, at_install).unwrap(), None);
    let page = k.follow_pfn(mm, va).unwrap();
    assert_eq!(k.page(page).mapcount, 1, "only the parent maps it yet");
    assert_eq!(run(&mut ex, C0, Op::Store { mm, va, value: 8 }), OpResult::Value(8));
    assert_ne!(k.follow_pfn(mm, va), Some(page), "the parent got a copy");
    assert_eq!(ex.run_to_completion(C1).unwrap(), OpResult::Value(7));
    assert_eq!(k.follow_pfn(child, va), Some(page));
    assert_eq!(run(&mut ex, C1, Op::Load { mm: child, va }), OpResult::Value(7));
}
