"""Export a finished run as a servable model: a TF SavedModel of the ensemble, with preprocessing.

    >>> from dmkeras import export
    >>> export.export_run("runs/digits_sym50", "exports/digits_sym50")
    >>> model = export.load("exports/digits_sym50")  # keras.Model: uint8 images -> probabilities (= zoo.load)
    >>> export.model_card("exports/digits_sym50")["test_acc_best"]

The export directory is itself a SavedModel (`tf.saved_model.load(DIR)` works, and so does TF
Serving): its signatures take uint8 images `[batch, H, W, C]` of the training size under the key
"images" and normalise them inside, `(image / 255 - mean) / std` with the run's per-channel
mean and std, as training did:

* `serving_default`: {"probabilities": softmax(net1(x) + net2(x))} (softmax(net1(x)) for a run
  of the standard baseline, which has one net);
* `predict_logits`: {"logits": net1(x) + net2(x)}.

Next to the SavedModel files it holds the run's `net1.keras` / `net2.keras` (backbones:
normalised float images -> logits), `model_card.json` (where the model comes from, its numbers,
the resolved config, library versions) and a human `README.md`.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile

from dmkeras import input_transform
from dmkeras.errors import ConfigError, DmkerasError
from dmkeras.rundir import RunDir

FORMAT = "dmkeras-export"
FORMAT_VERSION = 1
CARD = "model_card.json"
README = "README.md"
INPUT_KEY = "images"
OUTPUT_KEY = "probabilities"
LOGITS_KEY = "logits"
SIGNATURES = ("serving_default", "predict_logits")
RUN_FILES = (RunDir.CONFIG, RunDir.DATASET, RunDir.SUMMARY)

__all__ = ["export_run", "load", "load_net", "model_card"]


# -- reading a run directory ---------------------------------------------------------------------


def _read_json(path: str, what: str) -> dict:
    if not os.path.isfile(path):
        raise DmkerasError(f"{what} has no {os.path.basename(path)}: {path} not found")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise DmkerasError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict):
        raise DmkerasError(f"{path} does not hold a JSON object")
    return data


def _read_run(workdir: str, allow_unfinished: bool) -> dict:
    """config, dataset, summary and the net files of a run directory, checked."""
    run_dir = RunDir(workdir)
    if not workdir or not run_dir.exists():
        raise DmkerasError(f"run directory not found: {workdir!r}")
    config, dataset, summary = run_dir.config(), run_dir.dataset(), run_dir.summary()  # the RUN_FILES
    run = {"config": config, "dataset": dataset, "summary": summary}
    for key in ("image_shape", "mean", "std", "num_classes"):
        if key not in dataset:
            raise DmkerasError(f"{run_dir.dataset_path} lacks {key!r}")
    shape, mean, std = dataset["image_shape"], dataset["mean"], dataset["std"]
    if len(shape) != 3 or len(mean) != shape[2] or len(std) != shape[2] or min(std) <= 0:
        raise DmkerasError(
            f"{run_dir.dataset_path}: image_shape {shape} does not fit mean {mean} / std {std}"
        )
    if not summary.get("finished", False) and not allow_unfinished:
        raise ConfigError(  # names the argument; launch.export shows it as its flag
            f"the run in {workdir} did not finish ({summary.get('epochs', '?')}/{summary.get('epochs_planned', '?')} epochs): "
            "allow_unfinished exports its last weights anyway",
            fields=("allow_unfinished",),
        )
    num_nets = 2 if config.get("method", "dividemix") == "dividemix" else 1  # standard and cleanlab train one net
    nets = [RunDir.net_name(k) for k in range(num_nets)]
    for name in nets:
        if not os.path.isfile(run_dir.file(name)):
            raise DmkerasError(f"run directory {workdir} has no {name} (a {config.get('method', '?')} run writes {', '.join(nets)})")
    run["nets"] = nets
    return run


# -- the ensemble, as TF and as Keras ------------------------------------------------------------


def _load_nets(directory: str, names) -> list:
    import keras

    nets = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            nets.append(keras.saving.load_model(path, compile=False))
        except Exception as error:  # a corrupt or foreign file: keras raises many kinds
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise DmkerasError(f"cannot load {path}: {first[:300]}") from error
    return nets


def _check_nets(nets, dataset: dict, where: str) -> None:
    shape = tuple(int(d) for d in dataset["image_shape"])
    for k, net in enumerate(nets):
        net_shape = tuple(net.input_shape[1:]) if not isinstance(net.input_shape, list) else None
        if net_shape != shape:
            raise DmkerasError(f"net{k + 1}.keras in {where} takes inputs {net.input_shape}, not images {list(shape)}")
        classes = net.output_shape[-1]
        if classes != int(dataset["num_classes"]):
            raise DmkerasError(f"net{k + 1}.keras in {where} has {classes} outputs, not {dataset['num_classes']} classes")


def _serving_module(nets, dataset: dict):
    """A tf.Module holding the nets, with the two serving functions (uint8 images in)."""
    import tensorflow as tf

    shape = [int(d) for d in dataset["image_shape"]]
    mean = [float(m) for m in dataset["mean"]]
    std = [float(s) for s in dataset["std"]]
    spec = tf.TensorSpec([None, *shape], tf.uint8, name=INPUT_KEY)

    class Ensemble(tf.Module):
        def __init__(self):
            super().__init__(name="dmkeras_ensemble")
            self.nets = list(nets)  # tracked: their variables are saved with the module

        def _logits(self, images):
            x = input_transform.normalize(images, mean, std)  # the function training used
            # float32 logits, also from nets trained under a mixed precision policy
            logits = [tf.cast(net(x, training=False), tf.float32) for net in self.nets]
            return tf.add_n(logits) if len(logits) > 1 else logits[0]

        @tf.function(input_signature=[spec])
        def serve(self, images):
            return {OUTPUT_KEY: tf.nn.softmax(self._logits(images), axis=-1)}

        @tf.function(input_signature=[spec])
        def predict_logits(self, images):
            return {LOGITS_KEY: self._logits(images)}

    return Ensemble()


def _keras_ensemble(nets, dataset: dict):
    """Functional keras.Model: uint8 images -> Rescaling(1/255) -> Normalization(mean, std) -> nets -> softmax."""
    import keras
    import numpy as np

    shape = tuple(int(d) for d in dataset["image_shape"])
    std = np.asarray(dataset["std"], np.float64)
    images = keras.Input(shape=shape, dtype="uint8", name=INPUT_KEY)
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(images)
    x = keras.layers.Normalization(mean=list(dataset["mean"]), variance=list(std**2), axis=-1, name="normalize")(x)
    logits = [net(x) for net in nets]
    # float32 layers cast their inputs: float32 probabilities also from nets trained in mixed precision
    z = keras.layers.Add(dtype="float32", name="ensemble_logits")(logits) if len(logits) > 1 else logits[0]
    probabilities = keras.layers.Activation("softmax", dtype="float32", name=OUTPUT_KEY)(z)
    return keras.Model(images, probabilities, name="dmkeras_ensemble")


# -- model card ----------------------------------------------------------------------------------


def _versions() -> dict:
    from importlib import metadata

    import keras
    import numpy as np
    import tensorflow as tf

    import dmkeras

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": dist("tensorflow-probability") or dist("tensorflow_probability"),
        "numpy": np.__version__,
        "dmkeras": dmkeras.__version__,
        "python": platform.python_version(),
    }


def _card(run: dict, workdir: str, nets) -> dict:
    config, dataset, summary = run["config"], run["dataset"], run["summary"]
    shape = [int(d) for d in dataset["image_shape"]]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source_workdir": os.path.abspath(workdir),
        "method": config.get("method"),
        "backbone": config.get("backbone"),
        "backbone_args": config.get("backbone_args", ""),
        "num_nets": len(run["nets"]),
        "nets": list(run["nets"]),
        "parameters_per_net": int(nets[0].count_params()),
        "dataset": dataset,
        "noise": {"mode": config.get("noise_mode"), "rate": config.get("noise_rate"), "actual": summary.get("noise_rate_actual")},
        "test_acc_best": summary.get("test_acc_best"),
        "test_acc_last": summary.get("test_acc_last"),
        "division_auc_last": summary.get("division_auc_last"),
        "labeled_fraction_last": summary.get("labeled_fraction_last"),
        "epochs": summary.get("epochs"),
        "epochs_planned": summary.get("epochs_planned"),
        "finished": bool(summary.get("finished", False)),
        "wall_time_s": summary.get("wall_time_s"),
        "serving": {
            "signatures": {
                "serving_default": {"inputs": {INPUT_KEY: "uint8"}, "outputs": {OUTPUT_KEY: "float32"}},
                "predict_logits": {"inputs": {INPUT_KEY: "uint8"}, "outputs": {LOGITS_KEY: "float32"}},
            },
            "input_shape": [None, *shape],
            "preprocessing": "x = (image / 255 - mean) / std per channel, inside the model",
            "input_transform": dataset.get("input_transform"),  # which transform mean / std are (dmkeras.input_transform)
            "output": "softmax(net1(x) + net2(x))" if len(run["nets"]) > 1 else "softmax(net1(x))",
        },
        "config": config,
        "versions": _versions(),
    }


def _readme(card: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    data, noise = card["dataset"], card["noise"]
    shape = data["image_shape"]
    what = (
        f"the DivideMix ensemble of two {card['backbone']} nets" if card["num_nets"] > 1 else f"one {card['backbone']} net (standard cross-entropy baseline)"
    )
    if noise.get("mode") == "none" or noise.get("rate") in (0, None):
        noise_text = "no synthetic noise added"
    else:
        noise_text = f"{noise['mode']} {noise['rate']:g}"
    classes = data.get("class_names") or list(range(int(data["num_classes"])))
    rows = [
        ("test accuracy, best epoch", pct(card["test_acc_best"])),
        ("test accuracy, mean of the last 10 epochs", pct(card["test_acc_last"])),
        ("division AUC, last epoch", num(card["division_auc_last"], ".4f")),
        ("labeled fraction, last epoch", num(card["labeled_fraction_last"], ".3f")),
        ("label noise (actual fraction wrong)", f"{noise_text} ({num(noise['actual'], '.4f')})"),
        ("epochs", f"{card['epochs']}/{card['epochs_planned']}" + ("" if card["finished"] else " (unfinished run)")),
        ("training images / test images", f"{data.get('num_train', '-')} / {data.get('num_test', '-')}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    out = "softmax(net1(x) + net2(x))" if card["num_nets"] > 1 else "softmax(net1(x))"
    return f"""# {card['method']} / {card['backbone']} on {data['name']}

