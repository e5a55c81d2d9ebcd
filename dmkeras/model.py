"""DivideMixModel: two backbones, one optimizer each, and the train steps of both phases.

The maths is in `dmkeras.ops`; this file wires it into per-replica steps:

* `warmup_step`: plain cross-entropy on all samples (+ the confidence penalty under asymmetric
  noise), one net at a time;
* `ssl_step`: one semi-supervised MixMatch step of net k on the division made by the other net,
  with co-refinement (labeled) and co-guessing (unlabeled);
* `test_step`: accuracy of the two-net ensemble (sum of logits) and of each net, for `evaluate`.

Which net trains is a Python-level choice: one compiled function per (phase, net). A tensor-level
`tf.cond` around two optimizers' updates cannot run under `MirroredStrategy` (the gradient
all-reduce is a synchronisation point that may not sit inside control flow).

Losses are normalised by *global* row counts (all-reduced across replicas) and the uniform-prior
penalty uses the global mean prediction, so a step under R replicas computes the same gradient as
one replica with the whole batch (up to BatchNorm batch statistics and mixing partners, which
stay per replica; the BatchNorm moving statistics are averaged over replicas after each pass,
`sync_replica_statistics`).

Precision and XLA (`compile(..., jit_compile=True)`): the nets may compute in float16 / bfloat16
(`dmkeras.precision`); their logits are cast to float32 before any of the maths, losses and
returned values are float32, and a net's optimizer may be a `LossScaleOptimizer`: the loss is
scaled in the tape and the optimizer unscales. Under XLA each *per-replica* step (the function
given to `strategy.run`) is compiled, not the outer function that reads the iterator; XLA cannot
compile steps whose all-reduces and optimizer updates synchronise several replicas, so it needs a
single replica.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from dmkeras import distribute, ops
from dmkeras.errors import ConfigError, DmkerasError

WARMUP = "warmup"
SEMI_SUPERVISED = "ssl"
TOP_K = 5
SSL_ROWS = ("all", "labeled")  # as DivideMixModel's ssl_rows


def float32_logits(net, images, training):
    """The net's logits as float32, whatever dtype policy it computes in."""
    return tf.cast(net(images, training=training), tf.float32)


class _StepCache(dict):
    """The compiled step functions, keyed by (phase, ...) tuples. Held outside Keras' and
    TensorFlow's attribute tracking: a tracked dict would be saved with the model, and SavedModel
    export refuses its tuple keys. The steps are no part of a saved model anyway."""


