"""UNICON's contrastive term (issue 12): the loss by hand, what the step adds and trains, and
that the projection heads are checkpointed and saved with the model."""

import types

import numpy as np
import pytest
import tensorflow as tf

from dmkeras import checkpoint, ops
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from tests.helpers import dividemix_model, image_bank, random_images

NUM_CLASSES = 3


def _nt_xent_by_loop(z1, z2, temperature):
    """NT-Xent written out anchor by anchor (numpy), the oracle of ops.contrastive_loss."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n, half = len(z), len(z1)
    losses = []
    for i in range(n):
        positive = (i + half) % n
        others = [a for a in range(n) if a != i]
        denominator = sum(np.exp(z[i] @ z[a] / temperature) for a in others)
        losses.append(-np.log(np.exp(z[i] @ z[positive] / temperature) / denominator))
    return float(np.mean(losses))


def test_contrastive_loss_of_two_orthogonal_samples_by_hand():
    # views of sample a along x, of sample b along y (lengths do not matter: cosine similarity)
    z1 = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    z2 = tf.constant([[2.0, 0.0], [0.0, 3.0]])
    # every anchor: its positive at similarity 1, two negatives at 0 -> -log(e^(1/t) / (e^(1/t) + 2))
    expected = -np.log(np.exp(2.0) / (np.exp(2.0) + 2.0))
    np.testing.assert_allclose(ops.contrastive_loss(z1, z2, 0.5).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_contrastive_loss_matches_the_anchor_by_anchor_definition(temperature):
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    got = ops.contrastive_loss(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), temperature).numpy()
    np.testing.assert_allclose(got, _nt_xent_by_loop(z1, z2, temperature), rtol=1e-4)


def _model(contrastive_weight):
    return dividemix_model(
        NUM_CLASSES, lr=0.1, momentum=0.0, seed=0, net_args=dict(width=8, batchnorm=False), weight_decay=0.0,
        contrastive_weight=contrastive_weight, contrastive_temperature=0.5, projection_dim=16,
    )


def _batch():
    bank = image_bank(random_images(np.random.default_rng(0), 40), AugmentConfig(False, False, 0))
    plan = [(np.arange(8), np.arange(20, 28))]
    labels, clean_prob = np.arange(40) % NUM_CLASSES, np.linspace(0.2, 0.9, 40)
    return next(iter(pipeline.ssl_dataset(bank, labels, clean_prob, plan, num_replicas=1, seed=0)))


def _values(variables):
    return [v.numpy().copy() for v in variables]


def test_the_step_adds_lambda_c_times_the_loss_of_the_unlabeled_views_and_trains_the_head():
    batch = _batch()
    plain_out = _model(0.0).ssl_step(0, batch, tf.constant(1.0), tf.constant(2.0), tf.constant([1, 2], tf.int64))
    model = _model(0.3)
    head1, head2 = model.projection_heads
    # the nets are drawn from the same seed as the plain model's: the same L_x, L_u, penalty
    views = model.projections(0, tf.concat([batch["u1"], batch["u2"]], 0), training=True)
    expected_c = ops.contrastive_loss(views[:8], views[8:], 0.5).numpy()
    before = _values(head1.trainable_variables), _values(head2.variables)

    out = model.ssl_step(0, batch, tf.constant(1.0), tf.constant(2.0), tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(out["loss_c"].numpy(), expected_c, rtol=1e-5)
    for name in ("loss_x", "loss_u", "penalty"):
        np.testing.assert_allclose(out[name].numpy(), plain_out[name].numpy(), rtol=1e-5)
    np.testing.assert_allclose(out["loss"].numpy(), plain_out["loss"].numpy() + 0.3 * expected_c, rtol=1e-5)
    assert all(not np.array_equal(a, b) for a, b in zip(before[0], _values(head1.trainable_variables)))
    for a, b in zip(before[1], _values(head2.variables)):  # the other net's head is untouched
        np.testing.assert_array_equal(a, b)


def test_without_the_term_there_is_no_head_and_no_loss_c():
    model = _model(0.0)
    assert model.projection_heads == ()
    assert model.trained_weights(0) == model.net1.trainable_weights
    out = model.ssl_step(0, _batch(), tf.constant(0.8), tf.constant(1.0), tf.constant([0, 1], tf.int64))
    assert "loss_c" not in out


def test_each_net_trains_its_own_head_with_it():
    model = _model(0.3)
    for k in (0, 1):
        head = model.projection_heads[k].trainable_weights  # Dense kernel and bias, BN gamma and beta
        assert len(head) == 4
        assert model.trained_weights(k) == model.nets[k].trainable_weights + head


def test_checkpoints_hold_the_heads(tmp_path):
    model = _model(0.3)
    model.ssl_step(0, _batch(), tf.constant(0.8), tf.constant(1.0), tf.constant([0, 1], tf.int64))
    saved = [_values(h.variables) for h in model.projection_heads]
    codivide = types.SimpleNamespace(histories=[])
    checkpoint.save(str(tmp_path), model, codivide, history=[{"epoch": 1}], elapsed_s=1.0)
    for head in model.projection_heads:
        for v in head.variables:
            v.assign(tf.zeros_like(v))
    checkpoint.restore(checkpoint.latest(str(tmp_path)), model, codivide)
    for head, values in zip(model.projection_heads, saved):
        for v, value in zip(head.variables, values):
            np.testing.assert_array_equal(v.numpy(), value)


def test_a_saved_dividemix_keeps_its_heads_and_settings(tmp_path):
    import keras

    import dmkeras

    model = dmkeras.DivideMix(
        "small_cnn", num_classes=NUM_CLASSES, input_shape=(8, 8, 1), backbone_args={"width": 8}, warm_up=0,
        contrastive_weight=0.1, contrastive_temperature=0.2,
    )
    rng = np.random.default_rng(1)
    for head in model.projection_heads:
        for v in head.variables:
            v.assign(rng.normal(size=v.shape).astype(np.float32))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert (loaded.contrastive_weight, loaded.contrastive_temperature) == (0.1, 0.2)
    for head, loaded_head in zip(model.projection_heads, loaded.projection_heads):
        for v, w in zip(head.variables, loaded_head.variables):
            np.testing.assert_array_equal(v.numpy(), w.numpy())
