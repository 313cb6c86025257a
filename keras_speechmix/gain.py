"""Waveform gain in decibels, as BC learning measures it.

BC learning (Tokozume et al., 2018) and the SpeechMix authors mix two sounds
with a ratio corrected by their gains, so that a quiet clip is not drowned by
a loud one. The gain of a clip is the loudest frame's A-weighted power (or
mean square, without a sample rate), in dB, floored at `min_db` so that
silence gives a finite value instead of -inf.

`gain_db` computes it in TensorFlow (the tf.data pipeline), `gain_db_numpy`
in NumPy (`PartnerBatches`, without TensorFlow); both share the framing and
the A-weighting below, so the two agree to float32 round-off.
"""

import math

import numpy as np

__all__ = ["gain_db", "gain_db_numpy"]


def _a_weighting_db(sample_rate, fft_length, min_db):
    # IEC 61672 A-weighting per FFT bin, written as in BC learning's utils.
    freq = np.linspace(0.0, sample_rate / 2.0, fft_length // 2 + 1)
    freq_sq = np.maximum(freq**2, 1.0)
    weight = 2.0 + 20.0 * (
        2 * np.log10(12194.0)
        + 2 * np.log10(freq_sq)
        - np.log10(freq_sq + 12194.0**2)
        - np.log10(freq_sq + 20.6**2)
        - 0.5 * np.log10(freq_sq + 107.7**2)
        - 0.5 * np.log10(freq_sq + 737.9**2)
    )
    return np.maximum(weight, min_db).astype(np.float32)


def _fft_length(sample_rate):
    return 2048 if (sample_rate or 16000) <= 22050 else 4096


def _has_channel_axis(rank, shape):
    """Checks a waveform batch's shape; returns whether it ends in a channel."""
    if rank == 3:
        if shape[-1] != 1:
            raise ValueError(
                "gain_db expects mono waveforms (batch, samples) or "
                f"(batch, samples, 1); received shape {shape}."
            )
        return True
    if rank != 2:
        raise ValueError(
            "gain_db expects waveforms of shape (batch, samples); received "
            f"shape {shape}. BC ratios need raw waveforms as `x`."
        )
    return False


def gain_db(waves, sample_rate=None, min_db=-80.0):
    """Per-clip gain in dB of a batch of waveforms.

    With `sample_rate`, the gain is BC learning's A-weighted one: the largest
    A-weighted frame power over Hann-windowed frames (2048 samples up to
    22.05 kHz, 4096 above, half overlap). Without it, the largest frame mean
    square ("RMSE" mode in BC learning). Waveforms are expected in [-1, 1].

    Args:
        waves: float tensor `(batch, samples)` or `(batch, samples, 1)`.
        sample_rate: Python int or `None` (mean-square gain).
        min_db: floor in dB; silence gives exactly `min_db`.

    Returns:
        float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> waves = np.stack([np.zeros(4000), 0.5 * np.ones(4000)]).astype("float32")
    >>> [round(float(g), 1) for g in gain_db(waves)]
    [-80.0, -6.0]
    """
    # Imported here so that the NumPy twin below works without TensorFlow.
    import tensorflow as tf

    waves = tf.convert_to_tensor(waves)
    if _has_channel_axis(waves.shape.rank, waves.shape):
        waves = waves[..., 0]
    waves = tf.cast(waves, tf.float32)
    fft_length = _fft_length(sample_rate)
    # Short clips still get one frame: pad up to the frame length.
    missing = tf.maximum(fft_length - tf.shape(waves)[1], 0)
    waves = tf.pad(waves, [[0, 0], [0, missing]])
    frames = tf.signal.frame(waves, fft_length, fft_length // 2)
    if sample_rate is None:
        power = tf.reduce_mean(tf.square(frames), axis=-1)
    else:
        window = tf.signal.hann_window(fft_length, periodic=True)
        spectrum = tf.signal.rfft(frames * window)
        weight = 10.0 ** (_a_weighting_db(sample_rate, fft_length, min_db) / 10.0)
        power = tf.reduce_sum(tf.square(tf.abs(spectrum)) * weight, axis=-1)
    floor = math.pow(10.0, min_db / 10.0)
    power = tf.maximum(tf.reduce_max(power, axis=-1), floor)
    return 10.0 * tf.math.log(power) / math.log(10.0)


def gain_db_numpy(waves, sample_rate=None, min_db=-80.0):
    """`gain_db` in NumPy: the same gains, without TensorFlow.

    `keras_speechmix.PartnerBatches(ratio="bc")` measures gains with it.

    Args:
        waves: float array `(batch, samples)` or `(batch, samples, 1)`.
        sample_rate: Python int or `None` (mean-square gain).
        min_db: floor in dB; silence gives exactly `min_db`.

    Returns:
        float32 array `(batch,)`.

    Example:

    >>> waves = np.stack([np.zeros(4000), 0.5 * np.ones(4000)]).astype("float32")
    >>> [round(float(g), 1) for g in gain_db_numpy(waves)]
    [-80.0, -6.0]
    """
    waves = np.asarray(waves, np.float32)
    if _has_channel_axis(waves.ndim, waves.shape):
        waves = waves[..., 0]
    fft_length = _fft_length(sample_rate)
    missing = max(fft_length - waves.shape[1], 0)
    if missing:
        waves = np.pad(waves, [(0, 0), (0, missing)])
    # Whole frames only, hop fft_length / 2, as tf.signal.frame makes them.
    frames = np.lib.stride_tricks.sliding_window_view(
        waves, fft_length, axis=1)[:, ::fft_length // 2]
    if sample_rate is None:
        power = np.mean(np.square(frames, dtype=np.float64), axis=-1)
    else:
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fft_length) / fft_length)
        spectrum = np.fft.rfft(frames * window, axis=-1)
        weight = 10.0 ** (_a_weighting_db(sample_rate, fft_length, min_db) / 10.0)
        power = np.sum(np.square(np.abs(spectrum)) * weight, axis=-1)
    floor = 10.0 ** (min_db / 10.0)
    power = np.maximum(np.max(power, axis=-1), floor)
    return (10.0 * np.log10(power)).astype(np.float32)
