"""The typed configuration of a training run: a `TrainConfig` of six sections (data, noise,
model, optim, dividemix, runtime), each a dataclass that checks its own fields.

`launch/` parses flags into a `TrainConfig` once; the library only ever sees these dataclasses,
and its errors name fields (`ConfigError`), which launch/ writes as flags. Field names are unique
across sections, so a flag, a config.json key and a `DivideMix` argument all spell a setting the
same way; the run directory records the config flat, as `config.json`.
"""

import dataclasses
import json
import re
import typing

from dmkeras.errors import ConfigError

METHODS = ("dividemix", "standard", "cleanlab")
NOISE_MODES = ("sym", "asym", "none")
STRATEGIES = ("default", "mirrored", "multi_worker")  # as dmkeras.distribute.make_strategy
CONFIDENCE_PENALTY = ("auto", "on", "off")
DIVISIONS = ("gmm", "per_class_gmm", "class_floor", "unicon")  # as dmkeras.division.DIVISIONS (config stays TF-free)
MIXED_PRECISION = ("off", "mixed_float16", "mixed_bfloat16")  # as dmkeras.precision.MODES
MOMENTUM_BUFFERS = ("torch", "keras")  # as dmkeras.optimizers.MOMENTUM_BUFFERS
SSL_ROWS = ("all", "labeled")  # as dmkeras.model.SSL_ROWS
AUGMENTATIONS = ("crop", "resized_crop", "flip")  # --augment names (dmkeras.data.augment re-exports it)
AUGDESC = ("off", "ws", "ws_saw", "ws_randaugment")  # issue 12: as dmkeras.data.augment.AUGDESC
INPUT_TRANSFORMS = ("auto", "dataset", "caffe", "tf", "torch")  # as dmkeras.input_transform
VAL_KINDS = ("folder", "csv", "npz", "clothing1m")  # --val_dataset forms, as dmkeras.data.sources.VAL_KINDS


def _field(default, help_text):
    return dataclasses.field(default=default, metadata={"help": help_text})


def _check(ok, message, *other_fields):
    """Raise ConfigError(message) unless ok; the message's first word is the field it checks, and
    other_fields are the other fields it names (launch/ writes all of them as flags)."""
    if not ok:
        raise ConfigError(message, (re.match(r"[a-z_0-9]+", message).group(0), *other_fields))


