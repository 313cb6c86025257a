"""Reproducibility, serialization, mixed precision, jit and properties."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_speechmix import HiddenMixup, SpeechMix, partner_batches


def data(n=48, dim=6, classes=3):
    rng = np.random.RandomState(0)
    return tf.data.Dataset.from_tensor_slices(
        (rng.rand(n, dim).astype("float32"), np.arange(n) % classes))


def sequential():
    return keras.Sequential([
        keras.Input((6,)), HiddenMixup(),
        keras.layers.Dense(8, activation="relu"), HiddenMixup(),
        keras.layers.Dense(8, activation="relu"), HiddenMixup(),
        keras.layers.Dense(3, activation="softmax")])


def functional():
    inputs = keras.Input((6,))
    h = HiddenMixup()(inputs)
    a = keras.layers.Dense(6, activation="relu")(h)
    h = HiddenMixup(rule="sound")(keras.layers.Add()([h, a]))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(h))


def fit_history(seed=0, epochs=2, jit_compile="auto", **batch_kwargs):
    keras.utils.set_random_seed(seed)
    view = SpeechMix(sequential())
    view.compile(optimizer="adam", loss="categorical_crossentropy",
                 jit_compile=jit_compile)
    batches = partner_batches(data(), 8, num_classes=3, mix_points=3, **batch_kwargs)
    return view.fit(batches, epochs=epochs, verbose=0).history["loss"]


def test_fit_is_reproducible():
    tf.config.experimental.enable_op_determinism()
    assert fit_history(0) == fit_history(0)
    assert fit_history(0) != fit_history(1)


@pytest.mark.parametrize("build", [sequential, functional])
def test_keras_round_trip_then_train_again(build, tmp_path):
    model = build()
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    batches = partner_batches(data(), 8, num_classes=3, mix_points=view.num_mix_points,
                              seed=0)
    view.fit(batches, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.rand(7, 6).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    again = SpeechMix(loaded)
    assert again.num_mix_points == view.num_mix_points
    again.compile(optimizer="adam", loss="categorical_crossentropy")
    before = loaded.predict(x, verbose=0)
    history = again.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.array_equal(before, loaded.predict(x, verbose=0))


def test_view_config_round_trip():
    view = SpeechMix(sequential())
    clone = SpeechMix.from_config(view.get_config())
    assert clone.num_mix_points == 3


def test_mixed_precision_training():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        view = SpeechMix(sequential())
        view.compile(optimizer="adam", loss="categorical_crossentropy")
        batches = partner_batches(data(), 8, num_classes=3, mix_points=3, seed=0)
        (x, plan), _ = next(iter(batches))
        out = view.base_model.layers[0](tf.cast(x, "float16"), plan={
            **plan, "point": tf.one_hot(tf.zeros(8, tf.int32), 3, dtype=tf.int32)},
            training=True)
        assert out.dtype == tf.float16
        history = view.fit(batches, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_jit_compiled_training():
    losses = fit_history(0, epochs=2, jit_compile=True)
    assert np.isfinite(losses).all()


def test_masks_flow_through_a_model():
    inputs = keras.Input((5, 3))
    h = keras.layers.Masking(0.0)(inputs)
    h = HiddenMixup()(h)
    outputs = keras.layers.GRU(4)(h)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(outputs))
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.rand(16, 5, 3).astype("float32")
    x[:, 3:] = 0.0  # padded frames
    batches = partner_batches(tf.data.Dataset.from_tensor_slices((x, np.arange(16) % 2)),
                              8, num_classes=2, mix_points=1, seed=0)
    assert np.isfinite(view.fit(batches, epochs=1, verbose=0).history["loss"]).all()


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 9), feature_shape=shapes, data=st.data())
def test_mixed_activation_lies_between_the_pair(batch, feature_shape, data):
    x = np.asarray(data.draw(st.lists(st.floats(-10, 10, width=32, allow_subnormal=False),
                                      min_size=batch * int(np.prod(feature_shape)),
                                      max_size=batch * int(np.prod(feature_shape)))),
                   "float32").reshape([batch] + feature_shape)
    partner = np.asarray(data.draw(st.permutations(range(batch))), "int32")
    ratio = np.asarray(data.draw(st.lists(st.floats(0, 1, width=32), min_size=batch,
                                          max_size=batch)), "float32")
    plan = {"partner": partner, "ratio": ratio, "point": np.ones((batch, 1), "int32")}
    out = keras.ops.convert_to_numpy(
        HiddenMixup(rule="normal", index=0)(x, plan=plan, training=True))
    low, high = np.minimum(x, x[partner]), np.maximum(x, x[partner])
    assert np.all(out >= low - 1e-5) and np.all(out <= high + 1e-5)
    # TF flushes subnormals to zero on CPU, so they are not drawn above.
    ones = {**plan, "ratio": np.ones(batch, "float32")}
    np.testing.assert_array_equal(HiddenMixup(index=0)(x, plan=ones, training=True), x)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 30), batch=st.integers(2, 8), drop=st.booleans(),
       classes=st.integers(2, 5), seed=st.integers(0, 1000))
def test_pipeline_properties(n, batch, drop, classes, seed):
    ds = tf.data.Dataset.from_tensor_slices(
        (np.zeros((n, 2), "float32"), np.arange(n) % classes))
    total = 0
    for (x, plan), y in partner_batches(ds, batch, num_classes=classes, mix_points=2,
                                        drop_remainder=drop, seed=seed):
        rows = len(y)
        total += rows
        np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-5)
        assert np.all((plan["partner"].numpy() >= 0) & (plan["partner"].numpy() < rows))
        r = plan["ratio"].numpy()
        assert np.all((r >= 0) & (r <= 1))
        if rows == 1:
            assert r[0] == 1.0  # a lone clip is left unmixed
    assert total == (n // batch * batch if drop else n)
