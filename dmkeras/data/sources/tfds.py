"""The ``tfds:NAME`` source: a tensorflow-datasets dataset's train and test splits (cifar10_n /
cifar100_n: the human noisy labels, with the original label as y_train_clean), in the original
order when the dataset has an ``id`` feature."""

from __future__ import annotations

import os

import numpy as np

from dmkeras.data.sources.common import (
    SplitData,
    _check_lengths,
    _finish,
    _images_to_uint8,
    _labels_to_int64,
)
from dmkeras.data.sources.registry import SourceRequest, register_source
from dmkeras.errors import DmkerasError

# Noisy label columns of tfds `cifar10_n` (train split only; -1 in the test split).
CIFAR10_N_LABELS = ("aggre_label", "random_label1", "random_label2", "random_label3", "worse_label")
_CIFAR10_N_DEFAULT = "worse_label"
# tfds `cifar100_n` has a single noisy column (plus 'label' and 'coarse_label').
_CIFAR100_N_LABELS = ("noise_label",)

_TFDS_BATCH = 2048


def _load_tfds(name: str, *, tfds_label: str | None, data_dir: str | None,
               num_classes: int | None) -> SplitData:
    import tensorflow_datasets as tfds

    base = name.split("/")[0].split(":")[0]
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise DmkerasError(f"unknown tensorflow-datasets dataset {name!r}") from e
    except Exception as e:
        raise DmkerasError(f"cannot open tensorflow-datasets dataset {name!r}: {type(e).__name__}: {e}") from e
    features = builder.info.features
    feature_names = sorted(features.keys()) if hasattr(features, "keys") else []

    # Which label column feeds y_train / y_test / y_train_clean.
    clean_key = None
    if base == "cifar10_n":
        train_key = _CIFAR10_N_DEFAULT if tfds_label is None else tfds_label
        if train_key not in CIFAR10_N_LABELS:
            raise DmkerasError(
                f"tfds_label for cifar10_n must be one of {', '.join(CIFAR10_N_LABELS)}, got {tfds_label!r}"
            )
        test_key = clean_key = "label"
    elif base == "cifar100_n":
        train_key = _CIFAR100_N_LABELS[0] if tfds_label is None else tfds_label
        if train_key not in _CIFAR100_N_LABELS:
            raise DmkerasError(f"tfds_label for cifar100_n must be 'noise_label', got {tfds_label!r}")
        test_key = clean_key = "label"
    else:
        train_key = test_key = "label" if tfds_label is None else tfds_label
    for key in {train_key, test_key, clean_key} - {None}:
        if key not in feature_names:
            raise DmkerasError(f"tfds dataset {name!r} has no label feature {key!r} (features: {', '.join(feature_names)})")
        if not hasattr(features[key], "num_classes"):
            raise DmkerasError(f"tfds dataset {name!r}: feature {key!r} is not a class label")
    if "image" not in feature_names:
        raise DmkerasError(f"tfds dataset {name!r} has no 'image' feature (features: {', '.join(feature_names)})")
    image_shape = getattr(features["image"], "shape", None)
    if image_shape is None or len(image_shape) != 3 or any(d is None for d in image_shape):
        raise DmkerasError(f"tfds dataset {name!r}: images must have a fixed (H, W, C) shape, got {image_shape}")

    # batch_size=-1 batches by info.splits.total_num_examples, which is 0 under
    # tfds.testing.mock_data and makes tf.data abort the process; batch in chunks instead.
    manual_dir = os.path.join(data_dir or tfds.core.constants.DATA_DIR, "downloads", "manual")
    try:
        (ds_train, ds_test), info = tfds.load(
            name, split=["train", "test"], batch_size=_TFDS_BATCH, data_dir=data_dir, with_info=True
        )
        id_key = "id" if "id" in feature_names else None
        train = _tfds_to_numpy(tfds, ds_train, ("image", train_key, clean_key, id_key), f"tfds:{name} train")
        test = _tfds_to_numpy(tfds, ds_test, ("image", test_key, id_key), f"tfds:{name} test")
        if id_key:
            train, test = _in_original_order(train, id_key), _in_original_order(test, id_key)
    except DmkerasError:
        raise
    except Exception as e:
        root = data_dir or tfds.core.constants.DATA_DIR
        hint = (
            f"it is not available offline: prepare it under {root} where internet access exists "
            "(tfds build / tfds.load) and pass that data_dir"
        )
        if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
            hint += (f"; it also needs manual data: put the files listed on the tfds catalog page "
                     f"for {base} in {manual_dir}")
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DmkerasError(f"tfds dataset {name!r} could not be loaded ({type(e).__name__}: {msg[:300]}); {hint}") from e

    label_feature = info.features[train_key]
    if num_classes is None:
        num_classes = int(label_feature.num_classes)
    names = getattr(info.features[test_key], "names", None)
    class_names = list(names) if names else None

    x_train = _images_to_uint8(train["image"], f"tfds:{name} train images")
    x_test = _images_to_uint8(test["image"], f"tfds:{name} test images")
    y_train = _labels_to_int64(train[train_key], f"tfds:{name} train {train_key}")
    y_test = _labels_to_int64(test[test_key], f"tfds:{name} test {test_key}")
    _check_lengths(x_train, y_train, f"tfds:{name} train split")
    _check_lengths(x_test, y_test, f"tfds:{name} test split")
    y_clean = None
    if clean_key is not None:
        y_clean = _labels_to_int64(train[clean_key], f"tfds:{name} train {clean_key}")
        _check_lengths(x_train, y_clean, f"tfds:{name} train split", f"{clean_key} labels")
    return _finish(base, x_train, y_train, x_test, y_test, num_classes, y_train_clean=y_clean,
                   class_names=class_names, norm_key=base)


@register_source("tfds", forms="tfds:NAME", accepts=("tfds_label", "data_dir"))
def _tfds_source(request: SourceRequest) -> SplitData:
    return _load_tfds(request.arg, tfds_label=request.tfds_label, data_dir=request.data_dir,
                      num_classes=request.num_classes)


def original_order(ids) -> np.ndarray | None:
    """The permutation that sorts ids like b"train_01234" by their number, or None if they are not
    all of that form.

    tensorflow-datasets stores CIFAR in a hashed order; the reference's JSON noise files (and the
    original pickles) index images in the original order, which the `id` feature records.
    """
    numbers = []
    for raw in ids:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        head, _, tail = text.rpartition("_")
        if not head or not tail.isdigit():
            return None
        numbers.append(int(tail))
    if len(set(numbers)) != len(numbers):
        return None
    return np.argsort(np.array(numbers), kind="stable")


def _in_original_order(columns: dict, id_key: str) -> dict:
    order = original_order(columns.pop(id_key)) if id_key in columns else None
    return columns if order is None else {k: v[order] for k, v in columns.items()}


def _tfds_to_numpy(tfds, ds, keys, what: str) -> dict[str, np.ndarray]:
    keys = [k for k in dict.fromkeys(keys) if k is not None]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for batch in tfds.as_numpy(ds):
        for k in keys:
            if k == "id" and k not in batch:  # optional: only used to restore the original order
                continue
            parts[k].append(np.asarray(batch[k]))
    if not parts[keys[0]]:
        raise DmkerasError(f"{what}: split is empty")
    return {k: np.concatenate(v, axis=0) for k, v in parts.items() if v}
