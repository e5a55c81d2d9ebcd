"""A small convolutional net for tiny images (e.g. 8x8 scikit-learn digits).

Layout (``w`` = ``width``)::

    conv3x3(w)-[BN]-ReLU, conv3x3(w)-[BN]-ReLU, MaxPool 2x2,
    conv3x3(2w)-[BN]-ReLU, conv3x3(2w)-[BN]-ReLU,
    GlobalAveragePooling2D, Dense(num_classes) -> logits

About 66k parameters at ``width=32`` on 8x8x1 inputs: trains in seconds on a
CPU and has enough capacity to memorise noisy labels under plain
cross-entropy (which is what the baseline is meant to show).
"""

from __future__ import annotations

import keras
from keras import layers

from dmkeras.errors import DmkerasError

MIN_INPUT_SIZE = 4


def _conv_unit(x, filters, batchnorm, name):
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=not batchnorm, name=f"{name}_conv"
    )(x)
    if batchnorm:
        # PyTorch's BN defaults (momentum 0.1 there), as the reference's nets: Keras' 0.99 leaves the
        # moving statistics, hence eval-mode losses and accuracy, far behind on short runs.
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def small_cnn(num_classes, input_shape, width=32, batchnorm=True):
    """Small CNN for inputs of at least 4x4 (designed for 8x8x1 digits), logits out.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 4.

    Kwargs:
        width (int, default 32): filters of the first two convolutions; the
            last two have ``2 * width``.
        batchnorm (bool, default True): put a BatchNormalization after every
            convolution.  ``False`` gives a model with no BN layer at all
            (convolutions then have biases), whose outputs do not depend on
            batch composition or training/inference mode.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise DmkerasError(f"small_cnn width must be a positive int, got {width!r}")
    if not isinstance(batchnorm, bool):
        raise DmkerasError(f"small_cnn batchnorm must be True or False, got {batchnorm!r}")
    height, wid = input_shape[0], input_shape[1]
    if height < MIN_INPUT_SIZE or wid < MIN_INPUT_SIZE:
        raise DmkerasError(
            f"small_cnn needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}, "
            f"got {height}x{wid}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = _conv_unit(inputs, width, batchnorm, "block1a")
    x = _conv_unit(x, width, batchnorm, "block1b")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = _conv_unit(x, 2 * width, batchnorm, "block2a")
    x = _conv_unit(x, 2 * width, batchnorm, "block2b")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="small_cnn")
