//! User accesses and the page-fault path: demand faults (anon and file), COW, swap-in and the
//! dirty-bit trap.
//!
//! The fault routines follow Linux 6.x `mm/memory.c` (2.6 had the same order where it
//! matters here): every PTE of a fault is installed or changed under the page-table lock,
//! and `update_mmu_cache` runs before that lock is dropped.

use crate::addr::{CpuId, Pfn, VirtAddr};
use crate::arch::FixupMode;
use crate::machine::Trap;
use crate::mm::situations::Routine;
use crate::mm::types::{AnonVma, Mapping, Vma};
use crate::mm::{Errno, Kernel, LockId, LockMode, MmId, Obs, PageFlags, VmaId};
use crate::pte::{Pte, PteFlags, PteKind};

/// How many times a futex store may call `fixup_user_fault` before it is a livelock.
pub const MAX_FUTEX_RETRIES: usize = 16;

/// How many times one user access may trap before the core gives up (a livelock is a core
/// bug; the op then fails with [`Errno::Again`]).
pub const MAX_ACCESS_RETRIES: usize = 64;

/// PTE flags for a user page.
pub fn user_flags(vma: &Vma, writable: bool, dirty: bool) -> PteFlags {
    let mut f = PteFlags::PRESENT | PteFlags::USER | PteFlags::READ | PteFlags::ACCESSED;
    if writable {
        f |= PteFlags::WRITE;
    }
    if dirty {
        f |= PteFlags::DIRTY;
    }
    if vma.exec {
        f |= PteFlags::EXEC;
    }
    f
}

impl Kernel {
    /// A user load (`store == None`) or store at `va` of `mm` on `cpu`, with the trap
    /// handling of a real CPU: dirty-bit traps and page faults are handled and the access
    /// retried. Returns the value loaded (or stored).
    pub async fn user_access(
        &self, cpu: CpuId, mm: crate::mm::MmId, va: VirtAddr, store: Option<u64>,
    ) -> Result<u64, Errno> {
        let space = self.mm_space(mm);
        for _ in 0..MAX_ACCESS_RETRIES {
            match self.user_access_raw(cpu, space, va, store).await {
                Ok(v) => {
                    self.sit_user_access(cpu, mm, space, va, store.is_some());
                    self.observe(Obs::User { cpu, mm, va, store, value: v });
                    return Ok(v);
                }
                Err(Trap::DirtyBit) => self.dbit_trap(cpu, mm, va).await,
                Err(Trap::TlbMiss { write }) if self.hash_page(cpu, mm, va, write).await => {}
                Err(Trap::PageFault { write } | Trap::TlbMiss { write }) => {
                    self.lock_mode(cpu, LockId::MmapSem(mm), LockMode::Shared).await;
                    let r = self.handle_mm_fault(cpu, mm, va, write).await;
                    self.unlock(cpu, LockId::MmapSem(mm));
                    r?;
                }
            }
        }
        Err(Errno::Again)
    }

    /// A store with page faults disabled (the futex path): on a trap it does not fault but
    /// calls `fixup_user_fault` and retries, at most [`MAX_FUTEX_RETRIES`] times; past that it
    /// gives up with [`Errno::Again`] (a livelock).
    pub async fn futex_store(&self, cpu: CpuId, mm: MmId, va: VirtAddr, value: u64) -> Result<u64, Errno> {
        let space = self.mm_space(mm);
        for _ in 0..MAX_FUTEX_RETRIES {
            match self.user_access_raw(cpu, space, va, Some(value)).await {
                Ok(v) => {
                    self.sit_user_access(cpu, mm, space, va, true);
                    self.observe(Obs::User { cpu, mm, va, store: Some(value), value: v });
                    return Ok(v);
                }
                Err(Trap::DirtyBit) => self.dbit_trap(cpu, mm, va).await,
                // The miss handler is not a fault: it runs with page faults disabled too.
                Err(Trap::TlbMiss { write }) if self.hash_page(cpu, mm, va, write).await => {}
                Err(Trap::PageFault { .. } | Trap::TlbMiss { .. }) => {
                    self.fixup_user_fault(cpu, mm, va).await?
                }
            }
        }
        Err(Errno::Again)
    }

