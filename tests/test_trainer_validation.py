"""Model selection on a validation set, as the reference's Clothing1M script: val_acc / val_acc_net1 /
val_acc_net2 every epoch, each net's best-validation weights in best/, their ensemble's test
accuracy in summary.json (test_acc_val_selected), across resume."""

import json
import os
import types

import keras
import numpy as np
import pytest

from dmkeras import callbacks as callbacks_lib
from dmkeras import checkpoint, experiment, metrics, zoo
from dmkeras.config import TrainConfig
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.data.sources import load_source
from dmkeras.errors import DmkerasError
from tests.data.sources.test_image_files import digits, make_clothing1m, write  # noqa: F401
from tests.helpers import csv_rows, small_cnn_pair

SUMMARY_VAL_KEYS = ("val_acc_best", "val_best_epoch", "test_acc_at_val_best", "val_acc_final", "val_acc_best_net1", "val_best_epoch_net1",
                    "val_acc_best_net2", "val_best_epoch_net2", "test_acc_val_selected")


def _history(net1, net2, test=None):
    return [
        {"epoch": e + 1, "val_acc": (a + b) / 2, "val_acc_net1": a, "val_acc_net2": b, "test_acc": 0.1 * (e + 1) if test is None else test[e]}
        for e, (a, b) in enumerate(zip(net1, net2))
    ]


# --------------------------------------------------------------------------------------------
# selection on hand-made histories


def test_best_epoch_takes_the_first_of_equal_bests():
    history = [{"epoch": 1, "v": 0.5}, {"epoch": 2, "v": 0.7}, {"epoch": 3, "v": 0.7}, {"epoch": 4, "v": 0.6}, {"epoch": 5}]
    assert metrics.best_epoch(history, "v") == (0.7, 2)  # a tie keeps the earlier epoch
    assert metrics.best_epoch(history + [{"epoch": 6, "v": 0.70001}], "v") == (0.70001, 6)  # strictly better wins
    assert metrics.best_epoch(history, "w") == (None, None)
    assert metrics.best_epoch([{"epoch": 1.0, "v": float("nan")}, {"epoch": 2.0, "v": 0.1}], "v") == (0.1, 2)


def test_validation_summary_selects_each_net_on_its_own():
    history = _history(net1=[0.50, 0.80, 0.80, 0.70], net2=[0.60, 0.55, 0.65, 0.65], test=[0.1, 0.2, 0.3, 0.4])
    out = metrics.validation_summary(history, test_acc_val_selected=0.77)
    assert out == {
        "val_acc_best": pytest.approx(0.725), "val_best_epoch": 3, "test_acc_at_val_best": 0.3,  # ensemble: (0.8+0.65)/2
        "val_acc_final": pytest.approx(0.675),  # the last epoch's ensemble: (0.7+0.65)/2
        "val_acc_best_net1": 0.80, "val_best_epoch_net1": 2,  # tied at epoch 3: the earlier one
        "val_acc_best_net2": 0.65, "val_best_epoch_net2": 3,  # its own best, not net 1's epoch
        "test_acc_val_selected": 0.77,
    }
    summary = metrics.summarize(history, num_samples=10, noise_rate_actual=None, wall_time_s=1.0, epochs=4, test_acc_val_selected=0.77)
    assert {k: summary[k] for k in SUMMARY_VAL_KEYS} == out

    plain = [{"epoch": 1, "test_acc": 0.5}]  # no validation set: every figure None
    summary = metrics.summarize(plain, num_samples=10, noise_rate_actual=None, wall_time_s=1.0, epochs=1, test_acc_val_selected=0.3)
    assert all(summary[k] is None for k in SUMMARY_VAL_KEYS)

    one_net = [{"epoch": 1, "val_acc": 0.4, "test_acc": 0.3}, {"epoch": 2, "val_acc": 0.6, "test_acc": 0.2}]  # standard CE
    out = metrics.validation_summary(one_net)
    assert (out["val_acc_best_net1"], out["val_best_epoch_net1"], out["test_acc_at_val_best"]) == (0.6, 2, 0.2)
    assert out["val_acc_best_net2"] is None and out["val_best_epoch_net2"] is None and out["test_acc_val_selected"] is None


