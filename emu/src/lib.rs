#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! `vipt-emu`: a PA-RISC-style multiprocessor with virtually indexed, physically tagged
//! D-caches and software TLBs ([`machine`]), and a model of the Linux memory manager running
//! on it ([`mm`]) that reaches the architecture only through [`arch`]: the routines of
//! [`arch::ArchHooks`] and the knobs of [`arch::ArchConfig`].
//!
//! See `DESIGN.md` in this crate for how the parts fit and how data flows through a store, a
//! fault and a flush.

pub mod addr;
pub mod arch;
pub mod cache;
pub mod choice;
pub mod config;
pub mod counters;
pub mod machine;
pub mod memory;
pub mod mm;
pub mod pgtable;
pub mod pte;
pub mod tlb;
pub mod trace;
