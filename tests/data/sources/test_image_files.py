"""Image-file sources of dmkeras.data.sources (folder, csv, clothing1m, webvision) and
dmkeras.data.images.read_images, on small trees of scikit-learn digits written as PNG / JPEG."""

import os

import numpy as np
import pytest
import tensorflow as tf

from dmkeras.data.images import read_images
from dmkeras.data.sources import CLOTHING1M_CLASSES, load_source
from dmkeras.errors import DmkerasError


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.round(d.images * 255.0 / 16.0).astype(np.uint8), d.target


def gray(digits, i, scale=2):
    """Digit i upscaled (nearest) from 8x8 to (8*scale)x(8*scale), (H, W, 1) uint8."""
    return np.kron(digits[0][i], np.ones((scale, scale), np.uint8))[..., np.newaxis]


def rgb(digits, i, scale=2):
    g = gray(digits, i, scale)[..., 0]
    return np.stack([g, 255 - g, g // 2], axis=-1)


def write(path, img, fmt=None):
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fmt = fmt or os.path.splitext(path)[1].lower()
    data = tf.io.encode_jpeg(img, quality=95) if fmt in (".jpg", ".jpeg") else tf.io.encode_png(img)
    with open(path, "wb") as f:
        f.write(data.numpy())
    return path


def indices_of(digits, cls, count, skip=0):
    return np.flatnonzero(digits[1] == cls)[skip:skip + count]


def make_class_tree(root, digits, classes, per_class, *, skip=0, rgb_every=0, fmt=".png"):
    """root/<name>/<k>.png for classes {name: digit}; every rgb_every-th image in colour."""
    expected = {}
    for name, cls in classes.items():
        for k, i in enumerate(indices_of(digits, cls, per_class, skip)):
            img = rgb(digits, i) if rgb_every and k % rgb_every == 0 else gray(digits, i)
            write(os.path.join(root, name, f"{k:03d}{fmt}"), img)
            expected[os.path.join(name, f"{k:03d}{fmt}")] = img
    return expected


# --------------------------------------------------------------------------------------------
# folder


def test_folder_hold_out_is_stratified_and_seeded(tmp_path, digits):
    root = tmp_path / "shapes"
    make_class_tree(root, digits, {"zero": 0, "one": 1, "two": 2}, 10, rgb_every=4)
    write(root / "two" / "UPPER.PNG", gray(digits, 2))  # extensions are case-insensitive
    (root / "one" / "notes.txt").write_text("not an image")  # ignored
    (root / "README").write_text("ignored")

    data = load_source(f"folder:{root}", test_fraction=0.2, seed=3)
    assert data.name == "shapes"
    assert data.class_names == ["one", "two", "zero"]
    assert data.num_classes == 3
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.image_shape == (16, 16, 3)  # some images are RGB -> all converted to 3 channels
    assert data.x_train.shape[0] + data.x_test.shape[0] == 31
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=3), [2, 2, 2])  # round(0.2*n)
    np.testing.assert_array_equal(np.bincount(data.y_train, minlength=3), [8, 9, 8])
    x = data.x_train.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, x.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(data.std, x.std(axis=0), rtol=1e-9)
    assert data.y_train_clean is None

    again = load_source(f"folder:{root}", test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.y_train, data.y_train)
    other = load_source(f"folder:{root}", test_fraction=0.2, seed=4)
    assert not np.array_equal(other.x_test, data.x_test)
    np.testing.assert_array_equal(np.bincount(other.y_test, minlength=3), [2, 2, 2])