class _Model:
    """What BestValidation uses of a DivideMixModel: the nets and `accuracy` (here: the marker the
    nets hold while it is called, the marker being the constant every weight was set to)."""

    def __init__(self, nets):
        self.nets = nets
        self.evaluated_with = None

    def accuracy(self, dataset):
        self.evaluated_with = [_marker(net) for net in self.nets]
        return {"acc": 0.5, "acc_net1": 0.25, "acc_net2": 0.75}


def _marker(net):
    values = {float(np.unique(w)[0]) for w in net.get_weights() if w.size}
    assert len(values) == 1
    return values.pop()


def _set_marker(net, value):
    net.set_weights([np.full_like(w, value) for w in net.get_weights()])


def test_best_validation_saves_a_net_when_its_own_accuracy_strictly_improves(tmp_path):
    keras.utils.set_random_seed(0)
    nets = small_cnn_pair(3, width=2)
    model = _Model(nets)
    recorder = types.SimpleNamespace(history=[])
    callback = callbacks_lib.BestValidation(str(tmp_path), test_data=None, recorder=recorder, verbose=0)
    callback.set_model(model)
    callback.on_train_begin()
    history = _history(net1=[0.5, 0.7, 0.7, 0.6], net2=[0.4, 0.3, 0.6, 0.6])
    for logs in history:
        for k, net in enumerate(nets):
            _set_marker(net, 10 * logs["epoch"] + k + 1)  # epoch 2's net 1 holds 21.0, ...
        callback.on_epoch_end(logs["epoch"] - 1, logs)
        recorder.history.append(logs)
    assert json.load(open(tmp_path / "best" / "best.json")) == {
        "net1": {"epoch": 2, "val_acc": 0.7}, "net2": {"epoch": 3, "val_acc": 0.6}
    }
    probe = zoo.create_model("small_cnn", 3, (8, 8, 1), width=2)
    for k, expected in ((0, 21.0), (1, 32.0)):
        probe.load_weights(callback.weights_path(k))
        assert _marker(probe) == expected
    assert sorted(os.listdir(tmp_path / "best")) == ["best.json", "net1.weights.h5", "net2.weights.h5"]  # no temporary file left

    callback.on_train_end()  # evaluated with the best weights, then the last ones are back
    assert model.evaluated_with == [21.0, 32.0] and [_marker(n) for n in nets] == [41.0, 42.0]
    assert callback.test_selected == {"acc": 0.5, "acc_net1": 0.25, "acc_net2": 0.75} and callback.test_acc_selected == 0.5

    resumed = callbacks_lib.BestValidation(str(tmp_path), test_data=None, recorder=recorder, verbose=0)
    resumed.set_model(model)
    resumed.on_train_begin()  # the best so far, from the restored history
    assert resumed.best == [(0.7, 2), (0.6, 3)]
    _set_marker(nets[0], 51.0), _set_marker(nets[1], 52.0)
    resumed.on_epoch_end(4, {"epoch": 5, "val_acc_net1": 0.7, "val_acc_net2": 0.61})  # a tie for net 1: kept
    for k, expected in ((0, 21.0), (1, 52.0)):
        probe.load_weights(resumed.weights_path(k))
        assert _marker(probe) == expected


# --------------------------------------------------------------------------------------------
# runs


def _val_folder(root, count=150):
    """Digits the run does not train on (x_train[1000:]) as class folders 0 .. 9 of 8x8 PNGs."""
    split = load_source("digits")
    for i in range(1000, 1000 + count):
        write(os.path.join(root, str(int(split.y_train[i])), f"{i}.png"), split.x_train[i])
    return str(root)


