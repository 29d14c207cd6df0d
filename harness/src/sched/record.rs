//! Recording every choice of a run.

use std::cell::RefCell;
use std::rc::Rc;

use vipt_emu::addr::CpuId;
use vipt_emu::choice::{ChoiceKind, Chooser};

/// The recorded choices of a run, shared with the [`Recorder`] that fills it.
pub type Tape = Rc<RefCell<Vec<u32>>>;

/// Wraps a chooser and records each answer: for `choose` the value, for `next_cpu` the
/// index of the chosen CPU among the runnable ones.
pub struct Recorder {
    inner: Box<dyn Chooser>,
    tape: Tape,
}

impl Recorder {
    /// Records what `inner` chooses into a fresh tape.
    pub fn new(inner: Box<dyn Chooser>) -> (Self, Tape) {
        let tape = Tape::default();
        (Recorder { inner, tape: tape.clone() }, tape)
    }
}

impl Chooser for Recorder {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        let v = self.inner.choose(kind, n);
        self.tape.borrow_mut().push(v);
        v
    }

    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        let c = self.inner.next_cpu(runnable);
        let i = runnable.iter().position(|&r| r == c).unwrap_or(0);
        self.tape.borrow_mut().push(i as u32);
        c
    }

    fn op_finished(&mut self, cpu: CpuId) {
        self.inner.op_finished(cpu)
    }
}
