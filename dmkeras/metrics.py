"""Run-level figures computed from the per-epoch logs."""

import math
import os
import resource

import numpy as np

# metrics.csv columns, in order; a value a run does not have (e.g. division columns during
# warm-up, or net 2 for the standard baseline) is left empty.
CSV_COLUMNS = [
    "epoch",
    "phase",
    "lr",
    "net1_loss",
    "net1_loss_x",
    "net1_loss_u",
    "net1_penalty",
    "net2_loss",
    "net2_loss_x",
    "net2_loss_u",
    "net2_penalty",
    "val_acc",
    "val_acc_net1",
    "val_acc_net2",
    "test_acc",
    "test_acc_net1",
    "test_acc_net2",
    "test_acc_top5",
    "extra_test_acc",
    "extra_test_acc_top5",
    "net1_labeled",
    "net2_labeled",
    "net1_min_class_labeled",
    "net2_min_class_labeled",
    "net1_auc",
    "net1_precision",
    "net1_recall",
    "net2_auc",
    "net2_precision",
    "net2_recall",
    "epoch_time_s",
    "codivide_time_s",
    "rss_mb",
    "net1_loss_c",
    "net2_loss_c",
]

def resident_memory_mb() -> float | None:
    """This process's resident memory now, in MiB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory_mb() -> float:
    """This process's peak resident memory so far, in MiB (getrusage; kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost_summary(history: list[dict]) -> dict:
    """What the epochs cost: mean time of a warm-up and of a semi-supervised epoch, the share of
    the semi-supervised epochs spent co-dividing (scoring, GMM, pipelines), and resident memory
    at the first and the last epoch (None where no epoch logs it)."""
    def mean(values):
        values = _finite(values)
        return float(np.mean(values)) if values else None

    warm = [h for h in history if "net1_labeled" not in h]  # no division: warm-up, or the CE baseline
    ssl = [h for h in history if "net1_labeled" in h]
    codivide = _finite([h.get("codivide_time_s") for h in ssl])
    ssl_time = _finite([h.get("epoch_time_s") for h in ssl if h.get("codivide_time_s") is not None])
    rss = _finite([h.get("rss_mb") for h in history])
    return {
        "warmup_epoch_time_s": mean([h.get("epoch_time_s") for h in warm]),
        "ssl_epoch_time_s": mean([h.get("epoch_time_s") for h in ssl]),
        "codivide_fraction": float(np.sum(codivide) / np.sum(ssl_time)) if codivide and ssl_time else None,
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
    }


MEASURED = ("epoch_time_s", "codivide_time_s", "rss_mb")
"""Log keys measured on the machine (time, memory), which differ between two identical runs."""

SUMMARY_MEASURED = ("wall_time_s", "warmup_epoch_time_s", "ssl_epoch_time_s", "codivide_fraction", "rss_mb_first",
                    "rss_mb_last", "peak_rss_mb")
"""summary.json's measured figures (see MEASURED)."""

LAST_EPOCHS = 10  # the paper's "last" accuracy: mean over the last 10 epochs


def _finite(values):
    return [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def best_epoch(history: list[dict], key: str) -> tuple[float | None, int | None]:
    """(best value, its epoch) of `key` over the epochs of `history` that log it, as the
    reference keeps a net's best validation accuracy: a later epoch wins only when strictly
    better, so a tie keeps the earlier epoch. (None, None) when no epoch logs it."""
    best, epoch = None, None
    for h in history:
        value = h.get(key)
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if best is None or value > best:
            best, epoch = value, int(h["epoch"])
    return best, epoch


def net_val_key(k: int, num_nets: int) -> str:
    """The validation accuracy of net k (0-based) in the epoch logs: val_acc_net1 / val_acc_net2
    with two nets, val_acc (the net alone) for the one-net standard baseline."""
    return "val_acc" if num_nets == 1 else f"val_acc_net{k + 1}"


def validation_summary(history: list[dict], test_acc_val_selected: float | None = None) -> dict:
    """The validation figures of summary.json (all None without a validation set).

    val_acc_best / val_best_epoch: the ensemble's best validation accuracy and its epoch
    (1-based, as metrics.csv), test_acc_at_val_best the test accuracy logged at that epoch;
    val_acc_final: the last epoch's (what a recipe is tuned on: the end of its schedule);
    val_acc_best_net{k} / val_best_epoch_net{k}: each net's own, the epochs whose weights
    callbacks.BestValidation keeps; test_acc_val_selected: the test accuracy of the ensemble of
    those weights (the reference's Clothing1M figure), measured at the end of training.
    """
    best, epoch = best_epoch(history, "val_acc")
    at_best = next((h.get("test_acc") for h in history if int(h["epoch"]) == epoch), None) if epoch is not None else None
    two_nets = any("val_acc_net2" in h for h in history)
    final = next((h["val_acc"] for h in reversed(history) if h.get("val_acc") is not None), None)
    out = {"val_acc_best": best, "val_best_epoch": epoch, "test_acc_at_val_best": at_best, "val_acc_final": final}
    for k in range(2):
        value, at = best_epoch(history, net_val_key(k, 2 if two_nets else 1)) if (k == 0 or two_nets) else (None, None)
        out.update({f"val_acc_best_net{k + 1}": value, f"val_best_epoch_net{k + 1}": at})
    out["test_acc_val_selected"] = test_acc_val_selected if best is not None else None
    return out


def summarize(history: list[dict], *, num_samples: int, noise_rate_actual: float, wall_time_s: float, epochs: int,
              test_acc_val_selected: float | None = None) -> dict:
    """summary.json: best / last-10 ensemble test accuracy and the last epoch's division figures,
    and with a validation set its figures (`validation_summary`; `test_acc_val_selected` is
    measured by callbacks.BestValidation at the end of training, None before).

    division_auc_last and labeled_fraction_last average the two nets' divisions of the last
    epoch that made one (None when there was none, or when the true labels are unknown).
    """
    accuracies = [h["test_acc"] for h in history if "test_acc" in h]
    extra = {}
    for key in ("test_acc_top5", "extra_test_acc", "extra_test_acc_top5"):  # when the run has them
        values = [h[key] for h in history if key in h]
        if values:
            extra.update({f"{key}_best": max(values), f"{key}_last": float(np.mean(values[-LAST_EPOCHS:]))})
    divided = [h for h in history if "net1_labeled" in h]
    last_division = divided[-1] if divided else {}
    aucs = _finite([last_division.get("net1_auc"), last_division.get("net2_auc")])
    labeled = _finite([last_division.get("net1_labeled"), last_division.get("net2_labeled")])
    divided_size = last_division.get("net1_divided", num_samples)  # --num_batches: each net divides a sample
    return {
        "test_acc_best": max(accuracies) if accuracies else None,
        "test_acc_last": float(np.mean(accuracies[-LAST_EPOCHS:])) if accuracies else None,
        "test_acc_final": accuracies[-1] if accuracies else None,
        **extra,
        **validation_summary(history, test_acc_val_selected),
        "division_auc_last": float(np.mean(aucs)) if aucs else None,
        "labeled_fraction_last": float(np.mean(labeled)) / divided_size if labeled else None,
        "noise_rate_actual": noise_rate_actual,
        "epochs": len(history),
        "epochs_planned": epochs,
        "finished": len(history) == epochs,
        "wall_time_s": wall_time_s,
        **cost_summary(history),
        "peak_rss_mb": peak_memory_mb(),
    }
