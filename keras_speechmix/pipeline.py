"""The tf.data side of SpeechMix: batches that carry their own mixing plan.

All randomness of SpeechMix lives here, so that the model holds no random op
and `fit` needs no custom train step. Each batch gets a *plan*, a dict of
per-sample tensors:

- `"partner"` int32 `(B,)`: index of each clip's partner inside the batch
  (inside each replica's shard of it, under `tf.distribute`).
- `"ratio"` float32 `(B,)`: the mixing ratio r; the mixed target is
  `r * y + (1 - r) * y[partner]`. Rows left unmixed have r = 1.
- `"point"` int32 `(B, mix_points)`: one-hot of the active mixing point,
  repeated on every row (rows are split across replicas); all zeros when the
  batch is not mixed (see `prob`).
- `"gain"` float32 `(B,)`, only with `ratio="bc"`: each clip's gain in dB.
- `"background"` int32 `(2B,)`, only with `background=`: 1 on the rows that
  hold background clips (each replica's rows are `[clips; backgrounds]`).

Elements come out as `((x, plan), y_mixed)` or `((x, plan), y_mixed,
weight_mixed)`, ready for `fit` on the training view `SpeechMix(model)`.

The sampling rules are written down in `keras_speechmix.plans`, whose NumPy
`PlanSampler` draws the same plans for loaders other than tf.data
(`PartnerBatches`, grain); tests check that both follow them.
"""

import math
import random

import tensorflow as tf

from keras_speechmix.epochs import epoch_order, epoch_seeds
from keras_speechmix.gain import gain_db
from keras_speechmix.plans import check_args

__all__ = ["partner_batches", "PLAN_KEYS"]

PLAN_KEYS = ("partner", "ratio", "point")


def _check_args(batch_size, num_classes, mix_points, alpha, ratio, partners,
                label_smoothing, label_mode, prob, num_replicas,
                drop_remainder):
    # One set of checks, and so the same errors, for this and PartnerBatches.
    check_args(num_classes=num_classes, mix_points=mix_points,
               alpha=_initial(alpha), ratio=ratio, partners=partners,
               label_smoothing=label_smoothing, label_mode=label_mode,
               prob=_initial(prob), num_replicas=num_replicas,
               batch_size=batch_size, drop_remainder=drop_remainder)


def _initial(value):
    # Variables let callbacks change alpha or prob between epochs; check the
    # value they start from.
    if isinstance(value, tf.Variable):
        return float(value.numpy())
    return value


def _knob(value):
    if isinstance(value, tf.Variable):
        return tf.cast(value, tf.float32)
    return float(value)


def _split_element(spec):
    """Returns a function mapping an element to (x, y, weight, group)."""
    if isinstance(spec, dict):
        unknown = set(spec) - {"x", "y", "sample_weight", "group"}
        if not {"x", "y"} <= set(spec) or unknown:
            raise ValueError(
                "A dict element must have keys 'x' and 'y' and optionally "
                "'sample_weight' and 'group'; received keys "
                f"{sorted(spec)}."
            )
        return lambda e: (e["x"], e["y"], e.get("sample_weight"), e.get("group"))
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        return lambda e: (e[0], e[1], e[2] if len(e) == 3 else None, None)
    raise ValueError(
        "partner_batches expects a dataset of (x, y), (x, y, sample_weight) "
        "or {'x', 'y', 'sample_weight', 'group'} elements; received "
        f"element_spec={spec}."
    )


def _check_label_spec(y_spec, num_classes):
    shape = y_spec.shape
    if shape.rank == 0:
        if not y_spec.dtype.is_integer:
            raise ValueError(
                "Sparse labels must be integers; received labels of dtype "
                f"{y_spec.dtype.name}."
            )
        return "sparse"
    if shape.rank in (1, 2) and shape[-1] == num_classes:
        return "dense"
    raise ValueError(
        "Labels must be sparse integers of shape (), one-hot/multi-hot of "
        f"shape ({num_classes},) or frame-level of shape (frames, "
        f"{num_classes}) per element; received label shape {shape} with "
        f"num_classes={num_classes}. A dataset batched with a known batch "
        "size (drop_remainder=True) is not recognised as batched: pass "
        "dataset.unbatch()."
    )


def _is_batched(spec, y_spec, num_classes):
    """Whether `.batch()` made the elements: see `partner_batches`' rule."""
    components = tf.nest.flatten(spec)
    if not all(isinstance(c, tf.TensorSpec) and c.shape.rank
               and c.shape[0] is None for c in components):
        return False
    try:
        _check_label_spec(tf.TensorSpec(y_spec.shape[1:], y_spec.dtype), num_classes)
    except ValueError:
        return False
    return True


