//! Family checks: what a workload family checks beyond the oracle's reads and the core's
//! invariants, plugged into the run through one trait, [`FamilyCheck`], and chosen from the
//! lineage's [`Family`] by [`check_for`].
//!
//! The one check today is the dirty-log clean family's ([`Family::Clean`]): every store to the
//! device-like shared mapping must reach the PTE dirty bit or a later harvest of the dirty log.
//! The core cannot see that at any one step (a lost store is simply absent), so the check
//! follows the stores and the harvests, runs one last clean when the programs are done, and
//! flags every page whose last store no harvest named after it (lost dirtiness).

use std::collections::BTreeMap;

use vipt_emu::mm::{Obs, Observation, Op};
use vipt_tmpalias::Family;

use super::shadow::Shadow;
use crate::oracle::{Invariant, Loc, OpRef, Oracle, PageLoc};
use crate::workload::Workload;

/// A workload family's own check. Every hook has a default that does nothing.
pub(super) trait FamilyCheck {
    /// Sees every observation of the run, as it is judged.
    fn on_observation(&mut self, _o: &Observation, _sh: &Shadow) {}

    /// A user store of `loc` at `step` by `by`, as the oracle recorded it.
    fn on_user_store(&mut self, _loc: Loc, _step: u64, _by: OpRef) {}

    /// Operations to run, one after the other, once every program is done (their
    /// observations are judged as usual).
    fn final_ops(&self, _sh: &Shadow) -> Vec<Op> {
        Vec::new()
    }

    /// The verdict, once the final operations ran: flags what broke.
    fn at_end(&self, _oracle: &mut Oracle) {}
}

/// The check of `family` for workload `w`, if the family has one.
pub(super) fn check_for(family: Family, w: &Workload) -> Option<Box<dyn FamilyCheck>> {
    match family {
        Family::Clean if !w.files.is_empty() => Some(Box::new(DirtyLog::new(0))),
        _ => None,
    }
}

/// [`Family::Clean`]: no store to the cleaned file is lost to the dirty log.
struct DirtyLog {
    /// The file (workload index) whose dirty log the workload's cleans harvest.
    file: u8,
    /// Per page offset of `file`: the last user store to it (step, writer, word).
    last_store: BTreeMap<u64, (u64, OpRef, u16)>,
    /// Per page offset of `file`: the step of the last harvest that named it.
    synced: BTreeMap<u64, u64>,
}

impl DirtyLog {
    fn new(file: u8) -> Self {
        DirtyLog { file, last_store: BTreeMap::new(), synced: BTreeMap::new() }
    }
}

impl FamilyCheck for DirtyLog {
    fn on_observation(&mut self, o: &Observation, sh: &Shadow) {
        if let Observation { obs: Obs::DirtySynced { file, pages, .. }, step } = *o
            && sh.file_index(file) == Some(self.file)
        {
            for pgoff in (0..64).filter(|b| pages & (1 << b) != 0) {
                self.synced.insert(pgoff, step);
            }
        }
    }

    fn on_user_store(&mut self, loc: Loc, step: u64, by: OpRef) {
        if let PageLoc::File { file, pgoff } = loc.page
            && file == self.file
        {
            self.last_store.insert(pgoff, (step, by, loc.word));
        }
    }

    /// One last clean once every program is done.
    fn final_ops(&self, sh: &Shadow) -> Vec<Op> {
        vec![Op::CleanDirty { file: sh.files[self.file as usize] }]
    }

    /// Every page's last store must be followed by a harvest naming the page (lost
    /// dirtiness): a store that reached neither the PTE dirty bit nor the log is flagged.
    fn at_end(&self, oracle: &mut Oracle) {
        for (&pgoff, &(step, by, word)) in &self.last_store {
            let synced = self.synced.get(&pgoff).copied();
            if synced.is_some_and(|s| s >= step) {
                continue;
            }
            let last = synced.map_or("never".to_string(), |s| format!("last at step {s}"));
            let detail = format!(
                "store at step {step} to page {pgoff}; the dirty log named the page {last}, never after the store"
            );
            let loc = Loc { page: PageLoc::File { file: self.file, pgoff }, word };
            oracle.flag(Invariant::LostDirty, loc, step, by).detail.push(detail);
        }
    }
}
