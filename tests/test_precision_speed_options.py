"""--jit_compile and --mixed_precision: same steps as float32 without XLA, one trace for every
batch size, float32 maths and outputs, loss scaling with coupled weight decay, checkpoint, export."""

import json
import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras import checkpoint, division, experiment, export, precision
from dmkeras.config import TrainConfig
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.distribute import distribute
from dmkeras.errors import DmkerasError
from dmkeras.model import SEMI_SUPERVISED, WARMUP, DivideMixModel
from tests.helpers import image_bank, random_images, random_labeled_images, small_cnn_pair

NUM_CLASSES = 3
N = 40


def _model(*, jit=False, mode="off", loss_scale=None, batchnorm=True, seed=0):
    """DivideMix on two small CNNs; the same seed gives the same initial weights in every mode."""
    keras.utils.set_random_seed(seed)
    with precision.policy_scope(mode):
        nets = small_cnn_pair(NUM_CLASSES, width=8, batchnorm=batchnorm)

    def sgd():
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
        if loss_scale is not None:
            return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=loss_scale)
        return precision.optimizer(optimizer, mode)

    model = DivideMixModel(*nets, num_classes=NUM_CLASSES, weight_decay=5e-4)
    model.compile(sgd(), sgd(), jit_compile=jit)
    return model


def _data(augment=True):
    rng = np.random.default_rng(0)
    images, labels = random_labeled_images(rng, N, NUM_CLASSES)
    return image_bank(images, AugmentConfig(augment, augment, 1)), labels, rng.uniform(0.3, 1.0, size=N)


def _warmup_pass(model, bank, labels, batch_sizes, seed):
    plan, start = [], 0
    for size in batch_sizes:
        plan.append(np.arange(start, start + size) % N)
        start += size
    dataset = distribute(model.distribute_strategy, pipeline.warmup_dataset(bank, labels, plan, 1, seed=seed))
    step, iterator = model.step_function(WARMUP, 0), iter(dataset)
    return [{k: v for k, v in step(iterator).items()} for _ in plan]


def _ssl_pass(model, bank, labels, clean_prob, num_labeled, batch_size, seed):
    plan = pipeline.ssl_plan(np.arange(num_labeled), np.arange(num_labeled, N), batch_size, np.random.default_rng(seed))
    dataset = distribute(model.distribute_strategy, pipeline.ssl_dataset(bank, labels, clean_prob, plan, 1, seed=seed))
    step, iterator = model.step_function(SEMI_SUPERVISED, 1), iter(dataset)
    outs = []
    for i in range(len(plan)):  # mixing weights below 1: the random permutation matters
        mix_lambda, seed_pair = tf.constant(0.6 + 0.1 * i, tf.float32), tf.constant([seed, i], tf.int64)
        outs.append({k: v for k, v in step(iterator, mix_lambda, tf.constant(2.0), seed_pair).items()})
    return outs


def _run_steps(model, varied=True, augment=True):
    """3 warm-up steps of net 1 then 3 semi-supervised steps of net 2; with `varied`, batches of
    several sizes (each size is one more XLA compilation, a few seconds here)."""
    bank, labels, clean_prob = _data(augment)
    outs = _warmup_pass(model, bank, labels, [16, 16, 8] if varied else [16, 16, 16], seed=1)
    # labeled batches 8, 8, 6 (varied) or 8, 8, 8; unlabeled batches 8
    outs += _ssl_pass(model, bank, labels, clean_prob, num_labeled=22 if varied else 24, batch_size=8, seed=2)
    return outs


def _floats(outs):
    return [{k: float(v) for k, v in out.items()} for out in outs]


def _weights(model):
    return [w.numpy().astype(np.float64) for net in model.nets for w in net.weights]


# -- XLA ----------------------------------------------------------------------------------------------


