//! PA-RISC Linux page-table entries: flag bits, swap and file encodings, and the
//! `translation_exists` filters used by the cache-flush code.
//!
//! Two kernel lineages are modelled (see [`PteLayout`]). In 2.6.12–2.6.14 a pte word holds the
//! pfn above bit 12 and twelve flag bits below it, one of which is `_PAGE_FLUSH`: the mark that
//! `ptep_get_and_clear()` leaves on a cleared entry so the TLB-miss handlers can still build a
//! flush-only translation to the old frame; swap entries are `type | (off&7)<<6 | (off&~7)<<8`
//! and nonlinear file entries are `pgoff<<11 | _PAGE_FILE`. The current layout has no flush
//! bit (bit 21 is `_PAGE_HPAGE`) and no file ptes, packs swap entries as
//! `type | (off&7)<<5 | (off>>3)<<10`, and borrows bit 8 (`_PAGE_ACCESSED`) as the
//! swap-exclusive marker. In both, `pte_pfn()` is just `value >> 12`, applied without looking at
//! what the entry is; swap and file entries keep their offset bits at and above bit 12, so the
//! shift turns them into a plausible pfn: `offset >> 4` for a 2.6.14 swap entry, `pgoff >> 1`
//! for a 2.6.14 file entry and `offset >> 5` for a current swap entry. The 2.6.14 filter in
//! `translation_exists()` only rejected the all-zero entry, so such entries passed it whenever
//! the pfn matched by chance; Hugh Dickins' 2.6.15 filter requires `_PAGE_PRESENT` or
//! `_PAGE_FLUSH` first, which swap and file entries never have in that layout.

use std::fmt;

use crate::addr::{PAGE_SHIFT, Pfn};

bitflags::bitflags! {
    /// PTE bits (values are masks; PA bit numbers in docs).
    ///
    /// PA-RISC numbers bits from the most significant end of a 32-bit word, so PA bit `n` is the
    /// mask `1 << (31 - n)`. All twelve flag bits live below bit 12 ([`PteFlags::MASK`]); the
    /// page-frame number sits above them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PteFlags: u64 {
        /// `_PAGE_READ`, PA bit 31: read access allowed.
        const READ = 0x001;
        /// `_PAGE_WRITE`, PA bit 30: write access allowed.
        const WRITE = 0x002;
        /// `_PAGE_EXEC`, PA bit 29: execute access allowed.
        const EXEC = 0x004;
        /// `_PAGE_GATEWAY`, PA bit 28: privilege promotion allowed.
        const GATEWAY = 0x008;
        /// `_PAGE_DMB`, PA bit 27: data memory break enable (the B bit).
        const DMB = 0x010;
        /// `_PAGE_DIRTY`, PA bit 26: page dirty (the D bit). Also `_PAGE_FILE` in 2.6.14, see
        /// [`PteFlags::FILE`].
        const DIRTY = 0x020;
        /// `_PAGE_REFTRAP`, PA bit 25: page reference trap enable (the T bit).
        const REFTRAP = 0x040;
        /// `_PAGE_NO_CACHE`, PA bit 24: uncached page (the U bit).
        const NO_CACHE = 0x080;
        /// `_PAGE_ACCESSED`, PA bit 23 (software): page accessed. In the current layout a swap
        /// entry uses this bit as its exclusive marker (`_PAGE_SWP_EXCLUSIVE`).
        const ACCESSED = 0x100;
        /// `_PAGE_PRESENT`, PA bit 22 (software): the translation is valid.
        const PRESENT = 0x200;
        /// 2.6.14 layout only: `_PAGE_FLUSH` (bit 21). In the current layout this bit is `_PAGE_HPAGE` and never set by us.
        ///
        /// Set only by 2.6.14's `ptep_get_and_clear()` (together with clearing
        /// [`PteFlags::PRESENT`]): the entry is gone for the memory manager but still names its old
        /// frame for cache flushing.
        const FLUSH = 0x400;
        /// `_PAGE_USER`, PA bit 20 (software): user-accessible page.
        const USER = 0x800;
    }
}

impl PteFlags {
    /// `_PAGE_FILE` of the 2.6.14 layout: the kernel overloads the dirty bit (PA bit 26) to mark
    /// nonlinear file ptes, which are never present.
    pub const FILE: PteFlags = PteFlags::DIRTY;
    /// the low 12 flag bits mask
    pub const MASK: u64 = 0xfff;
}

