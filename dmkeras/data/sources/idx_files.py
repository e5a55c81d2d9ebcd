"""IDX files (the MNIST format, read by :mod:`dmkeras.data.idx`): the ``fashion_mnist`` and
``idx:DIR`` sources."""

from __future__ import annotations

import os

from dmkeras.data import idx
from dmkeras.data.sources.common import (
    SplitData,
    _check_inferred_classes,
    _finish,
    _images_to_uint8,
    _labels_to_int64,
)
from dmkeras.data.sources.registry import SourceRequest, register_source
from dmkeras.errors import DmkerasError


def _load_idx(spec: str, folder: str | None, data_dir: str | None, num_classes: int | None) -> SplitData:
    """fashion_mnist (folder None: searched, see idx.find_fashion_mnist) or an MNIST-format folder."""
    if folder is None:
        name, folder = "fashion_mnist", idx.find_fashion_mnist(data_dir)
        files, names = idx.folder_files(folder, spec), list(idx.FASHION_MNIST_CLASSES)
        num_classes = len(names) if num_classes is None else num_classes
    else:
        name = "idx"
        files = idx.folder_files(folder, spec)  # a missing folder or file fails before classes.txt is read
        names = idx.read_class_names(folder)
    x_train, y_train = idx.read_pair(files["train_images"], files["train_labels"])
    x_test, y_test = idx.read_pair(files["test_images"], files["test_labels"])
    x_train = _images_to_uint8(x_train, files["train_images"])
    x_test = _images_to_uint8(x_test, files["test_images"])
    y_train = _labels_to_int64(y_train, files["train_labels"])
    y_test = _labels_to_int64(y_test, files["test_labels"])
    if num_classes is None:
        if names:
            num_classes = len(names)
            classes_file = os.path.join(folder, idx.CLASSES_FILE)
            for y, role in ((y_train, "train_labels"), (y_test, "test_labels")):
                if int(y.max()) >= num_classes:
                    raise DmkerasError(f"{files[role]}: label {int(y.max())} but {classes_file} names {num_classes} classes")
        else:
            num_classes = int(max(y_train.max(), y_test.max())) + 1
            _check_inferred_classes(y_train, num_classes, files["train_labels"])
    class_names = list(names or [])[:num_classes]
    class_names += [str(i) for i in range(len(class_names), num_classes)]
    return _finish(name, x_train, y_train, x_test, y_test, num_classes, class_names=class_names)


@register_source("fashion_mnist", forms="fashion_mnist", group="IDX files", accepts=("data_dir",))
def _fashion_mnist_source(request: SourceRequest) -> SplitData:
    return _load_idx(request.spec, None, request.data_dir, request.num_classes)


@register_source("idx", forms="idx:DIR", group="IDX files")
def _idx_source(request: SourceRequest) -> SplitData:
    return _load_idx(request.spec, os.path.expanduser(request.arg), None, request.num_classes)
