"""ResNet-50 (``keras.applications``) with a logits head, for inputs >= 32x32.

The Clothing1M backbone of DivideMix: an ImageNet-pretrained ResNet-50 whose
classifier is replaced by a new linear layer.  ``keras.applications.ResNet50``
needs inputs of at least 32x32 (and three channels for ImageNet weights); this
wrapper keeps that minimum and, with ImageNet weights, repeats single-channel
inputs to three channels with a ``Concatenate`` layer inside the model (no
``Lambda``, so the model serialises).

The base network is nested as a sub-model named ``resnet50_base``, followed by
``GlobalAveragePooling2D`` and ``Dense(num_classes)`` (logits, no softmax).

The ImageNet weights of ``keras.applications`` were trained on caffe-style
inputs (BGR, 0-255, minus the ImageNet mean).  With ``weights="imagenet"`` the
input channels of the first convolution are reversed once, so the net takes
RGB; ``dmkeras.input_transform`` then feeds it the caffe transform in RGB
order (``(x / 255 - mean) / std`` with mean (123.68, 116.779, 103.939) / 255
and std 1 / 255), which is what ``experiment.run`` does by default
(``--input_transform=auto``).  These are not torchvision's weights, which the
reference fine-tunes (with Clothing1M's own mean/std); unlike torchvision's
ResNet-50, every keras convolution has a bias (26,560 extra parameters).
"""

from __future__ import annotations

import keras

from dmkeras.backbones.applications import application_backbone

MIN_INPUT_SIZE = 32


def resnet50(num_classes, input_shape, weights=None, bn_momentum=0.9):
    """ResNet-50 backbone + global average pooling + linear logits.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``, height and width >= 32,
            channels 1 or 3.

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
        keras.applications.ResNet50,
        name="resnet50",
        num_classes=num_classes,
        input_shape=input_shape,
        weights=weights,
        bn_momentum=bn_momentum,
        min_size=MIN_INPUT_SIZE,
        base_name="resnet50_base",
        bgr_weights=True,
    )
