"""`HiddenMixup`: a mixing point of SpeechMix."""

import contextlib
import contextvars
import inspect
import math
import sys

import keras
from keras import ops

__all__ = ["HiddenMixup", "activation_gain_db", "active_plan", "plan_scope"]

_RULES = ("auto", "normal", "sound")
_GAINS = ("plan", "activation")
# The SpeechMix authors measure a hidden activation's "gain" with BC's
# A-weighted waveform gain at their sampling rate, 44.1 kHz (`utils.mix`).
_AUTHORS_RATE = 44100
_ACTIVE_PLAN = contextvars.ContextVar("keras_speechmix_plan", default=None)


def active_plan():
    """Returns the plan of the `plan_scope` being run, or `None`.

    Example:

    >>> active_plan() is None
    True
    """
    return _ACTIVE_PLAN.get()


@contextlib.contextmanager
def plan_scope(plan):
    """Makes `plan` visible to every `HiddenMixup` called inside the block.

    The training view `SpeechMix` wraps each forward pass in this scope. A
    context variable, not an attribute, carries the plan, so nothing stays
    on the layers after the call and each thread (each replica under
    `MirroredStrategy`) sees only its own plan.

    Example:

    >>> import numpy as np
    >>> plan = {"partner": np.array([1, 0]), "ratio": np.array([0.5, 0.5]),
    ...         "point": np.array([[1], [1]])}
    >>> layer = HiddenMixup(index=0)
    >>> with plan_scope(plan):
    ...     out = layer(np.array([[0.0], [2.0]]), training=True)
    >>> out.numpy().ravel().tolist()
    [1.0, 1.0]
    """
    token = _ACTIVE_PLAN.set(plan)
    try:
        yield
    finally:
        _ACTIVE_PLAN.reset(token)


def _split_inputs(inputs):
    """Splits an `(x, plan)` input into `x` and the plan; `(inputs, None)` else."""
    if (isinstance(inputs, (tuple, list)) and len(inputs) == 2
            and isinstance(inputs[1], dict) and "point" in inputs[1]):
        return inputs[0], inputs[1]
    return inputs, None


# Where Keras hands a model its inputs: `Layer.__call__`, and `stateless_call`,
# through which the JAX trainer runs a model's `call` directly.
_ENTRY_CODES = tuple(inspect.unwrap(getattr(keras.layers.Layer, name)).__code__
                     for name in ("__call__", "stateless_call"))


def _plan_dropped_by():
    """The outermost Keras layer or model whose call got `(x, plan)`, or None.

    Keras Sequential and functional models take only `x`: given a SpeechMix
    batch they drop the plan (Sequential with a warning only), so their
    `HiddenMixup` layers see none while the targets are mixed. The call that
    dropped it is still on the stack; looking there is the one place that
    can tell, since nothing of the plan reaches the layer. (A functional
    model's own input check rejects `(x, plan)` before any layer runs,
    except where the JAX trainer skips that check.)
    """
    owner = None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _ENTRY_CODES:
            args = frame.f_locals.get("args") or ()
            if args and _split_inputs(args[0])[1] is not None:
                owner = frame.f_locals.get("self")
        frame = frame.f_back
    return owner


