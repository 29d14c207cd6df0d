//! What a campaign finds with no help: seeds a plain `vipt campaign --scheduler window` run
//! reports, pinned so that a change to the generator, the scheduler or the model that loses
//! them shows up.

use vipt_emu::config::Preset;
use vipt_emu::mm::situations::{Situation, Situations};
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Family, Registry};

/// The seeds of 0..100 000 that fail on `linux-2.6.15` and pass on `recheck` with the window
/// scheduler on the fuzzing machine (`vipt compare linux-2.6.15 recheck --scheduler window
/// --seeds 0..100000`).
const B3_SEEDS: [u64; 5] = [9459, 38973, 41123, 44287, 80728];

/// B3 (a PTE changes between `translation_exists` and the `fdc`s that rely on it) found by a
/// campaign: each seed fails on 2.6.15, is clean on `recheck` (2.6.15 re-checking the PTE after
/// each flush and going on to the next mapping if it changed, its only difference), and its
/// 2.6.15 run met a PTE that changed between a CPU's check and its next flush.
#[test]
fn the_window_scheduler_finds_b3_seeds_that_recheck_fixes() {
    let r = Registry::builtin();
    let cfg = RunConfig { preset: Preset::Tiny, ..RunConfig::default() };
    for seed in B3_SEEDS {
        let old = run_seed(r.get("linux-2.6.15").unwrap(), &cfg, SchedulerKind::Window, seed);
        let fixed = run_seed(r.get("recheck").unwrap(), &cfg, SchedulerKind::Window, seed);
        assert!(!old.violations.is_empty(), "seed {seed}: linux-2.6.15 is clean");
        assert!(
            fixed.violations.is_empty() && fixed.unfinished.is_none(),
            "seed {seed}: recheck is not clean"
        );
        assert!(
            old.situations.get(Situation::PteChangedAfterCheck) > 0,
            "seed {seed}: no PTE changed after a check"
        );
    }
}

/// The sharing family's deferred-flush group: a page written by `write(2)` while its file has
/// no mapping (`PG_dcache_dirty`) is mapped again and faulted in, in about a third of the
/// scenarios (the mixed family: about 1 in 2 000).
#[test]
fn the_sharing_family_maps_pages_whose_flush_was_deferred() {
    let sharing = scenarios_meeting(Family::Sharing, Situation::DeferredThenMapped, 100);
    assert!(sharing >= 20, "{sharing} of 100 sharing scenarios met deferred_flush.then_mapped");
    assert!(scenarios_meeting(Family::Mixed, Situation::DeferredThenMapped, 100) < sharing / 4);
}

/// The sharing family's race group: a child's `access_process_vm` read of an anonymous page
/// (`flush_anon_page`) while its parent `munmap`s the page, which the default workloads never
/// bring about.
#[test]
fn the_sharing_family_zaps_a_page_inside_flush_anon_page() {
    let sharing = scenarios_meeting(Family::Sharing, Situation::ZapFlushAnonPage, 200);
    assert!(sharing >= 4, "{sharing} of 200 sharing scenarios met race.zap.flush_anon_page");
    assert_eq!(scenarios_meeting(Family::Mixed, Situation::ZapFlushAnonPage, 200), 0);
}

/// The sharing family's stale-TLB group: a thread loads and stores one word of a page while
/// another CPU reclaims it, and now and then an access lands between `ptep_clear_flush`'s PTE
/// clear and its TLB purge, through the entry the old PTE gave; the default workloads never
/// bring that about.
#[test]
fn the_sharing_family_accesses_a_page_through_a_tlb_entry_whose_pte_was_cleared() {
    let sharing = scenarios_meeting(Family::Sharing, Situation::StaleAfterClear, 300);
    assert!(sharing >= 4, "{sharing} of 300 sharing scenarios met stale_tlb.after_clear");
    assert_eq!(scenarios_meeting(Family::Mixed, Situation::StaleAfterClear, 300), 0);
}

/// The sharing family's race group, truncate against a tracer: a private mapping's page
/// COWed just before is read by `access_process_vm` (`flush_anon_page`, then
/// `copy_from_user_page`) while `truncate` unmaps it with the file's pages (`even_cows`), which
/// the refined second workload rule admits; and against `msync`: truncate or reclaim unmaps a
/// file page from one process while `msync` runs `flush_cache_page` on it in another.
#[test]
fn the_sharing_family_truncates_a_page_a_tracer_reads_and_reclaims_one_msync_flushes() {
    let met = situations(Family::Sharing, RunConfig::default(), 0..300);
    for (s, least) in [
        (Situation::TruncateFlushAnonPage, 5),
        (Situation::TruncateCopyUserPage, 3),
        (Situation::TruncateFlushCachePage, 3),
    ] {
        let n = met.iter().filter(|m| m.get(s) > 0).count();
        assert!(n >= least, "{n} of 300 sharing scenarios met {}", s.name());
    }
    let mixed = situations(Family::Mixed, RunConfig::default(), 0..100);
    assert!(mixed.iter().all(|m| m.get(Situation::TruncateFlushAnonPage) == 0));
    // Seed 27: reclaim unmaps one process's shared mapping of a page while the other
    // process's msync flushes it.
    let m = &situations(Family::Sharing, RunConfig::default(), 27..28)[0];
    assert!(m.get(Situation::ReclaimFlushCachePage) > 0);
}