def test_folder_train_test_layout_round_trips_png_pixels(tmp_path, digits):
    root = tmp_path / "split"
    train = make_class_tree(root / "train", digits, {"a": 3, "b": 5}, 4)
    test = make_class_tree(root / "test", digits, {"a": 3, "b": 5}, 2, skip=4)
    (root / "train" / ".hidden").mkdir()  # hidden folders are not classes

    data = load_source(f"folder:{root}")
    assert data.class_names == ["a", "b"]
    assert data.image_shape == (16, 16, 1)  # all grayscale -> 1 channel
    np.testing.assert_array_equal(data.y_train, [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(data.y_test, [0, 0, 1, 1])
    np.testing.assert_array_equal(data.x_train, np.stack([train[k] for k in sorted(train)]))
    np.testing.assert_array_equal(data.x_test, np.stack([test[k] for k in sorted(test)]))


def test_grayscale_becomes_three_equal_channels_next_to_rgb(tmp_path, digits):
    paths = [write(tmp_path / "g.png", gray(digits, 0)), write(tmp_path / "c.png", rgb(digits, 1))]
    images, kept = read_images(paths)
    assert images.shape == (2, 16, 16, 3) and kept.all()
    np.testing.assert_array_equal(images[0], np.repeat(gray(digits, 0), 3, axis=-1))
    np.testing.assert_array_equal(images[1], rgb(digits, 1))
    forced, _ = read_images(paths[:1], channels=3)
    assert forced.shape == (1, 16, 16, 3)
    one, _ = read_images(paths, channels=1)
    assert one.shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(one[0], gray(digits, 0))


def test_jpeg_is_decoded_approximately(tmp_path, digits):
    img = rgb(digits, 7)
    path = write(tmp_path / "x.jpeg", img)
    images, _ = read_images([path])
    assert images.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(images[0], tf.io.decode_jpeg(tf.io.read_file(path)).numpy())
    assert np.corrcoef(images[0].ravel().astype(float), img.ravel().astype(float))[0, 1] > 0.95


def test_folder_errors(tmp_path, digits):
    with pytest.raises(DmkerasError, match="does not exist"):
        load_source(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DmkerasError, match="no class sub-folders"):
        load_source(f"folder:{tmp_path / 'empty'}")
    make_class_tree(tmp_path / "gap", digits, {"a": 0}, 3)
    (tmp_path / "gap" / "b").mkdir()
    (tmp_path / "gap" / "b" / "x.txt").write_text("no image")
    with pytest.raises(DmkerasError, match=r"class folder .*b has no image files"):
        load_source(f"folder:{tmp_path / 'gap'}")
    make_class_tree(tmp_path / "two", digits, {"a": 0, "b": 1}, 3)
    with pytest.raises(DmkerasError, match=r"outside \[0, 1\)"):
        load_source(f"folder:{tmp_path / 'two'}", num_classes=1)
    with pytest.raises(DmkerasError, match="test_fraction"):
        load_source(f"folder:{tmp_path / 'two'}", test_fraction=1.0)
    with pytest.raises(DmkerasError, match="image_size"):
        load_source(f"folder:{tmp_path / 'two'}", image_size=(0, 4))


def test_folder_test_classes_must_be_training_classes(tmp_path, digits):
    make_class_tree(tmp_path / "r" / "train", digits, {"a": 0, "b": 1}, 3)
    make_class_tree(tmp_path / "r" / "test", digits, {"b": 1, "c": 2}, 2, skip=3)
    with pytest.raises(DmkerasError, match="lacks: c"):
        load_source(f"folder:{tmp_path / 'r'}")


# --------------------------------------------------------------------------------------------
# csv


def test_csv_relative_paths_and_class_names(tmp_path, digits):
    images = tmp_path / "imgs"
    rows, expected = [], {}
    for k, (name, cls) in enumerate([("dog", 0), ("cat", 1), ("emu", 2)] * 5):
        i = indices_of(digits, cls, 5)[k // 3]
        path = write(images / f"{k}.png", gray(digits, i))
        expected[path] = (gray(digits, i), name)
        rows.append(f"../imgs/{k}.png,{name}" if k != 4 else f"{path},{name}")  # one absolute path
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "data.csv").write_text("path,label\n" + "\n".join(rows[:7]) + "\n\n" + "\n".join(rows[7:]) + "\n")

    data = load_source(f"csv:{lists / 'data.csv'}", test_fraction=0.2, seed=1)
    assert data.name == "data"
    assert data.class_names == ["cat", "dog", "emu"] and data.num_classes == 3
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=3), [1, 1, 1])
    # every image keeps its label
    by_bytes = {img.tobytes(): data.class_names.index(name) for img, name in expected.values()}
    for x, y in zip(np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])):
        assert by_bytes[x.tobytes()] == y


