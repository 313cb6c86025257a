"""What the reference networks share: argument checks, the batch-norm
momentum, the conv-BN-ReLU block, the mixing-point helper (`_mixer`,
which puts a `HiddenMixup` at each chosen point) and the waveform's level
layers (`_level_layers`).

Example:

>>> import keras
>>> from keras_speechmix.models.blocks import _mixer
>>> mix = _mixer({"block1"})
>>> x = keras.Input((4,))
>>> type(mix(x, "block1")._keras_history.operation).__name__
'HiddenMixup'
"""

from keras import layers

from keras_speechmix.audio.clipping import RandomClipping
from keras_speechmix.audio.level import LevelNormalization
from keras_speechmix.layer import HiddenMixup

# Chainer's BatchNormalization (used by BC learning and SpeechMix) keeps moving
# statistics with decay 0.9. Keras' default 0.99 barely moves them in short
# runs on small sets, which makes inference-mode accuracy collapse.
_BN_MOMENTUM = 0.9


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}; received "
            f"{name}={value!r}."
        )


def _check_dropout(dropout):
    if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
            or not 0.0 <= dropout < 1.0):
        raise ValueError(
            f"`dropout` must be a rate in [0, 1); received dropout={dropout!r}."
        )


def _conv_bn_relu(h, name, filters, kernel, strides=(1, 1), padding="valid",
                  kernel_initializer="he_normal", epsilon=1e-3):
    # No bias: the batch norm's beta takes its place (Chainer's ConvBNReLU
    # uses nobias=True).
    h = layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                      use_bias=False, kernel_initializer=kernel_initializer,
                      name=name)(h)
    h = layers.BatchNormalization(momentum=_BN_MOMENTUM, epsilon=epsilon,
                                  name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def _mixer(points, waveform_point="waveform", hidden_gain="plan"):
    """`mix(h, point)`: `h` through a HiddenMixup if `point` is chosen, else `h`.

    The authors always mix waveforms with BC's gain-aware rule ("sound");
    hidden points follow the plan ("sound" with gains, else "normal"), with
    the gains of `hidden_gain` (`HiddenMixup(gain=...)`: the input clips'
    from the plan, or measured from the activation as the authors do).
    """
    if hidden_gain not in ("plan", "activation"):
        raise ValueError("`hidden_gain` must be 'plan' or 'activation'; received "
                         f"hidden_gain={hidden_gain!r}.")

    def mix(h, point):
        if point not in points:
            return h
        if point == waveform_point:
            return HiddenMixup(rule="sound", name=f"mix_{point}")(h)
        # Gains measured from the activation need none in the plan: the
        # sound rule then applies whatever the plan carries.
        rule = "sound" if hidden_gain == "activation" else "auto"
        return HiddenMixup(rule=rule, gain=hidden_gain, name=f"mix_{point}")(h)

    return mix


def _check_points(mix_points, candidates, default):
    if mix_points is None:
        mix_points = default
    if isinstance(mix_points, str):
        mix_points = (mix_points,)
    try:
        mix_points = tuple(mix_points)
    except TypeError:
        mix_points = (mix_points,)
    unknown = [p for p in mix_points if p not in candidates]
    if unknown or not mix_points or len(set(mix_points)) != len(mix_points):
        raise ValueError(
            "`mix_points` must be a non-empty collection of distinct names "
            f"from {candidates}; received mix_points={mix_points!r}"
            + (f" (unknown: {unknown})." if unknown else ".")
        )
    return frozenset(mix_points)


def _level_layers(h, level_norm, random_clipping):
    """`RandomClipping(random_clipping)` (when a gain in dB is given), then
    `LevelNormalization` (when `level_norm`), on the waveform `h`: after the
    waveform mixing point, so BC learning's gains are the clips' own."""
    if random_clipping is not None:
        h = RandomClipping(max_gain_db=random_clipping, name="random_clipping")(h)
    if level_norm:
        h = LevelNormalization(name="level")(h)
    return h
