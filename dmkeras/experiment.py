"""One training run from a `TrainConfig`: data -> noise -> models -> training -> run directory.

`launch.train` parses flags into a TrainConfig and calls `run`; everything else lives here so
that a notebook can do the same with `run(TrainConfig(...))`.
"""

import dataclasses
import os
import time

import numpy as np

from dmkeras import callbacks as callbacks_lib
from dmkeras import checkpoint, distribute, input_transform, metrics, trainer, zoo
from dmkeras import codivide as codivide_lib
from dmkeras.codivide import CoDivide
from dmkeras.config import TrainConfig, parse_backbone_args, parse_image_size, recorded_defaults
from dmkeras.data import noise as noise_lib
from dmkeras.data import pipeline, sources
from dmkeras.data.augment import AugmentConfig
from dmkeras.errors import ConfigError, DmkerasError, TrainingDiverged
from dmkeras.rundir import RunDir


@dataclasses.dataclass
class NoisyData:
    """A source with the noisy training labels a run trains on."""

    split: sources.SplitData
    labels: np.ndarray  # the (noisy) labels training sees
    true_labels: np.ndarray | None  # the clean labels when known
    noise_rate_actual: float | None
    noise_file_reused: bool = False
    transform: input_transform.InputTransform | None = None  # the input transform split.mean / split.std now hold


def load_data(config: TrainConfig, write_noise_file: bool = True) -> NoisyData:
    """Load the dataset, cut it to the requested size and apply (or reuse) the label noise.

    `write_noise_file=False` (the non-chief workers of a multi-worker run): a --noise_file that
    exists is read, one that does not is not written (the labels are the same: same seed)."""
    split = sources.load_source(
        config.data.dataset,
        tfds_label=config.data.tfds_label or None,
        data_dir=config.data.data_dir or None,
        image_size=parse_image_size(config.data.image_size),
        test_spec=config.data.test_dataset or None,
        test_fraction=config.data.test_fraction,
        skip_unreadable=config.data.skip_unreadable,
        seed=config.runtime.seed,
        stream=config.data.stream,
        resize_shorter=config.data.resize_shorter,
        val_spec=config.data.val_dataset or None,  # "" = automatic (clothing1m's clean val list), "none" = off
        split_seed=config.data.split_seed,
    )
    if config.data.val_fraction:
        split = carve_validation(split, config.data.val_fraction, config.data.split_seed)
    if config.data.train_limit:
        split = dataclasses.replace(
            split,
            x_train=split.x_train[: config.data.train_limit],
            y_train=split.y_train[: config.data.train_limit],
            y_train_clean=None if split.y_train_clean is None else split.y_train_clean[: config.data.train_limit],
        )
    if config.data.test_limit:
        split = dataclasses.replace(split, x_test=split.x_test[: config.data.test_limit], y_test=split.y_test[: config.data.test_limit])
    # The nets' input transform: the one their --weights were trained with, else the data's own
    # statistics. It replaces the split's mean / std, so every bank, test set and export uses it.
    transform = input_transform.choose(config.model.input_transform, config.model.backbone, config.model.weights or None, split.mean, split.std)
    split = dataclasses.replace(split, mean=transform.mean, std=transform.std)

    if split.y_train_clean is not None:  # the dataset carries its own noise (cifar10_n, npz with y_train_clean)
        if config.noise.noise_mode != "none":
            raise ConfigError(
                f"{config.data.dataset} already has noisy labels (its true labels are given separately): use noise_mode=none",
                ("noise_mode",),
            )
        labels, true_labels, reused = split.y_train, split.y_train_clean, False
    elif config.noise.noise_mode == "none" or config.noise.noise_rate == 0:
        labels, true_labels, reused = split.y_train, split.y_train, False
    else:
        asym_map = asymmetric_map(config, split) if config.noise.noise_mode == "asym" else None
        args = dict(mode=config.noise.noise_mode, rate=config.noise.noise_rate, num_classes=split.num_classes, seed=config.runtime.seed, asym_map=asym_map)
        if config.noise.noise_file and (write_noise_file or os.path.exists(config.noise.noise_file)):
            labels, reused = noise_lib.noisy_labels_from_file_or_new(config.noise.noise_file, split.y_train, **args)
        else:
            labels, reused = noise_lib.make_noisy_labels(split.y_train, **args), False
        true_labels = split.y_train
    rate = noise_lib.realised_noise_rate(labels, true_labels) if true_labels is not None else None
    return NoisyData(
        split=split, labels=np.asarray(labels, np.int64), true_labels=true_labels, noise_rate_actual=rate,
        noise_file_reused=reused, transform=transform,
    )


