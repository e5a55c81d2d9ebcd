"""The CoDivide callback: each epoch, divide the training set and rebuild the input pipelines.

At the start of every epoch it decides what each net trains on:

* during warm-up (epoch < warm_up): every net makes one pass over all samples with plain CE;
* afterwards: both nets score every training sample (eval mode, no augmentation; the passes
  split over the replicas, the logits gathered on every worker), each fits its loss GMM (once
  per worker, on identical losses, so every worker makes the same division), and net 1 trains
  on the division made by net 2 while net 2 trains on the division made by net 1 -- both
  divisions computed here, at the start of the epoch, before either net is updated (as the
  reference's main loop does).

The trainer reads `codivide.passes`, runs them in order, and adds `codivide.epoch_logs` (phase,
labeled counts, division quality) to the epoch's logs.
"""

import dataclasses
import logging
import time

import keras
import numpy as np

from dmkeras import division as division_lib
from dmkeras.data import augment as augment_lib
from dmkeras.data import pipeline
from dmkeras.distribute import distribute
from dmkeras.model import SEMI_SUPERVISED, WARMUP

log = logging.getLogger("dmkeras")


@dataclasses.dataclass
class EpochPass:
    """One net's pass over its data in one epoch."""

    net: int  # 0 or 1
    phase: str  # WARMUP or SEMI_SUPERVISED
    dataset: object  # distributed dataset of per-replica batches
    num_steps: int
    num_labeled: int = 0
    num_unlabeled: int = 0
    ramp_iterations: int = 1  # the reference's num_iter = len(labeled) // batch_size + 1

    @property
    def with_unlabeled(self) -> bool:
        return self.num_unlabeled > 0


