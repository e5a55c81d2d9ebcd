"""The run directory: every file a run (`launch.train`, `launch.audit`) writes, named once here,
and the one way its JSON files are written (atomically) and read (one clear error line).

    >>> run = RunDir("runs/digits_sym50")
    >>> run.summary()["test_acc_best"], run.net_path(0)          # summary.json, net1.keras
    >>> run.write_json(RunDir.SUMMARY, summary)                  # temp file + os.replace

A training run's directory holds `config.json` (the resolved TrainConfig), `dataset.json` (what
serving needs: shape, classes, normalisation), `noisy_labels.json` (the labels it trained on),
`metrics.csv` and `summary.json` (written each epoch), `tensorboard/`, `curves.png` /
`loss_distribution.png`, `net1.keras` / `net2.keras` (the last epoch's nets), `checkpoint/`
(`checkpoint.py`'s layout, with its `.old` / `.tmp` siblings), `best/` (`callbacks.BestValidation`'s
layout) and, for --method=cleanlab, `cleanlab/` (the cross-validation folds). An audit's directory
holds `samples.csv`, `sweep.csv`, `audit_summary.json`, its plots and `scoring_model/` (a training
run directory).

Standard library and `dmkeras.errors` only: every module may import it.
"""

from __future__ import annotations

import json
import os
import secrets

from dmkeras.errors import DmkerasError

__all__ = ["RunDir", "write_json_atomic"]


def write_json_atomic(path, data, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """Write `data` as JSON to `path` so that `path` is always either the old file or the new one.

    The data is serialised first (a failure leaves nothing on disk), written to a temporary file
    beside `path` (its name holds ".tmp"), flushed to disk, and `os.replace`d over `path`; the
    temporary file is removed if anything fails. The file gets the usual permissions (umask)."""
    path = os.fspath(path)
    text = json.dumps(data, indent=indent, sort_keys=sort_keys)
    parent, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(parent, f".{base}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class RunDir:
    """A run directory at `path` (it need not exist yet): its file names, paths and JSON files."""

    # a training run (launch.train, experiment.run)
    CONFIG = "config.json"
    DATASET = "dataset.json"
    SUMMARY = "summary.json"
    NOISY_LABELS = "noisy_labels.json"
    METRICS = "metrics.csv"
    TENSORBOARD = "tensorboard"
    CURVES = "curves.png"
    LOSS_DISTRIBUTION = "loss_distribution.png"
    CHECKPOINT = "checkpoint"
    BEST = "best"
    CLEANLAB = "cleanlab"
    NETS = ("net1.keras", "net2.keras")
    # an audit (launch.audit, audit_run.run); it also writes LOSS_DISTRIBUTION
    AUDIT_SUMMARY = "audit_summary.json"
    SAMPLES = "samples.csv"
    SWEEP = "sweep.csv"
    SWEEP_PLOT = "sweep.png"
    DIVISION_OVER_EPOCHS = "division_over_epochs.png"
    SCORING_MODEL = "scoring_model"

    def __init__(self, path):
        self.path = os.fspath(path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    def file(self, name: str) -> str:
        """The path of `name` (one of the constants above) in the directory."""
        return os.path.join(self.path, name)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    # -- paths -------------------------------------------------------------------------------

    @property
    def config_path(self) -> str:
        return self.file(self.CONFIG)

    @property
    def dataset_path(self) -> str:
        return self.file(self.DATASET)

    @property
    def summary_path(self) -> str:
        return self.file(self.SUMMARY)

    @property
    def noisy_labels_path(self) -> str:
        return self.file(self.NOISY_LABELS)

    @property
    def metrics_path(self) -> str:
        return self.file(self.METRICS)

    @property
    def tensorboard_dir(self) -> str:
        return self.file(self.TENSORBOARD)

    @property
    def curves_path(self) -> str:
        return self.file(self.CURVES)

    @property
    def loss_distribution_path(self) -> str:
        return self.file(self.LOSS_DISTRIBUTION)

    @property
    def checkpoint_dir(self) -> str:
        """`checkpoint/`: the latest checkpoint (checkpoint.py writes `.tmp` / `.old` beside it)."""
        return self.file(self.CHECKPOINT)

    @property
    def best_dir(self) -> str:
        """`best/`: each net's best-validation weights (callbacks.BestValidation)."""
        return self.file(self.BEST)

    @property
    def cleanlab_dir(self) -> str:
        return self.file(self.CLEANLAB)

    @classmethod
    def net_name(cls, k: int) -> str:
        """The file name of net k (0-based: 0 -> net1.keras)."""
        return cls.NETS[k]

    def net_path(self, k: int) -> str:
        """The path of net k (0-based: 0 -> net1.keras)."""
        return self.file(self.net_name(k))

    def net_paths(self) -> list[str]:
        """The paths of the net files the directory holds, in order (none before a run's end)."""
        return [self.file(name) for name in self.NETS if os.path.isfile(self.file(name))]

    # -- JSON files --------------------------------------------------------------------------

    def write_json(self, name: str, data) -> None:
        """Write `data` to the JSON file `name` atomically (see `write_json_atomic`)."""
        write_json_atomic(self.file(name), data)

    def read_json(self, name: str):
        """The content of the JSON file `name`; a missing or unreadable file is one DmkerasError line."""
        path = self.file(name)
        if not os.path.isfile(path):
            raise DmkerasError(f"{self.path}: not a dmkeras run directory (no {name})")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (ValueError, UnicodeDecodeError) as error:  # json.JSONDecodeError is a ValueError
            raise DmkerasError(f"{path}: not valid JSON ({error})") from None
        except OSError as error:
            raise DmkerasError(f"{path}: cannot be read ({error.strerror or error})") from None

    def _read_object(self, name: str) -> dict:
        data = self.read_json(name)
        if not isinstance(data, dict):
            raise DmkerasError(f"{self.file(name)}: not a JSON object (a {type(data).__name__})")
        return data

    def config(self) -> dict:
        """config.json: the run's TrainConfig as a dict."""
        return self._read_object(self.CONFIG)

    def dataset(self) -> dict:
        """dataset.json: the data set's name, shape, classes and normalisation."""
        return self._read_object(self.DATASET)

    def summary(self) -> dict:
        """summary.json: the run's figures ("finished": false until its end)."""
        return self._read_object(self.SUMMARY)
