"""The model registry: build a backbone by name, returning logits.

Unlike timm / keras-hub, nothing registers itself on import: this module
imports the backbone modules explicitly and fills its table below.

    >>> from dmkeras import zoo
    >>> zoo.list_models()
    ['inception_resnet_v2', 'mnist_cnn', 'mobilenet_v2', 'preact_resnet18', 'preact_resnet34', 'resnet50', 'small_cnn']
    >>> model = zoo.create_model("small_cnn", num_classes=10, input_shape=(8, 8, 1))

Every model maps float32, already normalised, NHWC images to logits (no
softmax).  A builder is called as ``builder(num_classes, input_shape, **kwargs)``
and must return a Functional ``keras.Model``; builders whose signature has a
``weights`` parameter are the ones that can be given ``weights="imagenet"``.

Presets (keras-hub style) are named, ready-made models such as trained
checkpoints: ``register_preset("small_cnn.dividemix_digits_sym50", loader,
metadata={...})`` makes ``create_model("small_cnn.dividemix_digits_sym50")``
return ``loader()``.  The part of a preset name before the first dot is its
architecture, which must be registered; model names therefore have no dots.
No presets are built in.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import numbers
import os
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import keras

from dmkeras import checks, export
from dmkeras.backbones.inception_resnet_v2 import inception_resnet_v2
from dmkeras.backbones.mobilenet_v2 import mobilenet_v2
from dmkeras.backbones.preact_resnet import preact_resnet18, preact_resnet34
from dmkeras.backbones.resnet50 import resnet50
from dmkeras.backbones.small_cnn import mnist_cnn, small_cnn
from dmkeras.errors import DmkerasError

__all__ = [
    "register",
    "create_model",
    "list_models",
    "model_info",
    "register_export",
    "register_preset",
    "list_presets",
    "preset_info",
    "load",
]


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., keras.Model]
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, builder: Callable[..., keras.Model], *, description: str = "") -> None:
    """Add ``builder`` to the registry under ``name``.

    ``builder(num_classes, input_shape, **kwargs)`` must return a Functional
    ``keras.Model`` producing logits.  A name can be registered only once and
    cannot contain a dot (dots separate architecture and tag in preset names).
    """
    if not isinstance(name, str) or not name:
        raise DmkerasError(f"model name must be a non-empty string, got {name!r}")
    if "." in name:
        raise DmkerasError(f"model name {name!r} must not contain '.' (reserved for presets)")
    if not callable(builder):
        raise DmkerasError(f"builder for model '{name}' is not callable: {builder!r}")
    if name in _REGISTRY:
        raise DmkerasError(f"model '{name}' is already registered")
    _REGISTRY[name] = _Entry(name=name, builder=builder, description=str(description))


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching the fnmatch ``pattern``."""
    if not isinstance(pattern, str):
        raise DmkerasError(f"model name pattern must be a string, got {pattern!r}")
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def _entry(name) -> _Entry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise DmkerasError(
            f"unknown model {name!r}; available models: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def model_info(name: str) -> dict:
    """``{"name": ..., "description": ...}`` for a registered model."""
    entry = _entry(name)
    return {"name": entry.name, "description": entry.description}


def _check_num_classes(num_classes) -> int:
    return checks.check_num_classes(num_classes, minimum=2)


def _check_input_shape(input_shape) -> tuple[int, int, int]:
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = None
    if (
        dims is None
        or len(dims) != 3
        or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in dims)
        or any(d < 1 for d in dims)
    ):
        raise DmkerasError(
            f"input_shape must be 3 positive ints (height, width, channels), got {input_shape!r}"
        )
    if dims[2] not in (1, 3):
        raise DmkerasError(f"input_shape channels must be 1 or 3, got {dims[2]} in {dims!r}")
    return tuple(int(d) for d in dims)


def _check_kwargs(entry: _Entry, kwargs: dict) -> None:
    try:
        params = inspect.signature(entry.builder).parameters
    except (TypeError, ValueError):  # builtins / C callables: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in list(params.items())[2:]
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and n != "weights"
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise DmkerasError(
            f"model '{entry.name}' does not accept {', '.join(map(repr, unknown))}; "
            f"accepted kwargs: {', '.join(accepted) or 'none'}"
        )


