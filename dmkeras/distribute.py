"""tf.distribute helpers: choosing a strategy, feeding it per-replica batches, and who writes.

Batches are *global* (`--batch_size` is the reference's single-GPU batch). A pipeline yields, for
each global batch, one element per replica, in replica order (replica r gets the r-th slice of
the batch). Under `MultiWorkerMirroredStrategy` every worker runs its own input pipeline, which
must yield only the elements of its own replicas: worker w (input pipeline w) owns the global
replicas `w * L, ..., w * L + L - 1`, L = replicas per worker. `distribute` does that selection.
"""

import contextlib
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from dmkeras.config import STRATEGIES
from dmkeras.errors import ConfigError, DmkerasError

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'
)

_multi_worker_strategy = None  # one MultiWorkerMirroredStrategy per process (collectives start once)


def make_strategy(name: str = "default", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """`default` (one device), `mirrored` (all local GPUs; on a CPU-only machine, `cpu_replicas`
    logical CPU devices, which is useful to test multi-replica code, not to go faster), or
    `multi_worker` (MultiWorkerMirroredStrategy over the cluster the TF_CONFIG environment
    variable describes: every worker runs the same command, each with its own TF_CONFIG).

    Logical CPU devices and the multi-worker collectives can only be configured before TensorFlow
    initialises its devices, so call this first thing in a process.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return _make_multi_worker_strategy()
    if name != "mirrored":
        raise DmkerasError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    if cpu_replicas < 2:
        return tf.distribute.MirroredStrategy(["/cpu:0"])
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    except RuntimeError as error:  # devices already initialised with another configuration
        logical = tf.config.list_logical_devices("CPU")
        if len(logical) < cpu_replicas:
            raise DmkerasError(f"cannot split the CPU into {cpu_replicas} devices after TensorFlow started: {error}")
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_replicas)])


def parse_tf_config(text: str | None) -> dict:
    """Check the TF_CONFIG of a multi-worker run; return it parsed. Raises DmkerasError naming
    what is wrong (TensorFlow itself would silently fall back to one local worker)."""
    hint = f"set it on every host, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (index 1 on the second host)"
    if not text or not text.strip():
        raise ConfigError(f"strategy=multi_worker reads the cluster from the TF_CONFIG environment variable, which is not set: {hint}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DmkerasError(f"TF_CONFIG is not valid JSON ({error}): {hint}") from None
    if not isinstance(config, dict):
        raise DmkerasError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task': {hint}")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise DmkerasError(f"TF_CONFIG has no 'cluster' object (job name -> list of host:port): {hint}")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker"):
            raise DmkerasError(f"TF_CONFIG cluster job {job!r} is not supported: multi_worker uses 'worker' (and optionally one 'chief')")
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise DmkerasError(f"TF_CONFIG cluster[{job!r}] must be a non-empty list of 'host:port' strings, got {addresses!r}")
    if len(cluster.get("chief", [])) > 1:
        raise DmkerasError(f"TF_CONFIG may list one chief at most, got {cluster['chief']!r}")
    if "worker" not in cluster and "chief" not in cluster:
        raise DmkerasError(f"TF_CONFIG cluster lists no 'worker': {hint}")
    if not isinstance(task, dict):
        raise DmkerasError(f"TF_CONFIG has no 'task' object ({{'type': 'worker', 'index': i}}): {hint}")
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise DmkerasError(f"TF_CONFIG task type {kind!r} is not a job of the cluster ({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise DmkerasError(f"TF_CONFIG task index {index!r} is not in [0, {len(cluster[kind])}) for job {kind!r}")
    return config


def _make_multi_worker_strategy() -> tf.distribute.Strategy:
    global _multi_worker_strategy
    if _multi_worker_strategy is None:
        parse_tf_config(os.environ.get("TF_CONFIG"))
        # Collectives: NCCL between GPUs, RING (gRPC) otherwise; AUTO picks the one that fits.
        _multi_worker_strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return _multi_worker_strategy


# ---------------------------------------------------------------------------------------------
# Workers and input pipelines.


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Input pipelines (= worker processes) of the strategy: 1 unless multi-worker."""
    return strategy.num_replicas_in_sync // local_replicas(strategy)


def local_replicas(strategy: tf.distribute.Strategy) -> int:
    """Replicas this process drives (L)."""
    try:
        return len(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list: one replica, here
        return strategy.num_replicas_in_sync


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """This worker's position in the cluster (0 = the chief): its input pipeline id."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or num_workers(strategy) == 1:
        return 0
    from tensorflow.python.distribute import (
        multi_worker_util,  # the rule TensorFlow itself uses
    )

    return multi_worker_util.id_in_cluster(resolver.cluster_spec(), resolver.task_type, resolver.task_id)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory: always, except on the non-chief workers of
    a multi-worker run (TensorFlow's `should_checkpoint` is False exactly there)."""
    return bool(strategy.extended.should_checkpoint)


def input_replicas(context: tf.distribute.InputContext) -> range:
    """The global replica ids whose elements the input pipeline of `context` must yield."""
    pipelines, replicas = context.num_input_pipelines, context.num_replicas_in_sync
    if replicas % pipelines:
        raise DmkerasError(f"{replicas} replicas do not split evenly over {pipelines} workers")
    local = replicas // pipelines
    return range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local)


def keep_replicas(dataset: tf.data.Dataset, num_replicas: int, replicas: range) -> tf.data.Dataset:
    """From a dataset of every replica's elements (replica order, global batch after global
    batch), keep the elements of `replicas` (consecutive ids)."""
    if len(replicas) == num_replicas:
        return dataset
    low, high = replicas.start, replicas.stop
    ds = dataset.enumerate().filter(lambda i, _: tf.logical_and(i % num_replicas >= low, i % num_replicas < high))
    return ds.map(lambda _, element: element)


def split_global_batches(dataset: tf.data.Dataset, num_replicas: int, replicas: range | None = None) -> tf.data.Dataset:
    """Per-replica elements `(slice, real)` of a dataset of global batches (no-gradient passes).

    Replica r gets the r-th of `num_replicas` consecutive, nearly equal slices of each batch (as
    `numpy.array_split`); only the elements of `replicas` are yielded. `real` marks the slice's
    rows that are the batch's own: a batch with fewer rows than replicas would leave some
    replicas an empty slice, which some kernels (oneDNN convolutions into BatchNorm) reject, so
    those replicas get a copy of the batch's first row instead, marked not real.
    """
    replicas = range(num_replicas) if replicas is None else replicas
    first = tf.constant(replicas.start, tf.int64)

    def pieces(*batch):
        batch = batch[0] if len(batch) == 1 else batch
        rows = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]
        size, extra = rows // num_replicas, rows % num_replicas

        def piece(j):
            r = first + j
            start = r * size + tf.minimum(r, extra)
            length = size + tf.cast(r < extra, tf.int64)
            take = tf.cond(length > 0, lambda: tf.range(start, start + length), lambda: tf.zeros([1], tf.int64))
            real = tf.fill(tf.shape(take), length > 0)
            return tf.nest.map_structure(lambda t: tf.gather(t, take), batch), real

        return tf.data.Dataset.range(len(replicas)).map(piece)

    return dataset.flat_map(pieces)


