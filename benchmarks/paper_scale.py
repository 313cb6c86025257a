"""Paper-scale run: EnvNet-v2 on ESC-10 with the authors' schedule, on JAX.

The regime of BC learning (Tokozume et al., 2018) and SpeechMix (Jindal et
al., 2020), never run by this project on 2 CPU cores (days there): the
raw-waveform EnvNet-v2 (`keras_speechmix.models.envnet_v2`) at 44.1 kHz,
for plain training (`none`), BC learning (`bc`) and SpeechMix
(`speechmix`), each on the same folds and seeds, with BC learning's recipe
for EnvNet-v2 on ESC-10 (mil-tokyo/bc_learning_sound `opts.py`, which the
SpeechMix authors reuse; ../shared/design/reference.md):

- ESC-10 clips at 44.1 kHz, mono, leading and trailing digital silence
  cut (their `esc_gen.py`); decoded by soundfile, resampled by soxr only
  where a file has another rate.
- Training: each clip padded with 33,325 zeros on each side and cropped at
  random to 66,650 samples (1.51 s); plain training 600 epochs, mixing
  1,200 (the authors double them); Nesterov SGD, momentum 0.9, weight decay
  5e-4, learning rate 0.01 divided by 10 after 50 % and 75 % of the epochs
  (ESC-10's setting; 0.1 with warm-up is their ESC-50 setting), batch 64
  (BC learning's; the SpeechMix code runs 32: `--batch-size 32`), every
  clip once an epoch (the last batch may be short). The network keeps its
  dropout (0.5) for every method and has no level normalisation
  (`level_norm=False`): the authors' network. Keras applies the weight
  decay decoupled (scaled by the learning rate, not through the momentum),
  as the package's EnvNet-v2 recipe does; Chainer adds it to the gradient.
- Mixing, as `speechmix train` mixes (`experiment.METHODS`, mirrored
  here): `bc` mixes waveforms (point 0) with the gain-aware ratio, partners
  of another class; `speechmix` draws one of points 0-4 per batch, r ~ U(0,
  1) per clip, partners of another class, BC's gain-aware rule at the
  waveform and the "sound" rule with gains measured on the activations at
  points 1-4. Batches come from `PartnerBatches` (NumPy
  plans, no TensorFlow); plain training from a plain PyDataset of the same
  crops.
- Test: each clip padded likewise and cut into 10 evenly spaced crops,
  softmax averaged, scored once after the last epoch (the authors' main.py
  keeps the best epoch on the test fold; BC learning's prints the last).

It writes the paired table of `benchmarks/accuracy.py`: error per seed
pooled over the folds, mean ± s.e. over seeds, relative reduction and
McNemar's exact test against plain training on the per-clip correctness
(`keras_speechmix.training.paired`), and SpeechMix against BC learning.

No TensorFlow is imported (the accelerator machine need not have it): run
it with `KERAS_BACKEND=jax` (set by default here). ESC-10 is read from
`../shared/data/esc10` (`--data-root`): folds 1-3 as a 3-fold CV where only
those are present, all 5 where they are.

Expected device time (an estimate: this script has not run on an
accelerator yet):

- Measured here: EnvNet-v2's training step at 66,650 samples on 2 CPU
  cores, JAX with XLA (`--estimate --batch-size 4`, niced, beside other
  jobs at a load average of 6): 3.1-4.0 s per batch of 4, 0.8-1.0 s a clip.
- Measured on an H200 (JAX, XLA; results/step_time_h200_*.json): 10.9-11.8
  ms per batch of 32, 0.34-0.37 ms a clip (SpeechMix's step 1.01-1.04x
  plain): ~2,500x the loaded CPU. Taken from it: a batch of 64 at ~23 ms
  (twice 32's; less where 32 leaves the GPU idle), and an H100 at 1.0-1.3x
  the H200's time (the same GH100 compute, 3.35 against 4.8 TB/s of memory
  bandwidth).
- Folds 1-3 (160 training clips, 2.5 batches of 64 an epoch): 600 + 1,200
  + 1,200 epochs per fold, 22,500 batch-64 steps per seed: ~8.5 min on an
  H200, 9-11 min on an H100; compilation (seconds per network in
  step_time.py's H200 run), evaluation and decoding ESC-10 add well under
  a minute. BC learning's loader measures each batch's gains in NumPy: 60
  ms per batch of 64 on one loaded core here, more than the GPU's step, so
  `bc` may wait on its loader if its threads (`--workers`, 4) do not run
  in parallel: up to ~6 min more per seed (3,600 epochs of 2.5 batches at
  60 ms against 23 ms). In all about 10-16 min per seed on an H200, 11-19
  min on an H100.
- All 5 folds (320 training clips, 5 batches an epoch): 75,000 steps per
  seed, ~29 min on an H200.

A session's device budget (15 min) is shorter, so run it in pieces:
`--max-minutes` starts no run past its budget and `--resume` goes on from
the JSON, written after every run; `--estimate` times a few steps of each
network where it runs and prints the projection for the run configured.

    KERAS_BACKEND=jax python benchmarks/paper_scale.py --estimate            # ~2 min on a GPU
    KERAS_BACKEND=jax python benchmarks/paper_scale.py --resume --max-minutes 8
    KERAS_BACKEND=jax python benchmarks/paper_scale.py --smoke   # ~1 min of CPU: 3 compilations
"""

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # Only as a script: a test that imports this module must not leave
    # KERAS_BACKEND=jax in its process's environment, where every later
    # subprocess (the `speechmix` command in other tests) would inherit it.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/paper_scale.py` uses this checkout
    sys.path.insert(0, str(REPO))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402

