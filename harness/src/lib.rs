//! The seeded harness.
#![forbid(unsafe_code)]
