"""SpeechMix plans in NumPy: the sampling rules, without TensorFlow.

`PlanSampler` draws, for one batch, what `partner_batches` draws in tf.data,
with the same arguments. `PartnerBatches` (a `keras.utils.PyDataset`) and a
grain pipeline (`.random_map(PlanSampler(...))`) call it; `partner_batches`
keeps its own TensorFlow implementation of the same rules, which are the
specification both follow (tests/test_plans.py checks that the two draw
partners, ratios, points and targets with the same distributions):

1. Labels become float32 one-hot (sparse ids) or stay as given (one-hot,
   multi-hot `(B, C)`, frame-level `(B, T, C)`); label smoothing s then
   gives `y (1 - s) + s / C`, before any mixing.
2. The ratio is r = G1 / (G1 + G2) with G1, G2 ~ Gamma(alpha) (so
   r ~ Beta(alpha, alpha); 0.5 where both draws underflow), one per clip or
   one per batch (`per_sample=False`); `first_dominant` takes max(r, 1 - r).
3. The active point is uniform over `range(mix_points)`; the batch is mixed
   with probability `prob`, otherwise every row of `point` is zero.
4. Partners are drawn inside each replica's contiguous shard of
   `B / num_replicas` rows and given as indices local to the shard.
   `"random"` without groups is a uniform permutation of each shard (a clip
   may draw itself). Otherwise each row draws one partner among the allowed
   rows (same shard, not itself, another group), restricted to rows of
   another label where the shard has one (`"different_class"`), or with
   each candidate weighted by 1 / (count of its label in the shard)
   (`"balanced"`); a row with no allowed partner pairs with itself.
5. A row paired with itself, and every row of a batch left unmixed, get
   r = 1, so that the layers' rules are exact identities there.
6. Targets are `r y + (1 - r) y[partner]` (`"weighted"`) or, where r < 1,
   `max(y, y[partner])` (`"union"`); sample weights mix like weighted
   targets.
7. With a background batch, each shard's rows become `[clips; backgrounds]`:
   clip k pairs with background k at ratio r (1 if unmixed), background rows
   pair with themselves at 1, and targets and weights stay unmixed.
8. With `ratio="bc"` the plan carries each row's gain in dB
   (`keras_speechmix.gain`).
"""

import math

import numpy as np

from keras_speechmix.gain import gain_db_numpy

__all__ = ["PlanSampler", "check_args", "current", "label_ids", "label_kind"]

_RATIOS = ("beta", "bc")
_PARTNERS = ("random", "different_class", "balanced")
_LABEL_MODES = ("weighted", "union")


def check_args(*, num_classes, mix_points, alpha, ratio, partners,
               label_smoothing, label_mode, prob, num_replicas,
               batch_size=None, drop_remainder=True):
    """Checks the arguments `partner_batches` and `PartnerBatches` share.

    Both raise the same `ValueError`s, each naming the argument. `alpha` and
    `prob` are plain numbers here (a variable's current value).
    `batch_size=None` skips the checks that need the batch size.

    Example:

    >>> check_args(num_classes=4, mix_points=2, alpha=1.0, ratio="beta",
    ...            partners="random", label_smoothing=0.0,
    ...            label_mode="weighted", prob=1.0, num_replicas=1)
    >>> try:
    ...     check_args(num_classes=4, mix_points=2, alpha=0.0, ratio="beta",
    ...                partners="random", label_smoothing=0.0,
    ...                label_mode="weighted", prob=1.0, num_replicas=1)
    ... except ValueError as error:
    ...     print(str(error)[:7])
    `alpha`
    """
    def positive_int(name, value, minimum):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"`{name}` must be an integer >= {minimum}; received "
                f"{name}={value!r}."
            )

    positive_int("num_classes", num_classes, 2)
    positive_int("mix_points", mix_points, 1)
    if batch_size is not None:
        positive_int("batch_size", batch_size, 1)
    positive_int("num_replicas", num_replicas, 1)
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(
            "`alpha` (the Beta(alpha, alpha) parameter) must be a finite "
            f"number > 0; received alpha={alpha!r}."
        )
    for name, value, allowed in (("ratio", ratio, _RATIOS),
                                 ("partners", partners, _PARTNERS),
                                 ("label_mode", label_mode, _LABEL_MODES)):
        if value not in allowed:
            raise ValueError(
                f"`{name}` must be one of {allowed}; received {name}={value!r}."
            )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            "`label_smoothing` must be in [0, 1); received "
            f"label_smoothing={label_smoothing!r}."
        )
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"`prob` must be in [0, 1]; received prob={prob!r}.")
    if batch_size is None:
        return
    if prob > 0 and batch_size // num_replicas < 2:
        raise ValueError(
            "Mixing needs at least 2 clips per replica batch to find partners; "
            f"received batch_size={batch_size} over num_replicas={num_replicas}."
        )
    if batch_size % num_replicas:
        raise ValueError(
            f"`batch_size`={batch_size} must be divisible by "
            f"`num_replicas`={num_replicas}: partners are drawn inside each "
            "replica's equal shard of the batch."
        )
    if num_replicas > 1 and not drop_remainder:
        raise ValueError(
            "With num_replicas > 1 use drop_remainder=True: a short last batch "
            "is split unevenly across replicas and partner indices could "
            "cross shard boundaries."
        )


