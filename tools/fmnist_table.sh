#!/usr/bin/env bash
# Runs the Fashion-MNIST table of README.md: every row x seed, into runs/fmnist/, and keeps each
# run's config.json, summary.json and curves.png in docs/results/fmnist/ for `launch.report`.
#   bash tools/fmnist_table.sh [ROW ...]        ROW: dividemix_sym20 ... standard_asym40 cleanlab_sym50 clean
#   SEEDS="0 1 2" (default) JOBS=2 (runs at a time; 1 = one after another)
# A finished run (summary.json "finished": true) is kept, not re-run; an interrupted one resumes
# from its last epoch checkpoint. One DivideMix row takes about an hour on this 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
JOBS=${JOBS:-2}
ALL="clean"
for noise in sym20 sym50 sym80 sym90 asym40; do ALL="$ALL dividemix_$noise standard_$noise"; done
ALL="$ALL cleanlab_sym50 cleanlab_asym40"
rows=${*:-$ALL}

one() {  # one <row> <seed>
  local row=$1 seed=$2 name="${1}_seed$2" method flagfile
  case $row in
    clean) method=standard flagfile=fmnist_clean ;;
    *_*) method=${row%%_*} flagfile=fmnist_${row#*_} ;;
  esac
  local dir=runs/fmnist/$name keep=docs/results/fmnist/$name
  if ! grep -qs '"finished": true' "$dir/summary.json"; then
    $PY -m launch.train --flagfile=launch/configs/$flagfile.cfg --method=$method --seed=$seed \
      --workdir=$dir --verbose=2 > "$dir.log" 2>&1 || { echo "FAILED $name (see $dir.log)"; return 1; }
  fi
  mkdir -p "$keep"
  cp "$dir/config.json" "$dir/summary.json" "$dir/curves.png" "$keep/"
  echo "done $name: $(grep -o '"test_acc_last": [0-9.]*' "$dir/summary.json")"
}

mkdir -p runs/fmnist
export PY
export -f one
for seed in $SEEDS; do for row in $rows; do echo "$row $seed"; done; done |
  xargs -P "$JOBS" -L 1 bash -c 'one "$0" "$1"'
