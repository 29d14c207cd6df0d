//! The arch-hook trait: the only way the shared MMU core reaches the architecture.
//!
//! Each hook has a default that is correct for a physically indexed (PIPT) cache: the cache
//! hooks do nothing, the TLB hooks purge, the PTE hooks write the PTE. A kernel lineage (see
//! the `vipt-tmpalias` crate) overrides what its kernel did differently. Each hook is a routine
//! of micro-steps: it may read PTEs, take locks and execute flush instructions, and every
//! machine action it performs through [`Kernel`] is a preemption point.
//!
//! # Ordering rules (from Linux's `cachetlb.rst`)
//!
//! The core calls the hooks in the orders generic Linux mm does, and the hooks' contracts
//! rely on them:
//!
//! 1. **Flush cache, change PTE, flush TLB.** When a present user PTE is changed or removed,
//!    the core first calls a cache hook ([`ArchHooks::flush_cache_page`],
//!    [`ArchHooks::flush_cache_range`] or [`ArchHooks::flush_cache_mm`]) while the old
//!    translation still exists, then changes the PTE, then calls a TLB hook. A VIPT flush
//!    needs the translation; doing it after the PTE is gone is the 2002 `_PAGE_FLUSH` bug.
//! 2. **Unhook, invalidate, free.** Pages and page-table pages removed from page tables are
//!    freed only after the TLB hook for their range ran ([`MmuGather`]): no CPU may still
//!    reach a frame that is being reused.
//! 3. **The kernel alias is the kernel's business.** After the kernel writes a page-cache
//!    page through its kernel address it calls [`ArchHooks::flush_dcache_page`]; before it
//!    reads one that user space may have written it calls it too.
//!
//! # Writing a hook
//!
//! Hooks return boxed futures so that the trait stays object safe (lineages are chosen by
//! name at run time):
//!
//! ```
//! use vipt_emu::mm::{ArchHooks, HookFuture, Kernel};
//! use vipt_emu::addr::{CpuId, Pfn};
//!
//! /// Flushes the kernel alias of every page the kernel writes, nothing else.
//! struct KernelAliasOnly;
//! impl ArchHooks for KernelAliasOnly {
//!     fn name(&self) -> &str { "kernel-alias-only" }
//!     fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
//!         Box::pin(async move { k.flush_kernel_page(cpu, page).await })
//!     }
//! }
//! ```
//!
//! To change one hook of an existing lineage, wrap it and return it from
//! [`ArchHooks::delegate`]: every hook the wrapper does not override is forwarded to it
//! (`tmpalias/examples/custom_lineage.rs` does this in a few lines).

use std::future::Future;
use std::pin::Pin;

use crate::addr::{CpuId, PAGE_SIZE, Pfn, SpaceId, VirtAddr};
use crate::machine::MissPolicy;
use crate::mm::Kernel;
use crate::mm::clean::CleanMode;
use crate::mm::fault::FixupMode;
use crate::mm::gather::MmuGather;
use crate::mm::hash::HashMode;
use crate::mm::types::{MmId, Vma};
use crate::pte::{Pte, PteFlags};

/// The future a hook returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A completed future (for hooks that do nothing).
pub fn ready<'a, T: 'a>(v: T) -> HookFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

/// Architecture hooks called by the shared MMU core. Defaults are the PIPT behaviour.
pub trait ArchHooks {
    /// Name of the lineage, for reports.
    fn name(&self) -> &str;

    /// The lineage this one extends, if any: every hook not overridden is forwarded to it
    /// instead of running the PIPT default. Wrapping a built-in lineage and overriding one hook
    /// then takes three methods: `name`, `delegate` and the hook.
    fn delegate(&self) -> Option<&dyn ArchHooks> {
        None
    }

    /// How the machine's software miss handlers behave under this kernel (PTE layout,
    /// `_PAGE_FLUSH` and tmpalias handling). Default: the current kernel.
    fn miss_policy(&self) -> MissPolicy {
        if let Some(d) = self.delegate() {
            return d.miss_policy();
        }
        MissPolicy::CURRENT
    }

    /// Does `mmap(MAP_FIXED)` of a shared file mapping reject a non-congruent address?
    /// Post-condition when true: every shared mapping of a file page has the file's colour.
    /// Default true (current kernels); 2.6.14 bypassed the check.
    fn map_fixed_checks_colour(&self) -> bool {
        if let Some(d) = self.delegate() {
            return d.map_fixed_checks_colour();
        }
        true
    }

