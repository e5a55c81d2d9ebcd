"""Small convolutional nets for tiny images: 8x8 scikit-learn digits, 28x28 MNIST-format images.

Layout of ``small_cnn`` (``w`` = ``width``; ``stages`` stages, 2 by default)::

    conv3x3(w)-[BN]-ReLU, conv3x3(w)-[BN]-ReLU, MaxPool 2x2,
    conv3x3(2w)-[BN]-ReLU, conv3x3(2w)-[BN]-ReLU,
    [MaxPool 2x2, conv3x3(4w)-[BN]-ReLU, conv3x3(4w)-[BN]-ReLU,]   (stage 3, ...)
    GlobalAveragePooling2D, Dense(num_classes) -> logits

About 66k parameters at ``width=32`` on 8x8x1 inputs: trains in seconds on a
CPU and has enough capacity to memorise noisy labels under plain
cross-entropy (which is what the baseline is meant to show).

``mnist_cnn`` is the same net with 3 stages of width 16 (16-32-64 filters, 73k parameters):
at 28x28 its last stage works on 7x7 maps, where two stages would leave 14x14 maps to the
global pooling at a higher cost. On this 2-core CPU it trains about 2.5x faster than
``small_cnn`` (width 32) at 28x28 (see BUILD.md, "Fashion-MNIST").
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


def small_cnn(num_classes, input_shape, width=32, batchnorm=True, stages=2):
    """Small CNN for inputs of at least 4x4 (designed for 8x8x1 digits), logits out.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 4.

    Kwargs:
        width (int, default 32): filters of the first stage's two convolutions.
        batchnorm (bool, default True): put a BatchNormalization after every
            convolution.  ``False`` gives a model with no BN layer at all
            (convolutions then have biases), whose outputs do not depend on
            batch composition or training/inference mode.
        stages (int, default 2): stages of two convolutions; stage s (from 0)
            has ``width * 2**s`` filters and, for s > 0, a 2x2 max pool before it.
    """
    return _build(num_classes, input_shape, width, batchnorm, stages, "small_cnn")


def mnist_cnn(num_classes, input_shape, width=16, batchnorm=True, stages=3):
    """``small_cnn`` with 3 stages of width 16 (16-32-64 filters): the CPU backbone for 28x28
    MNIST-format images (Fashion-MNIST, MNIST, KMNIST); inputs of at least 4x4. Same arguments
    as ``small_cnn``."""
    return _build(num_classes, input_shape, width, batchnorm, stages, "mnist_cnn")


def _build(num_classes, input_shape, width, batchnorm, stages, name):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise DmkerasError(f"{name} width must be a positive int, got {width!r}")
    if not isinstance(batchnorm, bool):
        raise DmkerasError(f"{name} batchnorm must be True or False, got {batchnorm!r}")
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise DmkerasError(f"{name} stages must be a positive int, got {stages!r}")
    height, wid = input_shape[0], input_shape[1]
    if height < MIN_INPUT_SIZE or wid < MIN_INPUT_SIZE:
        raise DmkerasError(
            f"{name} needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}, "
            f"got {height}x{wid}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    for s in range(stages):  # with 2 stages, the layer names of the nets saved before stages existed
        if s:
            # "same" padding: odd maps (7x7) keep their last row and column, and small inputs never reach 0x0
            x = layers.MaxPooling2D(2, padding="same" if s > 1 else "valid", name=f"pool{s}")(x)
        x = _conv_unit(x, width * 2**s, batchnorm, f"block{s + 1}a")
        x = _conv_unit(x, width * 2**s, batchnorm, f"block{s + 1}b")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)
