"""RandomResizedCrop (--augment=resized_crop): torchvision's box rule, its fallback, seeding per
global batch, and the streamed Resize(R) + RandomResizedCrop of the reference's WebVision loader."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dmkeras.data import pipeline
from dmkeras.data.augment import (
    RESIZED_CROP_ATTEMPTS,
    AugmentConfig,
    augment,
    crop_and_resize_boxes,
    random_resized_crop,
    resized_crop_boxes,
    resized_crop_draws,
)
from dmkeras.data.images import FileImages
from dmkeras.data.sources import load_extra_test, load_source
from dmkeras.errors import DmkerasError
from tests.data.sources.test_image_files import write

PIXELS = ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))  # mean, std: normalised values = pixel values


def numpy_box(draws, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params, written out with Python numbers, fed the
    uniform draws [attempts, 4] (area, log aspect, top, left). Returns ((top, left, h, w), fallback)."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for u_area, u_ratio, u_top, u_left in np.asarray(draws, np.float64).tolist():
        target_area = area * (scale[0] + (scale[1] - scale[0]) * u_area)
        aspect = math.exp(log_lo + (log_hi - log_lo) * u_ratio)
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(u_top * (height - h + 1))  # randint(0, height - h) inclusive
            left = int(u_left * (width - w + 1))
            return (top, left, h, w), False
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return ((height - h) // 2, (width - w) // 2, h, w), True


def _smooth_image(rng, height, width):
    """A smooth colour image (resizing it changes values gradually, unlike noise)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi, 3)
    channels = [127.5 + 120 * np.sin(x / (5 + 3 * c) + y / (7 + 2 * c) + phase[c]) for c in range(3)]
    return np.round(np.stack(channels, axis=-1)).astype(np.uint8)


