"""dmkeras.rundir: the run directory's names, its atomic JSON writes and its one-line read errors."""

import json
import os

import pytest

from dmkeras import callbacks, checkpoint, rundir
from dmkeras.errors import DmkerasError
from dmkeras.rundir import RunDir, write_json_atomic


def _files(directory):
    return sorted(os.listdir(directory))


def test_write_json_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    run = RunDir(tmp_path)
    run.write_json(RunDir.SUMMARY, {"b": 1, "a": [1.5, None]})
    run.write_json(RunDir.SUMMARY, {"b": 2, "a": [2.5, None]})
    assert _files(tmp_path) == ["summary.json"]
    text = (tmp_path / "summary.json").read_text()
    assert text == json.dumps({"a": [2.5, None], "b": 2}, indent=2, sort_keys=True)  # the format runs always had
    assert run.summary() == {"a": [2.5, None], "b": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "summary.json").st_mode & 0o777 == 0o666 & ~umask  # not a temp file's 0600


def test_a_failing_serialisation_keeps_the_old_file(tmp_path):
    run = RunDir(tmp_path)
    run.write_json(RunDir.CONFIG, {"epochs": 3})
    with pytest.raises(TypeError):
        run.write_json(RunDir.CONFIG, {"epochs": 4, "oops": object()})
    assert _files(tmp_path) == ["config.json"]
    assert run.config() == {"epochs": 3}


def test_a_failing_write_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "dataset.json"
    write_json_atomic(path, {"num_classes": 10})

    def fail(src, dst):
        assert ".tmp" in os.path.basename(src) and os.path.isfile(src)  # the new content was on disk, beside the file
        raise OSError("disk full")

    monkeypatch.setattr(rundir.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, {"num_classes": 3})
    assert _files(tmp_path) == ["dataset.json"]
    assert json.loads(path.read_text()) == {"num_classes": 10}


def test_callbacks_keeps_write_json_atomic_as_an_alias():
    assert callbacks.write_json_atomic is write_json_atomic


def test_reading_a_missing_file_is_one_line(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(DmkerasError) as error:
        run.summary()
    assert str(error.value) == f"{tmp_path}: not a dmkeras run directory (no summary.json)"
    with pytest.raises(DmkerasError, match=r"not a dmkeras run directory \(no config.json\)"):
        RunDir(tmp_path / "nowhere").config()
    assert not RunDir(tmp_path / "nowhere").exists() and run.exists()


@pytest.mark.parametrize("content, message", [
    ('{"epochs": 3', "not valid JSON"),
    ("", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    ("[1, 2]", "not a JSON object (a list)"),
])
def test_reading_a_corrupt_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DmkerasError) as error:
        RunDir(tmp_path).config()
    text = str(error.value)
    assert text.startswith(f"{path}: {message}") and "\n" not in text


def test_the_names_are_what_experiment_run_writes(tmp_path, digits_config):
    from dmkeras import experiment
    from dmkeras.data import noise as noise_lib

    config = digits_config(tmp_path / "run", noise_rate=0.5)
    summary = experiment.run(config)
    run = RunDir(config.runtime.workdir)
    expected = sorted([
        RunDir.CONFIG, RunDir.DATASET, RunDir.SUMMARY, RunDir.NOISY_LABELS, RunDir.METRICS, RunDir.TENSORBOARD,
        RunDir.CURVES, RunDir.LOSS_DISTRIBUTION, RunDir.CHECKPOINT, RunDir.net_name(0), RunDir.net_name(1),
    ])
    assert _files(run.path) == expected  # every file named in RunDir, no temporary file left
    assert run.config() == config.flat()
    assert run.summary() == summary and summary["finished"] is True
    assert run.dataset()["num_classes"] == 10 and run.dataset()["num_train"] == 120
    assert len(noise_lib.load_noise_file(run.noisy_labels_path, 120, 10)) == 120
    assert run.net_paths() == [run.net_path(0), run.net_path(1)] == [str(tmp_path / "run" / f"net{k}.keras") for k in (1, 2)]
    assert checkpoint.latest(run.path) == run.checkpoint_dir
    assert os.path.getsize(run.metrics_path) > 0 and os.listdir(run.tensorboard_dir)
