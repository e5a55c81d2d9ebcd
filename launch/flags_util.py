"""absl flags generated from a config dataclass, and the one-line error exit of every entry point."""

import dataclasses
import sys
import typing

from absl import flags

from dmkeras.errors import DmkerasError

_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_bool}


def define_flags(config_class, only=None) -> None:
    """One flag per field of `config_class` (or of its fields named in `only`), with its default
    and the field's help text."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if only is not None and field.name not in only:
            continue
        _DEFINE[hints[field.name]](field.name, field.default, field.metadata.get("help", ""))


def config_from_flags(config_class):
    values = flags.FLAGS
    return config_class(**{field.name: values[field.name].value for field in dataclasses.fields(config_class)})


def run_or_exit(fn, *args):
    """Run fn; on a DmkerasError print one line `error: ...` to stderr and exit with status 2."""
    try:
        return fn(*args)
    except DmkerasError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the run directory keeps every finished epoch", file=sys.stderr)
        sys.exit(130)
