"""Tests for dmkeras.data.sources (digits, npz and tensorflow-datasets sources)."""

import numpy as np
import pytest

from dmkeras.data.sources import CIFAR10_N_LABELS, SplitData, load_source
from dmkeras.errors import DmkerasError
from tests.helpers import random_images

CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)


# --------------------------------------------------------------------------------------------
# digits


@pytest.fixture(scope="module")
def digits():
    return load_source("digits")


def test_digits_shapes_and_types(digits):
    assert isinstance(digits, SplitData)
    assert digits.name == "digits"
    assert digits.x_train.shape == (1500, 8, 8, 1)
    assert digits.x_test.shape == (297, 8, 8, 1)
    assert digits.image_shape == (8, 8, 1)
    assert digits.x_train.dtype == np.uint8 and digits.x_test.dtype == np.uint8
    assert digits.y_train.dtype == np.int64 and digits.y_test.dtype == np.int64
    assert digits.y_train.shape == (1500,) and digits.y_test.shape == (297,)
    assert digits.x_train.max() == 255 and digits.x_train.min() == 0
    assert digits.num_classes == 10
    assert digits.class_names == [str(i) for i in range(10)]
    assert digits.y_train_clean is None


def test_digits_pixels_are_rounded_sixteenths(digits):
    from sklearn.datasets import load_digits

    values = np.unique(np.concatenate([digits.x_train.ravel(), digits.x_test.ravel()]))
    expected = np.round(np.arange(17) * 255 / 16).astype(np.uint8)
    assert set(values.tolist()) <= set(expected.tolist())
    # the union of train and test is the whole data set
    raw = load_digits()
    assert len(digits.y_train) + len(digits.y_test) == len(raw.target) == 1797
    np.testing.assert_array_equal(
        np.bincount(np.concatenate([digits.y_train, digits.y_test])), np.bincount(raw.target)
    )


def test_digits_split_is_stratified(digits):
    from sklearn.datasets import load_digits

    y = load_digits().target
    fraction = np.bincount(y) / len(y)
    test_counts = np.bincount(digits.y_test, minlength=10)
    assert np.all(np.abs(test_counts - 297 * fraction) <= 1)


def test_digits_is_deterministic(digits):
    again = load_source("digits")
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_train, digits.y_train)
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    np.testing.assert_array_equal(again.y_test, digits.y_test)


def test_digits_normalisation_is_computed(digits):
    x = digits.x_train.astype(np.float64) / 255
    assert len(digits.mean) == len(digits.std) == 1
    assert digits.mean[0] == pytest.approx(x.mean(), rel=1e-9)
    assert digits.std[0] == pytest.approx(x.std(), rel=1e-9)


# --------------------------------------------------------------------------------------------
# npz


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def small_arrays(n_train=12, n_test=6, shape=(5, 4, 3), num_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x_train=random_images(rng, n_train, shape),
        y_train=rng.permutation(np.arange(n_train) % num_classes).astype(np.int32),  # every class has samples
        x_test=random_images(rng, n_test, shape),
        y_test=rng.integers(0, num_classes, n_test).astype(np.int32),
    )


def test_npz_round_trip_with_clean_labels(tmp_path):
    arrays = small_arrays()
    arrays["y_train"][0] = 3  # make sure max label is 3 -> 4 classes
    arrays["y_train_clean"] = (arrays["y_train"] + 1) % 4
    spec = write_npz(tmp_path / "toy.npz", **arrays)
    data = load_source(spec)
    assert data.name == "toy"
    np.testing.assert_array_equal(data.x_train, arrays["x_train"])
    np.testing.assert_array_equal(data.x_test, arrays["x_test"])
    np.testing.assert_array_equal(data.y_train, arrays["y_train"])
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    np.testing.assert_array_equal(data.y_train_clean, arrays["y_train_clean"])
    assert data.y_train.dtype == np.int64 and data.y_train_clean.dtype == np.int64
    assert data.num_classes == 4
    assert data.image_shape == (5, 4, 3)
    # computed per-channel constants
    x = arrays["x_train"].astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, x.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(data.std, x.std(axis=(0, 1, 2)), rtol=1e-9)


