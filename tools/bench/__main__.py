"""Measure what a DivideMix epoch costs on this machine (synthetic data, one process).

    python -m tools.bench [--backbone=preact_resnet18 --batch_size=64 --input_size=32 --num_classes=10 --steps=5 --out=bench.json]

Prints a table and writes the same figures to --out: images/s of the warm-up, semi-supervised
and plain steps, co-divide cost, loss-GMM time against scikit-learn, tf.function traces per
epoch and the input-wait fraction. Every flag is a field of `tools.bench.sections.BenchConfig`, plus
the TrainConfig fields of `tools.bench.sections.TRAIN_PASSTHROUGH` that TrainConfig has
(e.g. --jit_compile, --mixed_precision); `--helpfull` lists them.
"""

import sys

from launch import console

console.setup()  # first, before anything imports TensorFlow: its start-up chatter only with --tf_logs

from absl import app, flags  # noqa: E402

from dmkeras.config import TrainConfig, flat_fields  # noqa: E402
from launch import flags_util  # noqa: E402
from tools.bench.sections import TRAIN_PASSTHROUGH, BenchConfig  # noqa: E402

flags_util.define_flags(BenchConfig)
# TrainConfig fields the benchmarked model is built with, when TrainConfig has them.
PASSTHROUGH = [f.name for f, _ in flat_fields(TrainConfig) if f.name in TRAIN_PASSTHROUGH]
flags_util.define_flags(TrainConfig, only=PASSTHROUGH)
flags.adopt_module_key_flags(console)
flags.adopt_module_key_flags(flags_util)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from tools.bench import sections as bench

    config = flags_util.config_from_flags(BenchConfig)
    overrides = {name: flags.FLAGS[name].value for name in PASSTHROUGH}
    flags_util.run_or_exit(lambda: bench.run(config, **overrides))


if __name__ == "__main__":
    app.run(main, argv=flags_util.expand_flagfiles(sys.argv))
