"""Keras callbacks of a run: the learning-rate schedule and what a run writes as it goes."""

import csv
import json
import math
import os
import time

import keras
import tensorflow as tf

from dmkeras import metrics, plots


class StepDecay(keras.callbacks.Callback):
    """lr for epochs < drop_epoch, lr * factor from then on, for every optimizer of the model
    (the reference: lr / 10 from epoch 150 of 300)."""

    def __init__(self, lr: float, drop_epoch: int, factor: float = 0.1):
        super().__init__()
        self.lr, self.drop_epoch, self.factor = lr, drop_epoch, factor

    def learning_rate(self, epoch: int) -> float:
        return self.lr * (self.factor if epoch >= self.drop_epoch else 1.0)

    def on_epoch_begin(self, epoch, logs=None):
        for optimizer in self.model.optimizers:
            optimizer.learning_rate = self.learning_rate(epoch)


class FreezeBackbone(keras.callbacks.Callback):
    """Fine-tuning: for the first `epochs` epochs only each net's last layer (the classifier head)
    trains; the rest of the backbone is frozen (BatchNorm then uses its moving statistics)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self._frozen = None

    def on_epoch_begin(self, epoch, logs=None):
        frozen = epoch < self.epochs
        if frozen == self._frozen:
            return
        for net in self.model.nets:
            for layer in net.layers[:-1]:
                layer.trainable = not frozen
        self.model.reset_step_functions()  # the compiled steps captured the old trainable weights
        self._frozen = frozen


def write_json_atomic(path: str, data) -> None:
    """Write JSON through a temporary file so an interruption never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


class RunRecorder(keras.callbacks.Callback):
    """Writes the run directory as training goes, so an interrupted run loses no finished epoch.

    Each epoch: a row of `metrics.csv` (flushed), TensorBoard scalars under `tensorboard/`,
    `summary.json` (with "finished": false until the end), one summary line on stdout, and the
    plots `curves.png` and, after a division, `loss_distribution.png`.
    """

    def __init__(self, workdir: str, *, epochs: int, num_samples: int, noise_rate_actual: float, codivide=None, verbose: int = 1):
        super().__init__()
        self.workdir = workdir
        self.epochs = epochs
        self.num_samples = num_samples
        self.noise_rate_actual = noise_rate_actual
        self.codivide = codivide
        self.verbose = verbose
        self.history: list[dict] = []  # a resumed run sets the epochs it already has, and their time:
        self.elapsed_before = 0.0
        self.summary: dict = {}

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + time.time() - self._started

    def on_train_begin(self, logs=None):
        os.makedirs(self.workdir, exist_ok=True)
        self._started = time.time()
        self._csv_file = open(os.path.join(self.workdir, "metrics.csv"), "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=metrics.CSV_COLUMNS, extrasaction="ignore")
        self._csv.writeheader()
        for logs in self.history:  # epochs restored from a checkpoint
            self._csv.writerow({k: _csv_value(logs.get(k)) for k in metrics.CSV_COLUMNS})
        self._csv_file.flush()
        self._writer = tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.history.append(logs)
        self._csv.writerow({k: _csv_value(logs.get(k)) for k in metrics.CSV_COLUMNS})
        self._csv_file.flush()
        with self._writer.as_default(step=epoch + 1):
            for key, value in logs.items():
                if isinstance(value, (int, float)) and key != "epoch":
                    tf.summary.scalar(key, value)
        self._writer.flush()
        self.summary = metrics.summarize(
            self.history,
            num_samples=self.num_samples,
            noise_rate_actual=self.noise_rate_actual,
            wall_time_s=self.elapsed_s,
            epochs=self.epochs,
        )
        write_json_atomic(os.path.join(self.workdir, "summary.json"), self.summary)
        if self.verbose:
            print(epoch_line(logs, self.epochs), flush=True)

    def on_train_end(self, logs=None):
        self._csv_file.close()
        self._writer.close()
        self.write_plots()

    def write_plots(self):
        plots.training_curves(self.history, self.num_samples, os.path.join(self.workdir, "curves.png"))
        if self.codivide is not None and any(d is not None for d in self.codivide.divisions):
            plots.loss_distribution(
                self.codivide.divisions, self.codivide.clean_masks(), os.path.join(self.workdir, "loss_distribution.png")
            )


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def epoch_line(logs: dict, epochs: int) -> str:
    """The one-line summary of an epoch."""

    def pct(key):
        return f"{100 * logs[key]:.2f}" if key in logs else "-"

    parts = [f"epoch {logs.get('epoch', 0):.0f}/{epochs} {logs.get('phase', '')}", f"lr {logs.get('lr', float('nan')):.4g}"]
    losses = [f"{logs[k]:.4f}" for k in ("net1_loss", "net2_loss") if k in logs]
    if losses:
        parts.append("loss " + "/".join(losses))
    if "net1_labeled" in logs:
        parts.append("labeled " + "/".join(f"{logs[k]:.0f}" for k in ("net1_labeled", "net2_labeled") if k in logs))
    if "net1_auc" in logs:
        parts.append("AUC " + "/".join(f"{logs[k]:.3f}" for k in ("net1_auc", "net2_auc") if k in logs))
    test = f"test acc {pct('test_acc')}%"
    if "test_acc_net1" in logs:
        test += f" (net1 {pct('test_acc_net1')}, net2 {pct('test_acc_net2')})"
    if "test_acc_top5" in logs:
        test += f", top-5 {pct('test_acc_top5')}%"
    parts.append(test)
    if "extra_test_acc" in logs:
        parts.append(f"extra test acc {pct('extra_test_acc')}%" + (f", top-5 {pct('extra_test_acc_top5')}%" if "extra_test_acc_top5" in logs else ""))
    parts.append(f"{logs.get('epoch_time_s', 0):.1f}s")
    return " | ".join(parts)
