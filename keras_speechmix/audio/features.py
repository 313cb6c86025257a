"""Spectrogram front-end layers: log-mel features and SpecAugment masking.

Both are Keras layers, so a model can take raw waveforms (and a saved
`.keras` model carries its front end), and both also run inside `tf.data`.
"""

import math

import keras
from keras import ops

__all__ = ["LogMelSpectrogram", "SpecAugment"]


def _delta(x, order=2):
    """HTK-style regression deltas along the frames axis (-2).

    `d_t = sum_n n * (x_{t+n} - x_{t-n}) / (2 * sum_n n^2)` over `n = 1..order`,
    with the first and last frames repeated at the edges so the output keeps
    the number of frames.
    """
    first, last = x[..., :1, :], x[..., -1:, :]
    padded = ops.concatenate([first] * order + [x] + [last] * order, axis=-2)
    total = None
    for n in range(1, order + 1):
        ahead = padded[..., order + n : (n - order) or None, :]
        behind = padded[..., order - n : -(order + n), :]
        term = float(n) * (ahead - behind)
        total = term if total is None else total + term
    return total / float(2 * sum(n * n for n in range(1, order + 1)))


@keras.saving.register_keras_serializable(package="keras_speechmix")
class LogMelSpectrogram(keras.layers.Layer):
    """Log-mel spectrogram of raw waveforms, optionally with deltas.

    Built on `keras.layers.MelSpectrogram` (Hann window, power spectrum, HTK
    mel filters, `center=True` framing), followed by `log(mel + log_floor)` so
    that silence gives finite values. With `deltas=True`, first- and
    second-order regression deltas (HTK, window 5) are stacked as extra
    channels.

    The layer computes in float32 unless an explicit `dtype` is given, also
    under a `mixed_float16` policy: a power spectrum and its log are not
    safe in float16, and the following layers cast their inputs anyway.

    Args:
        sample_rate: Sample rate of the input waveforms in Hz.
        num_mel_bins: Number of mel bands.
        frame_length_ms: Analysis window length in milliseconds.
        frame_step_ms: Hop between frames in milliseconds.
        fft_length: FFT size; defaults to the next power of two of the frame
            length in samples.
        min_freq: Lowest mel band edge in Hz.
        max_freq: Highest mel band edge in Hz; defaults to `sample_rate / 2`.
        deltas: If `True`, stack regression deltas as extra channels.
        delta_order: With `deltas`, 2 (default) stacks delta and
            delta-delta (3 channels); 1 stacks the delta only (2 channels,
            as Piczak's ESC CNN).
        log_floor: Added to the mel power before the log.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(batch, samples)` or `(batch, samples, 1)` float waveforms (an
        unbatched `(samples,)` waveform also works, e.g. inside `tf.data`).

    Output shape:
        `(batch, frames, num_mel_bins, channels)` with
        `frames = 1 + samples // frame_step` and `channels` 1, or
        `1 + delta_order` with deltas.

    Example:

    >>> import numpy as np
    >>> layer = LogMelSpectrogram(sample_rate=16000, num_mel_bins=40, deltas=True)
    >>> layer(np.zeros((2, 16000), "float32")).shape
    TensorShape([2, 101, 40, 3])
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mel_bins=64,
        frame_length_ms=25.0,
        frame_step_ms=10.0,
        fft_length=None,
        min_freq=20.0,
        max_freq=None,
        deltas=False,
        log_floor=1e-6,
        delta_order=2,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not sample_rate or sample_rate <= 0:
            raise ValueError(f"LogMelSpectrogram: sample_rate must be > 0; got {sample_rate!r}")
        if not num_mel_bins or num_mel_bins <= 0:
            raise ValueError(f"LogMelSpectrogram: num_mel_bins must be > 0; got {num_mel_bins!r}")
        frame_length = int(round(sample_rate * frame_length_ms / 1000.0))
        frame_step = int(round(sample_rate * frame_step_ms / 1000.0))
        if frame_length < 2 or frame_step < 1:
            raise ValueError(
                "LogMelSpectrogram: frame_length_ms/frame_step_ms give "
                f"{frame_length}/{frame_step} samples at {sample_rate} Hz; "
                "need at least 2 and 1"
            )
        resolved_fft = fft_length or 2 ** math.ceil(math.log2(frame_length))
        if resolved_fft < frame_length:
            raise ValueError(
                f"LogMelSpectrogram: fft_length={fft_length} is shorter than the "
                f"frame ({frame_length} samples = {frame_length_ms} ms at {sample_rate} Hz)"
            )
        nyquist = sample_rate / 2.0
        top = nyquist if max_freq is None else float(max_freq)
        if not 0 <= min_freq < top <= nyquist:
            raise ValueError(
                "LogMelSpectrogram: need 0 <= min_freq < max_freq <= sample_rate / 2; "
                f"got min_freq={min_freq}, max_freq={max_freq}, sample_rate={sample_rate}"
            )
        if log_floor <= 0:
            raise ValueError(f"LogMelSpectrogram: log_floor must be > 0; got {log_floor!r}")
        if delta_order not in (1, 2) or isinstance(delta_order, bool):
            raise ValueError(f"LogMelSpectrogram: delta_order must be 1 or 2; got {delta_order!r}")
        self.sample_rate = int(sample_rate)
        self.num_mel_bins = int(num_mel_bins)
        self.frame_length_ms = float(frame_length_ms)
        self.frame_step_ms = float(frame_step_ms)
        self.fft_length = fft_length
        self.min_freq = float(min_freq)
        self.max_freq = max_freq
        self.deltas = bool(deltas)
        self.log_floor = float(log_floor)
        self.delta_order = int(delta_order)
        self.frame_length = frame_length
        self.frame_step = frame_step
        self._mel = keras.layers.MelSpectrogram(
            fft_length=resolved_fft,
            sequence_stride=frame_step,
            sequence_length=frame_length,
            window="hann",
            sampling_rate=self.sample_rate,
            num_mel_bins=self.num_mel_bins,
            min_freq=self.min_freq,
            max_freq=top,
            # Keras' dB scaling clips at top_db below the max of the whole
            # batch, which would make one clip's features depend on the others.
            power_to_db=False,
            dtype="float32",
            name="mel",
        )

    @property
    def channels(self):
        """Number of output channels: 1, plus `delta_order` with deltas."""
        return 1 + self.delta_order if self.deltas else 1

    def build(self, input_shape):
        self.built = True

    def call(self, inputs):
        x = ops.convert_to_tensor(inputs)
        if len(x.shape) == 3:
            if x.shape[-1] != 1:
                raise ValueError(
                    "LogMelSpectrogram expects mono waveforms of shape (batch, samples) "
                    f"or (batch, samples, 1); got shape {tuple(x.shape)}"
                )
            x = ops.squeeze(x, axis=-1)
        elif len(x.shape) not in (1, 2):
            raise ValueError(
                "LogMelSpectrogram expects waveforms of shape (batch, samples); "
                f"got shape {tuple(x.shape)}"
            )
        x = ops.cast(x, "float32")
        mel = ops.swapaxes(self._mel(x), -1, -2)  # (..., frames, mels)
        logmel = ops.log(ops.cast(mel, "float32") + self.log_floor)
        if self.deltas:
            channels = [logmel, _delta(logmel)]
            if self.delta_order == 2:
                channels.append(_delta(channels[-1]))
            features = ops.stack(channels, axis=-1)
        else:
            features = ops.expand_dims(logmel, -1)
        return ops.cast(features, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) == 3:
            input_shape = input_shape[:2]
        samples = input_shape[-1]
        frames = None if samples is None else 1 + samples // self.frame_step
        return input_shape[:-1] + (frames, self.num_mel_bins, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "num_mel_bins": self.num_mel_bins,
                "frame_length_ms": self.frame_length_ms,
                "frame_step_ms": self.frame_step_ms,
                "fft_length": self.fft_length,
                "min_freq": self.min_freq,
                "max_freq": self.max_freq,
                "deltas": self.deltas,
                "log_floor": self.log_floor,
                "delta_order": self.delta_order,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_speechmix")
class SpecAugment(keras.layers.Layer):
    """SpecAugment time and frequency masking, active only in training.

    Each example gets `time_masks` bands of `0..time_mask_width` consecutive
    frames and `freq_masks` bands of `0..freq_mask_width` consecutive mel bins
    (widths and positions drawn uniformly, independently per example), across
    all channels. Masked cells are set to zero or to the example's mean value
    (per channel). At inference (`training` false or unset) the layer is the
    identity.

    Args:
        time_masks: Number of time masks per example.
        time_mask_width: Largest time mask, in frames.
        freq_masks: Number of frequency masks per example.
        freq_mask_width: Largest frequency mask, in mel bins.
        fill: `"zero"` or `"mean"`.
        seed: Integer seed for the layer's `keras.random.SeedGenerator`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Input shape:
        `(batch, frames, mels, channels)` (or unbatched
        `(frames, mels, channels)`).

    Output shape:
        Same as the input, same dtype.

    Example:

    >>> import numpy as np
    >>> layer = SpecAugment(time_masks=1, time_mask_width=5, freq_masks=1,
    ...                     freq_mask_width=3, seed=0)
    >>> x = np.ones((2, 50, 40, 1), "float32")
    >>> bool((layer(x) == x).numpy().all())  # inference: unchanged
    True
    >>> layer(x, training=True).shape
    TensorShape([2, 50, 40, 1])
    """

    def __init__(
        self,
        time_masks=2,
        time_mask_width=20,
        freq_masks=2,
        freq_mask_width=8,
        fill="zero",
        seed=None,
        **kwargs,
    ):
        # Masking must not change the precision of what flows through it.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        for name, value in (
            ("time_masks", time_masks),
            ("time_mask_width", time_mask_width),
            ("freq_masks", freq_masks),
            ("freq_mask_width", freq_mask_width),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SpecAugment: {name} must be an int >= 0; got {value!r}")
        if fill not in ("zero", "mean"):
            raise ValueError(f"SpecAugment: fill must be 'zero' or 'mean'; got {fill!r}")
        self.time_masks = time_masks
        self.time_mask_width = time_mask_width
        self.freq_masks = freq_masks
        self.freq_mask_width = freq_mask_width
        self.fill = fill
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        if training:
            return self._augment(inputs)
        return inputs

    def _bands(self, batch, size, count, max_width):
        """Boolean `(batch, size)`: True inside any of `count` random bands."""
        u = keras.random.uniform((batch, count, 2), seed=self.seed_generator)
        size_f = ops.cast(size, "float32")
        widest = ops.minimum(float(max_width), size_f)
        width = ops.floor(u[..., 0] * (widest + 1.0))
        start = ops.floor(u[..., 1] * (size_f - width + 1.0))
        position = ops.cast(ops.arange(size), "float32")[None, None, :]
        inside = (position >= start[..., None]) & (position < (start + width)[..., None])
        return ops.any(inside, axis=1)

    def _augment(self, inputs):
        x = ops.convert_to_tensor(inputs)
        unbatched = len(x.shape) == 3
        if unbatched:
            x = x[None]
        if len(x.shape) != 4:
            raise ValueError(
                "SpecAugment expects inputs of shape (batch, frames, mels, channels); "
                f"got shape {tuple(inputs.shape)}"
            )
        batch, frames, mels = ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[2]
        masked = None
        if self.time_masks and self.time_mask_width:
            band = self._bands(batch, frames, self.time_masks, self.time_mask_width)
            masked = band[:, :, None]
        if self.freq_masks and self.freq_mask_width:
            band = self._bands(batch, mels, self.freq_masks, self.freq_mask_width)
            band = band[:, None, :]
            masked = band if masked is None else (masked | band)
        if masked is not None:
            if self.fill == "mean":
                fill = ops.mean(x, axis=(1, 2), keepdims=True)
            else:
                fill = ops.zeros((), x.dtype)
            x = ops.where(masked[..., None], ops.cast(fill, x.dtype), x)
        return x[0] if unbatched else x

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "time_masks": self.time_masks,
                "time_mask_width": self.time_mask_width,
                "freq_masks": self.freq_masks,
                "freq_mask_width": self.freq_mask_width,
                "fill": self.fill,
                "seed": self.seed,
            }
        )
        return config
