"""Run-level figures computed from the per-epoch logs."""

import math

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
    "test_acc",
    "test_acc_net1",
    "test_acc_net2",
    "test_acc_top5",
    "extra_test_acc",
    "extra_test_acc_top5",
    "net1_labeled",
    "net2_labeled",
    "net1_auc",
    "net1_precision",
    "net1_recall",
    "net2_auc",
    "net2_precision",
    "net2_recall",
    "epoch_time_s",
]

LAST_EPOCHS = 10  # the paper's "last" accuracy: mean over the last 10 epochs


def _finite(values):
    return [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def summarize(history: list[dict], *, num_samples: int, noise_rate_actual: float, wall_time_s: float, epochs: int) -> dict:
    """summary.json: best / last-10 ensemble test accuracy and the last epoch's division figures.

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
        "division_auc_last": float(np.mean(aucs)) if aucs else None,
        "labeled_fraction_last": float(np.mean(labeled)) / divided_size if labeled else None,
        "noise_rate_actual": noise_rate_actual,
        "epochs": len(history),
        "epochs_planned": epochs,
        "finished": len(history) == epochs,
        "wall_time_s": wall_time_s,
    }
