//! `fork`: `dup_mmap` with `flush_cache_mm`, `copy_page_range` (write-protecting private
//! PTEs in the parent) and the final `flush_tlb_mm`.

use crate::addr::CpuId;
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
            // Shared file mappings and mappings without anon pages fault in lazily.
            if pv.anon.is_none() {
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

    /// Copies the PTEs of `src` into `dst`: swap entries gain a reference; present private
    /// pages are write-protected in the parent and mapped read-only in the child.
    async fn copy_page_range(&self, cpu: CpuId, src: &Vma, dst: &Vma) -> Result<(), Errno> {
        let layout = self.layout();
        let mut va = src.start;
        while va < src.end {
            if self.pte_slot(src.mm, va).is_none() {
                va = va.add_pages(1);
                continue;
            }
            self.pte_alloc(cpu, dst.mm, va).await?;
            self.lock(cpu, LockId::Ptl(src.mm)).await;
            let pte = self.read_pte(cpu, src.mm, va).await;
            if !layout.pte_none(pte) {
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
            self.unlock(cpu, LockId::Ptl(src.mm));
            va = va.add_pages(1);
        }
        Ok(())
    }
}