def _resize(image, size):
    """tf.image.resize, bilinear, antialiased, rounded to uint8 (the resize the pipeline uses)."""
    return np.clip(np.round(tf.image.resize(image, size, antialias=True).numpy()), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# (a) the TF box rule is the numpy transcription, draw for draw


def test_boxes_match_the_numpy_transcription_for_the_same_draws():
    sizes = [(320, 427), (320, 320), (480, 320), (299, 299), (320, 1000), (16, 12), (3, 40)]
    draws = resized_crop_draws(2000, tf.constant([5, 9], tf.int64)).numpy()  # [2000, 10, 4]
    heights = np.array([sizes[i % len(sizes)][0] for i in range(2000)])
    widths = np.array([sizes[i % len(sizes)][1] for i in range(2000)])
    boxes = resized_crop_boxes(draws, heights, widths).numpy()  # per-sample image sizes
    expected = [numpy_box(d, h, w) for d, h, w in zip(draws, heights, widths)]
    np.testing.assert_array_equal(boxes, [box for box, _ in expected])
    fell_back = np.array([f for _, f in expected])
    assert 0 < fell_back.sum() < 2000  # both paths are exercised (the 3x40 and 320x1000 images fall back often)
    one = resized_crop_boxes(draws[7], 320, 320).numpy()  # a single image, scalar sizes
    np.testing.assert_array_equal(one, numpy_box(draws[7], 320, 320)[0])


def test_the_first_valid_attempt_wins():
    # 10x10 image; attempt 0 and 1 are too large (area 100, aspect 4/3 -> w = round(11.55) = 12 > 10),
    # attempt 2: area 100 (0.08 + 0.92 * 0.5) = 54, aspect 1 -> w = h = round(7.35) = 7,
    # top = floor(0.5 * (10 - 7 + 1)) = 2, left = floor(0.99 * 4) = 3; attempt 3 would be valid too.
    big = [0.999999, 0.999999, 0.0, 0.0]
    draws = np.array([big, big, [0.5, 0.5, 0.5, 0.99], [0.0, 0.5, 0.0, 0.0]] + [big] * 6, np.float32)
    np.testing.assert_array_equal(resized_crop_boxes(draws, 10, 10).numpy(), [2, 3, 7, 7])
    draws[2] = draws[3]  # now attempt 2 is area 8: w = h = round(2.83) = 3 at (0, 0)
    np.testing.assert_array_equal(resized_crop_boxes(draws, 10, 10).numpy(), [0, 0, 3, 3])


# ---------------------------------------------------------------------------------------------
# (b) the centred fallback with the aspect clamped


def test_fallback_is_the_clamped_centre_box():
    draws = resized_crop_draws(50, tf.constant([1, 2], tf.int64))
    # 10 x 1000: any box of >= 8 % of the area with aspect <= 4/3 is taller than 10 -> every attempt
    # fails; the fallback keeps the height, w = round(10 * 4/3) = 13, left = (1000 - 13) // 2 = 493.
    np.testing.assert_array_equal(resized_crop_boxes(draws, 10, 1000).numpy(), np.tile([0, 493, 10, 13], (50, 1)))
    # 1000 x 10: keep the width, h = round(10 / (3/4)) = 13, top = (1000 - 13) // 2 = 493.
    np.testing.assert_array_equal(resized_crop_boxes(draws, 1000, 10).numpy(), np.tile([493, 0, 13, 10], (50, 1)))
    # 7 x 200: h >= round(sqrt(0.08 * 1400 * 3/4)) = 9 > 7; fallback h = 7, w = round(9.33) = 9, left = 95.
    np.testing.assert_array_equal(resized_crop_boxes(draws, 7, 200).numpy(), np.tile([0, 95, 7, 9], (50, 1)))
    # A square image whose every attempt is too large (area 1, aspect 4/3 or 3/4): the whole image.
    too_big = np.tile(np.array([0.999999, 0.999999, 0.3, 0.3], np.float32), (RESIZED_CROP_ATTEMPTS, 1))
    np.testing.assert_array_equal(resized_crop_boxes(too_big, 10, 10).numpy(), [0, 0, 10, 10])
    too_big[:, 1] = 0.0
    np.testing.assert_array_equal(resized_crop_boxes(too_big, 10, 10).numpy(), [0, 0, 10, 10])
    assert numpy_box(too_big, 10, 10) == ((0, 0, 10, 10), True)


# ---------------------------------------------------------------------------------------------
# (c) areas and aspect ratios


def test_box_areas_and_aspects_lie_in_scale_and_ratio():
    height, width = 320, 427
    draws = resized_crop_draws(20000, tf.constant([3, 3], tf.int64)).numpy()
    boxes = resized_crop_boxes(draws, height, width).numpy()
    top, left, h, w = boxes.T
    assert np.all((top >= 0) & (left >= 0) & (top + h <= height) & (left + w <= width))
    fell_back = np.array([numpy_box(d, height, width)[1] for d in draws[:2000]])
    assert not fell_back.any()  # at this aspect (1.33, inside the range) the fallback is very rare
    fraction = h * w / (height * width)
    aspect = w / h
    # Rounding w and h to whole pixels moves each by <= 0.5 of >= sqrt(0.08 * 320 * 427 * 3/4) = 90.
    slack = 2 * 0.5 / 90
    assert fraction.min() >= 0.08 * (1 - slack) and fraction.max() <= 1.0
    assert aspect.min() >= 0.75 * (1 - slack) and aspect.max() <= 4 / 3 * (1 + slack)
    assert fraction.min() < 0.085 and fraction.max() > 0.95  # the whole range is used
    assert aspect.min() < 0.76 and aspect.max() > 1.32
    # A first attempt of at most 0.08 + 0.92 / 2 = 54 % of the area always fits (w, h <= sqrt(0.54 H W 4/3)
    # = 314): those boxes have the first attempt's aspect, log-uniform on [log 3/4, log 4/3], so their
    # quartiles are -+ log(4/3) / 2 = -+0.144 (accepted boxes as a whole lean wide in a wide image).
    small = draws[:, 0, 0] < 0.5
    quartiles = np.quantile(np.log(aspect[small]), [0.25, 0.5, 0.75])
    np.testing.assert_allclose(quartiles, [-math.log(4 / 3) / 2, 0.0, math.log(4 / 3) / 2], atol=0.01)
    np.testing.assert_allclose(np.median(fraction[small]), 0.08 + 0.92 / 4, atol=0.01)  # area fraction uniform too
    assert len({tuple(b) for b in boxes}) > 19000  # offsets vary too


# ---------------------------------------------------------------------------------------------
# (d) seeded, per global batch; in-memory views are the resized boxes


def test_in_memory_views_are_resized_boxes_and_do_not_depend_on_the_replica_split():
    rng = np.random.default_rng(0)
    images = np.stack([_smooth_image(rng, 24, 32) for _ in range(6)])
    seed = tf.constant([4, 2], tf.int64)
    out = random_resized_crop(tf.constant(images), seed).numpy()
    assert out.shape == (6, 24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, random_resized_crop(tf.constant(images), seed).numpy())  # seeded
    draws = resized_crop_draws(6, seed).numpy()
    for i in range(6):
        top, left, h, w = numpy_box(draws[i], 24, 32)[0]
        expected = _resize(images[i, top : top + h, left : left + w], (24, 32))
        assert np.abs(out[i].astype(int) - expected).max() <= 1  # batched resize = tf.image.resize of the box
    parts = [random_resized_crop(tf.constant(images[a:b]), seed, rows=(a, 6)).numpy() for a, b in ((0, 4), (4, 6))]
    np.testing.assert_array_equal(np.concatenate(parts), out)
    assert not np.array_equal(random_resized_crop(tf.constant(images), tf.constant([4, 3], tf.int64)).numpy(), out)

    # other output sizes, and a box as large as the output is copied unchanged
    boxes = tf.constant([[0, 0, 24, 32], [2, 5, 10, 7]])
    small = crop_and_resize_boxes(tf.constant(images[:2]), boxes, (12, 9)).numpy()
    assert np.abs(small[1].astype(int) - _resize(images[1, 2:12, 5:12], (12, 9))).max() <= 1
    same = crop_and_resize_boxes(tf.constant(images[:2]), boxes, (24, 32)).numpy()
    np.testing.assert_array_equal(same[0], images[0])


def test_image_bank_views_with_resized_crop_and_flip():
    rng = np.random.default_rng(1)
    images = np.stack([_smooth_image(rng, 16, 16) for _ in range(8)])
    config = AugmentConfig.parse("resized_crop,flip", 4)
    bank = pipeline.ImageBank(images, PIXELS[0][:3], PIXELS[1][:3], config)
    seeds = [tf.constant([9, v], tf.int64) for v in range(2)]
    x1, x2 = (v.numpy() for v in bank.load_views(tf.range(8), seeds))
    again = bank.load_views(tf.range(8), seeds)[0].numpy()
    np.testing.assert_array_equal(x1, again)
    assert not np.allclose(x1, x2)  # two views, two boxes
    halves = [bank.load_views(tf.range(a, b), seeds, rows=(a, 8))[1].numpy() for a, b in ((0, 3), (3, 8))]
    np.testing.assert_array_equal(np.concatenate(halves), x2)
    # the view is the (maybe mirrored) resized box of augment's draws
    crop_seed = tf.random.experimental.stateless_split(seeds[0], num=2)[0]
    draws = resized_crop_draws(8, crop_seed).numpy()
    for i in range(8):
        top, left, h, w = numpy_box(draws[i], 16, 16)[0]
        expected = _resize(images[i, top : top + h, left : left + w], (16, 16)).astype(int)
        assert min(np.abs(x1[i] - expected).max(), np.abs(x1[i] - expected[:, ::-1]).max()) <= 1 + 1e-3
    # crop / flip alone are untouched by the new option
    plain = AugmentConfig.parse("crop,flip", 4)
    np.testing.assert_array_equal(augment(tf.constant(images), plain, seeds[0]).numpy(),
                                  augment(tf.constant(images), AugmentConfig(True, True, 4), seeds[0]).numpy())


# ---------------------------------------------------------------------------------------------
# (e) streamed: Resize(R) then RandomResizedCrop(size)


def test_streamed_resize_shorter_then_random_resized_crop(tmp_path):
    rng = np.random.default_rng(2)
    # (height, width) -> after Resize(32): shorter side 32, the other int(other * 32 / shorter)
    shapes = {(40, 60): (32, 48), (50, 36): (44, 32), (64, 64): (32, 32), (32, 45): (32, 45)}
    originals = [_smooth_image(rng, *hw) for hw in shapes]
    paths = [write(tmp_path / f"{i}.png", img) for i, img in enumerate(originals)]
    resized = [_resize(img, size) if img.shape[:2] != size else img for img, size in zip(originals, shapes.values())]
    files = FileImages(paths, (24, 24), resize_shorter=32)
    bank = pipeline.FileBank(files, *PIXELS, AugmentConfig.parse("resized_crop", 0))

    seeds = [tf.constant([11, v], tf.int64) for v in range(2)]
    views = [v.numpy() for v in bank.load_views(tf.range(4), seeds)]  # two views share each decode
    assert all(v.shape == (4, 24, 24, 3) for v in views)
    chosen = []
    for v, seed in enumerate(seeds):
        draws = resized_crop_draws(4, tf.random.experimental.stateless_split(seed, num=2)[0]).numpy()
        for i, image in enumerate(resized):
            top, left, h, w = numpy_box(draws[i], *image.shape[:2])[0]
            chosen.append((top, left, h, w))
            expected = _resize(image[top : top + h, left : left + w], (24, 24)).astype(int)
            assert np.abs(views[v][i] - expected).max() <= 1 + 1e-3, (v, i)
    assert len(set(chosen)) == 8  # independent boxes for the two views of each sample

    parts = [bank.load_views(tf.range(a, b), seeds, rows=(a, 4)) for a, b in ((0, 1), (1, 4))]
    for v in range(2):
        np.testing.assert_array_equal(np.concatenate([p[v].numpy() for p in parts]), views[v])
    np.testing.assert_array_equal(bank.load_views(tf.range(4), seeds)[1].numpy(), views[1])  # seeded

    # test time: Resize(32) + CenterCrop(24), offsets round((H - 24) / 2), round((W - 24) / 2)
    test = np.concatenate([b.numpy() for b in bank.eval_dataset(3)])
    for i, image in enumerate(resized):
        top, left = round((image.shape[0] - 24) / 2), round((image.shape[1] - 24) / 2)
        np.testing.assert_allclose(test[i], image[top : top + 24, left : left + 24], atol=1e-3)

    # with flip too: each view is the resized box, maybe mirrored
    flipped = pipeline.FileBank(files, *PIXELS, AugmentConfig.parse("resized_crop,flip", 0))
    both = flipped.load_views(tf.range(4), seeds)[0].numpy()
    np.testing.assert_allclose(np.minimum(np.abs(both - views[0]), np.abs(both - views[0][:, :, ::-1])).max(), 0, atol=1e-3)


def test_streamed_without_resize_shorter_matches_the_in_memory_bank(tmp_path):
    rng = np.random.default_rng(5)
    images = np.stack([_smooth_image(rng, 20, 20) for _ in range(5)])
    paths = [write(tmp_path / f"{i}.png", img) for i, img in enumerate(images)]
    config = AugmentConfig.parse("resized_crop,flip", 0)
    on_disk = pipeline.FileBank(FileImages(paths, (20, 20)), *PIXELS, config)  # fixed-size decode, then augment
    in_memory = pipeline.ImageBank(images, *PIXELS, config)
    seeds = [tf.constant([2, v], tf.int64) for v in range(2)]
    for a, b in zip(on_disk.load_views(tf.range(5), seeds), in_memory.load_views(tf.range(5), seeds)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-3)


def test_streamed_webvision_sizes(tmp_path):
    """The reference's HEAD sizes: Resize(320) + RandomResizedCrop(299) / CenterCrop(299)."""
    rng = np.random.default_rng(3)
    image = _smooth_image(rng, 400, 530)  # -> 320 x 424 (int(530 * 320 / 400))
    path = write(tmp_path / "w.png", image)
    bank = pipeline.FileBank(FileImages([path], (299, 299), resize_shorter=320), *PIXELS, AugmentConfig.parse("resized_crop,flip", 0))
    resized = _resize(image, (320, 424))
    view = bank.load(tf.constant([0]), tf.constant([1, 0], tf.int64)).numpy()[0]
    assert view.shape == (299, 299, 3)
    draws = resized_crop_draws(1, tf.random.experimental.stateless_split(tf.constant([1, 0], tf.int64), num=2)[0]).numpy()
    top, left, h, w = numpy_box(draws[0], 320, 424)[0]
    expected = _resize(resized[top : top + h, left : left + w], (299, 299)).astype(int)
    assert min(np.abs(view - expected).max(), np.abs(view - expected[:, ::-1]).max()) <= 1 + 1e-3
    centre = bank.load(tf.constant([0])).numpy()[0]
    np.testing.assert_allclose(centre, resized[10:309, 62:361], atol=1e-3)  # round(21 / 2) = 10, round(125 / 2) = 62


def test_streamed_test_and_ilsvrc12_images_get_resize_then_centre_crop(tmp_path):
    """The webvision.cfg set-up at small sizes: --stream --resize_shorter=32 --image_size=24,24;
    the test split and an --extra_test_dataset=ilsvrc12:ROOT get Resize(32) + CenterCrop(24)."""
    rng = np.random.default_rng(4)
    shapes = [(40, 60), (50, 36), (32, 45), (64, 64)]
    for c in "ab":
        for k, hw in enumerate(shapes):
            write(tmp_path / "train" / c / f"{k}.png", _smooth_image(rng, *hw))
    val = {}
    for c in range(2):
        for k, hw in enumerate(shapes[::-1]):
            val[c, k] = _smooth_image(rng, *hw)
            write(tmp_path / "imagenet" / "val" / str(c) / f"{k}.png", val[c, k])
    split = load_source(f"folder:{tmp_path / 'train'}", image_size=(24, 24), test_fraction=0.5, stream=True, resize_shorter=32)
    images, labels = load_extra_test(f"ilsvrc12:{tmp_path / 'imagenet'}", split, stream=True, resize_shorter=32)
    assert isinstance(images, FileImages) and images.resize_shorter == 32 and labels.tolist() == [0] * 4 + [1] * 4
    batches = list(pipeline.holdout_dataset(images, labels, split.mean, split.std, 3))
    x = np.concatenate([b[0].numpy() for b in batches]) * np.array(split.std) + np.array(split.mean)
    after = {(40, 60): (32, 48), (50, 36): (44, 32), (32, 45): (32, 45), (64, 64): (32, 32)}
    for row, (c, k) in enumerate(sorted(val)):
        image = val[c, k]
        size = after[image.shape[:2]]
        resized = _resize(image, size) if size != image.shape[:2] else image
        top, left = round((size[0] - 24) / 2), round((size[1] - 24) / 2)
        np.testing.assert_allclose(x[row] * 255, resized[top : top + 24, left : left + 24], atol=1e-3)
    assert split.x_test.resize_shorter == 32  # the test split too (FileBank without augmentation)


# ---------------------------------------------------------------------------------------------
# (f) the flag


def test_augment_config_parse_resized_crop():
    assert AugmentConfig.parse("resized_crop,flip", 4) == AugmentConfig(crop=False, flip=True, pad=4, resized_crop=True)
    assert AugmentConfig.parse("resized_crop", 0) == AugmentConfig(False, False, 0, resized_crop=True)
    assert AugmentConfig.parse("crop,flip", 4) == AugmentConfig(True, True, 4)  # resized_crop off by default
    assert not AugmentConfig.parse("none", 0).resized_crop
    with pytest.raises(DmkerasError, match="crop and resized_crop are exclusive"):
        AugmentConfig.parse("crop,resized_crop,flip", 4)
    with pytest.raises(DmkerasError, match="unknown augmentation 'resized'.*crop, resized_crop, flip"):
        AugmentConfig.parse("resized,flip", 4)
