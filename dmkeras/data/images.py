"""Decoding image files into one uint8 array (used by the folder / csv / clothing1m / webvision
sources of :mod:`dmkeras.data.sources`).

`read_images(paths, image_size)` decodes with TensorFlow (`tf.io.decode_image`, first frame of
animations) in a parallel tf.data map, optionally resizes (bilinear, antialiased) and returns
``(images, kept_mask)``. Problems with the files raise :class:`dmkeras.errors.DmkerasError`.
"""

from __future__ import annotations

import os

import numpy as np

from dmkeras.errors import ConfigError, DmkerasError

__all__ = ["IMAGE_EXTENSIONS", "read_images", "check_image_size", "is_image_file", "FileImages", "check_image_files"]

# Extensions `tf.io.decode_image` reads (matched case-insensitively), as in
# keras.utils.image_dataset_from_directory.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

_BATCH = 64  # images per tf.data batch
_SHOW = 5  # paths named in messages
_GRAY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])  # as tf.image.rgb_to_grayscale


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def check_image_size(image_size) -> tuple[int, int] | None:
    """None, an int (square) or (H, W) of positive ints -> (H, W) or None."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        size = tuple(image_size)
    except TypeError:
        size = ()
    if len(size) != 2 or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in size
    ):
        raise DmkerasError(f"image_size must be (height, width) of positive integers, got {image_size!r}")
    return int(size[0]), int(size[1])


def _report_skipped(dropped: list[str]) -> None:
    if dropped:
        print(f"skipped {len(dropped)} unreadable image{'s' if len(dropped) > 1 else ''}: {_list_paths(dropped)}")


def _list_paths(paths: list[str]) -> str:
    shown = ", ".join(paths[:_SHOW])
    return shown + (f", ... ({len(paths) - _SHOW} more)" if len(paths) > _SHOW else "")


def read_images(paths, image_size=None, channels=None, skip_unreadable=False) -> tuple[np.ndarray, np.ndarray]:
    """Decodes image files into a uint8 array (N_kept, H, W, C).

    image_size: (H, W) to resize every image to (tf.image.resize, bilinear, antialias, then
        rounded to uint8; images already of that size are kept as they are), an int for a
        square, or None: then all images must have the same size.
    channels: 1 or 3 to force grayscale / RGB, or None: 1 channel if every image is grayscale
        (1 channel, or gray + alpha), else 3 (grayscale images repeated, alpha dropped).
    skip_unreadable: drop missing or undecodable files (printing how many once) instead of
        raising DmkerasError.

    Returns (images, kept_mask): kept_mask[i] tells whether paths[i] is in images (in order).
    """
    import tensorflow as tf

    paths = [os.fspath(p) for p in paths]
    size = check_image_size(image_size)
    if channels not in (None, 1, 3):
        raise DmkerasError(f"channels must be None, 1 or 3, got {channels!r}")
    n = len(paths)
    if n == 0:
        raise DmkerasError("no image files to read")

    exists = np.fromiter((os.path.isfile(p) for p in paths), dtype=bool, count=n)
    missing = [paths[i] for i in np.flatnonzero(~exists)]
    if missing and not skip_unreadable:
        raise DmkerasError(
            f"{len(missing)} image file(s) do not exist: {_list_paths(missing)}; "
            "pass skip_unreadable=True to drop them"
        )

    def load(index, path):
        img = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False, dtype=tf.uint8)
        gray = tf.shape(img)[-1] <= 2  # L or LA
        img = tf.cond(gray, lambda: tf.tile(img[..., :1], [1, 1, 3]), lambda: img[..., :3])
        img.set_shape([None, None, 3])
        hw = tf.shape(img)[:2]
        if size is not None:
            def resize():
                out = tf.image.resize(img, size, method="bilinear", antialias=True)
                return tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
            img = tf.cond(tf.reduce_all(hw == size), lambda: img, resize)
            img.set_shape([size[0], size[1], 3])
        return index, img, gray, hw

    todo = np.flatnonzero(exists)
    ds = (
        tf.data.Dataset.from_tensor_slices((todo.astype(np.int64), [paths[i] for i in todo]))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors(log_warning=False)
        .padded_batch(_BATCH)
        .prefetch(2)
    )

    kept = np.zeros(n, dtype=bool)
    order: list[np.ndarray] = []
    chunks: list[np.ndarray] = []  # 1-channel when the whole chunk is grayscale (channels=None)
    all_gray = True
    first = None  # (path, (h, w)) of the first image, for the same-size check
    for index, imgs, gray, hw in ds.as_numpy_iterator():
        if size is None:
            if first is None:
                first = (paths[index[0]], tuple(int(d) for d in hw[0]))
            odd = np.flatnonzero(np.any(hw != first[1], axis=1))
            if odd.size:
                j = int(odd[0])
                raise DmkerasError(
                    f"images have different sizes ({first[1][0]}x{first[1][1]} for {first[0]}, "
                    f"{int(hw[j, 0])}x{int(hw[j, 1])} for {paths[index[j]]}); "
                    "pass image_size=(height, width) to resize them"
                )
        kept[index] = True
        order.append(index)
        if channels == 3:
            chunks.append(imgs)
        elif channels == 1:
            lum = np.round(imgs.astype(np.float32) @ _GRAY_WEIGHTS.astype(np.float32))
            lum = np.clip(lum, 0, 255).astype(np.uint8)
            chunks.append(np.where(gray[:, None, None], imgs[..., 0], lum)[..., np.newaxis])
        elif gray.all():
            chunks.append(np.ascontiguousarray(imgs[..., :1]))
        else:
            all_gray = False
            chunks.append(imgs)

    bad = [paths[i] for i in todo if not kept[i]]
    if bad and not skip_unreadable:
        raise DmkerasError(
            f"{len(bad)} image file(s) could not be decoded (not a PNG, JPEG, BMP or GIF image, or "
            f"damaged): {_list_paths(bad)}; pass skip_unreadable=True to drop them"
        )
    dropped = [p for p, k in zip(paths, kept) if not k]
    _report_skipped(dropped)
    if not chunks:
        raise DmkerasError(f"none of the {n} image files could be read")
    if channels is None and not all_gray:
        chunks = [c if c.shape[-1] == 3 else np.repeat(c, 3, axis=-1) for c in chunks]
    images = np.concatenate(chunks, axis=0)
    index = np.concatenate(order)
    if np.any(np.diff(index) < 0):  # deterministic map keeps the order; be safe anyway
        images = images[np.argsort(index, kind="stable")]
    return images, kept


# ---------------------------------------------------------------------------------------------
# Images left on disk (--stream): listed here, decoded batch by batch in the input pipeline.

_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")  # PNG, JPEG, GIF, BMP


class FileImages:
    """An image split kept on disk: paths plus the size the pipeline decodes them to.

    Behaves like the uint8 array (N, H, W, 3) it stands for where the library only needs its
    shape and length (`shape`, `len`, slicing and index arrays give a smaller FileImages), so a
    SplitData can hold it instead of decoded pixels. Images are always decoded to RGB.

    size: (H, W) the model sees.
    resize_shorter: 0 to resize every image to `size` (then pad+crop augmentation as in memory);
        R > 0 to resize the shorter side to R keeping the aspect ratio, then crop `size`:
        at random for training (the reference's Resize(R) + RandomCrop), centred for testing
        (Resize(R) + CenterCrop).
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, paths, size, resize_shorter: int = 0):
        self.paths = np.asarray([os.fspath(p) for p in paths], dtype=object)
        self.size = check_image_size(size)
        if self.size is None:
            raise ConfigError("images read from disk while training need an image size (image_size=H,W)", ("image_size",))
        if resize_shorter < 0 or (resize_shorter and resize_shorter < max(self.size)):
            raise DmkerasError(
                f"resize_shorter must be 0 or at least the crop size {max(self.size)}, got {resize_shorter}"
            )
        self.resize_shorter = int(resize_shorter)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.size[0], self.size[1], 3)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> "FileImages":
        picked = self.paths[index]
        if not isinstance(picked, np.ndarray):
            raise TypeError("FileImages supports slices and index arrays, not single items")
        return FileImages(picked, self.size, self.resize_shorter)

    def __repr__(self) -> str:
        return f"FileImages({len(self)} files -> {self.size[0]}x{self.size[1]}, resize_shorter={self.resize_shorter})"


def check_image_files(paths, skip_unreadable=False) -> np.ndarray:
    """Cheap up-front check of files that will be decoded later: each exists and starts like a
    PNG, JPEG, GIF or BMP file. Returns the mask of good files; without skip_unreadable a bad
    file raises DmkerasError naming them (a file damaged after its header still fails later, when
    the pipeline decodes it)."""
    paths = [os.fspath(p) for p in paths]
    good = np.zeros(len(paths), dtype=bool)
    missing, foreign = [], []
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            missing.append(path)
            continue
        if head.startswith(_SIGNATURES):
            good[i] = True
        else:
            foreign.append(path)
    if not skip_unreadable:
        if missing:
            raise DmkerasError(
                f"{len(missing)} image file(s) do not exist or cannot be opened: {_list_paths(missing)}; "
                "pass skip_unreadable=True to drop them"
            )
        if foreign:
            raise DmkerasError(
                f"{len(foreign)} file(s) are not PNG, JPEG, GIF or BMP images: {_list_paths(foreign)}; "
                "pass skip_unreadable=True to drop them"
            )
    dropped = missing + foreign
    _report_skipped(dropped)
    return good