def test_csv_integer_labels(tmp_path, digits):
    lines = [f"{write(tmp_path / f'{k}.png', gray(digits, k))},{digits[1][k]}" for k in range(30)]
    (tmp_path / "ints.csv").write_text("\n".join(lines))
    data = load_source(f"csv:{tmp_path / 'ints.csv'}")
    assert data.num_classes == int(digits[1][:30].max()) + 1 == 10
    assert data.class_names == [str(i) for i in range(10)]
    assert sorted(np.concatenate([data.y_train, data.y_test]).tolist()) == sorted(digits[1][:30].tolist())
    with pytest.raises(DmkerasError, match=r"outside \[0, 5\)"):
        load_source(f"csv:{tmp_path / 'ints.csv'}", num_classes=5)


def test_csv_errors(tmp_path, digits):
    write(tmp_path / "a.png", gray(digits, 0))
    (tmp_path / "bad.csv").write_text("path,label\na.png,0\n\na.png\n")
    with pytest.raises(DmkerasError, match="bad.csv line 4: expected 'path,label'"):
        load_source(f"csv:{tmp_path / 'bad.csv'}")
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(DmkerasError, match="lists no images"):
        load_source(f"csv:{tmp_path / 'empty.csv'}")
    with pytest.raises(DmkerasError, match="does not exist"):
        load_source(f"csv:{tmp_path / 'none.csv'}")
    (tmp_path / "gone.csv").write_text("a.png,0\na.png,0\nlost.png,1\nb.png,1\n")
    with pytest.raises(DmkerasError, match=r"2 image file\(s\) do not exist: .*skip_unreadable") as err:
        load_source(f"csv:{tmp_path / 'gone.csv'}", test_fraction=0.5)
    assert str(tmp_path / "lost.png") in str(err.value) and str(tmp_path / "b.png") in str(err.value)


# --------------------------------------------------------------------------------------------
# test_spec


def test_test_spec_overrides_and_maps_class_names(tmp_path, digits):
    make_class_tree(tmp_path / "train", digits, {"a": 0, "b": 1, "c": 2}, 4)
    test_rows = []
    for k, (name, cls) in enumerate([("c", 2), ("b", 1), ("c", 2)]):
        test_rows.append(f"{write(tmp_path / 'held' / f'{k}.png', rgb(digits, indices_of(digits, cls, 9)[5 + k]))},{name}")
    (tmp_path / "test.csv").write_text("\n".join(test_rows))

    data = load_source(f"folder:{tmp_path / 'train'}", test_spec=f"csv:{tmp_path / 'test.csv'}")
    assert data.x_train.shape[0] == 12  # no hold-out
    np.testing.assert_array_equal(data.y_test, [2, 1, 2])  # 'c' -> 2, 'b' -> 1 (training order)
    assert data.image_shape == (16, 16, 3)  # channels decided over train and test together

    make_class_tree(tmp_path / "tf", digits, {"b": 1}, 2, skip=6)
    data = load_source(f"folder:{tmp_path / 'train'}", test_spec=f"folder:{tmp_path / 'tf'}")
    np.testing.assert_array_equal(data.y_test, [1, 1])

    make_class_tree(tmp_path / "odd", digits, {"z": 3}, 2)
    with pytest.raises(DmkerasError, match="lacks: z"):
        load_source(f"folder:{tmp_path / 'train'}", test_spec=f"folder:{tmp_path / 'odd'}")
    with pytest.raises(DmkerasError, match="test_spec must be"):
        load_source(f"folder:{tmp_path / 'train'}", test_spec="digits")


# --------------------------------------------------------------------------------------------
# Clothing1M and WebVision layouts


