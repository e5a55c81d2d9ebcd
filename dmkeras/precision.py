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

bfloat16 is fast only where the hardware computes it: a GPU, or an x86 CPU with bf16 instructions
(AVX512_BF16 or AMX; 1.4x faster than float32 on this project's AVX512_BF16 machines). Elsewhere
oneDNN emulates it: on an AVX2-only AMD EPYC `mnist_cnn` at 28x28 trained at 90 img/s against 623
in float32 (6.9x slower). Building nets under it on such a CPU logs one warning
(`slow_bfloat16_warning`).
"""

import contextlib
import functools
import logging

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


def slow_bfloat16_warning(cpu_flags: set[str] | None, has_gpu: bool) -> str | None:
    """The warning for nets computing in bfloat16 on this hardware, or None where bfloat16 is native
    (a GPU, an x86 CPU with avx512_bf16 or amx_bf16) or the CPU is not x86 / its flags are unknown."""
    if has_gpu or not cpu_flags or "sse2" not in cpu_flags or cpu_flags & {"avx512_bf16", "amx_bf16"}:  # sse2: any x86-64
        return None
    return (
        "mixed_bfloat16 on a CPU without bf16 instructions (no avx512_bf16 / amx_bf16, no GPU): bfloat16 is emulated, "
        "6.9x slower than float32 on an AVX2-only CPU; use mixed_precision off (--mixed_precision=off)"
    )


def _cpu_flags() -> set[str] | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@functools.cache
def _warn_if_bfloat16_is_slow() -> None:  # once per process: both nets are built under the policy
    message = slow_bfloat16_warning(_cpu_flags(), _has_gpu())
    if message:
        logging.getLogger("dmkeras").warning(message)


@contextlib.contextmanager
def global_policy_scope(policy):
    """Build layers under the dtype `policy` (a name or a keras DTypePolicy) inside the block;
    the global policy is restored after."""
    if getattr(policy, "name", policy) == "mixed_bfloat16":
        _warn_if_bfloat16_is_slow()
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