def test_npz_num_classes_from_max_label_over_train_and_test_or_given(tmp_path):
    arrays = small_arrays(num_classes=7)
    arrays["y_train"][arrays["y_train"] == 6] = 5  # class 6 only in the test split: counted
    arrays["y_test"][-1] = 6
    spec = write_npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DmkerasError, match="no training sample has label 6 although the labels go up to 6"):
        load_source(spec)  # ... but a class without any training sample is refused
    assert load_source(spec, num_classes=10).num_classes == 10
    with pytest.raises(DmkerasError, match="train: labels must lie in \\[0, 5\\), got 5 \\(2 samples\\); first at index 0"):
        load_source(spec, num_classes=5)


def test_npz_float_images_in_unit_range(tmp_path):
    arrays = small_arrays()
    xf = np.linspace(0, 1, arrays["x_train"].size).reshape(arrays["x_train"].shape).astype(np.float32)
    arrays["x_train"] = xf
    arrays["x_test"] = np.full(arrays["x_test"].shape, 0.5, np.float64)
    data = load_source(write_npz(tmp_path / "f.npz", **arrays))
    assert data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.x_train, np.round(xf.astype(np.float64) * 255).astype(np.uint8))
    assert data.x_train.min() == 0 and data.x_train.max() == 255
    assert np.all(data.x_test == 128)  # round(127.5) -> 128 (round half to even)


def test_npz_grayscale_without_channel_axis(tmp_path):
    arrays = small_arrays(shape=(6, 7))
    data = load_source(write_npz(tmp_path / "g.npz", **arrays))
    assert data.x_train.shape == (12, 6, 7, 1) and data.x_test.shape == (6, 6, 7, 1)
    np.testing.assert_array_equal(data.x_train[..., 0], arrays["x_train"])
    assert len(data.mean) == 1


def test_npz_constant_channel_gets_std_floor(tmp_path):
    arrays = small_arrays(shape=(3, 3, 1))
    arrays["x_train"][:] = 7
    data = load_source(write_npz(tmp_path / "c.npz", **arrays))
    assert data.std == (1e-3,)
    assert data.mean[0] == pytest.approx(7 / 255)


@pytest.mark.parametrize("key", ["x_train", "y_train", "x_test", "y_test"])
def test_npz_missing_key(tmp_path, key):
    arrays = small_arrays()
    del arrays[key]
    with pytest.raises(DmkerasError, match=f"missing key '{key}'"):
        load_source(write_npz(tmp_path / "m.npz", **arrays))


def test_npz_missing_file(tmp_path):
    with pytest.raises(DmkerasError, match="does not exist"):
        load_source(f"npz:{tmp_path / 'nope.npz'}")


def test_npz_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(DmkerasError, match="cannot read npz"):
        load_source(f"npz:{path}")


def test_npz_object_arrays_are_refused(tmp_path):
    arrays = small_arrays()
    arrays["y_train"] = np.array([1, "a"] * 6, dtype=object)
    with pytest.raises(DmkerasError, match="cannot read npz"):
        load_source(write_npz(tmp_path / "o.npz", **arrays))


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("y_train", np.zeros(11, np.int64), "train split: 12 images but 11 labels"),
        ("y_test", np.zeros(7, np.int64), "test split: 6 images but 7 labels"),
        ("y_train_clean", np.zeros(13, np.int64), "train split: 12 images but 13 clean labels"),
        ("x_train", np.zeros((12, 5), np.uint8), "shape \\(N,H,W\\) or \\(N,H,W,C\\), got \\(12, 5\\)"),
        ("x_test", np.zeros((6, 5, 4, 3, 1), np.uint8), "got \\(6, 5, 4, 3, 1\\)"),
        ("x_train", np.zeros((12, 5, 4, 2), np.uint8), "1 or 3 channels, got 2"),
        ("x_test", np.zeros((6, 5, 4, 1), np.uint8), "train images have shape \\(5, 4, 3\\) but test images \\(5, 4, 1\\)"),
        ("x_train", np.zeros((12, 5, 4, 3), np.int16), "uint8 or float in \\[0, 1\\], got dtype int16"),
        ("x_train", np.full((12, 5, 4, 3), 2.0), "float images must be in \\[0, 1\\]"),
        ("x_train", np.full((12, 5, 4, 3), np.nan), "NaN"),
        ("y_train", np.zeros((12, 1), np.int64), "1-D array, got shape \\(12, 1\\)"),
        ("y_train", np.zeros(12, np.float32), "integers, got dtype float32"),
        ("x_train", np.zeros((0, 5, 4, 3), np.uint8), "x_train: split is empty"),
        ("y_test", np.zeros(0, np.int64), "y_test: split is empty"),
    ],
)
def test_npz_bad_content(tmp_path, key, value, match):
    arrays = small_arrays()
    arrays[key] = value
    with pytest.raises(DmkerasError, match=match):
        load_source(write_npz(tmp_path / "bad.npz", **arrays))


