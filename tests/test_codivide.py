"""CoDivide at the edges: divisions that leave a set empty or smaller than a batch, any dataset
size, warm-up passes, and reproducibility of a whole run from its seed."""

import gc
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras import metrics, trainer
from dmkeras.codivide import CoDivide
from dmkeras.data import pipeline
from dmkeras.model import SEMI_SUPERVISED, WARMUP
from tests.helpers import dividemix_model, image_bank, random_labeled_images

NUM_CLASSES = 3


def _setup(n=37, seed=0):
    model = dividemix_model(NUM_CLASSES, seed=seed, net_args=dict(width=8))
    images, labels = random_labeled_images(np.random.default_rng(seed), n, NUM_CLASSES)
    bank = image_bank(images)
    test_data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(n)), labels)).batch(16)
    return model, bank, labels, test_data


def _train(model, codivide, test_data, epochs=1):
    return trainer.train(model, codivide, epochs=epochs, test_data=test_data, lambda_u=25.0, verbose=0)


def test_past_epochs_pipelines_are_freed_every_epoch():
    """Each epoch's pipelines (passes, scoring) trace tf.data functions whose graphs sit in
    reference cycles; the trainer collects them at the end of every epoch, so the eager context
    holds the same number of dataset functions after every semi-supervised epoch. The interpreter's
    own collector is off here: only the trainer's collection frees them."""
    from tensorflow.python.eager import context

    model, bank, labels, test_data = _setup(n=40)
    codivide = CoDivide(bank, labels, warm_up=1, batch_size=8)
    counts = []

    class CountDatasetFunctions(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            counts.append(sum("Dataset" in name for name in context.context().list_function_names()))

    enabled = gc.isenabled()
    gc.disable()
    try:
        trainer.train(model, codivide, epochs=5, test_data=test_data, lambda_u=25.0, verbose=0, callbacks=[CountDatasetFunctions()])
    finally:
        if enabled:
            gc.enable()
    assert counts[1:] == [counts[1]] * 4, counts  # without the collection: 3 more every epoch


def test_warmup_passes_cover_all_samples_with_double_batches():
    model, bank, labels, _ = _setup(n=37)
    codivide = CoDivide(bank, labels, warm_up=2, batch_size=4)
    codivide.set_model(model)
    codivide.on_epoch_begin(0)
    assert [(p.net, p.phase, p.num_steps) for p in codivide.passes] == [(0, WARMUP, 5), (1, WARMUP, 5)]  # ceil(37 / 8)
    assert sum(len(b["y"]) for b in codivide.passes[0].dataset) == 37


def test_all_losses_equal_labels_everything_and_training_survives_without_unlabeled(caplog):
    model, bank, labels, test_data = _setup()
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=8, true_labels=labels)
    codivide.sample_losses = lambda k: np.full(len(labels), 0.3)  # no evidence of noise: degenerate GMM
    with caplog.at_level(logging.WARNING, logger="dmkeras"):
        history = _train(model, codivide, test_data)
    assert all(p.num_unlabeled == 0 and p.num_labeled == 37 for p in codivide.passes)
    assert "judged every sample clean" in caplog.text
    assert history[0]["net1_loss_u"] == 0.0 and np.isfinite(history[0]["net1_loss"])
    assert history[0]["net1_labeled"] == 37


def test_nothing_labeled_skips_the_pass_and_training_goes_on(caplog):
    model, bank, labels, test_data = _setup()
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=8, p_threshold=1.0)  # w > 1 never holds
    codivide.sample_losses = lambda k: np.linspace(0, 1, len(labels)) ** 2
    before = [w.numpy().copy() for w in model.net1.trainable_weights]
    with caplog.at_level(logging.WARNING, logger="dmkeras"):
        history = _train(model, codivide, test_data, epochs=2)
    assert len(history) == 2 and all(p.num_steps == 0 for p in codivide.passes)
    assert "labeled no sample" in caplog.text and "net1_loss" not in history[0]
    for a, b in zip(before, model.net1.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert "test_acc" in history[1]


@pytest.mark.parametrize("labeled_count", [1, 5])
def test_sets_smaller_than_a_batch(labeled_count):
    model, bank, labels, test_data = _setup(n=30)
    losses = np.r_[np.zeros(labeled_count), np.full(30 - labeled_count, 0.9)] + np.linspace(0, 0.01, 30)
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=16)
    codivide.sample_losses = lambda k: losses
    history = _train(model, codivide, test_data)
    assert codivide.passes[0].num_labeled == labeled_count and codivide.passes[0].num_steps == 1
    assert np.isfinite(history[0]["net1_loss"]) and np.isfinite(history[0]["net2_loss"])
    # and the mirror image: an unlabeled set smaller than a batch
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=16)
    codivide.sample_losses = lambda k: 0.9 - losses
    history = _train(model, codivide, test_data)
    assert codivide.passes[0].num_unlabeled == labeled_count and np.isfinite(history[0]["net1_loss_u"])


