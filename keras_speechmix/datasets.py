"""Small audio datasets held in memory, their loaders and their splits.

A `ClipSet` keeps every clip decoded (mono float32 at one sample rate) with
its label and optional fold, group (e.g. speaker) and per-clip metadata. It
suits the datasets SpeechMix is evaluated on (ESC-10, the Free Spoken Digit
Dataset) and a user's own folder of recordings.

Loaders decode every file eagerly. A file that cannot be used (missing,
empty, corrupt, non-finite samples) is skipped and recorded with its reason
in `ClipSet.report`, and a one-line warning gives the count; with
`on_error="raise"` the first such file raises instead.
"""

import concurrent.futures
import csv
import dataclasses
import logging
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_speechmix import audio
from keras_speechmix.epochs import epoch_order, epoch_seeds

__all__ = [
    "ClipSet",
    "LoadReport",
    "from_folder",
    "natural_order",
    "from_csv",
    "fsdd",
    "builtin_digits",
    "load",
    "listing",
    "Listing",
    "split_by_fold",
    "split_by_group",
    "fsdd_official_split",
    "stratified_split",
    "validation_split",
]

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>.+)_(?P<index>\d+)$")
# ESC-10/50 clip names: {fold}-{source recording id}-{take letter}.ogg
ESC_NAME = re.compile(r"^(?P<fold>\d+)-(?P<source>\d+)-(?P<take>[A-Z]+)$")


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

    def to_dataset(self, length, training=False, seed=None, epoch=None):
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
                lambda pair, s: (audio.fix_length(pair[0], length, "random", s), pair[1]),
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


# ---------------------------------------------------------------------------
# Loading


def _check_on_error(on_error):
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'; got {on_error!r}")


def _decode_all(paths, on_error, report):
    """Decodes `paths` (mono, native rate) in threads (soundfile drops the GIL).

    Returns a list aligned with `paths` holding `(waveform, rate)` or None for
    skipped files (recorded in `report`).
    """
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(audio.load_audio, p) for p in paths]
        results = []
        for path, future in zip(paths, futures):
            try:
                results.append(future.result())
            except (audio.AudioDecodeError, OSError, ImportError) as e:
                if on_error == "raise":
                    for f in futures:
                        f.cancel()
                    raise
                report.skipped.append((str(path), str(e)))
                results.append(None)
    return results


def _resolve_rate(results, paths, sample_rate, source):
    if sample_rate is not None:
        if int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive int; got {sample_rate!r}")
        return int(sample_rate)
    rates = {}
    for r, p in zip(results, paths):
        if r is not None:
            rates.setdefault(r[1], p)
    if len(rates) > 1:
        listing = ", ".join(f"{rate} Hz (e.g. {path})" for rate, path in sorted(rates.items()))
        raise ValueError(
            f"{source}: files have different sample rates ({listing}); "
            "pass sample_rate=... to resample them to one rate"
        )
    return next(iter(rates)) if rates else None


