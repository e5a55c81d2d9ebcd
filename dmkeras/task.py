"""`dmkeras.DivideMix`: DivideMix as one Keras model, in the style of keras-hub's `ImageClassifier`.

    >>> import dmkeras, keras
    >>> model = dmkeras.DivideMix("small_cnn", num_classes=10, warm_up=10, lambda_u=25)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9), weight_decay=5e-4)
    >>> history = model.fit(x, y_noisy, epochs=30, batch_size=64, validation_data=(x_val, y_val))
    >>> model.evaluate(x_test, y_test, return_dict=True)   # {"acc": ..., "acc_net1": ..., "acc_net2": ...}
    >>> probs = model.predict(x_test)                      # softmax of the two nets' ensemble
    >>> model.label_issues()[:10]                          # training samples most likely mislabeled
    >>> model.save("m.keras"); again = keras.saving.load_model("m.keras")

Nothing of DivideMix is written again here: the class is a `dmkeras.model.DivideMixModel` (the two
nets, their train steps, coupled weight decay) with the normalisation inside, and `fit` runs the
library's epoch loop -- the `dmkeras.codivide.CoDivide` callback (scoring, GMM division, the
epoch's tf.data pipelines from `dmkeras.data.pipeline`) and `dmkeras.trainer.train` -- exactly as
the command line (`dmkeras.experiment.run`) does, so the same settings give the same numbers.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from dmkeras import audit, checks, input_transform, precision, trainer, zoo
from dmkeras import callbacks as callbacks_lib
from dmkeras import codivide as codivide_lib
from dmkeras import optimizers as optimizers_lib
from dmkeras.config import SECTION_OF, TrainConfig
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.data.sources import _channel_stats
from dmkeras.errors import DmkerasError
from dmkeras.model import DivideMixModel

log = logging.getLogger("dmkeras")

__all__ = ["DivideMix"]

_PAPER_SGD = (0.02, 0.9)  # compile(optimizer="sgd"): the reference's SGD(lr=0.02, momentum=0.9)
_NOT_COMPILED_ARGS = ("loss", "metrics", "loss_weights", "weighted_metrics")


@keras.saving.register_keras_serializable(package="dmkeras")
class DivideMix(DivideMixModel):
    """DivideMix (Li et al., ICLR 2020): an image classifier trained on noisy labels.

    Two nets are trained together; each epoch after the warm-up, each net's per-sample loss is
    fitted by a two-component GMM, the low-loss samples are taken as labeled (clean) and the rest
    as unlabeled, and each net then trains with MixMatch on the division made by the *other* net.
    Calling the model on raw images returns the logits of the ensemble, `net1 + net2`.

    Args:
      backbone: the nets. A model name from `dmkeras.zoo.list_models()` ("small_cnn" by default):
        two nets are built from the zoo with different initial weights (both drawn after
        `keras.utils.set_random_seed(seed)`, as the command line does; note this seeds Python's,
        NumPy's and TensorFlow's global generators). Or a pair `(net1, net2)` of Keras models
        mapping normalised NHWC float images to `num_classes` logits (their input shape fixes
        `input_shape`); they are used as given, so give them different initial weights.
      num_classes: number of classes C (>= 2); labels are ints in [0, C).
      input_shape: `(height, width, channels)` of the images; None: taken from the images of the
        first `fit` (or the first call).
      backbone_args: dict of extra builder arguments of a zoo backbone, e.g. `{"width": 64}`
        (see `dmkeras.zoo.model_info`); None for none. Not for given nets.
      warm_up: epochs of plain cross-entropy training (each net on all samples) before the first
        co-divide (10 in the paper on CIFAR-10).
      p_threshold: a training sample is labeled when its clean probability exceeds this (0.5).
      lambda_u: weight of the unlabeled (squared-error) loss L_u after its ramp-up (25 at 50%
        symmetric noise on CIFAR-10; 0, 25, 50, 150 for 20, 50, 80, 90 %).
      rampup_epochs: epochs over which lambda_u ramps up linearly from 0 after the warm-up.
      temperature: sharpening temperature T of co-refinement and co-guessing (0.5).
      mixup_alpha: MixMatch mixes with lambda ~ Beta(alpha, alpha) (4 on CIFAR).
      division: how each net's losses are divided: "gmm" (the reference: one GMM over all
        samples), "per_class_gmm" (one GMM per given class) or "class_floor" (the global GMM, then
        at least `class_floor` of every class labeled).
      class_floor: fraction of every class the class-aware divisions keep labeled (0 to 1).
      loss_history: average each sample's normalised losses over the last K epochs before the
        GMM (1: this epoch's only; the paper uses 5 at 90 % noise).
      augment: training augmentation, a comma list of "crop" (zero-pad by `pad`, random crop),
        "resized_crop" (torchvision's RandomResizedCrop) and "flip" (horizontal), or "none".
        Use "crop" for digits and text (a flip changes them).
      pad: padding of the random crop, in pixels.
      augdesc: AugDesc (Nishi et al., CVPR 2021; issue 12): "off" (weak views only), "ws" (strong
        views, AutoAugment's CIFAR-10 policy after the crop / flip, feed the gradient step's
        mixed inputs, the weak views the co-guessing and co-refinement; weak warm-up), "ws_saw"
        (the same, strong warm-up) or "ws_randaugment" (RandAugment instead of AutoAugment).
      contrastive_weight: weight lambda_c of UNICON's contrastive term (Karim et al., CVPR 2022;
        issue 12): SimCLR's loss on two views of each unlabeled sample (the strong views under
        `augdesc`, else the weak ones) through a projection head per net (Dense(128) + BN on
        the net's pooled features). 0 (default): off. UNICON uses 0.025 with augdesc-like strong
        views and `division="unicon"`.
      contrastive_temperature: the contrastive term's temperature (UNICON: 0.05).
      confidence_penalty: add the negative-entropy penalty to the warm-up loss (the reference does
        so under asymmetric noise).
      prior_penalty: weight of the uniform-prior penalty of the semi-supervised loss (1 in the
        reference; 0 leaves it out).
      ssl_rows: "all" (the reference's CIFAR step: L_x + lambda_u L_u + penalty on all 4B mixed
        rows) or "labeled" (its Clothing1M / WebVision step: L_x + penalty on the 2B labeled mixed
        rows; needs lambda_u=0).
      eval_batch_size: batch of the no-gradient passes: the per-sample losses of the co-divide,
        the validation accuracy, and the default batch of `predict` / `evaluate`.
      seed: seeds the zoo nets' initialisation, each epoch's shuffling, augmentation and mixing.
      mean, std: per-channel normalisation of the images scaled to [0, 1] (`(x / 255 - mean) /
        std`); None: adapted on the training images by the first `fit` (as the command line does
        on its training set). Give them for pretrained backbones (e.g. mean=std=(0.5,) * 3 for
        the "tf" transform of `dmkeras.input_transform`). Before they are adapted, images are
        only scaled to [0, 1].
      name: the model's name.
      **kwargs: passed to `keras.Model`. `dtype` is the Keras dtype policy the zoo nets are built
        under (default: the global policy when the model is created): "mixed_float16" (each
        net's optimizer is then wrapped in a LossScaleOptimizer) or "mixed_bfloat16" for mixed
        precision. The normalisation and everything DivideMix computes from the logits stay
        float32; given nets keep their own policy.

    All arguments are checked at once: a bad one raises `dmkeras.errors.DmkerasError` naming it.

    Methods:
      compile(optimizer="sgd", *, weight_decay=5e-4, jit_compile=False, momentum_buffer="torch"):
        one copy of `optimizer` per net (see `compile`). `fit` compiles with these defaults
        when `compile` was not called.
      fit(x, y, *, epochs, batch_size=64, validation_data=None, callbacks=None, verbose="auto",
        initial_epoch=0): trains on raw images and their noisy labels; returns a
        `keras.callbacks.History` (see `fit`).
      predict(x, batch_size=None): softmax probabilities of the ensemble, (N, C).
      evaluate(x, y, batch_size=None, return_dict=False): accuracy of the ensemble (`acc`) and
        of each net (`acc_net1`, `acc_net2`), the Keras way.
      clean_probability_, label_issues(threshold=None), find_label_issues(x, y, **fit_kwargs):
        what the last co-divide says about each training label.
      DivideMix.from_run(workdir): a `launch.train` run directory as this model (its nets,
        normalisation and settings); fit_codivide(...): the epoch loop under `fit`, which the
        command line (`dmkeras.experiment.run`) drives with its own pipelines.
      save("m.keras") / keras.saving.load_model("m.keras"): the whole model (architecture,
        both nets' weights, normalisation, optimizer state), no custom_objects needed (in a new
        process, `import dmkeras.task` or touch `dmkeras.DivideMix` first: it registers the
        class). export(path): a TF SavedModel serving the ensemble logits (see `export`).

    Inputs everywhere are RAW images: uint8 or float arrays with values in 0..255, shape
    (N, H, W, C), or (N, H, W) for one channel, or a finite `tf.data.Dataset` of them.

    Example:

        import dmkeras, keras
        from dmkeras.data import noise, sources
        data = sources.load_source("digits")                   # uint8 (N, 8, 8, 1)
        y_noisy = noise.make_noisy_labels(data.y_train, "sym", 0.4, 10, seed=0)
        model = dmkeras.DivideMix("small_cnn", num_classes=10, warm_up=10, augment="crop", pad=1)
        model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.9), weight_decay=5e-4)
        model.fit(data.x_train, y_noisy, epochs=30, validation_data=(data.x_test, data.y_test))
        model.evaluate(data.x_test, data.y_test, return_dict=True)
        suspicious = model.label_issues()[:10]
    """

    def __init__(
        self,
        backbone="small_cnn",
        *,
        num_classes,
        input_shape=None,
        backbone_args=None,
        warm_up=10,
        p_threshold=0.5,
        lambda_u=25.0,
        rampup_epochs=16,
        temperature=0.5,
        mixup_alpha=4.0,
        division="gmm",
        class_floor=0.0,
        loss_history=1,
        augment="crop,flip",
        pad=4,
        confidence_penalty=False,
        prior_penalty=1.0,
        ssl_rows="all",
        eval_batch_size=500,
        seed=0,
        mean=None,
        std=None,
        name="dividemix",
        augdesc="off",
        contrastive_weight=0.0,
        contrastive_temperature=0.05,
        **kwargs,
    ):
        num_classes = checks.check_num_classes(num_classes, minimum=2)
        settings = _check_settings(
            warm_up=warm_up, p_threshold=p_threshold, lambda_u=lambda_u, rampup_epochs=rampup_epochs,
            temperature=temperature, mixup_alpha=mixup_alpha, division=division, class_floor=class_floor,
            loss_history=loss_history, augment=augment, pad=pad, confidence_penalty=confidence_penalty,
            prior_penalty=prior_penalty, ssl_rows=ssl_rows, eval_batch_size=eval_batch_size, seed=seed,
            augdesc=augdesc, contrastive_weight=contrastive_weight, contrastive_temperature=contrastive_temperature,
        )
        nets, backbone_name, backbone_args, input_shape = _check_backbone(backbone, backbone_args, input_shape, num_classes)
        mean, std = _check_stats(mean, std, input_shape)
        super().__init__(
            *(nets or (None, None)),
            num_classes=num_classes,
            temperature=settings["temperature"],
            mixup_alpha=settings["mixup_alpha"],
            confidence_penalty=settings["confidence_penalty"],
            ssl_rows=settings["ssl_rows"],
            prior_penalty=settings["prior_penalty"],
            contrastive_weight=settings["contrastive_weight"],
            contrastive_temperature=settings["contrastive_temperature"],
            name=name,
            **kwargs,
        )
        self._backbone_name = backbone_name  # None: the nets were given
        self.backbone_args = backbone_args
        self.warm_up = settings["warm_up"]
        self.p_threshold = settings["p_threshold"]
        self.lambda_u = settings["lambda_u"]
        self.rampup_epochs = settings["rampup_epochs"]
        self.division = settings["division"]
        self.class_floor = settings["class_floor"]
        self.loss_history = settings["loss_history"]
        self.augment = settings["augment"]
        self.pad = settings["pad"]
        self.augdesc = settings["augdesc"]
        self.eval_batch_size = settings["eval_batch_size"]
        self.seed = settings["seed"]
        self._mean, self._std = mean, std
        self._image_shape = input_shape
        self._compile_args = None  # what compile() was given; applied once the nets exist
        self._codivide = None  # the last fit's CoDivide: its divisions are clean_probability_
        self._loaded_division = None  # {clean_probability, losses}: the last division of a loaded .keras file
        self._convert_input_args = False  # raw images reach call() as given; normalize() casts to float32
        if input_shape is not None:
            self.build((None, *input_shape))

    # -- building -------------------------------------------------------------------------------------

    @property
    def image_shape(self):
        """(height, width, channels) of the images, or None before the model is built."""
        return self._image_shape

    @property
    def mean(self):
        """Per-channel mean of the training images scaled to [0, 1] (None before the first fit)."""
        return self._mean

    @property
    def std(self):
        """Per-channel standard deviation of the training images scaled to [0, 1] (None before the first fit)."""
        return self._std

    def build(self, input_shape):
        shape = tuple(input_shape)[1:]
        if self.net1 is None:  # a zoo backbone: build both nets now, seeded as the command line does
            shape = zoo._check_input_shape(shape)
            with self.distribute_strategy.scope(), precision.global_policy_scope(self.dtype_policy):
                keras.utils.set_random_seed(self.seed)
                for attr in ("net1", "net2"):
                    net = zoo.create_model(self._backbone_name, self.num_classes, shape, **self.backbone_args)
                    net.name = attr  # distinct names, as experiment.build_model
                    setattr(self, attr, net)
            self.build_projection_heads()
        elif self._image_shape is not None and tuple(shape) != tuple(self._image_shape):
            raise DmkerasError(f"images of shape {tuple(shape)} do not fit the nets' input shape {tuple(self._image_shape)}")
        self._image_shape = tuple(int(d) for d in shape)
        _check_stats(self._mean, self._std, self._image_shape)
        channels = self._image_shape[-1]
        self.pixel_mean = self.add_weight(
            shape=(channels,), name="pixel_mean", trainable=False, dtype="float32", autocast=False,
            initializer=keras.initializers.Constant(np.zeros(channels) if self._mean is None else self._mean),
        )
        self.pixel_std = self.add_weight(
            shape=(channels,), name="pixel_std", trainable=False, dtype="float32", autocast=False,
            initializer=keras.initializers.Constant(np.ones(channels) if self._std is None else self._std),
        )
        self.built = True

    def normalize(self, images):
        """Raw NHWC images (uint8 or float, 0..255) -> the nets' inputs `(x / 255 - mean) / std`,
        the training pipelines' function (`dmkeras.input_transform.normalize`)."""
        return input_transform.normalize(images, tf.convert_to_tensor(self.pixel_mean), tf.convert_to_tensor(self.pixel_std))

    def __call__(self, images, *args, **kwargs):
        if isinstance(images, (np.ndarray, list)):  # arrays as tensors of their own dtype (no float16 cast)
            images = tf.convert_to_tensor(np.asarray(images))
        return super().__call__(images, *args, **kwargs)

    def call(self, images, training=False):
        """Ensemble logits `net1(x) + net2(x)` (float32) of raw images, x their normalisation."""
        return super().call(self.normalize(images), training=training)

    # -- compile --------------------------------------------------------------------------------------

    def compile(self, optimizer="sgd", *, weight_decay=5e-4, jit_compile=False, momentum_buffer="torch", **kwargs):
        """Set up the training: one copy of `optimizer` per net, DivideMix's weight decay.

        Args:
          optimizer: a Keras optimizer (instance, config dict or name). Each net gets its own
            copy, `optimizer.__class__.from_config(optimizer.get_config())`; the object given is
            not used itself. "sgd" means the reference's `SGD(learning_rate=0.02, momentum=0.9)`
            (not Keras' default SGD); other names go through `keras.optimizers.get`. A
            `keras.optimizers.LearningRateSchedule` as learning rate works as in Keras (each copy
            counts its own net's steps); the command line's schedule, lr / 10 from an epoch on,
            is the callback `dmkeras.callbacks.StepDecay(lr, drop_epoch)` given to `fit`.
          weight_decay: the coupled L2 of the reference (PyTorch's `SGD(weight_decay=...)`):
            `weight_decay * w` is added to every trainable weight's gradient before the
            optimizer step. (Keras' own `weight_decay` argument of an optimizer is decoupled and
            comes on top.)
          jit_compile: XLA-compile the train steps and no-gradient passes (one replica only).
          momentum_buffer: "torch" (default): a plain `keras.optimizers.SGD` (not Nesterov) runs
            as `dmkeras.optimizers.TorchSGD` with the same settings -- PyTorch's momentum buffer,
            which the reference and the command line use: the same updates at a constant learning
            rate, and a learning-rate change acts at once. "keras": the optimizer as given.
          **kwargs: to `keras.Model.compile` (e.g. `steps_per_execution` of predict / evaluate);
            `loss` and `metrics` are DivideMix's own and cannot be given.

        Mixed precision is the model's dtype policy (`DivideMix(..., dtype="mixed_float16")`, or
        the global policy when it was created): when the nets compute in float16 each copy is
        wrapped in a `LossScaleOptimizer` (bfloat16 needs none).
        """
        for key in _NOT_COMPILED_ARGS:
            if kwargs.get(key) is not None:
                raise DmkerasError(f"compile: {key} is DivideMix's own, it cannot be given (got {key}={kwargs[key]!r})")
            kwargs.pop(key, None)
        weight_decay = _number("weight_decay", weight_decay)
        if weight_decay < 0:
            raise DmkerasError(f"weight_decay must be >= 0, got {weight_decay:g}")
        if momentum_buffer not in optimizers_lib.MOMENTUM_BUFFERS:
            raise DmkerasError(f"momentum_buffer must be one of {', '.join(optimizers_lib.MOMENTUM_BUFFERS)}, got {momentum_buffer!r}")
        if not isinstance(jit_compile, bool):
            raise DmkerasError(f"jit_compile must be True or False, got {jit_compile!r}")
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        if isinstance(optimizer, str):
            _make_optimizer(optimizer, momentum_buffer)  # an unknown name fails now, not in fit
        elif not isinstance(optimizer, keras.optimizers.Optimizer):
            raise DmkerasError(f"optimizer must be a keras optimizer or its name, got {optimizer!r}")
        self._compile_args = dict(
            optimizer=optimizer, weight_decay=weight_decay, jit_compile=jit_compile, momentum_buffer=momentum_buffer, **kwargs
        )
        if self.net1 is not None:
            self._compile_nets()

    def _compile_nets(self):
        args = dict(self._compile_args)
        spec, buffer = args.pop("optimizer"), args.pop("momentum_buffer")
        self.weight_decay = args.pop("weight_decay")
        float16 = any(net.dtype_policy.compute_dtype == "float16" for net in self.nets)
        optimizers = [
            precision.optimizer(_make_optimizer(spec, buffer), "mixed_float16" if float16 else "off") for _ in self.nets
        ]
        # optimizer=None: Keras' own `model.optimizer` stays unset, each net has its own
        super().compile(*optimizers, optimizer=None, **args)

    def _ensure_compiled(self):
        if self._compile_args is None:
            self.compile()
        elif not self.compiled:
            self._compile_nets()

    def get_compile_config(self):
        if self._compile_args is None:
            return None
        config = dict(self._compile_args)
        if not isinstance(config["optimizer"], str):
            config["optimizer"] = keras.saving.serialize_keras_object(config["optimizer"])
        return config

    def compile_from_config(self, config):
        config = dict(config)
        if isinstance(config.get("optimizer"), dict):
            config["optimizer"] = keras.saving.deserialize_keras_object(config["optimizer"])
        self.compile(**config)

    # -- fit ------------------------------------------------------------------------------------------

    def fit(self, x=None, y=None, *, epochs=1, batch_size=64, validation_data=None, callbacks=None, verbose="auto",
            initial_epoch=0):
        """Train both nets on raw images and their (noisy) labels, as the command line does.

        Args:
          x: uint8 or float images with values in 0..255, (N, H, W, C) or (N, H, W); or a finite
            `tf.data.Dataset` of (image, label) pairs, batched or not (read once into memory).
          y: int labels (N,) in [0, num_classes); None when x is a dataset.
          epochs: train up to this epoch index (as Keras: with initial_epoch, the epochs run are
            initial_epoch .. epochs - 1). Epochs < warm_up are warm-up epochs, then DivideMix.
          batch_size: the labeled batch of the semi-supervised steps (64 in the paper); the
            warm-up steps take 2 x batch_size, as the reference's.
          validation_data: (images, labels) or a dataset of pairs, evaluated after every epoch:
            logged as val_acc (ensemble), val_acc_net1 and val_acc_net2.
          callbacks: Keras callbacks: on_train_begin/end, on_epoch_begin/end and
            on_train_batch_begin/end (once per step of either net; the batch index runs over the
            epoch's two passes) are called; `model.stop_training = True` stops after the epoch.
            The learning rate is the optimizer's (or its schedule's); pass
            `dmkeras.callbacks.StepDecay(lr, drop_epoch)` for the command line's lr / 10 step.
          verbose: "auto" or 1 (each pass's progress bar and one line per epoch), 2 (one line
            per pass and per epoch) or 0.
          initial_epoch: the epoch to start from, to continue an earlier fit (e.g. fit(...,
            epochs=10) then fit(..., epochs=20, initial_epoch=10)). Every random draw of an epoch
            is seeded from (seed, epoch, net), so two fits give the same result as one.

        The first fit adapts the normalisation (`mean` / `std`, unless given) on the training
        images. A fit on the same training labels as the previous one continues its per-sample
        loss history (`loss_history` > 1).

        Returns:
          a `keras.callbacks.History`: `history.history` maps each logged name to its per-epoch
          list -- the trainer's names: net1_loss / net2_loss (and their parts net1_loss_x,
          net1_loss_u, net1_penalty, ... in the semi-supervised epochs), net1_labeled /
          net2_labeled (the size of each net's division's labeled set), lr, phase ("warmup" /
          "ssl"), codivide_time_s, epoch_time_s, rss_mb and the val_ accuracies; NaN where an
          epoch does not have a value. Callbacks get the numeric ones.
        """
        images, labels = _training_arrays(x, y, self.num_classes, "x", "y")
        epochs = _int("epochs", epochs, 1)
        initial_epoch = _int("initial_epoch", initial_epoch, 0)
        if initial_epoch > epochs:
            raise DmkerasError(f"initial_epoch must be <= epochs={epochs}, got {initial_epoch}")
        batch_size = _int("batch_size", batch_size, 1)
        verbose = _verbose(verbose)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, tf.data.Dataset):
                val = _training_arrays(validation_data, None, self.num_classes, "validation_data", "validation labels")
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                val = _training_arrays(*validation_data, self.num_classes, "validation_data images", "validation_data labels")
            else:
                raise DmkerasError("validation_data must be (images, labels) or a tf.data.Dataset of (image, label) pairs")
        self._build_for(images.shape[1:], "x")
        if val is not None:
            self._check_image_shape(val[0], "validation_data images")
        if self._mean is None:  # the nets' normalisation, from the training images (as sources' own)
            self._mean, self._std = _channel_stats(images)
            self.pixel_mean.assign(np.asarray(self._mean, np.float32))
            self.pixel_std.assign(np.asarray(self._std, np.float32))
        self._ensure_compiled()

        config = self._train_config(batch_size=batch_size, epochs=epochs)

        bank = pipeline.make_bank(images, self._mean, self._std, AugmentConfig.parse(self.augment, self.pad))
        val_data = None
        if val is not None:
            val_data = pipeline.holdout_dataset(val[0], val[1], self._mean, self._std, self.eval_batch_size)
        codivide = codivide_lib.from_config(config, bank, labels, num_classes=self.num_classes)
        previous = self._codivide
        if previous is not None and np.array_equal(previous.labels, codivide.labels):
            codivide.histories = previous.histories  # continue the loss averaging of the same samples
            codivide.divisions = previous.divisions
        wrapped = _KerasCallbacks(list(callbacks or ()), self, epochs=epochs, verbose=verbose)
        extra = [wrapped] + ([_EpochPrinter(epochs)] if verbose else [])
        records = self.fit_codivide(
            codivide, epochs=epochs, initial_epoch=initial_epoch, val_data=val_data, callbacks=extra, verbose=verbose
        )
        history = keras.callbacks.History()
        history.set_model(self)
        history.set_params({"epochs": epochs, "verbose": verbose, "steps": None})
        history.epoch = [int(logs["epoch"]) - 1 for logs in records]
        keys = []
        for logs in records:
            keys += [k for k in logs if k != "epoch" and k not in keys]
        history.history = {k: [logs.get(k, math.nan) for logs in records] for k in keys}
        self.history = history
        return history

    def fit_codivide(self, codivide, *, epochs, initial_epoch=0, test_data=None, extra_test_data=None, val_data=None,
                     callbacks=(), verbose=1) -> list[dict]:
        """The epoch loop under `fit`, for callers that build their own pipelines (the command line:
        streamed images, --num_batches, a test set every epoch, checkpoints).

        `codivide`: a `dmkeras.codivide.CoDivide` over this model's training bank and labels (its
        divisions become `clean_probability_`); `test_data` / `extra_test_data` / `val_data`:
        batched datasets of NORMALISED images and labels (`dmkeras.data.pipeline.holdout_dataset`),
        evaluated every epoch; `callbacks`: the trainer's (given the trainer's logs, strings
        included). Lambda_u, its ramp-up and the seed are this model's. Returns the list of epoch logs.
        """
        self._ensure_compiled()
        self._use_present_classes(np.asarray(codivide.labels))
        self._codivide = codivide
        return trainer.train(
            self,
            codivide,
            epochs=epochs,
            initial_epoch=initial_epoch,
            test_data=test_data,
            extra_test_data=extra_test_data,
            val_data=val_data,
            lambda_u=self.lambda_u,
            rampup_epochs=self.rampup_epochs,
            callbacks=list(callbacks),
            seed=self.seed,
            verbose=verbose,
        )

    def _use_present_classes(self, labels):
        """The prior penalty covers the classes that have training samples; a warning names the others."""
        counts = np.bincount(labels, minlength=self.num_classes)
        present = (counts > 0).astype(np.float32)
        if not present.all():
            absent = np.flatnonzero(counts == 0)
            log.warning(
                "num_classes=%d but %d class(es) have no training sample (%s%s): DivideMix's uniform-prior penalty covers "
                "only the %d present", self.num_classes, absent.size, ", ".join(map(str, absent[:10])),
                " ..." if absent.size > 10 else "", int(present.sum()),
            )
        if not np.array_equal(present, self._present_classes):
            self._present_classes = present
            self.reset_step_functions()  # the traced steps hold the old prior as a constant

    def _train_config(self, *, batch_size=64, epochs=1) -> TrainConfig:
        """This model's settings as the command line's TrainConfig (what codivide.from_config reads)."""
        return _config(
            batch_size=batch_size, epochs=max(epochs, self.warm_up, 1), warm_up=self.warm_up, p_threshold=self.p_threshold,
            lambda_u=self.lambda_u, rampup_epochs=self.rampup_epochs, temperature=self.temperature,
            mixup_alpha=self.mixup_alpha, division=self.division, class_floor=self.class_floor,
            loss_history=self.loss_history, augment=self.augment, pad=self.pad,
            confidence_penalty="on" if self.confidence_penalty else "off", prior_penalty=self.prior_penalty,
            ssl_rows=self.ssl_rows, eval_batch_size=self.eval_batch_size, seed=self.seed, augdesc=self.augdesc,
            contrastive_weight=self.contrastive_weight, contrastive_temperature=self.contrastive_temperature,
        )

    def _build_for(self, shape, what):
        shape = tuple(int(d) for d in shape)
        if not self.built:
            self.build((None, *shape))
        elif shape != tuple(self._image_shape):
            raise DmkerasError(f"{what} has images of shape {shape}, the model takes {tuple(self._image_shape)}")

    def _check_image_shape(self, images, what):
        if self._image_shape is not None and tuple(images.shape[1:]) != tuple(self._image_shape):
            raise DmkerasError(f"{what} has images of shape {tuple(images.shape[1:])}, the model takes {tuple(self._image_shape)}")

    # -- inference ------------------------------------------------------------------------------------

    def test_step(self, data):
        images, labels = data[0], data[1]
        return super().test_step((self.normalize(images), labels))

    def predict_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return tf.nn.softmax(self(images, training=False))

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Softmax probabilities (N, num_classes) of the ensemble `net1 + net2` on raw images.

        x: as `fit`'s (arrays or a finite dataset, of images or (image, label) pairs; labels
        are ignored). batch_size defaults to eval_batch_size. Otherwise Keras' predict."""
        images = self._inference_images(x, "x")
        return super().predict(
            images, batch_size=self.eval_batch_size if batch_size is None else _int("batch_size", batch_size, 1),
            verbose=verbose, steps=steps, callbacks=callbacks,
        )

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False, **kwargs):
        """Accuracy on raw images and true labels: the ensemble's (`acc`) and each net's
        (`acc_net1`, `acc_net2`). Keras' evaluate: a list in that order, or a dict with
        return_dict=True. x, y as in `fit`; batch_size defaults to eval_batch_size."""
        images, labels = _training_arrays(x, y, self.num_classes, "x", "y")
        self._build_for(images.shape[1:], "x")
        return super().evaluate(
            images, labels, batch_size=self.eval_batch_size if batch_size is None else _int("batch_size", batch_size, 1),
            verbose=verbose, return_dict=return_dict, **kwargs,
        )

    def _inference_images(self, x, what):
        if isinstance(x, tf.data.Dataset):
            x = _materialise(x, what, self._image_shape)[0]
        images = _images(x, what)
        self._build_for(images.shape[1:], what)
        return images

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' export (`keras.Model.export`): a TF SavedModel whose `serve` endpoint maps RAW
        images to the ensemble's LOGITS, `model(images)` (softmax of them is `predict`'s output).
        The default signature takes float32 images (None, H, W, C) with values 0..255; give
        `input_signature=[tf.TensorSpec((None, H, W, C), tf.uint8)]` for uint8."""
        if input_signature is None and format == "tf_saved_model":
            if not self.built:
                raise DmkerasError("export: the model is not built yet (fit it, or give input_shape)")
            input_signature = [tf.TensorSpec((None, *self._image_shape), tf.float32, name="images")]
        return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    # -- label issues ---------------------------------------------------------------------------------

    @property
    def clean_probability_(self):
        """(N,) float: each training sample's clean probability in the last co-divide of the last
        fit -- the mean of the two nets' divisions (each net's GMM posterior of the low-loss
        component; as `dmkeras.audit` averages a run's nets). Computed at the start of the last
        semi-supervised epoch, from the nets as they were then. None before the first division
        (e.g. while still in warm-up). `save` keeps it in the .keras file."""
        codivide = self._codivide
        if codivide is None or any(d is None for d in codivide.divisions):
            return None if self._loaded_division is None else self._loaded_division["clean_probability"]
        return np.mean([d.clean_prob for d in codivide.divisions], axis=0)

    def _division_losses(self):
        if self._codivide is None:
            return self._loaded_division["losses"]
        return np.mean([d.losses for d in self._codivide.divisions], axis=0)

    def label_issues(self, threshold=None):
        """Indices of the training samples whose `clean_probability_` is <= threshold (default
        p_threshold: the samples the last division did not label), most likely mislabeled first
        (lowest clean probability, then highest normalised loss)."""
        probs = self.clean_probability_
        if probs is None:
            raise DmkerasError("label_issues: no division yet; fit the model beyond its warm_up epochs first")
        threshold = self.p_threshold if threshold is None else _unit("threshold", threshold)
        order = np.lexsort((-self._division_losses(), probs))
        return order[probs[order] <= threshold]

    def find_label_issues(self, x, y=None, **fit_kwargs):
        """Boolean mask (N,) of the samples of (x, y) whose label is probably wrong: clean
        probability <= p_threshold.

        Fits the model on (x, y) first (with `fit_kwargs`, e.g. epochs=...) when it has no
        division yet. On its training set it returns the last division's verdict
        (`clean_probability_`); on other samples, both nets score them now and each fits its GMM
        to their losses, as `dmkeras.audit` does."""
        if self.clean_probability_ is None:
            self.fit(x, y, **fit_kwargs)
            if self.clean_probability_ is None:
                raise DmkerasError(f"find_label_issues: the fit ended within its warm_up={self.warm_up} epochs: fit for more epochs")
        images, labels = _training_arrays(x, y, self.num_classes, "x", "y")
        # The training set's verdict is the last division; a loaded model keeps no training images
        # to recognise them by, so it scores what it is given.
        if self._codivide is not None and np.array_equal(labels, self._codivide.labels) and self._same_training_images(images):
            return self.clean_probability_ <= self.p_threshold
        self._build_for(images.shape[1:], "x")
        dataset = tf.data.Dataset.from_tensor_slices(images).batch(self.eval_batch_size).map(self.normalize)
        logits = [self.predict_logits(k, dataset) for k in range(len(self.nets))]
        scores = audit.score_samples(
            logits, labels, self.num_classes, strategy=self.division, class_floor=self.class_floor,
            p_threshold=self.p_threshold,
        )
        return scores.mean_clean_prob <= self.p_threshold

    def _same_training_images(self, images):
        bank = self._codivide.bank
        return isinstance(bank, pipeline.ImageBank) and bank.images.shape == images.shape and np.array_equal(bank.images, images)

    # -- run directories ------------------------------------------------------------------------------

    @classmethod
    def from_run(cls, workdir):
        """The DivideMix model of a `launch.train` run directory (`--method=dividemix`): its two nets
        as they ended (net1.keras, net2.keras), its normalisation (dataset.json) and its DivideMix
        settings (config.json). Then `predict`, `evaluate`, `export`, `find_label_issues` or a
        further `fit` (after `compile`) work as on a model trained in Python. (The projection heads
        of a `--contrastive_weight` run are not among the run's files, only in its checkpoint: a
        further `fit` starts them anew.)"""
        from dmkeras.rundir import RunDir  # a run directory's reader; nothing of the task is in it

        run = RunDir(workdir)
        config, dataset = run.config(), run.dataset()
        method = config.get("method", "dividemix")
        if method != "dividemix":
            raise DmkerasError(f"{workdir} is a method={method} run (one net), not a DivideMix run")
        nets = []
        for k in range(2):
            path = run.net_path(k)
            try:
                nets.append(keras.saving.load_model(path, compile=False))
            except Exception as error:  # a missing, corrupt or foreign file: keras raises many kinds
                first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
                raise DmkerasError(f"cannot load {path}: {first[:300]}") from error
        known = {f: config[f] for f in SECTION_OF if f in config}
        # a config.json from before a setting existed ran with its default
        return cls(
            tuple(nets), num_classes=int(dataset["num_classes"]), mean=dataset["mean"], std=dataset["std"],
            **settings_from_config(TrainConfig(**known)),
        )

    # -- serialisation --------------------------------------------------------------------------------

    _DIVISION_KEYS = ("clean_probability", "division_losses")

    def save_own_variables(self, store):
        """The model's own variables (the normalisation) and, after a division, the last division's
        clean probabilities and losses, so that a reloaded model still answers label_issues()."""
        super().save_own_variables(store)
        probs = self.clean_probability_
        if probs is not None:
            store["clean_probability"] = np.asarray(probs, np.float64)
            store["division_losses"] = np.asarray(self._division_losses(), np.float64)

    def load_own_variables(self, store):
        keys = set(store.keys())
        if not set(self._DIVISION_KEYS) <= keys:
            return super().load_own_variables(store)
        own = self._trainable_variables + self._non_trainable_variables
        if len(keys) - len(self._DIVISION_KEYS) != len(own):
            raise DmkerasError(f"{self.name}: the saved file holds {len(keys) - 2} own variable(s), the model has {len(own)}")
        for i, variable in enumerate(own):
            variable.assign(store[f"{i}"])
        self._loaded_division = {
            "clean_probability": np.asarray(store["clean_probability"], np.float64),
            "losses": np.asarray(store["division_losses"], np.float64),
        }

    def get_config(self):
        config = super().get_config()
        if self._backbone_name is None:
            backbone = [keras.saving.serialize_keras_object(net) for net in self.nets]
        else:
            backbone = self._backbone_name
        config.update(
            backbone=backbone,
            num_classes=self.num_classes,
            input_shape=None if self._image_shape is None else list(self._image_shape),
            backbone_args=dict(self.backbone_args) or None,
            warm_up=self.warm_up,
            p_threshold=self.p_threshold,
            lambda_u=self.lambda_u,
            rampup_epochs=self.rampup_epochs,
            temperature=self.temperature,
            mixup_alpha=self.mixup_alpha,
            division=self.division,
            class_floor=self.class_floor,
            loss_history=self.loss_history,
            augment=self.augment,
            pad=self.pad,
            confidence_penalty=self.confidence_penalty,
            prior_penalty=self.prior_penalty,
            ssl_rows=self.ssl_rows,
            eval_batch_size=self.eval_batch_size,
            seed=self.seed,
            augdesc=self.augdesc,
            contrastive_weight=self.contrastive_weight,
            contrastive_temperature=self.contrastive_temperature,
            mean=None if self._mean is None else list(self._mean),
            std=None if self._std is None else list(self._std),
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("backbone"), (list, tuple)):  # deserialising consumes the nets' configs: copies
            config["backbone"] = tuple(
                keras.saving.deserialize_keras_object(copy.deepcopy(net), custom_objects=custom_objects)
                for net in config["backbone"]
            )
        return cls(**config)


def settings_from_config(config: TrainConfig) -> dict:
    """DivideMix's constructor settings of a command-line TrainConfig (launch.train and from_run)."""
    dividemix, data = config.dividemix, config.data
    return dict(
        warm_up=config.optim.warm_up, p_threshold=dividemix.p_threshold, lambda_u=dividemix.lambda_u, rampup_epochs=dividemix.rampup_epochs,
        temperature=dividemix.temperature, mixup_alpha=dividemix.mixup_alpha, division=dividemix.division, class_floor=dividemix.class_floor,
        loss_history=dividemix.loss_history, augment=data.augment, pad=data.pad,
        confidence_penalty=config.use_confidence_penalty, prior_penalty=dividemix.prior_penalty, ssl_rows=dividemix.ssl_rows,
        eval_batch_size=config.optim.eval_batch_size, seed=config.runtime.seed, augdesc=data.augdesc,
        contrastive_weight=dividemix.contrastive_weight, contrastive_temperature=dividemix.contrastive_temperature,
    )