def write_lines(path, lines):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def make_clothing1m(root, digits, *, clean_for_all_train, num_val=4):
    """Images 0-7 train (noisy labels), 8-11 test, 12 .. 12 + num_val - 1 the clean validation list
    (clean_val_key_list.txt; not written when num_val is 0); true label k % 4."""
    noisy, clean, train_keys, test_keys, val_keys = [], [], [], [], []
    for k in range(12 + num_val):
        key = f"images/{k % 3}/{k}.jpg"
        write(root / key, rgb(digits, k))
        true = k % 4
        if k < 8:
            train_keys.append(key)
            noisy.append(f"{key} {(true + (k % 2)) % 4}")
            if clean_for_all_train or k < 3:
                clean.append(f"{key} {true}")
        else:
            (test_keys if k < 12 else val_keys).append(key)
            clean.append(f"{key} {true}")
    write_lines(root / "noisy_label_kv.txt", noisy)
    write_lines(root / "clean_label_kv.txt", clean)
    write_lines(root / "noisy_train_key_list.txt", train_keys)
    write_lines(root / "clean_test_key_list.txt", test_keys)
    if num_val:
        write_lines(root / "clean_val_key_list.txt", val_keys)


def test_clothing1m_layout(tmp_path, digits):
    make_clothing1m(tmp_path / "c1m", digits, clean_for_all_train=False)
    data = load_source(f"clothing1m:{tmp_path / 'c1m'}")
    assert data.name == "clothing1m" and data.num_classes == 14
    assert data.class_names == list(CLOTHING1M_CLASSES)
    truth = np.arange(12) % 4
    np.testing.assert_array_equal(data.y_train, (truth[:8] + np.arange(8) % 2) % 4)
    np.testing.assert_array_equal(data.y_test, truth[8:])
    assert data.y_train_clean is None  # clean labels for only some training images
    assert data.x_train.shape == (8, 16, 16, 3)

    make_clothing1m(tmp_path / "full", digits, clean_for_all_train=True)
    data = load_source(f"clothing1m:{tmp_path / 'full'}", image_size=(8, 8))
    np.testing.assert_array_equal(data.y_train_clean, truth[:8])
    assert data.image_shape == (8, 8, 3)


def test_clothing1m_clean_val_list_is_the_validation_set(tmp_path, digits, capsys):
    root = tmp_path / "c1m"
    make_clothing1m(root, digits, clean_for_all_train=False, num_val=5)
    data = load_source(f"clothing1m:{root}", image_size=(8, 8))
    np.testing.assert_array_equal(data.y_val, np.arange(12, 17) % 4)  # clean labels, from clean_label_kv.txt
    assert data.x_val.shape == (5, 8, 8, 3) and data.x_val.dtype == np.uint8
    np.testing.assert_array_equal(data.x_val[0], read_images([str(root / "images/0/12.jpg")], (8, 8), channels=3)[0][0])
    assert load_source(f"clothing1m:{root}", val_spec="none").x_val is None
    streamed = load_source(f"clothing1m:{root}", image_size=(12, 12), stream=True, resize_shorter=16)
    assert streamed.x_val.shape == (5, 12, 12, 3) and streamed.x_val.resize_shorter == 16  # as the test split

    make_clothing1m(tmp_path / "old", digits, clean_for_all_train=False, num_val=0)  # no val list: none
    assert load_source(f"clothing1m:{tmp_path / 'old'}").x_val is None

    write_lines(root / "clean_val_key_list.txt", ["images/0/12.jpg", "images/0/unknown.jpg"])
    with pytest.raises(DmkerasError, match="1 image.s. of clean_val_key_list.txt have no label in clean_label_kv.txt: images/0/unknown.jpg"):
        load_source(f"clothing1m:{root}")
    lines = (root / "clean_label_kv.txt").read_text().splitlines() + ["images/0/unknown.jpg 1"]
    write_lines(root / "clean_label_kv.txt", lines)  # labeled now, but the file is missing
    with pytest.raises(DmkerasError, match="unknown.jpg"):
        load_source(f"clothing1m:{root}")
    with pytest.raises(DmkerasError, match="do not exist.*unknown.jpg"):
        load_source(f"clothing1m:{root}", image_size=(12, 12), stream=True)
    capsys.readouterr()
    data = load_source(f"clothing1m:{root}", image_size=(8, 8), skip_unreadable=True)
    assert data.y_val.tolist() == [0] and "skipped 1 unreadable image" in capsys.readouterr().out