def _resample_all(results, rate):
    def one(item):
        wave, native = item
        if native == rate:
            return wave
        return audio.resample(wave, native, rate).numpy()

    todo = [r for r in results if r is not None]
    if all(native == rate for _, native in todo):
        return [None if r is None else r[0] for r in results]
    workers = max(1, min(8, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        converted = iter(list(pool.map(one, todo)))
    return [None if r is None else next(converted) for r in results]


def _describe(path, reason):
    # Errors from audio.load_audio already start with the path.
    return reason if reason.startswith(path) else f"{path}: {reason}"


@dataclasses.dataclass
class Listing:
    """The files a loader found, before any is decoded.

    `items` are dicts with `path`, `label` (an int; for a multi-label CSV
    a list of ints) and optional `fold`, `group` and `meta`. Loaders decode
    them into a `ClipSet`; `keras_speechmix.streaming` reads them as it goes.

    Example:

    >>> found = Listing("my_data", [{"path": "a.wav", "label": 0}], ["yes", "no"],
    ...                 LoadReport(found=1))
    >>> found.items[0]["path"], found.multi_label
    ('a.wav', False)
    """

    source: str
    items: list
    class_names: list
    report: LoadReport
    hint: str = ""
    multi_label: bool = False


def _build(listing, sample_rate, on_error):
    """Decodes a `Listing` into a `ClipSet`.

    Raises for an empty result or a single class, warns once when files were
    skipped.
    """
    source, items, class_names, report, hint = (
        listing.source, listing.items, listing.class_names, listing.report, listing.hint)
    paths = [it["path"] for it in items]
    results = _decode_all(paths, on_error, report)
    rate = _resolve_rate(results, paths, sample_rate, source)
    keep = [i for i, r in enumerate(results) if r is not None]
    report.used = len(keep)
    if report.skipped:
        logger.warning(
            "%s: skipped %d of %d audio files (each is listed with its reason in "
            "ClipSet.report.skipped); first: %s",
            source,
            len(report.skipped),
            report.found,
            _describe(*report.skipped[0]),
        )
    if not keep:
        reasons = "; ".join(_describe(p, r) for p, r in report.skipped[:3])
        raise ValueError(
            f"{source}: no usable audio files ({report.found} found, "
            f"{len(report.skipped)} skipped{': ' + reasons if reasons else ''}){hint}"
        )
    waves = _resample_all(results, rate)
    items = [items[i] for i in keep]
    used_labels = sorted({it["label"] for it in items})
    if len(used_labels) < 2:
        raise ValueError(
            f"{source}: only one class ({class_names[used_labels[0]]!r}) has usable "
            f"audio; a classifier needs at least two{hint}"
        )
    folds = [it.get("fold") for it in items]
    groups = [it.get("group") for it in items]
    meta_keys = sorted({k for it in items for k in it.get("meta", {})})
    return ClipSet(
        [waves[i] for i in keep],
        [it["label"] for it in items],
        class_names,
        rate,
        paths=[it["path"] for it in items],
        folds=None if any(f is None for f in folds) else folds,
        groups=None if any(g is None for g in groups) else groups,
        meta={k: [it["meta"][k] for it in items] for k in meta_keys},
        report=report,
    )


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven",
                 "eight", "nine", "ten", "eleven", "twelve")


def natural_order(names):
    """Class names in the order a person expects, not alphabetical.

    Number words ("zero" ... "twelve") in counting order when every name is
    one; otherwise digits compare by value ("class2" before "class10") and
    letters case-blind.

    Example:

    >>> natural_order(["two", "zero", "one"])
    ['zero', 'one', 'two']
    >>> natural_order(["c10", "c9", "B"])
    ['B', 'c9', 'c10']
    """
    names = list(names)
    words = [n.lower() for n in names]
    if names and all(w in _NUMBER_WORDS for w in words):
        return sorted(names, key=lambda n: _NUMBER_WORDS.index(n.lower()))

    def key(name):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                for part in re.split(r"(\d+)", name) if part]

    return sorted(names, key=key)


def _normalise_extensions(extensions):
    if isinstance(extensions, str):
        extensions = (extensions,)
    return tuple("." + e.lower().lstrip(".") for e in extensions)


def from_folder(root, sample_rate=None, on_error="skip", extensions=AUDIO_EXTENSIONS):
    """Loads a folder with one subfolder of audio files per class.

    Class names are the subfolder names in `natural_order` (number words in
    counting order, numbers by value); files are found recursively
    inside each class folder. Files with other extensions, and files directly
    in `root`, are listed in `report.ignored`; class folders without audio are
    reported as skipped.

    Args:
        root: The folder holding the class folders.
        sample_rate: Rate to resample every clip to; `None` keeps the files'
            rate, which must then be the same for all of them.
        on_error: `"skip"` (record and go on) or `"raise"` for files that
            cannot be decoded.
        extensions: File extensions treated as audio.

    Returns:
        A `ClipSet` (no folds, no groups).

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("cat", "dog"):
    ...     os.makedirs(os.path.join(root, name))
    ...     tone = np.zeros((800, 1), "float32")
    ...     tf.io.write_file(os.path.join(root, name, "a.wav"),
    ...                      tf.audio.encode_wav(tone, 8000))
    >>> clips = from_folder(root)
    >>> clips.class_names, clips.sample_rate
    (['cat', 'dog'], 8000)
    """
    _check_on_error(on_error)
    return _build(_list_folder(root, extensions), sample_rate, on_error)


