"""Inception-ResNet-v2 (``keras.applications``) with a logits head, for any input >= 8x8.

The WebVision backbone of DivideMix (trained from scratch there).
``keras.applications.InceptionResNetV2`` needs inputs of at least 75x75 (and
three channels for ImageNet weights).  This wrapper makes the model work for
smaller or single-channel inputs with serialisable layers (no ``Lambda``):

* inputs smaller than 75 on either side go through a bilinear
  ``keras.layers.Resizing`` up to at least 75x75 inside the model;
* single-channel inputs with ImageNet weights are repeated to three channels
  with a ``Concatenate`` layer inside the model.

The base network is nested as a sub-model named ``inception_resnet_v2_base``,
followed by ``GlobalAveragePooling2D`` and ``Dense(num_classes)`` (logits, no
softmax).  As in keras, its BatchNormalizations have no scale (gamma).
"""

from __future__ import annotations

import keras

from dmkeras.backbones.applications import application_backbone

MIN_INPUT_SIZE = 8
KERAS_MIN_INPUT_SIZE = 75


def inception_resnet_v2(num_classes, input_shape, weights=None, bn_momentum=0.9):
    """Inception-ResNet-v2 backbone + global average pooling + linear logits.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 8
            (resized up to 75 inside the model when smaller), channels 1 or 3.

    Kwargs:
        weights (None, "imagenet" or "imagenet:FILE", default None): random
            initialisation or ImageNet weights (downloaded by keras, or keras' weights
            file of the base kept locally) for the base (downloaded by keras; the head is
            always randomly initialised).  Loading a local weights file is
            done by ``dmkeras.zoo.create_model``, not here.
        bn_momentum (float, default 0.9): momentum of every BatchNormalization
            moving average (PyTorch's default, as the reference; keras.applications
            would use 0.99).
    """
    return application_backbone(
        keras.applications.InceptionResNetV2,
        name="inception_resnet_v2",
        num_classes=num_classes,
        input_shape=input_shape,
        weights=weights,
        bn_momentum=bn_momentum,
        min_size=MIN_INPUT_SIZE,
        resize_to=KERAS_MIN_INPUT_SIZE,
        base_name="inception_resnet_v2_base",
    )
