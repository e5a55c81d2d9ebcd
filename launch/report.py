"""A markdown table of finished runs, from their config.json and summary.json.

    python -m launch.report [--group_over=seed] runs/digits_sym50_seed0 runs/digits_sym50_seed1 ...

Runs whose config.json differ only in the fields of --group_over (default: seed; e.g.
--group_over=seed,split_seed for seeds x splits), besides the run's own paths and verbosity, are
one row: each figure is then "mean ± std" over them (sample standard deviation, n - 1) and the
run column says how many runs the row averages. --group_over=none gives one row per run.

When a run had a validation set, a column "test acc val-selected" shows the test accuracy of its
nets' best-validation weights (summary.json's test_acc_val_selected, the reference's Clothing1M
figure; "-" for the runs without one), and "val acc final" the last epoch's validation accuracy (what
recipes are tuned on). Columns "time / epoch" (a semi-supervised epoch, or a
baseline's epoch) and "peak RSS" appear when the summaries have them, and "switches" (issue 12's
--augdesc and --division=unicon) when some run used one.

    python -m launch.report --plot=table.png DIR ...

also draws each row's last-10 test accuracy (mean ± std over its runs) as a bar chart.
"""

import json
import os
import re
import sys

import numpy as np

from dmkeras.config import recorded_defaults
from dmkeras.errors import DmkerasError
from dmkeras.rundir import RunDir

COLUMNS = ["run", "method", "noise", "wrong labels", "test acc best", "test acc last 10", "division AUC", "labeled", "epochs", "wall time"]
VAL_SELECTED = "test acc val-selected"  # after "test acc last 10", when some run has it
VAL_FINAL = "val acc final"  # after "test acc last 10", when some run has a validation set
EPOCH_TIME, PEAK_RSS = "time / epoch", "peak RSS"  # around "wall time", when some run has them
SWITCHES = "switches"  # after "noise", when some run used --augdesc or --division=unicon
NOT_CONFIG = ("workdir", "verbose", "noise_file", "data_dir")  # where a run was kept, not what it ran
_SUFFIX_TAGS = {"seed": ("seed", "s"), "split_seed": ("split", "split_seed")}  # a grouped field's run-name suffixes


def _strip_suffixes(name: str, over) -> str:
    """The run name without the trailing _seedN / _splitN parts of the fields the row averages over
    (a row over seeds keeps its _splitN, so the splits' rows stay apart)."""
    tags = [t for field in over for t in _SUFFIX_TAGS.get(field, ())]
    if not tags:
        return name
    pattern = re.compile(r"_(" + "|".join(tags) + r")\d+")
    return re.sub(r"((_[a-z_]+\d+))+$", lambda m: pattern.sub("", m.group(0)), name)


def _read(workdir: str) -> tuple[dict, dict]:
    run = RunDir(workdir)
    return run.config(), run.summary()


def _values(summaries, key):
    return [s[key] for s in summaries if s.get(key) is not None]


def _stat(values, fmt, scale=1.0, unit=""):
    """One figure, or mean ± std of several; "-" when no run has it."""
    if not values:
        return "-"
    values = np.asarray(values, np.float64) * scale
    if len(values) == 1:
        return f"{values[0]:{fmt}}{unit}"
    return f"{values.mean():{fmt}} ± {values.std(ddof=1):{fmt}}{unit}"


def _epoch_time(summary):
    return summary.get("ssl_epoch_time_s") if summary.get("ssl_epoch_time_s") is not None else summary.get("warmup_epoch_time_s")


def group_runs(workdirs, over=("seed",)) -> list[list[str]]:
    """The run directories grouped by their config.json without the fields of `over` (and
    NOT_CONFIG), in order of first appearance."""
    groups: dict[str, list[str]] = {}
    defaults = recorded_defaults()  # a config.json from before a field existed ran with its default
    for workdir in workdirs:
        config, _ = _read(workdir)
        config = {**defaults, **config}
        key = json.dumps({k: v for k, v in config.items() if k not in (*NOT_CONFIG, *over)}, sort_keys=True)
        groups.setdefault(key, []).append(workdir)
    return list(groups.values())


def switches(config: dict) -> str:
    """The issue-12 switches of a run's config ("augdesc ws + unicon"), "-" for none."""
    parts = []
    if config.get("augdesc", "off") != "off":
        parts.append(f"augdesc {config['augdesc']}")
    if config.get("division") == "unicon":
        parts.append("unicon")
    if config.get("contrastive_weight", 0.0) > 0:
        parts.append(f"contrastive {config['contrastive_weight']:g}")
    return " + ".join(parts) or "-"


