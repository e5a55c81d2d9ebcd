"""What a DivideMix epoch costs on this machine, measured in one process: `python -m tools.bench`.

Synthetic data (random uint8 images, random labels), and otherwise the code training runs: the
model from `experiment.build_model` (so TrainConfig options such as jit_compile reach it), the
compiled steps of `model.step_function`, the tf.data pipelines of `dmkeras.data.pipeline`, the
host-side step arguments of `trainer`, `CoDivide.on_epoch_begin`, `dmkeras.gmm` and
`trainer.train`. Six sections:

1. steps: images/s of the warm-up step (CE on 2B rows), of the semi-supervised step (counted as
   the 4B rows of its mixed input: B labeled x 2 views + B unlabeled x 2 views; it also runs six
   no-grad forwards of B rows) and of a plain CE step on 4B rows (the warm-up step fed 4B
   batches: one forward + backward of the same net, the floor), and the ratio SSL / plain;
2. codivide: one co-divide (both nets score N samples, the GMM fits, the next epoch's
   pipelines) as a fraction of one semi-supervised epoch over the same N;
3. gmm: the loss GMM on 50,000 bimodal losses, dmkeras.gmm against scikit-learn;
4. tracing: tf.function traces of every step function, per epoch, in a tiny real training;
5. input: the fraction of SSL step time lost to the input pipeline (see `_measure_steps`);
6. switches: what issue 12's switches cost, as ratios: the SSL step fed with --augdesc=ws's
   strong views against the weak-only one, the two pipelines alone in CPU time, and the co-divide
   of --division=unicon against gmm's.

Timings on shared CPUs swing by ~2x between minutes, so every comparison is a ratio measured
within one round, where the blocks of the things compared run back to back; figures are
medians over rounds.
"""

import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from dmkeras import codivide as codivide_lib
from dmkeras import division as division_lib
from dmkeras import experiment, gmm, trainer
from dmkeras.config import SECTION_OF, TrainConfig, _field
from dmkeras.data import pipeline
from dmkeras.data.augment import AugmentConfig, augdesc_plan
from dmkeras.distribute import distribute
from dmkeras.errors import DmkerasError
from dmkeras.model import SEMI_SUPERVISED, WARMUP

SECTIONS = ("steps", "codivide", "gmm", "tracing", "switches")
TRAIN_PASSTHROUGH = ("jit_compile", "mixed_precision")
"""TrainConfig fields the bench takes as flags too, when TrainConfig has them."""

PIPELINE_BATCHES = 50
"""Batches the input pipeline produces when timed alone (section 5)."""

CONTRASTIVE_WEIGHT = 0.025  # UNICON's lambda_c (section 6; the weight does not change the cost)

GMM_BLOCK = 5
"""Timed GMM fits per block (section 3), after one untimed."""

# The reference's GaussianMixture (DivideMix Train_cifar.py eval_train); dmkeras.gmm's defaults.
GMM_SETTINGS = {"n_components": 2, "max_iter": 10, "tol": 1e-2, "reg_covar": 5e-4}


@dataclasses.dataclass
class BenchConfig:
    """Settings of `python -m tools.bench`."""

    backbone: str = _field("preact_resnet18", "a name from dmkeras.zoo.list_models()")
    backbone_args: str = _field("", 'extra builder arguments, e.g. "width=64"')
    batch_size: int = _field(64, "B: the SSL step takes B labeled + B unlabeled; warm-up 2B rows, plain step 4B rows")
    input_size: int = _field(32, "synthetic images are input_size x input_size")
    channels: int = _field(3, "image channels, 1 or 3")
    num_classes: int = _field(10, "number of classes")
    samples: int = _field(0, "N synthetic training images (0 = 20 * batch_size; at least 4 * batch_size)")
    steps: int = _field(5, "timed steps per block")
    rounds: int = _field(5, "rounds of alternated blocks; the figures are medians over rounds")
    warmup_steps: int = _field(2, "untimed steps of each kind before the rounds (tracing, compilation)")
    eval_batch_size: int = _field(0, "batch of the co-divide scoring (0 = TrainConfig's default)")
    codivide_repeats: int = _field(3, "timed co-divides, after one untimed")
    gmm_samples: int = _field(50000, "losses of the GMM timing (70% from a low mode, 30% from a high mode)")
    gmm_repeats: int = _field(7, "rounds of GMM timing: per round and implementation, one untimed fit then 5 timed, alternated")
    trace_epochs: int = _field(3, "epochs of the tracing run: 1 warm-up, the rest semi-supervised")
    trace_samples: int = _field(0, "training images of the tracing run (0 = 4 * batch_size + 3, so every pass ends on a partial batch)")
    compare_torch: bool = _field(
        False,
        "also time the reference's PyTorch PreAct ResNet-18 training step on the warm-up batch (2B rows), "
        "alternated with ours (needs PyTorch installed and --backbone=preact_resnet18 --channels=3)",
    )
    sections: str = _field(",".join(SECTIONS), "comma list of the sections to run: " + ", ".join(SECTIONS))
    seed: int = _field(0, "seeds the data, the nets and the sampling")
    out: str = _field("bench.json", "JSON file of the figures ('' = none)")

    @property
    def num_samples(self) -> int:
        return self.samples or 20 * self.batch_size

    @property
    def section_list(self) -> list:
        return [s.strip() for s in self.sections.split(",") if s.strip()]

    def validate(self) -> "BenchConfig":
        def check(ok, message):
            if not ok:
                raise DmkerasError(message)

        for name in ("batch_size", "input_size", "steps", "rounds", "warmup_steps", "codivide_repeats", "gmm_repeats"):
            check(getattr(self, name) >= 1, f"--{name} must be >= 1, got {getattr(self, name)}")
        check(self.channels in (1, 3), f"--channels must be 1 or 3, got {self.channels}")
        check(self.num_classes >= 2, f"--num_classes must be >= 2, got {self.num_classes}")
        check(
            self.samples == 0 or self.samples >= 4 * self.batch_size,
            f"--samples must be 0 or at least 4 * batch_size = {4 * self.batch_size}, got {self.samples}",
        )
        check(self.eval_batch_size >= 0, f"--eval_batch_size must be >= 0, got {self.eval_batch_size}")
        check(self.gmm_samples >= 10, f"--gmm_samples must be >= 10, got {self.gmm_samples}")
        check(self.trace_epochs >= 2, f"--trace_epochs must be >= 2 (1 warm-up + semi-supervised), got {self.trace_epochs}")
        check(self.trace_samples == 0 or self.trace_samples >= 4, f"--trace_samples must be 0 or >= 4, got {self.trace_samples}")
        check(
            not self.compare_torch or (self.backbone == "preact_resnet18" and self.channels == 3 and not self.backbone_args),
            "--compare_torch times the reference's PreAct ResNet-18: use --backbone=preact_resnet18 --channels=3 and no --backbone_args",
        )
        unknown = sorted(set(self.section_list) - set(SECTIONS))
        check(not unknown, f"--sections: unknown {', '.join(unknown)}; use a comma list of {', '.join(SECTIONS)}")
        check(bool(self.section_list), "--sections is empty")
        return self


