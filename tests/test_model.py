"""DivideMixModel's steps: what they compute, which weights they touch, and the co-divide wiring."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras import ops, trainer, zoo
from dmkeras.codivide import CoDivide
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.distribute import distribute
from dmkeras.model import SEMI_SUPERVISED, WARMUP, StandardModel
from tests.helpers import dividemix_model, image_bank, random_images

NUM_CLASSES = 3


def _model(batchnorm=False, lr=0.1, momentum=0.0, weight_decay=0.0, **kwargs):
    net_args = dict(width=8, batchnorm=batchnorm)
    return dividemix_model(NUM_CLASSES, lr=lr, momentum=momentum, seed=0, net_args=net_args, weight_decay=weight_decay, **kwargs)


def _bank(n=40, seed=0):
    return image_bank(random_images(np.random.default_rng(seed), n), AugmentConfig(False, False, 0))


def _weights(net):
    return [w.numpy().copy() for w in net.weights]


def _ssl_batch(bank, labeled, unlabeled, labels, clean_prob):
    plan = [(np.asarray(labeled), np.asarray(unlabeled))]
    return next(iter(pipeline.ssl_dataset(bank, labels, clean_prob, plan, num_replicas=1, seed=0)))


@pytest.mark.parametrize("prior_penalty", [1.0, 0.25, 0.0])
def test_ssl_step_losses_match_a_hand_computation_without_mixing(prior_penalty):
    model = _model(prior_penalty=prior_penalty)
    bank = _bank()
    labels = np.arange(40) % NUM_CLASSES
    clean_prob = np.linspace(0.2, 0.9, 40)
    batch = _ssl_batch(bank, range(0, 8), range(20, 28), labels, clean_prob)
    net1, net2 = model.nets
    # the expected values, from the ops, before the step changes net 1 (mix lambda 1: no mixing)
    soft = lambda net, x, training: tf.nn.softmax(net(x, training=training))  # noqa: E731
    guessed = ops.co_guess([soft(net1, batch["u1"], True), soft(net1, batch["u2"], True), soft(net2, batch["u1"], False), soft(net2, batch["u2"], False)], 0.5)
    refined = ops.co_refine(tf.one_hot(batch["y"], NUM_CLASSES), batch["w"], soft(net1, batch["x1"], True), soft(net1, batch["x2"], True), 0.5)
    logits = net1(tf.concat([batch["x1"], batch["x2"], batch["u1"], batch["u2"]], 0), training=True)
    targets = tf.concat([refined, refined, guessed, guessed], 0)
    loss_x = tf.reduce_mean(ops.soft_cross_entropy(logits[:16], targets[:16])).numpy()
    loss_u = tf.reduce_mean(tf.square(tf.nn.softmax(logits[16:]) - targets[16:])).numpy()  # mean over rows and classes
    penalty = prior_penalty * ops.uniform_prior_penalty(tf.reduce_mean(tf.nn.softmax(logits), 0)).numpy()

    out = model.ssl_step(0, batch, tf.constant(1.0), tf.constant(2.0), tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(out["loss_x"].numpy(), loss_x, rtol=1e-5)
    np.testing.assert_allclose(out["loss_u"].numpy(), loss_u, rtol=1e-5)
    np.testing.assert_allclose(out["penalty"].numpy(), penalty, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out["loss"].numpy(), loss_x + 2.0 * loss_u + penalty, rtol=1e-5)


def test_ssl_step_on_labeled_rows_mixes_with_all_rows_but_trains_on_the_first_2b():
    """The reference's Clothing1M / WebVision step: partners from all 4B rows, L_x + penalty on 2B."""
    model = _model(ssl_rows="labeled")
    bank = _bank()
    labels = np.arange(40) % NUM_CLASSES
    batch = _ssl_batch(bank, range(0, 8), range(20, 28), labels, np.linspace(0.2, 0.9, 40))
    net1, net2 = model.nets
    soft = lambda net, x, training: tf.nn.softmax(net(x, training=training))  # noqa: E731
    guessed = ops.co_guess([soft(net1, batch["u1"], True), soft(net1, batch["u2"], True), soft(net2, batch["u1"], False), soft(net2, batch["u2"], False)], 0.5)
    refined = ops.co_refine(tf.one_hot(batch["y"], NUM_CLASSES), batch["w"], soft(net1, batch["x1"], True), soft(net1, batch["x2"], True), 0.5)
    inputs = tf.concat([batch["x1"], batch["x2"], batch["u1"], batch["u2"]], 0)
    targets = tf.concat([refined, refined, guessed, guessed], 0)
    seed = tf.constant([1, 2], tf.int64)
    permutation = ops.random_permutation(32, seed).numpy()
    assert (permutation[:16] >= 16).any()  # some labeled rows take an unlabeled partner
    lam = 0.7
    mixed_x = lam * inputs[:16] + (1 - lam) * tf.gather(inputs, permutation[:16])
    mixed_t = lam * targets[:16] + (1 - lam) * tf.gather(targets, permutation[:16])
    logits = net1(mixed_x, training=True)  # 16 rows only: BatchNorm statistics over them
    loss_x = tf.reduce_mean(ops.soft_cross_entropy(logits, mixed_t)).numpy()
    penalty = ops.uniform_prior_penalty(tf.reduce_mean(tf.nn.softmax(logits), 0)).numpy()

    out = model.ssl_step(0, batch, tf.constant(lam), tf.constant(0.0), seed)
    np.testing.assert_allclose(out["loss_x"].numpy(), loss_x, rtol=1e-5)
    np.testing.assert_allclose(out["penalty"].numpy(), penalty, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out["loss"].numpy(), loss_x + penalty, rtol=1e-5)
    assert out["loss_u"].numpy() == 0.0


