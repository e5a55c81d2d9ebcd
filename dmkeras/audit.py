"""Which training labels are wrong? Per-sample clean probabilities and the threshold sweep.

Scores every training sample with trained nets (a finished DivideMix run, or a warm-up-only
scoring model): each net's normalised loss and clean probability (from the chosen division
strategy), their mean, the ensemble's predicted label, and a rank (most likely mislabeled first).
The sweep keeps the samples whose mean clean probability is at least each threshold and reports
what is kept, the noise left among it and, per class, what survives.
"""

import csv
import dataclasses
import math

import numpy as np

from dmkeras import division as division_lib
from dmkeras.errors import ConfigError

DEFAULT_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))


@dataclasses.dataclass
class SampleScores:
    """Everything the audit knows about each training sample."""

    labels: np.ndarray  # given (possibly noisy) labels
    predicted: np.ndarray  # ensemble's predicted label
    losses: np.ndarray  # [nets, N] normalised per-sample CE
    clean_prob: np.ndarray  # [nets, N] clean probability of each net's division
    true_labels: np.ndarray | None = None
    divisions: list = dataclasses.field(default_factory=list)

    @property
    def mean_clean_prob(self) -> np.ndarray:
        return self.clean_prob.mean(axis=0)

    @property
    def is_noisy(self) -> np.ndarray | None:
        return None if self.true_labels is None else self.true_labels != self.labels

    @property
    def rank(self) -> np.ndarray:
        """1 = most likely mislabeled: lowest mean clean probability, then highest mean loss."""
        order = np.lexsort((-self.losses.mean(axis=0), self.mean_clean_prob))
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        return rank


def score_samples(logits_per_net, labels, num_classes, *, strategy="gmm", class_floor=0.0, p_threshold=0.5, true_labels=None) -> SampleScores:
    """From each net's logits on every training sample (eval mode, no augmentation)."""
    labels = np.asarray(labels, np.int64)
    losses, probs, divisions = [], [], []
    for logits in logits_per_net:
        normalized = division_lib.min_max_normalize(division_lib.per_sample_cross_entropy(logits, labels))
        result = division_lib.divide(
            normalized, p_threshold, strategy=strategy, labels=labels, num_classes=num_classes, class_floor=class_floor
        )
        losses.append(normalized)
        probs.append(result.clean_prob)
        divisions.append(result)
    predicted = np.argmax(np.sum(np.stack(logits_per_net), axis=0), axis=1)
    return SampleScores(
        labels=labels,
        predicted=predicted,
        losses=np.stack(losses),
        clean_prob=np.stack(probs),
        true_labels=None if true_labels is None else np.asarray(true_labels, np.int64),
        divisions=divisions,
    )


def samples_columns(num_nets: int, with_truth: bool) -> list[str]:
    columns = ["index", "given_label", "predicted_label"]
    for k in range(1, num_nets + 1):
        columns += [f"loss_net{k}", f"clean_prob_net{k}"]
    columns += ["clean_prob_mean", "rank"]
    if with_truth:
        columns += ["true_label", "is_noisy"]
    return columns


def write_samples_csv(path: str, scores: SampleScores) -> None:
    """samples.csv: one row per training sample, in index order."""
    num_nets = len(scores.losses)
    columns = samples_columns(num_nets, scores.true_labels is not None)
    mean, rank = scores.mean_clean_prob, scores.rank
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for i in range(len(scores.labels)):
            row = [i, int(scores.labels[i]), int(scores.predicted[i])]
            for k in range(num_nets):
                row += [f"{scores.losses[k, i]:.6g}", f"{scores.clean_prob[k, i]:.6g}"]
            row += [f"{mean[i]:.6g}", int(rank[i])]
            if scores.true_labels is not None:
                row += [int(scores.true_labels[i]), int(scores.true_labels[i] != scores.labels[i])]
            writer.writerow(row)


