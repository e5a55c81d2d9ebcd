"""Batched, stateless image augmentation and normalisation inside tf.data.

Everything works on whole batches (one op per batch, not per image: small images such as
8x8 digits would otherwise spend their time in per-element overhead) and takes an explicit
seed, so a run is reproducible whatever tf.data's parallelism does.
"""

import dataclasses
import math

import tensorflow as tf

from dmkeras.errors import DmkerasError
from dmkeras.input_transform import normalize  # noqa: F401  (the pipelines import it from here)

AUGMENTATIONS = ("crop", "resized_crop", "flip")

RESIZED_CROP_SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults
RESIZED_CROP_RATIO = (3 / 4, 4 / 3)
RESIZED_CROP_ATTEMPTS = 10  # tries before the centred fallback, as torchvision


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Which training-time augmentations to apply.

    crop: zero-pad by `pad` pixels on each side, then crop back to the original size at a random
      offset (the reference's `RandomCrop(32, padding=4)`; padding happens before normalisation,
      so the border is black as in the reference);
    flip: random horizontal flip (wrong for digits or text, right for natural images);
    resized_crop: torchvision's `RandomResizedCrop(size)` with its default scale (0.08, 1) and
      ratio (3/4, 4/3): a random box of 8-100 % of the area and aspect 3/4-4/3, resized
      (bilinear, antialiased) to the input size (with streamed `resize_shorter` images: the
      reference WebVision's Resize(320) + RandomResizedCrop(299); in memory the box is resized
      back to the image size). Exclusive with crop.
    """

    crop: bool = True
    flip: bool = True
    pad: int = 4
    resized_crop: bool = False

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
        if "crop" in names and "resized_crop" in names:
            raise DmkerasError("augmentations crop and resized_crop are exclusive: use one of them")
        if pad < 0:
            raise DmkerasError(f"--pad must be >= 0, got {pad}")
        return cls(crop="crop" in names, flip="flip" in names, pad=pad, resized_crop="resized_crop" in names)


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


def resized_crop_draws(batch, seed, rows=None):
    """The uniform draws of RandomResizedCrop for a batch: [B, attempts, 4] in [0, 1) (area,
    log aspect, top, left of each attempt), drawn per global batch like the other augmentations."""
    return rows_of_global_batch([batch, RESIZED_CROP_ATTEMPTS, 4], seed, (0, batch) if rows is None else rows)


def resized_crop_boxes(draws, height, width, scale=RESIZED_CROP_SCALE, ratio=RESIZED_CROP_RATIO):
    """torchvision's RandomResizedCrop.get_params, all attempts at once: uniform `draws`
    [..., attempts, 4] in [0, 1) -> int32 boxes [..., 4] = (top, left, h, w) inside images of
    `height` x `width` (ints or int tensors broadcastable to draws.shape[:-2]).

    Attempt k: target_area = H W U(scale), aspect = exp(U(log ratio)), w = round(sqrt(area
    aspect)), h = round(sqrt(area / aspect)); it is valid if 0 < w <= W and 0 < h <= H, and then
    top = randint(0, H - h), left = randint(0, W - w) (inclusive; from the draws as floor(u (n + 1))).
    The first valid attempt wins; if none is, the centred box of the whole image with its aspect
    clamped to `ratio` (torchvision's fallback). Rounding is half-to-even as Python's round.
    """
    draws = tf.cast(draws, tf.float64)
    big_h = tf.cast(height, tf.float64)[..., None]  # [..., 1]: broadcast over the attempts
    big_w = tf.cast(width, tf.float64)[..., None]
    target = big_h * big_w * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_lo + (log_hi - log_lo) * draws[..., 1])
    w = tf.round(tf.sqrt(target * aspect))
    h = tf.round(tf.sqrt(target / aspect))
    valid = (w > 0) & (w <= big_w) & (h > 0) & (h <= big_h)  # [..., attempts]
    top = tf.minimum(tf.floor(draws[..., 2] * (big_h - h + 1)), big_h - h)
    left = tf.minimum(tf.floor(draws[..., 3] * (big_w - w + 1)), big_w - w)
    boxes = tf.stack([top, left, h, w], axis=-1)  # [..., attempts, 4]
    first = tf.one_hot(tf.argmax(tf.cast(valid, tf.int32), axis=-1), tf.shape(valid)[-1], dtype=tf.float64)
    chosen = tf.reduce_sum(boxes * first[..., None], axis=-2)  # the first valid attempt (or attempt 0)

    big_h, big_w = big_h[..., 0], big_w[..., 0]
    in_ratio = big_w / big_h
    lo, hi = min(ratio), max(ratio)
    fall_w = tf.where(in_ratio > hi, tf.round(big_h * hi), big_w)
    fall_h = tf.where(in_ratio < lo, tf.round(big_w / lo), big_h)
    fallback = tf.stack([tf.floor((big_h - fall_h) / 2), tf.floor((big_w - fall_w) / 2), fall_h, fall_w], axis=-1)
    chosen = tf.where(tf.reduce_any(valid, axis=-1)[..., None], chosen, fallback)
    return tf.cast(chosen, tf.int32)


def _resize_weights(start, length, in_size, out_size):
    """[B, out_size, in_size] weights resizing the segment [start, start + length) of each row to
    out_size as `tf.image.resize(method="bilinear", antialias=True)` of the cropped segment: a
    triangle kernel widened to the shrink factor when shrinking, renormalised inside the segment."""
    start = tf.cast(start, tf.float64)[:, None, None]
    length = tf.cast(length, tf.float64)[:, None, None]
    step = length / tf.cast(out_size, tf.float64)  # input pixels per output pixel
    radius = tf.maximum(step, 1.0)
    centre = start + (tf.cast(tf.range(out_size), tf.float64)[None, :, None] + 0.5) * step  # [B, out, 1]
    pixel = tf.cast(tf.range(in_size), tf.float64)[None, None, :] + 0.5  # [1, 1, in]
    weights = tf.maximum(1.0 - tf.abs(pixel - centre) / radius, 0.0)
    weights *= tf.cast((pixel > start) & (pixel < start + length), tf.float64)
    return tf.cast(weights / tf.reduce_sum(weights, axis=-1, keepdims=True), tf.float32)


def crop_and_resize_boxes(images, boxes, size):
    """Each image's box (top, left, h, w) resized to `size` (bilinear, antialiased), as a batch:
    two matrix products per image instead of one resize op per image. uint8 in, uint8 out."""
    shape = tf.shape(images)
    wy = _resize_weights(boxes[:, 0], boxes[:, 2], shape[1], size[0])  # [B, out_h, H]
    wx = _resize_weights(boxes[:, 1], boxes[:, 3], shape[2], size[1])  # [B, out_w, W]
    x = tf.einsum("byh,bhwc->bywc", wy, tf.cast(images, tf.float32))
    x = tf.einsum("bxw,bywc->byxc", wx, x)
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def random_resized_crop(images, seed, rows=None, size=None):
    """RandomResizedCrop of each image of a fixed-size batch, resized to `size` (default: the
    image size, the in-memory use)."""
    shape = tf.shape(images)
    height, width = images.shape[1] or shape[1], images.shape[2] or shape[2]
    size = (height, width) if size is None else size
    boxes = resized_crop_boxes(resized_crop_draws(shape[0], seed, rows), height, width)
    out = crop_and_resize_boxes(images, boxes, size)
    static = [images.shape[0]] + [s if isinstance(s, int) else None for s in size] + [images.shape[3]]
    out.set_shape(static)
    return out


def augment(images_uint8, config: AugmentConfig, seed, rows=None):
    """Training transform on a uint8 batch; `seed` is a shape-[2] int tensor; `rows` =
    (start, total) places the batch inside its global batch (None: the batch is the global one)."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    x = images_uint8
    if config.crop:
        x = random_crop(x, config.pad, seeds[0], rows)
    elif config.resized_crop:
        x = random_resized_crop(x, seeds[0], rows)
    if config.flip:
        x = random_flip(x, seeds[1], rows)
    return x
