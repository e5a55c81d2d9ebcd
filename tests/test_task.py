"""`dmkeras.DivideMix`, the Keras task model: fit / predict / evaluate / save on raw images, the
same numbers as the command line, label issues, Keras callbacks, and one-line input errors.

One DivideMix fit on the scikit-learn digits (all 1,500 training images, 40 % symmetric noise,
4 epochs of which 2 warm-up, small_cnn of width 8) is shared by most tests, and the command line
(`dmkeras.experiment.run`) trains once with the same settings to compare with it.
"""

import csv
import inspect
import json
import math
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import dmkeras
from dmkeras import callbacks as callbacks_lib
from dmkeras import division, experiment, zoo
from dmkeras.config import TrainConfig
from dmkeras.data import noise, sources
from dmkeras.data.augment import normalize
from dmkeras.errors import DmkerasError
from dmkeras.optimizers import TorchSGD

# lr 0.1 rather than the paper's 0.02: 2 warm-up epochs of width-8 nets then learn enough digits for
# the first division to mean something (the command line reaches division_auc_last 0.858 here; at
# lr 0.02 0.80). lr / 10 from epoch 3 on, to go through StepDecay.
EPOCHS, WARM_UP, LR, DROP, NOISE, TEST_LIMIT = 4, 2, 0.1, 3, 0.4, 200
SETTINGS = dict(num_classes=10, backbone_args={"width": 8}, warm_up=WARM_UP, augment="crop", pad=1, seed=0)


@pytest.fixture(scope="module")
def digits():
    data = sources.load_source("digits")
    noisy = noise.make_noisy_labels(data.y_train, "sym", NOISE, 10, seed=0)
    return data, noisy


class _Recorder(keras.callbacks.Callback):
    """Counts the batch hooks of every epoch and keeps what on_epoch_end is given."""

    def __init__(self):
        super().__init__()
        self.begun, self.ended, self.expected, self.epoch_logs, self.batch_keys = [], [], [], [], set()

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append([])
        self.ended.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self.begun[-1].append(batch)

    def on_train_batch_end(self, batch, logs=None):
        self.ended[-1].append(batch)
        self.batch_keys.update(logs)

    def on_epoch_end(self, epoch, logs=None):
        self.expected.append(sum(p.num_steps for p in self.model._codivide.passes))
        self.epoch_logs.append(dict(logs))


