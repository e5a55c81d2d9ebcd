"""Tests for dmkeras.data.idx (IDX files) and the fashion_mnist / idx:DIR sources."""

import gzip
import json
import os
import struct

import numpy as np
import pytest

from dmkeras.data import idx
from dmkeras.data.sources import load_source
from dmkeras.errors import DmkerasError
from tests.helpers import random_images

NAMES = idx.IDX_FILES
REAL_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def idx_bytes(array, magic=None) -> bytes:
    a = np.asarray(array, np.uint8)
    magic = (0x08 << 8 | a.ndim) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{a.ndim}i", *a.shape) + a.tobytes()


def write(path, data: bytes, gz: bool):
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def make_arrays(n_train=20, n_test=8, shape=(7, 5), num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        train_images=random_images(rng, n_train, shape),
        train_labels=rng.permutation(np.arange(n_train) % num_classes).astype(np.uint8),
        test_images=random_images(rng, n_test, shape),
        test_labels=(np.arange(n_test) % num_classes).astype(np.uint8),
    )


def write_folder(folder, gz=True, classes=None, **kwargs):
    """An MNIST-format folder; gz: True, False or a dict role -> bool. Returns the arrays."""
    os.makedirs(folder, exist_ok=True)
    arrays = make_arrays(**kwargs)
    for role, name in NAMES.items():
        zipped = gz[role] if isinstance(gz, dict) else gz
        write(os.path.join(folder, name + (".gz" if zipped else "")), idx_bytes(arrays[role]), zipped)
    if classes is not None:
        with open(os.path.join(folder, "classes.txt"), "w") as f:
            f.write("\n".join(classes) + "\n")
    return arrays


def assert_split_equals(data, arrays):
    np.testing.assert_array_equal(data.x_train[..., 0], arrays["train_images"])
    np.testing.assert_array_equal(data.x_test[..., 0], arrays["test_images"])
    np.testing.assert_array_equal(data.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])


# --------------------------------------------------------------------------------------------
# the reader


@pytest.mark.parametrize("gz", [True, False])
def test_read_round_trips_exactly(tmp_path, gz):
    arrays = make_arrays(shape=(28, 28))
    images = write(tmp_path / "images", idx_bytes(arrays["train_images"]), gz)
    labels = write(tmp_path / "labels", idx_bytes(arrays["train_labels"]), gz)
    x, y = idx.read_pair(images, labels)
    assert x.dtype == np.uint8 and x.shape == (20, 28, 28) and y.dtype == np.uint8 and y.shape == (20,)
    np.testing.assert_array_equal(x, arrays["train_images"])
    np.testing.assert_array_equal(y, arrays["train_labels"])
    np.testing.assert_array_equal(idx.read_images(images), arrays["train_images"])
    np.testing.assert_array_equal(idx.read_labels(labels), arrays["train_labels"])


def test_gzip_is_told_by_its_magic_not_by_the_name(tmp_path):
    x = make_arrays()["train_images"]
    np.testing.assert_array_equal(idx.read_images(write(tmp_path / "plain.gz", idx_bytes(x), gz=False)), x)
    np.testing.assert_array_equal(idx.read_images(write(tmp_path / "zipped.idx", idx_bytes(x), gz=True)), x)


def test_rows_and_columns_keep_their_order(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = idx.read_images(write(tmp_path / "x", idx_bytes(x), gz=False))
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, x)


# --------------------------------------------------------------------------------------------
# idx:DIR


@pytest.mark.parametrize("gz", [True, False, {"train_images": True, "train_labels": False,
                                              "test_images": False, "test_labels": True}],
                         ids=["gz", "plain", "mixed"])
