"""tf.distribute: TF_CONFIG checks, per-worker input pipelines, and runs under MirroredStrategy
(two logical CPU devices) and MultiWorkerMirroredStrategy (two processes on localhost) against
the default strategy, same global batch, and the averaging of BatchNorm moving statistics over
replicas.

Logical devices must be configured before TensorFlow initialises, so the comparisons run in
fresh subprocesses. The compared backbones have no BatchNorm (per-replica batch statistics differ
by design) and the mixing weight is 1 (mixing partners are drawn within each replica's slice, and
with lambda = 1 a partner has weight exactly 0), so every strategy must compute the same losses,
divisions and weights up to float32 summation order.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from dmkeras import distribute as distribute_lib
from dmkeras.config import TrainConfig
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig
from dmkeras.errors import DmkerasError

ROOT = Path(__file__).resolve().parent.parent
RUN_SCRIPT = Path(__file__).resolve().parent / "distributed_run.py"

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


BN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from dmkeras.distribute import make_strategy
    strategy = make_strategy(sys.argv[1], cpu_replicas=2 if sys.argv[1] == "mirrored" else 0)
    import keras, numpy as np, tensorflow as tf
    from dmkeras import trainer, zoo
    from dmkeras.codivide import EpochPass
    from dmkeras.data import pipeline
    from dmkeras.data.augment import AugmentConfig
    from dmkeras.distribute import distribute
    from dmkeras.model import DivideMixModel, WARMUP

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, size=48)
    bank = pipeline.ImageBank(images, (0.5,), (0.25,), AugmentConfig(True, True, 1))
    keras.utils.set_random_seed(1)
    with strategy.scope():
        nets = [zoo.create_model("small_cnn", 3, (8, 8, 1), width=4, batchnorm=True) for _ in range(2)]
        model = DivideMixModel(*nets, num_classes=3)
        model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))

    def copies(net):  # every local replica's copy of every non-trainable variable
        return {v.path: [c.numpy().tolist() for c in strategy.experimental_local_results(v.value)] for v in net.non_trainable_variables}

    syncs, sync = [], model.sync_replica_statistics

    def recording_sync(k=None):
        before = [copies(net) for net in nets]
        sync(k)
        syncs.append({"k": k, "before": before, "after": [copies(net) for net in nets]})

    model.sync_replica_statistics = recording_sync
    for k in (0, 1):
        plan = pipeline.warmup_plan(48, 16, np.random.default_rng(k))
        ds = distribute(strategy, lambda mine: pipeline.warmup_dataset(bank, labels, plan, 2, seed=k, replicas=mine))
        epoch_pass = EpochPass(net=k, phase=WARMUP, dataset=ds, num_steps=len(plan))
        trainer.run_pass(model, epoch_pass, epoch=0, warm_up=1, lambda_u=0.0, rampup_epochs=1.0, seed=0, verbose=0)
    saved = [{v.path: v.numpy().tolist() for v in net.non_trainable_variables} for net in nets]
    print("RESULT" + json.dumps({"syncs": syncs, "saved": saved}))
    """
)


def _bn_result(output):
    return json.loads(output.split("RESULT", 1)[1].splitlines()[0])


