"""The DivideMix ops against values computed by hand."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dmkeras import ops


def test_sharpen_by_hand():
    # p = (0.6, 0.4), T = 0.5: p^2 = (0.36, 0.16) -> (0.36, 0.16) / 0.52
    out = ops.sharpen(tf.constant([[0.6, 0.4]]), 0.5).numpy()
    np.testing.assert_allclose(out, [[0.36 / 0.52, 0.16 / 0.52]], rtol=1e-6)


def test_sharpen_temperature_one_is_identity_and_rows_sum_to_one():
    p = tf.constant([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    np.testing.assert_allclose(ops.sharpen(p, 1.0).numpy(), p.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ops.sharpen(p, 0.25).numpy().sum(axis=1), [1.0, 1.0], rtol=1e-6)


def test_co_refine_by_hand():
    # y = class 0, w = 0.8; predictions (0.2, 0.8) and (0.4, 0.6) average to (0.3, 0.7)
    # refined = 0.8 * (1, 0) + 0.2 * (0.3, 0.7) = (0.86, 0.14); T = 0.5 -> (0.86^2, 0.14^2) / sum
    out = ops.co_refine(
        tf.constant([[1.0, 0.0]]), tf.constant([0.8]), tf.constant([[0.2, 0.8]]), tf.constant([[0.4, 0.6]]), 0.5
    ).numpy()
    expected = np.array([0.86**2, 0.14**2]) / (0.86**2 + 0.14**2)
    np.testing.assert_allclose(out, [expected], rtol=1e-6)


def test_co_refine_with_w_one_keeps_the_label_and_w_zero_uses_the_prediction():
    y = tf.constant([[0.0, 1.0, 0.0]])
    p1, p2 = tf.constant([[0.5, 0.25, 0.25]]), tf.constant([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(ops.co_refine(y, tf.constant([1.0]), p1, p2, 0.5).numpy(), y.numpy(), atol=1e-7)
    expected = np.array([0.25, 0.0625, 0.0625]) / 0.375
    np.testing.assert_allclose(ops.co_refine(y, tf.constant([0.0]), p1, p2, 0.5).numpy(), [expected], rtol=1e-6)


def test_co_guess_by_hand():
    # four predictions average to (0.7, 0.3); T = 0.5 -> (0.49, 0.09) / 0.58
    preds = [tf.constant([[0.9, 0.1]]), tf.constant([[0.5, 0.5]]), tf.constant([[0.6, 0.4]]), tf.constant([[0.8, 0.2]])]
    np.testing.assert_allclose(ops.co_guess(preds, 0.5).numpy(), [[0.49 / 0.58, 0.09 / 0.58]], rtol=1e-6)


def test_mixup_by_hand():
    x = tf.constant([[1.0, 0.0], [0.0, 2.0]])
    t = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    mixed_x, mixed_t = ops.mixup(x, t, 0.75, tf.constant([1, 0]))
    np.testing.assert_allclose(mixed_x.numpy(), [[0.75, 0.5], [0.25, 1.5]], rtol=1e-6)
    np.testing.assert_allclose(mixed_t.numpy(), [[0.75, 0.25], [0.25, 0.75]], rtol=1e-6)


def test_mixup_of_the_first_rows_takes_partners_from_every_row():
    x = tf.constant([[1.0], [2.0], [3.0], [4.0]])
    t = tf.constant([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    mixed_x, mixed_t = ops.mixup(x, t, 0.75, tf.constant([3, 2, 0, 1]), rows=2)
    np.testing.assert_allclose(mixed_x.numpy(), [[0.75 * 1 + 0.25 * 4], [0.75 * 2 + 0.25 * 3]], rtol=1e-6)
    np.testing.assert_allclose(mixed_t.numpy(), [[0.75, 0.25], [0.75, 0.25]], rtol=1e-6)


def test_mix_lambda_is_at_least_one_half_and_follows_beta():
    rng = np.random.default_rng(0)
    draws = np.array([ops.sample_mix_lambda(rng, 4.0) for _ in range(20000)])
    assert draws.min() >= 0.5 and draws.max() <= 1.0
    # same distribution as max(l, 1 - l) over independent Beta(4, 4) draws (means agree to MC error ~0.001)
    reference = np.random.default_rng(1).beta(4.0, 4.0, size=200000)
    assert abs(draws.mean() - np.maximum(reference, 1 - reference).mean()) < 0.003


def test_random_permutation_is_a_permutation_and_seeded():
    seed = tf.constant([3, 4], tf.int64)
    p = ops.random_permutation(10, seed).numpy()
    assert sorted(p) == list(range(10))
    np.testing.assert_array_equal(p, ops.random_permutation(10, seed).numpy())
    assert not np.array_equal(p, ops.random_permutation(10, tf.constant([3, 5], tf.int64)).numpy())


def test_soft_cross_entropy_and_squared_error_by_hand():
    logits = tf.constant([[0.0, math.log(3.0)]])  # softmax = (0.25, 0.75)
    targets = tf.constant([[0.5, 0.5]])
    expected_ce = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    np.testing.assert_allclose(ops.soft_cross_entropy(logits, targets).numpy(), [expected_ce], rtol=1e-6)
    np.testing.assert_allclose(ops.squared_error(logits, targets).numpy(), [0.25**2 + 0.25**2], rtol=1e-6)


@pytest.mark.parametrize(
    "current, expected",
    [(10.0, 0.0), (9.0, 0.0), (14.0, 25.0 * 4 / 16), (18.0, 25.0 * 0.5), (26.0, 25.0), (100.0, 25.0)],
)
def test_linear_rampup(current, expected):
    assert ops.linear_rampup(current, warm_up=10, lambda_u=25.0, rampup_length=16) == pytest.approx(expected)


def test_negative_entropy_by_hand():
    # uniform over 4 classes: sum p log p = log(1/4); one-hot-ish logits approach 0
    np.testing.assert_allclose(ops.negative_entropy(tf.zeros([1, 4])).numpy(), [math.log(0.25)], rtol=1e-6)
    logits = tf.constant([[0.0, math.log(3.0)]])  # (0.25, 0.75)
    expected = 0.25 * math.log(0.25) + 0.75 * math.log(0.75)
    np.testing.assert_allclose(ops.negative_entropy(logits).numpy(), [expected], rtol=1e-6)


def test_uniform_prior_penalty_by_hand():
    # uniform mean prediction: no penalty; (0.25, 0.75): 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    assert ops.uniform_prior_penalty(tf.constant([0.5, 0.5])).numpy() == pytest.approx(0.0, abs=1e-7)
    expected = 0.5 * math.log(2.0) + 0.5 * math.log(0.5 / 0.75)
    assert ops.uniform_prior_penalty(tf.constant([0.25, 0.75])).numpy() == pytest.approx(expected, rel=1e-6)


def test_random_permutation_is_the_same_under_xla():
    jitted = tf.function(ops.random_permutation, jit_compile=True)
    rng = np.random.default_rng(0)
    for n in (1, 7, 64, 300):
        seed = tf.constant(rng.integers(2**31, size=2), tf.int64)
        eager = ops.random_permutation(n, seed).numpy()
        np.testing.assert_array_equal(jitted(tf.constant(n), seed).numpy(), eager)
        # and the order of the float keys it replaced (stateless_uniform, ties by index)
        np.testing.assert_array_equal(eager, np.argsort(tf.random.stateless_uniform([n], seed=seed).numpy(), kind="stable"))


def test_uniform_prior_penalty_over_the_present_classes_only():
    mean_probs = tf.constant([0.5, 0.3, 0.2, 0.0])
    # by hand: the prior is 1/3 on the three present classes, 0 (and 0 log 0 = 0) on the fourth
    hand = sum(np.log((1 / 3) / q) / 3 for q in (0.5, 0.3, 0.2))
    assert float(ops.uniform_prior_penalty(mean_probs, np.array([1, 1, 1, 0], np.float32))) == pytest.approx(hand, rel=1e-6)
    assert float(ops.uniform_prior_penalty(tf.fill([4], 0.25))) == pytest.approx(0.0, abs=1e-7)
    # without the mask, the class nobody predicts makes it infinite: the push onto classes that do not exist
    assert float(ops.uniform_prior_penalty(mean_probs)) == np.inf
    # and the masked penalty's gradient stays finite at the absent class
    with tf.GradientTape() as tape:
        tape.watch(mean_probs)
        value = ops.uniform_prior_penalty(mean_probs, np.array([1, 1, 1, 0], np.float32))
    grad = tape.gradient(value, mean_probs).numpy()
    np.testing.assert_allclose(grad, [-1 / 1.5, -1 / 0.9, -1 / 0.6, 0.0], rtol=1e-6)  # d/dq of -(1/3) log q
