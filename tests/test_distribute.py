"""MirroredStrategy on two logical CPU devices against the default strategy, same global batch.

Logical devices must be configured before TensorFlow initialises, so the comparison runs in a
fresh subprocess. The backbone has no BatchNorm (per-replica batch statistics would differ by
design) and the mixing weight is 1 (mixing partners are drawn within each replica), so both
strategies must compute the same losses and the same weights up to float32 summation order.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from dmkeras.distribute import make_strategy
    mirrored = make_strategy("mirrored", cpu_replicas=2)
    import keras, numpy as np, tensorflow as tf
    from dmkeras import zoo
    from dmkeras.data import pipeline
    from dmkeras.data.augment import AugmentConfig
    from dmkeras.distribute import distribute
    from dmkeras.model import DivideMixModel, SEMI_SUPERVISED, WARMUP

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, size=64)
    clean_prob = rng.uniform(0.5, 1.0, size=64)
    bank = pipeline.ImageBank(images, (0.5,), (0.25,), AugmentConfig(True, True, 1))

    def run(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            nets = [zoo.create_model("small_cnn", 3, (8, 8, 1), width=8, batchnorm=False) for _ in range(2)]
            model = DivideMixModel(*nets, num_classes=3, weight_decay=5e-4)
            model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.optimizers.SGD(0.05, momentum=0.9))
        replicas = strategy.num_replicas_in_sync
        losses = []
        warm = pipeline.warmup_plan(64, 16, np.random.default_rng(1))
        ds = distribute(strategy, pipeline.warmup_dataset(bank, labels, warm, replicas, seed=3))
        it, fn = iter(ds), model.step_function(WARMUP, 0)
        for _ in warm:
            losses.append({k: float(v) for k, v in fn(it).items()})
        plan = pipeline.ssl_plan(np.arange(0, 40), np.arange(40, 64), 8, np.random.default_rng(2))
        ds = distribute(strategy, pipeline.ssl_dataset(bank, labels, clean_prob, plan, replicas, seed=4))
        it, fn = iter(ds), model.step_function(SEMI_SUPERVISED, 1)
        for _ in plan:
            out = fn(it, tf.constant(1.0), tf.constant(10.0), tf.constant([5, 6], tf.int64))
            losses.append({k: float(v) for k, v in out.items()})
        weights = [w.numpy().tolist() for net in model.nets for w in net.weights]
        return {"replicas": replicas, "losses": losses, "weights": weights}

    print("RESULT" + json.dumps({"default": run(tf.distribute.get_strategy()), "mirrored": run(mirrored)}))
    """
)


def test_mirrored_two_cpu_replicas_match_the_default_strategy():
    import numpy as np

    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    default, mirrored = result["default"], result["mirrored"]
    assert (default["replicas"], mirrored["replicas"]) == (1, 2)
    assert len(default["losses"]) == len(mirrored["losses"]) == 4 + 5
    for a, b in zip(default["losses"], mirrored["losses"]):
        assert a.keys() == b.keys()
        for key in a:  # losses are normalised by global counts: the sum over replicas is the global value
            np.testing.assert_allclose(b[key], a[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for a, b in zip(default["weights"], mirrored["weights"]):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-4, atol=2e-6)
