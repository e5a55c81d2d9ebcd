"""Held-out sets for a model trained on a split: extra test sets (``folder:PATH``, ``csv:FILE``,
``ilsvrc12:ROOT``) and validation sets (VAL_SPEC_FORMS)."""

from __future__ import annotations

import os

import numpy as np

from dmkeras.data.images import FileImages, is_image_file
from dmkeras.data.sources.clothing1m import _clothing1m_val_listing
from dmkeras.data.sources.common import VAL_KINDS, VAL_SPEC_FORMS, SplitData
from dmkeras.data.sources.image_files import (
    _csv_listing,
    _decode_listing,
    _Listing,
    _map_classes,
    _scan_classes,
    _test_spec_listing,
    _visible_subdirs,
)
from dmkeras.data.sources.npz import _npz_validation
from dmkeras.errors import DmkerasError


def load_extra_test(spec: str, split: SplitData, *, stream: bool = False, resize_shorter: int = 0,
                    skip_unreadable: bool = False) -> tuple[np.ndarray | FileImages, np.ndarray]:
    """A second test set for a model trained on `split`: (images, labels) like split.x_test / y_test.

    spec: ``folder:PATH`` or ``csv:FILE`` (classes matched to the training classes by name when
    both are named), or ``ilsvrc12:ROOT``: the ImageNet validation images of the WebVision
    classes in the reference's layout, ROOT/val/<class index>/*.JPEG, keeping the indices below
    split.num_classes. Images get the training split's size and channels (decoded now, or left
    on disk with stream).
    """
    kind, _, rest = spec.partition(":")
    path = os.path.expanduser(rest)
    if kind == "ilsvrc12" and rest:
        val = os.path.join(path, "val")
        if not os.path.isdir(val):
            raise DmkerasError(f"ilsvrc12 root {path} has no val/ folder (expected val/<class index>/ image folders)")
        folders = [d for d in _visible_subdirs(val) if d.isdigit() and int(d) < split.num_classes]
        if not folders:
            raise DmkerasError(f"{val} has no class folder named 0 .. {split.num_classes - 1}")
        paths, labels = [], []
        for folder in folders:
            files = sorted(f for f in os.listdir(os.path.join(val, folder)) if is_image_file(f) and not f.startswith("."))
            paths += [os.path.join(val, folder, f) for f in files]
            labels += [int(folder)] * len(files)
        listing = _Listing(paths, np.array(labels, dtype=np.int64))
    elif kind in ("folder", "csv") and rest:
        names = split.class_names or []
        trained = _Listing([], np.zeros(0, np.int64), list(names), named=bool(names))
        listing = _test_spec_listing(spec, trained)
    else:
        raise DmkerasError(f"extra test set must be 'folder:PATH', 'csv:FILE' or 'ilsvrc12:ROOT', got {spec!r}")
    if not listing.paths:
        raise DmkerasError(f"extra test set {spec} has no images")
    return _decode_listing(listing, split, f"extra test set {spec}", stream=stream, resize_shorter=resize_shorter,
                           skip_unreadable=skip_unreadable)


def check_val_spec(spec) -> None:
    """Raise DmkerasError unless `spec` is None or one of VAL_SPEC_FORMS."""
    if spec is None or spec == "none":
        return
    kind, _, rest = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if kind not in VAL_KINDS or not rest:
        raise DmkerasError(f"validation set must be {VAL_SPEC_FORMS}, got {spec!r}")


def load_validation(spec: str, split: SplitData, *, stream: bool = False, resize_shorter: int = 0,
                    skip_unreadable: bool = False) -> tuple[np.ndarray | FileImages, np.ndarray]:
    """A validation set for a model trained on `split` (any source): (images, labels) like
    split.x_test / split.y_test.

    spec: ``folder:PATH`` (class folders; a folder with ``val/`` gives that sub-folder) or ``csv:FILE``, classes matched to the training classes by name when
    both are named, else labels as they are; images decoded to the split's size and channels (or
    left on disk with stream, centre-cropped after resize_shorter as the test split).
    ``npz:PATH``: the arrays ``x_val`` and ``y_val`` (without them ``x_test`` and ``y_test``),
    images of the split's shape. ``clothing1m:ROOT``: ROOT's clean_val_key_list.txt, labeled by
    clean_label_kv.txt. Labels must be training classes.
    """
    check_val_spec(spec)
    if spec == "none":
        raise DmkerasError("load_validation: 'none' is no validation set")
    kind, _, rest = spec.partition(":")
    path = os.path.expanduser(rest)
    what = f"validation set {spec}"
    options = dict(stream=stream, resize_shorter=resize_shorter, skip_unreadable=skip_unreadable)
    if kind == "npz":
        return _npz_validation(path, split, what)
    if kind == "clothing1m":
        return _decode_listing(_clothing1m_val_listing(path), split, what, **options)
    if kind == "folder":
        if not os.path.isdir(path):
            raise DmkerasError(f"{what}: image folder {path} does not exist or is not a folder")
        sub = os.path.join(path, "val")
        listing = _scan_classes(sub if os.path.isdir(sub) and _visible_subdirs(sub) else path)
    else:
        listing = _csv_listing(path)
    if split.class_names and listing.named:
        listing = _map_classes(listing, list(split.class_names), what)
    return _decode_listing(listing, split, what, **options)