# XLA and TensorFlow's kernels round differently (about 1e-7 relative). Where two values of a
# max-pooling window are that close, the winner, hence where the gradient goes, can differ: the
# zero-padded borders of the random crop make such near-ties common (seen: one step with
# BatchNorm moved the first layers' weights by 5e-3 relative while the losses agreed to 1e-7).
# The comparisons with XLA therefore feed un-augmented images.


def test_jit_compiled_steps_match_the_steps_without_xla():
    plain, jitted = _model(jit=False), _model(jit=True)
    for a, b in zip(_weights(plain), _weights(jitted)):
        np.testing.assert_array_equal(a, b)
    plain_out = _floats(_run_steps(plain, varied=False, augment=False))
    jit_out = _floats(_run_steps(jitted, varied=False, augment=False))
    assert len(plain_out) == 6
    for a, b in zip(plain_out, jit_out):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-7, err_msg=key)
    for a, b in zip(_weights(plain), _weights(jitted)):  # BatchNorm statistics and momentum included
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    # the per-replica steps are the XLA-compiled tf.functions; without XLA they are plain Python
    assert isinstance(jitted.step_function(WARMUP, 0).replica_step, tf.types.experimental.PolymorphicFunction)
    assert not isinstance(plain.step_function(WARMUP, 0).replica_step, tf.types.experimental.PolymorphicFunction)
    assert jitted.jit_compile and all(net.jit_compile for net in jitted.nets)
    assert not plain.jit_compile and not any(net.jit_compile for net in plain.nets)


def test_jit_compiled_accuracy_and_predict_match():
    plain, jitted = _model(jit=False), _model(jit=True)
    bank, labels, _ = _data()
    data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(N)), labels)).batch(16)  # 16, 16, 8
    assert jitted.accuracy(data) == plain.accuracy(data)
    np.testing.assert_allclose(
        jitted.nets[0].predict(data, verbose=0), plain.nets[0].predict(data, verbose=0), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("jit", [False, True])
def test_each_step_function_is_traced_once_for_every_batch_size(jit):
    """One trace serves every batch size and every epoch's new dataset (XLA still compiles once
    per distinct shape, which is not a retrace); no BatchNorm to keep XLA compilations short."""
    model = _model(jit=jit, batchnorm=False)
    bank, labels, clean_prob = _data()
    _warmup_pass(model, bank, labels, [16, 8], seed=1)
    _warmup_pass(model, bank, labels, [8, 16, 8], seed=3)  # a new epoch: new dataset, new iterator
    _ssl_pass(model, bank, labels, clean_prob, num_labeled=14, batch_size=8, seed=2)  # labeled 8, 6
    _ssl_pass(model, bank, labels, clean_prob, num_labeled=14, batch_size=8, seed=4)
    for key in ((WARMUP, 0), (SEMI_SUPERVISED, 1)):
        step = model.step_function(*key)
        assert step.experimental_get_tracing_count() == 1, key
        if jit:
            assert step.replica_step.experimental_get_tracing_count() == 1, key


def test_jit_compile_refuses_several_replicas(monkeypatch):
    model = _model()
    monkeypatch.setattr(DivideMixModel, "distribute_strategy", property(lambda self: types.SimpleNamespace(num_replicas_in_sync=2)))
    with pytest.raises(DmkerasError, match="jit_compile needs a single replica, the strategy has 2"):
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), jit_compile=True)


# -- mixed precision ------------------------------------------------------------------------------------


def test_bfloat16_warns_only_on_an_x86_cpu_without_bf16_instructions():
    avx2, avx512 = {"sse2", "avx", "avx2", "fma"}, {"sse2", "avx2", "avx512f", "avx512bw"}
    assert "--mixed_precision=off" in precision.slow_bfloat16_warning(avx2, has_gpu=False)
    assert "--mixed_precision=off" in precision.slow_bfloat16_warning(avx512, has_gpu=False)  # emulated too
    assert precision.slow_bfloat16_warning(avx512 | {"avx512_bf16"}, has_gpu=False) is None
    assert precision.slow_bfloat16_warning(avx512 | {"amx_bf16"}, has_gpu=False) is None
    assert precision.slow_bfloat16_warning(avx2, has_gpu=True) is None
    assert precision.slow_bfloat16_warning({"fp", "asimd", "bf16"}, has_gpu=False) is None  # aarch64
    assert precision.slow_bfloat16_warning(None, has_gpu=False) is None  # no /proc/cpuinfo


