//! Per-CPU tmpalias windows and the parisc kernel lineages.
#![forbid(unsafe_code)]