def _accepts_weights(entry: _Entry) -> bool:
    try:
        return "weights" in inspect.signature(entry.builder).parameters
    except (TypeError, ValueError):
        return False


def _summarise_load_error(exc: BaseException) -> str:
    """One line out of keras' (very long, multi-line) load_weights error."""
    text = str(exc)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    obj = re.search(r"object <\w+ name=([^,>]+)", text)
    if shapes:
        where = f"layer '{obj.group(1)}' " if obj else ""
        return f"{where}has shape {shapes.group(1)} but the file holds {shapes.group(2)}"
    count = re.search(r"(Layer '[^']+' expected \d+ variables, but received \d+ variables)", text)
    if count:
        return count.group(1)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first if len(first) <= 300 else first[:297] + "..."


def _load_weights_file(model: keras.Model, name: str, path: str) -> None:
    if not os.path.isfile(path):
        raise DmkerasError(f"weights file not found: {path}")
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        raise DmkerasError(
            f"weights file {path} does not fit model '{name}': {_summarise_load_error(exc)}"
        ) from exc


def create_model(
    name: str,
    num_classes: int | None = None,
    input_shape=None,
    weights: str | os.PathLike | None = None,
    **kwargs,
) -> keras.Model:
    """Build registered model ``name`` mapping NHWC float32 images to logits.

    Args:
        name: a name from :func:`list_models` (an architecture), or a preset
            name ``"arch.tag"`` from :func:`list_presets`.
        num_classes: number of logits, >= 2.  Required for an architecture;
            optional for a preset, where it must match the preset's outputs.
        input_shape: ``(height, width, channels)``, channels 1 or 3.  Required
            for an architecture; optional for a preset, where it must match
            the preset's input shape.
        weights: ``None`` (random initialisation), ``"imagenet"`` (only for
            models whose builder takes ``weights``, e.g. ``mobilenet_v2``,
            ``resnet50``, ``inception_resnet_v2``; downloaded by keras),
            ``"imagenet:FILE"`` (the same, from keras' weights file of the base
            kept locally, for machines without internet access), or the
            path of a local weights file (``.weights.h5`` / ``.keras``) for
            exactly this architecture, loaded with ``model.load_weights``.
            Not accepted for presets (they come with their weights).
        **kwargs: builder-specific options (see :func:`model_info` / the
            builder's docstring), e.g. ``alpha`` for ``mobilenet_v2``,
            ``width`` / ``batchnorm`` for ``small_cnn`` or ``bn_momentum``
            for the keras.applications backbones.  Not accepted for presets.
    """
    if isinstance(name, str) and name in _PRESETS:
        return _create_preset(name, num_classes, input_shape, weights, kwargs)
    if isinstance(name, str) and "." in name:
        raise DmkerasError(
            f"unknown preset {name!r}; available presets: {', '.join(list_presets()) or 'none'}"
        )
    entry = _entry(name)
    if num_classes is None or input_shape is None:
        missing = " and ".join(
            a for a, v in (("num_classes", num_classes), ("input_shape", input_shape)) if v is None
        )
        raise DmkerasError(f"model '{name}' needs {missing} (only presets can do without)")
    num_classes = _check_num_classes(num_classes)
    input_shape = _check_input_shape(input_shape)
    _check_kwargs(entry, kwargs)

    weights_path = None
    if weights is None:
        pass
    elif isinstance(weights, str) and (weights == "imagenet" or weights.startswith("imagenet:")):
        if not _accepts_weights(entry):
            raise DmkerasError(
                f"model '{name}' has no imagenet weights; use weights=None or a local file path"
            )
        kwargs["weights"] = weights  # "imagenet:FILE": keras' ImageNet weights file of the base, kept locally
    elif isinstance(weights, (str, os.PathLike)):
        weights_path = os.fspath(weights)
    else:
        raise DmkerasError(
            f"weights must be None, 'imagenet' or a file path, got {weights!r}"
        )

    model = entry.builder(num_classes, input_shape, **kwargs)
    if not isinstance(model, keras.Model):
        raise DmkerasError(f"builder of model '{name}' returned {type(model).__name__}, not a keras.Model")
    if weights_path is not None:
        _load_weights_file(model, name, weights_path)
    return model