def distribute(strategy: tf.distribute.Strategy, per_replica):
    """A distributed dataset handing each replica its elements, one global batch per step.

    `per_replica` is either a function `replicas (range of global replica ids) -> tf.data.Dataset`
    yielding, global batch after global batch, the elements of those replicas in order (the
    efficient form: a worker builds only its own replicas' elements), or a `tf.data.Dataset` of
    every replica's elements, from which each worker keeps its own.

    One process (default, mirrored): the function gets every replica and its dataset is handed
    out as is, consecutive elements to the replicas in turn. Several workers: each worker's input
    pipeline gets its own replicas `w * L ... w * L + L - 1` (global replica id = input pipeline
    id * local replicas + local index, the order of the strategy's all-reduce and gather).
    """
    num_replicas = strategy.num_replicas_in_sync

    def dataset_fn(context):
        replicas = input_replicas(context)
        if isinstance(per_replica, tf.data.Dataset):
            return keep_replicas(per_replica, num_replicas, replicas)
        return per_replica(replicas)

    return strategy.distribute_datasets_from_function(dataset_fn)


def same_on_all_workers(strategy: tf.distribute.Strategy, value: int) -> np.ndarray:
    """Every worker's `value` (one int each, in worker order); [value] in a single process."""
    if num_workers(strategy) == 1:
        return np.array([value])
    per_replica = strategy.experimental_distribute_values_from_function(lambda _ctx: tf.constant([value], tf.int64))
    everyone = strategy.gather(per_replica, axis=0).numpy()
    return everyone[:: local_replicas(strategy)]


# ---------------------------------------------------------------------------------------------
# Who writes.


@contextlib.contextmanager
def output_directory(workdir: str, strategy: tf.distribute.Strategy):
    """The directory this process writes the run to: `workdir` on the chief; on the other
    workers of a multi-worker run a private temporary directory, removed on exit.

    Every worker runs the same writing code (as TensorFlow's multi-worker guides recommend for
    checkpoints: saving may read distributed variables, which is collective), but only the
    chief's files persist.
    """
    if is_chief(strategy):
        os.makedirs(workdir, exist_ok=True)
        yield workdir
        return
    scratch = tempfile.mkdtemp(prefix=f"dmkeras-worker{worker_index(strategy)}-")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
