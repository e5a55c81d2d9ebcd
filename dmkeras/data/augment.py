"""Batched, stateless image augmentation and normalisation inside tf.data.

Everything works on whole batches (one op per batch, not per image: small images such as
8x8 digits would otherwise spend their time in per-element overhead) and takes an explicit
seed, so a run is reproducible whatever tf.data's parallelism does.
"""

import dataclasses

import tensorflow as tf

from dmkeras.errors import DmkerasError

AUGMENTATIONS = ("crop", "flip")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Which training-time augmentations to apply.

    crop: zero-pad by `pad` pixels on each side, then crop back to the original size at a random
      offset (the reference's `RandomCrop(32, padding=4)`; padding happens before normalisation,
      so the border is black as in the reference);
    flip: random horizontal flip (wrong for digits or text, right for natural images).
    """

    crop: bool = True
    flip: bool = True
    pad: int = 4

    @classmethod
    def parse(cls, text: str, pad: int) -> "AugmentConfig":
        """From a flag value such as "crop,flip", "crop" or "none"."""
        names = [t.strip() for t in text.split(",") if t.strip()]
        if names == ["none"]:
            names = []
        unknown = sorted(set(names) - set(AUGMENTATIONS))
        if unknown:
            raise DmkerasError(
                f"unknown augmentation {unknown[0]!r}: use a comma list of {', '.join(AUGMENTATIONS)}, or none"
            )
        if pad < 0:
            raise DmkerasError(f"--pad must be >= 0, got {pad}")
        return cls(crop="crop" in names, flip="flip" in names, pad=pad)


def normalize(images_uint8, mean, std):
    """uint8 [B,H,W,C] -> float32 (x / 255 - mean) / std per channel."""
    x = tf.cast(images_uint8, tf.float32) / 255.0
    return (x - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def rows_of_global_batch(shape, seed, rows, **kwargs):
    """Random values for rows [start, start + n) of a global batch of `total` rows.

    `rows` = (start, total). Drawing the whole global batch and slicing it gives every sample the
    same augmentation whichever replica it lands on, so runs on 1 or R replicas see the same data.
    """
    start, total = (tf.cast(r, tf.int32) for r in rows)
    n = shape[0]
    values = tf.random.stateless_uniform([total] + list(shape[1:]), seed=seed, **kwargs)
    return values[start : start + n]


def random_crop(images, pad, seed, rows=None):
    """Pad each image by `pad` zeros and crop it back at its own random offset."""
    if pad == 0:
        return images
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    rows = (0, batch) if rows is None else rows
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = rows_of_global_batch([batch, 2], seed, rows, minval=0, maxval=2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # [B, H]
    cols = offsets[:, 1:] + tf.range(width)[None, :]  # [B, W]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)  # [B, H, W + 2 pad, C]
    return tf.gather(cropped, cols, axis=2, batch_dims=1)  # [B, H, W, C]


def random_flip(images, seed, rows=None):
    """Flip each image left-right with probability 1/2."""
    batch = tf.shape(images)[0]
    flip = rows_of_global_batch([batch], seed, (0, batch) if rows is None else rows) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def augment(images_uint8, config: AugmentConfig, seed, rows=None):
    """Training transform on a uint8 batch; `seed` is a shape-[2] int tensor; `rows` =
    (start, total) places the batch inside its global batch (None: the batch is the global one)."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    x = images_uint8
    if config.crop:
        x = random_crop(x, config.pad, seeds[0], rows)
    if config.flip:
        x = random_flip(x, seeds[1], rows)
    return x
