"""`tools.bench` on a tiny config: every figure is in the JSON and sane (no timing thresholds),
and `tools.bench` reports bad flags in one line."""

import json
import math
import os
import sys

import pytest

from dmkeras.errors import DmkerasError
from tests.helpers import run_module
from tools.bench import sections as bench


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bench") / "bench.json")
    config = bench.BenchConfig(
        backbone="small_cnn",
        backbone_args="width=8",
        batch_size=4,
        input_size=8,
        channels=1,
        num_classes=3,
        steps=2,
        rounds=2,
        warmup_steps=1,
        eval_batch_size=32,
        codivide_repeats=1,
        gmm_samples=2000,
        gmm_repeats=2,
        trace_epochs=3,
        out=out,
    )
    result = bench.run(config)
    with open(out) as f:
        return result, json.load(f)


def test_json_holds_what_run_returns_and_the_run_metadata(tiny):
    result, saved = tiny
    assert saved == json.loads(json.dumps(result))
    meta = saved["meta"]
    assert meta["backbone"] == "small_cnn" and meta["batch_size"] == 4 and meta["input_shape"] == [8, 8, 1]
    assert meta["samples"] == 80 and meta["parameters_per_net"] > 0
    for key in ("tensorflow", "keras", "cpu_count", "timestamp", "git_commit"):
        assert key in meta
    assert meta["cpu_count"] >= 1 and meta["tensorflow"].startswith("2.")


def test_step_figures(tiny):
    steps = tiny[1]["steps"]
    assert (steps["warmup"]["rows_per_step"], steps["ssl"]["rows_per_step"], steps["plain"]["rows_per_step"]) == (8, 16, 16)
    for name in ("warmup", "ssl", "plain"):
        assert _positive(steps[name]["step_s"]) and _positive(steps[name]["images_per_s"])
        assert len(steps[name]["step_s_rounds"]) == 2
    assert "labeled x 2 views" in steps["ssl"]["rows_note"]
    assert _positive(steps["ssl_over_plain"]) and len(steps["ssl_over_plain_rounds"]) == 2
    assert all(math.isfinite(v) for v in steps["last_losses"].values())
    # warm-up (2B) and plain (4B) batches share one trace; the SSL step traces once
    assert steps["traces"] == {"warmup_net1": 1, "ssl_net1": 1}


def test_input_figures(tiny):
    inp = tiny[1]["input"]
    assert 0.0 <= inp["input_wait_fraction"] < 1.0 and len(inp["input_wait_fraction_rounds"]) == 2
    assert _positive(inp["ssl_fed_step_s"]) and _positive(inp["pipeline_alone_s_per_batch"])
    assert inp["pipeline_alone_cpu_s_per_batch"] >= 0 and inp["pipeline_cpu_share"] >= 0
    assert _positive(inp["eager_next_overhead_s"]) and 0 < inp["eager_next_overhead_fraction"] < 1


def test_codivide_figures(tiny):
    cd = tiny[1]["codivide"]
    assert cd["samples"] == 80
    for key in ("codivide_s", "scoring_s", "ssl_epoch_s", "codivide_fraction"):
        assert _positive(cd[key]), key
    assert cd["gmm_division_s"] >= 0 and cd["pipelines_s"] >= 0
    assert cd["scoring_s"] + cd["gmm_division_s"] + cd["pipelines_s"] == pytest.approx(cd["codivide_s"], rel=0.2)
    assert len(cd["ssl_epoch_steps"]) == 2 and sum(cd["ssl_epoch_steps"]) > 0
    assert all(0 <= n <= 80 for n in cd["labeled"])


def test_switch_figures(tiny):
    sw = tiny[1]["switches"]
    for key in ("ssl_step_s", "ssl_step_augdesc_s", "augdesc_over_plain_step", "codivide_gmm_s", "codivide_unicon_s", "unicon_over_gmm_codivide",
                "pipeline_cpu_s_per_batch", "pipeline_cpu_s_per_batch_augdesc", "pipeline_first_batch_s", "pipeline_first_batch_augdesc_s",
                "ssl_step_contrastive_s", "contrastive_over_augdesc_step"):
        assert _positive(sw[key]), key
    assert len(sw["contrastive_over_augdesc_step_rounds"]) == 2
    assert len(sw["augdesc_over_plain_step_rounds"]) == 2 and len(sw["unicon_over_gmm_codivide_repeats"]) == 1
    assert sw["augdesc_over_plain_step"] == pytest.approx(sum(sw["augdesc_over_plain_step_rounds"]) / 2)  # the median of 2
    assert sw["augdesc_over_plain_pipeline_cpu"] == pytest.approx(sw["pipeline_cpu_s_per_batch_augdesc"] / sw["pipeline_cpu_s_per_batch"])
    assert sw["unicon_labeled"][0] == sw["unicon_labeled"][1]  # UNICON: one selection, shared by both nets
    assert "6. What the issue-12 switches cost" in bench.format_report(tiny[0])
    assert "UNICON's contrastive term" in bench.format_report(tiny[0])


