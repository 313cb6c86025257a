"""Tests of the reference networks (`keras_speechmix.models`).

The mixing itself is tested with the layer and the training view; here the
networks are checked as plain Keras models: shapes against the original
EnvNet-v2, the mixing points they carry, argument checks, inference
determinism, saving, and that they train.
"""

import keras
import numpy as np
import pytest

from keras_speechmix.layer import HiddenMixup
from keras_speechmix.models import envnet_v2, logmel_cnn

ENVNET_MIN_LENGTH = 17502  # shortest input leaving conv10 one time step


def mix_names(model):
    return [layer.name for layer in model.layers
            if isinstance(layer, HiddenMixup)]


def waves(batch, length, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((batch, length))).astype("float32")


# --- envnet_v2 --------------------------------------------------------------


def test_envnet_v2_matches_the_original_at_66650_samples():
    model = envnet_v2(10)
    assert model.input_shape == (None, 66650)
    assert model.output_shape == (None, 10)
    assert mix_names(model) == ["mix_0", "mix_1", "mix_2", "mix_3", "mix_4"]
    # The Chainer model's fc11 takes 256 * 10 * 8 inputs.
    assert model.get_layer("pool10").output.shape[1:] == (10, 8, 256)
    assert model.get_layer("fc11").kernel.shape == (256 * 10 * 8, 4096)
    # Point 1 is the "image" after the axis swap: 64 filters high, 1 channel.
    assert model.get_layer("mix_1").output.shape[1:] == (64, 260, 1)
    assert model.count_params() == 101_089_418
    # The authors mix waveforms with BC's rule; hidden points follow the plan.
    assert [model.get_layer(n).rule for n in mix_names(model)] == [
        "sound", "auto", "auto", "auto", "auto"]
    probs = model(waves(1, 66650), training=False)
    assert probs.shape == (1, 10)
    np.testing.assert_allclose(np.sum(probs), 1.0, rtol=1e-5)


def test_envnet_v2_batch_norm_follows_chainer():
    model = envnet_v2(3, input_length=ENVNET_MIN_LENGTH, mix_points=(1,))
    norms = [l for l in model.layers
             if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == 10
    assert all(l.momentum == pytest.approx(0.9) for l in norms)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 32, 32, 64, 64, 128, 128,
                                         256, 256]
    assert not any(c.use_bias for c in convs)


@pytest.mark.parametrize("points", [(0,), (1, 2, 3, 4), (4, 2), (3, 0, 1)])
def test_envnet_v2_inserts_the_requested_points_in_order(points):
    model = envnet_v2(5, input_length=24000, mix_points=points)
    assert mix_names(model) == [f"mix_{p}" for p in sorted(points)]
    assert len(mix_names(model)) == len(points)
    assert model.predict(waves(2, 24000), verbose=0).shape == (2, 5)


@pytest.mark.parametrize(
    "points", [(), (0, 0), (5,), (-1,), ("1",), (1.0,), (True,), None])
def test_envnet_v2_rejects_invalid_mix_points(points):
    with pytest.raises(ValueError, match="mix_points"):
        envnet_v2(10, mix_points=points)


def test_envnet_v2_too_short_input_names_the_minimum():
    model = envnet_v2(4, input_length=ENVNET_MIN_LENGTH)
    assert model.get_layer("pool10").output.shape[1:] == (10, 1, 256)
    for length in (ENVNET_MIN_LENGTH - 1, 16000, 100):
        with pytest.raises(ValueError, match=f"input_length >= {ENVNET_MIN_LENGTH}"):
            envnet_v2(4, input_length=length)


# --- logmel_cnn -------------------------------------------------------------


def test_logmel_cnn_predicts_on_raw_waveforms():
    model = logmel_cnn(7)
    assert model.input_shape == (None, 16000)
    assert mix_names(model) == ["mix_input", "mix_block1", "mix_block2",
                                "mix_block3", "mix_pooled"]
    probs = model.predict(waves(3, 16000), verbose=0)
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    norms = [l for l in model.layers
             if isinstance(l, keras.layers.BatchNormalization)]
    assert all(l.momentum == pytest.approx(0.9) for l in norms)


def test_logmel_cnn_points_follow_network_order():
    model = logmel_cnn(3, sample_rate=8000, input_length=8000,
                       num_mel_bins=32, filters=(8, 16),
                       mix_points=("pooled", "block2", "waveform", "input"))
    assert mix_names(model) == ["mix_waveform", "mix_input", "mix_block2",
                                "mix_pooled"]
    assert model.get_layer("mix_waveform").output.shape == (None, 8000)
    assert model.get_layer("mix_waveform").rule == "sound"
    assert model.get_layer("mix_input").output.shape == (None, 101, 32, 1)
    assert model.predict(waves(2, 8000), verbose=0).shape == (2, 3)


@pytest.mark.parametrize("points", [
    ("input", "block4"), ("Input",), (), ("block1", "block1"), ("logmel",), 3])
def test_logmel_cnn_rejects_invalid_mix_points(points):
    with pytest.raises(ValueError, match="mix_points") as info:
        logmel_cnn(10, mix_points=points)
    assert "'waveform', 'input', 'block1', 'block2', 'block3', 'pooled'" in str(
        info.value)


def test_logmel_cnn_rejects_other_invalid_arguments():
    with pytest.raises(ValueError, match="filters"):
        logmel_cnn(10, filters=())
    with pytest.raises(ValueError, match="spec_augment"):
        logmel_cnn(10, spec_augment="yes")
    with pytest.raises(ValueError, match="num_classes"):
        logmel_cnn(1)


