"""A markdown table of finished runs, from their config.json and summary.json.

    python -m launch.report runs/digits_sym50 runs/digits_sym50_standard ...
"""

import json
import os
import sys

COLUMNS = ["run", "method", "noise", "wrong labels", "test acc best", "test acc last 10", "division AUC", "labeled", "epochs", "wall time"]


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def row(workdir: str) -> list[str]:
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    auc = summary.get("division_auc_last")
    labeled = summary.get("labeled_fraction_last")
    return [
        os.path.basename(os.path.normpath(workdir)),
        config["method"],
        f"{config['noise_mode']} {config['noise_rate']:g}",
        "-" if summary.get("noise_rate_actual") is None else f"{summary['noise_rate_actual']:.3f}",
        _pct(summary.get("test_acc_best")),
        _pct(summary.get("test_acc_last")),
        "-" if auc is None else f"{auc:.4f}",
        "-" if labeled is None else f"{labeled:.3f}",
        f"{summary['epochs']}/{summary['epochs_planned']}",
        f"{summary['wall_time_s']:.0f} s",
    ]


def table(workdirs) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(w)) + " |" for w in workdirs]
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
