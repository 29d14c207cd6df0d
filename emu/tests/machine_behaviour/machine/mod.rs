//! Machine-level tests: page tables built by hand, instructions issued directly.

use vipt_emu::addr::{CpuId, Pfn, PhysAddr, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::{Indexing, Preset};
use vipt_emu::machine::{Machine, MissPolicy};
use vipt_emu::pte::{Pte, PteFlags, PteLayout};

use crate::common::*;

mod aliases;
mod fdc;
mod indexing;
mod tlb;

/// A tiny machine with one user space whose first 2 MiB are covered by one PTE page.
pub(crate) struct Rig {
    pub(crate) m: Machine,
    pub(crate) layout: PteLayout,
}

impl Rig {
    pub(crate) fn new(policy: MissPolicy) -> Self {
        let mut m = Machine::new(Preset::Tiny.config(), Box::new(FirstChooser));
        m.policy = policy;
        m.pt.install(PGD);
        m.pt.install(PTE_PAGE);
        m.pt.set_pmd(PGD, A1, Some(PTE_PAGE));
        m.attach_space(SP, PGD);
        m.mem.write(P.word(WORD), OLD_P);
        m.mem.write(Q.word(WORD), OLD_Q);
        Rig { m, layout: policy.layout }
    }

    pub(crate) fn current() -> Self {
        Rig::new(MissPolicy::CURRENT)
    }

    pub(crate) fn set_pte(&mut self, va: VirtAddr, pte: Pte) {
        let slot = self.m.pt.walk(PGD, va).expect("va is under the PTE page");
        self.m.pt.set_pte(slot, pte);
    }

    pub(crate) fn pte(&self, va: VirtAddr) -> Pte {
        self.m.pt.lookup(PGD, va)
    }

    pub(crate) fn map(&mut self, va: VirtAddr, pfn: Pfn, flags: PteFlags) -> Pte {
        let pte = self.layout.mk_pte(pfn, flags);
        self.set_pte(va, pte);
        pte
    }

    pub(crate) fn line(&self, cpu: CpuId, va: VirtAddr, pa: PhysAddr) -> Line {
        line(&self.m, cpu, va, pa)
    }

    pub(crate) fn mem(&self, pa: PhysAddr) -> u64 {
        self.m.mem.read(pa)
    }
}

#[test]
pub(crate) fn tiny_geometry_is_what_these_tests_assume() {
    let cfg = Preset::Tiny.config();
    assert_eq!(cfg.cpus, 4);
    assert_eq!(cfg.line_bytes, 128);
    assert_eq!((cfg.sets, cfg.ways), (128, 2));
    assert_eq!(cfg.indexing, Indexing::Virtual { alias_boundary: 16 * 1024 });
    assert_eq!(cfg.colours(), 4);
    let r = Rig::current();
    let pa = P.word(WORD);
    assert_eq!(r.m.set_index(A1.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(A1_EQ.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(NO_TABLE.with_word(WORD), pa), 0);
    assert_eq!(r.m.set_index(A2.with_word(WORD), pa), 32);
    assert!(r.m.equivalent(A1, A1_EQ));
    assert!(!r.m.equivalent(A1, A2));
    assert_eq!(r.m.pt.walk(PGD, NO_TABLE), None);
}
