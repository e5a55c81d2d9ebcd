"""Batched, stateless image augmentation and normalisation inside tf.data.

Everything works on whole batches (one op per batch, not per image: small images such as
8x8 digits would otherwise spend their time in per-element overhead) and takes an explicit
seed, so a run is reproducible whatever tf.data's parallelism does.
"""

import dataclasses
import math

import tensorflow as tf

from dmkeras.config import AUGMENTATIONS, parse_augment  # noqa: F401  (AUGMENTATIONS: re-exported)
from dmkeras.errors import ConfigError, DmkerasError
from dmkeras.input_transform import normalize  # noqa: F401  (the pipelines import it from here)

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
        names = parse_augment(text)  # its ConfigError names augment; launch/ shows --augment
        if pad < 0:
            raise ConfigError(f"pad must be >= 0, got {pad}", ("pad",))
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


# ---------------------------------------------------------------------------------------------
# Strong augmentation (AugDesc, Nishi et al., CVPR 2021): a policy of photometric and geometric
# ops applied after the weak crop + flip, as their `transform_strong_10` (RandomCrop, flip, then
# AutoAugment's CIFAR-10 policy) and `transform_strong_randaugment_10` (then RandAugment).
#
# Written here in batched, stateless TF ops on uint8 images rather than with
# `keras.layers.RandAugment` (Keras 3.15): that layer draws from a stateful SeedGenerator (its
# call takes no seed, so a tf.data map cannot give it our per-global-batch seeds: two passes of
# the same seeded pipeline gave different images here) and picks its ops once per batch
# (`layer_idxes` of shape (num_ops,)), where the policies pick per image. Every draw below goes
# through `rows_of_global_batch`, so a sample's strong view is the same on 1 or R replicas.
#
# Each op maps float32 images in [0, 255] and a per-row value to images; PIL's definitions
# (ImageEnhance, ImageOps, Image.transform), which both original policies call, are followed up
# to PIL's half-pixel and rounding conventions; geometric ops interpolate bilinearly.

STRONG_POLICIES = ("autoaugment", "randaugment")
AUGDESC = ("off", "ws", "ws_saw", "ws_randaugment")
"""AugDesc variants: off (weak views only, today's pipeline); ws: strong views (AutoAugment's
CIFAR-10 policy) feed the gradient step, weak ones the co-guessing / co-refinement, weak warm-up
(the paper's AugDesc-WS, "WAW"); ws_saw: the same with a strong warm-up (AugDesc-WS.SAW);
ws_randaugment: ws with RandAugment (one op, as their AugDesc-WS.RandAug.n1m6) instead."""


def augdesc_plan(name: str):
    """(strong policy or None for the semi-supervised views, strong policy or None for warm-up)."""
    if name not in AUGDESC:
        raise DmkerasError(f"augdesc must be one of {', '.join(AUGDESC)}, got {name!r}")
    return {
        "off": (None, None),
        "ws": ("autoaugment", None),
        "ws_saw": ("autoaugment", "autoaugment"),
        "ws_randaugment": ("randaugment", None),
    }[name]


def _blend(degenerate, images, factor):
    """PIL's ImageEnhance: degenerate + factor (image - degenerate), clipped to [0, 255]."""
    return tf.clip_by_value(degenerate + factor[:, None, None, None] * (images - degenerate), 0.0, 255.0)


def _grey(images):
    """PIL's L conversion (ITU-R 601-2 luma) for RGB, the image itself for one channel."""
    if images.shape[-1] == 3:
        return tf.reduce_sum(images * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    return images


def _brightness(x, v):
    return _blend(tf.zeros_like(x), x, v)


def _color(x, v):
    return _blend(tf.broadcast_to(_grey(x), tf.shape(x)), x, v)


def _contrast(x, v):
    mean = tf.floor(tf.reduce_mean(_grey(x), axis=[1, 2, 3], keepdims=True) + 0.5)  # PIL: int(mean + 0.5)
    return _blend(tf.broadcast_to(mean, tf.shape(x)), x, v)


def _sharpness(x, v):
    """Blend with PIL's SMOOTH filter (3x3, centre 5, others 1, /13); the border keeps its pixels."""
    channels = x.shape[-1]
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smooth = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], "SAME")  # its zero-padded border is not used
    size = tf.shape(x)
    inner = tf.pad(tf.ones([1, size[1] - 2, size[2] - 2, 1]), [[0, 0], [1, 1], [1, 1], [0, 0]])  # not the border
    degenerate = tf.where(inner > 0, tf.round(smooth), x)
    return _blend(degenerate, x, v)


