"""Parity with the PyTorch reference (LiJunnan1992/DivideMix), from committed fixtures.

`tools/reference/make_fixtures.py` runs the reference's computations (transcribed in
`tools/reference/torch_dividemix.py`) from deterministic weights (`convert.reference_init`) and
fixed batches and stores the results in `tests/fixtures/`. Here dmkeras' own nets and steps
(`zoo.create_model`, `DivideMixModel.warmup_step` / `ssl_step` with `TorchSGD`, `count_correct`,
`predict_logits` + `division`) start from the same weights and must give the same numbers.
PyTorch is not needed, except by `test_regenerated_fixtures_match_the_committed_ones`.

Error measure: ``max |dmkeras - reference| / scale`` over a tensor, scale = ``max |reference|``
unless said otherwise (a normwise relative error). Two float32 computations of the same maths in
a different summation order (oneDNN / Eigen vs PyTorch's CPU kernels; a 3x3 conv output sums
9 * C_in products) differ by a few ulps *of the largest terms*, so an element-wise rtol would
fail on outputs near 0 that are no less exact. Tolerances, and what they measured on the 2-core
AVX-512 CPU that wrote the fixtures (torch 2.14.1 CPU, TF 2.21, Keras 3.15):

* forward logits, train and eval mode: 1e-5 (~100 float32 ulps). Measured: preact 7.9e-7
  (eval) / 4.2e-6 (train), small_cnn 6.8e-8 / 1.1e-6. Train mode is noisier on the Keras side:
  against a float64 run of the reference, Keras' float32 train-mode preact logits are off by
  4.3e-6, PyTorch's by 9.0e-7 (eval mode: 5.1e-7 / 4.0e-7) -- BatchNorm's batch statistics.
* losses, targets (scalars, per sample, per class): 1e-5. Losses with a penalty are measured
  against log C, the size of the terms that cancel in CE + sum p log p. Measured <= 1.2e-6
  (eval_normalized, (l - min) / (max - min), 6.3e-6 against a tolerance of 5e-5).
* weights and BatchNorm running means after SGD steps: 1e-4 on small_cnn (measured 2.2e-7) and
  on preact in float64 (measured 1.7e-8; `steps64`). Preact in float32 is limited by ReLU kinks:
  the forward pass's float32 noise (~1e-6 of the activations) flips the sign of the few
  pre-ReLU values that lie within it (5 of 4.7M at the first step here, in layer2_0, layer2_1,
  layer4_0, layer4_1), and one flipped ReLU in the 4x4 maps of stage 4 (128 positions per
  channel) changes that layer's weight gradient by a few percent (layer4_1_conv1: 6e-2; PyTorch's
  own float32 gradient is within 3e-6 of its float64 one there, with no flip). Hence, for preact
  in float32: 1e-2 for the 3 steps (measured 1.8e-3 weights, 1.6e-3 running means), 5e-4 for
  their losses (6.8e-5), 5e-3 for one SSL step (4.6e-4 CIFAR form, 6.1e-5 Clothing1M form).
* GMM: 1e-6 absolute when dmkeras' GMM fits the reference's own input (measured: probabilities
  3.9e-8, means 6.7e-16), 1e-4 when it fits dmkeras' own normalised losses (measured 5.3e-6:
  the losses' float32 noise times the slope of the posterior).

BatchNorm's moving variance is the one known, kept difference: Keras updates it with the biased
batch variance, PyTorch with the unbiased one (n / (n - 1)); `test_moving_variance_*` pins it.
Every preact parity check is also run on a net with the textbook identity shortcut
(``x + F(x)`` instead of the reference's ``relu(bn1(x)) + F(x)``) and must fail there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from dmkeras import division, ops, zoo
from dmkeras.model import DivideMixModel
from dmkeras.optimizers import TorchSGD
from tools.reference import convert

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ARCHS = ("preact_resnet18", "small_cnn")

RTOL_LOGITS = 1e-5
RTOL_LOSS = 1e-5
RTOL_WEIGHTS = 1e-4
# preact in float32: ReLU flips (module docstring)
RTOL_PREACT_STEPS_WEIGHTS = 1e-2
RTOL_PREACT_STEPS_LOSS = 5e-4
RTOL_PREACT_SSL_WEIGHTS = 5e-3
RTOL_FLOAT64 = 1e-6
ATOL_PROB = 1e-6
ATOL_PROB_CHAIN = 1e-4
ATOL_NORMALIZED = 5e-5  # (l - min) / (max - min): the losses' error over their spread

MEASURED: dict = {}  # name -> the largest measured error (for a debugger or a print while comparing)


# -- comparisons -----------------------------------------------------------------------------------


def rel_err(actual, expected, scale=None) -> float:
    """max |actual - expected| / scale (default scale: max |expected|)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shapes {actual.shape} != {expected.shape}"
    if scale is None:
        scale = float(np.abs(expected).max(initial=0.0))
    return float(np.abs(actual - expected).max(initial=0.0)) / max(scale, 1e-30)


