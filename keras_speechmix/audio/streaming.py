"""Audio datasets read from disk as training goes, for sets larger than memory.

`list_files` lists a dataset from the same specs as
`keras_speechmix.audio.datasets.load` (a folder of class folders, a CSV
`path,label[,fold][,group]`, `fsdd:DIR`) without decoding anything, and
also takes multi-label CSVs (a `labels` column with several comma-separated
labels per row, as FSD50K's). `FileSet.to_dataset` then reads, decodes,
resamples and crops the files in parallel inside `tf.data`, so memory does
not grow with the number of files; its elements are what `ClipSet.to_dataset`
gives, so `partner_batches` and `experiment.train_clips` take either.
Training crops are read by seeking: only the part of a file a crop needs
is decoded (see `FileSet.to_dataset`).

A file that cannot be decoded never stops a run and is never silent: it is
skipped and recorded, with its reason, in the set's `SkipLog`, and
`SkipGuard` stops training with `TooManySkipsError` once more than a given
share of the files read (5 % by default) failed.

Example:

>>> import os, tempfile, numpy as np, tensorflow as tf
>>> root = tempfile.mkdtemp()
>>> for name in ("cat", "dog"):
...     os.makedirs(os.path.join(root, name))
...     tf.io.write_file(os.path.join(root, name, "a.wav"),
...                      tf.audio.encode_wav(np.zeros((800, 1), "float32"), 8000))
>>> files = list_files(root, sample_rate=8000)
>>> [(x.shape.as_list(), int(y)) for x, y in files.to_dataset(400)]
[([400], 0), ([400], 1)]
"""

import dataclasses
import os
import struct
import threading
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import soundfile

from keras_speechmix.audio import datasets, segments
from keras_speechmix.audio import decode as audio
from keras_speechmix.epochs import epoch_order, epoch_seeds

__all__ = ["FileSet", "SkipGuard", "SkipLog", "TooManySkipsError", "list_files",
           "predict_files"]

# Decoded bytes per second of a compressed file's size, for the memory
# estimate: FLAC keeps roughly half of 16-bit PCM at 44.1 kHz; Ogg Vorbis
# and MP3 are near 128 kbit/s.
_COMPRESSED_BYTES_PER_SECOND = {".flac": 88_200, ".ogg": 16_000, ".mp3": 16_000}


class TooManySkipsError(RuntimeError):
    """More files failed to decode than a run allows (see `SkipGuard`).

    Example:

    >>> log = SkipLog()
    >>> log.record("a.wav", "file is empty (0 bytes)")
    >>> try:
    ...     log.check(max_fraction=0.05)
    ... except TooManySkipsError as error:
    ...     print(str(error).split(";")[0])
    1 of 1 file reads failed (100.0 %, limit 5.0 %)
    """


