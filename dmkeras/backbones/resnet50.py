"""ResNet-50 (``keras.applications``) with a logits head, for inputs >= 32x32.

The Clothing1M backbone of DivideMix: an ImageNet-pretrained ResNet-50 whose
classifier is replaced by a new linear layer.  ``keras.applications.ResNet50``
needs inputs of at least 32x32 (and three channels for ImageNet weights); this
wrapper keeps that minimum and, with ImageNet weights, repeats single-channel
inputs to three channels with a ``Concatenate`` layer inside the model (no
``Lambda``, so the model serialises).

The base network is nested as a sub-model named ``resnet50_base``, followed by
``GlobalAveragePooling2D`` and ``Dense(num_classes)`` (logits, no softmax).

Inputs are used as given: the ImageNet weights of ``keras.applications``
were trained on caffe-style inputs (BGR, mean-subtracted, 0-255), so pass
images normalised that way (``keras.applications.resnet50.preprocess_input``)
to get the most out of them.  Unlike torchvision's ResNet-50, every keras
convolution has a bias (26,560 extra parameters).
"""

from __future__ import annotations

import numbers

import keras
from keras import layers

from dmkeras.errors import DmkerasError

MIN_INPUT_SIZE = 32


def resnet50(num_classes, input_shape, weights=None, bn_momentum=0.9):
    """ResNet-50 backbone + global average pooling + linear logits.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 32,
            channels 1 or 3.

    Kwargs:
        weights (None or "imagenet", default None): random initialisation or
            ImageNet weights for the base (downloaded by keras; the head is
            always randomly initialised).  Loading a local weights file is
            done by ``dmkeras.zoo.create_model``, not here.
        bn_momentum (float, default 0.9): momentum of every BatchNormalization
            moving average (PyTorch's default, as the reference; keras.applications
            would use 0.99).
    """
    if weights not in (None, "imagenet"):
        raise DmkerasError(f"resnet50 weights must be None or 'imagenet', got {weights!r}")
    if (
        isinstance(bn_momentum, bool)
        or not isinstance(bn_momentum, numbers.Real)
        or not 0.0 <= bn_momentum < 1.0
    ):
        raise DmkerasError(f"resnet50 bn_momentum must be a number in [0, 1), got {bn_momentum!r}")
    height, width, channels = (int(d) for d in input_shape)
    if height < MIN_INPUT_SIZE or width < MIN_INPUT_SIZE:
        raise DmkerasError(
            f"resnet50 needs inputs of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}, "
            f"got {height}x{width}"
        )
    if channels not in (1, 3):
        raise DmkerasError(f"resnet50 needs 1 or 3 input channels, got {channels}")

    inputs = keras.Input(shape=(height, width, channels), name="images")
    x = inputs
    if channels == 1 and weights == "imagenet":
        x = layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
        channels = 3

    try:
        base = keras.applications.ResNet50(
            include_top=False,
            weights=weights,
            input_shape=(height, width, channels),
            name="resnet50_base",
        )
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # keras.utils.get_file raises a bare Exception
        if weights != "imagenet":
            raise
        raise DmkerasError(
            f"resnet50 imagenet weights could not be downloaded ({exc}); "
            "give a local weights file path as weights= instead"
        ) from exc
    # keras.applications' BN momentum (0.99) suits long ImageNet runs; the default here is
    # PyTorch's (0.1 there = 0.9 here), as the reference trains, so eval-mode statistics keep up.
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(bn_momentum)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="resnet50")