def parse_thresholds(text: str) -> list[float]:
    """"0,0.1,0.5" -> [0.0, 0.1, 0.5]; each in [0, 1]."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"thresholds must be a comma list of numbers, got {text!r}", ("thresholds",)) from None
    if not values:
        raise ConfigError("thresholds is empty", ("thresholds",))
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad:
        raise ConfigError(f"thresholds must lie in [0, 1], got {bad[0]:g}", ("thresholds",))
    return values


def _ratio(numerator, denominator):
    return float(numerator) / float(denominator) if denominator else float("nan")


def kept_mask(clean_prob, labels, threshold, *, strategy="gmm", class_floor=0.0) -> np.ndarray:
    """The samples a sweep keeps at `threshold`: clean probability >= threshold (so 0.0 keeps all),
    topped up per class by the class-aware strategies."""
    return division_lib.select(clean_prob, labels, threshold, strategy=strategy, class_floor=class_floor, inclusive=True)


def sweep(clean_prob, labels, num_classes, thresholds, *, true_labels=None, strategy="gmm", class_floor=0.0) -> list[dict]:
    """For each threshold t, keep the samples with clean probability >= t (so 0.0 keeps all; the
    class-aware strategies top each class up to their floor) and report:

    kept, kept_fraction; with true labels: residual_noise (wrong labels among the kept) and
    precision / recall / F1 of flagging the dropped samples as mislabeled; min_class_kept_fraction
    and min_class (the given-label class that kept the smallest share of its samples);
    kept_class_<c> for every class.
    """
    labels = np.asarray(labels, np.int64)
    clean_prob = np.asarray(clean_prob, np.float64)
    is_noisy = None if true_labels is None else np.asarray(true_labels) != labels
    class_sizes = np.bincount(labels, minlength=num_classes)
    rows = []
    for t in thresholds:
        kept = kept_mask(clean_prob, labels, t, strategy=strategy, class_floor=class_floor)
        kept_per_class = np.bincount(labels[kept], minlength=num_classes)
        present = class_sizes > 0
        shares = kept_per_class[present] / class_sizes[present]
        row = {"threshold": float(t), "kept": int(kept.sum()), "kept_fraction": _ratio(kept.sum(), len(labels))}
        if is_noisy is not None:
            flagged = ~kept
            true_flags = int((flagged & is_noisy).sum())
            precision, recall = _ratio(true_flags, flagged.sum()), _ratio(true_flags, is_noisy.sum())
            row["residual_noise"] = _ratio((kept & is_noisy).sum(), kept.sum())
            row["flag_precision"] = precision
            row["flag_recall"] = recall
            row["flag_f1"] = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
        row["min_class_kept_fraction"] = float(shares.min())
        row["min_class"] = int(np.flatnonzero(present)[np.argmin(shares)])
        row.update({f"kept_class_{c}": int(kept_per_class[c]) for c in range(num_classes)})
        rows.append(row)
    return rows


def sweep_columns(num_classes: int, with_truth: bool, with_accuracy: bool) -> list[str]:
    columns = ["threshold", "kept", "kept_fraction"]
    if with_truth:
        columns += ["residual_noise", "flag_precision", "flag_recall", "flag_f1"]
    columns += ["min_class_kept_fraction", "min_class"]
    if with_accuracy:
        columns += ["test_acc"]
    return columns + [f"kept_class_{c}" for c in range(num_classes)]


def write_sweep_csv(path: str, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def _fmt(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def sweep_table(rows: list[dict], num_classes: int) -> str:
    """The sweep as a printed table (per-class counts in one column)."""
    has_truth = "residual_noise" in rows[0]
    has_acc = any("test_acc" in r for r in rows)
    head = ["threshold", "kept", "kept %"] + (["noise left", "flag P", "flag R", "flag F1"] if has_truth else [])
    head += ["smallest class kept"] + (["test acc"] if has_acc else []) + ["kept per class"]
    lines = [head]

    def pct(v):
        return "-" if v is None or math.isnan(v) else f"{100 * v:.1f}%"

    def num(v):
        return "-" if v is None or math.isnan(v) else f"{v:.3f}"

    for r in rows:
        line = [f"{r['threshold']:.2f}", str(r["kept"]), pct(r["kept_fraction"])]
        if has_truth:
            line += [pct(r["residual_noise"]), num(r["flag_precision"]), num(r["flag_recall"]), num(r["flag_f1"])]
        line += [f"{pct(r['min_class_kept_fraction'])} (class {r['min_class']})"]
        if has_acc:
            line += [pct(r.get("test_acc", float("nan")))]
        line += [" ".join(str(r[f"kept_class_{c}"]) for c in range(num_classes))]
        if r["kept"] == 0:
            line[-1] += "  (nothing kept)"
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.rjust(w) if i < len(head) - 1 else cell for i, (cell, w) in enumerate(zip(line, widths))) for line in lines)


def detection_metrics(flagged, suspicion, is_noisy) -> dict:
    """How well a detector finds the mislabeled samples: precision, recall, F1 of its flags and
    the AUC of its suspicion score (higher = more likely mislabeled)."""
    flagged = np.asarray(flagged, bool)
    is_noisy = np.asarray(is_noisy, bool)
    hits = int((flagged & is_noisy).sum())
    precision, recall = _ratio(hits, flagged.sum()), _ratio(hits, is_noisy.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return {
        "flagged": int(flagged.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": division_lib.roc_auc(suspicion, is_noisy),
    }