def test_npz_labels_out_of_range(tmp_path):
    arrays = small_arrays()
    arrays["y_train"][[2, 5]] = [-1, -3]
    with pytest.raises(DmkerasError, match="y_train: labels must lie in \\[0, 4\\), got -3 \\(1 sample\\), -1 \\(1 sample\\); first at index 2"):
        load_source(write_npz(tmp_path / "neg.npz", **arrays))
    arrays = small_arrays()
    arrays["y_train"][4] = 9
    with pytest.raises(DmkerasError, match="train: labels must lie in \\[0, 4\\), got 9 \\(1 sample\\); first at index 4"):
        load_source(write_npz(tmp_path / "big.npz", **arrays), num_classes=4)
    arrays = small_arrays()
    arrays["y_train_clean"] = np.full(12, 4)
    with pytest.raises(DmkerasError, match="clean labels: labels must lie in \\[0, 4\\), got "):
        load_source(write_npz(tmp_path / "clean.npz", **arrays), num_classes=4)


# --------------------------------------------------------------------------------------------
# spec handling


@pytest.mark.parametrize("spec", ["cifar10", "digits:", "npz:", "tfds:", "mnist", "", "DIGITS"])
def test_unknown_spec(spec):
    with pytest.raises(DmkerasError, match="expected 'digits', 'npz:PATH' or 'tfds:NAME'"):
        load_source(spec)


def test_tfds_options_refused_for_other_sources():
    with pytest.raises(DmkerasError, match="tfds_label"):
        load_source("digits", tfds_label="worse_label")
    with pytest.raises(DmkerasError, match="data_dir"):
        load_source("digits", data_dir="/tmp")
    with pytest.raises(DmkerasError, match="num_classes"):
        load_source("digits", num_classes=0)
    with pytest.raises(DmkerasError, match="labels must lie in \\[0, 5\\), got "):
        load_source("digits", num_classes=5)


# --------------------------------------------------------------------------------------------
# tensorflow-datasets (mocked: no download)


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets")


def test_tfds_cifar10_mock(tfds):
    with tfds.testing.mock_data(num_examples=9):
        data = load_source("tfds:cifar10")
    assert data.name == "cifar10"
    assert data.x_train.shape == (9, 32, 32, 3) and data.x_test.shape == (9, 32, 32, 3)
    assert data.x_train.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_train.shape == (9,)
    assert data.num_classes == 10
    assert data.mean == CIFAR10_MEAN and data.std == CIFAR10_STD
    assert data.y_train_clean is None
    assert len(data.class_names) == 10
    assert np.all((data.y_train >= 0) & (data.y_train < 10))


@pytest.mark.parametrize("label", [None, *CIFAR10_N_LABELS])
def test_tfds_cifar10_n_mock(tfds, label):
    with tfds.testing.mock_data(num_examples=7):
        data = load_source("tfds:cifar10_n", tfds_label=label)
    assert data.name == "cifar10_n"
    assert data.x_train.shape == (7, 32, 32, 3)
    assert data.num_classes == 10
    assert data.mean == CIFAR10_MEAN and data.std == CIFAR10_STD
    assert data.y_train_clean is not None and data.y_train_clean.shape == (7,)
    assert data.y_train_clean.dtype == np.int64
    assert np.all((data.y_test >= 0) & (data.y_test < 10))  # test uses the clean label, not -1


def test_tfds_cifar10_n_columns_are_selected(tfds, monkeypatch):
    # feed known columns through a fake tfds.load to check which one becomes which label
    import tensorflow as tf

    n = 6
    cols = {k: np.full(n, i, np.int64) for i, k in enumerate(CIFAR10_N_LABELS)}
    train = {"image": np.zeros((n, 32, 32, 3), np.uint8), "label": np.full(n, 9, np.int64), **cols}
    test = {"image": np.ones((4, 32, 32, 3), np.uint8), "label": np.full(4, 8, np.int64),
            **{k: np.full(4, -1, np.int64) for k in CIFAR10_N_LABELS}}
    real_builder = tfds.builder("cifar10_n")

    def fake_load(name, split, batch_size, data_dir, with_info):
        dss = [tf.data.Dataset.from_tensor_slices(d).batch(batch_size) for d in (train, test)]
        return dss, real_builder.info

    monkeypatch.setattr(tfds, "load", fake_load)
    data = load_source("tfds:cifar10_n")
    np.testing.assert_array_equal(data.y_train, cols["worse_label"])
    for i, k in enumerate(CIFAR10_N_LABELS):
        data = load_source("tfds:cifar10_n", tfds_label=k)
        np.testing.assert_array_equal(data.y_train, np.full(n, i))
        np.testing.assert_array_equal(data.y_train_clean, np.full(n, 9))
        np.testing.assert_array_equal(data.y_test, np.full(4, 8))


