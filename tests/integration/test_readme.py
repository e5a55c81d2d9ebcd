"""README.md documents the commands CI and users actually run, and its results tables are what
`launch.report` prints from the committed run summaries."""

import glob
import os
import shlex
import subprocess

from tests.helpers import REPO, run_module


def _read(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


def test_ci_runs_the_test_command_written_in_the_readme():
    command = [line for line in _read(".ci", "run").splitlines() if line.startswith("python3.11 -m venv")]
    assert len(command) == 1
    assert command[0] in _read("README.md")


def test_readme_demo_command_uses_an_existing_flagfile():
    readme = _read("README.md")
    assert "--flagfile=launch/configs/digits_sym50.cfg" in readme
    assert os.path.exists(os.path.join(REPO, "launch", "configs", "digits_sym50.cfg"))


def test_the_python_example_runs_as_written(tmp_path, monkeypatch):
    """README's "In Python" block, executed verbatim: it trains, evaluates, ranks label issues,
    saves and reloads."""
    import numpy as np

    text = open(os.path.join(REPO, "README.md")).read()
    code = text.split("## In Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 14
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    model, x, y, y_true = namespace["model"], namespace["x"], namespace["y"], namespace["y_true"]
    assert model.evaluate(x[1500:], y_true[1500:], return_dict=True, verbose=0)["acc"] > 0.85  # 94.3% when written
    flagged = model.label_issues()[:10]
    assert np.mean(y[flagged] != y_true[flagged]) >= 0.9  # the top ten are (nearly all) wrong labels
    assert (tmp_path / "digits.keras").exists()


def _report_blocks(lines):
    """(line number, `launch.report` arguments, the table after the command's code block) for every
    `python -m launch.report ...` line of README.md."""
    for i, line in enumerate(lines):
        if not line.startswith("python -m launch.report "):
            continue
        j = lines.index("```", i) + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        k = j
        while k < len(lines) and lines[k].startswith("|"):
            k += 1
        yield i + 1, shlex.split(line)[3:], lines[j:k]


def test_every_readme_table_is_what_launch_report_prints(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "docs/results"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    blocks = list(_report_blocks(_read("README.md").splitlines()))
    assert len(blocks) >= 6  # the digits, seeds x splits and switches tables
    for number, args, table in blocks:
        assert table, f"README.md:{number}: no table after the launch.report command"
        flags = [f"--plot={tmp_path}/plot.png" if a.startswith("--plot=") else a for a in args if a.startswith("--")]
        runs = []
        for pattern in (a for a in args if not a.startswith("--")):
            matched = [path for path in sorted(glob.glob(pattern, root_dir=REPO)) if any(f.startswith(path + "/") for f in tracked)]
            assert matched, f"README.md:{number}: {pattern} matches no run summary committed to git"
            runs += [os.path.join(REPO, path) for path in matched]
        result = run_module("launch.report", *flags, *runs)
        assert result.returncode == 0, result.stderr
        printed = [line.replace(REPO + "/", "") for line in result.stdout.splitlines() if line.startswith("|")]
        assert printed == table, f"README.md:{number}: the table differs from launch.report's output"