def test_gmm_figures(tiny):
    g = tiny[1]["gmm"]
    assert g["samples"] == 2000
    assert g["settings"] == {"n_components": 2, "max_iter": 10, "tol": 0.01, "reg_covar": 0.0005}
    assert _positive(g["dmkeras_s"]) and _positive(g["sklearn_s"]) and _positive(g["dmkeras_over_sklearn"])
    assert 1 <= g["dmkeras_n_iter"] <= 10 and g["dmkeras_n_iter"] == g["sklearn_n_iter"]
    assert g["max_posterior_diff"] < 1e-6
    assert _positive(g["sklearn_1thread_s"]) and _positive(g["dmkeras_over_sklearn_1thread"])


def test_tracing_figures(tiny):
    tr = tiny[1]["tracing"]
    assert [e["phase"] for e in tr["epochs"]] == ["warmup", "ssl", "ssl"]
    functions = tr["functions"]
    for name in ("warmup_net1", "warmup_net2", "ssl_net1", "ssl_net2", "accuracy", "predict_logits_net1", "predict_logits_net2"):
        assert functions[name]["traces"] == 1 and functions[name]["retraces"] == 0, (name, functions[name])
    assert functions["warmup_net1"]["by_phase"] == {"warmup": 1, "ssl": 0}
    assert functions["ssl_net1"]["by_phase"] == {"warmup": 0, "ssl": 1}
    assert tr["step_functions_traced_once"] and tr["retraces"] == 0


def test_bimodal_losses_are_normalised():
    losses = bench.bimodal_losses(1000, seed=0)
    assert losses.shape == (1000,) and losses.min() == 0.0 and losses.max() == 1.0
    assert 0.6 < (losses < 0.5).mean() < 0.9  # 70% from the low mode, the high one's tail below 0.5


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": 0}, "--batch_size must be >= 1"),
        ({"samples": 10, "batch_size": 4}, "--samples must be 0 or at least"),
        ({"sections": "steps,bogus"}, "--sections: unknown bogus"),
        ({"trace_epochs": 1}, "--trace_epochs must be >= 2"),
        ({"compare_torch": True, "backbone": "small_cnn"}, "--compare_torch times the reference's PreAct ResNet-18"),
    ],
)
def test_bad_settings_raise(changes, message):
    with pytest.raises(DmkerasError, match=message):
        bench.BenchConfig(**changes).validate()


def test_train_config_takes_the_bench_settings_and_rejects_unknown_overrides():
    tc = bench.train_config(bench.BenchConfig(backbone="small_cnn", batch_size=16, eval_batch_size=100))
    assert (tc.model.backbone, tc.optim.batch_size, tc.optim.eval_batch_size) == ("small_cnn", 16, 100)
    with pytest.raises(DmkerasError, match="not TrainConfig fields: bogus"):
        bench.train_config(bench.BenchConfig(), bogus=1)


def test_the_bench_command_reports_a_bad_flag_in_one_line():
    proc = run_module("tools.bench", "--batch_size=0", timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: --batch_size must be >= 1, got 0"


def test_the_pytorch_reference_step_runs_in_its_own_process_with_the_keras_parameter_count():
    python = os.environ.get("DMKERAS_TORCH_PYTHON")  # optional: an interpreter with PyTorch
    if not python:
        pytest.skip("DMKERAS_TORCH_PYTHON (an interpreter with PyTorch) is not set")
    from dmkeras import zoo

    block = bench._TorchBlock(bench.BenchConfig(input_size=32, num_classes=10, seed=0), rows=4)
    try:
        seconds, wait = block.run(2, untimed=1)
    finally:
        block.close()
    assert seconds > 0 and wait == 0 and block.process.returncode == 0
    net = zoo.create_model("preact_resnet18", 10, (32, 32, 3))
    assert block.num_parameters == sum(int(w.numpy().size) for w in net.trainable_weights) == 11_171_274


def test_compare_torch_without_pytorch_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "torch").mkdir()  # as if PyTorch were not installed: importing it fails in the worker
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("DMKERAS_TORCH_PYTHON", sys.executable)
    config = bench.BenchConfig(compare_torch=True, batch_size=2, input_size=8, steps=1, rounds=1, warmup_steps=1,
                               sections="steps", out="")
    with pytest.raises(DmkerasError, match="--compare_torch: .* could not run the PyTorch step \\(ImportError: No module named torch\\)"):
        bench.run(config)
