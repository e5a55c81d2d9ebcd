"""One audit from a TrainConfig and an AuditConfig (what `launch.audit` calls).

Scores the training set with the nets of a finished `launch.train` run (`--from_run`), or first
trains its own scoring model (`--scoring`): by default a DivideMix run of the same flags, whose
nets are the best detector we have (on a held-out digits split at sym 50 their clean
probabilities reach AUC 0.99, where a CE model trained as long reaches 0.877: it memorises the
noise); `warmup` trains only the recipe's `--warm_up` epochs of CE (fast, before memorisation);
`ce` the seed note's protocol, CE warm-up for all `--epochs` (plus the confidence penalty under
asymmetric noise). Then it writes samples.csv, sweep.csv, the plots and audit_summary.json into
the workdir, and prints the sweep table.
"""

import csv
import dataclasses
import os

import numpy as np

from dmkeras import audit, experiment, plots
from dmkeras.config import TrainConfig, _field, recorded_defaults
from dmkeras.data import noise as noise_lib
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.errors import ConfigError, DmkerasError
from dmkeras.rundir import RunDir

COMPARE = ("", "cleanlab")
SCORING = ("dividemix", "warmup", "ce")
# data settings a --from_run workdir must share with the audit's flags
_DATA_FIELDS = ("dataset", "tfds_label", "train_limit", "val_fraction", "split_seed")


@dataclasses.dataclass
class AuditConfig:
    """Settings of `launch.audit` beyond the training flags it shares with `launch.train`."""

    from_run: str = _field("", "a finished launch.train workdir whose nets score the samples ('' = train a scoring model, --scoring)")
    scoring: str = _field(
        "dividemix",
        "the scoring model trained without --from_run: 'dividemix' (a DivideMix run of these flags: the best detector), "
        "'warmup' (CE for --warm_up epochs only: fast) or 'ce' (CE warm-up for all --epochs: the seed note's protocol)",
    )
    thresholds: str = _field(",".join(f"{t:g}" for t in audit.DEFAULT_THRESHOLDS), "clean-probability thresholds of the sweep")
    retrain: bool = _field(False, "retrain the backbone with plain CE on each threshold's kept samples (test accuracy column)")
    retrain_epochs: int = _field(0, "epochs of each retraining (0 = --epochs)")
    compare: str = _field("", "'cleanlab': also run cleanlab's find_label_issues on cross-validated predictions")
    cv_folds: int = _field(5, "folds of the cross-validated predictions for --compare")
    cv_epochs: int = _field(20, "epochs of each cross-validation fold's training")

    def validate(self) -> "AuditConfig":
        """Raise ConfigError naming the first bad field; return self when all are fine."""
        audit.parse_thresholds(self.thresholds)
        if self.scoring not in SCORING:
            raise ConfigError(f"scoring must be one of {', '.join(SCORING)}, got {self.scoring!r}", ("scoring",))
        if self.compare not in COMPARE:
            raise ConfigError(f"compare must be cleanlab or empty, got {self.compare!r}", ("compare",))
        if self.retrain_epochs < 0:
            raise ConfigError(f"retrain_epochs must be >= 0, got {self.retrain_epochs}", ("retrain_epochs",))
        if self.cv_folds < 2:
            raise ConfigError(f"cv_folds must be >= 2, got {self.cv_folds}", ("cv_folds",))
        if self.cv_epochs < 1:
            raise ConfigError(f"cv_epochs must be >= 1, got {self.cv_epochs}", ("cv_epochs",))
        if self.from_run and not RunDir(self.from_run).exists():
            raise ConfigError(f"from_run: no such directory {self.from_run}", ("from_run",))
        return self


def _net_files(run: RunDir, config: TrainConfig) -> list[str]:
    """The paths of the run's net*.keras files, after checking its config against the audit's data flags."""
    run_dir = run.path
    try:
        run_config = run.config()
    except DmkerasError as error:
        raise ConfigError(f"from_run {error}", ("from_run",)) from None  # "from_run DIR: not a dmkeras run directory (no config.json)"
    defaults, current = recorded_defaults(), config.flat()  # what a config.json from before a field existed ran with
    for name in _DATA_FIELDS:
        if run_config.get(name, defaults[name]) != current[name]:
            raise ConfigError(
                f"from_run {run_dir} was trained with {name}={run_config.get(name)!r}, not {current[name]!r}",
                ("from_run", name),
            )
    nets = run.net_paths()
    if not nets:
        raise ConfigError(f"from_run {run_dir} holds no net*.keras file (did the run finish?)", ("from_run",))
    return nets


def _scoring_nets(source: RunDir, net_files: list[str]) -> list:
    """The nets that score the samples: a DivideMix run's two through `DivideMix.from_run` (the
    task model of that run, as Python users load it), a one-net run's (standard, cleanlab) file."""
    if source.config().get("method", "dividemix") == "dividemix":
        from dmkeras.task import DivideMix

        return list(DivideMix.from_run(source.path).nets)
    import keras

    return [keras.saving.load_model(path, compile=False) for path in net_files]