def _record(name, err):
    MEASURED[name] = max(err, MEASURED.get(name, 0.0))


def close(name, actual, expected, tol, scale=None):
    err = rel_err(actual, expected, scale)
    _record(name, err)
    assert err <= tol, f"{name}: max |diff| / scale = {err:.3g} > {tol:g}"
    return err


def abs_close(name, actual, expected, tol):
    return close(name, actual, expected, tol, scale=1.0)


# -- fixtures and nets -----------------------------------------------------------------------------


def load(arch, root=FIXTURES) -> dict:
    return convert.load_npz(Path(root) / f"{arch}.npz")


def f32(a):
    return np.asarray(a, np.float32)  # the stored float16 images are exact float32 numbers


def config(fx):
    shape = tuple(int(s) for s in fx["config/shape"])
    width = int(fx["config/width"])
    return int(fx["config/num_classes"]), shape, ({"width": width} if width else {})


def eval_images(fx):
    if "inputs/x_eval" in fx:
        return f32(fx["inputs/x_eval"])
    x = f32(fx["inputs/x_steps"])  # preact: the three step batches are the eval set
    return x.reshape((-1,) + x.shape[2:])


def penalty_scale(fx):
    return float(np.log(int(fx["config/num_classes"])))


def textbook_preact_resnet18(num_classes, input_shape, shortcut="textbook"):
    """dmkeras' preact_resnet18 layout (same layer names and padding), written out here with a
    choice of identity shortcut: "textbook" adds the block input x (dmkeras' old, wrong one),
    "reference" adds relu(bn1(x)) as the reference's empty nn.Sequential does."""
    from keras import layers

    def bn(name):
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)

    def conv(x, filters, size, stride, name):
        if stride != 1 and size == 3:
            x = layers.ZeroPadding2D(1)(x)
        padding = "same" if stride == 1 else "valid"
        return layers.Conv2D(filters, size, strides=stride, padding=padding, use_bias=False, name=name)(x)

    inputs = keras.Input(shape=tuple(input_shape))
    x = layers.ReLU()(bn("bn1")(conv(inputs, 64, 3, 1, "conv1")))
    in_planes = 64
    for s, planes, stride in ((1, 64, 1), (2, 128, 2), (3, 256, 2), (4, 512, 2)):
        for i in range(2):
            block_stride, name = (stride if i == 0 else 1), f"layer{s}_{i}"
            out = layers.ReLU()(bn(f"{name}_bn1")(x))
            if block_stride != 1 or in_planes != planes:
                short = conv(out, planes, 1, block_stride, f"{name}_shortcut")
            else:
                short = x if shortcut == "textbook" else out
            out = conv(out, planes, 3, block_stride, f"{name}_conv1")
            out = conv(layers.ReLU()(bn(f"{name}_bn2")(out)), planes, 3, 1, f"{name}_conv2")
            x = layers.Add()([out, short])
            in_planes = planes
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="linear")(x))


_NETS: dict = {}  # built Keras nets, reused (building a preact net takes ~1 s); weights reset on use


def make_net(arch, fx, which=0, variant="dmkeras", dtype="float32", state=None):
    """A Keras net holding fixture net `which`'s reference_init weights (0: net 1, 1: net 2), or
    `state` (torch layout). variant: "dmkeras" (zoo.create_model) or the local builder's
    "textbook" / "reference" shortcut."""
    num_classes, shape, kwargs = config(fx)
    key = (arch, num_classes, shape, tuple(sorted(kwargs.items())), which, variant, dtype)
    if key not in _NETS:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)
        try:
            if variant == "dmkeras":
                _NETS[key] = zoo.create_model(arch, num_classes, shape, **kwargs)
            else:
                _NETS[key] = textbook_preact_resnet18(num_classes, shape, shortcut=variant)
        finally:
            keras.config.set_dtype_policy(previous)
    net = _NETS[key]
    if state is None:
        state = convert.reference_init(arch, int(fx["config/seeds"][which]), num_classes, shape[2], **kwargs)
    convert.set_keras_weights(net, state)
    return net