def carve_validation(split: sources.SplitData, fraction: float, split_seed: int) -> sources.SplitData:
    """Move a stratified `fraction` of every class of the training set to the validation set.

    Before any noise is applied, so the validation set keeps the true labels (y_train_clean where
    the source has its own noisy labels): it is the set recipes are tuned on instead of the test set."""
    if split.x_val is not None:
        raise ConfigError(
            "val_fraction: the data source already has a validation set (use val_dataset=none to drop it)", ("val_fraction", "val_dataset")
        )
    truth = split.y_train if split.y_train_clean is None else split.y_train_clean
    held = sources.stratified_hold_out(truth, fraction, [split_seed, 7])
    if not held.any():
        raise ConfigError(f"val_fraction={fraction:g} of {len(truth)} training samples leaves the validation set empty", ("val_fraction",))
    kept, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
    return dataclasses.replace(
        split,
        x_train=split.x_train[kept],
        y_train=split.y_train[kept],
        y_train_clean=None if split.y_train_clean is None else split.y_train_clean[kept],
        x_val=split.x_train[held_idx],
        y_val=truth[held_idx],
    )


def dataset_info(split: sources.SplitData, transform: input_transform.InputTransform | None = None) -> dict:
    """What a model trained on `split` needs to serve: input shape, classes, normalisation
    (`mean` / `std`, and the `input_transform` they come from)."""
    info = {
        "name": split.name,
        "num_classes": int(split.num_classes),
        "image_shape": [int(d) for d in split.image_shape],
        "mean": [float(m) for m in split.mean],
        "std": [float(s) for s in split.std],
        "class_names": None if split.class_names is None else [str(c) for c in split.class_names],
        "num_train": int(len(split.y_train)),
        "num_test": int(len(split.y_test)),
    }
    if transform is not None:
        info["input_transform"] = transform.to_dict()
    return info


def asymmetric_map(config: TrainConfig, split: sources.SplitData) -> dict:
    """--asym_map when given; otherwise the CIFAR-10 or CIFAR-100 map of the paper's benchmarks."""
    if config.noise.asym_map:
        return noise_lib.parse_asym_map(config.noise.asym_map, split.num_classes)
    name = config.data.dataset.removeprefix("tfds:")
    if name.startswith("cifar100"):
        return noise_lib.cifar100_asym_map()
    if name.startswith("cifar10"):
        return dict(noise_lib.CIFAR10_ASYM_MAP)
    raise ConfigError(f"noise_mode=asym on {config.data.dataset} needs asym_map (e.g. asym_map=3:5,5:3,7:1)", ("noise_mode", "asym_map"))


def build_model(config: TrainConfig, num_classes: int, input_shape, mean=None, std=None):
    """The model of `config`, compiled, in the current strategy scope: a `dmkeras.DivideMix` task
    (the library's API, with `config`'s DivideMix settings and the normalisation `mean` / `std`)
    for --method=dividemix, a StandardModel (one net, CE) for standard and cleanlab.

    The nets are built under the dtype policy of `--mixed_precision` (the global policy is restored
    afterwards); with mixed_float16 each optimizer is a LossScaleOptimizer. `--jit_compile` goes to
    `compile`.
    """
    import keras

    from dmkeras import optimizers, precision
    from dmkeras.model import StandardModel
    from dmkeras.task import DivideMix, settings_from_config

    kwargs = parse_backbone_args(config.model.backbone_args)
    weights = config.model.weights or None

    def backbone(name):
        net = zoo.create_model(config.model.backbone, num_classes, tuple(input_shape), weights=weights, **kwargs)
        net.name = name  # distinct names, so that both nets' weights save side by side
        return net

    with precision.policy_scope(config.runtime.mixed_precision):
        one_net = config.model.method in ("standard", "cleanlab")
        nets = [backbone("net1")] if one_net else [backbone("net1"), backbone("net2")]
    if one_net:
        model = StandardModel(
            *nets, num_classes=num_classes, weight_decay=config.optim.weight_decay, confidence_penalty=config.use_confidence_penalty
        )
        sgd = optimizers.sgd(config.optim.lr, config.optim.momentum, config.optim.momentum_buffer)
        model.compile(precision.optimizer(sgd, config.runtime.mixed_precision), jit_compile=config.runtime.jit_compile)
        return model
    model = DivideMix(tuple(nets), num_classes=num_classes, mean=mean, std=std, **settings_from_config(config))
    model.compile(
        optimizer=keras.optimizers.SGD(config.optim.lr, momentum=config.optim.momentum),  # one copy per net, PyTorch's buffer or Keras'
        weight_decay=config.optim.weight_decay,
        jit_compile=config.runtime.jit_compile,
        momentum_buffer=config.optim.momentum_buffer,
    )
    return model


