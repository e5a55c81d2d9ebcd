"""SGD with PyTorch's momentum buffer, as the reference's `torch.optim.SGD(momentum=0.9)`.

Keras' SGD keeps the learning rate inside its velocity (`v = m * v - lr * g; w += v`); PyTorch's
buffer holds gradients only (`b = m * b + g; w -= lr * b`). With a constant learning rate the
two are the same update. After a learning-rate change they differ: Keras' velocity carries the
old rate for a few dozen steps (0.9^k of it after k steps), while PyTorch's new rate applies to
the whole buffer at once. `TorchSGD` is PyTorch's rule (no dampening, no Nesterov); the coupled
weight decay stays in the train steps (`_CoTrainedModel._apply_gradients`), as PyTorch adds it to
the gradient before the buffer. `tests/integration/test_parity.py` compares it with the reference over an lr
drop.
"""

import keras
from keras import ops

MOMENTUM_BUFFERS = ("torch", "keras")


@keras.saving.register_keras_serializable(package="dmkeras")
class TorchSGD(keras.optimizers.SGD):
    """SGD with momentum in PyTorch's form: `buf = momentum * buf + g`, `w -= lr * buf`.

    The buffer of the first step is the gradient itself, as in PyTorch (it starts at zero here,
    which gives the same value). The optimizer variables are Keras SGD's (`momentum` slots), so
    checkpoints have the same layout; their values are gradients, not velocities.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, name="torch_sgd", **kwargs):
        if kwargs.get("nesterov"):
            raise ValueError("TorchSGD has no Nesterov variant")
        super().__init__(learning_rate=learning_rate, momentum=float(momentum), name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.momentum == 0:
            self.assign_sub(variable, ops.multiply(gradient, learning_rate))
            return
        buffer = self.momentums[self._get_variable_index(variable)]
        self.assign(buffer, ops.add(ops.multiply(buffer, ops.cast(self.momentum, variable.dtype)), gradient))
        self.assign_sub(variable, ops.multiply(buffer, learning_rate))


def sgd(learning_rate: float, momentum: float, momentum_buffer: str = "torch") -> keras.optimizers.Optimizer:
    """The run's SGD: PyTorch's momentum buffer ("torch", the reference's) or Keras' ("keras")."""
    if momentum_buffer == "torch":
        return TorchSGD(learning_rate=learning_rate, momentum=momentum)
    if momentum_buffer == "keras":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=float(momentum))
    raise ValueError(f"momentum_buffer must be one of {', '.join(MOMENTUM_BUFFERS)}, got {momentum_buffer!r}")
