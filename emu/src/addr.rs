//! Address newtypes.
//!
//! Virtual addresses, physical addresses, page-frame numbers and virtual page numbers are
//! distinct types with private fields, so that a kernel routine cannot index the cache with a
//! physical address or walk a page table with a pfn by mistake. Conversions and the arithmetic
//! callers need are methods here; `raw()` gives the number itself for hardware index
//! computations (cache sets, table indices) and printing.

use std::fmt;

/// log2 of the page size. PA-RISC Linux uses 4 KiB pages.
pub const PAGE_SHIFT: u32 = 12;
/// Bytes in a page.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Bytes in a data word (loads and stores move one word).
pub const WORD_BYTES: u64 = 8;
/// Words in a page.
pub const WORDS_PER_PAGE: usize = (PAGE_SIZE / WORD_BYTES) as usize;
/// Start of the kernel linear map: kernel VA = `PAGE_OFFSET + PA` (32-bit parisc `__PAGE_OFFSET`).
pub const PAGE_OFFSET: u64 = 0x1000_0000;
/// The colour modulus the kernel assumes (`SHM_COLOUR`, 4 MiB): mappings congruent modulo this
/// are equivalent on every machine whose alias boundary divides it.
pub const SHM_COLOUR: u64 = 0x0040_0000;
/// Lowest user address handed out by `mmap` (below it nothing is mapped).
pub const USER_BASE: u64 = 0x0001_0000;
/// Top of user space (exclusive).
pub const TASK_SIZE: u64 = 0x0c00_0000;

/// A physical page-frame number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(u32);

/// A physical byte address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(u64);

/// A virtual byte address (in some space: see [`SpaceId`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(u64);

/// A virtual page number (`VirtAddr >> PAGE_SHIFT`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vpn(u64);

/// A PA-RISC space identifier. Space 0 is the kernel; each mm has its own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpaceId(pub u32);

impl SpaceId {
    /// The kernel's space (linear map, tmpalias window).
    pub const KERNEL: SpaceId = SpaceId(0);
}

/// A CPU of the emulated machine.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CpuId(pub u8);

impl CpuId {
    /// Index into per-CPU arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl Pfn {
    /// Frame number `n`.
    pub const fn new(n: u32) -> Self {
        Pfn(n)
    }
    /// The frame number.
    pub const fn raw(self) -> u32 {
        self.0
    }
    /// Physical address of the first byte of the frame.
    pub fn phys(self) -> PhysAddr {
        PhysAddr((self.0 as u64) << PAGE_SHIFT)
    }
    /// Physical address of word `word` of the frame.
    pub fn word(self, word: usize) -> PhysAddr {
        debug_assert!(word < WORDS_PER_PAGE);
        PhysAddr(self.phys().0 + word as u64 * WORD_BYTES)
    }
    /// The frame's address in the kernel linear map.
    pub fn kernel_va(self) -> VirtAddr {
        self.phys().kernel_va()
    }
    /// Index into per-frame arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl PhysAddr {
    /// Physical byte address `a`.
    pub const fn new(a: u64) -> Self {
        PhysAddr(a)
    }
    /// The address as a number.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// `self + bytes`.
    pub fn add_bytes(self, bytes: u64) -> PhysAddr {
        PhysAddr(self.0 + bytes)
    }
    /// The frame holding this address.
    pub fn pfn(self) -> Pfn {
        Pfn((self.0 >> PAGE_SHIFT) as u32)
    }
    /// Byte offset within the page.
    pub fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// Word index within the page.
    pub fn word_in_page(self) -> usize {
        (self.page_offset() / WORD_BYTES) as usize
    }
    /// Kernel linear-map alias of this address.
    pub fn kernel_va(self) -> VirtAddr {
        VirtAddr(PAGE_OFFSET + self.0)
    }
    /// This address rounded down to a multiple of `align` (a power of two).
    pub fn align_down(self, align: u64) -> PhysAddr {
        PhysAddr(self.0 & !(align - 1))
    }
}