def test_logmel_cnn_inference_is_deterministic():
    model = logmel_cnn(4, filters=(8, 16), spec_augment=True, dropout=0.5)
    x = waves(4, 16000, seed=1)
    first = keras.ops.convert_to_numpy(model(x, training=False))
    second = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(model.predict(x, verbose=0), first,
                               rtol=1e-5, atol=1e-6)


def test_logmel_cnn_keras_round_trip(tmp_path):
    model = logmel_cnn(5, filters=(8, 16, 16), spec_augment=True,
                       mix_points=("waveform", "block1", "pooled"))
    x = waves(3, 16000, seed=2)
    # Move the batch-norm statistics off their initial values, so the check
    # covers the non-trainable weights too.
    model.compile("adam", "categorical_crossentropy", jit_compile=False)
    model.fit(x, np.eye(5, dtype="float32")[[0, 1, 2]], epochs=1, verbose=0)
    path = tmp_path / "logmel_cnn.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert mix_names(restored) == ["mix_waveform", "mix_block1", "mix_pooled"]
    np.testing.assert_array_equal(restored.predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_logmel_cnn_trains_to_a_finite_loss():
    model = logmel_cnn(4, filters=(8, 16), spec_augment=True)
    x = waves(16, 16000, seed=3)
    y = np.eye(4, dtype="float32")[np.arange(16) % 4]
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy",
                  jit_compile=False)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_envnet_v2_trains_to_a_finite_loss():
    model = envnet_v2(3, input_length=ENVNET_MIN_LENGTH, mix_points=(1, 2))
    x = waves(4, ENVNET_MIN_LENGTH, seed=4)
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  "categorical_crossentropy", jit_compile=False)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_logmel_cnn_default_points_follow_filters():
    model = logmel_cnn(3, filters=(8, 16))
    assert mix_names(model) == ["mix_input", "mix_block1", "mix_block2",
                                "mix_pooled"]
    assert mix_names(logmel_cnn(3, mix_points="block3")) == ["mix_block3"]


def test_logmel_cnn_dense_head_flattens_and_adds_points():
    model = logmel_cnn(4, filters=(8, 16), pooling="flatten", dense_units=(32, 16),
                       mix_points=("input", "dense1", "dense2"))
    assert mix_names(model) == ["mix_input", "mix_dense1", "mix_dense2"]
    # 101 frames x 64 bands pooled twice: 26 x 16 positions of 16 channels.
    assert model.get_layer("pool").output.shape == (None, 26 * 16 * 16)
    assert model.get_layer("mix_dense2").output.shape == (None, 16)
    assert model.predict(waves(2, 16000), verbose=0).shape == (2, 4)
    # The default points stay SpeechMix's: the input, the blocks and pooled.
    assert mix_names(logmel_cnn(4, filters=(8,), dense_units=(8,))) == [
        "mix_input", "mix_block1", "mix_pooled"]
    with pytest.raises(ValueError, match="pooling"):
        logmel_cnn(4, pooling="max")
    with pytest.raises(ValueError, match="dense_units"):
        logmel_cnn(4, dense_units=(0,))


def test_piczak_cnn_follows_the_paper_at_41_frames():
    from keras_speechmix.models import piczak_cnn

    model = piczak_cnn(10)
    assert model.input_shape == (None, 20480)
    assert model.get_layer("logmel").output.shape == (None, 41, 60, 2)  # + delta
    assert model.get_layer("conv1").kernel.shape == (6, 57, 2, 80)
    assert model.get_layer("pool1").output.shape == (None, 12, 1, 80)
    assert model.get_layer("pool2").output.shape == (None, 3, 1, 80)
    assert model.get_layer("fc2").kernel.shape == (5000, 5000)
    # 26.3 M parameters, as Piczak's network plus its batch norms.
    assert 26.3e6 < model.count_params() < 26.4e6
    assert mix_names(model) == ["mix_input", "mix_block1", "mix_block2"]
    dropouts = [l.rate for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert dropouts == [0.5, 0.5, 0.5]


def test_piczak_cnn_points_and_errors():
    from keras_speechmix.models import piczak_cnn

    model = piczak_cnn(3, hidden_units=16,
                       mix_points=("fc2", "waveform", "block2", "fc1"))
    assert mix_names(model) == ["mix_waveform", "mix_block2", "mix_fc1", "mix_fc2"]
    probs = model.predict(waves(2, 20480), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="mix_points"):
        piczak_cnn(3, mix_points=("block3",))
    with pytest.raises(ValueError, match="at least 20"):
        piczak_cnn(3, input_length=8000)
    with pytest.raises(ValueError, match="num_mel_bins"):
        piczak_cnn(3, num_mel_bins=40)


def test_hidden_gain_source_reaches_every_hidden_point():
    model = logmel_cnn(3, input_length=8000, mix_points=("waveform", "block1", "block2"),
                       hidden_gain="activation")
    mixers = {l.name: (l.rule, l.gain) for l in model.layers if isinstance(l, HiddenMixup)}
    # The waveform keeps BC's rule with the clips' own gains (from the plan).
    assert mixers == {"mix_waveform": ("sound", "plan"),
                      "mix_block1": ("sound", "activation"),
                      "mix_block2": ("sound", "activation")}
    envnet = envnet_v2(3, input_length=24000, mix_points=(0, 2), hidden_gain="activation")
    assert [l.gain for l in envnet.layers if isinstance(l, HiddenMixup)] == ["plan", "activation"]
    with pytest.raises(ValueError, match="hidden_gain"):
        logmel_cnn(3, hidden_gain="input")