def _list_folder(root, extensions=AUDIO_EXTENSIONS):
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Dataset folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"from_folder: {root} is not a folder")
    exts = _normalise_extensions(extensions)
    report = LoadReport()
    folders = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    class_dirs = [folders[name] for name in natural_order(folders)]
    # Dotfiles (.DS_Store, markers) are not data; anything else is listed.
    report.ignored.extend(
        str(p) for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")
    )
    class_names, items = [], []
    for folder in class_dirs:
        files = []
        for p in sorted(folder.rglob("*")):
            if not p.is_file():
                continue
            if p.suffix.lower() in exts:
                files.append(p)
            elif not p.name.startswith("."):
                report.ignored.append(str(p))
        if not files:
            report.skipped.append((str(folder), f"class folder has no {'/'.join(exts)} files"))
            continue
        label = len(class_names)
        class_names.append(folder.name)
        items.extend({"path": str(p), "label": label} for p in files)
    report.found = len(items)
    if not class_dirs:
        raise ValueError(
            f"from_folder: {root} has no class subfolders; expected one folder of "
            "audio files per class (root/CLASS/*.wav)"
        )
    hint = ""
    if len(class_names) == 1 and class_names[0] == "recordings":
        hint = f" (for the Free Spoken Digit Dataset, use 'fsdd:{root}')"
    return Listing(f"from_folder({root})", items, class_names, report, hint)


def _pick(columns, candidates):
    for c in candidates:
        if c in columns:
            return c
    return None


def from_csv(path, root=None, sample_rate=None, on_error="skip"):
    """Loads the clips listed in a CSV file.

    Columns (header row required, case-insensitive): `path` (also `filename`
    or `file`), a class column (`label`, `category` or `class`; or `target`
    alone), and optionally `fold` (int) and `group` (or `speaker`). ESC-50 /
    ESC-10's `meta.csv` (`path,fold,target,category`) works as is. When a
    numeric `target` column maps one-to-one onto the class names, it sets the
    class order (so ESC's own label indices are kept); otherwise class names
    are in `natural_order`. Without a group column, ESC-style file names
    (`{fold}-{source}-{take}.ogg`) give each clip its source recording as
    group, so that clips cut from one recording stay on one side of a
    `validation_split`. Listed files that are missing are skipped like corrupt ones.

    Args:
        path: The CSV file.
        root: Folder that relative paths are resolved against; defaults to
            the CSV's folder.
        sample_rate: Rate to resample every clip to; `None` keeps the files'
            rate, which must then be the same for all of them.
        on_error: `"skip"` or `"raise"` for files that cannot be decoded.

    Returns:
        A `ClipSet` with folds and groups when the CSV has those columns.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> root = tempfile.mkdtemp()
    >>> for name in ("a", "b"):
    ...     tf.io.write_file(os.path.join(root, name + ".wav"),
    ...                      tf.audio.encode_wav(np.zeros((800, 1), "float32"), 8000))
    >>> with open(os.path.join(root, "meta.csv"), "w") as f:
    ...     _ = f.write("path,label,fold\\na.wav,yes,1\\nb.wav,no,2\\n")
    >>> clips = from_csv(os.path.join(root, "meta.csv"))
    >>> clips.class_names, clips.folds.tolist()
    (['no', 'yes'], [1, 2])
    """
    _check_on_error(on_error)
    listing = _list_csv(path, root)
    if listing.multi_label:
        raise ValueError(
            f"from_csv: {path} is multi-label (a 'labels' column with several "
            "comma-separated labels per row); in-memory ClipSets hold one label per "
            "clip: stream it with keras_speechmix.streaming.list_files(...) or "
            "`speechmix train --stream`"
        )
    return _build(listing, sample_rate, on_error)