def test_a_run_is_reproducible_from_its_seed():
    def run():
        model, bank, labels, test_data = _setup(n=40, seed=3)
        codivide = CoDivide(bank, labels, warm_up=1, batch_size=8, seed=3)
        history = trainer.train(model, codivide, epochs=2, test_data=test_data, lambda_u=25.0, seed=3, verbose=0)
        return history, [w.numpy() for w in model.weights]

    (h1, w1), (h2, w2) = run(), run()
    for a, b in zip(h1, h2):
        assert {k: v for k, v in a.items() if k not in metrics.MEASURED} == {k: v for k, v in b.items() if k not in metrics.MEASURED}
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_ssl_pass_ramp_iterations_follow_the_reference():
    model, bank, labels, _ = _setup(n=37)
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=4)
    codivide.sample_losses = lambda k: np.r_[np.zeros(10), np.ones(27)] + np.linspace(0, 0.01, 37)
    codivide.set_model(model)
    codivide.on_epoch_begin(0)
    first = codivide.passes[0]
    assert first.phase == SEMI_SUPERVISED and first.num_labeled == 10
    assert first.ramp_iterations == 10 // 4 + 1 and first.num_steps == 3  # batches: 4, 4, 2


def test_the_first_warmup_pass_is_not_ordered_by_the_label_noise():
    # the noise picks the first int(r N) of default_rng(seed).permutation(N); the epoch plans must
    # draw from another stream, or net 1's first warm-up epoch would start with every noisy sample
    from dmkeras.data.noise import make_noisy_labels

    n, seed = 1000, 0
    clean = np.arange(n) % 10
    noisy = make_noisy_labels(clean, "sym", 0.5, 10, seed)
    model, bank, _, _ = _setup(n=n)
    codivide = CoDivide(bank, noisy, warm_up=1, batch_size=50, seed=seed)
    codivide.set_model(model)
    order = np.concatenate(pipeline.warmup_plan(n, 100, codivide._rng(0, 0)))
    picked = np.random.default_rng(seed).permutation(n)[:500]
    first_half = set(order[:500].tolist())
    assert 200 < len(first_half & set(picked.tolist())) < 300  # ~250 by chance, 500 if the streams were shared


def test_class_aware_division_in_training_keeps_every_class():
    # net losses that single out class 2 as "noisy": the reference gmm empties it, per_class_gmm does not
    model, bank, _, test_data = _setup(n=60)
    labels = np.arange(60) % 3
    losses = np.where(labels == 2, 0.8, 0.1) + np.random.default_rng(0).uniform(0, 0.05, 60)
    for strategy, emptied in (("gmm", True), ("per_class_gmm", False)):
        codivide = CoDivide(bank, labels, warm_up=0, batch_size=8, division=strategy, num_classes=3)
        codivide.sample_losses = lambda k: losses
        codivide.set_model(model)
        codivide.on_epoch_begin(0)
        kept = codivide.divisions[0].labeled
        assert (kept[labels == 2].sum() == 0) == emptied
        assert kept[labels != 2].sum() > 0


def test_freeze_backbone_trains_only_the_head_then_everything():
    from dmkeras.callbacks import FreezeBackbone

    model, bank, labels, test_data = _setup(n=40)
    codivide = CoDivide(bank, labels, warm_up=2, batch_size=8)
    net = model.net1
    before = [w.numpy().copy() for w in net.weights]
    trainer.train(model, codivide, epochs=1, test_data=test_data, callbacks=[FreezeBackbone(1)], verbose=0)
    changed = {w.path for w, old in zip(net.weights, before) if not np.array_equal(w.numpy(), old)}
    head = {w.path for w in net.layers[-1].weights}
    assert changed == head  # moving BN statistics untouched too: frozen BN runs in inference mode
    trainer.train(model, codivide, epochs=2, initial_epoch=1, test_data=test_data, callbacks=[FreezeBackbone(1)], verbose=0)
    assert all(layer.trainable for layer in net.layers)
    assert not np.array_equal(before[0], net.weights[0].numpy())


def test_a_class_emptied_from_the_labeled_set_is_named_once(caplog):
    _, bank, _, _ = _setup(n=12)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    codivide = CoDivide(bank, labels, warm_up=1, batch_size=4, num_classes=3)
    labeled = labels != 2  # class 2 has no labeled sample
    with caplog.at_level(logging.WARNING, logger="dmkeras"):
        codivide._warn_emptied_classes(0, labeled, labels)
        codivide._warn_emptied_classes(1, labeled, labels)  # the same class again: no second warning
    warnings = [r.getMessage() for r in caplog.records if "labels no sample" in r.getMessage()]
    assert warnings == ["net 1's division labels no sample of class(es) 2: net 2 learns them from guessed labels only "
                        "(division=per_class_gmm or class_floor keeps every class in the labeled set)"]
