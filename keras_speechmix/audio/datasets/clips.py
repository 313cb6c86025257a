"""`ClipSet`: decoded clips held in memory, and what a load left out.

A `ClipSet` keeps every clip decoded (mono float32 at one sample rate) with
its label and optional fold, group (e.g. speaker) and per-clip metadata.
`LoadReport` counts what a loader found, used and skipped, with reasons.
"""

import csv
import dataclasses
import logging

import numpy as np
import tensorflow as tf

from keras_speechmix.audio import decode as audio
from keras_speechmix.epochs import epoch_order, epoch_seeds

__all__ = ["ClipSet", "LoadReport", "trim_wave", "skip_reason", "write_skipped"]

# One logger for the whole datasets package, which the command quietens.
logger = logging.getLogger(__package__)


@dataclasses.dataclass
class LoadReport:
    """What a loader found, used and left out.

    Args:
        found: Number of candidate audio files (or CSV rows) seen.
        used: Number of clips loaded.
        skipped: `(path, reason)` for each candidate that was not loaded.
        ignored: Paths not treated as audio (other extensions, files outside
            class folders), kept so that nothing disappears unseen.

    Example:

    >>> report = LoadReport(found=3, used=2, skipped=[("a.wav", "file is empty")])
    >>> report.summary()
    '2 of 3 files loaded, 1 skipped'
    """

    found: int = 0
    used: int = 0
    skipped: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)

    def summary(self):
        """One-line account of the load."""
        text = f"{self.used} of {self.found} files loaded, {len(self.skipped)} skipped"
        if self.ignored:
            text += f", {len(self.ignored)} non-audio files ignored"
        return text


def trim_wave(wave, threshold=0.0):
    """`wave` without its leading and trailing samples of magnitude <= `threshold`.

    A wave that is silent throughout comes back unchanged (the same object).

    Example:

    >>> import numpy as np
    >>> trim_wave(np.array([0, 0.5, 0], "float32")).tolist()
    [0.5]
    """
    loud = np.flatnonzero(np.abs(wave) > threshold)
    return wave if loud.size == 0 else wave[loud[0] : loud[-1] + 1]


def skip_reason(path, reason):
    """`reason` without a leading `"path: "` (decoder errors name their file).

    Example:

    >>> skip_reason("a.wav", "a.wav: file is empty (0 bytes)")
    'file is empty (0 bytes)'
    """
    return str(reason).removeprefix(f"{path}: ")


def write_skipped(path, rows):
    """Writes `(path, reason)` rows to a CSV file with a `path,reason` header.

    The reason column does not repeat the path.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "skipped.csv")
    >>> write_skipped(target, [("a.wav", "a.wav: file is empty (0 bytes)")])
    >>> open(target).read().splitlines()[1]
    'a.wav,file is empty (0 bytes)'
    """
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows((p, skip_reason(p, r)) for p, r in rows)


