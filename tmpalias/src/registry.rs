//! The lineage registry: every lineage by name, with a one-line summary, its routines and its
//! knobs, so the harness and users can pick one by name and a downstream crate can add its
//! own, or patch a built-in one.

use std::fmt;
use std::sync::Arc;

use vipt_emu::arch::{ArchConfig, ArchHooks, GenericHooks, Patch, Patched};
use vipt_emu::choice::Chooser;
use vipt_emu::config::{MachineConfig, Preset};
use vipt_emu::machine::Machine;
use vipt_emu::mm::Kernel;

use crate::lineage::{
    Gather, Linux3x, Linux6x, Linux24, Linux26, Linux60, Linux610, WholeCache, clean, hash, soft_dirty,
};

/// Makes a fresh set of routines (one per scenario; called on whichever thread runs it).
pub type Factory = Arc<dyn Fn() -> Box<dyn ArchHooks> + Send + Sync>;

/// Which workload family a lineage's scenarios are drawn from: the mix of operations that
/// can reach the race its variants differ in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Family {
    /// Files, anonymous memory, COW, fork, reclaim, truncate, ptrace and futexes: the
    /// flush-contract workloads (every parisc lineage, `pipt`, `swbits-*`).
    #[default]
    Mixed,
    /// Threads unmapping and remapping while others run `gup_fast` (`gather-*`).
    Gather,
    /// Stores to a device-like shared mapping while drivers clean its dirty log
    /// (`clean-*`).
    Clean,
    /// Loads and stores whose TLB misses update PTEs locklessly while other threads unmap,
    /// remap, `mprotect(PROT_NONE)` and reclaim (`hash-*`).
    Hash,
    /// The mixed workloads with memory shared in more ways: shmem (tmpfs) files, whose pages
    /// reclaim moves through the swap cache while they stay mapped, and `MAP_SHARED |
    /// MAP_ANONYMOUS` mappings. Opt-in (no lineage draws from it by default): every lineage of
    /// the mixed family can run it ([`Lineage::can_run`]).
    Sharing,
    /// The gather workloads with an address reused: a thread keeps accessing a mapping that
    /// another CPU unmaps, maps again at the same address and faults in anew. Opt-in: every
    /// lineage of the gather family can run it, judged by the gather family's checks.
    Reuse,
}

