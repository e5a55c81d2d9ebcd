"""The README's digits claims, run in full (about 4 minutes on 2 cores): `pytest -m slow`."""

import json
import os

import pytest

from tests.helpers import run_module


def _summary(tmp_path, *flags):
    proc = run_module("launch.train", f"--workdir={tmp_path}", "--verbose=0", *flags, timeout=1800)
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
