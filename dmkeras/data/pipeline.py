"""tf.data pipelines for each phase of an epoch, rebuilt every epoch from index plans.

An epoch's order is planned on the host with numpy (which samples go into which batch), and the
heavy work (gather from the in-memory images, augmentation, normalisation) runs inside tf.data.
Plans are plain arrays, so they are cheap to rebuild each epoch and easy to test.

Batches are *global* (as the reference's single-GPU batch); under a strategy with R replicas
each global batch is split into R consecutive slices, one per replica, in the order
`tf.distribute.Strategy.distribute_datasets_from_function` hands elements to replicas. With
several workers, each worker's pipeline is built for its own replicas only (`replicas=`, see
`dmkeras.distribute.distribute`): it gathers and augments only the rows its replicas train on.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from dmkeras.data.augment import AugmentConfig, augment, normalize

AUTOTUNE = tf.data.AUTOTUNE


# ---------------------------------------------------------------------------------------------
# Plans (numpy): which sample indices go into which global batch.


def warmup_plan(num_samples: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One shuffled pass over all samples; the last batch may be smaller (as the reference's loader)."""
    order = rng.permutation(num_samples)
    return [order[i : i + batch_size] for i in range(0, num_samples, batch_size)]


def ssl_plan(labeled: np.ndarray, unlabeled: np.ndarray, batch_size: int, rng: np.random.Generator):
    """One shuffled pass over the labeled set, each batch paired with a full unlabeled batch.

    The unlabeled stream cycles through fresh shuffles as often as needed, so an unlabeled set
    smaller than one batch still fills every batch (its samples then repeat). An empty unlabeled
    set gives empty unlabeled batches; an empty labeled set gives no batches at all.
    Returns a list of (labeled_batch, unlabeled_batch) index pairs.
    """
    labeled_order = rng.permutation(labeled)
    labeled_batches = [labeled_order[i : i + batch_size] for i in range(0, len(labeled_order), batch_size)]
    num_steps = len(labeled_batches)
    if len(unlabeled) == 0:
        return [(b, np.zeros(0, np.int64)) for b in labeled_batches]
    passes = math.ceil(num_steps * batch_size / len(unlabeled))
    stream = np.concatenate([rng.permutation(unlabeled) for _ in range(passes)]) if passes else np.zeros(0, np.int64)
    return [(b, stream[i * batch_size : (i + 1) * batch_size]) for i, b in enumerate(labeled_batches)]


def replica_slices(batch: np.ndarray, num_replicas: int) -> list[np.ndarray]:
    """Split a global batch into `num_replicas` consecutive, nearly equal slices."""
    return np.array_split(np.asarray(batch, np.int64), num_replicas)


def drop_batches_too_small(plan, num_replicas: int, size=len):
    """Under R > 1 replicas, drop a final batch with fewer than R rows: some replica would get
    none, and BatchNorm in training mode cannot normalise an empty batch. Returns (plan, dropped)."""
    if num_replicas > 1 and plan and size(plan[-1]) < num_replicas:
        return plan[:-1], 1
    return plan, 0


def _index_dataset(batches: list[np.ndarray], num_replicas: int, replicas=None) -> tf.data.Dataset:
    """Per-replica elements {"idx", "step", "start", "total"} of global `batches`, in replica order:
    the indices of the replica's slice, the global batch number, where the slice starts in the
    global batch and the global batch size (so augmentation can be drawn per global batch).
    `replicas` (global replica ids, default all): yield only the elements of these replicas."""
    keep = set(range(num_replicas) if replicas is None else replicas)
    slices, meta = [], []
    for step, batch in enumerate(batches):
        start = 0
        for replica, piece in enumerate(replica_slices(batch, num_replicas)):
            if replica in keep:
                slices.append(piece)
                meta.append((step, start, len(batch)))
            start += len(piece)
    lengths = np.array([len(s) for s in slices], np.int64)
    width = max(int(lengths.max()) if len(slices) else 0, 1)
    matrix = np.full((len(slices), width), -1, np.int64)
    for row, s in enumerate(slices):
        matrix[row, : len(s)] = s
    meta = np.array(meta, np.int64).reshape(-1, 3)
    ds = tf.data.Dataset.from_tensor_slices((matrix, lengths, meta))
    return ds.map(lambda row, n, m: {"idx": row[:n], "step": m[0], "start": m[1], "total": m[2]})