impl VirtAddr {
    /// Virtual byte address `a`.
    pub const fn new(a: u64) -> Self {
        VirtAddr(a)
    }
    /// The address as a number.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// The virtual page number.
    pub fn vpn(self) -> Vpn {
        Vpn(self.0 >> PAGE_SHIFT)
    }
    /// Byte offset within the page.
    pub fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
    /// Word index within the page.
    pub fn word_in_page(self) -> usize {
        (self.page_offset() / WORD_BYTES) as usize
    }
    /// First byte of the page.
    pub fn page_base(self) -> VirtAddr {
        VirtAddr(self.0 & !(PAGE_SIZE - 1))
    }
    /// `self + n` pages.
    pub fn add_pages(self, n: u64) -> VirtAddr {
        VirtAddr(self.0 + n * PAGE_SIZE)
    }
    /// `self + bytes`.
    pub fn add_bytes(self, bytes: u64) -> VirtAddr {
        VirtAddr(self.0 + bytes)
    }
    /// Address of word `word` in this address's page.
    pub fn with_word(self, word: usize) -> VirtAddr {
        VirtAddr(self.page_base().0 + word as u64 * WORD_BYTES)
    }
    /// `self - bytes`.
    pub fn sub_bytes(self, bytes: u64) -> VirtAddr {
        VirtAddr(self.0 - bytes)
    }
    /// Whole pages from `self` up to `end` (exclusive); both page aligned.
    pub fn pages_to(self, end: VirtAddr) -> u64 {
        (end.0 - self.0) / PAGE_SIZE
    }
    /// Bytes from `self` up to `end` (`end >= self`).
    pub fn bytes_to(self, end: VirtAddr) -> u64 {
        end.0 - self.0
    }
    /// Colour of the address modulo `modulus` (a power of two): its offset within it.
    pub fn colour(self, modulus: u64) -> u64 {
        self.0 & (modulus - 1)
    }
    /// Is this a kernel linear-map address? Returns the physical address it maps.
    pub fn linear_map_phys(self) -> Option<PhysAddr> {
        self.0.checked_sub(PAGE_OFFSET).map(PhysAddr)
    }
    /// This address rounded down to a multiple of `align` (a power of two).
    pub fn align_down(self, align: u64) -> VirtAddr {
        VirtAddr(self.0 & !(align - 1))
    }
}

impl Vpn {
    /// Virtual page number `n`.
    pub const fn new(n: u64) -> Self {
        Vpn(n)
    }
    /// The page number.
    pub const fn raw(self) -> u64 {
        self.0
    }
    /// First byte of the page.
    pub fn addr(self) -> VirtAddr {
        VirtAddr(self.0 << PAGE_SHIFT)
    }
}

macro_rules! hex_debug {
    ($($t:ident => $p:literal),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($p, "{:#x}"), self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    )*};
}
hex_debug!(Pfn => "pfn:", PhysAddr => "pa:", VirtAddr => "va:", Vpn => "vpn:");

impl fmt::Debug for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sp{}", self.0)
    }
}
impl fmt::Display for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
impl fmt::Debug for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cpu{}", self.0)
    }
}
impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_map_round_trips() {
        let pfn = Pfn::new(7);
        let va = pfn.word(3).kernel_va();
        assert_eq!(va.linear_map_phys(), Some(pfn.word(3)));
        assert_eq!(va.word_in_page(), 3);
        assert_eq!(va.linear_map_phys().unwrap().pfn(), pfn);
    }

    #[test]
    fn address_arithmetic_stays_within_its_kind() {
        let a = VirtAddr::new(0x1234_5678);
        assert_eq!(a.page_base().raw(), 0x1234_5000);
        assert_eq!(a.add_pages(2).sub_bytes(2 * PAGE_SIZE), a);
        assert_eq!(a.page_base().bytes_to(a), 0x678);
        assert_eq!(a.vpn().addr(), a.page_base());
        assert_eq!(a.colour(SHM_COLOUR), 0x0034_5678);
        assert_eq!(Pfn::new(3).phys().add_bytes(8), Pfn::new(3).word(1));
    }
}
