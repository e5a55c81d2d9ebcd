"""A clean console: no TensorFlow / absl / oneDNN start-up chatter unless --tf_logs, and no ANSI
escapes or carriage-return redraws when stdout is not a terminal (launch/console.py, the
Progbar choice in dmkeras/trainer.py)."""

import os
import re
import sys

import pytest

from launch import console
from tests.helpers import run_module

CHATTER = re.compile(r"oneDNN|cudart_stub|cuInit|absl::InitializeLog|I0000|W0000|Could not find cuda drivers")


def test_train_through_a_pipe_prints_plain_lines_without_tensorflow_chatter(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    proc = run_module(
        "launch.train", "--dataset=digits", "--train_limit=100", "--test_limit=50",
        "--epochs=2", "--warm_up=1", "--backbone_args=width=8", f"--workdir={tmp_path / 'run'}",
        env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    chatter = [line for line in (proc.stdout + proc.stderr).splitlines() if CHATTER.search(line)]
    assert not chatter, "\n".join(chatter)
    assert "\x1b[" not in proc.stdout and "\r" not in proc.stdout, repr(proc.stdout)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("epoch 1/2 warmup | ") for line in lines), proc.stdout
    assert any(line.startswith("epoch 2/2 ssl | ") for line in lines), proc.stdout
    # verbose 1 through a pipe: each pass's title, then one plain Progbar line at its end
    assert "Epoch 1/2 - net 1 - warm-up" in lines, proc.stdout
    assert any(re.fullmatch(r"1/1 - \d+s - \d+m?s/step - loss: \d+\.\d+", line) for line in lines), proc.stdout


def _fresh(monkeypatch, **env):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as before the first import (restored after)


def _filtering():
    return any(isinstance(finder, console._QuietTensorflowImport) for finder in sys.meta_path)


def test_setup_quiets_tensorflow_by_default_and_keeps_the_users_level(monkeypatch):
    _fresh(monkeypatch)
    assert console.setup(["train"]) is False
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2" and _filtering()
    console.setup(["train"])
    assert sum(isinstance(f, console._QuietTensorflowImport) for f in sys.meta_path) == 1  # installed once

    _fresh(monkeypatch, TF_CPP_MIN_LOG_LEVEL="1")
    console.setup(["train"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


@pytest.mark.parametrize("args", [["--tf_logs"], ["-tf_logs"], ["--tf_logs=true"], ["--tf_logs=1"], ["--notf_logs", "--tf_logs"]])
def test_tf_logs_leaves_tensorflow_logging_alone(monkeypatch, args):
    _fresh(monkeypatch)
    assert console.setup(["train", "--epochs=2", *args]) is True
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and not _filtering()


@pytest.mark.parametrize("args", [[], ["--tf_logs=false"], ["--tf_logs", "--notf_logs"], ["--", "--tf_logs"], ["--tf_logs_other"]])
def test_tf_logs_off(args):
    assert console.tf_logs_requested(["train", *args]) is False


def test_tf_logs_in_a_flagfile(tmp_path):
    flagfile = tmp_path / "quiet.cfg"
    flagfile.write_text("--epochs=3\n--tf_logs\n")
    assert console.tf_logs_requested(["train", f"--flagfile={flagfile}"]) is True
    assert console.tf_logs_requested(["train", "--flagfile=does_not_exist.cfg"]) is False  # train reports it


STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796176179.668971   11914 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1796176179.669349   11914 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.\n"
    "E0000 00:00:1796176182.086673   11914 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
    "W0615 12:34:56.789012   11914 some_op.cc:12] a TensorFlow warning\n"
)


def test_the_filter_drops_the_startup_lines_only(capfd):
    with console._stderr_without_startup_chatter():
        os.write(2, STARTUP.encode())
        os.write(2, b"E0000 00:00:1796176182.1   11914 other.cc:1] a real error\n")
        os.write(2, b"a Python warning\n")
    assert capfd.readouterr().err == "E0000 00:00:1796176182.1   11914 other.cc:1] a real error\na Python warning\n"


def test_the_filter_writes_everything_back_when_the_import_fails(capfd):
    with pytest.raises(ImportError), console._stderr_without_startup_chatter():
        os.write(2, STARTUP.encode())
        raise ImportError("no tensorflow")
    assert capfd.readouterr().err == STARTUP


@pytest.mark.parametrize("module", ["launch.train", "launch.export", "tools.bench"])
def test_entry_points_list_tf_logs(module):
    """--helpshort lists --tf_logs (from launch.console); tools.bench imports TensorFlow at its top,
    quietly too (launch.audit does the same as bench, at 3x the start-up time: not run here)."""
    proc = run_module(module, "--helpshort", timeout=120)
    assert "--[no]tf_logs" in proc.stdout, (proc.stdout[-500:], proc.stderr[-500:])
    assert not CHATTER.search(proc.stderr), proc.stderr
