import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src import testing

from keras_speechmix import HiddenMixup, plan_scope


def make_plan(partner, ratio, point, num_points=1, gain=None):
    batch = len(partner)
    plan = {
        "partner": tf.constant(partner, tf.int32),
        "ratio": tf.constant(ratio, tf.float32),
        "point": tf.tile(tf.one_hot([point], num_points, dtype=tf.int32), [batch, 1])
        if point is not None else tf.zeros([batch, num_points], tf.int32),
    }
    if gain is not None:
        plan["gain"] = tf.constant(gain, tf.float32)
    return plan


class HiddenMixupTest(testing.TestCase):
    def test_layer(self):
        self.run_layer_test(
            HiddenMixup,
            init_kwargs={"rule": "normal", "index": 0},
            input_shape=(4, 3, 5),
            supports_masking=True,
            expected_output_shape=(4, 3, 5),
            expected_num_trainable_weights=0,
        )

    def test_inference_is_identity(self):
        x = np.random.rand(4, 6).astype("float32")
        layer = HiddenMixup(index=0)
        plan = make_plan([1, 0, 3, 2], [0.3] * 4, 0)
        self.assertAllEqual(layer(x, plan=plan, training=False), x)
        self.assertAllEqual(layer(x, training=True), x)  # no plan

    def test_mixes_only_at_its_own_point(self):
        x = np.arange(8, dtype="float32").reshape(4, 2)
        plan = make_plan([1, 0, 3, 2], [0.25, 0.5, 1.0, 0.0], 1, num_points=2)
        self.assertAllEqual(HiddenMixup(index=0)(x, plan=plan, training=True), x)
        out = HiddenMixup(index=1)(x, plan=plan, training=True)
        expected = np.array([0.25, 0.5, 1.0, 0.0])[:, None] * x + np.array(
            [0.75, 0.5, 0.0, 1.0])[:, None] * x[[1, 0, 3, 2]]
        self.assertAllClose(out, expected)

    def test_sound_rule_matches_bc_learning(self):
        x = np.random.randn(2, 10).astype("float32")
        r, g1, g2 = 0.3, -10.0, -25.0
        plan = make_plan([1, 0], [r, r], 0, gain=[g1, g2])
        out = HiddenMixup(index=0)(x, plan=plan, training=True)  # auto -> sound
        p = 1.0 / (1.0 + 10 ** ((g1 - g2) / 20.0) * (1 - r) / r)
        expected = (p * x[0] + (1 - p) * x[1]) / np.sqrt(p**2 + (1 - p) ** 2)
        self.assertAllClose(out[0], expected, atol=1e-5)
        normal = HiddenMixup(rule="normal", index=0)(x, plan=plan, training=True)
        self.assertAllClose(normal[0], r * x[0] + (1 - r) * x[1], atol=1e-6)

    def test_activation_gains_are_the_authors(self):
        # The authors' hidden "sound" mix: gains of each flattened activation
        # (A-weighted at 44.1 kHz), not of the input clips.
        from keras_speechmix.gain import gain_db_numpy
        from keras_speechmix.layer import activation_gain_db

        rng = np.random.default_rng(0)
        x = np.stack([0.5 * rng.standard_normal((6, 900)),
                      0.01 * rng.standard_normal((6, 900))]).astype("float32")
        gains = gain_db_numpy(x.reshape(2, -1), 44100)
        self.assertAllClose(activation_gain_db(x), gains, atol=1e-3)
        self.assertGreater(gains[0] - gains[1], 20.0)
        r = 0.3
        # The plan's (input) gains say the opposite; the layer must ignore them.
        plan = make_plan([1, 0], [r, r], 0, gain=[-60.0, 0.0])
        out = HiddenMixup(index=0, gain="activation")(x, plan=plan, training=True)
        p = 1.0 / (1.0 + 10 ** ((gains[0] - gains[1]) / 20.0) * (1 - r) / r)
        expected = (p * x[0] + (1 - p) * x[1]) / np.sqrt(p**2 + (1 - p) ** 2)
        self.assertAllClose(out[0], expected, atol=1e-4)
        from_plan = HiddenMixup(index=0)(x, plan=plan, training=True)
        self.assertGreater(float(np.max(np.abs(from_plan[0] - expected))), 1e-2)

    @pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                        reason="an unknown batch size is a TensorFlow graph's")
    def test_activation_gains_do_not_depend_on_a_static_batch_size(self):
        # A short activation (fewer values than one gain frame) is padded the
        # same whether the batch size is known (fit) or not (custom loops).
        from keras_speechmix.layer import activation_gain_db

        x = np.random.default_rng(1).standard_normal((4, 8, 10, 4)).astype("float32")
        unknown_batch = tf.function(activation_gain_db, input_signature=[
            tf.TensorSpec((None, 8, 10, 4), tf.float32)])
        self.assertAllClose(unknown_batch(x), activation_gain_db(x), atol=1e-3)

    def test_ratio_one_is_identity_for_both_rules(self):
        x = np.random.randn(3, 4).astype("float32")
        plan = make_plan([1, 2, 0], [1.0] * 3, 0, gain=[0.0, -30.0, -60.0])
        for rule in ("normal", "sound"):
            out = HiddenMixup(rule=rule, index=0)(x, plan=plan, training=True)
            self.assertAllClose(out, x)

    def test_skip_and_select_agree(self):
        x = np.random.randn(4, 3, 2).astype("float32")
        for point in (0, 1, None):
            plan = make_plan([2, 3, 0, 1], [0.2, 0.9, 0.5, 1.0], point, num_points=2,
                             gain=[-3.0, -20.0, -9.0, -40.0])
            skipped = HiddenMixup(index=0, skip_inactive=True)(x, plan=plan, training=True)
            selected = HiddenMixup(index=0, skip_inactive=False)(x, plan=plan, training=True)
            self.assertAllClose(skipped, selected, atol=1e-6)
            if point != 0:
                self.assertAllEqual(selected, x)

    def test_plan_scope_feeds_the_layer(self):
        x = np.array([[0.0], [2.0]], dtype="float32")
        with plan_scope(make_plan([1, 0], [0.5, 0.5], 0)):
            out = HiddenMixup(index=0)(x, training=True)
        self.assertAllClose(out, [[1.0], [1.0]])

    def test_mask_union(self):
        x = np.random.rand(2, 3, 4).astype("float32")
        mask = np.array([[True, True, False], [True, False, False]])
        layer = HiddenMixup(index=0)
        with plan_scope(make_plan([1, 0], [0.5, 0.5], 0)):
            mixed = layer.compute_mask(x, mask)
        self.assertAllEqual(mixed, [[True, True, False], [True, True, False]])
        with plan_scope(make_plan([1, 0], [0.5, 0.5], None)):
            self.assertAllEqual(layer.compute_mask(x, mask), mask)

    def test_mixed_precision_dtype(self):
        layer = HiddenMixup(index=0, dtype="mixed_float16")
        x = np.random.rand(4, 3).astype("float16")
        out = layer(x, plan=make_plan([1, 0, 3, 2], [0.3] * 4, 0), training=True)
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float16")
        self.assertTrue(np.all(np.isfinite(out)))

    @pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                        reason="layers run inside tf.data on the TensorFlow backend")
    def test_tf_data(self):
        layer = HiddenMixup(index=0)
        ds = tf.data.Dataset.from_tensor_slices(np.random.rand(8, 3).astype("float32"))
        for batch in ds.batch(4).map(lambda x: layer(x)):
            self.assertEqual(tuple(batch.shape), (4, 3))

    def test_config_round_trip(self):
        layer = HiddenMixup(rule="sound", index=2, skip_inactive=False, gain="activation",
                            gain_sample_rate=16000, name="mix")
        clone = HiddenMixup.from_config(layer.get_config())
        self.assertEqual((clone.rule, clone.index, clone.skip_inactive, clone.gain,
                          clone.gain_sample_rate, clone.name),
                         ("sound", 2, False, "activation", 16000, "mix"))


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "linear"}, "rule"),
    ({"index": -1}, "index"),
    ({"skip_inactive": "never"}, "skip_inactive"),
    ({"gain": "input"}, "gain"),
    ({"gain_sample_rate": 0}, "gain_sample_rate"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HiddenMixup(**kwargs)


def test_bad_plans_are_named():
    x = np.random.rand(4, 3).astype("float32")
    good = make_plan([1, 0, 3, 2], [0.5] * 4, 0)
    with pytest.raises(ValueError, match="'partner', 'ratio' and 'point'"):
        HiddenMixup(index=0)(x, plan={"ratio": good["ratio"]}, training=True)
    with pytest.raises(ValueError, match="'partner' must be a rank-1 int"):
        HiddenMixup(index=0)(x, plan={**good, "partner": tf.zeros([4], tf.float32)},
                             training=True)
    with pytest.raises(ValueError, match="has 2 rows"):
        HiddenMixup(index=0)(x, plan=make_plan([1, 0], [0.5, 0.5], 0), training=True)
    with pytest.raises(ValueError, match="1 mixing points but this HiddenMixup has index 3"):
        HiddenMixup(index=3)(x, plan=good, training=True)
    with pytest.raises(ValueError, match="no index"):
        HiddenMixup()(x, plan=good, training=True)