{what[0].upper() + what[1:]}, trained with dmkeras {card['versions']['dmkeras']} on `{data['name']}`
with noisy labels ({noise_text}), exported from `{card['source_workdir']}` on {card['created_utc']}.
It classifies {shape[0]}x{shape[1]}x{shape[2]} uint8 images into {data['num_classes']} classes:
{', '.join(map(str, classes))}.

| | |
|---|---|
{table}

The test accuracies are those measured during training on the run's test split.
`model_card.json` holds these numbers, the full training config and the library versions.

## Files

* `saved_model.pb`, `variables/`: a TensorFlow SavedModel of the whole model, preprocessing included;
* `net1.keras`{', `net2.keras`' if card['num_nets'] > 1 else ''}: the trained backbone(s), normalised float images -> logits;
* `model_card.json`: machine-readable version of this card.

## Serve

Input: uint8 images of shape `[batch, {shape[0]}, {shape[1]}, {shape[2]}]` (any batch size), pixel values 0-255,
under the key `"{INPUT_KEY}"`. The model normalises them itself, `x = (image / 255 - mean) / std`
per channel with mean {data['mean']} and std {data['std']}.

```python
import tensorflow as tf

model = tf.saved_model.load("DIR")
probabilities = model.signatures["serving_default"]({INPUT_KEY}=images)["{OUTPUT_KEY}"]  # {out}
logits = model.signatures["predict_logits"]({INPUT_KEY}=images)["{LOGITS_KEY}"]
```