    /// `fixup_user_fault` for a write at `va` of `mm`: make the next atomic access succeed.
    /// How depends on [`crate::arch::ArchConfig::fixup`].
    pub async fn fixup_user_fault(&self, cpu: CpuId, mm: MmId, va: VirtAddr) -> Result<(), Errno> {
        self.lock_mode(cpu, LockId::MmapSem(mm), LockMode::Shared).await;
        let r = match self.config.fixup {
            FixupMode::Fault => self.handle_mm_fault(cpu, mm, va, true).await,
            FixupMode::Gup { marks } => match self.get_user_page(cpu, mm, va, true).await {
                Ok((vma, page)) => {
                    if marks {
                        self.gup_touch_pte(cpu, &vma, va, page).await;
                    }
                    self.put_page(page);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        self.unlock(cpu, LockId::MmapSem(mm));
        r
    }

    /// The gup that marks (the fix of [`FixupMode::Gup`] with `marks`): gup itself makes the
    /// PTE it followed young and dirty, if it still maps the page it pinned and permits the
    /// write, as Linux's `touch_pmd` does for a huge PMD: under the page-table lock,
    /// `ptep_set_access_flags` and, if that changed the PTE, `update_mmu_cache`.
    async fn gup_touch_pte(&self, cpu: CpuId, vma: &Vma, va: VirtAddr, page: Pfn) {
        let va = va.page_base();
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        let pte = self.read_pte(cpu, vma.mm, va).await;
        if self.layout().pte_present(pte) && pte.raw_pfn() == page && pte.has(PteFlags::WRITE) {
            let entry = pte.with_flags(PteFlags::ACCESSED | PteFlags::DIRTY);
            if self.arch(cpu).ptep_set_access_flags(*vma, va, entry, true).await {
                self.arch(cpu).update_mmu_cache(*vma, va, entry).await;
            }
        }
        self.unlock(cpu, LockId::Ptl(vma.mm));
    }

    /// The dirty-bit trap handler: under `pa_dbit_lock`, atomically sets `_PAGE_DIRTY` in a
    /// PTE that is still present and writable (a single read-modify-write: a PTE
    /// write-protected meanwhile stays write-protected), then drops the local TLB entry so the
    /// retried store reloads it with D set.
    pub async fn dbit_trap(&self, cpu: CpuId, mm: crate::mm::MmId, va: VirtAddr) {
        let space = self.mm_space(mm);
        let layout = self.layout();
        self.lock(cpu, LockId::PaDbit).await;
        self.update_pte(cpu, mm, va, |pte| {
            if layout.pte_present(pte) && pte.has(PteFlags::WRITE) {
                pte.with_flags(PteFlags::DIRTY | PteFlags::ACCESSED)
            } else {
                pte
            }
        })
        .await;
        self.purge_tlb_local(cpu, space, va).await;
        self.unlock(cpu, LockId::PaDbit);
    }

    /// `handle_mm_fault`, with `mmap_sem` held (shared or exclusive) by the caller.
    pub async fn handle_mm_fault(
        &self, cpu: CpuId, mm: crate::mm::MmId, va: VirtAddr, write: bool,
    ) -> Result<(), Errno> {
        let vma = self.state().find_vma(mm, va).ok_or(Errno::Segv)?;
        if (write && !vma.writable) || vma.prot_none {
            return Err(Errno::Segv);
        }
        let pte = self.read_pte(cpu, mm, va).await;
        let layout = self.layout();
        if layout.pte_none(pte) {
            if vma.ring.is_some() {
                // `vm_insert_pages` installed every PTE; a kernel-buffer mapping has no fault
                // handler (`do_fault` without `vm_ops->fault`: `VM_FAULT_SIGBUS`).
                return Err(Errno::Bus);
            }
            return match vma.file {
                Some(_) => self.do_file_fault(cpu, vma, va, write).await,
                None => self.do_anonymous_page(cpu, vma, va, write).await,
            };
        }
        match layout.decode(pte) {
            PteKind::Swap { offset, .. } => self.do_swap_page(cpu, vma, va, pte, offset, write).await,
            PteKind::Present { flags, .. } => {
                if write && !flags.contains(PteFlags::WRITE) {
                    self.do_wp_page(cpu, vma, va, pte).await
                } else {
                    self.pte_fault_access(cpu, &vma, va.page_base(), pte, write).await;
                    Ok(())
                }
            }
            // Nonlinear file PTEs are not created by this core.
            _ => Err(Errno::Segv),
        }
    }

    /// The tail of `handle_pte_fault` (`mm/memory.c`, Linux 6.x; the same in 2.6) for a
    /// present PTE `orig` that permits the access: under the page-table lock, if the PTE is
    /// still `orig`, make it young (and dirty for a write), which software-tracked young/dirty
    /// needs, with `ptep_set_access_flags`; if that changed it, `update_mmu_cache`; if not,
    /// the fault was spurious (another CPU fixed the PTE, or this CPU's TLB entry is stale)
    /// and a write calls `flush_tlb_fix_spurious_fault`, generically `flush_tlb_page`.
    async fn pte_fault_access(&self, cpu: CpuId, vma: &Vma, va: VirtAddr, orig: Pte, write: bool) {
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        if self.read_pte(cpu, vma.mm, va).await == orig {
            let entry = if write {
                orig.with_flags(PteFlags::ACCESSED | PteFlags::DIRTY)
            } else {
                orig.with_flags(PteFlags::ACCESSED)
            };
            if self.arch(cpu).ptep_set_access_flags(*vma, va, entry, write).await {
                self.arch(cpu).update_mmu_cache(*vma, va, entry).await;
            } else if write {
                self.arch(cpu).flush_tlb_page(*vma, va).await;
            }
        }
        self.unlock(cpu, LockId::Ptl(vma.mm));
    }

    /// Makes sure the PTE page for `va` exists (`pte_alloc`).
    pub async fn pte_alloc(&self, cpu: CpuId, mm: crate::mm::MmId, va: VirtAddr) -> Result<(), Errno> {
        if self.pte_slot(mm, va).is_some() {
            return Ok(());
        }
        let new = self.alloc_table_page().ok_or(Errno::NoMem)?;
        self.lock(cpu, LockId::Ptl(mm)).await;
        if self.pte_slot(mm, va).is_none() {
            let pgd = self.state().mms[mm.index()].pgd;
            self.machine().pt.set_pmd(pgd, va, Some(new));
        } else {
            self.free_table_page(new);
        }
        self.unlock(cpu, LockId::Ptl(mm));
        Ok(())
    }

    /// `anon_vma_prepare`: gives `vma` an anon object if it has none; returns the fresh snapshot.
    pub fn anon_vma_prepare(&self, vma: VmaId) -> Vma {
        let mut s = self.state();
        let mut v = s.vma(vma);
        if v.anon.is_none() {
            s.anons.push(AnonVma { vmas: vec![vma] });
            let id = crate::mm::AnonId(s.anons.len() as u32 - 1);
            v.anon = Some(id);
            s.vmas[vma.index()] = Some(v);
        }
        v
    }

    fn set_anon(&self, page: Pfn, vma: &Vma, va: VirtAddr) {
        let mut s = self.state();
        let d = &mut s.pages[page.index()];
        d.mapping = Mapping::Anon(vma.anon.expect("anon_vma prepared"));
        d.index = vma.pgoff_of(va);
    }

    /// Installs `pte`, which maps a page the caller holds a reference to, if the slot still
    /// holds `expect`. The reference becomes the mapping's. Returns false (and drops nothing)
    /// on a race.
    ///
    /// Everything happens under the page-table lock, in the order of Linux 6.x (the same in
    /// 2.6): the recheck; for a file fault (`file`: `finish_fault` → `set_pte_range`),
    /// `flush_icache_page` of the page about to be mapped; `set_pte_at`; then
    /// `update_mmu_cache`, before the lock is dropped.
    async fn install_pte(
        &self, cpu: CpuId, vma: &Vma, va: VirtAddr, expect: Pte, pte: Pte, file: bool,
    ) -> bool {
        let page = pte.raw_pfn();
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        let now = self.read_pte(cpu, vma.mm, va).await;
        let same = now == expect || (self.layout().pte_none(now) && self.layout().pte_none(expect));
        if same {
            if file {
                self.note_shmem_mapped(page, vma.mm, va);
                self.arch(cpu).flush_icache_page(*vma, page).await;
            }
            self.note_mapped(pte);
            self.arch(cpu).set_pte_at(vma.mm, va, pte).await;
            self.state().pages[page.index()].mapcount += 1;
            self.arch(cpu).update_mmu_cache(*vma, va, pte).await;
        }
        self.unlock(cpu, LockId::Ptl(vma.mm));
        same
    }

    /// `do_anonymous_page`: a zeroed private page.
    async fn do_anonymous_page(&self, cpu: CpuId, vma: Vma, va: VirtAddr, write: bool) -> Result<(), Errno> {
        self.pte_alloc(cpu, vma.mm, va).await?;
        let vma = self.anon_vma_prepare(vma.id);
        let page = self.alloc_page().ok_or(Errno::NoMem)?;
        self.arch(cpu).clear_user_highpage(page, va.page_base()).await;
        self.set_anon(page, &vma, va);
        self.set_page_flags(page, PageFlags::UPTODATE);
        let pte = self.layout().mk_pte(page, user_flags(&vma, vma.writable, write));
        let install = self.expect_install(cpu, vma.mm, va, page);
        let installed = self.install_pte(cpu, &vma, va, Pte::NONE, pte, false).await;
        install.settle(self, installed);
        if !installed {
            self.state().pages[page.index()].mapping = Mapping::None;
            self.put_page(page);
        }
        Ok(())
    }

    /// A file page: read it in if needed, then map it (shared, or private read) or copy it
    /// (private write).
    async fn do_file_fault(&self, cpu: CpuId, vma: Vma, va: VirtAddr, write: bool) -> Result<(), Errno> {
        let file = vma.file.expect("file vma");
        let pgoff = vma.pgoff_of(va);
        self.pte_alloc(cpu, vma.mm, va).await?;
        let page = self.find_lock_page(cpu, file, pgoff).await?;
        let orig = self.peek_pte(vma.mm, va);
        if !self.layout().pte_none(orig) {
            self.unlock(cpu, LockId::Page(page));
            self.put_page(page);
            return Ok(());
        }
        if write && vma.is_cow() {
            let new = match self.alloc_page() {
                Some(n) => n,
                None => {
                    self.unlock(cpu, LockId::Page(page));
                    self.put_page(page);
                    return Err(Errno::NoMem);
                }
            };
            let vma = self.cow_copy(cpu, vma, va, new, page).await;
            let pte = self.layout().mk_pte(new, user_flags(&vma, true, true));
            // The source stays locked until the copy is mapped (`do_cow_fault`): truncate
            // waits for it, so its second unmap sees the copy.
            let install = self.expect_install(cpu, vma.mm, va, new);
            let installed = self.install_pte(cpu, &vma, va, orig, pte, true).await;
            install.settle(self, installed);
            if !installed {
                self.state().pages[new.index()].mapping = Mapping::None;
                self.put_page(new);
            }
            self.unlock(cpu, LockId::Page(page));
            self.put_page(page);
            return Ok(());
        }
        let writable = vma.shared && vma.writable;
        let pte = self.layout().mk_pte(page, user_flags(&vma, writable, writable && write));
        let ok = self.install_pte(cpu, &vma, va, orig, pte, true).await;
        if ok && writable && write {
            self.set_page_flags(page, PageFlags::DIRTY);
        }
        self.unlock(cpu, LockId::Page(page));
        if !ok {
            self.put_page(page);
        }
        Ok(())
    }

    /// `do_swap_page` (`mm/memory.c`, Linux 6.x): brings the page of swap slot `slot` back
    /// and maps it. With the page locked and under the page-table lock, if the PTE is still
    /// `orig`: the slot is freed (`swap_free`) and the page leaves the swap cache if nothing
    /// else refers to the slot (`folio_free_swap`), then `flush_icache_page`, `set_pte_at`,
    /// the page unlocked, and `update_mmu_cache` before the lock is dropped. (2.6's version
    /// freed the slot before `set_pte_at` too, and unlocked the page before it.) If the page
    /// cannot be had because the slot is gone, the PTE changed under us: the fault backs out,
    /// and the access is retried.
    async fn do_swap_page(
        &self, cpu: CpuId, vma: Vma, va: VirtAddr, orig: Pte, slot: u32, write: bool,
    ) -> Result<(), Errno> {
        let page = match self.swapin_lock_page(cpu, &vma, va, slot).await {
            Ok(page) => page,
            Err(e) => {
                // Somebody else faulted the page in and freed the slot meanwhile.
                self.lock(cpu, LockId::Ptl(vma.mm)).await;
                let now = self.read_pte(cpu, vma.mm, va).await;
                self.unlock(cpu, LockId::Ptl(vma.mm));
                return if now != orig { Ok(()) } else { Err(e) };
            }
        };
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        let now = self.read_pte(cpu, vma.mm, va).await;
        if now != orig {
            self.unlock(cpu, LockId::Ptl(vma.mm));
            self.unlock(cpu, LockId::Page(page));
            self.put_page(page);
            return Ok(());
        }
        let exclusive = {
            let s = self.state();
            s.swap[slot as usize].count == 1 && s.pages[page.index()].mapcount == 0
        };
        self.swap_free(slot);
        self.try_to_free_swap(page);
        let writable = exclusive && vma.writable;
        let pte = self.layout().mk_pte(page, user_flags(&vma, writable, writable && write));
        self.arch(cpu).flush_icache_page(vma, page).await;
        self.note_mapped(pte);
        self.arch(cpu).set_pte_at(vma.mm, va, pte).await;
        self.state().pages[page.index()].mapcount += 1;
        self.unlock(cpu, LockId::Page(page));
        self.arch(cpu).update_mmu_cache(vma, va, pte).await;
        self.unlock(cpu, LockId::Ptl(vma.mm));
        Ok(())
    }

    /// `do_wp_page` (`mm/memory.c`, Linux 6.x): a write to a present read-only PTE: make it
    /// writable (`wp_page_reuse`: a shared mapping, or the only mapping of an anon page) or
    /// copy the page (`wp_page_copy`: `copy_user_highpage` without the lock, then under it,
    /// if the PTE is unchanged, `flush_cache_page` of the old page, `ptep_clear_flush`,
    /// `set_pte_at` of the copy and `update_mmu_cache`, the old page's rmap dropped last).
    /// Neither path calls `flush_icache_page`: current `wp_page_copy` does not, nor did
    /// 2.6's `do_wp_page` (`break_cow` was `ptep_establish` and `update_mmu_cache`).
    async fn do_wp_page(&self, cpu: CpuId, vma: Vma, va: VirtAddr, orig: Pte) -> Result<(), Errno> {
        let old = orig.raw_pfn();
        // `wp_can_reuse_anon_folio`: an anonymous page only this PTE maps, out of the swap
        // cache, with no other reference, and not locked (the kernel's `folio_trylock`: a
        // swap-in of another mapping of it holds the lock between freeing the swap cache and
        // mapping it).
        let can_reuse = || {
            let s = self.state();
            let d = s.pages[old.index()];
            vma.shared
                || (matches!(d.mapping, Mapping::Anon(_))
                    && d.mapcount == 1
                    && d.refcount == 1
                    && !d.flags.intersects(PageFlags::SWAPCACHE | PageFlags::LOCKED))
        };
        if can_reuse() {
            // `wp_page_reuse`, under the page-table lock: `flush_cache_page` of the page the
            // PTE maps, then the PTE made young, dirty and writable through
            // `ptep_set_access_flags`, and `update_mmu_cache` if that changed it.
            self.lock(cpu, LockId::Ptl(vma.mm)).await;
            let now = self.read_pte(cpu, vma.mm, va).await;
            // The decision stands only as long as the page is still reusable (the kernel
            // makes it under the page-table lock).
            let copy = now == orig && !can_reuse();
            if copy {
                self.unlock(cpu, LockId::Ptl(vma.mm));
            } else if now == orig {
                let va = va.page_base();
                {
                    let _r = self.enter_routine(cpu, Routine::FlushCachePage, old);
                    self.arch(cpu).flush_cache_page(vma, va, old).await;
                }
                let entry = orig.with_flags(PteFlags::WRITE | PteFlags::DIRTY | PteFlags::ACCESSED);
                if self.arch(cpu).ptep_set_access_flags(vma, va, entry, true).await {
                    self.arch(cpu).update_mmu_cache(vma, va, entry).await;
                }
                if vma.shared {
                    self.set_page_flags(old, PageFlags::DIRTY);
                }
            }
            if !copy {
                self.unlock(cpu, LockId::Ptl(vma.mm));
                return Ok(());
            }
        }
        self.get_page(old);
        let Some(new) = self.alloc_page() else {
            self.put_page(old);
            return Err(Errno::NoMem);
        };
        let vma = self.cow_copy(cpu, vma, va, new, old).await;
        self.lock(cpu, LockId::Ptl(vma.mm)).await;
        let now = self.read_pte(cpu, vma.mm, va).await;
        if now == orig {
            {
                let _r = self.enter_routine(cpu, Routine::FlushCachePage, old);
                self.arch(cpu).flush_cache_page(vma, va.page_base(), old).await;
            }
            self.arch(cpu).ptep_clear_flush(vma, va.page_base()).await;
            let pte = self.layout().mk_pte(new, user_flags(&vma, true, true));
            let install = self.expect_install(cpu, vma.mm, va, new);
            self.note_mapped(pte);
            self.arch(cpu).set_pte_at(vma.mm, va.page_base(), pte).await;
            self.state().pages[new.index()].mapcount += 1;
            install.finish(self);
            self.arch(cpu).update_mmu_cache(vma, va.page_base(), pte).await;
            self.page_remove_rmap(old);
            self.put_page(old);
            self.unlock(cpu, LockId::Ptl(vma.mm));
        } else {
            self.unlock(cpu, LockId::Ptl(vma.mm));
            self.state().pages[new.index()].mapping = Mapping::None;
            self.put_page(new);
        }
        self.put_page(old);
        Ok(())
    }

    /// The copy of a COW fault: `copy_user_highpage` of `from` into `new`, observed as one
    /// copy, then `new` made an uptodate anonymous page of `vma` at `va`. Returns the VMA
    /// with its anon object.
    async fn cow_copy(&self, cpu: CpuId, vma: Vma, va: VirtAddr, new: Pfn, from: Pfn) -> Vma {
        let copy_start = self.now();
        self.note_cow_source(from, va.page_base());
        {
            let _r = self.enter_routine(cpu, Routine::CopyUserHighpage, from);
            self.arch(cpu).copy_user_highpage(new, from, va.page_base(), vma).await;
        }
        self.observe(Obs::CowCopied { cpu, mm: vma.mm, va: va.page_base(), new, copy_start });
        let vma = self.anon_vma_prepare(vma.id);
        self.set_anon(new, &vma, va);
        self.set_page_flags(new, PageFlags::UPTODATE);
        vma
    }
}
