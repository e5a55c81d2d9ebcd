"""The ``npz:PATH`` source (x_train, y_train, x_test, y_test, optional y_train_clean) and npz
validation sets (x_val, y_val, else x_test, y_test)."""

from __future__ import annotations

import os

import numpy as np

from dmkeras.data.sources.common import (
    SplitData,
    _check_inferred_classes,
    _check_lengths,
    _check_range,
    _finish,
    _images_to_uint8,
    _labels_to_int64,
)
from dmkeras.data.sources.registry import SourceRequest, register_source
from dmkeras.errors import DmkerasError

_NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def _load_npz(path: str, num_classes: int | None) -> SplitData:
    if not os.path.isfile(path):
        raise DmkerasError(f"npz file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for key in _NPZ_REQUIRED:
                if key not in keys:
                    raise DmkerasError(f"npz file {path} is missing key {key!r} (has: {', '.join(sorted(keys)) or 'none'})")
            arrays = {k: z[k] for k in (*_NPZ_REQUIRED, "y_train_clean") if k in keys}
    except DmkerasError:
        raise
    except Exception as e:  # zipfile.BadZipFile, pickled object arrays, truncated files ...
        raise DmkerasError(f"cannot read npz file {path}: {type(e).__name__}: {e}") from e

    name = os.path.splitext(os.path.basename(path))[0]
    x_train = _images_to_uint8(arrays["x_train"], f"{path} x_train")
    x_test = _images_to_uint8(arrays["x_test"], f"{path} x_test")
    y_train = _labels_to_int64(arrays["y_train"], f"{path} y_train")
    y_test = _labels_to_int64(arrays["y_test"], f"{path} y_test")
    _check_lengths(x_train, y_train, f"{path} train split")
    _check_lengths(x_test, y_test, f"{path} test split")
    y_clean = None
    if "y_train_clean" in arrays:
        y_clean = _labels_to_int64(arrays["y_train_clean"], f"{path} y_train_clean")
        _check_lengths(x_train, y_clean, f"{path} train split", "clean labels (y_train_clean)")
    if num_classes is None:
        for y, what in ((y_train, "y_train"), (y_test, "y_test"), (y_clean, "y_train_clean")):
            if y is not None and y.min() < 0:
                _check_range(y, int(y.max()) + 1, f"{path} {what}")
        parts = [y_train.max(), y_test.max()] + ([y_clean.max()] if y_clean is not None else [])
        num_classes = int(max(parts)) + 1
        _check_inferred_classes(y_train if y_clean is None else np.concatenate([y_train, y_clean]), num_classes,
                                f"{path} y_train" + ("" if y_clean is None else " / y_train_clean"))
    return _finish(name, x_train, y_train, x_test, y_test, num_classes, y_train_clean=y_clean)


@register_source("npz", forms="npz:PATH")
def _npz_source(request: SourceRequest) -> SplitData:
    return _load_npz(request.arg, request.num_classes)


def _npz_validation(path: str, split: SplitData, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise DmkerasError(f"{what}: npz file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = ("x_val", "y_val") if {"x_val", "y_val"} <= set(z.files) else ("x_test", "y_test")
            if not set(keys) <= set(z.files):
                raise DmkerasError(f"{what}: npz file {path} has neither x_val, y_val nor x_test, y_test "
                                   f"(has: {', '.join(sorted(z.files)) or 'none'})")
            x, y = z[keys[0]], z[keys[1]]
    except DmkerasError:
        raise
    except Exception as e:  # zipfile.BadZipFile, pickled object arrays, truncated files ...
        raise DmkerasError(f"{what}: cannot read npz file {path}: {type(e).__name__}: {e}") from e
    x = _images_to_uint8(x, f"{what} {keys[0]}")
    y = _labels_to_int64(y, f"{what} {keys[1]}")
    _check_lengths(x, y, what)
    if tuple(x.shape[1:]) != tuple(split.image_shape):
        raise DmkerasError(f"{what}: images have shape {tuple(x.shape[1:])}, the training images {tuple(split.image_shape)}")
    _check_range(y, split.num_classes, what)
    return x, y