def make_model(arch, fx, variant="dmkeras", optimizer=TorchSGD, dtype="float32", **kwargs):
    """DivideMixModel of the fixture's two nets, one optimizer each (TorchSGD by default)."""
    net1, net2 = make_net(arch, fx, 0, variant, dtype), make_net(arch, fx, 1, variant, dtype)
    model = DivideMixModel(
        net1,
        net2,
        num_classes=int(fx["config/num_classes"]),
        temperature=float(fx["config/temperature"]),
        mixup_alpha=4.0,  # unused: the mix lambda is given
        weight_decay=float(fx["config/weight_decay"]),
        **kwargs,
    )
    lr, momentum = float(fx["config/lrs"][0]), float(fx["config/momentum"])
    model.compile(optimizer(learning_rate=lr, momentum=momentum), optimizer(learning_rate=lr, momentum=momentum))
    return model


def compare_state(name, net, expected: dict, tol, digest=False):
    """Every tensor of `net` (torch layout) against a fixture state (full, or a digest), except
    the running variances (`running_var_gap`)."""
    state = convert.keras_to_torch(net)
    if digest:
        state = convert.digest(state)
    assert set(state) == set(expected), sorted(set(state) ^ set(expected))
    for key in sorted(expected):
        if key.endswith("running_var"):
            continue
        if key.endswith("@sum"):  # the sum of n entries: its error against their L2 norm
            err = abs(float(state[key]) - float(expected[key])) / float(expected[key[: -len("@sum")] + "@l2"])
        else:
            err = rel_err(state[key], expected[key])
        _record(f"{name}/{'bn_mean' if key.endswith('running_mean') else 'weights'}", err)
        assert err <= tol, f"{name}: {key}: error {err:.3g} > {tol:g}"


def running_var_gap(state: dict, expected: dict) -> np.ndarray:
    """(reference - dmkeras) / reference of every BatchNorm running variance, concatenated
    (`state`: dmkeras' net in torch layout)."""
    keys = sorted(k for k in expected if k.endswith("running_var"))
    return np.concatenate([(expected[k] - state[k]) / expected[k] for k in keys])


@contextlib.contextmanager
def fixed_permutation(idx):
    """ops.random_permutation (ssl_step's mixing partners) returning the fixture's permutation."""
    idx = np.asarray(idx)

    def permutation(n, seed):
        assert int(n) == len(idx), f"ssl_step permutes {int(n)} rows, the reference {len(idx)}"
        return tf.constant(idx, tf.int32)

    with mock.patch.object(ops, "random_permutation", permutation):
        yield


@contextlib.contextmanager
def checked_mixup(check):
    """ops.mixup calling check(targets, mixed_targets) first: the targets ssl_step made by co-guessing
    and co-refining, and their mixture (compared before the training pass, so a wrong net fails
    fast)."""
    real = ops.mixup

    def spy(inputs, targets, *args, **kwargs):
        mixed_inputs, mixed_targets = real(inputs, targets, *args, **kwargs)
        check(targets.numpy(), mixed_targets.numpy())
        return mixed_inputs, mixed_targets

    with mock.patch.object(ops, "mixup", spy):
        yield


# -- the checks (shared by the committed-fixture tests and the regeneration test) -------------------


def check_forward(arch, fx, variant="dmkeras", tag=""):
    x = f32(fx["inputs/x_steps"][0])
    net = make_net(arch, fx, 0, variant)
    close(f"{arch}{tag}/logits_eval", net(x, training=False).numpy(), fx["forward/logits_eval"], RTOL_LOGITS)
    net = make_net(arch, fx, 0, variant)
    close(f"{arch}{tag}/logits_train", net(x, training=True).numpy(), fx["forward/logits_train"], RTOL_LOGITS)
    stats = convert.section(fx, "forward/bn_after_train")
    state = convert.keras_to_torch(net)
    for key in sorted(k for k in stats if k.endswith("running_mean")):
        close(f"{arch}{tag}/bn_mean_after_train", state[key], stats[key], RTOL_WEIGHTS)


def check_warmup_losses(arch, fx, variant="dmkeras", tag=""):
    """Train_CIFAR.warmup's CE and NegEntropy penalty: dmkeras' first warm-up step reports them."""
    model = make_model(arch, fx, variant, confidence_penalty=True)
    out = model.warmup_step(0, {"x": f32(fx["inputs/x_steps"][0]), "y": fx["inputs/y_steps"][0]})
    scale = penalty_scale(fx)
    close(f"{arch}{tag}/warmup_ce", out["ce"].numpy(), fx["warmup/ce"], RTOL_LOSS)
    close(f"{arch}{tag}/warmup_penalty", out["penalty"].numpy(), fx["warmup/penalty"], RTOL_LOSS, scale)
    close(f"{arch}{tag}/warmup_ce_penalty", out["loss"].numpy(), fx["warmup/ce_penalty"], RTOL_LOSS, scale)


