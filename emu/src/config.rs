//! Machine configuration and the named presets.

use std::fmt;
use std::str::FromStr;

use crate::addr::{PAGE_SIZE, SHM_COLOUR, WORD_BYTES};

/// How the D-cache picks a set for an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    /// Virtually indexed, physically tagged. Two virtual addresses of one physical line share
    /// a cache line exactly when they are congruent modulo `alias_boundary` (equivalent
    /// aliases, docs/FIDELITY.md); the index comes from the virtual address modulo the
    /// boundary (see [`crate::machine::LineId`]).
    Virtual {
        /// Bytes; a power of two, at least a page.
        alias_boundary: u64,
    },
    /// Physically indexed: no aliases at all (the `pipt` baseline).
    Physical,
}

/// Emulated cycles charged per counted event (see [`crate::counters::Counters::cycles`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostTable {
    /// A load or store that hits in the cache.
    pub access_hit: u64,
    /// A line filled from memory (miss, speculative fill or snoop transfer).
    pub line_fill: u64,
    /// A dirty line written back to memory.
    pub write_back: u64,
    /// One `fdc` or `pdc` instruction (excluding write-back).
    pub flush_line: u64,
    /// One `fdce` step (one set, all ways, excluding write-backs).
    pub flush_entry: u64,
    /// A TLB miss handled in software (access or non-access).
    pub tlb_miss: u64,
    /// A non-access miss with no translation: the handler nullifies the instruction.
    pub nullified: u64,
    /// A trap into the kernel (dirty-bit trap, page fault entry).
    pub trap: u64,
    /// A local TLB purge.
    pub purge_local: u64,
    /// A broadcast TLB purge (bus transaction to every CPU).
    pub purge_broadcast: u64,
    /// An inter-processor interrupt.
    pub ipi: u64,
}

impl CostTable {
    /// rp3440 (4 × PA8800 at 800 MHz, CR16 cycles), calibrated on the boot-time measurement of
    /// a 6.1 kernel (docs/FIDELITY.md): "Whole cache flush 2696560 cycles, flushing 16777216
    /// bytes 5080984 cycles". A whole-cache flush is 65,536 `fdce` sets (4 ways of 128 B lines,
    /// 32 MiB as PDC reports it) on each CPU in parallel plus three IPIs: 41 cycles a set. The
    /// range flush is 131,072 `fdc`s plus 4,096 non-access TLB misses: 38 cycles an `fdc`.
    pub const RP3440: CostTable = CostTable {
        access_hit: 1,
        line_fill: 60,
        write_back: 60,
        flush_line: 38,
        flush_entry: 41,
        tlb_miss: 30,
        nullified: 60,
        trap: 150,
        purge_local: 10,
        purge_broadcast: 50,
        ipi: 2000,
    };

    /// A plausible table for PA8x00-class CPUs; presets refine it.
    pub const DEFAULT: CostTable = CostTable {
        access_hit: 1,
        line_fill: 40,
        write_back: 40,
        flush_line: 6,
        flush_entry: 6,
        tlb_miss: 30,
        nullified: 60,
        trap: 100,
        purge_local: 10,
        purge_broadcast: 50,
        ipi: 2000,
    };
}

/// A complete machine description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Preset name this configuration came from (for reports).
    pub name: &'static str,
    /// Number of CPUs (1..=8).
    pub cpus: usize,
    /// Physical frames of memory. Kept small so that swap and file PTE encodings collide with
    /// live pfns.
    pub frames: usize,
    /// D-cache line size in bytes (a power of two, a multiple of the word size, ≤ page size).
    pub line_bytes: u64,
    /// Number of sets of the D-cache of each CPU.
    pub sets: usize,
    /// Ways per set.
    pub ways: usize,
    /// Virtual or physical indexing.
    pub indexing: Indexing,
    /// TLB entries per CPU (fully associative).
    pub tlb_entries: usize,
    /// Swap slots on the swap device.
    pub swap_slots: usize,
    /// Cycle costs.
    pub costs: CostTable,
    /// `parisc_requires_coherency()`: the CPU is a PA8800/PA8900, whose caches the kernel
    /// treats specially (flush the kernel alias on every user install, flush small ranges page
    /// by page instead of the whole cache).
    pub requires_coherency: bool,
}

/// A configuration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The preset name is not known.
    #[error("unknown preset `{0}` (known: tiny, pa8700, pa8800, pa8800-64m, pipt, rp3440)")]
    UnknownPreset(String),
    /// A field is out of range.
    #[error("invalid machine configuration: {0}")]
    Invalid(&'static str),
}