from keras_speechmix import PartnerBatches, SpeechMix, models  # noqa: E402
from keras_speechmix.audio.segments import resample_array  # noqa: E402
from keras_speechmix.training.paired import mcnemar, verdict  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
RATE = 44100
LENGTH = 66650

# `keras_speechmix.training.experiment` imports TensorFlow, so its constants
# for EnvNet-v2 are mirrored here (tests/test_paper_scale.py checks that
# they agree): each method's `PartnerBatches` arguments, its mixing points
# (plain training builds SpeechMix's points, which stay identities), and
# where the "sound" rule takes its gains at hidden points.
METHODS = {"none": None,
           "bc": dict(ratio="bc", partners="different_class"),
           "speechmix": dict(ratio="bc", partners="different_class")}
POINTS = {"none": (0, 1, 2, 3, 4), "bc": (0,), "speechmix": (0, 1, 2, 3, 4)}
HIDDEN_GAINS = {"speechmix": "activation"}

# BC learning's EnvNet-v2 / ESC-10 schedule (opts.py), and its test crops.
SCHEDULE = dict(epochs=600, mix_epochs=1200, learning_rate=0.01, drops=(0.5, 0.75),
                batch_size=64, momentum=0.9, weight_decay=5e-4, dropout=0.5, crops=10)
# --smoke: a few steps on a few clips; the shortest input EnvNet-v2 takes.
SMOKE = dict(epochs=2, mix_epochs=2, batch_size=4, crops=2, length=17502,
             clips_per_class=2, classes=3)


# ---------------------------------------------------------------------------
# Data


class Clips:
    """Waveforms (a list, lengths differ), integer labels and folds.

    Example:

    >>> clips = Clips([np.ones(5, "float32")] * 2, [0, 1], [1, 2], ["a", "b"])
    >>> len(clips), len(clips.subset(clips.folds == 2))
    (2, 1)
    """

    def __init__(self, waves, labels, folds, class_names):
        self.waves = list(waves)
        self.labels = np.asarray(labels, np.int64)
        self.folds = np.asarray(folds, np.int64)
        self.class_names = list(class_names)
        if not len(self.waves) == len(self.labels) == len(self.folds):
            raise ValueError(f"Clips: {len(self.waves)} waves, {len(self.labels)} labels and "
                             f"{len(self.folds)} folds; one each per clip")

    def __len__(self):
        return len(self.waves)

    def subset(self, mask):
        """The clips where `mask` is true."""
        index = np.flatnonzero(mask)
        return Clips([self.waves[i] for i in index], self.labels[index], self.folds[index],
                     self.class_names)


