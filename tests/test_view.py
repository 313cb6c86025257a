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


def fit_data(n=32, classes=3):
    x = np.random.RandomState(0).rand(n, 6).astype("float32")
    labels = np.arange(n) % classes
    train = partner_batches(tf.data.Dataset.from_tensor_slices((x, labels)), 8,
                            num_classes=classes, mix_points=2, seed=0)
    return x, labels, train


def test_sparse_validation_labels_give_right_metrics():
    x, labels, train = fit_data()
    model = small_model()
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    # Sparse labels (B,), as the plain model takes them with a sparse loss.
    val = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8)
    history = view.fit(train, validation_data=val, epochs=2, verbose=0).history
    probabilities = model.predict(x, verbose=0)
    accuracy = np.mean(probabilities.argmax(axis=1) == labels)
    cross_entropy = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
    np.testing.assert_allclose(history["val_accuracy"][-1], accuracy, rtol=1e-6)
    np.testing.assert_allclose(history["val_loss"][-1], cross_entropy, rtol=1e-5)
    for targets in (labels, labels[:, None], np.eye(3, dtype="float32")[labels]):
        # A fresh view per form: one compiled step traced for labels of two
        # ranks sees labels of unknown rank, which Keras' losses cannot take.
        view = SpeechMix(model)
        view.compile(loss="categorical_crossentropy", metrics=["accuracy"])
        result = view.evaluate(x, targets, verbose=0, return_dict=True)
        np.testing.assert_allclose(result["accuracy"], accuracy, rtol=1e-6)
        np.testing.assert_allclose(result["loss"], cross_entropy, rtol=1e-5)


def test_evaluate_on_sparse_labels_before_fit():
    # Metrics built on sparse labels first must still take the mixed targets.
    x, labels, train = fit_data()
    view = SpeechMix(small_model())
    view.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    view.evaluate(x, labels, verbose=0)
    history = view.fit(train, epochs=1, verbose=0).history
    assert 0.0 <= history["accuracy"][0] <= 1.0


@pytest.mark.parametrize("loss, from_logits, reduction", [
    ("sparse_categorical_crossentropy", False, "sum_over_batch_size"),
    (keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"),
     True, "sum"),
])
def test_sparse_loss_becomes_the_categorical_loss(loss, from_logits, reduction):
    x, labels, train = fit_data()
    model = keras.Sequential([
        keras.Input((6,)), HiddenMixup(), keras.layers.Dense(8, activation="relu"),
        HiddenMixup(), keras.layers.Dense(3, activation=None if from_logits else "softmax")])
    view = SpeechMix(model)
    with pytest.warns(UserWarning, match="CategoricalCrossentropy.*same from_logits"):
        view.compile(optimizer="adam", loss=loss,
                     metrics=["sparse_categorical_accuracy"])
    assert isinstance(view.loss, keras.losses.CategoricalCrossentropy)
    assert view.loss.get_config()["from_logits"] is from_logits
    assert view.loss.reduction == reduction
    history = view.fit(train, validation_data=(x, labels), epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    # The same values as the plain model with the sparse loss.
    model.compile(loss=loss, metrics=["sparse_categorical_accuracy"])
    plain = model.evaluate(x, labels, verbose=0, return_dict=True)
    mixed = view.evaluate(x, labels, verbose=0, return_dict=True)
    np.testing.assert_allclose(mixed["loss"], plain["loss"], rtol=1e-5)
    np.testing.assert_allclose(mixed["sparse_categorical_accuracy"],
                               plain["sparse_categorical_accuracy"], rtol=1e-6)


def test_sparse_loss_with_ignore_class_fails_at_compile():
    view = SpeechMix(small_model())
    with pytest.raises(ValueError, match="'categorical_crossentropy'.*ignore_class"):
        view.compile(loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))


def test_plain_model_on_partner_batches_raises():
    x, labels, train = fit_data()
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(HiddenMixup()(inputs))
    functional = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        HiddenMixup()(hidden)))
    sequential = small_model(name="tutorial_cnn")
    for model in (sequential, functional):
        SpeechMix(model)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        # On normal data every HiddenMixup is the identity: plain training works.
        model.fit(x, np.eye(3, dtype="float32")[labels], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"'tutorial_cnn'.*SpeechMix\(model\)"):
        sequential.fit(train, epochs=1, verbose=0)
    # A functional model fails too: on TensorFlow Keras' own input check
    # rejects (x, plan) first (4 tensors for 1 input); on JAX the layers run
    # and HiddenMixup's error names the view.
    expected = ("input" if keras.backend.backend() == "tensorflow"
                else r"HiddenMixup.*SpeechMix\(model\)")
    with pytest.raises(ValueError, match=expected):
        functional.fit(train, epochs=1, verbose=0)


