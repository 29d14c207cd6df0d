//! Recording every choice of a run.

use std::cell::RefCell;
use std::rc::Rc;

use vipt_emu::addr::CpuId;
use vipt_emu::choice::{ChoiceKind, Chooser};

/// The recorded choices of a run, shared with the [`Recorder`] that fills it.
pub type Tape = Rc<RefCell<Vec<u32>>>;

/// Wraps a chooser and records each answer: for `choose` the value, for `next_cpu` the
/// index of the chosen CPU among the runnable ones. At most `limit + 1` choices are kept, so
/// a tape longer than `limit` tells that the run drew more than that without holding them all.
pub struct Recorder {
    inner: Box<dyn Chooser>,
    tape: Tape,
    limit: usize,
}

impl Recorder {
    /// Records what `inner` chooses into a fresh tape, without bound.
    pub fn new(inner: Box<dyn Chooser>) -> (Self, Tape) {
        Recorder::with_limit(inner, usize::MAX - 1)
    }

    /// Records what `inner` chooses into a fresh tape, keeping at most `limit + 1` choices.
    pub fn with_limit(inner: Box<dyn Chooser>, limit: usize) -> (Self, Tape) {
        let tape = Tape::default();
        (Recorder { inner, tape: tape.clone(), limit }, tape)
    }

    fn push(&mut self, v: u32) {
        let mut t = self.tape.borrow_mut();
        if t.len() <= self.limit {
            t.push(v);
        }
    }
}

impl Chooser for Recorder {
    fn choose(&mut self, kind: ChoiceKind, n: u32) -> u32 {
        let v = self.inner.choose(kind, n);
        self.push(v);
        v
    }

    fn next_cpu(&mut self, runnable: &[CpuId]) -> CpuId {
        let c = self.inner.next_cpu(runnable);
        let i = runnable.iter().position(|&r| r == c).unwrap_or(0);
        self.push(i as u32);
        c
    }

    fn op_finished(&mut self, cpu: CpuId) {
        self.inner.op_finished(cpu)
    }

    fn sees_actions(&self) -> bool {
        self.inner.sees_actions()
    }

    fn next_cpu_seeing(&mut self, runnable: &[CpuId], pending: &[vipt_emu::mm::Action]) -> CpuId {
        let c = self.inner.next_cpu_seeing(runnable, pending);
        let i = runnable.iter().position(|&r| r == c).unwrap_or(0);
        self.push(i as u32);
        c
    }
}