def trim_zeros(wave):
    """`wave` without its leading and trailing exact zeros (the authors' cut).

    Example:

    >>> trim_zeros(np.array([0, 0.5, 0, 0.2, 0], "float32")).tolist()
    [0.5, 0.0, 0.2]
    """
    loud = np.flatnonzero(wave)
    return wave if loud.size == 0 else wave[loud[0]:loud[-1] + 1]


def load_esc10(root, folds=None, rate=RATE, classes=None, per_class=None):
    """ESC-10 from `root/esc10/meta.csv` (columns path, fold, category), mono at
    `rate`, trimmed of digital silence. `folds` keeps only those folds;
    `classes` the first classes (by name) and `per_class` the first clips of
    each class in each fold (the smoke run's few clips).

    Example:

    >>> clips = load_esc10("../shared/data", folds=[1])  # doctest: +SKIP
    """
    meta = Path(root) / "esc10" / "meta.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"ESC-10 not found: {meta} (pass --data-root, or --smoke "
                                "to run on synthesised clips)")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"path", "fold", "category"} - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"{meta}: no column {sorted(missing)} (expected path, fold, category)")
    names = sorted({r["category"] for r in rows})[:classes]
    kept, seen = [], {}
    for r in rows:
        key = (int(r["fold"]), r["category"])
        if (folds is None or key[0] in set(folds)) and r["category"] in names and (
                per_class is None or seen.get(key, 0) < per_class):
            seen[key] = seen.get(key, 0) + 1
            kept.append(r)
    waves = []
    for r in kept:
        wave, file_rate = soundfile.read(meta.parent / r["path"], dtype="float32",
                                         always_2d=True)
        wave = wave.mean(axis=1, dtype=np.float32)
        if file_rate != rate:
            wave = resample_array(wave, file_rate, rate)
        waves.append(trim_zeros(wave))
    return Clips(waves, [names.index(r["category"]) for r in kept],
                 [int(r["fold"]) for r in kept], names)


def synthetic_clips(classes, per_class, folds, seconds=0.6, rate=RATE, seed=0):
    """Tones in noise, one pitch per class: ESC-10's stand-in for the smoke run.

    Example:

    >>> len(synthetic_clips(3, 2, [1, 2], seconds=0.1))
    12
    """
    rng = np.random.default_rng(seed)
    waves, labels, fold_of = [], [], []
    for fold in folds:
        for c in range(classes):
            for _ in range(per_class):
                n = int(rate * seconds * rng.uniform(0.7, 1.3))
                t = np.arange(n) / rate
                tone = np.sin(2 * np.pi * (300 + 400 * c) * t * rng.uniform(0.97, 1.03))
                waves.append((0.3 * tone + 0.05 * rng.standard_normal(n)).astype(np.float32))
                labels.append(c)
                fold_of.append(fold)
    return Clips(waves, labels, fold_of, [f"tone{c}" for c in range(classes)])


def training_crop(wave, length, rng):
    """BC learning's training crop: `wave` padded with `length // 2` zeros on
    each side, then a window of `length` at a random offset.

    Example:

    >>> crop = training_crop(np.ones(10, "float32"), 8, np.random.default_rng(0))
    >>> crop.shape, 0 < crop.sum() <= 8
    ((8,), True)
    """
    pad = length // 2
    start = int(rng.integers(0, len(wave) + 2 * pad - length + 1)) - pad
    out = np.zeros(length, np.float32)
    lo, hi = max(0, start), min(len(wave), start + length)
    if hi > lo:  # the window [start, start + length) of the unpadded clip
        out[lo - start:hi - start] = wave[lo:hi]
    return out