def test_tfds_cifar100_n_mock(tfds):
    with tfds.testing.mock_data(num_examples=5):
        data = load_source("tfds:cifar100_n")
    assert data.name == "cifar100_n"
    assert data.num_classes == 100
    assert data.mean == CIFAR100_MEAN and data.std == CIFAR100_STD
    assert data.y_train_clean is not None and data.y_train_clean.shape == (5,)


def test_tfds_generic_dataset_mock_computes_normalisation(tfds):
    with tfds.testing.mock_data(num_examples=4):
        data = load_source("tfds:mnist")
    assert data.x_train.shape == (4, 28, 28, 1)
    assert data.num_classes == 10
    x = data.x_train.astype(np.float64) / 255
    assert data.mean[0] == pytest.approx(x.mean())
    assert data.std[0] == pytest.approx(max(x.std(), 1e-3))


def test_tfds_bad_labels_and_names(tfds):
    with pytest.raises(DmkerasError, match="tfds_label for cifar10_n must be one of"):
        load_source("tfds:cifar10_n", tfds_label="noise_label")
    with pytest.raises(DmkerasError, match="tfds_label for cifar100_n must be 'noise_label'"):
        load_source("tfds:cifar100_n", tfds_label="worse_label")
    with pytest.raises(DmkerasError, match="has no label feature 'fine'"):
        load_source("tfds:cifar100", tfds_label="fine")
    with pytest.raises(DmkerasError, match="is not a class label"):
        load_source("tfds:cifar10", tfds_label="id")
    with pytest.raises(DmkerasError, match="unknown tensorflow-datasets dataset 'no_such_dataset_xyz'"):
        load_source("tfds:no_such_dataset_xyz")


def test_tfds_download_failure_is_wrapped(tfds, monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(DmkerasError, match="could not be loaded .*not available offline") as e:
        load_source("tfds:cifar10", data_dir=str(tmp_path))
    assert str(tmp_path) in str(e.value)

    def no_manual(*args, **kwargs):
        raise AssertionError("Manual directory /x does not exist or is empty")

    monkeypatch.setattr(tfds, "load", no_manual)
    with pytest.raises(DmkerasError, match="not available offline.*needs manual data") as e:
        load_source("tfds:cifar10_n", data_dir=str(tmp_path))
    assert str(tmp_path / "downloads" / "manual") in str(e.value)


def test_tfds_ids_restore_the_original_cifar_order():
    # tfds stores CIFAR shuffled; the reference's noise files index the original order
    from dmkeras.data.sources import original_order

    ids = [b"train_00002", b"train_00000", b"train_00010", b"train_00001"]
    order = original_order(ids)
    assert [ids[i] for i in order] == [b"train_00000", b"train_00001", b"train_00002", b"train_00010"]
    assert original_order([b"x7f3a", b"train_1"]) is None  # not all numbered: keep the stored order
    assert original_order([b"train_1", b"train_1"]) is None


def test_a_stray_label_that_leaves_classes_empty_is_an_error_naming_the_counts(tmp_path):
    rng = np.random.default_rng(0)
    y_train = np.concatenate([np.arange(10).repeat(3), [12]])  # digits 0-9 and one stray 12
    path = tmp_path / "stray.npz"
    np.savez(path, x_train=random_images(rng, 31), y_train=y_train,
             x_test=random_images(rng, 10), y_test=np.arange(10))
    with pytest.raises(DmkerasError, match=r"no training sample has label 10, 11 although the labels go up to 12 \(label: count = 0: 3, .*, 9: 3, 12: 1\)"):
        load_source(f"npz:{path}")
    assert load_source(f"npz:{path}", num_classes=13).num_classes == 13  # an explicit count is the caller's choice
