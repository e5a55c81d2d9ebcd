"""Fine-tune -> export -> serve on an image folder written from the digits (the README's path)."""

import os

import keras
import numpy as np
import tensorflow as tf

from dmkeras import zoo
from tests.helpers import run_module


def _run(*args):
    proc = run_module(*args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_folder_finetune_export_and_serve(tmp_path):
    folder, run, out = tmp_path / "digits_png", tmp_path / "run", tmp_path / "export"
    _run("launch.demo_folder", f"--out={folder}")
    assert sorted(os.listdir(folder)) == [str(d) for d in range(10)]
    keras.utils.set_random_seed(0)
    pretrained = tmp_path / "pretrained.keras"
    zoo.create_model("small_cnn", 10, (8, 8, 1)).save(pretrained)
    before = keras.saving.load_model(pretrained).layers[1].get_weights()[0]
    _run(
        "launch.train", "--flagfile=launch/configs/common_digits.cfg", f"--dataset=folder:{folder}", "--noise_mode=sym",
        "--noise_rate=0.4", f"--weights={pretrained}", "--freeze_epochs=1", "--epochs=1", "--warm_up=1", "--verbose=0",
        f"--workdir={run}",
    )
    trained = keras.saving.load_model(run / "net1.keras")
    # the backbone started from the pretrained file and stayed frozen; only the head trained
    np.testing.assert_array_equal(trained.layers[1].get_weights()[0], before)
    assert not np.array_equal(trained.layers[-1].get_weights()[0], keras.saving.load_model(pretrained).layers[-1].get_weights()[0])

    _run("launch.export", f"--workdir={run}", f"--out={out}")
    served = tf.saved_model.load(str(out))
    image = tf.io.decode_png(tf.io.read_file(str(folder / "7" / "0007.png")))[None]
    probabilities = served.signatures["serving_default"](images=image)["probabilities"].numpy()
    assert probabilities.shape == (1, 10) and abs(probabilities.sum() - 1) < 1e-5
    np.testing.assert_allclose(zoo.load(str(out)).predict(image.numpy(), verbose=0), probabilities, rtol=1e-5, atol=1e-6)
