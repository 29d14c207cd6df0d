//! `vipt-harness`: the seeded concurrent harness. It generates workloads from a seed, runs
//! them on the emulated machine under a scheduler with a chosen kernel lineage, judges every
//! value programs read with the oracle, and turns violations into reproducer files that
//! replay bit for bit and shrink.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod campaign;
pub mod compare;
pub mod cost;
pub mod fuzz;
pub mod html;
pub mod oracle;
pub mod repro;
pub mod scenario;
pub mod sched;
pub mod shard;
pub mod shrink;
pub mod text;
pub mod workload;
