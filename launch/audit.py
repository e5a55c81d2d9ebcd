"""Audit noisy labels: which training samples are most likely mislabeled, and what a threshold keeps.

    python -m launch.audit --flagfile=launch/configs/digits_sym50.cfg --from_run=runs/digits_sym50 --workdir=runs/audit
    python -m launch.audit --flagfile=launch/configs/digits_asym40.cfg --epochs=10 --workdir=runs/audit_asym   # own scoring model

Takes every flag of launch.train (data, noise, backbone, division, schedule) plus the audit's
own (--from_run, --thresholds, --retrain, --compare=cleanlab, ...); `--helpfull` lists them.
"""

import logging

from launch import console

console.setup()  # first, before anything imports TensorFlow: its start-up chatter only with --tf_logs

from absl import app, flags  # noqa: E402

from dmkeras.audit_run import AuditConfig  # noqa: E402
from dmkeras.config import TrainConfig  # noqa: E402
from launch import flags_util  # noqa: E402

flags_util.define_flags(TrainConfig)
flags_util.define_flags(AuditConfig)
flags.adopt_module_key_flags(console)
flags.adopt_module_key_flags(flags_util)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.getLogger("dmkeras").setLevel(logging.INFO)
    from dmkeras import audit_run

    flags_util.run_or_exit(
        lambda: audit_run.run(flags_util.config_from_flags(TrainConfig), flags_util.config_from_flags(AuditConfig))
    )


def cli():
    """The console script (dmkeras-audit): the same as python -m launch.audit."""
    flags_util.run_console_script(main, __name__)


if __name__ == "__main__":
    cli()
