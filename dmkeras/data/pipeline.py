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

from dmkeras.data.augment import (
    RESIZED_CROP_ATTEMPTS,
    AugmentConfig,
    augment,
    normalize,
    random_flip,
    resized_crop_boxes,
    resized_crop_draws,
    rows_of_global_batch,
    strong_policy,
    strong_views,
)
from dmkeras.data.images import FileImages

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


def balanced_sample(labels: np.ndarray, num_samples: int, rng: np.random.Generator, num_classes: int | None = None) -> np.ndarray:
    """A random class-balanced subset, as the reference's Clothing1M loader draws every epoch: go
    through the samples in random order and keep one while its (given) class has fewer than
    num_samples / C kept and fewer than num_samples are kept in all. Returns sorted indices."""
    labels = np.asarray(labels, np.int64)
    classes = int(num_classes or labels.max() + 1)
    order = rng.permutation(len(labels))
    ordered = labels[order]
    by_class = np.argsort(ordered, kind="stable")
    first_of_class = np.searchsorted(ordered[by_class], ordered[by_class])
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - first_of_class  # rank of each sample within its class
    return np.sort(order[rank < num_samples / classes][:num_samples])


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


class _Bank:
    """What the in-memory and on-disk banks share: `_views(indices, seeds, rows)` is theirs."""

    mean: tuple
    std: tuple
    augment_config: AugmentConfig

    def load(self, indices, seed=None, rows=None, strong=None):
        """Gather `indices`; with a seed, apply the training augmentation; then normalise.
        `rows` = (start, total): where these rows sit in their global batch; `strong`: a policy
        of `augment.STRONG_POLICIES` applied after it (AugDesc's strong views), None: weak only."""
        return self.load_views(indices, [seed], rows, strong)[0]

    def load_views(self, indices, seeds, rows=None, strong=None):
        """One normalised view of `indices` per seed (None: the test-time transform), through one
        traced function per number of views (and strong policy).

        The pipelines are rebuilt every epoch, and tf.data traces the function of every `map`
        anew: tracing the augmentation graph each time cost about 0.2 s per pass (a quarter of an
        epoch on small data). Calling a function traced once per bank makes each new `map` trace
        only the call. The test-time transform (a seed of None) is traced in place; it is small.
        """
        if any(seed is None for seed in seeds):
            if strong is not None:
                raise ValueError("strong views need a seed")
            return self._views(indices, seeds, rows)
        compiled = self.__dict__.setdefault("_compiled", {})  # this bank's traced functions, made on first use
        key = len(seeds) if strong is None else (len(seeds), strong)  # weak views keep today's key
        views = compiled.get(key)
        if views is None:
            spec = [tf.TensorSpec([None], tf.int64), tf.TensorSpec([len(seeds), 2], tf.int64),
                    tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64)]

            def views(idx, seed_rows, start, total):
                return self._views(idx, tf.unstack(seed_rows), (start, total), strong)

            views = compiled[key] = tf.function(views, input_signature=spec, autograph=False)
        indices = tf.cast(indices, tf.int64)
        start, total = (0, tf.shape(indices, out_type=tf.int64)[0]) if rows is None else rows
        seeds = tf.stack([tf.cast(seed, tf.int64) for seed in seeds])
        return views(indices, seeds, tf.cast(start, tf.int64), tf.cast(total, tf.int64))

    def eval_dataset(self, batch_size: int, indices=None) -> tf.data.Dataset:
        """`indices` (default: all images) in order, no augmentation (the test-time transform)."""
        indices = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        ds = tf.data.Dataset.from_tensor_slices(indices).batch(batch_size)
        return ds.map(self.load, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def _fixed_size_views(self, batch, seeds, rows, strong=None):
        """Views of a uint8 batch of equal-size images: pad + crop / flip per seed (then the
        `strong` policy, if any), normalised."""
        if strong is not None:
            return [normalize(x, self.mean, self.std) for x in strong_views(batch, self.augment_config, strong, seeds, rows)]
        return [
            normalize(batch if seed is None else augment(batch, self.augment_config, seed, rows), self.mean, self.std)
            for seed in seeds
        ]


@dataclasses.dataclass
class ImageBank(_Bank):
    """Training images held in memory, turned into model inputs by index.

    images: uint8 [N, H, W, C]; mean/std: per-channel normalisation of images scaled to [0, 1].
    """

    images: np.ndarray
    mean: tuple
    std: tuple
    augment_config: AugmentConfig

    def __post_init__(self):
        self._images = tf.constant(self.images)

    def __len__(self):
        return len(self.images)

    def _views(self, indices, seeds, rows=None, strong=None):
        return self._fixed_size_views(tf.gather(self._images, indices), seeds, rows, strong)


class FileBank(_Bank):
    """Training images left on disk (`images.FileImages`), decoded batch by batch inside tf.data.

    With `resize_shorter` R, every image is resized to shorter side R and cropped to the input
    size: at a random offset for training views when crop augmentation is on (the reference's
    Resize(R) + RandomCrop on Clothing1M), a random box resized to the input size with
    resized_crop (Resize(R) + RandomResizedCrop, the reference's WebVision at its HEAD), centred
    otherwise (Resize(R) + CenterCrop). Without R, images are resized to the input size and
    augmented like in-memory ones (pad + crop or resized crop, flip).
    A sample's several views (two per labeled / unlabeled sample) share one decode; each view
    draws its own crop.
    """

    def __init__(self, files: FileImages, mean, std, augment_config: AugmentConfig):
        self.files, self.mean, self.std, self.augment_config = files, tuple(mean), tuple(std), augment_config
        self._paths = tf.constant(files.paths.astype(str))
        self._size = files.size

    def __len__(self):
        return len(self.files)

    def _views(self, indices, seeds, rows=None, strong=None):
        paths = tf.gather(self._paths, indices)
        height, width = self._size
        config = self.augment_config
        if not self.files.resize_shorter:  # fixed-size decode, then the in-memory augmentation
            batch = tf.map_fn(
                lambda path: _resize_to(_decode_rgb(path), self._size), paths,
                fn_output_signature=tf.TensorSpec([height, width, 3], tf.uint8),
            )
            return self._fixed_size_views(batch, seeds, rows, strong)
        n = tf.shape(paths)[0]
        rows = (0, n) if rows is None else rows
        split = [None if s is None else tf.random.experimental.stateless_split(s, num=2) for s in seeds]
        resized = [s is not None and config.resized_crop and not config.crop for s in split]  # views with RandomResizedCrop
        # Crop positions as fractions of the free room, drawn per global batch like augment.py does;
        # -1 marks a centred crop (test-time transform, or no crop augmentation).
        where = tf.stack(
            [
                rows_of_global_batch([n, 2], s[0], rows) if s is not None and config.crop else -tf.ones([n, 2])
                for s in split
            ],
            axis=1,
        )  # [B, views, 2]
        # RandomResizedCrop's draws (per global batch too); the boxes need each image's resized size.
        draws = tf.stack(
            [resized_crop_draws(n, s[0], rows) if r else tf.zeros([n, RESIZED_CROP_ATTEMPTS, 4]) for s, r in zip(split, resized)],
            axis=1,
        ) if any(resized) else tf.zeros([n, len(seeds), 0, 4])  # [B, views, attempts, 4]

        def decode(args):
            path, positions, tries = args
            image = _resize_shorter(_decode_rgb(path), self.files.resize_shorter)
            return tf.stack([
                _resized_crop(image, tries[v], self._size) if resized[v] else _crop(image, positions[v], self._size)
                for v in range(len(seeds))
            ])

        views = tf.map_fn(decode, (paths, where, draws), fn_output_signature=tf.TensorSpec([len(seeds), height, width, 3], tf.uint8))
        out = []
        for v, s in enumerate(split):
            x = views[:, v]
            if s is not None and config.flip:
                x = random_flip(x, s[1], rows)
            if strong is not None:  # after the crop and flip, as AugDesc's strong transform
                x = strong_policy(x, strong, tf.random.experimental.stateless_fold_in(seeds[v], 1), rows)
            out.append(normalize(x, self.mean, self.std))
        return out


def _decode_rgb(path):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def _to_uint8(x):
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _resize_to(image, size):
    """Bilinear, antialiased resize to `size` (as images.read_images; same-size images untouched)."""
    same = tf.reduce_all(tf.shape(image)[:2] == size)
    return tf.cond(same, lambda: image, lambda: _to_uint8(tf.image.resize(image, size, antialias=True)))


def _resize_shorter(image, shorter):
    """torchvision's Resize(shorter): shorter side to `shorter`, the other scaled and truncated."""
    hw = tf.cast(tf.shape(image)[:2], tf.float64)
    scale = shorter / tf.reduce_min(hw)
    size = tf.cast(tf.floor(hw * scale + 1e-9), tf.int32)
    size = tf.where(hw == tf.reduce_min(hw), shorter, size)  # the shorter side exactly
    return _resize_to(image, size)


def _crop(image, position, size):
    """Crop `size` from `image`; `position` in [0, 1)^2 picks the offset, negative = centred."""
    room = tf.shape(image)[:2] - tf.constant(size)
    centred = tf.cast(tf.round(tf.cast(room, tf.float32) / 2.0), tf.int32)
    chosen = tf.minimum(tf.cast(tf.floor(position * tf.cast(room + 1, tf.float32)), tf.int32), room)
    offset = tf.where(position < 0, centred, chosen)
    return tf.image.crop_to_bounding_box(image, offset[0], offset[1], size[0], size[1])


def _resized_crop(image, draws, size):
    """torchvision's RandomResizedCrop(size) of one image from its `draws` [attempts, 4]: the box
    of `augment.resized_crop_boxes`, resized to `size` (bilinear, antialiased, as _resize_to)."""
    shape = tf.shape(image)
    top, left, h, w = tf.unstack(resized_crop_boxes(draws, shape[0], shape[1]))
    return _resize_to(tf.image.crop_to_bounding_box(image, top, left, h, w), size)


def make_bank(images, mean, std, augment_config: AugmentConfig):
    """The bank of a split's images: in memory (an array) or on disk (FileImages)."""
    if isinstance(images, FileImages):
        return FileBank(images, mean, std, augment_config)
    return ImageBank(np.asarray(images), mean, std, augment_config)


def _load_views(bank, part: dict, base_seed: int, views, strong=None):
    """Augmented views of a replica's slice; each seed depends on the global batch and view only.

    Weak views take seeds (base, 4 step + v); strong views (a policy name in `strong`) take
    (base, -(4 step + v) - 1), a range no weak view uses, so adding them moves no weak view."""
    offsets = [part["step"] * 4 + v for v in views]
    if strong is not None:
        offsets = [-offset - 1 for offset in offsets]
    seeds = [tf.stack([tf.constant(base_seed, tf.int64), offset]) for offset in offsets]
    return bank.load_views(part["idx"], seeds, rows=(part["start"], part["total"]), strong=strong)


def warmup_dataset(
    bank: ImageBank, labels: np.ndarray, plan, num_replicas: int, seed: int, replicas=None, strong=None
) -> tf.data.Dataset:
    """Per-replica batches {"x", "y"} of a warm-up (plain CE) pass (of `replicas` only, if given);
    `strong`: a strong policy for the warm-up views (AugDesc's SAW), None: weak (the reference)."""
    labels_t = tf.constant(labels, tf.int64)

    def load(part):
        return {"x": _load_views(bank, part, seed, [0], strong)[0], "y": tf.gather(labels_t, part["idx"])}

    ds = _index_dataset(plan, num_replicas, replicas)
    return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def ssl_dataset(
    bank: ImageBank, labels: np.ndarray, clean_prob: np.ndarray, plan, num_replicas: int, seed: int, replicas=None,
    strong=None,
) -> tf.data.Dataset:
    """Per-replica batches {"x1", "x2", "y", "w", "u1", "u2"} of a semi-supervised pass (of
    `replicas` only, if given).

    x1/x2 and u1/u2 are two augmented views of the labeled and unlabeled samples; y the given
    labels and w the clean probabilities (from the *other* net's division) of the labeled ones.
    With `strong` (a policy of `augment.STRONG_POLICIES`, AugDesc), the batches also hold two
    strong views "xs1", "xs2", "us1", "us2" of the same samples: `DivideMixModel.ssl_step` mixes
    those for the gradient step and keeps x1 ... u2 (the weak views, drawn exactly as without
    `strong`) for co-guessing and co-refinement.
    """
    labels_t = tf.constant(labels, tf.int64)
    prob_t = tf.constant(clean_prob, tf.float32)
    labeled = _index_dataset([lab for lab, _ in plan], num_replicas, replicas)
    unlabeled = _index_dataset([unl for _, unl in plan], num_replicas, replicas)

    def load(lab, unl):
        x1, x2 = _load_views(bank, lab, seed, [0, 1])
        u1, u2 = _load_views(bank, unl, seed, [2, 3])
        batch = {"x1": x1, "x2": x2, "y": tf.gather(labels_t, lab["idx"]), "w": tf.gather(prob_t, lab["idx"]), "u1": u1, "u2": u2}
        if strong is not None:
            batch["xs1"], batch["xs2"] = _load_views(bank, lab, seed, [0, 1], strong)
            batch["us1"], batch["us2"] = _load_views(bank, unl, seed, [2, 3], strong)
        return batch

    ds = tf.data.Dataset.zip((labeled, unlabeled))
    return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def holdout_dataset(images, labels: np.ndarray, mean, std, batch_size: int) -> tf.data.Dataset:
    """(normalised images, labels) batches for `model.evaluate` / `model.accuracy`; `images` is
    a uint8 array or a FileImages (then decoded with the test-time transform)."""
    if isinstance(images, FileImages):
        labels_ds = tf.data.Dataset.from_tensor_slices(labels.astype(np.int64)).batch(batch_size)
        bank = FileBank(images, mean, std, AugmentConfig(crop=False, flip=False, pad=0))
        return tf.data.Dataset.zip((bank.eval_dataset(batch_size), labels_ds)).prefetch(AUTOTUNE)
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64))).batch(batch_size)
    return ds.map(lambda x, y: (normalize(x, mean, std), y), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