/// The exclusive marker of a current-layout swap entry (bit 8, borrowed from
/// [`PteFlags::ACCESSED`]).
const SWP_EXCLUSIVE: u64 = PteFlags::ACCESSED.bits();
/// Swap types occupy the low five bits in both layouts.
const SWP_TYPE_MASK: u64 = 0x1f;
/// Shift of the pgoff in a 2.6.14 file pte (`PTE_SHIFT`, the position just above `_PAGE_USER`).
const FILE_PGOFF_SHIFT: u32 = 11;

/// A raw PTE value as stored in a page-table word.
///
/// The value is whatever the kernel stored; what it means depends on the [`PteLayout`] (see
/// [`PteLayout::decode`]). `Debug` prints it in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({:#x})", self.0)
    }
}

impl Pte {
    /// The empty entry, value 0 (what `pte_clear()` writes).
    pub const NONE: Pte = Pte(0);

    /// The low twelve flag bits, whatever kind of entry this is (higher bits are dropped).
    pub fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0 & PteFlags::MASK)
    }

    /// `pte_pfn()` applied blindly, as the kernel does: `value >> 12`, truncated to 32 bits.
    ///
    /// Only meaningful for present and flush-only entries; for swap and file entries it yields
    /// the coincidental pfn described in the [module docs](self).
    pub fn raw_pfn(self) -> Pfn {
        Pfn::new((self.0 >> PAGE_SHIFT) as u32)
    }

    /// This entry with the flag bits in `set` also set (bits of `set` outside
    /// [`PteFlags::MASK`] are ignored, so the pfn is never disturbed).
    pub fn with_flags(self, set: PteFlags) -> Pte {
        Pte(self.0 | (set.bits() & PteFlags::MASK))
    }

    /// This entry with the flag bits in `clear` cleared (bits of `clear` outside
    /// [`PteFlags::MASK`] are ignored).
    pub fn without_flags(self, clear: PteFlags) -> Pte {
        Pte(self.0 & !(clear.bits() & PteFlags::MASK))
    }

    /// Whether every bit of `flags` is set in this entry's low twelve bits.
    pub fn has(self, flags: PteFlags) -> bool {
        self.flags().contains(flags)
    }
}

/// Which bit layout/encodings the kernel lineage uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PteLayout {
    /// 2.6.12-2.6.14 (`_PAGE_FLUSH`, swap `type | (off&7)<<6 | (off&~7)<<8`, file `pgoff<<11 | _PAGE_FILE`)
    ///
    /// `pte_none()` is true for 0 and for any entry with `_PAGE_FLUSH` set.
    Linux2614,
    /// current (no FLUSH; swap `(type&0x1f) | (off&7)<<5 | (off>>3)<<10`, bit 8 = swap-exclusive marker; no file ptes)
    ///
    /// `pte_none()` is true only for 0. Bit 21 (`0x400`) is `_PAGE_HPAGE` in present entries and
    /// offset bit 3 in swap entries.
    Current,
}

/// What a PTE means under a layout (the result of [`PteLayout::decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PteKind {
    /// value 0
    None,
    /// `_PAGE_PRESENT` set
    Present {
        /// The frame the entry maps (`value >> 12`).
        pfn: Pfn,
        /// The low twelve bits, including [`PteFlags::PRESENT`].
        flags: PteFlags,
    },
    /// 2.6.14: not present, `_PAGE_FLUSH` set: cleared by `ptep_get_and_clear`, keeps pfn (and other bits) for flushing only. pte_none() is TRUE for it.
    FlushOnly {
        /// The frame the entry used to map (`value >> 12`).
        pfn: Pfn,
        /// The low twelve bits, including [`PteFlags::FLUSH`] (and never
        /// [`PteFlags::PRESENT`]).
        flags: PteFlags,
    },
    /// swap entry
    Swap {
        /// Swap type (which swap area), below 32.
        ty: u8,
        /// Slot within the swap area, at most [`PteLayout::max_swap_offset`].
        offset: u32,
        /// Current layout: the swap-exclusive marker (bit 8). Always false for
        /// [`PteLayout::Linux2614`].
        exclusive: bool,
    },
    /// 2.6.14 nonlinear file pte
    File {
        /// Page offset in the file, at most [`PteLayout::max_file_pgoff`].
        pgoff: u32,
    },
}

impl PteLayout {
    /// `pte_none()`: 2.6.14: value 0 or `_PAGE_FLUSH` set; current: value 0.
    pub fn pte_none(self, pte: Pte) -> bool {
        match self {
            PteLayout::Linux2614 => pte.0 == 0 || pte.has(PteFlags::FLUSH),
            PteLayout::Current => pte.0 == 0,
        }
    }

