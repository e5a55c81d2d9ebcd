"""Input checks shared by the library's entry points: one mistake, one wording, one line.

`num_classes` and class labels reach dmkeras through the task model (`DivideMix.fit`), the
label-issue functions, the division, the noise and the zoo; each calls these instead of its own
copy, so that a label of 12 among ten classes reads the same wherever it is caught.
"""

from __future__ import annotations

import numbers

import numpy as np

from dmkeras.errors import DmkerasError

__all__ = ["check_num_classes", "check_class_labels", "count_values"]

_SHOW = 5  # distinct values named in a message


def check_num_classes(num_classes, *, minimum: int = 1, what: str = "num_classes") -> int:
    """`num_classes` as an int >= `minimum` (the zoo's nets need 2 outputs, a division 1 class)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < minimum:
        kind = "a positive integer" if minimum == 1 else f"an int >= {minimum}"
        raise DmkerasError(f"{what} must be {kind}, got {num_classes!r}")
    return int(num_classes)


def count_values(values: np.ndarray, unit: str = "sample") -> str:
    """'12 (1 sample), -1 (3 samples)': the distinct values of `values`, most frequent first,
    with their counts (at most five named, then how many more)."""
    distinct, counts = np.unique(np.asarray(values), return_counts=True)
    order = np.lexsort((distinct, -counts))
    named = [f"{distinct[i]:g} ({counts[i]} {unit}{'s' if counts[i] != 1 else ''})" for i in order[:_SHOW]]
    if len(order) > _SHOW:
        named.append(f"and {len(order) - _SHOW} other value(s)")
    return ", ".join(named)


def check_class_labels(labels, num_classes: int | None = None, *, what: str = "labels", count: int | None = None,
                       count_what: str = "") -> np.ndarray:
    """Class labels as a new int64 (N,) array: 1-D, integer (integral floats accepted), in
    [0, num_classes) (only >= 0 when num_classes is None), and `count` long when given.
    The out-of-range error names each wrong value and how many samples carry it."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DmkerasError(f"{what} must be 1-D (got shape {arr.shape})")
    if count is not None and len(arr) != count:
        raise DmkerasError(f"{count_what or f'there are {count} samples'} but {what} has {len(arr)} labels")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DmkerasError(f"{what} must be integer class indices (got dtype {arr.dtype})")
    if np.issubdtype(arr.dtype, np.floating) and not (np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))):
        raise DmkerasError(f"{what} must be integer class indices (got non-integer values)")
    out = arr.astype(np.int64, copy=True)
    bad = (out < 0) if num_classes is None else ((out < 0) | (out >= num_classes))
    if bad.any():
        upper = "num_classes" if num_classes is None else num_classes
        raise DmkerasError(f"{what} must lie in [0, {upper}), got {count_values(out[bad])}")
    return out