def evaluation_crops(wave, length, crops):
    """BC learning's test crops: the padded clip cut into `crops` evenly
    spaced windows (their `multi_crop`).

    Example:

    >>> evaluation_crops(np.arange(1, 5, dtype="float32"), 4, 3).tolist()
    [[0.0, 0.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 0.0, 0.0]]
    """
    if crops < 2:
        raise ValueError(f"test crops must be >= 2 (evenly spaced windows); got {crops}")
    padded = np.pad(wave, length // 2)
    stride = (len(padded) - length) // (crops - 1)
    return np.stack([padded[stride * i:stride * i + length] for i in range(crops)])


class CropBatches(keras.utils.PyDataset):
    """Plain training's batches: random crops and one-hot labels, reshuffled
    each epoch, every draw from `(seed, epoch, batch)` as `PartnerBatches`.

    Example:

    >>> batches = CropBatches([np.ones(50, "float32")] * 6, [0, 1, 2] * 2, 4,
    ...                       num_classes=3, length=20, seed=0)
    >>> len(batches), batches[0][0].shape, batches[1][1].shape
    (2, (4, 20), (2, 3))
    """

    def __init__(self, waves, labels, batch_size, *, num_classes, length, seed, **kwargs):
        super().__init__(**kwargs)
        self.waves, self.labels = waves, np.asarray(labels)
        self.batch_size, self.length, self.seed = batch_size, length, seed
        self.eye = np.eye(num_classes, dtype=np.float32)
        self.epoch = 0
        self._order()

    def _order(self):
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.epoch,)))
        self.order = rng.permutation(len(self.labels))

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        self._order()

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(self.epoch, 1, index)))
        x = np.stack([training_crop(self.waves[i], self.length, rng) for i in rows])
        return x, self.eye[self.labels[rows]]


# ---------------------------------------------------------------------------
# Training


def build_model(method, num_classes, length, dropout=SCHEDULE["dropout"]):
    """EnvNet-v2 with `method`'s mixing points, as the authors built it.

    Example:

    >>> build_model("bc", 10, 17502).get_layer("mix_0").name
    'mix_0'
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {tuple(METHODS)}; got {method!r}")
    return models.envnet_v2(num_classes, input_length=length, mix_points=POINTS[method],
                            dropout=dropout, hidden_gain=HIDDEN_GAINS.get(method, "plan"),
                            level_norm=False)


def lr_boundaries(epochs, steps_per_epoch):
    """The steps after which the learning rate drops (50 % and 75 % of the epochs).

    The optimiser counts steps from 0 and keeps a value while the step is
    at most its boundary, so each drop falls on the first step of epoch
    `0.5 * epochs` (0-based), as BC learning's `lr_schedule` drops it.

    Example:

    >>> lr_boundaries(600, 3)
    [899, 1349]
    """
    first = max(0, int(epochs * SCHEDULE["drops"][0]) * steps_per_epoch - 1)
    second = max(first + 1, int(epochs * SCHEDULE["drops"][1]) * steps_per_epoch - 1)
    return [first, second]


def optimizer(learning_rate, epochs, steps_per_epoch):
    """Nesterov SGD, the rate divided by 10 after 50 % and 75 % of the epochs.

    Example:

    >>> optimizer(0.01, 600, 3).nesterov
    True
    """
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        lr_boundaries(epochs, steps_per_epoch),
        [learning_rate, learning_rate * 0.1, learning_rate * 0.01])
    return keras.optimizers.SGD(schedule, momentum=SCHEDULE["momentum"], nesterov=True,
                                weight_decay=SCHEDULE["weight_decay"])


def batches_for(method, train, cfg, seed):
    """`PartnerBatches` for a mixing method, `CropBatches` for plain training."""
    num_classes = len(train.class_names)

    def crop(wave, rng):
        return training_crop(wave, cfg["length"], rng)

    if METHODS[method] is None:
        return CropBatches(train.waves, train.labels, cfg["batch_size"],
                           num_classes=num_classes, length=cfg["length"], seed=seed,
                           workers=cfg["workers"])
    return PartnerBatches(train.waves, train.labels, cfg["batch_size"], num_classes=num_classes,
                          mix_points=len(POINTS[method]), seed=seed, transform=crop,
                          drop_remainder=False, sample_rate=RATE, workers=cfg["workers"],
                          **METHODS[method])


def predict(model, clips, length, crops, chunk=8):
    """Softmax averaged over each clip's test crops: `(clips, classes)`."""
    out = []
    for first in range(0, len(clips), chunk):
        waves = clips.waves[first:first + chunk]
        x = np.concatenate([evaluation_crops(w, length, crops) for w in waves])
        p = np.asarray(model.predict_on_batch(x))
        out.append(p.reshape(len(waves), crops, -1).mean(axis=1))
    return np.concatenate(out)


