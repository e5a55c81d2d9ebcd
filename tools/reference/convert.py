"""Keras <-> PyTorch weights of the parity nets, as dicts of numpy arrays (numpy only).

Importable without PyTorch and without TensorFlow: the Keras side is only touched through a
model object handed in (`model.get_layer(name).set_weights(...)`, `layer.get_weights()`).

Layouts
-------
PyTorch ``state_dict`` (what `torch_dividemix` nets hold), for every layer ``prefix``:

* ``Conv2d``: ``prefix.weight`` (out, in, kh, kw) [OIHW], ``prefix.bias`` (out,) when it has one;
* ``Linear``: ``prefix.weight`` (out, in), ``prefix.bias`` (out,);
* ``BatchNorm2d``: ``prefix.weight`` (gamma), ``prefix.bias`` (beta), ``prefix.running_mean``,
  ``prefix.running_var`` (``num_batches_tracked`` is left out: with a fixed momentum of 0.1 it
  is never read).

Keras (dmkeras' builders): ``Conv2D`` kernel (kh, kw, in, out) [HWIO] (+ bias), ``Dense`` kernel
(in, out) + bias, ``BatchNormalization`` ``[gamma, beta, moving_mean, moving_variance]``.

Names
-----
``preact_resnet18`` (``dmkeras/backbones/preact_resnet.py`` <- reference ``PreResNet.ResNet18``)::

    conv1 <-> conv1, bn1 <-> bn1, linear <-> linear,
    layer{s}.{i}.bn1 / conv1 / bn2 / conv2 <-> layer{s}_{i}_bn1 / _conv1 / _bn2 / _conv2,
    layer{s}.{i}.shortcut.0 <-> layer{s}_{i}_shortcut      (the 1x1 projection, where it exists)

``small_cnn`` (``dmkeras/backbones/small_cnn.py`` <- `torch_dividemix.SmallCNN`)::

    block1a.conv / block1a.bn <-> block1a_conv / block1a_bn  (and block1b, block2a, block2b),
    logits <-> logits
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
import zlib

import numpy as np

ARCHS = ("preact_resnet18", "small_cnn")
BN_KEYS = ("weight", "bias", "running_mean", "running_var")

_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # PreResNet.ResNet: planes, first stride
_SMALL_UNITS = ("block1a", "block1b", "block2a", "block2b")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One weighted layer: torch module prefix, kind ("conv", "bn", "linear") and shapes."""

    prefix: str
    kind: str
    out_features: int
    in_features: int = 0
    kernel: int = 0  # conv kernel size
    bias: bool = False  # conv: has a bias (linear always has one)

    @property
    def keras_name(self) -> str:
        return keras_name(self.prefix)


def layer_specs(arch, num_classes, in_channels=3, width=8, batchnorm=True, num_blocks=(2, 2, 2, 2)):
    """The weighted layers of `arch`, in the order of the torch module's state_dict."""
    if arch == "preact_resnet18":
        specs = [Layer("conv1", "conv", 64, in_channels, 3), Layer("bn1", "bn", 64)]
        in_planes = 64
        for s, ((planes, stride), blocks) in enumerate(zip(_STAGES, num_blocks), start=1):
            for i in range(blocks):
                block_stride = stride if i == 0 else 1
                p = f"layer{s}.{i}"
                specs += [
                    Layer(f"{p}.bn1", "bn", in_planes),
                    Layer(f"{p}.conv1", "conv", planes, in_planes, 3),
                    Layer(f"{p}.bn2", "bn", planes),
                    Layer(f"{p}.conv2", "conv", planes, planes, 3),
                ]
                if block_stride != 1 or in_planes != planes:
                    specs.append(Layer(f"{p}.shortcut.0", "conv", planes, in_planes, 1))
                in_planes = planes
        specs.append(Layer("linear", "linear", num_classes, in_planes))
        return specs
    if arch == "small_cnn":
        specs, channels = [], in_channels
        for unit, filters in zip(_SMALL_UNITS, (width, width, 2 * width, 2 * width)):
            specs.append(Layer(f"{unit}.conv", "conv", filters, channels, 3, bias=not batchnorm))
            if batchnorm:
                specs.append(Layer(f"{unit}.bn", "bn", filters))
            channels = filters
        specs.append(Layer("logits", "linear", num_classes, channels))
        return specs
    raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")


