"""tf.distribute helpers: choosing a strategy and feeding it per-replica batches."""

import tensorflow as tf

from dmkeras.errors import DmkerasError


def make_strategy(name: str = "default", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """`default` (one device) or `mirrored` (all local GPUs; on a CPU-only machine, `cpu_replicas`
    logical CPU devices, which is useful to test multi-replica code, not to go faster).

    Logical CPU devices can only be configured before TensorFlow initialises its devices, so call
    this first thing in a process.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name != "mirrored":
        raise DmkerasError(f"unknown strategy {name!r}: use default or mirrored")
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


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """Hand consecutive elements of `dataset` (already per-replica batches) to the replicas in turn."""
    return strategy.distribute_datasets_from_function(lambda _context: dataset)