/// The named presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// A small VIPT machine for fuzzing: 4 CPUs, 4 colours (16 KiB alias boundary), 128 B
    /// lines, 2 ways, 64 frames. Every inequivalent alias is easy to reach.
    Tiny,
    /// PA8700: 1.5 MiB 4-way D-cache, 64 B lines, 4 MiB alias boundary (PDC alias value 11),
    /// 240-entry TLB (docs/FIDELITY.md).
    Pa8700,
    /// PA8800/PA8900 as the current kernel treats them: 768 KiB 4-way L1 per core, 128 B
    /// lines, indexed below a 4 MiB alias boundary (`SHM_COLOUR`; PDC reports the boundary as
    /// unknown and the kernel assumes 4 MiB, docs/FIDELITY.md). The kernel's
    /// tmpalias flushes at 4 MiB colour work there once the TLB entry is purged first
    /// (docs/FIDELITY.md: a TLB entry that allows move-in lets the CPU speculate the page in).
    Pa8800,
    /// Hypothetical: [`Preset::Pa8800`]'s geometry with a 64 MiB alias boundary, the
    /// hypothesis that tmpalias flushes do not work on PA8800 because its boundary lies above
    /// 4 MiB (docs/FIDELITY.md). No kernel can be clean on it: the kernel colours mappings
    /// modulo 4 MiB, so two user mappings of one page it considers equivalent may be 4 MiB
    /// apart, inequivalent here; a store through one is not seen by a load through the other,
    /// and no kernel routine runs between the two accesses to flush it. Excluded from every
    /// "correct kernels are clean" check ([`Preset::is_hypothetical`]).
    Pa8800Boundary64M,
    /// The tiny machine with a physically indexed cache: no aliasing, the sanity baseline.
    Pipt,
    /// rp3440: 4 × PA8800 as PDC reports it (32 MiB 4-way D-cache, 128 B lines), with the
    /// kernel's 4 MiB alias boundary, for the cost model (docs/FIDELITY.md).
    Rp3440,
}

impl Preset {
    /// Every preset, in display order.
    pub const ALL: [Preset; 6] = [
        Preset::Tiny,
        Preset::Pa8700,
        Preset::Pa8800,
        Preset::Pa8800Boundary64M,
        Preset::Pipt,
        Preset::Rp3440,
    ];

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Pa8700 => "pa8700",
            Preset::Pa8800 => "pa8800",
            Preset::Pa8800Boundary64M => "pa8800-64m",
            Preset::Pipt => "pipt",
            Preset::Rp3440 => "rp3440",
        }
    }

    /// Does the preset model a hypothesis rather than hardware as the kernel sees it? On such
    /// a machine even a correct kernel shows violations, so it is left out of every check
    /// that correct kernels are clean.
    pub fn is_hypothetical(self) -> bool {
        matches!(self, Preset::Pa8800Boundary64M)
    }

    /// The machine configuration of the preset.
    pub fn config(self) -> MachineConfig {
        let tiny = MachineConfig {
            name: "tiny",
            cpus: 4,
            frames: 64,
            line_bytes: 128,
            sets: 128,
            ways: 2,
            indexing: Indexing::Virtual { alias_boundary: 4 * PAGE_SIZE },
            tlb_entries: 16,
            swap_slots: 1024,
            costs: CostTable::DEFAULT,
            requires_coherency: false,
        };
        let pa8800 = MachineConfig {
            name: "pa8800",
            cpus: 4,
            frames: 256,
            line_bytes: 128,
            sets: 1536,
            ways: 4,
            indexing: Indexing::Virtual { alias_boundary: SHM_COLOUR },
            tlb_entries: 240,
            swap_slots: 4096,
            costs: CostTable::DEFAULT,
            requires_coherency: true,
        };
        match self {
            Preset::Tiny => tiny,
            Preset::Pipt => MachineConfig { name: "pipt", indexing: Indexing::Physical, ..tiny },
            Preset::Pa8700 => MachineConfig {
                name: "pa8700",
                cpus: 4,
                frames: 256,
                line_bytes: 64,
                sets: 6144,
                ways: 4,
                indexing: Indexing::Virtual { alias_boundary: SHM_COLOUR },
                tlb_entries: 240,
                swap_slots: 4096,
                costs: CostTable::DEFAULT,
                requires_coherency: false,
            },
            Preset::Pa8800 => pa8800,
            Preset::Pa8800Boundary64M => MachineConfig {
                name: "pa8800-64m",
                indexing: Indexing::Virtual { alias_boundary: 64 << 20 },
                ..pa8800
            },
            // Memory covers the 16 MiB the boot-time range measurement flushes.
            Preset::Rp3440 => MachineConfig {
                name: "rp3440",
                cpus: 4,
                frames: 4352,
                line_bytes: 128,
                sets: 65536,
                ways: 4,
                indexing: Indexing::Virtual { alias_boundary: SHM_COLOUR },
                tlb_entries: 240,
                swap_slots: 4096,
                costs: CostTable::RP3440,
                requires_coherency: true,
            },
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ConfigError::UnknownPreset(s.to_string()))
    }
}