def _accelerator_present():
    """Whether the backend computes on a GPU or TPU (decides cond vs select)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU")
                    or tf.config.list_logical_devices("TPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def _check_plan(plan, index, inputs):
    if not isinstance(plan, dict) or not {"partner", "ratio", "point"} <= set(plan):
        raise ValueError(
            "A SpeechMix plan must be a dict with keys 'partner', 'ratio' and "
            "'point' (see keras_speechmix.partner_batches); received "
            f"{type(plan).__name__} {sorted(plan) if isinstance(plan, dict) else ''}."
        )
    for key, rank, kind in (("partner", 1, "int"), ("ratio", 1, "float"),
                            ("point", 2, "int")):
        value = plan[key]
        dtype = keras.backend.standardize_dtype(value.dtype)
        if len(value.shape) != rank or not dtype.startswith(kind):
            raise ValueError(
                f"Plan entry '{key}' must be a rank-{rank} {kind} tensor; "
                f"received shape {tuple(value.shape)} and dtype {dtype}."
            )
        batch = value.shape[0]
        if batch is not None and inputs.shape[0] is not None and batch != inputs.shape[0]:
            raise ValueError(
                f"Plan entry '{key}' has {batch} rows but the activation "
                f"has batch size {inputs.shape[0]} (shape {tuple(inputs.shape)})."
            )
    points = plan["point"].shape[1]
    if index is None:
        raise ValueError(
            "This HiddenMixup has no index: wrap the model with "
            "keras_speechmix.SpeechMix(model), or pass `index=` when passing "
            "the plan by hand."
        )
    if points is not None and index >= points:
        raise ValueError(
            f"The plan has {points} mixing points but this HiddenMixup has "
            f"index {index}: set partner_batches(mix_points=...) to the "
            "model's number of HiddenMixup layers."
        )


def activation_gain_db(inputs, sample_rate=_AUTHORS_RATE, min_db=-80.0):
    """Per-clip gain in dB of any activation, as the SpeechMix authors take it.

    Each clip's activation is flattened and measured like a waveform with
    BC learning's A-weighted gain (`keras_speechmix.gain_db`): the loudest
    Hann-windowed frame's A-weighted power. In `keras.ops`, so it runs on
    every backend; no gradient flows through it.

    Example:

    >>> import numpy as np
    >>> h = np.stack([np.zeros((8, 600)), 0.5 * np.ones((8, 600))]).astype("float32")
    >>> [round(float(g)) for g in activation_gain_db(h, 16000)]
    [-80, -24]
    """
    from keras_speechmix.gain import _a_weighting_db, _fft_length

    fft_length = _fft_length(sample_rate)
    size = math.prod(inputs.shape[1:]) if None not in inputs.shape[1:] else None
    # Flattened with the static size where there is one: `(batch, -1)` loses
    # it whenever the batch size is not static (graph mode), and the padding
    # of short activations below must not depend on that.
    flat = ops.stop_gradient(ops.reshape(ops.cast(inputs, "float32"),
                                         (-1, size) if size else (ops.shape(inputs)[0], -1)))
    if size is None:
        # Length unknown until run time: one frame of zeros keeps at least
        # one whole frame (a close stand-in for `gain_db`'s padding).
        flat = ops.pad(flat, [[0, 0], [0, fft_length]])
    elif size < fft_length:
        flat = ops.pad(flat, [[0, 0], [0, fft_length - size]])
    real, imag = ops.stft(flat, fft_length, fft_length // 2, fft_length,
                          window="hann", center=False)
    weight = 10.0 ** (_a_weighting_db(sample_rate, fft_length, min_db) / 10.0)
    power = ops.sum((real * real + imag * imag) * weight, axis=-1)
    power = ops.maximum(ops.max(power, axis=-1), 10.0 ** (min_db / 10.0))
    return 10.0 * ops.log(power) / ops.log(10.0)


@keras.saving.register_keras_serializable(package="keras_speechmix")
class HiddenMixup(keras.layers.Layer):
    """Mixes each clip's activation with its partner's, at one point of a net.

    SpeechMix (Jindal et al., 2020) places several candidate mixing points in
    a network (the input included, as Manifold Mixup does). Per training batch
    one point is active: there each activation becomes
    `h_i <- r_i * h_i + (1 - r_i) * h_partner(i)` while the targets are mixed
    by the same r. Partners, ratios and the active point come from the batch's
    plan (`keras_speechmix.partner_batches`); the layer holds no random op.

    It is only active in training and when a plan is given (by hand through
    `plan=`, or by the training view `keras_speechmix.SpeechMix`); otherwise
    it is the identity, so the trained model predicts and exports as a plain
    Keras model. Training the plain model itself on `partner_batches` data
    raises a `ValueError` that points to `SpeechMix(model)`: Keras would drop
    the plan and fit mixed labels to unmixed activations.

    Note: on a CPU only the active point does any work (a `cond` on the plan),
    so inactive points cost nothing; on an accelerator every point computes
    the lerp and selects it branch-free, which XLA fuses into the
    neighbouring kernels (a `cond` there made a step about 6 % slower on an
    H200, the select under 1 %). Masks pass through; a mixed frame is valid
    where either clip's frame is.

    References:
        - Jindal et al., "SpeechMix - Augmenting Deep Sound Recognition using
          Hidden Space Interpolations", Interspeech 2020.
        - Tokozume et al., "Learning from Between-class Examples for Deep
          Sound Recognition", ICLR 2018 (the "sound" rule).
        - Verma et al., "Manifold Mixup", ICML 2019.

    Args:
        rule: `"normal"` linear interpolation; `"sound"` BC learning's
            gain-aware rule, as the authors use at the input (and optionally
            hidden points): p = 1 / (1 + 10^((G1 - G2) / 20) (1 - r) / r),
            h = (p h1 + (1 - p) h2) / sqrt(p^2 + (1 - p)^2), the label keeping
            r. Gains come from the plan (`partner_batches(ratio="bc")`) and
            are taken equal when absent. `"auto"` (default) is `"sound"` when
            the plan carries gains, `"normal"` otherwise.
        gain: where the sound rule's gains come from. `"plan"` (default):
            the plan's per-clip gains of the input waveforms
            (`partner_batches(ratio="bc")`). `"activation"`: measured from
            this activation itself, flattened per clip, with BC learning's
            A-weighted gain at `gain_sample_rate`, as the SpeechMix authors'
            code does at hidden points (their `utils.mix`); the gains carry
            no gradient. Only used by the "sound" rule.
        gain_sample_rate: the rate whose A-weighting measures activation
            gains (default 44,100, the authors' constant).
        index: the mixing point's number. `SpeechMix(model)` numbers the
            layers in network order when left `None`; pass it when feeding
            the plan by hand (subclassed models).
        skip_inactive: `True` skips the work at inactive points with a
            `cond`; `False` always computes and selects, branch-free;
            `"auto"` (default) skips on CPUs only.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: activation of any rank, batch first.
        plan: the batch's plan dict, or `None` to use the one of the
            enclosing `SpeechMix` call (if any).
        training: Python bool; the layer mixes only when training.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([
    ...     keras.Input((8,)), HiddenMixup(),
    ...     keras.layers.Dense(16, activation="relu"), HiddenMixup(),
    ...     keras.layers.Dense(3, activation="softmax")])
    >>> x = np.random.rand(4, 8).astype("float32")
    >>> bool(np.allclose(model.layers[0](x, training=True), x))
    True
    """

    def __init__(self, rule="auto", index=None, skip_inactive="auto", gain="plan",
                 gain_sample_rate=_AUTHORS_RATE, **kwargs):
        super().__init__(**kwargs)
        if gain not in _GAINS:
            raise ValueError(f"`gain` must be one of {_GAINS}; received gain={gain!r}.")
        if (isinstance(gain_sample_rate, bool) or not isinstance(gain_sample_rate, int)
                or gain_sample_rate <= 0):
            raise ValueError("`gain_sample_rate` must be a positive integer; received "
                             f"gain_sample_rate={gain_sample_rate!r}.")
        if skip_inactive not in ("auto", True, False):
            raise ValueError(
                "`skip_inactive` must be 'auto', True or False; received "
                f"skip_inactive={skip_inactive!r}.")
        if rule not in _RULES:
            raise ValueError(
                f"`rule` must be one of {_RULES}; received rule={rule!r}.")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or index < 0):
            raise ValueError(
                f"`index` must be None or an integer >= 0; received index={index!r}.")
        self.rule = rule
        self.index = index
        self.skip_inactive = skip_inactive
        self.gain = gain
        self.gain_sample_rate = gain_sample_rate
        self.supports_masking = True
        self._build_at_init()

    def _coefficients(self, plan, partner, inputs):
        ratio = ops.cast(plan["ratio"], "float32")
        rule = self.rule
        if rule == "auto":
            rule = "sound" if "gain" in plan else "normal"
        if rule == "normal":
            return ratio, 1.0 - ratio
        if self.gain == "activation":
            gain = activation_gain_db(inputs, self.gain_sample_rate)
            gain_diff = gain - ops.take(gain, partner, axis=0)
        elif "gain" in plan:
            gain = ops.cast(plan["gain"], "float32")
            gain_diff = gain - ops.take(gain, partner, axis=0)
        else:
            gain_diff = ops.zeros_like(ratio)
        r = ops.clip(ratio, 1e-7, 1.0)
        p = 1.0 / (1.0 + ops.power(10.0, gain_diff / 20.0) * (1.0 - r) / r)
        norm = ops.sqrt(p * p + (1.0 - p) * (1.0 - p))
        return p / norm, (1.0 - p) / norm

    def _is_active(self, plan):
        return ops.greater(plan["point"][0, self.index], 0)

    def call(self, inputs, plan=None, training=None):
        if plan is None:
            plan = active_plan()
        if training and plan is None:
            owner = _plan_dropped_by()
            if owner is not None:
                raise ValueError(
                    f"Model '{owner.name}' was given a SpeechMix batch `(x, "
                    f"plan)` in training, but its HiddenMixup '{self.name}' got "
                    "no plan: it would fit mixed labels with unmixed "
                    "activations. Train the view, which hands the plan over: "
                    "`view = keras_speechmix.SpeechMix(model)`, then "
                    "`view.fit(batches)` (a subclassed model that takes "
                    "`(x, plan)` must pass `plan=` to every HiddenMixup)."
                )
        if training and plan is not None:
            _check_plan(plan, self.index, inputs)
            partner = ops.cast(plan["partner"], "int32")
            active = self._is_active(plan)
            skip = self.skip_inactive
            if skip == "auto":
                skip = not _accelerator_present()

            def mix(own, other):
                shape = (-1,) + (1,) * (len(inputs.shape) - 1)
                own = ops.reshape(ops.cast(own, inputs.dtype), shape)
                other = ops.reshape(ops.cast(other, inputs.dtype), shape)
                return own * inputs + other * ops.take(inputs, partner, axis=0)

            if skip:
                return ops.cond(active,
                                lambda: mix(*self._coefficients(plan, partner, inputs)),
                                lambda: inputs)
            own, other = self._coefficients(plan, partner, inputs)
            return mix(ops.where(active, own, 1.0), ops.where(active, other, 0.0))
        return inputs

    def compute_mask(self, inputs, mask=None):
        plan = active_plan()
        if mask is None or plan is None or self.index is None:
            return mask
        partner = ops.cast(plan["partner"], "int32")
        union = ops.logical_or(mask, ops.take(mask, partner, axis=0))
        return ops.where(self._is_active(plan), union, mask)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {"rule": self.rule, "index": self.index,
                  "skip_inactive": self.skip_inactive, "gain": self.gain,
                  "gain_sample_rate": self.gain_sample_rate}
        return {**base_config, **config}
