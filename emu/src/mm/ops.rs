//! Operations: what a program (or the reclaim actor) asks of the kernel, one per CPU at a time.

use std::fmt;

use crate::addr::{CpuId, VirtAddr};
use crate::mm::mmap::MmapArgs;
use crate::mm::mremap::MremapArgs;
use crate::mm::situations::OpClass;
use crate::mm::vmscan::ReclaimTarget;
use crate::mm::{FileId, Kernel, MmId, RingId};

/// An error an operation returns (the errno or signal a program would see).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Errno {
    /// SIGSEGV / EFAULT: no mapping, or no permission.
    #[error("segmentation fault")]
    Segv,
    /// SIGBUS: access beyond end of file.
    #[error("bus error (beyond end of file)")]
    Bus,
    /// EINVAL: bad arguments (including partial munmap and dead mms).
    #[error("invalid argument")]
    Inval,
    /// ENOMEM: out of frames, swap slots or address space.
    #[error("out of memory")]
    NoMem,
    /// EBUSY: reclaim found the page locked, in use or not reclaimable.
    #[error("page busy")]
    Busy,
    /// EAGAIN: a retry bound was hit (a livelock; a bug of the core if ever seen).
    #[error("retry bound exceeded")]
    Again,
}

/// An operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A user load.
    Load {
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// A user store.
    Store {
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
        /// Value.
        value: u64,
    },
    /// A store with page faults disabled (a futex operation): `fixup_user_fault` and retry.
    Futex {
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
        /// Value.
        value: u64,
    },
    /// `mmap`.
    Mmap {
        /// Process.
        mm: MmId,
        /// Arguments.
        args: MmapArgs,
    },
    /// `munmap` of whole VMAs.
    Munmap {
        /// Process.
        mm: MmId,
        /// Start.
        va: VirtAddr,
        /// Length in pages.
        pages: u64,
    },
    /// `fork`.
    Fork {
        /// Parent.
        mm: MmId,
    },
    /// Process exit (`exit_mmap`).
    Exit {
        /// Process.
        mm: MmId,
    },
    /// `write(2)` of one word.
    Write {
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
        /// Word within the page.
        word: usize,
        /// Value.
        value: u64,
    },
    /// `read(2)` of one word.
    Read {
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
        /// Word within the page.
        word: usize,
    },
    /// `read(2)` of up to 8 words of one page (`words[..count]`): one system call, so one
    /// flush, then the words one by one.
    ReadWords {
        /// File.
        file: FileId,
        /// Page offset.
        pgoff: u64,
        /// Words within the page.
        words: [u16; 8],
        /// How many of `words` are read.
        count: u8,
    },
    /// `msync(MS_SYNC)`.
    Msync {
        /// Process.
        mm: MmId,
        /// Start.
        va: VirtAddr,
        /// Length in pages.
        pages: u64,
    },
    /// `fsync`.
    Fsync {
        /// File.
        file: FileId,
    },
    /// `ftruncate` to a size in pages.
    Truncate {
        /// File.
        file: FileId,
        /// New size in pages.
        pages: u64,
    },
    /// Reclaim of one page.
    Reclaim {
        /// Which page.
        target: ReclaimTarget,
    },
    /// `mprotect` of whole VMAs inside `[va, va + pages)` to `PROT_NONE` (`none`) or back to
    /// their original protection.
    Mprotect {
        /// Process.
        mm: MmId,
        /// Start.
        va: VirtAddr,
        /// Length in pages.
        pages: u64,
        /// To `PROT_NONE` (else back).
        none: bool,
    },
    /// `get_user_pages_fast` of the page at `va` of the current process, then a kernel read
    /// of that word through the page it pinned (a lockless page-table walk).
    GupFast {
        /// Process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
    },
    /// A driver's dirty-log clean of every shared mapping of `file`, then the harvest of
    /// the log (`clean_record_shared_mapping_range`). Returns the harvested page bitmask.
    CleanDirty {
        /// File.
        file: FileId,
    },
    /// `mremap` of the whole mapping at `va`: grow it and/or move it.
    Mremap {
        /// Process.
        mm: MmId,
        /// Start of the mapping.
        va: VirtAddr,
        /// Length, flags and target.
        args: MremapArgs,
    },
    /// `mmap` of a kernel buffer (an io_uring ring) into a process: placed by
    /// `io_uring_get_unmapped_area`, its pages inserted by `vm_insert_pages`.
    RingMmap {
        /// Process.
        mm: MmId,
        /// The buffer.
        ring: RingId,
    },
    /// The kernel posts a word to a kernel buffer through its kernel address (a completion:
    /// `io_fill_cqe_aux`).
    FillCqe {
        /// The buffer.
        ring: RingId,
        /// Page of the buffer.
        page: u64,
        /// Word.
        word: usize,
        /// Value.
        value: u64,
    },
    /// The kernel reads a word of a kernel buffer through its kernel address (a submission:
    /// `io_get_sqe`).
    GetSqe {
        /// The buffer.
        ring: RingId,
        /// Page of the buffer.
        page: u64,
        /// Word.
        word: usize,
    },
    /// `access_process_vm` (ptrace peek/poke) of one word, by a tracer that is no process of
    /// the workload (`current->mm` is not the target's while it runs).
    AccessVm {
        /// Target process.
        mm: MmId,
        /// Address.
        va: VirtAddr,
        /// Store this value (else load).
        store: Option<u64>,
    },
}

