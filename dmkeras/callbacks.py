"""Keras callbacks of a run: the learning-rate schedule, what a run writes as it goes, and the
selection of each net's best-validation weights."""

import csv
import math
import os
import time

import keras
import tensorflow as tf

from dmkeras import metrics, plots
from dmkeras.rundir import RunDir, write_json_atomic


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


class RunRecorder(keras.callbacks.Callback):
    """Writes the run directory as training goes, so an interrupted run loses no finished epoch.

    Each epoch: a row of `metrics.csv` (flushed), TensorBoard scalars under `tensorboard/`,
    `summary.json` (with "finished": false until the end), one summary line on stdout, and the
    plots `curves.png` and, after a division, `loss_distribution.png`.
    """

    def __init__(self, workdir: str, *, epochs: int, num_samples: int, noise_rate_actual: float, codivide=None, verbose: int = 1):
        super().__init__()
        self.workdir = os.fspath(workdir)
        self.run_dir = RunDir(workdir)
        self.epochs = epochs
        self.num_samples = num_samples
        self.noise_rate_actual = noise_rate_actual
        self.codivide = codivide
        self.verbose = verbose
        self.history: list[dict] = []  # a resumed run sets the epochs it already has, and their time:
        self.elapsed_before = 0.0
        self.summary: dict = {}
        self.extra_summary: dict = {}  # figures of the run beyond the epochs' (e.g. --method=cleanlab's filter)

    @property
    def elapsed_s(self) -> float:
        return self.elapsed_before + time.time() - self._started

    def on_train_begin(self, logs=None):
        os.makedirs(self.workdir, exist_ok=True)
        self._started = time.time()
        self._csv_file = open(self.run_dir.metrics_path, "w", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=metrics.CSV_COLUMNS, extrasaction="ignore")
        self._csv.writeheader()
        for logs in self.history:  # epochs restored from a checkpoint
            self._csv.writerow({k: _csv_value(logs.get(k)) for k in metrics.CSV_COLUMNS})
        self._csv_file.flush()
        self._writer = tf.summary.create_file_writer(self.run_dir.tensorboard_dir)

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
        self.write_summary()
        if self.verbose:
            print(epoch_line(logs, self.epochs), flush=True)

    def write_summary(self):
        """summary.json of the epochs logged so far (also after an interruption, so that it counts
        every row of metrics.csv even when the signal lands between the two)."""
        self.summary = metrics.summarize(
            self.history,
            num_samples=self.num_samples,
            noise_rate_actual=self.noise_rate_actual,
            wall_time_s=self.elapsed_s,
            epochs=self.epochs,
        )
        self.summary.update(self.extra_summary)
        self.run_dir.write_json(RunDir.SUMMARY, self.summary)

    def on_train_end(self, logs=None):
        self._csv_file.close()
        self._writer.close()
        self.write_plots()

    def write_plots(self):
        plots.training_curves(self.history, self.num_samples, self.run_dir.curves_path)
        if self.codivide is not None and any(d is not None for d in self.codivide.divisions):
            plots.loss_distribution(
                self.codivide.divisions, self.codivide.clean_masks(), self.run_dir.loss_distribution_path
            )


