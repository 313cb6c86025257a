"""add_mix_points: mixing points added to models that already exist."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_speechmix as ksm
from keras_speechmix import SpeechMix, add_mix_points, mix_layers

ROOT = Path(__file__).resolve().parents[1]


def names(model):
    return [layer.name for layer in mix_layers(model)]


def sequential():
    return keras.Sequential([
        keras.Input((10,), name="features"),
        keras.layers.Dense(16, activation="relu", name="d1"),
        keras.layers.Dense(16, activation="tanh", name="d2"),
        keras.layers.Dense(3, activation="softmax", name="d3")], name="mlp")


def branched(classes=3):
    """A small functional CNN with a residual branch and a side input branch."""
    inputs = keras.Input((20, 8), name="spec")
    h = keras.layers.Conv1D(12, 3, padding="same", activation="relu", name="conv1")(inputs)
    skip = h
    h = keras.layers.Conv1D(12, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Add(name="res_add")([h, skip])
    h = keras.layers.MaxPooling1D(name="pool")(h)
    a = keras.layers.GlobalAveragePooling1D(name="avg")(h)
    m = keras.layers.GlobalMaxPooling1D(name="max")(h)
    h = keras.layers.Concatenate(name="both")([a, m])
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(classes, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs, name="branched")


def with_backbone(classes=4):
    """A classifier around a nested keras.applications backbone (no download)."""
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(64, 48, 3), include_top=False, weights=None)
    inputs = keras.Input((64, 48, 1), name="logmel")
    h = keras.layers.Concatenate(name="to_rgb")([inputs, inputs, inputs])
    h = backbone(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model(inputs, outputs, name="classifier")


def random_plan(batch, points, active, ratio=0.5, seed=0):
    rng = np.random.default_rng(seed)
    point = np.zeros((batch, points), "int32")
    point[:, active] = 1
    return {"partner": rng.permutation(batch).astype("int32"),
            "ratio": np.full((batch,), ratio, "float32"), "point": point}


def assert_same_outputs(original, mixing, x):
    expected = keras.ops.convert_to_numpy(original(x, training=False))
    np.testing.assert_allclose(mixing.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    # Training mode without a plan is the identity too (BatchNorm in
    # training mode uses the batch statistics both times).
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mixing(x, training=True)),
                               keras.ops.convert_to_numpy(original(x, training=True)),
                               rtol=1e-5, atol=1e-6)


def test_sequential_stays_sequential_and_computes_the_same():
    model = sequential()
    mixing = add_mix_points(model, after=["d1", "d2"], input=True)
    assert isinstance(mixing, keras.Sequential)
    assert [layer.name for layer in mixing.layers] == [
        "mix_input", "d1", "mix_after_d1", "d2", "mix_after_d2", "d3"]
    x = np.random.default_rng(0).normal(size=(8, 10)).astype("float32")
    assert_same_outputs(model, mixing, x)
    # The same layer objects: one set of weights.
    assert [id(w) for w in mixing.weights] == [id(w) for w in model.weights]


def test_a_point_mixes_exactly_after_its_layer():
    model = sequential()
    mixing = add_mix_points(model, after="d1")
    x = np.random.default_rng(1).normal(size=(6, 10)).astype("float32")
    plan = random_plan(6, 1, active=0, ratio=0.3)
    mixing.layers[1].index = 0
    with ksm.plan_scope(plan):
        got = keras.ops.convert_to_numpy(mixing(x, training=True))
    d1, d2, d3 = (model.get_layer(n) for n in ("d1", "d2", "d3"))
    h = keras.ops.convert_to_numpy(d1(x))
    h = 0.3 * h + 0.7 * h[plan["partner"]]
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(d3(d2(h))), rtol=1e-5, atol=1e-6)


def test_functional_with_branches_by_class_and_predicate():
    model = branched()
    by_class = add_mix_points(model, after=keras.layers.Add)
    assert names(by_class) == ["mix_after_res_add"]
    by_predicate = add_mix_points(
        model, after=lambda layer: layer.name in ("conv1", "pool", "hidden"), input=True)
    assert names(by_predicate) == ["mix_input", "mix_after_conv1", "mix_after_pool",
                                   "mix_after_hidden"]
    x = np.random.default_rng(2).normal(size=(5, 20, 8)).astype("float32")
    assert_same_outputs(model, by_class, x)
    assert_same_outputs(model, by_predicate, x)
    # A list is the union of its entries, whatever their kinds.
    assert names(add_mix_points(model, after=["auto", "conv1", keras.layers.Concatenate])) == [
        "mix_after_conv1", "mix_after_pool", "mix_after_both"]
    # Branch layers may be chosen too (here inside the residual block).
    inside = add_mix_points(model, after="conv2")
    assert_same_outputs(model, inside, x)


def test_auto_on_a_plain_cnn_and_the_branched_model():
    # Named blocks absent: the points follow resolution and the trunk.
    inputs = keras.Input((32, 24, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    h = keras.layers.MaxPooling2D(name="p1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", name="c2")(h)
    h = keras.layers.ZeroPadding2D(name="pad")(h)
    h = keras.layers.Conv2D(8, 3, strides=2, name="strided")(h)
    h = keras.layers.Flatten(name="flat")(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(h))
    assert names(add_mix_points(model)) == [
        "mix_after_p1", "mix_after_c2", "mix_after_strided"]
    # conv2 and bn sit in a branch (the skip runs beside them), so they are
    # not stage outputs; the pooled map feeds the two heads.
    assert names(add_mix_points(branched())) == ["mix_after_pool"]


def test_nested_keras_applications_backbone():
    model = with_backbone()
    mixing = add_mix_points(model, after="auto", input=True)
    # MobileNetV3Small's stages end at these blocks (resolution 32x24,
    # 16x12, 8x6, 4x3 for a 64x48 input); the points sit inside the nested
    # backbone, which is rebuilt around the same layers.
    assert names(mixing) == [
        "mix_input", "mix_after_expanded_conv_project_bn", "mix_after_expanded_conv_2_add",
        "mix_after_expanded_conv_7_add", "mix_after_expanded_conv_10_add"]
    inner = mixing.get_layer("MobileNetV3Small")
    assert inner is not model.get_layer("MobileNetV3Small")
    assert {id(w) for w in mixing.weights} == {id(w) for w in model.weights}
    x = np.random.default_rng(3).normal(size=(3, 64, 48, 1)).astype("float32")
    assert_same_outputs(model, mixing, x)
    # A nested layer by its name or its path; the whole backbone by its name.
    assert names(add_mix_points(model, after="MobileNetV3Small/expanded_conv_4_add")) == [
        "mix_after_expanded_conv_4_add"]
    assert names(add_mix_points(model, after=["MobileNetV3Small", "expanded_conv_4_add"])) == [
        "mix_after_expanded_conv_4_add", "mix_after_MobileNetV3Small"]


def test_auto_finds_the_stages_of_efficientnet_and_vgg():
    efficientnet = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(64, 48, 3))
    assert names(add_mix_points(efficientnet)) == [
        "mix_after_block1a_project_bn", "mix_after_block2b_add", "mix_after_block3b_add",
        "mix_after_block5c_add", "mix_after_block7a_project_bn"]
    assert len(names(add_mix_points(efficientnet, after="blocks"))) == 16
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 48, 3))
    # VGG's blocks end by pooling; the output (block5_pool) is never a point.
    assert names(add_mix_points(vgg)) == [
        "mix_after_block1_pool", "mix_after_block2_pool", "mix_after_block3_pool",
        "mix_after_block4_pool", "mix_after_block5_conv3"]


def speechmix_batches(x, labels, classes, points, batch=8):
    return ksm.partner_batches(tf.data.Dataset.from_tensor_slices((x, labels)), batch,
                               num_classes=classes, mix_points=points, seed=0)


@pytest.mark.parametrize("share", [True, False])
def test_training_the_view_trains_the_deployed_model(share):
    model = branched()
    x = np.random.default_rng(4).normal(size=(32, 20, 8)).astype("float32")
    labels = np.arange(32) % 3
    mixing = add_mix_points(model, after=["conv1", "pool", "hidden"], input=True,
                            share_weights=share)
    assert_same_outputs(model, mixing, x)  # (moves the batch-norm statistics)
    before = [w.numpy().copy() for w in model.weights]
    view = SpeechMix(mixing)
    view.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    view.fit(speechmix_batches(x, labels, 3, view.num_mix_points), epochs=2, verbose=0)
    assert sum(view.mix_statistics()["points"]) > 0
    moved = [not np.allclose(w.numpy(), b) for w, b in zip(model.weights, before)]
    if share:
        # Every trainable weight and the batch-norm statistics moved, in the
        # user's own model, which predicts as the mixing model does.
        assert all(moved)
        assert_same_outputs(model, mixing, x)
    else:
        assert not any(moved)
        assert not np.allclose(mixing.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_round_trip(tmp_path):
    model = with_backbone()
    mixing = add_mix_points(model, after=["expanded_conv_2_add", "gap"], input=True)
    path = tmp_path / "mixing.keras"
    mixing.save(path)
    loaded = keras.models.load_model(path)
    assert names(loaded) == names(mixing)
    x = np.random.default_rng(5).normal(size=(2, 64, 48, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), mixing.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert SpeechMix(loaded).num_mix_points == 3
    # The user's own model still saves and loads without this package's layers.
    model.save(tmp_path / "plain.keras")
    plain = keras.models.load_model(tmp_path / "plain.keras")
    assert not mix_layers(plain)


def test_every_input_of_a_multi_input_model_is_one_point():
    left, right = keras.Input((4,), name="left"), keras.Input((4,), name="right")
    h = keras.layers.Concatenate(name="cat")([left, right])
    h = keras.layers.Dense(6, name="mid")(h)
    model = keras.Model([left, right], keras.layers.Dense(2, name="out")(h))
    mixing = add_mix_points(model, after=None, input=True)
    assert names(mixing) == ["mix_input"]
    a = np.arange(8, dtype="float32").reshape(2, 4)
    b = -a
    layer = mix_layers(mixing)[0]
    layer.index = 0
    plan = random_plan(2, 1, active=0, ratio=0.5)
    plan["partner"] = np.array([1, 0], "int32")
    with ksm.plan_scope(plan):
        got = keras.ops.convert_to_numpy(mixing([a, b], training=True))
    cat = (np.concatenate([a, b], 1) + np.concatenate([a, b], 1)[::-1]) / 2
    mid, out = model.get_layer("mid"), model.get_layer("out")
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(out(mid(cat))), rtol=1e-5)


def test_errors_name_the_problem():
    model = branched()
    with pytest.raises(ValueError, match="no layer of that name; did you mean conv1"):
        add_mix_points(model, after="conv_1")
    with pytest.raises(ValueError, match="'spec' is an input .* pass input=True"):
        add_mix_points(model, after="spec")
    with pytest.raises(ValueError, match="'head' gives model 'branched' its output"):
        add_mix_points(model, after="head")
    with pytest.raises(ValueError, match="'head' gives model"):
        add_mix_points(model, after=keras.layers.Dense)  # the head is a Dense too
    with pytest.raises(ValueError, match="no layer of that class"):
        add_mix_points(model, after=keras.layers.LSTM)
    with pytest.raises(ValueError, match="predicate chose no layer"):
        add_mix_points(model, after=lambda layer: False)
    with pytest.raises(ValueError, match="Nothing to add"):
        add_mix_points(model, after=None)
    with pytest.raises(ValueError, match="`after` must be"):
        add_mix_points(model, after=3)
    with pytest.raises(ValueError, match="remove index"):
        add_mix_points(model, after="conv1", index=2)

    inputs = keras.Input((5, 3))
    sequence, state = keras.layers.GRU(4, return_sequences=True, return_state=True,
                                       name="gru")(inputs)
    h = keras.layers.Concatenate(name="cat")([keras.layers.Flatten()(sequence), state])
    rnn = keras.Model(inputs, keras.layers.Dense(2)(h))
    with pytest.raises(ValueError, match="'gru' returns 2 tensors"):
        add_mix_points(rnn, after="gru")

    # The same name in the outer model and a nested one: ask for the path.
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="dense")],
                             name="inner")
    x = keras.Input((4,))
    outer = keras.Model(x, keras.layers.Dense(2, name="top")(
        keras.layers.Dense(4, name="dense")(inner(x))))
    with pytest.raises(ValueError, match=r"names 2 layers \(inner/dense, dense\)"):
        add_mix_points(outer, after="dense")
    assert names(add_mix_points(outer, after="inner/dense")) == ["mix_after_dense"]

    with pytest.raises(ValueError, match="no input shape yet"):
        add_mix_points(keras.Sequential([keras.layers.Dense(2)]), after=None, input=True)


def test_subclassed_model_gets_the_by_hand_recipe():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Classifier()
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"subclassed Classifier.*HiddenMixup\(index=k\)"):
        add_mix_points(model)


def test_needs_no_tensorflow_on_jax():
    # The rebuilt model trains on JAX with TensorFlow made unimportable.
    code = (
        "import tests.no_tensorflow, keras, numpy as np, keras_speechmix as ksm\n"
        "i = keras.Input((6,)); h = keras.layers.Dense(8, name='a')(i)\n"
        "m = keras.Model(i, keras.layers.Dense(3, activation='softmax')(h))\n"
        "mixing = ksm.add_mix_points(m, after='a', input=True)\n"
        "view = ksm.SpeechMix(mixing); view.compile('adam', 'categorical_crossentropy')\n"
        "x = np.random.rand(32, 6).astype('float32'); y = np.arange(32) % 3\n"
        "view.fit(ksm.PartnerBatches(x, y, 8, num_classes=3, mix_points=2, seed=0),"
        " epochs=1, verbose=0)\n"
        "import sys; assert 'tensorflow' not in sys.modules\n"
        "print('ok', view.num_mix_points)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok 2")
