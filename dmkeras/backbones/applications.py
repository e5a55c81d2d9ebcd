"""Shared builder for the ``keras.applications`` backbones with a logits head.

``mobilenet_v2``, ``resnet50`` and ``inception_resnet_v2`` all wrap a
``keras.applications`` constructor the same way; :func:`application_backbone`
does it once:

* checks ``weights`` (None, "imagenet" or "imagenet:FILE", keras' ImageNet
  weights file of the base kept locally), the input size and channels;
* optionally resizes small inputs (bilinear ``keras.layers.Resizing`` named
  ``upsample``) up to the size keras needs;
* with ImageNet weights, repeats single-channel inputs to three channels
  (``Concatenate`` named ``gray_to_rgb``; no ``Lambda``, so models serialise);
* builds the base with ``include_top=False`` and turns a failed weights
  download into a :class:`DmkerasError`;
* sets the momentum of every BatchNormalization of the base;
* adds ``GlobalAveragePooling2D`` (``avgpool``) and ``Dense(num_classes)``
  (``logits``, no softmax) and names the model.
"""

from __future__ import annotations

import numbers
import os

import keras
from keras import layers

from dmkeras.errors import DmkerasError

IMAGENET_FILE = "imagenet:"


def is_imagenet(weights) -> bool:
    """``"imagenet"`` (downloaded by keras) or ``"imagenet:FILE"`` (the same weights from a local file)."""
    return isinstance(weights, str) and (weights == "imagenet" or weights.startswith(IMAGENET_FILE))


def check_weights(name, weights):
    """Raise a DmkerasError unless ``weights`` is None, "imagenet" or "imagenet:FILE" (an existing file)."""
    if weights is not None and not is_imagenet(weights):
        raise DmkerasError(f"{name} weights must be None, 'imagenet' or 'imagenet:FILE', got {weights!r}")
    if is_imagenet(weights) and weights != "imagenet" and not os.path.isfile(weights[len(IMAGENET_FILE):]):
        raise DmkerasError(f"{name}: ImageNet weights file not found: {weights[len(IMAGENET_FILE):]}")


def check_bn_momentum(name, bn_momentum):
    """Raise a DmkerasError unless ``bn_momentum`` is a real number in [0, 1)."""
    if (
        isinstance(bn_momentum, bool)
        or not isinstance(bn_momentum, numbers.Real)
        or not 0.0 <= bn_momentum < 1.0
    ):
        raise DmkerasError(f"{name} bn_momentum must be a number in [0, 1), got {bn_momentum!r}")


def application_backbone(
    constructor,
    *,
    name,
    num_classes,
    input_shape,
    weights,
    bn_momentum,
    min_size,
    resize_to=None,
    base_name=None,
    extra_kwargs=None,
    validate_bn_momentum=True,
    bgr_weights=False,
):
    """A ``keras.applications`` base + global average pooling + linear logits.

    Args:
        constructor: a ``keras.applications`` model function (e.g.
            ``keras.applications.ResNet50``).

    Kwargs:
        name: name of the returned model, also the prefix of error messages.
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``; height and width >= ``min_size``,
            channels 1 or 3.
        weights: None, "imagenet" or "imagenet:FILE" (passed to ``constructor``
            as the file's path).
        bn_momentum: momentum given to every BatchNormalization of the base.
        min_size: smallest height and width accepted.
        resize_to: when given, inputs smaller than this on either side are
            resized (bilinear) up to at least ``resize_to`` on both sides inside
            the model.
        base_name: ``name=`` for ``constructor``; keras' default when None.
        extra_kwargs: further keyword arguments for ``constructor``.
        validate_bn_momentum: check that ``bn_momentum`` is a number in [0, 1)
            (right after the ``weights`` check).
        bgr_weights: the ImageNet weights expect BGR input (keras' "caffe"
            preprocessing, ResNet-50): the input channels of the first
            convolution are reversed once after loading them, so the net takes
            RGB like every other net (``dmkeras.input_transform``: the caffe
            transform is then a per-channel mean/std in RGB order).
    """
    check_weights(name, weights)
    if validate_bn_momentum:
        check_bn_momentum(name, bn_momentum)
    height, width, channels = (int(d) for d in input_shape)
    if height < min_size or width < min_size:
        raise DmkerasError(
            f"{name} needs inputs of at least {min_size}x{min_size}, got {height}x{width}"
        )
    if channels not in (1, 3):
        raise DmkerasError(f"{name} needs 1 or 3 input channels, got {channels}")

    inputs = keras.Input(shape=(height, width, channels), name="images")
    x = inputs
    if resize_to is not None and (height < resize_to or width < resize_to):
        height = max(height, resize_to)
        width = max(width, resize_to)
        x = layers.Resizing(height, width, interpolation="bilinear", name="upsample")(x)
    if channels == 1 and is_imagenet(weights):
        x = layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
        channels = 3

    kwargs = dict(extra_kwargs or {})
    if base_name is not None:
        kwargs["name"] = base_name
    try:
        base = constructor(
            include_top=False,
            weights=weights.removeprefix(IMAGENET_FILE) if is_imagenet(weights) else weights,
            input_shape=(height, width, channels),
            **kwargs,
        )
    except (ValueError, TypeError) as exc:
        if not is_imagenet(weights) or weights == "imagenet":
            raise
        raise DmkerasError(
            f"{name}: the ImageNet weights file {weights.removeprefix(IMAGENET_FILE)} does not fit the base: "
            f"{next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:300]}"
        ) from exc
    except Exception as exc:  # keras.utils.get_file raises a bare Exception
        if weights != "imagenet":
            raise
        raise DmkerasError(
            f"{name} imagenet weights could not be downloaded ({exc}); "
            "give a local weights file path as weights= instead"
        ) from exc
    # keras.applications' BN momentum (0.99, or 0.999 for MobileNetV2) suits long ImageNet runs;
    # the default of the wrappers is PyTorch's (0.1 there = 0.9 here), as the reference trains,
    # so eval-mode statistics keep up.
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(bn_momentum)
    if bgr_weights and is_imagenet(weights):
        first = next(layer for layer in base.layers if isinstance(layer, layers.Conv2D))
        kernel, *rest = first.get_weights()
        first.set_weights([kernel[:, :, ::-1, :], *rest])  # HWIO: I is the colour channel of the input
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)