impl Family {
    /// Name, as `vipt lineages` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Mixed => "mixed",
            Family::Gather => "gather",
            Family::Clean => "clean",
            Family::Hash => "hash",
            Family::Sharing => "sharing",
            Family::Reuse => "reuse",
        }
    }

    /// Every family, in the order `vipt lineages` documents them.
    pub const ALL: &'static [Family] =
        &[Family::Mixed, Family::Gather, Family::Clean, Family::Hash, Family::Sharing, Family::Reuse];

    /// The family named `name` ([`Family::name`]).
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The families whose workloads a lineage of this family can run: its own and, for the
    /// mixed family, [`Family::Sharing`], for the gather family [`Family::Reuse`] (the same
    /// operations and checks, and more of them).
    pub fn runs(self) -> &'static [Family] {
        match self {
            Family::Mixed => &[Family::Mixed, Family::Sharing],
            Family::Gather => &[Family::Gather, Family::Reuse],
            Family::Clean => &[Family::Clean],
            Family::Hash => &[Family::Hash],
            Family::Sharing => &[Family::Sharing],
            Family::Reuse => &[Family::Reuse],
        }
    }

    /// The family whose checks apply to workloads of this one: the mixed family's for
    /// [`Family::Sharing`], the gather family's for [`Family::Reuse`], else its own.
    pub fn checks(self) -> Family {
        match self {
            Family::Sharing => Family::Mixed,
            Family::Reuse => Family::Gather,
            f => f,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Family, String> {
        Family::from_name(s).ok_or_else(|| {
            let known: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            format!("unknown workload family `{s}` (known: {})", known.join(", "))
        })
    }
}

/// A registered lineage.
#[derive(Clone)]
pub struct Lineage {
    /// Name, as given to `--lineage`.
    pub name: String,
    /// One line on what it does.
    pub summary: String,
    /// Kernel versions it stands for.
    pub kernel: String,
    /// Historic bugs (labels B1, B2, … as `vipt lineages` lists them) it can show.
    pub bugs: Vec<String>,
    /// The machine it must run on, if it is not the campaign's (the `pipt` lineage needs the
    /// `pipt` machine).
    pub preset: Option<Preset>,
    /// Part of the default campaign.
    pub default: bool,
    /// The workload family its scenarios are drawn from.
    pub family: Family,
    /// Its knobs.
    pub config: ArchConfig,
    make: Factory,
}

impl fmt::Debug for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lineage")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Lineage {
    /// A lineage named `name` with knobs `config` and the routines `make` builds; in the
    /// default campaign.
    pub fn new(
        name: impl Into<String>, summary: impl Into<String>, config: ArchConfig,
        make: impl Fn() -> Box<dyn ArchHooks> + Send + Sync + 'static,
    ) -> Self {
        Lineage {
            name: name.into(),
            summary: summary.into(),
            kernel: String::new(),
            bugs: Vec::new(),
            preset: None,
            default: true,
            family: Family::Mixed,
            config,
            make: Arc::new(make),
        }
    }

    /// A new lineage named `name`: this one with `patch` applied. Every routine the patch does
    /// not replace, every knob, the machine and the workload family stay this one's; the kernel
    /// versions and historic bugs start empty, and it is not in the default campaign.
    pub fn patched<P: Patch + Clone + Send + Sync + 'static>(
        &self, name: impl Into<String>, summary: impl Into<String>, patch: P,
    ) -> Lineage {
        let base = self.make.clone();
        Lineage {
            name: name.into(),
            summary: summary.into(),
            kernel: String::new(),
            bugs: Vec::new(),
            preset: self.preset,
            default: false,
            family: self.family,
            config: self.config,
            make: Arc::new(move || Box::new(Patched::new(base(), patch.clone()))),
        }
    }

    /// Changes some knobs.
    pub fn configure(mut self, change: impl FnOnce(&mut ArchConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Sets the kernel versions.
    pub fn kernel(mut self, k: impl Into<String>) -> Self {
        self.kernel = k.into();
        self
    }

    /// Sets the historic bugs it shows.
    pub fn bugs(mut self, bugs: &[&str]) -> Self {
        self.bugs = bugs.iter().map(|b| b.to_string()).collect();
        self
    }

    /// Pins the machine preset.
    pub fn preset(mut self, p: Preset) -> Self {
        self.preset = Some(p);
        self
    }

    /// Sets the workload family.
    pub fn family(mut self, f: Family) -> Self {
        self.family = f;
        self
    }

    /// Leaves it out of the default campaign (still selectable by name).
    pub fn optional(mut self) -> Self {
        self.default = false;
        self
    }

    /// Whether its scenarios can be drawn from `family` (its own family, or one that family
    /// runs: [`Family::runs`]).
    pub fn can_run(&self, family: Family) -> bool {
        self.family.runs().contains(&family)
    }

    /// The workload family its scenarios are drawn from when `asked` (if any) is asked for,
    /// or why it cannot run that family.
    pub fn family_for(&self, asked: Option<Family>) -> Result<Family, String> {
        match asked {
            None => Ok(self.family),
            Some(f) if self.can_run(f) => Ok(f),
            Some(f) => {
                let runs: Vec<&str> = self.family.runs().iter().map(|f| f.name()).collect();
                Err(format!(
                    "lineage `{}` cannot run the {f} workload family: it runs {}",
                    self.name,
                    runs.join(", ")
                ))
            }
        }
    }

    /// A fresh set of its routines.
    pub fn hooks(&self) -> Box<dyn ArchHooks> {
        (self.make)()
    }

    /// Boots a kernel of this lineage on a fresh machine of `cfg`, every choice drawn from
    /// `chooser`.
    pub fn boot(&self, cfg: MachineConfig, chooser: Box<dyn Chooser>) -> Kernel {
        Kernel::new(Machine::new(cfg, chooser), self.hooks(), self.config)
    }
}

/// Why a lineage could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is taken.
    #[error("a lineage named `{0}` is already registered")]
    Duplicate(String),
}

