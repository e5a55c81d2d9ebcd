"""Train DivideMix (or the standard CE baseline) on noisy labels.

    python -m launch.train --flagfile=launch/configs/digits_sym50.cfg [--flag=override ...]

Every flag is a field of `dmkeras.config.TrainConfig`; `--helpfull` lists them.
"""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the progress output

from absl import app  # noqa: E402

from dmkeras.config import TrainConfig  # noqa: E402
from launch.flags_util import config_from_flags, define_flags, run_or_exit  # noqa: E402

define_flags(TrainConfig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.getLogger("dmkeras").setLevel(logging.INFO)  # our notices, not TensorFlow's INFO chatter
    from dmkeras import experiment

    run_or_exit(lambda: experiment.run(config_from_flags(TrainConfig)))


if __name__ == "__main__":
    app.run(main)
