"""`LevelNormalization`: every clip brought to one RMS level inside the model.

A constant gain is an offset of log-mel features (and a scale of a
waveform network's input) that batch statistics learnt on the training
levels do not undo: a plain network trained on ESC-10 made 3.5 times more
errors on the same clips 20 dB quieter. Scaling each clip to one RMS level
inside the model makes the answer the same at any level (exactly, for a
pure gain: the scale cancels), in every saved `.keras` file and every
user's predictions.
"""

import keras
from keras import ops

__all__ = ["LevelNormalization"]


@keras.saving.register_keras_serializable(package="keras_speechmix")
class LevelNormalization(keras.layers.Layer):
    """Scales each waveform to one RMS level, at training and inference.

    `y = x * 10 ** (target_db / 20) / max(rms(x), 10 ** (floor_db / 20))`
    per clip (row), RMS over all its samples (zero padding included: it
    scales with the clip, so the result stays independent of the gain).
    Clips quieter than `floor_db` are raised by the floor's gain only, so
    digital silence stays silent and near-silence is not blown up to
    full level.

    Note: the reference networks put it right after the waveform mixing
    point and before the features. BC learning and SpeechMix's sound rule
    weigh clips by their own gains, measured on the waveforms (or the
    activations) before this layer: normalising before the waveform point
    would erase them; after it, the mixture is normalised as a whole, as
    BC learning's power normalisation does.

    Args:
        target_db: RMS level of the output in dB relative to full scale
            (1.0).
        floor_db: the lowest input level raised to `target_db`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(batch, samples)` or `(batch, samples, 1)` waveforms.

    Output shape:
        The same as the input.

    Example:

    >>> import numpy as np
    >>> layer = LevelNormalization()
    >>> wave = np.sin(np.linspace(0, 100, 8000)).astype("float32")[None]
    >>> loud, quiet = layer(wave), layer(0.01 * wave)
    >>> bool(np.allclose(loud, quiet, atol=1e-6))
    True
    >>> round(float(np.sqrt(np.mean(np.square(loud)))), 3)  # -20 dBFS
    0.1
    """

    def __init__(self, target_db=-20.0, floor_db=-80.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        target_db, floor_db = float(target_db), float(floor_db)
        if not target_db <= 0.0:
            raise ValueError("LevelNormalization: target_db must be <= 0 dB (full scale); "
                             f"got target_db={target_db!r}")
        if not floor_db < target_db:
            raise ValueError("LevelNormalization: floor_db must be below target_db; got "
                             f"floor_db={floor_db!r}, target_db={target_db!r}")
        self.target_db = target_db
        self.floor_db = floor_db

    def build(self, input_shape):
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        axes = tuple(range(1, len(x.shape)))
        rms = ops.sqrt(ops.mean(ops.square(x), axis=axes, keepdims=True))
        floor = 10.0 ** (self.floor_db / 20.0)
        target = 10.0 ** (self.target_db / 20.0)
        return ops.cast(x * (target / ops.maximum(rms, floor)), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"target_db": self.target_db, "floor_db": self.floor_db})
        return config