@pytest.fixture(scope="module")
def fitted(digits):
    data, noisy = digits
    model = dmkeras.DivideMix("small_cnn", **SETTINGS)
    model.compile(optimizer=keras.optimizers.SGD(LR, momentum=0.9), weight_decay=5e-4)
    recorder = _Recorder()
    history = model.fit(
        data.x_train, noisy, epochs=EPOCHS, batch_size=64,
        validation_data=(data.x_test[:TEST_LIMIT], data.y_test[:TEST_LIMIT]),
        callbacks=[callbacks_lib.StepDecay(LR, DROP), recorder], verbose=0,
    )
    return model, history, recorder


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("cli"))
    config = TrainConfig(
        dataset="digits", noise_mode="sym", noise_rate=NOISE, epochs=EPOCHS, warm_up=WARM_UP, lr=LR, lr_drop_epoch=DROP,
        momentum=0.9, weight_decay=5e-4, batch_size=64, backbone="small_cnn", backbone_args="width=8", augment="crop",
        pad=1, test_limit=TEST_LIMIT, seed=0, workdir=workdir, verbose=0,
    )
    summary = experiment.run(config)
    with open(os.path.join(workdir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return workdir, rows, summary


# -- fit ------------------------------------------------------------------------------------------------


def test_fit_returns_a_keras_history_of_per_epoch_lists(fitted, digits):
    model, history, _ = fitted
    assert isinstance(history, keras.callbacks.History) and model.history is history
    assert history.epoch == list(range(EPOCHS))
    for key in ("net1_loss", "net2_loss", "lr", "phase", "val_acc", "val_acc_net1", "val_acc_net2", "net1_labeled",
                "net1_loss_x", "net1_loss_u", "net1_penalty"):
        assert len(history.history[key]) == EPOCHS, key
    assert not any(key.startswith("test_") for key in history.history) and "epoch" not in history.history
    assert history.history["phase"] == ["warmup", "warmup", "ssl", "ssl"]
    assert history.history["lr"] == pytest.approx([LR, LR, LR, LR / 10])
    assert all(math.isnan(v) for v in history.history["net1_loss_x"][:WARM_UP])  # no such value in warm-up
    assert all(0 < v < 3 for v in history.history["net1_loss"])
    assert history.history["val_acc"][-1] > 0.5  # from 10 % (chance) in 4 epochs
    # the normalisation was adapted on the training images, as the data source computes it
    data, _ = digits
    assert model.mean == pytest.approx(data.mean, abs=1e-12) and model.std == pytest.approx(data.std, abs=1e-12)
    np.testing.assert_allclose(model.pixel_mean.numpy(), np.float32(data.mean))
    assert isinstance(model.optimizers[0], TorchSGD) and model.optimizers[0] is not model.optimizers[1]
    assert model.weight_decay == 5e-4


def test_the_last_division_finds_the_flipped_labels(fitted, digits):
    model, _, _ = fitted
    data, noisy = digits
    clean = noisy == data.y_train
    probs = model.clean_probability_
    assert probs.shape == (len(noisy),) and np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs, np.mean([d.clean_prob for d in model._codivide.divisions], axis=0))
    # The command line reaches division_auc_last 0.858 (the mean of its nets' AUCs) on these
    # settings, and the mean of the nets' clean probabilities 0.898: 0.8 leaves room for either.
    assert division.roc_auc(probs, clean) > 0.8
    issues = model.label_issues()
    assert np.all(probs[issues] <= 0.5) and len(issues) == np.sum(probs <= 0.5)
    assert np.all(np.diff(probs[issues]) >= 0)  # most likely mislabeled first
    assert np.mean(~clean[issues[:100]]) > 0.7  # the top of the list is mostly wrong labels (noise 37 %)
    assert len(model.label_issues(threshold=0.1)) < len(issues)
    mask = model.find_label_issues(data.x_train, noisy)  # fitted: no new fit, the last division's verdict
    assert mask.dtype == bool and np.array_equal(np.flatnonzero(mask), np.sort(issues))


def test_fit_gives_the_same_numbers_as_the_command_line(fitted, cli_run, digits):
    """Same data, seed, settings: DivideMix.fit and experiment.run train bit for bit the same nets
    (measured: every weight of both nets equal, max difference 0.0)."""
    model, history, _ = fitted
    workdir, rows, summary = cli_run
    assert len(rows) == EPOCHS
    for key in ("net1_loss", "net2_loss", "net1_loss_x", "net1_loss_u", "net2_loss_x", "net2_loss_u", "net1_penalty",
                "net1_labeled", "net2_labeled", "lr"):
        cli = [float(r[key]) if r[key] else math.nan for r in rows]
        np.testing.assert_allclose(history.history[key], cli, rtol=1e-5, equal_nan=True, err_msg=key)  # csv: 6 digits
    for key in ("acc", "acc_net1", "acc_net2"):  # the CLI's test set is fit's validation_data
        np.testing.assert_allclose(history.history[f"val_{key}"], [float(r[f"test_{key}"]) for r in rows], rtol=1e-5)
    data, noisy = digits
    clean = noisy == data.y_train
    for k, d in enumerate(model._codivide.divisions):  # the same last divisions
        assert division.roc_auc(d.clean_prob, clean) == pytest.approx(float(rows[-1][f"net{k + 1}_auc"]), rel=1e-5)
    for k, net in enumerate(model.nets):
        saved = keras.saving.load_model(os.path.join(workdir, f"net{k + 1}.keras"))
        for a, b in zip(saved.get_weights(), net.get_weights()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_command_line_run_reloads_as_the_task_model(cli_run, digits):
    """launch.train trains a dmkeras.DivideMix; from_run gives it back with the run's settings, and
    its predictions are the softmax of its two saved nets' ensemble on the run's normalisation."""
    workdir, _, _ = cli_run
    model = dmkeras.DivideMix.from_run(workdir)
    assert (model.warm_up, model.lambda_u, model.augment, model.pad) == (WARM_UP, 25.0, "crop", 1)
    data, _ = digits
    images = data.x_test[:7]
    with open(os.path.join(workdir, "dataset.json")) as f:
        stats = json.load(f)
    x = normalize(images, stats["mean"], stats["std"])
    nets = [keras.saving.load_model(os.path.join(workdir, f"net{k}.keras")) for k in (1, 2)]
    expected = tf.nn.softmax(nets[0](x) + nets[1](x)).numpy()
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_from_run_names_what_it_cannot_use(tmp_path, cli_run):
    with pytest.raises(DmkerasError, match="not a dmkeras run directory|no config.json"):
        dmkeras.DivideMix.from_run(str(tmp_path))
    workdir, _, _ = cli_run
    copy = tmp_path / "standard"
    shutil.copytree(workdir, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "method": "standard"}))
    with pytest.raises(DmkerasError, match="is a method=standard run"):
        dmkeras.DivideMix.from_run(str(copy))


