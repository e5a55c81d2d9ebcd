"""CoDivide with --division=unicon: one selection from both nets' softmax outputs, shared by both
nets, and a semi-supervised epoch that trains on it."""

import numpy as np
import tensorflow as tf

from dmkeras import division, trainer
from dmkeras.codivide import CoDivide
from tests.helpers import dividemix_model, image_bank, random_labeled_images

NUM_CLASSES = 3


def test_unicon_division_is_shared_and_made_from_both_nets_predictions():
    n = 30
    model = dividemix_model(NUM_CLASSES, seed=0, net_args=dict(width=8))
    images, labels = random_labeled_images(np.random.default_rng(0), n, NUM_CLASSES)
    bank = image_bank(images)
    test_data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(n)), labels)).batch(16)
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=(n, NUM_CLASSES)) * 3 for _ in range(2)]  # fixed "predictions" of net 1 / net 2
    model.predict_logits = lambda k, dataset: logits[k].astype(np.float32)
    codivide = CoDivide(bank, labels, warm_up=0, batch_size=4, division="unicon", num_classes=NUM_CLASSES, true_labels=labels)
    codivide.set_model(model)
    history = trainer.train(model, codivide, epochs=1, test_data=test_data, lambda_u=25.0, verbose=0)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    expected = division.unicon_divide(softmax(logits[0].astype(np.float32).astype(np.float64)),
                                      softmax(logits[1].astype(np.float32).astype(np.float64)), labels, num_classes=3)
    first, second = codivide.divisions
    assert first is second  # one selection for both nets, as UNICON's main loop
    np.testing.assert_array_equal(first.labeled, expected.labeled)
    np.testing.assert_allclose(first.losses, expected.losses)
    per_class = int(division.selection_ratio(expected.losses) * n / NUM_CLASSES)  # the same count per class
    np.testing.assert_array_equal(np.bincount(labels[first.labeled], minlength=3),
                                  np.minimum(per_class, np.bincount(labels, minlength=3)))
    assert history[0]["net1_labeled"] == history[0]["net2_labeled"] == int(expected.labeled.sum())
    assert np.isfinite(history[0]["net1_loss"]) and np.isfinite(history[0]["net2_loss"])
