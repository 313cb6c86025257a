"""Background partners, schedules and logging (beyond plain SpeechMix)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_speechmix as ksm
from keras_speechmix import HiddenMixup, SpeechMix, partner_batches


def clips(n=16, dim=4):
    x = np.arange(1, n + 1, dtype="float32")[:, None] * np.ones((1, dim), "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n) % 2))


def noise(n=5, dim=4):
    return tf.data.Dataset.from_tensor_slices(-np.ones((n, dim), "float32"))


def test_background_partners_mix_clips_with_backgrounds_only():
    batches = partner_batches(clips(), 4, num_classes=2, mix_points=1,
                              background=noise(), seed=0, num_replicas=2)
    for (x, plan), y in batches:
        assert x.shape == (8, 4) and y.shape == (4, 2)
        # per replica shard of 4 rows: 2 clips then 2 backgrounds
        np.testing.assert_array_equal(plan["background"].numpy(), [0, 0, 1, 1] * 2)
        np.testing.assert_array_equal(plan["partner"].numpy(), [2, 3, 2, 3] * 2)
        assert np.all(x.numpy()[plan["background"].numpy() == 1] == -1)
        assert np.all(plan["ratio"].numpy()[plan["background"].numpy() == 1] == 1)
        y_rows = y.numpy()
        assert np.all(y_rows.max(axis=1) == 1.0)  # targets are the clips' own


def test_background_training_view_drops_background_rows():
    model = keras.Sequential([keras.Input((4,)), HiddenMixup(),
                              keras.layers.Dense(4, activation="relu"), HiddenMixup(),
                              keras.layers.Dense(2, activation="softmax")])
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    batches = partner_batches(clips(), 4, num_classes=2, mix_points=2,
                              background=noise(), seed=0)
    (x, plan), y = next(iter(batches))
    assert view((x, plan), training=True).shape == (4, 2)
    assert np.isfinite(view.fit(batches, epochs=1, verbose=0).history["loss"]).all()


def test_background_shape_must_match():
    wrong = tf.data.Dataset.from_tensor_slices(np.zeros((3, 7), "float32"))
    with pytest.raises(ValueError, match=r"background.*shape \(7,\)"):
        partner_batches(clips(), 4, num_classes=2, mix_points=1, background=wrong)


def test_prob_variable_and_callbacks_steer_mixing():
    prob = tf.Variable(1.0)
    alpha = tf.Variable(0.05)
    batches = partner_batches(clips().repeat(4), 4, num_classes=2, mix_points=2,
                              prob=prob, alpha=alpha, seed=0)
    model = keras.Sequential([keras.Input((4,)), HiddenMixup(), HiddenMixup(),
                              keras.layers.Dense(2, activation="softmax")])
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    history = view.fit(batches, epochs=4, verbose=0, callbacks=[
        ksm.MixWarmup(alpha, target=1.0, epochs=2), ksm.MixOff(prob, off_epoch=3),
        ksm.MixLogger()])
    shares = np.array([[history.history[f"mix_point_{k}"][e] for k in range(2)]
                       for e in range(4)])
    np.testing.assert_allclose(shares[:2].sum(axis=1), 1.0)
    assert shares[3].sum() == 0.0  # mixing off in the last epoch
    assert float(alpha.numpy()) == 1.0 and float(prob.numpy()) == 0.0


def test_mix_logger_writes_tensorboard(tmp_path):
    model = keras.Sequential([keras.Input((4,)), HiddenMixup(),
                              keras.layers.Dense(2, activation="softmax")])
    view = SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    view.fit(partner_batches(clips(), 4, num_classes=2, mix_points=1, seed=0),
             epochs=1, verbose=0, callbacks=[ksm.MixLogger(tmp_path / "logs")])
    written = list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert written and written[0].stat().st_size > 0


def test_statistics_count_real_plans():
    model = keras.Sequential([keras.Input((4,)), HiddenMixup(), HiddenMixup()])
    view = SpeechMix(model)
    batches = partner_batches(clips(), 4, num_classes=2, mix_points=2, seed=3)
    expected = np.zeros(2)
    per_tenth = np.zeros(10)
    for (x, plan), _ in batches:
        view((x, plan), training=True)
        expected += plan["point"].numpy()[0]
        ratio = plan["ratio"].numpy()
        per_tenth += np.bincount(np.floor(10 * ratio[ratio < 1]).astype(int), minlength=10)
    stats = view.mix_statistics()
    np.testing.assert_array_equal(stats["points"], expected)
    assert per_tenth.sum() > 0
    np.testing.assert_array_equal(stats["ratios"], per_tenth)
    assert sum(view.mix_statistics()["points"]) == 0  # reset


def test_frame_targets_mix_like_frame_activations():
    # x = per-frame one-hot labels: the mixed activation must equal the target.
    frames = np.random.RandomState(0).randint(0, 3, size=(16, 5))
    y = np.eye(3, dtype="float32")[frames]  # (B, T, C)
    model = keras.Sequential([keras.Input((5, 3)), HiddenMixup()])
    view = SpeechMix(model)
    batches = partner_batches(tf.data.Dataset.from_tensor_slices((y, y)), 8,
                              num_classes=3, mix_points=1, seed=0)
    for (x, plan), target in batches:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(view((x, plan), training=True)), target.numpy())


def test_first_dominant_keeps_the_own_clip_ahead():
    batches = partner_batches(clips().repeat(5), 4, num_classes=2, mix_points=1,
                              first_dominant=True, seed=0)
    ratios = np.concatenate([plan["ratio"].numpy() for (_, plan), _ in batches])
    assert np.all(ratios >= 0.5) and np.any(ratios < 1.0)