def row(workdirs, val_selected: bool = False, cost: bool = False, val_final: bool = False, over=("seed",),
        with_switches: bool = False) -> list[str]:
    """The table row of one run, or of several runs of one setting (a list of directories)."""
    workdirs = [workdirs] if isinstance(workdirs, str) else list(workdirs)
    runs = [_read(w) for w in workdirs]
    config, summaries = runs[0][0], [s for _, s in runs]
    name = os.path.basename(os.path.normpath(workdirs[0]))
    if len(workdirs) > 1:
        name = f"{_strip_suffixes(name, over)} ({len(workdirs)} runs)"
    noise = "none" if config["noise_mode"] == "none" else f"{config['noise_mode']} {config['noise_rate']:g}"
    epochs = sorted({f"{s['epochs']}/{s['epochs_planned']}" for s in summaries})
    cells = [
        name,
        config["method"],
        noise,
        *([switches(config)] if with_switches else []),
        _stat(_values(summaries, "noise_rate_actual"), ".3f") if config["noise_mode"] != "none" else "-",
        _stat(_values(summaries, "test_acc_best"), ".2f", 100, "%"),
        _stat(_values(summaries, "test_acc_last"), ".2f", 100, "%"),
        *([_stat(_values(summaries, "val_acc_final"), ".2f", 100, "%")] if val_final else []),
        *([_stat(_values(summaries, "test_acc_val_selected"), ".2f", 100, "%")] if val_selected else []),
        _stat(_values(summaries, "division_auc_last"), ".4f"),
        _stat(_values(summaries, "labeled_fraction_last"), ".3f"),
        ", ".join(epochs),
        *([_stat([t for t in map(_epoch_time, summaries) if t is not None], ".0f", unit=" s")] if cost else []),
        _stat(_values(summaries, "wall_time_s"), ".0f", unit=" s"),
        *([_stat(_values(summaries, "peak_rss_mb"), ".0f", unit=" MiB")] if cost else []),
    ]
    return cells


def table(workdirs, over=("seed",)) -> str:
    configs, summaries = zip(*(_read(w) for w in workdirs))
    with_switches = any(switches(c) != "-" for c in configs)
    val_selected = any(s.get("test_acc_val_selected") is not None for s in summaries)
    cost = any(s.get("peak_rss_mb") is not None for s in summaries)
    val_final = any(s.get("val_acc_final") is not None for s in summaries)
    columns = list(COLUMNS)
    if with_switches:
        columns.insert(columns.index("noise") + 1, SWITCHES)
    if val_selected:
        columns.insert(columns.index("test acc last 10") + 1, VAL_SELECTED)
    if val_final:
        columns.insert(columns.index("test acc last 10") + 1, VAL_FINAL)
    if cost:
        columns.insert(columns.index("wall time"), EPOCH_TIME)
        columns.append(PEAK_RSS)
    groups = group_runs(workdirs, over) if over else [[w] for w in workdirs]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row(g, val_selected, cost, val_final, over, with_switches)) + " |" for g in groups]
    return "\n".join(lines)


def plot(workdirs, path: str, over=("seed",)) -> None:
    """Each row's last-10 test accuracy, mean ± std over its runs, as a bar chart in `path`."""
    from dmkeras import plots

    groups = group_runs(workdirs, over) if over else [[w] for w in workdirs]
    labels, means, stds = [], [], []
    for group in groups:
        values = 100 * np.asarray(_values([_read(w)[1] for w in group], "test_acc_last"), np.float64)
        name = os.path.basename(os.path.normpath(group[0]))
        labels.append(f"{_strip_suffixes(name, over)} (n={len(group)})" if len(group) > 1 else name)
        means.append(values.mean() if values.size else np.nan)
        stds.append(values.std(ddof=1) if values.size > 1 else 0.0)
    plots.accuracy_bars(labels, means, stds, path)


def main(argv):
    over, dirs, plot_path = ("seed",), [], None
    for arg in argv[1:]:
        if arg in ("-h", "--help", "--helpfull"):  # the other console scripts (absl) answer these too
            print(__doc__.strip())
            return 0
        if arg.startswith("--plot="):
            plot_path = arg.partition("=")[2]
        elif arg.startswith("--group_over="):
            value = arg.partition("=")[2]
            over = () if value in ("", "none") else tuple(v.strip() for v in value.split(","))
        elif arg.startswith("-"):
            print(f"error: unknown option {arg}\n\n{__doc__.strip()}", file=sys.stderr)
            return 2
        else:
            dirs.append(arg)
    if not dirs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        print(table(dirs, over))
        if plot_path:
            plot(dirs, plot_path, over)
    except (DmkerasError, OSError, KeyError) as error:
        print(f"error: not a finished run directory: {error}", file=sys.stderr)
        return 2
    return 0


def cli():
    """The console script (dmkeras-report): the same as python -m launch.report."""
    sys.exit(main(sys.argv))


if __name__ == "__main__":
    cli()
