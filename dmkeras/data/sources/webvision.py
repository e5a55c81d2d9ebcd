"""The ``webvision:ROOT`` source: WebVision 1.0's Google training list and its validation images
as the test split, the classes below num_classes (default 50, as DivideMix)."""

from __future__ import annotations

import os

import numpy as np

from dmkeras.data.sources.image_files import (
    _Listing,
    _read_label_list,
    _read_names,
    _require_files,
    image_source,
)
from dmkeras.data.sources.registry import register_source
from dmkeras.errors import DmkerasError

_WEBVISION_CLASSES = 50  # DivideMix trains on the first 50 WebVision classes


def _webvision_splits(path: str, num_classes, test_spec):
    if num_classes is None:
        num_classes = _WEBVISION_CLASSES
    train, test = _webvision_listing(path, num_classes)
    return "webvision", num_classes, train, test


# WebVision uses the reference's (ImageNet's) constants, which are for RGB images.
register_source("webvision", image_source(_webvision_splits, own_normalisation=True), forms="webvision:ROOT",
                group="image files", accepts=("stream",))


def _webvision_listing(root: str, num_classes: int) -> tuple[_Listing, _Listing]:
    train_list = os.path.join("info", "train_filelist_google.txt")
    val_list = os.path.join("info", "val_filelist.txt")
    _require_files(root, (train_list, val_list), "webvision")
    names = _read_names(os.path.join(root, "info", "synsets.txt"), num_classes)
    out = []
    for list_name, folder in ((train_list, root), (val_list, os.path.join(root, "val_images_256"))):
        keys, labels = _read_label_list(os.path.join(root, list_name))
        labels = np.array(labels, dtype=np.int64)
        negative = np.flatnonzero(labels < 0)
        if negative.size:
            i = int(negative[0])
            raise DmkerasError(f"webvision: {list_name} has {negative.size} negative label(s) (e.g. {labels[i]} for {keys[i]})")
        keep = np.flatnonzero(labels < num_classes)
        if keep.size == 0:
            raise DmkerasError(f"webvision: {list_name} has no image with a label below num_classes={num_classes}")
        out.append(_Listing([os.path.join(folder, keys[i]) for i in keep], labels[keep], names))
    return out[0], out[1]