def _from_arrays(arrays, seed, epoch=None):
    """A dataset of the rows of `(x, y[, sample_weight])`, reshuffled each epoch."""
    if any(isinstance(a, tf.data.Dataset) for a in arrays):
        raise ValueError(
            "`dataset` must be one tf.data.Dataset; received a "
            f"{type(arrays).__name__} of {len(arrays)} items. (With "
            "subset='both', audio_dataset_from_directory returns (train, "
            "validation): pass the training dataset.)")
    if not 2 <= len(arrays) <= 3 or any(not getattr(a, "shape", None)
                                        for a in arrays):
        raise ValueError(
            "`dataset` given as arrays must be a tuple (x, y) or (x, y, "
            "sample_weight) of NumPy arrays with one row per clip; received "
            f"{len(arrays)} items of shapes "
            f"{[tuple(getattr(a, 'shape', ())) for a in arrays]}.")
    rows = {len(a) for a in arrays}
    if len(rows) != 1:
        raise ValueError(
            "x, y and sample_weight must have one row per clip each; "
            f"received shapes {[tuple(a.shape) for a in arrays]}.")
    count = rows.pop()
    tensors = tuple(tf.convert_to_tensor(a) for a in arrays)
    # Reshuffled each epoch, as fit(x, y) shuffles arrays, so that batches
    # (and so partners) change; shuffling row numbers keeps the rows out of
    # a shuffle buffer.
    order = epoch_order(count, seed, epoch) if epoch is not None else (
        tf.data.Dataset.range(count).shuffle(count, seed=seed,
                                             reshuffle_each_iteration=True))
    return order.map(lambda i: tuple(tf.gather(t, i) for t in tensors))


def _beta(seed, shape, alpha):
    seed_a, seed_b = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    a = tf.random.stateless_gamma(shape, seed_a, alpha=alpha)
    b = tf.random.stateless_gamma(shape, seed_b, alpha=alpha)
    # Both draws can underflow to 0 for tiny alpha; call that an even mix.
    total = a + b
    return tf.where(total > 0, a / tf.where(total > 0, total, 1.0), 0.5)


