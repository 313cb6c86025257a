"""`SpeechMix(model)`: the training view that feeds each batch's plan."""

import inspect
import warnings

import keras
from keras import ops

from keras_speechmix.layer import HiddenMixup, _split_inputs, plan_scope

__all__ = ["SpeechMix", "mix_layers"]

# `mix_statistics` counts the ratios of mixed clips per tenth.
_RATIO_BINS = 10


def mix_layers(model):
    """Lists the `HiddenMixup` layers of `model` in network order.

    Nested models are searched too (a functional model's layers come in the
    order they are called).

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4,)), HiddenMixup(),
    ...                           keras.layers.Dense(2)])
    >>> len(mix_layers(model))
    1
    """
    found = []
    for layer in model.layers:
        if isinstance(layer, HiddenMixup):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found.extend(mix_layers(layer))
    return found


def _number(layers):
    given = [layer.index for layer in layers]
    if all(index is None for index in given):
        for number, layer in enumerate(layers):
            layer.index = number
    elif sorted(given, key=lambda i: -1 if i is None else i) != list(range(len(layers))):
        raise ValueError(
            "HiddenMixup indices must be all None (numbered in network order) "
            f"or exactly 0..{len(layers) - 1}; received {given} for layers "
            f"{[layer.name for layer in layers]}."
        )


def _one_hot_targets(y, y_pred):
    """One-hots integer class ids so that they match the output's shape.

    Training targets from `partner_batches` are already one-hot; validation
    data may carry class ids, as the plain model with a sparse loss takes
    them: integers with one dimension fewer than the output, or with a last
    dimension of 1 where the output has several classes. Any other target,
    or a model with several outputs, passes unchanged.
    """
    if not (hasattr(y, "shape") and hasattr(y_pred, "shape")):
        return y
    try:
        rank, out_rank = len(y.shape), len(y_pred.shape)
    except ValueError:  # unknown rank: leave it to the loss, as Keras does
        return y
    classes = y_pred.shape[-1]
    dtype = keras.backend.standardize_dtype(y.dtype)
    if classes is None or classes < 2 or not dtype.startswith(("int", "uint")):
        return y
    if rank == out_rank and y.shape[-1] == 1:
        y, rank = ops.squeeze(y, axis=-1), rank - 1
    if rank != out_rank - 1:
        return y
    return ops.one_hot(ops.cast(y, "int32"), classes, dtype="float32")


def _batch_size_from_data(data):
    """`data` with the batch dimension's static size erased (TensorFlow only).

    Keras' TensorFlow step counts each batch in its loss and metric means
    with `tf.shape(x)[0]`, a constant when the batch size is static (as
    `partner_batches` makes it). On a dataset of unknown length the last
    step of an epoch asks for one more batch and fails, but ops that depend
    on no input still run: the means' counts grew by one batch more than
    their totals, so an epoch's recorded loss and accuracy were the true
    ones times n / (n + 1). A batch size read from the data runs only with
    the data.
    """
    if keras.backend.backend() != "tensorflow":
        return data  # the other backends fetch batches outside the graph
    import tensorflow as tf

    def relax(t):
        if not isinstance(t, tf.Tensor) or not t.shape.rank or t.shape[0] is None:
            return t
        return tf.compat.v1.placeholder_with_default(t, [None, *t.shape[1:]])

    return keras.tree.map_structure(relax, data)


