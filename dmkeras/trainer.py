"""The epoch loop: Keras callbacks around passes that `CoDivide` plans each epoch.

Keras' own `fit` reads one dataset with a fixed number of steps and calls one compiled train
function; a DivideMix epoch is two passes (net 1, then net 2) of different lengths over
pipelines rebuilt every epoch, each with its own compiled step. So the loop is written here,
with Keras' `CallbackList` and `Progbar`, and callbacks behave as under `fit`
(`on_train_begin`, `on_epoch_begin`, `on_epoch_end(epoch, logs)`, `model.stop_training`).
"""

import ctypes
import ctypes.util
import gc
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from dmkeras import metrics, ops
from dmkeras.codivide import CoDivide, EpochPass
from dmkeras.errors import TrainingDiverged
from dmkeras.model import SEMI_SUPERVISED


def _load_malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_MALLOC_TRIM = _load_malloc_trim()


def return_freed_heap_to_os() -> bool:
    """Hands the heap pages that freed memory left behind back to the OS (glibc's `malloc_trim`).

    An epoch frees its pipelines, batches and scoring arrays, but glibc keeps the freed pages in
    its arenas, fragmented between live blocks: on 12,000 Fashion-MNIST images the trim handed back
    150-250 MiB at every epoch end (BUILD.md, "Fashion-MNIST"). Trimming changes
    no number, only what the process keeps resident. False where there is no glibc.
    """
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def train(
    model,
    codivide: CoDivide,
    *,
    epochs: int,
    test_data=None,
    lambda_u: float = 0.0,
    rampup_epochs: float = 16.0,
    callbacks=(),
    initial_epoch: int = 0,
    seed: int = 0,
    verbose: int = 1,
    extra_test_data=None,
    val_data=None,
):
    """Train `model` (DivideMixModel or StandardModel) and return the list of epoch logs.

    `lambda_u` ramps up over `rampup_epochs` from the end of `codivide.warm_up`.
    Each epoch: `codivide` plans the passes, every pass runs its compiled step over its
    pipeline, then the test set is evaluated (logged as test_acc, test_acc_net1, test_acc_net2,
    and test_acc_top5 with more than 5 classes), and `extra_test_data` if given (extra_test_acc...).
    `val_data` (a validation set, as the reference's Clothing1M clean val list) is evaluated first
    when given: val_acc (the ensemble), val_acc_net1 and val_acc_net2 (each net alone, what
    callbacks.BestValidation selects on).
    `test_data=None` evaluates no test set (`dmkeras.DivideMix.fit`).

    Batch-level hooks: every step of every pass calls `on_train_batch_begin(batch)` and
    `on_train_batch_end(batch, logs)` of the callbacks, `batch` counting the epoch's steps over its
    passes and `logs` the step's losses named as the epoch's (net1_loss, ...).
    """
    callback_list = keras.callbacks.CallbackList([codivide, *callbacks], model=model)
    history = []
    model.stop_training = False
    callback_list.on_train_begin()
    # The per-epoch collection below then scans only what this training made: a full one over
    # the ~500k objects of a TensorFlow process took 0.5-1 s (frozen objects are not freed until
    # `gc.unfreeze`, at the end).
    gc.freeze()
    try:
        for epoch in range(initial_epoch, epochs):
            started = time.time()
            callback_list.on_epoch_begin(epoch)
            logs = {"epoch": epoch + 1, **codivide.epoch_logs, "lr": float(keras.ops.convert_to_numpy(model.optimizers[0].learning_rate))}
            first_batch = 0  # batch index of the pass's first step, counted over the epoch's passes
            for epoch_pass in codivide.passes:
                if verbose == 1:
                    print(_pass_title(epoch, epochs, epoch_pass), flush=True)
                logs.update(
                    run_pass(model, epoch_pass, epoch=epoch, warm_up=codivide.warm_up, lambda_u=lambda_u, rampup_epochs=rampup_epochs, seed=seed,
                             verbose=verbose, callbacks=callback_list, first_batch=first_batch)
                )
                first_batch += epoch_pass.num_steps
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in model.accuracy(val_data).items() if not k.startswith("acc_top")})
            if test_data is not None:
                logs.update({f"test_{k}": v for k, v in model.accuracy(test_data).items()})
            if extra_test_data is not None:
                logs.update({f"extra_test_{k}": v for k, v in model.accuracy(extra_test_data).items()})
            # Every tf.data `map` traces a FuncGraph that sits in a reference cycle (TensorFlow's own:
            # graph <-> operations), and each epoch builds new pipelines (the passes, the scoring, the
            # evaluation). Only a full collection frees them, with the native graphs and functions they
            # hold; the interpreter runs one rarely in a process this size, so without this the memory
            # grew by the epoch's pipelines every epoch.
            gc.collect()
            return_freed_heap_to_os()
            logs["epoch_time_s"] = time.time() - started
            logs["rss_mb"] = metrics.resident_memory_mb()
            callback_list.on_epoch_end(epoch, logs)
            history.append(dict(logs))
            if model.stop_training:
                break
    finally:
        gc.unfreeze()
    callback_list.on_train_end(history[-1] if history else {})
    return history