def test_validation_set_of_any_source(tmp_path, digits):
    split = load_source("digits")
    make_class_tree(tmp_path / "val", digits, {"3": 3, "7": 7}, 3)  # 16x16 PNGs: resized to the 8x8 digits
    data = load_source("digits", val_spec=f"folder:{tmp_path / 'val'}")
    assert data.x_val.shape == (6, 8, 8, 1) and data.y_val.tolist() == [3, 3, 3, 7, 7, 7]  # by class name
    np.testing.assert_array_equal(data.x_test, split.x_test)
    make_class_tree(tmp_path / "nested" / "val", digits, {"5": 5}, 2)
    assert load_source("digits", val_spec=f"folder:{tmp_path / 'nested'}").y_val.tolist() == [5, 5]  # its val/
    (tmp_path / "val.csv").write_text("val/3/000.png,3\nval/7/001.png,7\n")
    assert load_source("digits", val_spec=f"csv:{tmp_path / 'val.csv'}").y_val.tolist() == [3, 7]
    np.savez(tmp_path / "v.npz", x_val=split.x_test[:4], y_val=split.y_test[:4])
    np.testing.assert_array_equal(load_source("digits", val_spec=f"npz:{tmp_path / 'v.npz'}").x_val, split.x_test[:4])
    np.savez(tmp_path / "t.npz", x_test=split.x_test[:3], y_test=split.y_test[:3], x_train=split.x_test[:1])
    assert load_source("digits", val_spec=f"npz:{tmp_path / 't.npz'}").y_val.tolist() == split.y_test[:3].tolist()

    with pytest.raises(DmkerasError, match="validation set must be 'folder:PATH', 'csv:FILE', 'npz:PATH'"):
        load_source("digits", val_spec="digits")
    with pytest.raises(DmkerasError, match="does not exist"):
        load_source("digits", val_spec=f"folder:{tmp_path / 'missing'}")
    make_class_tree(tmp_path / "odd", digits, {"z": 3}, 1)
    with pytest.raises(DmkerasError, match="lacks: z"):
        load_source("digits", val_spec=f"folder:{tmp_path / 'odd'}")
    np.savez(tmp_path / "big.npz", x_val=np.zeros((2, 9, 9, 1), np.uint8), y_val=np.zeros(2, int))
    with pytest.raises(DmkerasError, match=r"shape \(9, 9, 1\), the training images \(8, 8, 1\)"):
        load_source("digits", val_spec=f"npz:{tmp_path / 'big.npz'}")
    np.savez(tmp_path / "labels.npz", x_val=split.x_test[:2], y_val=np.array([0, 10]))
    with pytest.raises(DmkerasError, match=r"labels must lie in \[0, 10\), got 10 \(1 sample\)"):
        load_source("digits", val_spec=f"npz:{tmp_path / 'labels.npz'}")


def test_clothing1m_missing_lists_are_named(tmp_path, digits):
    make_clothing1m(tmp_path / "c", digits, clean_for_all_train=False)
    os.remove(tmp_path / "c" / "clean_test_key_list.txt")
    os.remove(tmp_path / "c" / "noisy_label_kv.txt")
    with pytest.raises(DmkerasError, match="missing noisy_label_kv.txt, clean_test_key_list.txt"):
        load_source(f"clothing1m:{tmp_path / 'c'}")
    write_lines(tmp_path / "c" / "clean_test_key_list.txt", ["images/0/0.jpg"])
    write_lines(tmp_path / "c" / "noisy_label_kv.txt", ["images/0/0.jpg 1", "images/1/1.jpg x"])
    with pytest.raises(DmkerasError, match="noisy_label_kv.txt line 2"):
        load_source(f"clothing1m:{tmp_path / 'c'}")