def _shuffle_within_shards(seed, batch, shard):
    # Adding the shard number keeps every permuted index inside its shard.
    position = tf.range(batch)
    keys = tf.random.stateless_uniform([batch], seed) + tf.cast(
        position // shard, tf.float32)
    return tf.argsort(keys, stable=True)


def _sample_partners(seed, batch, shard, label_key, group, partners):
    """Samples a partner per row under constraints; returns global indices."""
    position = tf.range(batch)
    same_shard = tf.equal(position[:, None] // shard, position[None, :] // shard)
    allowed = same_shard & tf.logical_not(tf.eye(batch, dtype=tf.bool))
    if group is not None:
        allowed &= tf.not_equal(group[:, None], group[None, :])
    same_label = tf.reduce_all(
        tf.equal(label_key[:, None], label_key[None, :]), axis=-1)
    preferred = allowed
    log_weight = tf.zeros([batch, batch])
    if partners == "different_class":
        preferred = allowed & tf.logical_not(same_label)
    elif partners == "balanced":
        # Weight each candidate by 1 / (its class count in the shard), so every
        # class is an equally likely partner however long-tailed the data.
        count = tf.reduce_sum(tf.cast(same_label & same_shard, tf.float32), axis=1)
        log_weight += -tf.math.log(count)[None, :]
    has_preferred = tf.reduce_any(preferred, axis=1, keepdims=True)
    candidates = tf.where(has_preferred, preferred, allowed)
    gumbel = -tf.math.log(-tf.math.log(
        tf.random.stateless_uniform([batch, batch], seed, minval=1e-20, maxval=1.0)))
    score = tf.where(candidates, log_weight + gumbel, -math.inf)
    choice = tf.argmax(score, axis=1, output_type=tf.int32)
    # Rows with no allowed partner at all pair with themselves (left unmixed).
    return tf.where(tf.reduce_any(candidates, axis=1), choice, position)


def partner_batches(dataset, batch_size, *, num_classes, mix_points,
                    alpha=1.0, ratio="beta", partners="random",
                    per_sample=True, label_smoothing=0.0,
                    drop_remainder=True, seed=None, label_mode="weighted",
                    prob=1.0, first_dominant=False, num_replicas=None,
                    sample_rate=None, background=None, epoch=None):
    """Batches a dataset and adds each batch's SpeechMix plan and mixed labels.

    Each batch gets a shuffled partner batch (partner indices into itself),
    ratios r ~ Beta(alpha, alpha), one mixing point drawn uniformly from
    `range(mix_points)`, and targets mixed with the same ratios. `HiddenMixup`
    layers inside `SpeechMix(model)` read the same plan, so activations and
    labels are always mixed alike.

    The dataset may come batched, as `keras.utils.audio_dataset_from_directory`
    and `.batch()` give it: it is then unbatched and batched again by
    `batch_size`. The rule: a dataset is taken as batched when every
    component has an unknown leading dimension (what `.batch()` leaves
    without `drop_remainder`) and the labels have one dimension more than a
    clip's: `(None,)` integers, `(None, num_classes)` or `(None, frames,
    num_classes)`. So a batch of sparse labels, `(None,)`, is told apart from
    one clip's one-hot labels, `(num_classes,)`, by its unknown length. Two
    cases that the specs cannot settle: a dataset batched with
    `drop_remainder=True` has a known batch size and is not recognised (pass
    `dataset.unbatch()`), and unbatched frame-level data whose every
    component has an unknown frame count is taken as batched (give it a
    known frame count, e.g. with `tf.ensure_shape`). A rebatched dataset's
    length is unknown until its first pass, so Keras says once, after the
    first epoch, that the input "ran out of data"; training goes on.

    Note: the default `alpha=1.0` (r uniform on [0, 1]) is what the SpeechMix
    authors' code draws (`r ~ U(0, 1)` per sample, as in BC learning); Manifold
    Mixup used alpha=2.0 for hidden mixing and input mixup often 0.2-1.0.

    The same `seed` gives the same plans; each pass over the data (epoch)
    draws new ones.

    Args:
        dataset: a `tf.data.Dataset`, unbatched or batched (see above), of
            `(x, y)`, `(x, y, sample_weight)`, or dicts with keys `x`, `y`
            and optionally `sample_weight` and `group` (an integer; clips
            sharing a group, such as one speaker or crops of one recording,
            are never paired). Or NumPy arrays `(x, y)` or `(x, y,
            sample_weight)`, one row per clip, as `fit(x, y)` takes them;
            their rows are reshuffled each epoch (seeded by `seed`), as `fit`
            shuffles arrays.
        batch_size: clips per batch (global batch under `tf.distribute`).
        num_classes: number of classes (>= 2).
        mix_points: number of mixing points of the model
            (`SpeechMix(model).num_mix_points`).
        alpha: Beta(alpha, alpha) parameter of the ratio, finite and > 0.
        ratio: `"beta"` mixes activations by r; `"bc"` is BC learning's
            sound-pressure-aware ratio: the pipeline measures each waveform's
            gain (`x` must be `(samples,)` waveforms) and `HiddenMixup` layers
            (rule `"auto"`) then mix by the gain-corrected p and normalise
            power, while the label keeps r.
        partners: `"random"` (a shuffle of the batch), `"different_class"`
            (a partner of another class where the batch has one, else
            random, as BC learning pairs clips) or `"balanced"` (partner
            classes equally likely, for long-tailed data).
        per_sample: one ratio per clip (True, as the authors) or one per
            batch (False, as Manifold Mixup).
        label_smoothing: s in [0, 1); timm's rule, applied before mixing:
            off-value s / C, on-value 1 - s + s / C.
        drop_remainder: drop a last partial batch. If kept, a last batch of
            one clip has no partner and is left unmixed.
        seed: integer seed of every draw; `None` draws one from Python's
            `random` (so `keras.utils.set_random_seed` makes runs repeat).
        label_mode: `"weighted"` (r-weighted targets) or `"union"` (the
            element-wise max, for multi-label tagging).
        prob: fraction of batches that are mixed; the rest pass clean.
        first_dominant: use max(r, 1 - r) so the first clip dominates.
        num_replicas: replicas the global batch is split across; partners
            stay inside each replica's shard. Defaults to the current
            `tf.distribute` strategy's `num_replicas_in_sync`.
        sample_rate: with `ratio="bc"`, the waveforms' rate for A-weighted
            gains; `None` uses mean-square gains.
        background: optional unbatched dataset of inputs shaped like `x`
            (noise, another domain), repeated as needed. Each clip is then
            mixed with a background clip instead of a batch partner, at the
            active point, and keeps its own target (the background carries no
            label). Each replica's batch becomes `[clips; backgrounds]`, and
            `SpeechMix` drops the background rows from its output.
        epoch: optional `tf.Variable` holding the current epoch
            (`keras_speechmix.epochs.EpochClock`). Plans (and the order of
            array rows) are then a function of `(seed, epoch, batch)`, so a
            run resumed at an epoch gets the plans of an uninterrupted one;
            without it they come from seed generators that move on with
            every iterator made.

    Returns:
        A `tf.data.Dataset` of `((x, plan), y_mixed)` or `((x, plan), y_mixed,
        weight_mixed)`, targets float32 `(B, num_classes)` (or `(B, frames,
        num_classes)`).

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices(
    ...     (np.random.rand(8, 16).astype("float32"), np.arange(8) % 4))
    >>> batches = partner_batches(ds, 4, num_classes=4, mix_points=2, seed=0)
    >>> (x, plan), y = next(iter(batches))
    >>> sorted(plan), tuple(y.shape)
    (['partner', 'point', 'ratio'], (4, 4))

    Batched datasets (such as `keras.utils.audio_dataset_from_directory`
    gives) and arrays work as they are:

    >>> waves, labels = np.random.rand(8, 16).astype("float32"), np.arange(8) % 4
    >>> batched = tf.data.Dataset.from_tensor_slices((waves, labels)).batch(3)
    >>> (x, plan), y = next(iter(partner_batches(batched, 4, num_classes=4,
    ...                                          mix_points=2, seed=0)))
    >>> tuple(x.shape), tuple(y.shape)
    ((4, 16), (4, 4))
    >>> (x, plan), y = next(iter(partner_batches((waves, labels), 4,
    ...                                          num_classes=4, mix_points=2)))
    >>> tuple(x.shape)
    (4, 16)
    """
    if seed is None:
        seed = random.randint(0, 2**31 - 1)
    dataset = _as_dataset(dataset, seed, epoch)
    if num_replicas is None:
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    _check_args(batch_size, num_classes, mix_points, alpha, ratio, partners,
                label_smoothing, label_mode, prob, num_replicas, drop_remainder)
    dataset, split, label_kind = _unbatched_layout(dataset, num_classes, ratio, background)
    shard = batch_size // num_replicas

    def add_plan(element, batch_seed, extra=None):
        x, y, weight, group = split(element)
        seeds = tf.unstack(tf.random.experimental.stateless_split(batch_seed, 4))
        batch = tf.shape(y)[0]
        y, label_key = _one_hot_targets(y, label_kind, num_classes, label_smoothing, batch)
        r, point, mixed = _draw_plan(seeds[0], seeds[1], batch, per_sample, alpha,
                                     first_dominant, mix_points, prob)
        weights = () if weight is None else (tf.cast(weight, tf.float32),)
        if extra is not None:
            x, plan = _with_background(x, extra, r, mixed, batch, shard)
            # The background carries no label: each clip keeps its target.
            targets = (y,) + weights
        else:
            partner = _draw_partners(seeds[2], batch, shard, label_key, group, partners)
            # A clip paired with itself, or a batch left clean, keeps r = 1:
            # the layer's rules are then exact identities (the "sound" rule
            # would otherwise rescale a self-mix).
            r = tf.where(mixed & tf.not_equal(partner, tf.range(batch)), r, 1.0)
            plan = {"partner": partner - (tf.range(batch) // shard) * shard,
                    "ratio": r}
            targets = (_mix_targets(y, r, partner, label_mode),) + tuple(
                _mix_targets(w, r, partner, "weighted") for w in weights)
        point_row = tf.one_hot(point, mix_points, dtype=tf.int32) * tf.cast(
            mixed, tf.int32)
        plan["point"] = tf.tile(point_row[None, :], [tf.shape(plan["ratio"])[0], 1])
        if ratio == "bc":
            plan["gain"] = gain_db(x, sample_rate)
        return ((x, plan),) + targets

    parts = _batches_with_seeds(dataset, batch_size, drop_remainder, seed, epoch, background)
    return tf.data.Dataset.zip(parts).map(
        add_plan, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _as_dataset(dataset, seed, epoch):
    if isinstance(dataset, (tuple, list)):
        return _from_arrays(dataset, seed, epoch)
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`dataset` must be a tf.data.Dataset or a tuple of NumPy arrays "
            f"(x, y) or (x, y, sample_weight); received {type(dataset).__name__}.")
    return dataset


def _unbatched_layout(dataset, num_classes, ratio, background):
    """`(dataset unbatched, element splitter, label kind)`, the specs checked."""
    split = _split_element(dataset.element_spec)
    x_spec, y_spec, _, _ = split(dataset.element_spec)
    if _is_batched(dataset.element_spec, y_spec, num_classes):
        dataset = dataset.unbatch()
        x_spec, y_spec, _, _ = split(dataset.element_spec)
    label_kind = _check_label_spec(y_spec, num_classes)
    if ratio == "bc" and getattr(x_spec, "shape", None) is not None and (
            x_spec.shape.rank not in (1, 2)):
        raise ValueError(
            "ratio='bc' measures waveform gains: x must be a waveform of "
            f"shape (samples,) or (samples, 1); received shape {x_spec.shape}.")
    if background is not None:
        _check_background(background, x_spec)
    return dataset, split, label_kind


def _one_hot_targets(y, label_kind, num_classes, label_smoothing, batch):
    """`(targets as float one-hot rows, smoothed; the key partners match on)`."""
    if label_kind == "sparse":
        y = tf.cast(y, tf.int32)
        tf.debugging.assert_non_negative(
            y, message="partner_batches: labels must be >= 0")
        tf.debugging.assert_less(
            y, num_classes,
            message=f"partner_batches: labels must be < num_classes={num_classes}")
        label_key = y[:, None]
        y = tf.one_hot(y, num_classes, dtype=tf.float32)
    else:
        y = tf.cast(y, tf.float32)
        label_key = tf.reshape(y, [batch, -1])
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / num_classes
    return y, label_key


def _draw_plan(ratio_seed, point_seeds, batch, per_sample, alpha, first_dominant,
               mix_points, prob):
    """The batch's ratios `r`, its mixing point and whether it mixes at all."""
    ratio_shape = [batch] if per_sample else []
    r = tf.broadcast_to(_beta(ratio_seed, ratio_shape, _knob(alpha)), [batch])
    if first_dominant:
        r = tf.maximum(r, 1.0 - r)
    point_seed, mixed_seed = tf.unstack(
        tf.random.experimental.stateless_split(point_seeds, 2))
    point = tf.random.stateless_uniform([], point_seed, 0, mix_points, dtype=tf.int32)
    mixed = tf.random.stateless_uniform([], mixed_seed) < _knob(prob)
    return r, point, mixed


def _draw_partners(seed, batch, shard, label_key, group, partners):
    if partners == "random" and group is None:
        return _shuffle_within_shards(seed, batch, shard)
    return _sample_partners(seed, batch, shard, label_key, group, partners)


def _batches_with_seeds(dataset, batch_size, drop_remainder, seed, epoch, background):
    """`(batches, per-batch seeds[, background batches])`, to zip."""
    batched = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if epoch is not None:
        seeds = epoch_seeds(seed, epoch)
    else:
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True).batch(2)
    parts = (batched, seeds)
    if background is not None:
        parts += (background.repeat().batch(batch_size, drop_remainder=True),)
    return parts


def _mix_targets(values, r, partner, label_mode):
    r = tf.reshape(r, tf.concat([tf.shape(r), tf.ones([values.shape.rank - 1], tf.int32)], 0))
    other = tf.gather(values, partner)
    if label_mode == "union":
        return tf.where(r < 1.0, tf.maximum(values, other), values)
    return r * values + (1.0 - r) * other


def _check_background(background, x_spec):
    spec = getattr(background, "element_spec", None)
    if not isinstance(spec, tf.TensorSpec) or not isinstance(x_spec, tf.TensorSpec):
        raise ValueError(
            "`background` must be an unbatched tf.data.Dataset of single "
            "tensors shaped like the clips' x; received element_spec="
            f"{spec} for clips of spec {x_spec}.")
    if spec.dtype != x_spec.dtype or not spec.shape.is_compatible_with(x_spec.shape):
        raise ValueError(
            f"`background` elements have shape {spec.shape} and dtype "
            f"{spec.dtype.name}, but the clips' x has shape {x_spec.shape} "
            f"and dtype {x_spec.dtype.name}.")


def _with_background(x, background, r, mixed, batch, shard):
    """Lays each replica's shard out as [clips; backgrounds] and pairs them."""
    rows = tf.minimum(shard, batch)
    shards = batch // rows
    background = background[:batch]

    def per_shard(clips, extra):
        clips = tf.reshape(clips, tf.concat([[shards, rows], tf.shape(clips)[1:]], 0))
        extra = tf.reshape(extra, tf.concat([[shards, rows], tf.shape(extra)[1:]], 0))
        both = tf.concat([clips, extra], axis=1)
        return tf.reshape(both, tf.concat([[2 * batch], tf.shape(both)[2:]], 0))

    local = tf.range(rows) + rows  # every row of a shard points at a background
    plan = {
        "partner": per_shard(tf.tile(local, [shards]), tf.tile(local, [shards])),
        "ratio": per_shard(tf.where(mixed, r, 1.0), tf.ones([batch])),
        "background": per_shard(tf.zeros([batch], tf.int32), tf.ones([batch], tf.int32)),
    }
    return per_shard(x, tf.cast(background, x.dtype)), plan
