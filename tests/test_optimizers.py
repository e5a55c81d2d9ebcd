"""TorchSGD: PyTorch's momentum buffer, by hand, against Keras' SGD across a learning-rate drop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras import optimizers

GRADIENTS = ([0.5, 1.0], [0.2, -0.3], [1.0, 1.0], [-0.4, 0.1])
LRS = (0.1, 0.1, 0.01, 0.01)  # a drop after two steps


def _run(optimizer):
    w = keras.Variable(np.array([1.0, -2.0], np.float32))
    optimizer.build([w])
    for lr, g in zip(LRS, GRADIENTS):
        optimizer.learning_rate = lr
        optimizer.apply([tf.constant(g, tf.float32)], [w])
    return w.numpy()


def _by_hand(torch_style):
    w, buf = np.array([1.0, -2.0]), np.zeros(2)
    for lr, g in zip(LRS, GRADIENTS):
        if torch_style:  # torch.optim.SGD: buf = m buf + g; w -= lr buf
            buf = 0.9 * buf + np.asarray(g)
            w = w - lr * buf
        else:  # keras: v = m v - lr g; w += v
            buf = 0.9 * buf - lr * np.asarray(g)
            w = w + buf
    return w


def test_torch_sgd_is_pytorchs_rule_and_differs_from_keras_after_an_lr_drop():
    torch_w = _run(optimizers.TorchSGD(learning_rate=0.1, momentum=0.9))
    keras_w = _run(keras.optimizers.SGD(learning_rate=0.1, momentum=0.9))
    np.testing.assert_allclose(torch_w, _by_hand(True), rtol=1e-6)
    np.testing.assert_allclose(keras_w, _by_hand(False), rtol=1e-6)
    assert np.abs(torch_w - keras_w).max() > 1e-2  # the old lr lingers in Keras' velocity


def test_torch_sgd_without_momentum_and_the_factory():
    w = _run(optimizers.TorchSGD(learning_rate=0.1, momentum=0.0))
    np.testing.assert_allclose(w, np.array([1.0, -2.0]) - sum(lr * np.asarray(g) for lr, g in zip(LRS, GRADIENTS)), rtol=1e-6)
    assert isinstance(optimizers.sgd(0.1, 0.9, "torch"), optimizers.TorchSGD)
    assert type(optimizers.sgd(0.1, 0.9, "keras")) is keras.optimizers.SGD
    with pytest.raises(ValueError, match="momentum_buffer"):
        optimizers.sgd(0.1, 0.9, "adam")


def test_torch_sgd_round_trips_through_its_config():
    optimizer = optimizers.TorchSGD(learning_rate=0.05, momentum=0.9)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, optimizers.TorchSGD) and clone.momentum == pytest.approx(0.9)
