"""Shared pieces of the benchmarks: data, methods, one training run, stats.

Everything here uses the package's public pieces (`models.logmel_cnn`,
`models.envnet_v2`, `partner_batches`, `SpeechMix`) and reuses
`keras_speechmix.experiment`'s recipe helpers (training batches per method,
cosine learning-rate schedule, multi-crop prediction, centred crops) so the
numbers match what
`speechmix train` would do; it only adds the knobs the package's
`experiment.train_clips` does not expose (per-batch ratio, arbitrary point
sets, partner rule, EnvNet-v2).
"""

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/x.py` uses this checkout
    sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_speechmix import datasets  # noqa: E402
from keras_speechmix import experiment, models  # noqa: E402
from keras_speechmix.layer import HiddenMixup  # noqa: E402

import warnings  # noqa: E402

# Each run builds a fresh model, so Keras' retracing warning is expected.
tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")

DEFAULT_DATA = REPO.parent / "shared" / "data"
from step_time import ENVNET_POINTS, LOGMEL_POINTS  # noqa: E402

# ---------------------------------------------------------------------------
# The methods compared. Every one trains the same network (same layers,
# optimiser, epochs, seeds); they differ only in the plan the pipeline draws.
#
# Sources (see /work/shared/design/reference.md, read from the authors' code):
# - SpeechMix (midas-research/speechmix): one point per batch drawn uniformly
#   among the input and the conv blocks' outputs, never after the last conv
#   stage or the dense layers; r ~ U(0, 1) *per sample* (= Beta(1, 1), i.e.
#   alpha = 1); partners are clips of a different class (BC learning's data
#   loader); the label is mixed by r.
# - BC learning (mil-tokyo/bc_learning_sound): waveform mixing, r ~ U(0, 1),
#   gain-aware ratio p and power normalisation, other-class partners.
# - Manifold Mixup (vikasverma1077/manifold_mixup): point uniform per batch,
#   one lambda per batch ~ Beta(2, 2) for hidden mixing, random-permutation
#   partners. Here over *all* points of the network (input, every block and,
#   for the log-mel CNN, the pooled embedding).
# - Input mixup (Zhang et al., 2018): our choice: the input features only
#   (log-mel for the CNN, waveform for EnvNet-v2), alpha = 1.0 (Zhang et al.'s
#   CIFAR setting, and the same U(0, 1) draw SpeechMix uses), one lambda per
#   batch and random-permutation partners, as in their reference code.
# ---------------------------------------------------------------------------
METHODS = {
    "none": dict(logmel=None, envnet=None),
    "input": dict(logmel=("input",), envnet=(0,), alpha=1.0, ratio="beta",
                  partners="random", per_sample=False),
    "bc": dict(logmel=("waveform",), envnet=(0,), alpha=1.0, ratio="bc",
               partners="different_class", per_sample=True),
    "manifold": dict(logmel=LOGMEL_POINTS, envnet=ENVNET_POINTS, alpha=2.0,
                     ratio="beta", partners="random", per_sample=False),
    "speechmix": dict(logmel=("input", "block1", "block2", "block3"),
                      envnet=ENVNET_POINTS, alpha=1.0, ratio="beta",
                      partners="different_class", per_sample=True),
}
METHOD_ORDER = ("none", "input", "bc", "manifold", "speechmix")
# Single-point ablation: SpeechMix's settings with one point only. "pooled"
# is outside SpeechMix's own set (the authors never mix after the last conv
# stage) but inside Manifold Mixup's; it is included to show why.
ABLATION_LOGMEL = ("input", "block1", "block2", "block3", "pooled")
ABLATION_ENVNET = (0, 1, 2, 3, 4)


def method_spec(name):
    """Returns the spec of a method or of an ablation `speechmix@<point>`."""
    if name in METHODS:
        return dict(METHODS[name])
    if name.startswith("speechmix@"):
        point = name.split("@", 1)[1]
        spec = dict(METHODS["speechmix"])
        spec["logmel"] = (point,) if point in LOGMEL_POINTS + ("waveform",) else None
        spec["envnet"] = (int(point),) if point.isdigit() else None
        return spec
    raise ValueError(f"unknown method {name!r}")


def method_description(name):
    spec = method_spec(name)
    if spec.get("logmel") is None and spec.get("envnet") is None:
        return {"mixing": "none"}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()}


# ---------------------------------------------------------------------------
# Environment


def device_info(want="auto"):
    """Names the device the run uses; `want` is auto, cpu or gpu."""
    gpus = tf.config.list_physical_devices("GPU")
    info = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [],
    }
    for gpu in gpus:
        try:
            name = tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        except Exception:  # noqa: BLE001 - details are best effort
            name = gpu.name
        info["gpus"].append(name)
    if want == "gpu" and not gpus:
        raise SystemExit("--device gpu: TensorFlow sees no GPU here")
    use_gpu = bool(gpus) and want != "cpu"
    info["device"] = info["gpus"][0] if use_gpu else f"CPU ({info['processor']}, {info['cpu_count']} cores)"
    info["uses_gpu"] = use_gpu
    return info


def hide_gpus():
    tf.config.set_visible_devices([], "GPU")


def write_json(path, payload):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


# ---------------------------------------------------------------------------
# Data


def has_data(root, name):
    root = Path(root)
    if name == "esc10":
        return (root / "esc10" / "meta.csv").is_file()
    if name == "fsdd":
        return (root / "fsdd" / "recordings").is_dir()
    return False


def load_esc10(root, sample_rate, trim=False):
    """ESC-10 from `root/esc10/meta.csv`; `trim` cuts leading/trailing zeros.

    ESC clips are padded with digital silence to 5 s; BC learning's and
    SpeechMix's data preparation (mil-tokyo/bc_learning_sound,
    dataset_gen/esc_gen.py) strips it before any cropping.
    """
    clips = datasets.from_csv(Path(root) / "esc10" / "meta.csv", sample_rate=sample_rate)
    return clips.trim_silence() if trim else clips


def load_fsdd(root, sample_rate=8000):
    return datasets.load(f"fsdd:{Path(root) / 'fsdd'}", sample_rate=sample_rate)


def load_synth(**kwargs):
    from keras_speechmix import synth
    return synth.load_default_digits(**kwargs)


def fold_splits(clips, folds=None):
    """Leave-one-fold-out splits: [(name, train, test)]."""
    names = sorted(set(clips.folds.tolist())) if folds is None else list(folds)
    return [(f"fold{f}", *datasets.split_by_fold(clips, f)) for f in names]


def group_splits(clips, held_out):
    """One split per entry of `held_out` (a group or a list of groups)."""
    out = []
    for groups in held_out:
        groups = [groups] if isinstance(groups, str) else list(groups)
        train, test = datasets.split_by_group(clips, groups)
        out.append(("+".join(groups), train, test))
    return out


def per_class_per_group(clips, count):
    """The first `count` takes (by recording index) of each class per group.

    Deterministic (independent of the seed), so every method and seed trains
    on the same clips.
    """
    index = clips.meta.get("index")
    order = np.arange(len(clips)) if index is None else np.lexsort((np.arange(len(clips)), index))
    keep, seen = [], {}
    for i in order:
        key = (clips.groups[i], int(clips.labels[i]))
        if seen.get(key, 0) < count:
            seen[key] = seen.get(key, 0) + 1
            keep.append(i)
    return clips.subset(np.sort(np.asarray(keep)))


def validation_split(train, seed=0, fraction=0.2):
    """Carves a validation set out of the *training* part only.

    By held-out groups when the set has groups (a speaker-independent
    validation, like the test), else stratified by class.
    """
    if train.groups is not None and len(set(train.groups)) >= 3:
        names = sorted(set(train.groups))
        rng = np.random.default_rng(seed)
        count = max(1, int(round(len(names) * fraction)))
        held = list(rng.choice(names, size=count, replace=False))
        return datasets.split_by_group(train, held)
    return datasets.stratified_split(train, fraction, seed=seed)


# ---------------------------------------------------------------------------
# One training run


def build_network(net, spec, num_classes, sample_rate, length, filters=None):
    points = spec.get(net)
    if net == "logmel":
        # A plain run still needs one HiddenMixup to build the same network;
        # without a plan it is the identity.
        return models.logmel_cnn(num_classes, sample_rate=sample_rate,
                                 input_length=length,
                                 mix_points=points or ("input",),
                                 **({} if filters is None else {"filters": filters}))
    if net == "envnet":
        return models.envnet_v2(num_classes, input_length=length,
                                mix_points=points or (0,))
    raise ValueError(f"unknown network {net!r}")


def envnet_schedule(epochs, steps, learning_rate=0.01):
    # BC learning / SpeechMix recipe: LR / 10 at 50 % and 75 % of training.
    total = max(1, epochs * steps)
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(total * 0.5), int(total * 0.75)],
        [learning_rate, learning_rate * 0.1, learning_rate * 0.01])


def train_run(train, test, method, *, net="logmel", epochs=30, seed=0,
              length=None, batch_size=32, learning_rate=None, crops=10,
              jit_compile=False, verbose=0, train_eval=256, filters=None,
              hidden_rule=None, mix_points=None, alpha=None):
    """Trains `net` with `method` on `train`, tests on `test`; returns a dict.

    Investigation knobs (`benchmarks/investigate.py`): `filters` widens the
    log-mel CNN; `hidden_rule` sets the rule of every mixing point but the
    waveform one ("sound" without gains = variance-preserving lerp);
    `mix_points` replaces the method's points, `alpha` its Beta(alpha, alpha).
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    spec = method_spec(method)
    if mix_points is not None:
        spec[net] = tuple(mix_points)
    if alpha is not None:
        spec["alpha"] = alpha
    mixing = spec.get(net) is not None
    num_classes = len(train.class_names)
    batch_size = min(batch_size, len(train))
    length = length or experiment.default_length(train)
    model = build_network(net, spec, num_classes, train.sample_rate, length, filters)
    if hidden_rule is not None:
        for layer in model.layers:
            if isinstance(layer, HiddenMixup) and layer.name != "mix_waveform":
                layer.rule = hidden_rule
    steps = max(1, len(train) // batch_size)
    if net == "logmel":
        learning_rate = 2e-3 if learning_rate is None else learning_rate
        optimizer = keras.optimizers.Adam(
            experiment._schedule(epochs, steps, learning_rate))
    else:
        learning_rate = 0.01 if learning_rate is None else learning_rate
        optimizer = keras.optimizers.SGD(
            envnet_schedule(epochs, steps, learning_rate), momentum=0.9,
            nesterov=True, weight_decay=5e-4)
    trainer, data = experiment.training_batches(
        model, train, length, batch_size, seed,
        {k: spec[k] for k in ("alpha", "ratio", "partners", "per_sample")}
        if mixing else None)
    trainer.compile(optimizer=optimizer, loss="categorical_crossentropy",
                    metrics=["accuracy"], jit_compile=jit_compile)
    started = time.perf_counter()
    history = trainer.fit(data.prefetch(tf.data.AUTOTUNE), epochs=epochs,
                          verbose=verbose)
    seconds = time.perf_counter() - started
    probs = experiment.predict_clips(model, test.waveforms, length, crops=crops)
    predicted = probs.argmax(axis=1)
    correct = int(np.sum(predicted == test.labels))
    # Inference-mode accuracy on (a slice of) the training clips, centred
    # crops: the check reference.md recommends for batch-norm trouble.
    n = min(train_eval, len(train))
    pick = np.random.default_rng(0).permutation(len(train))[:n]
    train_x = np.stack([experiment._center(train.waveforms[i], length) for i in pick])
    train_pred = model.predict(train_x, batch_size=64, verbose=0).argmax(axis=1)
    result = {
        "method": method,
        "net": net,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "input_length": length,
        "sample_rate": train.sample_rate,
        "num_train": len(train),
        "num_test": len(test),
        "test_correct": correct,
        "test_accuracy": correct / len(test),
        "test_error": 1.0 - correct / len(test),
        "train_accuracy_inference": float(np.mean(train_pred == train.labels[pick])),
        "final_train_loss": float(history.history["loss"][-1]),
        "train_seconds": round(seconds, 2),
        "mix_points": [] if not mixing else [str(p) for p in spec[net]],
    }
    for knob, value in (("filters", filters), ("hidden_rule", hidden_rule),
                        ("alpha", alpha)):
        if value is not None:
            result[knob] = list(value) if isinstance(value, tuple) else value
    if mixing:
        result["point_counts"] = trainer.mix_statistics()["points"]
    del trainer, model
    return result


# ---------------------------------------------------------------------------
# Statistics


def pooled_errors(runs, seeds, num_folds):
    """Error per seed, pooled over the folds of `runs` (one method).

    A seed with fewer than `num_folds` runs (stopped by a time budget) is
    left out, so a partial seed never passes for a whole one.
    """
    errors = {}
    for seed in seeds:
        cell = [r for r in runs if r["seed"] == seed]
        if cell and len(cell) >= num_folds:
            errors[seed] = 1.0 - (sum(r["test_correct"] for r in cell)
                                  / sum(r["num_test"] for r in cell))
    return errors


def mean_se(values):
    values = np.asarray([v for v in values if v is not None], float)
    if values.size == 0:
        return None, None
    if values.size == 1:
        return float(values[0]), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def fmt_pct(mean, se):
    if mean is None:
        return "n/a"
    if se is None:
        return f"{100 * mean:5.1f}"
    return f"{100 * mean:5.1f} ± {100 * se:3.1f}"