def _assert_statistics_averaged(results):
    """`results`: BN_SCRIPT's output of each worker, in worker order (the global replica order)."""
    workers = [r["syncs"] for r in results]
    assert all([s["k"] for s in syncs] == [0, 1] for syncs in workers)  # once per pass, for the pass's net

    def copies(k, when, net):  # at net k's sync, path -> every replica's copy, over all workers
        return {path: [c for w in workers for c in w[k][when][net][path]] for path in workers[0][k][when][net]}

    for k in (0, 1):
        trained, other = copies(k, "before", k), copies(k, "before", 1 - k)
        assert len(trained) == 8  # moving mean and variance of 4 BN layers
        assert all(len(c) == 2 for c in trained.values())
        assert any(not np.array_equal(*map(np.array, c)) for c in trained.values())  # the replicas had drifted apart
        after = copies(k, "after", k)
        for path, before in trained.items():
            mean = np.mean(np.array(before), axis=0)
            for replica in after[path]:
                np.testing.assert_allclose(replica, mean, rtol=1e-6, atol=1e-7, err_msg=path)
            np.testing.assert_array_equal(*after[path])
        assert copies(k, "after", 1 - k) == other  # the net that did not train is untouched, and already one value
        assert all(np.array_equal(*map(np.array, c)) for c in other.values())
    for result in results:  # what a checkpoint or a saved net reads
        for k, net in enumerate(result["saved"]):
            for path, value in net.items():
                assert value == result["syncs"][1]["after"][k][path][0]


def test_mirrored_batchnorm_statistics_are_averaged_over_replicas_after_each_pass():
    """Each replica updates its own copy of BatchNorm's moving statistics from its slice of the
    batch (Keras 3: aggregation "none"); at the end of net k's pass `run_pass` sets every copy of
    net k's statistics to the replicas' mean, so both replicas (and what is saved) hold one value."""
    command = [sys.executable, "-c", BN_SCRIPT, "mirrored"]
    proc = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_statistics_averaged([_bn_result(proc.stdout)])


# -- TF_CONFIG -------------------------------------------------------------------------------------


def _tf_config(cluster=None, task=None):
    return json.dumps({"cluster": cluster or {"worker": ["h0:1", "h1:1"]}, "task": task or {"type": "worker", "index": 1}})


def test_tf_config_is_checked_with_a_clear_message():
    assert distribute_lib.parse_tf_config(_tf_config())["task"]["index"] == 1
    assert distribute_lib.parse_tf_config(_tf_config({"chief": ["c:1"], "worker": ["w:1"]}, {"type": "chief", "index": 0}))
    bad = {
        None: "not set",
        "  ": "not set",
        "{cluster": "not valid JSON",
        "[1]": "JSON object",
        json.dumps({"task": {"type": "worker", "index": 0}}): "no 'cluster'",
        _tf_config({"ps": ["p:1"]}): "not supported",
        _tf_config({"worker": "h0:1,h1:1"}): "list of 'host:port'",
        _tf_config({"worker": ["h0"]}): "list of 'host:port'",
        _tf_config({"chief": ["a:1", "b:1"]}, {"type": "chief", "index": 0}): "one chief",
        json.dumps({"cluster": {"worker": ["h0:1"]}}): "no 'task'",
        _tf_config(task={"type": "evaluator", "index": 0}): "not a job",
        _tf_config(task={"type": "worker", "index": 2}): "not in [0, 2)",
        _tf_config(task={"type": "worker", "index": "0"}): "not in [0, 2)",
    }
    for text, message in bad.items():
        with pytest.raises(DmkerasError, match=re.escape(message)):
            distribute_lib.parse_tf_config(text)


def test_multi_worker_strategy_without_tf_config_is_an_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DmkerasError, match="TF_CONFIG"):
        distribute_lib.make_strategy("multi_worker")
    with pytest.raises(DmkerasError, match="strategy"):
        TrainConfig(strategy="multi", workdir="w").validate()
    with pytest.raises(DmkerasError, match="^cpu_replicas applies to strategy=mirrored"):
        TrainConfig(strategy="multi_worker", cpu_replicas=2, workdir="w").validate()
    TrainConfig(strategy="multi_worker", workdir="w").validate()


# -- per-worker input pipelines --------------------------------------------------------------------


def _contexts(workers, replicas):
    return [tf.distribute.InputContext(workers, w, replicas) for w in range(workers)]


