"""Diagnostic: plain CE on the truly clean samples of a noisy training set (an oracle filter), and on
every sample with its true label: what a perfect division would give the same backbone and schedule.

    python tools/oracle_filter.py [--flagfile=... any launch.train flags]

The flags are launch.train's (e.g. --flagfile=launch/configs/fmnist_sym50.cfg --train_limit=20000
--epochs=8 --lr_drop_epoch=6). Prints the last epoch's validation accuracy (--val_fraction) and the
test accuracy per epoch of both models. BUILD.md's Fashion-MNIST ablation quotes it.
"""

import sys

import numpy as np
from absl import app

from dmkeras import experiment
from dmkeras.config import TrainConfig
from dmkeras.data import pipeline
from launch import flags_util

flags_util.define_flags(TrainConfig)


def main(argv):
    config = flags_util.config_from_flags(TrainConfig)
    data = experiment.load_data(config, write_noise_file=False)
    split = data.split
    if split.x_val is None:
        raise app.UsageError("needs a validation set: --val_fraction (or --val_dataset)")
    val = pipeline.holdout_dataset(split.x_val, split.y_val, split.mean, split.std, config.optim.eval_batch_size)
    cases = [("oracle: the truly clean samples", np.flatnonzero(data.labels == data.true_labels), data.labels),
             ("all samples, true labels", np.arange(len(data.labels)), data.true_labels)]
    for name, idx, labels in cases:
        model, history = experiment.train_baseline(config, split, split.x_train[idx], labels[idx], epochs=config.optim.epochs)
        print(f"{name}: {len(idx)} images, val acc final {100 * model.accuracy(val)['acc']:.2f}%, "
              f"test acc per epoch {[round(100 * h['test_acc'], 1) for h in history]}", flush=True)


if __name__ == "__main__":
    app.run(main, argv=flags_util.expand_flagfiles(sys.argv))
