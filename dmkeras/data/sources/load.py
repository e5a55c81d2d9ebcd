"""`load_source`: a spec -> its registered source's SplitData (the options checked), plus the
validation set (val_spec, or the source's default)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from dmkeras.data.sources.clothing1m import _clothing1m_val_listing
from dmkeras.data.sources.common import SPEC_FORMS, SplitData
from dmkeras.data.sources.held_out import check_val_spec, load_validation
from dmkeras.data.sources.image_files import _decode_listing
from dmkeras.data.sources.registry import (
    SourceRequest,
    find_kind,
    forms_accepting,
    lookup,
    unknown_source,
)
from dmkeras.errors import DmkerasError

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
    source = lookup(spec)
    if val_spec is None and source is not None and source.default_val_spec is not None:  # clothing1m's clean list
        val_spec = source.default_val_spec(spec, rest)
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
    """The registered source's split, after the options it does not take are refused (in this order)."""
    by_kind = find_kind(kind)
    if (stream or resize_shorter) and not (by_kind is not None and "stream" in by_kind.accepts):
        raise DmkerasError(f"stream / resize_shorter only apply to image file sources "
                           f"({forms_accepting('stream')}), not {spec!r}")
    if resize_shorter and not stream:
        raise DmkerasError("resize_shorter needs stream=True (in-memory images are resized to image_size once)")
    source = lookup(spec)
    if tfds_label is not None and not (source is not None and "tfds_label" in source.accepts):
        raise DmkerasError(f"tfds_label={tfds_label!r} only applies to {forms_accepting('tfds_label', 'and')} "
                           f"sources, not {spec!r}")
    if data_dir is not None and not (source is not None and "data_dir" in source.accepts):
        raise DmkerasError(f"data_dir only applies to {forms_accepting('data_dir', 'and')} sources, "
                           f"not {spec!r}")
    if source is None:
        raise unknown_source(spec)
    return source.loader(SourceRequest(
        spec=spec, kind=kind, arg=rest, num_classes=num_classes, tfds_label=tfds_label, data_dir=data_dir,
        image_size=image_size, test_spec=test_spec, test_fraction=test_fraction, skip_unreadable=skip_unreadable,
        seed=seed, stream=stream, resize_shorter=resize_shorter, split_seed=split_seed,
    ))
