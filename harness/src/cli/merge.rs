//! `vipt merge`: the JSON outputs of the shards of one campaign combined into the JSON of the
//! whole seed range.

use std::path::PathBuf;

use clap::Args;
use vipt_harness::repro::{MAX_FILE_BYTES, read_bounded};
use vipt_harness::shard::{CampaignJson, merge};
use vipt_harness::text::shown_path;

use super::out::{Out, outln};
use super::status::{CmdResult, Failure, Status};

#[derive(Args, Debug)]
pub(crate) struct MergeArgs {
    /// The JSON outputs (`vipt campaign --json --shard K/N ...`) of every shard, in any order.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// Status 0 with the merged JSON on stdout; 2 when a file is unreadable, is not a campaign's
/// JSON, or the files are not exactly the shards of one campaign.
pub(crate) fn run(a: &MergeArgs, out: &mut Out) -> CmdResult {
    let mut docs = Vec::new();
    for f in &a.files {
        let name = shown_path(f);
        let data = read_bounded(f, MAX_FILE_BYTES).map_err(|e| Failure(e.to_string()))?;
        let doc: CampaignJson = serde_json::from_slice(&data)
            .map_err(|e| Failure(format!("{name}: not the JSON of `vipt campaign --json`: {e}")))?;
        docs.push((name, doc));
    }
    let merged = merge(&docs).map_err(Failure)?;
    outln!(out, "{}", serde_json::to_string_pretty(&merged)?);
    Ok(Status::Clean)
}
