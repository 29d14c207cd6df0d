//! Campaigns split over machines: the K-th of N disjoint parts of a seed range
//! ([`Shard`]), the JSON document a campaign prints ([`CampaignJson`]), and [`merge`], which
//! combines the documents of every shard into the document of the whole range.
//!
//! Shards are contiguous: shard `K` of `N` over a range of `C` seeds starting at `S` holds
//! seeds `S + ⌊K·C/N⌋` up to, but not including, `S + ⌊(K+1)·C/N⌋`. Every scenario depends on
//! its seed alone, so the merged document equals the one a single run over the whole range
//! prints, apart from the seconds (the merged `seconds` is the longest shard's, and
//! `seconds_to_first` is measured from the start of the shard that holds the first seed).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::campaign::{LineageResult, SeedRange, parse_seeds};
use crate::sched::SchedulerKind;
use crate::text::shown;

/// Part `index` of `count` disjoint parts of a seed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts (at least 1).
    pub count: u64,
}

impl Shard {
    /// Part `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The seeds of this part of `seeds`; `None` when the part is empty (fewer seeds than
    /// parts).
    pub fn of(&self, seeds: SeedRange) -> Option<SeedRange> {
        let c = seeds.count();
        if c < self.count as u128 {
            return None;
        }
        let lo = seeds.first() as u128 + self.index as u128 * c / self.count as u128;
        let hi = seeds.first() as u128 + (self.index as u128 + 1) * c / self.count as u128 - 1;
        SeedRange::new(lo as u64, hi as u64)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        parse_shard(s)
    }
}