class Progress(keras.callbacks.Callback):
    """Prints the loss and the elapsed time every `every` epochs."""

    def __init__(self, label, epochs, every):
        super().__init__()
        self.label, self.epochs, self.every = label, epochs, max(1, every)
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            print(f"    {self.label} epoch {epoch + 1}/{self.epochs} loss "
                  f"{(logs or {}).get('loss', float('nan')):.4f} "
                  f"{time.perf_counter() - self.started:.0f} s", flush=True)


def one_run(method, train, test, seed, cfg):
    """Trains `method` on `train`, scores `test`; the run's record for the table."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    mixing = METHODS[method] is not None
    epochs = cfg["mix_epochs"] if mixing else cfg["epochs"]
    model = build_model(method, len(train.class_names), cfg["length"])
    data = batches_for(method, train, cfg, seed)
    net = SpeechMix(model) if mixing else model
    net.compile(optimizer(cfg["learning_rate"], epochs, len(data)), "categorical_crossentropy",
                jit_compile=cfg["jit_compile"])
    started = time.perf_counter()
    history = net.fit(data, epochs=epochs, verbose=0,
                      callbacks=[Progress(method, epochs, cfg["log_every"] or epochs // 10)])
    train_seconds = time.perf_counter() - started
    probabilities = predict(model, test, cfg["length"], cfg["crops"])
    correct = (probabilities.argmax(axis=1) == test.labels).astype(int)
    train_correct = predict(model, train, cfg["length"], cfg["crops"]).argmax(1) == train.labels
    return {"method": method, "seed": seed, "epochs": epochs, "steps": epochs * len(data),
            "num_train": len(train), "num_test": len(test),
            "correct": correct.tolist(), "test_correct": int(correct.sum()),
            "test_error": float(1 - correct.mean()),
            "train_accuracy": float(train_correct.mean()),
            "final_loss": float(history.history["loss"][-1]),
            "train_seconds": round(train_seconds, 1),
            "seconds": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------------------
# The paired table (as benchmarks/accuracy.py, without TensorFlow)


def _pooled(runs, seed, folds):
    cell = [r for r in runs if r["seed"] == seed]
    if len(cell) < len(folds):
        return None  # a seed cut short by a time budget is left out
    return 1.0 - sum(r["test_correct"] for r in cell) / sum(r["num_test"] for r in cell)


def _mean_se(values):
    values = np.asarray(values, float)
    if values.size == 0:
        return None, None
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else None
    return float(values.mean()), se


def _paired(runs, method, other, seeds, folds):
    """Per-seed error differences and McNemar over every (seed, fold, clip)."""
    mine = {(r["seed"], r["fold"]): r for r in runs if r["method"] == method}
    theirs = {(r["seed"], r["fold"]): r for r in runs if r["method"] == other}
    keys = [k for k in mine if k in theirs]
    diffs = {}
    for seed in seeds:
        a = _pooled([mine[k] for k in keys if k[0] == seed], seed, folds)
        b = _pooled([theirs[k] for k in keys if k[0] == seed], seed, folds)
        if a is not None and b is not None:
            diffs[seed] = a - b
    if not keys:
        return {"paired_difference_per_seed": diffs}
    test = mcnemar(np.concatenate([mine[k]["correct"] for k in keys]),
                   np.concatenate([theirs[k]["correct"] for k in keys]))
    return {"paired_difference_per_seed": diffs,
            "mcnemar": dict(test, clips=int(sum(len(mine[k]["correct"]) for k in keys)))}


def summarise(runs, methods, seeds, folds):
    """Per method: error per seed (folds pooled), mean ± s.e., paired tests.

    Example:

    >>> run = dict(seed=0, fold="fold1", num_test=2, train_accuracy=1.0, epochs=1,
    ...            seconds=1.0)
    >>> runs = [dict(run, method="none", correct=[1, 0], test_correct=1),
    ...         dict(run, method="bc", correct=[1, 1], test_correct=2)]
    >>> s = summarise(runs, ["none", "bc"], [0], ["fold1"])
    >>> s["bc"]["error_mean"], s["bc"]["mcnemar"]["a_only"]
    (0.0, 1)
    """
    summary = {}
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        errors = {s: e for s in seeds
                  if (e := _pooled(mine, s, folds)) is not None}
        mean, se = _mean_se(list(errors.values()))
        summary[method] = {
            "error_per_seed": errors, "error_mean": mean, "error_se": se,
            "epochs": sorted({r["epochs"] for r in mine}),
            "train_accuracy_mean": float(np.mean([r["train_accuracy"] for r in mine]))
            if mine else None,
            "seconds_per_run": float(np.mean([r["seconds"] for r in mine])) if mine else None}
    base = summary.get("none", {}).get("error_mean")
    for method, info in summary.items():
        if method != "none" and base is not None and info["error_mean"] is not None:
            info["relative_error_reduction"] = (base - info["error_mean"]) / base if base else None
            info.update(_paired(runs, method, "none", seeds, folds))
    if "speechmix" in summary and "bc" in summary:
        summary["speechmix"]["against_bc"] = _paired(runs, "speechmix", "bc", seeds, folds)
    return summary


def _pct(mean, se):
    if mean is None:
        return "n/a"
    return f"{100 * mean:5.1f}" + ("" if se is None else f" ± {100 * se:3.1f}")


def table(summary, folds):
    """The table `benchmarks/accuracy.py` prints, for these methods."""
    lines = [f"{'method':10s} {'epochs':>6s} {'error % (mean ± se)':>20s} {'per seed':>20s} "
             f"{'rel. red.':>9s} {'paired diff per seed':>22s} {'train acc':>9s} "
             f"{'s/run':>7s}  paired test vs none"]
    none = summary.get("none", {})
    for method, m in summary.items():
        red = m.get("relative_error_reduction")
        seeds = " ".join(f"{100 * e:.1f}" for _, e in sorted(m["error_per_seed"].items()))
        diffs = " ".join(f"{100 * d:+.1f}" for _, d in
                         sorted(m.get("paired_difference_per_seed", {}).items()))
        test = m.get("mcnemar")
        words = "" if test is None or none.get("error_mean") is None else (
            f"{test['a_only']} clips only it gets right, {test['b_only']} only none; "
            + verdict(m["error_mean"], none["error_mean"], test["p"]))
        tacc, secs = m["train_accuracy_mean"], m["seconds_per_run"]
        lines.append(
            f"{method:10s} {'/'.join(map(str, m['epochs'])):>6s} "
            f"{_pct(m['error_mean'], m['error_se']):>20s} {seeds:>20s} "
            f"{'' if red is None else f'{100 * red:+.0f} %':>9s} {diffs:>22s} "
            f"{'' if tacc is None else f'{100 * tacc:.0f} %':>9s} "
            f"{'' if secs is None else f'{secs:.0f}':>7s}  {words}")
    against = summary.get("speechmix", {}).get("against_bc", {}).get("mcnemar")
    if against and summary["bc"]["error_mean"] is not None:
        lines.append(
            f"speechmix vs bc: {against['a_only']} clips only SpeechMix gets right, "
            f"{against['b_only']} only BC learning; " + verdict(
                summary["speechmix"]["error_mean"], summary["bc"]["error_mean"], against["p"]))
    lines.append(f"({len(folds)} folds: {', '.join(folds)}; errors pooled over folds per "
                 "seed; McNemar over every seed, fold and clip)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Running


def device_info():
    """The backend and the device it computes on, in words."""
    info = {"backend": keras.backend.backend(), "keras": keras.__version__,
            "python": platform.python_version(), "cpu_count": os.cpu_count()}
    if info["backend"] == "jax":
        import jax

        device = jax.devices()[0]
        info.update(jax=jax.__version__,
                    device=f"{device.platform}: {getattr(device, 'device_kind', device)}")
    return info


def estimate(clips, cfg, steps=3):
    """Times `steps` training steps of each network here; projects the run."""
    fold = sorted(set(clips.folds.tolist()))[0]
    train = clips.subset(clips.folds != fold)
    per_step = {}
    for method in ("none", "speechmix"):
        keras.backend.clear_session()
        data = batches_for(method, train, dict(cfg, workers=1), 0)
        model = build_model(method, len(train.class_names), cfg["length"])
        net = SpeechMix(model) if METHODS[method] else model
        net.compile(optimizer(0.01, 10, len(data)), "categorical_crossentropy",
                    jit_compile=cfg["jit_compile"])
        batch = data[0]
        net.train_on_batch(*batch)  # compilation
        started = time.perf_counter()
        for _ in range(steps):
            net.train_on_batch(*batch)
        per_step[method] = (time.perf_counter() - started) / steps
    spe = math.ceil(len(train) / cfg["batch_size"])
    folds = len(set(clips.folds.tolist()))
    total = folds * spe * (cfg["epochs"] * per_step["none"]
                           + 2 * cfg["mix_epochs"] * per_step["speechmix"])
    print(f"step at batch {cfg['batch_size']}, {cfg['length']} samples: none "
          f"{1000 * per_step['none']:.1f} ms, speechmix {1000 * per_step['speechmix']:.1f} ms "
          f"({per_step['none'] / cfg['batch_size'] * 1000:.1f} ms per clip)")
    print(f"projected: {folds} folds x {spe} steps an epoch x ({cfg['epochs']} + 2 x "
          f"{cfg['mix_epochs']} epochs) = {total / 60:.1f} min of steps per seed "
          "(compilation and evaluation not counted)")
    return {"step_seconds": per_step, "steps_per_epoch": spe,
            "projected_minutes_per_seed": total / 60}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a few steps on a few clips (ESC-10 if present, else synthesised)")
    parser.add_argument("--estimate", action="store_true",
                        help="time a few steps here and project the run's device time")
    parser.add_argument("--data-root", default=str(DEFAULT_DATA))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--folds", type=int, nargs="+", default=None,
                        help="test folds (default: every fold present)")
    parser.add_argument("--batch-size", type=int, default=SCHEDULE["batch_size"])
    parser.add_argument("--epochs", type=int, default=SCHEDULE["epochs"])
    parser.add_argument("--mix-epochs", type=int, default=SCHEDULE["mix_epochs"])
    parser.add_argument("--workers", type=int, default=4, help="PyDataset loader threads")
    parser.add_argument("--log-every", type=int, default=0, help="epochs between progress lines")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new run after this many minutes")
    parser.add_argument("--resume", action="store_true", help="keep the runs in --out")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.batch_size < 2:
        parser.error("--batch-size must be >= 2 (mixing pairs clips within a batch)")
    if min(args.epochs, args.mix_epochs) < 1:
        parser.error("--epochs and --mix-epochs must be >= 1")
    cfg = dict(SCHEDULE, length=LENGTH, batch_size=args.batch_size, epochs=args.epochs,
               mix_epochs=args.mix_epochs, workers=args.workers, log_every=args.log_every,
               jit_compile="auto")
    root = Path(args.data_root)
    have_esc = (root / "esc10" / "meta.csv").is_file()
    if args.smoke:
        cfg.update({k: SMOKE[k] for k in ("epochs", "mix_epochs", "batch_size", "crops",
                                          "length")}, workers=1, log_every=1)
        clips = synthetic_clips(SMOKE["classes"], SMOKE["clips_per_class"], [1, 2, 3])
        data_name = "synthesised tones (smoke)"
        if have_esc:  # a few real clips: the decoding path too
            clips = load_esc10(root, folds=[1, 2, 3], classes=SMOKE["classes"],
                               per_class=SMOKE["clips_per_class"] // 2)
            data_name = f"ESC-10 ({len(clips)} clips of folds 1-3, smoke)"
    else:
        clips = load_esc10(root)
        data_name = "ESC-10"
    folds = args.folds or sorted(set(clips.folds.tolist()))
    if args.smoke and args.folds is None:
        folds = folds[:1]
    unknown = sorted(set(folds) - set(clips.folds.tolist()))
    if unknown:
        raise SystemExit(f"--folds {unknown}: not among the data's folds "
                         f"{sorted(set(clips.folds.tolist()))}")
    print(f"[config] {data_name}: {len(clips)} clips, folds "
          f"{sorted(set(clips.folds.tolist()))}; test folds {folds}; methods {args.methods}; "
          f"seeds {args.seeds}; {device_info()}", flush=True)
    if args.estimate:
        print(json.dumps(estimate(clips, cfg), indent=1))
        return None
    out = Path(args.out or REPO / "results" / ("paper_scale_smoke.json" if args.smoke
                                               else "paper_scale_esc10.json"))
    config = {"data": data_name, "folds": folds, "methods": args.methods, "seeds": args.seeds,
              "schedule": cfg, "methods_args": {m: METHODS[m] for m in args.methods},
              "points": {m: list(POINTS[m]) for m in args.methods},
              "command": " ".join(sys.argv)}
    runs = []
    if args.resume and out.is_file():
        previous = json.loads(out.read_text())
        if previous["config"]["schedule"] != json.loads(json.dumps(cfg)):
            raise SystemExit(f"--resume: {out} was written with another schedule")
        runs = previous["runs"]
        print(f"[resume] {len(runs)} runs kept from {out}", flush=True)
    done = {(r["fold"], r["seed"], r["method"]) for r in runs}
    payload = {"config": config, "device": device_info(), "runs": runs}
    started, stopped = time.perf_counter(), False
    for seed in args.seeds:  # seeds outermost: a budget leaves whole seeds behind
        for fold in folds:
            train, test = clips.subset(clips.folds != fold), clips.subset(clips.folds == fold)
            for method in args.methods:
                if (f"fold{fold}", seed, method) in done:
                    continue
                elapsed = (time.perf_counter() - started) / 60
                if args.max_minutes is not None and elapsed > args.max_minutes:
                    stopped = True
                    break
                result = one_run(method, train, test, seed, cfg)
                result["fold"] = f"fold{fold}"
                runs.append(result)
                print(f"[run {len(runs)} {elapsed:5.1f} min] fold {fold} seed {seed} "
                      f"{method:9s} error {100 * result['test_error']:5.1f} % "
                      f"({result['steps']} steps, {result['train_seconds']:.0f} s)", flush=True)
                _write(out, payload)
            if stopped:
                break
        if stopped:
            break
    names = [f"fold{f}" for f in folds]
    summary = summarise(runs, args.methods, args.seeds, names)
    payload.update(summary=summary, table=table(summary, names), stopped_by_budget=stopped,
                   total_seconds=round(time.perf_counter() - started, 1))
    _write(out, payload)
    print(payload["table"])
    print(f"\n{len(runs)} runs; JSON: {out}"
          + (" (stopped by --max-minutes: rerun with --resume)" if stopped else ""))
    return payload


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(payload, indent=1))
    os.replace(partial, path)  # whole files only, even if killed


if __name__ == "__main__":
    main()