def train_config(config: BenchConfig, **overrides) -> TrainConfig:
    """The TrainConfig the benchmarked model is built from: TrainConfig's defaults, the bench's
    backbone and batch, and `overrides` (TrainConfig fields such as jit_compile)."""
    fields = set(SECTION_OF)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise DmkerasError(f"not TrainConfig fields: {', '.join(unknown)}")
    values = {"backbone": config.backbone, "backbone_args": config.backbone_args, "batch_size": config.batch_size, "seed": config.seed}
    if config.eval_batch_size:
        values["eval_batch_size"] = config.eval_batch_size
    return TrainConfig(workdir="(bench)", verbose=0, **values, **overrides).validate()


# ---------------------------------------------------------------------------------------------
# Helpers


def _median(values):
    return float(statistics.median(values))


def _synthetic(config: BenchConfig, n: int, stream: int):
    rng = np.random.default_rng([config.seed, stream])
    shape = (n, config.input_size, config.input_size, config.channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8), rng.integers(0, config.num_classes, size=n)


def _bank(config: BenchConfig, tc: TrainConfig, images) -> pipeline.ImageBank:
    half = (0.5,) * config.channels
    return pipeline.ImageBank(images, half, half, AugmentConfig.parse(tc.data.augment, tc.data.pad))


def _full_batches(make_plan, is_full, count: int) -> list:
    """`count` full batches from successive freshly shuffled plans (every step has the same rows)."""
    batches = []
    while len(batches) < count:
        batches += [b for b in make_plan() if is_full(b)]
    return batches[:count]


