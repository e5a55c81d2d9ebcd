"""Image classification data sources: scikit-learn digits, npz files, tensorflow-datasets, IDX
files (Fashion-MNIST, any MNIST-format folder) and image files (a folder per class, a CSV list,
the Clothing1M and WebVision layouts).

`load_source(spec)` returns a :class:`SplitData` with uint8 images of shape (N, H, W, C), int64
labels in [0, num_classes) and per-channel normalisation constants for images scaled to [0, 1],
and the validation set when there is one (Clothing1M's clean validation list, or `val_spec`).
Every problem with the user's data raises :class:`dmkeras.errors.DmkerasError`.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from dmkeras.data import idx
from dmkeras.data.images import (IMAGE_EXTENSIONS, FileImages, check_image_files, check_image_size, is_image_file,
                                 read_images)
from dmkeras.errors import DmkerasError

__all__ = ["SplitData", "load_source", "load_extra_test", "load_validation", "CIFAR10_N_LABELS", "NORMALISATION",
           "SPEC_FORMS", "IDX_SPEC_FORMS", "IMAGE_SPEC_FORMS", "VAL_SPEC_FORMS", "CLOTHING1M_CLASSES",
           "CLOTHING1M_VAL_LIST"]

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

# Noisy label columns of tfds `cifar10_n` (train split only; -1 in the test split).
CIFAR10_N_LABELS = ("aggre_label", "random_label1", "random_label2", "random_label3", "worse_label")
_CIFAR10_N_DEFAULT = "worse_label"
# tfds `cifar100_n` has a single noisy column (plus 'label' and 'coarse_label').
_CIFAR100_N_LABELS = ("noise_label",)

_STD_FLOOR = 1e-3
_STATS_SAMPLE = 500  # images decoded to estimate the normalisation of a streamed split
_TFDS_BATCH = 2048
_DIGITS_TEST_SIZE = 297
_NPZ_REQUIRED = ("x_train", "y_train", "x_test", "y_test")

_IMAGE_KINDS = ("folder", "csv", "clothing1m", "webvision")
# Clothing1M's category_names_eng.txt (used when ROOT has no such file).
CLOTHING1M_CLASSES = ("T-Shirt", "Shirt", "Knitwear", "Chiffon", "Sweater", "Hoodie", "Windbreaker",
                      "Jacket", "Downcoat", "Suit", "Shawl", "Dress", "Vest", "Underwear")
CLOTHING1M_VAL_LIST = "clean_val_key_list.txt"  # the clean validation list, labeled by clean_label_kv.txt
_WEBVISION_CLASSES = 50  # DivideMix trains on the first 50 WebVision classes
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
# public entry point


def load_source(spec: str, *, tfds_label: str | None = None, data_dir: str | None = None,
                num_classes: int | None = None, image_size=None, test_spec: str | None = None,
                test_fraction: float = 0.2, skip_unreadable: bool = False, seed: int = 0,
                stream: bool = False, resize_shorter: int = 0, val_spec: str | None = None,
                split_seed: int = 0) -> SplitData:
    """Loads ``digits``, ``npz:PATH``, ``tfds:NAME``, IDX files or image files.

    IDX file specs (the MNIST format, read by :mod:`dmkeras.data.idx`; uint8 (N, 28, 28, 1)
    images for the MNIST family, mean / std estimated from the training images):

    - ``fashion_mnist``: Fashion-MNIST's four original files (train-images-idx3-ubyte.gz,
      train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzipped
      or not), looked for in data_dir, data_dir/fashion-mnist, then
      /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist package) and
      ~/.keras/datasets/fashion-mnist (Keras' download cache); nothing is downloaded. 10 classes,
      named (T-shirt/top, Trouser, ... Ankle boot).
    - ``idx:DIR``: any folder with those four file names (MNIST, KMNIST ...). Class names from
      DIR/classes.txt (one per line; the number of classes) when present, else "0", "1", ...
      (max label + 1 classes).

    Image file specs (decoded by :func:`dmkeras.data.images.read_images`):

    - ``folder:PATH``: one sub-folder per class (class names = sorted sub-folder names, label =
      index; .png .jpg .jpeg .bmp .gif files, searched recursively; hidden entries and other
      files ignored). If PATH has a ``train/`` folder of class folders it is the training split,
      and ``test/`` (if present) the test split (its classes must be training classes).
    - ``csv:FILE``: ``path,label`` lines (an optional ``path,label`` header is skipped; relative
      paths are resolved against FILE's folder). Integer labels are used as they are; otherwise
      the labels are class names (classes = sorted unique names).
    - ``clothing1m:ROOT``: Clothing1M's lists (noisy_label_kv.txt, noisy_train_key_list.txt,
      clean_label_kv.txt, clean_test_key_list.txt); 14 classes; training labels are the noisy
      ones, y_train_clean the clean ones when clean_label_kv.txt labels every training image.
      When ROOT has clean_val_key_list.txt, its images (labels from clean_label_kv.txt) are the
      validation set x_val / y_val, as the reference's Clothing1M script (unless val_spec).
    - ``webvision:ROOT``: WebVision 1.0 (info/train_filelist_google.txt, info/val_filelist.txt
      with images in val_images_256/), keeping the classes below num_classes (default 50).

    Without a test split of their own (a folder without ``test/``, a CSV), a stratified hold-out
    of ``test_fraction`` of every class (seeded by ``seed``) is the test split.

    tfds_label: for ``tfds:cifar10_n`` the noisy column (one of CIFAR10_N_LABELS, default
        worse_label); for ``tfds:cifar100_n`` only ``noise_label``; for other tfds datasets the
        label feature to use (default ``label``). Not allowed for other specs.
    data_dir: tensorflow-datasets data directory (tfds specs), or the first folder searched for
        fashion_mnist's files. Not allowed for other specs.
    num_classes: overrides the number of classes (labels are checked against it); by default
        10 for digits and fashion_mnist, max label + 1 for npz, idx (without classes.txt) and
        integer CSV labels, the label feature's class count for tfds, the number of classes for
        folders, named CSV labels and idx's classes.txt, 14 for clothing1m, 50 for webvision.
    image_size: (height, width) (or an int for squares) every image is resized to (bilinear,
        antialiased); None requires all images to have one size. Image specs only.
    test_spec: a ``folder:PATH`` or ``csv:FILE`` spec whose images are the test split instead
        (a folder with ``test/`` gives that sub-folder). Its labels are mapped to the training
        classes by name when both have class names, else used as they are. Image specs only.
    test_fraction: the hold-out fraction, in (0, 1): round(fraction * n) images of each class
        with n images, but at least one stays in training.
    skip_unreadable: drop missing or undecodable image files (and their labels), printing how
        many, instead of raising DmkerasError.
    seed: seeds the hold-out.
    split_seed: seeds digits' stratified train / test split (0: the split of the README's tables).
    stream: keep image files on disk (x_train / x_test are :class:`FileImages`, decoded batch by
        batch by the input pipeline) instead of decoding them into memory: for datasets that do
        not fit, such as Clothing1M's million images. Needs image_size. Files are checked up
        front (they exist and look like PNG/JPEG/GIF/BMP images); normalisation constants are
        the dataset's own (clothing1m, webvision) or estimated from 500 training images.
    resize_shorter: with stream, resize each image's shorter side to this and crop image_size
        (random crop for training, centre crop for testing), as the reference's Resize +
        RandomCrop / CenterCrop; 0 resizes straight to image_size. Image specs only.
    val_spec: the validation set (x_val / y_val). None: automatic (clothing1m's
        clean_val_key_list.txt when ROOT has it, none otherwise); ``none``: no validation set;
        ``folder:PATH``, ``csv:FILE``, ``npz:PATH`` or ``clothing1m:ROOT``: see
        :func:`load_validation` (any training source).
        Validation images get the test-time treatment of the test split (stream, resize_shorter,
        skip_unreadable alike).
    """
    if not isinstance(spec, str):
        raise DmkerasError(f"data source must be a string ({SPEC_FORMS}), got {spec!r}")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise DmkerasError(f"num_classes must be a positive integer, got {num_classes!r}")
        num_classes = int(num_classes)
    kind, _, rest = spec.partition(":")
    check_val_spec(val_spec)
    if val_spec is None and kind == "clothing1m" and rest:  # the reference's clean validation list, when there
        if os.path.isfile(os.path.join(os.path.expanduser(rest), CLOTHING1M_VAL_LIST)):
            val_spec = spec
    val_listing = None
    if val_spec is not None and val_spec.startswith("clothing1m:"):  # read now: a bad list fails before the images
        val_listing = _clothing1m_val_listing(os.path.expanduser(val_spec.partition(":")[2]))
    split = _load_split(spec, kind, rest, tfds_label=tfds_label, data_dir=data_dir, num_classes=num_classes,
                        image_size=image_size, test_spec=test_spec, test_fraction=test_fraction,
                        skip_unreadable=skip_unreadable, seed=seed, stream=stream, resize_shorter=resize_shorter,
                        split_seed=split_seed)
    if val_spec is None or val_spec == "none":
        return split
    options = dict(stream=stream, resize_shorter=resize_shorter, skip_unreadable=skip_unreadable)
    if val_listing is not None:
        x_val, y_val = _decode_listing(val_listing, split, f"validation set {val_spec}", **options)
    else:
        x_val, y_val = load_validation(val_spec, split, **options)
    return dataclasses.replace(split, x_val=x_val, y_val=y_val)


def _load_split(spec, kind, rest, *, tfds_label, data_dir, num_classes, image_size, test_spec, test_fraction,
                skip_unreadable, seed, stream, resize_shorter, split_seed=0) -> SplitData:
    if (stream or resize_shorter) and kind not in _IMAGE_KINDS:
        raise DmkerasError(f"stream / resize_shorter only apply to image file sources ({IMAGE_SPEC_FORMS}), not {spec!r}")
    if resize_shorter and not stream:
        raise DmkerasError("resize_shorter needs stream=True (in-memory images are resized to image_size once)")
    if kind == "tfds" and rest:
        return _load_tfds(rest, tfds_label=tfds_label, data_dir=data_dir, num_classes=num_classes)
    if tfds_label is not None:
        raise DmkerasError(f"tfds_label={tfds_label!r} only applies to 'tfds:NAME' sources, not {spec!r}")
    if spec == "fashion_mnist":
        return _load_idx(spec, None, data_dir, num_classes)
    if data_dir is not None:
        raise DmkerasError(f"data_dir only applies to 'tfds:NAME' and 'fashion_mnist' sources, not {spec!r}")
    if kind == "idx" and rest:
        return _load_idx(spec, os.path.expanduser(rest), None, num_classes)
    if spec == "digits":
        return _load_digits(num_classes, split_seed)
    if kind == "npz" and rest:
        return _load_npz(rest, num_classes)
    if kind in _IMAGE_KINDS and rest:
        return _load_image_files(
            spec, kind, rest, num_classes=num_classes, image_size=image_size, test_spec=test_spec,
            test_fraction=test_fraction, skip_unreadable=skip_unreadable, seed=seed,
            stream=stream, resize_shorter=resize_shorter,
        )
    raise DmkerasError(f"unknown data source {spec!r}; expected {SPEC_FORMS}, IDX files: {IDX_SPEC_FORMS}, "
                       f"or image files: {IMAGE_SPEC_FORMS}")


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
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DmkerasError(
            f"{what}: {bad.size} label(s) outside [0, {num_classes}) (e.g. {int(y[i])} at index {i})"
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


# --------------------------------------------------------------------------------------------
# digits


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


# --------------------------------------------------------------------------------------------
# IDX files: fashion_mnist, idx:DIR


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


# --------------------------------------------------------------------------------------------
# npz


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


# --------------------------------------------------------------------------------------------
# tensorflow-datasets


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


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:_SHOW])
    return shown + (f", ... ({len(items) - _SHOW} more)" if len(items) > _SHOW else "")


def _load_image_files(spec: str, kind: str, rest: str, *, num_classes, image_size, test_spec,
                      test_fraction, skip_unreadable, seed, stream=False, resize_shorter=0) -> SplitData:
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

    if kind == "folder":
        name = os.path.basename(os.path.normpath(os.path.abspath(path)))
        train, test = _folder_listing(path, with_test=test_spec is None)
    elif kind == "csv":
        name = os.path.splitext(os.path.basename(path))[0]
        train, test = _csv_listing(path), None
    elif kind == "clothing1m":
        name = "clothing1m"
        if num_classes is None:
            num_classes = len(CLOTHING1M_CLASSES)
        train, test = _clothing1m_listing(path, num_classes)
    else:
        name = "webvision"
        if num_classes is None:
            num_classes = _WEBVISION_CLASSES
        train, test = _webvision_listing(path, num_classes)

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
    norm_key = name if kind in ("clothing1m", "webvision") else None
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


def _webvision_listing(root: str, num_classes: int) -> tuple[_Listing, _Listing]:
    train_list = os.path.join("info", "train_filelist_google.txt")
    val_list = os.path.join("info", "val_filelist.txt")
    _require_files(root, (train_list, val_list), "webvision")
    names = _read_names(os.path.join(root, "info", "synsets.txt"), num_classes)
    out = []
    for list_name, folder in ((train_list, root), (val_list, os.path.join(root, "val_images_256"))):
        keys, labels = _read_label_list(os.path.join(root, list_name))
        labels = np.array(labels, dtype=np.int64)
        negative = np.flatnonzero(labels < 0)
        if negative.size:
            i = int(negative[0])
            raise DmkerasError(f"webvision: {list_name} has {negative.size} negative label(s) (e.g. {labels[i]} for {keys[i]})")
        keep = np.flatnonzero(labels < num_classes)
        if keep.size == 0:
            raise DmkerasError(f"webvision: {list_name} has no image with a label below num_classes={num_classes}")
        out.append(_Listing([os.path.join(folder, keys[i]) for i in keep], labels[keep], names))
    return out[0], out[1]