def test_idx_folder_loads(tmp_path, gz):
    arrays = write_folder(tmp_path / "mnist", gz=gz)
    data = load_source(f"idx:{tmp_path / 'mnist'}")
    assert data.name == "idx"
    assert data.x_train.shape == (20, 7, 5, 1) and data.x_test.shape == (8, 7, 5, 1)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    assert data.x_train.flags.writeable
    assert_split_equals(data, arrays)
    assert data.num_classes == 10
    assert data.class_names == [str(i) for i in range(10)]
    assert data.y_train_clean is None and data.x_val is None
    x = arrays["train_images"].astype(np.float64) / 255
    assert len(data.mean) == len(data.std) == 1
    assert data.mean[0] == pytest.approx(x.mean(), rel=1e-9)
    assert data.std[0] == pytest.approx(x.std(), rel=1e-9)


def test_idx_folder_class_names_from_classes_txt(tmp_path):
    names = ["zero", "one", "two", "three", "four", "five"]
    write_folder(tmp_path, classes=names, num_classes=4)
    data = load_source(f"idx:{tmp_path}")
    assert data.num_classes == 6 and data.class_names == names  # classes.txt says how many classes there are
    data = load_source(f"idx:{tmp_path}", num_classes=8)
    assert data.class_names == names + ["6", "7"]


def test_idx_folder_without_classes_txt_counts_max_label_plus_one(tmp_path):
    write_folder(tmp_path, num_classes=3)
    data = load_source(f"idx:{tmp_path}")
    assert data.num_classes == 3 and data.class_names == ["0", "1", "2"]
    with pytest.raises(DmkerasError, match=r"labels must lie in \[0, 2\), got 2 \(6 samples\); first at index 1"):
        load_source(f"idx:{tmp_path}", num_classes=2)


def test_idx_folder_classes_txt_naming_too_few_classes(tmp_path):
    write_folder(tmp_path, classes=["a", "b"], num_classes=4)
    with pytest.raises(DmkerasError, match="train-labels-idx1-ubyte.gz: label 3 but .*classes.txt names 2 classes"):
        load_source(f"idx:{tmp_path}")


def test_idx_folder_bad_classes_txt(tmp_path):
    write_folder(tmp_path, classes=["a", "b", "a"], num_classes=3)
    with pytest.raises(DmkerasError, match="classes.txt names class 'a' twice"):
        load_source(f"idx:{tmp_path}")
    (tmp_path / "classes.txt").write_text("\n\n")
    with pytest.raises(DmkerasError, match="classes.txt names no class"):
        load_source(f"idx:{tmp_path}")


def test_idx_folder_missing_or_missing_files(tmp_path):
    with pytest.raises(DmkerasError, match="does not exist or is not a folder"):
        load_source(f"idx:{tmp_path / 'nowhere'}")
    write_folder(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DmkerasError, match=r"is missing t10k-labels-idx1-ubyte \(.gz or plain\)"):
        load_source(f"idx:{tmp_path}")


def test_idx_folder_refuses_data_dir_and_an_empty_path(tmp_path):
    write_folder(tmp_path)
    with pytest.raises(DmkerasError, match="data_dir only applies to 'tfds:NAME' and 'fashion_mnist'"):
        load_source(f"idx:{tmp_path}", data_dir=str(tmp_path))
    with pytest.raises(DmkerasError, match="IDX files: 'fashion_mnist' or 'idx:DIR'"):
        load_source("idx:")


def test_idx_folder_train_and_test_image_sizes_must_agree(tmp_path):
    write_folder(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((8, 5, 7), np.uint8)), gz=True)
    with pytest.raises(DmkerasError, match=r"train images have shape \(7, 5, 1\) but test images \(5, 7, 1\)"):
        load_source(f"idx:{tmp_path}")


# --------------------------------------------------------------------------------------------
# corrupt files: one DmkerasError of one line naming the file


def _good(role):
    return idx_bytes(make_arrays()[role])