# -- optimizers -----------------------------------------------------------------------------------------


def _make_optimizer(spec, momentum_buffer):
    """A fresh optimizer from `spec` (a name or an optimizer to copy), see DivideMix.compile."""
    if isinstance(spec, str):
        if spec.lower() == "sgd":
            return optimizers_lib.sgd(*_PAPER_SGD, momentum_buffer)
        try:
            return keras.optimizers.get(spec)
        except ValueError:
            raise DmkerasError(f"optimizer: unknown optimizer name {spec!r}") from None
    optimizer = spec.__class__.from_config(spec.get_config())
    if momentum_buffer == "torch" and type(optimizer) is keras.optimizers.SGD and not optimizer.nesterov:
        optimizer = optimizers_lib.TorchSGD.from_config(optimizer.get_config())
    return optimizer


# -- argument checks ------------------------------------------------------------------------------------


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise DmkerasError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DmkerasError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise DmkerasError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _unit(name, value):
    value = _number(name, value)
    if not 0.0 <= value <= 1.0:
        raise DmkerasError(f"{name} must be in [0, 1], got {value:g}")
    return value


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise DmkerasError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _config(**settings) -> TrainConfig:
    """A TrainConfig of `settings`, checked by TrainConfig.validate (its ConfigError names the
    fields, which are these arguments' names: "lambda_u must be >= 0")."""
    return TrainConfig(workdir="-", **settings).validate()


