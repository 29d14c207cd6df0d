//! Shared set-up for the criterion benchmarks.
#![forbid(unsafe_code)]
