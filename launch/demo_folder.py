"""Write scikit-learn's digits as an image folder (one sub-folder per class), to try the
fine-tuning path on files:

    python -m launch.demo_folder --out=data/digits_png [--size=16]
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("out", "data/digits_png", "folder to create (one sub-folder per digit)")
flags.DEFINE_integer("size", 8, "side of the written PNGs (the 8x8 digits are upscaled)")


def main(argv):
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * 255 / 16).astype(np.uint8)[..., None]
    size = flags.FLAGS.size
    if size != 8:
        images = tf.cast(tf.round(tf.image.resize(images, (size, size), method="nearest")), tf.uint8).numpy()
    for i, (image, label) in enumerate(zip(images, digits.target)):
        folder = os.path.join(flags.FLAGS.out, str(label))
        os.makedirs(folder, exist_ok=True)
        tf.io.write_file(os.path.join(folder, f"{i:04d}.png"), tf.io.encode_png(image))
    print(f"wrote {len(images)} PNG images ({size}x{size}, grayscale) to {flags.FLAGS.out}/<digit>/")


if __name__ == "__main__":
    app.run(main)
