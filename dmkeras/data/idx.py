"""IDX files (the MNIST format: MNIST, Fashion-MNIST, KMNIST ...), read from disk into numpy.

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>`` (type 0x08: unsigned bytes), then
``ndim`` big-endian int32 dimension sizes, then the data, row-major. Images are 0x00000803
(count, rows, cols), labels 0x00000801 (count,). Files may be gzipped (told by the gzip magic,
not by the name). Every problem raises :class:`dmkeras.errors.DmkerasError` naming the file.

A dataset folder holds the four files of :data:`IDX_FILES` (each ``.gz`` or plain) and
optionally ``classes.txt`` (one class name per line). :func:`find_fashion_mnist` looks for
Fashion-MNIST's folder (``--data_dir``, then :data:`FASHION_MNIST_DIRS`).
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from dmkeras.errors import ConfigError, DmkerasError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "IDX_FILES", "CLASSES_FILE", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIRS",
           "read_idx", "read_images", "read_labels", "read_pair", "folder_files", "read_folder", "read_class_names",
           "find_fashion_mnist"]

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: count, rows, cols
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: count
_UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32",
               0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"

# The four files of an MNIST-format folder, by role (each as NAME.gz or NAME).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES_FILE = "classes.txt"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
# Searched after --data_dir: Debian's dataset-fashion-mnist package, then Keras' download cache.
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "~/.keras/datasets/fashion-mnist")


# --------------------------------------------------------------------------------------------
# one file


def _read_bytes(path: str) -> tuple[bytearray, bool]:
    """The file's bytes (gunzipped when it starts with the gzip magic) and whether it was gzipped."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DmkerasError(f"cannot read IDX file {path}: {e.strerror or e}") from e
    if raw[:2] != _GZIP_MAGIC:
        return bytearray(raw), False
    try:
        return bytearray(gzip.decompress(raw)), True
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DmkerasError(f"{path}: bad gzip stream ({type(e).__name__}: {e})") from e


def read_idx(path: str, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file whose magic number is 0x000008<ndim> (gzipped or not)."""
    path = os.fspath(path)
    data, gzipped = _read_bytes(path)
    content = "decompressed data" if gzipped else "file"
    if len(data) < 4:
        raise DmkerasError(f"{path}: {len(data)} byte(s), too short for an IDX header ({content})")
    magic = int.from_bytes(data[:4], "big")
    expected = (_UBYTE << 8) | ndim
    if data[0] or data[1]:
        raise DmkerasError(f"{path}: not an IDX file (magic number 0x{magic:08X}, expected 0x{expected:08X})")
    if data[2] != _UBYTE:
        kind = _TYPE_NAMES.get(data[2], "unknown")
        raise DmkerasError(f"{path}: IDX data type byte 0x{data[2]:02X} ({kind}), expected 0x08 (unsigned byte)")
    if data[3] != ndim:
        raise DmkerasError(f"{path}: IDX file of {data[3]} dimension(s) (magic number 0x{magic:08X}), expected {ndim} "
                           f"(magic number 0x{expected:08X})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DmkerasError(f"{path}: truncated: {len(data)} bytes, too short for the {ndim} dimension sizes of the "
                           f"IDX header ({content})")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big", signed=True) for i in range(ndim))
    if any(d < 0 for d in dims):
        raise DmkerasError(f"{path}: negative dimension size in the IDX header: {dims}")
    size = int(np.prod(dims, dtype=object))
    shape = "x".join(str(d) for d in dims)
    got = len(data) - header
    if got < size:
        raise DmkerasError(f"{path}: truncated: the header declares {shape} = {size} bytes of data, "
                           f"the {content} has {got}")
    if got > size:
        raise DmkerasError(f"{path}: {got - size} trailing byte(s) after the {shape} = {size} bytes of data the header "
                           "declares")
    return np.frombuffer(data, np.uint8, count=size, offset=header).reshape(dims)


def read_images(path: str) -> np.ndarray:
    """uint8 (count, rows, cols) of an IDX images file (magic 0x00000803)."""
    return read_idx(path, 3)


def read_labels(path: str) -> np.ndarray:
    """uint8 (count,) of an IDX labels file (magic 0x00000801)."""
    return read_idx(path, 1)


def read_pair(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of one split; their counts must agree."""
    x, y = read_images(images_path), read_labels(labels_path)
    if x.shape[0] != y.shape[0]:
        raise DmkerasError(f"{labels_path}: {y.shape[0]} labels but {images_path} has {x.shape[0]} images")
    return x, y


# --------------------------------------------------------------------------------------------
# a dataset folder


def _present(folder: str) -> dict[str, str]:
    """Role -> path of the IDX files `folder` has (NAME.gz preferred over NAME)."""
    found = {}
    for role, name in IDX_FILES.items():
        for candidate in (name + ".gz", name):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                found[role] = path
                break
    return found


def folder_files(folder: str, what: str = "idx") -> dict[str, str]:
    """Role -> path of the four IDX files of `folder`; DmkerasError when the folder or a file is missing."""
    if not os.path.isdir(folder):
        raise DmkerasError(f"{what}: IDX folder {folder} does not exist or is not a folder")
    found = _present(folder)
    missing = [name for role, name in IDX_FILES.items() if role not in found]
    if missing:
        raise DmkerasError(f"{what}: IDX folder {folder} is missing {', '.join(missing)} (.gz or plain)")
    return found


def read_folder(folder: str, what: str = "idx") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of an MNIST-format folder: uint8 (N, rows, cols) and (N,)."""
    files = folder_files(folder, what)
    x_train, y_train = read_pair(files["train_images"], files["train_labels"])
    x_test, y_test = read_pair(files["test_images"], files["test_labels"])
    return x_train, y_train, x_test, y_test


def read_class_names(folder: str) -> list[str] | None:
    """The names in `folder`/classes.txt (one per line, blank lines skipped), or None without the file."""
    path = os.path.join(folder, CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8-sig") as f:
            names = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise DmkerasError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise DmkerasError(f"cannot read {path}: {e.strerror or e}") from e
    names = [n for n in names if n]
    if not names:
        raise DmkerasError(f"{path} names no class (expected one class name per line)")
    seen = set()
    for n in names:
        if n in seen:
            raise DmkerasError(f"{path} names class {n!r} twice")
        seen.add(n)
    return names


def find_fashion_mnist(data_dir: str | None = None) -> str:
    """The first folder with Fashion-MNIST's four IDX files: `data_dir`, `data_dir`/fashion-mnist,
    then FASHION_MNIST_DIRS (read at call time); DmkerasError saying how to get them otherwise."""
    candidates = []
    if data_dir:
        base = os.path.expanduser(os.fspath(data_dir))
        candidates += [base, os.path.join(base, "fashion-mnist")]
    candidates += [os.path.expanduser(d) for d in FASHION_MNIST_DIRS]
    partial = []
    for folder in candidates:
        if not os.path.isdir(folder):
            continue
        found = _present(folder)
        if len(found) == len(IDX_FILES):
            return folder
        if found:
            missing = [name for role, name in IDX_FILES.items() if role not in found]
            partial.append(f"{folder} lacks {', '.join(missing)}")
    names = [name + ".gz" for name in IDX_FILES.values()]
    note = f" ({'; '.join(partial)})" if partial else ""
    raise ConfigError(
        f"fashion_mnist: the IDX files are not in {', '.join(candidates)}{note}; install them with "
        f"`apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or put {', '.join(names[:-1])} and {names[-1]} "
        "in data_dir",
        ("data_dir",),
    )