def test_batch_hooks_are_called_for_every_step_and_callbacks_get_keras_logs(fitted):
    _, _, recorder = fitted
    assert len(recorder.begun) == EPOCHS
    for begun, ended, expected in zip(recorder.begun, recorder.ended, recorder.expected):
        assert expected > 0 and begun == ended == list(range(expected))  # indices over the epoch's two passes
    assert recorder.expected[0] == 2 * math.ceil(1500 / 128)  # warm-up: 2 x batch_size per step, each net
    assert {"net1_loss", "net2_loss", "net1_loss_x"} <= recorder.batch_keys
    for logs in recorder.epoch_logs:
        assert {"val_acc", "val_acc_net1", "val_acc_net2", "net1_loss", "lr"} <= set(logs)
        assert "epoch" not in logs and "phase" not in logs  # numbers only, as Keras callbacks expect


# -- predict / evaluate ------------------------------------------------------------------------------------


def test_predict_is_the_softmax_of_the_ensemble_on_normalised_images(fitted, digits):
    model, _, _ = fitted
    data, _ = digits
    images = data.x_test[:50]
    probs = model.predict(images, verbose=0)
    inputs = normalize(images, data.mean, data.std)  # what the training pipelines feed the nets
    logits = model.net1(inputs, training=False) + model.net2(inputs, training=False)
    np.testing.assert_allclose(probs, tf.nn.softmax(logits).numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model(images).numpy(), logits.numpy(), rtol=0, atol=1e-5)  # call: raw -> logits
    np.testing.assert_array_equal(model.predict(images.astype(np.float64), verbose=0), probs)  # float 0..255
    np.testing.assert_array_equal(model(images.astype(np.float32)).numpy(), model(images).numpy())  # cast in the graph
    np.testing.assert_array_equal(model.predict(images[..., 0], verbose=0), probs)  # (N, H, W)
    batched = tf.data.Dataset.from_tensor_slices((images, data.y_test[:50])).batch(16)
    np.testing.assert_allclose(model.predict(batched, verbose=0), probs, rtol=0, atol=1e-6)
    unbatched = tf.data.Dataset.from_tensor_slices(images)
    np.testing.assert_allclose(model.predict(unbatched, verbose=0), probs, rtol=0, atol=1e-6)


def test_evaluate_reports_the_ensemble_and_each_net_the_keras_way(fitted, digits):
    model, history, _ = fitted
    data, _ = digits
    x, y = data.x_test[:TEST_LIMIT], data.y_test[:TEST_LIMIT]
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(result) == {"acc", "acc_net1", "acc_net2"}
    for key, value in result.items():  # as the epoch's validation (model.accuracy), same weights
        assert value == pytest.approx(history.history[f"val_{key}"][-1], abs=1e-6), key
    assert model.evaluate(x, y, verbose=0) == pytest.approx([result["acc"], result["acc_net1"], result["acc_net2"]])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    assert model.evaluate(dataset, verbose=0, return_dict=True) == pytest.approx(result)


# -- save / load / export ----------------------------------------------------------------------------------


def test_save_and_load_round_trip_without_custom_objects(fitted, digits, tmp_path):
    model, _, _ = fitted
    data, _ = digits
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert type(again) is dmkeras.DivideMix and again.get_config() == model.get_config()
    np.testing.assert_allclose(again.predict(data.x_test, verbose=0), model.predict(data.x_test, verbose=0), rtol=0, atol=1e-6)
    assert again.mean == model.mean and again.std == model.std
    assert isinstance(again.optimizers[1], TorchSGD) and again.weight_decay == model.weight_decay
    for a, b in zip(again.optimizers, model.optimizers):  # optimizer state comes back too
        assert int(a.iterations.numpy()) == int(b.iterations.numpy()) > 0 and len(a.variables) == len(b.variables)
        for va, vb in zip(a.variables, b.variables):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
    rebuilt = dmkeras.DivideMix.from_config(model.get_config())
    assert rebuilt.get_config() == model.get_config()
    # the last division comes back too: label issues without retraining
    np.testing.assert_array_equal(again.clean_probability_, model.clean_probability_)
    np.testing.assert_array_equal(again.label_issues(), model.label_issues())
    assert rebuilt.clean_probability_ is None  # a config alone holds no division


