"""absl flags generated from a config dataclass, flagfiles that work from any folder, and the
one-line error exit of every entry point."""

import _thread
import functools
import os
import sys
import threading

from absl import app, flags

from dmkeras.config import flat_fields
from dmkeras.errors import ConfigError, DmkerasError

_DEFINE = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float, bool: flags.DEFINE_bool}


def define_flags(config_class, only=None) -> None:
    """One flag per field of `config_class` (or of its fields named in `only`), with its default
    and the field's help text."""
    for field, kind in flat_fields(config_class):
        if only is None or field.name in only:
            _DEFINE[kind](field.name, field.default, field.metadata.get("help", ""))


def config_from_flags(config_class):
    """The config of the parsed flags: the one place where flags become a (nested) config."""
    values = flags.FLAGS
    return config_class(**{field.name: values[field.name].value for field, _ in flat_fields(config_class)})


def run_or_exit(fn, *args):
    """Run fn; on a DmkerasError print one line `error: ...` to stderr and exit with status 2; on
    Ctrl-C (SIGINT) one line `interrupted: ...` and status 130."""
    previous_hook, timers = sys.unraisablehook, []
    sys.unraisablehook = functools.partial(_interrupt_again, previous_hook, timers)
    try:
        return fn(*args)
    except DmkerasError as error:  # a ConfigError names config fields: say them as the flags they are here
        print(f"error: {error.as_flags() if isinstance(error, ConfigError) else error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the run directory keeps every finished epoch", file=sys.stderr)
        sys.exit(130)
    finally:
        sys.unraisablehook = previous_hook
        for timer in timers:
            timer.cancel()


def _interrupt_again(previous_hook, timers, unraisable):
    """Python prints and drops an exception raised in a finalizer: a Ctrl-C that lands while one
    runs (TensorFlow's AtomicFunction.__del__ dismantling a graph, say) would be lost and the run
    would go on. Interrupt the main thread again a moment later, outside the finalizer."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.daemon = True
        timers.append(timer)
        timer.start()
        return
    previous_hook(unraisable)


CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
"""The packaged flagfiles (launch/configs), which can be named by their short name."""


def _find_flagfile(name: str, including_dir: str | None) -> str:
    """A flagfile's path: relative to the file that includes it, else to the working folder, else
    a packaged config by its name (`digits_sym50`, `digits_sym50.cfg` or `launch/configs/...`)."""
    candidates = [os.path.join(including_dir, name)] if including_dir and not os.path.isabs(name) else []
    candidates.append(name)
    short = os.path.basename(name)
    candidates += [os.path.join(CONFIG_DIR, short), os.path.join(CONFIG_DIR, short + ".cfg")]
    for path in candidates:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise FileNotFoundError(
        f"flagfile {name!r} not found" + (f" next to {including_dir}," if including_dir else "")
        + f" in {os.getcwd()} or among the packaged configs ({', '.join(sorted(f[:-4] for f in os.listdir(CONFIG_DIR) if f.endswith('.cfg')))})"
    )


def _flagfile_lines(path: str, seen: tuple) -> list[str]:
    if path in seen:
        raise FileNotFoundError(f"flagfile {path} includes itself (through {' -> '.join(seen)})")
    args = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", "//")):
                continue
            args += _expand([line], os.path.dirname(path), seen + (path,))
    return args


def _expand(argv: list[str], including_dir: str | None, seen: tuple = ()) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(("--flagfile=", "-flagfile=")):
            out += _flagfile_lines(_find_flagfile(arg.split("=", 1)[1], including_dir), seen)
        elif arg in ("--flagfile", "-flagfile") and i + 1 < len(argv):
            i += 1
            out += _flagfile_lines(_find_flagfile(argv[i], including_dir), seen)
        else:
            out.append(arg)
        i += 1
    return out


def expand_flagfiles(argv: list[str]) -> list[str]:
    """argv with every --flagfile replaced by its flags, in place (absl's order: later flags win).

    Unlike absl, an included flagfile is found relative to the file that includes it (then the
    working folder), and a packaged config can be named by its short name from any folder
    (`--flagfile=digits_sym50`). A missing flagfile exits with one line."""
    try:
        return argv[:1] + _expand(list(argv[1:]), None)
    except (FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run_console_script(main, module_name: str) -> None:
    """Runs an entry point's absl `main` from its console script (dmkeras-train, -audit, -export).

    absl's --help prints the `__main__` module's docstring and key flags, and a console script's
    `__main__` is pip's wrapper, which has neither: it is lent the entry point's, so that
    `dmkeras-train --help` reads like `python -m launch.train --help`."""
    main_module = sys.modules["__main__"]
    if main_module is not sys.modules[module_name]:
        main_module.__doc__ = sys.modules[module_name].__doc__
        for flag in flags.FLAGS.get_key_flags_for_module(module_name):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, argv=expand_flagfiles(sys.argv))
