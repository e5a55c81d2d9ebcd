"""The data-source registry (dmkeras.data.sources.registry): a new source is one registration,
an unknown spec one line naming the known kinds, and the package keeps its public names."""

import ast
import dataclasses
import pathlib

import numpy as np
import pytest

from dmkeras.data import sources
from dmkeras.data.sources import registry
from dmkeras.data.sources.common import _finish
from dmkeras.errors import DmkerasError

BUILT_IN = ("digits", "npz:PATH", "tfds:NAME", "fashion_mnist", "idx:DIR", "folder:PATH", "csv:FILE",
            "clothing1m:ROOT", "webvision:ROOT")


@pytest.fixture
def scratch_kinds():
    """Unregisters whatever a test registers, so other tests see the built-in sources only."""
    before = {s.kind for s in registry.registered()}
    yield
    for source in registry.registered():
        if source.kind not in before:
            registry.unregister_source(source.kind)


def _const_split(request):
    """A throw-away source: 12 4x4 images whose pixels are the spec's argument, 3 classes."""
    value = int(request.arg)
    x = np.full((12, 4, 4, 1), value, np.uint8)
    y = np.arange(12, dtype=np.int64) % 3
    return _finish("const", x[:9], y[:9], x[9:], y[9:], 3 if request.num_classes is None else request.num_classes)


def test_the_built_in_sources_are_registered_in_order():
    assert tuple(s.forms for s in registry.registered()) == BUILT_IN


def test_the_built_in_messages_are_unchanged():
    assert str(registry.unknown_source("x")) == (
        f"unknown data source 'x'; expected {sources.SPEC_FORMS}, IDX files: {sources.IDX_SPEC_FORMS}, "
        f"or image files: {sources.IMAGE_SPEC_FORMS}"
    )
    assert registry.forms_accepting("stream") == sources.IMAGE_SPEC_FORMS
    assert registry.forms_accepting("data_dir", "and") == "'tfds:NAME' and 'fashion_mnist'"
    assert registry.forms_accepting("tfds_label", "and") == "'tfds:NAME'"


@pytest.mark.parametrize("spec", ["const:1", "cifar10", "digits:", "folder:", "fashion_mnist:x", "CSV:a.csv"])
def test_an_unknown_spec_is_one_line_naming_every_known_kind(spec):
    with pytest.raises(DmkerasError) as e:
        sources.load_source(spec)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"unknown data source {spec!r}; expected 'digits', 'npz:PATH' or 'tfds:NAME'")
    for form in BUILT_IN:
        assert f"'{form}'" in message


def test_a_new_source_is_one_registration(scratch_kinds):
    seen = []

    @sources.register_source("const", forms="const:VALUE")
    def load_const(request):
        seen.append(request)
        return _const_split(request)

    assert load_const.__name__ == "load_const"  # the decorator hands the function back
    data = sources.load_source("const:7", num_classes=4, image_size=(2, 2), seed=3)
    assert isinstance(data, sources.SplitData)
    assert data.name == "const" and data.num_classes == 4
    assert data.x_train.shape == (9, 4, 4, 1) and data.x_test.shape == (3, 4, 4, 1)
    assert int(data.x_train[0, 0, 0, 0]) == 7
    assert data.mean == pytest.approx((7 / 255,))
    assert data.x_val is None
    request = seen[0]
    assert (request.spec, request.kind, request.arg) == ("const:7", "const", "7")
    assert (request.num_classes, request.image_size, request.seed) == (4, (2, 2), 3)

    # listed with the others in the unknown-source message; needs its argument
    with pytest.raises(DmkerasError, match="expected 'digits', 'npz:PATH', 'tfds:NAME' or 'const:VALUE', IDX files"):
        sources.load_source("const:")
    # the options it did not opt in to are refused, naming the sources that take them
    with pytest.raises(DmkerasError, match="tfds_label='x' only applies to 'tfds:NAME' sources, not 'const:7'"):
        sources.load_source("const:7", tfds_label="x")
    with pytest.raises(DmkerasError, match="data_dir only applies to 'tfds:NAME' and 'fashion_mnist' sources"):
        sources.load_source("const:7", data_dir="/tmp")
    with pytest.raises(DmkerasError, match="stream / resize_shorter only apply to image file sources"):
        sources.load_source("const:7", stream=True)

    registry.unregister_source("const")
    with pytest.raises(DmkerasError, match="unknown data source 'const:7'"):
        sources.load_source("const:7")