def _flip_middle(data: bytes) -> bytes:
    zipped = bytearray(gzip.compress(data))
    zipped[len(zipped) // 2] ^= 0xFF
    return bytes(zipped)


CORRUPTIONS = {
    # case: (role, file content written as it is, expected message)
    "truncated gzip": ("train_images", lambda: gzip.compress(_good("train_images"))[:-12], "bad gzip stream"),
    "corrupt gzip": ("test_images", lambda: _flip_middle(_good("test_images")), "bad gzip stream"),
    "too few bytes": ("train_images", lambda: _good("train_images")[:-3],
                      r"truncated: the header declares 20x7x5 = 700 bytes of data, the file has 697"),
    "too few bytes gz": ("test_labels", lambda: gzip.compress(_good("test_labels")[:-1]),
                         r"truncated: .* = 8 bytes of data, the decompressed data has 7"),
    "trailing bytes": ("train_labels", lambda: _good("train_labels") + b"\x00\x00", r"2 trailing byte\(s\)"),
    "trailing bytes gz": ("test_images", lambda: gzip.compress(_good("test_images") + b"\x07"), r"1 trailing byte\(s\)"),
    "wrong magic": ("train_images", lambda: b"PK" + _good("train_images")[2:],
                    r"not an IDX file \(magic number 0x504B0803, expected 0x00000803\)"),
    "wrong data type": ("train_labels", lambda: b"\x00\x00\x0d\x01" + _good("train_labels")[4:],
                        r"data type byte 0x0D \(float32\), expected 0x08 \(unsigned byte\)"),
    "labels as images": ("test_images", lambda: _good("test_labels"), r"1 dimension\(s\) .*expected 3"),
    "images as labels": ("train_labels", lambda: _good("train_images"), r"3 dimension\(s\) .*expected 1"),
    "empty file": ("train_images", lambda: b"", r"0 byte\(s\), too short for an IDX header"),
    "short header": ("test_images", lambda: b"\x00\x00\x08\x03\x00\x00\x00\x08", "too short for the 3 dimension sizes"),
    "negative size": ("train_labels", lambda: b"\x00\x00\x08\x01\xff\xff\xff\xff", "negative dimension size"),
    "counts disagree": ("train_labels", lambda: idx_bytes(make_arrays()["train_labels"][:-1]),
                        "19 labels but .*train-images-idx3-ubyte has 20 images"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_file_is_one_line_naming_it(tmp_path, case):
    role, content, message = CORRUPTIONS[case]
    write_folder(tmp_path, gz=False)
    path = tmp_path / NAMES[role]
    path.write_bytes(content())
    with pytest.raises(DmkerasError, match=message) as info:
        load_source(f"idx:{tmp_path}")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(path))  # the file is named first


def test_unreadable_file(tmp_path):
    os.mkdir(tmp_path / "dir")
    with pytest.raises(DmkerasError, match=f"cannot read IDX file {tmp_path / 'dir'}"):
        idx.read_images(tmp_path / "dir")


def test_empty_split(tmp_path):
    write_folder(tmp_path, gz=False)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((0, 7, 5), np.uint8)), gz=False)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(0, np.uint8)), gz=False)
    with pytest.raises(DmkerasError, match="t10k-images-idx3-ubyte: split is empty"):
        load_source(f"idx:{tmp_path}")


# --------------------------------------------------------------------------------------------
# fashion_mnist: search order, missing files