class BestValidation(keras.callbacks.Callback):
    """Model selection on a validation set, as the reference's Clothing1M script: each net keeps
    the weights of its own best validation accuracy, and the result is their ensemble's test
    accuracy.

    Each epoch net k's validation accuracy (`val_acc_net1` / `val_acc_net2`, the net alone; `val_acc`
    for the one-net baseline) is compared with its best so far; when strictly greater (a tie keeps
    the earlier epoch, `metrics.best_epoch`) the net's weights are saved to
    `workdir/best/net{k}.weights.h5` (written to a temporary file, then `os.replace`d) and
    `best/best.json` records each net's epoch and accuracy. Net 1 and net 2 are selected
    independently, as the reference saves each net when its own accuracy improves.

    Resume: the best so far is recomputed from the restored history (`recorder.history` when
    training begins), and the files are the ones the checkpoint kept: `checkpoint.EpochCheckpoint`
    with `keep=("best",)` copies best/ into every checkpoint and `checkpoint.restore_kept` puts it
    back, so weights saved after the last complete checkpoint by an interrupted run never replace
    the right ones.

    At the end of training (also after an early stop, `model.stop_training`): each net's best
    weights are loaded, the test set is evaluated (`self.test_selected`: acc, acc_net1, acc_net2,
    as `model.accuracy`; `test_acc_selected` is its ensemble accuracy, summary.json's
    test_acc_val_selected), and the last weights are put back. So the nets saved at the end of a
    run (net1.keras, net2.keras, and what `launch.export` exports) are the last epoch's, as
    without a validation set; the selected weights stay in best/.
    """

    DIR = RunDir.BEST

    def __init__(self, workdir: str, test_data, recorder: "RunRecorder", verbose: int = 1):
        super().__init__()
        self.workdir, self.test_data, self.recorder, self.verbose = os.fspath(workdir), test_data, recorder, verbose
        self.best: list[tuple[float | None, int | None]] = []
        self.test_selected: dict | None = None

    @property
    def directory(self) -> str:
        return RunDir(self.workdir).best_dir

    def weights_path(self, k: int) -> str:
        return os.path.join(self.directory, f"net{k + 1}.weights.h5")

    @property
    def test_acc_selected(self) -> float | None:
        return None if self.test_selected is None else self.test_selected.get("acc")

    def _keys(self):
        nets = self.model.nets
        return [metrics.net_val_key(k, len(nets)) for k in range(len(nets))]

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        self.best = [metrics.best_epoch(self.recorder.history, key) for key in self._keys()]
        self.test_selected = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        improved = False
        for k, (net, key) in enumerate(zip(self.model.nets, self._keys())):
            value = logs.get(key)
            if value is None or not math.isfinite(value):
                continue
            if self.best[k][0] is None or value > self.best[k][0]:
                tmp = os.path.join(self.directory, f"net{k + 1}.tmp.weights.h5")  # Keras wants .weights.h5
                net.save_weights(tmp)
                os.replace(tmp, self.weights_path(k))
                self.best[k] = (float(value), int(logs.get("epoch", epoch + 1)))
                improved = True
        if improved:
            write_json_atomic(
                os.path.join(self.directory, "best.json"),
                {f"net{k + 1}": {"epoch": e, "val_acc": v} for k, (v, e) in enumerate(self.best)},
            )

    def on_train_end(self, logs=None):
        nets = self.model.nets
        paths = [self.weights_path(k) for k in range(len(nets))]
        if not all(os.path.isfile(p) for p in paths) or any(e is None for _, e in self.best):
            return
        last = [net.get_weights() for net in nets]
        try:
            for net, path in zip(nets, paths):
                net.load_weights(path)
            self.test_selected = self.model.accuracy(self.test_data)
        finally:
            for net, weights in zip(nets, last):
                net.set_weights(weights)
        if self.verbose:
            epochs = ", ".join(f"net {k + 1} epoch {e} (val {100 * v:.2f}%)" for k, (v, e) in enumerate(self.best))
            print(f"best-validation nets: {epochs}; their ensemble's test acc {100 * self.test_acc_selected:.2f}%", flush=True)


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
    aucs = [logs[k] for k in ("net1_auc", "net2_auc") if k in logs]
    if any(math.isfinite(a) for a in aucs):  # NaN when every label is right (or every one wrong): nothing to show
        parts.append("AUC " + "/".join(f"{a:.3f}" if math.isfinite(a) else "-" for a in aucs))
    if "val_acc" in logs:
        parts.append(f"val acc {pct('val_acc')}%" + (f" (net1 {pct('val_acc_net1')}, net2 {pct('val_acc_net2')})" if "val_acc_net1" in logs else ""))
    if "test_acc" in logs:  # not in a fit without a test set (dmkeras.DivideMix)
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