def run_steps(
    arch, fx, section="steps", variant="dmkeras", optimizer=TorchSGD, dtype="float32", rows=None, on_step=None
):
    """Three warm-up steps of net 1, lr 0.02, 0.02, 0.002 (set before each step), as the
    reference's per-epoch `param_group['lr'] = lr` (on the first `rows` rows of each batch when
    given). Returns the model and the step losses."""
    model = make_model(arch, fx, variant, optimizer, dtype, confidence_penalty=section == "steps_penalty")
    losses = []
    for t, lr in enumerate(fx["config/lrs"]):
        model.optimizers[0].learning_rate = float(lr)
        batch = {"x": np.asarray(fx["inputs/x_steps"][t][:rows], dtype), "y": fx["inputs/y_steps"][t][:rows]}
        losses.append(float(model.warmup_step(0, batch)["loss"]))
        if on_step is not None:
            on_step(t, losses[-1])
    return model, np.array(losses)


def check_steps(arch, fx, section="steps", variant="dmkeras", tag=""):
    """The three steps against the reference; returns net 1's state (torch layout) after them."""
    name = f"{arch}{tag}/{section}"
    preact = arch == "preact_resnet18"
    dtype = "float64" if section == "steps64" else "float32"
    if dtype == "float64":
        loss_tol, weight_tol = RTOL_FLOAT64, RTOL_FLOAT64
    elif preact:
        loss_tol, weight_tol = RTOL_PREACT_STEPS_LOSS, RTOL_PREACT_STEPS_WEIGHTS
    else:
        loss_tol, weight_tol = RTOL_LOSS, RTOL_WEIGHTS
    scale = penalty_scale(fx) if section == "steps_penalty" else None
    expected = fx[f"{section}/losses"]

    def on_step(t, loss):  # compared as they come: a wrong net fails at the first step
        close(f"{name}/losses", loss, expected[t], loss_tol, scale)

    rows = int(fx["steps64/rows"]) if section == "steps64" else None
    model, _ = run_steps(
        arch, fx, "steps" if section == "steps64" else section, variant, dtype=dtype, rows=rows, on_step=on_step
    )
    compare_state(name, model.nets[0], convert.section(fx, f"{section}/state"), weight_tol, digest=preact)
    return convert.keras_to_torch(model.nets[0])


def check_eval(arch, fx, trained_state, variant="dmkeras", tag=""):
    """eval_train: per-sample CE in eval mode, min-max normalisation, (history mean,) GMM."""
    x, y = eval_images(fx), fx["inputs/y_eval"]
    net = make_net(arch, fx, 0, variant, state=trained_state)
    logits = np.concatenate([net(x[i : i + 64], training=False).numpy() for i in range(0, len(x), 64)])
    losses = division.per_sample_cross_entropy(logits, y)
    ref = convert.section(fx, "eval")
    close(f"{arch}{tag}/eval_losses", losses, ref["losses"], RTOL_LOSS)
    normalized = division.min_max_normalize(losses)
    abs_close(f"{arch}{tag}/eval_normalized", normalized, ref["normalized"], ATOL_NORMALIZED)
    # the GMM on the reference's own input (the GMM alone), then on dmkeras' losses (the chain)
    for source, values, tol in (("ref_input", ref["input_loss"], ATOL_PROB), ("chain", normalized, ATOL_PROB_CHAIN)):
        prob, fit = division.clean_probability(values)
        abs_close(f"{arch}{tag}/gmm_prob_{source}", prob, ref["prob"], tol)
        abs_close(f"{arch}{tag}/gmm_means_{source}", fit.means, ref["gmm_means"], tol)
        abs_close(f"{arch}{tag}/gmm_variances_{source}", fit.variances, ref["gmm_variances"], tol)
        abs_close(f"{arch}{tag}/gmm_weights_{source}", fit.weights, ref["gmm_weights"], tol)
    if "inputs/history" in fx:  # Train_CIFAR's r == 0.9 branch: the mean of the last 5 epochs
        ref = convert.section(fx, "eval_history")
        history = division.LossHistory(5)
        for past in fx["inputs/history"]:
            history.add(past)
        averaged = history.add(normalized)
        abs_close(f"{arch}{tag}/history_mean", averaged, ref["input_loss"], ATOL_NORMALIZED)
        prob, fit = division.clean_probability(ref["input_loss"])
        abs_close(f"{arch}{tag}/gmm_prob_history_ref_input", prob, ref["prob"], ATOL_PROB)
        abs_close(f"{arch}{tag}/gmm_means_history_ref_input", fit.means, ref["gmm_means"], ATOL_PROB)
        prob, fit = division.clean_probability(averaged)
        abs_close(f"{arch}{tag}/gmm_prob_history_chain", prob, ref["prob"], ATOL_PROB_CHAIN)
    return logits