def run(config: TrainConfig) -> dict:
    """Train as `config` says, write the run directory, print and return summary.json's content.

    Under `--strategy=multi_worker` every worker runs this; only the chief (worker 0, or the
    `chief` task if TF_CONFIG has one) writes `config.runtime.workdir` and prints; the other workers
    write to a scratch directory removed at the end (`distribute.output_directory`). Resuming
    reads `config.runtime.workdir` on every worker, so it needs a filesystem they share.

    With a validation set (`--val_dataset`, or Clothing1M's clean_val_key_list.txt) each epoch
    logs val_acc / val_acc_net1 / val_acc_net2, each net's best-validation weights are kept in
    `best/` (`callbacks.BestValidation`) and summary.json reports their ensemble's test accuracy
    (test_acc_val_selected, the reference's Clothing1M figure); net1.keras / net2.keras stay the
    last epoch's nets.
    """
    config.validate()
    strategy = distribute.make_strategy(config.runtime.strategy, config.runtime.cpu_replicas)  # before TF touches devices
    with distribute.output_directory(config.runtime.workdir, strategy) as out:
        chief = distribute.is_chief(strategy)
        if not chief:
            print(
                f"worker {distribute.worker_index(strategy)} of {distribute.num_workers(strategy)}: training quietly; "
                f"the chief writes {config.runtime.workdir}",
                flush=True,
            )
        return _run(config, strategy, out, chief, verbose=config.runtime.verbose if chief else 0)


