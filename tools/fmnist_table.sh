#!/usr/bin/env bash
# Runs the Fashion-MNIST table of README.md: every row x seed, into runs/fmnist/, and keeps each
# run's config.json, summary.json and curves.png in docs/results/fmnist/ for `launch.report`.
#   bash tools/fmnist_table.sh [ROW ...]        ROW: dividemix_sym20 ... standard_asym40 cleanlab_sym50 clean
#   SEEDS="0 1 2" (default) JOBS=2 (runs at a time; 1 = one after another)
#   EXTRA="--mixed_precision=off": flags added to every row (kept in each run's config.json); on a
#   CPU without bf16 instructions the recipe's mixed_bfloat16 is emulated (6.9x slower on AVX2 only).
# A finished run is kept, not re-run; an interrupted one resumes (tools/_queue.sh). One DivideMix
# row takes about an hour on this 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-2}
ALL="clean"
for noise in sym20 sym50 sym80 sym90 asym40; do ALL="$ALL dividemix_$noise standard_$noise"; done
ALL="$ALL cleanlab_sym50 cleanlab_asym40"
rows=${*:-$ALL}

one() {  # one <row> <seed>
  local method flagfile
  case $1 in
    clean) method=standard flagfile=fmnist_clean ;;
    *_*) method=${1%%_*} flagfile=fmnist_${1#*_} ;;
  esac
  source tools/_queue.sh
  queue_run "${1}_seed$2" runs/fmnist docs/results/fmnist \
    --flagfile=launch/configs/$flagfile.cfg --method=$method --seed="$2" ${EXTRA:-}
}

export -f one
for seed in $SEEDS; do for row in $rows; do echo "$row $seed"; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1"'