@dataclasses.dataclass
class DataConfig:
    """Where the images come from, how they are split and augmented."""

    dataset: str = _field("digits", "digits | npz:PATH | tfds:NAME | fashion_mnist (its IDX files in --data_dir, "
                          "/usr/share/datasets/fashion-mnist or ~/.keras/datasets/fashion-mnist) | idx:DIR (an MNIST-format "
                          "folder, optional classes.txt) | folder:PATH | csv:FILE | clothing1m:ROOT | webvision:ROOT")
    tfds_label: str = _field("", 'label column for cifar10_n / cifar100_n ("" = the dataset\'s default)')
    data_dir: str = _field("", 'tensorflow-datasets data_dir ("" = tfds default); fashion_mnist looks for its IDX files there first')
    image_size: str = _field("", "H,W: resize the images of folder/csv/clothing1m/webvision sources ('' = native)")
    test_dataset: str = _field("", "a separate test split for folder:/csv: sources (same forms as --dataset)")
    val_dataset: str = _field(
        "",
        "a validation set, any source: folder:PATH, csv:FILE, npz:PATH (x_val, y_val) or clothing1m:ROOT; '' = clothing1m's "
        "clean_val_key_list.txt when ROOT has it (as the reference), none = no validation set. Logged every epoch (val_acc, "
        "val_acc_net1/2); each net's best-val weights go to best/ and their ensemble's test accuracy to summary.json",
    )
    test_fraction: float = _field(0.2, "folder:/csv: without a test split: stratified hold-out fraction")
    skip_unreadable: bool = _field(False, "skip unreadable or missing image files (counted) instead of stopping")
    stream: bool = _field(
        False, "folder/csv/clothing1m/webvision: decode images from disk batch by batch instead of holding them in memory"
    )
    resize_shorter: int = _field(
        0,
        "with --stream: resize the shorter side to this, then crop --image_size (random or random-resized for "
        "training, centred for testing), as the reference's Resize + RandomCrop / RandomResizedCrop",
    )
    extra_test_dataset: str = _field(
        "",
        "a second test set evaluated every epoch (logged as extra_test_acc): folder:PATH, csv:FILE or "
        "ilsvrc12:ROOT (ImageNet val of the WebVision classes)",
    )
    num_batches: int = _field(
        0,
        "sample this many batches of training images per net each epoch, class-balanced (the reference's "
        "Clothing1M setting: 1000); 0 = the whole set",
    )
    val_fraction: float = _field(
        0.0,
        "carve a stratified validation set of this fraction of every class out of the training set (seeded by --split_seed), "
        "before the noise: it keeps its true labels and is what recipes are tuned on, never the test set; 0 = none",
    )
    split_seed: int = _field(0, "seeds the data splits: --val_fraction's hold-out and digits' train / test split (0 = the one of the README's tables)")
    train_limit: int = _field(0, 'use only the first N training samples (0 = all)')
    test_limit: int = _field(0, 'use only the first N test samples (0 = all)')
    augment: str = _field("crop,flip", 'comma list of crop (pad + random crop), resized_crop (torchvision RandomResizedCrop), flip; or none')
    pad: int = _field(4, 'padding of the random crop')
    augdesc: str = _field("off", "AugDesc (issue 12): off | ws (strong views for the gradient step, weak for guessing) | ws_saw | ws_randaugment")

    def validate(self) -> "DataConfig":
        _check(0.0 < self.test_fraction < 1.0, f"test_fraction must be in (0, 1), got {self.test_fraction}")
        val_kind, _, val_rest = self.val_dataset.partition(":")
        _check(
            self.val_dataset in ("", "none") or (val_kind in VAL_KINDS and bool(val_rest)),
            f"val_dataset must be {', '.join(k + ':...' for k in VAL_KINDS)}, none or '' (automatic), got {self.val_dataset!r}",
        )
        size = parse_image_size(self.image_size)
        _check(self.resize_shorter >= 0, f"resize_shorter must be >= 0, got {self.resize_shorter}")
        _check(not self.resize_shorter or self.stream, "resize_shorter needs stream (in-memory images are resized to image_size once)", "stream", "image_size")
        _check(not self.stream or bool(self.image_size), "stream needs image_size=H,W", "image_size")
        _check(
            not self.resize_shorter or self.resize_shorter >= max(size or (0,)),
            f"resize_shorter={self.resize_shorter} is smaller than the image_size={self.image_size} crop", "image_size",
        )
        _check(self.num_batches >= 0, f"num_batches must be >= 0, got {self.num_batches}")
        _check(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        _check(
            not self.val_fraction or self.val_dataset in ("", "none"),
            f"val_fraction carves a validation set out of the training set; val_dataset={self.val_dataset} gives another one: use one of them", "val_dataset",
        )
        _check(self.split_seed >= 0, f"split_seed must be >= 0, got {self.split_seed}")
        _check(self.train_limit >= 0, f"train_limit must be >= 0, got {self.train_limit}")
        _check(self.test_limit >= 0, f"test_limit must be >= 0, got {self.test_limit}")
        _check(self.pad >= 0, f"pad must be >= 0, got {self.pad}")
        parse_augment(self.augment)
        _check(self.augdesc in AUGDESC, f"augdesc must be one of {', '.join(AUGDESC)}, got {self.augdesc!r}")  # issue 12
        return self


@dataclasses.dataclass
class NoiseConfig:
    """The label noise injected into the training labels."""

    noise_mode: str = _field("sym", 'sym | asym | none')
    noise_rate: float = _field(0.5, "fraction r of training samples whose label is resampled (sym) or mapped (asym)")
    asym_map: str = _field("", '"src:dst,..." (default for asym: the CIFAR-10 / CIFAR-100 map by dataset)')
    noise_file: str = _field("", 'reference JSON noise file: reused when it exists, written when not')

    def validate(self) -> "NoiseConfig":
        _check(self.noise_mode in NOISE_MODES, f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        _check(0.0 <= self.noise_rate <= 1.0, f"noise_rate must be in [0, 1], got {self.noise_rate}")
        return self


@dataclasses.dataclass
class ModelConfig:
    """The training method and the backbone it trains."""

    method: str = _field(
        "dividemix",
        "dividemix | standard (plain CE) | cleanlab (filter and retrain: out-of-fold probabilities from --cleanlab_folds CE "
        "models of --epochs each, cleanlab.filter.find_label_issues, then CE on the samples it keeps; needs cleanlab)",
    )
    cleanlab_folds: int = _field(5, "--method=cleanlab: cross-validation folds of its out-of-fold probabilities")
    backbone: str = _field("small_cnn", "a name from dmkeras.zoo.list_models()")
    backbone_args: str = _field("", 'extra builder arguments, e.g. "alpha=0.35" or "width=64"')
    freeze_epochs: int = _field(0, "fine-tuning: train only the classifier head for the first N epochs")
    weights: str = _field(
        "",
        '"" (random init), "imagenet", "imagenet:FILE" (keras\' ImageNet weights file of the base, kept locally), '
        "or a weights file of this architecture (e.g. a run's net1.keras)",
    )
    input_transform: str = _field(
        "auto",
        "how images are normalised for the nets: auto (the transform the --weights were trained with, e.g. caffe for "
        "resnet50's imagenet weights or the run's own for a net of a run directory; the data set's mean/std otherwise) | "
        "dataset | " + " | ".join(INPUT_TRANSFORMS[2:]),
    )

    def validate(self) -> "ModelConfig":
        _check(self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        _check(self.cleanlab_folds >= 2, f"cleanlab_folds must be >= 2, got {self.cleanlab_folds}")
        _check(
            self.input_transform in INPUT_TRANSFORMS,
            f"input_transform must be one of {', '.join(INPUT_TRANSFORMS)}, got {self.input_transform!r}",
        )
        parse_backbone_args(self.backbone_args)
        return self


@dataclasses.dataclass
class OptimConfig:
    """The optimiser and schedule (the reference: SGD, momentum 0.9, lr / 10 at lr_drop_epoch)."""

    epochs: int = _field(300, "number of epochs, warm-up included")
    warm_up: int = _field(10, "epochs of plain CE training before the first co-divide")
    lr: float = _field(0.02, "initial SGD learning rate")
    lr_drop_epoch: int = _field(150, "the learning rate is divided by 10 from this epoch on")
    momentum: float = _field(0.9, "SGD momentum")
    momentum_buffer: str = _field(
        "torch", "torch (PyTorch's SGD, as the reference: an lr change acts at once) | keras (Keras' SGD velocity, which carries the old lr for a while)"
    )
    weight_decay: float = _field(5e-4, "L2 added to the gradients, as PyTorch SGD weight_decay")
    batch_size: int = _field(
        64,
        "GLOBAL batch (labeled; the warm-up uses 2x, as the reference's single-GPU batch): split over all "
        "replicas of all workers, each gets batch_size / replicas; keep it to reproduce the paper",
    )
    eval_batch_size: int = _field(500, "global batch of the no-grad passes (co-divide losses, test), split over the replicas")

    def validate(self) -> "OptimConfig":
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(0 <= self.warm_up <= self.epochs, f"warm_up must be in [0, epochs={self.epochs}], got {self.warm_up}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.lr_drop_epoch >= 0, f"lr_drop_epoch must be >= 0, got {self.lr_drop_epoch}")
        _check(0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1), got {self.momentum}")
        _check(
            self.momentum_buffer in MOMENTUM_BUFFERS,
            f"momentum_buffer must be one of {', '.join(MOMENTUM_BUFFERS)}, got {self.momentum_buffer!r}",
        )
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        return self


@dataclasses.dataclass
class DivideMixConfig:
    """DivideMix's own settings: co-divide, MixMatch, the losses."""

    mixup_alpha: float = _field(4.0, "MixMatch Beta(alpha, alpha)")
    temperature: float = _field(0.5, "sharpening temperature T")
    p_threshold: float = _field(0.5, "a sample is labeled when its clean probability exceeds this")
    lambda_u: float = _field(25.0, "weight of the unlabeled loss L_u after its ramp-up")
    rampup_epochs: float = _field(16.0, "epochs over which lambda_u ramps up linearly after warm-up")
    division: str = _field("gmm", "division strategy: gmm (the reference) | per_class_gmm | class_floor | unicon (UNICON's class-balanced JSD selection)")
    class_floor: float = _field(0.0, "class-aware divisions keep at least this fraction of every class")
    loss_history: int = _field(1, 'average normalised losses over the last K epochs (5 at 90% noise)')
    contrastive_weight: float = _field(
        0.0,
        "UNICON's contrastive term (issue 12): weight lambda_c of SimCLR's loss on two views of the unlabeled samples "
        "(strong views under --augdesc, else the weak ones), through a projection head per net; 0 = off (UNICON: 0.025)",
    )
    contrastive_temperature: float = _field(0.05, "temperature of the contrastive term (UNICON: 0.05)")
    confidence_penalty: str = _field("auto", 'auto (= on under asym noise) | on | off; warm-up only')
    prior_penalty: float = _field(1.0, "weight of the uniform-prior penalty in the semi-supervised loss (the reference: 1; 0 = off)")
    ssl_rows: str = _field(
        "all",
        "mixed rows the semi-supervised step trains on: all (the reference's CIFAR script: L_x + lambda_u L_u + penalty "
        "on 4B rows) | labeled (its Clothing1M / WebVision scripts: L_x + penalty on the first 2B mixed rows)",
    )

    def validate(self) -> "DivideMixConfig":
        _check(self.mixup_alpha > 0, f"mixup_alpha must be > 0, got {self.mixup_alpha}")
        _check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        _check(0.0 <= self.p_threshold <= 1.0, f"p_threshold must be in [0, 1], got {self.p_threshold}")
        _check(self.lambda_u >= 0, f"lambda_u must be >= 0, got {self.lambda_u}")
        _check(self.rampup_epochs > 0, f"rampup_epochs must be > 0, got {self.rampup_epochs}")
        _check(self.division in DIVISIONS, f"division must be one of {', '.join(DIVISIONS)}, got {self.division!r}")
        _check(0.0 <= self.class_floor <= 1.0, f"class_floor must be in [0, 1], got {self.class_floor}")
        _check(self.loss_history >= 1, f"loss_history must be >= 1, got {self.loss_history}")
        _check(self.contrastive_weight >= 0, f"contrastive_weight must be >= 0, got {self.contrastive_weight}")
        _check(self.contrastive_temperature > 0, f"contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        _check(
            self.confidence_penalty in CONFIDENCE_PENALTY,
            f"confidence_penalty must be one of {', '.join(CONFIDENCE_PENALTY)}, got {self.confidence_penalty!r}",
        )
        _check(self.prior_penalty >= 0, f"prior_penalty must be >= 0, got {self.prior_penalty}")
        _check(self.ssl_rows in SSL_ROWS, f"ssl_rows must be one of {', '.join(SSL_ROWS)}, got {self.ssl_rows!r}")
        _check(
            self.ssl_rows == "all" or self.lambda_u == 0,
            f"ssl_rows=labeled trains on the labeled mixed rows only and has no L_u term: lambda_u must be 0, got {self.lambda_u:g}", "lambda_u",
        )
        return self


@dataclasses.dataclass
class RuntimeConfig:
    """Seeding, devices, precision and the run directory."""

    seed: int = _field(0, "seeds noise, initialisation, shuffling, augmentation and mixing")
    strategy: str = _field(
        "default",
        "default (one device) | mirrored (all local GPUs) | multi_worker (MultiWorkerMirroredStrategy: "
        "run the same command on every host, the cluster and this host's place in it in TF_CONFIG; "
        "worker 0 writes the run directory)",
    )
    cpu_replicas: int = _field(0, "mirrored on a CPU-only machine: split the CPU into N logical devices (tests)")
    jit_compile: bool = _field(False, "compile the train steps, accuracy and co-divide predictions with XLA (one replica only)")
    mixed_precision: str = _field("off", "off (float32) | mixed_float16 (with loss scaling) | mixed_bfloat16: the nets' compute dtype")
    workdir: str = _field("", "run directory: config, metrics.csv, summary.json, weights, plots")
    verbose: int = _field(1, '0 silent, 1 progress bars, 2 one line per pass')

    def validate(self) -> "RuntimeConfig":
        _check(self.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        _check(self.cpu_replicas >= 0, f"cpu_replicas must be >= 0, got {self.cpu_replicas}")
        _check(
            self.cpu_replicas <= 1 or self.strategy == "mirrored",
            f"cpu_replicas applies to strategy=mirrored only, got strategy={self.strategy}", "strategy",
        )
        _check(
            self.mixed_precision in MIXED_PRECISION,
            f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, got {self.mixed_precision!r}",
        )
        _check(self.verbose in (0, 1, 2), f"verbose must be 0, 1 or 2, got {self.verbose}")
        _check(bool(self.workdir), "workdir is required")
        return self


SECTIONS = {
    "data": DataConfig,
    "noise": NoiseConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "dividemix": DivideMixConfig,
    "runtime": RuntimeConfig,
}
"""TrainConfig's sections, by attribute name. Field names are unique across them: a field is
named the same in a flag (--lambda_u), in config.json and in DivideMix's constructor."""

SECTION_OF = {field.name: section for section, cls in SECTIONS.items() for field in dataclasses.fields(cls)}
"""Each field's section: SECTION_OF["lambda_u"] == "dividemix"."""


def flat_fields(config_class) -> list:
    """The dataclass fields of a config class, with TrainConfig's sections opened up: one
    (field, type) per flag."""
    classes = SECTIONS.values() if config_class is TrainConfig else (config_class,)
    return [(field, typing.get_type_hints(cls)[field.name]) for cls in classes for field in dataclasses.fields(cls)]


@dataclasses.dataclass(init=False)
class TrainConfig:
    """Every setting of a run, in typed sections: `config.dividemix.lambda_u`, `config.optim.lr`.
    Defaults are the paper's CIFAR-10 settings where it has one.

    Build it from sections, from flat field names, or both (flat names win):
    `TrainConfig(workdir="runs/x", lambda_u=0)`,
    `TrainConfig(dividemix=DivideMixConfig(lambda_u=0), workdir="runs/x")`. `launch/` parses flags
    into it once; `config.json` records it flat (`flat()`), as the flags name it.
    """

    data: DataConfig
    noise: NoiseConfig
    model: ModelConfig
    optim: OptimConfig
    dividemix: DivideMixConfig
    runtime: RuntimeConfig

    def __init__(self, data=None, noise=None, model=None, optim=None, dividemix=None, runtime=None, **fields):
        given = {"data": data, "noise": noise, "model": model, "optim": optim, "dividemix": dividemix, "runtime": runtime}
        unknown = sorted(set(fields) - set(SECTION_OF))
        if unknown:
            raise ConfigError(f"{unknown[0]} is not a TrainConfig field", (unknown[0],))
        for section, cls in SECTIONS.items():
            base = given[section]
            if base is not None and not isinstance(base, cls):
                raise TypeError(f"TrainConfig {section} must be a {cls.__name__}, got {type(base).__name__}")
            changes = {name: value for name, value in fields.items() if SECTION_OF[name] == section}
            setattr(self, section, dataclasses.replace(base, **changes) if base is not None else cls(**changes))

    @classmethod
    def from_flat(cls, values: dict, *, ignore_unknown: bool = False) -> "TrainConfig":
        """A TrainConfig of flat field values (a config.json, parsed flags); with ignore_unknown,
        names that are not fields (a newer or an older run's) are left out instead of refused."""
        if ignore_unknown:
            values = {name: value for name, value in values.items() if name in SECTION_OF}
        return cls(**values)

    def flat(self) -> dict:
        """Every field by its flat name, as config.json and the flags have them."""
        return {name: value for section in SECTIONS for name, value in dataclasses.asdict(getattr(self, section)).items()}

    def replace(self, **fields) -> "TrainConfig":
        """A copy with some fields changed, by their flat names: config.replace(workdir=..., epochs=1)."""
        return TrainConfig(**{section: getattr(self, section) for section in SECTIONS}, **fields)

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first bad setting by its field ("lr must be > 0, got -1";
        launch/ shows it as "--lr must be > 0, got -1"); return self when all are fine."""
        for section in SECTIONS:
            getattr(self, section).validate()
        # the checks that span sections
        _check(
            0 <= self.model.freeze_epochs <= self.optim.epochs,
            f"freeze_epochs must be in [0, epochs={self.optim.epochs}], got {self.model.freeze_epochs}",
        )
        _check(
            not self.data.num_batches or self.dividemix.loss_history == 1,
            "loss_history > 1 averages each sample's losses over epochs, which num_batches (a new sample of images every epoch) cannot do", "num_batches",
        )
        return self

    @property
    def use_confidence_penalty(self) -> bool:
        """The reference adds it in warm-up under asymmetric noise only."""
        if self.dividemix.confidence_penalty == "auto":
            return self.noise.noise_mode == "asym"
        return self.dividemix.confidence_penalty == "on"

    def to_json(self) -> str:
        return json.dumps(self.flat(), indent=2, sort_keys=True)

# Fields added with a default other than what runs did before them: a config.json without the field ran with this.
LEGACY_DEFAULTS = {"momentum_buffer": "keras"}


def recorded_defaults() -> dict:
    """What a config.json that lacks a field ran with: the field's default, or its LEGACY_DEFAULTS
    value (config.json files from before a field existed keep working, and compare equal)."""
    defaults = TrainConfig().flat()
    defaults.update(LEGACY_DEFAULTS)
    return defaults


def parse_augment(text: str) -> list[str]:
    """The augmentations an --augment value names ("crop,flip", "none" -> []), checked; the one
    parser of the names (dmkeras.data.augment.AugmentConfig.parse builds on it)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["none"]:
        names = []
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise ConfigError(
            f"augment={text!r}: unknown augmentation {unknown[0]!r}: use a comma list of {', '.join(AUGMENTATIONS)}, or none",
            ("augment",),
        )
    if "crop" in names and "resized_crop" in names:
        raise ConfigError(f"augment={text!r}: crop and resized_crop are exclusive: use one of them", ("augment",))
    return names


def parse_image_size(text: str):
    """"224,224" or "224" -> (224, 224); "" -> None."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"image_size must be H,W (or one number), got {text!r}", ("image_size",)) from None
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"image_size must be H,W with positive sizes, got {text!r}", ("image_size",))
    return size


def parse_backbone_args(text: str) -> dict:
    """"alpha=0.35,width=64" -> {"alpha": 0.35, "width": 64} (ints, floats, true/false, strings)."""
    args = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"backbone_args: expected key=value, got {item!r}", ("backbone_args",))
        args[key.strip()] = _parse_scalar(value.strip())
    return args


def _parse_scalar(value: str):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
