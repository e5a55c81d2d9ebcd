"""What every data source shares: SplitData, the spec-form strings, the normalisation constants,
array checks and conversions (images to uint8 (N, H, W, C), labels to int64, label ranges), the
per-channel statistics and `_finish` (the checks and normalisation every loader ends with).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dmkeras import checks
from dmkeras.data.images import FileImages, read_images
from dmkeras.errors import DmkerasError

SPEC_FORMS = "'digits', 'npz:PATH' or 'tfds:NAME'"
IDX_SPEC_FORMS = "'fashion_mnist' or 'idx:DIR'"
IMAGE_SPEC_FORMS = "'folder:PATH', 'csv:FILE', 'clothing1m:ROOT' or 'webvision:ROOT'"
VAL_SPEC_FORMS = "'folder:PATH', 'csv:FILE', 'npz:PATH', 'clothing1m:ROOT' or 'none'"
VAL_KINDS = ("folder", "csv", "npz", "clothing1m")  # as dmkeras.config.VAL_KINDS

# (mean, std) per channel for images in [0, 1], as in the reference's transforms.Normalize.
_CIFAR10_NORM = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_CIFAR100_NORM = ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276))
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "clothing1m": ((0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)),  # the reference's constants
    "webvision": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's, as the reference
    "cifar10": _CIFAR10_NORM,
    "cifar10_n": _CIFAR10_NORM,
    "cifar100": _CIFAR100_NORM,
    "cifar100_n": _CIFAR100_NORM,
}

_STD_FLOOR = 1e-3
_STATS_SAMPLE = 500  # images decoded to estimate the normalisation of a streamed split
_SHOW = 5  # examples named in messages


@dataclasses.dataclass
class SplitData:
    """A train/test split.

    `y_train` holds the training labels as given by the source (for cifar10_n / cifar100_n: the
    human noisy labels). `y_train_clean` holds the true training labels when the source has
    separate ones (cifar10_n / cifar100_n: the original CIFAR label; npz: optional key); it is
    None for ordinary clean sources, whose `y_train` is the ground truth.

    `x_val` / `y_val` are the validation set (clean labels, images like x_test: uint8 arrays or
    FileImages) when there is one (Clothing1M's clean_val_key_list.txt, or `val_spec`), else None.
    """

    name: str
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: tuple[float, ...]  # per channel, for images scaled to [0, 1]
    std: tuple[float, ...]
    y_train_clean: np.ndarray | None = None
    class_names: list[str] | None = None
    x_val: np.ndarray | FileImages | None = None
    y_val: np.ndarray | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])


# --------------------------------------------------------------------------------------------
# validation and conversion helpers


def _images_to_uint8(x, what: str) -> np.ndarray:
    """(N,H,W) or (N,H,W,1|3) uint8, or float in [0,1] -> uint8 (N,H,W,C)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    elif x.ndim != 4:
        raise DmkerasError(f"{what}: images must have shape (N,H,W) or (N,H,W,C), got {x.shape}")
    if x.shape[-1] not in (1, 3):
        raise DmkerasError(f"{what}: images must have 1 or 3 channels, got {x.shape[-1]} (shape {x.shape})")
    if x.shape[0] == 0:
        raise DmkerasError(f"{what}: split is empty")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DmkerasError(f"{what}: images have zero size, shape {x.shape}")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x)
        if not finite.all():
            raise DmkerasError(f"{what}: {int((~finite).sum())} pixel value(s) are NaN or infinite")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise DmkerasError(f"{what}: float images must be in [0, 1], got values in [{lo:g}, {hi:g}]")
        return np.round(x.astype(np.float64) * 255.0).astype(np.uint8)
    raise DmkerasError(f"{what}: images must be uint8 or float in [0, 1], got dtype {x.dtype}")