def _list_csv(path, root=None):
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    base = Path(root).expanduser() if root is not None else path.parent
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ValueError(f"from_csv: {path} is empty (no header row)")
        columns = {c.strip().lower(): c for c in reader.fieldnames}
        rows = list(reader)
    path_col = _pick(columns, ("path", "filename", "file"))
    label_col = _pick(columns, ("label", "labels", "category", "class", "target"))
    if path_col is None or label_col is None:
        raise ValueError(
            f"from_csv: {path} needs a 'path' column and a 'label' (or 'category') "
            f"column; found columns {list(reader.fieldnames)}"
        )
    fold_col = _pick(columns, ("fold",))
    group_col = _pick(columns, ("group", "speaker"))
    target_col = _pick(columns, ("target",)) if label_col != "target" else None

    def cell(row, key, line):
        value = row.get(columns[key])
        value = "" if value is None else value.strip()
        if not value:
            raise ValueError(f"from_csv: {path} line {line}: empty '{columns[key]}' value")
        return value

    entries = []
    for line, row in enumerate(rows, start=2):
        if not any((v or "").strip() for v in row.values()):
            continue
        entry = {"path": cell(row, path_col, line), "name": cell(row, label_col, line)}
        if fold_col:
            fold = cell(row, fold_col, line)
            try:
                entry["fold"] = int(fold)
            except ValueError:
                raise ValueError(
                    f"from_csv: {path} line {line}: fold {fold!r} is not an integer"
                ) from None
        if group_col:
            entry["group"] = cell(row, group_col, line)
        else:
            esc = ESC_NAME.match(Path(entry["path"]).stem)
            if esc:
                entry["group"] = esc["source"]
        if target_col:
            entry["target"] = (row.get(columns[target_col]) or "").strip()
        entries.append(entry)
    if not entries:
        raise ValueError(f"from_csv: {path} lists no files")

    # FSD50K-style tagging sets: a `labels` column, several labels per row.
    multi = label_col == "labels" and any("," in e["name"] for e in entries)
    if multi:
        for e in entries:
            e["names"] = [n.strip() for n in e["name"].split(",") if n.strip()]
        names = natural_order({n for e in entries for n in e["names"]})
    else:
        names = natural_order({e["name"] for e in entries})
    if target_col and not multi:
        pairs = {(e["name"], e["target"]) for e in entries}
        by_name = {n: t for n, t in pairs}
        targets = list(by_name.values())
        if (
            len(pairs) == len(names)
            and len(set(targets)) == len(names)
            and all(t.lstrip("-").isdigit() for t in targets)
        ):
            names = sorted(names, key=lambda n: int(by_name[n]))
    label_of = {n: i for i, n in enumerate(names)}

    report = LoadReport(found=len(entries))
    items = []
    for e in entries:
        file = Path(e["path"]).expanduser()
        file = file if file.is_absolute() else base / file
        item = {"path": str(file),
                "label": [label_of[n] for n in e["names"]] if multi else label_of[e["name"]]}
        if "fold" in e:
            item["fold"] = e["fold"]
        if "group" in e:
            item["group"] = e["group"]
        items.append(item)
    return Listing(f"from_csv({path})", items, names, report, multi_label=multi)


def _fsdd_recordings(root):
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"FSDD folder not found: {root}")
    if (root / "recordings").is_dir():
        return root / "recordings"
    if root.is_dir():
        return root
    raise NotADirectoryError(f"fsdd: {root} is not a folder")