    /// `pte_present()`: `_PAGE_PRESENT` set (both layouts).
    pub fn pte_present(self, pte: Pte) -> bool {
        pte.has(PteFlags::PRESENT)
    }

    /// Whether this is a nonlinear file pte. 2.6.14: not present, no `_PAGE_FLUSH`,
    /// `_PAGE_FILE` set (hence nonzero). Current: always false.
    ///
    /// The kernel's own `pte_file()` tests only `_PAGE_FILE` and relies on being called on
    /// non-present entries; this version agrees with [`PteLayout::decode`] on every value.
    pub fn pte_file(self, pte: Pte) -> bool {
        match self {
            PteLayout::Linux2614 => {
                pte.0 != 0
                    && !pte.has(PteFlags::PRESENT)
                    && !pte.has(PteFlags::FLUSH)
                    && pte.has(PteFlags::FILE)
            }
            PteLayout::Current => false,
        }
    }

    /// `pfn_pte()`: `(pfn << 12) | flags`, identical in both layouts.
    ///
    /// Any `u32` pfn fits: the value is 64 bits wide, so `pte.raw_pfn() == pfn` always holds.
    ///
    /// # Panics
    ///
    /// If `flags` has bits outside [`PteFlags::MASK`] (possible only via `from_bits_retain`).
    pub fn mk_pte(self, pfn: Pfn, flags: PteFlags) -> Pte {
        assert!(flags.bits() & !PteFlags::MASK == 0, "pte flags {flags:?} outside the low 12 bits");
        Pte((u64::from(pfn.raw()) << PAGE_SHIFT) | flags.bits())
    }

    /// `swp_entry()` as a pte: a non-exclusive swap entry for slot `offset` of swap area `ty`.
    ///
    /// `swp_entry(0, 0)` is the value 0, i.e. [`Pte::NONE`]; the kernel never hands out slot 0
    /// (it holds the swap header).
    ///
    /// # Panics
    ///
    /// If `ty >= 32` or `offset > self.max_swap_offset()`.
    pub fn swp_entry(self, ty: u8, offset: u32) -> Pte {
        self.swp_entry_exclusive(ty, offset, false)
    }

    /// A swap entry with the exclusive marker: the current layout sets bit 8 when `exclusive`;
    /// 2.6.14 has no such marker and ignores it.
    ///
    /// In 2.6.14 the bits are `type | (off&7)<<6 | (off&~7)<<8`: the type in bits 0–4, offset
    /// bits 0–2 in bits 6–8, offset bits 3 and up from bit 11; bits 5 (`_PAGE_FILE`), 9
    /// (`_PAGE_PRESENT`) and 10 (`_PAGE_FLUSH`) stay clear. Consequently
    /// `raw_pfn() == offset >> 4` whatever the type. In the current layout the bits are
    /// `type | (off&7)<<5 | exclusive<<8 | (off>>3)<<10`, bit 9 stays clear, and
    /// `raw_pfn() == offset >> 5`.
    ///
    /// # Panics
    ///
    /// If `ty >= 32` or `offset > self.max_swap_offset()`.
    pub fn swp_entry_exclusive(self, ty: u8, offset: u32, exclusive: bool) -> Pte {
        assert!(u64::from(ty) <= SWP_TYPE_MASK, "swap type {ty} does not fit 5 bits");
        assert!(
            offset <= self.max_swap_offset(),
            "swap offset {offset:#x} beyond {self:?} maximum {:#x}",
            self.max_swap_offset()
        );
        let ty = u64::from(ty);
        let off = u64::from(offset);
        match self {
            PteLayout::Linux2614 => Pte(ty | ((off & 0x7) << 6) | ((off & !0x7) << 8)),
            PteLayout::Current => {
                let excl = if exclusive { SWP_EXCLUSIVE } else { 0 };
                Pte((ty & SWP_TYPE_MASK) | ((off & 0x7) << 5) | excl | ((off >> 3) << 10))
            }
        }
    }

    /// `pgoff_to_pte()`: 2.6.14 gives `pgoff << 11 | _PAGE_FILE`, whose `raw_pfn()` is
    /// `pgoff >> 1` (file offsets `2N` and `2N + 1` both look like pfn `N`).
    ///
    /// `None` for the current layout (no file ptes) and for `pgoff` above
    /// [`PteLayout::max_file_pgoff`].
    pub fn pgoff_to_pte(self, pgoff: u32) -> Option<Pte> {
        let max = self.max_file_pgoff()?;
        (pgoff <= max).then(|| Pte((u64::from(pgoff) << FILE_PGOFF_SHIFT) | PteFlags::FILE.bits()))
    }