# ---------------------------------------------------------------------------------------------
# Datasets.


@dataclasses.dataclass
class ImageBank:
    """Training images held in memory, turned into model inputs by index.

    images: uint8 [N, H, W, C]; mean/std: per-channel normalisation of images scaled to [0, 1].
    """

    images: np.ndarray
    mean: tuple
    std: tuple
    augment_config: AugmentConfig

    def __post_init__(self):
        self._images = tf.constant(self.images)

    def load(self, indices, seed=None, rows=None):
        """Gather `indices`; with a seed, apply the training augmentation; then normalise.
        `rows` = (start, total): where these rows sit in their global batch."""
        batch = tf.gather(self._images, indices)
        if seed is not None:
            batch = augment(batch, self.augment_config, seed, rows)
        return normalize(batch, self.mean, self.std)

    def eval_dataset(self, batch_size: int) -> tf.data.Dataset:
        """All images in order, no augmentation (the reference's test-time transform)."""
        n = len(self.images)
        ds = tf.data.Dataset.range(0, n, batch_size)
        return ds.map(
            lambda start: self.load(tf.range(start, tf.minimum(start + batch_size, n))), num_parallel_calls=AUTOTUNE
        ).prefetch(AUTOTUNE)


def _load_view(bank: ImageBank, part: dict, base_seed: int, view: int):
    """One augmented view of a replica's slice; the seed depends on the global batch and view only."""
    seed = tf.stack([tf.constant(base_seed, tf.int64), part["step"] * 4 + view])
    return bank.load(part["idx"], seed, rows=(part["start"], part["total"]))


def warmup_dataset(bank: ImageBank, labels: np.ndarray, plan, num_replicas: int, seed: int, replicas=None) -> tf.data.Dataset:
    """Per-replica batches {"x", "y"} of a warm-up (plain CE) pass (of `replicas` only, if given)."""
    labels_t = tf.constant(labels, tf.int64)

    def load(part):
        return {"x": _load_view(bank, part, seed, 0), "y": tf.gather(labels_t, part["idx"])}

    ds = _index_dataset(plan, num_replicas, replicas)
    return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def ssl_dataset(
    bank: ImageBank, labels: np.ndarray, clean_prob: np.ndarray, plan, num_replicas: int, seed: int, replicas=None
) -> tf.data.Dataset:
    """Per-replica batches {"x1", "x2", "y", "w", "u1", "u2"} of a semi-supervised pass (of
    `replicas` only, if given).

    x1/x2 and u1/u2 are two augmented views of the labeled and unlabeled samples; y the given
    labels and w the clean probabilities (from the *other* net's division) of the labeled ones.
    """
    labels_t = tf.constant(labels, tf.int64)
    prob_t = tf.constant(clean_prob, tf.float32)
    labeled = _index_dataset([lab for lab, _ in plan], num_replicas, replicas)
    unlabeled = _index_dataset([unl for _, unl in plan], num_replicas, replicas)

    def load(lab, unl):
        return {
            "x1": _load_view(bank, lab, seed, 0),
            "x2": _load_view(bank, lab, seed, 1),
            "y": tf.gather(labels_t, lab["idx"]),
            "w": tf.gather(prob_t, lab["idx"]),
            "u1": _load_view(bank, unl, seed, 2),
            "u2": _load_view(bank, unl, seed, 3),
        }

    ds = tf.data.Dataset.zip((labeled, unlabeled))
    return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def holdout_dataset(images: np.ndarray, labels: np.ndarray, mean, std, batch_size: int) -> tf.data.Dataset:
    """(normalised images, labels) batches for `model.evaluate`."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64))).batch(batch_size)
    return ds.map(lambda x, y: (normalize(x, mean, std), y), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
