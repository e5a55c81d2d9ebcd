"""Images left on disk (--stream), the reference's Resize + crop transforms, per-epoch class-balanced
samples (--num_batches), top-5 accuracy and the extra test set (ILSVRC12 layout)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dmkeras import experiment
from dmkeras.codivide import CoDivide
from dmkeras.config import TrainConfig
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.data.images import FileImages, check_image_files
from dmkeras.data.sources import load_extra_test, load_source
from dmkeras.errors import DmkerasError
from tests.data.sources.test_image_files import (  # noqa: F401
    digits,
    make_class_tree,
    make_clothing1m,
    rgb,
    write,
    write_lines,
)
from tests.helpers import dividemix_model, image_bank, random_images

NO_AUGMENT = AugmentConfig(crop=False, flip=False, pad=0)


def _colour_tree(root, digits, per_class=6):  # noqa: F811
    return make_class_tree(root, digits, {"a": 0, "b": 1, "c": 2}, per_class, rgb_every=1)


def _all(dataset):
    return np.concatenate([b.numpy() for b in dataset])


def test_streamed_split_decodes_like_the_in_memory_one(tmp_path, digits):  # noqa: F811
    _colour_tree(tmp_path / "f", digits)
    memory = load_source(f"folder:{tmp_path / 'f'}", image_size=(16, 16), test_fraction=0.34)
    stream = load_source(f"folder:{tmp_path / 'f'}", image_size=(16, 16), test_fraction=0.34, stream=True)
    assert isinstance(stream.x_train, FileImages) and stream.x_train.shape == memory.x_train.shape == (12, 16, 16, 3)
    np.testing.assert_array_equal(stream.y_train, memory.y_train)
    np.testing.assert_allclose(stream.mean, memory.mean, rtol=1e-6)  # every image is in the 500-image sample
    np.testing.assert_allclose(stream.std, memory.std, rtol=1e-6)

    augment = AugmentConfig(crop=True, flip=True, pad=4)
    in_memory = pipeline.make_bank(memory.x_train, memory.mean, memory.std, augment)
    on_disk = pipeline.make_bank(stream.x_train, stream.mean, stream.std, augment)
    assert isinstance(in_memory, pipeline.ImageBank) and isinstance(on_disk, pipeline.FileBank)
    np.testing.assert_allclose(_all(on_disk.eval_dataset(5)), _all(in_memory.eval_dataset(5)), atol=1e-6)
    seeds = [tf.constant([7, v], tf.int64) for v in range(2)]
    for a, b in zip(on_disk.load_views(tf.range(12), seeds), in_memory.load_views(tf.range(12), seeds)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)  # same pad + crop + flip draws

    test = pipeline.holdout_dataset(stream.x_test, stream.y_test, stream.mean, stream.std, 4)
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in test])
    np.testing.assert_array_equal(np.concatenate(labels), memory.y_test)
    np.testing.assert_allclose(
        np.concatenate(images), _all(pipeline.holdout_dataset(memory.x_test, memory.y_test, memory.mean, memory.std, 4).map(lambda x, y: x)), atol=1e-6
    )


def test_resize_shorter_then_crop_as_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)  # shorter side already 16: no resize
    path = write(tmp_path / "a.png", image)
    files = FileImages([path], (12, 12), resize_shorter=16)
    mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # normalised values = pixel values
    bank = pipeline.FileBank(files, mean, std, AugmentConfig(crop=True, flip=True, pad=0))
    centre = bank.load(tf.constant([0])).numpy()[0]
    np.testing.assert_allclose(centre, image[2:14, 6:18], atol=1e-3)  # CenterCrop: round((16-12)/2), round((24-12)/2)

    windows = {(r, c): image[r : r + 12, c : c + 12] for r in range(5) for c in range(13)}
    seen = set()
    for s in range(12):
        view = bank.load(tf.constant([0]), tf.constant([s, 0], tf.int64)).numpy()[0]
        again = bank.load(tf.constant([0]), tf.constant([s, 0], tf.int64)).numpy()[0]
        np.testing.assert_array_equal(view, again)  # seeded
        matches = [(rc, flip) for rc, w in windows.items() for flip in (False, True)
                   if np.allclose(view, w[:, ::-1] if flip else w, atol=1e-3)]
        assert matches, "a training view is a 12x12 window of the image, maybe mirrored"
        seen.add(matches[0])
    assert len(seen) > 3  # offsets and flips vary with the seed

    tall = write(tmp_path / "b.png", rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8))
    assert pipeline._resize_shorter(pipeline._decode_rgb(tall), 10).shape == (15, 10, 3)  # int(10 * 30 / 20)


def test_streamed_views_are_the_same_on_any_replica_split(tmp_path, digits):  # noqa: F811
    _colour_tree(tmp_path / "f", digits, per_class=3)
    split = load_source(f"folder:{tmp_path / 'f'}", image_size=(12, 12), test_fraction=0.34, stream=True, resize_shorter=16)
    bank = pipeline.make_bank(split.x_train, split.mean, split.std, AugmentConfig(crop=True, flip=True, pad=0))
    seeds = [tf.constant([3, 1], tf.int64)]
    whole = bank.load_views(tf.range(6), seeds)[0].numpy()
    parts = [bank.load_views(tf.range(a, b), seeds, rows=(a, 6))[0].numpy() for a, b in ((0, 4), (4, 6))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_unreadable_files_are_named_or_skipped(tmp_path, digits, capsys):  # noqa: F811
    good = write(tmp_path / "ok.png", rgb(digits, 0))
    (tmp_path / "notes.png").write_text("not an image")
    missing = str(tmp_path / "gone.png")
    with pytest.raises(DmkerasError, match="do not exist.*gone.png"):
        check_image_files([good, missing])
    with pytest.raises(DmkerasError, match="not PNG, JPEG, GIF or BMP.*notes.png"):
        check_image_files([good, str(tmp_path / "notes.png")])
    kept = check_image_files([good, missing, str(tmp_path / "notes.png")], skip_unreadable=True)
    np.testing.assert_array_equal(kept, [True, False, False])
    assert "skipped 2 unreadable images" in capsys.readouterr().out
    with pytest.raises(DmkerasError, match="needs image_size"):
        load_source(f"folder:{tmp_path}", stream=True)
    with pytest.raises(DmkerasError, match="only apply to image file sources"):
        load_source("digits", stream=True)
    with pytest.raises(DmkerasError, match="at least the crop size"):
        FileImages([good], (12, 12), resize_shorter=10)


def test_balanced_sample_follows_the_reference_loader():
    labels = np.repeat([0, 1, 2, 3], [50, 30, 5, 15])  # class 2 is rarer than its share
    sample = pipeline.balanced_sample(labels, 40, np.random.default_rng(0), num_classes=4)
    counts = np.bincount(labels[sample], minlength=4)
    np.testing.assert_array_equal(counts, [10, 10, 5, 10])  # at most 40 / 4 per class
    assert np.all(np.diff(sample) > 0)
    np.testing.assert_array_equal(sample, pipeline.balanced_sample(labels, 40, np.random.default_rng(0), 4))
    assert not np.array_equal(sample, pipeline.balanced_sample(labels, 40, np.random.default_rng(1), 4))
    odd = pipeline.balanced_sample(labels, 6, np.random.default_rng(0), num_classes=4)  # 6 / 4 = 1.5 per class
    assert len(odd) == 6 and np.bincount(labels[odd], minlength=4).max() == 2


def _model(num_classes, shape):
    return dividemix_model(num_classes, shape, lr=0.01, momentum=0.0, seed=0, net_args=dict(width=4))


def test_num_batches_draws_class_balanced_samples_for_each_net_and_epoch():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 4
    bank = image_bank(random_images(rng, 200), NO_AUGMENT)
    codivide = CoDivide(bank, labels, warm_up=1, batch_size=5, num_batches=3, num_classes=4, true_labels=labels, seed=0)
    codivide.set_model(_model(4, (8, 8, 1)))
    codivide.on_epoch_begin(0)  # warm-up: num_batches batches of 2 x batch_size, class-balanced
    for epoch_pass in codivide.passes:
        assert epoch_pass.num_steps == 3
        rows = np.concatenate([b["y"].numpy() for b in epoch_pass.dataset])
        assert len(rows) == 30 and np.bincount(rows, minlength=4).max() == 8  # under 30 / 4 = 7.5 + 1 per class

    codivide.on_epoch_begin(1)
    samples = codivide.divided_samples
    assert [len(s) for s in samples] == [15, 15] and not np.array_equal(samples[0], samples[1])
    assert all(np.bincount(labels[s], minlength=4).max() == 4 for s in samples)  # ranks below 15 / 4
    assert [len(d.clean_prob) for d in codivide.divisions] == [15, 15]
    assert codivide.epoch_logs["net1_divided"] == 15
    pass1 = codivide.passes[0]  # net 1 trains on net 2's division of net 2's sample
    assert pass1.num_labeled + pass1.num_unlabeled == 15
    assert [len(m) for m in codivide.clean_masks()] == [15, 15]
    with pytest.raises(ValueError, match="loss_history"):
        CoDivide(bank, labels, warm_up=1, batch_size=5, num_batches=3, loss_history=5)


def test_top5_accuracy_counts_the_ensemble():
    model = _model(7, (8, 8, 1))
    images = tf.random.stateless_normal([30, 8, 8, 1], seed=[1, 2])
    logits = (model.net1(images) + model.net2(images)).numpy()
    labels = np.argsort(-logits, axis=1)[np.arange(30), np.arange(30) % 7]  # rank (i % 7) label
    result = model.accuracy(tf.data.Dataset.from_tensor_slices((images, labels)).batch(8))
    assert result["acc_top5"] == pytest.approx(np.mean(np.arange(30) % 7 < 5))
    assert result["acc"] == pytest.approx(np.mean(np.arange(30) % 7 == 0))
    assert "acc_top5" not in _model(3, (8, 8, 1)).accuracy(tf.data.Dataset.from_tensor_slices((images, labels % 3)).batch(8))


def test_ilsvrc12_extra_test_layout(tmp_path, digits):  # noqa: F811
    split = load_source("digits")
    for c in (0, 1, 12):  # 12 is not a digits class: ignored
        for k in range(2):
            write(tmp_path / "imagenet" / "val" / str(c) / f"{k}.png", rgb(digits, 10 * c + k, scale=1))
    images, labels = load_extra_test(f"ilsvrc12:{tmp_path / 'imagenet'}", split)
    assert images.shape == (4, 8, 8, 1) and labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(DmkerasError, match="no val/ folder"):
        load_extra_test(f"ilsvrc12:{tmp_path}", split)
    with pytest.raises(DmkerasError, match="extra test set must be"):
        load_extra_test("digits", split)


def test_streamed_clothing1m_run_with_per_epoch_samples_and_an_extra_test_set(tmp_path, digits):  # noqa: F811
    make_clothing1m(tmp_path / "c1m", digits, clean_for_all_train=True)
    for c in range(4):
        write(tmp_path / "imagenet" / "val" / str(c) / "0.png", rgb(digits, 20 + c))
    config = TrainConfig(
        dataset=f"clothing1m:{tmp_path / 'c1m'}", noise_mode="none", stream=True, image_size="12,12", resize_shorter=16,
        num_batches=2, extra_test_dataset=f"ilsvrc12:{tmp_path / 'imagenet'}", backbone="small_cnn", backbone_args="width=4",
        epochs=2, warm_up=1, batch_size=2, eval_batch_size=4, lr=0.01, lambda_u=0, confidence_penalty="on",
        workdir=str(tmp_path / "run"), verbose=0,
    )
    summary = experiment.run(config)
    assert summary["finished"] and summary["epochs"] == 2
    assert {"test_acc_top5_best", "extra_test_acc_best", "extra_test_acc_top5_last"} <= set(summary)
    assert json.load(open(tmp_path / "run" / "dataset.json"))["mean"] == pytest.approx([0.6959, 0.6537, 0.6371])
    header = open(tmp_path / "run" / "metrics.csv").readline().strip().split(",")
    assert {"test_acc_top5", "extra_test_acc"} <= set(header)
    assert os.path.exists(tmp_path / "run" / "loss_distribution.png")


def test_config_checks_the_streaming_flags():
    base = dict(workdir="w", dataset="folder:x")
    with pytest.raises(DmkerasError, match="^stream needs image_size"):
        TrainConfig(stream=True, **base).validate()
    with pytest.raises(DmkerasError, match="^resize_shorter needs stream"):
        TrainConfig(resize_shorter=256, image_size="224", **base).validate()
    with pytest.raises(DmkerasError, match="smaller than the image_size"):
        TrainConfig(stream=True, resize_shorter=200, image_size="224", **base).validate()
    with pytest.raises(DmkerasError, match="which num_batches"):
        TrainConfig(num_batches=10, loss_history=5, **base).validate()
    TrainConfig(stream=True, resize_shorter=256, image_size="224", num_batches=10, **base).validate()