def _scoring_config(config: TrainConfig, scoring: str, workdir: str) -> TrainConfig:
    """The TrainConfig of the scoring model that --scoring names, announced in one line."""
    if scoring == "dividemix":
        what = f"DivideMix, {config.optim.epochs} epochs ({config.optim.warm_up} of warm-up)"
        scoring_config = config.replace(workdir=workdir, method="dividemix")
    elif scoring == "warmup":  # CE (+ the confidence penalty under asym noise) for the recipe's warm-up only
        epochs = max(config.optim.warm_up, 1)
        what = f"CE warm-up, {epochs} epochs"
        scoring_config = config.replace(workdir=workdir, method="dividemix", epochs=epochs, warm_up=epochs)
    else:  # the seed note's protocol: warm-up steps for every epoch
        what = f"CE warm-up, {config.optim.epochs} epochs"
        scoring_config = config.replace(workdir=workdir, method="dividemix", warm_up=config.optim.epochs)
    print(f"training a scoring model (2 nets, {what}) in {workdir}", flush=True)
    return scoring_config


def run(config: TrainConfig, audit_config: AuditConfig) -> dict:
    config.validate()
    audit_config.validate()
    thresholds = audit.parse_thresholds(audit_config.thresholds)
    workdir = config.runtime.workdir
    out = RunDir(workdir)
    os.makedirs(workdir, exist_ok=True)
    run_dir = audit_config.from_run
    if not run_dir:
        run_dir = out.file(RunDir.SCORING_MODEL)
        experiment.run(_scoring_config(config, audit_config.scoring, run_dir))
    source = RunDir(run_dir)  # the run whose nets score the samples
    net_files = _net_files(source, config)

    data = experiment.load_data(config)
    split = data.split
    labels = noise_lib.load_noise_file(source.noisy_labels_path, len(split.y_train), split.num_classes)
    true_labels = data.true_labels
    nets = _scoring_nets(source, net_files)
    for path, net in zip(net_files, nets):
        if net.output_shape[-1] != split.num_classes:
            raise DmkerasError(f"{path} predicts {net.output_shape[-1]} classes, {config.data.dataset} has {split.num_classes}")
    bank = pipeline.make_bank(split.x_train, split.mean, split.std, AugmentConfig.parse("none", 0))
    logits = [net.predict(bank.eval_dataset(config.optim.eval_batch_size), verbose=0) for net in nets]
    scores = audit.score_samples(
        logits, labels, split.num_classes, strategy=config.dividemix.division, class_floor=config.dividemix.class_floor,
        p_threshold=config.dividemix.p_threshold, true_labels=true_labels,
    )
    audit.write_samples_csv(out.file(RunDir.SAMPLES), scores)

    rows = audit.sweep(
        scores.mean_clean_prob, labels, split.num_classes, thresholds, true_labels=true_labels,
        strategy=config.dividemix.division, class_floor=config.dividemix.class_floor,
    )
    if audit_config.retrain:
        epochs = audit_config.retrain_epochs or config.optim.epochs
        for row in rows:
            kept = np.flatnonzero(
                audit.kept_mask(scores.mean_clean_prob, labels, row["threshold"], strategy=config.dividemix.division, class_floor=config.dividemix.class_floor)
            )
            if len(kept) == 0:
                print(f"threshold {row['threshold']:g} keeps no sample: nothing to retrain on", flush=True)
                continue
            print(f"retraining {config.model.backbone} on the {len(kept)} samples kept at threshold {row['threshold']:g}", flush=True)
            _, history = experiment.train_baseline(config, split, split.x_train[kept], labels[kept], epochs=epochs)
            row["test_acc"] = float(np.mean([h["test_acc"] for h in history[-10:]]))
    columns = audit.sweep_columns(split.num_classes, true_labels is not None, audit_config.retrain)
    audit.write_sweep_csv(out.file(RunDir.SWEEP), rows, columns)
    print(f"\nThreshold sweep ({config.dividemix.division} division, {len(labels)} training samples, mean clean probability >= threshold)")
    print(audit.sweep_table(rows, split.num_classes), flush=True)

    summary = {"from_run": run_dir, "division": config.dividemix.division, "num_samples": len(labels), "sweep": rows}
    if true_labels is not None:
        summary["dividemix_detector"] = audit.detection_metrics(
            scores.mean_clean_prob <= config.dividemix.p_threshold, 1.0 - scores.mean_clean_prob, scores.is_noisy
        )
    if audit_config.compare == "cleanlab":
        from dmkeras import compare

        summary["cleanlab"] = compare.cleanlab_side_by_side(config, audit_config, split, labels, true_labels, scores)
    _write_plots(out, source, scores, rows, len(labels))
    out.write_json(RunDir.AUDIT_SUMMARY, summary)
    return summary


def _write_plots(out: RunDir, run: RunDir, scores, rows, num_samples):
    is_clean = None if scores.is_noisy is None else ~scores.is_noisy
    plots.loss_distribution(scores.divisions, is_clean, out.loss_distribution_path)
    plots.sweep_curves(rows, out.file(RunDir.SWEEP_PLOT))
    metrics_csv = run.metrics_path
    if os.path.exists(metrics_csv):
        with open(metrics_csv) as f:
            history = [{k: float(v) if k != "phase" else v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        if any("net1_labeled" in h for h in history):
            plots.training_curves(history, num_samples, out.file(RunDir.DIVISION_OVER_EPOCHS))