def _run(config: TrainConfig, strategy, out: str, chief: bool, verbose: int) -> dict:
    """`run` in a strategy: read the run directory (resume) from `config.runtime.workdir`, write every
    file to `out` (the workdir on the chief, a scratch directory on other workers)."""
    import keras

    resume_from = _checkpoint_to_resume(config)
    out_dir = RunDir(out)
    out_dir.write_json(RunDir.CONFIG, config.flat())
    data = load_data(config, write_noise_file=chief)
    split = data.split
    if resume_from:
        saved = noise_lib.load_noise_file(RunDir(config.runtime.workdir).noisy_labels_path, len(data.labels), split.num_classes)
        if not np.array_equal(saved, data.labels):
            raise DmkerasError(f"{config.runtime.workdir}: the noisy labels differ from those the checkpoint was trained on")
    noise_lib.save_noise_file(out_dir.noisy_labels_path, data.labels)
    out_dir.write_json(RunDir.DATASET, dataset_info(split, data.transform))
    if data.noise_rate_actual is not None and chief:
        print(
            f"{config.data.dataset}: {len(data.labels)} training / {len(split.y_test)} test "
            + ("" if split.y_val is None else f"/ {len(split.y_val)} validation ")
            + f"images {split.image_shape}, "
            f"{split.num_classes} classes; noise {config.noise.noise_mode} {config.noise.noise_rate:g}: "
            f"{data.noise_rate_actual:.4f} of the training labels are wrong"
            + (f" (reused {config.noise.noise_file})" if data.noise_file_reused else ""),
            flush=True,
        )

    filtered = None
    if config.model.method == "cleanlab":  # the CE baseline on the samples cleanlab keeps
        data, filtered = cleanlab_filter(config, data, out, verbose=verbose)
        split = data.split
    keras.utils.set_random_seed(config.runtime.seed)
    with strategy.scope():
        model = build_model(config, split.num_classes, split.image_shape, mean=split.mean, std=split.std)
    if verbose:
        workers = distribute.num_workers(strategy)
        what = {"dividemix": f"dividemix with 2 x {config.model.backbone}", "standard": f"standard CE with {config.model.backbone}",
                "cleanlab": f"standard CE with {config.model.backbone} on the {len(data.labels)} samples cleanlab keeps"}[config.model.method]
        print(what,
              f"({model.nets[0].count_params():,} parameters each), strategy {config.runtime.strategy} "
              f"({strategy.num_replicas_in_sync} replica(s)" + (f" on {workers} workers" if workers > 1 else "")
              + f"), global batch {config.optim.batch_size}", flush=True)

    bank = pipeline.make_bank(split.x_train, split.mean, split.std, AugmentConfig.parse(config.data.augment, config.data.pad))
    test_data = pipeline.holdout_dataset(split.x_test, split.y_test, split.mean, split.std, config.optim.eval_batch_size)
    extra_test_data = None
    if config.data.extra_test_dataset:
        images, labels = sources.load_extra_test(
            config.data.extra_test_dataset, split, stream=config.data.stream, resize_shorter=config.data.resize_shorter,
            skip_unreadable=config.data.skip_unreadable,
        )
        extra_test_data = pipeline.holdout_dataset(images, labels, split.mean, split.std, config.optim.eval_batch_size)
    val_data = None  # the validation set (the reference's Clothing1M clean val list) selects each net's weights
    if split.x_val is not None:
        val_data = pipeline.holdout_dataset(split.x_val, split.y_val, split.mean, split.std, config.optim.eval_batch_size)
    codivide = codivide_lib.from_config(
        config, bank, data.labels, num_classes=split.num_classes, num_nets=len(model.nets), true_labels=data.true_labels
    )
    recorder = callbacks_lib.RunRecorder(
        out,
        epochs=config.optim.epochs,
        num_samples=len(data.labels),
        noise_rate_actual=data.noise_rate_actual,
        codivide=codivide,
        verbose=verbose,
    )
    if filtered is not None:  # its cross-validation is part of the run's time, and its detection in the summary
        recorder.elapsed_before, recorder.extra_summary = filtered.pop("cv_time_s"), filtered
    best = None if val_data is None else callbacks_lib.BestValidation(out, test_data, recorder, verbose=verbose)
    initial_epoch = 0
    if resume_from:
        state = checkpoint.restore(resume_from, model, codivide)
        initial_epoch, recorder.history, recorder.elapsed_before = state["epoch"], state["history"], state["elapsed_s"]
        if best is not None:  # the best-val weights as of the checkpoint, not any saved after it
            checkpoint.restore_kept(resume_from, out, best.DIR)
        if chief:
            print(f"resuming from {resume_from}: {initial_epoch} of {config.optim.epochs} epochs done", flush=True)
    starts = distribute.same_on_all_workers(strategy, initial_epoch)
    if len(set(starts.tolist())) > 1:
        raise DmkerasError(
            f"the workers would start from different epochs ({', '.join(map(str, starts))}): under multi_worker every "
            f"worker must see the same {config.runtime.workdir} to resume (a shared filesystem), or none may resume"
        )
    try:
        loop = dict(
            epochs=config.optim.epochs,
            initial_epoch=initial_epoch,
            test_data=test_data,
            extra_test_data=extra_test_data,
            val_data=val_data,
            callbacks=[
                callbacks_lib.StepDecay(config.optim.lr, config.optim.lr_drop_epoch),
                *([callbacks_lib.FreezeBackbone(config.model.freeze_epochs)] if config.model.freeze_epochs else []),
                recorder,
                *([best] if best is not None else []),  # before the checkpoint, which keeps its files
                checkpoint.EpochCheckpoint(out, codivide, recorder, keep=(best.DIR,) if best is not None else ()),
            ],
            verbose=verbose,
        )
        if config.model.method == "dividemix":  # the library's task model runs its own loop
            model.fit_codivide(codivide, **loop)
        else:
            trainer.train(model, codivide, seed=config.runtime.seed, **loop)
    except TrainingDiverged:  # non-finite weights: keep the plots, and the last finite nets in the checkpoint
        if recorder.history:
            recorder.write_plots()
        raise
    except BaseException:  # Ctrl-C or a failure: keep the summary and plots of the epochs that finished
        if recorder.history:
            recorder.write_summary()
            recorder.write_plots()
        save_weights(model, out)  # and the weights
        raise
    save_weights(model, out)
    summary = metrics.summarize(
        recorder.history,
        num_samples=len(data.labels),
        noise_rate_actual=data.noise_rate_actual,
        wall_time_s=recorder.elapsed_s,
        epochs=config.optim.epochs,
        test_acc_val_selected=None if best is None else best.test_acc_selected,
    )
    summary.update(recorder.extra_summary)
    out_dir.write_json(RunDir.SUMMARY, summary)
    if verbose:
        print(result_table(config, summary))
    return summary


