# Shared by the tools/*_table.sh and tools/digits_splits.sh queues (sourced, not run): one run of
# launch.train into runs/, kept in docs/results/ for launch.report.
#   queue_run <name> <runs dir> <keep dir> <launch.train flags ...>
# A finished run (summary.json "finished": true, in <runs dir> or already kept in <keep dir>) is
# kept, not re-run; an interrupted one resumes from its last epoch checkpoint. The log goes to <runs dir>/<name>.log.
queue_run() {
  local name=$1 runs=$2 keep=$3
  shift 3
  local dir=$runs/$name
  mkdir -p "$runs"
  if [ ! -e "$dir" ] && grep -qs '"finished": true' "$keep/$name/summary.json"; then  # kept from an earlier checkout
    echo "kept $name: $(grep -o '"test_acc_last": [0-9.]*' "$keep/$name/summary.json")"
    return 0
  fi
  if ! grep -qs '"finished": true' "$dir/summary.json"; then
    ${PY:-.venv/bin/python} -m launch.train "$@" --workdir="$dir" --verbose=2 > "$dir.log" 2>&1 ||
      { echo "FAILED $name (see $dir.log)"; return 1; }
  fi
  mkdir -p "$keep/$name"
  cp "$dir/config.json" "$dir/summary.json" "$dir/curves.png" "$keep/$name/"
  echo "done $name: $(grep -o '"test_acc_last": [0-9.]*' "$dir/summary.json")"
}
