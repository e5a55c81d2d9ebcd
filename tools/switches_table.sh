#!/usr/bin/env bash
# Runs issue 12's Fashion-MNIST table (README.md, "Beyond the paper"): plain DivideMix vs
# --augdesc=ws vs --division=unicon vs both, per noise x seed, on the first SUBSET training images
# (--train_limit; the files' order is shuffled, so about SUBSET / 10 per class; the full set takes
# about an hour per run, too slow for 48 runs on 2 cores), into runs/switches/, kept in
# docs/results/switches/ for `launch.report --group_over=seed`. The digits row comes from
# `SPLITS=0 bash tools/digits_splits.sh sym80 sym80_augdesc sym80_unicon sym80_augdesc_unicon`.
#   bash tools/switches_table.sh [NOISE ...]     NOISE: sym90 sym80 asym40 sym50 (default: all four)
#   SEEDS="0 1 2" VARIANTS="plain augdesc unicon augdesc_unicon" SUBSET=5000 JOBS=1 (defaults)
# Seeds go outermost, so a queue cut short still has every variant of its first seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1 2}
VARIANTS=${VARIANTS:-plain augdesc unicon augdesc_unicon}
SUBSET=${SUBSET:-5000}
JOBS=${JOBS:-1}
noises=${*:-sym90 sym80 asym40 sym50}

one() {  # one <noise> <variant> <seed>
  local flagfile=fmnist_$1 name
  [ "$2" = plain ] || flagfile=fmnist_$1_$2
  name=dividemix_$1_${2}_n${SUBSET}_seed$3
  source tools/_queue.sh
  queue_run "$name" runs/switches docs/results/switches \
    --flagfile=launch/configs/$flagfile.cfg --train_limit="$SUBSET" --seed="$3"
}

export -f one
export SUBSET
for seed in $SEEDS; do for noise in $noises; do for v in $VARIANTS; do echo "$noise $v $seed"; done; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1" "$2"'
