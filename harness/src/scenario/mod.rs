//! Running one scenario: set-up, the concurrent programs under a scheduler, the final
//! read-back, all judged by the [`Oracle`](crate::oracle::Oracle).
//!
//! This module is the public API: [`RunConfig`], [`Outcome`], [`run`] for a given workload and
//! chooser, and, for a seed of a lineage, [`workload_for`], [`run_seed`] and [`record_seed`].
//! The jobs of a run are one module each:
//!
//! * `runner`: the driving loop (set-up, the concurrent phase under the executor, spawning the
//!   operations that may start, completion);
//! * `shadow`: the shadow model of processes, mappings and the logical page behind each page;
//! * `resolve`: a workload operation against the shadow state, giving the kernel operation;
//! * `admit`: admission under the workload rules;
//! * `judge`: each observation of the core turned into oracle writes, reads and flags;
//! * `family`: the checks a workload family adds, through one trait;
//! * `readback`: the final read-back;
//! * `explain`: what a report says about each violation;
//! * `timeline`: the typed timeline of a traced run ([`TimelineEntry`]);
//! * `unfinished`: runs that did not finish ([`Unfinished`]) and the step budget.

mod admit;
mod explain;
mod family;
mod judge;
mod readback;
mod resolve;
mod runner;
mod shadow;
mod timeline;
mod unfinished;

pub use timeline::{TimelineEntry, TimelineEvent};
pub use unfinished::{
    ROUTINES_PER_OP, Unfinished, UnfinishedKind, routine_steps, run_ops_bound, step_budget,
};

use vipt_emu::addr::PAGE_SIZE;
use vipt_emu::choice::Chooser;
use vipt_emu::config::{Indexing, Preset};
use vipt_tmpalias::{Family, Lineage};

use crate::oracle::Violation;
use crate::sched::{Recorder, SchedulerKind};
use crate::workload::Workload;
use runner::Runner;

/// How to run scenarios.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// Machine preset (a lineage may pin its own).
    pub preset: Preset,
    /// Offer speculative move-ins.
    pub speculation: bool,
    /// Stop a run after this many micro-steps (`None`: the budget of the workload on the
    /// machine, [`step_budget`]). A run stopped there is [`UnfinishedKind::StepBudget`].
    pub max_steps: Option<u64>,
    /// Record the machine trace (for reports; slower).
    pub trace: bool,
    /// Let user accesses overlap the teardown of their mapping (the second workload rule of the
    /// README: between `flush_cache_range` and the PTE clear a racing store leaves a line behind).
    pub racy_teardown: bool,
    /// Let user accesses overlap an `access_process_vm` write to the same mapping, and allow
    /// such writes into shared file mappings. Off by default: ptrace pokes a stopped tracee,
    /// and `copy_to_user_page` flushes the user alias only *before* its store, so any mapping
    /// of the page that can move lines in (a racing load, or any other process's TLB entry for
    /// a shared file page) may cache a line that goes stale once the store is written back.
    /// With the option off, pokes into shared file mappings are skipped.
    pub racy_poke: bool,
    /// Let `mremap` move a `MAP_SHARED | MAP_ANONYMOUS` mapping. Off by default (workload
    /// rule 4): the move is placed by the colour of the mapping's shmem object, while its
    /// `mmap`, and every `fork` copy of it, has colour 0, so the moved mapping and the others
    /// are inequivalent aliases of the shared pages on every lineage (a placement hazard of
    /// the kernel, not a flush routine's: README, *Known windows*).
    pub move_shared_anon: bool,
    /// Fault injection for testing the oracle: flip the top bit of the value the `n`-th user
    /// load (counting from 0) returned before it is judged. No workload writes a value with
    /// that bit set, so the corrupted value is never one the oracle may allow (flipping the low
    /// bit could give another write's value that a tie at a step boundary allows).
    pub corrupt_load: Option<u64>,
    /// The workload family seeds are drawn from instead of the lineage's own (`None`: each
    /// lineage's own). Callers check that the lineage can run it
    /// ([`Lineage::family_for`](vipt_tmpalias::Lineage::family_for)); the family's checks
    /// ([`Family::checks`](vipt_tmpalias::Family::checks)) judge the run.
    pub family: Option<Family>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            preset: Preset::Tiny,
            speculation: true,
            max_steps: None,
            trace: false,
            racy_teardown: false,
            racy_poke: false,
            move_shared_anon: false,
            corrupt_load: None,
            family: None,
        }
    }
}

