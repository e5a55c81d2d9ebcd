"""The input transform a net is fed: `(image / 255 - mean) / std` per channel, and where it comes from.

Pretrained weights carry the transform they were trained with, as timm's pretrained configs and
keras-hub's image converters do. dmkeras chooses it once per run (`choose`):

* ImageNet weights of `keras.applications` nets: their own `preprocess_input` mode:
  - `caffe` (ResNet-50): BGR, 0-255, minus the ImageNet mean (103.939, 116.779, 123.68). The
    net is given RGB like every other net: `backbones.applications` reverses the input channels
    of its first convolution once when the weights load, so the transform is the per-channel
    mean (123.68, 116.779, 103.939) / 255 and std 1 / 255 in RGB order;
  - `tf` (MobileNetV2, InceptionResNetV2): x / 127.5 - 1, i.e. mean 0.5 and std 0.5;
* a weights file that a dmkeras run or export wrote (`net1.keras` next to the run's
  `dataset.json`, or an export's `model_card.json`): the transform recorded there;
* otherwise (random initialisation, a bare weights file): the data set's own mean / std.

`--input_transform=auto` takes that choice; naming a transform (`dataset`, `caffe`, `tf`,
`torch`) that differs from the one the weights were trained with is refused with one line. The
run directory records the result in `dataset.json` (`input_transform`, and its `mean` / `std`,
which the export builds into the SavedModel).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from dmkeras.errors import ConfigError, DmkerasError
from dmkeras.rundir import RunDir

__all__ = ["InputTransform", "NAMED", "PRETRAINED", "choose", "for_weights", "normalize"]


def normalize(images, mean, std):
    """Raw NHWC images (uint8, or float with values 0..255) -> float32 `(x / 255 - mean) / std` per
    channel: the one function every path uses (training pipelines, the task model, the export's
    SavedModel), so that they give the same float32 numbers. `mean` / `std`: sequences or tensors."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 255.0
    return (x - tf.cast(mean, tf.float32)) / tf.cast(std, tf.float32)


@dataclasses.dataclass(frozen=True)
class InputTransform:
    """`(image / 255 - mean) / std` per channel (RGB order), with a name saying where it comes from."""

    name: str
    mean: tuple
    std: tuple
    source: str = ""

    def for_channels(self, channels: int) -> "InputTransform":
        """The transform of `channels`-channel images: a grey image goes to a 3-channel ImageNet net
        repeated (`gray_to_rgb`), so it gets the channels' mean mean and std."""
        if len(self.mean) == channels:
            return self
        if channels != 1:
            raise DmkerasError(f"input transform {self.name} has {len(self.mean)} channels, the images {channels}")
        return dataclasses.replace(self, mean=(float(np.mean(self.mean)),), std=(float(np.mean(self.std)),))

    def same_as(self, other: "InputTransform") -> bool:
        return len(self.mean) == len(other.mean) and bool(
            np.allclose(self.mean, other.mean, rtol=1e-6, atol=1e-9) and np.allclose(self.std, other.std, rtol=1e-6, atol=1e-9)
        )

    def describe(self) -> str:
        mean = ", ".join(f"{m:.4g}" for m in self.mean)
        std = ", ".join(f"{s:.4g}" for s in self.std)
        return f"{self.name} (mean {mean}, std {std})"

    def to_dict(self) -> dict:
        return {"name": self.name, "mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std], "source": self.source}

    @classmethod
    def from_dict(cls, data: dict) -> "InputTransform":
        return cls(str(data["name"]), tuple(float(m) for m in data["mean"]), tuple(float(s) for s in data["std"]), str(data.get("source", "")))


_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"
NAMED = {
    "caffe": InputTransform("caffe", tuple(m / 255.0 for m in reversed(_CAFFE_MEAN_BGR)), (1.0 / 255.0,) * 3),
    "tf": InputTransform("tf", (0.5,) * 3, (0.5,) * 3),
    "torch": InputTransform("torch", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
"""Transforms that can be named with --input_transform (besides `auto` and `dataset`)."""

PRETRAINED = {"resnet50": "caffe", "mobilenet_v2": "tf", "inception_resnet_v2": "tf"}
"""The transform of each zoo architecture's `weights="imagenet"` (keras.applications' preprocess_input modes)."""


def _recorded(weights: str) -> InputTransform | None:
    """The transform recorded next to a weights file by a dmkeras run (dataset.json) or export (model_card.json)."""
    folder = os.path.dirname(os.path.abspath(weights))
    for name, key in ((RunDir.DATASET, None), ("model_card.json", "dataset")):  # model_card.json: export.CARD
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                data = json.load(f)
            data = data[key] if key else data
            if "input_transform" in data:
                return InputTransform.from_dict(data["input_transform"])
            return InputTransform("dataset", tuple(data["mean"]), tuple(data["std"]), f"the data set of {folder}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DmkerasError(f"{path} next to the weights {weights} cannot be read for its input transform: {error}") from error
    return None


def for_weights(backbone: str, weights: str | None) -> InputTransform | None:
    """The transform `weights` were trained with, or None when nothing says (random init, bare file)."""
    if not weights:
        return None
    if weights == "imagenet" or weights.startswith("imagenet:"):  # "imagenet:FILE": the same weights, kept locally
        name = PRETRAINED.get(backbone.partition(".")[0])
        if name is None:
            return None  # the zoo refuses imagenet weights for this model itself
        return dataclasses.replace(NAMED[name], source=f"the imagenet weights of {backbone}")
    recorded = _recorded(weights)
    if recorded is not None:
        recorded = dataclasses.replace(recorded, source=recorded.source or f"the run that wrote {weights}")
    return recorded


def choose(requested: str, backbone: str, weights: str | None, dataset_mean, dataset_std) -> InputTransform:
    """The transform of a run: `requested` is --input_transform (auto | dataset | a NAMED one)."""
    channels = len(dataset_mean)
    dataset = InputTransform("dataset", tuple(float(m) for m in dataset_mean), tuple(float(s) for s in dataset_std), "the training set")
    trained = for_weights(backbone, weights)
    trained = None if trained is None else trained.for_channels(channels)
    if requested == "auto":
        return trained or dataset
    if requested == "dataset":
        chosen = dataset
    elif requested in NAMED:
        chosen = dataclasses.replace(NAMED[requested], source="input_transform").for_channels(channels)
    else:
        raise ConfigError(f"input_transform must be auto, dataset or one of {', '.join(NAMED)}, got {requested!r}", ("input_transform",))
    if trained is not None and not trained.same_as(chosen):
        raise ConfigError(
            f"input_transform={requested} would feed the nets {chosen.describe()}, but {trained.source} were trained "
            f"with {trained.describe()}: drop input_transform (auto) or set it to match",
            ("input_transform",),
        )
    return chosen