    /// The order in which `try_to_unmap` flushes and clears a PTE. Post-condition of
    /// [`UnmapOrder::FlushThenClear`] (every Linux since 2.6): the cache is flushed while the
    /// translation exists (rule 1). [`UnmapOrder::ClearThenFlush`] models the 2.4.20-era
    /// rmap that cleared first, which `_PAGE_FLUSH` PTEs were invented to survive (B1).
    fn unmap_order(&self) -> UnmapOrder {
        if let Some(d) = self.delegate() {
            return d.unmap_order();
        }
        UnmapOrder::FlushThenClear
    }

    /// How `fixup_user_fault` works in this kernel (the futex path). Default:
    /// [`FixupMode::Fault`], which leaves the PTE young and dirty.
    fn fixup_mode(&self) -> FixupMode {
        if let Some(d) = self.delegate() {
            return d.fixup_mode();
        }
        FixupMode::Fault
    }

    /// How this kernel orders the TLB flush of a dirty-log clean
    /// (`clean_record_shared_mapping_range`) against the page-table lock and against other
    /// cleaners. Default: [`CleanMode::ExternalLock`], as drivers use it today.
    fn clean_mode(&self) -> CleanMode {
        if let Some(d) = self.delegate() {
            return d.clean_mode();
        }
        CleanMode::ExternalLock
    }

    /// How `hash_page` updates the PTE on a machine whose TLB misses trap to the kernel
    /// ([`MissPolicy::hash_miss`]). Default: [`HashMode::CasLoop`].
    fn hash_mode(&self) -> HashMode {
        if let Some(d) = self.delegate() {
            return d.hash_mode();
        }
        HashMode::CasLoop
    }

    /// Does `tlb_finish_mmu` wait for lockless page-table walkers (`gup_fast`, which runs
    /// with interrupts off) before it frees page-table pages (`tlb_remove_table_sync_one`,
    /// or RCU table freeing)? Post-condition when true: no walker that could have read a
    /// freed table is still inside its walk. Needed wherever the TLB flush itself does not
    /// interrupt every CPU (broadcast invalidation). Default: true.
    fn tlb_table_sync(&self) -> bool {
        if let Some(d) = self.delegate() {
            return d.tlb_table_sync();
        }
        true
    }

    // ----- PTE updates ------------------------------------------------------------------