impl Op {
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Load { .. } => "load",
            Op::Store { .. } => "store",
            Op::Futex { .. } => "futex",
            Op::Mmap { .. } => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::Fork { .. } => "fork",
            Op::Exit { .. } => "exit",
            Op::Write { .. } => "write",
            Op::Read { .. } | Op::ReadWords { .. } => "read",
            Op::Msync { .. } => "msync",
            Op::Fsync { .. } => "fsync",
            Op::Truncate { .. } => "truncate",
            Op::Reclaim { .. } => "reclaim",
            Op::AccessVm { .. } => "access_process_vm",
            Op::GupFast { .. } => "gup_fast",
            Op::Mprotect { .. } => "mprotect",
            Op::CleanDirty { .. } => "clean_dirty",
            Op::Mremap { .. } => "mremap",
            Op::RingMmap { .. } => "io_uring_mmap",
            Op::FillCqe { .. } => "io_fill_cqe",
            Op::GetSqe { .. } => "io_get_sqe",
        }
    }
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Completed, nothing to return.
    Done,
    /// A value (loads, reads, stores echo the value).
    Value(u64),
    /// `read(2)` at end of file.
    Eof,
    /// `mmap` placed the mapping here.
    Mapped(VirtAddr),
    /// `fork` created this process.
    Forked(MmId),
    /// Failed.
    Err(Errno),
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Done => write!(f, "ok"),
            OpResult::Value(v) => write!(f, "{v:#x}"),
            OpResult::Eof => write!(f, "eof"),
            OpResult::Mapped(va) => write!(f, "mapped at {va}"),
            OpResult::Forked(mm) => write!(f, "forked {mm}"),
            OpResult::Err(e) => write!(f, "error: {e}"),
        }
    }
}

fn res<T>(r: Result<T, Errno>, f: impl FnOnce(T) -> OpResult) -> OpResult {
    match r {
        Ok(v) => f(v),
        Err(e) => OpResult::Err(e),
    }
}

impl Kernel {
    fn mm_ok(&self, mm: MmId) -> bool {
        self.state().mms.get(mm.index()).is_some_and(|m| !m.dead)
    }

    fn file_ok(&self, f: FileId) -> bool {
        f.index() < self.state().files.len()
    }

    /// Runs `op` on `cpu` to completion (as micro-steps).
    pub async fn run_op(&self, cpu: CpuId, op: Op) -> OpResult {
        let sit = &self.slots[cpu.index()].sit;
        sit.reset(OpClass::of(&op));
        let r = self.run_op_inner(cpu, op).await;
        sit.reset(OpClass::Other);
        r
    }