def _import_cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError:
        raise ConfigError('cleanlab is not installed (method=cleanlab, compare=cleanlab): pip install -e ".[compare]"', ("method", "compare")) from None
    return cleanlab


def cross_validated_probs(config: TrainConfig, split: sources.SplitData, labels, *, folds: int, epochs: int,
                          cache_dir: str | None = None, verbose: int = 1) -> np.ndarray:
    """Softmax of every training sample from a CE model that did not train on it (K folds).

    With `cache_dir`, each fold's probabilities are kept there (fold{k}.npy, written atomically)
    and reused by a rerun, so an interrupted cross-validation loses at most the fold it was in."""
    n = len(labels)
    order = np.random.default_rng([config.runtime.seed, 3]).permutation(n)
    probs = np.zeros((n, split.num_classes))
    eval_bank = pipeline.make_bank(split.x_train, split.mean, split.std, AugmentConfig.parse("none", 0))
    for k, held in enumerate(np.array_split(order, folds)):
        cached = None if cache_dir is None else os.path.join(cache_dir, f"fold{k}.npy")
        if cached is not None and os.path.exists(cached):
            probs[held] = np.load(cached)
            continue
        train_idx = np.setdiff1d(order, held)
        if verbose:
            print(f"cross-validation fold {k + 1}/{folds}: training on {len(train_idx)}, predicting {len(held)}", flush=True)
        model, _ = train_baseline(config, split, split.x_train[train_idx], labels[train_idx], epochs=epochs)
        logits = np.asarray(model.net1.predict(eval_bank.load(held), batch_size=config.optim.eval_batch_size, verbose=0), np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[held] = exp / exp.sum(axis=1, keepdims=True)
        if cached is not None:
            os.makedirs(cache_dir, exist_ok=True)
            np.save(cached + ".tmp.npy", probs[held])
            os.replace(cached + ".tmp.npy", cached)
    return probs


def cleanlab_filter(config: TrainConfig, data: NoisyData, out: str, verbose: int = 1) -> tuple[NoisyData, dict]:
    """--method=cleanlab's first stage: out-of-fold probabilities (--cleanlab_folds CE models of
    --epochs each, kept in out/cleanlab/), cleanlab's find_label_issues, and the data cut to the
    samples it keeps. Returns the cut data and the figures for summary.json: the detector's AUC
    and kept fraction under the table's division columns, flagged count, precision / recall of
    the flags against the true labels, and the cross-validation time."""
    from dmkeras import audit

    cleanlab = _import_cleanlab()
    started = time.time()
    probs = cross_validated_probs(config, data.split, data.labels, folds=config.model.cleanlab_folds, epochs=config.optim.epochs,
                                  cache_dir=RunDir(out).cleanlab_dir, verbose=verbose)
    flags = cleanlab.filter.find_label_issues(data.labels, probs)
    quality = cleanlab.rank.get_label_quality_scores(data.labels, probs)
    kept = np.flatnonzero(~flags)
    if kept.size == 0:
        raise DmkerasError("cleanlab flags every training sample: nothing is left to retrain on")
    figures = {"cleanlab_flagged": int(flags.sum()), "labeled_fraction_last": kept.size / flags.size}
    if data.true_labels is not None:
        detection = audit.detection_metrics(flags, 1.0 - quality, np.asarray(data.true_labels) != data.labels)
        figures.update(division_auc_last=detection["auc"], cleanlab_precision=detection["precision"], cleanlab_recall=detection["recall"])
    if verbose:
        print(f"cleanlab flags {flags.sum()} of {flags.size} training labels; retraining on the {kept.size} it keeps", flush=True)
    split = dataclasses.replace(
        data.split, x_train=data.split.x_train[kept], y_train=data.split.y_train[kept],
        y_train_clean=None if data.split.y_train_clean is None else data.split.y_train_clean[kept],
    )
    true_labels = None if data.true_labels is None else np.asarray(data.true_labels)[kept]
    cut = dataclasses.replace(
        data, split=split, labels=data.labels[kept], true_labels=true_labels,
        noise_rate_actual=None if true_labels is None else noise_lib.realised_noise_rate(data.labels[kept], true_labels),
    )
    figures["cleanlab_noise_rate_kept"] = cut.noise_rate_actual
    figures["noise_rate_actual"] = data.noise_rate_actual  # of the training set given, as for the other methods
    figures["cv_time_s"] = time.time() - started
    return cut, figures


def train_baseline(config: TrainConfig, split: sources.SplitData, images, labels, *, epochs: int, verbose: int = 0):
    """Train one backbone with plain CE (the standard baseline) on (images, labels) with config's
    schedule and augmentation; return (model, history). Used to retrain on cleaned subsets and for
    cross-validated predictions."""
    import keras

    keras.utils.set_random_seed(config.runtime.seed)
    strategy = distribute.make_strategy(config.runtime.strategy, config.runtime.cpu_replicas)
    with strategy.scope():
        model = build_model(config.replace(method="standard"), split.num_classes, split.image_shape)
    bank = pipeline.make_bank(images, split.mean, split.std, AugmentConfig.parse(config.data.augment, config.data.pad))
    test_data = pipeline.holdout_dataset(split.x_test, split.y_test, split.mean, split.std, config.optim.eval_batch_size)
    codivide = CoDivide(bank, labels, warm_up=epochs, batch_size=config.optim.batch_size, num_nets=1, seed=config.runtime.seed)
    history = trainer.train(
        model,
        codivide,
        epochs=epochs,
        test_data=test_data,
        callbacks=[callbacks_lib.StepDecay(config.optim.lr, config.optim.lr_drop_epoch)],
        seed=config.runtime.seed,
        verbose=verbose,
    )
    return model, history


def _checkpoint_to_resume(config: TrainConfig) -> str | None:
    """The checkpoint this run continues from: the workdir's latest, if its config is the same
    (apart from verbosity); a checkpoint of another configuration is an error, never overwritten."""
    path = checkpoint.latest(config.runtime.workdir)
    if path is None:
        return None
    try:
        previous = RunDir(config.runtime.workdir).config()
    except DmkerasError:  # missing or unreadable: every setting then counts as its default
        previous = {}
    current = config.flat()
    defaults = recorded_defaults()  # settings added since
    differs = sorted(k for k in current if k != "verbose" and previous.get(k, defaults[k]) != current[k])
    if differs:
        raise ConfigError(
            f"{config.runtime.workdir} holds a checkpoint of another configuration ({', '.join(differs[:5])} "
            "differ): use another workdir, or delete that one to start over",
            ("workdir", *differs[:5]),
        )
    return path


def save_weights(model, workdir: str) -> None:
    """Each net as a reloadable `.keras` file (architecture + weights)."""
    for k, net in enumerate(model.nets):
        net.save(RunDir(workdir).net_path(k))


def result_table(config: TrainConfig, summary: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    rows = [
        ("ensemble test accuracy, best", pct(summary["test_acc_best"])),
        ("ensemble test accuracy, last 10 epochs", pct(summary["test_acc_last"])),
        *([("test accuracy, best-validation nets", pct(summary["test_acc_val_selected"]))]
          if summary.get("test_acc_val_selected") is not None else []),
        ("division AUC, last epoch", num(summary["division_auc_last"], ".4f")),
        ("labeled fraction, last epoch", num(summary["labeled_fraction_last"], ".3f")),
        ("actual noise rate", num(summary["noise_rate_actual"], ".4f")),
        ("epochs", f"{summary['epochs']}/{summary['epochs_planned']}"),
        ("wall time", f"{summary['wall_time_s']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    noise = "no added noise" if config.noise.noise_mode == "none" or config.noise.noise_rate == 0 else f"{config.noise.noise_mode} {config.noise.noise_rate:g}"
    title = f"Result: {config.model.method}, {config.model.backbone}, {config.data.dataset}, {noise}"
    lines = [title, "-" * len(title)] + [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append(f"(run directory: {config.runtime.workdir})")
    return "\n".join(lines)