def _check_settings(**settings) -> dict:
    """The DivideMix settings, checked: types here, ranges by TrainConfig.validate."""
    for name in ("warm_up", "loss_history", "pad", "eval_batch_size", "seed"):
        _int(name, settings[name], {"loss_history": 1, "eval_batch_size": 1}.get(name, 0))
    for name in (
        "p_threshold", "lambda_u", "rampup_epochs", "temperature", "mixup_alpha", "class_floor", "prior_penalty",
        "contrastive_weight", "contrastive_temperature",
    ):
        settings[name] = _number(name, settings[name])
    for name in ("division", "ssl_rows", "augment", "augdesc"):
        if not isinstance(settings[name], str):
            raise DmkerasError(f"{name} must be a string, got {settings[name]!r}")
    if not isinstance(settings["confidence_penalty"], bool):
        raise DmkerasError(f"confidence_penalty must be True or False, got {settings['confidence_penalty']!r}")
    checked = dict(settings)
    checked["confidence_penalty"] = "on" if settings["confidence_penalty"] else "off"
    _config(epochs=max(settings["warm_up"], 1), **checked)
    return settings


def _check_backbone(backbone, backbone_args, input_shape, num_classes):
    """(nets or None, zoo name or None, backbone_args, input_shape) of DivideMix's backbone argument."""
    if input_shape is not None:
        try:
            input_shape = tuple(int(d) for d in input_shape)
        except (TypeError, ValueError):
            raise DmkerasError(f"input_shape must be (height, width, channels), got {input_shape!r}") from None
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise DmkerasError(f"input_shape must be 3 positive ints (height, width, channels), got {input_shape!r}")
    if isinstance(backbone, (tuple, list)):
        if len(backbone) != 2 or not all(isinstance(net, keras.Model) for net in backbone):
            raise DmkerasError(f"backbone must be a zoo model name or a pair of keras.Model (net1, net2), got {backbone!r}")
        if backbone[0] is backbone[1]:
            raise DmkerasError("backbone: net1 and net2 are the same model; DivideMix needs two nets (e.g. keras.models.clone_model)")
        if backbone_args:
            raise DmkerasError("backbone_args apply to a zoo backbone name, not to given nets")
        shapes = []
        for k, net in enumerate(backbone):
            inputs = getattr(net, "inputs", None)
            if inputs:
                shapes.append(tuple(int(d) for d in inputs[0].shape[1:]))
            outputs = getattr(net, "outputs", None)
            if outputs and outputs[0].shape[-1] != num_classes:
                raise DmkerasError(f"backbone net{k + 1} gives {outputs[0].shape[-1]} logits, num_classes is {num_classes}")
        if len(set(shapes)) > 1:
            raise DmkerasError(f"backbone: the two nets take different input shapes {shapes[0]} and {shapes[1]}")
        if shapes:
            if input_shape is not None and input_shape != shapes[0]:
                raise DmkerasError(f"input_shape {input_shape} differs from the nets' input shape {shapes[0]}")
            input_shape = shapes[0]
        elif input_shape is None:
            raise DmkerasError("backbone: the given nets have no input shape (not functional): give input_shape")
        return tuple(backbone), None, {}, input_shape
    if not isinstance(backbone, str):
        raise DmkerasError(f"backbone must be a zoo model name or a pair of keras.Model (net1, net2), got {backbone!r}")
    names = zoo.list_models()
    if backbone not in names and backbone not in zoo.list_presets():
        raise DmkerasError(f"backbone must be one of {', '.join(names)} (dmkeras.zoo.list_models()) or a pair of keras.Model, got {backbone!r}")
    if backbone_args is None:
        backbone_args = {}
    if not isinstance(backbone_args, dict) or not all(isinstance(k, str) for k in backbone_args):
        raise DmkerasError(f"backbone_args must be a dict of builder arguments, e.g. {{'width': 64}}, got {backbone_args!r}")
    if backbone in names:
        zoo._check_kwargs(zoo._entry(backbone), backbone_args)
    if input_shape is not None:
        zoo._check_input_shape(input_shape)
    return None, backbone, dict(backbone_args), input_shape


