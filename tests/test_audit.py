"""The audit's arithmetic on hand-made examples: the sweep, samples.csv, detection metrics."""

import csv
import math

import numpy as np
import pytest

from dmkeras import audit
from dmkeras.errors import DmkerasError

# 10 samples, 2 classes; the labels of 3, 4 (given 0, truly 1) and 8, 9 (given 1, truly 0) are wrong
LABELS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
TRUE = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
PROB = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.95, 0.85, 0.6, 0.4, 0.3])


def _row(threshold, **kwargs):
    return audit.sweep(PROB, LABELS, 2, [threshold], true_labels=TRUE, **kwargs)[0]


def test_sweep_at_zero_keeps_everything():
    row = _row(0.0)
    assert (row["kept"], row["kept_fraction"], row["residual_noise"]) == (10, 1.0, 0.4)
    assert math.isnan(row["flag_precision"]) and row["flag_recall"] == 0.0 and math.isnan(row["flag_f1"])
    assert (row["kept_class_0"], row["kept_class_1"], row["min_class_kept_fraction"]) == (5, 5, 1.0)


def test_sweep_by_hand():
    row = _row(0.5)  # keeps 0, 1, 2, 5, 6, 7: every wrong label dropped
    assert (row["kept"], row["residual_noise"], row["flag_precision"], row["flag_recall"], row["flag_f1"]) == (6, 0.0, 1.0, 1.0, 1.0)
    assert (row["kept_class_0"], row["kept_class_1"], row["min_class_kept_fraction"], row["min_class"]) == (3, 3, 0.6, 0)
    row = _row(0.65)  # keeps 0, 1, 2, 5, 6; drops 7 (clean) with 3, 4, 8, 9
    assert (row["kept"], row["kept_class_1"], row["min_class"]) == (5, 2, 1)
    assert row["min_class_kept_fraction"] == pytest.approx(0.4)
    assert (row["flag_precision"], row["flag_recall"]) == (pytest.approx(0.8), 1.0)
    assert row["flag_f1"] == pytest.approx(2 * 0.8 / 1.8)
    row = _row(0.35)  # keeps 8 (wrong, 0.4) too
    assert row["kept"] == 7 and row["residual_noise"] == pytest.approx(1 / 7)
    assert (row["flag_precision"], row["flag_recall"]) == (1.0, 0.75)


def test_sweep_threshold_equal_to_a_probability_keeps_it():
    assert _row(0.6)["kept"] == 6  # 0.6 >= 0.6


def test_class_floor_tops_up_each_class():
    row = _row(0.9, strategy="class_floor", class_floor=0.5)  # plain: keeps 0 and 5 only
    assert (row["kept_class_0"], row["kept_class_1"]) == (3, 3)  # ceil(0.5 * 5) each, the most probable
    assert _row(0.9)["kept"] == 2


def test_sweep_without_true_labels_has_no_noise_columns():
    row = audit.sweep(PROB, LABELS, 2, [0.5])[0]
    assert "residual_noise" not in row and row["kept"] == 6


def test_sweep_csv_columns(tmp_path):
    rows = audit.sweep(PROB, LABELS, 2, [0.0, 0.5], true_labels=TRUE)
    columns = audit.sweep_columns(2, True, False)
    audit.write_sweep_csv(tmp_path / "sweep.csv", rows, columns)
    with open(tmp_path / "sweep.csv") as f:
        read = list(csv.DictReader(f))
    assert list(read[0].keys()) == [
        "threshold", "kept", "kept_fraction", "residual_noise", "flag_precision", "flag_recall", "flag_f1",
        "min_class_kept_fraction", "min_class", "kept_class_0", "kept_class_1",
    ]
    assert read[0]["flag_precision"] == "" and read[1]["kept"] == "6" and read[1]["residual_noise"] == "0"


def test_sweep_table_marks_an_empty_kept_set():
    rows = audit.sweep(PROB, LABELS, 2, [1.0], true_labels=TRUE)
    assert rows[0]["kept"] == 0 and math.isnan(rows[0]["residual_noise"])
    assert "(nothing kept)" in audit.sweep_table(rows, 2)


def test_parse_thresholds():
    assert audit.parse_thresholds("0,0.5,1") == [0.0, 0.5, 1.0]
    with pytest.raises(DmkerasError, match=r"^thresholds must lie in \[0, 1\], got 1.5$") as error:
        audit.parse_thresholds("0.1,1.5")
    assert error.value.as_flags() == "--thresholds must lie in [0, 1], got 1.5"  # as launch.audit prints it
    with pytest.raises(DmkerasError, match="comma list"):
        audit.parse_thresholds("0.1,high")


def _logits(correct_confidence):
    """Two-class logits whose softmax gives the given label's probability per row."""
    p = np.asarray(correct_confidence)
    return np.stack([np.log(p), np.log(1 - p)], axis=1)


def test_samples_csv_ranks_the_most_suspicious_first(tmp_path):
    labels = np.zeros(40, np.int64)
    confidence = np.r_[np.full(30, 0.99), np.linspace(0.05, 0.2, 10)]  # the last 10 look mislabeled
    scores = audit.score_samples([_logits(confidence), _logits(confidence)], labels, 2, true_labels=np.r_[np.zeros(30), np.ones(10)].astype(int))
    audit.write_samples_csv(tmp_path / "samples.csv", scores)
    with open(tmp_path / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == audit.samples_columns(2, True)
    assert len(rows) == 40 and rows[0]["index"] == "0"
    by_rank = sorted(rows, key=lambda r: int(r["rank"]))
    assert [int(r["index"]) for r in by_rank[:10]] == list(range(30, 40))  # lowest confidence first
    assert all(r["is_noisy"] == "1" for r in by_rank[:10]) and rows[35]["predicted_label"] == "1"
    assert float(rows[0]["clean_prob_mean"]) > 0.9 > float(rows[39]["clean_prob_mean"])


def test_detection_metrics_by_hand():
    flagged = np.array([True, True, False, False])
    noisy = np.array([True, False, True, False])
    result = audit.detection_metrics(flagged, np.array([0.9, 0.8, 0.3, 0.1]), noisy)
    assert (result["flagged"], result["precision"], result["recall"], result["f1"]) == (2, 0.5, 0.5, 0.5)
    assert result["auc"] == pytest.approx(0.75)  # noisy (0.9, 0.3) vs clean (0.8, 0.1): 3 of 4 pairs ordered
