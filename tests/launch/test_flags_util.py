"""Flagfiles found from any folder: includes relative to the including file, packaged short names."""

import ast
import os
import signal
import subprocess
import sys
import time

import pytest

from launch import flags_util
from tests.helpers import REPO


def test_includes_resolve_next_to_the_including_file_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = flags_util.expand_flagfiles(["prog", f"--flagfile={REPO}/launch/configs/digits_sym50.cfg", "--epochs=3"])
    assert argv[0] == "prog" and "--dataset=digits" in argv  # from common_digits.cfg
    assert argv.index("--epochs=100") < argv.index("--epochs=3")  # later flags win, as absl
    assert argv[-4:] == ["--noise_mode=sym", "--noise_rate=0.5", "--lambda_u=25", "--epochs=3"]


def test_packaged_configs_by_short_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_path = flags_util.expand_flagfiles(["p", f"--flagfile={REPO}/launch/configs/digits_asym40.cfg"])
    assert flags_util.expand_flagfiles(["p", "--flagfile=digits_asym40"]) == by_path
    assert flags_util.expand_flagfiles(["p", "--flagfile", "digits_asym40.cfg"]) == by_path


def test_own_flagfiles_nest_relative_to_themselves(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "base.cfg").write_text("# shared\n--lr=0.5\n// also a comment\n\n--epochs=7\n")
    (tmp_path / "cfg" / "run.cfg").write_text("--flagfile=base.cfg\n--epochs=9\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert flags_util.expand_flagfiles(["p", "--flagfile=../cfg/run.cfg"]) == ["p", "--lr=0.5", "--epochs=7", "--epochs=9"]


def test_missing_or_circular_flagfiles_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        flags_util.expand_flagfiles(["p", "--flagfile=nothere.cfg"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: flagfile 'nothere.cfg' not found") and "digits_sym50" in err[0]
    (tmp_path / "a.cfg").write_text("--flagfile=b.cfg\n")
    (tmp_path / "b.cfg").write_text("--flagfile=a.cfg\n")
    with pytest.raises(SystemExit):
        flags_util.expand_flagfiles(["p", "--flagfile=a.cfg"])
    assert "includes itself" in capsys.readouterr().err


def test_console_scripts_point_at_the_launch_entry_points():
    import tomllib

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert set(scripts) == {f"dmkeras-{n}" for n in ("train", "audit", "export", "report")}
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        assert module == f"launch.{name.removeprefix('dmkeras-')}" and function == "cli"
        with open(os.path.join(REPO, *module.split("."))+ ".py") as f:  # not imported: each defines its absl flags
            functions = {n.name for n in ast.parse(f.read()).body if isinstance(n, ast.FunctionDef)}
        assert function in functions


@pytest.mark.parametrize("name, flag", [("train", "--batch_size"), ("audit", "--from_run"), ("export", "--out")])
def test_a_console_scripts_help_shows_its_entry_points_usage_and_flags(name, flag):
    """pip's wrapper is the console script's __main__, and absl's --help prints __main__'s docstring
    and key flags: without the lending, `dmkeras-train --help` showed a bare USAGE line."""
    wrapper = f"import sys; sys.argv[0] = 'dmkeras-{name}'; from launch.{name} import cli; cli()"
    proc = subprocess.run([sys.executable, "-c", wrapper, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    module_doc = ast.get_docstring(ast.parse(open(os.path.join(REPO, "launch", f"{name}.py")).read()))
    assert module_doc.splitlines()[0] in proc.stdout, proc.stdout + proc.stderr
    assert f"dmkeras-{name}:" in proc.stdout and f"  {flag}:" in proc.stdout


@pytest.mark.parametrize(
    "name",
    sorted(n[:-4] for n in os.listdir(os.path.join(REPO, "launch", "configs")) if n.endswith(".cfg") and not n.startswith("common_")),
)
def test_every_packaged_flagfile_is_a_valid_config(name):

    from dmkeras.config import TrainConfig, flat_fields

    fields = {f.name: f for f, _ in flat_fields(TrainConfig)}
    values = {}
    for arg in flags_util.expand_flagfiles(["p", f"--flagfile={name}"])[1:]:
        key, has_value, value = arg.removeprefix("--").partition("=")
        if not has_value and key.startswith("no") and key[2:] in fields:  # absl's --noflag
            key, value = key[2:], "false"
        assert key in fields, f"{name}: unknown flag --{key}"
        kind = type(fields[key].default)
        values[key] = (value.lower() in ("true", "")) if kind is bool else kind(value)
    TrainConfig(**values, workdir="w").validate()


def test_a_ctrl_c_dropped_by_a_finalizer_still_stops_the_run(capsys):
    """Python drops a KeyboardInterrupt raised inside __del__ (a Ctrl-C that lands while TensorFlow
    dismantles a graph: seen once in test_an_interrupted_run_keeps_every_finished_epoch, whose run
    then trained on); run_or_exit interrupts again, so the run still stops with status 130."""

    class Finalized:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the KeyboardInterrupt is raised here, inside __del__
            for _ in range(1000):
                pass

    def run():
        Finalized()
        deadline = time.time() + 10
        while time.time() < deadline:
            time.sleep(0.01)
        return "ran on"

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a launch command
    try:
        start = time.time()
        with pytest.raises(SystemExit) as exit_info:
            flags_util.run_or_exit(run)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert exit_info.value.code == 130 and time.time() - start < 5
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("interrupted:")