    /// What `pte` means under this layout.
    ///
    /// 2.6.14, in order: 0 → [`PteKind::None`]; `_PAGE_PRESENT` → [`PteKind::Present`];
    /// `_PAGE_FLUSH` → [`PteKind::FlushOnly`]; `_PAGE_FILE` → [`PteKind::File`] with
    /// `pgoff = value >> 11`; anything else → [`PteKind::Swap`] with `ty = value & 0x1f`,
    /// `offset = ((value >> 6) & 7) | ((value >> 8) & !7)`.
    ///
    /// Current: 0 → `None`; `_PAGE_PRESENT` → `Present`; anything else → `Swap` with
    /// `ty = value & 0x1f`, `offset = ((value >> 5) & 7) | ((value >> 10) << 3)`,
    /// `exclusive = value & 0x100 != 0`.
    ///
    /// Every value decodes to something. Fields are truncated to their Rust types, so values
    /// that do not fit a 32-bit pte word may decode to kinds with clipped fields.
    pub fn decode(self, pte: Pte) -> PteKind {
        let v = pte.0;
        if v == 0 {
            return PteKind::None;
        }
        if pte.has(PteFlags::PRESENT) {
            return PteKind::Present { pfn: pte.raw_pfn(), flags: pte.flags() };
        }
        match self {
            PteLayout::Linux2614 => {
                if pte.has(PteFlags::FLUSH) {
                    PteKind::FlushOnly { pfn: pte.raw_pfn(), flags: pte.flags() }
                } else if pte.has(PteFlags::FILE) {
                    PteKind::File { pgoff: (v >> FILE_PGOFF_SHIFT) as u32 }
                } else {
                    PteKind::Swap {
                        ty: (v & SWP_TYPE_MASK) as u8,
                        offset: (((v >> 6) & 0x7) | ((v >> 8) & !0x7)) as u32,
                        exclusive: false,
                    }
                }
            }
            PteLayout::Current => PteKind::Swap {
                ty: (v & SWP_TYPE_MASK) as u8,
                offset: (((v >> 5) & 0x7) | ((v >> 10) << 3)) as u32,
                exclusive: v & SWP_EXCLUSIVE != 0,
            },
        }
    }

    /// Whether `kind` has an encoding under this layout that [`PteLayout::decode`] maps back to
    /// `kind` (the domain of [`PteLayout::encode`]):
    ///
    /// * `None`: always.
    /// * `Present`: flags within [`PteFlags::MASK`] and containing `PRESENT`; any pfn.
    /// * `FlushOnly`: 2.6.14 only; flags within the mask, containing `FLUSH`, not `PRESENT`.
    /// * `Swap`: `ty < 32`, `offset <= max_swap_offset()`, `exclusive` only in the current
    ///   layout, and not the all-zero entry (`ty == 0 && offset == 0 && !exclusive` encodes as
    ///   value 0, which is `None`).
    /// * `File`: 2.6.14 only, `pgoff <= max_file_pgoff()`.
    pub fn is_encodable(self, kind: PteKind) -> bool {
        let in_mask = |f: PteFlags| f.bits() & !PteFlags::MASK == 0;
        match kind {
            PteKind::None => true,
            PteKind::Present { flags, .. } => in_mask(flags) && flags.contains(PteFlags::PRESENT),
            PteKind::FlushOnly { flags, .. } => {
                self == PteLayout::Linux2614
                    && in_mask(flags)
                    && flags.contains(PteFlags::FLUSH)
                    && !flags.contains(PteFlags::PRESENT)
            }
            PteKind::Swap { ty, offset, exclusive } => {
                u64::from(ty) <= SWP_TYPE_MASK
                    && offset <= self.max_swap_offset()
                    && (self == PteLayout::Current || !exclusive)
                    && (ty != 0 || offset != 0 || exclusive)
            }
            PteKind::File { pgoff } => self.max_file_pgoff().is_some_and(|max| pgoff <= max),
        }
    }