class SkipLog:
    """Thread-safe account of the files a stream read and those it skipped.

    Every read is counted (`reads`); each failed file is kept once with its
    reason (`skipped`, path -> reason), however many epochs meet it again.

    Example:

    >>> log = SkipLog()
    >>> log.record("a.wav")
    >>> log.record("b.wav", "file is empty (0 bytes)")
    >>> log.reads, log.failed_reads, log.fraction
    (2, 1, 0.5)
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reads = 0
        self.failed_reads = 0
        self.skipped = {}

    def record(self, path, reason=None):
        """Counts one read of `path`; `reason` marks it as skipped."""
        with self._lock:
            self.reads += 1
            if reason is not None:
                self.failed_reads += 1
                self.skipped.setdefault(str(path), str(reason))

    @property
    def fraction(self):
        """Share of reads that failed (0 before any read)."""
        return self.failed_reads / self.reads if self.reads else 0.0

    def check(self, max_fraction, min_reads=0):
        """Raises `TooManySkipsError` when the failed share exceeds `max_fraction`.

        Nothing is judged before `min_reads` reads, so that one early bad
        file does not stop a run whose next hundred files are fine.
        """
        if self.reads and self.reads >= min_reads and self.fraction > max_fraction:
            rows, shown = sorted(self.skipped.items()), 3
            listed = "; ".join(f"{p}: {datasets.skip_reason(p, r)}" for p, r in rows[:shown])
            count = f"{len(rows)} file{'' if len(rows) == 1 else 's'} skipped"
            if len(rows) > shown:
                count += f", the first {shown}"
            raise TooManySkipsError(
                f"{self.failed_reads} of {self.reads} file reads failed "
                f"({100 * self.fraction:.1f} %, limit {100 * max_fraction:.1f} %); "
                f"{count}: {listed}. Fix or remove them, or raise the limit "
                "(speechmix train --max-skipped)."
            )

    def write_csv(self, path, more=()):
        """Writes `path,reason` rows, one per skipped file, sorted by path.

        `more` adds `(path, reason)` pairs skipped elsewhere (e.g. by the
        listing, `FileSet.report.skipped`).
        """
        datasets.write_skipped(path, self.rows(more))

    def rows(self, more=()):
        """`(path, reason)` per skipped file, sorted by path, with `more` added."""
        return sorted({**dict(more), **self.skipped}.items())


class SkipGuard(keras.callbacks.Callback):
    """Stops training once a stream skipped more than `max_fraction` of its reads.

    Checked after every batch once `min_reads` files were read, and at the
    end of every epoch whatever the count (an epoch reads every file).

    Args:
        log: The `SkipLog` of the training stream (`FileSet.skips`).
        max_fraction: Largest share of failed reads allowed (default 5 %).
        min_reads: Reads before the per-batch check starts.

    Example:

    >>> guard = SkipGuard(SkipLog(), max_fraction=0.05)
    >>> # model.fit(files.to_dataset(...)..., callbacks=[guard])
    """

    def __init__(self, log, max_fraction=0.05, min_reads=100):
        super().__init__()
        if not 0 <= max_fraction < 1:
            raise ValueError(f"max_fraction must lie in [0, 1); got {max_fraction!r}")
        self.log = log
        self.max_fraction = max_fraction
        self.min_reads = min_reads

    def on_train_batch_end(self, batch, logs=None):
        self.log.check(self.max_fraction, self.min_reads)

    def on_epoch_end(self, epoch, logs=None):
        self.log.check(self.max_fraction)


# What a file that cannot be used raises (np.load: ValueError for a bad .npy;
# soundfile's own error where a seek or a segment's decoding fails).
_UNREADABLE = (audio.AudioDecodeError, OSError, ValueError, soundfile.LibsndfileError)


def _decode(path, rate, trim=None):
    """One file's mono samples at `rate`, trimmed when `trim` is a threshold."""
    wave, _ = audio.load_audio(path, rate)
    return wave if trim is None else datasets.trim_wave(wave, trim)


class _Spans:
    """What each file's training crops need to know before reading it.

    Per file and set rate and trim, four ints, learned the first time it is
    read and kept: its frames and rate (from its header, `soundfile.info`),
    and the first sample and the length of the clip at the set's rate, after
    trimming. Without `trim` they come from the header alone; with it the
    file is decoded once, whole, to find its first and last loud samples
    (and that read's crop is cut from the decoded clip). Files the header
    cannot serve exactly (MP3, Opus, damaged headers, remote paths) are not
    remembered: they are decoded whole on every read, as before seeking.
    Memory: one small tuple per file, never samples.
    """

    def __init__(self):
        self._known = {}  # (path, rate, trim) -> (frames, rate_in, first, n)

    def __len__(self):
        return len(self._known)

    def lookup(self, path, rate, trim):
        """`((frames, rate_in, first, n), whole)`; `whole` is the decoded
        clip when this call decoded it (else None). `frames` is -1 for a
        `.npy` clip (already at `rate`, trimmed) and 0 for a clip that must
        be decoded whole every time."""
        key = (path, rate, trim)
        known = self._known.get(key)
        if known is not None:
            return known, None
        if path.endswith(".npy"):
            # `cached` wrote the clip at `rate`, trimmed: its length is in
            # the array's header, and a memory map reads just the crop.
            known = self._known[key] = (-1, rate, 0, int(np.load(path, mmap_mode="r").shape[0]))
            return known, None
        header = None
        if "://" not in path:
            try:
                header = segments.read_header(path)
            except (soundfile.LibsndfileError, OSError):
                header = None  # the whole decode below words the error
        if header is None or not header.seekable:
            wave = _decode(path, rate, trim)
            return (0, rate, 0, len(wave)), wave
        n = segments.resampled_length(header.frames, header.rate, rate)
        if trim is None:
            known = self._known[key] = (header.frames, header.rate, 0, n)
            return known, None
        wave, _ = audio.load_audio(path, rate)
        if len(wave) != n:  # the header's count was not the decoder's: no seeking
            wave = datasets.trim_wave(wave, trim)
            return (0, rate, 0, len(wave)), wave
        # `datasets.trim_wave`'s rule, kept as two ints.
        loud = np.flatnonzero(np.abs(wave) > trim)
        first, n = (int(loud[0]), int(loud[-1] - loud[0] + 1)) if loud.size else (0, n)
        known = self._known[key] = (header.frames, header.rate, first, n)
        return known, wave


