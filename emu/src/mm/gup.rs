//! `get_user_pages` and `access_process_vm`: the kernel reaching into another process's
//! memory through its own alias, with `flush_anon_page` and `flush_dcache_page`.

use crate::addr::{CpuId, VirtAddr};
use crate::mm::situations::Routine;
use crate::mm::types::{Mapping, Vma};
use crate::mm::{Errno, Kernel, LockId, LockMode, MmId, Obs, PageFlags};
use crate::pte::{PteFlags, PteKind};

/// Retries of the follow-page / fault loop before giving up.
const MAX_GUP_RETRIES: usize = 16;

impl Kernel {
    /// `get_user_pages` of one page (caller holds `mmap_sem`): faults it in as needed, takes a
    /// reference, and calls `flush_anon_page` and `flush_dcache_page`.
    pub async fn get_user_page(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, write: bool,
    ) -> Result<(Vma, crate::addr::Pfn), Errno> {
        for _ in 0..MAX_GUP_RETRIES {
            let vma = self.state().find_vma(mm, va).ok_or(Errno::Segv)?;
            if (write && !vma.writable) || vma.prot_none {
                return Err(Errno::Segv);
            }
            let pte = self.read_pte(cpu, mm, va).await;
            if let PteKind::Present { pfn, flags } = self.layout().decode(pte)
                && self.machine().mem.pfn_valid(pfn)
                && (!write || flags.contains(PteFlags::WRITE))
            {
                self.get_page(pfn);
                self.observe(Obs::Pinned { cpu, mm, va });
                if matches!(self.page(pfn).mapping, Mapping::Anon(_)) {
                    {
                        let _r = self.enter_routine(cpu, Routine::FlushAnonPage, pfn);
                        self.arch(cpu).flush_anon_page(vma, pfn, va.page_base()).await;
                    }
                }
                {
                    let _r = self.enter_flush_dcache_page(cpu, pfn);
                    self.arch(cpu).flush_dcache_page(pfn).await;
                }
                return Ok((vma, pfn));
            }
            self.handle_mm_fault(cpu, mm, va, write).await?;
        }
        Err(Errno::Again)
    }

    /// `access_process_vm` of one word of `mm` at `va`: reads it, or writes `store`
    /// (`__access_remote_vm`, `mm/memory.c`, Linux 6.x: under the target's `mmap_lock`,
    /// `get_user_page_vma_remote`, then `copy_to_user_page` or `copy_from_user_page` through
    /// `kmap`). It runs in the caller's context: `current->mm` stays whatever the caller's
    /// is ([`Kernel::current_mm`]) and is not `mm`.
    pub async fn access_process_vm(
        &self, cpu: CpuId, mm: MmId, va: VirtAddr, store: Option<u64>,
    ) -> Result<u64, Errno> {
        if self.state().mms[mm.index()].dead {
            return Err(Errno::Inval);
        }
        self.lock_mode(cpu, LockId::MmapSem(mm), LockMode::Shared).await;
        let r = async {
            let (vma, page) = self.get_user_page(cpu, mm, va, store.is_some()).await?;
            self.arch(cpu).kmap(page).await;
            let v = match store {
                Some(v) => {
                    // Announced before the store can happen: the hook may flush for a long
                    // time after it, and readers meanwhile may already see the value.
                    self.observe(Obs::Remote { cpu, mm, va, store, value: v });
                    self.note_apvm(page, true);
                    {
                        let _r = self.enter_routine(cpu, Routine::CopyUserPage, page);
                        self.arch(cpu).copy_to_user_page(vma, page, va, v).await;
                    }
                    self.set_page_flags(page, PageFlags::DIRTY);
                    v
                }
                None => {
                    self.note_apvm(page, false);
                    let v = {
                        let _r = self.enter_routine(cpu, Routine::CopyUserPage, page);
                        self.arch(cpu).copy_from_user_page(vma, page, va).await
                    };
                    self.observe(Obs::Remote { cpu, mm, va, store, value: v });
                    v
                }
            };
            self.arch(cpu).kunmap(page).await;
            self.put_page(page);
            Ok(v)
        }
        .await;
        self.unlock(cpu, LockId::MmapSem(mm));
        r
    }
}

impl Kernel {
    /// `get_user_pages_fast` of one page of the current process, then a read of the word at
    /// `va` through the kernel's alias of the page it pinned.
    ///
    /// The walk takes no lock: with interrupts off (holding [`LockId::Irq`] of its own CPU)
    /// it reads the PMD, then the PTE from the page-table page the PMD named, takes a
    /// reference on the page if its count is not zero, and reads the PTE again; a changed PTE
    /// or a zero count drops to the slow path (`get_user_pages` under `mmap_sem`). The
    /// page-table page must stay a page table for the whole walk: whoever frees one waits
    /// for walkers first ([`Kernel::sync_lockless_walkers`]).
    pub async fn gup_fast_read(&self, cpu: CpuId, mm: MmId, va: VirtAddr) -> Result<u64, Errno> {
        if self.state().mms[mm.index()].dead {
            return Err(Errno::Inval);
        }
        self.local_irq_save(cpu).await;
        let pinned = self.gup_fast_walk(cpu, mm, va).await;
        self.local_irq_restore(cpu);
        let Some(page) = pinned else {
            return self.access_process_vm(cpu, mm, va, None).await;
        };
        self.observe(Obs::Pinned { cpu, mm, va });
        let v = self
            .kernel_load(
                cpu,
                page.kernel_va().with_word((va.page_offset() / crate::addr::WORD_BYTES) as usize),
            )
            .await;
        self.observe(Obs::Remote { cpu, mm, va, store: None, value: v });
        self.put_page(page);
        Ok(v)
    }

    /// The lockless part of [`Kernel::gup_fast_read`]: the pinned page, or `None` for the
    /// slow path.
    async fn gup_fast_walk(&self, cpu: CpuId, mm: MmId, va: VirtAddr) -> Option<crate::addr::Pfn> {
        use crate::mm::Action;
        let pgd = self.state().mms[mm.index()].pgd;
        self.step(cpu, Action::Label("gup_fast: read pmd")).await;
        let table = self.machine().pt.pmd(pgd, va)?;
        self.set_walker(cpu, Some(table));
        let index = crate::pgtable::pte_index(va);
        self.step(cpu, Action::PteRead { mm, va }).await;
        // A freed table was reported when it was freed; its contents are garbage now.
        let raw = {
            let m = self.machine();
            m.pt.is_table(table).then(|| m.pt.entry(table, index))?
        };
        let pte = crate::pte::Pte(raw);
        let PteKind::Present { pfn, flags } = self.layout().decode(pte) else { return None };
        if !flags.contains(PteFlags::USER) || !self.machine().mem.pfn_valid(pfn) {
            return None;
        }
        self.step(cpu, Action::Label("gup_fast: try_get_page")).await;
        if self.page(pfn).refcount == 0 {
            return None;
        }
        self.get_page(pfn);
        self.step(cpu, Action::PteRead { mm, va }).await;
        let same = {
            let m = self.machine();
            m.pt.is_table(table) && m.pt.entry(table, index) == raw && m.pt.pmd(pgd, va) == Some(table)
        };
        if !same {
            self.put_page(pfn);
            return None;
        }
        Some(pfn)
    }
}
