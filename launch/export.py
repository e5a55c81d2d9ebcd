"""Export a finished run as a servable model (TF SavedModel with preprocessing, + Keras nets and a model card).

    python -m launch.export --workdir=runs/digits_sym50 --out=exports/digits_sym50 [--allow_unfinished]

The export directory is a SavedModel: `tf.saved_model.load(DIR).signatures["serving_default"](images=uint8_batch)`
returns {"probabilities": ...}; `dmkeras.export.load(DIR)` rebuilds it as a Keras model. An earlier
export in --out is replaced; any other non-empty --out is refused.
"""

import logging

from launch import console

console.setup()  # first, before anything imports TensorFlow: its start-up chatter only with --tf_logs

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

from launch import flags_util  # noqa: E402

flags.DEFINE_string("workdir", "", "run directory written by launch.train (config.json, dataset.json, summary.json, net*.keras)")
flags.DEFINE_string("out", "", "export directory to create (an earlier export there is replaced)")
flags.DEFINE_bool("allow_unfinished", False, "export the last weights of a run that did not finish")
flags.adopt_module_key_flags(console)  # --tf_logs in --helpshort

FLAGS = flags.FLAGS


def _export():
    from dmkeras import export
    from dmkeras.errors import DmkerasError

    if not FLAGS.workdir:
        raise DmkerasError("--workdir is required (the run directory of launch.train)")
    if not FLAGS.out:
        raise DmkerasError("--out is required (the export directory to write)")
    nets = _dividemix_nets(FLAGS.workdir)
    result = export.export_run(FLAGS.workdir, FLAGS.out, allow_unfinished=FLAGS.allow_unfinished, nets=nets)
    card = result["model_card"]
    acc = card.get("test_acc_best")
    print(
        f"{'replaced the earlier export in' if result['replaced'] else 'exported to'} {result['out_dir']}: "
        f"{card['method']}, {card['num_nets']} x {card['backbone']}, {card['dataset']['name']}"
        + ("" if acc is None else f", test accuracy (best) {100 * acc:.2f}%")
        + ("" if card["finished"] else f" [unfinished run: {card['epochs']}/{card['epochs_planned']} epochs]")
    )
    for name in result["files"]:
        print(f"  {name}")
    shape = card["serving"]["input_shape"]
    print(
        f"serve: tf.saved_model.load({result['out_dir']!r}).signatures[\"serving_default\"](images=uint8 {shape})"
        f"[\"probabilities\"]; signatures: {', '.join(result['signatures'])}"
    )
    print(f"keras: dmkeras.export.load({result['out_dir']!r})")


def _dividemix_nets(workdir):
    """A DivideMix run's nets, loaded as Python users load the run (`dmkeras.DivideMix.from_run`);
    None for a one-net run (standard, cleanlab) or a directory export_run will reject with its reason."""
    from dmkeras.errors import DmkerasError
    from dmkeras.rundir import RunDir

    run = RunDir(workdir)
    try:
        method = run.config().get("method", "dividemix")
    except DmkerasError:
        return None
    if method != "dividemix" or len(run.net_paths()) < 2:  # export_run names what is missing
        return None
    from dmkeras.task import DivideMix

    return DivideMix.from_run(workdir).nets


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:  # not TensorFlow's INFO notes on saving, unless asked for
        absl_logging.set_verbosity(absl_logging.WARNING)
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    flags_util.run_or_exit(_export)


def cli():
    """The console script (dmkeras-export): the same as python -m launch.export."""
    flags_util.run_console_script(main, __name__)


if __name__ == "__main__":
    cli()