def _posterize(x, bits):
    step = tf.pow(2.0, 8.0 - tf.round(bits))[:, None, None, None]  # keep the top `bits` bits
    return tf.floor(x / step) * step


def _solarize(x, threshold):
    return tf.where(x >= threshold[:, None, None, None], 255.0 - x, x)  # PIL: i < threshold kept


def _invert(x, _):
    return 255.0 - x


def _autocontrast(x, _):
    """PIL's autocontrast (cutoff 0): each channel stretched from [min, max] to [0, 255]."""
    lo = tf.reduce_min(x, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(x, axis=[1, 2], keepdims=True)
    scale = 255.0 / tf.maximum(hi - lo, 1.0)
    return tf.where(hi > lo, tf.clip_by_value(tf.floor((x - lo) * scale), 0.0, 255.0), x)


def _equalize(x, _):
    """PIL's equalize per channel: lut[i] = (step // 2 + #pixels below i) // step with step =
    (#pixels - #pixels of the highest level present) // 255; unchanged when step is 0."""
    shape = tf.shape(x)
    batch, channels = shape[0], x.shape[-1]
    values = tf.cast(x, tf.int32)
    flat = tf.reshape(tf.transpose(values, [0, 3, 1, 2]), [batch, channels, -1])  # [B, C, HW]
    ids = (tf.range(batch)[:, None, None] * channels + tf.range(channels)[None, :, None]) * 256 + flat
    hist = tf.math.unsorted_segment_sum(tf.ones_like(flat), ids, batch * channels * 256)
    hist = tf.reshape(hist, [batch, channels, 256])
    total = tf.reduce_sum(hist, axis=-1, keepdims=True)
    highest = 255 - tf.argmax(tf.reverse(tf.cast(hist > 0, tf.int32), axis=[-1]), axis=-1, output_type=tf.int32)
    last = tf.gather(hist, highest[..., None], batch_dims=2)
    step = (total - last) // 255
    below = tf.cumsum(hist, axis=-1, exclusive=True)
    lut = tf.minimum((step // 2 + below) // tf.maximum(step, 1), 255)
    lut = tf.where(step > 0, lut, tf.range(256)[None, None, :])
    out = tf.gather(lut, flat, batch_dims=2)  # [B, C, HW]
    return tf.transpose(tf.reshape(tf.cast(out, tf.float32), [batch, channels, shape[1], shape[2]]), [0, 2, 3, 1])


def _affine(x, matrices, fill):
    """PIL's Image.transform(AFFINE): output (x, y) samples input (a x + b y + c, d x + e y + f)."""
    shape = tf.shape(x)
    # PIL maps pixel centres (x + 1/2, y + 1/2); TF maps pixel indices: shift the offsets to match
    a, b, c, d, e, f = tf.unstack(matrices, axis=1)
    c, f = c + 0.5 * (a + b - 1.0), f + 0.5 * (d + e - 1.0)
    transforms = tf.stack([a, b, c, d, e, f, tf.zeros_like(a), tf.zeros_like(a)], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=shape[1:3], fill_value=float(fill),
        interpolation="BILINEAR", fill_mode="CONSTANT",
    )


def _geometric(kind, fill):
    def op(x, v):
        one, zero = tf.ones_like(v), tf.zeros_like(v)
        height, width = tf.cast(tf.shape(x)[1], tf.float32), tf.cast(tf.shape(x)[2], tf.float32)
        if kind == "shear_x":
            rows = [one, v, zero, zero, one, zero]
        elif kind == "shear_y":
            rows = [one, zero, zero, v, one, zero]
        elif kind == "translate_x":  # v: a fraction of the width
            rows = [one, zero, v * width, zero, one, zero]
        elif kind == "translate_y":
            rows = [one, zero, zero, zero, one, v * height]
        else:  # rotate by v degrees counter-clockwise about the centre, as PIL's Image.rotate
            a = v * (math.pi / 180.0)
            cx, cy = width / 2.0, height / 2.0
            cos, sin = tf.cos(a), tf.sin(a)
            rows = [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy]
        return _affine(x, tf.stack(rows, axis=1), fill)

    return op


def _identity(x, _):
    return x


# The ops, by index; a policy draws an index and a value per row. Fill of the geometric ops:
# 128 in AutoAugment (their fillcolor), 0 in RandAugment (PIL's default).
_OP_NAMES = ("identity", "autocontrast", "equalize", "invert", "brightness", "color", "contrast", "sharpness",
             "posterize", "solarize", "rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_PHOTOMETRIC = {"identity": _identity, "autocontrast": _autocontrast, "equalize": _equalize, "invert": _invert,
                "brightness": _brightness, "color": _color, "contrast": _contrast, "sharpness": _sharpness,
                "posterize": _posterize, "solarize": _solarize}


def _ops(fill):
    return [_PHOTOMETRIC[name] if name in _PHOTOMETRIC else _geometric(name, fill) for name in _OP_NAMES]


def _apply_ops(x, op_index, value, ops):
    """x with each row's op applied (op_index -1: none). Each op runs on the rows that picked it
    only (gathered, then scattered back): running all 15 on the whole batch cost ~70 ms per slot
    for 64 CIFAR images inside tf.data, and a tf.cond skipping unpicked ops was slower still
    (each If runs its branch as a separate function call there)."""
    for k, op in enumerate(ops):
        rows = tf.where(tf.equal(op_index, k))[:, 0]
        x = tf.tensor_scatter_nd_update(x, rows[:, None], op(tf.gather(x, rows), tf.gather(value, rows)))
    return x


# AutoAugment's CIFAR-10 policy (Cubuk et al., CVPR 2019; AugDesc's autoaugment.py CIFAR10Policy):
# 25 sub-policies of two (probability, op, magnitude index 0-9) each; one sub-policy per image.
_CIFAR10_POLICY = """
0.1 invert 7 0.2 contrast 6 | 0.7 rotate 2 0.3 translate_x 9 | 0.8 sharpness 1 0.9 sharpness 3
0.5 shear_y 8 0.7 translate_y 9 | 0.5 autocontrast 8 0.9 equalize 2 | 0.2 shear_y 7 0.3 posterize 7
0.4 color 3 0.6 brightness 7 | 0.3 sharpness 9 0.7 brightness 9 | 0.6 equalize 5 0.5 equalize 1
0.6 contrast 7 0.6 sharpness 5 | 0.7 color 7 0.5 translate_x 8 | 0.3 equalize 7 0.4 autocontrast 8
0.4 translate_y 3 0.2 sharpness 6 | 0.9 brightness 6 0.2 color 8 | 0.5 solarize 2 0.0 invert 3
0.2 equalize 0 0.6 autocontrast 0 | 0.2 equalize 8 0.6 equalize 4 | 0.9 color 9 0.6 equalize 6
0.8 autocontrast 4 0.2 solarize 8 | 0.1 brightness 3 0.7 color 0 | 0.4 solarize 5 0.9 autocontrast 3
0.9 translate_y 9 0.7 translate_y 9 | 0.9 autocontrast 2 0.8 solarize 3 | 0.8 equalize 8 0.1 invert 3
0.7 translate_y 9 0.9 autocontrast 1
"""


def _autoaugment_magnitude(name, index):
    """(magnitude, whether a random sign applies) of AutoAugment's ranges (linspace over 10 levels)."""
    level = index / 9.0
    if name in ("shear_x", "shear_y"):
        return 0.3 * level, True
    if name in ("translate_x", "translate_y"):
        return (150.0 / 331.0) * level, True  # a fraction of the image size
    if name == "rotate":
        return 30.0 * level, False  # their rotate_with_fill: always counter-clockwise
    if name in ("color", "contrast", "sharpness", "brightness"):
        return 0.9 * level, True  # enhance(1 + magnitude * sign)
    if name == "posterize":
        return float(round(8 - 4 * level)), False  # bits
    if name == "solarize":
        return 256.0 - 256.0 * level, False  # threshold
    return 0.0, False


def _policy_table():
    """[25, 2] arrays: op index, probability, magnitude, signed (1.0 / 0.0), and the factor flag."""
    subs = [s.split() for s in _CIFAR10_POLICY.replace("\n", " | ").split("|") if s.strip()]
    ops, probs, mags, signed, enhance = [], [], [], [], []
    for sub in subs:
        row = [(float(sub[i]), sub[i + 1], int(sub[i + 2])) for i in (0, 3)]
        ops.append([_OP_NAMES.index(name) for _, name, _ in row])
        probs.append([p for p, _, _ in row])
        mags.append([_autoaugment_magnitude(name, idx)[0] for _, name, idx in row])
        signed.append([float(_autoaugment_magnitude(name, idx)[1]) for _, name, idx in row])
        enhance.append([float(name in ("color", "contrast", "sharpness", "brightness")) for _, name, _ in row])
    return [tf.constant(a) for a in (ops, probs, mags, signed, enhance)]


def _autoaugment_draws(batch, seed, rows):
    """[B, 5] uniforms: sub-policy, apply op 1, apply op 2, sign 1, sign 2."""
    return rows_of_global_batch([batch, 5], seed, rows)


def _autoaugment_apply(images_uint8, draws):
    ops_t, probs_t, mags_t, signed_t, enhance_t = _policy_table()
    count = len(_policy_rows())
    policy = tf.minimum(tf.cast(draws[:, 0] * count, tf.int32), count - 1)
    x = tf.cast(images_uint8, tf.float32)
    ops = _ops(fill=128)
    for slot in range(2):
        sign = tf.where(draws[:, 3 + slot] < 0.5, -1.0, 1.0)
        mag = tf.gather(mags_t[:, slot], policy)
        mag = tf.where(tf.gather(signed_t[:, slot], policy) > 0, mag * sign, mag)
        value = tf.where(tf.gather(enhance_t[:, slot], policy) > 0, 1.0 + mag, mag)
        chosen = tf.where(draws[:, 1 + slot] < tf.gather(probs_t[:, slot], policy), tf.gather(ops_t[:, slot], policy), -1)
        x = _apply_ops(x, chosen, value, ops)
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def autoaugment_cifar10(images_uint8, seed, rows=None):
    """AutoAugment's CIFAR-10 policy on a uint8 batch: each image draws one of the 25 sub-policies
    and applies each of its two ops with the op's probability (seeded per global batch)."""
    batch = tf.shape(images_uint8)[0]
    return _autoaugment_apply(images_uint8, _autoaugment_draws(batch, seed, (0, batch) if rows is None else rows))


def _policy_rows():
    return [s for s in _CIFAR10_POLICY.replace("\n", " | ").split("|") if s.strip()]


# RandAugment as AugDesc's randaugment.py (FixMatch's variant): n ops drawn with replacement from
# 14, each with a value uniform in its range (the magnitude m is not used), then Cutout of a
# square up to half the width, filled with (125, 123, 114).
_RANDAUGMENT = (("autocontrast", 0, 1), ("brightness", 0.05, 0.95), ("color", 0.05, 0.95), ("contrast", 0.05, 0.95),
                ("equalize", 0, 1), ("identity", 0, 1), ("posterize", 4, 8), ("rotate", -30, 30),
                ("sharpness", 0.05, 0.95), ("shear_x", -0.3, 0.3), ("shear_y", -0.3, 0.3), ("solarize", 0, 256),
                ("translate_x", -0.3, 0.3), ("translate_y", -0.3, 0.3))
CUTOUT_FILL = (125.0, 123.0, 114.0)


def _cutout(x, draws):
    """Their CutoutAbs: side v = u * 0.5 * W, corner (max(0, x0 - v/2), max(0, y0 - v/2)) for a
    uniform centre, the square's pixels up to the corner + v inclusive (PIL's rectangle)."""
    shape = tf.shape(x)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    side = draws[:, 0] * 0.5 * width
    x0 = tf.floor(tf.maximum(0.0, draws[:, 1] * width - side / 2.0))
    y0 = tf.floor(tf.maximum(0.0, draws[:, 2] * height - side / 2.0))
    cols = tf.range(width)[None, :]
    rows = tf.range(height)[None, :]
    in_x = (cols >= x0[:, None]) & (cols <= tf.minimum(width, x0 + side)[:, None])
    in_y = (rows >= y0[:, None]) & (rows <= tf.minimum(height, y0 + side)[:, None])
    inside = (in_y[:, :, None] & in_x[:, None, :]) & (side > 0)[:, None, None]
    fill = tf.constant(CUTOUT_FILL if x.shape[-1] == 3 else (sum(CUTOUT_FILL) / 3.0,))
    return tf.where(inside[..., None], fill, x)


def _randaugment_draws(batch, seed, rows, num_ops=1):
    """[B, 2 num_ops + 3] uniforms: (op, value) per op, then Cutout's size and centre."""
    return rows_of_global_batch([batch, 2 * num_ops + 3], seed, rows)


def _randaugment_apply(images_uint8, draws, num_ops=1):
    index = tf.constant([_OP_NAMES.index(name) for name, _, _ in _RANDAUGMENT])
    lo = tf.constant([float(lo) for _, lo, _ in _RANDAUGMENT])
    hi = tf.constant([float(hi) for _, _, hi in _RANDAUGMENT])
    x = tf.cast(images_uint8, tf.float32)
    ops = _ops(fill=0)
    for slot in range(num_ops):
        pick = tf.minimum(tf.cast(draws[:, 2 * slot] * len(_RANDAUGMENT), tf.int32), len(_RANDAUGMENT) - 1)
        value = tf.gather(lo, pick) + (tf.gather(hi, pick) - tf.gather(lo, pick)) * draws[:, 2 * slot + 1]
        value = tf.where(tf.gather(index, pick) == _OP_NAMES.index("posterize"), tf.floor(value), value)  # int(v)
        x = _apply_ops(x, tf.gather(index, pick), value, ops)
    x = _cutout(x, draws[:, 2 * num_ops:])
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def randaugment(images_uint8, seed, rows=None, num_ops=1):
    """RandAugment on a uint8 batch: `num_ops` ops per image, then Cutout (seeded per global batch)."""
    batch = tf.shape(images_uint8)[0]
    draws = _randaugment_draws(batch, seed, (0, batch) if rows is None else rows, num_ops)
    return _randaugment_apply(images_uint8, draws, num_ops)


_POLICIES = {"autoaugment": (_autoaugment_draws, _autoaugment_apply), "randaugment": (_randaugment_draws, _randaugment_apply)}


def strong_policy(images_uint8, policy: str, seed, rows=None):
    """`policy` (one of STRONG_POLICIES) on a uint8 batch, seeded per global batch."""
    if policy == "autoaugment":
        return autoaugment_cifar10(images_uint8, seed, rows)
    if policy == "randaugment":
        return randaugment(images_uint8, seed, rows)
    raise DmkerasError(f"unknown strong augmentation policy {policy!r}: use one of {', '.join(STRONG_POLICIES)}")


def strong_augment(images_uint8, config: AugmentConfig, policy: str, seed, rows=None):
    """AugDesc's strong transform: the weak one (`augment`), then `policy`, each from its own half
    of `seed` (the crop and flip of a strong view are drawn apart from any weak view's)."""
    return strong_views(images_uint8, config, policy, [seed], rows)[0]


def strong_views(images_uint8, config: AugmentConfig, policy: str, seeds, rows=None):
    """`strong_augment` of one batch for each seed, with the policy run once on all the views
    stacked: the same images (every op is per image, every draw per view and global row), for
    a fraction of the fixed cost of its ~30 ops inside tf.data."""
    if policy not in _POLICIES:
        raise DmkerasError(f"unknown strong augmentation policy {policy!r}: use one of {', '.join(STRONG_POLICIES)}")
    draw, apply = _POLICIES[policy]
    batch = tf.shape(images_uint8)[0]
    rows = (0, batch) if rows is None else rows
    weak, draws = [], []
    for seed in seeds:
        halves = tf.random.experimental.stateless_split(seed, num=2)
        weak.append(augment(images_uint8, config, halves[0], rows))
        draws.append(draw(batch, halves[1], rows))
    return tf.split(apply(tf.concat(weak, axis=0), tf.concat(draws, axis=0)), len(seeds), axis=0)