def run_pass(model, epoch_pass: EpochPass, *, epoch, warm_up, lambda_u, rampup_epochs, seed, verbose=1, callbacks=None,
             first_batch=0) -> dict:
    """Run one net's pass; return its mean losses as {"net1_loss": ..., ...}.

    `callbacks` (a keras CallbackList, optional): its batch hooks are called around every step, with
    batch numbers from `first_batch` and the step's losses as {"net1_loss": ...} at the end."""
    prefix = f"net{epoch_pass.net + 1}_"
    if epoch_pass.num_steps == 0:
        return {}
    ssl = epoch_pass.phase == SEMI_SUPERVISED
    step_fn = model.step_function(epoch_pass.phase, epoch_pass.net, with_unlabeled=epoch_pass.with_unlabeled)
    rng = np.random.default_rng([seed, epoch, epoch_pass.net, 2])  # stream tag 2: see CoDivide._rng
    # Keras' bar redraws itself with ANSI escapes and carriage returns (it takes any POSIX stdout for
    # a terminal): only on a terminal or in a notebook; else (a log file, a pipe) Progbar's verbose 2,
    # one plain line at the end of the pass.
    interactive = (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()) or "ipykernel" in sys.modules
    progbar = keras.utils.Progbar(epoch_pass.num_steps, verbose=0 if verbose != 1 else 1 if interactive else 2)
    totals = {}
    iterator = iter(epoch_pass.dataset)
    for step in range(epoch_pass.num_steps):
        if callbacks is not None:
            callbacks.on_train_batch_begin(first_batch + step)
        if ssl:
            # lambda_u ramps over fractional epochs, as the reference's epoch + batch_idx / num_iter
            ramp = ops.linear_rampup(epoch + step / epoch_pass.ramp_iterations, warm_up, lambda_u, rampup_epochs)
            out = step_fn(iterator, *ssl_step_scalars(model, rng, ramp))
        else:
            out = step_fn(iterator)
        values = {name: float(value) for name, value in out.items()}
        _check_finite(values, epoch, step, epoch_pass, model)
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + value
        if callbacks is not None:
            callbacks.on_train_batch_end(first_batch + step, {prefix + name: value for name, value in values.items()})
        progbar.update(step + 1, values=list(values.items()))
    # One value per replica again for the net's moving statistics before anything evaluates it: the
    # peer's eval-mode forward in the next pass, the co-divide scoring of the next epoch, the test
    # accuracy, checkpoints. Only the pass's net trained, so the other net is already in sync.
    model.sync_replica_statistics(epoch_pass.net)
    means = {prefix + name: total / epoch_pass.num_steps for name, total in totals.items()}
    if verbose == 2:
        print(f"  {_pass_title(epoch, None, epoch_pass)}: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()), flush=True)
    return means


def _check_finite(values: dict, epoch: int, step: int, epoch_pass: EpochPass, model) -> None:
    """Stop at the first non-finite loss, naming where and which (a part before the total)."""
    bad = [name for name, value in values.items() if not math.isfinite(value)]
    if not bad:
        return
    name = next((n for n in bad if n != "loss"), bad[0])
    lr = float(keras.ops.convert_to_numpy(model.optimizers[epoch_pass.net].learning_rate))
    phase = "semi-supervised" if epoch_pass.phase == SEMI_SUPERVISED else "warm-up"
    raise TrainingDiverged(
        f"training diverged: epoch {epoch + 1}, {phase} step {step + 1}/{epoch_pass.num_steps} of net {epoch_pass.net + 1}: "
        f"{'the total loss' if name == 'loss' else f'its {name} term'} is {values[name]} (not finite); "
        f"lower the learning rate (now {lr:g}) or check the inputs. "
        "This epoch was not checkpointed: a rerun resumes from the last finished one"
    )


def ssl_step_scalars(model, rng: np.random.Generator, lambda_u: float):
    """The host-side arguments of one semi-supervised step after the iterator: the mix lambda
    (Beta, drawn on the host), the current lambda_u and the seed of the mixing permutation, as
    tensors (a Python scalar would make the tf.function trace again for every new value)."""
    return (
        tf.constant(ops.sample_mix_lambda(rng, model.mixup_alpha), tf.float32),
        tf.constant(lambda_u, tf.float32),
        tf.constant(rng.integers(2**31, size=2), tf.int64),
    )


def _pass_title(epoch, epochs, epoch_pass: EpochPass) -> str:
    of = f"/{epochs}" if epochs else ""
    what = "warm-up" if epoch_pass.phase != SEMI_SUPERVISED else (
        f"semi-supervised on {epoch_pass.num_labeled} labeled + {epoch_pass.num_unlabeled} unlabeled"
    )
    return f"Epoch {epoch + 1}{of} - net {epoch_pass.net + 1} - {what}"