def current(value):
    """A knob's value now: variables (`keras.Variable`, `tf.Variable`) are read.

    Example:

    >>> current(0.5)
    0.5
    """
    if hasattr(value, "assign"):
        return float(np.asarray(value))
    return value


def label_kind(y, num_classes):
    """`"sparse"` or `"dense"` for a batch of labels; raises on any other shape.

    Example:

    >>> label_kind(np.array([0, 2, 1]), 3), label_kind(np.eye(3), 3)
    ('sparse', 'dense')
    """
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                "Sparse labels must be integers; received labels of dtype "
                f"{y.dtype.name}."
            )
        if y.size and y.min() < 0:
            raise ValueError(f"Labels must be >= 0; received {int(y.min())}.")
        if y.size and y.max() >= num_classes:
            raise ValueError(
                f"Labels must be < num_classes={num_classes}; received "
                f"{int(y.max())}.")
        return "sparse"
    if y.ndim in (2, 3) and y.shape[-1] == num_classes:
        return "dense"
    raise ValueError(
        "Labels must be sparse integers of shape (), one-hot/multi-hot of "
        f"shape ({num_classes},) or frame-level of shape (frames, "
        f"{num_classes}) per clip; received label shape {y.shape[1:]} with "
        f"num_classes={num_classes}."
    )


def _split(batch):
    """(x, y, sample_weight, group) of a batch given as a tuple or a dict."""
    if isinstance(batch, dict):
        unknown = set(batch) - {"x", "y", "sample_weight", "group"}
        if not {"x", "y"} <= set(batch) or unknown:
            raise ValueError(
                "A dict batch must have keys 'x' and 'y' and optionally "
                f"'sample_weight' and 'group'; received keys {sorted(batch)}.")
        return batch["x"], batch["y"], batch.get("sample_weight"), batch.get("group")
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1], batch[2] if len(batch) == 3 else None, None
    raise ValueError(
        "PlanSampler expects a batch (x, y), (x, y, sample_weight) or "
        "{'x', 'y', 'sample_weight', 'group'}; received "
        f"{type(batch).__name__}.")


def _beta(rng, alpha, shape):
    # Float32 draws, as tf.random.stateless_gamma makes them, so that tiny
    # alphas underflow alike.
    a = rng.standard_gamma(alpha, shape).astype(np.float32)
    b = rng.standard_gamma(alpha, shape).astype(np.float32)
    total = a + b
    return np.where(total > 0, a / np.where(total > 0, total, 1.0), 0.5).astype(np.float32)


def label_ids(y, kind):
    """An integer per label: equal labels (every entry equal) get equal ids.

    Example:

    >>> label_ids(np.array([[1, 0], [0, 1], [1, 0]]), "dense").tolist()
    [1, 0, 1]
    """
    if kind == "sparse":
        return y
    return np.unique(y.reshape(len(y), -1), axis=0, return_inverse=True)[1].reshape(-1)


