"""Tests for keras_speechmix.audio.features: LogMelSpectrogram and SpecAugment."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix.audio.features import LogMelSpectrogram, SpecAugment


def tone(freq, seconds=1.0, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --------------------------------------------------------------------------
# LogMelSpectrogram


def test_logmel_shapes():
    x = np.zeros((3, 16000), np.float32)
    out = LogMelSpectrogram(num_mel_bins=40)(x)
    assert out.shape == (3, 101, 40, 1) and out.dtype == tf.float32
    deltas = LogMelSpectrogram(num_mel_bins=40, deltas=True)
    assert deltas(x).shape == (3, 101, 40, 3)
    assert deltas.compute_output_shape((None, 16000)) == (None, 101, 40, 3)
    assert deltas.compute_output_shape((None, None)) == (None, None, 40, 3)
    # (batch, samples, 1) and unbatched inputs are accepted too.
    assert deltas(x[..., None]).shape == (3, 101, 40, 3)
    assert deltas(x[0]).shape == (101, 40, 3)
    eight_k = LogMelSpectrogram(sample_rate=8000, num_mel_bins=32, frame_step_ms=20.0)
    assert eight_k(np.zeros((1, 8000), np.float32)).shape == (1, 51, 32, 1)


def test_logmel_is_finite_on_silence():
    out = LogMelSpectrogram(deltas=True)(np.zeros((2, 4000), np.float32)).numpy()
    assert np.isfinite(out).all()
    assert out[..., 0].max() == pytest.approx(np.log(1e-6), abs=1e-3)
    assert np.abs(out[..., 1:]).max() == 0.0


def test_logmel_energy_lands_in_the_right_band():
    layer = LogMelSpectrogram(num_mel_bins=64)
    low, high = layer(np.stack([tone(300), tone(3000)])).numpy()[..., 0]
    peak_low, peak_high = low.mean(0).argmax(), high.mean(0).argmax()
    assert peak_low < peak_high
    # The 3 kHz tone's band, not a neighbour's, holds its energy.
    mel = 1127.0 * np.log(1 + np.array([20.0, 3000.0, 8000.0]) / 700.0)
    expected = (mel[1] - mel[0]) / (mel[2] - mel[0]) * 65 - 1
    assert abs(peak_high - expected) <= 1.5


def test_logmel_output_does_not_depend_on_batch_mates():
    layer = LogMelSpectrogram()
    quiet = 0.001 * tone(500)
    alone = layer(quiet[None]).numpy()
    together = layer(np.stack([quiet, tone(500) * 1.5])).numpy()[:1]
    np.testing.assert_allclose(alone, together, atol=1e-4)


def test_deltas_follow_the_htk_regression():
    from keras_speechmix.audio.features import _delta

    ramp = np.tile(np.arange(10, dtype=np.float32)[None, :, None], (1, 1, 4)) * 2.0
    d = _delta(tf.constant(ramp)).numpy()
    np.testing.assert_allclose(d[0, 2:-2], 2.0, atol=1e-6)  # slope inside
    assert d[0, 0, 0] == pytest.approx((1 * 2 + 2 * 4) / 10)  # edge repeated


def test_logmel_delta_order_one_gives_two_channels():
    from keras_speechmix.audio.features import _delta

    one = LogMelSpectrogram(sample_rate=8000, num_mel_bins=20, deltas=True, delta_order=1)
    two = LogMelSpectrogram(sample_rate=8000, num_mel_bins=20, deltas=True)
    x = np.random.default_rng(0).normal(size=(2, 8000)).astype("float32")
    a, b = one(x).numpy(), two(x).numpy()
    assert a.shape[-1] == 2 and b.shape[-1] == 3
    np.testing.assert_allclose(a, b[..., :2], atol=1e-5)
    np.testing.assert_allclose(a[..., 1], _delta(tf.constant(a[..., 0])).numpy(), atol=1e-4)
    assert one.get_config()["delta_order"] == 1
    with pytest.raises(ValueError, match="delta_order"):
        LogMelSpectrogram(deltas=True, delta_order=3)


def test_logmel_in_tf_data():
    layer = LogMelSpectrogram(num_mel_bins=32, deltas=True)
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8000), np.float32))
    batches = list(ds.batch(2).map(layer))
    assert [tuple(b.shape) for b in batches] == [(2, 51, 32, 3)] * 2


def test_logmel_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        front = LogMelSpectrogram(num_mel_bins=32)
        inputs = keras.Input((8000,))
        features = front(inputs)
        conv = keras.layers.Conv2D(4, 3)(features)
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv))
        assert front.compute_dtype == "float32" and features.dtype == "float32"
        assert conv.dtype == "float16"
        out = model.predict(np.zeros((2, 8000), np.float32), verbose=0)
        assert np.isfinite(out).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_logmel_argument_errors():
    with pytest.raises(ValueError, match="fft_length"):
        LogMelSpectrogram(fft_length=128)
    with pytest.raises(ValueError, match="max_freq"):
        LogMelSpectrogram(sample_rate=8000, max_freq=6000)
    with pytest.raises(ValueError, match="mono waveforms"):
        LogMelSpectrogram()(np.zeros((1, 100, 2), np.float32))


# --------------------------------------------------------------------------
# SpecAugment


def test_specaugment_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(4, 60, 40, 2)).astype(np.float32)
    layer = SpecAugment(seed=1)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


def test_specaugment_masks_whole_bands_in_training():
    x = np.ones((16, 100, 40, 2), np.float32)
    layer = SpecAugment(time_masks=2, time_mask_width=10, freq_masks=1, freq_mask_width=5, seed=3)
    out = layer(x, training=True).numpy()
    masked = out == 0
    assert masked.any()
    assert np.array_equal(masked[..., 0], masked[..., 1])  # all channels alike
    for example in masked[..., 0]:
        rows = example.all(axis=1)  # frames masked across all mels
        cols = example.all(axis=0)  # mels masked across all frames
        # Every masked cell is explained by a time or a frequency band...
        assert np.array_equal(example, rows[:, None] | cols[None, :])
        # ...and the bands respect the width limits.
        assert rows.sum() <= 2 * 10 and cols.sum() <= 5
    # Examples get independent masks, and each call draws new ones.
    assert len({m[..., 0].tobytes() for m in masked}) > 1
    assert not np.array_equal(out, layer(x, training=True).numpy())


def test_specaugment_mean_fill_and_seed_reproducibility():
    x = np.random.default_rng(1).normal(5.0, 1.0, size=(2, 50, 20, 1)).astype(np.float32)
    a = SpecAugment(time_masks=1, time_mask_width=20, freq_masks=0, fill="mean", seed=7)
    b = SpecAugment(time_masks=1, time_mask_width=20, freq_masks=0, fill="mean", seed=7)
    out_a, out_b = a(x, training=True).numpy(), b(x, training=True).numpy()
    np.testing.assert_array_equal(out_a, out_b)
    changed = out_a != x
    for i in range(2):
        if changed[i].any():
            np.testing.assert_allclose(out_a[i][changed[i]], x[i].mean(), rtol=1e-5)


def test_specaugment_in_tf_data_and_unbatched():
    layer = SpecAugment(time_masks=1, time_mask_width=5, freq_masks=1, freq_mask_width=3, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(np.ones((4, 30, 16, 1), np.float32))
    unbatched = [x.numpy() for x in ds.map(lambda x: layer(x, training=True))]
    assert all(u.shape == (30, 16, 1) for u in unbatched)
    assert any((u == 0).any() for u in unbatched)
    batched = list(ds.batch(2).map(lambda x: layer(x, training=True)))
    assert [tuple(b.shape) for b in batched] == [(2, 30, 16, 1)] * 2


def test_specaugment_argument_errors():
    with pytest.raises(ValueError, match="time_masks"):
        SpecAugment(time_masks=-1)
    with pytest.raises(ValueError, match="fill"):
        SpecAugment(fill="noise")


# --------------------------------------------------------------------------
# Serialisation


def test_keras_round_trip(tmp_path):
    inputs = keras.Input((8000,))
    x = LogMelSpectrogram(sample_rate=8000, num_mel_bins=32, deltas=True, max_freq=3800.0)(inputs)
    x = SpecAugment(time_masks=1, freq_masks=1, fill="mean", seed=5)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    waves = np.random.default_rng(2).normal(0, 0.1, (4, 8000)).astype(np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(model.predict(waves, verbose=0), loaded.predict(waves, verbose=0))
    for original, restored in zip(model.layers[1:3], loaded.layers[1:3]):
        assert type(restored) is type(original)
        assert restored.get_config() == original.get_config()


def test_layers_are_registered():
    registered = keras.saving.get_registered_object
    assert registered("keras_speechmix>LogMelSpectrogram") is LogMelSpectrogram
    assert registered("keras_speechmix>SpecAugment") is SpecAugment
