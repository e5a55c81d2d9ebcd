"""Exact resume: a checkpoint at the end of every epoch, written so that a crash never loses one.

A checkpoint holds both nets' weights (BatchNorm statistics included; and their projection heads'
under the contrastive term), both optimizers' variables
(momentum, iteration count), each net's loss history (the co-divide averaging), the epoch logs
and the elapsed time. Nothing else is needed to continue exactly: every random draw of an epoch
(plans, augmentation, mixing) is seeded from (seed, epoch, net), not from a running state.

Writing is atomic at the directory level: the new checkpoint is written to `checkpoint.tmp/`,
`state.json` last; then `checkpoint/` is renamed to `checkpoint.old/`, `checkpoint.tmp/` to
`checkpoint/`, and `checkpoint.old/` removed. A process killed at any point leaves either
`checkpoint/` or `checkpoint.old/` complete, and `latest` picks the complete one.

Files a run keeps outside the checkpoint but must resume with (the best-validation weights of
`callbacks.BestValidation` in `best/`) are copied into it (`keep`), so they are the files as they
were at that epoch's end, and `restore_kept` copies them back. A file unchanged since the previous
checkpoint (same size and modification time; copies keep the time) is hard-linked to that
checkpoint's copy instead of copied again: only checkpoint files are linked together, and nothing
writes them in place.
"""

import json
import os
import shutil
import time

import keras
import numpy as np

from dmkeras.rundir import RunDir

STATE = "state.json"
# Tests set this to "EPOCH:STAGE:SECONDS" to hold the writer of checkpoint EPOCH at STAGE
# ("files": files written, state.json not yet; "swap": checkpoint/ already moved to
# checkpoint.old/) so that a kill can land exactly there.
PAUSE_ENV = "DMKERAS_CHECKPOINT_PAUSE"


def _pause_for_tests(epoch: int, stage: str) -> None:
    setting = os.environ.get(PAUSE_ENV, "")
    if setting:
        at_epoch, at_stage, seconds = setting.split(":")
        if int(at_epoch) == epoch and at_stage == stage:
            time.sleep(float(seconds))


def _complete(path: str) -> bool:
    return os.path.isfile(os.path.join(path, STATE))


def _directories(workdir: str) -> tuple[str, str, str]:
    """The run's checkpoint directory (RunDir.checkpoint_dir) and its .old / .tmp siblings."""
    current = RunDir(workdir).checkpoint_dir
    return current, current + ".old", current + ".tmp"


def latest(workdir: str) -> str | None:
    """The newest complete checkpoint directory of a run, or None."""
    current, old, _ = _directories(workdir)
    for path in (current, old):
        if _complete(path):
            return path
    return None


KEPT = "kept"


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return sa.st_size == sb.st_size and sa.st_mtime_ns == sb.st_mtime_ns


def _keep_file(src: str, dst: str, previous: str) -> None:
    """Copy src to dst, or hard-link the previous checkpoint's copy when src has not changed."""
    if _same_file(src, previous):
        try:
            os.link(previous, dst)
            return
        except OSError:  # a filesystem without hard links
            pass
    shutil.copy2(src, dst)


def save(workdir: str, model, codivide, history: list[dict], elapsed_s: float, keep=()) -> None:
    """Write the checkpoint of the epochs in `history`; `keep`: sub-directories of workdir whose
    files go into it as they are now (see `restore_kept`)."""
    run = RunDir(workdir)
    current, old, tmp = _directories(workdir)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    arrays = {}
    for k, (net, optimizer) in enumerate(zip(model.nets, model.optimizers)):
        net.save_weights(os.path.join(tmp, f"net{k + 1}.weights.h5"))
        for i, variable in enumerate(_head_variables(model, k)):
            arrays[f"head{k + 1}_{i}"] = keras.ops.convert_to_numpy(variable)
        for i, variable in enumerate(optimizer.variables):
            arrays[f"opt{k + 1}_{i}"] = keras.ops.convert_to_numpy(variable)
    for k, loss_history in enumerate(codivide.histories):
        for i, losses in enumerate(loss_history.entries):
            arrays[f"losses{k + 1}_{i}"] = losses
    np.savez(os.path.join(tmp, "arrays.npz"), **arrays)
    for name in keep:
        source = run.file(name)
        if os.path.isdir(source):
            os.makedirs(os.path.join(tmp, KEPT, name))
            for entry in sorted(os.listdir(source)):
                if ".tmp" not in entry and os.path.isfile(os.path.join(source, entry)):  # not a half-written file
                    _keep_file(os.path.join(source, entry), os.path.join(tmp, KEPT, name, entry),
                               os.path.join(current, KEPT, name, entry))
    _pause_for_tests(len(history), "files")
    state = {
        "epoch": len(history),
        "history": history,
        "elapsed_s": elapsed_s,
        "loss_history_lengths": [len(h.entries) for h in codivide.histories],
        "optimizer_variables": [len(o.variables) for o in model.optimizers],
    }
    with open(os.path.join(tmp, STATE), "w") as f:  # written last: marks the checkpoint complete
        json.dump(state, f)
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(current):
        os.replace(current, old)
    _pause_for_tests(len(history), "swap")
    os.replace(tmp, current)
    shutil.rmtree(old, ignore_errors=True)


def restore(path: str, model, codivide) -> dict:
    """Load a checkpoint into the (built, compiled) model and the CoDivide callback; return its state."""
    with open(os.path.join(path, STATE)) as f:
        state = json.load(f)
    arrays = np.load(os.path.join(path, "arrays.npz"))
    for k, (net, optimizer) in enumerate(zip(model.nets, model.optimizers)):
        net.load_weights(os.path.join(path, f"net{k + 1}.weights.h5"))
        for i, variable in enumerate(_head_variables(model, k)):
            variable.assign(arrays[f"head{k + 1}_{i}"])
        for i, variable in enumerate(optimizer.variables):
            variable.assign(arrays[f"opt{k + 1}_{i}"])
    for k, (loss_history, n) in enumerate(zip(codivide.histories, state["loss_history_lengths"])):
        loss_history.entries = [arrays[f"losses{k + 1}_{i}"] for i in range(n)]
    return state


def _head_variables(model, k) -> list:
    """Net k's projection-head variables (the contrastive term's; none without it)."""
    heads = getattr(model, "projection_heads", ())
    return list(heads[k].variables) if heads else []


def restore_kept(path: str, workdir: str, name: str) -> None:
    """Make workdir/name hold exactly the files checkpoint `path` kept of it (none when it kept
    none: a checkpoint written before the run had them)."""
    target = RunDir(workdir).file(name)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    source = os.path.join(path, KEPT, name)
    if os.path.isdir(source):
        for entry in sorted(os.listdir(source)):
            shutil.copy2(os.path.join(source, entry), os.path.join(target, entry))


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (after `recorder` has logged the epoch, and
    after the callbacks that write the `keep` directories)."""

    def __init__(self, workdir: str, codivide, recorder, keep=()):
        super().__init__()
        self.workdir, self.codivide, self.recorder, self.keep = workdir, codivide, recorder, tuple(keep)

    def on_epoch_end(self, epoch, logs=None):
        save(self.workdir, self.model, self.codivide, self.recorder.history, self.recorder.elapsed_s, keep=self.keep)
