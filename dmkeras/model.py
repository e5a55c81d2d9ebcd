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
one replica with the whole batch (up to BatchNorm statistics and mixing partners, which stay
per replica).
"""

import keras
import tensorflow as tf

from dmkeras import ops

WARMUP = "warmup"
SEMI_SUPERVISED = "ssl"


class _CoTrainedModel(keras.Model):
    """What DivideMix and the standard baseline share: nets with one optimizer each, the warm-up
    (cross-entropy) step, coupled weight decay and the compiled distributed step functions."""

    def __init__(self, *, num_classes, weight_decay=5e-4, confidence_penalty=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.weight_decay = float(weight_decay)
        self.confidence_penalty = bool(confidence_penalty)
        self._step_functions = {}

    @property
    def nets(self):
        raise NotImplementedError

    def compile(self, *optimizers, **kwargs):
        """One optimizer per net; each is built on, and only ever updates, its own net's weights."""
        if len(optimizers) != len(self.nets):
            raise ValueError(f"{type(self).__name__}.compile takes {len(self.nets)} optimizer(s), got {len(optimizers)}")
        super().compile(**kwargs)
        self.optimizers = tuple(optimizers)
        with self.distribute_strategy.scope():
            for net, optimizer in zip(self.nets, self.optimizers):
                optimizer.build(net.trainable_weights)
        self._step_functions = {}

    def reset_step_functions(self):
        """Forget the compiled steps (after a change of which weights are trainable)."""
        self._step_functions = {}

    # -- per-replica train steps --------------------------------------------------------------------

    def _apply_gradients(self, k, loss, tape):
        """Coupled L2 weight decay, then the net's own optimizer on the net's own weights."""
        net = self.nets[k]
        weights = net.trainable_weights
        grads = tape.gradient(loss, weights)
        # The optimizer sums gradients over replicas, so each replica adds 1/R of the decay term.
        decay = self.weight_decay / tf.distribute.get_replica_context().num_replicas_in_sync
        grads = [g + decay * tf.cast(w, g.dtype) for g, w in zip(grads, weights)]
        self.optimizers[k].apply(grads, weights)

    def warmup_step(self, k, batch):
        """Cross-entropy on a batch of (image, given label) for net k, + the confidence penalty."""
        net = self.nets[k]
        context = tf.distribute.get_replica_context()
        global_rows = context.all_reduce("sum", tf.cast(tf.shape(batch["y"])[0], tf.float32))
        with tf.GradientTape() as tape:
            logits = net(batch["x"], training=True)
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=batch["y"], logits=logits)
            ce_loss = tf.reduce_sum(ce) / global_rows
            loss = ce_loss
            if self.confidence_penalty:
                penalty = tf.reduce_sum(ops.negative_entropy(logits)) / global_rows
                loss = loss + penalty
        self._apply_gradients(k, loss, tape)
        if self.confidence_penalty:
            return {"loss": loss, "ce": ce_loss, "penalty": penalty}
        return {"loss": loss}

    # -- evaluation under any strategy ---------------------------------------------------------------

    def count_correct(self, images, labels):
        """Per-replica counts: correct predictions of the ensemble (sum of logits) and of each net."""
        logits = [net(images, training=False) for net in self.nets]
        labels = tf.cast(labels, tf.int64)

        def correct(z):
            return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, axis=-1), labels), tf.float32))

        counts = {"rows": tf.cast(tf.shape(labels)[0], tf.float32), "acc": correct(tf.add_n(logits))}
        if len(logits) > 1:
            counts.update({f"acc_net{k + 1}": correct(z) for k, z in enumerate(logits)})
        return counts

    def accuracy(self, dataset) -> dict:
        """Accuracy of the ensemble (`acc`) and of each net (`acc_net1`, ...) over (image, label) batches.

        Keras' `evaluate` cannot be used under MirroredStrategy when a batch does not split evenly
        over the replicas (its first-batch build averages the replicas' inputs), so the counts are
        summed here instead.
        """
        strategy = self.distribute_strategy
        if "accuracy" not in self._step_functions:

            @tf.function
            def count(batch):
                per_replica = strategy.run(self.count_correct, args=batch)
                return {name: strategy.reduce("sum", value, axis=None) for name, value in per_replica.items()}

            self._step_functions["accuracy"] = count
        distributed = strategy.experimental_distribute_dataset(dataset)
        # Trace once for the dataset's element_spec (batch dimension None): called on eager batches
        # alone, the function would trace again for a smaller last batch.
        self._step_functions["accuracy"].get_concrete_function(distributed.element_spec)
        totals = {}
        for batch in distributed:
            for name, value in self._step_functions["accuracy"](batch).items():
                totals[name] = totals.get(name, 0.0) + float(value)
        rows = totals.pop("rows", 0.0)
        return {name: value / rows for name, value in totals.items()} if rows else {}

    # -- compiled, distributed steps ------------------------------------------------------------------

    def step_function(self, phase, k, with_unlabeled=True):
        """The compiled step of `phase` for net k: `fn(iterator, **scalars) -> dict of floats`.

        Reads one per-replica batch from a distributed iterator, runs the step on every replica
        and sums the replicas' contributions (each is already normalised by global counts).
        """
        key = (phase, k, with_unlabeled)
        if key not in self._step_functions:
            strategy = self.distribute_strategy

            def reduce(per_replica):
                return {name: strategy.reduce("sum", value, axis=None) for name, value in per_replica.items()}

            if phase == WARMUP:

                @tf.function
                def step(iterator):
                    return reduce(strategy.run(self.warmup_step, args=(k, next(iterator))))

            elif phase == SEMI_SUPERVISED:

                @tf.function
                def step(iterator, mix_lambda, lambda_u, seed):
                    batch = next(iterator)
                    return reduce(
                        strategy.run(
                            self.ssl_step, args=(k, batch, mix_lambda, lambda_u, seed), kwargs={"with_unlabeled": with_unlabeled}
                        )
                    )

            else:
                raise ValueError(f"unknown phase {phase!r}")
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
        name="dividemix",
        **kwargs,
    ):
        super().__init__(
            num_classes=num_classes, weight_decay=weight_decay, confidence_penalty=confidence_penalty, name=name, **kwargs
        )
        self.net1 = net1
        self.net2 = net2
        self.temperature = float(temperature)
        self.mixup_alpha = float(mixup_alpha)
        self.acc = keras.metrics.SparseCategoricalAccuracy(name="acc")
        self.acc_net1 = keras.metrics.SparseCategoricalAccuracy(name="acc_net1")
        self.acc_net2 = keras.metrics.SparseCategoricalAccuracy(name="acc_net2")

    @property
    def nets(self):
        return (self.net1, self.net2)

    def call(self, images, training=False):
        return self.net1(images, training=training) + self.net2(images, training=training)

    @property
    def metrics(self):
        return [self.acc, self.acc_net1, self.acc_net2]

    def test_step(self, data):
        images, labels = data[0], data[1]
        logits1 = self.net1(images, training=False)
        logits2 = self.net2(images, training=False)
        self.acc.update_state(labels, logits1 + logits2)
        self.acc_net1.update_state(labels, logits1)
        self.acc_net2.update_state(labels, logits2)
        return {m.name: m.result() for m in self.metrics}

    def ssl_step(self, k, batch, mix_lambda, lambda_u, seed, with_unlabeled=True):
        """One DivideMix step of net k on its labeled/unlabeled batch; the other net stays fixed.

        As in the reference, the training net's own no-grad predictions use train mode
        (BatchNorm batch statistics) and the other net eval mode.
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
                    tf.nn.softmax(net(u1, training=True)),
                    tf.nn.softmax(net(u2, training=True)),
                    tf.nn.softmax(peer(u1, training=False)),
                    tf.nn.softmax(peer(u2, training=False)),
                ],
                self.temperature,
            )
        probs_x1 = tf.nn.softmax(net(x1, training=True))
        probs_x2 = tf.nn.softmax(net(x2, training=True))
        refined = ops.co_refine(labels, batch["w"], probs_x1, probs_x2, self.temperature)

        if with_unlabeled:
            inputs = tf.concat([x1, x2, u1, u2], axis=0)
            targets = tf.concat([refined, refined, guessed, guessed], axis=0)
        else:  # every sample judged clean: MixMatch on the labeled views alone
            inputs = tf.concat([x1, x2], axis=0)
            targets = tf.concat([refined, refined], axis=0)
        targets = tf.stop_gradient(targets)
        labeled_rows = 2 * tf.shape(x1)[0]
        rows = tf.shape(inputs)[0]
        permutation = ops.random_permutation(rows, seed)
        mixed_inputs, mixed_targets = ops.mixup(inputs, targets, mix_lambda, permutation)

        counts = context.all_reduce("sum", tf.cast(tf.stack([labeled_rows, rows - labeled_rows, rows]), tf.float32))
        global_labeled, global_unlabeled, global_rows = counts[0], counts[1], counts[2]
        replicas = float(context.num_replicas_in_sync)
        with tf.GradientTape() as tape:
            logits = net(mixed_inputs, training=True)
            loss_x = tf.reduce_sum(ops.soft_cross_entropy(logits[:labeled_rows], mixed_targets[:labeled_rows]))
            loss_x = loss_x / global_labeled
            loss_u = tf.reduce_sum(ops.squared_error(logits[labeled_rows:], mixed_targets[labeled_rows:]))
            loss_u = loss_u / tf.maximum(global_unlabeled * self.num_classes, 1.0)
            mean_probs = context.all_reduce("sum", tf.reduce_sum(tf.nn.softmax(logits), axis=0)) / global_rows
            penalty = ops.uniform_prior_penalty(mean_probs) / replicas
            loss = loss_x + lambda_u * loss_u + penalty
        self._apply_gradients(k, loss, tape)
        return {"loss": loss, "loss_x": loss_x, "loss_u": loss_u, "penalty": penalty}



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
        return self.net1(images, training=training)

    @property
    def metrics(self):
        return [self.acc]

    def test_step(self, data):
        images, labels = data[0], data[1]
        self.acc.update_state(labels, self.net1(images, training=False))
        return {"acc": self.acc.result()}