    /// The operation itself, without [`Kernel::run_op`]'s reset of the situation detectors
    /// (the executor's operation slots do that reset around it).
    pub(crate) async fn run_op_inner(&self, cpu: CpuId, op: Op) -> OpResult {
        self.step(cpu, crate::mm::Action::Begin(op.name())).await;
        let mm_of = match op {
            Op::Load { mm, .. }
            | Op::Store { mm, .. }
            | Op::Futex { mm, .. }
            | Op::Mmap { mm, .. }
            | Op::Munmap { mm, .. }
            | Op::Fork { mm }
            | Op::Exit { mm }
            | Op::Msync { mm, .. }
            | Op::AccessVm { mm, .. }
            | Op::GupFast { mm, .. }
            | Op::Mprotect { mm, .. }
            | Op::Mremap { mm, .. }
            | Op::RingMmap { mm, .. } => Some(mm),
            _ => None,
        };
        // `current->mm`: the process the operation runs in. `access_process_vm` runs in its
        // caller (a tracer, no process of the workload), never in the target, whose mm it only
        // reaches through `get_user_pages_remote`.
        let current = match op {
            Op::AccessVm { .. } => None,
            _ => mm_of,
        };
        self.set_current_mm(cpu, current);
        if mm_of.is_some_and(|mm| !self.mm_ok(mm)) {
            return OpResult::Err(Errno::Inval);
        }
        let file_of = match op {
            Op::Write { file, .. }
            | Op::Read { file, .. }
            | Op::ReadWords { file, .. }
            | Op::Fsync { file }
            | Op::Truncate { file, .. }
            | Op::CleanDirty { file } => Some(file),
            _ => None,
        };
        if file_of.is_some_and(|f| !self.file_ok(f)) {
            return OpResult::Err(Errno::Inval);
        }
        match op {
            Op::Load { mm, va } => res(self.user_access(cpu, mm, va, None).await, OpResult::Value),
            Op::Store { mm, va, value } => {
                res(self.user_access(cpu, mm, va, Some(value)).await, OpResult::Value)
            }
            Op::Futex { mm, va, value } => res(self.futex_store(cpu, mm, va, value).await, OpResult::Value),
            Op::Mmap { mm, args } => res(self.sys_mmap(cpu, mm, args).await, OpResult::Mapped),
            Op::Munmap { mm, va, pages } => {
                res(self.sys_munmap(cpu, mm, va, pages).await, |()| OpResult::Done)
            }
            Op::Fork { mm } => res(self.sys_fork(cpu, mm).await, OpResult::Forked),
            Op::Exit { mm } => res(self.exit_mmap(cpu, mm).await, |()| OpResult::Done),
            Op::Write { file, pgoff, word, value } => {
                res(self.sys_write(cpu, file, pgoff, word, value).await, |()| OpResult::Done)
            }
            Op::Read { file, pgoff, word } => {
                res(self.sys_read(cpu, file, pgoff, word).await, |v| v.map_or(OpResult::Eof, OpResult::Value))
            }
            Op::ReadWords { file, pgoff, words, count } => {
                let n = (count as usize).min(words.len());
                res(self.sys_read_words(cpu, file, pgoff, &words[..n]).await, |v| {
                    v.map_or(OpResult::Eof, OpResult::Value)
                })
            }
            Op::Msync { mm, va, pages } => res(self.sys_msync(cpu, mm, va, pages).await, |()| OpResult::Done),
            Op::Fsync { file } => res(self.sys_fsync(cpu, file).await, |()| OpResult::Done),
            Op::Truncate { file, pages } => {
                res(self.sys_truncate(cpu, file, pages).await, |()| OpResult::Done)
            }
            Op::Reclaim { target } => res(self.reclaim(cpu, target).await, |()| OpResult::Done),
            Op::AccessVm { mm, va, store } => {
                res(self.access_process_vm(cpu, mm, va, store).await, OpResult::Value)
            }
            Op::Mprotect { mm, va, pages, none } => {
                res(self.sys_mprotect(cpu, mm, va, pages, none).await, |()| OpResult::Done)
            }
            Op::GupFast { mm, va } => res(self.gup_fast_read(cpu, mm, va).await, OpResult::Value),
            Op::CleanDirty { file } => res(self.clean_dirty(cpu, file).await, OpResult::Value),
            Op::Mremap { mm, va, args } => res(self.sys_mremap(cpu, mm, va, args).await, OpResult::Mapped),
            Op::RingMmap { mm, ring } => res(self.io_uring_mmap(cpu, mm, ring).await, OpResult::Mapped),
            Op::FillCqe { ring, page, word, value } => {
                res(self.io_fill_cqe(cpu, ring, page, word, value).await, |()| OpResult::Done)
            }
            Op::GetSqe { ring, page, word } => {
                res(self.io_get_sqe(cpu, ring, page, word).await, OpResult::Value)
            }
        }
    }
}