def test_each_worker_pipeline_yields_its_own_replicas_elements():
    """4 replicas on 2 workers: worker w yields, per global batch, the slices of replicas 2w, 2w + 1;
    interleaving the workers' elements (2 at a time) gives back the single-pipeline order."""
    images = np.arange(23, dtype=np.uint8).reshape(23, 1, 1, 1)
    bank = pipeline.ImageBank(images, (0.0,), (1 / 255,), AugmentConfig(False, False, 0))
    plan = pipeline.warmup_plan(23, 8, np.random.default_rng(0))  # batches of 8, 8, 7

    def rows(ds):
        return [np.rint(e["x"].numpy()[:, 0, 0, 0]).astype(int).tolist() for e in ds]

    everyone = rows(pipeline.warmup_dataset(bank, np.zeros(23, np.int64), plan, 4, seed=1))
    assert [len(r) for r in everyone] == [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    per_worker = []
    for context in _contexts(2, 4):
        replicas = distribute_lib.input_replicas(context)
        assert list(replicas) == [2 * context.input_pipeline_id, 2 * context.input_pipeline_id + 1]
        per_worker.append(rows(pipeline.warmup_dataset(bank, np.zeros(23, np.int64), plan, 4, seed=1, replicas=replicas)))
        # a dataset of every replica's elements, filtered per worker, gives the same
        full = pipeline.warmup_dataset(bank, np.zeros(23, np.int64), plan, 4, seed=1)
        assert rows(distribute_lib.keep_replicas(full, 4, replicas)) == per_worker[-1]
    interleaved = [e for step in range(3) for w in range(2) for e in per_worker[w][2 * step : 2 * step + 2]]
    assert interleaved == everyone
    assert distribute_lib.input_replicas(tf.distribute.InputContext(1, 0, 2)) == range(2)


def test_split_global_batches_counts_every_row_once_and_pads_empty_slices():
    batches = tf.data.Dataset.range(7).batch(3).map(lambda x: (x, -x))  # batches of 3, 3, 1 over 4 replicas
    seen = []
    for context in _contexts(2, 4):
        for (x, y), real in distribute_lib.split_global_batches(batches, 4, distribute_lib.input_replicas(context)):
            assert len(x) >= 1 and np.array_equal(y.numpy(), -x.numpy())
            seen += x.numpy()[real.numpy()].tolist()
    assert sorted(seen) == list(range(7))
    one = [(x.numpy().tolist(), r.numpy().tolist()) for (x, _), r in distribute_lib.split_global_batches(batches, 4)][-4:]
    assert one == [([6], [True]), ([6], [False]), ([6], [False]), ([6], [False])]


# -- whole runs: mirrored and multi-worker against the default strategy ----------------------------


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run_script(strategy, workdir, result, cpu_replicas=0, env=None):
    return subprocess.Popen(
        [sys.executable, str(RUN_SCRIPT), strategy, str(workdir), str(result), str(cpu_replicas)],
        env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
    )


def _finish(procs, timeout=300):
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=timeout)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-4000:]
    return outputs


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The reference: the tiny run of tests/distributed_run.py under the default strategy."""
    root = tmp_path_factory.mktemp("default")
    _finish([_run_script("default", root / "run", root / "result.json")])
    return json.loads((root / "result.json").read_text())


def _assert_same_run(got, want, *, exact=False):
    """Per-epoch losses (and every logged number), both nets' divisions, final weights."""
    tol = {"rtol": 0, "atol": 0} if exact else {"rtol": 2e-5, "atol": 1e-6}
    assert [h["epoch"] for h in got["history"]] == [h["epoch"] for h in want["history"]] == [1, 2, 3]
    for a, b in zip(got["history"], want["history"]):
        assert a.keys() == b.keys()
        for key in a:  # losses are normalised by global counts: the replicas' sum is the global value
            # the prior penalty is a difference of near-equal logs (sum prior (log prior - log mean p)),
            # so after two epochs of per-replica rounding it drifts further: 5.2e-6 of 0.095 seen on
            # an AVX2-only CPU (AMD EPYC), where every other number stayed inside rtol 2e-5
            key_tol = {"rtol": 2e-5, "atol": 1e-5} if key.endswith("_penalty") and not exact else tol
            np.testing.assert_allclose(a[key], b[key], **key_tol, err_msg=f"epoch {a['epoch']} {key}")
    assert len(got["divisions"]) == len(want["divisions"]) == 2  # epochs 2 and 3 co-divide
    for a, b in zip(got["divisions"], want["divisions"]):
        for net_a, net_b in zip(a, b):
            assert net_a["labeled"] == net_b["labeled"]
            assert 0 < sum(net_a["labeled"]) < len(net_a["labeled"])  # a real division, not a degenerate one
            np.testing.assert_allclose(net_a["clean_prob"], net_b["clean_prob"], **(tol if exact else {"rtol": 0, "atol": 2e-5}))
    assert len(got["weights"]) == len(want["weights"])
    for a, b in zip(got["weights"], want["weights"]):
        # weights of O(0.1) after 3 epochs at lr 0.1: within 2e-6 where this was written, up to
        # 1.3e-4 (one filter of the first conv) on an AVX2-only CPU (AMD EPYC), where the per-replica
        # batch shapes take other oneDNN kernels; a missing all-reduce moves them by ~1e-2
        np.testing.assert_allclose(np.array(a), np.array(b), **(tol if exact else {"rtol": 1e-4, "atol": 3e-4}))


