"""experiment.run in-process: tensorflow-datasets (mocked offline), noise choices, the baseline."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from dmkeras import experiment
from dmkeras.data import noise as noise_lib
from dmkeras.errors import DmkerasError
from tests.helpers import random_images


def test_tfds_cifar10_run_with_the_paper_asymmetric_map(tmp_path, digits_config):
    with tfds.testing.mock_data(num_examples=96):
        config = digits_config(tmp_path, dataset="tfds:cifar10", noise_mode="asym", noise_rate=0.4, augment="crop,flip", pad=4, train_limit=0, test_limit=0)
        data = experiment.load_data(config)
        summary = experiment.run(config)
    assert data.split.image_shape == (32, 32, 3) and data.split.num_classes == 10
    moved = data.labels != data.true_labels
    for src, dst in zip(data.true_labels[moved], data.labels[moved]):  # only the CIFAR-10 map's moves
        assert noise_lib.CIFAR10_ASYM_MAP[src] == dst
    assert summary["epochs"] == 2 and summary["noise_rate_actual"] == pytest.approx(moved.mean())
    with open(os.path.join(tmp_path, "config.json")) as f:
        assert json.load(f)["confidence_penalty"] == "auto"  # resolved to on under asym (see test below)
    assert config.use_confidence_penalty


def test_standard_baseline_writes_the_same_files(tmp_path, digits_config):
    summary = experiment.run(digits_config(tmp_path, method="standard", noise_rate=0.5))
    assert summary["division_auc_last"] is None and summary["labeled_fraction_last"] is None
    assert os.path.exists(os.path.join(tmp_path, "net1.keras")) and not os.path.exists(os.path.join(tmp_path, "net2.keras"))
    assert 0 <= summary["test_acc_best"] <= 1


def test_dataset_with_its_own_noisy_labels_refuses_synthetic_noise(tmp_path, digits_config):
    rng = np.random.default_rng(0)
    path = tmp_path / "noisy.npz"
    y = rng.integers(0, 3, 30)
    np.savez(path, x_train=random_images(rng, 30, (8, 8)), y_train=y, y_train_clean=(y + 1) % 3,
             x_test=random_images(rng, 9, (8, 8)), y_test=rng.integers(0, 3, 9))
    with pytest.raises(DmkerasError, match="use noise_mode=none"):
        experiment.load_data(digits_config(tmp_path, dataset=f"npz:{path}", noise_mode="sym"))
    data = experiment.load_data(digits_config(tmp_path, dataset=f"npz:{path}", noise_mode="none", train_limit=0))
    assert data.noise_rate_actual == 1.0 and np.array_equal(data.true_labels, (y + 1) % 3)