class _CoTrainedModel(keras.Model):
    """What DivideMix and the standard baseline share: nets with one optimizer each, the warm-up
    (cross-entropy) step, coupled weight decay and the compiled distributed step functions."""

    def __init__(self, *, num_classes, weight_decay=5e-4, confidence_penalty=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.weight_decay = float(weight_decay)
        self.confidence_penalty = bool(confidence_penalty)
        self.reset_step_functions()

    @property
    def nets(self):
        raise NotImplementedError

    def compile(self, *optimizers, jit_compile=False, **kwargs):
        """One optimizer per net; each is built on, and only ever updates, its own net's weights.

        `jit_compile=True` compiles the per-replica train steps, the accuracy counts and the
        co-divide forward passes (`predict_logits`, and the nets' own `predict`) with XLA. Unlike Keras' own default ("auto", which turns
        XLA on on a GPU), the default here is False. It needs a single replica.
        """
        if len(optimizers) != len(self.nets):
            raise ValueError(f"{type(self).__name__}.compile takes {len(self.nets)} optimizer(s), got {len(optimizers)}")
        replicas = self.distribute_strategy.num_replicas_in_sync
        if jit_compile and replicas > 1:
            raise ConfigError(
                f"jit_compile needs a single replica, the strategy has {replicas}: XLA cannot compile a step whose "
                "all-reduces and optimizer updates synchronise replicas (Keras turns XLA off under tf.distribute too)",
                ("jit_compile",),
            )
        super().compile(jit_compile=bool(jit_compile), **kwargs)
        self.optimizers = tuple(optimizers)
        with self.distribute_strategy.scope():
            for k, (net, optimizer) in enumerate(zip(self.nets, self.optimizers)):
                optimizer.build(self.trained_weights(k))
                net.jit_compile = self.jit_compile  # net.predict (audits) follows the model
                net.predict_function = None
        self.reset_step_functions()

    def trained_weights(self, k):
        """The weights net k's optimizer updates: the net's trainable weights (and, in
        DivideMixModel, its projection head's)."""
        return self.nets[k].trainable_weights

    @property
    def _step_functions(self) -> dict:
        return self.__dict__["_dmkeras_steps"]

    def reset_step_functions(self):
        """Forget the compiled steps (after a change of which weights are trainable). Set in the
        instance dict directly, past the attribute tracking (see _StepCache)."""
        self.__dict__["_dmkeras_steps"] = _StepCache()

    # -- per-replica train steps --------------------------------------------------------------------

    def _per_replica(self, fn):
        """`fn` as the function given to `strategy.run`: XLA-compiled under `jit_compile`."""
        return tf.function(fn, jit_compile=True) if self.jit_compile else fn

    def _scale_loss(self, k, loss):
        """The loss to differentiate: scaled by net k's LossScaleOptimizer (float16), else as is."""
        return self.optimizers[k].scale_loss(loss)

    def _apply_gradients(self, k, scaled_loss, tape):
        """Coupled L2 weight decay, then the net's own optimizer on the net's own weights.

        `scaled_loss` is `_scale_loss(k, loss)`, taken inside the tape. The gradients then carry
        the loss scale s, so the decay is added as s * decay * w; the optimizer divides the sum by
        s (a LossScaleOptimizer does; s = 1 for any other optimizer): the update is that of
        g + decay * w, as without scaling.
        """
        weights = self.trained_weights(k)
        grads = tape.gradient(scaled_loss, weights)
        loss_scale = self._scale_loss(k, tf.constant(1.0, tf.float32))
        # The optimizer sums gradients over replicas, so each replica adds 1/R of the decay term.
        decay = loss_scale * (self.weight_decay / tf.distribute.get_replica_context().num_replicas_in_sync)
        # a weight the loss does not reach (a projection head in the warm-up) is left alone, decay
        # included, as PyTorch's SGD skips parameters without a gradient
        pairs = [(g, w) for g, w in zip(grads, weights) if g is not None]
        grads = [g + tf.cast(decay, g.dtype) * tf.cast(w, g.dtype) for g, w in pairs]
        self.optimizers[k].apply(grads, [w for _, w in pairs])

    def warmup_step(self, k, batch):
        """Cross-entropy on a batch of (image, given label) for net k, + the confidence penalty."""
        net = self.nets[k]
        context = tf.distribute.get_replica_context()
        global_rows = context.all_reduce("sum", tf.cast(tf.shape(batch["y"])[0], tf.float32))
        with tf.GradientTape() as tape:
            logits = float32_logits(net, batch["x"], training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch["y"], logits=logits)
            ce_loss = tf.reduce_sum(ce) / global_rows
            loss = ce_loss
            if self.confidence_penalty:
                penalty = tf.reduce_sum(ops.negative_entropy(logits)) / global_rows
                loss = loss + penalty
            scaled_loss = self._scale_loss(k, loss)
        self._apply_gradients(k, scaled_loss, tape)
        if self.confidence_penalty:
            return {"loss": loss, "ce": ce_loss, "penalty": penalty}
        return {"loss": loss}

    # -- evaluation under any strategy ---------------------------------------------------------------

    def count_correct(self, images, labels, real=None):
        """Per-replica counts: correct predictions of the ensemble (sum of logits) and of each net,
        and of the ensemble's top 5 when there are more than 5 classes (over the rows marked
        `real`, when given)."""
        logits = [float32_logits(net, images, training=False) for net in self.nets]
        labels = tf.cast(labels, tf.int64)
        weight = tf.ones_like(labels, tf.float32) if real is None else tf.cast(real, tf.float32)

        def correct(z):
            return tf.reduce_sum(weight * tf.cast(tf.equal(tf.argmax(z, axis=-1), labels), tf.float32))

        ensemble = tf.add_n(logits)
        counts = {"rows": tf.reduce_sum(weight), "acc": correct(ensemble)}
        if self.num_classes > TOP_K:  # WebVision / ILSVRC report top-5 as well
            in_top_k = tf.math.in_top_k(labels, ensemble, TOP_K)  # float32: float32_logits
            counts[f"acc_top{TOP_K}"] = tf.reduce_sum(weight * tf.cast(in_top_k, tf.float32))
        if len(logits) > 1:
            counts.update({f"acc_net{k + 1}": correct(z) for k, z in enumerate(logits)})
        return counts

    def accuracy(self, dataset) -> dict:
        """Accuracy of the ensemble (`acc`) and of each net (`acc_net1`, ...) over (image, label) batches.

        Keras' `evaluate` cannot be used under MirroredStrategy when a batch does not split evenly
        over the replicas (its first-batch build averages the replicas' inputs), so the counts are
        summed here instead. Each global batch is split into per-replica slices by the same
        mechanism as the training batches (every worker keeps its own replicas' slices), so under
        any strategy every example is counted exactly once.
        """
        strategy = self.distribute_strategy
        if "accuracy" not in self._step_functions:

            count_correct = self._per_replica(self.count_correct)

            @tf.function(reduce_retracing=True)
            def count(batch, real):
                per_replica = strategy.run(count_correct, args=(*batch[:2], real))
                return {name: strategy.reduce("sum", value, axis=None) for name, value in per_replica.items()}

            self._step_functions["accuracy"] = count
        distributed = _per_replica_batches(strategy, dataset)
        # Trace once for the dataset's element_spec (batch dimension None): called on eager batches
        # alone, the function would trace again for a smaller last batch.
        self._step_functions["accuracy"].get_concrete_function(*distributed.element_spec)
        totals = {}
        for batch, real in distributed:
            for name, value in self._step_functions["accuracy"](batch, real).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        rows = totals.pop("rows", 0.0)
        return {name: value / rows for name, value in totals.items()} if rows else {}

    def predict_logits(self, k, dataset) -> np.ndarray:
        """Net k's logits (inference mode) on every row of a dataset of image batches, in order.

        What `net.predict` does on one device, for any strategy: each global batch is split over
        all replicas (of all workers) and the slices' logits are gathered back in replica order,
        so every worker gets the logits of every row. (Keras' `predict` under
        MultiWorkerMirroredStrategy auto-shards the dataset and reorders the gathered outputs by
        its own sharding rule; this does not depend on that.)
        """
        strategy = self.distribute_strategy
        key = ("logits", k)
        if key not in self._step_functions:
            net = self.nets[k]

            forward = self._per_replica(lambda x: float32_logits(net, x, training=False))

            @tf.function(reduce_retracing=True)
            def logits(images, real):
                per_replica = strategy.run(forward, args=(images,))
                real = strategy.run(lambda r: tf.cast(r, tf.int32), args=(real,))  # collectives take no bool
                return strategy.gather(per_replica, axis=0), strategy.gather(real, axis=0)

            self._step_functions[key] = logits
        distributed = _per_replica_batches(strategy, dataset)
        self._step_functions[key].get_concrete_function(*distributed.element_spec)  # one trace, any last batch
        outputs = []
        for images, real in distributed:
            values, real = self._step_functions[key](images, real)
            outputs.append(values.numpy()[real.numpy() > 0])
        if not outputs:
            return np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(outputs)

    # -- replica statistics --------------------------------------------------------------------------

    def sync_replica_statistics(self, k=None):
        """Set every replica's copy of each floating-point non-trainable variable of net k (of every
        net when k is None), e.g. BatchNorm's moving mean and variance, to the mean over all replicas
        of all workers. A no-op with one replica. Call it on every worker at the same point (after
        each pass: `trainer.run_pass` does).

        Keras 3 creates these variables with aggregation "none": under a mirrored strategy each
        replica updates its own copy from its own slice of the batch, so without this the replicas
        would evaluate with different statistics and a saved net would hold the first replica's.
        The moving averages are linear in the batch statistics, so the mean of the replicas' moving
        means is the moving average of the mean of the slices' means (the global batch mean when the
        slices are equal), and the mean of their moving variances the moving average of the mean of
        the slices' variances (which leaves out the spread of the slice means around their mean).

        Frozen weights (non-trainable too) are equal on every replica and stay so.
        """
        strategy = self.distribute_strategy
        if strategy.num_replicas_in_sync == 1:
            return
        for i in range(len(self.nets)) if k is None else (k,):
            key = ("sync_statistics", i)
            if key not in self._step_functions:  # reset with the steps when trainable weights change
                variables = [v for v in self.nets[i].non_trainable_variables if keras.backend.is_float_dtype(v.dtype)]
                sync = _replica_mean_assigner(strategy, variables) if variables else None
                self._step_functions[key] = sync
            if self._step_functions[key] is not None:
                self._step_functions[key]()

    # -- compiled, distributed steps ------------------------------------------------------------------

    def step_function(self, phase, k, with_unlabeled=True):
        """The compiled step of `phase` for net k: `fn(iterator, **scalars) -> dict of floats`.

        Reads one per-replica batch from a distributed iterator, runs the step on every replica
        and sums the replicas' contributions (each is already normalised by global counts).
        Under `jit_compile` the per-replica step is XLA-compiled; reading the iterator is not.
        The batch dimension is left unknown, so one trace serves every batch size.
        """
        key = (phase, k, with_unlabeled)
        if key not in self._step_functions:
            strategy = self.distribute_strategy

            def reduce(per_replica):
                return {name: strategy.reduce("sum", value, axis=None) for name, value in per_replica.items()}

            if phase == WARMUP:
                replica_step = self._per_replica(functools.partial(self.warmup_step, k))

                @tf.function
                def step(iterator):
                    return reduce(strategy.run(replica_step, args=(next(iterator),)))

            elif phase == SEMI_SUPERVISED:
                replica_step = self._per_replica(functools.partial(self.ssl_step, k, with_unlabeled=with_unlabeled))

                @tf.function
                def step(iterator, mix_lambda, lambda_u, seed):
                    return reduce(strategy.run(replica_step, args=(next(iterator), mix_lambda, lambda_u, seed)))

            else:
                raise ValueError(f"unknown phase {phase!r}")
            step.replica_step = replica_step  # the per-replica function (a tf.function under jit_compile)
            self._step_functions[key] = step
        return self._step_functions[key]


class DivideMixModel(_CoTrainedModel):
    """Two nets trained together by DivideMix.

    Args:
      net1, net2: Keras models mapping normalised images to logits.
      num_classes: number of classes C.
      temperature: sharpening temperature T (0.5 in the paper).
      mixup_alpha: Beta(alpha, alpha) for MixMatch (4 on CIFAR, 0.5 on Clothing1M/WebVision).
      weight_decay: L2 coefficient added to the gradient of every trainable weight before the
        optimizer step, as PyTorch's `SGD(weight_decay=...)` in the reference does (coupled, not
        Keras' decoupled `weight_decay`).
      confidence_penalty: add the negative-entropy penalty to the warm-up loss (the reference
        does so under asymmetric noise).
      ssl_rows: which mixed rows the semi-supervised step trains on. "all" (the reference's
        CIFAR script): all 4B rows, loss = L_x + lambda_u * L_u + penalty. "labeled" (its
        Clothing1M and WebVision scripts): the whole 4B batch supplies the mixing partners, but
        only the first 2B mixed rows (the labeled views) are passed through the net, and
        loss = L_x + penalty over those rows (no L_u term; half the cost of the training pass).
      prior_penalty: weight of the uniform-prior penalty in the semi-supervised loss (1 in the
        reference; 0 leaves it out).
      present_classes: the classes that have training samples (indices); the uniform prior of
        the penalty covers only those. None: all num_classes.
      contrastive_weight: weight lambda_c of UNICON's contrastive term (`ops.contrastive_loss`)
        on two views of the unlabeled batch: the strong views when the batch has them
        (AugDesc), else the weak ones. 0 (default): off, and no projection heads.
      contrastive_temperature: the term's temperature (UNICON: 0.05).
      projection_dim: width of the projection heads (UNICON: 128).

    With the contrastive term each net k gets a projection head `projection_heads[k]` (UNICON's
    `Linear(features, 128)` + `BatchNorm1d(128)`) on the input of the net's last layer (its
    pooled features: every zoo backbone ends in its logits Dense); net k's optimizer trains it with
    the net. It is not part of the ensemble's logits, so `predict` and `export` do not see it.

    `compile(optimizer1, optimizer2)`. Calling the model returns the ensemble logits
    `net1(x) + net2(x)`, so `predict`, `evaluate` and `export` work on the ensemble.
    """

    def __init__(
        self,
        net1,
        net2,
        *,
        num_classes,
        temperature=0.5,
        mixup_alpha=4.0,
        weight_decay=5e-4,
        confidence_penalty=False,
        ssl_rows="all",
        prior_penalty=1.0,
        present_classes=None,
        contrastive_weight=0.0,
        contrastive_temperature=0.05,
        projection_dim=128,
        name="dividemix",
        **kwargs,
    ):
        super().__init__(
            num_classes=num_classes, weight_decay=weight_decay, confidence_penalty=confidence_penalty, name=name, **kwargs
        )
        if ssl_rows not in SSL_ROWS:
            raise DmkerasError(f"ssl_rows must be one of {', '.join(SSL_ROWS)}, got {ssl_rows!r}")
        self.net1 = net1
        self.net2 = net2
        self.temperature = float(temperature)
        self.mixup_alpha = float(mixup_alpha)
        self.ssl_rows = ssl_rows
        self.prior_penalty = float(prior_penalty)
        present = np.ones(self.num_classes, np.float32)
        if present_classes is not None:
            present = np.zeros(self.num_classes, np.float32)
            present[np.asarray(present_classes, np.int64)] = 1.0
        self._present_classes = present  # numpy: a constant of the traced steps, nothing for Keras to track
        self.contrastive_weight = float(contrastive_weight)
        self.contrastive_temperature = float(contrastive_temperature)
        self.projection_dim = int(projection_dim)
        self.projection_heads = ()
        if net1 is not None:
            self.build_projection_heads()
        self.acc = keras.metrics.SparseCategoricalAccuracy(name="acc")
        self.acc_net1 = keras.metrics.SparseCategoricalAccuracy(name="acc_net1")
        self.acc_net2 = keras.metrics.SparseCategoricalAccuracy(name="acc_net2")

    @property
    def nets(self):
        return (self.net1, self.net2)

    def build_projection_heads(self):
        """With the contrastive term on, one projection head per net (idempotent; call it once
        the nets exist). Each net's feature model shares the net's layers."""
        if self.contrastive_weight <= 0 or self.projection_heads:
            return
        features, heads = [], []
        with self.distribute_strategy.scope():
            for k, net in enumerate(self.nets):
                features.append(self._feature_model(k, net))
                heads.append(self._projection_head(k, int(features[-1].output.shape[-1])))
        # untracked (as _StepCache): the feature models share the nets' layers, saved with the nets
        self.__dict__["_feature_models"] = tuple(features)
        self.projection_heads = tuple(heads)

    @staticmethod
    def _feature_model(k, net):
        last = net.layers[-1]
        if not isinstance(last, keras.layers.Dense):
            raise DmkerasError(
                f"contrastive_weight needs nets that end in their logits Dense layer (the head reads its input); "
                f"net{k + 1} ends in {type(last).__name__} {last.name!r}"
            )
        return keras.Model(net.inputs, last.input, name=f"{net.name}_features")

    def _projection_head(self, k, features):
        head = keras.Sequential(
            [
                keras.layers.Dense(self.projection_dim, dtype="float32", name="dense"),
                # PyTorch's BatchNorm1d defaults, as the nets' BN (momentum 0.1 there)
                keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype="float32", name="bn"),
            ],
            name=f"projection{k + 1}",
        )
        head.build((None, features))
        return head

    def trained_weights(self, k):
        weights = self.nets[k].trainable_weights
        if self.projection_heads:
            weights = weights + self.projection_heads[k].trainable_weights
        return weights

    def projections(self, k, images, training=True):
        """Net k's projection-head outputs (float32) of normalised images (the contrastive term's input)."""
        features = self.__dict__["_feature_models"][k](images, training=training)
        return tf.cast(self.projection_heads[k](tf.cast(features, tf.float32), training=training), tf.float32)

    def call(self, images, training=False):
        return float32_logits(self.net1, images, training) + float32_logits(self.net2, images, training)

    @property
    def metrics(self):
        return [self.acc, self.acc_net1, self.acc_net2]

    def test_step(self, data):
        images, labels = data[0], data[1]
        logits1 = float32_logits(self.net1, images, training=False)
        logits2 = float32_logits(self.net2, images, training=False)
        self.acc.update_state(labels, logits1 + logits2)
        self.acc_net1.update_state(labels, logits1)
        self.acc_net2.update_state(labels, logits2)
        return {m.name: m.result() for m in self.metrics}

    def ssl_step(self, k, batch, mix_lambda, lambda_u, seed, with_unlabeled=True):
        """One DivideMix step of net k on its labeled/unlabeled batch; the other net stays fixed.

        As in the reference, the training net's own no-grad predictions use train mode
        (BatchNorm batch statistics) and the other net eval mode. A batch with strong views
        ("xs1", "xs2", "us1", "us2": AugDesc) mixes those for the gradient step; the co-guessing
        and co-refinement always see x1, x2, u1, u2. With `contrastive_weight` the loss adds
        lambda_c L_C on the two views of the unlabeled batch that are mixed (UNICON's `train`
        contrasts `inputs_u3`, `inputs_u4`, the views it mixes).
        """
        net, peer = self.nets[k], self.nets[1 - k]
        context = tf.distribute.get_replica_context()
        x1, x2 = batch["x1"], batch["x2"]
        labels = tf.one_hot(batch["y"], self.num_classes)

        # Co-guessing (unlabeled) and co-refinement (labeled): targets, no gradient.
        if with_unlabeled:
            u1, u2 = batch["u1"], batch["u2"]
            guessed = ops.co_guess(
                [
                    tf.nn.softmax(float32_logits(net, u1, training=True)),
                    tf.nn.softmax(float32_logits(net, u2, training=True)),
                    tf.nn.softmax(float32_logits(peer, u1, training=False)),
                    tf.nn.softmax(float32_logits(peer, u2, training=False)),
                ],
                self.temperature,
            )
        probs_x1 = tf.nn.softmax(float32_logits(net, x1, training=True))
        probs_x2 = tf.nn.softmax(float32_logits(net, x2, training=True))
        refined = ops.co_refine(labels, batch["w"], probs_x1, probs_x2, self.temperature)

        # AugDesc (the pipeline's strong views): the gradient step mixes the strong views, while
        # the targets above came from the weak ones (their train(): inputs_x3/x4 guess, x/x2 mix)
        strong = "xs1" in batch
        mixed_x = [batch["xs1"], batch["xs2"]] if strong else [x1, x2]
        if with_unlabeled:
            mixed_u = [batch["us1"], batch["us2"]] if strong else [u1, u2]
            inputs = tf.concat(mixed_x + mixed_u, axis=0)
            targets = tf.concat([refined, refined, guessed, guessed], axis=0)
        else:  # every sample judged clean: MixMatch on the labeled views alone
            inputs = tf.concat(mixed_x, axis=0)
            targets = tf.concat([refined, refined], axis=0)
        targets = tf.stop_gradient(targets)
        labeled_rows = 2 * tf.shape(x1)[0]
        rows = tf.shape(inputs)[0]
        permutation = ops.random_permutation(rows, seed)
        labeled_only = self.ssl_rows == "labeled"
        mixed_inputs, mixed_targets = ops.mixup(
            inputs, targets, mix_lambda, permutation, rows=labeled_rows if labeled_only else None
        )

        counts = context.all_reduce("sum", tf.cast(tf.stack([labeled_rows, rows - labeled_rows, rows]), tf.float32))
        global_labeled, global_unlabeled, global_rows = counts[0], counts[1], counts[2]
        replicas = float(context.num_replicas_in_sync)
        with tf.GradientTape() as tape:
            logits = float32_logits(net, mixed_inputs, training=True)
            loss_x = tf.reduce_sum(ops.soft_cross_entropy(logits[:labeled_rows], mixed_targets[:labeled_rows]))
            loss_x = loss_x / global_labeled
            if labeled_only:  # the reference's Clothing1M / WebVision step: L_x + penalty on 2B rows
                loss_u = tf.constant(0.0, tf.float32)
                trained_rows = global_labeled
            else:
                loss_u = tf.reduce_sum(ops.squared_error(logits[labeled_rows:], mixed_targets[labeled_rows:]))
                loss_u = loss_u / tf.maximum(global_unlabeled * self.num_classes, 1.0)
                trained_rows = global_rows
            mean_probs = context.all_reduce("sum", tf.reduce_sum(tf.nn.softmax(logits), axis=0)) / trained_rows
            penalty = self.prior_penalty * ops.uniform_prior_penalty(mean_probs, self._present_classes) / replicas
            loss = loss_x + lambda_u * loss_u + penalty
            contrastive = with_unlabeled and self.contrastive_weight > 0
            if contrastive:  # per replica, over its own 2B' unlabeled views (SimCLR's negatives are batch-local)
                views = self.projections(k, tf.concat(mixed_u, axis=0), training=True)
                half = tf.shape(views)[0] // 2
                loss_c = ops.contrastive_loss(views[:half], views[half:], self.contrastive_temperature) / replicas
                loss = loss + self.contrastive_weight * loss_c
            scaled_loss = self._scale_loss(k, loss)
        self._apply_gradients(k, scaled_loss, tape)
        values = {"loss": loss, "loss_x": loss_x, "loss_u": loss_u, "penalty": penalty}
        if contrastive:
            values["loss_c"] = loss_c
        return values