def load(directory):
    """Load a model exported by :mod:`dmkeras.export` from ``directory`` (= ``export.load``): a
    keras.Model from uint8 images to class probabilities, preprocessing included."""
    return export.load(directory)


# ---------------------------------------------------------------------------
# Presets: named, ready-made models ("arch.tag"), e.g. trained checkpoints.


@dataclass(frozen=True)
class _Preset:
    name: str
    architecture: str
    loader: Callable[[], keras.Model]
    metadata: dict


_PRESETS: dict[str, _Preset] = {}
_PRESET_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")


def register_preset(
    name: str, loader: Callable[[], keras.Model], *, metadata: Mapping | None = None
) -> None:
    """Register preset ``name`` (``"arch.tag"``), built by ``loader()``.

    ``arch``, the part of ``name`` before the first dot, must be a registered
    architecture; ``tag`` (letters, digits, ``_ . -``) names the variant, e.g.
    ``"small_cnn.dividemix_digits_sym50"``.  ``loader`` is called with no
    arguments by :func:`create_model` and must return a ``keras.Model``, for
    example ``lambda: keras.models.load_model(path)``.  ``metadata`` is any
    mapping (dataset, noise, accuracy, path, ...), returned by
    :func:`preset_info`.  A name can be registered only once.
    """
    if not isinstance(name, str) or "." not in name:
        raise DmkerasError(f"preset name must be a string 'architecture.tag', got {name!r}")
    arch, _, tag = name.partition(".")
    if arch not in _REGISTRY:
        raise DmkerasError(
            f"preset {name!r} is for unknown architecture {arch!r}; "
            f"available models: {', '.join(list_models())}"
        )
    if not _PRESET_TAG.match(tag):
        raise DmkerasError(
            f"preset tag {tag!r} of {name!r} must be letters, digits, '_', '.' or '-'"
        )
    if not callable(loader):
        raise DmkerasError(f"loader for preset '{name}' is not callable: {loader!r}")
    try:
        inspect.signature(loader).bind()
    except TypeError:
        raise DmkerasError(
            f"loader for preset '{name}' must be callable with no arguments"
        ) from None
    except ValueError:  # no signature available (builtins): let the call decide
        pass
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise DmkerasError(
            f"metadata for preset '{name}' must be a mapping, got {type(metadata).__name__}"
        )
    if name in _PRESETS:
        raise DmkerasError(f"preset '{name}' is already registered")
    _PRESETS[name] = _Preset(
        name=name, architecture=arch, loader=loader, metadata=copy.deepcopy(dict(metadata))
    )


def list_presets(pattern: str = "*") -> list[str]:
    """Sorted names of the registered presets matching the fnmatch ``pattern``."""
    if not isinstance(pattern, str):
        raise DmkerasError(f"preset name pattern must be a string, got {pattern!r}")
    return sorted(n for n in _PRESETS if fnmatch.fnmatchcase(n, pattern))


def _preset(name) -> _Preset:
    if not isinstance(name, str) or name not in _PRESETS:
        raise DmkerasError(
            f"unknown preset {name!r}; available presets: {', '.join(list_presets()) or 'none'}"
        )
    return _PRESETS[name]


def preset_info(name: str) -> dict:
    """A copy of the metadata registered with preset ``name``."""
    return copy.deepcopy(_preset(name).metadata)


