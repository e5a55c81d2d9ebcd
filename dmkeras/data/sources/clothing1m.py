"""The ``clothing1m:ROOT`` source: Clothing1M's lists (noisy training labels, clean test labels,
the clean validation list that is the default validation set when ROOT has it)."""

from __future__ import annotations

import os

import numpy as np

from dmkeras.data.sources.common import _examples
from dmkeras.data.sources.image_files import (
    _Listing,
    _read_key_list,
    _read_label_list,
    _read_names,
    _require_files,
    image_source,
)
from dmkeras.data.sources.registry import register_source
from dmkeras.errors import DmkerasError

# Clothing1M's category_names_eng.txt (used when ROOT has no such file).
CLOTHING1M_CLASSES = ("T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker",
                      "Jacket", "Downcoat", "Suit", "Shawl", "Dress", "Vest", "Underwear")
CLOTHING1M_VAL_LIST = "clean_val_key_list.txt"  # the clean validation list, labeled by clean_label_kv.txt


def _clothing1m_splits(path: str, num_classes, test_spec):
    if num_classes is None:
        num_classes = len(CLOTHING1M_CLASSES)
    train, test = _clothing1m_listing(path, num_classes)
    return "clothing1m", num_classes, train, test


def _default_val_spec(spec: str, rest: str) -> str | None:
    """The reference's clean validation list, when there: the validation set without val_spec."""
    if os.path.isfile(os.path.join(os.path.expanduser(rest), CLOTHING1M_VAL_LIST)):
        return spec
    return None


# Clothing1M uses the reference's constants, which are for RGB images.
register_source("clothing1m", image_source(_clothing1m_splits, own_normalisation=True), forms="clothing1m:ROOT",
                group="image files", accepts=("stream",), default_val_spec=_default_val_spec)


def _clothing1m_listing(root: str, num_classes: int) -> tuple[_Listing, _Listing]:
    files = ("noisy_label_kv.txt", "noisy_train_key_list.txt", "clean_label_kv.txt", "clean_test_key_list.txt")
    _require_files(root, files, "clothing1m")
    noisy = dict(zip(*_read_label_list(os.path.join(root, "noisy_label_kv.txt"))))
    clean = dict(zip(*_read_label_list(os.path.join(root, "clean_label_kv.txt"))))
    train_keys = _read_key_list(os.path.join(root, "noisy_train_key_list.txt"))
    test_keys = _read_key_list(os.path.join(root, "clean_test_key_list.txt"))
    for keys, kv, list_name, kv_name in ((train_keys, noisy, files[1], files[0]),
                                         (test_keys, clean, files[3], files[2])):
        unlabeled = [k for k in keys if k not in kv]
        if unlabeled:
            raise DmkerasError(
                f"clothing1m: {len(unlabeled)} image(s) of {list_name} have no label in {kv_name}: {_examples(unlabeled)}"
            )
    names = _read_names(os.path.join(root, "category_names_eng.txt"), num_classes)
    if names is None and num_classes <= len(CLOTHING1M_CLASSES):
        names = list(CLOTHING1M_CLASSES[:num_classes])
    y_clean = None
    if all(k in clean for k in train_keys):
        y_clean = np.array([clean[k] for k in train_keys], dtype=np.int64)
    train = _Listing([os.path.join(root, k) for k in train_keys],
                     np.array([noisy[k] for k in train_keys], dtype=np.int64), names, clean=y_clean)
    test = _Listing([os.path.join(root, k) for k in test_keys],
                    np.array([clean[k] for k in test_keys], dtype=np.int64), names)
    return train, test


def _clothing1m_val_listing(root: str) -> _Listing:
    """ROOT's clean_val_key_list.txt with the clean labels of clean_label_kv.txt (the reference's
    'val' loader)."""
    _require_files(root, (CLOTHING1M_VAL_LIST, "clean_label_kv.txt"), "clothing1m")
    clean = dict(zip(*_read_label_list(os.path.join(root, "clean_label_kv.txt"))))
    keys = _read_key_list(os.path.join(root, CLOTHING1M_VAL_LIST))
    unlabeled = [k for k in keys if k not in clean]
    if unlabeled:
        raise DmkerasError(
            f"clothing1m: {len(unlabeled)} image(s) of {CLOTHING1M_VAL_LIST} have no label in clean_label_kv.txt: "
            f"{_examples(unlabeled)}"
        )
    return _Listing([os.path.join(root, k) for k in keys], np.array([clean[k] for k in keys], dtype=np.int64))