class CoDivide(keras.callbacks.Callback):
    """Builds each epoch's passes; after warm-up, from the co-divided training set.

    Args:
      bank: the training images (`pipeline.ImageBank`).
      labels: the given (noisy) labels.
      true_labels: the clean labels when known, to log how good each division is.
      num_nets: 2 for DivideMix; 1 for the standard baseline, which only ever warms up.
      warm_up, batch_size, p_threshold, loss_history, eval_batch_size, division, class_floor,
        num_batches: as in `TrainConfig` (division: the strategy of `dmkeras.division.divide`).
      augdesc: AugDesc's variant (`augment.AUGDESC`): which passes get strong views (off: none).

    With num_batches > 0 (the reference's Clothing1M loader), every epoch draws fresh
    class-balanced samples of the training set: a warm-up pass covers num_batches x 2 x
    batch_size images, and each net scores (and divides) num_batches x batch_size images of its
    own; the other net then trains on that division.
    """

    def __init__(
        self,
        bank: pipeline.ImageBank,
        labels: np.ndarray,
        *,
        warm_up: int,
        batch_size: int,
        p_threshold: float = 0.5,
        loss_history: int = 1,
        eval_batch_size: int = 500,
        true_labels=None,
        num_nets: int = 2,
        seed: int = 0,
        division: str = "gmm",
        class_floor: float = 0.0,
        num_classes: int | None = None,
        num_batches: int = 0,
        augdesc: str = "off",
    ):
        super().__init__()
        # (strong policy of the semi-supervised views, of the warm-up views); None = weak only
        self.ssl_strong, self.warmup_strong = augment_lib.augdesc_plan(augdesc)
        self.bank = bank
        self.labels = np.asarray(labels, np.int64)
        self.is_clean = None if true_labels is None else np.asarray(true_labels) == self.labels
        self.warm_up = warm_up if num_nets == 2 else np.inf
        self.batch_size = batch_size
        self.p_threshold = p_threshold
        self.eval_batch_size = eval_batch_size
        self.num_nets = num_nets
        self.seed = seed
        self.division_args = {"strategy": division, "class_floor": class_floor, "num_classes": num_classes}
        self._warned_emptied: set = set()  # classes an emptied-class warning named already
        self.num_classes = num_classes
        self.num_batches = num_batches
        if num_batches and loss_history > 1:
            raise ValueError("loss_history > 1 needs the same samples every epoch; num_batches draws new ones")
        self.histories = [division_lib.LossHistory(loss_history) for _ in range(num_nets)]
        self.divisions = [None] * num_nets  # divisions[k]: made by net k, trains the other net
        self.divided_samples = [None] * num_nets  # which samples divisions[k] covers (None: all)
        self.passes: list[EpochPass] = []
        self.epoch_logs: dict = {}

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def _rng(self, epoch, k):
        # The last entry tags the stream: numpy drops trailing zeros of a seed list, so without it
        # [seed, 0, 0] would replay the label-noise stream default_rng(seed) (trainer.py uses 2).
        return np.random.default_rng([self.seed, epoch, k, 1])

    def _sample(self, epoch, k, size) -> np.ndarray | None:
        """The class-balanced sample of `size` images of net k in this epoch (None: all images)."""
        if not self.num_batches:
            return None
        rng = np.random.default_rng([self.seed, epoch, k, 3])
        return pipeline.balanced_sample(self.labels, size, rng, self.num_classes)

    def clean_masks(self) -> list:
        """For each division, whether each sample it covers has a correct given label (or None)."""
        if self.is_clean is None:
            return [None] * self.num_nets
        return [self.is_clean if s is None else self.is_clean[s] for s in self.divided_samples]

    def _replicas(self) -> int:
        return self.model.distribute_strategy.num_replicas_in_sync

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_logs = {"phase": WARMUP if epoch < self.warm_up else SEMI_SUPERVISED}
        if epoch < self.warm_up:
            self.passes = [self._warmup_pass(epoch, k) for k in range(self.num_nets)]
            return
        started = time.time()
        self.divided_samples = [self._sample(epoch, k, self.num_batches * self.batch_size) for k in range(self.num_nets)]
        if self.division_args["strategy"] == "unicon":
            # UNICON: one selection from both nets' predictions, shared by both nets (on net 1's
            # sample when num_batches draws one)
            self.divided_samples = [self.divided_samples[0]] * self.num_nets
            self.divisions = [self.divide_unicon(self.divided_samples[0])] * self.num_nets
        else:
            self.divisions = [self.divide(k, self.divided_samples[k]) for k in range(self.num_nets)]
        self.passes = [
            self._ssl_pass(epoch, k, self.divisions[1 - k], self.divided_samples[1 - k]) for k in range(self.num_nets)
        ]
        # scoring, GMM and the new pipelines: the part of an epoch that is not training
        self.epoch_logs["codivide_time_s"] = time.time() - started

    # -- division ------------------------------------------------------------------------------------

    def sample_losses(self, k, samples=None) -> np.ndarray:
        """Per-sample CE of net k on `samples` (default: every training sample), in eval mode
        with the test-time transform.

        The forward passes are split over all replicas (of all workers) and the logits gathered
        back in sample order, so every worker gets all of them and makes the same division.
        """
        logits = self.model.predict_logits(k, self.bank.eval_dataset(self.eval_batch_size, samples))
        return division_lib.per_sample_cross_entropy(logits, self.labels if samples is None else self.labels[samples])

    def divide(self, k, samples=None) -> division_lib.Division:
        """Net k's division of `samples` (default: all training samples)."""
        labels = self.labels if samples is None else self.labels[samples]
        raw = self.sample_losses(k) if samples is None else self.sample_losses(k, samples)
        losses = division_lib.min_max_normalize(raw)
        result = division_lib.divide(self.histories[k].add(losses), self.p_threshold, labels=labels, **self.division_args)
        self._log_division(k, result, labels, samples)
        return result

    def divide_unicon(self, samples=None) -> division_lib.Division:
        """UNICON's uniform selection of `samples` (default: all) from both nets' softmax outputs
        (eval mode, test-time transform, as their eval_train loader); logged under both nets."""
        labels = self.labels if samples is None else self.labels[samples]
        probs = []
        for k in range(self.num_nets):
            logits = self.model.predict_logits(k, self.bank.eval_dataset(self.eval_batch_size, samples)).astype(np.float64)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs.append(shifted / shifted.sum(axis=1, keepdims=True))
        result = division_lib.unicon_divide(*probs, labels, num_classes=self.num_classes)
        for k in range(self.num_nets):
            self._log_division(k, result, labels, samples)
        return result

    def _log_division(self, k, result, labels, samples):
        name = f"net{k + 1}"
        self.epoch_logs[f"{name}_labeled"] = int(result.labeled.sum())
        # the class the division serves worst (by given label): a class emptied of labeled samples
        # is then learnt from guessed labels only
        self.epoch_logs[f"{name}_min_class_labeled"] = division_lib.min_class_labeled_fraction(result.labeled, labels, self.num_classes)
        self._warn_emptied_classes(k, result.labeled, labels)
        if samples is not None:
            self.epoch_logs[f"{name}_divided"] = len(samples)
        if self.is_clean is not None:
            is_clean = self.is_clean if samples is None else self.is_clean[samples]
            for key, value in division_lib.division_quality(result, is_clean).items():
                self.epoch_logs[f"{name}_{key}"] = value

    def _warn_emptied_classes(self, k, labeled, labels):
        """Say once per class when a division labels none of a class's samples."""
        counts = np.bincount(labels, minlength=self.num_classes or 0)
        kept = np.bincount(labels[labeled], minlength=len(counts))
        emptied = [c for c in np.flatnonzero((counts > 0) & (kept == 0)) if c not in self._warned_emptied]
        if emptied and self.division_args["strategy"] == "gmm":
            self._warned_emptied.update(emptied)
            log.warning(
                "net %d's division labels no sample of class(es) %s: net %d learns them from guessed labels only "
                "(division=per_class_gmm or class_floor keeps every class in the labeled set)",
                k + 1, ", ".join(map(str, emptied)), 2 - k,
            )

    # -- passes ----------------------------------------------------------------------------------------

    def _warmup_pass(self, epoch, k) -> EpochPass:
        rng = self._rng(epoch, k)
        sample = self._sample(epoch, k, self.num_batches * 2 * self.batch_size)
        if sample is None:
            plan = pipeline.warmup_plan(self.num_samples, 2 * self.batch_size, rng)
        else:
            plan = [sample[b] for b in pipeline.warmup_plan(len(sample), 2 * self.batch_size, rng)]
        plan, _ = pipeline.drop_batches_too_small(plan, self._replicas())
        seed = int(rng.integers(2**62))

        def dataset(replicas):  # each worker builds the elements of its own replicas only
            return pipeline.warmup_dataset(
                self.bank, self.labels, plan, self._replicas(), seed=seed, replicas=replicas, strong=self.warmup_strong
            )

        return EpochPass(net=k, phase=WARMUP, dataset=distribute(self.model.distribute_strategy, dataset), num_steps=len(plan))

    def _ssl_pass(self, epoch, k, division: division_lib.Division, samples=None) -> EpochPass:
        rng = self._rng(epoch, k)
        labeled, unlabeled = division.labeled_indices, division.unlabeled_indices
        clean_prob = division.clean_prob
        if samples is not None:  # the division covers a sample: back to indices of the whole set
            labeled, unlabeled = samples[labeled], samples[unlabeled]
            clean_prob = np.zeros(self.num_samples, np.float32)
            clean_prob[samples] = division.clean_prob
        plan = pipeline.ssl_plan(labeled, unlabeled, self.batch_size, rng)
        plan, dropped = pipeline.drop_batches_too_small(plan, self._replicas(), size=lambda pair: len(pair[0]))
        if dropped:
            log.info("net %d: last labeled batch smaller than the replica count, skipped this epoch", k + 1)
        if not plan:
            log.warning(
                "epoch %d: net %d's division labeled no sample, so net %d has nothing to train on: "
                "its semi-supervised pass is skipped this epoch",
                epoch + 1,
                2 - k,
                k + 1,
            )
        if len(unlabeled) == 0:
            log.warning(
                "epoch %d: net %d's division judged every sample clean: net %d trains on the labeled set alone",
                epoch + 1,
                2 - k,
                k + 1,
            )
        seed = int(rng.integers(2**62))

        def dataset(replicas):  # each worker builds the elements of its own replicas only
            return pipeline.ssl_dataset(
                self.bank, self.labels, clean_prob, plan, self._replicas(), seed=seed, replicas=replicas, strong=self.ssl_strong
            )

        return EpochPass(
            net=k,
            phase=SEMI_SUPERVISED,
            dataset=distribute(self.model.distribute_strategy, dataset),
            num_steps=len(plan),
            num_labeled=len(labeled),
            num_unlabeled=len(unlabeled),
            ramp_iterations=len(labeled) // self.batch_size + 1,
        )


def from_config(config, bank, labels, *, num_classes: int, num_nets: int = 2, true_labels=None,
                warm_up: int | None = None) -> CoDivide:
    """The CoDivide callback of a `dmkeras.config.TrainConfig` over `bank` / `labels` (warm_up overrides config's)."""
    return CoDivide(
        bank,
        labels,
        warm_up=config.optim.warm_up if warm_up is None else warm_up,
        batch_size=config.optim.batch_size,
        p_threshold=config.dividemix.p_threshold,
        loss_history=config.dividemix.loss_history,
        eval_batch_size=config.optim.eval_batch_size,
        true_labels=true_labels,
        num_nets=num_nets,
        seed=config.runtime.seed,
        division=config.dividemix.division,
        class_floor=config.dividemix.class_floor,
        num_classes=num_classes,
        num_batches=config.data.num_batches,
        augdesc=config.data.augdesc,
    )