TF Serving can serve the directory as it is (signature `serving_default`).

## Reload in Keras

```python
import dmkeras.zoo

model = dmkeras.zoo.load("DIR")             # keras.Model: uint8 images -> class probabilities
probabilities = model.predict(images)       # the same numbers as serving_default
```

(`dmkeras.export.load("DIR")` is the same; `dmkeras.export.model_card("DIR")` reads `model_card.json`.)
"""


# -- export --------------------------------------------------------------------------------------


def _is_our_export(directory: str) -> bool:
    try:
        with open(os.path.join(directory, CARD)) as f:
            card = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == FORMAT and os.path.isfile(os.path.join(directory, "saved_model.pb"))


def _check_out_dir(out_dir: str, workdir: str) -> bool:
    """True when out_dir holds an earlier export (to be replaced); raise when it may not be written."""
    if not out_dir:
        raise DmkerasError("no output directory given")
    out_abs, work_abs = os.path.realpath(out_dir), os.path.realpath(workdir)
    if out_abs == work_abs or work_abs.startswith(out_abs + os.sep):
        raise DmkerasError(f"the output directory {out_dir} must not be, or hold, the run directory {workdir}")
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise DmkerasError(f"output path {out_dir} exists and is not a directory")
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if _is_our_export(out_dir):
            return True
        raise DmkerasError(f"output directory {out_dir} is not empty and holds no dmkeras export: choose another one")
    return False


def _swap_in(tmp: str, out_dir: str) -> None:
    """Move the finished export `tmp` to `out_dir`, replacing an earlier export there."""
    if not os.path.isdir(out_dir) or not os.listdir(out_dir):
        os.replace(tmp, out_dir)  # a rename onto an empty directory replaces it
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old-", dir=os.path.dirname(out_dir))
    os.rmdir(old)
    os.rename(out_dir, old)
    try:
        os.rename(tmp, out_dir)
    except BaseException:
        os.rename(old, out_dir)  # put the earlier export back
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_run(workdir: str, out_dir: str, *, allow_unfinished: bool = False, verify: bool = True, nets=None) -> dict:
    """Export the run in `workdir` to `out_dir` (see the module docstring for what is written).

    `out_dir` is created; an existing non-empty `out_dir` is refused unless it holds an earlier
    export, which is then replaced as a whole (the new export is written next to it, then swapped
    in, so a failure leaves the earlier one untouched). A run whose summary says it did not
    finish is refused unless `allow_unfinished`. With `verify`, the written SavedModel is
    reloaded and checked against the Keras nets on a few images. `nets`: the run's nets, already
    loaded (launch.export passes `DivideMix.from_run(workdir).nets`: this module cannot import the
    task, which imports the zoo, which imports it); None reads them from the run directory.

    Returns {"out_dir", "files", "signatures", "replaced", "model_card"}.
    """
    workdir, out_dir = os.fspath(workdir), os.fspath(out_dir)
    run = _read_run(workdir, allow_unfinished)
    out_dir = os.path.abspath(out_dir)
    replaced = _check_out_dir(out_dir, workdir)

    import numpy as np
    import tensorflow as tf

    nets = _load_nets(workdir, run["nets"]) if nets is None else list(nets)
    _check_nets(nets, run["dataset"], workdir)
    card = _card(run, workdir, nets)

    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
    try:
        module = _serving_module(nets, run["dataset"])
        tf.saved_model.save(
            module, tmp, signatures={"serving_default": module.serve, "predict_logits": module.predict_logits}
        )
        for name in run["nets"]:
            shutil.copy2(RunDir(workdir).file(name), os.path.join(tmp, name))
        with open(os.path.join(tmp, CARD), "w") as f:
            json.dump(card, f, indent=2, sort_keys=True)
            f.write("\n")
        with open(os.path.join(tmp, README), "w") as f:
            f.write(_readme(card))
        if verify:
            _verify(tmp, nets, run["dataset"], np, tf)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an export is meant to be shared
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(
        os.path.relpath(os.path.join(root, name), out_dir) for root, _, names in os.walk(out_dir) for name in names
    )
    return {"out_dir": out_dir, "files": files, "signatures": list(SIGNATURES), "replaced": replaced, "model_card": card}


def _verify(path, nets, dataset, np, tf) -> None:
    """The reloaded SavedModel must give the Keras nets' ensemble probabilities on random images."""
    shape = [int(d) for d in dataset["image_shape"]]
    images = np.random.default_rng(0).integers(0, 256, size=(3, *shape), dtype=np.uint8)
    x = input_transform.normalize(images, dataset["mean"], dataset["std"])
    expected = tf.nn.softmax(sum(tf.cast(net(x, training=False), tf.float32) for net in nets)).numpy()
    got = tf.saved_model.load(path).signatures["serving_default"](**{INPUT_KEY: tf.constant(images)})[OUTPUT_KEY].numpy()
    error = float(np.max(np.abs(got - expected)))
    if not error <= 1e-4:
        raise RuntimeError(f"the exported SavedModel disagrees with the Keras nets (max |diff| {error:.3g})")


