"""The README's digits claims, run in full (about 4 minutes on 2 cores): `pytest -m slow`."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _summary(tmp_path, *flags):
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", f"--workdir={tmp_path}", "--verbose=0", *flags],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(tmp_path, "summary.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_digits_sym50_dividemix_beats_the_memorising_baseline(tmp_path):
    dividemix = _summary(tmp_path / "dm", "--flagfile=launch/configs/digits_sym50.cfg")
    standard = _summary(tmp_path / "ce", "--flagfile=launch/configs/digits_sym50.cfg", "--method=standard")
    assert dividemix["test_acc_last"] >= 0.97 and dividemix["division_auc_last"] >= 0.97
    assert standard["test_acc_best"] - standard["test_acc_last"] > 0.15  # the small CNN memorises the noise
    assert dividemix["test_acc_last"] - standard["test_acc_last"] > 0.2
