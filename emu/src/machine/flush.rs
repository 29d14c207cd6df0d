//! Cache and TLB maintenance: `fdc`, `pdc` (by virtual address, through a translation, or in
//! real mode by physical address), `fdce` (by index, local), TLB purges, and the tmpalias
//! registers.
//!
//! One loop, `flush_line_everywhere`, does the work of every flush by address: one line (set,
//! physical tag and virtual way, a [`LineId`]) is written back (unless purged) and invalidated
//! in every CPU's cache. The instructions differ only in how they find the line.

use crate::addr::{CpuId, PhysAddr, SpaceId, VirtAddr};
use crate::cache::LineMeta;
use crate::machine::tmpalias::TmpaliasRegs;
use crate::machine::{FlushOutcome, LineId, Machine};
use crate::trace::{Insn, What};

impl Machine {
    /// The broadcast part of `fdc`/`pdc`: on every CPU the line `id`, if present, is written
    /// back when dirty (`fdc` only) and invalidated; then the flush is logged for `cpu`. Lines
    /// of the same physical line in other sets or other virtual ways (inequivalent aliases)
    /// are not touched.
    pub(super) fn flush_line_everywhere(
        &mut self, cpu: CpuId, id: LineId, insn: Insn, space: SpaceId, va: VirtAddr,
    ) {
        let LineId { set, tag, alias } = id;
        // The CPUs holding the tag, in CPU order.
        let mut holders = self.holders_of(tag);
        while holders != 0 {
            let c = holders.trailing_zeros() as usize;
            holders &= holders - 1;
            if let Some(way) = self.cpus[c].cache.lookup(set, tag, alias) {
                if insn == Insn::Fdc && self.cpus[c].cache.meta(set, way).dirty {
                    self.write_back(CpuId(c as u8), set, way);
                }
                self.set_line(c, set, way, LineMeta::default());
                self.ev(CpuId(c as u8), What::Invalidate { set: set as u32, alias, tag, by: insn });
            }
        }
        self.ev(cpu, What::Flush { insn, space, va, tag });
    }

    #[inline]
    fn flush_by_va(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr, insn: Insn) -> FlushOutcome {
        let Some(pa) = self.translate_nonaccess(cpu, space, va) else {
            self.counters.nullified += 1;
            self.ev(cpu, What::Nullified { insn, space, va });
            return FlushOutcome::Nullified;
        };
        let id = self.line_id(va, pa);
        self.flush_line_everywhere(cpu, id, insn, space, va);
        FlushOutcome::Done { pa }
    }

    /// `fdc va`: writes back (if dirty) and invalidates the line of `va`'s translation at
    /// `va`'s index (set and virtual way), in every CPU's cache. Nullified without a
    /// translation.
    pub fn fdc(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.counters.fdc += 1;
        self.flush_by_va(cpu, space, va, Insn::Fdc)
    }

    /// `pdc va`: like [`Machine::fdc`] but discards dirty data.
    pub fn pdc(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> FlushOutcome {
        self.counters.pdc += 1;
        self.flush_by_va(cpu, space, va, Insn::Pdc)
    }

    /// `fdc` (or `pdc`) in real mode at physical address `pa`: the cache is indexed with the
    /// physical address, which is the kernel linear-map colour (`PAGE_OFFSET` is a multiple of
    /// every alias boundary), and no translation, TLB entry or miss is involved. The DMA API's
    /// cache maintenance works this way.
    pub fn flush_phys(&mut self, cpu: CpuId, pa: PhysAddr, purge: bool) {
        let insn = if purge { Insn::Pdc } else { Insn::Fdc };
        if purge {
            self.counters.pdc += 1;
        } else {
            self.counters.fdc += 1;
        }
        let va = pa.kernel_va();
        let id = self.line_id(va, pa);
        self.flush_line_everywhere(cpu, id, insn, SpaceId::KERNEL, va);
    }

    /// `fdce` over one set of `target`'s cache: every way written back if dirty and
    /// invalidated, whatever the physical tag and virtual way of its line. Local to `target`;
    /// executed by `cpu` (itself, or on its behalf by IPI).
    pub fn fdce(&mut self, cpu: CpuId, target: CpuId, set: usize) {
        self.counters.fdce += 1;
        for way in 0..self.cfg.ways {
            let m = self.cpus[target.index()].cache.meta(set, way);
            if m.valid {
                if m.dirty {
                    self.write_back(target, set, way);
                }
                self.set_line(target.index(), set, way, LineMeta::default());
                self.ev(
                    target,
                    What::Invalidate { set: set as u32, alias: m.alias, tag: m.tag, by: Insn::Fdce },
                );
            }
        }
        let _ = cpu;
    }

    /// One step of a whole-cache flush loop: `fdce` at `set` of `target`'s cache, then over
    /// every following set that holds no valid line in that cache, up to the first that holds
    /// one. The sets it passes are empty, so flushing them one by one in steps of their own,
    /// with no other CPU acting meanwhile (one of the interleavings the per-set loop allows),
    /// would change nothing but the counters: those count one `fdce` per set covered, exactly
    /// as the per-set loop does. Returns the first set not covered (the number of sets when
    /// the pass is done).
    pub fn fdce_run(&mut self, cpu: CpuId, target: CpuId, set: usize) -> usize {
        self.fdce(cpu, target, set);
        let sets = self.cfg.sets;
        let end = self.cpus[target.index()].cache.next_occupied(set + 1).unwrap_or(sets).max(set + 1);
        self.counters.fdce += (end - set - 1) as u64;
        end
    }

    /// Counts an IPI from `cpu` to `target`.
    pub fn ipi(&mut self, cpu: CpuId, target: CpuId) {
        self.counters.ipis += 1;
        let _ = (cpu, target);
    }

    // ----- TLB maintenance --------------------------------------------------------------

    /// `pdtlb,l`: purges `(space, va)` from `cpu`'s TLB only.
    pub fn purge_tlb_local(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.counters.purges_local += 1;
        self.cpus[cpu.index()].tlb.purge(space, va.vpn());
        self.ev(cpu, What::Purge { space, va, broadcast: false });
    }

    /// `pdtlb` (broadcast): purges `(space, va)` from every CPU's TLB.
    pub fn purge_tlb(&mut self, cpu: CpuId, space: SpaceId, va: VirtAddr) {
        self.counters.purges_broadcast += 1;
        for c in &mut self.cpus {
            c.tlb.purge(space, va.vpn());
        }
        self.ev(cpu, What::Purge { space, va, broadcast: true });
    }

    /// Purges every entry of `space` on every CPU (`flush_tlb_mm`).
    pub fn purge_tlb_space(&mut self, cpu: CpuId, space: SpaceId) {
        for c in &mut self.cpus {
            c.tlb.purge_space(space);
        }
        self.counters.tlb_flush_all += self.cpus.len() as u64;
        self.ev(cpu, What::PurgeSpace { space });
    }

    /// Empties `target`'s whole TLB.
    pub fn flush_tlb_cpu(&mut self, cpu: CpuId, target: CpuId) {
        self.counters.tlb_flush_all += 1;
        self.cpus[target.index()].tlb.clear();
        self.ev(cpu, What::PurgeAll { target });
    }

    /// Loads `cpu`'s tmpalias registers.
    pub fn set_tmpalias(&mut self, cpu: CpuId, regs: TmpaliasRegs) {
        self.cpus[cpu.index()].tmpalias = regs;
    }
}