def _read_span(path, frames, rate_in, rate, start, count, whole):
    """Samples `start .. start + count - 1` of a clip that `_Spans` described."""
    if whole.size:
        return whole[start:start + count]
    if frames < 0:
        return np.array(np.load(path, mmap_mode="r")[start:start + count], np.float32)
    return segments.read_segment(path, segments.Header(frames, rate_in, True), rate,
                                 start, count)


def _wav_seconds(path):
    """Duration from a WAV header, or None when the header is not plain PCM."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    rate = block = None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at:at + 4], struct.unpack("<I", head[at + 4:at + 8])[0]
        if chunk == b"fmt " and at + 24 <= len(head):
            rate, block = struct.unpack("<I", head[at + 12:at + 16])[0], struct.unpack(
                "<H", head[at + 20:at + 22])[0]
        elif chunk == b"data" and rate and block:
            return min(size, os.path.getsize(path) - at - 8) / (rate * block)
        at += 8 + size + (size & 1)
    return None


@dataclasses.dataclass
class FileSet:
    """Audio files with labels, decoded only when read (see `to_dataset`).

    Args:
        paths: One path per clip.
        labels: Integer class per clip, or a multi-hot `(clips, classes)`
            float array for multi-label data.
        class_names: Names the labels index into.
        sample_rate: Every file is resampled to this rate when read.
        folds, groups: Optional fold and group (e.g. speaker) per clip.
        meta: Optional dict of extra per-clip arrays (FSDD's recording
            `"index"`), so `keras_speechmix.audio.datasets`' splits apply as to a
            `ClipSet`.
        report: The listing's `keras_speechmix.audio.datasets.LoadReport`
            (what was found and what was left out before decoding).
        skips: The `SkipLog` every stream of this set (and its subsets)
            records its reads in.
        trim: Cut leading and trailing samples at or below this magnitude
            from every clip when read (`None`: keep them); see
            `trim_silence`.
        spans: What training crops learned of each file (header facts,
            trimmed span: a few ints per file), shared by the set's subsets;
            made empty when not given.

    Example:

    >>> files = FileSet(["a.wav", "b.wav"], [0, 1], ["no", "yes"], 16000)
    >>> len(files), files.multi_label
    (2, False)
    """

    paths: list
    labels: np.ndarray
    class_names: list
    sample_rate: int
    folds: np.ndarray = None
    groups: list = None
    meta: dict = None
    report: datasets.LoadReport = None
    skips: SkipLog = None
    trim: float = None
    spans: _Spans = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.paths = [str(p) for p in self.paths]
        labels = np.asarray(self.labels)
        self.labels = labels.astype(np.float32 if labels.ndim == 2 else np.int32)
        self.class_names = [str(c) for c in self.class_names]
        self.sample_rate = int(self.sample_rate)
        if self.sample_rate <= 0:
            raise ValueError(f"FileSet: sample_rate must be > 0; got {self.sample_rate}")
        if self.folds is not None:
            self.folds = np.asarray(self.folds, np.int64)
        if self.groups is not None:
            self.groups = [str(g) for g in self.groups]
        self.meta = {k: np.asarray(v) for k, v in (self.meta or {}).items()}
        for name, value in (("labels", self.labels), ("folds", self.folds),
                            ("groups", self.groups),
                            *((f"meta[{k!r}]", v) for k, v in self.meta.items())):
            if value is not None and len(value) != len(self.paths):
                raise ValueError(
                    f"FileSet: {name} has {len(value)} entries for {len(self.paths)} paths")
        if self.labels.ndim == 2 and self.labels.shape[1] != len(self.class_names):
            raise ValueError(
                f"FileSet: multi-hot labels have {self.labels.shape[1]} columns for "
                f"{len(self.class_names)} class names")
        self.report = self.report or datasets.LoadReport(found=len(self.paths))
        self.skips = self.skips or SkipLog()
        self.spans = _Spans() if self.spans is None else self.spans

    def __len__(self):
        return len(self.paths)

    @property
    def multi_label(self):
        """Whether labels are multi-hot rows (several classes per clip)."""
        return self.labels.ndim == 2

    @property
    def num_classes(self):
        return len(self.class_names)

    def summary(self):
        """A short multi-line description: size, classes, folds, groups.

        Example:

        >>> print(FileSet(["a.wav"], [0], ["x", "y"], 8000).summary().splitlines()[0])
        FileSet: 1 files, 2 classes, read at 8000 Hz
        """
        lines = [f"FileSet: {len(self)} files, {self.num_classes} classes, "
                 f"read at {self.sample_rate} Hz"
                 + (" (multi-label)" if self.multi_label else "")]
        counts = (self.labels.sum(axis=0).astype(int) if self.multi_label
                  else np.bincount(self.labels, minlength=self.num_classes))
        names = [f"{n} ({c})" for n, c in zip(self.class_names, counts)]
        lines.append("  classes: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else ""))
        if self.folds is not None:
            folds, per = np.unique(self.folds, return_counts=True)
            lines.append("  folds: " + ", ".join(f"{f} ({c})" for f, c in zip(folds, per)))
        if self.groups is not None:
            lines.append(f"  groups: {len(set(self.groups))}")
        return "\n".join(lines)

    def trim_silence(self, threshold=0.0):
        """This set, with each clip's leading and trailing silence cut when read.

        As `ClipSet.trim_silence` (the same samples come out), for streams.

        Example:

        >>> FileSet(["a.wav"], [0], ["x", "y"], 8000).trim_silence().trim
        0.0
        """
        if not np.isscalar(threshold) or not threshold >= 0:
            raise ValueError(f"trim_silence: threshold must be a number >= 0; got {threshold!r}")
        return dataclasses.replace(self, trim=float(threshold))

    def subset(self, indices):
        """The files at `indices` (ints or a boolean mask); shares the skip log.

        Example:

        >>> FileSet(["a.wav", "b.wav"], [0, 1], ["n", "y"], 8000).subset([1]).paths
        ['b.wav']
        """
        index = np.arange(len(self))[np.asarray(indices)]
        return dataclasses.replace(
            self,
            paths=[self.paths[i] for i in index],
            labels=self.labels[index],
            folds=None if self.folds is None else self.folds[index],
            groups=None if self.groups is None else [self.groups[i] for i in index],
            meta={k: v[index] for k, v in self.meta.items()},
        )

    def shard(self, num_shards, index):
        """Every `num_shards`-th file from `index`: one worker's files.

        Example:

        >>> files = FileSet(["a", "b", "c"], [0, 1, 0], ["n", "y"], 8000)
        >>> files.shard(2, 0).paths, files.shard(2, 1).paths
        (['a', 'c'], ['b'])
        """
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index must lie in [0, {num_shards}); got {index}")
        return self.subset(np.arange(len(self)) % num_shards == index)

    def estimated_bytes(self):
        """Memory the decoded set would take as float32 at `sample_rate`.

        Exact for PCM WAV files (read from their headers); compressed files
        are estimated from their size at typical bitrates.

        Example:

        >>> FileSet([], [], ["a", "b"], 16000).estimated_bytes()
        0
        """
        seconds = 0.0
        for path in self.paths:
            wav = _wav_seconds(path)
            if wav is None:
                size = os.path.getsize(path) if os.path.exists(path) else 0
                rate = _COMPRESSED_BYTES_PER_SECOND.get(Path(path).suffix.lower(), 16_000)
                wav = size / rate
            seconds += wav
        return int(round(seconds * self.sample_rate * 4))

    def cached(self, folder, workers=None):
        """This set with every file decoded and resampled once, as float32 `.npy`.

        Decoding Ogg Vorbis, MP3 or FLAC and resampling cost far more than
        the reference network's step (ESC-10's 5 s Ogg clips: ~120 ms each
        at 44.1 -> 16 kHz on one core), and a stream pays it again every
        epoch. This pays it once: each file's samples at `sample_rate` are
        saved to `folder` as a NumPy array, which a stream reads back with
        no decoding at all (named by a hash of its path, size, time and the rate,
        so a second call, or another worker, reuses what is there), one at
        a time per thread, so memory stays flat. Files that fail are
        recorded in `skips` and keep their original path (a later read
        records them again).

        Returns:
            A `FileSet` over the cached files, sharing this set's labels,
            folds, groups and skip log.

        Example:

        >>> # files = list_files("meta.csv", 16000).cached("~/.cache/esc10-16k")
        """
        import concurrent.futures
        import hashlib

        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)

        def one(path):
            try:
                stat = os.stat(path)
            except OSError as e:
                self.skips.record(path, f"{path}: {e.strerror or e}")
                return path
            key = (f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|"
                   f"{self.sample_rate}|{self.trim}")
            target = folder / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.npy"
            if target.exists():
                return str(target)
            try:
                wave = _decode(path, self.sample_rate, self.trim)
            except _UNREADABLE as e:
                self.skips.record(path, str(e))
                return path
            partial = target.with_suffix(f".{os.getpid()}.part")
            with open(partial, "wb") as f:
                np.save(f, wave.astype(np.float32))
            os.replace(partial, target)  # whole files only, even if killed
            return str(target)

        workers = workers or max(1, min(8, os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            paths = list(pool.map(one, self.paths))
        # Cached clips are trimmed already; files that failed are re-read
        # (and fail again) as they are.
        return dataclasses.replace(self, paths=paths, trim=None)

    def _read_function(self):
        rate, log, trim = self.sample_rate, self.skips, self.trim

        def read(path):
            path = path.decode()
            try:
                # `cached` wrote .npy files already at `rate` and trimmed.
                wave = np.load(path) if path.endswith(".npy") else _decode(path, rate, trim)
            except _UNREADABLE as e:
                log.record(path, str(e))
                return np.zeros(0, np.float32), False
            log.record(path)
            return wave, True

        def read_op(path):
            wave, ok = tf.numpy_function(read, [path], (tf.float32, tf.bool),
                                         stateful=True)
            return tf.ensure_shape(wave, [None]), tf.ensure_shape(ok, [])

        return read_op

    def _check_decoders(self):
        # A libsndfile without a format would otherwise show up as every such
        # file skipped; say so before anything is read.
        for suffix in {Path(p).suffix.lower() for p in self.paths}:
            audio._require_decoder(suffix)

    def _ordered(self, training, seed, epoch):
        """`(path, label)` pairs in reading order: reshuffled each epoch when
        `training`, a function of `(seed, epoch)` with an `epoch` variable."""
        self._check_decoders()
        data = tf.data.Dataset.from_tensor_slices((self.paths, self.labels))
        if training and epoch is not None:
            paths, labels = tf.constant(self.paths), tf.constant(self.labels)
            return epoch_order(len(self), seed or 0, epoch).map(
                lambda i: (paths[i], labels[i]))
        if training:
            # Shuffling paths, not decoded clips: the buffer holds names only.
            return data.shuffle(max(1, len(self)), seed=seed, reshuffle_each_iteration=True)
        return data

    def _span_function(self):
        rate, log, trim, spans = self.sample_rate, self.skips, self.trim, self.spans

        def span(path):
            path = path.decode()
            try:
                (frames, rate_in, first, n), whole = spans.lookup(path, rate, trim)
            except _UNREADABLE as e:
                log.record(path, str(e))
                return (*np.zeros(4, np.int64), np.zeros(0, np.float32), False)
            whole = np.zeros(0, np.float32) if whole is None else whole
            return (*np.array([frames, rate_in, first, n], np.int64), whole, True)

        def span_op(path):
            *ints, whole, ok = tf.numpy_function(
                span, [path], (tf.int64,) * 4 + (tf.float32, tf.bool), stateful=True)
            return (*(tf.ensure_shape(i, []) for i in ints), tf.ensure_shape(whole, [None]),
                    tf.ensure_shape(ok, []))

        return span_op

    def _crop_function(self, length):
        rate, log = self.sample_rate, self.skips

        def read(path, frames, rate_in, start, count, whole):
            path = path.decode()
            try:
                wave = _read_span(path, int(frames), int(rate_in), rate, int(start),
                                  int(count), whole)
            except _UNREADABLE as e:
                log.record(path, str(e))
                return np.zeros(count, np.float32), False
            log.record(path)
            return wave, True

        def crop(element, seed):
            path, frames, rate_in, first, n, whole, label = element
            # The offset `fix_length(clip, length, "random", seed)` would
            # draw on the whole (trimmed) clip, from its length alone.
            start, pad_left = audio.crop_window(n, length, "random", seed)
            count = tf.minimum(tf.cast(n, tf.int32), length)
            wave, ok = tf.numpy_function(
                read, [path, frames, rate_in, first + tf.cast(start, tf.int64),
                       tf.cast(count, tf.int64), whole],
                (tf.float32, tf.bool), stateful=True)
            wave = tf.pad(tf.ensure_shape(wave, [None]),
                          [[pad_left, length - count - pad_left]])
            return tf.ensure_shape(wave, [length]), tf.ensure_shape(ok, []), label

        return crop

    def _seeking_crops(self, length, seed, num_parallel_calls, epoch, seeds):
        data = self._ordered(True, seed, epoch)
        span = self._span_function()
        data = data.map(_with_span(span), num_parallel_calls=num_parallel_calls,
                        deterministic=True).filter(_spanned).map(_without_span_flag)
        # Seeds are paired with the files that were read, in order, as the
        # whole-clip path pairs them: the same crops for the same seed.
        return tf.data.Dataset.zip((data, seeds())).map(
            self._crop_function(length), num_parallel_calls=num_parallel_calls,
            deterministic=True).filter(_was_read).map(_without_flag)

    def read(self, training=False, seed=None, num_parallel_calls=tf.data.AUTOTUNE,
             epoch=None):
        """Decoded `(waveform, label)` pairs at full length, skipping bad files.

        With `training`, the file order is reshuffled every epoch (seeded by
        `seed`; a function of `(seed, epoch)` with an `epoch` variable, see
        `keras_speechmix.epochs`). Decoding runs `num_parallel_calls` files
        at a time and keeps the order, so a seeded stream repeats exactly.

        Example:

        >>> # for wave, label in files.read(): ...
        """
        data = self._ordered(training, seed, epoch)
        read = self._read_function()
        data = data.map(lambda p, y: (*read(p), y), num_parallel_calls=num_parallel_calls,
                        deterministic=True)
        # Named functions: autograph cannot tell apart two lambdas on one line
        # and warned about each.
        return data.filter(_was_read).map(_without_flag)

    def to_dataset(self, length, training=False, seed=None,
                   num_parallel_calls=tf.data.AUTOTUNE, epoch=None, sound_crops=None,
                   seek=True):
        """`(waveform, label)` pairs of `length` samples, read as they are needed.

        The same elements as `ClipSet.to_dataset`: a seeded random crop (or
        random placement in silence) when `training`, a centred one
        otherwise. Files that fail are skipped and recorded in `skips`.
        `epoch` (a `tf.Variable`, see `keras_speechmix.epochs`) makes order
        and crops a function of `(seed, epoch)`, for exact resumption;
        `sound_crops` redraws quiet training crops, as for `ClipSet`.

        Training crops are read by seeking (`seek=True`): each file's length
        comes from its header, read once (`spans`); the crop's offset is
        drawn from that length exactly as `fix_length` draws it on the whole
        clip (`keras_speechmix.audio.decode.crop_window`, same seed, same
        offset), and only the frames the crop needs are decoded and
        resampled (`keras_speechmix.audio.segments`): the same samples as
        cutting the crop from the whole decoded clip, to float round-off.
        With `trim_silence`, each file is decoded whole once to find its
        first and last loud samples (kept as two ints). Decoded whole on
        every read, as with `seek=False`: `sound_crops` (it compares each
        crop with the whole clip's level), evaluation crops, MP3 and Opus
        files (their headers' lengths are not exact), and remote paths.

        Example:

        >>> # batches = partner_batches(files.to_dataset(16000, training=True, seed=0)
        >>> #                           .shuffle(1000, seed=0), 32, num_classes=10, ...)
        """
        if not isinstance(length, (int, np.integer)) or length <= 0:
            raise ValueError(f"to_dataset: length must be a positive int; got {length!r}")
        length = int(length)

        def seeds():
            if epoch is not None:
                return epoch_seeds((seed or 0) + 1, epoch)
            return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(
                2, drop_remainder=True)

        if training and seek and sound_crops is None:
            return self._seeking_crops(length, seed, num_parallel_calls, epoch, seeds)
        data = self.read(training, seed, num_parallel_calls, epoch)
        if not training:
            return data.map(lambda w, y: (audio.fix_length(w, length, "center"), y),
                            num_parallel_calls=num_parallel_calls, deterministic=True)
        return tf.data.Dataset.zip((data, seeds())).map(
            lambda pair, s: (audio.training_crop(pair[0], length, s, sound_crops), pair[1]),
            num_parallel_calls=num_parallel_calls, deterministic=True)


def _was_read(wave, ok, label):
    return ok


def _without_flag(wave, ok, label):
    return wave, label


def _with_span(span):
    def with_span(path, label):
        return (path, *span(path), label)

    return with_span


def _spanned(path, frames, rate_in, first, n, whole, ok, label):
    return ok


def _without_span_flag(path, frames, rate_in, first, n, whole, ok, label):
    return path, frames, rate_in, first, n, whole, label


def list_files(spec, sample_rate, extensions=datasets.AUDIO_EXTENSIONS):
    """Lists a dataset's files and labels without decoding them.

    Args:
        spec: A folder of class folders, a CSV file (`path` and `label`
            columns, optional `fold` and `group`; or a `labels` column with
            several comma-separated labels per row for multi-label data), or
            `"fsdd:DIR"`.
        sample_rate: The rate every file is resampled to when read.
        extensions: Audio file extensions, for folders.

    Returns:
        A `FileSet`; files the listing itself left out (e.g. FSDD names that
        do not parse, empty class folders) are in its `report`.

    Example:

    >>> files = list_files("fsdd:~/data/fsdd", sample_rate=16000)  # doctest: +SKIP
    >>> train = files.subset(files.folds != 1)  # doctest: +SKIP
    """
    listing = datasets.listing(spec, extensions=extensions)
    items = listing.items
    if not items:
        raise ValueError(f"{listing.source}: no audio files found{listing.hint}")
    if listing.multi_label:
        labels = np.zeros((len(items), len(listing.class_names)), np.float32)
        for row, item in enumerate(items):
            labels[row, item["label"]] = 1.0
    else:
        labels = [item["label"] for item in items]
    folds = [item.get("fold") for item in items]
    groups = [item.get("group") for item in items]
    keys = sorted({k for item in items for k in item.get("meta", {})})
    return FileSet(
        [item["path"] for item in items], labels, listing.class_names, sample_rate,
        folds=None if any(f is None for f in folds) else folds,
        groups=None if any(g is None for g in groups) else groups,
        meta={k: [item["meta"][k] for item in items] for k in keys},
        report=listing.report)


def predict_files(model, files, length, crops=10, batch_size=64):
    """Class probabilities per readable file, averaged over evenly spaced crops.

    The streaming counterpart of `experiment.predict_clips`: files no longer
    than `length` are zero-padded and predicted once, longer ones get
    `crops` evenly spaced windows. Files that fail to decode are skipped
    (and recorded in `files.skips`).

    Returns:
        `(probabilities, labels)` for the files read, in set order.

    Example:

    >>> # probabilities, labels = predict_files(model, test_files, 16000)
    """
    length = int(length)

    def windows(wave, label):
        crops_ = tf.cond(
            tf.shape(wave)[0] <= length,
            lambda: tf.pad(wave, [[0, length - tf.shape(wave)[0]]])[None],
            lambda: audio.multi_crop(wave, length, crops))
        return crops_, label

    data = files.read().map(windows, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=True).enumerate()
    # One window per element, tagged with its clip, so clips of any length batch.
    flat = data.flat_map(lambda k, pair: tf.data.Dataset.from_tensor_slices(pair[0]).map(
        lambda w: (w, k, pair[1])))
    totals, counts, labels = {}, {}, {}
    for x, owner, label in flat.batch(batch_size):
        probabilities = np.asarray(model(x, training=False))
        for k, p, y in zip(owner.numpy(), probabilities, label.numpy()):
            totals[k] = totals.get(k, 0.0) + p
            counts[k] = counts.get(k, 0) + 1
            labels[k] = y
    order = sorted(totals)
    if not order:
        raise ValueError(f"predict_files: none of the {len(files)} files could be read")
    return (np.stack([totals[k] / counts[k] for k in order]),
            np.stack([labels[k] for k in order]))
