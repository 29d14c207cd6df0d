//! Shared set-up for the criterion benchmarks.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use vipt_emu::addr::{CpuId, Pfn, SpaceId, VirtAddr};
use vipt_emu::choice::FirstChooser;
use vipt_emu::config::Preset;
use vipt_emu::machine::Machine;
use vipt_emu::pte::PteFlags;

/// Pages the emulator benchmark touches.
pub const PAGES: u64 = 16;
/// First user address of them.
pub const BASE: u64 = 0x0010_0000;

/// A `preset` machine with space 1 mapping [`PAGES`] writable, dirty pages at [`BASE`]: the
/// set-up of the emulator throughput benchmark (no kernel: raw loads and stores).
pub fn machine_with_pages(preset: Preset) -> Machine {
    let mut m = Machine::new(preset.config(), Box::new(FirstChooser));
    let (pgd, table) = (Pfn::new(0), Pfn::new(1));
    m.pt.install(pgd);
    m.pt.install(table);
    m.pt.set_pmd(pgd, VirtAddr::new(BASE), Some(table));
    m.attach_space(SpaceId(1), pgd);
    let flags = PteFlags::PRESENT
        | PteFlags::USER
        | PteFlags::READ
        | PteFlags::WRITE
        | PteFlags::DIRTY
        | PteFlags::ACCESSED;
    for p in 0..PAGES {
        let va = VirtAddr::new(BASE).add_pages(p);
        let slot = m.pt.walk(pgd, va).expect("table installed");
        let pte = m.policy.layout.mk_pte(Pfn::new(2 + p as u32), flags);
        m.pt.set_pte(slot, pte);
    }
    m
}

/// `n` accesses spread over the pages (a word every 136 bytes, so lines and sets vary), one
/// store in four: returns a checksum so the work cannot be optimised away.
pub fn access_loop(m: &mut Machine, cpu: CpuId, n: u64) -> u64 {
    let span = PAGES * 4096;
    let mut sum = 0u64;
    for i in 0..n {
        let va = VirtAddr::new(BASE + (i * 136) % span).align_down(8);
        if i % 4 == 0 {
            m.store(cpu, SpaceId(1), va, i).expect("mapped");
        } else {
            sum = sum.wrapping_add(m.load(cpu, SpaceId(1), va).expect("mapped"));
        }
    }
    sum
}

/// `n` fuzz inputs of `len` bytes each, the same on every run (a fixed xorshift stream): what
/// the `scenario` fuzz target's throughput is measured on, without libFuzzer around it.
pub fn fuzz_inputs(n: usize, len: usize) -> Vec<Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        })
        .collect()
}