def test_ssl_rows_must_be_all_or_labeled():
    with pytest.raises(Exception, match="ssl_rows must be one of all, labeled"):
        _model(ssl_rows="unlabeled")


@pytest.mark.parametrize("k", [0, 1])
def test_ssl_step_updates_only_the_training_net_including_batchnorm_statistics(k):
    model = _model(batchnorm=True)
    bank = _bank()
    batch = _ssl_batch(bank, range(8), range(20, 28), np.zeros(40, np.int64), np.full(40, 0.7))
    before = [_weights(n) for n in model.nets]
    model.ssl_step(k, batch, tf.constant(0.7), tf.constant(1.0), tf.constant([0, 1], tf.int64))
    after = [_weights(n) for n in model.nets]
    assert any(not np.array_equal(a, b) for a, b in zip(before[k], after[k]))
    for a, b in zip(before[1 - k], after[1 - k]):  # the other net, moving statistics included, is untouched
        np.testing.assert_array_equal(a, b)


def test_weight_decay_is_added_to_the_gradient_like_pytorch_sgd():
    model = _model(lr=0.1, momentum=0.0, weight_decay=0.01)
    net = model.nets[0]
    bank = _bank()
    batch = next(iter(pipeline.warmup_dataset(bank, np.arange(40) % NUM_CLASSES, [np.arange(16)], 1, seed=0)))
    before = [w.numpy().copy() for w in net.trainable_weights]
    with tf.GradientTape() as tape:
        logits = net(batch["x"], training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(batch["y"], logits, from_logits=True))
    grads = [g.numpy() for g in tape.gradient(loss, net.trainable_weights)]
    model.warmup_step(0, batch)
    for w0, g, w1 in zip(before, grads, net.trainable_weights):
        np.testing.assert_allclose(w1.numpy(), w0 - 0.1 * (g + 0.01 * w0), rtol=1e-4, atol=1e-6)


