"""`RandomClipping`: louder recordings, clipped at full scale, in training.

`LevelNormalization` makes a network's answer the same at any gain, but a
recording made too loud is also clipped at full scale: a distortion no
gain undoes. Scored 10 dB louder (clipped), the level-normalised reference
networks still lost 1.2-1.3 points of accuracy on ESC-10 (issue 27).
Training on some clips made louder and clipped, as a recorder would, shows
the network that distortion; at inference the layer is the identity.
"""

import keras
from keras import ops

__all__ = ["RandomClipping"]


@keras.saving.register_keras_serializable(package="keras_speechmix")
class RandomClipping(keras.layers.Layer):
    """Makes random clips louder and clips them at full scale, in training.

    Each clip (row) is, with probability `rate`, multiplied by a gain drawn
    uniformly in decibels from `[0, max_gain_db]` and clipped to `[-1, 1]`;
    the other clips pass unchanged. As a regularisation layer it is only
    active at training time.

    Note: the reference networks put it right after the waveform mixing
    point (so BC learning's gains are still the recordings' own) and before
    `LevelNormalization` (so the gain itself is undone and only the
    clipping is left).

    Args:
        max_gain_db: the largest gain in dB (> 0).
        rate: the share of clips made louder, in [0, 1].
        seed: optional integer seed of the draws.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(batch, samples)` or `(batch, samples, 1)` waveforms in [-1, 1].

    Output shape:
        The same as the input.

    Example:

    >>> import numpy as np
    >>> layer = RandomClipping(max_gain_db=10.0, rate=1.0, seed=0)
    >>> wave = 0.9 * np.sin(np.linspace(0, 100, 8000)).astype("float32")[None]
    >>> bool(np.array_equal(layer(wave), wave))  # inference: the identity
    True
    >>> louder = np.asarray(layer(wave, training=True))
    >>> float(np.abs(louder).max()) <= 1.0, float(np.abs(louder).max()) > 0.9
    (True, True)
    """

    def __init__(self, max_gain_db=10.0, rate=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_gain_db, bool) or not isinstance(max_gain_db, (int, float)) \
                or not max_gain_db > 0:
            raise ValueError("RandomClipping: `max_gain_db` must be a number > 0; "
                             f"received max_gain_db={max_gain_db!r}.")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError("RandomClipping: `rate` must be a number in [0, 1]; "
                             f"received rate={rate!r}.")
        self.max_gain_db = float(max_gain_db)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self._build_at_init()

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
            gain_db = keras.random.uniform(shape, 0.0, self.max_gain_db,
                                           dtype=self.compute_dtype, seed=self.seed_generator)
            chosen = keras.random.uniform(shape, dtype=self.compute_dtype,
                                          seed=self.seed_generator) < self.rate
            louder = ops.clip(inputs * ops.power(10.0, gain_db / 20.0), -1.0, 1.0)
            return ops.where(chosen, louder, inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        base_config = super().get_config()
        config = {"max_gain_db": self.max_gain_db, "rate": self.rate, "seed": self.seed}
        return {**base_config, **config}
