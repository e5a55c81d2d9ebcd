"""MobileNetV2 (``keras.applications``) with a logits head, for any input >= 8x8.

``keras.applications.MobileNetV2`` needs inputs of at least 32x32 (and three
channels for ImageNet weights).  This wrapper makes the model work for smaller
or single-channel inputs with serialisable layers (no ``Lambda``):

* inputs smaller than 32 on either side go through a bilinear
  ``keras.layers.Resizing`` up to at least 32x32 inside the model;
* single-channel inputs with ImageNet weights are repeated to three channels
  with a ``Concatenate`` layer inside the model.

The base network is nested as a sub-model, followed by
``GlobalAveragePooling2D`` and ``Dense(num_classes)`` (logits, no softmax).
"""

from __future__ import annotations

import numbers

import keras

from dmkeras.backbones.applications import (
    application_backbone,
    check_weights,
    is_imagenet,
)
from dmkeras.errors import DmkerasError

MIN_INPUT_SIZE = 8
KERAS_MIN_INPUT_SIZE = 32
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


def mobilenet_v2(num_classes, input_shape, alpha=1.0, weights=None, bn_momentum=0.9):
    """MobileNetV2 backbone + global average pooling + linear logits.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 8,
            channels 1 or 3.

    Kwargs:
        alpha (float, default 1.0): width multiplier.  Any positive value
            with random initialisation; one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4
            with ImageNet weights.
        weights (None, "imagenet" or "imagenet:FILE", default None): random
            initialisation or ImageNet weights (downloaded by keras, or keras' weights
            file of the base kept locally) for the base (downloaded by keras; the head is
            always randomly initialised).  Loading a local weights file is
            done by ``dmkeras.zoo.create_model``, not here.
        bn_momentum (float, default 0.9): momentum of every BatchNormalization
            moving average (PyTorch's default, as the reference; keras.applications
            would use 0.999).
    """
    check_weights("mobilenet_v2", weights)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha <= 0:
        raise DmkerasError(f"mobilenet_v2 alpha must be a positive number, got {alpha!r}")
    if is_imagenet(weights) and float(alpha) not in IMAGENET_ALPHAS:
        raise DmkerasError(
            f"mobilenet_v2 has no imagenet weights for alpha={alpha}; "
            f"use one of {', '.join(str(a) for a in IMAGENET_ALPHAS)}"
        )
    # bn_momentum is not range-checked here (unlike resnet50 and inception_resnet_v2).
    return application_backbone(
        keras.applications.MobileNetV2,
        name="mobilenet_v2",
        num_classes=num_classes,
        input_shape=input_shape,
        weights=weights,
        bn_momentum=bn_momentum,
        min_size=MIN_INPUT_SIZE,
        resize_to=KERAS_MIN_INPUT_SIZE,
        extra_kwargs={"alpha": float(alpha)},
        validate_bn_momentum=False,
    )
