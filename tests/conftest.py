"""Fixtures shared by several test modules; the plain helpers they call with arguments (tiny nets, models,
image banks, random images, the `python -m` runner, REPO) are in tests/helpers.py."""

import keras
import numpy as np
import pytest

from dmkeras.config import TrainConfig


@pytest.fixture(scope="session")
def resnet50_imagenet_file(tmp_path_factory):
    """A stand-in for keras' ImageNet ResNet-50 weights file of the base (random, seeded; the real one
    cannot be downloaded here), with the moving statistics of caffe-scaled inputs (0-255,
    mean-subtracted) as trained weights have: with the initial 0 / 1 the eval-mode forward of such
    inputs overflows."""
    path = tmp_path_factory.mktemp("weights") / "resnet50_notop.weights.h5"
    keras.utils.set_random_seed(5)
    base = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    images = np.random.default_rng(0).integers(0, 256, size=(16, 32, 32, 3)).astype(np.float32)
    base(keras.applications.resnet50.preprocess_input(images), training=True)
    base.save_weights(path)
    return str(path)


@pytest.fixture
def digits_config(tmp_path):
    """A factory of tiny digits TrainConfigs (width-8 small CNN, 120 / 40 images, 2 epochs) in tmp_path,
    with the given fields changed."""

    def make(workdir=None, **overrides):
        values = dict(
            dataset="digits", backbone="small_cnn", backbone_args="width=8", epochs=2, warm_up=1, batch_size=16,
            eval_batch_size=64, train_limit=120, test_limit=40, workdir=str(workdir or tmp_path), verbose=0,
            augment="crop", pad=1,
        )
        values.update(overrides)
        return TrainConfig(**values)

    return make