def _create_preset(name, num_classes, input_shape, weights, kwargs) -> keras.Model:
    preset = _preset(name)
    if weights is not None:
        raise DmkerasError(f"preset '{name}' comes with its weights; weights= must be None")
    if kwargs:
        raise DmkerasError(
            f"preset '{name}' takes no builder kwargs, got {', '.join(map(repr, sorted(kwargs)))}"
        )
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes)
    if input_shape is not None:
        input_shape = _check_input_shape(input_shape)
    try:
        model = preset.loader()
    except DmkerasError:
        raise
    except Exception as exc:
        raise DmkerasError(
            f"preset '{name}' could not be loaded: {_summarise_load_error(exc)}"
        ) from exc
    if not isinstance(model, keras.Model):
        raise DmkerasError(
            f"loader of preset '{name}' returned {type(model).__name__}, not a keras.Model"
        )
    if num_classes is None and input_shape is None:
        return model

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise DmkerasError(
            f"preset '{name}' has {len(model.inputs)} inputs and {len(model.outputs)} outputs, "
            "cannot check num_classes / input_shape"
        )
    have_shape = tuple(model.inputs[0].shape[1:])
    have_classes = model.outputs[0].shape[-1]
    differences = []
    if num_classes is not None and have_classes != num_classes:
        differences.append(f"outputs {have_classes} classes, not num_classes={num_classes}")
    if input_shape is not None and (
        len(have_shape) != len(input_shape)
        or any(h is not None and h != d for h, d in zip(have_shape, input_shape))
    ):
        differences.append(f"takes input_shape {have_shape}, not {input_shape}")
    if differences:
        raise DmkerasError(f"preset '{name}' " + "; ".join(differences))
    return model


# ---------------------------------------------------------------------------
# Built-in models.

register(
    "preact_resnet18",
    preact_resnet18,
    description="PreAct ResNet-18, CIFAR variant of the DivideMix reference (32x32x3 inputs).",
)
register(
    "preact_resnet34",
    preact_resnet34,
    description="PreAct ResNet-34 ([3, 4, 6, 3] PreActBlocks), CIFAR variant (32x32x3 inputs).",
)
register(
    "mobilenet_v2",
    mobilenet_v2,
    description=(
        "keras.applications MobileNetV2 + global pooling + linear head; kwargs: alpha; "
        "inputs >= 8x8 (resized up to 32x32 inside the model); imagenet weights available."
    ),
)
register(
    "small_cnn",
    small_cnn,
    description=(
        "4-conv CNN for tiny inputs such as 8x8x1 digits; kwargs: width=32, batchnorm=True, stages=2."
    ),
)
register(
    "mnist_cnn",
    mnist_cnn,
    description=(
        "6-conv CNN (16-32-64 filters, 3 stages) for 28x28 MNIST-format images such as Fashion-MNIST; "
        "kwargs: width=16, batchnorm=True, stages=3."
    ),
)
register(
    "resnet50",
    resnet50,
    description=(
        "keras.applications ResNet50 + global pooling + linear head (DivideMix's Clothing1M "
        "backbone); inputs >= 32x32; imagenet weights available; kwargs: bn_momentum=0.9."
    ),
)
register(
    "inception_resnet_v2",
    inception_resnet_v2,
    description=(
        "keras.applications InceptionResNetV2 + global pooling + linear head (DivideMix's "
        "WebVision backbone); inputs >= 8x8 (resized up to 75x75 inside the model); "
        "imagenet weights available; kwargs: bn_momentum=0.9."
    ),
)


def register_export(directory, name: str, *, net: int = 1) -> str:
    """Register an export as the preset `name` ("arch.tag", e.g. "small_cnn.dividemix_digits_sym50").

    `create_model(name)` then returns net `net` of the export as a backbone (normalised images
    -> logits, like every zoo model), ready to fine-tune; the preset's metadata carries the model
    card's dataset, noise, accuracy and path. Returns the name.
    """
    card = export.model_card(directory)
    if f"net{net}.keras" not in card.get("nets", []) or not os.path.isfile(os.path.join(os.fspath(directory), f"net{net}.keras")):
        raise DmkerasError(f"export {directory} has no net{net}.keras")
    arch = name.split(".", 1)[0]
    if arch != card.get("backbone"):
        raise DmkerasError(f"preset {name!r}: the export's backbone is {card.get('backbone')!r}, not {arch!r}")
    metadata = {
        "path": os.path.abspath(os.fspath(directory)),
        "dataset": card["dataset"].get("name"),
        "num_classes": card["dataset"].get("num_classes"),
        "input_shape": card["dataset"].get("image_shape"),
        "noise": card.get("noise"),
        "method": card.get("method"),
        "test_acc_best": card.get("test_acc_best"),
        "test_acc_last": card.get("test_acc_last"),
        "division_auc_last": card.get("division_auc_last"),
    }
    register_preset(name, lambda: export.load_net(directory, net), metadata=metadata)
    return name
