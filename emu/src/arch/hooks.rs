//! The arch-hook routines, written once: [`ArchHooks`] (each routine's contract and its PIPT
//! default), [`Patch`] (change some routines of another lineage), the [`Patched`] lineage that
//! applies a patch, and [`Arch`], through which generic code and sibling routines call the
//! kernel's routines.
//!
//! The list below is the single place a routine is declared. The macro that reads it emits
//! the four views of it, so a routine added here is at once overridable, patchable, forwarded
//! by every [`Patched`] lineage and callable through [`Arch`]: no wrapper can lose one.

use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::ArchCtx;
use crate::mm::Errno;
use crate::mm::gather::MmuGather;
use crate::mm::mmap::MmapArgs;
use crate::mm::types::{MmId, Vma};
use crate::pte::{Pte, PteFlags};

use super::HookFuture;

/// Emits [`ArchHooks`], [`Patch`], `impl ArchHooks for Patched<P>` and the [`Arch`] methods
/// from one list of routines: `fn name<'a>(cx, arg: Type, ...) -> Output { PIPT default }`.
macro_rules! arch_routines {
    ($(
        $(#[$doc:meta])*
        fn $name:ident<$lt:lifetime>($cx:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block
    )*) => {
        /// The architecture's routines, as the shared MMU core calls them. Each default is
        /// correct on a physically indexed (PIPT) cache: the cache routines do nothing, the TLB
        /// routines purge, the PTE routines write the PTE. A lineage overrides what its kernel
        /// does differently.
        ///
        /// Every routine runs on one CPU as micro-steps: it receives an [`ArchCtx`], the
        /// CPU-bound handle that offers what architecture code may do (cache and TLB
        /// instructions, the tmpalias window, PTE reads and writes, the locks arch code takes,
        /// page copies through the kernel alias, and the sibling routines through
        /// [`ArchCtx::arch`]), and every machine action it performs is a preemption point.
        ///
        /// # Ordering rules (Linux's `Documentation/core-api/cachetlb.rst`)
        ///
        /// The core calls the routines in the order generic Linux mm does, and the contracts
        /// below rely on it:
        ///
        /// 1. **Flush cache, change PTE, flush TLB.** When a present user PTE is changed or
        ///    removed, the core first calls a cache routine ([`ArchHooks::flush_cache_page`],
        ///    [`ArchHooks::flush_cache_range`] or [`ArchHooks::flush_cache_mm`]) while the old
        ///    translation still exists, then changes the PTE, then calls a TLB routine. A VIPT
        ///    flush needs the translation; doing it after the PTE is gone is the 2002
        ///    `_PAGE_FLUSH` bug.
        /// 2. **Unhook, invalidate, free.** Pages and page-table pages removed from page tables
        ///    are freed only after the TLB routine for their range ran ([`MmuGather`]): no CPU
        ///    may still reach a frame that is being reused.
        /// 3. **The kernel alias is the kernel's business.** After the kernel writes a
        ///    page-cache page through its kernel address it calls
        ///    [`ArchHooks::flush_dcache_page`]; before it reads one that user space may have
        ///    written it calls it too.
        ///
        /// # Writing a routine
        ///
        /// Routines return boxed futures so that the trait stays object safe (lineages are
        /// chosen by name at run time):
        ///
        /// ```
        /// use vipt_emu::addr::Pfn;
        /// use vipt_emu::arch::{ArchCtx, ArchHooks, HookFuture};
        /// use vipt_emu::addr::SpaceId;
        ///
        /// /// Flushes the kernel alias of every page the kernel writes, nothing else.
        /// struct KernelAliasOnly;
        /// impl ArchHooks for KernelAliasOnly {
        ///     fn flush_dcache_page<'a>(&'a self, cx: ArchCtx<'a>, page: Pfn) -> HookFuture<'a, ()> {
        ///         Box::pin(async move {
        ///             cx.flush_page_lines(SpaceId::KERNEL, page.kernel_va()).await;
        ///         })
        ///     }
        /// }
        /// ```
        ///
        /// To change some routines of an existing lineage, write a [`Patch`] and apply it with
        /// [`Patched`]: every routine the patch does not replace stays the base lineage's.
        pub trait ArchHooks {
            $(
                $(#[$doc])*
                #[allow(unused_variables)]
                fn $name<$lt>(&$lt self, $cx: ArchCtx<$lt> $(, $arg: $ty)*) -> HookFuture<$lt, $ret> $body
            )*
        }

        /// Changes to some routines of a base lineage. Each method receives the base
        /// lineage's routines (`base`, to call the original) and defaults to calling it, so a
        /// patch states only what differs. Apply one with [`Patched::new`].
        ///
        /// Inside a patched routine, [`ArchCtx::arch`] still calls the outermost lineage:
        /// sibling calls see every patch.
        pub trait Patch {
            $(
                #[doc = concat!("Replaces [`ArchHooks::", stringify!($name), "`]. Default: the base lineage's.")]
                fn $name<$lt>(
                    &$lt self,
                    base: &$lt dyn ArchHooks,
                    $cx: ArchCtx<$lt>
                    $(, $arg: $ty)*
                ) -> HookFuture<$lt, $ret> {
                    base.$name($cx $(, $arg)*)
                }
            )*
        }

        impl<P: Patch> ArchHooks for Patched<P> {
            $(
                fn $name<$lt>(&$lt self, $cx: ArchCtx<$lt> $(, $arg: $ty)*) -> HookFuture<$lt, $ret> {
                    self.patch.$name(&*self.base, $cx $(, $arg)*)
                }
            )*
        }

        $(
            impl<$lt> Arch<$lt> {
                #[doc = concat!("Runs [`ArchHooks::", stringify!($name), "`] of the kernel's lineage on this CPU.")]
                ///
                /// When the machine records its trace, the routine's begin and end are
                /// recorded too ([`crate::trace::What::Routine`]); otherwise this costs one
                /// flag test.
                pub fn $name(self $(, $arg: $ty)*) -> HookFuture<$lt, $ret> {
                    let f = self.cx.hooks().$name(self.cx $(, $arg)*);
                    if !self.cx.tracing() {
                        return f;
                    }
                    let cx = self.cx;
                    Box::pin(async move {
                        cx.routine(stringify!($name), true);
                        let r = f.await;
                        cx.routine(stringify!($name), false);
                        r
                    })
                }
            }
        )*
    };
}

arch_routines! {
    // ----- PTE updates ------------------------------------------------------------------

    /// `set_pte_at`: writes `pte` at `va` of `mm`. Post-condition: the PTE holds `pte`. The
    /// default purges nothing: callers changing a present PTE flush the TLB themselves
    /// (rule 1). The core calls it with the page-table lock of `mm` held.
    fn set_pte_at<'a>(cx, mm: MmId, va: VirtAddr, pte: Pte) -> () {
        Box::pin(async move { cx.write_pte(mm, va, pte).await })
    }

    /// `ptep_get_and_clear`: atomically reads and clears the PTE, returning the old value.
    /// Post-condition: `pte_none` holds for the PTE. Default: writes 0.
    fn ptep_get_and_clear<'a>(cx, mm: MmId, va: VirtAddr) -> Pte {
        Box::pin(cx.xchg_pte(mm, va, Pte::NONE))
    }

    /// `pte_clear`: writes `pte_none` at `va` of `mm` over a PTE that is not present: the zap
    /// of a swap entry (`zap_nonpresent_ptes` → `clear_not_present_full_ptes` in Linux 6.x),
    /// with the page-table lock held, after the entry's slot reference was dropped.
    /// Post-condition: `pte_none` holds for the PTE. Default: writes 0.
    fn pte_clear<'a>(cx, mm: MmId, va: VirtAddr) -> () {
        Box::pin(cx.write_pte(mm, va, Pte::NONE))
    }

    /// `ptep_set_access_flags`: makes the present PTE at `va` of `vma` the more permissive
    /// `entry` (young, dirty, writable) after a fault on a mapping that already translates,
    /// returning whether it changed. The core calls it with the page-table lock held from
    /// `wp_page_reuse` (after [`ArchHooks::flush_cache_page`]), from the young/dirty tail of
    /// `handle_pte_fault`, and from a gup that marks the PTE it followed; when it returns true
    /// the caller then calls [`ArchHooks::update_mmu_cache`]. Post-condition: the PTE holds
    /// `entry` and, when it changed, no CPU still uses the old translation. Default: the
    /// generic one (`mm/pgtable-generic.c`): [`ArchHooks::set_pte_at`] then
    /// `flush_tlb_fix_spurious_fault`, generically [`ArchHooks::flush_tlb_page`], if the PTE
    /// differs.
    fn ptep_set_access_flags<'a>(cx, vma: Vma, va: VirtAddr, entry: Pte, dirty: bool) -> bool {
        Box::pin(async move {
            let _ = dirty;
            let changed = cx.read_pte(vma.mm, va).await != entry;
            if changed {
                cx.arch().set_pte_at(vma.mm, va, entry).await;
                cx.arch().flush_tlb_page(vma, va).await;
            }
            changed
        })
    }

    /// `ptep_set_wrprotect`: atomically clears `_PAGE_WRITE`. Post-condition: the PTE is
    /// read-only; TLB entries may still allow writes until the caller's TLB flush (rule 1).
    fn ptep_set_wrprotect<'a>(cx, mm: MmId, va: VirtAddr) -> () {
        Box::pin(async move {
            cx.update_pte(mm, va, |p| p.without_flags(PteFlags::WRITE)).await;
        })
    }

    /// `ptep_clear_flush_young`: clears `_PAGE_ACCESSED` (page aging), returning whether it
    /// was set. Post-condition: the PTE is old. The generic version also flushes the TLB entry
    /// when the PTE was young, so the next access sets the bit again; without that flush a CPU
    /// keeps using its TLB entry and the PTE stays old.
    fn ptep_clear_flush_young<'a>(cx, vma: Vma, va: VirtAddr) -> bool {
        Box::pin(async move {
            let old = cx.update_pte(vma.mm, va, |p| p.without_flags(PteFlags::ACCESSED)).await;
            let young = old.has(PteFlags::ACCESSED);
            if young {
                cx.arch().flush_tlb_page(vma, va).await;
            }
            young
        })
    }

    /// `ptep_clear_flush`: clears the PTE and flushes its TLB entry on every CPU, returning the
    /// old value. Post-condition: no CPU translates `va` of `vma`'s mm any more. The default
    /// is the generic one: [`ArchHooks::ptep_get_and_clear`] then
    /// [`ArchHooks::flush_tlb_page`].
    fn ptep_clear_flush<'a>(cx, vma: Vma, va: VirtAddr) -> Pte {
        Box::pin(async move {
            let old = cx.arch().ptep_get_and_clear(vma.mm, va).await;
            cx.arch().flush_tlb_page(vma, va).await;
            old
        })
    }

    // ----- cache flushes for user mappings ----------------------------------------------

    /// `flush_cache_mm`: called before the core changes many PTEs of `mm` (fork, exit), while
    /// they still translate (rule 1). Post-condition: no cache holds a dirty line of a user
    /// mapping of `mm` that differs from memory, and no line of such a mapping is stale.
    /// Default: nothing (PIPT).
    fn flush_cache_mm<'a>(cx, mm: MmId) -> () {
        super::ready(())
    }

    /// `flush_cache_range`: like [`ArchHooks::flush_cache_mm`] for `[start, end)` of `vma`,
    /// called before the PTEs of the range are changed: by `tlb_start_vma` for the whole VMA
    /// when a zap (munmap, truncate) or an mprotect walks it, unless the whole mm goes.
    /// Default: nothing.
    fn flush_cache_range<'a>(cx, vma: Vma, start: VirtAddr, end: VirtAddr) -> () {
        super::ready(())
    }

    /// `flush_cache_page`: called while the PTE of `va` in `vma` still maps `pfn`, before the
    /// core changes it (reclaim, COW, mkclean; rule 1). Post-condition: memory holds every
    /// store made through that user address, and no cache holds a line of `pfn` at that
    /// address. Default: nothing.
    fn flush_cache_page<'a>(cx, vma: Vma, va: VirtAddr, pfn: Pfn) -> () {
        super::ready(())
    }

    /// `flush_dcache_page`: called after the kernel wrote page-cache page `page` through its
    /// kernel address (`write(2)`, gup), and before it reads one user space may have written
    /// (`read(2)` of a writably mapped file; rule 3). Post-condition: memory and every user
    /// mapping of the page see the kernel's stores, and the kernel sees every completed user
    /// store. Default: nothing.
    fn flush_dcache_page<'a>(cx, page: Pfn) -> () {
        super::ready(())
    }

    /// `flush_anon_page`: called by `get_user_pages` before the kernel accesses anonymous page
    /// `page` mapped at `va` of `vma`. Post-condition: the kernel alias sees every completed
    /// user store to it. Default: nothing.
    fn flush_anon_page<'a>(cx, vma: Vma, page: Pfn, va: VirtAddr) -> () {
        super::ready(())
    }

    /// `flush_icache_page` (`flush_icache_pages` for one page): called with the page-table
    /// lock held, just before the PTE that maps `page` at a user address of `vma` is set, by
    /// a file fault (`finish_fault` → `set_pte_range`, for the page-cache page and for the
    /// private copy of a write fault alike) and by swap-in (`do_swap_page`); not by COW
    /// (`wp_page_copy`, nor 2.6's `do_wp_page`) and not by an anonymous zero-fill.
    /// Post-condition: the instruction cache, and on architectures that flush through it the
    /// kernel alias, hold nothing of `page` that the new user mapping would see stale.
    /// Default: nothing (PIPT; the I-cache is not modelled).
    fn flush_icache_page<'a>(cx, vma: Vma, page: Pfn) -> () {
        super::ready(())
    }

    /// `update_mmu_cache`: called after a PTE for `va` of `vma` was installed or made more
    /// permissive (anonymous and file faults, COW, write-fault reuse and the young/dirty tail
    /// when [`ArchHooks::ptep_set_access_flags`] changed the PTE, swap-in), with the
    /// page-table lock still held, as Linux calls it before `pte_unmap_unlock`.
    /// Post-condition: the architecture's caches of translations and of the kernel alias agree
    /// with the new PTE; the parisc use is the deferred kernel-alias flush of
    /// `PG_dcache_dirty`. Default: nothing.
    fn update_mmu_cache<'a>(cx, vma: Vma, va: VirtAddr, pte: Pte) -> () {
        super::ready(())
    }

    // ----- copies through kernel addresses ----------------------------------------------

    /// `copy_user_highpage`: fills `to` with the contents of `from`, which user space sees at
    /// `va` of `vma` (COW). Post-condition: `to` holds every completed user store to `from`,
    /// and a user access to `to` at `va` sees them. Default: copies line by line through the
    /// kernel aliases (correct only without aliasing).
    fn copy_user_highpage<'a>(cx, to: Pfn, from: Pfn, va: VirtAddr, vma: Vma) -> () {
        Box::pin(cx.copy_page_kernel(to, from))
    }

    /// `clear_user_highpage`: zeroes `page`, to be mapped at `va`. Post-condition: a user
    /// access at `va` reads zeros. Default: zeroes through the kernel alias.
    fn clear_user_highpage<'a>(cx, page: Pfn, va: VirtAddr) -> () {
        Box::pin(cx.clear_page_kernel(page))
    }

    /// `copy_to_user_page`: the kernel (`access_process_vm`) stores `value` into the word of
    /// `page` at `va`'s offset, the page being mapped at `va` of `vma`. Post-condition: the
    /// user mapping sees the store. Default: a store through the kernel alias.
    fn copy_to_user_page<'a>(cx, vma: Vma, page: Pfn, va: VirtAddr, value: u64) -> () {
        Box::pin(cx.kernel_store(page.word(va.word_in_page()).kernel_va(), value))
    }

    /// `copy_from_user_page`: the kernel reads the word at `va` of `page`, mapped in `vma`.
    /// Post-condition: the value read is the latest completed user store. Default: a load
    /// through the kernel alias.
    fn copy_from_user_page<'a>(cx, vma: Vma, page: Pfn, va: VirtAddr) -> u64 {
        Box::pin(cx.kernel_load(page.word(va.word_in_page()).kernel_va()))
    }

    /// `kmap`: the kernel is about to access `page` through its kernel address. Default:
    /// nothing (no highmem).
    fn kmap<'a>(cx, page: Pfn) -> () {
        super::ready(())
    }

    /// `kunmap`: the kernel has finished with `page`'s kernel address. Post-condition: no
    /// line of the kernel alias the architecture must not keep is left. Default: nothing.
    fn kunmap<'a>(cx, page: Pfn) -> () {
        super::ready(())
    }

    // ----- address-space layout ---------------------------------------------------------

    /// `arch_get_unmapped_area`: where `mmap` places the new mapping `args` of `mm` (its
    /// start), or the error `mmap` returns. Called by `mmap` with `mmap_sem` held, before the
    /// VMA exists; it takes no step. Post-condition: the returned range is free in `mm` and,
    /// for `MAP_FIXED`, starts at the address asked for. Where a mapping lands decides which
    /// mappings of a page are equivalent aliases, so it is the architecture's policy.
    /// Default: the current parisc policy ([`crate::mm::Kernel::get_unmapped_area_coloured`]),
    /// kept as the default so every lineage without an era policy of its own places as today's
    /// kernel does; a generic kernel places first-fit, which on a PIPT machine makes no
    /// difference to the caches.
    fn arch_get_unmapped_area<'a>(cx, mm: MmId, args: MmapArgs) -> Result<VirtAddr, Errno> {
        Box::pin(async move { cx.get_unmapped_area_coloured(mm, &args) })
    }

    // ----- TLB flushes ------------------------------------------------------------------

    /// `flush_tlb_page`: post-condition: no CPU holds a translation of `va` in `vma`'s mm.
    /// Default: one broadcast purge.
    fn flush_tlb_page<'a>(cx, vma: Vma, va: VirtAddr) -> () {
        Box::pin(cx.purge_tlb(vma.space, va))
    }

    /// `flush_tlb_range`: post-condition: no CPU translates any page of `[start, end)` of
    /// `mm`. Default: a broadcast purge per page.
    fn flush_tlb_range<'a>(cx, mm: MmId, start: VirtAddr, end: VirtAddr) -> () {
        Box::pin(async move {
            let space = cx.mm_space(mm);
            let mut va = start.page_base();
            while va < end {
                cx.purge_tlb(space, va).await;
                va = va.add_bytes(PAGE_SIZE);
            }
        })
    }

    /// `flush_tlb_mm`: post-condition: no CPU holds a translation of `mm`. Default: purges
    /// the space on every CPU.
    fn flush_tlb_mm<'a>(cx, mm: MmId) -> () {
        Box::pin(cx.purge_tlb_space(cx.mm_space(mm)))
    }

    /// mmu_gather's `tlb_flush`: called by `tlb_flush_mmu_tlbonly` whenever the gather owes a
    /// flush: at the end of each VMA's walk ([`MmuGather::end_vma`], before the VMA is
    /// unlinked and page tables are freed; not for a full-mm gather) and in
    /// [`MmuGather::finish`], before any gathered page or page table is freed (rule 2).
    /// Post-condition: no CPU translates any address whose PTE the gather cleared since its
    /// last flush. Default: the whole mm for a full-mm gather, else the range.
    fn tlb_flush<'a>(cx, tlb: &'a MmuGather) -> () {
        Box::pin(async move {
            if tlb.fullmm {
                cx.arch().flush_tlb_mm(tlb.mm).await;
            } else if let Some((start, end)) = tlb.range() {
                cx.arch().flush_tlb_range(tlb.mm, start, end).await;
            }
        })
    }
}

/// A lineage made of a base lineage and a [`Patch`]: the patch's routines where it has them,
/// the base's everywhere else. The knobs ([`crate::arch::ArchConfig`]) are a separate value:
/// a patched lineage starts from its base's and changes what it states.
pub struct Patched<P> {
    base: Box<dyn ArchHooks>,
    patch: P,
}

impl<P: Patch> Patched<P> {
    /// `base` with `patch` applied.
    pub fn new(base: Box<dyn ArchHooks>, patch: P) -> Self {
        Patched { base, patch }
    }
}

/// The kernel's routines, called on one CPU: what [`ArchCtx::arch`] and the core's
/// [`crate::mm::Kernel::arch`] return. Each method runs the outermost lineage's routine, so a
/// patch applies wherever the routine is called from.
#[derive(Clone, Copy)]
pub struct Arch<'a> {
    pub(super) cx: ArchCtx<'a>,
}

/// The generic routines: correct on a PIPT machine (the `pipt` lineage).
#[derive(Clone, Copy, Debug, Default)]
pub struct GenericHooks;

impl ArchHooks for GenericHooks {}