def test_building_under_bfloat16_warns_once_per_process(monkeypatch, caplog):
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"sse2", "avx2"})
    monkeypatch.setattr(precision, "_has_gpu", lambda: False)
    precision._warn_if_bfloat16_is_slow.cache_clear()
    with caplog.at_level("WARNING"):
        for _ in range(2):
            with precision.policy_scope("mixed_bfloat16"):
                pass
        with precision.policy_scope("off"):
            pass
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["mixed_bfloat16 on a CPU without bf16 instructions (no avx512_bf16 / amx_bf16, no GPU)"]
    precision._warn_if_bfloat16_is_slow.cache_clear()


def test_policy_scope_builds_under_the_policy_and_restores_the_global_one():
    before = keras.mixed_precision.global_policy().name
    with precision.policy_scope("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(RuntimeError):
        with precision.policy_scope("mixed_float16"):
            raise RuntimeError("fails while building")
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(DmkerasError, match="mixed_precision must be one of off, mixed_float16, mixed_bfloat16"):
        precision.policy_name("float8")


# Tolerances on the total loss and L_x against float32, from the same weights and batches over 3
# warm-up and 3 SSL steps (BatchNorm, momentum 0.9). The nets compute in 16 bits: bfloat16 keeps 8
# significant bits (unit roundoff 2^-8 = 3.9e-3), float16 11 (2^-11 = 4.9e-4); roundings partly
# average out in the convolutions' sums. Measured over seeds 0-2: within 1.9e-3 relative for
# bfloat16 and 7.6e-4 for float16. The bounds are about 10x and 6x that (5 and 10 unit roundoffs).
# Small terms (L_u, the prior penalty: differences of nearly equal probabilities) move more, up to
# 1.5e-2 relative, and are only checked to be finite.
TOLERANCE = {"mixed_bfloat16": 2e-2, "mixed_float16": 5e-3}


@pytest.mark.parametrize("mode", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_steps_are_close_to_float32_and_keep_float32_maths(mode):
    reference, mixed = _model(), _model(mode=mode)
    compute = "bfloat16" if mode == "mixed_bfloat16" else "float16"
    for net in mixed.nets:
        assert net.get_layer("block1a_conv").compute_dtype == compute
        assert all(w.dtype == "float32" for w in net.weights)  # master weights
    assert keras.mixed_precision.global_policy().name == "float32"
    for a, b in zip(_weights(reference), _weights(mixed)):
        np.testing.assert_array_equal(a, b)

    ref_out, mixed_out = _run_steps(reference), _run_steps(mixed)
    for out in mixed_out:
        assert all(v.dtype == tf.float32 for v in out.values())
    ref_out, mixed_out = _floats(ref_out), _floats(mixed_out)
    for step, (a, b) in enumerate(zip(ref_out, mixed_out)):
        for key in ("loss", "loss_x"):
            if key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=TOLERANCE[mode], err_msg=f"step {step} {key}")
        assert np.isfinite(list(b.values())).all()
    assert all(w.dtype == "float32" for net in mixed.nets for w in net.weights)

    if mode == "mixed_float16":  # loss scaling, and no step skipped for non-finite gradients
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in mixed.optimizers)
        assert [int(o.iterations) for o in mixed.optimizers] == [3, 3]
    else:
        assert not any(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in mixed.optimizers)
    bank, labels, _ = _data()
    images = bank.load(tf.range(N))
    assert mixed(images).dtype == tf.float32
    counts = mixed.count_correct(images, labels)
    assert all(v.dtype == tf.float32 for v in counts.values())
    assert set(mixed.accuracy(tf.data.Dataset.from_tensor_slices((images, labels)).batch(16))) == {"acc", "acc_net1", "acc_net2"}


