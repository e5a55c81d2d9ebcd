"""README.md documents the commands CI and users actually run."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
