"""The pieces the Fashion-MNIST recipe and its table rest on: the validation carve, the split seed,
mnist_cnn, the cost figures of summary.json and the cleanlab filter-and-retrain method."""

import csv
import json
import os

import numpy as np
import pytest

from dmkeras import experiment, zoo
from dmkeras.config import TrainConfig
from dmkeras.data import sources
from dmkeras.errors import DmkerasError


def test_stratified_hold_out_takes_the_rounded_fraction_of_every_class():
    y = np.repeat(np.arange(3), [10, 7, 1])
    held = sources.stratified_hold_out(y, 0.25, seed=0)
    # round(2.5) = 3 (half up), round(1.75) = 2, and a class of one keeps its sample
    assert [int(held[y == c].sum()) for c in range(3)] == [3, 2, 0]
    assert np.array_equal(held, sources.stratified_hold_out(y, 0.25, seed=0))
    assert not np.array_equal(held, sources.stratified_hold_out(y, 0.25, seed=1))


def test_val_fraction_is_carved_before_the_noise_and_keeps_true_labels(tmp_path, digits_config):
    plain = experiment.load_data(digits_config(tmp_path, train_limit=0, noise_rate=0.5))
    data = experiment.load_data(digits_config(tmp_path, train_limit=0, noise_rate=0.5, val_fraction=0.1))
    n = len(plain.split.y_train)
    assert len(data.split.y_val) + len(data.labels) == n
    # 10% of each class, rounded half up
    counts = np.bincount(plain.split.y_train, minlength=10)
    assert np.array_equal(np.bincount(data.split.y_val, minlength=10), np.floor(0.1 * counts + 0.5).astype(int))
    # the validation images are training images with their true labels; the rest trains, noisy
    train_rows = {row.tobytes(): label for row, label in zip(plain.split.x_train, plain.split.y_train)}
    assert all(train_rows[x.tobytes()] == y for x, y in zip(data.split.x_val, data.split.y_val))
    assert 0.4 < data.noise_rate_actual < 0.5  # sym 0.5 over 10 classes: 0.45 expected
    other = experiment.load_data(digits_config(tmp_path, train_limit=0, noise_rate=0.5, val_fraction=0.1, split_seed=1))
    assert not np.array_equal(other.split.y_val, data.split.y_val) or not np.array_equal(other.split.x_val, data.split.x_val)


def test_val_fraction_refuses_a_second_validation_set():
    with pytest.raises(DmkerasError, match="^val_fraction carves a validation set"):
        TrainConfig(workdir="w", val_fraction=0.1, val_dataset="npz:x.npz").validate()
    with pytest.raises(DmkerasError, match=r"^val_fraction must be in \[0, 1\)"):
        TrainConfig(workdir="w", val_fraction=1.0).validate()


def test_split_seed_redraws_the_digits_split_stratified():
    a, b = sources.load_source("digits"), sources.load_source("digits", split_seed=1)
    assert len(a.y_test) == len(b.y_test) == 297
    assert abs(np.bincount(a.y_test) - np.bincount(b.y_test)).max() <= 1  # stratified both times
    assert not np.array_equal(a.x_test, b.x_test)
    assert np.array_equal(sources.load_source("digits", split_seed=0).x_test, a.x_test)  # 0: the tables' split


def test_mnist_cnn_is_three_stages_of_16_32_64():
    net = zoo.create_model("mnist_cnn", num_classes=10, input_shape=(28, 28, 1))
    convs = [layer for layer in net.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [tuple(c.output.shape[1:3]) for c in convs[::2]] == [(28, 28), (14, 14), (7, 7)]
    # 3x3 convs without biases + BN (4 per channel, 2 of them trainable) + the head
    weights = 9 * (1 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) + 4 * 2 * (16 + 32 + 64) + 64 * 10 + 10
    assert net.count_params() == weights == 73114
    assert "mnist_cnn" in zoo.list_models()
    # the 2-stage small_cnn keeps its layer names (saved digits nets load)
    names = [layer.name for layer in zoo.create_model("small_cnn", num_classes=10, input_shape=(8, 8, 1)).layers]
    assert "pool1" in names and "block2b_conv" in names and "block3a_conv" not in names


def test_summary_has_the_cost_figures(tmp_path, digits_config):
    summary = experiment.run(digits_config(tmp_path, noise_rate=0.5, epochs=3))
    with open(os.path.join(tmp_path, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["codivide_time_s"] == "" and float(rows[1]["codivide_time_s"]) > 0  # no co-divide in warm-up
    assert all(float(r["rss_mb"]) > 100 for r in rows)
    assert rows[0]["net1_min_class_labeled"] == "" and 0 <= float(rows[1]["net1_min_class_labeled"]) <= 1
    epoch_times = [float(r["epoch_time_s"]) for r in rows]
    assert summary["warmup_epoch_time_s"] == pytest.approx(epoch_times[0], rel=1e-4)
    assert summary["ssl_epoch_time_s"] == pytest.approx(np.mean(epoch_times[1:]), rel=1e-4)
    codivide = sum(float(r["codivide_time_s"]) for r in rows[1:])
    assert summary["codivide_fraction"] == pytest.approx(codivide / sum(epoch_times[1:]), rel=1e-4)
    assert summary["peak_rss_mb"] >= max(float(r["rss_mb"]) for r in rows) - 1
    assert summary["rss_mb_last"] == pytest.approx(float(rows[-1]["rss_mb"]), rel=1e-4)


def test_cleanlab_method_retrains_on_what_cleanlab_keeps(tmp_path, digits_config):
    cleanlab = pytest.importorskip("cleanlab.filter")
    config = digits_config(tmp_path, method="cleanlab", cleanlab_folds=2, noise_rate=0.5, epochs=2, train_limit=200)
    summary = experiment.run(config)
    data = experiment.load_data(config)
    fold_order = np.random.default_rng([0, 3]).permutation(200)
    probs = np.zeros((200, 10))
    for k, held in enumerate(np.array_split(fold_order, 2)):
        probs[held] = np.load(tmp_path / "cleanlab" / f"fold{k}.npy")
    assert np.allclose(probs.sum(axis=1), 1.0)
    flags = cleanlab.find_label_issues(data.labels, probs)
    assert summary["cleanlab_flagged"] == int(flags.sum()) > 0
    assert summary["labeled_fraction_last"] == pytest.approx(1 - flags.mean())
    assert summary["noise_rate_actual"] == pytest.approx(data.noise_rate_actual)
    wrong = data.labels != data.true_labels
    assert summary["cleanlab_precision"] == pytest.approx(wrong[flags].mean())
    assert summary["cleanlab_noise_rate_kept"] == pytest.approx(wrong[~flags].mean())
    assert 0 <= summary["division_auc_last"] <= 1
    with open(tmp_path / "summary.json") as f:
        assert json.load(f)["cleanlab_flagged"] == summary["cleanlab_flagged"]
    # the folds and the models are seeded: a second run flags the same samples
    again = experiment.run(digits_config(tmp_path / "again", method="cleanlab", cleanlab_folds=2, noise_rate=0.5, epochs=2, train_limit=200))
    assert again["cleanlab_flagged"] == summary["cleanlab_flagged"]