def fsdd(root, sample_rate=None, on_error="skip"):
    """Loads the Free Spoken Digit Dataset (or any folder named like it).

    Files are `{digit}_{speaker}_{index}.wav`. Class names are the digits
    `"0"`..`"9"` found (so label == digit for the full dataset), groups are the
    speakers, and `meta["index"]` keeps the recording index for
    `fsdd_official_split`. WAV files named otherwise are recorded as skipped.

    Args:
        root: The folder holding `recordings/`, or the recordings folder.
        sample_rate: Rate to resample to (`None` keeps 8 kHz).
        on_error: `"skip"` or `"raise"` for files that cannot be decoded.

    Returns:
        A `ClipSet` with groups (speakers) and `meta["index"]`.

    Example:

    >>> clips = fsdd("~/data/free-spoken-digit-dataset")  # doctest: +SKIP
    >>> train, test = fsdd_official_split(clips)  # doctest: +SKIP
    """
    _check_on_error(on_error)
    return _build(_list_fsdd(root), sample_rate, on_error)


def _list_fsdd(root):
    folder = _fsdd_recordings(root)
    report = LoadReport()
    parsed = []
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        if p.suffix.lower() != ".wav":
            report.ignored.append(str(p))
            continue
        m = FSDD_NAME.match(p.stem)
        if not m:
            report.skipped.append(
                (str(p), "file name does not match {digit}_{speaker}_{index}.wav")
            )
            continue
        parsed.append((p, m))
    report.found = len(parsed) + len(report.skipped)
    digits = sorted({m["digit"] for _, m in parsed})
    label_of = {d: i for i, d in enumerate(digits)}
    items = [
        {
            "path": str(p),
            "label": label_of[m["digit"]],
            "group": m["speaker"],
            "meta": {"index": int(m["index"])},
        }
        for p, m in parsed
    ]
    return Listing(f"fsdd({folder})", items, digits, report)


BUILTIN_DIGITS = Path(__file__).parent / "data" / "fsdd_digits.npz"


def builtin_digits():
    """Real spoken digits shipped with the package: no download, no network.

    480 recordings from the Free Spoken Digit Dataset (Zohar Jackson et al.,
    CC BY-SA 4.0; `keras_speechmix/data/FSDD_ATTRIBUTION.txt` and
    `FSDD_LICENSE.txt` lie beside the data): takes 0-7 of each digit by each
    of its six speakers (george, jackson, lucas, nicolas, theo, yweweler),
    mono at 8 kHz, the WAV files' 16-bit samples unchanged (scaled by
    1/32768, as soundfile reads them). `speechmix demo` trains on four of
    the speakers and tests on one it never heard.

    Returns:
        A `ClipSet` like `fsdd`'s: class names `"0"`..`"9"` (label ==
        digit), groups = speakers, `meta["index"]` = FSDD's take number,
        paths = the FSDD file names.

    Example:

    >>> clips = builtin_digits()
    >>> len(clips), clips.sample_rate, sorted(set(clips.groups))[:2]
    (480, 8000, ['george', 'jackson'])
    """
    with np.load(BUILTIN_DIGITS, allow_pickle=False) as data:
        samples, lengths = data["samples"], data["lengths"]
        digits, takes = data["digits"], data["takes"]
        speakers = data["speakers"][data["speaker"]]
        rate = int(data["sample_rate"])
    waves = np.split(samples.astype(np.float32) / 32768.0, np.cumsum(lengths)[:-1])
    paths = [f"{d}_{s}_{t}.wav" for d, s, t in zip(digits, speakers, takes)]
    return ClipSet(waves, digits.astype(np.int32), [str(d) for d in range(10)], rate,
                   paths=paths, groups=speakers.tolist(), meta={"index": takes.astype(np.int64)},
                   report=LoadReport(found=len(waves), used=len(waves)))


def listing(spec, extensions=AUDIO_EXTENSIONS):
    """The files and labels a dataset spec names, before decoding (see `load`).

    Example:

    >>> files = listing("fsdd:~/data/fsdd")  # doctest: +SKIP
    >>> len(files.items), files.class_names[:3]  # doctest: +SKIP
    (3000, ['0', '1', '2'])
    """
    text = os.fspath(spec)
    if text.lower().startswith("fsdd:"):
        return _list_fsdd(text[5:])
    path = _existing(text)
    if path.is_dir():
        return _list_folder(path, extensions)
    return _list_csv(path)


