"""Write the parity fixtures: what the reference (transcribed in `torch_dividemix`) computes.

    PYTHON_WITH_TORCH tools/reference/make_fixtures.py --out tests/fixtures

Needs PyTorch, numpy and scikit-learn (not TensorFlow). Deterministic: numpy default_rng inputs,
`convert.reference_init` weights, one CPU thread, `torch.use_deterministic_algorithms(True)`,
float32 throughout, numpy's global RNG seeded before every GaussianMixture fit (the reference
leaves its random_state None). Files are written with fixed zip timestamps (`convert.save_npz`),
so a rerun with the same library versions gives the same bytes.

Files (keys ``section/name``; inputs are stored next to the outputs, images NHWC as float16
values, i.e. float32 numbers exactly representable in float16, to keep the files small):

* ``preact_resnet18.npz``: batches of 8 of 32x32x3, 10 classes (SSL step: 4 labeled + 4
  unlabeled rows, two views each); conv kernels in digests (`convert.digest`), the rest in full;
  the three warm-up steps also in float64 on the first 4 rows of each batch (``steps64``);
  eval_train with the initial net.
* ``small_cnn.npz``: batches of 16 of 16x16x1, width 8, 10 classes (SSL step: 16 + 16 rows);
  every tensor in full; eval_train with the net after the three steps, on 256 rows, with and
  without a loss history.
* ``versions.json``: torch / numpy / scikit-learn / Python versions that wrote them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402

from tools.reference import convert  # noqa: E402
from tools.reference import torch_dividemix as ref  # noqa: E402

LRS = np.array([0.02, 0.02, 0.002], np.float32)  # the 3rd step after an lr drop (/10)
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
TEMPERATURE = 0.5
GMM_SEED = 0  # numpy's global seed before each GaussianMixture fit

CONFIGS = {
    "preact_resnet18": dict(
        num_classes=10, shape=(32, 32, 3), width=None, batch=8, seeds=(1, 2), data_seed=101,
        full_state=False, eval_rows=None, lamb=5.0, ssl_batch=4, eval_trained=False, float64_rows=4,
    ),
    "small_cnn": dict(
        num_classes=10, shape=(16, 16, 1), width=8, batch=16, seeds=(11, 12), data_seed=202,
        full_state=True, eval_rows=256, lamb=7.5, ssl_batch=16, eval_trained=True, float64_rows=0,
    ),
}


def _images(rng, shape):
    return rng.standard_normal(shape).astype(np.float16)


def _net(arch, cfg, seed):
    kwargs = {} if cfg["width"] is None else {"width": cfg["width"]}
    state = convert.reference_init(arch, seed, cfg["num_classes"], cfg["shape"][2], **kwargs)
    net = ref.build(arch, cfg["num_classes"], cfg["shape"][2], **kwargs)
    return ref.load_state(net, state)


def _state(net, cfg):
    state = ref.state_numpy(net)
    return state if cfg["full_state"] else convert.digest(state)


def _put(out, name, values: dict):
    for key, value in values.items():
        out[f"{name}/{key}"] = np.asarray(value)


def _bn_stats(net):
    return {k: v for k, v in ref.state_numpy(net).items() if k.endswith(("running_mean", "running_var"))}


def _gmm_eval(net, x, y, history, average_history):
    np.random.seed(GMM_SEED)
    result, _ = ref.eval_train(net, x, y, list(history), average_history=average_history)
    return result


def make(arch) -> dict:
    cfg = CONFIGS[arch]
    rng = np.random.default_rng(cfg["data_seed"])
    c, b, shape = cfg["num_classes"], cfg["batch"], cfg["shape"]
    seed1, seed2 = cfg["seeds"]
    out = {
        "config/seeds": np.array(cfg["seeds"], np.int64),
        "config/num_classes": np.array(c),
        "config/shape": np.array(shape),
        "config/width": np.array(cfg["width"] or 0),
        "config/lrs": LRS,
        "config/momentum": np.array(MOMENTUM),
        "config/weight_decay": np.array(WEIGHT_DECAY),
        "config/temperature": np.array(TEMPERATURE),
    }
    x_steps = _images(rng, (3, b) + shape)
    y_steps = rng.integers(0, c, size=(3, b)).astype(np.int64)
    out["inputs/x_steps"], out["inputs/y_steps"] = x_steps, y_steps
    x0, y0 = ref.nchw(x_steps[0]), torch.from_numpy(y_steps[0])

    # forward: eval mode, then train mode (batch statistics; the running stats move once)
    net = _net(arch, cfg, seed1)
    out["forward/logits_eval"] = ref.forward(net, x0, train=False).numpy()
    net = _net(arch, cfg, seed1)
    logits_train = ref.forward(net, x0, train=True)
    out["forward/logits_train"] = logits_train.numpy()
    _put(out, "forward/bn_after_train", _bn_stats(net))

    # warm-up losses on the train-mode logits (Train_CIFAR.warmup: CEloss, + NegEntropy if asym)
    ce = ref.CEloss(logits_train, y0)
    penalty = ref.conf_penalty(logits_train)
    out["warmup/ce"] = np.float32(ce.item())
    out["warmup/penalty"] = np.float32(penalty.item())
    out["warmup/ce_penalty"] = np.float32((ce + penalty).item())

    # three warm-up SGD steps, lr 0.02, 0.02, then 0.002 (CE; small_cnn also CE + penalty)
    forms = {"steps": False} if arch == "preact_resnet18" else {"steps": False, "steps_penalty": True}
    trained = None
    for name, penalize in forms.items():
        net = _net(arch, cfg, seed1)
        optimizer = ref.sgd(net, float(LRS[0]), MOMENTUM, WEIGHT_DECAY)
        losses = []
        for t in range(3):
            ref.set_lr(optimizer, float(LRS[t]))
            step = ref.warmup_step(net, optimizer, ref.nchw(x_steps[t]), torch.from_numpy(y_steps[t]), penalize)
            losses.append(step["loss"])
        out[f"{name}/losses"] = np.array(losses, np.float32)
        _put(out, f"{name}/state", _state(net, cfg))
        if name == "steps":
            trained = net
    if cfg["float64_rows"]:
        # the same three steps in float64 on the first rows of each batch: the comparison of the
        # update itself, without the float32 noise that flips a few ReLUs (see tests/integration/test_parity.py)
        rows = cfg["float64_rows"]
        out["steps64/rows"] = np.array(rows)
        net = _net(arch, cfg, seed1).double()
        optimizer = ref.sgd(net, float(LRS[0]), MOMENTUM, WEIGHT_DECAY)
        losses = []
        for t in range(3):
            ref.set_lr(optimizer, float(LRS[t]))
            x = ref.nchw(x_steps[t][:rows]).double()
            losses.append(ref.warmup_step(net, optimizer, x, torch.from_numpy(y_steps[t][:rows]))["loss"])
        out["steps64/losses"] = np.array(losses, np.float64)
        state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if "num_batches" not in k}
        _put(out, "steps64/state", convert.digest(state))  # float64 (ref.state_numpy casts to float32)

    # eval_train: per-sample CE (eval mode), normalised, GMM; with the net after the 3 steps
    # (small_cnn) or the initial net (preact, whose float32 steps are only close to ~1e-3)
    if cfg["eval_rows"]:
        x_eval = _images(rng, (cfg["eval_rows"],) + shape)
        y_eval = rng.integers(0, c, size=cfg["eval_rows"]).astype(np.int64)
        # an earlier history of normalised losses (5 epochs, 30% "noisy" samples with high loss),
        # so that the mean of the last 5 drops the oldest entry and the GMM sees two modes
        noisy = rng.random(cfg["eval_rows"]) < 0.3
        history = np.where(
            noisy, rng.beta(6.0, 3.0, (5, cfg["eval_rows"])), rng.beta(2.0, 8.0, (5, cfg["eval_rows"]))
        ).astype(np.float32)
        out["inputs/history"] = history
        out["inputs/x_eval"] = x_eval
    else:  # preact: the three step batches are the train set (x_eval not stored: x_steps reshaped)
        x_eval = x_steps.reshape((-1,) + shape)
        y_eval = y_steps.reshape(-1)
        history = np.zeros((0, len(y_eval)), np.float32)
    out["inputs/y_eval"] = y_eval
    xe, ye = ref.nchw(x_eval), torch.from_numpy(y_eval)
    prior = [torch.from_numpy(h) for h in history]
    if not cfg["eval_trained"]:
        trained = _net(arch, cfg, seed1)
    out["config/eval_trained"] = np.array(cfg["eval_trained"])
    single = _gmm_eval(trained, xe, ye, prior, average_history=False)
    _put(out, "eval", {k: v for k, v in single.items()})
    if len(prior):
        averaged = _gmm_eval(trained, xe, ye, prior, average_history=True)
        _put(out, "eval_history", averaged)

    # one semi-supervised step of net 1 (net 2 the fixed peer), both forms, same inputs
    b = cfg["ssl_batch"]
    ssl_inputs = {
        "x1": _images(rng, (b,) + shape),
        "x2": _images(rng, (b,) + shape),
        "u1": _images(rng, (b,) + shape),
        "u2": _images(rng, (b,) + shape),
        "y": rng.integers(0, c, size=b).astype(np.int64),
        "w": rng.uniform(0.0, 1.0, size=b).astype(np.float32),
    }
    lam = float(np.float32(max(draw := rng.beta(4.0, 4.0), 1.0 - draw)))  # a float32 number: 1 - lam is exact too
    idx = rng.permutation(4 * b).astype(np.int64)
    _put(out, "ssl_inputs", ssl_inputs)
    out["ssl_inputs/lam"] = np.float32(lam)
    out["ssl_inputs/idx"] = idx
    out["ssl_inputs/lamb"] = np.float32(cfg["lamb"])
    batch = {
        "inputs_x": ref.nchw(ssl_inputs["x1"]),
        "inputs_x2": ref.nchw(ssl_inputs["x2"]),
        "inputs_u": ref.nchw(ssl_inputs["u1"]),
        "inputs_u2": ref.nchw(ssl_inputs["u2"]),
        "labels_x": torch.from_numpy(ssl_inputs["y"]),
        "w_x": torch.from_numpy(ssl_inputs["w"]),
    }
    for form in ("cifar", "clothing"):
        net, net2 = _net(arch, cfg, seed1), _net(arch, cfg, seed2)
        optimizer = ref.sgd(net, float(LRS[0]), MOMENTUM, WEIGHT_DECAY)
        if form == "cifar":
            result = ref.ssl_step_cifar(net, net2, optimizer, batch, lam, idx, cfg["lamb"], TEMPERATURE, c)
        else:
            result = ref.ssl_step_clothing(net, net2, optimizer, batch, lam, idx, TEMPERATURE, c)
        _put(out, f"ssl_{form}", result)
        _put(out, f"ssl_{form}/state", _state(net, cfg))

    # the ensemble test (Train_CIFAR.test) of the two initial nets on the eval rows
    net, net2 = _net(arch, cfg, seed1), _net(arch, cfg, seed2)
    _put(out, "ensemble", ref.test_ensemble(net, net2, xe, ye))
    return out


def versions() -> dict:
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "reference": "LiJunnan1992/DivideMix (PreResNet.py, Train_CIFAR.py @ 39740b2; Train_clothing1M.py @ 5079ec7)",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "tests" / "fixtures"))
    parser.add_argument("--arch", action="append", choices=sorted(CONFIGS), help="default: every arch")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)  # nothing is drawn from torch's RNG; set anyway
    os.makedirs(args.out, exist_ok=True)
    for arch in args.arch or sorted(CONFIGS):
        path = Path(args.out) / f"{arch}.npz"
        convert.save_npz(path, make(arch))
        print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")
    with open(Path(args.out) / "versions.json", "w") as f:
        json.dump(versions(), f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