def test_mirrored_dividemix_run_matches_the_default_strategy(default_run, tmp_path):
    """Warm-up, then two co-divided epochs through experiment.run, on 2 logical CPUs: the same
    per-epoch losses, divisions (labeled masks, clean probabilities) and final weights.
    BN-free net and mixing weight 1 (tests/distributed_run.py): BatchNorm batch statistics and
    mixing partners are legitimately per replica, everything else must match."""
    _finish([_run_script("mirrored", tmp_path / "run", tmp_path / "result.json", cpu_replicas=2)])
    mirrored = json.loads((tmp_path / "result.json").read_text())
    assert (default_run["replicas"], mirrored["replicas"]) == (1, 2)
    _assert_same_run(mirrored, default_run)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_on_localhost_match_the_default_strategy_and_only_the_chief_writes(default_run, tmp_path):
    """MultiWorkerMirroredStrategy, two processes (one CPU replica each) on 127.0.0.1: both
    workers make the same divisions and end with the same weights, which match one process
    under the default strategy; worker 0 writes its run directory, worker 1 writes nothing
    (its scratch directory under its TMPDIR is gone at the end)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    scratch = tmp_path / "tmp1"
    scratch.mkdir()
    procs = []
    for index in range(2):
        env = _env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        if index:
            env["TMPDIR"] = str(scratch)
        procs.append(_run_script("multi_worker", tmp_path / f"run{index}", tmp_path / f"result{index}.json", env=env))
    outputs = _finish(procs)
    workers = [json.loads((tmp_path / f"result{i}.json").read_text()) for i in range(2)]
    assert [w["replicas"] for w in workers] == [2, 2]
    _assert_same_run(workers[1], workers[0], exact=True)  # same all-reduced updates, same gathered losses
    _assert_same_run(workers[0], default_run)
    written = sorted(p.name for p in (tmp_path / "run0").iterdir())
    for name in ("checkpoint", "config.json", "metrics.csv", "summary.json", "net1.keras", "net2.keras", "curves.png"):
        assert name in written
    assert not (tmp_path / "run1").exists()
    assert list(scratch.iterdir()) == []
    assert "worker 1 of 2: training quietly" in outputs[1]


def test_two_workers_average_batchnorm_statistics_over_workers(tmp_path):
    """As the mirrored test, with one replica on each of two processes: the mean is over workers."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BN_SCRIPT, "multi_worker"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT),
            env=_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})),
        )
        for index in range(2)
    ]
    _assert_statistics_averaged([_bn_result(output) for output in _finish(procs)])
