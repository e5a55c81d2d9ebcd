"""Image classification data sources: scikit-learn digits, npz files, tensorflow-datasets, IDX
files (Fashion-MNIST, any MNIST-format folder) and image files (a folder per class, a CSV list,
the Clothing1M and WebVision layouts).

`load_source(spec)` returns a :class:`SplitData` with uint8 images of shape (N, H, W, C), int64
labels in [0, num_classes) and per-channel normalisation constants for images scaled to [0, 1],
and the validation set when there is one (Clothing1M's clean validation list, or `val_spec`).
Every problem with the user's data raises :class:`dmkeras.errors.DmkerasError`.

Layout: one module per source, each registering its spec kind with
:func:`~dmkeras.data.sources.registry.register_source` (digits.py, npz.py, tfds.py, idx_files.py:
fashion_mnist and idx:DIR, image_files.py: folder:PATH and csv:FILE plus what image sources share,
clothing1m.py, webvision.py); common.py holds SplitData and the shared checks, load.py
`load_source`, held_out.py the extra test and validation sets. Importing this package registers
the built-in sources; a new source is one more module imported here (or registered by its user).
Source modules import common / registry / each other, never this package.
"""

# The built-in sources register themselves when imported. Their order is the order of the forms
# in the unknown-source message (and of 'tfds:NAME' and 'fashion_mnist' in the data_dir one).
from dmkeras.data.sources import digits, npz, tfds, idx_files, image_files, clothing1m, webvision  # noqa: F401, I001
from dmkeras.data.sources.clothing1m import (CLOTHING1M_CLASSES, CLOTHING1M_VAL_LIST, _clothing1m_listing,
                                             _clothing1m_val_listing)
from dmkeras.data.sources.common import (IDX_SPEC_FORMS, IMAGE_SPEC_FORMS, NORMALISATION, SPEC_FORMS, VAL_KINDS,
                                         VAL_SPEC_FORMS, _CIFAR10_NORM, _CIFAR100_NORM, _SHOW, _STATS_SAMPLE,
                                         _STD_FLOOR, SplitData, _channel_stats, _check_inferred_classes,
                                         _check_lengths, _check_range, _examples, _finish, _images_to_uint8,
                                         _labels_to_int64, stratified_hold_out)
from dmkeras.data.sources.digits import _DIGITS_TEST_SIZE, _load_digits
from dmkeras.data.sources.held_out import check_val_spec, load_extra_test, load_validation
from dmkeras.data.sources.idx_files import _load_idx
from dmkeras.data.sources.image_files import (_check_listing_range, _csv_listing, _decode_listing, _folder_listing,
                                              _hold_out, _images_of, _Listing, _load_image_files, _map_classes,
                                              _read_key_list, _read_label_list, _read_lines, _read_names,
                                              _require_files, _scan_classes, _test_spec_listing, _visible_subdirs)
from dmkeras.data.sources.load import _load_split, load_source
from dmkeras.data.sources.npz import _NPZ_REQUIRED, _load_npz, _npz_validation
from dmkeras.data.sources.registry import SourceRequest, register_source, unregister_source
from dmkeras.data.sources.tfds import (_CIFAR10_N_DEFAULT, _CIFAR100_N_LABELS, _TFDS_BATCH, CIFAR10_N_LABELS,
                                       _in_original_order, _load_tfds, _tfds_to_numpy, original_order)
from dmkeras.data.sources.webvision import _WEBVISION_CLASSES, _webvision_listing

__all__ = ["SplitData", "load_source", "load_extra_test", "load_validation", "CIFAR10_N_LABELS", "NORMALISATION",
           "SPEC_FORMS", "IDX_SPEC_FORMS", "IMAGE_SPEC_FORMS", "VAL_SPEC_FORMS", "CLOTHING1M_CLASSES",
           "CLOTHING1M_VAL_LIST", "register_source", "unregister_source", "SourceRequest"]