/// The COW copy of a page that `truncate` unmaps meanwhile needs a user store overlapping the
/// truncation: the second workload rule excludes it, racy teardowns let the race group's
/// store meet it (seed 29 of the sharing family).
#[test]
fn truncate_unmaps_a_page_inside_its_cow_copy_only_with_racy_teardowns() {
    let racy = RunConfig { racy_teardown: true, ..RunConfig::default() };
    let with = &situations(Family::Sharing, racy, 29..30)[0];
    assert!(with.get(Situation::TruncateCopyUserHighpage) > 0);
    let without = situations(Family::Sharing, RunConfig::default(), 0..100);
    assert!(without.iter().all(|m| m.get(Situation::TruncateCopyUserHighpage) == 0));
}

/// A tracer's read overlapping a truncate can pin the page-cache page a fault mapped again
/// between the truncate's unmaps, where the COWed page was (seed 11245 of the sharing family on
/// PA8800 with the window scheduler): the read is judged against the file, and `whole-cache`
/// stays clean.
#[test]
fn a_tracer_read_of_the_page_cache_page_a_truncate_refaulted_is_judged_against_the_file() {
    let r = Registry::builtin();
    let cfg = RunConfig { preset: Preset::Pa8800, family: Some(Family::Sharing), ..RunConfig::default() };
    let o = run_seed(r.get("whole-cache").unwrap(), &cfg, SchedulerKind::Window, 11245);
    assert!(o.violations.is_empty() && o.unfinished.is_none(), "whole-cache: {:?}", o.violations.first());
    assert!(o.situations.get(Situation::ApvmReadFile) > 0);
}

/// The situations `linux-6.x` met on each seed of `seeds` of `family` under `cfg`, with the
/// random scheduler.
fn situations(family: Family, cfg: RunConfig, seeds: std::ops::Range<u64>) -> Vec<Situations> {
    let r = Registry::builtin();
    let l = r.get("linux-6.x").unwrap();
    let cfg = RunConfig { family: Some(family), ..cfg };
    seeds.map(|seed| run_seed(l, &cfg, SchedulerKind::Random, seed).situations).collect()
}

/// How many of `linux-6.x`'s seeds `0..seeds` of `family` meet `s`, with the random scheduler.
fn scenarios_meeting(family: Family, s: Situation, seeds: u64) -> usize {
    let r = Registry::builtin();
    let l = r.get("linux-6.x").unwrap();
    let cfg = RunConfig { family: Some(family), ..RunConfig::default() };
    (0..seeds).filter(|&seed| run_seed(l, &cfg, SchedulerKind::Random, seed).situations.get(s) > 0).count()
}

/// The reuse family's address-reuse group: a thread's TLB entry for a page that `munmap` left
/// behind (`gather-first-page` purges only the first page of the range) is used after the
/// address was mapped again and faulted in to another page; the gather family almost never
/// gets there, and `gather-range`, which purges the whole range, stays clean.
#[test]
fn the_reuse_family_uses_a_tlb_entry_of_an_unmapped_page_after_the_address_maps_another() {
    let r = Registry::builtin();
    let meeting = |lineage: &str, family: Family| {
        let l = r.get(lineage).unwrap();
        let cfg = RunConfig { family: Some(family), ..RunConfig::default() };
        (0..200)
            .map(|seed| run_seed(l, &cfg, SchedulerKind::Random, seed))
            .map(|o| {
                (
                    o.situations.get(Situation::StaleAfterRemap) > 0,
                    o.violations.is_empty() && o.unfinished.is_none(),
                )
            })
            .collect::<Vec<_>>()
    };
    let reuse = meeting("gather-first-page", Family::Reuse).iter().filter(|(met, _)| *met).count();
    assert!(reuse >= 5, "{reuse} of 200 reuse scenarios met stale_tlb.after_remap");
    let gather = meeting("gather-first-page", Family::Gather).iter().filter(|(met, _)| *met).count();
    assert!(gather * 4 < reuse, "the gather family: {gather}");
    let range = meeting("gather-range", Family::Reuse);
    assert!(range.iter().all(|&(met, clean)| !met && clean), "gather-range met it or failed");
}

/// A reclaim of a page that many processes map reads many PTEs before the one it clears: seed
/// 26 617 (sharing, pa8800, window) loses a dirty bit in a PTE its reclaim reads after more than
/// four others, and its violation is still told apart as the lost-dirty-bit window.
#[test]
fn a_dirty_bit_dropped_by_a_reclaim_of_a_widely_mapped_page_is_counted() {
    let r = Registry::builtin();
    let cfg = RunConfig { preset: Preset::Pa8800, family: Some(Family::Sharing), ..RunConfig::default() };
    let o = run_seed(r.get("linux-6.x").unwrap(), &cfg, SchedulerKind::Window, 26_617);
    assert!(!o.violations.is_empty(), "the seed still fails");
    assert!(o.situations.get(Situation::DirtyDropped) > 0, "its dropped dirty bit is counted");
}