impl MachineConfig {
    /// Words per cache line.
    pub fn words_per_line(&self) -> usize {
        (self.line_bytes / WORD_BYTES) as usize
    }

    /// Lines per page.
    pub fn lines_per_page(&self) -> usize {
        (PAGE_SIZE / self.line_bytes) as usize
    }

    /// Total D-cache bytes of one CPU.
    pub fn cache_bytes(&self) -> u64 {
        self.line_bytes * (self.sets * self.ways) as u64
    }

    /// Number of distinct page colours (pages per alias boundary); 1 for PIPT.
    pub fn colours(&self) -> u64 {
        match self.indexing {
            Indexing::Virtual { alias_boundary } => alias_boundary / PAGE_SIZE,
            Indexing::Physical => 1,
        }
    }

    /// Checks that the configuration is internally consistent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError::Invalid;
        if !(1..=8).contains(&self.cpus) {
            return Err(Invalid("cpus must be 1..=8"));
        }
        if self.frames < 16 || self.frames > 1 << 20 {
            return Err(Invalid("frames must be 16..=2^20"));
        }
        if !self.line_bytes.is_power_of_two() || self.line_bytes < WORD_BYTES || self.line_bytes > PAGE_SIZE {
            return Err(Invalid("line size must be a power of two between a word and a page"));
        }
        if self.sets == 0 || self.ways == 0 || self.ways > 16 {
            return Err(Invalid("sets must be > 0 and ways 1..=16"));
        }
        if let Indexing::Virtual { alias_boundary } = self.indexing
            && (!alias_boundary.is_power_of_two() || alias_boundary < PAGE_SIZE)
        {
            return Err(Invalid("alias boundary must be a power of two of at least a page"));
        }
        if self.tlb_entries == 0 || self.tlb_entries > 512 {
            return Err(Invalid("tlb entries must be 1..=512"));
        }
        if self.swap_slots == 0 {
            return Err(Invalid("swap slots must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_parses_by_name() {
        for p in Preset::ALL {
            p.config().validate().unwrap();
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        assert!("nope".parse::<Preset>().is_err());
    }

    #[test]
    fn preset_geometry_matches_the_hardware() {
        let c = Preset::Pa8700.config();
        assert_eq!(c.cache_bytes(), 1536 * 1024);
        assert_eq!(c.line_bytes, 64);
        assert_eq!(c.colours(), 1024);
        assert_eq!(c.indexing, Indexing::Virtual { alias_boundary: 4 << 20 });
        let c = Preset::Pa8800.config();
        assert_eq!(c.cache_bytes(), 768 * 1024);
        assert_eq!(c.line_bytes, 128);
        assert_eq!(c.indexing, Indexing::Virtual { alias_boundary: 4 << 20 });
        assert_eq!(c.colours(), 1024);
        let h = Preset::Pa8800Boundary64M.config();
        assert_eq!(
            MachineConfig { name: "pa8800", indexing: c.indexing, ..h.clone() },
            c,
            "pa8800's geometry"
        );
        assert_eq!(h.indexing, Indexing::Virtual { alias_boundary: 64 << 20 });
        let c = Preset::Rp3440.config();
        assert_eq!(c.cache_bytes(), 32 << 20);
        assert_eq!(c.indexing, Indexing::Virtual { alias_boundary: 4 << 20 });
        assert_eq!(Preset::Tiny.config().colours(), 4);
        assert_eq!(Preset::Pipt.config().colours(), 1);
        let coherent: Vec<_> = Preset::ALL.into_iter().filter(|p| p.config().requires_coherency).collect();
        assert_eq!(
            coherent,
            [Preset::Pa8800, Preset::Pa8800Boundary64M, Preset::Rp3440],
            "the PA8800/PA8900 machines"
        );
        let hypothetical: Vec<_> = Preset::ALL.into_iter().filter(|p| p.is_hypothetical()).collect();
        assert_eq!(hypothetical, [Preset::Pa8800Boundary64M]);
    }
}