# -- names ------------------------------------------------------------------------------------------


def keras_name(prefix: str) -> str:
    """Keras layer name of a torch module prefix ("layer2.0.shortcut.0" -> "layer2_0_shortcut")."""
    if prefix.endswith(".shortcut.0"):
        prefix = prefix[: -len(".0")]
    return prefix.replace(".", "_")


_BLOCK = re.compile(r"^layer(\d+)_(\d+)_(bn1|conv1|bn2|conv2|shortcut)$")
_UNIT = re.compile(r"^(block\d+[a-z])_(conv|bn)$")


def torch_prefix(name: str) -> str:
    """Torch module prefix of a Keras layer name (the inverse of `keras_name`)."""
    m = _BLOCK.match(name)
    if m:
        stage, index, part = m.groups()
        return f"layer{stage}.{index}." + ("shortcut.0" if part == "shortcut" else part)
    m = _UNIT.match(name)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    return name


# -- layouts ---------------------------------------------------------------------------------------


def conv_to_keras(w):
    """OIHW -> HWIO."""
    return np.ascontiguousarray(np.transpose(np.asarray(w), (2, 3, 1, 0)))


def conv_to_torch(k):
    """HWIO -> OIHW."""
    return np.ascontiguousarray(np.transpose(np.asarray(k), (3, 2, 0, 1)))


def _prefixes(torch_dict):
    """Module prefixes of a state dict, in first-seen order."""
    seen = {}
    for key in torch_dict:
        prefix, _, _ = key.rpartition(".")
        seen.setdefault(prefix, None)
    return list(seen)


def torch_to_keras(torch_dict) -> dict:
    """{keras layer name: list of arrays in Keras' get_weights() order}."""
    out = {}
    for prefix in _prefixes(torch_dict):
        if prefix + ".running_mean" in torch_dict:
            arrays = [torch_dict[f"{prefix}.{k}"] for k in BN_KEYS]
        else:
            w = np.asarray(torch_dict[prefix + ".weight"])
            kernel = conv_to_keras(w) if w.ndim == 4 else np.ascontiguousarray(w.T)
            arrays = [kernel] + ([torch_dict[prefix + ".bias"]] if prefix + ".bias" in torch_dict else [])
        out[keras_name(prefix)] = [np.asarray(a, np.float32) for a in arrays]
    return out


def set_keras_weights(model, torch_dict) -> None:
    """Put a torch-layout state dict into a dmkeras Keras model (every weighted layer, checked)."""
    per_layer = torch_to_keras(torch_dict)
    weighted = {layer.name for layer in model.layers if layer.weights}
    missing = weighted - set(per_layer)
    extra = set(per_layer) - weighted
    if missing or extra:
        raise ValueError(f"layers without weights in the dict: {sorted(missing)}; unknown layers: {sorted(extra)}")
    for name, arrays in per_layer.items():
        layer = model.get_layer(name)
        shapes = [tuple(w.shape) for w in layer.get_weights()]
        given = [a.shape for a in arrays]
        if shapes != given:
            raise ValueError(f"layer {name}: Keras shapes {shapes}, converted {given}")
        layer.set_weights(arrays)


def keras_to_torch(model) -> dict:
    """A dmkeras Keras model's weights as a torch-layout state dict (numpy arrays, the model's dtype)."""
    out = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if not layer.weights:
            continue
        arrays = [np.asarray(a) for a in layer.get_weights()]  # float32, or float64 for a float64 net
        prefix = torch_prefix(layer.name)
        if kind == "BatchNormalization":
            for key, a in zip(BN_KEYS, arrays):
                out[f"{prefix}.{key}"] = a
        elif kind == "Conv2D":
            out[prefix + ".weight"] = conv_to_torch(arrays[0])
            if len(arrays) > 1:
                out[prefix + ".bias"] = arrays[1]
        elif kind == "Dense":
            out[prefix + ".weight"] = np.ascontiguousarray(arrays[0].T)
            out[prefix + ".bias"] = arrays[1]
        else:
            raise ValueError(f"layer {layer.name}: no conversion for {kind}")
    return out


