"""Synthetic label noise as in DivideMix (`dataloader_cifar.py`), plus its JSON noise files.

Procedure (same as the reference): shuffle the sample indices, the first ``int(rate * N)``
of them are the noisy samples;

* ``sym``: each noisy sample gets a label drawn uniformly from **all** classes, so it may keep its
  true label and the realised flip rate is about ``rate * (1 - 1/C)``;
* ``asym``: each noisy sample's label goes through a class transition map; classes not in the map
  keep their label, so the realised flip rate is lower than ``rate`` unless the map moves every
  class;
* ``none``: the labels are returned unchanged.

Randomness comes from ``np.random.default_rng(seed)`` (not bit-identical with the reference's
Python ``random``). ``sym`` and ``asym`` consume the generator in the same order, so with the same
seed they choose the same noisy samples.

The reference stores the noisy labels as a JSON list of ints (``<r>_<mode>.json``) and reuses the
file when it exists; :func:`noisy_labels_from_file_or_new` does the same.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from typing import Mapping

import numpy as np

from dmkeras import checks
from dmkeras.errors import DmkerasError
from dmkeras.rundir import write_json_atomic

__all__ = [
    "CIFAR10_ASYM_MAP",
    "CIFAR100_COARSE_LABELS",
    "NOISE_MODES",
    "cifar100_asym_map",
    "parse_asym_map",
    "symmetric_noise",
    "asymmetric_noise",
    "make_noisy_labels",
    "realised_noise_rate",
    "save_noise_file",
    "load_noise_file",
    "noisy_labels_from_file_or_new",
    "default_noise_file_name",
]

NOISE_MODES = ("sym", "asym", "none")

# CIFAR-10 asymmetric noise of the reference: truck->automobile, bird->airplane, deer->horse,
# cat<->dog. Classes 0, 1, 6, 7, 8 are not listed and keep their label.
CIFAR10_ASYM_MAP: dict[int, int] = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}

# Standard CIFAR-100 fine label -> coarse label (super-class) table, indexed by fine class id
# (fine ids in the alphabetical order of the official `fine_label_names`).
CIFAR100_COARSE_LABELS: tuple[int, ...] = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3,
    3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10,
    16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19,
    2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)


def cifar100_asym_map() -> dict[int, int]:
    """CIFAR-100 asymmetric map: each fine class -> the next fine class (by id) of its super-class.

    Cyclic within each super-class of 5 classes, so every class moves and the map is a permutation.
    """
    members: dict[int, list[int]] = {}
    for fine, coarse in enumerate(CIFAR100_COARSE_LABELS):
        members.setdefault(coarse, []).append(fine)
    mapping: dict[int, int] = {}
    for fines in members.values():
        fines = sorted(fines)
        for i, fine in enumerate(fines):
            mapping[fine] = fines[(i + 1) % len(fines)]
    return dict(sorted(mapping.items()))


# --------------------------------------------------------------------------------------------
# validation helpers


def _check_num_classes(num_classes) -> int:
    return checks.check_num_classes(num_classes)


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise DmkerasError(f"noise rate must be a number in [0, 1], got {rate!r}")
    rate = float(rate)
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise DmkerasError(f"noise rate must be in [0, 1], got {rate}")
    return rate


def _check_mode(mode) -> str:
    if mode not in NOISE_MODES:
        raise DmkerasError(f"unknown noise mode {mode!r}; expected one of {', '.join(NOISE_MODES)}")
    return mode


def _check_labels(labels, num_classes: int, what: str = "labels") -> np.ndarray:
    """A new int64 copy of `labels`, checked to be 1-D class indices in [0, num_classes)."""
    return checks.check_class_labels(labels, num_classes, what=what)


def _check_map(mapping, num_classes: int) -> dict[int, int]:
    if not isinstance(mapping, Mapping):
        raise DmkerasError(f"asymmetric noise map must be a dict {{source: target}}, got {type(mapping).__name__}")
    out: dict[int, int] = {}
    for src, dst in mapping.items():
        for v in (src, dst):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise DmkerasError(f"asymmetric noise map entry {src!r}: {dst!r} is not a pair of ints")
            if not 0 <= v < num_classes:
                raise DmkerasError(
                    f"asymmetric noise map entry {src}: {dst} has class id {v} outside [0, {num_classes})"
                )
        out[int(src)] = int(dst)
    return out


def parse_asym_map(text: str, num_classes: int) -> dict[int, int]:
    """Parses ``"3:5,5:3,7:1"`` into ``{3: 5, 5: 3, 7: 1}`` (spaces around items allowed)."""
    num_classes = _check_num_classes(num_classes)
    if not isinstance(text, str) or not text.strip():
        raise DmkerasError(f"asymmetric noise map must be a non-empty string like '3:5,5:3', got {text!r}")
    mapping: dict[int, int] = {}
    for item in text.split(","):
        m = re.fullmatch(r"\s*([+-]?\d+)\s*:\s*([+-]?\d+)\s*", item)
        if m is None:
            raise DmkerasError(f"bad asymmetric noise map item {item.strip()!r} in {text!r}: expected 'source:target'")
        src, dst = int(m.group(1)), int(m.group(2))
        for v in (src, dst):
            if not 0 <= v < num_classes:
                raise DmkerasError(
                    f"asymmetric noise map item {item.strip()!r}: class id {v} outside [0, {num_classes})"
                )
        if src in mapping:
            raise DmkerasError(f"asymmetric noise map {text!r} lists source class {src} twice")
        mapping[src] = dst
    return mapping


# --------------------------------------------------------------------------------------------
# noise generation


def _noisy_indices(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    # Reference: idx = shuffled range(N); noise_idx = idx[:int(r * N)] (plain truncation).
    return rng.permutation(n)[: int(rate * n)]


def symmetric_noise(labels, rate: float, num_classes: int, seed) -> np.ndarray:
    """Resamples exactly ``int(rate * N)`` randomly chosen labels uniformly from all classes."""
    num_classes = _check_num_classes(num_classes)
    rate = _check_rate(rate)
    noisy = _check_labels(labels, num_classes)
    rng = np.random.default_rng(seed)
    idx = _noisy_indices(rng, noisy.shape[0], rate)
    noisy[idx] = rng.integers(0, num_classes, size=idx.shape[0], dtype=np.int64)
    return noisy


def asymmetric_noise(labels, rate: float, mapping: Mapping[int, int], seed, num_classes: int) -> np.ndarray:
    """Maps exactly ``int(rate * N)`` randomly chosen labels through `mapping` (others unchanged).

    Chosen samples whose class is not a key of `mapping` keep their label.
    """
    num_classes = _check_num_classes(num_classes)
    rate = _check_rate(rate)
    mapping = _check_map(mapping, num_classes)
    noisy = _check_labels(labels, num_classes)
    table = np.arange(num_classes, dtype=np.int64)
    for src, dst in mapping.items():
        table[src] = dst
    rng = np.random.default_rng(seed)
    idx = _noisy_indices(rng, noisy.shape[0], rate)
    noisy[idx] = table[noisy[idx]]
    return noisy


def make_noisy_labels(labels, mode: str, rate: float, num_classes: int, seed, asym_map=None) -> np.ndarray:
    """Noisy copy of `labels` for mode ``sym``, ``asym`` (needs `asym_map`) or ``none``.

    `asym_map` is ignored for ``sym`` and ``none``; with ``none`` the rate is only validated.
    """
    mode = _check_mode(mode)
    num_classes = _check_num_classes(num_classes)
    rate = _check_rate(rate)
    if mode == "sym":
        return symmetric_noise(labels, rate, num_classes, seed)
    if mode == "asym":
        if asym_map is None:
            raise DmkerasError(
                "asymmetric noise needs a class transition map (e.g. CIFAR10_ASYM_MAP, "
                "cifar100_asym_map() or parse_asym_map('3:5,5:3'))"
            )
        return asymmetric_noise(labels, rate, asym_map, seed, num_classes)
    return _check_labels(labels, num_classes)


def realised_noise_rate(noisy, clean) -> float:
    """Fraction of samples whose noisy label differs from the clean one."""
    noisy, clean = np.asarray(noisy), np.asarray(clean)
    if noisy.ndim != 1 or clean.ndim != 1:
        raise DmkerasError(f"labels must be 1-D, got shapes {noisy.shape} and {clean.shape}")
    if noisy.shape[0] != clean.shape[0]:
        raise DmkerasError(f"noisy and clean labels differ in length: {noisy.shape[0]} vs {clean.shape[0]}")
    if noisy.shape[0] == 0:
        raise DmkerasError("cannot compute a noise rate of empty label arrays")
    return float(np.mean(noisy != clean))


# --------------------------------------------------------------------------------------------
# JSON noise files (reference format: a JSON list of ints)


def default_noise_file_name(rate: float, mode: str) -> str:
    """Reference-style file name: ``0.5_sym.json``, ``0.0_asym.json``, ``0.25_sym.json``.

    The reference formats the rate with ``%.1f``; this does the same when the rate has one decimal
    and falls back to ``%g`` otherwise so that e.g. 0.25 and 0.2 do not share a file.
    """
    rate = _check_rate(rate)
    mode = _check_mode(mode)
    text = f"{rate:.1f}" if round(rate, 1) == rate else f"{rate:g}"
    return f"{text}_{mode}.json"


def save_noise_file(path, labels) -> None:
    """Writes `labels` as a JSON list of ints, atomically (`rundir.write_json_atomic`: temp file + os.replace)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DmkerasError(f"noise labels must be a 1-D array, got shape {arr.shape}")
    if arr.size and (arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer)):
        raise DmkerasError(f"noise labels must be integers, got dtype {arr.dtype}")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json_atomic(path, [int(v) for v in arr.tolist()], indent=None, sort_keys=False)


