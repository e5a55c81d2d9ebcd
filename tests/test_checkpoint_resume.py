"""Exact resume: a run killed with SIGKILL and started again ends as an uninterrupted run."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dmkeras import checkpoint, metrics
from tests.helpers import REPO, run_module

FLAGS = [
    "--flagfile=launch/configs/digits_sym50.cfg", "--train_limit=300", "--test_limit=60", "--epochs=7", "--warm_up=2",
    "--lr_drop_epoch=5", "--verbose=0",
]


def _flags(workdir):
    return [*FLAGS, f"--workdir={workdir}"]


def _command(workdir):
    return [sys.executable, "-m", "launch.train", *_flags(workdir)]


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.csv")) as f:
        return [{k: v for k, v in row.items() if k not in metrics.MEASURED} for row in csv.DictReader(f)]


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json")) as f:
        return {k: v for k, v in json.load(f).items() if k not in metrics.SUMMARY_MEASURED}


def _checkpointed_epochs(workdir):
    path = checkpoint.latest(str(workdir))
    if path is None:
        return 0
    try:
        with open(os.path.join(path, checkpoint.STATE)) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("whole")
    proc = run_module("launch.train", *_flags(workdir), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_sigkill_then_rerun_ends_with_the_same_metrics(uninterrupted, tmp_path):
    proc = subprocess.Popen(_command(tmp_path), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and _checkpointed_epochs(tmp_path) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # mid-epoch 4 (or while writing its checkpoint)
    proc.wait(timeout=60)
    done = _checkpointed_epochs(tmp_path)
    assert 3 <= done < 7, "the run was not interrupted mid-way"
    rerun = run_module("launch.train", *_flags(tmp_path), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout and f"{done} of 7 epochs done" in rerun.stdout
    assert _metrics(tmp_path) == _metrics(uninterrupted)
    assert _summary(tmp_path) == _summary(uninterrupted)


@pytest.mark.parametrize("stage", ["files", "swap"])
def test_sigkill_while_a_checkpoint_is_written_loses_only_that_epoch(uninterrupted, tmp_path, stage):
    """Killed while writing epoch 4's checkpoint: after its files but before state.json, or after
    checkpoint/ moved to checkpoint.old/ but before checkpoint.tmp/ took its place."""
    env = {**os.environ, checkpoint.PAUSE_ENV: f"4:{stage}:60"}
    proc = subprocess.Popen(_command(tmp_path), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / ("checkpoint.tmp/arrays.npz" if stage == "files" else "checkpoint.old/state.json")
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not (marker.exists() and _checkpointed_epochs(tmp_path) == 3):
        time.sleep(0.1)
    time.sleep(0.5)  # well inside the 60 s pause
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert (tmp_path / "checkpoint.tmp").exists()  # the half-written checkpoint is there ...
    assert _checkpointed_epochs(tmp_path) == 3  # ... and never replaces the good one
    rerun = run_module("launch.train", *_flags(tmp_path), timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "3 of 7 epochs done" in rerun.stdout
    assert _metrics(tmp_path) == _metrics(uninterrupted)
    assert _summary(tmp_path) == _summary(uninterrupted)


def test_rerunning_a_finished_run_changes_nothing(uninterrupted):
    before = _metrics(uninterrupted)
    proc = run_module("launch.train", *_flags(uninterrupted), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "7 of 7 epochs done" in proc.stdout
    assert _metrics(uninterrupted) == before


def test_a_checkpoint_of_another_configuration_is_refused(uninterrupted):
    proc = run_module("launch.train", *_flags(uninterrupted), "--lambda_u=5", timeout=300)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--lambda_u" in last and "another configuration" in last


def test_latest_skips_a_half_written_checkpoint(tmp_path):
    complete = tmp_path / "checkpoint.old"
    complete.mkdir()
    (complete / checkpoint.STATE).write_text("{}")
    half = tmp_path / "checkpoint"  # killed after the rename, before state.json: cannot happen, but must not be used
    half.mkdir()
    (half / "net1.weights.h5").write_bytes(b"partial")
    (tmp_path / "checkpoint.tmp").mkdir()  # killed while writing the next one
    assert checkpoint.latest(str(tmp_path)) == str(complete)
    (half / checkpoint.STATE).write_text("{}")
    assert checkpoint.latest(str(tmp_path)) == str(half)
    assert checkpoint.latest(str(tmp_path / "nothing")) is None
