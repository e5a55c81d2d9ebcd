"""Train DivideMix (or the standard CE baseline) on noisy labels.

    python -m launch.train --flagfile=launch/configs/digits_sym50.cfg [--flag=override ...]

Every flag is a field of `dmkeras.config.TrainConfig`; `--helpfull` lists them.
"""

import logging

from launch import console

console.setup()  # first, before anything imports TensorFlow: its start-up chatter only with --tf_logs

from absl import app, flags  # noqa: E402

from dmkeras.config import TrainConfig  # noqa: E402
from launch import flags_util  # noqa: E402

flags_util.define_flags(TrainConfig)
flags.adopt_module_key_flags(console)
flags.adopt_module_key_flags(flags_util)  # so that --helpshort lists them


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.getLogger("dmkeras").setLevel(logging.INFO)  # our notices, not TensorFlow's INFO chatter
    from dmkeras import experiment

    flags_util.run_or_exit(lambda: experiment.run(flags_util.config_from_flags(TrainConfig)))


def cli():
    """The console script (dmkeras-train): the same as python -m launch.train."""
    flags_util.run_console_script(main, __name__)


if __name__ == "__main__":
    cli()