def load_noise_file(path, num_samples: int, num_classes: int) -> np.ndarray:
    """Reads a reference noise file and checks its length and label range; returns int64."""
    num_classes = _check_num_classes(num_classes)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DmkerasError(f"noise file {path} does not exist")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DmkerasError(f"noise file {path} is not valid JSON: {e}") from e
    except OSError as e:
        raise DmkerasError(f"cannot read noise file {path}: {e}") from e
    if not isinstance(data, list):
        raise DmkerasError(f"noise file {path} must hold a JSON list of ints, got a {type(data).__name__}")
    for i, v in enumerate(data):
        if isinstance(v, bool) or not isinstance(v, int):
            raise DmkerasError(f"noise file {path} must hold a JSON list of ints; item {i} is {v!r}")
    if len(data) != num_samples:
        raise DmkerasError(f"noise file {path} has {len(data)} labels but the training set has {num_samples} samples")
    return _check_labels(np.asarray(data, dtype=np.int64).reshape(-1), num_classes, what=f"noise file {path}")


def noisy_labels_from_file_or_new(
    path, labels, mode: str, rate: float, num_classes: int, seed, asym_map=None
) -> tuple[np.ndarray, bool]:
    """Returns ``(noisy_labels, reused)``.

    If `path` exists its labels are reused as they are (mode, rate, seed and map are then not
    applied, like the reference); otherwise noisy labels are generated with
    :func:`make_noisy_labels` and written to `path`. With ``path=None`` nothing is read or written.
    """
    num_classes = _check_num_classes(num_classes)
    clean = _check_labels(labels, num_classes)
    if path is not None and os.path.exists(path):
        # Validate the other arguments too, so a bad command line fails the same way either time.
        _check_mode(mode)
        _check_rate(rate)
        return load_noise_file(path, clean.shape[0], num_classes), True
    noisy = make_noisy_labels(clean, mode, rate, num_classes, seed, asym_map)
    if path is not None:
        save_noise_file(path, noisy)
    return noisy, False
