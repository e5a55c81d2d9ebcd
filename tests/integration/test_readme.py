"""README.md documents the commands CI and users actually run."""

import os

from tests.helpers import REPO


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
