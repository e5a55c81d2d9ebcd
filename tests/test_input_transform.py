"""Pretrained weights carry their input transform (dmkeras.input_transform), and a mismatch is refused."""

import json

import keras
import numpy as np
import pytest

from dmkeras import input_transform, zoo
from dmkeras.data.augment import normalize
from dmkeras.errors import DmkerasError
from tests.helpers import random_images

DATA_MEAN, DATA_STD = (0.6959, 0.6537, 0.6371), (0.3113, 0.3192, 0.3214)  # Clothing1M's


def test_imagenet_weights_get_their_own_transform():
    caffe = input_transform.choose("auto", "resnet50", "imagenet", DATA_MEAN, DATA_STD)
    assert caffe.name == "caffe" and "imagenet weights of resnet50" in caffe.source
    np.testing.assert_allclose(np.asarray(caffe.mean) * 255, [123.68, 116.779, 103.939])  # RGB order
    np.testing.assert_allclose(np.asarray(caffe.std) * 255, [1, 1, 1])
    for arch in ("mobilenet_v2", "inception_resnet_v2"):  # keras' "tf" mode: x / 127.5 - 1
        assert input_transform.choose("auto", arch, "imagenet", DATA_MEAN, DATA_STD).mean == (0.5, 0.5, 0.5)
    assert input_transform.choose("auto", "resnet50", "imagenet:/some/file.h5", DATA_MEAN, DATA_STD).name == "caffe"
    # random initialisation: the data set's own statistics
    own = input_transform.choose("auto", "resnet50", None, DATA_MEAN, DATA_STD)
    assert own.name == "dataset" and own.mean == DATA_MEAN and own.std == DATA_STD
    # grey images into a 3-channel ImageNet net (gray_to_rgb): the channels' mean
    grey = input_transform.choose("auto", "mobilenet_v2", "imagenet", (0.3,), (0.2,))
    assert grey.mean == (0.5,) and grey.std == (0.5,)


def test_a_transform_other_than_the_weights_own_is_refused():
    with pytest.raises(DmkerasError, match=r"input_transform=dataset would feed the nets dataset .*imagenet weights of resnet50 were trained with caffe"):
        input_transform.choose("dataset", "resnet50", "imagenet", DATA_MEAN, DATA_STD)
    with pytest.raises(DmkerasError, match="input_transform=torch"):
        input_transform.choose("torch", "resnet50", "imagenet", DATA_MEAN, DATA_STD)
    assert input_transform.choose("caffe", "resnet50", "imagenet", DATA_MEAN, DATA_STD).name == "caffe"  # the same one
    # no weights: any named transform is the user's choice
    assert input_transform.choose("torch", "resnet50", None, DATA_MEAN, DATA_STD).mean == (0.485, 0.456, 0.406)


def test_a_net_of_a_run_directory_keeps_the_transform_of_that_run(tmp_path):
    transform = {"name": "dataset", "mean": [0.2], "std": [0.3], "source": "the training set"}
    (tmp_path / "dataset.json").write_text(json.dumps({"mean": [0.2], "std": [0.3], "input_transform": transform}))
    net = str(tmp_path / "net1.keras")
    kept = input_transform.choose("auto", "small_cnn", net, (0.7,), (0.1,))  # fine-tuning on other data
    assert kept.mean == (0.2,) and kept.std == (0.3,)
    with pytest.raises(DmkerasError, match="were trained with dataset \\(mean 0.2, std 0.3\\)"):
        input_transform.choose("dataset", "small_cnn", net, (0.7,), (0.1,))
    # an export records it in its model card
    export = tmp_path / "export"
    export.mkdir()
    (export / "model_card.json").write_text(json.dumps({"dataset": {"mean": [0.4], "std": [0.5]}}))
    assert input_transform.choose("auto", "small_cnn", str(export / "net1.keras"), (0.7,), (0.1,)).mean == (0.4,)
    # a bare weights file says nothing: the data's own
    bare = tmp_path / "elsewhere"
    bare.mkdir()
    assert input_transform.choose("auto", "small_cnn", str(bare / "w.weights.h5"), (0.7,), (0.1,)).mean == (0.7,)


def test_resnet50_imagenet_weights_take_rgb_with_the_caffe_transform(resnet50_imagenet_file):
    """Our net on RGB images under the caffe transform computes what keras' ResNet-50 computes on
    keras' own preprocess_input (BGR, mean-subtracted): the first convolution's input channels are
    reversed when the weights load."""
    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(include_top=False, weights=resnet50_imagenet_file, input_shape=(32, 32, 3))
    ours = zoo.create_model("resnet50", 10, (32, 32, 3), weights=f"imagenet:{resnet50_imagenet_file}")
    transform = input_transform.choose("auto", "resnet50", f"imagenet:{resnet50_imagenet_file}", DATA_MEAN, DATA_STD)
    images = random_images(np.random.default_rng(0), 4, (32, 32, 3))
    expected = reference(keras.applications.resnet50.preprocess_input(images.astype(np.float32)), training=False)
    got = ours.get_layer("resnet50_base")(normalize(images, transform.mean, transform.std), training=False)
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4 * scale)
    # without the channel reversal the same input gives something else
    unflipped = zoo.create_model("resnet50", 10, (32, 32, 3), weights=None)
    unflipped.get_layer("resnet50_base").set_weights(reference.get_weights())
    other = unflipped.get_layer("resnet50_base")(normalize(images, transform.mean, transform.std), training=False)
    assert np.abs(np.asarray(other) - np.asarray(expected)).max() > 1e-2 * scale


def test_missing_or_foreign_imagenet_file_is_one_clear_error(tmp_path):
    with pytest.raises(DmkerasError, match="ImageNet weights file not found"):
        zoo.create_model("resnet50", 10, (32, 32, 3), weights=f"imagenet:{tmp_path / 'none.h5'}")
    small = tmp_path / "small.weights.h5"
    zoo.create_model("small_cnn", 10, (32, 32, 3)).save_weights(small)
    with pytest.raises(DmkerasError, match="does not fit the base"):
        zoo.create_model("resnet50", 10, (32, 32, 3), weights=f"imagenet:{small}")
