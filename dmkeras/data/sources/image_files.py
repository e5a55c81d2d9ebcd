"""Image-file sources: what they share (listings of paths and labels, test_spec, the stratified
hold-out, decoding or streaming, held-out listings for extra test and validation sets, the
"relative/path label" list files of Clothing1M and WebVision) and the ``folder:PATH`` and
``csv:FILE`` sources. Images are decoded by :func:`dmkeras.data.images.read_images`.

A source of image files (clothing1m.py, webvision.py) registers ``image_source(its_list_splits)``.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from dmkeras.data.images import (
    IMAGE_EXTENSIONS,
    FileImages,
    check_image_files,
    check_image_size,
    is_image_file,
    read_images,
)
from dmkeras.data.sources.common import (
    SplitData,
    _check_inferred_classes,
    _check_range,
    _examples,
    _finish,
    stratified_hold_out,
)
from dmkeras.data.sources.registry import SourceRequest, register_source
from dmkeras.errors import DmkerasError

# --------------------------------------------------------------------------------------------
# image files: folder, csv, clothing1m, webvision


@dataclasses.dataclass
class _Listing:
    """Image paths and labels of one split, before decoding."""

    paths: list[str]
    labels: np.ndarray  # int64
    class_names: list[str] | None = None
    named: bool = False  # labels come from class names (folders, named CSV labels)
    clean: np.ndarray | None = None

    def take(self, idx: np.ndarray) -> "_Listing":
        return _Listing(
            [self.paths[i] for i in idx], self.labels[idx], self.class_names, self.named,
            None if self.clean is None else self.clean[idx],
        )


def _load_image_files(spec: str, rest: str, list_splits, *, num_classes, image_size, test_spec,
                      test_fraction, skip_unreadable, seed, stream=False, resize_shorter=0,
                      own_normalisation=False) -> SplitData:
    """The split of an image-file source. list_splits(path, num_classes, test_spec) -> (name,
    num_classes, train listing, test listing or None) is the source's own part: its name, its
    default class count and its lists (see _folder_splits); the rest (test_spec, the hold-out,
    label checks, decoding or streaming) is common. own_normalisation: the source's name keys
    NORMALISATION (RGB images)."""
    size = check_image_size(image_size)
    if stream and size is None:
        raise DmkerasError(f"{spec}: streaming images from disk needs image_size=(height, width)")
    if test_spec is not None and not isinstance(test_spec, str):
        raise DmkerasError(f"test_spec must be a string ('folder:PATH' or 'csv:FILE'), got {test_spec!r}")
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.integer, np.floating))
            or not 0.0 < float(test_fraction) < 1.0):
        raise DmkerasError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DmkerasError(f"seed must be a non-negative integer, got {seed!r}")
    path = os.path.expanduser(rest)

    name, num_classes, train, test = list_splits(path, num_classes, test_spec)

    if test_spec is not None:
        test = _test_spec_listing(test_spec, train)
    elif test is None:
        train, test = _hold_out(train, float(test_fraction), int(seed), spec)

    if num_classes is None:
        if train.named:
            num_classes = len(train.class_names)
        else:
            for listing, split in ((train, "train"), (test, "test")):
                if listing.labels.min() < 0:
                    _check_listing_range(listing, int(listing.labels.max()) + 1, f"{spec} {split}")
            num_classes = int(max(train.labels.max(), test.labels.max())) + 1
            _check_inferred_classes(np.asarray(train.labels, np.int64), num_classes, f"{spec} train")
    _check_listing_range(train, num_classes, f"{spec} train")
    _check_listing_range(test, num_classes, f"{spec} test")
    if train.clean is not None:
        _check_range(train.clean, num_classes, f"{spec} train clean labels")

    class_names = list(train.class_names or [])[:num_classes]
    class_names += [str(i) for i in range(len(class_names), num_classes)]

    # Clothing1M and WebVision use the reference's constants, which are for RGB images.
    norm_key = name if own_normalisation else None
    images, kept = _images_of(train.paths + test.paths, size, stream=stream, resize_shorter=resize_shorter,
                              skip_unreadable=skip_unreadable, channels=3 if norm_key else None)
    n_train = len(train.paths)
    keep_train, keep_test = kept[:n_train], kept[n_train:]
    k = int(keep_train.sum())
    for count, split in ((k, "train"), (int(keep_test.sum()), "test")):
        if count == 0:
            raise DmkerasError(f"{spec}: no readable image left in the {split} split")
    y_clean = None if train.clean is None else train.clean[keep_train]
    return _finish(name, images[:k], train.labels[keep_train], images[k:], test.labels[keep_test],
                   num_classes, y_train_clean=y_clean, class_names=class_names, norm_key=norm_key)


def image_source(list_splits, *, own_normalisation: bool = False):
    """The registry loader of an image-file source listed by `list_splits` (see _load_image_files)."""

    def load(request: SourceRequest) -> SplitData:
        return _load_image_files(
            request.spec, request.arg, list_splits, num_classes=request.num_classes, image_size=request.image_size,
            test_spec=request.test_spec, test_fraction=request.test_fraction,
            skip_unreadable=request.skip_unreadable, seed=request.seed, stream=request.stream,
            resize_shorter=request.resize_shorter, own_normalisation=own_normalisation,
        )

    return load


def _images_of(paths, size, *, stream, resize_shorter, skip_unreadable, channels):
    """(images, kept mask) of image files: decoded now (`read_images`), or with stream checked
    and left on disk as a FileImages of the readable ones."""
    if stream:
        kept = check_image_files(paths, skip_unreadable=skip_unreadable)
        return FileImages(paths, size, resize_shorter)[np.flatnonzero(kept)], kept
    return read_images(paths, size, channels=channels, skip_unreadable=skip_unreadable)


def _check_listing_range(listing: _Listing, num_classes: int, what: str) -> None:
    y = listing.labels
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DmkerasError(
            f"{what}: {bad.size} label(s) outside [0, {num_classes}) (e.g. {int(y[i])} for {listing.paths[i]})"
        )


def _decode_listing(listing, split: SplitData, what: str, *, stream, resize_shorter, skip_unreadable):
    """(images, labels) of a held-out listing for a model trained on `split`: labels checked against
    its classes, images decoded to its size and channels (or left on disk with stream)."""
    _check_listing_range(listing, split.num_classes, what)
    height, width, channels = split.image_shape
    images, kept = _images_of(listing.paths, (height, width), stream=stream, resize_shorter=resize_shorter,
                              skip_unreadable=skip_unreadable, channels=channels)
    if not kept.any():
        raise DmkerasError(f"{what}: no readable image")
    return images, listing.labels[kept]


def _hold_out(listing: _Listing, fraction: float, seed: int, what: str) -> tuple[_Listing, _Listing]:
    """Stratified, seeded split: round(fraction * n) images of every class (keeping >= 1 in train)."""
    in_test = stratified_hold_out(listing.labels, fraction, seed)
    if not in_test.any():
        raise DmkerasError(
            f"{what}: test_fraction={fraction:g} of {listing.labels.size} images leaves the test split empty; "
            "use a larger test_fraction or pass test_spec"
        )
    return listing.take(np.flatnonzero(~in_test)), listing.take(np.flatnonzero(in_test))


def _test_spec_listing(test_spec: str, train: _Listing) -> _Listing:
    kind, _, rest = test_spec.partition(":")
    path = os.path.expanduser(rest)
    if kind == "folder" and rest:
        whole, test = _folder_listing(path, with_test=True)
        test = test or whole
    elif kind == "csv" and rest:
        test = _csv_listing(path)
    else:
        raise DmkerasError(f"test_spec must be 'folder:PATH' or 'csv:FILE', got {test_spec!r}")
    if train.named and test.named:
        test = _map_classes(test, train.class_names, f"test_spec {test_spec}")
    return test


def _map_classes(listing: _Listing, class_names: list[str], what: str) -> _Listing:
    """Relabels a named listing by the training class names."""
    index = {n: i for i, n in enumerate(class_names)}
    unknown = [n for n in listing.class_names if n not in index]
    if unknown:
        raise DmkerasError(f"{what} has classes the training data lacks: {_examples(unknown)}")
    lookup = np.array([index[n] for n in listing.class_names], dtype=np.int64)
    return _Listing(listing.paths, lookup[listing.labels], list(class_names), True)


# folder


def _folder_splits(path: str, num_classes, test_spec):
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
    train, test = _folder_listing(path, with_test=test_spec is None)
    return name, num_classes, train, test


register_source("folder", image_source(_folder_splits), forms="folder:PATH", group="image files", accepts=("stream",))


def _visible_subdirs(path: str) -> list[str]:
    try:
        entries = os.listdir(path)
    except OSError as e:
        raise DmkerasError(f"cannot list folder {path}: {e.strerror or e}") from e
    return sorted(d for d in entries if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))


def _folder_listing(path: str, *, with_test: bool) -> tuple[_Listing, _Listing | None]:
    """(train, test or None) of a class-folder tree; `train/` + `test/` layout if present."""
    if not os.path.isdir(path):
        raise DmkerasError(f"image folder {path} does not exist or is not a folder")
    train_dir, test_dir = os.path.join(path, "train"), os.path.join(path, "test")
    if os.path.isdir(train_dir) and _visible_subdirs(train_dir):
        train = _scan_classes(train_dir)
        test = None
        if with_test and os.path.isdir(test_dir):
            test = _map_classes(_scan_classes(test_dir), train.class_names, f"test folder {test_dir}")
        return train, test
    return _scan_classes(path), None


def _scan_classes(root: str) -> _Listing:
    classes = _visible_subdirs(root)
    if not classes:
        raise DmkerasError(f"image folder {root} has no class sub-folders (expected one sub-folder per class)")

    paths, labels = [], []
    for label, cls in enumerate(classes):
        class_dir = os.path.join(root, cls)
        files = []
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                         if not f.startswith(".") and is_image_file(f))
        if not files:
            raise DmkerasError(f"class folder {class_dir} has no image files ({' '.join(IMAGE_EXTENSIONS)})")
        paths.extend(files)
        labels.extend([label] * len(files))
    return _Listing(paths, np.array(labels, dtype=np.int64), classes, True)


# csv


def _csv_splits(path: str, num_classes, test_spec):
    name = os.path.splitext(os.path.basename(path))[0]
    return name, num_classes, _csv_listing(path), None


register_source("csv", image_source(_csv_splits), forms="csv:FILE", group="image files", accepts=("stream",))


def _csv_listing(path: str) -> _Listing:
    if not os.path.isfile(path):
        raise DmkerasError(f"csv file {path} does not exist")
    base = os.path.dirname(os.path.abspath(path))
    paths, raw_labels = [], []
    line = 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            first = True
            for row in reader:
                line = reader.line_num
                fields = [v.strip() for v in row]
                if not any(fields):
                    continue
                if first and [v.lower() for v in fields] == ["path", "label"]:
                    first = False
                    continue
                first = False
                if len(fields) != 2 or not fields[0] or not fields[1]:
                    raise DmkerasError(f"{path} line {line}: expected 'path,label', got {','.join(row)!r}")
                paths.append(os.path.join(base, os.path.expanduser(fields[0])))
                raw_labels.append(fields[1])
    except DmkerasError:
        raise
    except UnicodeDecodeError as e:
        raise DmkerasError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except (csv.Error, OSError) as e:
        raise DmkerasError(f"cannot read csv file {path} (line {line + 1}): {e}") from e
    if not paths:
        raise DmkerasError(f"csv file {path} lists no images")
    try:
        labels = np.array([int(v) for v in raw_labels], dtype=np.int64)
        return _Listing(paths, labels)
    except (ValueError, OverflowError):
        names = sorted(set(raw_labels))
        index = {n: i for i, n in enumerate(names)}
        return _Listing(paths, np.array([index[v] for v in raw_labels], dtype=np.int64), names, True)


# Clothing1M and WebVision lists ("relative/path label" lines)


def _require_files(root: str, names, what: str) -> None:
    if not os.path.isdir(root):
        raise DmkerasError(f"{what} root {root} does not exist or is not a folder")
    missing = [n for n in names if not os.path.isfile(os.path.join(root, n))]
    if missing:
        raise DmkerasError(f"{what} root {root} is missing {', '.join(missing)}")


def _read_lines(path: str):
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                text = line.strip()
                if text:
                    yield number, text
    except UnicodeDecodeError as e:
        raise DmkerasError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise DmkerasError(f"cannot read {path}: {e.strerror or e}") from e


def _read_label_list(path: str) -> tuple[list[str], list[int]]:
    keys, labels = [], []
    for number, text in _read_lines(path):
        parts = text.rsplit(None, 1)
        try:
            if len(parts) != 2:
                raise ValueError
            label = int(parts[1])
        except ValueError:
            raise DmkerasError(f"{path} line {number}: expected '<image path> <integer label>', got {text!r}") from None
        keys.append(parts[0])
        labels.append(label)
    return keys, labels


def _read_key_list(path: str) -> list[str]:
    keys = [text for _, text in _read_lines(path)]
    if not keys:
        raise DmkerasError(f"{path} lists no images")
    return keys


def _read_names(path: str, count: int) -> list[str] | None:
    if not os.path.isfile(path):
        return None
    names = [text for _, text in _read_lines(path)]
    return names[:count] if len(names) >= count else None