def _sample_partners(rng, count, size, shard, ids, groups, partners):
    """Samples a partner per row under constraints, for `count` batches at once."""
    position = np.arange(size)
    shard_id = position // shard
    same_shard = shard_id[:, None] == shard_id[None, :]
    allowed = np.broadcast_to(same_shard & ~np.eye(size, dtype=bool), (count, size, size))
    if groups is not None:
        allowed = allowed & (groups[:, :, None] != groups[:, None, :])
    same_label = ids[:, :, None] == ids[:, None, :]
    preferred = allowed
    log_weight = np.zeros((count, 1, size))
    if partners == "different_class":
        preferred = allowed & ~same_label
    elif partners == "balanced":
        # 1 / (class count in the shard) per candidate: every class is an
        # equally likely partner however long-tailed the data.
        log_weight = -np.log((same_label & same_shard).sum(axis=2))[:, None, :]
    candidates = np.where(preferred.any(axis=2, keepdims=True), preferred, allowed)
    # Gumbel-max: one categorical draw per row, every row at once.
    gumbel = rng.gumbel(size=(count, size, size))
    score = np.where(candidates, log_weight + gumbel, -np.inf)
    return np.where(candidates.any(axis=2), score.argmax(axis=2), position)


def _mix_targets(values, r, partner, label_mode):
    """Mixes `(count, B, ...)` values with their partners' by `(count, B)` r."""
    r = r.reshape(r.shape + (1,) * (values.ndim - 2))
    other = values[np.arange(len(values))[:, None], partner]
    if label_mode == "union":
        return np.where(r < 1.0, np.maximum(values, other), values)
    return r * values + (1.0 - r) * other