def test_export_serves_the_ensemble_logits_of_raw_images(fitted, digits, tmp_path):
    model, _, _ = fitted
    data, _ = digits
    model.export(str(tmp_path / "export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export"))
    logits = served.serve(tf.constant(data.x_test[:40], tf.float32))
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model.predict(data.x_test[:40], verbose=0), rtol=0, atol=1e-6)


def _small_net(seed, classes=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x))


def test_two_given_nets_are_used_and_serialised(tmp_path):
    net1, net2 = _small_net(1), _small_net(2)
    model = dmkeras.DivideMix((net1, net2), num_classes=3, mean=(0.5,), std=(0.25,))
    assert model.net1 is net1 and model.net2 is net2 and model.image_shape == (8, 8, 1)
    images = np.random.default_rng(0).integers(0, 256, size=(30, 8, 8, 1)).astype(np.uint8)
    inputs = (images / 255.0 - 0.5) / 0.25
    expected = tf.nn.softmax(net1(inputs) + net2(inputs)).numpy()
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=0, atol=1e-6)
    config = model.get_config()
    assert [c["class_name"] for c in config["backbone"]] == ["Functional", "Functional"]
    path = str(tmp_path / "given.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(images, verbose=0), expected, rtol=0, atol=1e-6)
    for a, b in zip(again.net2.get_weights(), net2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert dmkeras.DivideMix.from_config(config).get_config() == config


def test_dtype_policy_builds_mixed_precision_nets_and_optimizers_are_copies():
    model = dmkeras.DivideMix("small_cnn", num_classes=10, input_shape=(8, 8, 1), backbone_args={"width": 4},
                              dtype="mixed_float16", mean=(0.3,), std=(0.4,))
    assert keras.mixed_precision.global_policy().name == "float32"  # left as it was
    assert model.net1.dtype_policy.name == "mixed_float16" and model.pixel_mean.dtype == "float32"
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=10, decay_rate=0.5)
    given = keras.optimizers.SGD(schedule, momentum=0.9)
    model.compile(given)
    for optimizer in model.optimizers:
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and optimizer is not given
        assert isinstance(optimizer.inner_optimizer, TorchSGD)
        assert isinstance(optimizer.inner_optimizer._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert not given.built  # the optimizer given is copied, never used
    images = np.random.default_rng(0).integers(0, 256, size=(6, 8, 8, 1)).astype(np.uint8)
    probs = model.predict(images, verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    keras_sgd = dmkeras.DivideMix((_small_net(1), _small_net(2)), num_classes=3)
    keras_sgd.compile(keras.optimizers.SGD(0.1, momentum=0.9), momentum_buffer="keras")
    assert type(keras_sgd.optimizers[0]) is keras.optimizers.SGD


# -- tf.data, continuing, stopping ----------------------------------------------------------------------


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


def test_tf_data_fit_continuing_and_stop_training(digits):
    """A fit on a dataset of (image, label) pairs continued by a second fit (initial_epoch) trains
    the same nets as one fit on the arrays; model.stop_training from a callback ends it."""
    data, noisy = digits
    x, y = data.x_train[:150], noisy[:150]
    settings = dict(SETTINGS, warm_up=5)  # warm-up only: quick
    one = dmkeras.DivideMix("small_cnn", **settings)  # not compiled: fit compiles with the defaults
    first = one.fit(tf.data.Dataset.from_tensor_slices((x, y)), epochs=1, verbose=0)
    second = one.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=2, initial_epoch=1, verbose=0)
    assert first.epoch == [0] and second.epoch == [1]
    assert isinstance(one.optimizers[0], TorchSGD) and float(one.optimizers[0].learning_rate) == pytest.approx(0.02)
    assert one.clean_probability_ is None  # still in warm-up: no division yet
    with pytest.raises(DmkerasError, match="no division yet"):
        one.label_issues()

    other = dmkeras.DivideMix("small_cnn", **settings)
    other.compile("sgd")
    history = other.fit(x, y, epochs=4, callbacks=[_StopAfter(1)], verbose=0)
    assert history.epoch == [0, 1] and len(history.history["net1_loss"]) == 2  # stopped after epoch 2 of 4
    assert history.history["net1_loss"][1] == pytest.approx(second.history["net1_loss"][0], rel=1e-6)
    for a, b in zip(one.get_weights(), other.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(one.predict(x[:20], verbose=0), other.predict(tf.data.Dataset.from_tensor_slices(x[:20]), verbose=0),
                               rtol=0, atol=1e-6)


# -- arguments and inputs ------------------------------------------------------------------------------------


def test_help_documents_every_argument():
    doc = inspect.getdoc(dmkeras.DivideMix)
    for name in inspect.signature(dmkeras.DivideMix.__init__).parameters:
        if name not in ("self", "kwargs"):
            assert f"  {name}" in doc or f", {name}:" in doc, name
    for method in ("compile", "fit", "predict", "evaluate", "save", "export", "label_issues", "find_label_issues"):
        assert method in doc, method
    compile_doc = inspect.getdoc(dmkeras.DivideMix.compile)
    for name in ("optimizer", "weight_decay", "jit_compile", "momentum_buffer"):
        assert f"{name}:" in compile_doc
    fit_doc = inspect.getdoc(dmkeras.DivideMix.fit)
    for name in ("x", "y", "epochs", "batch_size", "validation_data", "callbacks", "verbose", "initial_epoch"):
        assert f"{name}:" in fit_doc


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lambda_u=-1), "lambda_u must be >= 0, got -1"),
        (dict(p_threshold=1.5), r"p_threshold must be in \[0, 1\], got 1.5"),
        (dict(warm_up=-1), "warm_up must be >= 0, got -1"),
        (dict(warm_up=2.5), "warm_up must be an int"),
        (dict(temperature=0), "temperature must be > 0"),
        (dict(division="median"), "division must be one of gmm, per_class_gmm, class_floor, unicon"),
        (dict(class_floor=2), r"class_floor must be in \[0, 1\]"),
        (dict(loss_history=0), "loss_history must be >= 1"),
        (dict(ssl_rows="some"), "ssl_rows must be one of all, labeled"),
        (dict(ssl_rows="labeled"), "ssl_rows=labeled trains on the labeled mixed rows only.*lambda_u must be 0"),
        (dict(augment="rotate"), "augment='rotate': unknown augmentation 'rotate'"),
        (dict(pad=-1), "pad must be >= 0"),
        (dict(confidence_penalty="yes"), "confidence_penalty must be True or False"),
        (dict(mixup_alpha="4"), "mixup_alpha must be a finite number"),
        (dict(eval_batch_size=0), "eval_batch_size must be >= 1"),
        (dict(num_classes=1), "num_classes must be an int >= 2"),
        (dict(backbone="resnet9000"), "backbone must be one of .*small_cnn"),
        (dict(backbone_args={"depth": 3}), "model 'small_cnn' does not accept 'depth'"),
        (dict(input_shape=(8, 8)), "input_shape must be 3 positive ints"),
        (dict(mean=(0.5,)), "mean and std go together"),
        (dict(input_shape=(8, 8, 1), mean=(0.5, 0.5, 0.5), std=(1, 1, 1)), r"mean has 3 values but the images have 1 channel"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs, message):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(DmkerasError, match=message) as error:
        dmkeras.DivideMix(kwargs.pop("backbone", "small_cnn"), **kwargs)
    assert "\n" not in str(error.value)


def test_bad_nets_and_compile_arguments():
    net = _small_net(1)
    with pytest.raises(DmkerasError, match="net1 and net2 are the same model"):
        dmkeras.DivideMix((net, net), num_classes=3)
    with pytest.raises(DmkerasError, match="backbone net1 gives 3 logits, num_classes is 10"):
        dmkeras.DivideMix((net, _small_net(2)), num_classes=10)
    with pytest.raises(DmkerasError, match="backbone_args apply to a zoo backbone name"):
        dmkeras.DivideMix((net, _small_net(2)), num_classes=3, backbone_args={"width": 8})
    model = dmkeras.DivideMix("small_cnn", num_classes=10)
    with pytest.raises(DmkerasError, match="weight_decay must be >= 0"):
        model.compile(weight_decay=-1)
    with pytest.raises(DmkerasError, match="loss is DivideMix's own"):
        model.compile(loss="mse")
    with pytest.raises(DmkerasError, match="unknown optimizer name 'sdg'"):
        model.compile("sdg")
    with pytest.raises(DmkerasError, match="momentum_buffer must be one of torch, keras"):
        model.compile(momentum_buffer="numpy")


def test_bad_inputs_raise_one_line_errors():
    model = dmkeras.DivideMix("small_cnn", num_classes=10)
    x = np.zeros((12, 8, 8, 1), np.uint8)
    y = np.zeros(12, np.int64)
    cases = [
        ((x, y[:10]), {}, "x has 12 images but y has 10 labels"),
        ((x, y + 10), {}, r"y must lie in \[0, 10\), got 10 \(12 samples\)"),
        ((x, -np.ones(12)), {}, r"y must lie in \[0, 10\), got -1 \(12 samples\)"),
        ((x, y + 0.5), {}, r"y must be integer class indices \(got non-integer values\)"),
        ((np.full((12, 8, 8, 1), np.nan), y), {}, "x has NaN or infinite pixel values"),
        ((np.zeros((12, 64)), y), {}, r"x must be images of shape \(N, H, W, C\) or \(N, H, W\), got shape \(12, 64\)"),
        ((np.full((12, 8, 8, 1), 300.0), y), {}, r"raw pixel values in \[0, 255\].*got values in \[300, 300\]"),
        ((x, None), {}, "y is required"),
        ((x, y), {"epochs": 0}, "epochs must be >= 1"),
        ((x, y), {"batch_size": 0}, "batch_size must be >= 1"),
        ((x, y), {"verbose": 3}, "verbose must be 'auto', 0, 1 or 2"),
        ((x, y), {"validation_data": (x, y[:3])}, "validation_data images has 12 images but validation_data labels has 3"),
        ((tf.data.Dataset.from_tensor_slices((x, y)).repeat(),), {}, "infinite tf.data.Dataset"),
        ((tf.data.Dataset.from_tensor_slices((x, y)), y), {}, "y must be None when x is a tf.data.Dataset"),
        ((tf.data.Dataset.from_tensor_slices(x),), {}, r"must be a tf.data.Dataset of \(image, label\) pairs"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(DmkerasError, match=message) as error:
            model.fit(*args, **{"verbose": 0, **kwargs})
        assert "\n" not in str(error.value)
    assert not model.built  # nothing was built on bad input


def test_import_dmkeras_stays_free_of_tensorflow():
    code = "import sys, dmkeras, dmkeras.config; assert 'tensorflow' not in sys.modules; assert 'DivideMix' in dmkeras.__all__"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert dmkeras.DivideMix.__module__ == "dmkeras.task" and zoo.list_models()


def test_classes_without_a_sample_are_named_and_left_out_of_the_prior(digits, caplog):
    data, _ = digits
    model = dmkeras.DivideMix("small_cnn", num_classes=12, backbone_args={"width": 8}, warm_up=1, augment="crop", pad=1)
    with caplog.at_level("WARNING", logger="dmkeras"):
        model.fit(data.x_train[:200], data.y_train[:200], epochs=1, verbose=0)
    assert "num_classes=12 but 2 class(es) have no training sample (10, 11)" in caplog.text
    assert model._present_classes.tolist() == [1.0] * 10 + [0.0, 0.0]


def test_fit_prints_the_command_lines_epoch_line_without_a_test_column(capsys):
    from dmkeras.task import _EpochPrinter

    logs = {"phase": "ssl", "lr": 0.02, "net1_loss": 1.5, "net2_loss": 1.25, "net1_labeled": 700.0, "net2_labeled": 650.0,
            "val_acc": 0.9, "val_acc_net1": 0.89, "val_acc_net2": 0.88, "epoch_time_s": 3.25}
    _EpochPrinter(10).on_epoch_end(2, logs)
    line = capsys.readouterr().out.strip()
    assert line == callbacks_lib.epoch_line({"epoch": 3, **logs}, 10)
    assert line == "epoch 3/10 ssl | lr 0.02 | loss 1.5000/1.2500 | labeled 700/650 | val acc 90.00% (net1 89.00, net2 88.00) | 3.2s"