def _ssl_split(config: BenchConfig, rng):
    """Half the synthetic set labeled and half unlabeled, random clean probabilities, and a
    maker of plans of `count` full semi-supervised batches over that split."""
    b, n = config.batch_size, config.num_samples
    order = rng.permutation(n)
    labeled, unlabeled = order[: n // 2], order[n // 2 :]
    clean_prob = rng.uniform(size=n)

    def plan(count):
        return _full_batches(lambda: pipeline.ssl_plan(labeled, unlabeled, b, rng), lambda pair: len(pair[0]) == len(pair[1]) == b, count)

    return clean_prob, plan


def _pipeline_alone(dataset) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per batch of `dataset` drawn with no step running, over
    PIPELINE_BATCHES batches after an untimed first one (the pipeline's start); the prefetch
    buffer filled meanwhile is a few batches, a small bias towards speed."""
    iterator = iter(dataset)
    next(iterator)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(PIPELINE_BATCHES):
        next(iterator)
    return (time.perf_counter() - started) / PIPELINE_BATCHES, (time.process_time() - cpu_started) / PIPELINE_BATCHES


def _alternated(timers: dict, rounds: int) -> dict:
    """{name: [seconds per round]} of the zero-argument `timers`, run in turn every round, the
    order reversed every other round."""
    times = {name: [] for name in timers}
    for r in range(rounds):
        for name in list(timers)[:: 1 if r % 2 == 0 else -1]:
            times[name].append(timers[name]())
    return times


def _function_name(key) -> str:
    if not isinstance(key, tuple):
        return str(key)
    if len(key) == 2:  # ("logits", k): co-divide scoring; ("sync_statistics", k): replica sync
        return f"{'predict_logits' if key[0] == 'logits' else key[0]}_net{key[1] + 1}"
    phase, k, with_unlabeled = key
    return f"{phase}_net{k + 1}" + ("" if phase == WARMUP or with_unlabeled else "_labeled_only")


def _trace_counts(model) -> dict:
    return {_function_name(key): fn.experimental_get_tracing_count() for key, fn in model._step_functions.items()}


class _Block:
    """Runs k steps of one compiled step function on a fresh iterator of `dataset`.

    A fresh iterator per block, with one untimed step first: an iterator left idle while other
    blocks run would fill its prefetch buffer in the background, and the next block would get
    those batches for free. After the first step the pipeline has run alongside one step, as in
    a training pass.

    fed=True (SSL only): the same per-replica `ssl_step`, compiled the same way but taking the
    batch as an argument, so that `next(iterator)` runs in Python and is timed apart from the
    step (section 5).
    """

    def __init__(self, model, phase, dataset, rows, lambda_u, seed, fed=False):
        self.model = model
        self.ssl = phase == SEMI_SUPERVISED
        self.fed = fed
        self.fn = _fed_ssl_step(model) if fed else model.step_function(phase, 0, with_unlabeled=self.ssl)
        self.dataset = dataset
        self.rows = rows
        self.lambda_u = lambda_u
        self.rng = np.random.default_rng(seed)
        self.last = {}
        self.wait = 0.0

    def _step(self, iterator):
        if self.fed:
            started = time.perf_counter()
            source = next(iterator)
            self.wait += time.perf_counter() - started
        else:
            source = iterator
        if self.ssl:
            out = self.fn(source, *trainer.ssl_step_scalars(self.model, self.rng, self.lambda_u))
        else:
            out = self.fn(source)
        self.last = {name: float(value) for name, value in out.items()}  # as run_pass: waits for the step

    def run(self, steps: int, untimed: int = 1) -> tuple[float, float]:
        """(seconds per step, seconds per step spent in next(iterator) when fed) over `steps`
        timed steps, after `untimed` steps."""
        iterator = iter(self.dataset)
        for _ in range(untimed):
            self._step(iterator)
        if not steps:
            return 0.0, 0.0
        self.wait = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            self._step(iterator)
        elapsed = time.perf_counter() - started
        del iterator
        return elapsed / steps, self.wait / steps


class _TorchBlock:
    """Steps of the reference's PyTorch PreAct ResNet-18 (CE + SGD) on a fixed batch of `rows`,
    run by tools/reference/torch_bench_worker.py in a process of its own (PyTorch never shares
    one with TensorFlow), with the interpreter of $DMKERAS_TORCH_PYTHON (default: this one)."""

    def __init__(self, config: BenchConfig, rows: int):
        worker = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference", "torch_bench_worker.py")
        if not os.path.isfile(worker):
            raise DmkerasError(f"--compare_torch runs {worker}, which is missing from this clone")
        python = os.environ.get("DMKERAS_TORCH_PYTHON", sys.executable)
        self.rows = rows
        self.process = subprocess.Popen(
            [python, worker, "--rows", str(rows), "--input_size", str(config.input_size),
             "--num_classes", str(config.num_classes), "--seed", str(config.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        ready = self.process.stdout.readline().split()
        if not ready or ready[0] != "ready":
            error = self.process.stderr.read().strip().splitlines()
            raise DmkerasError(
                f"--compare_torch: {python} could not run the PyTorch step ({error[-1] if error else 'no output'}); "
                "install PyTorch there or point DMKERAS_TORCH_PYTHON at an interpreter that has it"
            )
        self.num_parameters = int(ready[1])
        self.last = {}

    def run(self, steps: int, untimed: int = 1) -> tuple[float, float]:
        self.process.stdin.write(f"run {steps} {untimed}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline()), 0.0

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def _fed_ssl_step(model):
    """model.step_function(SEMI_SUPERVISED, 0)'s body, taking the per-replica batch instead of
    the iterator."""
    strategy = model.distribute_strategy

    @tf.function
    def step(batch, mix_lambda, lambda_u, seed):
        per_replica = strategy.run(model.ssl_step, args=(0, batch, mix_lambda, lambda_u, seed))
        return {name: strategy.reduce("sum", value, axis=None) for name, value in per_replica.items()}

    return step


# ---------------------------------------------------------------------------------------------
# 1 and 5: step throughput and input wait


def _measure_steps(config: BenchConfig, tc: TrainConfig, model, bank, labels) -> tuple[dict, dict]:
    """Sections 1 (steps) and 5 (input).

    Blocks of k steps of each kind (warm-up 2B, SSL, plain 4B, SSL fed) run in turn within each
    round, the order rotated every round; each figure is a median over rounds, and each ratio
    is taken within a round first.

    Input wait (section 5): in the "fed" SSL block the batch is fetched in Python with
    `next(iterator)` on the real distributed pipeline and passed to the same step, so the time
    the step would wait on its input is measured directly: input_wait_fraction = time in
    `next` / (time in `next` + time in the step), a ratio of times taken in the same steps, so
    it holds up when the machine's speed drifts (the difference of two separately timed passes
    would not: timings here swing by 2x). It slightly over-counts (an eager `next` costs a
    little more than the in-graph one: that overhead, timed on batches already in memory, is
    reported beside it). What it cannot see is the CPU the prefetching input
    threads take from the step on the same cores; for that the pipeline is also run alone:
    pipeline_cpu_share = its CPU seconds per batch / (cores x SSL step time), an upper bound
    of that contention.
    """
    b, n = config.batch_size, config.num_samples
    rng = np.random.default_rng([config.seed, 3])
    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    per_block = config.steps + 1  # a fresh iterator per block: one untimed step, then the timed ones
    count = max(config.warmup_steps, per_block)

    def warmup_data(size):
        plan = _full_batches(lambda: pipeline.warmup_plan(n, size, rng), lambda batch: len(batch) == size, count)
        return distribute(strategy, pipeline.warmup_dataset(bank, labels, plan, replicas, seed=int(rng.integers(2**62))))

    clean_prob, ssl_plans = _ssl_split(config, rng)
    ssl_plan = ssl_plans(count)
    ssl_data = pipeline.ssl_dataset(bank, labels, clean_prob, ssl_plan, replicas, seed=int(rng.integers(2**62)))

    lambda_u = tc.dividemix.lambda_u
    blocks = {
        "ssl": _Block(model, SEMI_SUPERVISED, distribute(strategy, ssl_data), 4 * b, lambda_u, [config.seed, 4]),
        "plain": _Block(model, WARMUP, warmup_data(4 * b), 4 * b, lambda_u, 0),
        "warmup": _Block(model, WARMUP, warmup_data(2 * b), 2 * b, lambda_u, 0),
        "ssl_fed": _Block(model, SEMI_SUPERVISED, distribute(strategy, ssl_data), 4 * b, lambda_u, [config.seed, 4], fed=True),
    }
    if config.compare_torch:
        blocks["torch"] = _TorchBlock(config, 2 * b)
    for block in blocks.values():  # tracing, compilation, first-run costs: excluded
        block.run(0, untimed=config.warmup_steps)
    times = {name: [] for name in blocks}
    waits = []
    names = list(blocks)
    for r in range(config.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
            step_s, wait_s = blocks[name].run(config.steps)
            times[name].append(step_s)
            if name == "ssl_fed":
                waits.append(wait_s / step_s)
    if "torch" in blocks:
        blocks["torch"].close()

    # The pipeline alone: batches drawn with no step running
    alone_plan = ssl_plans(PIPELINE_BATCHES + 1)
    pipeline_wall, pipeline_cpu = _pipeline_alone(
        pipeline.ssl_dataset(bank, labels, clean_prob, alone_plan, replicas, seed=int(rng.integers(2**62)))
    )

    # What an eager next() costs by itself (batches already in memory): the part of the measured
    # wait that the in-graph next() of training does not pay.
    cached = ssl_data.take(min(len(ssl_plan), 5)).cache()
    for _ in cached:  # fill the in-memory cache; later iterators read from it
        pass
    iterator = iter(distribute(strategy, cached.repeat()))
    next(iterator)
    started = time.perf_counter()
    for _ in range(PIPELINE_BATCHES):
        next(iterator)
    next_overhead = (time.perf_counter() - started) / PIPELINE_BATCHES
    del iterator

    def figures(name):
        step = _median(times[name])
        return {"rows_per_step": blocks[name].rows, "step_s": step, "images_per_s": blocks[name].rows / step, "step_s_rounds": times[name]}

    ratios = [s / p for s, p in zip(times["ssl"], times["plain"])]
    ssl_step = _median(times["ssl"])
    cores = _usable_cpus()
    steps = {
        "timing": f"{config.rounds} rounds x {config.steps} steps per block, blocks alternated, "
        f"{config.warmup_steps} untimed steps of each first; medians over rounds",
        "warmup": figures("warmup"),
        "ssl": dict(
            figures("ssl"),
            rows_note=f"rows = the mixed input of the step: {b} labeled x 2 views + {b} unlabeled x 2 views; "
            f"the step also runs 6 no-grad forwards of {b} rows",
        ),
        "plain": dict(figures("plain"), rows_note=f"the warm-up (CE + SGD) step fed batches of {4 * b}: the floor"),
        "ssl_over_plain": _median(ratios),
        "ssl_over_plain_rounds": ratios,
        "last_losses": {name: block.last.get("loss") for name, block in blocks.items()},
        **(
            {
                "torch": dict(
                    figures("torch"),
                    rows_note="the reference's PyTorch PreAct ResNet-18, CE + SGD on the warm-up batch",
                    parameters=blocks["torch"].num_parameters,
                ),
                # > 1: our warm-up step (real tf.data pipeline included) is faster than PyTorch's
                "keras_over_torch_throughput": _median([t / k for t, k in zip(times["torch"], times["warmup"])]),
                "keras_over_torch_throughput_rounds": [t / k for t, k in zip(times["torch"], times["warmup"])],
            }
            if "torch" in blocks
            else {}
        ),
        "traces": _trace_counts(model),
    }
    input_figures = {
        "method": "time in next(iterator) / total time, SSL step fed batches fetched in Python from the real pipeline",
        "ssl_fed_step_s": _median(times["ssl_fed"]),
        "input_wait_fraction": _median(waits),
        "input_wait_fraction_rounds": waits,
        "eager_next_overhead_s": next_overhead,
        "eager_next_overhead_fraction": next_overhead / _median(times["ssl_fed"]),
        "pipeline_alone_s_per_batch": pipeline_wall,
        "pipeline_alone_cpu_s_per_batch": pipeline_cpu,
        "pipeline_cpu_share": pipeline_cpu / (cores * ssl_step),
    }
    return steps, input_figures


# ---------------------------------------------------------------------------------------------
# 2: co-divide


def _measure_codivide(config: BenchConfig, tc: TrainConfig, model, bank, labels, ssl_step_s) -> dict:
    """`CoDivide.on_epoch_begin` of the first epoch after warm-up, timed (after one untimed call
    that traces predict and compiles the GMM), with its parts: scoring (`sample_losses`, both
    nets), GMM + division (the rest of `divide`) and the next epoch's pipelines (the rest)."""
    codivide = codivide_lib.from_config(tc, bank, labels, num_classes=config.num_classes, warm_up=1)
    codivide.set_model(model)
    parts = {}

    def timed(name, fn):
        def wrapper(*args):
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    codivide.sample_losses = timed("scoring", codivide.sample_losses)
    codivide.divide = timed("divide", codivide.divide)
    runs = []
    for _ in range(config.codivide_repeats + 1):
        parts.clear()
        started = time.perf_counter()
        codivide.on_epoch_begin(1)
        total = time.perf_counter() - started
        runs.append({"total": total, "scoring": parts["scoring"], "gmm_division": parts["divide"] - parts["scoring"], "pipelines": total - parts["divide"]})
    runs = runs[1:]
    steps = [p.num_steps for p in codivide.passes]
    result = {
        "samples": len(labels),
        "eval_batch_size": tc.optim.eval_batch_size,
        "codivide_s": _median([r["total"] for r in runs]),
        "scoring_s": _median([r["scoring"] for r in runs]),
        "gmm_division_s": _median([r["gmm_division"] for r in runs]),
        "pipelines_s": _median([r["pipelines"] for r in runs]),
        "codivide_s_repeats": [r["total"] for r in runs],
        "labeled": [p.num_labeled for p in codivide.passes],
        "ssl_epoch_steps": steps,
        "ssl_epoch_s": None,
        "codivide_fraction": None,
    }
    if ssl_step_s is not None:
        result["ssl_epoch_s"] = ssl_step_s * sum(steps)
        result["ssl_epoch_method"] = (
            "extrapolated: median SSL step time x the steps of both nets' passes this co-divide planned"
        )
        result["codivide_fraction"] = result["codivide_s"] / result["ssl_epoch_s"] if sum(steps) else None
    return result


# ---------------------------------------------------------------------------------------------
# 6: what the issue-12 switches cost


def _measure_switches(config: BenchConfig, tc: TrainConfig, model, bank, labels) -> dict:
    """Section 6: each switch's cost as a ratio measured in this run.

    --augdesc=ws: the same SSL step fed by the pipeline that also draws the two strong
    (AutoAugment) views of every labeled and unlabeled sample, against the weak-only pipeline;
    --contrastive_weight: the AugDesc step of a model with UNICON's contrastive term (one more
    forward and backward pass of the unlabeled strong views, through the projection head);
    blocks alternated (the order reversed every other round), the ratio taken within each round. --division=unicon: the
    co-divide (scoring of both nets + the division + the next pipelines) with UNICON's JSD
    selection against the two GMMs of `gmm`, alternated after one untimed call of each.
    """
    b = config.batch_size
    rng = np.random.default_rng([config.seed, 6])
    strategy = model.distribute_strategy
    replicas = strategy.num_replicas_in_sync
    clean_prob, ssl_plans = _ssl_split(config, rng)
    plan = ssl_plans(max(config.warmup_steps, config.steps + 1))
    seed = int(rng.integers(2**62))
    policies = {"weak": None, "augdesc": augdesc_plan("ws")[0]}
    blocks = {
        name: _Block(model, SEMI_SUPERVISED, distribute(strategy, pipeline.ssl_dataset(
            bank, labels, clean_prob, plan, replicas, seed=seed, strong=policy)), 4 * b, tc.dividemix.lambda_u, [config.seed, 6])
        for name, policy in policies.items()
    }
    # UNICON's contrastive term: a twin model (same backbone, its own nets and projection heads)
    # on the AugDesc pipeline, whose strong unlabeled views it contrasts
    contrastive_model = experiment.build_model(
        tc.replace(contrastive_weight=CONTRASTIVE_WEIGHT), config.num_classes, model.image_shape
    )
    blocks["contrastive"] = _Block(contrastive_model, SEMI_SUPERVISED, distribute(strategy, pipeline.ssl_dataset(
        bank, labels, clean_prob, plan, replicas, seed=seed, strong=policies["augdesc"])), 4 * b, tc.dividemix.lambda_u, [config.seed, 6])
    for block in blocks.values():
        block.run(0, untimed=config.warmup_steps)
    times = _alternated({name: lambda block=block: block.run(config.steps)[0] for name, block in blocks.items()}, config.rounds)
    step_ratios = [a / w for a, w in zip(times["augdesc"], times["weak"])]
    contrastive_ratios = [c / a for c, a in zip(times["contrastive"], times["augdesc"])]

    # The pipelines alone, in CPU seconds per batch (process time: what the views cost the cores,
    # which a step's wall time hides while the input threads run beside it on idle cores)
    alone_plan = ssl_plans(PIPELINE_BATCHES + 1)
    pipeline_cpu, first_batch = {}, {}
    for name, policy in policies.items():
        # A new pipeline's first batch, as every epoch builds new ones (after a first build that
        # traces the views' function; that function is then reused, but each new dataset still
        # instantiates its graph): the per-pass start-up the step blocks above do not see
        starts = []
        for _ in range(3):
            started = time.perf_counter()
            next(iter(pipeline.ssl_dataset(bank, labels, clean_prob, alone_plan, replicas, seed=seed, strong=policy)))
            starts.append(time.perf_counter() - started)
        first_batch[name] = _median(starts[1:])
        pipeline_cpu[name] = _pipeline_alone(pipeline.ssl_dataset(bank, labels, clean_prob, alone_plan, replicas, seed=seed, strong=policy))[1]

    codivides = {}
    for division in ("gmm", "unicon"):
        codivide = codivide_lib.from_config(tc.replace(division=division), bank, labels, num_classes=config.num_classes, warm_up=1)
        codivide.set_model(model)
        codivide.on_epoch_begin(1)  # untimed: traces the scoring, compiles the GMM
        codivides[division] = codivide

    def timed_codivide(codivide):
        started = time.perf_counter()
        codivide.on_epoch_begin(1)
        return time.perf_counter() - started

    divide_times = _alternated({name: lambda c=c: timed_codivide(c) for name, c in codivides.items()}, config.codivide_repeats)
    divide_ratios = [u / g for u, g in zip(divide_times["unicon"], divide_times["gmm"])]
    return {
        "timing": f"{config.rounds} rounds x {config.steps} SSL steps per block and {config.codivide_repeats} co-divides of each, alternated",
        "ssl_step_s": _median(times["weak"]),
        "ssl_step_augdesc_s": _median(times["augdesc"]),
        "augdesc_over_plain_step": _median(step_ratios),
        "augdesc_over_plain_step_rounds": step_ratios,
        "ssl_step_contrastive_s": _median(times["contrastive"]),
        "contrastive_over_augdesc_step": _median(contrastive_ratios),
        "contrastive_over_augdesc_step_rounds": contrastive_ratios,
        "pipeline_cpu_s_per_batch": pipeline_cpu["weak"],
        "pipeline_cpu_s_per_batch_augdesc": pipeline_cpu["augdesc"],
        "augdesc_over_plain_pipeline_cpu": pipeline_cpu["augdesc"] / pipeline_cpu["weak"],
        "pipeline_first_batch_s": first_batch["weak"],
        "pipeline_first_batch_augdesc_s": first_batch["augdesc"],
        "codivide_gmm_s": _median(divide_times["gmm"]),
        "codivide_unicon_s": _median(divide_times["unicon"]),
        "unicon_over_gmm_codivide": _median(divide_ratios),
        "unicon_over_gmm_codivide_repeats": divide_ratios,
        "unicon_labeled": [p.num_labeled for p in codivides["unicon"].passes],
        "gmm_labeled": [p.num_labeled for p in codivides["gmm"].passes],
    }


# ---------------------------------------------------------------------------------------------
# 3: GMM


def bimodal_losses(n: int, seed: int) -> np.ndarray:
    """Min-max normalised losses, as division fits them: 70% from a low mode (clean samples),
    30% from a high mode (noisy ones), shuffled."""
    rng = np.random.default_rng([seed, 5])
    low = rng.gamma(2.0, 0.1, size=round(0.7 * n))
    high = np.abs(rng.normal(2.5, 0.6, size=n - len(low)))
    losses = np.concatenate([low, high])
    rng.shuffle(losses)
    return division_lib.min_max_normalize(losses)


def _measure_gmm(config: BenchConfig) -> dict:
    losses = bimodal_losses(config.gmm_samples, config.seed)

    def fit_dmkeras():
        fit, prob = gmm.fit_loss_gmm(losses)
        return prob, fit.n_iter

    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        GaussianMixture = None

    def fit_sklearn():
        model = GaussianMixture(**GMM_SETTINGS, random_state=config.seed)
        model.fit(losses[:, None])  # fit + predict_proba, as the reference's eval_train
        prob = model.predict_proba(losses[:, None])[:, model.means_.argmin()]
        return prob, int(model.n_iter_)

    def fit_sklearn_1thread():
        with threadpool_limits(1):
            return fit_sklearn()

    fits = {"dmkeras": fit_dmkeras}
    if GaussianMixture is not None:
        fits["sklearn"] = fit_sklearn
        try:  # scikit-learn's own dependency
            from threadpoolctl import threadpool_limits

            # its k-means start runs on OpenMP threads, which can be much slower on a busy CPU
            fits["sklearn_1thread"] = fit_sklearn_1thread
        except ImportError:
            pass
    results = {name: fn() for name, fn in fits.items()}  # untimed: XLA compilation
    times = {name: [] for name in fits}
    for r in range(config.gmm_repeats):
        for name in list(fits)[:: 1 if r % 2 == 0 else -1]:  # alternate the order
            # Blocks, as for the steps: one untimed fit, then GMM_BLOCK timed ones. Both
            # libraries' worker threads keep spinning for a while after their work (OpenMP in
            # scikit-learn's k-means, TF's pool), which slows whatever runs next on these cores;
            # the untimed fit absorbs that, so each is timed as it runs in a training process.
            results[name] = fits[name]()
            started = time.perf_counter()
            for _ in range(GMM_BLOCK):
                results[name] = fits[name]()
            times[name].append((time.perf_counter() - started) / GMM_BLOCK)
    out = {
        "samples": len(losses),
        "settings": dict(GMM_SETTINGS),
        "dmkeras_s": _median(times["dmkeras"]),
        "dmkeras_n_iter": results["dmkeras"][1],
        "sklearn_s": None,
        "dmkeras_over_sklearn": None,
        "max_posterior_diff": None,
    }
    if "sklearn" in fits:
        out["sklearn_s"] = _median(times["sklearn"])
        out["sklearn_n_iter"] = results["sklearn"][1]
        out["dmkeras_over_sklearn"] = _median([d / s for d, s in zip(times["dmkeras"], times["sklearn"])])
        out["max_posterior_diff"] = float(np.max(np.abs(results["dmkeras"][0] - results["sklearn"][0])))
    if "sklearn_1thread" in fits:
        out["sklearn_1thread_s"] = _median(times["sklearn_1thread"])
        out["dmkeras_over_sklearn_1thread"] = _median([d / s for d, s in zip(times["dmkeras"], times["sklearn_1thread"])])
    else:
        out["note"] = "scikit-learn is not installed: dmkeras.gmm timed alone"
    return out


# ---------------------------------------------------------------------------------------------
# 4: tracing


class TraceProbe(keras.callbacks.Callback):
    """Records, after every epoch, the tracing count of every compiled function of the model
    (train steps, accuracy, co-divide scoring), with the epoch's phase and division sizes."""

    def __init__(self, codivide):
        super().__init__()
        self.codivide = codivide
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        counts = _trace_counts(self.model)
        logs_ = self.codivide.epoch_logs
        labeled = [logs_.get(f"net{k + 1}_labeled") for k in range(len(self.model.nets))]
        self.epochs.append({"epoch": epoch + 1, "phase": logs_["phase"], "labeled": labeled, "traces": counts})

    def summary(self) -> dict:
        names = sorted({name for e in self.epochs for name in e["traces"]})
        functions = {}
        for name in names:
            cumulative = [e["traces"].get(name, 0) for e in self.epochs]
            per_epoch = [c - p for c, p in zip(cumulative, [0] + cumulative[:-1])]
            first = next((i for i, t in enumerate(per_epoch) if t), 0)
            by_phase = {}
            for e, t in zip(self.epochs, per_epoch):
                by_phase[e["phase"]] = by_phase.get(e["phase"], 0) + t
            functions[name] = {
                "per_epoch": per_epoch,
                "by_phase": by_phase,
                "traces": cumulative[-1],
                "first_epoch": first + 1,
                "retraces": cumulative[-1] - per_epoch[first],  # traces after the epoch of the first
            }
        ssl = [e["labeled"] for e in self.epochs if e["phase"] == SEMI_SUPERVISED]
        step_functions = names
        return {
            "epochs": [{k: e[k] for k in ("epoch", "phase", "labeled")} for e in self.epochs],
            "functions": functions,
            "labeled_sizes_changed": len({tuple(s) for s in ssl}) > 1,
            "step_functions_traced_once": all(functions[n]["traces"] == 1 for n in step_functions),
            "retraces": sum(f["retraces"] for f in functions.values()),
        }


def _measure_tracing(config: BenchConfig, tc: TrainConfig) -> dict:
    """A tiny real training through `trainer.train` with CoDivide: 1 warm-up epoch, then
    semi-supervised epochs, every pass (and the scoring and test evaluation) ending on a partial
    batch; the probe reads the tracing counts after each epoch."""
    b = config.batch_size
    n = config.trace_samples or 4 * b + 3
    eval_batch = 2 * b
    tc = tc.replace(warm_up=1, epochs=config.trace_epochs, eval_batch_size=eval_batch)
    images, labels = _synthetic(config, n, stream=6)
    test_images, test_labels = _synthetic(config, eval_batch + 5, stream=7)
    keras.utils.set_random_seed(config.seed)
    model = experiment.build_model(tc, config.num_classes, images.shape[1:])
    bank = _bank(config, tc, images)
    half = (0.5,) * config.channels
    test_data = pipeline.holdout_dataset(test_images, test_labels, half, half, eval_batch)
    codivide = codivide_lib.from_config(tc, bank, labels, num_classes=config.num_classes)
    probe = TraceProbe(codivide)
    trainer.train(
        model, codivide, epochs=tc.optim.epochs, test_data=test_data, lambda_u=tc.dividemix.lambda_u, rampup_epochs=tc.dividemix.rampup_epochs,
        callbacks=[probe], seed=config.seed, verbose=0,
    )
    return {"samples": n, "eval_batch_size": eval_batch, **probe.summary()}


# ---------------------------------------------------------------------------------------------
# Report


def _git_commit() -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True).stdout.strip()

    try:
        return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _meta(config: BenchConfig, tc: TrainConfig, overrides: dict) -> dict:
    try:
        import sklearn

        sklearn_version = sklearn.__version__
    except ImportError:
        sklearn_version = None
    return {
        "backbone": config.backbone,
        "backbone_args": config.backbone_args,
        "batch_size": config.batch_size,
        "input_shape": [config.input_size, config.input_size, config.channels],
        "num_classes": config.num_classes,
        "samples": config.num_samples,
        "train_config_overrides": overrides,
        **{name: getattr(tc, name) for name in TRAIN_PASSTHROUGH if hasattr(tc, name)},
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn_version,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": _usable_cpus(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        **_git_commit(),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": dataclasses.asdict(config),
    }


