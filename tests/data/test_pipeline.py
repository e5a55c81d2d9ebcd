"""Epoch plans, augmentation and the tf.data pipelines built from them."""

import numpy as np
import pytest
import tensorflow as tf

from dmkeras.data import pipeline
from dmkeras.data.augment import (
    AugmentConfig,
    augment,
    normalize,
    random_crop,
    random_flip,
)
from dmkeras.errors import DmkerasError


def test_warmup_plan_covers_every_sample_once_with_a_partial_last_batch():
    plan = pipeline.warmup_plan(10, 4, np.random.default_rng(0))
    assert [len(b) for b in plan] == [4, 4, 2]
    assert sorted(np.concatenate(plan)) == list(range(10))


def test_ssl_plan_one_pass_over_labeled_with_full_unlabeled_batches():
    labeled, unlabeled = np.arange(0, 10), np.arange(10, 17)  # 10 labeled, 7 unlabeled, batch 4
    plan = pipeline.ssl_plan(labeled, unlabeled, 4, np.random.default_rng(0))
    assert [len(lab) for lab, _ in plan] == [4, 4, 2]
    assert sorted(np.concatenate([lab for lab, _ in plan])) == list(range(10))
    assert all(len(unl) == 4 for _, unl in plan)
    stream = np.concatenate([unl for _, unl in plan])
    assert set(stream) <= set(unlabeled)
    assert sorted(stream[:7]) == list(range(10, 17))  # the first cycle is a permutation


def test_ssl_plan_unlabeled_smaller_than_a_batch_repeats_to_fill():
    plan = pipeline.ssl_plan(np.arange(8), np.array([20, 21]), 4, np.random.default_rng(0))
    assert all(sorted(unl) == [20, 20, 21, 21] for _, unl in plan)


def test_ssl_plan_empty_sets():
    assert pipeline.ssl_plan(np.zeros(0, np.int64), np.arange(5), 4, np.random.default_rng(0)) == []
    plan = pipeline.ssl_plan(np.arange(5), np.zeros(0, np.int64), 4, np.random.default_rng(0))
    assert [len(unl) for _, unl in plan] == [0, 0]


def test_replica_slices_and_dropping_batches_too_small():
    assert [list(s) for s in pipeline.replica_slices(np.arange(5), 2)] == [[0, 1, 2], [3, 4]]
    plan = [np.arange(4), np.arange(1)]
    assert pipeline.drop_batches_too_small(plan, 2) == (plan[:1], 1)
    assert pipeline.drop_batches_too_small(plan, 1) == (plan, 0)


def test_augment_config_parse():
    assert AugmentConfig.parse("crop,flip", 4) == AugmentConfig(True, True, 4)
    assert AugmentConfig.parse("none", 0) == AugmentConfig(False, False, 0)
    with pytest.raises(DmkerasError, match="unknown augmentation 'rotate'"):
        AugmentConfig.parse("crop,rotate", 4)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    images = tf.reshape(tf.range(1, 2 * 5 * 5 + 1, dtype=tf.int32), [2, 5, 5, 1])
    out = random_crop(images, 2, tf.constant([1, 2], tf.int64)).numpy()
    padded = np.pad(images.numpy(), [[0, 0], [2, 2], [2, 2], [0, 0]])
    for i in range(2):
        windows = [padded[i, r : r + 5, c : c + 5] for r in range(5) for c in range(5)]
        assert any(np.array_equal(out[i], w) for w in windows)


def test_random_flip_flips_about_half_and_is_seeded():
    images = tf.reshape(tf.range(400 * 3, dtype=tf.float32), [400, 1, 3, 1])
    seed = tf.constant([7, 7], tf.int64)
    out = random_flip(images, seed).numpy()
    flipped = np.all(out == images.numpy()[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == images.numpy(), axis=(1, 2, 3))
    assert np.all(flipped ^ kept)
    assert 160 < flipped.sum() < 240  # Binomial(400, 1/2): mean 200, sd 10
    np.testing.assert_array_equal(out, random_flip(images, seed).numpy())


def test_augment_none_is_identity_and_normalize_by_hand():
    images = tf.constant(np.full((1, 2, 2, 1), 51, np.uint8))
    out = augment(images, AugmentConfig(False, False, 0), tf.constant([0, 0], tf.int64))
    np.testing.assert_array_equal(out.numpy(), images.numpy())
    np.testing.assert_allclose(normalize(images, (0.1,), (0.5,)).numpy(), (51 / 255 - 0.1) / 0.5, rtol=1e-6)


def _index_of(images):
    return np.rint(images.numpy()[:, 0, 0, 0]).astype(int)


def _bank(n=12):
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(2, axis=1).repeat(2, axis=2)
    return pipeline.ImageBank(images, (0.0,), (1.0 / 255,), AugmentConfig(False, False, 0))  # normalised value == index


def test_ssl_dataset_batches_carry_the_planned_samples_labels_and_clean_probs():
    bank = _bank()
    labels = np.arange(12) % 3
    clean_prob = np.linspace(0, 1, 12)
    plan = pipeline.ssl_plan(np.array([0, 2, 4, 6, 8]), np.array([1, 3, 5]), 2, np.random.default_rng(0))
    batches = list(pipeline.ssl_dataset(bank, labels, clean_prob, plan, num_replicas=1, seed=0))
    assert len(batches) == 3
    for (lab, unl), batch in zip(plan, batches):
        np.testing.assert_array_equal(_index_of(batch["x1"]), lab)
        np.testing.assert_array_equal(_index_of(batch["u2"]), unl)
        np.testing.assert_array_equal(batch["y"].numpy(), labels[lab])
        np.testing.assert_allclose(batch["w"].numpy(), clean_prob[lab], rtol=1e-6)


def test_per_replica_elements_come_in_replica_order():
    bank = _bank()
    plan = pipeline.warmup_plan(12, 6, np.random.default_rng(0))
    elements = list(pipeline.warmup_dataset(bank, np.zeros(12, np.int64), plan, num_replicas=2, seed=0))
    assert len(elements) == 4
    np.testing.assert_array_equal(_index_of(elements[0]["x"]), plan[0][:3])
    np.testing.assert_array_equal(_index_of(elements[1]["x"]), plan[0][3:])


def test_eval_dataset_is_in_order_without_augmentation():
    bank = _bank(7)
    values = np.concatenate([_index_of(b) for b in bank.eval_dataset(3)])
    np.testing.assert_array_equal(values, np.arange(7))