class StandardModel(_CoTrainedModel):
    """The baseline: one net trained with plain cross-entropy (DivideMix's warm-up step, every
    epoch), sharing weight decay, schedule and evaluation so that only the method differs.
    `compile(optimizer)`; calling the model returns the net's logits."""

    def __init__(self, net, *, num_classes, weight_decay=5e-4, confidence_penalty=False, name="standard", **kwargs):
        super().__init__(
            num_classes=num_classes, weight_decay=weight_decay, confidence_penalty=confidence_penalty, name=name, **kwargs
        )
        self.net1 = net
        self.acc = keras.metrics.SparseCategoricalAccuracy(name="acc")

    @property
    def nets(self):
        return (self.net1,)

    def call(self, images, training=False):
        return float32_logits(self.net1, images, training)

    @property
    def metrics(self):
        return [self.acc]

    def test_step(self, data):
        images, labels = data[0], data[1]
        self.acc.update_state(labels, float32_logits(self.net1, images, training=False))
        return {"acc": self.acc.result()}


def _replica_mean_assigner(strategy, variables):
    """A compiled function setting each replica's copy of `variables` to their mean over replicas."""

    def average():
        context = tf.distribute.get_replica_context()
        means = context.all_reduce("mean", [tf.identity(v.value) for v in variables])  # the local copies
        for variable, mean in zip(variables, means):
            variable.assign(mean)  # aggregation "none": in replica context each replica writes its own copy

    @tf.function
    def sync():
        strategy.run(average)

    return sync


def _per_replica_batches(strategy, dataset):
    """The distributed form of a dataset of global batches: one slice per replica per batch."""
    replicas = strategy.num_replicas_in_sync
    return distribute.distribute(strategy, lambda mine: distribute.split_global_batches(dataset, replicas, mine))