def test_warmup_step_adds_the_confidence_penalty_when_asked():
    bank = _bank()
    batch = next(iter(pipeline.warmup_dataset(bank, np.arange(40) % NUM_CLASSES, [np.arange(16)], 1, seed=0)))
    model = _model(confidence_penalty=True)
    logits = model.nets[0](batch["x"], training=True)
    expected = tf.reduce_mean(ops.negative_entropy(logits)).numpy()
    out = model.warmup_step(0, batch)
    np.testing.assert_allclose(out["penalty"].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(out["loss"].numpy(), out["ce"].numpy() + expected, rtol=1e-5)
    assert set(_model().warmup_step(0, batch)) == {"loss"}


def test_step_without_unlabeled_data_trains_on_the_labeled_views():
    model = _model()
    bank = _bank()
    batch = _ssl_batch(bank, range(8), [], np.zeros(40, np.int64), np.full(40, 0.9))
    assert batch["u1"].shape[0] == 0
    out = model.ssl_step(0, batch, tf.constant(0.8), tf.constant(25.0), tf.constant([0, 1], tf.int64), with_unlabeled=False)
    assert out["loss_u"].numpy() == 0.0 and np.isfinite(out["loss"].numpy())


def test_test_step_scores_the_ensemble_and_each_net():
    model = _model()
    bank = _bank()
    images = bank.load(tf.range(40))
    labels = np.arange(40) % NUM_CLASSES
    result = model.evaluate(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16), verbose=0, return_dict=True)
    net1, net2 = model.nets
    for key, logits in (("acc", net1(images) + net2(images)), ("acc_net1", net1(images)), ("acc_net2", net2(images))):
        assert result[key] == pytest.approx(np.mean(np.argmax(logits, 1) == labels))


def _scripted_codivide(model, bank, labels, losses_by_net):
    """A CoDivide whose nets' per-sample losses are scripted, to follow which division trains which net."""
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=4, true_labels=labels, seed=0)
    codivide.sample_losses = lambda k: losses_by_net[k]
    codivide.set_model(model)
    return codivide


def test_each_net_trains_on_the_division_made_by_the_other_net():
    model = _model()
    bank = _bank(40)
    labels = np.arange(40) % NUM_CLASSES
    low_for_net1 = np.where(np.arange(40) < 10, 0.05, 0.9) + np.linspace(0, 0.01, 40)
    low_for_net2 = np.where((np.arange(40) >= 10) & (np.arange(40) < 30), 0.05, 0.9) + np.linspace(0, 0.01, 40)
    codivide = _scripted_codivide(model, bank, labels, [low_for_net1, low_for_net2])
    codivide.on_epoch_begin(0)
    by_net1, by_net2 = codivide.divisions
    np.testing.assert_array_equal(by_net1.labeled_indices, np.arange(10))
    np.testing.assert_array_equal(by_net2.labeled_indices, np.arange(10, 30))
    pass1, pass2 = codivide.passes
    assert (pass1.net, pass1.num_labeled, pass1.num_unlabeled) == (0, 20, 20)  # net 1 <- net 2's division
    assert (pass2.net, pass2.num_labeled, pass2.num_unlabeled) == (1, 10, 30)  # net 2 <- net 1's division
    seen = sorted(int(round(v)) for batch in pass1.dataset for v in (batch["x1"].numpy()[:, 0, 0, 0] * 0.25 + 0.5) * 255)
    expected = sorted(bank.images[10:30, 0, 0, 0].tolist())
    assert seen == expected
    for batch in pass1.dataset:  # w comes from net 2's GMM
        assert set(np.round(batch["w"].numpy(), 5)) <= set(np.round(by_net2.clean_prob[10:30].astype(np.float32), 5))
    assert codivide.epoch_logs["net1_labeled"] == 10 and codivide.epoch_logs["net2_labeled"] == 20


