"""The model registry: build a backbone by name, returning logits.

Unlike timm / keras-hub, nothing registers itself on import: this module
imports the backbone modules explicitly and fills its table below.

    >>> from dmkeras import zoo
    >>> zoo.list_models()
    ['mobilenet_v2', 'preact_resnet18', 'preact_resnet34', 'small_cnn']
    >>> model = zoo.create_model("small_cnn", num_classes=10, input_shape=(8, 8, 1))

Every model maps float32, already normalised, NHWC images to logits (no
softmax).  A builder is called as ``builder(num_classes, input_shape, **kwargs)``
and must return a Functional ``keras.Model``; builders whose signature has a
``weights`` parameter are the ones that can be given ``weights="imagenet"``.
"""

from __future__ import annotations

import fnmatch
import inspect
import numbers
import os
import re
from dataclasses import dataclass
from typing import Callable

import keras

from dmkeras.backbones.mobilenet_v2 import mobilenet_v2
from dmkeras.backbones.preact_resnet import preact_resnet18, preact_resnet34
from dmkeras.backbones.small_cnn import small_cnn
from dmkeras.errors import DmkerasError

__all__ = ["register", "create_model", "list_models", "model_info"]


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., keras.Model]
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register(name: str, builder: Callable[..., keras.Model], *, description: str = "") -> None:
    """Add ``builder`` to the registry under ``name``.

    ``builder(num_classes, input_shape, **kwargs)`` must return a Functional
    ``keras.Model`` producing logits.  A name can be registered only once.
    """
    if not isinstance(name, str) or not name:
        raise DmkerasError(f"model name must be a non-empty string, got {name!r}")
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
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 2
    ):
        raise DmkerasError(f"num_classes must be an int >= 2, got {num_classes!r}")
    return int(num_classes)


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
    num_classes: int,
    input_shape,
    weights: str | os.PathLike | None = None,
    **kwargs,
) -> keras.Model:
    """Build registered model ``name`` mapping NHWC float32 images to logits.

    Args:
        name: a name from :func:`list_models`.
        num_classes: number of logits, >= 2.
        input_shape: ``(height, width, channels)``, channels 1 or 3.
        weights: ``None`` (random initialisation), ``"imagenet"`` (only for
            models whose builder takes ``weights``, e.g. ``mobilenet_v2``;
            downloaded by keras), or the path of a local weights file
            (``.weights.h5`` / ``.keras``) for exactly this architecture,
            loaded with ``model.load_weights``.
        **kwargs: builder-specific options (see :func:`model_info` / the
            builder's docstring), e.g. ``alpha`` for ``mobilenet_v2`` or
            ``width`` / ``batchnorm`` for ``small_cnn``.
    """
    entry = _entry(name)
    num_classes = _check_num_classes(num_classes)
    input_shape = _check_input_shape(input_shape)
    _check_kwargs(entry, kwargs)

    weights_path = None
    if weights is None:
        pass
    elif isinstance(weights, str) and weights == "imagenet":
        if not _accepts_weights(entry):
            raise DmkerasError(
                f"model '{name}' has no imagenet weights; use weights=None or a local file path"
            )
        kwargs["weights"] = "imagenet"
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
        "4-conv CNN for tiny inputs such as 8x8x1 digits; kwargs: width=32, batchnorm=True."
    ),
)
