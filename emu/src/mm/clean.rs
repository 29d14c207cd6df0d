//! Dirty-log cleaning of a shared mapping (`clean_record_shared_mapping_range`, the helper a
//! graphics driver uses to learn which pages of a device-backed buffer user space wrote).
//!
//! For each PTE mapping the file, under the page-table lock: read it ("scan"); if it is dirty,
//! clear `_PAGE_DIRTY` ("clean", `ptep_modify_prot_start`/`commit`: the PTE is taken and
//! cleared, then set clean, so a dirty-bit trap cannot slip in between) and set the page's bit in the file's dirty log. TLB entries
//! cache the D bit, so a CPU that still holds a writable, dirty translation stores without
//! trapping and without dirtying the PTE: until the TLB flush, such a store is recorded
//! nowhere but in the page itself. At the end, the log is harvested: the driver copies the
//! pages it names to the device.
//!
//! The contract (checked by the harness, "lost dirtiness"): every user store to the
//! file through a shared mapping is followed by a harvest that names its page. With the
//! flush batched after the page-table lock is dropped and cleaners not serialised
//! ([`CleanMode::Deferred`]), another cleaner can harvest the bit before the flush; a store
//! through the stale entry after that harvest lands in neither the PTE nor the log.

use crate::addr::{CpuId, VirtAddr};
use crate::arch::CleanMode;
use crate::mm::mmap::pmd_end;
use crate::mm::tlbflush::TlbFlushOwed;
use crate::mm::types::Vma;
use crate::mm::{Action, Errno, FileId, Kernel, LockId, LockMode, Obs};
use crate::pte::PteFlags;

impl Kernel {
    /// Cleans every shared mapping of `file` and harvests its dirty log; returns the bitmask
    /// of page offsets harvested.
    pub async fn clean_dirty(&self, cpu: CpuId, file: FileId) -> Result<u64, Errno> {
        let mode = self.config.clean;
        if mode == CleanMode::ExternalLock {
            self.lock(cpu, LockId::DirtyLog(file)).await;
        }
        // `i_mmap_lock_read`: cleaners walk the mappings side by side.
        self.lock_mode(cpu, LockId::IMmap(file), LockMode::Shared).await;
        let vmas: Vec<Vma> = {
            let s = self.state();
            s.files[file.index()].i_mmap.iter().map(|&v| s.vma(v)).filter(|v| v.shared).collect()
        };
        for vma in &vmas {
            self.clean_vma(cpu, file, vma, mode).await;
        }
        self.unlock(cpu, LockId::IMmap(file));
        self.label(cpu, "harvest dirty log").await;
        let pages = std::mem::take(&mut self.state().files[file.index()].dirty_log);
        self.observe(Obs::DirtySynced { cpu, file, pages });
        if mode == CleanMode::ExternalLock {
            self.unlock(cpu, LockId::DirtyLog(file));
        }
        Ok(pages)
    }

    /// `clean_record_pte` over one VMA (the `walk_page_range` of `mm/mapping_dirty_helpers.c`,
    /// Linux 6.x: per page-table page under its lock), then (unless flushing under the lock)
    /// `flush_tlb_range` over the pages it cleaned. A dirty PTE is cleaned with
    /// `ptep_modify_prot_start` and `ptep_modify_prot_commit` of `pte_mkclean` of what the
    /// start took, so no dirty-bit trap can slip in between.
    async fn clean_vma(&self, cpu: CpuId, file: FileId, vma: &Vma, mode: CleanMode) {
        let layout = self.layout();
        let mut range: Option<(VirtAddr, VirtAddr)> = None;
        let mut va = vma.start;
        while va < vma.end {
            let table_end = pmd_end(va).min(vma.end);
            if self.pte_slot(vma.mm, va).is_none() {
                va = table_end;
                continue;
            }
            self.lock(cpu, LockId::Ptl(vma.mm)).await;
            while va < table_end {
                let pte = self.read_pte(cpu, vma.mm, va).await;
                if layout.pte_present(pte) && pte.has(PteFlags::DIRTY) {
                    let old = self.ptep_modify_prot_start(cpu, vma, va).await;
                    self.ptep_modify_prot_commit(cpu, vma, va, old, old.without_flags(PteFlags::DIRTY)).await;
                    if mode == CleanMode::FlushUnderLock {
                        self.arch(cpu).flush_tlb_page(*vma, va).await;
                    }
                    let pgoff = vma.pgoff + vma.start.pages_to(va);
                    if pgoff < 64 {
                        self.state().files[file.index()].dirty_log |= 1 << pgoff;
                    }
                    let next = va.add_pages(1);
                    range = Some(range.map_or((va, next), |(s, _)| (s, next)));
                }
                va = va.add_pages(1);
            }
            self.unlock(cpu, LockId::Ptl(vma.mm));
        }
        if mode != CleanMode::FlushUnderLock
            && let Some((start, end)) = range
        {
            let owed = TlbFlushOwed::range(vma.mm, start, end);
            self.step(cpu, Action::Label("deferred flush_tlb_range")).await;
            owed.flush(self, cpu).await;
        }
    }
}
