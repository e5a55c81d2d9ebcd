#!/usr/bin/env bash
# Runs the digits seeds x splits table of README.md: every noise x split x seed, into
# runs/digits_splits/, and keeps each run's config.json, summary.json and curves.png in
# docs/results/digits_seeds_splits/ for `launch.report --group_over=seed,split_seed`.
#   bash tools/digits_splits.sh [NOISE ...]        NOISE: sym50 sym80 asym40 (default: all three)
#   SEEDS="0 1 2" SPLITS="0 1 2" (defaults) JOBS=1 (runs at a time)
# A finished run (summary.json "finished": true) is kept, not re-run; an interrupted one resumes
# from its last epoch checkpoint. One run takes 4-8 minutes on this 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
SPLITS=${SPLITS:-0 1 2}
JOBS=${JOBS:-1}
noises=${*:-sym80 sym50 asym40}

one() {  # one <noise> <split> <seed>
  local noise=$1 split=$2 seed=$3 name="dividemix_${1}_split$2_seed$3"
  local dir=runs/digits_splits/$name keep=docs/results/digits_seeds_splits/$name
  if ! grep -qs '"finished": true' "$dir/summary.json"; then
    $PY -m launch.train --flagfile=launch/configs/digits_$noise.cfg --split_seed=$split --seed=$seed \
      --workdir=$dir --verbose=2 > "$dir.log" 2>&1 || { echo "FAILED $name (see $dir.log)"; return 1; }
  fi
  mkdir -p "$keep"
  cp "$dir/config.json" "$dir/summary.json" "$dir/curves.png" "$keep/"
  echo "done $name: $(grep -o '"test_acc_last": [0-9.]*' "$dir/summary.json")"
}

mkdir -p runs/digits_splits
export PY
export -f one
for noise in $noises; do for split in $SPLITS; do for seed in $SEEDS; do echo "$noise $split $seed"; done; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1" "$2"'
