"""The ``digits`` source: scikit-learn's 8x8 digits, a stratified train / test split."""

from __future__ import annotations

import numpy as np

from dmkeras.data.sources.common import SplitData, _finish
from dmkeras.data.sources.registry import SourceRequest, register_source

_DIGITS_TEST_SIZE = 297


def _load_digits(num_classes: int | None, split_seed: int = 0) -> SplitData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.round(digits.images.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(y.shape[0]), test_size=_DIGITS_TEST_SIZE, stratify=y, random_state=split_seed
    )
    return _finish(
        "digits", x[idx_train], y[idx_train], x[idx_test], y[idx_test],
        10 if num_classes is None else num_classes,
        class_names=[str(int(t)) for t in digits.target_names],
    )


@register_source("digits", forms="digits")
def _digits_source(request: SourceRequest) -> SplitData:
    return _load_digits(request.num_classes, request.split_seed)