def test_webvision_layout_keeps_the_first_classes(tmp_path, digits):
    root = tmp_path / "wv"
    train_lines, val_lines = [], []
    for k in range(16):
        label = k % 4
        key = f"google/q{label + 1:04d}/{k}.jpg"
        write(root / key, gray(digits, k, scale=2 + k % 2))  # 16x16 and 24x24
        train_lines.append(f"{key} {label}")
    for k in range(8):
        write(root / "val_images_256" / f"val{k}.jpg", rgb(digits, 100 + k))
        val_lines.append(f"val{k}.jpg {k % 4}")
    write_lines(root / "info" / "train_filelist_google.txt", train_lines)
    write_lines(root / "info" / "val_filelist.txt", val_lines)

    data = load_source(f"webvision:{root}", num_classes=2, image_size=(12, 12))
    assert data.name == "webvision" and data.num_classes == 2
    np.testing.assert_array_equal(data.y_train, [0, 1] * 4)
    np.testing.assert_array_equal(data.y_test, [0, 1, 0, 1])
    assert data.image_shape == (12, 12, 3)
    assert data.class_names == ["0", "1"]

    full = load_source(f"webvision:{root}", image_size=12)
    assert full.num_classes == 50 and full.x_train.shape[0] == 16 and full.x_test.shape[0] == 8
    with pytest.raises(DmkerasError, match="image_size"):  # 16x16 and 24x24 images
        load_source(f"webvision:{root}")
    os.remove(root / "info" / "val_filelist.txt")
    with pytest.raises(DmkerasError, match="missing info/val_filelist.txt"):
        load_source(f"webvision:{root}")


# --------------------------------------------------------------------------------------------
# sizes and unreadable files


def test_resizing_and_mixed_sizes(tmp_path, digits):
    make_class_tree(tmp_path / "m", digits, {"a": 0, "b": 1}, 5)
    write(tmp_path / "m" / "a" / "big.png", gray(digits, 0, scale=3))  # 24x24
    with pytest.raises(DmkerasError, match=r"different sizes \(16x16 for .*, 24x24 for .*big.png\); pass image_size"):
        load_source(f"folder:{tmp_path / 'm'}")
    data = load_source(f"folder:{tmp_path / 'm'}", image_size=(12, 10))
    assert data.image_shape == (12, 10, 1)
    flat = np.full((20, 30, 3), 77, np.uint8)  # a constant image stays constant when resized
    images, _ = read_images([write(tmp_path / "flat.png", flat)], image_size=(7, 9))
    assert images.shape == (1, 7, 9, 3) and np.all(images == 77)
    expected = tf.image.resize(gray(digits, 5).astype(np.float32), (5, 5), antialias=True)
    images, _ = read_images([write(tmp_path / "five.png", gray(digits, 5))], image_size=5)
    np.testing.assert_array_equal(images[0], np.clip(np.round(expected.numpy()), 0, 255).astype(np.uint8))


def test_unreadable_files_raise_or_are_skipped(tmp_path, digits, capsys):
    make_class_tree(tmp_path / "u", digits, {"a": 0, "b": 1}, 6)
    for name in ("a/broken.png", "b/garbage.jpg", "b/zero.gif"):
        (tmp_path / "u" / name).write_bytes(b"this is not an image" if "zero" not in name else b"")
    with pytest.raises(DmkerasError, match=r"3 image file\(s\) could not be decoded.*skip_unreadable") as err:
        load_source(f"folder:{tmp_path / 'u'}")
    assert all(name in str(err.value) for name in ("broken.png", "garbage.jpg", "zero.gif"))

    data = load_source(f"folder:{tmp_path / 'u'}", skip_unreadable=True, test_fraction=0.25)
    out = capsys.readouterr().out
    assert out.count("skipped 3 unreadable images:") == 1 and "broken.png" in out
    assert data.x_train.shape[0] + data.x_test.shape[0] == 12
    assert len(data.y_train) == data.x_train.shape[0] and len(data.y_test) == data.x_test.shape[0]
    np.testing.assert_array_equal(np.bincount(np.concatenate([data.y_train, data.y_test])), [6, 6])

    paths = sorted(str(q) for q in (tmp_path / "u" / "a").iterdir()) + [str(tmp_path / "lost.png")]
    images, kept = read_images(paths, skip_unreadable=True)
    assert images.shape[0] == 6 and kept.sum() == 6 and not kept[-1]
    assert "skipped 2 unreadable images" in capsys.readouterr().out


def test_unknown_spec_mentions_image_sources():
    with pytest.raises(DmkerasError, match="'folder:PATH', 'csv:FILE', 'clothing1m:ROOT' or 'webvision:ROOT'"):
        load_source("folder:")
