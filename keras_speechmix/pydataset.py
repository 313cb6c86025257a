"""`PartnerBatches`: SpeechMix batches as a `keras.utils.PyDataset`.

The loader for Keras 3 without TensorFlow (JAX or PyTorch backends): it
yields what `partner_batches` yields, with plans drawn by the NumPy
`PlanSampler`.
"""

import math
import random
import sys
import threading

import keras
import numpy as np

from keras_speechmix.gain import gain_db_numpy
from keras_speechmix.plans import (PlanSampler, check_args, current, label_ids,
                                   label_kind)

__all__ = ["PartnerBatches"]

# Plans and mixed targets are drawn for up to this many batches at once:
# one vectorised draw costs about what one batch's does, so a batch then
# costs little more than gathering its clips; the bound keeps the memory of
# the (batches, B, B) partner scores small.
_CHUNK = 256


def _replicas_in_sync():
    # partner_batches' default, without importing TensorFlow: only a
    # tf.distribute strategy splits each batch across replicas.
    tf = sys.modules.get("tensorflow")
    if tf is None or keras.backend.backend() != "tensorflow":
        return 1
    return tf.distribute.get_strategy().num_replicas_in_sync


def _check_source(name, source):
    if not (hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise ValueError(
            f"`{name}` must be an array or an indexable clip source (with "
            "__len__ and __getitem__ returning one clip); received "
            f"{type(source).__name__}.")
    if len(source) == 0:
        raise ValueError(f"`{name}` holds no clip.")


class PartnerBatches(keras.utils.PyDataset):
    """SpeechMix batches for `fit` on any backend: `partner_batches` as a PyDataset.

    Yields `((x, plan), y_mixed)` or `((x, plan), y_mixed, weight_mixed)`
    exactly as `keras_speechmix.partner_batches` does (same arguments, same
    rules; see `keras_speechmix.plans`), from NumPy arrays or from any
    indexable clip source, without TensorFlow: train `SpeechMix(model)` on it
    with the JAX or PyTorch backend and only Keras installed.

    Clips are reshuffled each epoch (Keras calls `on_epoch_end`), and every
    draw of batch `i` in epoch `e` comes from `seed`, `e` and `i` alone, so
    runs repeat for a seed whatever order or threads (`workers`) fetch the
    batches, and each epoch draws new plans.

    Args:
        x: inputs, one row per clip: a NumPy array, or any object with
            `__len__` and `__getitem__` returning one clip (a list of
            waveforms, a lazy decoder); clips are stacked into batches, so
            they must share a shape, after `transform`.
        y: labels, one per clip: integer ids `(N,)`, one-hot or multi-hot
            `(N, C)`, or frame-level `(N, T, C)`.
        batch_size: clips per batch (the global batch under
            `tf.distribute`).
        num_classes, mix_points, alpha, ratio, partners, per_sample, label_smoothing, drop_remainder, label_mode, prob, first_dominant, sample_rate: as
            in `partner_batches`. `alpha` and `prob` may be
            `keras.Variable`s, read for each batch (with `workers`, a few
            prefetched batches may use the previous value).
        seed: integer seed of every draw; `None` draws one from Python's
            `random` (so `keras.utils.set_random_seed` makes runs repeat).
        num_replicas: replicas each batch is split across; partners stay in
            each replica's shard. Defaults to the `tf.distribute` strategy's
            `num_replicas_in_sync` where TensorFlow is the backend and
            already loaded, else 1 (the JAX distribution API partitions the
            global batch itself: keep 1 there).
        background: optional array or indexable source of inputs shaped
            like `x` (noise, another domain), reshuffled each epoch and
            repeated as needed: each clip is mixed with a background clip
            and keeps its own target (see `partner_batches`).
        sample_weight: optional float weights `(N,)`, mixed like targets.
        groups: optional integer group per clip `(N,)` (a speaker, one
            recording's crops): clips of one group are never paired.
        transform: optional function `transform(clip, rng)` returning the
            clip to batch, called on each clip (and background clip) with
            the batch's `np.random.Generator`, e.g. a seeded random crop of
            variable-length waveforms.
        shuffle: reshuffle the clips each epoch (as `fit(x, y)` does).
        workers, use_multiprocessing, max_queue_size: as
            `keras.utils.PyDataset` takes them.

    Attributes:
        sampler: the `PlanSampler` that draws each batch's plan.
        epoch: the epoch whose order and plans are drawn; `on_epoch_end`
            advances it (set it to resume at a given epoch).

    Example:

    >>> import numpy as np
    >>> x, y = np.random.rand(32, 16).astype("float32"), np.arange(32) % 4
    >>> batches = PartnerBatches(x, y, 8, num_classes=4, mix_points=2, seed=0)
    >>> (xb, plan), yb = batches[0]
    >>> len(batches), sorted(plan), xb.shape, yb.shape
    (4, ['partner', 'point', 'ratio'], (8, 16), (8, 4))

    Variable-length waveforms with a seeded random crop:

    >>> waves = [np.random.rand(n).astype("float32") for n in range(100, 132)]
    >>> crop = lambda w, rng: w[(s := rng.integers(len(w) - 90)):s + 90]
    >>> batches = PartnerBatches(waves, y, 8, num_classes=4, mix_points=2,
    ...                          transform=crop, seed=0)
    >>> batches[1][0][0].shape
    (8, 90)
    """

    def __init__(self, x, y, batch_size, *, num_classes, mix_points,
                 alpha=1.0, ratio="beta", partners="random", per_sample=True,
                 label_smoothing=0.0, drop_remainder=True, seed=None,
                 label_mode="weighted", prob=1.0, first_dominant=False,
                 num_replicas=None, sample_rate=None, background=None,
                 sample_weight=None, groups=None, transform=None, shuffle=True,
                 workers=1, use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        _check_source("x", x)
        y = np.asarray(y)
        named = {"x": x, "y": y}
        if sample_weight is not None:
            named["sample_weight"] = sample_weight = np.asarray(sample_weight, np.float32)
        if groups is not None:
            named["groups"] = groups = np.asarray(groups)
        if len({len(v) for v in named.values()}) != 1:
            raise ValueError(
                f"{', '.join(f'`{k}`' for k in named)} must have one entry "
                "per clip each; received lengths "
                f"{ {k: len(v) for k, v in named.items()} }.")
        if num_replicas is None:
            num_replicas = _replicas_in_sync()
        check_args(num_classes=num_classes, mix_points=mix_points,
                   alpha=current(alpha), ratio=ratio, partners=partners,
                   label_smoothing=label_smoothing, label_mode=label_mode,
                   prob=current(prob), num_replicas=num_replicas,
                   batch_size=batch_size, drop_remainder=drop_remainder)
        kind = label_kind(y, num_classes)
        if drop_remainder and batch_size > len(y):
            raise ValueError(
                f"`batch_size`={batch_size} is larger than the {len(y)} clips: "
                "with drop_remainder=True there would be no batch.")
        if transform is not None and not callable(transform):
            raise ValueError(
                "`transform` must be a function (clip, rng) -> clip; received "
                f"{type(transform).__name__}.")
        if ratio == "bc" and np.ndim(x[0]) not in (1, 2):
            raise ValueError(
                "ratio='bc' measures waveform gains: x must be a waveform of "
                f"shape (samples,) or (samples, 1); received shape "
                f"{np.shape(x[0])}.")
        if background is not None:
            _check_source("background", background)
            if transform is None and np.shape(background[0]) != np.shape(x[0]):
                raise ValueError(
                    f"`background` clips have shape {np.shape(background[0])}, "
                    f"but the clips of x have shape {np.shape(x[0])}.")
        if seed is None:
            seed = random.randint(0, 2**31 - 1)
        self.sampler = PlanSampler(
            num_classes=num_classes, mix_points=mix_points, alpha=alpha,
            ratio=ratio, partners=partners, per_sample=per_sample,
            label_smoothing=label_smoothing, label_mode=label_mode, prob=prob,
            first_dominant=first_dominant, num_replicas=num_replicas,
            sample_rate=sample_rate)
        self.x, self.y = x, y
        self.sample_weight, self.groups = sample_weight, groups
        self.background, self.transform = background, transform
        self.batch_size, self.drop_remainder = batch_size, drop_remainder
        self.seed, self.shuffle = seed, shuffle
        self._kind = kind
        # Label ids only where partners depend on labels or groups.
        self._ids = (label_ids(y, kind) if partners != "random" or groups is not None
                     else None)
        # A clip's gain never changes unless a transform crops it: measure once.
        self._gains = (np.full(len(y), np.nan, np.float32)
                       if ratio == "bc" and transform is None and background is None
                       else None)
        rounding = math.floor if drop_remainder else math.ceil
        self._length = rounding(len(y) / batch_size)
        # Frame-level targets are large: keep a chunk's targets near 16 MB.
        target_bytes = 4 * batch_size * max(int(np.prod(y.shape[1:])), num_classes)
        self._chunk_batches = int(np.clip(2**24 // target_bytes, 1, _CHUNK))
        self._lock = threading.Lock()
        self.epoch = 0

    @property
    def epoch(self):
        return self._epoch

    @epoch.setter
    def epoch(self, value):
        self._epoch = int(value)
        self._order = self._permutation(len(self.y), 0)
        if self.background is not None:
            self._background_order = self._permutation(len(self.background), 1)
        self._plans = {}

    def _rng(self, *stream):
        # Every draw depends on (seed, epoch, stream) only, not on which
        # thread or process asks first.
        return np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(self._epoch,) + stream))

    def _permutation(self, size, stream):
        if not self.shuffle:
            return np.arange(size)
        return self._rng(stream).permutation(size)

    def _chunk(self, chunk, stream, first, count, size):
        """Batches first .. first + count - 1: plans and mixed targets, drawn once."""
        drawn = self._plans.get(chunk)
        if drawn is None:
            with self._lock:
                drawn = self._plans.get(chunk)
                if drawn is None:
                    rows = self._order[first * self.batch_size:][:count * size]
                    rows = rows.reshape(count, size)
                    plan = self.sampler.draw(
                        self._rng(*stream), count, size,
                        ids=None if self._ids is None else self._ids[rows],
                        groups=None if self.groups is None else self.groups[rows],
                        background=self.background is not None)
                    targets, weights = self.sampler.mix(
                        plan, self.sampler.targets(self.y[rows], self._kind),
                        None if self.sample_weight is None else self.sample_weight[rows])
                    drawn = self._plans[chunk] = (plan, targets, weights)
        return drawn

    def _drawn(self, index):
        full = len(self.y) // self.batch_size
        if index < full:
            chunk, offset = divmod(index, self._chunk_batches)
            first = chunk * self._chunk_batches
            drawn = self._chunk(chunk, (2, chunk), first,
                                min(self._chunk_batches, full - first), self.batch_size)
        else:  # the last, partial batch (drop_remainder=False)
            offset, drawn = 0, self._chunk("last", (4,), index, 1,
                                           len(self.y) % self.batch_size)
        plan, targets, weights = drawn
        return ({k: v[offset] for k, v in plan.items()}, targets[offset],
                None if weights is None else weights[offset])

    def __len__(self):
        return self._length

    def on_epoch_end(self):
        self.epoch += 1

    def _clips(self, source, index, rng):
        if self.transform is None and isinstance(source, np.ndarray):
            return source[index]
        clips = (source[int(i)] for i in index)
        if self.transform is not None:
            clips = (self.transform(clip, rng) for clip in clips)
        return np.stack(list(clips))

    def __getitem__(self, index):
        if not 0 <= index < self._length:
            raise IndexError(f"Batch {index} is out of range for {self._length} batches.")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = self._rng(3, index) if self.transform is not None else None
        x = self._clips(self.x, rows, rng)
        plan, targets, weights = self._drawn(index)
        background = gains = None
        if self.background is not None:
            start = index * self.batch_size
            picks = self._background_order[
                np.arange(start, start + len(rows)) % len(self.background)]
            background = self._clips(self.background, picks, rng)
        if self._gains is not None:
            gains = self._gains[rows]
            missing = np.isnan(gains)
            if missing.any():
                gains[missing] = gain_db_numpy(x[missing], self.sampler.sample_rate)
                self._gains[rows[missing]] = gains[missing]
        if background is not None or self.sampler.ratio == "bc":
            x, extra = self.sampler.inputs(x, background, gains)
            plan.update(extra)
        if weights is None:
            return (x, plan), targets
        return (x, plan), targets, weights
