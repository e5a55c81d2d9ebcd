"""`python -m launch.export` and `dmkeras.export`: the SavedModel, the Keras reload, the model card, the errors."""

import json
import os
import shutil

import numpy as np
import pytest

from dmkeras import export
from dmkeras.errors import DmkerasError
from tests.helpers import random_images, run_module


def _last_stderr_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    proc = run_module(
        "launch.train",
        "--flagfile=launch/configs/digits_sym50.cfg",
        "--train_limit=200",
        "--test_limit=50",
        "--epochs=2",
        "--warm_up=1",
        "--verbose=0",
        f"--workdir={workdir}",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = os.path.join(str(tmp_path_factory.mktemp("export")), "model")
    proc = run_module("launch.export", f"--workdir={run_dir}", f"--out={out}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out in proc.stdout and "saved_model.pb" in proc.stdout
    return out


def _images(n, seed=0):
    return random_images(np.random.default_rng(seed), n)


def _reference(run_dir, images, nets=("net1.keras", "net2.keras")):
    """softmax of the summed logits of the run's nets, normalised as training did, computed here."""
    import keras

    with open(os.path.join(run_dir, "dataset.json")) as f:
        info = json.load(f)
    x = (images.astype(np.float32) / 255.0 - np.asarray(info["mean"], np.float32)) / np.asarray(info["std"], np.float32)
    logits = sum(
        np.asarray(keras.saving.load_model(os.path.join(run_dir, name), compile=False)(x, training=False)) for name in nets
    )
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _serve(path, images):
    import tensorflow as tf

    return tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()


def test_export_directory_holds_savedmodel_nets_card_and_readme(exported):
    for name in ("saved_model.pb", "net1.keras", "net2.keras", "model_card.json", "README.md"):
        assert os.path.getsize(os.path.join(exported, name)) > 0, name
    assert os.listdir(os.path.join(exported, "variables"))
    readme = open(os.path.join(exported, "README.md")).read()
    assert "tf.saved_model.load" in readme and "serving_default" in readme and "dmkeras.zoo.load" in readme
    assert not [n for n in os.listdir(os.path.dirname(exported)) if n != "model"]  # no temp dir left


def test_savedmodel_gives_the_ensemble_probabilities(run_dir, exported):
    images = _images(16)
    got = _serve(exported, images)
    assert got.shape == (16, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(run_dir, images), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)


def test_savedmodel_signatures_and_any_batch_size(run_dir, exported):
    import tensorflow as tf

    model = tf.saved_model.load(exported)
    assert set(model.signatures) == {"serving_default", "predict_logits"}
    spec = model.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 8, 8, 1]
    for n in (1, 37):
        images = _images(n, seed=n)
        probs = model.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
        assert probs.shape == (n, 10)
        np.testing.assert_allclose(probs, _reference(run_dir, images), atol=1e-5)
        logits = model.signatures["predict_logits"](images=tf.constant(images))["logits"].numpy()
        np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-6)


def test_keras_load_gives_the_same_probabilities(run_dir, exported):
    import keras

    model = export.load(exported)
    assert isinstance(model, keras.Model)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    images = _images(20, seed=3)
    got = model.predict(images, verbose=0)
    np.testing.assert_allclose(got, _reference(run_dir, images), atol=1e-5)
    np.testing.assert_allclose(got, _serve(exported, images), atol=1e-5)
    from dmkeras import zoo

    np.testing.assert_allclose(zoo.load(exported).predict(images, verbose=0), got, atol=1e-6)


def test_model_card(run_dir, exported):
    card = export.model_card(exported)
    assert card == json.load(open(os.path.join(exported, "model_card.json")))
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert card["method"] == "dividemix" and card["backbone"] == "small_cnn" and card["num_nets"] == 2
    assert card["dataset"]["name"] == "digits" and card["dataset"]["image_shape"] == [8, 8, 1]
    assert card["dataset"]["num_classes"] == 10 and len(card["dataset"]["mean"]) == 1
    transform = card["serving"]["input_transform"]  # which transform the SavedModel's mean / std are
    assert transform["name"] == "dataset" and transform["mean"] == card["dataset"]["mean"]
    assert card["noise"] == {"mode": "sym", "rate": 0.5, "actual": summary["noise_rate_actual"]}
    for key in ("test_acc_best", "test_acc_last", "division_auc_last", "labeled_fraction_last", "epochs", "epochs_planned"):
        assert card[key] == summary[key], key
    assert card["finished"] is True and card["config"] == config
    assert card["serving"]["input_shape"] == [None, 8, 8, 1]
    import keras
    import tensorflow as tf

    import dmkeras

    versions = card["versions"]
    assert versions["tensorflow"] == tf.__version__ and versions["keras"] == keras.__version__
    assert versions["numpy"] == np.__version__ and versions["dmkeras"] == dmkeras.__version__
    assert versions["tensorflow_probability"]