# -- reading an export ---------------------------------------------------------------------------


def model_card(directory: str) -> dict:
    """The content of an export's model_card.json."""
    directory = os.fspath(directory)
    if not directory or not os.path.isdir(directory):
        raise DmkerasError(f"export directory not found: {directory!r}")
    card = _read_json(os.path.join(directory, CARD), f"{directory} is not a dmkeras export: it")
    if card.get("format") != FORMAT:
        raise DmkerasError(f"{os.path.join(directory, CARD)} is not a dmkeras export model card")
    return card


def load_net(directory: str, net: int = 1):
    """Net `net` (1 or 2) of an export as a backbone: normalised images -> logits."""
    card = model_card(directory)
    name = f"net{net}.keras"
    if name not in card.get("nets", []) or not os.path.isfile(os.path.join(os.fspath(directory), name)):
        raise DmkerasError(f"export {directory} has no {name}")
    return _load_nets(os.fspath(directory), [name])[0]


def load(directory: str):
    """The exported ensemble as a Functional keras.Model: uint8 images [batch, H, W, C] -> class
    probabilities, preprocessing included (Rescaling + Normalization layers), the same numbers as
    the SavedModel's `serving_default` signature."""
    card = model_card(directory)
    names = card.get("nets") or []
    if not names:
        raise DmkerasError(f"{os.path.join(directory, CARD)} names no nets")
    for name in names:
        if not os.path.isfile(os.path.join(directory, name)):
            raise DmkerasError(f"export {directory} lacks {name}")
    nets = _load_nets(directory, names)
    _check_nets(nets, card["dataset"], directory)
    return _keras_ensemble(nets, card["dataset"])