def check_ssl(arch, fx, form, variant="dmkeras", tag="", ssl_rows=None):
    """One semi-supervised step of net 1 against Train_CIFAR.train ("cifar", ssl_rows="all") or
    Train_clothing1M.train ("clothing", ssl_rows="labeled"), lambda and permutation given."""
    inputs = convert.section(fx, "ssl_inputs")
    ref = convert.section(fx, f"ssl_{form}")
    if ssl_rows is None:
        ssl_rows = "all" if form == "cifar" else "labeled"
    model = make_model(arch, fx, variant, ssl_rows=ssl_rows)
    batch = {k: f32(inputs[k]) for k in ("x1", "x2", "u1", "u2", "w")}
    batch["y"] = inputs["y"]
    b = len(inputs["y"])
    name = f"{arch}{tag}/ssl_{form}"
    checked = []

    def check_targets(targets, mixed_targets):
        close(f"{name}/targets_x", targets[:b], ref["targets_x"], RTOL_LOSS)
        close(f"{name}/targets_x_view2", targets[b : 2 * b], ref["targets_x"], RTOL_LOSS)
        close(f"{name}/targets_u", targets[2 * b : 3 * b], ref["targets_u"], RTOL_LOSS)
        close(f"{name}/targets_u_view2", targets[3 * b :], ref["targets_u"], RTOL_LOSS)
        close(f"{name}/mixed_targets", mixed_targets, ref["mixed_target"], RTOL_LOSS)
        checked.append(True)

    with fixed_permutation(inputs["idx"]), checked_mixup(check_targets):
        lam, lamb = tf.constant(float(inputs["lam"])), tf.constant(float(inputs["lamb"]))
        out = model.ssl_step(0, batch, lam, lamb, tf.constant([0, 0], tf.int64))  # the seed is not used
    assert checked == [True]
    close(f"{name}/Lx", out["loss_x"].numpy(), ref["Lx"], RTOL_LOSS)
    close(f"{name}/penalty", out["penalty"].numpy(), ref["penalty"], RTOL_LOSS, penalty_scale(fx))
    if form == "cifar":
        close(f"{name}/Lu", out["loss_u"].numpy(), ref["Lu"], RTOL_LOSS)
    close(f"{name}/loss", out["loss"].numpy(), ref["loss"], RTOL_LOSS)
    preact = arch == "preact_resnet18"
    tol = RTOL_PREACT_SSL_WEIGHTS if preact else RTOL_WEIGHTS
    compare_state(name, model.nets[0], convert.section(ref, "state"), tol, digest=preact)


