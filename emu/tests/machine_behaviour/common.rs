//! Constants and probes shared by the machine-level and the kernel-level tests: CPUs, the
//! hand-built address space, the word the tests use, the cache-line and TLB probes.

use vipt_emu::addr::{CpuId, Pfn, PhysAddr, SpaceId, VirtAddr};
use vipt_emu::machine::Machine;
use vipt_emu::pte::PteFlags;
use vipt_emu::tlb::TlbEntry;

pub(crate) const C0: CpuId = CpuId(0);
pub(crate) const C1: CpuId = CpuId(1);
pub(crate) const C2: CpuId = CpuId(2);

/// The user space of the hand-built page tables.
pub(crate) const SP: SpaceId = SpaceId(1);
/// Page-table frames of the hand-built tables.
pub(crate) const PGD: Pfn = Pfn::new(0);
pub(crate) const PTE_PAGE: Pfn = Pfn::new(1);
/// Data frames, well apart from the tables.
pub(crate) const P: Pfn = Pfn::new(5);
pub(crate) const Q: Pfn = Pfn::new(9);

/// Colour 0 (sets 0..32 on tiny).
pub(crate) const A1: VirtAddr = VirtAddr::new(0x1_0000);
/// Colour 1: an inequivalent alias of [`A1`] when both map one frame.
pub(crate) const A2: VirtAddr = VirtAddr::new(0x1_1000);
/// `A1 + 16 KiB`: colour 0 again, an equivalent alias of [`A1`].
pub(crate) const A1_EQ: VirtAddr = VirtAddr::new(0x1_4000);
/// Colour 0, in a 2 MiB region whose pgd entry is empty (no PTE page at all).
pub(crate) const NO_TABLE: VirtAddr = VirtAddr::new(0x40_0000);

/// The word of a page the tests use (word 3 of line 0).
pub(crate) const WORD: usize = 3;
/// What memory holds at [`WORD`] of each data frame before a test stores anything.
pub(crate) const OLD_P: u64 = 0x01d0_0005;
pub(crate) const OLD_Q: u64 = 0x01d0_0009;

/// A writable, dirty, accessed user page.
pub(crate) fn rw() -> PteFlags {
    PteFlags::PRESENT
        | PteFlags::USER
        | PteFlags::READ
        | PteFlags::WRITE
        | PteFlags::DIRTY
        | PteFlags::ACCESSED
}

/// The state of one physical line in one CPU's cache, seen through one virtual index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// No valid line with that tag in that set.
    Absent,
    /// Valid, clean, holding this value at the word of interest.
    Clean(u64),
    /// Valid, dirty, holding this value at the word of interest.
    Dirty(u64),
}

/// The state of the line holding `pa` in `cpu`'s cache at the set `va` indexes.
pub(crate) fn line(m: &Machine, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Line {
    let bytes = m.config().line_bytes;
    match m.cached_line(cpu, va, pa) {
        None => Line::Absent,
        Some((meta, data)) => {
            assert!(meta.valid, "lookup returned an invalid line");
            assert_eq!(meta.tag, pa.raw() / bytes, "lookup returned another line");
            let v = data[((pa.raw() % bytes) / 8) as usize];
            if meta.dirty { Line::Dirty(v) } else { Line::Clean(v) }
        }
    }
}

/// `cpu`'s TLB entries for the page of `va` in [`SP`].
pub(crate) fn tlb_entries(m: &Machine, cpu: CpuId, va: VirtAddr) -> Vec<TlbEntry> {
    m.cpu(cpu).tlb.entries().iter().filter(|e| e.space == SP && e.vpn == va.vpn()).copied().collect()
}
