//! The kernel lineages: implementations of [`vipt_emu::arch::ArchHooks`] and the
//! [`vipt_emu::arch::ArchConfig`] knobs that go with them. The registry names them.

pub mod clean;
pub mod gather;
pub mod hash;
pub mod linux24;
pub mod linux26;
pub mod linux3x;
pub mod linux60;
pub mod linux610;
pub mod linux6x;
pub mod soft_dirty;
pub mod whole_cache;

pub use gather::{Gather, GatherFlush};
pub use linux3x::Linux3x;
pub use linux6x::Linux6x;
pub use linux24::Linux24;
pub use linux26::{Filter, Linux26};
pub use linux60::Linux60;
pub use linux610::Linux610;
pub use whole_cache::WholeCache;