@pytest.fixture
def search(tmp_path, monkeypatch):
    """Default folders in tmp_path: system/ (as Debian's) then home/.keras/datasets/fashion-mnist
    (via ~, as Keras' cache)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", (str(tmp_path / "system"), "~/.keras/datasets/fashion-mnist"))
    return dict(system=tmp_path / "system", keras=tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist",
                data=tmp_path / "data")


def test_fashion_mnist_search_order(search):
    keras = write_folder(search["keras"], seed=1)
    data = load_source("fashion_mnist")
    assert data.name == "fashion_mnist"
    assert data.class_names == list(idx.FASHION_MNIST_CLASSES) and data.num_classes == 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[-1] == "Ankle boot"
    assert_split_equals(data, keras)

    system = write_folder(search["system"], seed=2, gz=False)
    assert_split_equals(load_source("fashion_mnist"), system)

    nested = write_folder(search["data"] / "fashion-mnist", seed=3)
    assert_split_equals(load_source("fashion_mnist", data_dir=str(search["data"])), nested)
    assert_split_equals(load_source("fashion_mnist"), system)  # without data_dir: the default folders

    direct = write_folder(search["data"], seed=4)
    assert_split_equals(load_source("fashion_mnist", data_dir=str(search["data"])), direct)


def test_fashion_mnist_data_dir_without_the_files_falls_back(search):
    system = write_folder(search["system"], seed=2)
    os.makedirs(search["data"])
    assert_split_equals(load_source("fashion_mnist", data_dir=str(search["data"])), system)


def test_fashion_mnist_incomplete_folder_is_skipped(search):
    write_folder(search["system"], seed=2)
    os.remove(search["system"] / "train-labels-idx1-ubyte.gz")
    keras = write_folder(search["keras"], seed=1)
    assert_split_equals(load_source("fashion_mnist"), keras)


def test_fashion_mnist_missing_files_say_how_to_get_them(search):
    write_folder(search["system"])
    os.remove(search["system"] / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DmkerasError) as info:
        load_source("fashion_mnist", data_dir=str(search["data"]))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("fashion_mnist: the IDX files are not in ")
    for folder in (search["data"], search["data"] / "fashion-mnist", search["system"], search["keras"]):
        assert str(folder) in text
    assert f"({search['system']} lacks t10k-images-idx3-ubyte)" in text
    assert "apt-get install dataset-fashion-mnist" in text and "(Debian/Ubuntu)" in text
    assert ("put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz in data_dir") in text
    assert info.value.as_flags().endswith("in --data_dir")  # the command line names its flag


def test_fashion_mnist_labels_beyond_ten_classes(search):
    write_folder(search["system"], num_classes=11)
    with pytest.raises(DmkerasError, match=r"fashion_mnist train: labels must lie in \[0, 10\), got 10 \(1 sample\)"):
        load_source("fashion_mnist")


def test_unknown_spec_lists_the_idx_forms():
    with pytest.raises(DmkerasError, match="IDX files: 'fashion_mnist' or 'idx:DIR', or image files"):
        load_source("fashion-mnist")


# --------------------------------------------------------------------------------------------
# the real files


def _require_real_files():
    try:
        idx.folder_files(REAL_DIR)
    except DmkerasError as e:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but Fashion-MNIST's IDX files are missing ({e}); install dataset-fashion-mnist")
        pytest.skip(f"Fashion-MNIST's IDX files are not installed ({e})")


def test_real_fashion_mnist_loads_and_trains(tmp_path, monkeypatch):
    _require_real_files()
    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", (REAL_DIR,))
    data = load_source("fashion_mnist")
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert data.x_train.dtype == np.uint8
    assert data.num_classes == 10 and data.class_names == list(idx.FASHION_MNIST_CLASSES)
    np.testing.assert_array_equal(np.bincount(data.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test), [1000] * 10)
    assert abs(data.mean[0] - 0.2860) < 1e-3 and abs(data.std[0] - 0.3530) < 1e-3
    del data

    from dmkeras import experiment
    from dmkeras.config import TrainConfig

    workdir = tmp_path / "run"
    config = TrainConfig(dataset="fashion_mnist", train_limit=600, test_limit=200, backbone="small_cnn",
                         backbone_args="width=8", epochs=2, warm_up=1, batch_size=32, noise_mode="sym",
                         noise_rate=0.5, workdir=str(workdir), verbose=0)
    summary = experiment.run(config)
    assert summary["epochs"] == 2
    with open(workdir / "dataset.json") as f:
        info = json.load(f)
    assert info["name"] == "fashion_mnist" and info["class_names"] == list(idx.FASHION_MNIST_CLASSES)
    assert info["image_shape"] == [28, 28, 1] and info["num_train"] == 600 and info["num_test"] == 200
