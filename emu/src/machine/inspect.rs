//! Looking at the machine without acting on it: what the caches and TLBs hold, for the
//! monitor's invariant checks, the oracle's explanations and tests. Nothing here counts as an
//! instruction or changes state.

use crate::addr::{CpuId, PAGE_SIZE, Pfn, PhysAddr, SpaceId, VirtAddr};
use crate::cache::LineMeta;
use crate::machine::Machine;

impl Machine {
    /// A CPU holding a TLB entry of a user space (not flush-only) that translates to `pfn`.
    pub fn tlb_holder(&self, pfn: Pfn) -> Option<CpuId> {
        self.cpus
            .iter()
            .position(|c| {
                c.tlb.entries().iter().any(|e| e.pfn == pfn && e.space != SpaceId::KERNEL && !e.flush_only)
            })
            .map(|i| CpuId(i as u8))
    }

    /// A CPU holding a TLB entry (not flush-only) for `va` of `space` that translates to `pfn`.
    pub fn tlb_translates(&self, space: SpaceId, va: VirtAddr, pfn: Pfn) -> Option<CpuId> {
        let vpn = va.vpn();
        self.cpus
            .iter()
            .position(|c| {
                c.tlb
                    .entries()
                    .iter()
                    .any(|e| e.space == space && e.vpn == vpn && e.pfn == pfn && !e.flush_only)
            })
            .map(|i| CpuId(i as u8))
    }

    /// `cpu`'s TLB entry (not flush-only) for `va` of `space`, if it holds one.
    pub fn tlb_entry(&self, cpu: CpuId, space: SpaceId, va: VirtAddr) -> Option<crate::tlb::TlbEntry> {
        let vpn = va.vpn();
        self.cpus[cpu.index()]
            .tlb
            .entries()
            .iter()
            .find(|e| e.space == space && e.vpn == vpn && !e.flush_only)
            .copied()
    }

    /// The line `cpu` holds for physical address `pa` when accessed through `va` (its set and
    /// virtual way, [`Machine::line_id`]).
    pub fn cached_line(&self, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Option<(LineMeta, &[u64])> {
        let id = self.line_id(va, pa);
        let c = &self.cpus[cpu.index()].cache;
        c.lookup(id.set, id.tag, id.alias).map(|w| (c.meta(id.set, w), c.data(id.set, w)))
    }

    /// The word at `pa` in any CPU's cache when accessed through `va`, dirty copies first.
    pub fn cached_word(&self, va: VirtAddr, pa: PhysAddr) -> Option<(CpuId, bool, u64)> {
        let i = self.word_in_line(pa);
        let mut found = None;
        for c in 0..self.cpus.len() {
            if let Some((m, d)) = self.cached_line(CpuId(c as u8), va, pa) {
                if m.dirty {
                    return Some((CpuId(c as u8), true, d[i]));
                }
                found.get_or_insert((CpuId(c as u8), false, d[i]));
            }
        }
        found
    }

    /// What a load through `va` of physical address `pa` would return right now, without
    /// performing one: the coherent copy at `va`'s line if any CPU holds one, else memory.
    pub fn view_word(&self, va: VirtAddr, pa: PhysAddr) -> u64 {
        self.cached_word(va, pa).map_or_else(|| self.mem.read(pa), |(_, _, v)| v)
    }

    /// Number of dirty lines in all caches whose tag lies in frame `pfn`.
    pub fn dirty_lines_of(&self, pfn: Pfn) -> usize {
        let line = self.cfg.line_bytes;
        let lo = pfn.phys().raw() / line;
        let hi = lo + PAGE_SIZE / line;
        let mut n = 0;
        for c in &self.cpus {
            for set in 0..c.cache.sets() {
                for way in 0..c.cache.ways() {
                    let m = c.cache.meta(set, way);
                    if m.dirty && (lo..hi).contains(&m.tag) {
                        n += 1;
                    }
                }
            }
        }
        n
    }
}