def _check_stats(mean, std, input_shape):
    if (mean is None) != (std is None):
        raise DmkerasError("mean and std go together: give both or neither")
    if mean is None:
        return None, None
    values = []
    for name, stat in (("mean", mean), ("std", std)):
        try:
            stat = tuple(float(v) for v in np.atleast_1d(np.asarray(stat, np.float64)))
        except (TypeError, ValueError):
            raise DmkerasError(f"{name} must be per-channel numbers, got {stat!r}") from None
        if not all(math.isfinite(v) for v in stat) or (name == "std" and min(stat) <= 0):
            raise DmkerasError(f"{name} must be finite{' and > 0' if name == 'std' else ''}, got {stat}")
        if input_shape is not None and len(stat) != input_shape[-1]:
            raise DmkerasError(f"{name} has {len(stat)} values but the images have {input_shape[-1]} channel(s)")
        values.append(stat)
    if len(values[0]) != len(values[1]):
        raise DmkerasError(f"mean has {len(values[0])} values but std {len(values[1])}")
    return values[0], values[1]


# -- input data -----------------------------------------------------------------------------------------


def _images(x, what):
    """Raw images as an array (N, H, W, C): uint8 kept, integral floats in 0..255 -> uint8, other
    floats -> float32. One-line errors for what cannot be images."""
    if x is None:
        raise DmkerasError(f"{what} is required: images (N, H, W, C) with values in 0..255")
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    images = np.asarray(x)
    if images.dtype == bool or not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise DmkerasError(f"{what} must be numeric images (uint8 or float in 0..255), got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise DmkerasError(f"{what} must be images of shape (N, H, W, C) or (N, H, W), got shape {images.shape}")
    if len(images) == 0:
        raise DmkerasError(f"{what} holds no images")
    if images.dtype == np.uint8:
        return images
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise DmkerasError(f"{what} has NaN or infinite pixel values")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 255:
        raise DmkerasError(
            f"{what} must hold raw pixel values in [0, 255] (DivideMix normalises them itself), got values in [{low:g}, {high:g}]"
        )
    if np.issubdtype(images.dtype, np.integer) or np.array_equal(images, np.round(images)):
        return images.astype(np.uint8)
    return images.astype(np.float32)


def _labels(y, count, num_classes, what, images_what):
    if y is None:
        raise DmkerasError(f"{what} is required: integer class labels (N,) (or give a tf.data.Dataset of (image, label) pairs)")
    if isinstance(y, tf.Tensor):
        y = y.numpy()
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return checks.check_class_labels(labels, num_classes, what=what, count=count,
                                      count_what=f"{images_what} has {count} images")


def _training_arrays(x, y, num_classes, what, labels_what):
    """(images, labels) of numpy inputs or of a dataset of (image, label) pairs."""
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise DmkerasError(f"{labels_what} must be None when {what} is a tf.data.Dataset (of (image, label) pairs)")
        x, y = _materialise(x, what, None, with_labels=True)
    images = _images(x, what)
    return images, _labels(y, len(images), num_classes, labels_what, what)


def _materialise(dataset, what, image_shape, with_labels=False):
    """A finite dataset of images or (image, label[, weight]) pairs, batched or not, as arrays."""
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise DmkerasError(f"{what} is an infinite tf.data.Dataset (repeat()?): pass a finite one")
    spec = dataset.element_spec
    paired = isinstance(spec, (tuple, list))
    if with_labels and not (paired and len(spec) >= 2):
        raise DmkerasError(f"{what} must be a tf.data.Dataset of (image, label) pairs, got elements {spec}")
    image_spec = spec[0] if paired else spec
    if not isinstance(image_spec, tf.TensorSpec):
        raise DmkerasError(f"{what}: the dataset's images must be tensors, got {image_spec}")
    if paired and len(spec) >= 2 and isinstance(spec[1], tf.TensorSpec):
        batched = spec[1].shape.rank is not None and spec[1].shape.rank >= 1  # a label per element: unbatched
    else:
        rank = image_spec.shape.rank
        batched = rank == 4 or (rank == 3 and (image_spec.shape[0] is None or (
            image_shape is not None and tuple(image_spec.shape) != tuple(image_shape))))
    images, labels = [], []
    for element in dataset.as_numpy_iterator():
        parts = element if paired else (element,)
        images.append(parts[0] if batched else parts[0][np.newaxis])
        if paired and len(parts) >= 2:
            labels.append(np.reshape(parts[1], (-1,)) if batched else np.reshape(parts[1], (1,)))
    if not images:
        raise DmkerasError(f"{what} is an empty tf.data.Dataset")
    try:
        x = np.concatenate(images)
    except ValueError:
        raise DmkerasError(f"{what}: the dataset's images differ in shape; resize them to one size first") from None
    return x, (np.concatenate(labels) if labels else None)


# -- callbacks --------------------------------------------------------------------------------------------


def _keras_logs(logs):
    """The numeric logs, without the trainer's `epoch` (Keras callbacks get no strings or None)."""
    return {
        k: v for k, v in (logs or {}).items()
        if k != "epoch" and isinstance(v, (numbers.Real, np.number)) and not isinstance(v, bool)
    }


class _KerasCallbacks(keras.callbacks.Callback):
    """The user's callbacks in a CallbackList of their own (params set as Keras' fit does), given
    Keras-style logs."""

    def __init__(self, callbacks, model, *, epochs, verbose):
        super().__init__()
        self.inner = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, verbose=verbose, steps=None)

    def on_train_begin(self, logs=None):
        self.inner.on_train_begin(_keras_logs(logs))

    def on_train_end(self, logs=None):
        self.inner.on_train_end(_keras_logs(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, _keras_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        self.inner.on_epoch_end(epoch, _keras_logs(logs))

    def on_train_batch_begin(self, batch, logs=None):
        self.inner.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.inner.on_train_batch_end(batch, logs)


class _EpochPrinter(keras.callbacks.Callback):
    """One line per epoch, the command line's (callbacks.epoch_line)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        print(callbacks_lib.epoch_line({"epoch": epoch + 1, **(logs or {})}, self.epochs), flush=True)
