#!/usr/bin/env bash
# Runs the digits seeds x splits table of README.md: every noise x split x seed, into
# runs/digits_splits/, and keeps each run's config.json, summary.json and curves.png in
# docs/results/digits_seeds_splits/ for `launch.report --group_over=seed,split_seed`.
#   bash tools/digits_splits.sh [NOISE ...]        NOISE: sym50 sym80 asym40 (default: all three),
#     or any digits_<NOISE>.cfg, such as sym80_augdesc
#   SEEDS="0 1 2" SPLITS="0 1 2" (defaults) JOBS=1 (runs at a time)
# A finished run is kept, not re-run; an interrupted one resumes (tools/_queue.sh). One run takes
# 4-8 minutes on this 2-core CPU (about twice that with --augdesc).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1 2}
SPLITS=${SPLITS:-0 1 2}
JOBS=${JOBS:-1}
noises=${*:-sym80 sym50 asym40}

one() {  # one <noise> <split> <seed>
  source tools/_queue.sh
  queue_run "dividemix_${1}_split$2_seed$3" runs/digits_splits docs/results/digits_seeds_splits \
    --flagfile=launch/configs/digits_$1.cfg --split_seed="$2" --seed="$3"
}

export -f one
for noise in $noises; do for split in $SPLITS; do for seed in $SEEDS; do echo "$noise $split $seed"; done; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1" "$2"'
