"""AugDesc (issue 12): which augmentation pool feeds which input, the strong ops against hand
values (and PIL, which the original policies call), seeding per global batch, and that the
default (augdesc off) pipeline is the one it was."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras.data import augment, pipeline
from dmkeras.errors import DmkerasError
from dmkeras.model import DivideMixModel
from tests.helpers import image_bank, random_images

SEED = tf.constant([3, 4], tf.int64)


def _white_views(batch, config, policy, seeds, rows):
    """An identifiable strong pool: every pixel of every strong view 255."""
    return [tf.fill(tf.shape(batch), tf.constant(255, tf.uint8))] * len(seeds)


def _ssl_batch(bank, strong):
    plan = pipeline.ssl_plan(np.arange(6), np.arange(6, 12), 3, np.random.default_rng(0))
    ds = pipeline.ssl_dataset(bank, np.zeros(12, np.int64), np.ones(12, np.float32), plan, 1, seed=7, strong=strong)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


# -- the pipeline ------------------------------------------------------------------------------------


def test_strong_views_are_added_and_the_weak_views_do_not_move():
    images = random_images(np.random.default_rng(0), 12)
    weak_only = _ssl_batch(image_bank(images), None)
    with_strong = _ssl_batch(image_bank(images), "autoaugment")
    assert set(weak_only[0]) == {"x1", "x2", "y", "w", "u1", "u2"}  # the default layout, no extra keys
    assert set(with_strong[0]) == {"x1", "x2", "y", "w", "u1", "u2", "xs1", "xs2", "us1", "us2"}
    for plain, both in zip(weak_only, with_strong):
        for key in plain:  # the weak views (seeds (base, 4 step + v)) are bit for bit those of augdesc off
            np.testing.assert_array_equal(plain[key], both[key])
        assert not np.array_equal(both["xs1"], both["x1"]) and not np.array_equal(both["us2"], both["u2"])


def test_the_strong_pool_feeds_the_strong_keys_only(monkeypatch):
    # an identifiable "policy": every pixel 255, so a strong view normalises to (1 - 0.5) / 0.25 = 2
    monkeypatch.setattr(pipeline, "strong_views", _white_views)
    images = np.zeros((12, 8, 8, 1), np.uint8)  # weak views of black images normalise to -2 everywhere
    for batch in _ssl_batch(image_bank(images), "autoaugment"):
        for key in ("xs1", "xs2", "us1", "us2"):
            np.testing.assert_array_equal(batch[key], 2.0)
        for key in ("x1", "x2", "u1", "u2"):
            np.testing.assert_array_equal(batch[key], -2.0)


def test_warmup_views_are_strong_only_when_asked(monkeypatch):
    monkeypatch.setattr(pipeline, "strong_views", _white_views)
    bank = image_bank(np.zeros((8, 8, 8, 1), np.uint8))
    plan = pipeline.warmup_plan(8, 4, np.random.default_rng(0))
    weak = [b["x"].numpy() for b in pipeline.warmup_dataset(bank, np.zeros(8, np.int64), plan, 1, seed=1)]
    strong = [b["x"].numpy() for b in pipeline.warmup_dataset(bank, np.zeros(8, np.int64), plan, 1, seed=1, strong="autoaugment")]
    assert all(np.all(x == -2.0) for x in weak) and all(np.all(x == 2.0) for x in strong)


@pytest.mark.parametrize("policy", augment.STRONG_POLICIES)
def test_strong_views_are_drawn_per_global_batch(policy):
    # rows [2, 5) of a global batch of 6 get the same strong view whether augmented alone or in the batch
    images = tf.constant(random_images(np.random.default_rng(1), 6, (16, 16, 3)))
    config = augment.AugmentConfig(crop=True, flip=True, pad=2)
    whole = augment.strong_augment(images, config, policy, SEED).numpy()
    part = augment.strong_augment(images[2:5], config, policy, SEED, rows=(2, 6)).numpy()
    np.testing.assert_array_equal(part, whole[2:5])
    np.testing.assert_array_equal(augment.strong_augment(images, config, policy, SEED).numpy(), whole)  # seeded: replays
    assert not np.array_equal(augment.strong_augment(images, config, policy, SEED + 1).numpy(), whole)
    # the views of several seeds, stacked through the policy at once, are each seed's own
    stacked = augment.strong_views(images, config, policy, [SEED + 1, SEED])
    np.testing.assert_array_equal(stacked[1].numpy(), whole)
    np.testing.assert_array_equal(stacked[0].numpy(), augment.strong_augment(images, config, policy, SEED + 1).numpy())


# -- the model: which pool reaches which forward pass ----------------------------------------------------


class _RecordingNet(keras.Model):
    """A linear net that records the mean of every input it is called on (eagerly)."""

    def __init__(self, seen, **kwargs):
        super().__init__(**kwargs)
        self._record = seen.append  # a bound method: Keras would copy a list attribute into a tracked one
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(3)

    def call(self, x, training=False):
        self._record((self.name, bool(training), float(tf.reduce_mean(x))))
        return self.dense(self.flatten(x))


@pytest.mark.parametrize("strong", [False, True])
def test_gradient_step_mixes_the_strong_views_and_guessing_sees_the_weak_ones(strong):
    seen = []
    net, peer = _RecordingNet(seen, name="net"), _RecordingNet(seen, name="peer")
    model = DivideMixModel(net, peer, num_classes=3)
    for n in (net, peer):
        n(tf.zeros([1, 4, 4, 1]))  # creates the weights
    model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    seen.clear()
    weak, hard = tf.zeros([2, 4, 4, 1]), tf.ones([2, 4, 4, 1])  # weak views all 0, strong views all 1
    batch = {"x1": weak, "x2": weak, "u1": weak, "u2": weak, "y": tf.constant([0, 1], tf.int64), "w": tf.constant([0.5, 0.5])}
    if strong:
        batch.update(xs1=hard, xs2=hard, us1=hard, us2=hard)
    # mix_lambda 1: the mixed inputs are the inputs themselves, so their mean shows the pool
    model.ssl_step(0, batch, tf.constant(1.0), tf.constant(1.0), tf.constant([1, 2], tf.int64))
    guesses, step = seen[:-1], seen[-1]
    # co-guessing: net on u1, u2 (train mode), peer on u1, u2 (eval mode); co-refinement: net on x1, x2
    assert [(name, training) for name, training, _ in guesses] == [("net", True)] * 2 + [("peer", False)] * 2 + [("net", True)] * 2
    assert all(mean == 0.0 for _, _, mean in guesses)  # always the weak views
    assert step[:2] == ("net", True) and step[2] == (1.0 if strong else 0.0)  # the 4B mixed rows: strong with AugDesc


# -- the ops, by hand and against PIL -----------------------------------------------------------------


def _op(name, image, value, fill=0):
    ops = dict(zip(augment._OP_NAMES, augment._ops(fill)))
    x = tf.constant(np.asarray(image, np.float32)[None, ..., None] if np.ndim(image) == 2 else np.asarray(image, np.float32)[None])
    return ops[name](x, tf.constant([float(value)])).numpy()[0]


def test_photometric_ops_by_hand():
    image = np.array([[0, 60], [130, 250]])
    np.testing.assert_array_equal(_op("invert", image, 0)[..., 0], [[255, 195], [125, 5]])
    np.testing.assert_array_equal(_op("solarize", image, 128)[..., 0], [[0, 60], [125, 5]])  # >= 128 inverted
    np.testing.assert_array_equal(_op("posterize", image, 2)[..., 0], [[0, 0], [128, 192]])  # top 2 bits: multiples of 64
    np.testing.assert_array_equal(_op("autocontrast", image, 0)[..., 0], [[0, 61], [132, 255]])  # floor((v - 0) * 255 / 250)
    np.testing.assert_array_equal(_op("brightness", image, 0.5)[..., 0], [[0, 30], [65, 125]])
    # contrast 0: every pixel becomes the rounded mean, int(110 + 0.5) = 110
    np.testing.assert_array_equal(_op("contrast", image, 0.0)[..., 0], [[110, 110], [110, 110]])


def test_equalize_by_hand():
    # 256 pixels: 128 at 0, 127 at 100, 1 at 200. step = (256 - 1) // 255 = 1, so
    # lut[v] = (0 + pixels below v) // 1: 0 -> 0, 100 -> 128, 200 -> min(255, 255) = 255
    image = np.array([0] * 128 + [100] * 127 + [200], np.float32).reshape(16, 16)
    out = _op("equalize", image, 0)[..., 0]
    assert set(zip(image.ravel().tolist(), out.ravel().tolist())) == {(0, 0), (100, 128), (200, 255)}
    # 4 pixels: step = (4 - 1) // 255 = 0, PIL leaves the image as it is
    np.testing.assert_array_equal(_op("equalize", [[0, 0], [100, 200]], 0)[..., 0], [[0, 0], [100, 200]])


def test_ops_agree_with_pil():
    image_mod = pytest.importorskip("PIL.Image")
    from PIL import ImageEnhance, ImageOps

    rgb = random_images(np.random.default_rng(2), 1, (32, 32, 3))[0]
    pil = image_mod.fromarray(rgb)
    exact = {"equalize": ImageOps.equalize(pil), "autocontrast": ImageOps.autocontrast(pil),
             "posterize": ImageOps.posterize(pil, 5), "solarize": ImageOps.solarize(pil, 199)}
    values = {"equalize": 0, "autocontrast": 0, "posterize": 5, "solarize": 199}
    for name, expected in exact.items():
        np.testing.assert_array_equal(_op(name, rgb, values[name]), np.asarray(expected))
    for name, enhancer in (("brightness", ImageEnhance.Brightness), ("color", ImageEnhance.Color),
                           ("contrast", ImageEnhance.Contrast), ("sharpness", ImageEnhance.Sharpness)):
        got = np.round(_op(name, rgb, 1.6))
        assert np.abs(got - np.asarray(enhancer(pil).enhance(1.6), np.float32)).max() <= 1  # PIL's integer rounding
    # geometry: a 90-degree rotation and a 8-pixel translation are exact; PIL's rotate is counter-clockwise
    np.testing.assert_array_equal(np.round(_op("rotate", rgb, 90)), np.asarray(pil.rotate(90)))  # cos 90 = 6e-17
    shifted = pil.transform((32, 32), image_mod.AFFINE, (1, 0, 8, 0, 1, 0))
    np.testing.assert_array_equal(_op("translate_x", rgb, 0.25), np.asarray(shifted))


def test_autoaugment_table_and_magnitudes():
    ops, probs, mags, signed, enhance = (t.numpy() for t in augment._policy_table())
    assert ops.shape == (25, 2)  # AutoAugment's 25 CIFAR-10 sub-policies of two ops
    names = [[augment._OP_NAMES[i] for i in row] for row in ops]
    assert names[0] == ["invert", "contrast"] and names[24] == ["translate_y", "autocontrast"]
    np.testing.assert_allclose(probs[0], [0.1, 0.2])
    # posterize level 7: round(linspace(8, 4, 10)[7]) = round(4.889) = 5 bits (sub-policy 5, second op)
    assert names[5][1] == "posterize" and mags[5][1] == 5.0
    # solarize level 2: linspace(256, 0, 10)[2] = 199.11 (sub-policy 14, first op); no random sign
    assert names[14][0] == "solarize" and mags[14][0] == pytest.approx(256 - 256 * 2 / 9) and signed[14][0] == 0
    # translate level 9: 150 / 331 of the size, random sign; contrast level 6: 0.9 * 6 / 9 = 0.6, enhance(1 +- 0.6)
    assert mags[1][1] == pytest.approx(150 / 331) and signed[1][1] == 1
    assert names[0][1] == "contrast" and mags[0][1] == pytest.approx(0.6) and enhance[0][1] == 1


def test_augdesc_variants_and_bad_names():
    assert augment.augdesc_plan("off") == (None, None)
    assert augment.augdesc_plan("ws") == ("autoaugment", None)  # the paper's WS: weak warm-up
    assert augment.augdesc_plan("ws_saw") == ("autoaugment", "autoaugment")
    with pytest.raises(DmkerasError, match="augdesc must be one of off, ws, ws_saw, ws_randaugment, got 'sw'"):
        augment.augdesc_plan("sw")
    with pytest.raises(DmkerasError, match="unknown strong augmentation policy 'cutmix'"):
        augment.strong_policy(tf.zeros([1, 4, 4, 1], tf.uint8), "cutmix", SEED)


def test_config_and_task_carry_augdesc():
    from dmkeras import config as config_lib
    from dmkeras.task import DivideMix

    assert config_lib.AUGDESC == augment.AUGDESC
    with pytest.raises(DmkerasError, match="^augdesc must be one of off, ws, ws_saw, ws_randaugment, got 'x'"):
        config_lib.TrainConfig(augdesc="x", workdir="w").validate()
    model = DivideMix("small_cnn", num_classes=3, input_shape=(8, 8, 1), augdesc="ws")
    assert model.get_config()["augdesc"] == "ws" and model._train_config().data.augdesc == "ws"
    with pytest.raises(DmkerasError, match="^augdesc must be one of off, ws"):
        DivideMix("small_cnn", num_classes=3, augdesc="strong")