class ClipSet:
    """Decoded mono clips with labels, held in memory.

    Args:
        waveforms: Sequence of 1-D float arrays (mono, at `sample_rate`).
        labels: Integer class index per clip.
        class_names: Name of each class; `labels` index into it.
        sample_rate: Sample rate of every waveform in Hz.
        paths: Source of each clip (defaults to `"clip{i}"`).
        folds: Optional integer fold per clip (predefined cross-validation).
        groups: Optional group per clip (e.g. speaker), for group-held-out
            splits.
        meta: Optional dict of extra per-clip arrays (e.g. FSDD's recording
            `"index"`), kept aligned by `subset`.
        report: The `LoadReport` of the loader that made the set.

    Example:

    >>> import numpy as np
    >>> clips = ClipSet([np.zeros(800, "float32"), np.ones(400, "float32")],
    ...                 labels=[0, 1], class_names=["a", "b"], sample_rate=8000)
    >>> len(clips), clips.subset([1]).class_names
    (2, ['a', 'b'])
    >>> ds = clips.to_dataset(600)
    >>> [tuple(x.shape) for x, y in ds]
    [(600,), (600,)]
    """

    def __init__(
        self,
        waveforms,
        labels,
        class_names,
        sample_rate,
        paths=None,
        folds=None,
        groups=None,
        meta=None,
        report=None,
    ):
        self.waveforms = [np.asarray(w, dtype=np.float32) for w in waveforms]
        n = len(self.waveforms)
        for i, w in enumerate(self.waveforms):
            if w.ndim != 1:
                raise ValueError(
                    f"ClipSet: waveforms must be 1-D (mono); waveform {i} has shape {w.shape}"
                )
        self.labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        self.class_names = [str(c) for c in class_names]
        self.sample_rate = int(sample_rate)
        self.paths = [f"clip{i}" for i in range(n)] if paths is None else [str(p) for p in paths]
        self.folds = None if folds is None else np.asarray(folds, dtype=np.int64).reshape(-1)
        self.groups = None if groups is None else [str(g) for g in groups]
        self.meta = {k: np.asarray(v) for k, v in (meta or {}).items()}
        self.report = report if report is not None else LoadReport(found=n, used=n)
        for name, value in (
            ("labels", self.labels),
            ("paths", self.paths),
            ("folds", self.folds),
            ("groups", self.groups),
            *((f"meta[{k!r}]", v) for k, v in self.meta.items()),
        ):
            if value is not None and len(value) != n:
                raise ValueError(f"ClipSet: {name} has {len(value)} entries for {n} waveforms")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"ClipSet: labels must lie in [0, {len(self.class_names)}) for "
                f"{len(self.class_names)} class names; got range "
                f"[{self.labels.min()}, {self.labels.max()}]"
            )
        if self.sample_rate <= 0:
            raise ValueError(f"ClipSet: sample_rate must be > 0; got {sample_rate!r}")

    def __len__(self):
        return len(self.waveforms)

    def __repr__(self):
        return (
            f"<ClipSet {len(self)} clips, {len(self.class_names)} classes, "
            f"{self.sample_rate} Hz>"
        )

    @property
    def num_classes(self):
        """Number of class names."""
        return len(self.class_names)

    def subset(self, indices):
        """A new ClipSet with the clips at `indices` (ints or a boolean mask).

        Class names, sample rate and report are kept, so labels stay
        comparable across subsets.
        """
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(
                    f"subset: boolean mask has shape {idx.shape}; expected ({len(self)},)"
                )
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset: index out of range for {len(self)} clips")
        return ClipSet(
            [self.waveforms[i] for i in idx],
            self.labels[idx],
            self.class_names,
            self.sample_rate,
            paths=[self.paths[i] for i in idx],
            folds=None if self.folds is None else self.folds[idx],
            groups=None if self.groups is None else [self.groups[i] for i in idx],
            meta={k: v[idx] for k, v in self.meta.items()},
            report=self.report,
        )

    def trim_silence(self, threshold=0.0):
        """A new ClipSet with leading and trailing silence cut from each clip.

        BC learning and SpeechMix prepare ESC-10/50 this way: those clips
        are padded with digital silence to 5 s, so a random training crop
        of a short sound is often pure silence labelled as the sound.
        Samples whose magnitude is at most `threshold` count as silence;
        the default `0.0` cuts exact zeros only, as the authors' code does.
        A clip that is silent throughout is kept unchanged (never dropped),
        and a warning gives their count.

        Args:
            threshold: Non-negative amplitude at or below which a sample
                counts as silence (waveforms are float, full scale 1.0).

        Returns:
            A `ClipSet` with the same labels, folds, groups and metadata.

        Example:

        >>> import numpy as np
        >>> clips = ClipSet([np.array([0, 0, 0.5, -0.2, 0], "float32")], [0], ["a"], 8000)
        >>> clips.trim_silence().waveforms[0].tolist()
        [0.5, -0.20000000298023224]
        """
        if not np.isscalar(threshold) or not threshold >= 0:
            raise ValueError(
                f"trim_silence: threshold must be a number >= 0; got {threshold!r}"
            )
        trimmed, silent = [], []
        for path, wave in zip(self.paths, self.waveforms):
            trimmed.append(trim_wave(wave, threshold))
            if trimmed[-1] is wave:
                silent.append(path)
        if silent:
            logger.warning(
                "trim_silence: %d of %d clips are silent throughout (threshold %g) "
                "and were kept untrimmed, e.g. %s",
                len(silent), len(self), threshold, silent[0],
            )
        return ClipSet(
            trimmed,
            self.labels,
            self.class_names,
            self.sample_rate,
            paths=self.paths,
            folds=self.folds,
            groups=self.groups,
            meta=self.meta,
            report=self.report,
        )

    def durations(self):
        """Clip durations in seconds, as a numpy array."""
        return np.array([len(w) for w in self.waveforms], np.float64) / self.sample_rate

    def class_counts(self):
        """Number of clips per class, indexed like `class_names`."""
        return np.bincount(self.labels, minlength=len(self.class_names))

    def to_dataset(self, length, training=False, seed=None, epoch=None, sound_crops=None):
        """An unbatched `tf.data.Dataset` of `(waveform, label)` pairs.

        Each waveform is fixed to `length` samples with
        `keras_speechmix.audio.fix_length`: a random crop (or random placement
        in silence, for short clips) when `training`, centred otherwise.
        Clips are in set order; shuffle and batch downstream. With a `seed`,
        the random crops are reproducible and still differ from epoch to
        epoch.

        Args:
            length: Samples per example.
            training: Random instead of centred cropping.
            seed: Optional int seed for the random crops.
            epoch: Optional `tf.Variable` of the current epoch
                (`keras_speechmix.epochs.EpochClock`): with `training`, the
                clips then come in an order, and with crops, fixed by
                `(seed, epoch)`, so a resumed run repeats them.
            sound_crops: With `training`, `None` for plain random crops, or
                a level in dB: crops more than this far below their clip's
                level are redrawn (`keras_speechmix.audio.sound_crop`).

        Returns:
            `tf.data.Dataset` with element spec
            `(TensorSpec((length,), float32), TensorSpec((), int32))`.
        """
        if not isinstance(length, (int, np.integer)) or length <= 0:
            raise ValueError(f"to_dataset: length must be a positive int; got {length!r}")
        length = int(length)
        sizes = np.array([len(w) for w in self.waveforms], np.int64)
        flat = np.concatenate(self.waveforms) if self.waveforms else np.zeros(0, np.float32)
        waves = tf.RaggedTensor.from_row_lengths(flat, sizes)
        ds = tf.data.Dataset.from_tensor_slices((waves, self.labels))
        if training and epoch is not None:
            labels = tf.constant(self.labels)
            ds = epoch_order(len(self), seed or 0, epoch).map(
                lambda i: (waves[i], labels[i]))
            seeds = epoch_seeds((seed or 0) + 1, epoch)
        elif training:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
                2, drop_remainder=True
            )
        if training:
            ds = tf.data.Dataset.zip((ds, seeds))
            return ds.map(
                lambda pair, s: (audio.training_crop(pair[0], length, s, sound_crops), pair[1]),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
        return ds.map(
            lambda w, y: (audio.fix_length(w, length, "center"), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def summary(self):
        """A short multi-line description: size, classes, durations, splits."""
        lines = [
            f"ClipSet: {len(self)} clips, {self.num_classes} classes, {self.sample_rate} Hz"
        ]
        if len(self):
            d = self.durations()
            lines.append(
                f"  duration: min {d.min():.2f} s, mean {d.mean():.2f} s, "
                f"max {d.max():.2f} s, total {d.sum() / 60:.1f} min"
            )
        counts = self.class_counts()
        lines.append(
            "  classes: "
            + ", ".join(f"{name} ({count})" for name, count in zip(self.class_names, counts))
        )
        if self.folds is not None:
            folds, per = np.unique(self.folds, return_counts=True)
            lines.append("  folds: " + ", ".join(f"{f} ({c})" for f, c in zip(folds, per)))
        if self.groups is not None:
            names = sorted(set(self.groups))
            shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            lines.append(f"  groups: {len(names)} ({shown})")
        lines.append("  load: " + self.report.summary())
        return "\n".join(lines)
