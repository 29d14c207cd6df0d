//! The final read-back: once the programs are done, every logical word is read once more
//! through the kernel's own paths — each word of each page of each live mapping by a user
//! load, and each word of each file page by `read(2)` — and judged like any read.

use vipt_emu::mm::{Obs, Observation, Op, OpResult};

use super::runner::Runner;
use crate::oracle::{Loc, OpRef, PageLoc, ReadKind};
use crate::workload::WORDS;

impl Runner<'_> {
    /// Reads back every word of every live mapping, then of every file.
    pub(super) fn final_readback(&mut self) {
        let final_by = OpRef { cpu: 0, index: None };
        // The observations of each read-back operation, drained and dropped (the loads are
        // judged from their results) or judged (the file reads): one buffer for all of them.
        let mut obs = Vec::new();
        for p in 0..self.shadow.procs.len() {
            if !self.shadow.procs[p].alive {
                continue;
            }
            let mm = self.shadow.procs[p].mm;
            for mi in 0..self.shadow.procs[p].maps.len() {
                let Some(va) = self.shadow.procs[p].maps[mi].va else { continue };
                for page in 0..self.shadow.procs[p].maps[mi].pages {
                    for &w in &WORDS {
                        let a = va.add_pages(page).with_word(w as usize);
                        let start = self.now();
                        let r = self.sequential(Op::Load { mm, va: a });
                        let step = self.now();
                        self.k.drain_observations(&mut obs);
                        obs.clear();
                        if let (OpResult::Value(v), Some(pl)) = (r, self.shadow.page_loc(p, mi, page)) {
                            let loc = Loc { page: pl, word: w };
                            let m = self.k.machine();
                            self.judge.judge_load(&m, ReadKind::FinalLoad, loc, (start, step), v, final_by);
                        }
                    }
                }
            }
        }
        // Each kernel buffer through the kernel's own address, as `io_get_sqe` reads it.
        for &(ring, pl, _) in &self.shadow.rings.clone() {
            for &w in &WORDS {
                let start = self.now();
                let r = self.sequential(Op::GetSqe { ring, page: 0, word: w as usize });
                let step = self.now();
                self.k.drain_observations(&mut Vec::new());
                if let OpResult::Value(v) = r {
                    let loc = Loc { page: pl, word: w };
                    let m = self.k.machine();
                    self.judge.judge_load(&m, ReadKind::RingRead, loc, (start, step), v, final_by);
                }
            }
        }
        for (fi, &file) in self.shadow.files.clone().iter().enumerate() {
            let size = self.k.state().files[file.index()].size;
            for pgoff in 0..size {
                let mut words = [0u16; 8];
                words[..WORDS.len()].copy_from_slice(&WORDS);
                let start = self.now();
                self.sequential(Op::ReadWords { file, pgoff, words, count: WORDS.len() as u8 });
                self.k.drain_observations(&mut obs);
                for o in obs.drain(..) {
                    if let Observation { obs: Obs::FileRead { word, value, .. }, step } = o {
                        let loc = Loc { page: PageLoc::File { file: fi as u8, pgoff }, word: word as u16 };
                        self.judge.oracle.read(ReadKind::FinalRead, loc, start, step, value, final_by);
                    }
                }
            }
        }
    }
}
