"""A clean console for the command-line tools: TensorFlow's start-up chatter only with --tf_logs.

Every entry point calls `setup()` first, before anything imports TensorFlow. Importing
TensorFlow prints on stderr, before any Python code could filter it:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.

(twice, once per TensorFlow library loaded) and, when the devices are first listed on a machine
without a GPU,

    E0000 00:00:... cuda_platform.cc:52] failed call to cuInit: ...

TF_CPP_MIN_LOG_LEVEL=2 hides TensorFlow's later INFO and WARNING logs, but not these lines: absl's
C++ logging writes them before TensorFlow applies its level (neither ABSL_MIN_LOG_LEVEL nor
GLOG_minloglevel changes them; TF_CPP_MIN_LOG_LEVEL=3 hides the cuInit line, and every real
TensorFlow error with it; TF_ENABLE_ONEDNN_OPTS=0 hides the oneDNN line by turning oneDNN off,
which changes speed and rounding). So `setup()`:

* sets TF_CPP_MIN_LOG_LEVEL=2 unless the user set it (os.environ.setdefault);
* runs the first `import tensorflow` of the process, wherever it happens, and the first listing of
  the devices (what prints the cuInit line) with the process's stderr (file descriptor 2) sent to
  a temporary file; then stderr is restored and what was captured is written back, less the
  start-up lines above (absl C++ INFO / WARNING lines, the absl::InitializeLog notice, the cuInit
  and "Unable to register cu... factory" errors). Anything else (a Python warning, an unknown
  error) still prints, and if the import fails everything captured is written back.

With --tf_logs (every entry point has it) nothing is set or filtered: TensorFlow logs as it would
by itself (with the user's own TF_CPP_MIN_LOG_LEVEL, if any).
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

from absl import flags

flags.DEFINE_bool(
    "tf_logs", False,
    "show TensorFlow's own logs: its start-up lines (oneDNN, CUDA drivers, absl::InitializeLog) and its C++ "
    "INFO and WARNING logs (TF_CPP_MIN_LOG_LEVEL is then left as you set it, by default TensorFlow's 0)",
)

FLAG = "tf_logs"
MIN_LOG_LEVEL = "2"  # TF_CPP_MIN_LOG_LEVEL: TensorFlow's C++ errors only
# absl C++ lines: "I0000 00:00:1796176179.668971   11914 port.cc:153] " before absl::InitializeLog, else
# "I0615 12:34:56.789012   11914 port.cc:153] "
_LOG_LINE = r"\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] "
STARTUP_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rf"|[IW]{_LOG_LINE}"
    rf"|E{_LOG_LINE}(failed call to cuInit|Unable to register cu\w+ factory)"
    r"|To enable the following instructions: "  # the second line of cpu_feature_guard's INFO
)
"""The lines `setup()` drops from what TensorFlow prints while it is imported and lists its devices."""


def tf_logs_requested(argv) -> bool:
    """Whether argv (with its --flagfile contents) asks for --tf_logs (absl's forms: --tf_logs,
    --tf_logs=true|false|1|0, --notf_logs; the last one wins)."""
    from launch import flags_util

    args = list(argv[1:])
    try:
        args = flags_util._expand(args, None)
    except OSError:  # a missing flagfile: the entry point reports it in one line
        pass
    wanted = False
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name, has_value, value = arg.lstrip("-").partition("=")
        if name == FLAG:
            wanted = not has_value or value.lower() in ("true", "t", "1")
        elif name == "no" + FLAG and not has_value:
            wanted = False
    return wanted


def setup(argv=None) -> bool:
    """Keep TensorFlow's start-up chatter off the console unless argv (default sys.argv) has
    --tf_logs; see the module's docstring. Call it first in an entry point, before anything imports
    TensorFlow. Returns whether TensorFlow's logs are shown."""
    if tf_logs_requested(sys.argv if argv is None else argv):
        return True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", MIN_LOG_LEVEL)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorflowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorflowImport())
    return False


@contextlib.contextmanager
def _stderr_without_startup_chatter():
    """File descriptor 2 into a temporary file for the block; then back, and the captured text written
    to it less STARTUP_CHATTER (all of it when the block raised)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if failed or not STARTUP_CHATTER.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """A finder that wraps the first `import tensorflow` in `_stderr_without_startup_chatter`."""

    def __init__(self):
        self.used = False

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or self.used:
            return None
        self.used = True  # the lookup below goes to the other finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, finder):
        self._loader, self._finder = loader, finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            with _stderr_without_startup_chatter():
                self._loader.exec_module(module)
                try:
                    module.config.list_physical_devices()  # what prints the cuInit line without a GPU
                except Exception:  # noqa: BLE001 (the caller's own use of the devices will say)
                    pass
        finally:
            module.__loader__ = module.__spec__.loader = self._loader
            if self._finder in sys.meta_path:
                sys.meta_path.remove(self._finder)

    def __getattr__(self, name):
        return getattr(self._loader, name)
