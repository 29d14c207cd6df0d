//! Every seed's outcome is a function of the seed, and work that only makes the emulator or
//! the harness faster must leave it unchanged. For every registered lineage, a digest of what
//! its first seeds give — the micro-steps, operations, reads and user loads, the first
//! violation's fingerprint, the kind of an unfinished run and every event counter of the
//! machine — is compared with the digest recorded here, on the fuzzing machine and on PA8700
//! (whose set count is not a power of two).
//!
//! A change meant to alter outcomes (a new workload operation, a model fix) changes digests
//! too: `VIPT_PRINT_DIGESTS=1 cargo test -p vipt-harness --test outcomes -- --nocapture`
//! prints the table to record, once the change's own evidence shows the new outcomes right.

use vipt_emu::config::Preset;
use vipt_harness::scenario::{RunConfig, run_seed};
use vipt_harness::sched::SchedulerKind;
use vipt_tmpalias::{Lineage, Registry};

/// Seeds per lineage on the fuzzing machine.
const SEEDS: u64 = 12;
/// Seeds per lineage on PA8700.
const PA8700_SEEDS: u64 = 4;
/// Lineages run on PA8700 too.
const PA8700_LINEAGES: [&str; 3] = ["linux-2.6.14", "linux-6.0", "linux-6.x"];

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The digest of seeds `0..seeds` of `l` on `preset`.
fn digest(l: &Lineage, preset: Preset, seeds: u64) -> u64 {
    let cfg = RunConfig { preset, ..RunConfig::default() };
    (0..seeds).fold(0xcbf2_9ce4_8422_2325, |h, seed| {
        let o = run_seed(l, &cfg, SchedulerKind::Random, seed);
        let line = format!(
            "{seed} {} {} {} {} {:?} {:?} {:?}\n",
            o.steps,
            o.ops,
            o.reads,
            o.user_loads,
            o.fingerprint(),
            o.unfinished.as_ref().map(|u| u.kind),
            o.counters
        );
        fnv(h, line.as_bytes())
    })
}

/// The digests of every case: `(lineage, preset, digest)`.
fn digests() -> Vec<(String, &'static str, u64)> {
    let registry = Registry::builtin();
    let mut out = Vec::new();
    for l in registry.iter() {
        out.push((l.name.clone(), "tiny", digest(l, Preset::Tiny, SEEDS)));
    }
    for name in PA8700_LINEAGES {
        let l = registry.get(name).expect("a built-in lineage");
        out.push((name.to_string(), "pa8700", digest(l, Preset::Pa8700, PA8700_SEEDS)));
    }
    out
}

/// The digests as recorded.
const RECORDED: &[(&str, &str, u64)] = &[
    ("linux-2.4", "tiny", 0xd1a7966133749253),
    ("linux-2.5-rmap", "tiny", 0x3abe766a8d616db6),
    ("linux-2.6.14", "tiny", 0xa6c4234ea7fa3f5f),
    ("linux-2.6.15", "tiny", 0x86b3689877df6915),
    ("recheck", "tiny", 0x86b3689877df6915),
    ("tmpalias", "tiny", 0x93cdf39aae98d49b),
    ("tmpalias+purge", "tiny", 0x455e54328e747032),
    ("tmpalias+precopy", "tiny", 0xb3bd2fe88b802869),
    ("linux-6.0", "tiny", 0x3713d4e437de52cd),
    ("linux-6.10", "tiny", 0x35bc61ba2b0a6139),
    ("linux-6.x", "tiny", 0xaf3c54ec90abbb52),
    ("whole-cache", "tiny", 0x7ae1bc87f9d76397),
    ("swbits-gup", "tiny", 0x06a3675764a91b9f),
    ("swbits-fault", "tiny", 0xc60b0ef43c307a76),
    ("swbits-gup-marks", "tiny", 0x06158cedd5633d51),
    ("hash-two-update", "tiny", 0xe5b9b0c9036b1a21),
    ("hash-cas", "tiny", 0x08d765dc9a48ec24),
    ("gather-range", "tiny", 0x078f9dd1210f1435),
    ("gather-fullmm", "tiny", 0x7efeb66cba0f5310),
    ("gather-first-page", "tiny", 0x77b6aef440795faa),
    ("gather-no-sync", "tiny", 0x078f9dd1210f1435),
    ("clean-deferred", "tiny", 0xad47abfdf88be90f),
    ("clean-flush-locked", "tiny", 0x255dd219c3c0ab8c),
    ("clean-external-lock", "tiny", 0xbf01ae2bb5cbe7d1),
    ("pipt", "tiny", 0xd71be2a8e2c2a02a),
    ("linux-2.6.14", "pa8700", 0xccb7415975baba40),
    ("linux-6.0", "pa8700", 0x42332a297cf37cdb),
    ("linux-6.x", "pa8700", 0x4f3997ac41830c99),
];

#[test]
fn outcomes_of_the_first_seeds_of_every_lineage_are_as_recorded() {
    let got = digests();
    if std::env::var_os("VIPT_PRINT_DIGESTS").is_some() {
        for (name, preset, d) in &got {
            println!("    ({name:?}, {preset:?}, {d:#018x}),");
        }
    }
    let got: Vec<(&str, &str, u64)> = got.iter().map(|(n, p, d)| (n.as_str(), *p, *d)).collect();
    assert_eq!(got, RECORDED, "outcomes changed; see this file's header");
}
