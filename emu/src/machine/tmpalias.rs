//! The per-CPU tmpalias window: where it sits, how an address in it is formed, and the
//! registers that say which physical pages it shows.
//!
//! The window is a kernel virtual range of 8 MiB just below the linear map, a "to" half and a
//! "from" half of 4 MiB (`SHM_COLOUR`) each. A kernel routine that must touch physical page
//! `P` at the colour of user address `uva` loads `P` into its CPU's tmpalias registers (r26 for
//! "to", r23 for "from"), purges any stale TLB entry of the window address, and accesses
//! [`alias_addr`]`(uva, half)`. The TLB miss handlers manufacture the translation from the
//! registers ([`TmpaliasRegs::page_for`]); nothing is written to any page table, and the
//! registers are private to the CPU, whose routine runs with preemption off.
//!
//! Which misses are served, and with what kind of translation, is the era's miss-handler
//! policy ([`crate::machine::MissPolicy`]): loads and stores get an ordinary translation
//! (`dtlb_check_alias`), flush instructions a flush-only one (`nadtlb_check_alias`, 3.x and
//! later) or none (2.6, where they are nullified).

use crate::addr::{PAGE_OFFSET, Pfn, SHM_COLOUR, VirtAddr};

/// Start of the window (current layout: `PAGE_OFFSET - 2 * 4 MiB`).
pub const TMPALIAS_MAP_START: u64 = PAGE_OFFSET - 2 * SHM_COLOUR;
/// Size of the window: the "to" half and the "from" half.
pub const TMPALIAS_SIZE: u64 = 2 * SHM_COLOUR;

/// A half of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// The destination half (register r26), at `TMPALIAS_MAP_START`.
    To,
    /// The source half (register r23), 4 MiB above.
    From,
}

/// Is `va` (a kernel address) inside the window?
pub fn in_window(va: VirtAddr) -> bool {
    (TMPALIAS_MAP_START..TMPALIAS_MAP_START + TMPALIAS_SIZE).contains(&va.raw())
}

/// The window address of `half` congruent to user address `uva` modulo `SHM_COLOUR`, page
/// aligned (`pacache.S`: deposit the low 22 bits of `uva` into `TMPALIAS_MAP_START`, clear the
/// page offset, and set bit 22 for the "from" half).
pub fn alias_addr(uva: VirtAddr, half: Half) -> VirtAddr {
    let off = uva.page_base().colour(SHM_COLOUR);
    let half = match half {
        Half::To => 0,
        Half::From => SHM_COLOUR,
    };
    VirtAddr::new(TMPALIAS_MAP_START + off + half)
}

/// The physical pages a CPU's window currently shows (registers r26 and r23).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TmpaliasRegs {
    /// Page behind the "to" half.
    pub to: Option<Pfn>,
    /// Page behind the "from" half.
    pub from: Option<Pfn>,
}

impl TmpaliasRegs {
    /// The page a miss at window address `va` translates to: the register of `va`'s half
    /// (the `SHM_COLOUR` bit of the address), if loaded.
    pub fn page_for(&self, va: VirtAddr) -> Option<Pfn> {
        if va.raw() & SHM_COLOUR == 0 { self.to } else { self.from }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::TASK_SIZE;

    #[test]
    fn the_window_sits_below_the_linear_map_above_user_space() {
        assert!(in_window(VirtAddr::new(TMPALIAS_MAP_START)));
        assert!(in_window(VirtAddr::new(PAGE_OFFSET - 1)));
        assert!(!in_window(VirtAddr::new(PAGE_OFFSET)));
        const { assert!(TASK_SIZE <= TMPALIAS_MAP_START) };
    }

    #[test]
    fn alias_addresses_are_congruent_with_the_user_address() {
        let uva = VirtAddr::new(0x0123_4567);
        let to = alias_addr(uva, Half::To);
        let from = alias_addr(uva, Half::From);
        assert_eq!(to.colour(SHM_COLOUR), uva.page_base().colour(SHM_COLOUR));
        assert_eq!(to.bytes_to(from), SHM_COLOUR);
        assert!(in_window(to) && in_window(from));
        assert_eq!(alias_addr(VirtAddr::new(0), Half::To).raw(), TMPALIAS_MAP_START);
        let regs = TmpaliasRegs { to: Some(Pfn::new(1)), from: Some(Pfn::new(2)) };
        assert_eq!((regs.page_for(to), regs.page_for(from)), (Some(Pfn::new(1)), Some(Pfn::new(2))));
    }
}
