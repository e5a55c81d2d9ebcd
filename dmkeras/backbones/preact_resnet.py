"""CIFAR pre-activation ResNets, as in the DivideMix reference (PreResNet.py).

The reference network (LiJunnan1992/DivideMix, ``PreResNet.py``, ``ResNet18``):

* stem: 3x3 conv, 64 filters, stride 1, no bias -> BN -> ReLU;
* four stages of ``PreActBlock`` with 64/128/256/512 filters and strides
  1/2/2/2.  A block computes ``out = relu(bn1(x))``; the shortcut is
  ``conv1x1(out)`` (the *pre-activated* input, no bias) when the stride is not 1
  or the channel count changes, and ``out`` itself otherwise (the reference's
  identity shortcut is an empty ``nn.Sequential`` applied to ``out``, so an
  identity block adds ``relu(bn1(x))``, not ``x`` as the textbook
  pre-activation block does); the residual
  branch is ``conv3x3(stride)(out) -> BN -> ReLU -> conv3x3``; the block
  returns ``residual + shortcut`` with no activation after the addition;
* no BN/ReLU after the last stage (the reference has none);
* 4x4 average pooling (here ``GlobalAveragePooling2D``: identical on 32x32
  inputs, and it also works for other sizes) and a linear layer to logits.

PyTorch details are reproduced: BatchNorm momentum 0.1 (Keras ``momentum=0.9``)
and epsilon 1e-5; convolutions use PyTorch's symmetric padding of 1 (stride-2
convolutions get an explicit ``ZeroPadding2D(1)`` because Keras' ``"same"``
pads asymmetrically); kernels use PyTorch's default initialiser
``kaiming_uniform_(a=sqrt(5))`` = ``VarianceScaling(1/3, "fan_in", "uniform")``
and the linear bias is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import math

import keras
from keras import layers

_STAGE_FILTERS = (64, 128, 256, 512)
_STAGE_STRIDES = (1, 2, 2, 2)


def _kernel_init():
    # PyTorch's default for Conv2d / Linear weights: kaiming_uniform_(a=sqrt(5)),
    # i.e. U(-b, b) with b = sqrt(1 / fan_in) = sqrt(3 * (1/3) / fan_in).
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


def _bn(name):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv3x3(x, filters, stride, name):
    """3x3 conv with PyTorch padding=1, no bias."""
    if stride == 1:
        padding = "same"  # symmetric padding of 1 for a 3x3 stride-1 kernel
    else:
        x = layers.ZeroPadding2D(padding=1, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=_kernel_init(),
        name=name,
    )(x)


def _preact_block(x, in_planes, planes, stride, name):
    out = _bn(f"{name}_bn1")(x)
    out = layers.ReLU(name=f"{name}_relu1")(out)
    if stride != 1 or in_planes != planes:
        shortcut = layers.Conv2D(
            planes,
            1,
            strides=stride,
            padding="valid",
            use_bias=False,
            kernel_initializer=_kernel_init(),
            name=f"{name}_shortcut",
        )(out)
    else:
        shortcut = out  # the reference's empty nn.Sequential applied to relu(bn1(x)), not x
    out = _conv3x3(out, planes, stride, name=f"{name}_conv1")
    out = _bn(f"{name}_bn2")(out)
    out = layers.ReLU(name=f"{name}_relu2")(out)
    out = _conv3x3(out, planes, 1, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([out, shortcut])


def _preact_resnet(num_blocks, num_classes, input_shape, name):
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = _conv3x3(inputs, 64, 1, name="conv1")
    x = _bn("bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    in_planes = 64
    for stage, (planes, stride, blocks) in enumerate(
        zip(_STAGE_FILTERS, _STAGE_STRIDES, num_blocks), start=1
    ):
        for i in range(blocks):
            x = _preact_block(
                x, in_planes, planes, stride if i == 0 else 1, name=f"layer{stage}_{i}"
            )
            in_planes = planes
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    bound = 1.0 / math.sqrt(in_planes)
    logits = layers.Dense(
        num_classes,
        kernel_initializer=_kernel_init(),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name="linear",
    )(x)
    return keras.Model(inputs, logits, name=name)


def preact_resnet18(num_classes, input_shape=(32, 32, 3)):
    """PreAct ResNet-18 of the DivideMix reference (CIFAR variant), logits out.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``; designed for 32x32x3.

    Accepts no further kwargs.  11,171,274 trainable parameters for 10 classes, as
    PyTorch's ``parameters()`` counts the reference's ``ResNet18``; Keras' total of
    11,178,186 adds BatchNorm's moving statistics (buffers in PyTorch).
    """
    return _preact_resnet((2, 2, 2, 2), num_classes, input_shape, "preact_resnet18")


def preact_resnet34(num_classes, input_shape=(32, 32, 3)):
    """PreAct ResNet-34 (CIFAR variant): the ResNet-18 design with [3, 4, 6, 3] blocks.

    Not the reference's ``ResNet34``: that one is built from post-activation
    ``BasicBlock``s (conv-BN-ReLU, BN on the projection shortcut) and no DivideMix
    experiment uses it. This is the pre-activation counterpart, the same
    ``PreActBlock`` (reference shortcut included) as :func:`preact_resnet18` in
    [3, 4, 6, 3] stages, so that the deeper net of the zoo behaves like the paper's
    CIFAR backbone.

    Args:
        num_classes: number of output logits.
        input_shape: ``(height, width, channels)``; designed for 32x32x3.

    Accepts no further kwargs.
    """
    return _preact_resnet((3, 4, 6, 3), num_classes, input_shape, "preact_resnet34")
