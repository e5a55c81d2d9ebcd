"""Add the summary.json figures a run's code did not compute yet, from its metrics.csv.

    python tools/resummarize.py RUN_DIR...

metrics.summarize is re-run on the epochs of metrics.csv; keys summary.json lacks (e.g.
val_acc_final, added after the run) are added, and no existing value is changed. For the runs of
a finished ablation whose summaries predate a column of launch.report.
"""

import csv
import sys

from dmkeras import metrics
from dmkeras.rundir import RunDir


def _number(value):
    try:
        return float(value)
    except ValueError:
        return value


def resummarize(workdir: str) -> list[str]:
    run = RunDir(workdir)
    with open(run.metrics_path) as f:
        history = [{k: _number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    summary = run.summary()
    fresh = metrics.summarize(history, num_samples=1, noise_rate_actual=summary.get("noise_rate_actual"),
                              wall_time_s=summary["wall_time_s"], epochs=summary["epochs_planned"])
    added = [k for k in fresh if k not in summary and k not in metrics.SUMMARY_MEASURED and "labeled" not in k]
    summary.update({k: fresh[k] for k in added})
    run.write_json(RunDir.SUMMARY, summary)
    return added


if __name__ == "__main__":
    for run in sys.argv[1:]:
        print(run, "added:", ", ".join(resummarize(run)) or "nothing")