    /// `set_pte_at`: writes `pte` at `va` of `mm`. Post-condition: the PTE holds `pte`. The
    /// default purges nothing: callers changing a present PTE flush the TLB themselves (rule 1).
    fn set_pte_at<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
        pte: Pte,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.set_pte_at(k, cpu, mm, va, pte);
        }
        Box::pin(async move { k.write_pte(cpu, mm, va, pte).await })
    }

    /// `ptep_get_and_clear`: atomically reads and clears the PTE, returning the old value.
    /// Post-condition: `pte_none` holds for the PTE. Default: writes 0.
    fn ptep_get_and_clear<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        if let Some(d) = self.delegate() {
            return d.ptep_get_and_clear(k, cpu, mm, va);
        }
        Box::pin(async move { k.xchg_pte(cpu, mm, va, Pte::NONE).await })
    }

    /// `ptep_set_wrprotect`: atomically clears `_PAGE_WRITE`. Post-condition: the PTE is
    /// read-only; TLB entries may still allow writes until the caller's TLB flush.
    fn ptep_set_wrprotect<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.ptep_set_wrprotect(k, cpu, mm, va);
        }
        Box::pin(async move {
            k.update_pte(cpu, mm, va, |p| p.without_flags(PteFlags::WRITE)).await;
        })
    }

    /// `ptep_clear_flush_young`: clears `_PAGE_ACCESSED` (page aging), returning whether it
    /// was set. Post-condition: the PTE is old. The generic version also flushes the TLB entry
    /// when the PTE was young, so the next access sets the bit again; without that flush a CPU
    /// keeps using its TLB entry and the PTE stays old.
    fn ptep_clear_flush_young<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
    ) -> HookFuture<'a, bool> {
        if let Some(d) = self.delegate() {
            return d.ptep_clear_flush_young(k, cpu, vma, va);
        }
        Box::pin(async move {
            let old = k.update_pte(cpu, vma.mm, va, |p| p.without_flags(PteFlags::ACCESSED)).await;
            let young = old.has(PteFlags::ACCESSED);
            if young {
                k.arch().flush_tlb_page(k, cpu, vma, va).await;
            }
            young
        })
    }

    /// `ptep_clear_flush`: clears the PTE and flushes its TLB entry on every CPU, returning the
    /// old value. Post-condition: no CPU translates `va` of `vma`'s mm any more. The default
    /// is the generic one: [`ArchHooks::ptep_get_and_clear`] then [`ArchHooks::flush_tlb_page`].
    fn ptep_clear_flush<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
    ) -> HookFuture<'a, Pte> {
        if let Some(d) = self.delegate() {
            return d.ptep_clear_flush(k, cpu, vma, va);
        }
        Box::pin(async move {
            let old = k.arch().ptep_get_and_clear(k, cpu, vma.mm, va).await;
            k.arch().flush_tlb_page(k, cpu, vma, va).await;
            old
        })
    }

    // ----- cache flushes for user mappings ----------------------------------------------

    /// `flush_cache_mm`: called before the core changes many PTEs of `mm` (fork, exit).
    /// Post-condition: no cache holds a dirty line of a user mapping of `mm` that differs from
    /// memory, and no line of such a mapping is stale. Default: nothing (PIPT).
    fn flush_cache_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, mm: MmId) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_cache_mm(k, cpu, mm);
        }
        ready(())
    }

    /// `flush_cache_range`: like [`ArchHooks::flush_cache_mm`] for `[start, end)` of `vma`,
    /// called before the PTEs of the range are changed (munmap, truncate). Default: nothing.
    fn flush_cache_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        start: VirtAddr,
        end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_cache_range(k, cpu, vma, start, end);
        }
        ready(())
    }

    /// `flush_cache_page`: called while the PTE of `va` in `vma` still maps `pfn`, before the
    /// core changes it (reclaim, COW, mkclean). Post-condition: memory holds every store made
    /// through that user address, and no cache holds a line of `pfn` at that address.
    /// Default: nothing.
    fn flush_cache_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        pfn: Pfn,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_cache_page(k, cpu, vma, va, pfn);
        }
        ready(())
    }

    /// `flush_dcache_page`: called after the kernel wrote page-cache page `page` through its
    /// kernel address (`write(2)`, gup), and before it reads one user space may have written
    /// (`read(2)` of a writably mapped file). Post-condition: memory and every user mapping of
    /// the page see the kernel's stores, and the kernel sees every completed user store.
    /// Default: nothing.
    fn flush_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_dcache_page(k, cpu, page);
        }
        ready(())
    }

    /// `flush_anon_page`: called by `get_user_pages` before the kernel accesses anonymous page
    /// `page` mapped at `va` of `vma`. Post-condition: the kernel alias sees every completed
    /// user store to it. Default: nothing.
    fn flush_anon_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_anon_page(k, cpu, vma, page, va);
        }
        ready(())
    }

    /// `flush_kernel_dcache_page`: writes back and invalidates the kernel alias of `page`.
    /// Default: nothing.
    fn flush_kernel_dcache_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_kernel_dcache_page(k, cpu, page);
        }
        ready(())
    }

    /// `update_mmu_cache`: called after a PTE for `va` of `vma` was installed (fault, COW,
    /// swap-in). The parisc use is the deferred kernel-alias flush of `PG_dcache_dirty`.
    /// Default: nothing.
    fn update_mmu_cache<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        va: VirtAddr,
        pte: Pte,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.update_mmu_cache(k, cpu, vma, va, pte);
        }
        ready(())
    }

    // ----- copies through kernel addresses ----------------------------------------------

    /// `copy_user_highpage`: fills `to` with the contents of `from`, which user space sees at
    /// `va` of `vma` (COW). Post-condition: `to` holds every completed user store to `from`,
    /// and a user access to `to` at `va` sees them. Default: copies line by line through the
    /// kernel aliases (correct only without aliasing).
    fn copy_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        to: Pfn,
        from: Pfn,
        va: VirtAddr,
        vma: Vma,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.copy_user_highpage(k, cpu, to, from, va, vma);
        }
        let _ = (va, vma);
        Box::pin(async move { k.copy_page_kernel(cpu, to, from).await })
    }

    /// `clear_user_highpage`: zeroes `page`, to be mapped at `va`. Post-condition: a user
    /// access at `va` reads zeros. Default: zeroes through the kernel alias.
    fn clear_user_highpage<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.clear_user_highpage(k, cpu, page, va);
        }
        let _ = va;
        Box::pin(async move { k.clear_page_kernel(cpu, page).await })
    }

    /// `copy_to_user_page`: the kernel (`access_process_vm`) stores `value` into word `word`
    /// of `page`, mapped at `va` of `vma`. Post-condition: the user mapping sees the store.
    /// Default: a store through the kernel alias.
    fn copy_to_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
        value: u64,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.copy_to_user_page(k, cpu, vma, page, va, value);
        }
        let _ = vma;
        Box::pin(async move { k.kernel_store(cpu, page.word(va.word_in_page()).kernel_va(), value).await })
    }

    /// `copy_from_user_page`: the kernel reads the word at `va` of `page`, mapped in `vma`.
    /// Post-condition: the value read is the latest completed user store. Default: a load
    /// through the kernel alias.
    fn copy_from_user_page<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        vma: Vma,
        page: Pfn,
        va: VirtAddr,
    ) -> HookFuture<'a, u64> {
        if let Some(d) = self.delegate() {
            return d.copy_from_user_page(k, cpu, vma, page, va);
        }
        let _ = vma;
        Box::pin(async move { k.kernel_load(cpu, page.word(va.word_in_page()).kernel_va()).await })
    }

    /// `kmap`: the kernel is about to access `page` through its kernel address. Default:
    /// nothing (no highmem).
    fn kmap<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.kmap(k, cpu, page);
        }
        ready(())
    }

    /// `kunmap`: the kernel has finished with `page`'s kernel address. Default: nothing.
    fn kunmap<'a>(&'a self, k: &'a Kernel, cpu: CpuId, page: Pfn) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.kunmap(k, cpu, page);
        }
        ready(())
    }

    // ----- TLB flushes ------------------------------------------------------------------

    /// `flush_tlb_page`: post-condition: no CPU holds a translation of `va` in `vma`'s mm.
    /// Default: one broadcast purge.
    fn flush_tlb_page<'a>(&'a self, k: &'a Kernel, cpu: CpuId, vma: Vma, va: VirtAddr) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_tlb_page(k, cpu, vma, va);
        }
        Box::pin(async move { k.purge_tlb(cpu, vma.space, va).await })
    }

    /// `flush_tlb_range`: post-condition: no CPU translates any page of `[start, end)` of
    /// `mm`. Default: a broadcast purge per page.
    fn flush_tlb_range<'a>(
        &'a self,
        k: &'a Kernel,
        cpu: CpuId,
        mm: MmId,
        start: VirtAddr,
        end: VirtAddr,
    ) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_tlb_range(k, cpu, mm, start, end);
        }
        Box::pin(async move {
            let space = k.mm_space(mm);
            let mut va = start.page_base();
            while va < end {
                k.purge_tlb(cpu, space, va).await;
                va = va.add_bytes(PAGE_SIZE);
            }
        })
    }

    /// `flush_tlb_mm`: post-condition: no CPU holds a translation of `mm`. Default: purges
    /// the space on every CPU.
    fn flush_tlb_mm<'a>(&'a self, k: &'a Kernel, cpu: CpuId, mm: MmId) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_tlb_mm(k, cpu, mm);
        }
        Box::pin(async move { k.purge_tlb_space(cpu, k.mm_space(mm)).await })
    }

    /// `flush_tlb_all`: post-condition: every TLB is empty. Default: flushes each CPU's TLB.
    fn flush_tlb_all<'a>(&'a self, k: &'a Kernel, cpu: CpuId) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.flush_tlb_all(k, cpu);
        }
        Box::pin(async move { k.flush_tlb_all_cpus(cpu).await })
    }

    /// mmu_gather's `tlb_flush`: called by [`MmuGather::finish`] before any gathered page or
    /// page table is freed (rule 2). Post-condition: no CPU translates any address whose PTE
    /// the gather cleared. Default: the whole mm for a full-mm gather, else the range.
    fn tlb_flush<'a>(&'a self, k: &'a Kernel, cpu: CpuId, tlb: &'a MmuGather) -> HookFuture<'a, ()> {
        if let Some(d) = self.delegate() {
            return d.tlb_flush(k, cpu, tlb);
        }
        Box::pin(async move {
            if tlb.fullmm {
                k.arch().flush_tlb_mm(k, cpu, tlb.mm).await;
            } else if let Some((start, end)) = tlb.range() {
                k.arch().flush_tlb_range(k, cpu, tlb.mm, start, end).await;
            }
        })
    }
}

/// How `try_to_unmap` orders the cache flush and the PTE clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapOrder {
    /// `flush_cache_page`, then `ptep_clear_flush` (Linux 2.6 and later).
    FlushThenClear,
    /// `ptep_clear_flush`, then `flush_cache_page` (2.4.20-era rmap; B1).
    ClearThenFlush,
}

/// The generic hooks: correct on a PIPT machine (the `pipt` lineage).
#[derive(Clone, Copy, Debug, Default)]
pub struct GenericHooks;

impl ArchHooks for GenericHooks {
    fn name(&self) -> &str {
        "pipt"
    }
}

/// Space of the kernel, for hooks that flush kernel addresses.
pub const KERNEL_SPACE: SpaceId = SpaceId::KERNEL;
