import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix import HiddenMixup, SpeechMix, partner_batches


def onehot_dataset(num_classes=5, n=40):
    labels = np.arange(n) % num_classes
    x = np.eye(num_classes, dtype="float32")[labels]
    return tf.data.Dataset.from_tensor_slices((x, labels))


def small_model(dim=6, classes=3, name=None):
    return keras.Sequential([
        keras.Input((dim,)), HiddenMixup(),
        keras.layers.Dense(8, activation="relu"), HiddenMixup(),
        keras.layers.Dense(classes, activation="softmax"),
    ], name=name)


def test_layer_and_labels_use_the_same_plan():
    # x_i = one_hot(label_i): a mixed input must equal the mixed label exactly.
    model = keras.Sequential([keras.Input((5,)), HiddenMixup(), HiddenMixup()])
    view = SpeechMix(model)
    batches = partner_batches(onehot_dataset(), 8, num_classes=5,
                              mix_points=view.num_mix_points, seed=0)
    checked = 0
    for (x, plan), y in batches.repeat(3):
        out = view((x, plan), training=True)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), y.numpy())
        checked += int(np.any(plan["ratio"].numpy() < 1))
    assert checked >= 10


def test_view_shares_weights_and_predictions_are_unchanged():
    model = small_model()
    x = np.random.rand(16, 6).astype("float32")
    before = model.predict(x, verbose=0)
    view = SpeechMix(model)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)
    np.testing.assert_array_equal(view.predict(x, verbose=0), before)
    assert [id(w) for w in view.trainable_weights] == [id(w) for w in model.trainable_weights]
    assert {id(w) for w in model.weights} <= {id(w) for w in view.weights}
    assert view.num_mix_points == 2
    assert [layer.index for layer in model.layers if isinstance(layer, HiddenMixup)] == [0, 1]


def test_fit_updates_the_original_model_and_validation_without_plan():
    model = small_model()
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.rand(32, 6).astype("float32")
    labels = np.arange(32) % 3
    train = partner_batches(tf.data.Dataset.from_tensor_slices((x, labels)), 8,
                            num_classes=3, mix_points=2, seed=0)
    val = (x, np.eye(3, dtype="float32")[labels])
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = view.fit(train, validation_data=val, epochs=2, verbose=0)
    assert np.isfinite(history.history["val_loss"]).all()
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_functional_model_with_skip_connection():
    inputs = keras.Input((6,))
    h = HiddenMixup()(inputs)
    a = keras.layers.Dense(6, activation="relu")(h)
    h = HiddenMixup()(keras.layers.Add()([a, h]))
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    view = SpeechMix(model)
    assert view.num_mix_points == 2
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices(
        (np.random.rand(16, 6).astype("float32"), np.arange(16) % 3))
    history = view.fit(partner_batches(ds, 8, num_classes=3, mix_points=2, seed=0),
                       epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_nested_model_points_are_found_in_order():
    inner = keras.Sequential([keras.Input((4,)), HiddenMixup(name="inner_mix"),
                              keras.layers.Dense(4)])
    outer = keras.Sequential([keras.Input((4,)), HiddenMixup(name="outer_mix"), inner,
                              keras.layers.Dense(2)])
    SpeechMix(outer)
    assert outer.layers[0].index == 0 and inner.layers[0].index == 1


def test_saved_model_round_trip(tmp_path):
    model = small_model()
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices(
        (np.random.rand(16, 6).astype("float32"), np.arange(16) % 3))
    view.fit(partner_batches(ds, 8, num_classes=3, mix_points=2, seed=0), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.rand(5, 6).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    mixers = [layer for layer in loaded.layers if isinstance(layer, HiddenMixup)]
    assert [m.index for m in mixers] == [0, 1]


def test_errors():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match="'plain' has no HiddenMixup"):
        SpeechMix(plain)
    view = SpeechMix(small_model())
    ds = tf.data.Dataset.from_tensor_slices(
        (np.random.rand(8, 6).astype("float32"), np.arange(8) % 3))
    (x, plan), _ = next(iter(partner_batches(ds, 8, num_classes=3, mix_points=3, seed=0)))
    with pytest.raises(ValueError, match="3 mixing points but model .* has 2"):
        view((x, plan), training=True)
    broken = keras.Sequential([keras.Input((3,)), HiddenMixup(index=0), HiddenMixup(index=0)])
    with pytest.raises(ValueError, match="indices"):
        SpeechMix(broken)