def test_subclassed_model_that_drops_the_plan_raises():
    class Forgetful(keras.Model):
        def __init__(self):
            super().__init__()
            self.mix0 = HiddenMixup(index=0)
            self.mix1 = HiddenMixup(index=1)
            self.head = keras.layers.Dense(3, activation="softmax")

        def call(self, inputs, training=None):
            x, plan = inputs
            h = self.mix0(x, plan=plan, training=training)
            return self.head(self.mix1(h, training=training))  # no plan

    _, _, train = fit_data()
    model = Forgetful()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="must pass `plan=`"):
        model.fit(train, epochs=1, verbose=0)


def test_saved_view_comes_back_compiled(tmp_path):
    x, labels, train = fit_data()
    view = SpeechMix(small_model())
    with pytest.warns(UserWarning, match="CategoricalCrossentropy"):
        view.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    view.fit(train, epochs=1, verbose=0)
    view.save(tmp_path / "view.keras")
    loaded = keras.models.load_model(tmp_path / "view.keras")
    assert isinstance(loaded, SpeechMix) and loaded.compiled
    assert isinstance(loaded.loss, keras.losses.CategoricalCrossentropy)
    np.testing.assert_allclose(
        loaded.evaluate(x, labels, verbose=0), view.evaluate(x, labels, verbose=0),
        rtol=1e-6)


def test_epoch_metrics_equal_plain_fit_on_a_dataset_of_unknown_length():
    # Issue 19, item 8: batches of a static size from a dataset of unknown
    # length (partner_batches over a batched dataset, a stream) made Keras
    # count one batch too many in every epoch mean, so the recorded loss was
    # the true one times n / (n + 1). With a learning rate of 0 every batch
    # has the same loss, which the epoch's must equal.
    x = np.random.RandomState(0).rand(64, 6).astype("float32")
    labels = np.arange(64) % 3

    def compiled(model):
        model.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    model = small_model()
    view = compiled(SpeechMix(model))
    batches = partner_batches(tf.data.Dataset.from_tensor_slices((x, labels)).batch(8), 8,
                              num_classes=3, mix_points=2, seed=0, prob=0.0)
    assert batches.cardinality() == tf.data.UNKNOWN_CARDINALITY
    history = view.fit(batches, epochs=2, verbose=0).history
    # The plain model on the same batches, counted by Keras with a known length.
    listed = list(batches.map(lambda inputs, y: (inputs[0], y)))
    known = tf.data.Dataset.from_tensor_slices(
        (np.stack([b[0] for b in listed]), np.stack([b[1] for b in listed])))
    plain = compiled(keras.models.clone_model(model))
    plain.set_weights(model.get_weights())
    expected = plain.fit(known, epochs=2, verbose=0).history
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(history["accuracy"], expected["accuracy"], rtol=1e-6)
    batch_losses = [plain.evaluate(bx, by, verbose=0, batch_size=8)[0] for bx, by in known]
    np.testing.assert_allclose(history["loss"][0], np.mean(batch_losses), rtol=1e-5)
    # Validation data of unknown length is scored the same way.
    val = known.unbatch().filter(lambda a, b: True).batch(8, drop_remainder=True)
    scored = view.evaluate(val, verbose=0, return_dict=True)
    np.testing.assert_allclose(scored["loss"], expected["loss"][-1], rtol=1e-6)


def test_the_compiled_step_sees_a_static_batch_and_trains_as_eager_does():
    # Issue 29: the step relaxes the batch size for Keras' batch counts (the
    # test above), but the network computes with the static size again: an
    # unknown batch made every layer and its gradient work out shapes at
    # run time, a fixed cost of each short step. Training is unchanged: the
    # compiled step gives the eager one's losses, metrics and weights.
    from keras_speechmix import PartnerBatches

    seen = []

    class Probe(keras.layers.Layer):
        def call(self, inputs):
            seen.append(inputs.shape[0])
            return inputs

    rng = np.random.RandomState(0)
    x, labels = rng.rand(48, 6).astype("float32"), np.arange(48) % 3
    batches = PartnerBatches(x, labels, 12, num_classes=3, mix_points=2, seed=0)
    results = {}
    for eager in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((6,)), HiddenMixup(), keras.layers.Dense(8, activation="relu"),
            Probe(), HiddenMixup(), keras.layers.Dense(3, activation="softmax")])
        view = SpeechMix(model)
        view.compile(keras.optimizers.SGD(0.5), "categorical_crossentropy",
                     metrics=["accuracy", "categorical_crossentropy"], run_eagerly=eager)
        seen.clear()
        logs = [view.train_on_batch(*batches[i], return_dict=True) for i in range(4)]
        results[eager] = logs, [w.numpy() for w in model.weights]
        if not eager:
            assert seen[-1] == 12, seen  # the traced step's network: static
    for compiled, eager in zip(results[False][0], results[True][0]):
        assert compiled.keys() == eager.keys()
        for key in compiled:
            np.testing.assert_allclose(compiled[key], eager[key], rtol=1e-5, err_msg=key)
    for a, b in zip(results[False][1], results[True][1]):
        np.testing.assert_allclose(a, b, atol=1e-5)