def test_a_source_opts_in_to_options_and_a_default_validation_set(scratch_kinds, tmp_path):
    x_val = np.full((4, 4, 4, 1), 9, np.uint8)
    np.savez(tmp_path / "val.npz", x_val=x_val, y_val=np.array([0, 1, 2, 0]))

    def default_val(spec, arg):
        assert (spec, arg) == ("bare", "")
        return f"npz:{tmp_path / 'val.npz'}"

    def load_bare(request):
        assert request.data_dir == "/somewhere" and request.arg == ""
        return _const_split(dataclasses.replace(request, arg="5"))

    registry.register_source("bare", load_bare, forms="bare", group="other", accepts=("data_dir",),
                             default_val_spec=default_val)
    data = sources.load_source("bare", data_dir="/somewhere")
    np.testing.assert_array_equal(data.x_val, x_val)
    np.testing.assert_array_equal(data.y_val, [0, 1, 2, 0])
    assert sources.load_source("bare", data_dir="/somewhere", val_spec="none").x_val is None
    assert registry.forms_accepting("data_dir", "and") == "'tfds:NAME', 'fashion_mnist' and 'bare'"
    with pytest.raises(DmkerasError, match=r"IDX files: .*, image files: .*'webvision:ROOT', or other: 'bare'$"):
        sources.load_source("bare:x")


def test_registrations_are_checked(scratch_kinds):
    with pytest.raises(ValueError, match="'digits' is already registered"):
        registry.register_source("digits", _const_split, forms="digits")
    with pytest.raises(ValueError, match="must be 'k' or 'k:ARG'"):
        registry.register_source("k", _const_split, forms="other:ARG")
    with pytest.raises(ValueError, match="must be 'k' or 'k:ARG'"):
        registry.register_source("k", _const_split, forms="k:")
    with pytest.raises(ValueError, match="without ':'"):
        registry.register_source("k:x", _const_split, forms="k:x")
    with pytest.raises(ValueError, match="unknown option.*image_size"):
        registry.register_source("k", _const_split, forms="k", accepts=("image_size",))
    assert registry.find_kind("k") is None


def test_the_public_names_are_still_importable():
    # what dmkeras/, launch/, tools/ and tests/ import from dmkeras.data.sources
    for name in ("load_source", "SplitData", "stratified_hold_out", "load_extra_test", "load_validation",
                 "check_val_spec", "VAL_KINDS", "original_order", "_channel_stats", "CIFAR10_N_LABELS",
                 "CLOTHING1M_CLASSES", "CLOTHING1M_VAL_LIST", "NORMALISATION", "SPEC_FORMS", "IDX_SPEC_FORMS",
                 "IMAGE_SPEC_FORMS", "VAL_SPEC_FORMS", *sources.__all__):
        assert hasattr(sources, name), name
    assert sources.VAL_KINDS == ("folder", "csv", "npz", "clothing1m")


def test_source_modules_never_import_the_package():
    """A source module imports common / registry / other source modules, never the package's
    __init__ (which imports them all: a cycle)."""
    package = pathlib.Path(sources.__file__).parent
    for path in sorted(package.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                assert node.module != "dmkeras.data.sources", f"{path.name} imports the package"
            elif isinstance(node, ast.Import):
                assert all(a.name != "dmkeras.data.sources" for a in node.names), f"{path.name} imports the package"