def _per_shard(clips, extra, shard):
    """Interleaves two batches shard by shard: [clips; extra] per shard."""
    size = len(clips)
    rows = min(shard, size)
    clips = clips.reshape((size // rows, rows) + clips.shape[1:])
    extra = extra.reshape((size // rows, rows) + extra.shape[1:])
    both = np.concatenate([clips, extra], axis=1)
    return both.reshape((2 * size,) + both.shape[2:])


class PlanSampler:
    """Draws SpeechMix plans and mixed targets in NumPy, for any loader.

    The NumPy twin of `partner_batches`' sampling (same arguments, same
    rules: see this module's docstring), for loaders other than tf.data.
    Called on a batch, it returns the batch with its plan and mixed targets,
    as a grain random map does (`.random_map(sampler)`);
    `keras_speechmix.PartnerBatches` draws many batches' plans at once with
    `draw` and `mix`. It holds no random state: every draw comes from the
    `np.random.Generator` it is given.

    Args:
        num_classes: number of classes (>= 2).
        mix_points: the model's number of mixing points
            (`SpeechMix(model).num_mix_points`).
        alpha: Beta(alpha, alpha) parameter of the ratio; a number, or a
            `keras.Variable` read at each draw (so a callback can steer it).
        ratio: `"beta"`, or `"bc"` to add each waveform's gain to the plan
            (`x` must be `(B, samples)` waveforms).
        partners: `"random"`, `"different_class"` or `"balanced"`.
        per_sample: one ratio per clip (True) or one per batch.
        label_smoothing: s in [0, 1), applied before mixing.
        label_mode: `"weighted"` or `"union"`.
        prob: probability that a batch is mixed; a number or a variable.
        first_dominant: use max(r, 1 - r).
        num_replicas: replicas each batch is split across; partners stay
            inside each replica's contiguous shard.
        sample_rate: with `ratio="bc"`, the rate for A-weighted gains;
            `None` uses mean-square gains.

    Call arguments:
        batch: `(x, y)`, `(x, y, sample_weight)` or a dict with keys `x`,
            `y` and optionally `sample_weight` and `group` (clips of one
            group are never paired): NumPy arrays, one row per clip.
            Labels: sparse integer ids `(B,)`, one-hot / multi-hot
            `(B, C)`, or frame-level `(B, T, C)`.
        rng: a `np.random.Generator`.
        background: optional array `(>= B, ...)` of inputs shaped like `x`:
            each clip is mixed with a background row instead of a partner.

    Returns:
        `((x, plan), y_mixed)` or `((x, plan), y_mixed, weight_mixed)`, as
        `partner_batches` yields them, as NumPy arrays.

    Example:

    >>> import numpy as np
    >>> sampler = PlanSampler(num_classes=3, mix_points=2)
    >>> x, y = np.zeros((4, 8), "float32"), np.array([0, 1, 2, 0])
    >>> (x, plan), y_mixed = sampler((x, y), np.random.default_rng(0))
    >>> sorted(plan), y_mixed.shape
    (['partner', 'point', 'ratio'], (4, 3))

    With grain (`pip install grain`), on batches of `(x, y)` rows:

    >>> # import grain
    >>> # ds = (grain.MapDataset.source(clips).shuffle(seed=0).repeat(epochs)
    >>> #       .batch(32, drop_remainder=True)
    >>> #       .random_map(PlanSampler(num_classes=10, mix_points=5), seed=0))
    >>> # view.fit(ds.to_iter_dataset(), epochs=epochs,
    >>> #          steps_per_epoch=len(clips) // 32)
    """

    def __init__(self, *, num_classes, mix_points, alpha=1.0, ratio="beta",
                 partners="random", per_sample=True, label_smoothing=0.0,
                 label_mode="weighted", prob=1.0, first_dominant=False,
                 num_replicas=1, sample_rate=None):
        check_args(num_classes=num_classes, mix_points=mix_points,
                   alpha=current(alpha), ratio=ratio, partners=partners,
                   label_smoothing=label_smoothing, label_mode=label_mode,
                   prob=current(prob), num_replicas=num_replicas)
        self.num_classes = num_classes
        self.mix_points = mix_points
        self.alpha = alpha
        self.ratio = ratio
        self.partners = partners
        self.per_sample = per_sample
        self.label_smoothing = label_smoothing
        self.label_mode = label_mode
        self.prob = prob
        self.first_dominant = first_dominant
        self.num_replicas = num_replicas
        self.sample_rate = sample_rate
        self._eye = np.eye(num_classes, dtype=np.float32)

    def shard(self, size):
        """Rows of each replica's shard of a batch of `size` clips.

        Example:

        >>> PlanSampler(num_classes=2, mix_points=1, num_replicas=2).shard(8)
        4
        """
        if size % self.num_replicas:
            raise ValueError(
                f"A batch of {size} clips cannot be split evenly across "
                f"num_replicas={self.num_replicas}: drop the last partial "
                "batch.")
        return max(size // self.num_replicas, 1)

    def draw(self, rng, count, size, ids=None, groups=None, background=False):
        """Draws the plans of `count` batches of `size` clips at once.

        Args:
            rng: a `np.random.Generator`.
            count, size: number of batches, and clips per batch.
            ids: int array `(count, size)` of label ids (`label_ids`), needed
                by `partners="different_class"` / `"balanced"` and `groups`.
            groups: optional int array `(count, size)` of groups.
            background: whether clips are mixed with background rows (then
                each shard's rows are `[clips; backgrounds]`).

        Returns:
            The plans, each entry with a leading `count` axis: `"partner"`
            int32 (local to each shard), `"ratio"` float32 (1 on rows left
            unmixed), `"point"` int32 `(count, rows, mix_points)`, and with
            `background` the `"background"` flags, where rows is `size`, or
            `2 * size` with `background`.

        Example:

        >>> sampler = PlanSampler(num_classes=2, mix_points=3)
        >>> plans = sampler.draw(np.random.default_rng(0), 5, 4)
        >>> plans["partner"].shape, plans["ratio"].shape, plans["point"].shape
        ((5, 4), (5, 4), (5, 4, 3))
        """
        shard = self.shard(size)
        r = _beta(rng, current(self.alpha), (count, size if self.per_sample else 1))
        r = np.broadcast_to(r, (count, size))
        if self.first_dominant:
            r = np.maximum(r, 1.0 - r)
        point = rng.integers(self.mix_points, size=count)
        mixed = rng.random(count) < current(self.prob)
        position = np.arange(size)
        offset = position // shard * shard
        if background:
            ratio = np.where(mixed[:, None], r, 1.0).astype(np.float32)
            local = np.broadcast_to(position - offset + min(shard, size), (count, size))
            plan = {
                "partner": np.stack([_per_shard(p, p, shard) for p in local]),
                "ratio": np.stack([_per_shard(row, np.ones_like(row), shard)
                                   for row in ratio]),
                "background": np.repeat(
                    _per_shard(np.zeros(size, np.int32), np.ones(size, np.int32),
                               shard)[None], count, axis=0),
            }
        else:
            if self.partners == "random" and groups is None:
                # Adding the shard number keeps each permutation in its shard.
                partner = np.argsort(rng.random((count, size)) + position // shard,
                                     axis=1, kind="stable")
            else:
                partner = _sample_partners(
                    rng, count, size, shard, np.asarray(ids),
                    None if groups is None else np.asarray(groups), self.partners)
            # A clip paired with itself, or a batch left clean, keeps r = 1:
            # the layers' rules are then exact identities.
            ratio = np.where(mixed[:, None] & (partner != position), r, 1.0)
            plan = {"partner": (partner - offset).astype(np.int32),
                    "ratio": ratio.astype(np.float32)}
        rows = plan["ratio"].shape[1]
        plan["point"] = np.zeros((count, rows, self.mix_points), np.int32)
        plan["point"][np.arange(count), :, point] = mixed[:, None]
        return plan

    def targets(self, y, kind):
        """Float32 targets of labels `y` of any leading shape: one-hot, smoothed.

        Example:

        >>> PlanSampler(num_classes=2, mix_points=1).targets(np.array([1]), "sparse")
        array([[0., 1.]], dtype=float32)
        """
        targets = self._eye[y] if kind == "sparse" else y.astype(np.float32, copy=False)
        if self.label_smoothing:
            targets = (targets * (1.0 - self.label_smoothing)
                       + self.label_smoothing / self.num_classes)
        return targets

    def mix(self, plan, targets, weights=None):
        """Mixed targets (and weights) of `count` batches under their plans.

        Args:
            plan: plans from `draw`.
            targets: float32 `(count, B, ...)` targets (`targets`).
            weights: optional float32 `(count, B)` sample weights.

        Returns:
            `(targets, weights)` mixed (unchanged with a background: it
            carries no label); weights stay `None` if not given.

        Example:

        >>> sampler = PlanSampler(num_classes=2, mix_points=1)
        >>> plan = sampler.draw(np.random.default_rng(0), 3, 4)
        >>> targets = sampler.targets(np.zeros((3, 4), int), "sparse")
        >>> sampler.mix(plan, targets)[0].shape
        (3, 4, 2)
        """
        if "background" in plan:
            return targets, weights
        size = targets.shape[1]
        shard = self.shard(size)
        partner = plan["partner"] + np.arange(size) // shard * shard
        targets = _mix_targets(targets, plan["ratio"], partner, self.label_mode)
        if weights is not None:
            weights = _mix_targets(np.asarray(weights, np.float32), plan["ratio"],
                                   partner, "weighted")
        return targets, weights

    def inputs(self, x, background=None, gains=None):
        """A batch's model input `x` and its plan entries that depend on `x`.

        With a background, each shard's rows become `[clips; backgrounds]`;
        with `ratio="bc"`, the rows' gains in dB (measured unless `gains`
        gives them, for `x` without background).

        Example:

        >>> x, extra = PlanSampler(num_classes=2, mix_points=1).inputs(np.zeros((2, 5)))
        >>> x.shape, extra
        ((2, 5), {})
        """
        if background is not None:
            background = np.asarray(background)
            size = len(x)
            if len(background) < size:
                raise ValueError(
                    f"A background batch needs at least {size} rows, one per "
                    f"clip; received {len(background)}.")
            x = _per_shard(np.asarray(x), background[:size].astype(x.dtype, copy=False),
                           self.shard(size))
            gains = None
        extra = {}
        if self.ratio == "bc":
            extra["gain"] = (np.asarray(gains, np.float32) if gains is not None
                             else gain_db_numpy(x, self.sample_rate))
        return x, extra

    def __call__(self, batch, rng, background=None):
        x, y, weights, groups = _split(batch)
        y = np.asarray(y)
        kind = label_kind(y, self.num_classes)
        needs_ids = self.partners != "random" or groups is not None
        plan = self.draw(rng, 1, len(y),
                         ids=label_ids(y, kind)[None] if needs_ids else None,
                         groups=None if groups is None else np.asarray(groups)[None],
                         background=background is not None)
        targets, weights = self.mix(plan, self.targets(y, kind)[None],
                                    None if weights is None else np.asarray(weights)[None])
        x, extra = self.inputs(x, background)
        plan = {**{k: v[0] for k, v in plan.items()}, **extra}
        outputs = (targets[0],) if weights is None else (targets[0], weights[0])
        return ((x, plan),) + outputs