/// Parses `K/N`: part `K` (from 0) of `N` parts, `0 <= K < N`.
pub fn parse_shard(s: &str) -> Result<Shard, String> {
    let num = |t: &str, what: &str| -> Result<u64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{}`: {what} is not a number (expected K/N, e.g. 0/4)", shown(s)));
        }
        t.parse().map_err(|_| format!("`{}`: {what} is too large", shown(s)))
    };
    let Some((k, n)) = s.split_once('/') else {
        return Err(format!("`{}` is not a shard (expected K/N, e.g. 0/4: part K of N, from 0)", shown(s)));
    };
    let (k, n) = (num(k, "K")?, num(n, "N")?);
    if n == 0 {
        return Err(format!("`{}`: N must be at least 1", shown(s)));
    }
    Shard::new(k, n).ok_or_else(|| format!("`{}`: K must be below N (parts are numbered from 0)", shown(s)))
}

/// The options of a campaign that decide its results: documents merge only when these agree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// The machine preset asked for (a lineage that pins its machine runs on that instead).
    pub preset: String,
    /// The scheduler.
    pub scheduler: SchedulerKind,
    /// Speculative move-ins offered.
    pub speculation: bool,
    /// `--racy-teardown`.
    pub racy_teardown: bool,
    /// `--racy-poke`.
    pub racy_poke: bool,
    /// `--move-shared-anon` (absent: off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub move_shared_anon: bool,
    /// `--max-steps`, when given.
    pub max_steps: Option<u64>,
    /// `--family`, when given: the workload family every lineage drew its seeds from (absent:
    /// each lineage's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// Which shard a document covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardJson {
    /// `K`.
    pub index: u64,
    /// `N`.
    pub count: u64,
    /// The seeds this shard ran.
    pub seeds: String,
}

/// What `vipt campaign --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignJson {
    /// One result per lineage, in the order given. For a shard, `scenarios_to_first` counts
    /// from the start of the shard.
    pub lineages: Vec<LineageResult>,
    /// The options.
    pub run: RunSettings,
    /// The whole seed range (`A..=B`, or `A` for one seed).
    pub seeds: String,
    /// The part of it this document covers, when the campaign was sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardJson>,
}

/// Combines the documents of every shard of one campaign (in any order) into the document of
/// the whole range. `names` label the documents in messages.
pub fn merge(docs: &[(String, CampaignJson)]) -> Result<CampaignJson, String> {
    let Some((name0, first)) = docs.first() else { return Err("nothing to merge".into()) };
    let seeds = parse_seeds(&first.seeds).map_err(|e| format!("{name0}: seeds: {e}"))?;
    let count = first.shard.as_ref().map_or(1, |s| s.count);
    let mut by_index: BTreeMap<u64, &CampaignJson> = BTreeMap::new();
    for (name, d) in docs {
        let (index, n) = d.shard.as_ref().map_or((0, 1), |s| (s.index, s.count));
        if parse_seeds(&d.seeds).ok() != Some(seeds) {
            return Err(format!("{name}: seeds {} differ from {name0}'s {}", shown(&d.seeds), first.seeds));
        }
        if n != count {
            return Err(format!("{name}: a shard of {n} parts, {name0} one of {count}"));
        }
        if d.run != first.run {
            return Err(format!("{name}: run with other options than {name0}"));
        }
        let names = |d: &CampaignJson| d.lineages.iter().map(|l| l.name.clone()).collect::<Vec<_>>();
        if names(d) != names(first) {
            return Err(format!("{name}: other lineages than {name0}"));
        }
        let part = Shard::new(index, n)
            .and_then(|s| s.of(seeds))
            .ok_or_else(|| format!("{name}: shard {index}/{n} of {} does not exist", first.seeds))?;
        if let Some(s) = &d.shard
            && parse_seeds(&s.seeds).ok() != Some(part)
        {
            return Err(format!("{name}: shard {index}/{n} ran seeds {}, not {part}", shown(&s.seeds)));
        }
        if by_index.insert(index, d).is_some() {
            return Err(format!("{name}: shard {index}/{n} given twice"));
        }
    }
    if let Some(missing) = (0..count).find(|k| !by_index.contains_key(k)) {
        let more = count - by_index.len() as u64;
        return Err(format!("shard {missing}/{count} is missing ({more} of {count} missing)"));
    }
    let parts: Vec<&CampaignJson> = by_index.into_values().collect();
    let lineages = (0..first.lineages.len())
        .map(|i| merge_lineage(seeds, parts.iter().map(|d| &d.lineages[i])))
        .collect();
    Ok(CampaignJson { lineages, run: first.run.clone(), seeds: first.seeds.clone(), shard: None })
}

/// One lineage's results over every shard, in shard order.
fn merge_lineage<'a>(seeds: SeedRange, parts: impl Iterator<Item = &'a LineageResult>) -> LineageResult {
    let mut m: Option<LineageResult> = None;
    for p in parts {
        let Some(acc) = m.as_mut() else {
            m = Some(p.clone());
            continue;
        };
        acc.scenarios += p.scenarios;
        acc.violations += p.violations;
        acc.unfinished += p.unfinished;
        acc.unfinished_kinds.deadlock += p.unfinished_kinds.deadlock;
        acc.unfinished_kinds.livelock += p.unfinished_kinds.livelock;
        acc.unfinished_kinds.step_budget += p.unfinished_kinds.step_budget;
        acc.gather_mm_flushes += p.gather_mm_flushes;
        acc.gather_range_flushes += p.gather_range_flushes;
        acc.situations.0.merge(&p.situations.0);
        acc.situation_seeds.0.merge(&p.situation_seeds.0);
        acc.violations_dirty_dropped += p.violations_dirty_dropped;
        acc.violations_shared_anon_colours += p.violations_shared_anon_colours;
        acc.seconds = acc.seconds.max(p.seconds);
        for (k, v) in &p.classes {
            *acc.classes.entry(k.clone()).or_default() += v;
        }
        // Shards come in seed order: the first shard with a violation holds the first seed.
        if acc.first_violation_seed.is_none() && p.first_violation_seed.is_some() {
            acc.first_violation_seed = p.first_violation_seed;
            acc.seconds_to_first = p.seconds_to_first;
            acc.reproducer.clone_from(&p.reproducer);
        }
        if acc.first_unfinished_seed.is_none() && p.first_unfinished_seed.is_some() {
            acc.first_unfinished_seed = p.first_unfinished_seed;
            acc.first_unfinished.clone_from(&p.first_unfinished);
            acc.unfinished_reproducer.clone_from(&p.unfinished_reproducer);
        }
    }
    let mut m = m.expect("at least one shard");
    m.scenarios_to_first = m.first_violation_seed.map(|s| s - seeds.first() + 1);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn shards_parse_and_reject_what_is_not_k_of_n() {
        assert_eq!(parse_shard("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(parse_shard("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2", "1/", "/2", "1/2/3", " 1/2", "99999999999999999999/1"] {
            assert!(parse_shard(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_shard("3/3").unwrap_err().contains("below N"));
    }

    #[test]
    fn the_parts_of_a_small_range_are_exact() {
        let r = SeedRange::exclusive(0, 10).unwrap();
        let parts: Vec<_> = (0..3).map(|k| Shard::new(k, 3).unwrap().of(r).unwrap()).collect();
        assert_eq!(
            parts,
            [SeedRange::new(0, 2).unwrap(), SeedRange::new(3, 5).unwrap(), SeedRange::new(6, 9).unwrap()]
        );
        assert_eq!(Shard::new(3, 11).unwrap().of(r), None, "more parts than seeds");
        let all = SeedRange::new(0, u64::MAX).unwrap();
        assert_eq!(Shard::new(1, 2).unwrap().of(all), SeedRange::new(1 << 63, u64::MAX));
    }

    quickcheck! {
        /// The parts of any range are disjoint, in order, and cover it exactly.
        fn parts_partition_the_range(first: u64, len: u16, n: u8) -> bool {
            let n = n as u64 % 40 + 1;
            let Some(r) = SeedRange::new(first, first.saturating_add(len as u64)) else { return true };
            if r.count() < n as u128 {
                return Shard::new(0, n).unwrap().of(r).is_none();
            }
            let parts: Vec<SeedRange> = (0..n).map(|k| Shard::new(k, n).unwrap().of(r).unwrap()).collect();
            parts[0].first() == r.first()
                && parts[parts.len() - 1].last() == r.last()
                && parts.windows(2).all(|w| w[0].last() + 1 == w[1].first())
        }
    }
}
