"""The data-source registry: which loader reads a ``--dataset`` spec.

A source is one module of this package (imported by the package's ``__init__``, which is what
registers it) or of any code imported before `load_source` is called:

    @register_source("npz", forms="npz:PATH")
    def _npz_source(request: SourceRequest) -> SplitData:
        return _load_npz(request.arg, request.num_classes)

`forms` is how the spec is written: the bare kind (``digits``: the spec is exactly that) or
``KIND:ARG`` (the kind, a colon and a non-empty argument, which the loader gets as
``request.arg``; anything after the first colon, so ``tfds:cifar10:3.0.2`` is kind ``tfds``).
The loader gets a :class:`SourceRequest` (the spec and every load_source option) and returns a
SplitData, usually through ``common._finish``. An unknown spec fails with one line naming every
registered form, grouped as registered (``group``: "" for the first list, else a label such as
"image files").

The options tfds_label, data_dir and stream / resize_shorter are refused for sources that do not
list them in ``accepts`` (the others, image_size, test_spec ..., are the image sources' and
ignored by the rest). ``default_val_spec(spec, arg)`` gives the validation set used when
load_source has no val_spec (clothing1m: its clean validation list when ROOT has it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from dmkeras.errors import DmkerasError

__all__ = ["OPTIONS", "Source", "SourceRequest", "register_source", "unregister_source", "find_kind", "lookup",
           "registered", "unknown_source", "forms_accepting"]

OPTIONS = ("tfds_label", "data_dir", "stream")  # what `accepts` may name; "stream" covers resize_shorter too


@dataclasses.dataclass(frozen=True)
class SourceRequest:
    """One load_source call, as the source's loader gets it (the options as load_source documents them)."""

    spec: str
    kind: str
    arg: str  # the spec after its first colon ("" for a bare kind)
    num_classes: int | None = None
    tfds_label: str | None = None
    data_dir: str | None = None
    image_size: Any = None
    test_spec: str | None = None
    test_fraction: float = 0.2
    skip_unreadable: bool = False
    seed: int = 0
    stream: bool = False
    resize_shorter: int = 0
    split_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Source:
    """A registered data source (see register_source)."""

    kind: str
    loader: Callable[[SourceRequest], Any]
    forms: str
    group: str = ""
    accepts: frozenset = frozenset()
    default_val_spec: Callable[[str, str], str | None] | None = None

    @property
    def takes_arg(self) -> bool:
        """Whether the spec is KIND:ARG (else exactly KIND)."""
        return ":" in self.forms

    def matches(self, spec: str) -> bool:
        kind, colon, arg = spec.partition(":")
        return kind == self.kind and (bool(arg) if self.takes_arg else not colon)


_SOURCES: dict[str, Source] = {}


def register_source(kind: str, loader: Callable[[SourceRequest], Any] | None = None, *, forms: str,
                    group: str = "", accepts=(), default_val_spec=None):
    """Registers `loader` for specs of `kind`; without a loader, a decorator that does.

    forms: ``KIND`` or ``KIND:ARG`` (ARG names the argument in messages: PATH, ROOT ...).
    group: the label the form is listed under in the unknown-source message ("" for the first list).
    accepts: the options of OPTIONS the source takes (others given to load_source are refused).
    default_val_spec: (spec, arg) -> the validation spec used when load_source has none, or None.
    A kind is registered once (ValueError otherwise; unregister_source it first).
    """

    def register(fn):
        if not isinstance(kind, str) or not kind or ":" in kind:
            raise ValueError(f"a data source kind is a non-empty name without ':', got {kind!r}")
        if kind in _SOURCES:
            raise ValueError(f"data source kind {kind!r} is already registered")
        head, colon, arg = forms.partition(":") if isinstance(forms, str) else ("", "", "")
        if head != kind or (colon and not arg):
            raise ValueError(f"forms of data source {kind!r} must be {kind!r} or '{kind}:ARG', got {forms!r}")
        unknown = sorted(set(accepts) - set(OPTIONS))
        if unknown:
            raise ValueError(f"data source {kind!r}: accepts names unknown option(s) {', '.join(unknown)} "
                             f"(known: {', '.join(OPTIONS)})")
        _SOURCES[kind] = Source(kind, fn, forms, group, frozenset(accepts), default_val_spec)
        return fn

    return register if loader is None else register(loader)


def unregister_source(kind: str) -> Source:
    """Removes a registered kind (KeyError if there is none) and returns its Source."""
    return _SOURCES.pop(kind)


def registered() -> list[Source]:
    """The registered sources, in registration order."""
    return list(_SOURCES.values())


def find_kind(kind: str) -> Source | None:
    """The source registered for `kind` (whatever the spec's argument), or None."""
    return _SOURCES.get(kind)


def lookup(spec: str) -> Source | None:
    """The source that reads `spec` (its kind registered and its form matched), or None."""
    source = _SOURCES.get(spec.partition(":")[0])
    return source if source is not None and source.matches(spec) else None


def _listed(items: list[str], last: str) -> str:
    """'a', 'a or b', 'a, b or c' (last: the word before the last item)."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def forms_accepting(option: str, last: str = "or") -> str:
    """The quoted forms of the sources that accept `option` ('tfds:NAME' and 'fashion_mnist' ...)."""
    forms = [f"'{s.forms}'" for s in _SOURCES.values() if option in s.accepts]
    return _listed(forms, last) if forms else "no"


def unknown_source(spec: str) -> DmkerasError:
    """The error for a spec no registered source reads: one line naming every registered form."""
    groups: dict[str, list[str]] = {"": []}
    for source in _SOURCES.values():
        groups.setdefault(source.group, []).append(f"'{source.forms}'")
    parts = [f"{label}: {_listed(forms, 'or')}" if label else _listed(forms, "or")
             for label, forms in groups.items() if forms]
    if not parts:
        return DmkerasError(f"unknown data source {spec!r}; no data source is registered")
    expected = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])}, or {parts[-1]}"
    return DmkerasError(f"unknown data source {spec!r}; expected {expected}")
