//! Tests of the MMU core through the sequential driver.

use super::*;
use crate::choice::FirstChooser;
use crate::config::Preset;
use crate::machine::Machine;
use crate::mm::mmap::MmapArgs;

pub(crate) fn kernel(preset: Preset, hooks: Box<dyn ArchHooks>) -> Kernel {
    let m = Machine::new(preset.config(), hooks.miss_policy(), Box::new(FirstChooser));
    Kernel::new(m, hooks)
}

const C0: CpuId = CpuId(0);
const C1: CpuId = CpuId(1);

fn run(k: &Kernel, ops: &[(CpuId, Op)]) -> Vec<OpResult> {
    Executor::new(k).run_sequential(ops).unwrap()
}

fn one(k: &Kernel, cpu: CpuId, op: Op) -> OpResult {
    run(k, &[(cpu, op)])[0]
}

fn mapped(r: OpResult) -> VirtAddr {
    match r {
        OpResult::Mapped(va) => va,
        other => panic!("expected a mapping, got {other:?}"),
    }
}

fn anon(pages: u64) -> MmapArgs {
    MmapArgs {
        pages,
        file: None,
        shared: false,
        writable: true,
        fixed: None,
    }
}

#[test]
fn anon_store_then_load_round_trips() {
    let k = kernel(Preset::Tiny, Box::new(GenericHooks));
    let mm = k.create_mm().unwrap();
    let va = mapped(one(&k, C0, Op::Mmap { mm, args: anon(2) }));
    assert_eq!(
        one(&k, C0, Op::Store { mm, va, value: 7 }),
        OpResult::Value(7)
    );
    assert_eq!(one(&k, C0, Op::Load { mm, va }), OpResult::Value(7));
    assert_eq!(
        one(
            &k,
            C1,
            Op::Load {
                mm,
                va: va.add_pages(1)
            }
        ),
        OpResult::Value(0)
    );
}