/// What a scenario produced.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Violations, in the order found.
    pub violations: Vec<Violation>,
    /// Micro-steps executed.
    pub steps: u64,
    /// Operations completed (set-up and read-back included).
    pub ops: usize,
    /// Reads checked.
    pub reads: u64,
    /// Why the run did not finish (deadlock, livelock, step budget), if it did not.
    pub unfinished: Option<Unfinished>,
    /// When tracing: the programs' operations as they began and ended, and every micro-step
    /// after set-up, in step order.
    pub timeline: Vec<TimelineEntry>,
    /// User loads judged during the concurrent phase.
    pub user_loads: u64,
    /// The machine's event counters at the end of the run.
    pub counters: vipt_emu::counters::Counters,
    /// When tracing: the machine's event log (cache lines, TLB inserts and purges, PTE
    /// changes, arch routines begun and ended).
    pub trace: Option<vipt_emu::trace::Trace>,
    /// The situations of the flush contract the run met (set-up and read-back included).
    pub situations: vipt_emu::mm::situations::Situations,
}

impl Outcome {
    /// The first violation's fingerprint.
    pub fn fingerprint(&self) -> Option<String> {
        self.violations.first().map(Violation::fingerprint)
    }
}

/// The workload family of a run of `lineage` under `cfg`: `cfg.family`, else the lineage's own.
pub fn family_of(lineage: &Lineage, cfg: &RunConfig) -> Family {
    cfg.family.unwrap_or(lineage.family)
}

/// The workload of seed `seed` for `lineage`: the workload of its family ([`family_of`]), sized
/// for the machine the lineage runs on (its own preset, else `cfg.preset`).
pub fn workload_for(lineage: &Lineage, cfg: &RunConfig, seed: u64) -> Workload {
    let cpus = lineage.preset.unwrap_or(cfg.preset).config().cpus;
    Workload::generate_for(seed, cpus, family_of(lineage, cfg))
}

/// Runs seed `seed` of `lineage`: its workload ([`workload_for`]) under `scheduler` seeded
/// with `seed`.
pub fn run_seed(lineage: &Lineage, cfg: &RunConfig, scheduler: SchedulerKind, seed: u64) -> Outcome {
    run(cfg, lineage, &workload_for(lineage, cfg, seed), scheduler.chooser(seed))
}

/// A run together with every choice it drew, in order (what a reproducer stores).
#[derive(Clone, Debug)]
pub struct Recording {
    /// The workload that ran.
    pub workload: Workload,
    /// Every choice of the run: replaying them with [`crate::sched::Replay`] repeats it. More
    /// than [`crate::repro::MAX_CHOICES`] when the run drew too many to keep (then the list
    /// stops there).
    pub choices: Vec<u32>,
    /// What it produced.
    pub outcome: Outcome,
}

/// Runs `workload` like [`run`], recording every choice `chooser` makes, up to
/// [`crate::repro::MAX_CHOICES`] of them and one more: a longer list tells that the run drew
/// too many to be stored.
pub fn run_recorded(
    cfg: &RunConfig, lineage: &Lineage, workload: Workload, chooser: Box<dyn Chooser>,
) -> Recording {
    let (rec, tape) = Recorder::with_limit(chooser, crate::repro::MAX_CHOICES);
    let outcome = run(cfg, lineage, &workload, Box::new(rec));
    let choices = tape.take();
    Recording { workload, choices, outcome }
}

