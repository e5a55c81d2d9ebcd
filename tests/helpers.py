"""Plain helpers shared by several test modules: `from tests.helpers import ...` (the fixtures are in
conftest.py). Each does exactly what the test modules wrote out before, so seeds and shapes are theirs."""

import csv
import os
import subprocess
import sys

import keras
import numpy as np

from dmkeras import zoo
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.model import DivideMixModel

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *flags, timeout=600, env=None):
    """`python -m module *flags` from the repository root, stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def csv_rows(path):
    """The rows of a CSV file (metrics.csv, samples.csv, ...) as dicts of strings."""
    with open(path) as f:
        return list(csv.DictReader(f))


def small_cnn_pair(num_classes, input_shape=(8, 8, 1), **kwargs):
    """Two small CNNs (kwargs: width, batchnorm, ...), drawn one after the other from the current seed."""
    return [zoo.create_model("small_cnn", num_classes, input_shape, **kwargs) for _ in range(2)]


def dividemix_model(num_classes, input_shape=(8, 8, 1), *, lr=0.05, momentum=0.9, seed=0, net_args=None, **model_kwargs):
    """A DivideMixModel on `small_cnn_pair` (net_args, e.g. width=8) seeded with `seed`, each net compiled
    with SGD(lr, momentum); model_kwargs go to DivideMixModel (weight_decay, prior_penalty, ...)."""
    keras.utils.set_random_seed(seed)
    nets = small_cnn_pair(num_classes, input_shape, **(net_args or {}))
    model = DivideMixModel(*nets, num_classes=num_classes, **model_kwargs)
    model.compile(keras.optimizers.SGD(lr, momentum=momentum), keras.optimizers.SGD(lr, momentum=momentum))
    return model


def random_images(rng, n, shape=(8, 8, 1)):
    """n random uint8 images of `shape`, drawn from the numpy Generator rng."""
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def random_labeled_images(rng, n, num_classes, shape=(8, 8, 1)):
    """`random_images`, then n random labels in [0, num_classes), both drawn from rng in that order."""
    images = random_images(rng, n, shape)
    return images, rng.integers(0, num_classes, size=n)


def image_bank(images, augment=AugmentConfig(True, True, 1)):
    """An ImageBank of uint8 images normalised with mean 0.5 and std 0.25 (crop, flip, pad 1 by default)."""
    return pipeline.ImageBank(images, (0.5,), (0.25,), augment)
