"""`python -m launch.audit` end to end on a small digits run, and its one-line errors."""

import json
import os

import pytest

from dmkeras import audit
from tests.helpers import csv_rows, run_module

SMALL = ["--flagfile=launch/configs/digits_sym50.cfg", "--train_limit=300", "--test_limit=60", "--verbose=0"]


@pytest.fixture(scope="module")
def training_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("train"))
    proc = run_module("launch.train", *SMALL, "--epochs=3", "--warm_up=1", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def audit_of_run(training_run, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("audit"))
    proc = run_module(
        "launch.audit", *SMALL, "--epochs=3", "--warm_up=1", f"--from_run={training_run}", f"--workdir={workdir}",
        "--thresholds=0,0.5,0.9", "--retrain", "--retrain_epochs=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, proc


def test_audit_writes_samples_sweep_plots_and_summary(audit_of_run):
    workdir, _ = audit_of_run
    for name in ("samples.csv", "sweep.csv", "audit_summary.json", "loss_distribution.png", "sweep.png", "division_over_epochs.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name


def test_samples_csv_has_a_row_per_training_sample(audit_of_run, training_run):
    workdir, _ = audit_of_run
    rows = csv_rows(os.path.join(workdir, "samples.csv"))
    assert list(rows[0].keys()) == audit.samples_columns(2, True)
    assert len(rows) == 300 and sorted(int(r["rank"]) for r in rows) == list(range(1, 301))
    with open(os.path.join(training_run, "noisy_labels.json")) as f:
        assert [int(r["given_label"]) for r in rows] == json.load(f)  # the labels the run trained on
    noisy = [r for r in rows if r["is_noisy"] == "1"]
    assert all(r["true_label"] != r["given_label"] for r in noisy) and 90 < len(noisy) < 190  # ~0.45 * 300


def test_sweep_csv_with_retraining_accuracy(audit_of_run):
    workdir, proc = audit_of_run
    rows = csv_rows(os.path.join(workdir, "sweep.csv"))
    assert list(rows[0].keys()) == audit.sweep_columns(10, True, True)
    assert [r["threshold"] for r in rows] == ["0", "0.5", "0.9"]
    assert rows[0]["kept"] == "300" and all(0 <= float(r["test_acc"]) <= 1 for r in rows if int(r["kept"]) > 0)
    kept = [int(r["kept"]) for r in rows]
    assert kept == sorted(kept, reverse=True)
    assert "Threshold sweep (gmm division" in proc.stdout and "kept per class" in proc.stdout
    with open(os.path.join(workdir, "audit_summary.json")) as f:
        summary = json.load(f)
    assert 0.0 <= summary["dividemix_detector"]["auc"] <= 1.0


def test_audit_refuses_a_run_of_other_data(training_run, tmp_path):
    proc = run_module("launch.audit", *SMALL[:1], "--train_limit=200", f"--from_run={training_run}", f"--workdir={tmp_path}")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--train_limit=300" in last and "Traceback" not in proc.stderr


def test_audit_refuses_thresholds_outside_zero_one(training_run, tmp_path):
    proc = run_module("launch.audit", *SMALL, f"--from_run={training_run}", f"--workdir={tmp_path}", "--thresholds=0.2,1.3")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == "error: --thresholds must lie in [0, 1], got 1.3"


def test_cleanlab_side_by_side(training_run, tmp_path):
    pytest.importorskip("cleanlab")
    proc = run_module(
        "launch.audit", *SMALL, f"--from_run={training_run}", f"--workdir={tmp_path}", "--thresholds=0.5",
        "--compare=cleanlab", "--cv_folds=2", "--cv_epochs=1", "--retrain_epochs=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "detector" in proc.stdout and "cleanlab" in proc.stdout
    with open(tmp_path / "audit_summary.json") as f:
        summary = json.load(f)
    for name in ("dividemix", "cleanlab"):
        result = summary["cleanlab"][name]
        assert set(result) >= {"flagged", "precision", "recall", "f1", "auc", "test_acc_after_cleaning"}
        assert 0 <= result["auc"] <= 1