def test_reexport_replaces_an_earlier_export(run_dir, tmp_path):
    out = str(tmp_path / "model")
    first = export.export_run(run_dir, out)
    assert first["replaced"] is False
    second = export.export_run(run_dir, out)
    assert second["replaced"] is True and "saved_model.pb" in second["files"]
    assert os.listdir(tmp_path) == ["model"]  # the temp and the old directories are gone
    np.testing.assert_allclose(_serve(out, _images(4)), _reference(run_dir, _images(4)), atol=1e-5)


@pytest.mark.parametrize("method", ["standard", "cleanlab"])
def test_one_net_run_exports_softmax_of_net1(run_dir, tmp_path, method):
    """The standard and cleanlab baselines write only net1.keras: the export is softmax(net1(x))."""
    workdir = str(tmp_path / method)
    os.makedirs(workdir)
    for name in ("dataset.json", "summary.json", "net1.keras"):
        shutil.copy(os.path.join(run_dir, name), workdir)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    json.dump(dict(config, method=method), open(os.path.join(workdir, "config.json"), "w"))
    out = str(tmp_path / "out")
    result = export.export_run(workdir, out)
    assert result["model_card"]["num_nets"] == 1 and not os.path.exists(os.path.join(out, "net2.keras"))
    images = _images(8, seed=5)
    expected = _reference(run_dir, images, nets=("net1.keras",))
    np.testing.assert_allclose(_serve(out, images), expected, atol=1e-5)
    np.testing.assert_allclose(export.load(out).predict(images, verbose=0), expected, atol=1e-5)


def _copy_run(run_dir, dest, **summary_changes):
    os.makedirs(dest)
    for name in ("config.json", "dataset.json", "summary.json", "net1.keras", "net2.keras"):
        shutil.copy(os.path.join(run_dir, name), dest)
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    json.dump(dict(summary, **summary_changes), open(os.path.join(dest, "summary.json"), "w"))
    return dest


def test_cli_error_missing_workdir(tmp_path):
    proc = run_module("launch.export", f"--workdir={tmp_path / 'nope'}", f"--out={tmp_path / 'out'}", timeout=300)
    assert proc.returncode == 2
    assert _last_stderr_line(proc).startswith("error: ") and "not found" in _last_stderr_line(proc)
    assert not os.path.exists(tmp_path / "out")


def test_cli_error_non_empty_unrelated_out_dir(run_dir, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    proc = run_module("launch.export", f"--workdir={run_dir}", f"--out={out}", timeout=300)
    assert proc.returncode == 2
    assert _last_stderr_line(proc).startswith("error: ") and "not empty" in _last_stderr_line(proc)
    assert os.listdir(out) == ["notes.txt"]


def test_cli_error_unfinished_run(run_dir, tmp_path):
    workdir = _copy_run(run_dir, str(tmp_path / "run"), finished=False, epochs=1)
    proc = run_module("launch.export", f"--workdir={workdir}", f"--out={tmp_path / 'out'}", timeout=300)
    assert proc.returncode == 2
    assert _last_stderr_line(proc).startswith("error: ") and "did not finish" in _last_stderr_line(proc)
    assert _last_stderr_line(proc).endswith("--allow_unfinished exports its last weights anyway")
    assert not os.path.exists(tmp_path / "out")
    result = export.export_run(workdir, str(tmp_path / "out"), allow_unfinished=True)  # what --allow_unfinished does
    assert result["model_card"]["finished"] is False and result["model_card"]["epochs"] == 1


def test_library_errors(run_dir, tmp_path):
    with pytest.raises(DmkerasError, match="not found"):
        export.load(str(tmp_path / "nope"))
    with pytest.raises(DmkerasError, match="not a dmkeras export"):
        export.load(run_dir)
    with pytest.raises(DmkerasError, match="not found"):
        export.model_card(str(tmp_path / "nope"))
    workdir = _copy_run(run_dir, str(tmp_path / "run"))
    os.remove(os.path.join(workdir, "net2.keras"))
    with pytest.raises(DmkerasError, match="no net2.keras"):
        export.export_run(workdir, str(tmp_path / "out"))
    os.remove(os.path.join(workdir, "dataset.json"))
    with pytest.raises(DmkerasError, match="dataset.json"):
        export.export_run(workdir, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_an_export_registers_as_a_zoo_preset(run_dir, exported, monkeypatch):
    import keras

    from dmkeras import zoo

    monkeypatch.setattr(zoo, "_PRESETS", {})  # the registration stays inside this test

    name = zoo.register_export(exported, "small_cnn.test_digits_export")
    assert name in zoo.list_presets("small_cnn.*")
    info = zoo.preset_info(name)
    assert info["dataset"] == "digits" and info["num_classes"] == 10 and info["path"] == os.path.abspath(exported)
    net = zoo.create_model(name, num_classes=10, input_shape=(8, 8, 1))
    reference = keras.saving.load_model(os.path.join(run_dir, "net1.keras"))
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(net.predict(images, verbose=0), reference.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(DmkerasError, match="backbone is 'small_cnn', not 'mobilenet_v2'"):
        zoo.register_export(exported, "mobilenet_v2.other")