def _existing(text):
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Dataset not found: {text} (expected a folder of class folders, a .csv "
            "file, or fsdd:DIR)"
        )
    if not path.is_dir() and path.suffix.lower() != ".csv":
        raise ValueError(
            f"Cannot load dataset {text}: expected a folder of class folders, a .csv "
            "file, or fsdd:DIR"
        )
    return path


def load(spec, **kwargs):
    """Loads a dataset from a spec string.

    Args:
        spec: A folder of class subfolders (`from_folder`), a `.csv` file
            (`from_csv`), or `"fsdd:DIR"` (`fsdd`).
        **kwargs: Passed to the loader (`sample_rate`, `on_error`, ...).

    Returns:
        A `ClipSet`.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the spec is neither a folder nor a CSV file, or the data
            has no usable file or only one class.

    Example:

    >>> clips = load("fsdd:~/data/fsdd", sample_rate=16000)  # doctest: +SKIP
    >>> clips = load("~/sounds/my_classes")  # doctest: +SKIP
    """
    text = os.fspath(spec)
    if text.lower().startswith("fsdd:"):
        return fsdd(text[5:], **kwargs)
    path = _existing(text)
    if path.is_dir():
        return from_folder(path, **kwargs)
    return from_csv(path, **kwargs)


# ---------------------------------------------------------------------------
# Splits


def _pair(clips, test_mask, what):
    train_mask = ~test_mask
    if not test_mask.any() or not train_mask.any():
        side = "test" if not test_mask.any() else "train"
        raise ValueError(f"{what} leaves the {side} set empty")
    return clips.subset(train_mask), clips.subset(test_mask)


def _as_list(value):
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [value]
    return list(value)


def split_by_fold(clips, test_folds, train_folds=None):
    """Splits by predefined folds (e.g. ESC's cross-validation folds).

    Args:
        clips: A `ClipSet` with `folds`.
        test_folds: A fold or folds for the test set.
        train_folds: Folds for the training set; defaults to all others.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> clips = ClipSet([np.zeros(10, "float32")] * 4, [0, 1, 0, 1], ["a", "b"],
    ...                 8000, folds=[1, 1, 2, 2])
    >>> [len(s) for s in split_by_fold(clips, 2)]
    [2, 2]
    """
    if clips.folds is None:
        raise ValueError("split_by_fold: this ClipSet has no folds")
    known = sorted(set(clips.folds.tolist()))
    test = [int(f) for f in _as_list(test_folds)]
    train = [f for f in known if f not in test] if train_folds is None else [
        int(f) for f in _as_list(train_folds)
    ]
    unknown = sorted(set(test + train) - set(known))
    if unknown:
        raise ValueError(f"split_by_fold: unknown fold(s) {unknown}; the folds are {known}")
    overlap = sorted(set(test) & set(train))
    if overlap:
        raise ValueError(f"split_by_fold: fold(s) {overlap} are in both train and test")
    test_mask = np.isin(clips.folds, test)
    train_mask = np.isin(clips.folds, train)
    if not test_mask.any() or not train_mask.any():
        raise ValueError("split_by_fold: a split is empty")
    return clips.subset(train_mask), clips.subset(test_mask)


def split_by_group(clips, test_groups):
    """Holds out whole groups (e.g. leave-speakers-out).

    Args:
        clips: A `ClipSet` with `groups`.
        test_groups: A group name or names for the test set; every other
            group goes to the training set.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> clips = ClipSet([np.zeros(10, "float32")] * 4, [0, 1, 0, 1], ["a", "b"],
    ...                 8000, groups=["ann", "ann", "bob", "bob"])
    >>> [s.groups for s in split_by_group(clips, "bob")]
    [['ann', 'ann'], ['bob', 'bob']]
    """
    if clips.groups is None:
        raise ValueError("split_by_group: this ClipSet has no groups")
    test = [str(g) for g in _as_list(test_groups)]
    known = sorted(set(clips.groups))
    unknown = sorted(set(test) - set(known))
    if unknown:
        raise ValueError(f"split_by_group: unknown group(s) {unknown}; the groups are {known}")
    return _pair(clips, np.isin(np.array(clips.groups), test), "split_by_group")


