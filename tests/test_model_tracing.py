"""Every compiled function traces once per run: no retrace when the division sizes, the last
batch sizes or the host-side scalars (mix lambda, lambda_u ramp, seed) change between steps
and epochs."""

import numpy as np

from dmkeras import trainer
from dmkeras.codivide import CoDivide
from dmkeras.data import pipeline
from dmkeras.distribute import distribute
from dmkeras.model import SEMI_SUPERVISED, WARMUP
from tests.helpers import dividemix_model, image_bank, random_labeled_images
from tools.bench.sections import TraceProbe

NUM_CLASSES = 3
N = 37  # not a multiple of any batch below: every pass ends on a partial batch


def _setup():
    model = dividemix_model(NUM_CLASSES, seed=0, net_args=dict(width=8))
    images, labels = random_labeled_images(np.random.default_rng(0), N, NUM_CLASSES)
    bank = image_bank(images)
    test_data = pipeline.holdout_dataset(images[:21], labels[:21], (0.5,), (0.25,), batch_size=8)  # 8 + 8 + 5
    return model, bank, labels, test_data


def test_accuracy_traces_once_with_a_partial_last_batch():
    model, _, _, test_data = _setup()
    first = model.accuracy(test_data)
    second = model.accuracy(test_data)
    assert first == second and set(first) == {"acc", "acc_net1", "acc_net2"}
    assert model._step_functions["accuracy"].experimental_get_tracing_count() == 1


def test_step_functions_trace_once_while_division_sizes_change():
    model, bank, labels, test_data = _setup()
    codivide = CoDivide(bank, labels, warm_up=1, batch_size=4, eval_batch_size=16)
    real_losses = codivide.sample_losses
    # clean (low-loss) samples per epoch: the labeled sets change size; at epoch 4 all losses are
    # equal, so everything is labeled and the labeled-only step of each net comes in
    clean_counts = {1: 12, 2: 20, 3: 27}
    epoch = {"now": 0}

    def sample_losses(k):
        real_losses(k)  # the real scoring (Keras predict), for its trace count
        clean = clean_counts.get(epoch["now"])
        if clean is None:
            return np.full(N, 0.4)
        rng = np.random.default_rng([epoch["now"], k])
        return np.r_[rng.uniform(0.0, 0.1, clean), rng.uniform(0.8, 1.0, N - clean)]

    codivide.sample_losses = sample_losses
    original_begin = codivide.on_epoch_begin

    def on_epoch_begin(e, logs=None):
        epoch["now"] = e
        original_begin(e, logs)

    codivide.on_epoch_begin = on_epoch_begin
    probe = TraceProbe(codivide)
    trainer.train(model, codivide, epochs=5, test_data=test_data, lambda_u=25.0, callbacks=[probe], verbose=0)
    summary = probe.summary()

    phases = [e["phase"] for e in summary["epochs"]]
    assert phases == [WARMUP] + [SEMI_SUPERVISED] * 4
    labeled = [tuple(e["labeled"]) for e in summary["epochs"][1:]]
    assert labeled[:3] == [(12, 12), (20, 20), (27, 27)] and labeled[3] == (N, N)
    functions = summary["functions"]
    step_functions = ["warmup_net1", "warmup_net2", "ssl_net1", "ssl_net2", "ssl_net1_labeled_only", "ssl_net2_labeled_only",
                      "accuracy", "predict_logits_net1", "predict_logits_net2"]
    assert sorted(step_functions) == sorted(functions)
    for name in step_functions:
        assert functions[name]["traces"] == 1, (name, functions[name])
    assert functions["ssl_net1"]["per_epoch"] == [0, 1, 0, 0, 0]
    assert functions["ssl_net1_labeled_only"]["per_epoch"] == [0, 0, 0, 0, 1]
    assert summary["retraces"] == 0 and summary["step_functions_traced_once"] and summary["labeled_sizes_changed"]


def test_ssl_step_does_not_retrace_for_new_scalar_values():
    model, bank, labels, _ = _setup()
    plan = pipeline.ssl_plan(np.arange(0, 20), np.arange(20, N), 4, np.random.default_rng(0))
    dataset = pipeline.ssl_dataset(bank, labels, np.linspace(0, 1, N), plan, num_replicas=1, seed=0)
    step = model.step_function(SEMI_SUPERVISED, 0)
    iterator = iter(distribute(model.distribute_strategy, dataset))
    rng = np.random.default_rng(0)
    for ramp in np.linspace(0.0, 25.0, len(plan)):
        step(iterator, *trainer.ssl_step_scalars(model, rng, float(ramp)))
    assert step.experimental_get_tracing_count() == 1