def check_ensemble(arch, fx, variant="dmkeras", tag=""):
    """Train_CIFAR.test: argmax of the summed eval-mode logits of the two nets, accuracy; with
    the counts `DivideMixModel.accuracy` sums (`count_correct`)."""
    x, y = eval_images(fx), fx["inputs/y_eval"]
    model = make_model(arch, fx, variant)
    logits = model(x, training=False).numpy()
    close(f"{arch}{tag}/ensemble_logits", logits, fx["ensemble/logits"], RTOL_LOGITS)
    ref_logits = fx["ensemble/logits"]
    top2 = np.sort(ref_logits, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 1e-4 * np.abs(ref_logits).max()  # no near-tie that rounding could flip
    np.testing.assert_array_equal(logits.argmax(1)[decided], fx["ensemble/predicted"][decided])
    if arch == "small_cnn":  # what DivideMixModel.accuracy sums (the same code for any net)
        counts = model.count_correct(tf.constant(x), tf.constant(y))
        acc = 100.0 * float(counts["acc"]) / float(counts["rows"])
    else:  # two eager preact passes fewer
        acc = 100.0 * float(np.mean(logits.argmax(1) == y))
    _record(f"{arch}{tag}/ensemble_acc_points", abs(acc - float(fx["ensemble/acc"])))
    assert abs(acc - float(fx["ensemble/acc"])) <= 100.0 * (~decided).sum() / len(y) + 1e-9


def check_all(arch, fx, tag=""):
    check_forward(arch, fx, tag=tag)
    check_warmup_losses(arch, fx, tag=tag)
    trained_state = check_steps(arch, fx, tag=tag)
    for section in ("steps_penalty", "steps64"):
        if f"{section}/losses" in fx:
            check_steps(arch, fx, section, tag=tag)
    if not bool(fx["config/eval_trained"]):
        num_classes, shape, kwargs = config(fx)
        trained_state = convert.reference_init(arch, int(fx["config/seeds"][0]), num_classes, shape[2], **kwargs)
    check_eval(arch, fx, trained_state, tag=tag)
    for form in ("cifar", "clothing"):
        check_ssl(arch, fx, form, tag=tag)
    check_ensemble(arch, fx, tag=tag)


# -- tests on the committed fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _free_nets():
    yield
    _NETS.clear()  # ~0.4 GB of preact nets


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def fixtures():
    return {a: load(a) for a in ARCHS}


@pytest.fixture(scope="module")
def trained():
    """(arch, section) -> dmkeras' net 1 state after the three warm-up steps (checked once, reused)."""
    return {}


def _eval_state(arch, fixtures, trained):
    """The weights eval_train ran with: the trained net (small_cnn) or the initial one (preact)."""
    fx = fixtures[arch]
    if bool(fx["config/eval_trained"]):
        return _trained(arch, fixtures, trained)
    num_classes, shape, kwargs = config(fx)
    return convert.reference_init(arch, int(fx["config/seeds"][0]), num_classes, shape[2], **kwargs)


def _trained(arch, fixtures, trained, section="steps"):
    if (arch, section) not in trained:
        trained[arch, section] = check_steps(arch, fixtures[arch], section)
    return trained[arch, section]


def test_conversion_round_trips_and_matches_the_layer_names(arch, fixtures):
    fx = fixtures[arch]
    num_classes, shape, kwargs = config(fx)
    state = convert.reference_init(arch, 5, num_classes, shape[2], **kwargs)
    net = make_net(arch, fx, state=state)
    back = convert.keras_to_torch(net)
    assert list(back) == list(state)  # same names, in the reference's state_dict order
    for key in state:
        np.testing.assert_array_equal(back[key], state[key])
    specs = convert.layer_specs(arch, num_classes, shape[2], **kwargs)
    assert {s.keras_name for s in specs} == {layer.name for layer in net.layers if layer.weights}
    params = sum(v.size for k, v in state.items() if not k.endswith(("running_mean", "running_var")))
    assert params == sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    if arch == "preact_resnet18":
        assert params == 11_171_274  # PyTorch's parameters() count of the reference's ResNet18(10)
    # the initial weights are PyTorch-default-like and the BatchNorm statistics non-trivial
    conv = state["conv1.weight" if arch == "preact_resnet18" else "block1a.conv.weight"]
    assert np.abs(conv).max() <= 1.0 / np.sqrt(conv[0].size) and np.abs(conv).max() > 0.9 / np.sqrt(conv[0].size)
    bn_var = state["bn1.running_var" if arch == "preact_resnet18" else "block1a.bn.running_var"]
    assert 0.5 <= bn_var.min() and bn_var.max() <= 2.0 and bn_var.std() > 0.1


def test_forward_logits_in_train_and_eval_mode(arch, fixtures):
    check_forward(arch, fixtures[arch])


def test_warmup_cross_entropy_and_confidence_penalty(arch, fixtures):
    check_warmup_losses(arch, fixtures[arch])


def test_three_sgd_steps_with_an_lr_drop_match_torch_sgd(arch, fixtures, trained):
    _trained(arch, fixtures, trained)


def test_three_sgd_steps_with_the_confidence_penalty(fixtures):
    check_steps("small_cnn", fixtures["small_cnn"], "steps_penalty")


def test_three_preact_sgd_steps_in_float64(fixtures, trained):
    """Without float32's ReLU flips the preact steps agree to ~1e-9 (the tolerance is 1e-6):
    TorchSGD with the lr drop, the coupled decay and the backward pass are the reference's."""
    _trained("preact_resnet18", fixtures, trained, "steps64")


def test_keras_sgd_does_not_match_after_the_lr_drop(fixtures):
    """keras.optimizers.SGD keeps the old lr inside its velocity (v = m v - lr g; w += v), so the
    step after the lr drop moves the weights by 0.9 * 0.02 * buf + 0.002 g instead of
    0.002 * (0.9 * buf + g). The first two steps (same lr) agree with the reference, the third
    must not: measured 1.4e-2, 1e5 times the TorchSGD error (2.2e-7)."""
    fx = fixtures["small_cnn"]
    model, losses = run_steps("small_cnn", fx, optimizer=keras.optimizers.SGD)
    close("small_cnn/keras_sgd/losses", losses, fx["steps/losses"], RTOL_LOSS)  # each taken before its step
    with pytest.raises(AssertionError):
        compare_state("small_cnn/keras_sgd", model.nets[0], convert.section(fx, "steps/state"), RTOL_WEIGHTS)
    state, ref = convert.keras_to_torch(model.nets[0]), convert.section(fx, "steps/state")
    err = max(rel_err(state[k], ref[k]) for k in ref if not k.endswith(("running_mean", "running_var")))
    MEASURED["small_cnn/keras_sgd/weights"] = err
    assert err > 10 * RTOL_WEIGHTS


def _bn_sizes(net):
    """torch prefix -> rows per channel (batch * H * W) of each BatchNorm, per batch row."""
    return {
        convert.torch_prefix(layer.name): int(np.prod(layer.input.shape[1:3]))
        for layer in net.layers
        if type(layer).__name__ == "BatchNormalization"
    }


def test_moving_variance_is_biased_in_keras_and_unbiased_in_torch(arch, fixtures):
    """PyTorch's running_var averages the unbiased batch variance, Keras' moving_variance the
    biased one. After one train-mode forward pass from the same statistics v0 the two are
    0.9 v0 + 0.1 s2 * n / (n - 1) and 0.9 v0 + 0.1 s2 (n = batch * H * W of the layer): undoing
    the factor on the Keras side gives the reference's value to float32 precision."""
    fx = fixtures[arch]
    x = f32(fx["inputs/x_steps"][0])
    net = make_net(arch, fx)
    v0 = {k: v for k, v in convert.keras_to_torch(net).items() if k.endswith("running_var")}
    net(x, training=True)
    after = convert.keras_to_torch(net)
    ref = convert.section(fx, "forward/bn_after_train")
    sizes = _bn_sizes(net)
    gap, corrected_err = [], 0.0
    for key, v in v0.items():
        n = len(x) * sizes[key[: -len(".running_var")]]
        corrected = 0.9 * v + (after[key] - 0.9 * v) * n / (n - 1)
        corrected_err = max(corrected_err, rel_err(corrected, ref[key]))
        gap.append((ref[key] - after[key]) / ref[key])
    gap = np.concatenate(gap)
    _record(f"{arch}/forward/bn_var_corrected", corrected_err)
    _record(f"{arch}/forward/bn_var_gap_max", float(gap.max()))
    assert corrected_err < 1e-5  # measured: preact 7.5e-7, small_cnn 7.5e-8
    n_min = len(x) * min(sizes.values())
    # gap = 0.1 s2 / ((n - 1) running_var) < 1 / (n - 1); measured max: preact 5.9e-4 (n_min 128),
    # small_cnn 3.3e-5 (n_min 1024)
    assert gap.min() > -1e-6 and 0.01 / (n_min - 1) < gap.max() < 1.0 / (n_min - 1)


def test_moving_variance_gap_after_three_steps(arch, fixtures, trained):
    """The same difference after the three warm-up steps, pinned (preact from its float64 steps on
    4 rows, free of float32's ReLU flips). (reference - keras) / reference, measured: preact
    4.9e-6 to 3.1e-3 (n = 4096 at 32x32 down to 64 at 4x4), small_cnn 2.5e-6 to 1.1e-4
    (n = 4096 / 1024). It is at most (1 - 0.9^3) / (n - 1) * s2 / running_var: ~0.3 % for 4x4 maps
    of 4 images, ten times less at the reference's batch of 64 (n = 1024) -- kept knowingly."""
    fx = fixtures[arch]
    section = "steps64" if arch == "preact_resnet18" else "steps"
    gap = running_var_gap(_trained(arch, fixtures, trained, section), convert.section(fx, f"{section}/state"))
    low, high = (1e-3, 6e-3) if arch == "preact_resnet18" else (5e-5, 3e-4)
    _record(f"{arch}/{section}/bn_var_gap_max", float(gap.max()))
    _record(f"{arch}/{section}/bn_var_gap_min", float(gap.min()))
    assert gap.min() > 0.0 and low < gap.max() < high


def test_eval_train_losses_and_gmm(arch, fixtures, trained):
    check_eval(arch, fixtures[arch], _eval_state(arch, fixtures, trained))


def test_predict_logits_is_the_eager_eval_forward(fixtures, trained):
    """co-divide's per-sample losses come from `predict_logits` (batched, compiled): the same
    logits as the eager eval-mode calls check_eval compares."""
    fx = fixtures["small_cnn"]
    model = make_model("small_cnn", fx)
    convert.set_keras_weights(model.nets[0], _trained("small_cnn", fixtures, trained))
    x = eval_images(fx)
    logits = model.predict_logits(0, tf.data.Dataset.from_tensor_slices(x).batch(64))
    close("small_cnn/predict_logits_vs_eager", logits, model.nets[0](x, training=False).numpy(), 1e-6)


@pytest.mark.parametrize("form", ["cifar", "clothing"])
def test_ssl_step(arch, fixtures, form):
    check_ssl(arch, fixtures[arch], form)


@pytest.mark.parametrize("form, wrong_rows", [("cifar", "labeled"), ("clothing", "all")])
def test_the_two_ssl_forms_are_told_apart(form, wrong_rows, fixtures):
    """Each SSL fixture rejects the other form's step (the checks can tell the two apart)."""
    with pytest.raises(AssertionError):
        check_ssl("small_cnn", fixtures["small_cnn"], form, ssl_rows=wrong_rows, tag="/swapped")


def test_ensemble_test(arch, fixtures):
    check_ensemble(arch, fixtures[arch])


# -- the preact checks fail on the textbook identity shortcut ----------------------------------------


def test_the_local_preact_builder_matches_with_the_reference_shortcut(fixtures):
    """The builder of the textbook net is faithful except for the shortcut choice."""
    check_forward("preact_resnet18", fixtures["preact_resnet18"], variant="reference", tag="/local_builder")


@pytest.mark.parametrize(
    "check", [check_forward, check_warmup_losses, check_steps, check_ensemble], ids=lambda f: f.__name__
)
def test_textbook_shortcut_fails(check, fixtures):
    with pytest.raises(AssertionError):
        check("preact_resnet18", fixtures["preact_resnet18"], variant="textbook", tag="/textbook")


@pytest.mark.parametrize("form", ["cifar", "clothing"])
def test_textbook_shortcut_fails_the_ssl_steps(form, fixtures):
    with pytest.raises(AssertionError):
        check_ssl("preact_resnet18", fixtures["preact_resnet18"], form, variant="textbook", tag="/textbook")


def test_textbook_shortcut_fails_the_eval_losses(fixtures, trained):
    state = _eval_state("preact_resnet18", fixtures, trained)
    with pytest.raises(AssertionError):
        check_eval("preact_resnet18", fixtures["preact_resnet18"], state, variant="textbook", tag="/textbook")


# -- regenerating the fixtures with PyTorch ----------------------------------------------------------


def _torch_python():
    """$DMKERAS_TORCH_PYTHON, else this interpreter when it has PyTorch (looked up, not imported)."""
    env = os.environ.get("DMKERAS_TORCH_PYTHON")
    if env:
        return env
    return sys.executable if importlib.util.find_spec("torch") is not None else None


@pytest.mark.skipif(_torch_python() is None, reason="no Python with PyTorch (set DMKERAS_TORCH_PYTHON)")
def test_regenerated_fixtures_match_the_committed_ones(tmp_path):
    """make_fixtures.py (in its own process: never torch beside TensorFlow) writes the committed
    bytes again. On another torch build / CPU the bytes may differ: then the inputs must be
    identical, the outputs close, and every check runs against the regenerated files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "KERAS_", "CUDA_"))}
    result = subprocess.run(
        [_torch_python(), str(ROOT / "tools" / "reference" / "make_fixtures.py"), "--out", str(tmp_path)],
        cwd=ROOT, env=env, timeout=900, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for arch in ARCHS:
        if (tmp_path / f"{arch}.npz").read_bytes() == (FIXTURES / f"{arch}.npz").read_bytes():
            _record(f"{arch}/regenerated_bytes_differ", 0.0)
            continue  # the same arrays: the tests above have checked them
        _record(f"{arch}/regenerated_bytes_differ", 1.0)
        regenerated, committed = load(arch, tmp_path), load(arch)
        assert set(regenerated) == set(committed)
        for key, value in committed.items():
            if key.startswith(("config/", "inputs/", "ssl_inputs/")) or not np.issubdtype(value.dtype, np.floating):
                np.testing.assert_array_equal(regenerated[key], value, err_msg=key)
            else:
                close(f"{arch}/regenerated_vs_committed", regenerated[key], value, RTOL_PREACT_STEPS_WEIGHTS)
        check_all(arch, regenerated, tag="/regenerated")
