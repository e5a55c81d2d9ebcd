"""A markdown table of finished runs, from their config.json and summary.json.

    python -m launch.report runs/digits_sym50 runs/digits_sym50_standard ...

When a run had a validation set, a column "test acc val-selected" shows the test accuracy of its
nets' best-validation weights (summary.json's test_acc_val_selected, the reference's Clothing1M
figure; "-" for the runs without one).
"""

import json
import os
import sys

COLUMNS = ["run", "method", "noise", "wrong labels", "test acc best", "test acc last 10", "division AUC", "labeled", "epochs", "wall time"]
VAL_SELECTED = "test acc val-selected"  # after "test acc last 10", when some run has it


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _read(workdir: str) -> tuple[dict, dict]:
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    return config, summary


def row(workdir: str, val_selected: bool = False) -> list[str]:
    config, summary = _read(workdir)
    auc = summary.get("division_auc_last")
    labeled = summary.get("labeled_fraction_last")
    return [
        os.path.basename(os.path.normpath(workdir)),
        config["method"],
        f"{config['noise_mode']} {config['noise_rate']:g}",
        "-" if summary.get("noise_rate_actual") is None else f"{summary['noise_rate_actual']:.3f}",
        _pct(summary.get("test_acc_best")),
        _pct(summary.get("test_acc_last")),
        *([_pct(summary.get("test_acc_val_selected"))] if val_selected else []),
        "-" if auc is None else f"{auc:.4f}",
        "-" if labeled is None else f"{labeled:.3f}",
        f"{summary['epochs']}/{summary['epochs_planned']}",
        f"{summary['wall_time_s']:.0f} s",
    ]


def table(workdirs) -> str:
    val_selected = any(_read(w)[1].get("test_acc_val_selected") is not None for w in workdirs)
    columns = list(COLUMNS)
    if val_selected:
        columns.insert(columns.index("test acc last 10") + 1, VAL_SELECTED)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row(w, val_selected)) + " |" for w in workdirs]
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        print(table(argv[1:]))
    except (OSError, KeyError, json.JSONDecodeError) as error:
        print(f"error: not a finished run directory: {error}", file=sys.stderr)
        return 2
    return 0


def cli():
    """The console script (dmkeras-report): the same as python -m launch.report."""
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    cli()