def _config(workdir, val_dataset, **overrides):
    values = dict(
        dataset="digits", val_dataset=val_dataset, backbone="small_cnn", backbone_args="width=8", epochs=5, warm_up=2, lr=0.05,
        lr_drop_epoch=4, batch_size=16, eval_batch_size=64, train_limit=300, test_limit=100, noise_rate=0.2, augment="crop",
        pad=1, lambda_u=0, workdir=str(workdir), verbose=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json")) as f:
        return {k: v for k, v in json.load(f).items() if k not in metrics.SUMMARY_MEASURED}


def _normalised(workdir, images):
    info = json.load(open(os.path.join(workdir, "dataset.json")))
    return (images.astype(np.float32) / 255.0 - np.float32(info["mean"])) / np.float32(info["std"])


def _selected_ensemble_accuracy(workdir, x, labels):
    """The ensemble of the nets' best-val weights, built from the run's files alone: net{k}.keras
    (the architecture) + best/net{k}.weights.h5, on normalised images x."""
    logits = 0
    for k in (1, 2):
        net = keras.saving.load_model(os.path.join(workdir, f"net{k}.keras"), compile=False)
        net.load_weights(os.path.join(workdir, "best", f"net{k}.weights.h5"))
        logits = logits + np.asarray(net(x, training=False))
    return float(np.mean(np.argmax(logits, axis=1) == labels))


@pytest.fixture(scope="module")
def val_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    config = _config(root / "run", f"folder:{_val_folder(root / 'digits_val')}")
    summary = experiment.run(config)
    return config, summary


def test_a_val_folder_run_selects_each_nets_best_weights(val_run):
    config, summary = val_run
    workdir = config.runtime.workdir
    rows = csv_rows(os.path.join(workdir, "metrics.csv"))
    assert list(rows[0]) == metrics.CSV_COLUMNS and len(rows) == 5
    val = {key: np.array([float(r[key]) for r in rows]) for key in ("val_acc", "val_acc_net1", "val_acc_net2")}
    for values in val.values():
        assert np.all((0 <= values) & (values <= 1)) and len(set(values)) > 1
    for k in (1, 2):  # np.argmax: the first epoch of the maximum, as the reference's strict ">"
        assert summary[f"val_best_epoch_net{k}"] == int(np.argmax(val[f"val_acc_net{k}"])) + 1
        assert summary[f"val_acc_best_net{k}"] == pytest.approx(val[f"val_acc_net{k}"].max(), abs=1e-6)
    epoch = summary["val_best_epoch"]
    assert epoch == int(np.argmax(val["val_acc"])) + 1
    assert summary["test_acc_at_val_best"] == pytest.approx(float(rows[epoch - 1]["test_acc"]), abs=1e-6)
    best = json.load(open(os.path.join(workdir, "best", "best.json")))
    assert [best[f"net{k}"]["epoch"] for k in (1, 2)] == [summary["val_best_epoch_net1"], summary["val_best_epoch_net2"]]
    for name in ("net1.weights.h5", "net2.weights.h5", "best.json"):  # the checkpoint has its own copy
        ours, kept = os.path.join(workdir, "best", name), os.path.join(workdir, "checkpoint", "kept", "best", name)
        assert open(ours, "rb").read() == open(kept, "rb").read() and os.stat(ours).st_ino != os.stat(kept).st_ino

    data = experiment.load_data(config)
    assert data.split.x_val.shape == (150, 8, 8, 1)
    selected = _selected_ensemble_accuracy(workdir, _normalised(workdir, data.split.x_test), data.split.y_test)
    assert summary["test_acc_val_selected"] == pytest.approx(selected, abs=1e-6) and selected > 0.2  # chance: 0.1

    last = zoo.create_model("small_cnn", 10, (8, 8, 1), width=8)  # net1.keras is the last epoch's net
    last.load_weights(os.path.join(workdir, "checkpoint", "net1.weights.h5"))
    saved = keras.saving.load_model(os.path.join(workdir, "net1.keras"), compile=False)
    for a, b in zip(last.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resume_keeps_the_best_weights_of_the_checkpoint(val_run, tmp_path, monkeypatch):
    config, whole = val_run
    resumed = _config(tmp_path, config.data.val_dataset)
    save = checkpoint.save

    def killed_at_epoch_4(workdir, model, codivide, history, elapsed_s, keep=()):
        if len(history) == 4:  # best/ already has epoch 4's improvements; the checkpoint never will
            net = zoo.create_model("small_cnn", 10, (8, 8, 1), width=8)
            net.save_weights(os.path.join(workdir, "best", "net1.weights.h5"))  # and an orphan for sure
            raise RuntimeError("killed")
        save(workdir, model, codivide, history, elapsed_s, keep=keep)

    monkeypatch.setattr(checkpoint, "save", killed_at_epoch_4)
    with pytest.raises(RuntimeError, match="killed"):
        experiment.run(resumed)
    monkeypatch.setattr(checkpoint, "save", save)
    assert os.path.exists(tmp_path / "checkpoint" / "kept" / "best" / "net1.weights.h5")
    experiment.run(resumed)  # from epoch 3's checkpoint

    assert _summary(tmp_path) == _summary(config.runtime.workdir)
    assert _summary(tmp_path)["test_acc_val_selected"] == whole["test_acc_val_selected"]
    for k in (1, 2):
        a, b = small_cnn_pair(10, width=8)
        a.load_weights(os.path.join(config.runtime.workdir, "best", f"net{k}.weights.h5"))
        b.load_weights(os.path.join(tmp_path, "best", f"net{k}.weights.h5"))
        for x, y in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(x, y)


def test_streamed_clothing1m_run_validates_on_the_clean_val_list(tmp_path, digits):  # noqa: F811
    make_clothing1m(tmp_path / "c1m", digits, clean_for_all_train=True, num_val=6)
    config = TrainConfig(
        dataset=f"clothing1m:{tmp_path / 'c1m'}", noise_mode="none", stream=True, image_size="12,12", resize_shorter=16,
        num_batches=2, backbone="small_cnn", backbone_args="width=4", epochs=3, warm_up=1, batch_size=2, eval_batch_size=4,
        lr=0.01, lambda_u=0, confidence_penalty="on", workdir=str(tmp_path / "run"), verbose=0,
    )
    summary = experiment.run(config)
    rows = csv_rows(tmp_path / "run" / "metrics.csv")
    assert all(r[key] != "" for r in rows for key in ("val_acc", "val_acc_net1", "val_acc_net2"))
    assert "val_acc_top5" not in json.load(open(tmp_path / "run" / "checkpoint" / checkpoint.STATE))["history"][0]
    assert all(os.path.getsize(tmp_path / "run" / "best" / name) > 0 for name in ("net1.weights.h5", "net2.weights.h5", "best.json"))
    assert all(summary[k] is not None for k in SUMMARY_VAL_KEYS)

    split = experiment.load_data(config).split
    assert split.x_val.shape == (6, 12, 12, 3) and split.x_val.resize_shorter == 16
    info = json.load(open(tmp_path / "run" / "dataset.json"))  # the test-time Resize + CenterCrop, normalised as the run's
    bank = pipeline.FileBank(split.x_test, info["mean"], info["std"], AugmentConfig(crop=False, flip=False, pad=0))
    x = np.concatenate([batch.numpy() for batch in bank.eval_dataset(4)])
    assert summary["test_acc_val_selected"] == pytest.approx(_selected_ensemble_accuracy(tmp_path / "run", x, split.y_test), abs=1e-6)
    assert experiment.load_data(config.replace(val_dataset="none")).split.x_val is None


def test_bad_val_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(DmkerasError, match="^val_dataset must be folder:..., csv:..., npz:..., clothing1m:..., none"):
        _config(tmp_path, "digits").validate()
    with pytest.raises(DmkerasError, match="validation set folder:.*does not exist"):
        experiment.load_data(_config(tmp_path, f"folder:{tmp_path / 'nowhere'}"))
    _config(tmp_path, "none").validate()
    assert experiment.load_data(_config(tmp_path, "none")).split.x_val is None