    /// The pte for `kind`: the inverse of [`PteLayout::decode`] on the encodable domain
    /// (`decode(encode(k)) == k` whenever [`PteLayout::is_encodable`] holds).
    ///
    /// # Panics
    ///
    /// If `kind` is not encodable under this layout (for example a `FlushOnly` or `File` kind
    /// for the current layout, or a `Present` kind without `PRESENT` in its flags).
    pub fn encode(self, kind: PteKind) -> Pte {
        assert!(self.is_encodable(kind), "{kind:?} has no {self:?} encoding");
        match kind {
            PteKind::None => Pte::NONE,
            PteKind::Present { pfn, flags } | PteKind::FlushOnly { pfn, flags } => self.mk_pte(pfn, flags),
            PteKind::Swap { ty, offset, exclusive } => self.swp_entry_exclusive(ty, offset, exclusive),
            PteKind::File { pgoff } => self.pgoff_to_pte(pgoff).expect("is_encodable checked the file pgoff"),
        }
    }

    /// The largest swap offset representable.
    ///
    /// The limit is where the encoding would overflow a 32-bit pte word, as on the 32-bit
    /// kernel the emulator models (`pte_t` holds an `unsigned long`): 2.6.14 puts offset bit 3
    /// at bit 11, leaving 24 offset bits (`2^24 - 1`); the current layout puts it at bit 10,
    /// leaving 25 (`2^25 - 1`). Larger offsets would still fit the `u64` value, but the kernel
    /// being modelled could not hold them.
    pub fn max_swap_offset(self) -> u32 {
        match self {
            PteLayout::Linux2614 => (1 << 24) - 1,
            PteLayout::Current => (1 << 25) - 1,
        }
    }

    /// The largest file pgoff representable: `2^21 - 1` for 2.6.14 (`PTE_FILE_MAX_BITS` =
    /// 32 − 11 on the 32-bit kernel), `None` for the current layout, which has no file ptes.
    pub fn max_file_pgoff(self) -> Option<u32> {
        match self {
            PteLayout::Linux2614 => Some((1 << (32 - FILE_PGOFF_SHIFT)) - 1),
            PteLayout::Current => None,
        }
    }

    /// What `ptep_get_and_clear()` leaves in the slot it clears (it returns `old` itself).
    ///
    /// 2.6.14: `old` without `_PAGE_PRESENT`, with `_PAGE_FLUSH` (a [`PteKind::FlushOnly`]
    /// entry keeping the pfn and other bits). Current: [`Pte::NONE`].
    pub fn after_get_and_clear(self, old: Pte) -> Pte {
        match self {
            PteLayout::Linux2614 => old.without_flags(PteFlags::PRESENT).with_flags(PteFlags::FLUSH),
            PteLayout::Current => Pte::NONE,
        }
    }

    /// 2.6.14 `translation_exists` pre-Hugh filter: returns true ("translation exists") unless pte_none(pte) && !(FLUSH set) -- i.e. true for present, flush-only, swap and file ptes. Current layout: use the same expression (pte != 0).
    ///
    /// Since 2.6.14's `pte_none()` is "zero or FLUSH", the expression reduces to `value != 0`
    /// in both layouts: every swap and file entry passes.
    pub fn translation_filter_2614(self, pte: Pte) -> bool {
        // The kernel's form is `!(pte_none(pte) && !(pte & _PAGE_FLUSH))`; De Morgan'd here.
        !self.pte_none(pte) || pte.has(PteFlags::FLUSH)
    }

    /// Hugh Dickins' 2.6.15 filter + pfn check: (pte & (FLUSH|PRESENT)) != 0 && pte.raw_pfn() == pfn
    ///
    /// In the 2.6.14 layout swap and file entries never have bit 9 or 10 set, so they are
    /// rejected; flush-only entries pass. The current layout reuses bit 10 as swap offset bit 3,
    /// so there this expression would let swap entries with that offset bit through (the
    /// current kernel does not use it).
    pub fn translation_matches_2615(self, pte: Pte, pfn: Pfn) -> bool {
        pte.0 & (PteFlags::FLUSH | PteFlags::PRESENT).bits() != 0 && pte.raw_pfn() == pfn
    }

    /// 2.6.14 flush_dcache_page test: translation_filter_2614(pte) && raw_pfn == pfn
    ///
    /// True for a swap entry whose `offset >> 4` (or a file entry whose `pgoff >> 1`) happens
    /// to equal `pfn`: the coincidence behind the 2.6.14 flush bug.
    pub fn translation_matches_2614(self, pte: Pte, pfn: Pfn) -> bool {
        self.translation_filter_2614(pte) && pte.raw_pfn() == pfn
    }
}

#[cfg(test)]
mod tests;