def _fmt(value, spec, none="-"):
    return none if value is None else format(value, spec)


def format_report(result: dict) -> str:
    meta = result["meta"]
    h, w, c = meta["input_shape"]
    lines = [
        (
            f"DivideMix benchmark: {meta['backbone']}{' (' + meta['backbone_args'] + ')' if meta['backbone_args'] else ''}, "
            f"batch {meta['batch_size']}, {h}x{w}x{c}, {meta['num_classes']} classes, N = {meta['samples']} synthetic images"
            + "".join(f", {k}={meta[k]}" for k in TRAIN_PASSTHROUGH if k in meta)
        ),
        (
            f"TF {meta['tensorflow']}, Keras {meta['keras']}, {meta['cpus_usable']} CPU(s), {meta['gpus']} GPU(s), "
            f"commit {(meta['git_commit'] or '?')[:10]}{' (dirty)' if meta['git_dirty'] else ''}, {meta['timestamp']}"
        ),
    ]
    steps = result.get("steps")
    if steps:
        b = meta["batch_size"]
        lines += ["", f"1. Train steps ({steps['timing']})", f"   {'step':<44}{'rows':>6}{'ms/step':>10}{'images/s':>10}"]
        for name, title in (
            ("warmup", f"warm-up: CE on 2B = {2 * b} rows"),
            ("ssl", "semi-supervised (rows: see *)"),
            ("plain", f"plain CE step on 4B = {4 * b} rows (floor)"),
        ):
            s = steps[name]
            lines.append(f"   {title:<44}{s['rows_per_step']:>6}{1000 * s['step_s']:>10.1f}{s['images_per_s']:>10.1f}")
        lines.append(
            f"   SSL step / plain step time: {steps['ssl_over_plain']:.2f}x "
            f"(rounds {min(steps['ssl_over_plain_rounds']):.2f}-{max(steps['ssl_over_plain_rounds']):.2f})"
        )
        lines.append(f"   * {steps['ssl']['rows_note']}")
        if "torch" in steps:
            t = steps["torch"]
            lines.append(
                f"   {'reference PyTorch PreAct ResNet-18, 2B rows':<44}{t['rows_per_step']:>6}{1000 * t['step_s']:>10.1f}"
                f"{t['images_per_s']:>10.1f}"
            )
            rounds = steps["keras_over_torch_throughput_rounds"]
            lines.append(
                f"   our warm-up step / PyTorch's, throughput: {steps['keras_over_torch_throughput']:.2f}x "
                f"(rounds {min(rounds):.2f}-{max(rounds):.2f}; ours includes the tf.data pipeline)"
            )
    cd = result.get("codivide")
    if cd:
        lines += [
            "",
            f"2. Co-divide over N = {cd['samples']} (median of {len(cd['codivide_s_repeats'])}; eval batch {cd['eval_batch_size']})",
            (
                f"   {cd['codivide_s']:.2f} s: scoring both nets {cd['scoring_s']:.2f} s, "
                f"GMM + division {cd['gmm_division_s']:.3f} s, pipelines {cd['pipelines_s']:.3f} s"
            ),
            (
                f"   semi-supervised epoch: {cd['ssl_epoch_steps']} steps (labeled {cd['labeled']}) = "
                f"{_fmt(cd['ssl_epoch_s'], '.1f')} s (median SSL step time x steps)"
            ),
            f"   co-divide / SSL epoch: {_fmt(cd['codivide_fraction'] and 100 * cd['codivide_fraction'], '.1f')}%",
        ]
    g = result.get("gmm")
    if g:
        lines += ["", f"3. Loss GMM on {g['samples']:,} losses (medians over alternated blocks of 5 fits; {g['settings']})"]
        lines.append(f"   dmkeras.gmm (XLA, float64): {1000 * g['dmkeras_s']:.1f} ms, {g['dmkeras_n_iter']} EM iterations")
        if g["sklearn_s"] is not None:
            lines.append(f"   scikit-learn GaussianMixture fit + predict_proba: {1000 * g['sklearn_s']:.1f} ms, {g['sklearn_n_iter']} EM iterations")
            lines.append(
                f"   dmkeras / sklearn time: {g['dmkeras_over_sklearn']:.2f}x; "
                f"largest |clean posterior difference|: {g['max_posterior_diff']:.2e}"
            )
            if g.get("sklearn_1thread_s") is not None:
                lines.append(
                    f"   the same on one thread (threadpoolctl): {1000 * g['sklearn_1thread_s']:.1f} ms "
                    f"(dmkeras / that: {g['dmkeras_over_sklearn_1thread']:.2f}x)"
                )
        else:
            lines.append(f"   {g['note']}")
    tr = result.get("tracing")
    if tr:
        epochs = tr["epochs"]
        lines += ["", f"4. tf.function traces per epoch (tiny training: {tr['samples']} samples, eval batch {tr['eval_batch_size']})"]
        header = "".join(f"{'e' + str(e['epoch']) + ' ' + e['phase']:>11}" for e in epochs)
        lines.append(f"   {'function':<26}{header}{'traces':>8}{'retraces':>10}")
        for name, f in tr["functions"].items():
            cells = "".join(f"{t:>11}" for t in f["per_epoch"])
            lines.append(f"   {name:<26}{cells}{f['traces']:>8}{f['retraces']:>10}")
        sizes = ", ".join(f"e{e['epoch']} {e['labeled']}" for e in epochs if e["phase"] == SEMI_SUPERVISED)
        lines.append(f"   labeled per net: {sizes} ({'changed' if tr['labeled_sizes_changed'] else 'did not change'} between epochs)")
        lines.append(
            f"   every step function traced once: {'yes' if tr['step_functions_traced_once'] else 'NO'}; retraces after the first epoch: {tr['retraces']}"
        )
    inp = result.get("input")
    if inp:
        rounds = inp["input_wait_fraction_rounds"]
        lines += [
            "",
            "5. Input wait in the semi-supervised pass",
            (
                f"   waiting on next(iterator): {100 * inp['input_wait_fraction']:.2f}% of the step time "
                f"(rounds {100 * min(rounds):.2f}..{100 * max(rounds):.2f}%; target <= 5%), of which "
                f"{100 * inp['eager_next_overhead_fraction']:.2f}% is the eager next()'s own overhead"
            ),
            (
                f"   the pipeline alone: {1000 * inp['pipeline_alone_s_per_batch']:.1f} ms, "
                f"{1000 * inp['pipeline_alone_cpu_s_per_batch']:.1f} CPU-ms per batch = at most "
                f"{100 * inp['pipeline_cpu_share']:.2f}% of the cores during a step"
            ),
        ]
    sw = result.get("switches")
    if sw:
        rounds, repeats = sw["augdesc_over_plain_step_rounds"], sw["unicon_over_gmm_codivide_repeats"]
        lines += [
            "",
            f"6. What the issue-12 switches cost ({sw['timing']})",
            (
                f"   --augdesc=ws SSL step (two strong views more per sample): {1000 * sw['ssl_step_augdesc_s']:.1f} ms "
                f"against {1000 * sw['ssl_step_s']:.1f} ms = {sw['augdesc_over_plain_step']:.2f}x "
                f"(rounds {min(rounds):.2f}-{max(rounds):.2f})"
            ),
            (
                f"   + UNICON's contrastive term (--contrastive_weight, on the strong unlabeled views): "
                f"{1000 * sw['ssl_step_contrastive_s']:.1f} ms = {sw['contrastive_over_augdesc_step']:.2f}x the --augdesc=ws step "
                f"(rounds {min(sw['contrastive_over_augdesc_step_rounds']):.2f}-{max(sw['contrastive_over_augdesc_step_rounds']):.2f})"
            ),
            (
                f"   its pipeline alone: {1000 * sw['pipeline_cpu_s_per_batch_augdesc']:.1f} CPU-ms per batch against "
                f"{1000 * sw['pipeline_cpu_s_per_batch']:.1f} = {sw['augdesc_over_plain_pipeline_cpu']:.2f}x; "
                f"a new pipeline's first batch {sw['pipeline_first_batch_augdesc_s']:.2f} s against {sw['pipeline_first_batch_s']:.2f} s"
            ),
            (
                f"   --division=unicon co-divide: {sw['codivide_unicon_s']:.2f} s against {sw['codivide_gmm_s']:.2f} s for gmm "
                f"= {sw['unicon_over_gmm_codivide']:.2f}x (repeats {min(repeats):.2f}-{max(repeats):.2f})"
            ),
        ]
    return "\n".join(lines)