/// Lineages by name, in registration order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    lineages: Vec<Lineage>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// The built-in lineages.
    pub fn builtin() -> Self {
        let mut r = Registry::new();
        let all = [
            Lineage::new(
                "linux-2.4",
                "first mapping flushed unchecked; reclaim flushes, then clears the PTE; parisc hooks unverified",
                Linux24::CONFIG,
                Linux24::hooks,
            )
            .kernel("2.4.10-2.4.19")
            .bugs(&["B21"]),
            Lineage::new(
                "linux-2.5-rmap",
                "linux-2.4 with the pte_chains rmap order: PTE cleared before flush_cache_page, flush nullified",
                Linux24::CONFIG_RMAP,
                Linux24::hooks,
            )
            .kernel("2.5.27-2.5.44; also 2.4.0-2.4.9")
            .bugs(&["B1", "B21"]),
            Lineage::new(
                "linux-2.6.14",
                "translation_exists lets swap/file PTEs through; one flush; no TLB purges",
                Linux26::CONFIG,
                || Box::new(Linux26::LINUX_2614),
            )
            .kernel("2.6.12-2.6.14")
            .bugs(&["B2", "B3", "B7", "B21"]),
            Lineage::new(
                "linux-2.6.15",
                "Hugh Dickins' present|flush filter + pfn check; still one flush, no purges",
                Linux26::CONFIG,
                || Box::new(Linux26::LINUX_2615),
            )
            .kernel("2.6.15-2.6.x")
            .bugs(&["B3", "B7", "B21"]),
            Lineage::new(
                "recheck",
                "2.6.15 re-checking the PTE after each flush and moving on if it changed",
                Linux26::CONFIG,
                || Box::new(Linux26::RECHECK),
            )
            .kernel("proposal (Hugh Dickins, 2005)")
            .bugs(&["B3", "B7", "B21"]),
            Lineage::new(
                "tmpalias",
                "TLB purge + flush by physical address per colour; COW copy without source flush",
                Linux3x::CONFIG,
                || Box::new(Linux3x::TMPALIAS),
            )
            .kernel("3.0-3.9 (placement 3.0-3.6)")
            .bugs(&["B7", "B13"]),
            Lineage::new(
                "tmpalias+purge",
                "tmpalias with the 2013 TLB-purge patch only (B7 half-fix i)",
                Linux3x::CONFIG,
                || Box::new(Linux3x::PURGE),
            )
            .kernel("3.x + 7139bc15")
            .bugs(&["B7", "B13"])
            .optional(),
            Lineage::new(
                "tmpalias+precopy",
                "tmpalias with the pre-copy source flush only (B7 half-fix ii): copies complete, B13 remains",
                Linux3x::CONFIG,
                || Box::new(Linux3x::PRECOPY),
            )
            .kernel("3.x + 6d2ddc2f")
            .bugs(&["B13"])
            .optional(),
            Lineage::new(
                "linux-6.0",
                "2022 design: ptep_clear_flush flushes no cache, COW/ptrace flushes check the PTE; PA8800: user-address flushes",
                Linux60::CONFIG,
                || Box::new(Linux60),
            )
            .kernel("5.19-6.9 (placement 5.19-6.3)")
            .bugs(&["B17"]),
            Lineage::new(
                "linux-6.10",
                "purge TLB, then tmpalias flush per colour; ptep_clear_flush flushes; PTE stores purge nothing",
                Linux610::CONFIG,
                || Box::new(Linux610),
            )
            .kernel("6.10-6.16"),
            Lineage::new(
                "linux-6.x",
                "current: linux-6.10 whose pte_clear and ptep_set_wrprotect go through set_pte_at (purge)",
                Linux6x::CONFIG,
                Linux6x::hooks,
            )
            .kernel("6.17+ and stable backports"),
            Lineage::new(
                "whole-cache",
                "flush every CPU's whole cache at every hook: always correct, the cost ceiling",
                WholeCache::CONFIG,
                || Box::new(WholeCache),
            )
            .kernel("none (reference)"),
            Lineage::new(
                "swbits-gup",
                "software young/dirty; futex fixup_user_fault through gup that does not mark: livelock",
                soft_dirty::GUP,
                || Box::new(GenericHooks),
            )
            .kernel("before 2.6.38 (e500-style sw bits)")
            .bugs(&["futex livelock"])
            .preset(Preset::Pipt),
            Lineage::new(
                "swbits-fault",
                "software young/dirty; fixup_user_fault through handle_mm_fault, which marks the PTE",
                soft_dirty::FAULT,
                || Box::new(GenericHooks),
            )
            .kernel("2.6.38+")
            .preset(Preset::Pipt),
            Lineage::new(
                "swbits-gup-marks",
                "software young/dirty; gup marks the PTE young and dirty itself",
                soft_dirty::GUP_MARKS,
                || Box::new(GenericHooks),
            )
            .kernel("the gup-side fix")
            .preset(Preset::Pipt),
            Lineage::new(
                "hash-two-update",
                "hash_page: two lockless PTE updates from one read, access checked after the first",
                hash::TWO_UPDATE,
                hash::hooks,
            )
            .kernel("PowerPC hash_page before the CAS loop (plausible)")
            .bugs(&["resurrected PTE", "stale insert", "dirty on denied access"])
            .preset(Preset::Pipt)
            .family(Family::Hash),
            Lineage::new(
                "hash-cas",
                "hash_page: one compare-and-swap loop, _PAGE_BUSY held across the insert",
                hash::CAS,
                hash::hooks,
            )
            .kernel("PowerPC hash_page (ldarx/stdcx. loop)")
            .preset(Preset::Pipt)
            .family(Family::Hash),
            Lineage::new(
                "gather-range",
                "mmu_gather: range flush, then wait for gup_fast walkers, then free pages and tables",
                Gather::CONFIG,
                || Box::new(Gather::RANGE),
            )
            .kernel("generic mmu_gather with MMU_GATHER_RCU_TABLE_FREE")
            .preset(Preset::Pipt)
            .family(Family::Gather),
            Lineage::new(
                "gather-fullmm",
                "mmu_gather flushing the whole mm every time: correct, the cost comparison",
                Gather::CONFIG,
                || Box::new(Gather::FULLMM),
            )
            .kernel("architectures without ranged TLB invalidation")
            .preset(Preset::Pipt)
            .family(Family::Gather),
            Lineage::new(
                "gather-first-page",
                "mmu_gather whose range ends after the first cleared PTE: stale TLB entries to freed pages",
                Gather::CONFIG,
                || Box::new(Gather::FIRST_PAGE),
            )
            .kernel("plausible range-tracking bug (generic tlb conversions)")
            .bugs(&["range misses cleared PTEs"])
            .preset(Preset::Pipt)
            .family(Family::Gather),
            Lineage::new(
                "gather-no-sync",
                "broadcast TLB invalidation, page tables freed without waiting for gup_fast walkers",
                Gather::NO_SYNC,
                || Box::new(Gather::RANGE),
            )
            .kernel("before MMU_GATHER_RCU_TABLE_FREE on broadcast-invalidate machines")
            .bugs(&["table freed under gup_fast"])
            .preset(Preset::Pipt)
            .family(Family::Gather),
            Lineage::new(
                "clean-deferred",
                "dirty-log clean with the TLB flush after the PTL is dropped, cleaners not serialised",
                clean::DEFERRED,
                || Box::new(GenericHooks),
            )
            .kernel("mapping_dirty_helpers without the caller's lock")
            .bugs(&["lost dirtiness"])
            .preset(Preset::Pipt)
            .family(Family::Clean),
            Lineage::new(
                "clean-flush-locked",
                "dirty-log clean purging each cleaned PTE's TLB entry under the PTL",
                clean::FLUSH_LOCKED,
                || Box::new(GenericHooks),
            )
            .kernel("flush under the page-table lock")
            .preset(Preset::Pipt)
            .family(Family::Clean),
            Lineage::new(
                "clean-external-lock",
                "dirty-log clean with the flush batched, cleaners serialised by the driver's lock",
                clean::EXTERNAL_LOCK,
                || Box::new(GenericHooks),
            )
            .kernel("mapping_dirty_helpers as vmwgfx calls it (5.6+)")
            .preset(Preset::Pipt)
            .family(Family::Clean),
            Lineage::new(
                "pipt",
                "the generic no-op routines on the pipt machine: the sanity baseline",
                ArchConfig::GENERIC,
                || Box::new(GenericHooks),
            )
            .kernel("generic")
            .preset(Preset::Pipt),
        ];
        for l in all {
            r.register(l).expect("built-in names are distinct");
        }
        r
    }

    /// Adds a lineage.
    pub fn register(&mut self, l: Lineage) -> Result<(), RegistryError> {
        if self.get(&l.name).is_some() {
            return Err(RegistryError::Duplicate(l.name));
        }
        self.lineages.push(l);
        Ok(())
    }

    /// The lineage named `name`.
    pub fn get(&self, name: &str) -> Option<&Lineage> {
        self.lineages.iter().find(|l| l.name == name)
    }

    /// Every lineage, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Lineage> {
        self.lineages.iter()
    }

    /// The lineages of the default campaign.
    pub fn defaults(&self) -> impl Iterator<Item = &Lineage> {
        self.lineages.iter().filter(|l| l.default)
    }

    /// Every name, comma separated (for error messages).
    pub fn names(&self) -> String {
        self.lineages.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipt_emu::machine::MissPolicy;

    #[test]
    fn builtin_names_are_unique_and_the_default_set_holds_the_flush_lineages() {
        let r = Registry::builtin();
        for want in [
            "linux-2.4",
            "linux-2.5-rmap",
            "linux-2.6.14",
            "linux-2.6.15",
            "recheck",
            "tmpalias",
            "linux-6.0",
            "linux-6.10",
            "linux-6.x",
            "whole-cache",
            "pipt",
        ] {
            assert!(r.get(want).is_some_and(|l| l.default), "{want} missing from the default set");
        }
        assert_eq!(r.get("pipt").unwrap().preset, Some(Preset::Pipt));
        let mut r2 = r.clone();
        assert_eq!(
            r2.register(Lineage::new("pipt", "dup", ArchConfig::GENERIC, || Box::new(GenericHooks))),
            Err(RegistryError::Duplicate("pipt".into()))
        );
    }

    #[test]
    fn the_sharing_family_is_run_by_every_mixed_lineage_and_no_other() {
        let r = Registry::builtin();
        for l in r.iter() {
            assert_eq!(l.family_for(None), Ok(l.family));
            let ok = l.family_for(Some(Family::Sharing));
            if l.family == Family::Mixed {
                assert_eq!(ok, Ok(Family::Sharing), "{}", l.name);
            } else {
                let e = ok.unwrap_err();
                assert!(e.contains("cannot run the sharing workload family"), "{e}");
                let runs: Vec<&str> = l.family.runs().iter().map(|f| f.name()).collect();
                assert!(e.ends_with(&format!("it runs {}", runs.join(", "))), "{e}");
            }
            // The reuse family: the gather lineages, and no other.
            assert_eq!(l.can_run(Family::Reuse), l.family == Family::Gather, "{}", l.name);
        }
        for &f in Family::ALL {
            assert_eq!(f.name().parse::<Family>(), Ok(f));
        }
        assert!("shmem".parse::<Family>().unwrap_err().contains("known: mixed, gather"));
        assert_eq!(Family::Sharing.checks(), Family::Mixed);
        assert_eq!(Family::Reuse.checks(), Family::Gather);
        assert_eq!(Family::Clean.checks(), Family::Clean);
    }

    #[derive(Clone)]
    struct Nothing;
    impl Patch for Nothing {}

    #[test]
    fn a_patched_lineage_keeps_every_knob_and_its_machine() {
        let r = Registry::builtin();
        let base = r.get("linux-2.6.14").unwrap();
        let p = base.patched("wrapped-2.6.14", "no change", Nothing);
        assert_eq!(p.config, base.config);
        assert_eq!(p.config.miss, MissPolicy::LINUX_2614);
        assert!(!p.config.map_fixed_checks_colour);
        assert!(!p.default);
        let q =
            r.get("swbits-gup").unwrap().patched("x", "y", Nothing).configure(|c| c.tlb_table_sync = false);
        assert_eq!(q.preset, Some(Preset::Pipt));
        assert_eq!(q.config.fixup, r.get("swbits-gup").unwrap().config.fixup);
        assert!(!q.config.tlb_table_sync);
    }
}