# -- deterministic initial weights -------------------------------------------------------------------


def reference_init(arch, seed, num_classes=10, in_channels=None, width=8, batchnorm=True) -> dict:
    """Deterministic initial weights in torch layout, from ``numpy.random.default_rng(seed)``.

    Conv / linear weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the bound of PyTorch's
    default (``kaiming_uniform_(a=sqrt(5))`` for weights, the same bound for biases). BatchNorm
    is randomised too, so that eval mode (running statistics) and gamma/beta are tested
    non-trivially: gamma U(0.5, 1.5), beta U(-0.2, 0.2), running_mean U(-0.2, 0.2),
    running_var U(0.5, 2). Drawn layer by layer in state_dict order, float64 -> float32.
    """
    if in_channels is None:
        in_channels = 3 if arch == "preact_resnet18" else 1
    rng = np.random.default_rng(seed)
    out = {}

    def uniform(lo, hi, shape):
        return rng.uniform(lo, hi, size=shape).astype(np.float32)

    for spec in layer_specs(arch, num_classes, in_channels, width, batchnorm):
        p = spec.prefix
        if spec.kind == "bn":
            n = spec.out_features
            out[p + ".weight"] = uniform(0.5, 1.5, n)
            out[p + ".bias"] = uniform(-0.2, 0.2, n)
            out[p + ".running_mean"] = uniform(-0.2, 0.2, n)
            out[p + ".running_var"] = uniform(0.5, 2.0, n)
        elif spec.kind == "conv":
            fan_in = spec.in_features * spec.kernel * spec.kernel
            bound = 1.0 / np.sqrt(fan_in)
            out[p + ".weight"] = uniform(-bound, bound, (spec.out_features, spec.in_features, spec.kernel, spec.kernel))
            if spec.bias:
                out[p + ".bias"] = uniform(-bound, bound, spec.out_features)
        else:
            bound = 1.0 / np.sqrt(spec.in_features)
            out[p + ".weight"] = uniform(-bound, bound, (spec.out_features, spec.in_features))
            out[p + ".bias"] = uniform(-bound, bound, spec.out_features)
    return out


# -- digests of large state dicts -------------------------------------------------------------------

DIGEST_ENTRIES = 256


def digest_indices(name: str, size: int, entries: int = DIGEST_ENTRIES) -> np.ndarray:
    """A fixed subset of flat indices of tensor `name` (seeded by the name, sorted)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.sort(rng.choice(size, size=min(entries, size), replace=False)).astype(np.int64)


def digest(torch_dict, entries: int = DIGEST_ENTRIES) -> dict:
    """A small summary of a state dict: conv kernels (4-D) as `entries` fixed entries plus their
    float64 sum and L2 norm (``name@values``, ``name@sum``, ``name@l2``); every other tensor
    (BatchNorm, linear, biases) in full."""
    out = {}
    for name, value in torch_dict.items():
        a = np.asarray(value)
        if a.ndim == 4:
            flat = a.reshape(-1)
            out[name + "@values"] = flat[digest_indices(name, flat.size, entries)]
            out[name + "@sum"] = np.array(flat.astype(np.float64).sum())
            out[name + "@l2"] = np.array(np.sqrt(np.square(flat.astype(np.float64)).sum()))
        else:
            out[name] = a
    return out


# -- files -----------------------------------------------------------------------------------------


def save_npz(path, arrays: dict) -> None:
    """A compressed .npz with fixed timestamps and key order, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            array = np.asarray(arrays[key])  # (np.ascontiguousarray would make scalars 1-D)
            np.lib.format.write_array(buffer, np.array(array, order="C", copy=True), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def load_npz(path) -> dict:
    """Every array of an .npz, loaded (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def section(arrays: dict, name: str) -> dict:
    """The entries ``name/...`` of a fixture, with the prefix removed."""
    start = name + "/"
    return {key[len(start):]: value for key, value in arrays.items() if key.startswith(start)}