def run(config: BenchConfig, **train_overrides) -> dict:
    """Run the sections of `config`, print the report, write `config.out`; return the figures.

    `train_overrides` are TrainConfig fields (e.g. jit_compile=True) the model is built with.
    """
    config.validate()
    tc = train_config(config, **train_overrides)
    sections = config.section_list
    result = {"meta": _meta(config, tc, train_overrides)}
    shape = (config.input_size, config.input_size, config.channels)
    timings = result["meta"]["section_s"] = {}

    def timed(name, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        timings[name] = time.perf_counter() - started
        return out

    if "steps" in sections or "codivide" in sections or "switches" in sections:
        images, labels = _synthetic(config, config.num_samples, stream=2)
        bank = _bank(config, tc, images)
        keras.utils.set_random_seed(config.seed)
        model = timed("build", experiment.build_model, tc, config.num_classes, shape)
        result["meta"]["parameters_per_net"] = int(model.nets[0].count_params())
        ssl_step_s = None
        if "steps" in sections:
            result["steps"], result["input"] = timed("steps", _measure_steps, config, tc, model, bank, labels)
            ssl_step_s = result["steps"]["ssl"]["step_s"]
        if "codivide" in sections:
            result["codivide"] = timed("codivide", _measure_codivide, config, tc, model, bank, labels, ssl_step_s)
        if "switches" in sections:
            result["switches"] = timed("switches", _measure_switches, config, tc, model, bank, labels)
    if "gmm" in sections:
        result["gmm"] = timed("gmm", _measure_gmm, config)
    if "tracing" in sections:
        result["tracing"] = timed("tracing", _measure_tracing, config, tc)
    print(format_report(result), flush=True)
    if config.out:
        directory = os.path.dirname(os.path.abspath(config.out))
        os.makedirs(directory, exist_ok=True)
        with open(config.out, "w") as f:
            json.dump(result, f, indent=2, default=_json_default)
            f.write("\n")
        print(f"(figures written to {config.out})", flush=True)
    return result


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m tools.bench")