def test_both_divisions_are_made_before_either_net_trains_in_the_epoch():
    model = _model()
    bank = _bank(40)
    labels = np.arange(40) % NUM_CLASSES
    events = []
    losses = [np.linspace(0, 1, 40) ** 2, np.linspace(1, 0, 40) ** 2]
    codivide = _scripted_codivide(model, bank, labels, losses)

    def scripted(k):
        events.append(("divide", k, [w.numpy().copy() for w in model.nets[k].weights]))
        return losses[k]

    codivide.sample_losses = scripted
    original = model.step_function

    def spying_step_function(phase, k, with_unlabeled=True):
        fn = original(phase, k, with_unlabeled)

        def spy(*args):
            events.append(("step", k, None))
            return fn(*args)

        return spy

    model.step_function = spying_step_function
    start = [_weights(n) for n in model.nets]
    test_data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(40)), labels)).batch(20)
    trainer.train(model, codivide, epochs=1, test_data=test_data, lambda_u=1.0, verbose=0)
    kinds = [(kind, k) for kind, k, _ in events]
    first_step = kinds.index(("step", 0))
    assert kinds[:first_step] == [("divide", 0), ("divide", 1)]
    assert ("step", 1) in kinds and kinds.index(("step", 1)) > max(i for i, e in enumerate(kinds) if e == ("step", 0))
    for k in (0, 1):  # each division used the weights the net had at the start of the epoch
        for a, b in zip(events[k][2], start[k]):
            np.testing.assert_array_equal(a, b)


def test_standard_model_trains_one_net_with_warmup_steps():
    keras.utils.set_random_seed(0)
    net = zoo.create_model("small_cnn", NUM_CLASSES, (8, 8, 1), width=8)
    model = StandardModel(net, num_classes=NUM_CLASSES)
    model.compile(keras.optimizers.SGD(0.1))
    assert model.nets == (net,)
    bank = _bank()
    labels = np.arange(40) % NUM_CLASSES
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=8, num_nets=1)
    test_data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(40)), labels)).batch(20)
    history = trainer.train(model, codivide, epochs=2, test_data=test_data, verbose=0)
    assert [h["phase"] for h in history] == [WARMUP, WARMUP]
    assert "net1_loss" in history[0] and "net2_loss" not in history[0] and "test_acc" in history[0]


def test_step_functions_are_compiled_once_per_phase_and_net():
    model = _model()
    assert model.step_function(WARMUP, 0) is model.step_function(WARMUP, 0)
    assert model.step_function(SEMI_SUPERVISED, 0) is not model.step_function(SEMI_SUPERVISED, 1)


def test_a_trained_model_exports_as_a_savedmodel_of_the_ensemble_logits(tmp_path):
    """The compiled steps (keyed by tuples) stay out of the artifact: Keras' export of a model
    that has trained and been scored works, and serves net1(x) + net2(x)."""
    model = _model()
    model.step_function(WARMUP, 0)
    model.step_function(SEMI_SUPERVISED, 1)
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype(np.float32)
    expected = model(x).numpy()  # builds the model too
    np.testing.assert_allclose(expected, (model.net1(x) + model.net2(x)).numpy(), rtol=1e-6)
    model.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: its variables die with it
    served = reloaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-5)
    assert model.step_function(WARMUP, 0) is model.step_function(WARMUP, 0)  # the cache survives


def test_distributed_step_function_runs_on_the_default_strategy():
    model = _model()
    bank = _bank()
    plan = pipeline.ssl_plan(np.arange(8), np.arange(20, 40), 4, np.random.default_rng(0))
    dataset = distribute(model.distribute_strategy, pipeline.ssl_dataset(bank, np.zeros(40, np.int64), np.full(40, 0.8), plan, 1, 0))
    out = model.step_function(SEMI_SUPERVISED, 1)(iter(dataset), tf.constant(0.6), tf.constant(1.0), tf.constant([0, 0], tf.int64))
    assert set(out) == {"loss", "loss_x", "loss_u", "penalty"} and np.isfinite(float(out["loss"]))


def test_syncing_replica_statistics_is_a_no_op_on_one_replica():
    model = _model(batchnorm=True)
    before = [w.numpy().copy() for net in model.nets for w in net.non_trainable_weights]
    model.sync_replica_statistics()
    model.sync_replica_statistics(1)
    assert before and not {("sync_statistics", 0), ("sync_statistics", 1)} & set(model._step_functions)  # nothing compiled
    for a, w in zip(before, [w for net in model.nets for w in net.non_trainable_weights]):
        np.testing.assert_array_equal(a, w.numpy())
