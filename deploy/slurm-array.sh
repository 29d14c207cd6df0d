#!/bin/bash
# One vipt campaign split over a Slurm job array: task K of N runs shard K/N and writes its
# JSON to shard-K.json; `vipt merge shard-*.json` then gives the JSON of the whole range.
# Submit from the repository root after `cargo install --path harness`:
#   sbatch deploy/slurm-array.sh
#SBATCH --job-name=vipt-campaign
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
#SBATCH --output=vipt-%A-%a.log
set -euo pipefail
# The array's size (Slurm sets it) and the seed range of the whole campaign.
N=${SLURM_ARRAY_TASK_COUNT:-8}
SEEDS=${VIPT_SEEDS:-0..1000000}
vipt campaign --seeds "$SEEDS" --shard "$SLURM_ARRAY_TASK_ID/$N" --jobs "${SLURM_CPUS_PER_TASK:-1}" \
    --json --out "vipt-out-$SLURM_ARRAY_TASK_ID" > "shard-$SLURM_ARRAY_TASK_ID.json"