def _static_batch_size(data):
    """The one static batch size of `data`'s tensors, or `None` (TensorFlow
    only; mixed sizes, as with backgrounds, give `None`)."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    sizes = {t.shape[0] for t in keras.tree.flatten(data)
             if isinstance(t, tf.Tensor) and t.shape.rank}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def _pinned(structure, batch):
    """`structure`'s tensors as new tensors whose batch dimension is
    `batch`: the network computes with static shapes (with an unknown batch
    every layer and its gradient worked out shapes at run time, a fixed
    cost of each step), while the relaxed tensors Keras counts batches with
    stay relaxed."""
    import tensorflow as tf

    def pin(t):
        if not isinstance(t, tf.Tensor) or not t.shape.rank or t.shape[0] is not None:
            return t
        return tf.ensure_shape(t, [batch, *t.shape[1:]])

    return keras.tree.map_structure(pin, structure)


def _relaxed(structure):
    """`structure`'s tensors with the batch size erased again, keeping the
    logits Keras' TensorFlow losses and metrics read from a softmax's output
    (`_keras_logits`), so their values do not change."""
    import tensorflow as tf

    def relax(t):
        if not isinstance(t, tf.Tensor) or not t.shape.rank or t.shape[0] is None:
            return t
        relaxed = tf.compat.v1.placeholder_with_default(t, [None, *t.shape[1:]])
        logits = getattr(t, "_keras_logits", None)
        if logits is not None:
            relaxed._keras_logits = relax(logits)
        return relaxed

    return keras.tree.map_structure(relax, structure)


# Sparse losses and metrics, and the categorical ones that take the same
# arguments and give the same values on one-hot targets.
_SPARSE_TO_CATEGORICAL = {
    keras.losses.SparseCategoricalCrossentropy: keras.losses.CategoricalCrossentropy,
    keras.metrics.SparseCategoricalCrossentropy: keras.metrics.CategoricalCrossentropy,
    keras.metrics.SparseCategoricalAccuracy: keras.metrics.CategoricalAccuracy,
    keras.metrics.SparseTopKCategoricalAccuracy: keras.metrics.TopKCategoricalAccuracy,
}
_SPARSE_LOSS_NAMES = ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy")


def _categorical(entry, kind):
    """The categorical counterpart of a sparse loss or metric, or `None`."""
    if kind == "loss" and (entry in _SPARSE_LOSS_NAMES
                           or entry is keras.losses.sparse_categorical_crossentropy):
        entry = keras.losses.SparseCategoricalCrossentropy()
    elif kind != "loss" and isinstance(entry, str):
        try:
            entry = keras.metrics.get(entry)
        except ValueError:
            return None  # "accuracy", "crossentropy": Keras picks by shape
    target = _SPARSE_TO_CATEGORICAL.get(type(entry))
    if target is None:
        return None
    config = entry.get_config()
    ignore_class = config.pop("ignore_class", None)
    if ignore_class is not None:
        raise ValueError(
            "The SpeechMix view trains on mixed one-hot targets, so it needs "
            f"'categorical_crossentropy', but {type(entry).__name__}("
            f"ignore_class={ignore_class!r}) has no categorical counterpart: "
            "compile the view with 'categorical_crossentropy' and give the "
            "samples to ignore sample_weight 0 instead.")
    if kind == "loss":
        config.pop("name")  # the loss logs as "loss" whatever its name
    # Metrics keep their name, so logs and callbacks that monitor them
    # (val_sparse_categorical_accuracy, ...) read the same keys.
    return target(**config)


@keras.saving.register_keras_serializable(package="keras_speechmix")
class SpeechMix(keras.Model):
    """Training view of a model with `HiddenMixup` layers.

    Train this view with plain `fit` on `partner_batches` data; it shares
    every layer and weight with `model`, and for each batch makes the plan
    visible to the model's `HiddenMixup` layers (numbered 0, 1, ... in
    network order). Predict, evaluate, save and export with the original
    `model`, where every `HiddenMixup` is the identity. Inputs without a plan
    (validation data) pass unmixed; validation targets may be one-hot or
    integer class ids of shape `(B,)` or `(B, 1)` (as the plain model takes
    them with a sparse loss): the view one-hots class ids to its output's
    number of classes for the loss and the metrics.

    The view's training targets are mixed one-hot, which a sparse loss cannot
    take, so `compile` replaces `"sparse_categorical_crossentropy"` (name,
    function or `SparseCategoricalCrossentropy` instance) by the
    `CategoricalCrossentropy` with the same `from_logits` and reduction, and
    the sparse categorical metrics by their categorical counterparts, with
    one warning. This is exact, not an approximation: on one-hot targets the
    categorical loss equals the sparse loss on the class ids, and on mixed
    targets it is the mixed loss `r * CE(y1) + (1 - r) * CE(y2)` that mixup
    trains. Only `ignore_class` has no counterpart: it fails at `compile`.

    Note: a subclassed model can skip the view and pass the plan itself:
    give each `HiddenMixup(index=k)` and call `mix(h, plan=plan,
    training=training)` inside its `call`, with the plan taken from the
    `(x, plan)` input.

    Args:
        model: a built Keras model (Sequential, functional or subclassed)
            holding at least one `HiddenMixup`.

    Attributes:
        num_mix_points: number of mixing points, to pass as
            `partner_batches(mix_points=...)`.

    Example:

    >>> import keras, numpy as np, tensorflow as tf
    >>> from keras_speechmix import HiddenMixup, partner_batches
    >>> model = keras.Sequential([
    ...     keras.Input((8,)), HiddenMixup(),
    ...     keras.layers.Dense(16, activation="relu"), HiddenMixup(),
    ...     keras.layers.Dense(3, activation="softmax")])
    >>> view = SpeechMix(model)
    >>> view.compile("adam", "categorical_crossentropy")
    >>> ds = tf.data.Dataset.from_tensor_slices(
    ...     (np.random.rand(32, 8).astype("float32"), np.arange(32) % 3))
    >>> train = partner_batches(ds, 8, num_classes=3,
    ...                         mix_points=view.num_mix_points, seed=0)
    >>> history = view.fit(train, epochs=1, verbose=0)
    >>> model.predict(np.zeros((1, 8)), verbose=0).shape
    (1, 3)
    """

    def __init__(self, model, **kwargs):
        kwargs.setdefault("name", f"speechmix_{model.name}".lstrip("_"))
        super().__init__(**kwargs)
        layers = mix_layers(model)
        if not layers:
            raise ValueError(
                f"Model '{model.name}' has no HiddenMixup layer: add "
                "keras_speechmix.HiddenMixup() where it should mix (right "
                "after the input for input-space mixing)."
            )
        _number(layers)
        self.base_model = model
        self.num_mix_points = len(layers)
        # The static batch size of the step being traced (TensorFlow), else None.
        self._batch_size = None
        # Which points and ratios training actually used (summed over
        # replicas): the batches per point, then the mixed clips per tenth
        # of the ratio, in one vector, so that a step records them in one
        # update (two updates and a one-hot histogram cost a 15 ms step
        # 0.3 ms, benchmarks/NOTES.md turn 13).
        self.mix_counts = self.add_weight(
            shape=(self.num_mix_points + _RATIO_BINS,), initializer="zeros",
            trainable=False, name="mix_counts", aggregation="sum")

    def call(self, inputs, training=None):
        if self._batch_size is not None:
            inputs = _pinned(inputs, self._batch_size)
        x, plan = _split_inputs(inputs)
        if plan is not None:
            points = plan["point"].shape[-1]
            if points is not None and points != self.num_mix_points:
                raise ValueError(
                    f"The plan has {points} mixing points but model "
                    f"'{self.base_model.name}' has {self.num_mix_points} "
                    "HiddenMixup layers: use partner_batches(mix_points="
                    f"{self.num_mix_points})."
                )
        with plan_scope(plan):
            outputs = self.base_model(x, training=training)
        if plan is not None and "background" in plan:
            # Rows are [clips; backgrounds]: only the clips have targets.
            outputs = keras.tree.map_structure(
                lambda out: out[: ops.shape(out)[0] // 2], outputs)
        if plan is not None and training:
            self._record(plan)
        return outputs

    def compile(self, *args, **kwargs):
        """Configures the view for training, as `keras.Model.compile` does.

        Sparse categorical losses and metrics are replaced by their
        categorical counterparts (see the class docstring), with a warning.

        Example:

        >>> import keras, warnings
        >>> from keras_speechmix import HiddenMixup
        >>> view = SpeechMix(keras.Sequential([keras.Input((4,)), HiddenMixup(),
        ...                                    keras.layers.Dense(3)]))
        >>> with warnings.catch_warnings(record=True):
        ...     view.compile("adam", keras.losses.SparseCategoricalCrossentropy(
        ...         from_logits=True), metrics=["accuracy"])
        >>> type(view.loss).__name__, view.loss.from_logits
        ('CategoricalCrossentropy', True)
        """
        bound = inspect.signature(super().compile).bind(*args, **kwargs)
        replaced = []

        def swap(kind):
            def one(entry):
                categorical = _categorical(entry, kind)
                if categorical is None:
                    return entry
                given = entry if isinstance(entry, str) else getattr(
                    entry, "name", getattr(entry, "__name__", entry))
                replaced.append(f"{given} -> {type(categorical).__name__}")
                return categorical
            return one

        for name in ("loss", "metrics", "weighted_metrics"):
            if bound.arguments.get(name) is not None:
                kind = "loss" if name == "loss" else "metric"
                bound.arguments[name] = keras.tree.map_structure(
                    swap(kind), bound.arguments[name])
        if replaced:
            warnings.warn(
                "The SpeechMix view trains on mixed one-hot targets, which "
                "sparse losses and metrics cannot take; using the categorical "
                f"ones instead ({', '.join(replaced)}; same from_logits and "
                "reduction). Validation labels may stay sparse.",
                stacklevel=2)
        super().compile(*bound.args, **bound.kwargs)

    def compile_from_config(self, config):
        # Keras skips this for any model that overrides compile(); this
        # compile takes the same arguments, so a loaded view comes compiled.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # JAX's steps take `(state, data)`, the others `data`.
    def train_step(self, *args):
        *state, data = args
        self._batch_size = _static_batch_size(data)
        try:
            return super().train_step(*state, _batch_size_from_data(data))
        finally:
            self._batch_size = None

    def test_step(self, *args):
        *state, data = args
        self._batch_size = _static_batch_size(data)
        try:
            return super().test_step(*state, _batch_size_from_data(data))
        finally:
            self._batch_size = None

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        return super().compute_loss(x, _one_hot_targets(y, y_pred), y_pred,
                                    sample_weight, training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._batch_size is not None:
            # The metrics' batch counts must depend on the data
            # (`_batch_size_from_data`); the network's output is pinned.
            y_pred = _relaxed(y_pred)
        return super().compute_metrics(x, _one_hot_targets(y, y_pred), y_pred,
                                       sample_weight)

    def _record(self, plan):
        point = ops.cast(plan["point"][0], "float32")
        ratio = ops.cast(plan["ratio"], "float32")
        mixed = ops.cast(ops.less(ratio, 1.0), "float32") * ops.max(point)
        bins = ops.clip(ops.cast(ops.floor(ratio * _RATIO_BINS), "int32"),
                        0, _RATIO_BINS - 1)
        ratios = ops.segment_sum(mixed, bins, num_segments=_RATIO_BINS)
        self.mix_counts.assign_add(ops.concatenate([point, ratios]))

    def mix_statistics(self, reset=True):
        """Counts of batches per mixing point and of ratios per tenth.

        Counted over training calls since the last reset: `points[k]` batches
        mixed at point k, `ratios[j]` mixed clips with r in [j/10, (j+1)/10).
        `keras_speechmix.MixLogger` logs them per epoch.

        Example:

        >>> # stats = view.mix_statistics(); stats["points"]
        """
        counts = ops.convert_to_numpy(self.mix_counts).tolist()
        stats = {"points": counts[:self.num_mix_points],
                 "ratios": counts[self.num_mix_points:]}
        if reset:
            # zeros(shape), not zeros_like(variable): JAX 0.10 takes no Keras
            # Variable there.
            self.mix_counts.assign(ops.zeros(self.mix_counts.shape, self.mix_counts.dtype))
        return stats

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.base_model),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)
