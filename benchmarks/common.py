"""Shared pieces of the benchmarks: environment, data, splits, statistics.

Training itself is the package's (`keras_speechmix.training.experiment.train_clips`),
so the numbers are what `speechmix train` does.
"""

import json
import math
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/x.py` uses this checkout
    sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_speechmix.audio import datasets  # noqa: E402
# The paired test lives in the package: the main job and `evaluate` use it too.
from keras_speechmix.training.paired import mcnemar, verdict  # noqa: E402,F401

import warnings  # noqa: E402

# Each run builds a fresh model, so Keras' retracing warning is expected.
tf.get_logger().setLevel("ERROR")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")

DEFAULT_DATA = REPO.parent / "shared" / "data"

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
    from keras_speechmix.audio import synth
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


def pooled_ece(runs):
    """Top-label ECE of the clean test clips pooled over `runs` (those that
    kept `test_confidence`), with the number of clips and the ECE that
    sampling alone gives a model calibrated by construction on the same
    confidences (each clip right with probability equal to its confidence;
    mean over 200 draws): on 80 clips that floor is about 8 %, so per-fold
    ECEs cannot show a 5 % target. `None` when no run kept confidences."""
    from keras_speechmix.calibration import _top_label_ece

    kept = [r for r in runs if "test_confidence" in r]
    if not kept:
        return None
    confidence = np.concatenate([r["test_confidence"] for r in kept])
    correct = np.concatenate([r["correct"] for r in kept]).astype(bool)
    rng = np.random.default_rng(0)
    floor = np.mean([_top_label_ece(confidence, rng.random(confidence.size) < confidence)
                     for _ in range(200)])
    return {"ece": _top_label_ece(confidence, correct), "clips": int(confidence.size),
            "runs": len(kept), "calibrated_floor": float(floor)}


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
