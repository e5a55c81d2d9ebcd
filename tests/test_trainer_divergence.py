"""A non-finite loss stops the run at its step with one line, and that epoch is not checkpointed."""

import json
import os

import pytest

from dmkeras import checkpoint, experiment
from dmkeras.config import TrainConfig
from dmkeras.errors import TrainingDiverged


def _config(tmp_path, **kwargs):
    settings = dict(dataset="digits", backbone="small_cnn", backbone_args="width=4", train_limit=256, test_limit=64,
                    epochs=3, warm_up=1, batch_size=32, eval_batch_size=128, lr=0.02, noise_mode="sym", noise_rate=0.5,
                    workdir=str(tmp_path / "run"), verbose=0)
    settings.update(kwargs)
    return TrainConfig(**settings)


def test_a_diverging_warmup_stops_at_its_step_with_one_line_and_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged) as error:
        experiment.run(_config(tmp_path, lr=1e12, momentum=0.0))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("training diverged: epoch 1, warm-up step ")
    assert "of net 1: the total loss is nan (not finite)" in message or "of net 1: the total loss is inf" in message
    assert "lower the learning rate (now 1e+12)" in message
    assert checkpoint.latest(str(tmp_path / "run")) is None  # the diverged epoch was not checkpointed
    assert not os.path.exists(tmp_path / "run" / "net1.keras")  # nor its non-finite nets saved


def test_the_finished_epochs_stay_resumable_after_a_divergence(tmp_path, monkeypatch):
    """Epoch 1 finishes and is checkpointed; the lr then explodes in epoch 2: the checkpoint stays
    that of epoch 1, so a rerun resumes from it."""
    from dmkeras import callbacks

    original = callbacks.StepDecay.learning_rate
    monkeypatch.setattr(callbacks.StepDecay, "learning_rate", lambda self, epoch: 1e12 if epoch >= 1 else original(self, epoch))
    with pytest.raises(TrainingDiverged, match="epoch 2, "):
        experiment.run(_config(tmp_path, momentum=0.0))
    path = checkpoint.latest(str(tmp_path / "run"))
    with open(os.path.join(path, checkpoint.STATE)) as f:
        assert json.load(f)["epoch"] == 1


def test_nothing_undefined_is_printed_when_no_label_is_wrong():
    from dmkeras import callbacks

    logs = {"epoch": 12, "phase": "ssl", "lr": 0.02, "net1_auc": float("nan"), "net2_auc": float("nan"), "test_acc": 0.5}
    assert "AUC" not in callbacks.epoch_line(logs, 20)
    assert "AUC 0.900/-" in callbacks.epoch_line({**logs, "net1_auc": 0.9}, 20)
    summary = {"test_acc_best": 0.9, "test_acc_last": 0.8, "division_auc_last": None, "labeled_fraction_last": 0.5,
               "noise_rate_actual": 0.0, "epochs": 2, "epochs_planned": 2, "wall_time_s": 3.0}
    table = experiment.result_table(TrainConfig(noise_mode="none", workdir="w"), summary)
    assert table.splitlines()[0].endswith("digits, no added noise") and "none 0.5" not in table
