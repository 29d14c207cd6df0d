//! `fork`: `dup_mmap` (`kernel/fork.c`, Linux 6.x) with `flush_cache_mm` (the generic
//! `flush_cache_dup_mm`), `copy_page_range` (write-protecting private PTEs in the parent) and
//! the final `flush_tlb_mm` of the parent.

use crate::addr::{CpuId, VirtAddr};
use crate::mm::mmap::pmd_end;
use crate::mm::tlbflush::TlbFlushOwed;
use crate::mm::types::Vma;
use crate::mm::{Errno, Kernel, LockId, MmId};
use crate::pte::{PteFlags, PteKind};

impl Kernel {
    /// `fork` of `parent`: returns the child's mm.
    pub async fn sys_fork(&self, cpu: CpuId, parent: MmId) -> Result<MmId, Errno> {
        self.lock(cpu, LockId::MmapSem(parent)).await;
        let r = self.dup_mmap(cpu, parent).await;
        self.unlock(cpu, LockId::MmapSem(parent));
        r
    }

    async fn dup_mmap(&self, cpu: CpuId, parent: MmId) -> Result<MmId, Errno> {
        if self.state().mms[parent.index()].dead {
            return Err(Errno::Inval);
        }
        let child = self.create_mm().ok_or(Errno::NoMem)?;
        self.arch(cpu).flush_cache_mm(parent).await;
        // `copy_page_range` write-protects the parent's private PTEs; their TLB entries may
        // still allow writes until this flush at the end (rule 1).
        let owed = TlbFlushOwed::mm(parent);
        let vmas = self.mm_vmas(parent);
        let child_space = self.mm_space(child);
        let mut result = Ok(child);
        for pv in vmas {
            let cv = Vma { mm: child, space: child_space, ..pv };
            let cid = self.insert_vma(cv);
            if let Some(a) = pv.anon {
                self.lock(cpu, LockId::AnonVma(a)).await;
                self.state().anons[a.index()].vmas.push(cid);
                self.unlock(cpu, LockId::AnonVma(a));
            }
            if let Some(f) = pv.file {
                self.link_file_vma(cpu, f, cid).await;
            }
            // Shared file mappings and mappings without anon pages fault in lazily; a
            // kernel-buffer mapping (`VM_MIXEDMAP`) has no fault handler and is copied.
            if pv.anon.is_none() && pv.ring.is_none() {
                continue;
            }
            let cv = self.vma(cid);
            if let Err(e) = self.copy_page_range(cpu, &pv, &cv).await {
                result = Err(e);
                break;
            }
        }
        owed.flush(self, cpu).await;
        if result.is_err() {
            // Undo: tear the half-built child down.
            self.exit_mmap(cpu, child).await.ok();
        }
        result
    }

    /// `copy_page_range` (`mm/memory.c`, Linux 6.x): per page-table page, with the child's
    /// page-table lock taken and the parent's nested inside it (`copy_pte_range`), each PTE of
    /// `src` copied into `dst`:
    /// * a swap entry gains a reference to its slot and is copied (`copy_nonpresent_pte`);
    /// * a present page (`copy_present_ptes`) gains a reference and a mapping; in a COW
    ///   mapping a writable PTE is write-protected in the parent (`ptep_set_wrprotect`) and
    ///   copied read-only; the child's copy is made old (`pte_mkold`), and clean in a shared
    ///   mapping (`pte_mkclean`), then set with `set_pte_at`.
    ///
    /// The parent's write-protects are flushed from the TLBs by the caller's final
    /// `flush_tlb_mm`.
    async fn copy_page_range(&self, cpu: CpuId, src: &Vma, dst: &Vma) -> Result<(), Errno> {
        let mut va = src.start;
        while va < src.end {
            let table_end = pmd_end(va).min(src.end);
            if self.pte_slot(src.mm, va).is_some() {
                self.pte_alloc(cpu, dst.mm, va).await?;
                self.lock(cpu, LockId::Ptl(dst.mm)).await;
                self.lock(cpu, LockId::Ptl(src.mm)).await;
                while va < table_end {
                    self.copy_pte(cpu, src, dst, va).await;
                    va = va.add_pages(1);
                }
                self.unlock(cpu, LockId::Ptl(src.mm));
                self.unlock(cpu, LockId::Ptl(dst.mm));
            }
            va = table_end;
        }
        Ok(())
    }

    /// One PTE of `copy_pte_range` (both page-table locks held).
    async fn copy_pte(&self, cpu: CpuId, src: &Vma, dst: &Vma, va: VirtAddr) {
        let layout = self.layout();
        let pte = self.read_pte(cpu, src.mm, va).await;
        if layout.pte_none(pte) {
            return;
        }
        match layout.decode(pte) {
            PteKind::Swap { offset, .. } => {
                let live = {
                    let mut s = self.state();
                    match s.swap.get_mut(offset as usize) {
                        Some(sl) if !sl.is_free() => {
                            sl.count += 1;
                            true
                        }
                        _ => false,
                    }
                };
                if live {
                    self.arch(cpu).set_pte_at(dst.mm, va, pte).await;
                }
            }
            PteKind::Present { pfn, flags } if self.machine().mem.pfn_valid(pfn) => {
                let mut child = pte;
                if src.is_cow() && flags.contains(PteFlags::WRITE) {
                    self.arch(cpu).ptep_set_wrprotect(src.mm, va).await;
                    child = child.without_flags(PteFlags::WRITE);
                }
                if src.shared {
                    child = child.without_flags(PteFlags::DIRTY);
                }
                child = child.without_flags(PteFlags::ACCESSED);
                {
                    let mut s = self.state();
                    let d = &mut s.pages[pfn.index()];
                    d.refcount += 1;
                    d.mapcount += 1;
                }
                self.arch(cpu).set_pte_at(dst.mm, va, child).await;
            }
            _ => {}
        }
    }
}
