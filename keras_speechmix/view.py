"""`SpeechMix(model)`: the training view that feeds each batch's plan."""

import keras
from keras import ops

from keras_speechmix.layer import HiddenMixup, plan_scope

__all__ = ["SpeechMix", "mix_layers"]


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


def _split_inputs(inputs):
    if (isinstance(inputs, (tuple, list)) and len(inputs) == 2
            and isinstance(inputs[1], dict) and "point" in inputs[1]):
        return inputs[0], inputs[1]
    return inputs, None


@keras.saving.register_keras_serializable(package="keras_speechmix")
class SpeechMix(keras.Model):
    """Training view of a model with `HiddenMixup` layers.

    Train this view with plain `fit` on `partner_batches` data; it shares
    every layer and weight with `model`, and for each batch makes the plan
    visible to the model's `HiddenMixup` layers (numbered 0, 1, ... in
    network order). Predict, evaluate, save and export with the original
    `model`, where every `HiddenMixup` is the identity. Inputs without a plan
    (validation data) pass unmixed.

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
        # Which points and ratios training actually used (summed over replicas).
        self.point_counts = self.add_weight(
            shape=(self.num_mix_points,), initializer="zeros", trainable=False,
            name="point_counts", aggregation="sum")
        self.ratio_counts = self.add_weight(
            shape=(10,), initializer="zeros", trainable=False,
            name="ratio_counts", aggregation="sum")

    def call(self, inputs, training=None):
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

    def _record(self, plan):
        point = ops.cast(plan["point"][0], "float32")
        self.point_counts.assign_add(point)
        ratio = ops.cast(plan["ratio"], "float32")
        mixed = ops.cast(ops.less(ratio, 1.0), "float32") * ops.max(point)
        bins = ops.clip(ops.cast(ops.floor(ratio * 10.0), "int32"), 0, 9)
        self.ratio_counts.assign_add(
            ops.sum(ops.one_hot(bins, 10) * mixed[:, None], axis=0))

    def mix_statistics(self, reset=True):
        """Counts of batches per mixing point and of ratios per tenth.

        Counted over training calls since the last reset: `points[k]` batches
        mixed at point k, `ratios[j]` mixed clips with r in [j/10, (j+1)/10).
        `keras_speechmix.MixLogger` logs them per epoch.

        Example:

        >>> # stats = view.mix_statistics(); stats["points"]
        """
        stats = {"points": ops.convert_to_numpy(self.point_counts).tolist(),
                 "ratios": ops.convert_to_numpy(self.ratio_counts).tolist()}
        if reset:
            self.point_counts.assign(ops.zeros_like(self.point_counts))
            self.ratio_counts.assign(ops.zeros_like(self.ratio_counts))
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