def _labels_to_int64(y, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DmkerasError(f"{what}: labels must be a 1-D array, got shape {y.shape}")
    if y.shape[0] == 0:
        raise DmkerasError(f"{what}: split is empty")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DmkerasError(f"{what}: labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_range(y: np.ndarray, num_classes: int, what: str) -> None:
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise DmkerasError(
            f"{what}: labels must lie in [0, {num_classes}), got {checks.count_values(y[bad])}; "
            f"first at index {int(np.flatnonzero(bad)[0])}"
        )


def _check_inferred_classes(y_train: np.ndarray, num_classes: int, what: str) -> None:
    """With the class count taken from the largest label, every class must have a training sample:
    a stray label (0-9 and one 12) would otherwise make classes that do not exist (13 logits, and
    the uniform prior of DivideMix's penalty pushing probability onto them)."""
    counts = np.bincount(y_train, minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if not missing.size:
        return
    present = ", ".join(f"{c}: {counts[c]}" for c in np.flatnonzero(counts))
    raise DmkerasError(
        f"{what}: no training sample has label {', '.join(map(str, missing[:10]))}{' ...' if missing.size > 10 else ''} "
        f"although the labels go up to {num_classes - 1} (label: count = {present}); fix the stray labels"
    )


def _check_lengths(x: np.ndarray, y: np.ndarray, split: str, yname: str = "labels") -> None:
    if x.shape[0] != y.shape[0]:
        raise DmkerasError(f"{split}: {x.shape[0]} images but {y.shape[0]} {yname}")


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of x/255 over all pixels (chunked float64 sums; std floored)."""
    c = x.shape[-1]
    total = np.zeros(c, np.float64)
    total_sq = np.zeros(c, np.float64)
    count = 0
    step = max(1, 4_000_000 // max(1, int(np.prod(x.shape[1:]))))
    for start in range(0, x.shape[0], step):
        chunk = x[start:start + step].reshape(-1, c).astype(np.float64) / 255.0
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
        count += chunk.shape[0]
    mean = total / count
    var = np.maximum(total_sq / count - np.square(mean), 0.0)
    std = np.maximum(np.sqrt(var), _STD_FLOOR)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _finish(name, x_train, y_train, x_test, y_test, num_classes, y_train_clean=None,
            class_names=None, norm_key=None) -> SplitData:
    """Common checks (shapes agree, ranges) and normalisation constants."""
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DmkerasError(
            f"{name}: train images have shape {x_train.shape[1:]} but test images {x_test.shape[1:]}"
        )
    _check_range(y_train, num_classes, f"{name} train")
    _check_range(y_test, num_classes, f"{name} test")
    if y_train_clean is not None:
        _check_range(y_train_clean, num_classes, f"{name} train clean labels")
    if norm_key in NORMALISATION:
        mean, std = NORMALISATION[norm_key]
    elif isinstance(x_train, FileImages):  # estimated from a seeded sample of decoded images
        picked = np.sort(np.random.default_rng(0).permutation(len(x_train))[:_STATS_SAMPLE])
        sample, _ = read_images(x_train.paths[picked], x_train.size, channels=3, skip_unreadable=True)
        mean, std = _channel_stats(sample)
    else:
        mean, std = _channel_stats(x_train)
    if len(mean) != x_train.shape[-1]:
        raise DmkerasError(
            f"{name}: expected {len(mean)}-channel images for its normalisation, got {x_train.shape[-1]}"
        )
    return SplitData(
        name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=int(num_classes), mean=tuple(mean), std=tuple(std),
        y_train_clean=y_train_clean, class_names=class_names,
    )


def stratified_hold_out(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each sample is held out: round(fraction * n) of every class of n samples, at
    least one kept (seeded; classes drawn independently, so a class's pick does not depend on
    the others)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(y.size, dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(int(np.floor(fraction * idx.size + 0.5)), idx.size - 1)
        if k > 0:
            held[rng.permutation(idx)[:k]] = True
    return held


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:_SHOW])
    return shown + (f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else "")
