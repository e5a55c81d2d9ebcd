"""Tests for dmkeras.zoo and the built-in backbones."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from dmkeras import zoo
from dmkeras.errors import DmkerasError

# Small inputs keep builds / forward passes cheap; param counts do not depend
# on the spatial size.  resnet50 and inception_resnet_v2 are built at the
# smallest input keras.applications allows.
SHAPES = {
    "preact_resnet18": (32, 32, 3),
    "preact_resnet34": (16, 16, 3),
    "mobilenet_v2": (32, 32, 3),
    "small_cnn": (8, 8, 1),
    "mnist_cnn": (28, 28, 1),
    "resnet50": (32, 32, 3),
    "inception_resnet_v2": (75, 75, 3),
}
NUM_CLASSES = 10
# Slow to build (several seconds) and to save / load: built once per module by
# the `built` fixture, and only the .keras round trip is run for them.
BIG = ("inception_resnet_v2", "resnet50")
CHEAP = [n for n in zoo.list_models() if n not in BIG]

# Pinned parameter counts, 10 classes: (trainable, total).
# preact_resnet18: the DivideMix reference PreResNet.ResNet18 (PreActBlock,
#   stem conv-BN-ReLU, BN of the block *input* in bn1, no BN in shortcuts, no
#   final BN) has 11,171,274 parameters in PyTorch (counted by hand from
#   PreResNet.py); 11,173,962 is the post-activation BasicBlock ResNet-18.
#   Keras "total" adds the BN moving mean/variance.
PARAMS = {
    "preact_resnet18": (11_171_274, 11_178_186),
    "preact_resnet34": (21_279_434, 21_293_770),
    "small_cnn": (65_834, 66_218),  # 8x8x1, width 32, batchnorm
}
MOBILENET_PARAMS = {  # 32x32x3, 10 classes: (base total, trainable, total)
    1.0: (2_257_984, 2_236_682, 2_270_794),
    0.35: (410_208, 408_938, 423_018),
}
# keras.applications backbones, 10 classes, at their SHAPES: (base total, trainable, total).
# resnet50: the base is keras' ResNet50 notop (23,587,712, as keras documents);
#   trainable 23,555,082 = torchvision's resnet50 with a 10-class fc (23,528,522)
#   + 26,560 conv biases (every keras conv has a bias, torchvision's none).
#   Head: 2048 * 10 + 10 = 20,490.
# inception_resnet_v2: keras' InceptionResNetV2 notop (54,336,736; its BNs
#   have no gamma).  Head: 1536 * 10 + 10 = 15,370.
BACKBONE_PARAMS = {
    "resnet50": (23_587_712, 23_555_082, 23_608_202),
    "inception_resnet_v2": (54_336_736, 54_291_562, 54_352_106),
}


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


@pytest.fixture(scope="module")
def built():
    """Build each model once per module (inception_resnet_v2 and resnet50 are the slow ones)."""
    cache = {}

    def get(name):
        if name not in cache:
            keras.utils.set_random_seed(0)
            shape = SHAPES.get(name, (32, 32, 3))
            cache[name] = (zoo.create_model(name, NUM_CLASSES, shape), shape)
        return cache[name]

    return get


# --------------------------------------------------------------------- registry


def test_builtin_models_listed():
    assert zoo.list_models() == [
        "inception_resnet_v2",
        "mnist_cnn",
        "mobilenet_v2",
        "preact_resnet18",
        "preact_resnet34",
        "resnet50",
        "small_cnn",
    ]
    assert sorted(SHAPES) == zoo.list_models()


def test_list_models_pattern():
    assert zoo.list_models("preact*") == ["preact_resnet18", "preact_resnet34"]
    assert zoo.list_models("*cnn") == ["mnist_cnn", "small_cnn"]
    assert zoo.list_models("*resnet*") == [
        "inception_resnet_v2",
        "preact_resnet18",
        "preact_resnet34",
        "resnet50",
    ]
    assert zoo.list_models("nothing*") == []


def test_model_info():
    info = zoo.model_info("small_cnn")
    assert info["name"] == "small_cnn"
    assert isinstance(info["description"], str) and info["description"]
    with pytest.raises(DmkerasError, match="unknown model"):
        zoo.model_info("nope")


def test_duplicate_registration_raises():
    with pytest.raises(DmkerasError, match="model 'small_cnn' is already registered"):
        zoo.register("small_cnn", lambda n, s: None)


def test_model_name_with_dot_refused(monkeypatch):
    monkeypatch.setattr(zoo, "_REGISTRY", dict(zoo._REGISTRY))
    with pytest.raises(DmkerasError, match=r"must not contain '\.'"):
        zoo.register("small.cnn", lambda n, s: None)
    assert "small.cnn" not in zoo.list_models()


def test_register_new_model(monkeypatch):
    monkeypatch.setattr(zoo, "_REGISTRY", dict(zoo._REGISTRY))

    def tiny(num_classes, input_shape, units=4):
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(units)(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    zoo.register("tiny", tiny, description="test model")
    assert "tiny" in zoo.list_models()
    assert zoo.model_info("tiny") == {"name": "tiny", "description": "test model"}
    model = zoo.create_model("tiny", 3, (4, 4, 1), units=2)
    assert model(_images((4, 4, 1))).shape == (2, 3)
    with pytest.raises(DmkerasError, match="already registered"):
        zoo.register("tiny", tiny)


def test_unknown_model_lists_available():
    with pytest.raises(DmkerasError) as info:
        zoo.create_model("resnet9000", 10, (32, 32, 3))
    msg = str(info.value)
    assert "resnet9000" in msg
    for name in zoo.list_models():
        assert name in msg


# ------------------------------------------------------------- input checking


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.0, True, "10"])
def test_bad_num_classes(num_classes):
    with pytest.raises(DmkerasError, match="num_classes"):
        zoo.create_model("small_cnn", num_classes, (8, 8, 1))


@pytest.mark.parametrize(
    "shape", [(32, 32), (32, 32, 3, 1), (32, 32, 2), (32, 32, 4), (0, 8, 1), (8.0, 8, 1), 32, None]
)
def test_bad_input_shape(shape):
    with pytest.raises(DmkerasError, match="input_shape"):
        zoo.create_model("small_cnn", 10, shape)


def test_architecture_needs_num_classes_and_input_shape():
    with pytest.raises(DmkerasError, match="'small_cnn' needs num_classes and input_shape"):
        zoo.create_model("small_cnn")
    with pytest.raises(DmkerasError, match="needs input_shape"):
        zoo.create_model("small_cnn", 10)
    with pytest.raises(DmkerasError, match="needs num_classes \\("):
        zoo.create_model("small_cnn", input_shape=(8, 8, 1))


def test_bad_kwarg():
    with pytest.raises(DmkerasError, match="does not accept 'depth'"):
        zoo.create_model("small_cnn", 10, (8, 8, 1), depth=3)


def test_bad_weights_argument():
    with pytest.raises(DmkerasError, match="weights must be"):
        zoo.create_model("small_cnn", 10, (8, 8, 1), weights=3)


def test_too_small_inputs():
    with pytest.raises(DmkerasError, match="at least 4x4"):
        zoo.create_model("small_cnn", 10, (3, 8, 1))
    with pytest.raises(DmkerasError, match="at least 8x8"):
        zoo.create_model("mobilenet_v2", 10, (7, 7, 3))
    with pytest.raises(DmkerasError, match="resnet50 needs inputs of at least 32x32, got 31x64"):
        zoo.create_model("resnet50", 10, (31, 64, 3))
    with pytest.raises(DmkerasError, match="at least 8x8, got 8x7"):
        zoo.create_model("inception_resnet_v2", 10, (8, 7, 1))


@pytest.mark.parametrize("name", BIG)
@pytest.mark.parametrize("momentum", [1.0, -0.1, "0.9", True])
def test_bad_bn_momentum(name, momentum):
    with pytest.raises(DmkerasError, match="bn_momentum"):
        zoo.create_model(name, 10, SHAPES[name], bn_momentum=momentum)


# ------------------------------------------------------------------ building


@pytest.mark.parametrize("name", zoo.list_models())
def test_logits_shape_and_no_softmax(built, name):
    model, shape = built(name)
    assert isinstance(model, keras.Model)
    assert tuple(model.input_shape) == (None, *shape)
    out = np.asarray(model(_images(shape), training=False))
    assert out.shape == (2, NUM_CLASSES)
    assert out.dtype == np.float32
    # logits, not probabilities
    assert not np.allclose(out.sum(axis=1), 1.0)
    for layer in _all_layers(model):
        assert not isinstance(layer, keras.layers.Lambda), layer.name
    # the last layer is a linear Dense
    assert isinstance(model.layers[-1], keras.layers.Dense)
    assert model.layers[-1].get_config()["activation"] == "linear"


def test_small_cnn_other_sizes():
    model = zoo.create_model("small_cnn", 3, (32, 32, 3))
    assert model(_images((32, 32, 3))).shape == (2, 3)
    model = zoo.create_model("small_cnn", 4, (5, 4, 1), width=8)
    assert model(_images((5, 4, 1))).shape == (2, 4)


def test_small_cnn_without_batchnorm():
    model = zoo.create_model("small_cnn", 10, (8, 8, 1), batchnorm=False)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    x = _images((8, 8, 1), n=4)
    # one batch shape both ways: oneDNN picks its kernels by shape, and on an AVX2-only CPU a batch
    # of 4 and one of 2 round differently (2e-8), which is not what this test is about
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)))
    assert model.count_params() <= 100_000


@pytest.mark.parametrize("name", zoo.list_models())
def test_keras_save_load_round_trip(built, name, tmp_path):
    model, shape = built(name)
    assert isinstance(model.get_config(), dict)
    x = _images(shape, seed=1)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(
        np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False))
    )
    # the BN momentum set by the builders survives serialisation
    assert [layer.momentum for layer in _all_layers(loaded) if isinstance(layer, keras.layers.BatchNormalization)] == [
        layer.momentum for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
    ]


# For the two big models the .keras round trip above is enough (the weights-file
# path of create_model is the same code for every model).
@pytest.mark.parametrize("name", CHEAP)
def test_weights_file_round_trip(built, name, tmp_path):
    model, shape = built(name)
    path = tmp_path / f"{name}.weights.h5"
    model.save_weights(path)
    keras.utils.set_random_seed(123)  # a different random init before loading
    again = zoo.create_model(name, NUM_CLASSES, shape, weights=str(path))
    x = _images(shape, seed=2)
    np.testing.assert_array_equal(
        np.asarray(model(x, training=False)), np.asarray(again(x, training=False))
    )


def test_weights_path_object_and_keras_file(tmp_path):
    model = zoo.create_model("small_cnn", 10, (8, 8, 1))
    path = tmp_path / "m.keras"
    model.save(path)
    again = zoo.create_model("small_cnn", 10, (8, 8, 1), weights=path)  # PathLike
    x = _images((8, 8, 1))
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(again(x)))


def test_missing_weights_file(tmp_path):
    path = tmp_path / "nope.weights.h5"
    with pytest.raises(DmkerasError, match="not found") as info:
        zoo.create_model("small_cnn", 10, (8, 8, 1), weights=str(path))
    assert str(path) in str(info.value)


def test_weights_file_class_count_mismatch(tmp_path):
    path = tmp_path / "ten.weights.h5"
    zoo.create_model("small_cnn", 10, (8, 8, 1)).save_weights(path)
    with pytest.raises(DmkerasError) as info:
        zoo.create_model("small_cnn", 5, (8, 8, 1), weights=str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert "(64, 5)" in msg and "(64, 10)" in msg
    assert "\n" not in msg


def test_weights_file_architecture_mismatch(tmp_path):
    path = tmp_path / "bn.weights.h5"
    zoo.create_model("small_cnn", 10, (8, 8, 1)).save_weights(path)
    with pytest.raises(DmkerasError, match="does not fit") as info:
        zoo.create_model("small_cnn", 10, (8, 8, 1), batchnorm=False, weights=str(path))
    assert "\n" not in str(info.value)


def test_corrupt_weights_file(tmp_path):
    path = tmp_path / "junk.weights.h5"
    path.write_text("not hdf5")
    with pytest.raises(DmkerasError, match="does not fit"):
        zoo.create_model("small_cnn", 10, (8, 8, 1), weights=str(path))
    other = tmp_path / "junk.txt"
    other.write_text("x")
    with pytest.raises(DmkerasError, match="not supported"):
        zoo.create_model("small_cnn", 10, (8, 8, 1), weights=str(other))


# ------------------------------------------------------------------ imagenet


def test_imagenet_unsupported_model():
    with pytest.raises(DmkerasError, match="no imagenet weights"):
        zoo.create_model("small_cnn", 10, (8, 8, 1), weights="imagenet")
    with pytest.raises(DmkerasError, match="no imagenet weights"):
        zoo.create_model("preact_resnet18", 10, (32, 32, 3), weights="imagenet")


def test_imagenet_bad_alpha():
    with pytest.raises(DmkerasError, match="alpha"):
        zoo.create_model("mobilenet_v2", 10, (32, 32, 3), weights="imagenet", alpha=0.6)
    with pytest.raises(DmkerasError, match="alpha"):
        zoo.create_model("mobilenet_v2", 10, (32, 32, 3), alpha=-1.0)


def test_imagenet_download_failure(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- offline")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(DmkerasError, match="could not be downloaded") as info:
        zoo.create_model("mobilenet_v2", 10, (32, 32, 3), weights="imagenet")
    assert "local" in str(info.value)


def test_mobilenet_small_gray_input_with_imagenet_layout(monkeypatch):
    """8x8x1 + imagenet: resized to 32x32 and repeated to 3 channels in the model.

    The download is replaced by random init (no network here)."""
    real = keras.applications.MobileNetV2
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        return real(**{**kwargs, "weights": None})

    monkeypatch.setattr(keras.applications, "MobileNetV2", fake)
    model = zoo.create_model("mobilenet_v2", 10, (8, 8, 1), weights="imagenet", alpha=0.35)
    assert seen["weights"] == "imagenet"
    assert seen["input_shape"] == (32, 32, 3)
    assert model.input_shape == (None, 8, 8, 1)
    assert any(isinstance(layer, keras.layers.Resizing) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Concatenate) for layer in model.layers)
    assert model(_images((8, 8, 1))).shape == (2, 10)


def _fake_application(seen):
    """A stand-in for a keras.applications constructor: a tiny conv + BN base."""

    def fake(**kwargs):
        seen.update(kwargs)
        inputs = keras.Input(kwargs["input_shape"])
        x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
        x = keras.layers.BatchNormalization()(x)
        return keras.Model(inputs, x, name=kwargs.get("name", "fake"))

    return fake


APPLICATION = {"resnet50": "ResNet50", "inception_resnet_v2": "InceptionResNetV2"}


@pytest.mark.parametrize(
    "name, shape, base_shape, resized",
    [
        ("resnet50", (32, 40, 1), (32, 40, 3), False),
        ("inception_resnet_v2", (8, 8, 1), (75, 75, 3), True),
        ("inception_resnet_v2", (74, 100, 1), (75, 100, 3), True),
        ("inception_resnet_v2", (75, 75, 1), (75, 75, 3), False),
    ],
)
def test_application_gray_input_with_imagenet_layout(monkeypatch, name, shape, base_shape, resized):
    """Gray + imagenet: repeated to 3 channels (and resized up to 75 for IRv2) in the model.

    The keras.applications model is replaced by a tiny stand-in (no network here;
    the real ones are slow to build)."""
    seen = {}
    monkeypatch.setattr(keras.applications, APPLICATION[name], _fake_application(seen))
    model = zoo.create_model(name, 10, shape, weights="imagenet")
    assert seen["weights"] == "imagenet" and seen["include_top"] is False
    assert seen["input_shape"] == base_shape
    assert model.input_shape == (None, *shape)
    assert model.name == name
    assert any(isinstance(layer, keras.layers.Concatenate) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Resizing) for layer in model.layers) == resized
    bns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == pytest.approx(0.9) for layer in bns)
    assert model(_images(shape)).shape == (2, 10)


@pytest.mark.parametrize("name", BIG)
def test_application_gray_without_imagenet_keeps_one_channel(monkeypatch, name):
    seen = {}
    monkeypatch.setattr(keras.applications, APPLICATION[name], _fake_application(seen))
    shape = (40, 40, 1)
    model = zoo.create_model(name, 10, shape, bn_momentum=0.5)
    assert seen["weights"] is None
    assert seen["input_shape"] == ((40, 40, 1) if name == "resnet50" else (75, 75, 1))
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in model.layers)
    bns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == pytest.approx(0.5) for layer in bns)
    assert model(_images(shape)).shape == (2, 10)


@pytest.mark.parametrize("name", BIG)
def test_application_imagenet_download_failure(monkeypatch, name):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- offline")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(DmkerasError, match=f"{name} imagenet weights could not be downloaded") as info:
        zoo.create_model(name, 10, SHAPES[name], weights="imagenet")
    assert "local" in str(info.value) and "\n" not in str(info.value)


def test_mobilenet_gray_without_imagenet_keeps_one_channel():
    model = zoo.create_model("mobilenet_v2", 10, (8, 8, 1), alpha=0.35)
    assert not any(isinstance(layer, keras.layers.Concatenate) for layer in model.layers)
    assert model(_images((8, 8, 1))).shape == (2, 10)


# ------------------------------------------------------------ pinned counts


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_pinned_param_counts(built, name):
    model, _ = built(name)
    trainable, total = PARAMS[name]
    assert _n_trainable(model) == trainable
    assert model.count_params() == total


@pytest.mark.parametrize("name", sorted(BACKBONE_PARAMS))
def test_pinned_backbone_param_counts(built, name):
    model, shape = built(name)
    assert shape == SHAPES[name]
    base_total, trainable, total = BACKBONE_PARAMS[name]
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert base.name == f"{name}_base"
    assert base.count_params() == base_total
    assert _n_trainable(model) == trainable
    assert model.count_params() == total
    # PyTorch-like BN momentum everywhere (keras.applications would use 0.99)
    bns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(layer.momentum == pytest.approx(0.9) for layer in bns)
    # no resizing at the smallest native input size
    assert not any(isinstance(layer, keras.layers.Resizing) for layer in model.layers)


@pytest.mark.parametrize("alpha", sorted(MOBILENET_PARAMS))
def test_pinned_mobilenet_param_counts(built, alpha):
    if alpha == 1.0:
        model, shape = built("mobilenet_v2")
        assert shape == (32, 32, 3)
    else:
        model = zoo.create_model("mobilenet_v2", 10, (32, 32, 3), alpha=alpha)
    base_total, trainable, total = MOBILENET_PARAMS[alpha]
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert base.count_params() == base_total
    assert _n_trainable(model) == trainable
    assert model.count_params() == total


# ------------------------------------------------ preact resnet vs reference


def test_preact_resnet_matches_reference_layout(built):
    model, _ = built("preact_resnet18")
    # PyTorch-style BatchNorm and initialisers
    bn = model.get_layer("layer1_0_bn1").get_config()
    assert bn["momentum"] == pytest.approx(0.9) and bn["epsilon"] == pytest.approx(1e-5)
    conv = model.get_layer("conv1").get_config()
    assert conv["use_bias"] is False
    init = conv["kernel_initializer"]["config"]
    assert init["scale"] == pytest.approx(1 / 3)
    assert init["mode"] == "fan_in" and init["distribution"] == "uniform"
    # stem conv -> BN -> ReLU, as in the reference ResNet.forward
    assert model.get_layer("bn1").input is model.get_layer("conv1").output
    # the projection shortcut takes the pre-activated input of its block
    assert model.get_layer("layer2_0_shortcut").input is model.get_layer("layer2_0_relu1").output
    # identity shortcut otherwise: as the reference's empty nn.Sequential applied to
    # relu(bn1(x)), the add takes the pre-activated input, not the block input
    add_inputs = model.get_layer("layer2_1_add").input
    assert add_inputs[1] is model.get_layer("layer2_1_relu1").output
    assert add_inputs[1] is not model.get_layer("layer2_0_add").output
    # no projection where channels and stride are unchanged
    names = {layer.name for layer in model.layers}
    assert "layer1_0_shortcut" not in names and "layer2_1_shortcut" not in names
    # stride-2 convs use PyTorch's symmetric padding
    assert isinstance(model.get_layer("layer3_0_conv1_pad"), keras.layers.ZeroPadding2D)
    # no BN between the last block and the pooling
    assert model.get_layer("avgpool").input is model.get_layer("layer4_1_add").output
    # spatial sizes like PyTorch for 32x32 inputs: 32, 16, 8, 4
    assert [model.get_layer(f"layer{i}_1_add").output.shape[1] for i in (1, 2, 3, 4)] == [
        32,
        16,
        8,
        4,
    ]
    # linear bias U(-1/sqrt(512), 1/sqrt(512))
    bias = np.asarray(model.get_layer("linear").bias)
    assert np.all(np.abs(bias) <= 1 / np.sqrt(512))


# ------------------------------------------------------------------- presets


@pytest.fixture
def presets(monkeypatch):
    """An empty preset table for the test, restored afterwards."""
    monkeypatch.setattr(zoo, "_PRESETS", {})
    return zoo._PRESETS


@pytest.fixture
def saved_small_cnn(tmp_path):
    keras.utils.set_random_seed(7)
    model = zoo.create_model("small_cnn", 10, (8, 8, 1), width=8)
    path = tmp_path / "digits.keras"
    model.save(path)
    return model, path


METADATA = {
    "dataset": "digits",
    "noise": {"mode": "sym", "ratio": 0.5},
    "accuracy": 0.93,
}


def test_register_and_create_preset(presets, saved_small_cnn):
    model, path = saved_small_cnn
    calls = []

    def loader():
        calls.append(1)
        return keras.models.load_model(path)

    zoo.register_preset(
        "small_cnn.dividemix_digits_sym50", loader, metadata={**METADATA, "path": str(path)}
    )
    assert calls == []  # loaded on demand only
    assert zoo.list_presets() == ["small_cnn.dividemix_digits_sym50"]
    x = _images((8, 8, 1))
    loaded = zoo.create_model("small_cnn.dividemix_digits_sym50")
    assert calls == [1]
    np.testing.assert_array_equal(
        np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False))
    )
    # matching num_classes / input_shape are accepted (positional or keyword)
    again = zoo.create_model("small_cnn.dividemix_digits_sym50", 10, (8, 8, 1))
    assert again.output_shape == (None, 10)
    zoo.create_model("small_cnn.dividemix_digits_sym50", num_classes=10)
    zoo.create_model("small_cnn.dividemix_digits_sym50", input_shape=[8, 8, 1])
    assert len(calls) == 4
    # presets are not architectures
    assert "small_cnn.dividemix_digits_sym50" not in zoo.list_models()


def test_preset_mismatch(presets, saved_small_cnn):
    _, path = saved_small_cnn
    zoo.register_preset("small_cnn.digits", lambda: keras.models.load_model(path))
    with pytest.raises(DmkerasError) as info:
        zoo.create_model("small_cnn.digits", 5)
    assert str(info.value) == "preset 'small_cnn.digits' outputs 10 classes, not num_classes=5"
    with pytest.raises(DmkerasError) as info:
        zoo.create_model("small_cnn.digits", input_shape=(8, 8, 3))
    assert str(info.value) == (
        "preset 'small_cnn.digits' takes input_shape (8, 8, 1), not (8, 8, 3)"
    )
    with pytest.raises(DmkerasError) as info:
        zoo.create_model("small_cnn.digits", 3, (16, 16, 1))
    msg = str(info.value)
    assert "num_classes=3" in msg and "(16, 16, 1)" in msg and "\n" not in msg
    # the values themselves are checked as for architectures
    with pytest.raises(DmkerasError, match="num_classes must be an int >= 2"):
        zoo.create_model("small_cnn.digits", 1)
    with pytest.raises(DmkerasError, match="input_shape must be"):
        zoo.create_model("small_cnn.digits", input_shape=(8, 8))
    # presets come built: no weights, no builder kwargs
    with pytest.raises(DmkerasError, match="weights= must be None"):
        zoo.create_model("small_cnn.digits", weights=str(path))
    with pytest.raises(DmkerasError, match="takes no builder kwargs, got 'width'"):
        zoo.create_model("small_cnn.digits", width=8)


def test_duplicate_preset_refused(presets):
    zoo.register_preset("small_cnn.a", lambda: None)
    with pytest.raises(DmkerasError, match="preset 'small_cnn.a' is already registered"):
        zoo.register_preset("small_cnn.a", lambda: None)
    assert zoo.list_presets() == ["small_cnn.a"]


def test_preset_for_unknown_architecture_refused(presets):
    with pytest.raises(DmkerasError, match="unknown architecture 'resnet9000'") as info:
        zoo.register_preset("resnet9000.imagenet", lambda: None)
    assert "small_cnn" in str(info.value)
    assert zoo.list_presets() == []


@pytest.mark.parametrize("name", ["small_cnn", "small_cnn.", "small_cnn.a b", ".tag", 3, None])
def test_bad_preset_name(presets, name):
    with pytest.raises(DmkerasError, match="preset"):
        zoo.register_preset(name, lambda: None)
    assert zoo.list_presets() == []


def test_bad_preset_loader_and_metadata(presets):
    with pytest.raises(DmkerasError, match="not callable"):
        zoo.register_preset("small_cnn.a", "model.keras")
    with pytest.raises(DmkerasError, match="callable with no arguments"):
        zoo.register_preset("small_cnn.a", lambda path: None)
    with pytest.raises(DmkerasError, match="metadata .* must be a mapping, got list"):
        zoo.register_preset("small_cnn.a", lambda: None, metadata=[("dataset", "digits")])
    assert zoo.list_presets() == []


def test_preset_loader_failures(presets, tmp_path):
    missing = tmp_path / "gone.keras"
    zoo.register_preset("small_cnn.gone", lambda: keras.models.load_model(missing))
    with pytest.raises(DmkerasError, match="preset 'small_cnn.gone' could not be loaded") as info:
        zoo.create_model("small_cnn.gone")
    assert "\n" not in str(info.value)
    zoo.register_preset("small_cnn.none", lambda: None)
    with pytest.raises(DmkerasError, match="returned NoneType, not a keras.Model"):
        zoo.create_model("small_cnn.none")

    def refuses():
        raise DmkerasError("export directory is incomplete")

    zoo.register_preset("small_cnn.refuses", refuses)
    with pytest.raises(DmkerasError, match="^export directory is incomplete$"):
        zoo.create_model("small_cnn.refuses")


def test_unknown_preset(presets):
    zoo.register_preset("small_cnn.a", lambda: None)
    with pytest.raises(DmkerasError, match="unknown preset 'small_cnn.b'; available presets: small_cnn.a"):
        zoo.create_model("small_cnn.b")
    with pytest.raises(DmkerasError, match="unknown preset 'small_cnn.b'"):
        zoo.preset_info("small_cnn.b")
    with pytest.raises(DmkerasError, match="unknown preset 'resnet9000.x'"):
        zoo.create_model("resnet9000.x", 10, (32, 32, 3))


def test_list_presets_and_preset_info(presets):
    zoo.register_preset("small_cnn.digits_sym50", lambda: None, metadata=METADATA)
    zoo.register_preset("small_cnn.digits_asym40", lambda: None)
    zoo.register_preset("resnet50.clothing1m", lambda: None, metadata={"dataset": "clothing1m"})
    assert zoo.list_presets() == [
        "resnet50.clothing1m",
        "small_cnn.digits_asym40",
        "small_cnn.digits_sym50",
    ]
    assert zoo.list_presets("small_cnn.*") == ["small_cnn.digits_asym40", "small_cnn.digits_sym50"]
    assert zoo.list_presets("*sym50") == ["small_cnn.digits_sym50"]
    assert zoo.list_presets("mobilenet_v2.*") == []
    with pytest.raises(DmkerasError, match="pattern must be a string"):
        zoo.list_presets(None)

    info = zoo.preset_info("small_cnn.digits_sym50")
    assert info == METADATA
    # a copy: neither the registrant's dict nor the caller's changes leak in
    info["noise"]["ratio"] = 0.0
    METADATA_COPY = zoo.preset_info("small_cnn.digits_sym50")
    assert METADATA_COPY["noise"]["ratio"] == 0.5
    assert zoo.preset_info("small_cnn.digits_asym40") == {}


def test_no_builtin_presets():
    assert zoo.list_presets() == []


def test_load_delegates_to_export(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(zoo.export, "load", lambda directory: seen.append(directory) or "model")
    assert zoo.load(tmp_path) == "model"
    assert seen == [tmp_path]