def fsdd_official_split(clips):
    """FSDD's official split: recording index 0-4 test, the rest train.

    Args:
        clips: A `ClipSet` from `fsdd` (needs `meta["index"]`).

    Returns:
        `(train, test)` ClipSets (2700 / 300 clips for the full dataset).

    Example:

    >>> train, test = fsdd_official_split(fsdd("~/data/fsdd"))  # doctest: +SKIP
    """
    if "index" not in clips.meta:
        raise ValueError(
            "fsdd_official_split: clips have no recording index (meta['index']); "
            "load them with datasets.fsdd"
        )
    return _pair(clips, clips.meta["index"] < 5, "fsdd_official_split")


def stratified_split(clips, test_fraction=0.2, seed=0):
    """Random split that keeps each class's share in both parts.

    Each class with at least two clips contributes `round(n * test_fraction)`
    clips (at least one) to the test set.

    Args:
        clips: A `ClipSet`.
        test_fraction: Fraction of each class held out, in (0, 1).
        seed: Seed for the shuffling.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> clips = ClipSet([np.zeros(10, "float32")] * 10, [0] * 5 + [1] * 5,
    ...                 ["a", "b"], 8000)
    >>> [len(s) for s in stratified_split(clips, 0.4)]
    [6, 4]
    """
    if not 0 < test_fraction < 1:
        raise ValueError(
            f"stratified_split: test_fraction must be in (0, 1); got {test_fraction!r}"
        )
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(clips), bool)
    for label in np.unique(clips.labels):
        members = np.flatnonzero(clips.labels == label)
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, int(round(len(members) * test_fraction))))
        test_mask[rng.choice(members, size=count, replace=False)] = True
    return _pair(clips, test_mask, "stratified_split")


def validation_split(clips, fraction=0.1, seed=0):
    """Holds out a validation part of the *training* clips, group-aware.

    For the learning curves and any choice made during training, so that the
    test split is scored only once, at the end. Clips that share a group
    (a speaker, or clips cut from one recording) land on the same side, so
    the validation part is as independent of the rest as the test is: with
    groups, whole groups are held out at random until each class has about
    `fraction` of its clips held out (at least one group); without groups,
    it is a `stratified_split`.

    Args:
        clips: The training `ClipSet`.
        fraction: Share of the clips to hold out, in (0, 1).
        seed: Seed for the choice.

    Returns:
        `(train, validation)` ClipSets.

    Example:

    >>> import numpy as np
    >>> clips = ClipSet([np.zeros(10, "float32")] * 8, [0, 1] * 4, ["a", "b"],
    ...                 8000, groups=["ann"] * 2 + ["bob"] * 2 + ["cy"] * 2 + ["dee"] * 2)
    >>> train, val = validation_split(clips, 0.25)
    >>> len(train), len(val), len(set(val.groups))
    (6, 2, 1)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split: fraction must be in (0, 1); got {fraction!r}")
    if clips.groups is None:
        return stratified_split(clips, fraction, seed=seed)
    groups = np.asarray(clips.groups)
    names = sorted(set(clips.groups))
    if len(names) < 2:
        raise ValueError(
            f"validation_split: the training clips come from {len(names)} group "
            f"({names[0]!r}); holding out whole groups needs at least two")
    classes = np.unique(clips.labels)
    wanted = {c: max(1, round(fraction * np.sum(clips.labels == c))) for c in classes}
    held = {c: 0 for c in classes}
    test_mask = np.zeros(len(clips), bool)
    for name in np.random.default_rng(seed).permutation(names):
        members = groups == name
        adds = {c: int(np.sum(members & (clips.labels == c))) for c in classes}
        if any(held[c] + adds[c] > wanted[c] for c in classes if adds[c]):
            continue
        test_mask |= members
        for c in classes:
            held[c] += adds[c]
    if not test_mask.any():  # every group is bigger than the share: take one
        test_mask = groups == np.random.default_rng(seed).choice(names)
    return _pair(clips, test_mask, "validation_split")
