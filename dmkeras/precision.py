"""Mixed precision: under which Keras dtype policy the nets are built, and loss scaling.

`--mixed_precision` is `off` (float32, the default), `mixed_float16` or `mixed_bfloat16`. The
policy only decides how the *nets' layers* compute: their variables (the master weights) stay
float32, and every layer casts its inputs to the compute dtype (so the float32 images of the
pipelines need no cast). Everything DivideMix computes from the logits -- softmax, cross-entropy,
sharpening, mixup targets, penalties, accuracies -- is done in float32 (`DivideMixModel` casts the
logits), and the per-sample losses and the GMM stay float64 in NumPy.

The policy is set only while the nets are built (`policy_scope`), then the previous global policy
is restored: a layer keeps the policy it was built with, and nothing leaks into later models.

float16 needs loss scaling (its gradients underflow otherwise): `optimizer` wraps each net's
optimizer in `keras.optimizers.LossScaleOptimizer` (dynamic scale; a step whose gradients are not
finite is skipped and the scale halved). bfloat16 has float32's exponent range and needs none.
"""

import contextlib

import keras

from dmkeras.errors import ConfigError

MODES = ("off", "mixed_float16", "mixed_bfloat16")  # as dmkeras.config.MIXED_PRECISION (config stays TF-free)


def policy_name(mode: str) -> str:
    """The Keras dtype policy of a `--mixed_precision` mode."""
    if mode not in MODES:
        raise ConfigError(f"mixed_precision must be one of {', '.join(MODES)}, got {mode!r}", ("mixed_precision",))
    return "float32" if mode == "off" else mode


def policy_scope(mode: str):
    """Build layers under the policy of `mode` inside the block; restore the global policy after."""
    return global_policy_scope(policy_name(mode))


@contextlib.contextmanager
def global_policy_scope(policy):
    """Build layers under the dtype `policy` (a name or a keras DTypePolicy) inside the block;
    the global policy is restored after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def needs_loss_scaling(mode: str) -> bool:
    return policy_name(mode) == "mixed_float16"


def optimizer(inner, mode: str):
    """`inner` as it should train nets built under `mode`: wrapped in a LossScaleOptimizer for float16."""
    if needs_loss_scaling(mode) and not isinstance(inner, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(inner)
    return inner