@pytest.mark.parametrize("jit", [False, True])
def test_loss_scaling_keeps_the_coupled_weight_decay_exact(jit):
    """A LossScaleOptimizer (float32 nets, so only the scaling differs) gives the updates of plain
    SGD: the decay enters the scaled gradients scaled, and the optimizer unscales the sum. With
    `jit`, the loss-scaled steps are XLA-compiled (against plain steps without XLA)."""
    plain, scaled = _model(batchnorm=False), _model(jit=jit, loss_scale=2.0**10, batchnorm=False)
    plain_out = _floats(_run_steps(plain, varied=not jit, augment=not jit))
    scaled_out = _floats(_run_steps(scaled, varied=not jit, augment=not jit))
    rtol = 1e-4 if jit else 1e-5
    for a, b in zip(plain_out, scaled_out):
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=1e-7, err_msg=key)
    for a, b in zip(_weights(plain), _weights(scaled)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=1e-6 if jit else 1e-7)
    assert [float(o.scale_loss(1.0)) for o in scaled.optimizers] == [2.0**10, 2.0**10]
    assert [int(o.iterations) for o in scaled.optimizers] == [3, 3]


def test_build_model_under_mixed_float16_and_checkpoint_roundtrip(tmp_path):
    config = TrainConfig(backbone_args="width=8", mixed_precision="mixed_float16", workdir=str(tmp_path), lr=0.05)
    model = experiment.build_model(config, NUM_CLASSES, (8, 8, 1))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert all(net.dtype_policy.name == "mixed_float16" for net in model.nets)
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in model.optimizers)
    _run_steps(model)
    histories = [division.LossHistory(1) for _ in model.nets]
    histories[0].add(np.linspace(0, 1, N))
    checkpoint.save(str(tmp_path), model, types.SimpleNamespace(histories=histories), [{"epoch": 1}], 1.0)

    restored_model = experiment.build_model(config, NUM_CLASSES, (8, 8, 1))
    codivide = types.SimpleNamespace(histories=[division.LossHistory(1) for _ in model.nets])
    state = checkpoint.restore(checkpoint.latest(str(tmp_path)), restored_model, codivide)
    assert state["epoch"] == 1
    for a, b in zip(_weights(model), _weights(restored_model)):
        np.testing.assert_array_equal(a, b)
    for saved, restored in zip(model.optimizers, restored_model.optimizers):  # loss scale, counters, momentum
        for a, b in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_mixed_float16_run_trains_and_exports_float32_probabilities(tmp_path, digits_config):
    workdir, out = str(tmp_path / "run"), str(tmp_path / "export")
    # digits_config with TrainConfig's own augment and pad
    config = digits_config(workdir, mixed_precision="mixed_float16", augment="crop,flip", pad=4)
    summary = experiment.run(config)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert summary["epochs"] == 2 and summary["division_auc_last"] is not None
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["mixed_precision"] == "mixed_float16"
    net = keras.saving.load_model(os.path.join(workdir, "net1.keras"), compile=False)
    assert net.get_layer("block1a_conv").dtype_policy.name == "mixed_float16"  # as the run trained it

    export.export_run(workdir, out)  # verifies the SavedModel against the nets
    images = random_images(np.random.default_rng(0), 5)
    served = tf.saved_model.load(out).signatures["serving_default"](images=tf.constant(images))["probabilities"]
    assert served.dtype == tf.float32
    np.testing.assert_allclose(served.numpy().sum(axis=1), 1.0, rtol=1e-5)
    logits = tf.saved_model.load(out).signatures["predict_logits"](images=tf.constant(images))["logits"]
    assert logits.dtype == tf.float32
    reloaded = export.load(out)
    probabilities = reloaded.predict(images, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, served.numpy(), atol=1e-4)