/// Runs seed `seed` of `lineage` like [`run_seed`], recording every choice.
pub fn record_seed(lineage: &Lineage, cfg: &RunConfig, scheduler: SchedulerKind, seed: u64) -> Recording {
    run_recorded(cfg, lineage, workload_for(lineage, cfg, seed), scheduler.chooser(seed))
}

/// Runs `w` on a machine of `cfg.preset` (or the lineage's own) with `lineage`'s hooks, every
/// choice drawn from `chooser`.
pub fn run(cfg: &RunConfig, lineage: &Lineage, w: &Workload, chooser: Box<dyn Chooser>) -> Outcome {
    let preset = lineage.preset.unwrap_or(cfg.preset);
    let mut mc = preset.config();
    mc.cpus = mc.cpus.max(w.cpus as usize);
    let colours = match mc.indexing {
        Indexing::Virtual { alias_boundary } => alias_boundary / PAGE_SIZE,
        Indexing::Physical => 1,
    };
    let budget = cfg.max_steps.unwrap_or_else(|| step_budget(w, &mc));
    let k = lineage.boot(mc, chooser);
    if cfg.trace {
        k.machine().enable_trace();
    }
    k.record_observations();
    let mut r =
        Runner::new(&k, w, cfg, colours, budget, family::check_for(family_of(lineage, cfg).checks(), w));
    r.setup();
    if cfg.trace {
        r.ex.log = Some(Vec::new());
    }
    r.ex.speculation = cfg.speculation;
    r.concurrent();
    r.ex.speculation = false;
    if r.unfinished.is_none() && !r.judge.fatal {
        r.final_checks();
        r.final_readback();
    }
    if cfg.trace {
        explain::explain_violations(&k.machine(), &mut r.judge.oracle, r.timeline.as_deref());
        if let (Some(log), Some(tl)) = (r.ex.log.take(), r.timeline.as_mut()) {
            timeline::add_steps(tl, log);
        }
    }
    let trace = k.machine().trace.take();
    Outcome {
        steps: r.ex.steps,
        ops: r.ops,
        reads: r.judge.oracle.reads,
        unfinished: r.unfinished,
        timeline: r.timeline.unwrap_or_default(),
        user_loads: r.judge.loads,
        violations: std::mem::take(&mut r.judge.oracle.violations),
        counters: k.machine().counters,
        trace,
        situations: k.situations(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{Invariant, ReadKind, ViolationKind};
    use crate::sched::{Replay, SchedulerKind};
    use quickcheck::{QuickCheck, TestResult};
    use vipt_tmpalias::Registry;

    fn outcome(lineage: &str, seed: u64, cfg: &RunConfig) -> Outcome {
        let reg = Registry::builtin();
        run_seed(reg.get(lineage).unwrap(), cfg, SchedulerKind::Random, seed)
    }

    /// Passed when the run `o` of `lineage` on `seed` finished without a violation.
    fn verdict(lineage: &str, seed: u64, o: &Outcome) -> TestResult {
        if let Some(v) = o.violations.first() {
            return TestResult::error(format!("{lineage} seed {seed}: {}", v.summary()));
        }
        if let Some(u) = &o.unfinished {
            return TestResult::error(format!("{lineage} seed {seed}: {}", u.summary()));
        }
        TestResult::passed()
    }

    /// [`verdict`] of each of `lineages` on `seed` under `cfg`, the first failure if any.
    fn all_clean(lineages: &[&str], seed: u64, cfg: &RunConfig) -> TestResult {
        for lineage in lineages {
            let r = verdict(lineage, seed, &outcome(lineage, seed, cfg));
            if r.is_failure() {
                return r;
            }
        }
        TestResult::passed()
    }

    fn clean(lineage: &str, seed: u64) -> TestResult {
        all_clean(&[lineage], seed, &RunConfig::default())
    }

    fn pipt_clean(seed: u64) -> TestResult {
        clean("pipt", seed)
    }

    fn whole_cache_clean(seed: u64) -> TestResult {
        clean("whole-cache", seed)
    }

    fn corrupted_load_is_flagged(seed: u64, which: u8) -> TestResult {
        let base = outcome("pipt", seed, &RunConfig::default());
        if base.user_loads == 0 {
            return TestResult::discard();
        }
        let n = which as u64 % base.user_loads;
        let cfg = RunConfig { corrupt_load: Some(n), ..RunConfig::default() };
        let o = outcome("pipt", seed, &cfg);
        match o.violations.first() {
            Some(v) if v.read_kind() == Some(ReadKind::UserLoad) => TestResult::passed(),
            other => TestResult::error(format!("seed {seed}: corrupting load {n} gave {other:?}")),
        }
    }

    #[test]
    fn any_workload_on_pipt_is_clean() {
        QuickCheck::new().tests(300).quickcheck(pipt_clean as fn(u64) -> TestResult);
    }

    #[test]
    fn any_workload_on_whole_cache_is_clean() {
        QuickCheck::new().tests(300).quickcheck(whole_cache_clean as fn(u64) -> TestResult);
    }

    fn clean_on_pa8700(seed: u64) -> TestResult {
        let cfg = RunConfig { preset: Preset::Pa8700, ..RunConfig::default() };
        all_clean(&["linux-6.x", "whole-cache"], seed, &cfg)
    }

    /// On a machine with 6144 sets per cache, where a flush of every cache passes 24 576 sets,
    /// the current kernel and the whole-cache one finish every run, without a violation.
    #[test]
    fn any_workload_on_pa8700_finishes_clean_on_the_correct_kernels() {
        QuickCheck::new().tests(100).quickcheck(clean_on_pa8700 as fn(u64) -> TestResult);
    }

    fn family_variants_clean(seed: u64) -> TestResult {
        let correct =
            ["hash-cas", "gather-range", "gather-fullmm", "clean-flush-locked", "clean-external-lock"];
        all_clean(&correct, seed, &RunConfig::default())
    }

    /// The correct variants of the MMU race families never violate, whatever the workload of
    /// their family.
    #[test]
    fn any_family_workload_on_a_correct_variant_is_clean() {
        QuickCheck::new().tests(150).quickcheck(family_variants_clean as fn(u64) -> TestResult);
    }

    #[test]
    fn the_oracle_flags_a_corrupted_load() {
        QuickCheck::new().tests(100).quickcheck(corrupted_load_is_flagged as fn(u64, u8) -> TestResult);
    }

    fn sharing_clean(seed: u64) -> TestResult {
        let cfg = RunConfig { family: Some(Family::Sharing), ..RunConfig::default() };
        for lineage in ["pipt", "whole-cache"] {
            let o = outcome(lineage, seed, &cfg);
            // The generic `ptep_set_access_flags` window of docs/FINDINGS.md §3, which
            // `whole-cache` has too: not a flush bug.
            if o.situations.get(vipt_emu::mm::situations::Situation::DirtyDropped) > 0 {
                return TestResult::discard();
            }
            let r = verdict(lineage, seed, &o);
            if r.is_failure() {
                return r;
            }
        }
        TestResult::passed()
    }

    /// Shmem files and shared anonymous memory, reclaimed through the swap cache, keep every
    /// word's last store on the kernels that cannot lose one in a flush (a run that met the
    /// documented lost-dirty-bit window is discarded).
    #[test]
    fn any_sharing_workload_on_pipt_and_whole_cache_is_clean() {
        QuickCheck::new().tests(100).quickcheck(sharing_clean as fn(u64) -> TestResult);
    }

    /// Rule 4 keeps shared anonymous mappings in place; lifting it lets `mremap` move them to
    /// their shmem object's colour, so pages are mapped at two colours and `linux-6.x` fails
    /// seeds through it while `pipt` stays clean.
    #[test]
    fn moving_shared_anonymous_memory_maps_it_at_two_colours_only_when_the_rule_is_lifted() {
        use vipt_emu::mm::situations::Situation;
        let reg = Registry::builtin();
        let kept = RunConfig { family: Some(Family::Sharing), ..RunConfig::default() };
        let moved = RunConfig { move_shared_anon: true, ..kept.clone() };
        let l = reg.get("linux-6.x").unwrap();
        let (mut colours_kept, mut colours_moved, mut failed) = (0, 0, 0);
        for seed in 0..400 {
            colours_kept +=
                run_seed(l, &kept, SchedulerKind::Random, seed).situations.get(Situation::SharedAnonColours);
            let o = run_seed(l, &moved, SchedulerKind::Random, seed);
            colours_moved += o.situations.get(Situation::SharedAnonColours);
            failed += u32::from(!o.violations.is_empty() && o.situations.get(Situation::DirtyDropped) == 0);
        }
        assert_eq!(colours_kept, 0);
        assert!(colours_moved > 0 && failed > 0, "{colours_moved} two-colour maps, {failed} failed seeds");
        let pipt = reg.get("pipt").unwrap();
        for seed in 0..100 {
            let o = run_seed(pipt, &moved, SchedulerKind::Random, seed);
            assert!(o.violations.is_empty() && o.unfinished.is_none(), "pipt seed {seed}");
        }
    }

    /// The oracle judges shmem and shared anonymous words across swap-out and swap-in: on
    /// `pipt` the first sharing seeds swap such pages out and back and are clean, and a
    /// corrupted load among them is flagged; on `linux-2.5-rmap`, whose reclaim clears the PTE
    /// before it flushes, words of shmem pages come back stale.
    #[test]
    fn the_oracle_judges_shmem_words_across_swap_out_and_swap_in() {
        use vipt_emu::mm::situations::Situation;
        let reg = Registry::builtin();
        let cfg = RunConfig { family: Some(Family::Sharing), ..RunConfig::default() };
        let pipt = reg.get("pipt").unwrap();
        let mut swapped_in = 0;
        for seed in 0..20 {
            let o = run_seed(pipt, &cfg, SchedulerKind::Random, seed);
            assert!(o.violations.is_empty() && o.unfinished.is_none(), "seed {seed}");
            swapped_in += o.situations.get(Situation::ShmemSwapinFromSlot)
                + o.situations.get(Situation::ShmemSwapinFromCache);
        }
        assert!(swapped_in >= 10, "{swapped_in} swap-ins in 20 seeds");
        let corrupt = RunConfig { corrupt_load: Some(0), ..cfg.clone() };
        let o = run_seed(pipt, &corrupt, SchedulerKind::Random, 1);
        assert_eq!(o.violations.first().and_then(|v| v.read_kind()), Some(ReadKind::UserLoad));
        let rmap = reg.get("linux-2.5-rmap").unwrap();
        let shmem_words = (0..40)
            .filter(|&seed| {
                let w = workload_for(rmap, &cfg, seed);
                run_seed(rmap, &cfg, SchedulerKind::Random, seed).violations.iter().any(|v| {
                    matches!(v.loc.page, crate::oracle::PageLoc::File { file, .. } if w.files[file as usize].shmem)
                })
            })
            .count();
        assert!(shmem_words >= 1, "no stale shmem word in 40 seeds of linux-2.5-rmap");
    }

    /// A corrupted load is flagged even where the low-bit flip of its value is another write's
    /// value that a tie at a step boundary allows (found by the property above).
    #[test]
    fn a_corrupted_load_is_flagged_where_a_low_bit_flip_would_be_allowed() {
        let cfg = RunConfig { corrupt_load: Some(2), ..RunConfig::default() };
        let o = outcome("pipt", 5_892_754_839_137_258_212, &cfg);
        let kind = o.violations.first().map(|v| &v.kind);
        assert!(
            matches!(
                kind,
                Some(ViolationKind::WrongValue {
                    read: ReadKind::UserLoad,
                    observed: 0x8000_0001_0000_0003,
                    ..
                })
            ),
            "{kind:?}"
        );
    }

    /// `flush_dcache_page` that takes `pa_dbit_lock` twice: its CPU waits for itself.
    #[derive(Clone)]
    struct SelfDeadlock;

    impl vipt_emu::arch::Patch for SelfDeadlock {
        fn flush_dcache_page<'a>(
            &'a self, _base: &'a dyn vipt_emu::arch::ArchHooks, cx: vipt_emu::arch::ArchCtx<'a>,
            _page: vipt_emu::addr::Pfn,
        ) -> vipt_emu::arch::HookFuture<'a, ()> {
            Box::pin(async move {
                cx.lock(vipt_emu::mm::LockId::PaDbit).await;
                cx.lock(vipt_emu::mm::LockId::PaDbit).await;
            })
        }
    }

    /// `set_pte_at` that writes nothing: every fault is retried until the core gives up.
    #[derive(Clone)]
    struct LostPte;

    impl vipt_emu::arch::Patch for LostPte {
        fn set_pte_at<'a>(
            &'a self, _base: &'a dyn vipt_emu::arch::ArchHooks, _cx: vipt_emu::arch::ArchCtx<'a>,
            _mm: vipt_emu::mm::MmId, _va: vipt_emu::addr::VirtAddr, _pte: vipt_emu::pte::Pte,
        ) -> vipt_emu::arch::HookFuture<'a, ()> {
            Box::pin(async {})
        }
    }

    /// The first of seeds 0..100 of `l` that does not finish, and why.
    fn first_unfinished(l: &Lineage, cfg: &RunConfig) -> Option<(u64, Unfinished)> {
        (0..100).find_map(|seed| run_seed(l, cfg, SchedulerKind::Random, seed).unfinished.map(|u| (seed, u)))
    }

    #[test]
    fn a_run_that_cannot_finish_says_whether_it_is_a_deadlock_a_livelock_or_its_budget() {
        let reg = Registry::builtin();
        let base = reg.get("linux-6.x").unwrap();
        let cfg = RunConfig::default();
        let (_, u) =
            first_unfinished(&base.patched("self-deadlock", "", SelfDeadlock), &cfg).expect("a deadlock");
        assert_eq!(u.kind, UnfinishedKind::Deadlock, "{}", u.summary());
        assert!(u.detail.contains("Lock(PaDbit)"), "{}", u.summary());
        let (_, u) = first_unfinished(&base.patched("lost-pte", "", LostPte), &cfg).expect("a livelock");
        assert_eq!(u.kind, UnfinishedKind::Livelock, "{}", u.summary());
        assert!(u.detail.contains("retry bound"), "{}", u.summary());
        let tight = RunConfig { max_steps: Some(50), ..RunConfig::default() };
        let o = run_seed(base, &tight, SchedulerKind::Random, 0);
        let u = o.unfinished.expect("a step budget");
        assert_eq!((u.kind, u.step, o.steps), (UnfinishedKind::StepBudget, 50, 50));
        assert!(o.violations.is_empty());
        assert_eq!(first_unfinished(base, &cfg), None, "linux-6.x finishes every run");
    }

    /// The step budget follows from the workload and the machine: it grows with the
    /// operations and with the sets × CPUs of a whole-cache flush, and stays far above what
    /// the hungriest correct lineage uses even if every `fdce` set were a step of its own.
    #[test]
    fn the_step_budget_follows_from_the_workload_and_the_machine() {
        let reg = Registry::builtin();
        let w = Workload::generate(3, 4);
        let (tiny, rp) = (Preset::Tiny.config(), Preset::Rp3440.config());
        assert!(step_budget(&w, &rp) > step_budget(&w, &tiny) * 100);
        let mut longer = w.clone();
        longer.programs[0].extend(w.programs[1].iter().copied());
        assert!(step_budget(&longer, &tiny) > step_budget(&w, &tiny));
        assert!(routine_steps(&rp) >= (rp.sets * rp.cpus) as u64);
        for preset in [Preset::Tiny, Preset::Pa8700] {
            let cfg = RunConfig { preset, ..RunConfig::default() };
            let l = reg.get("whole-cache").unwrap();
            for seed in 0..20 {
                let o = run_seed(l, &cfg, SchedulerKind::Random, seed);
                let budget = step_budget(&workload_for(l, &cfg, seed), &preset.config());
                assert!((o.steps + o.counters.fdce) * 20 < budget, "{preset:?} seed {seed}");
            }
        }
    }

    #[test]
    fn a_seed_gives_the_same_run_twice() {
        for seed in [3, 48, 77] {
            let a = outcome("linux-2.6.14", seed, &RunConfig::default());
            let b = outcome("linux-2.6.14", seed, &RunConfig::default());
            assert_eq!(a.steps, b.steps);
            assert_eq!(a.reads, b.reads);
            assert_eq!(a.violations, b.violations);
        }
    }

    #[test]
    fn a_recorded_run_replays_bit_for_bit() {
        let reg = Registry::builtin();
        let l = reg.get("linux-2.5-rmap").unwrap();
        let cfg = RunConfig::default();
        let mut replayed = 0;
        for seed in 0..80 {
            let Recording { workload, choices, outcome: a } =
                record_seed(l, &cfg, SchedulerKind::Random, seed);
            if a.violations.is_empty() {
                continue;
            }
            let b = run(&cfg, l, &workload, Box::new(Replay::new(choices)));
            assert_eq!(a.steps, b.steps);
            assert_eq!(a.violations, b.violations);
            replayed += 1;
        }
        assert!(replayed >= 2, "linux-2.5-rmap shows violations on at least two of 80 seeds");
    }

    #[test]
    fn the_default_campaign_seeds_find_the_buggy_lineages_and_not_the_correct_ones() {
        let first_bad =
            |name: &str| (0..400).find(|&s| !outcome(name, s, &RunConfig::default()).violations.is_empty());
        for bad in ["linux-2.4", "linux-2.5-rmap", "linux-2.6.14", "linux-2.6.15", "linux-6.0", "swbits-gup"]
        {
            assert!(first_bad(bad).is_some(), "{bad} shows no violation in 400 seeds");
        }
        for good in ["linux-6.x", "linux-6.10", "whole-cache", "pipt", "swbits-fault", "swbits-gup-marks"] {
            assert_eq!(first_bad(good), None, "{good} shows a violation");
        }
    }

    /// Each broken variant of the hash, gather and clean families is found, with the check of
    /// its family, within a few thousand seeds; the correct ones are not.
    #[test]
    fn the_family_campaigns_find_each_broken_variant_by_its_own_check() {
        let first = |name: &str, n: u64| {
            (0..n).find_map(|s| {
                outcome(name, s, &RunConfig::default()).violations.first().map(|v| v.kind.clone())
            })
        };
        let broken = |invariant| Some(ViolationKind::Broken { invariant });
        assert_eq!(first("hash-two-update", 50), broken(Invariant::PteUpdateLost));
        assert_eq!(first("gather-first-page", 50), broken(Invariant::StaleTlb));
        assert_eq!(first("gather-no-sync", 400), broken(Invariant::FreedReachable));
        assert_eq!(first("clean-deferred", 2000), broken(Invariant::LostDirty));
        for good in ["hash-cas", "gather-range", "gather-fullmm", "clean-flush-locked", "clean-external-lock"]
        {
            assert_eq!(first(good, 300), None, "{good} shows a violation");
        }
    }
}
