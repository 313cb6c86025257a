"""PartnerBatches, the PyDataset loader, on whichever backend Keras runs.

Nothing here imports TensorFlow, so `scripts/test.sh` runs the file again
with KERAS_BACKEND=jax. tests/test_plans.py compares its plans with
partner_batches'; tests/test_backends.py runs it with TensorFlow hidden.
"""

import keras
import numpy as np
import pytest

from keras_speechmix import HiddenMixup, PartnerBatches, PlanSampler, SpeechMix


def arrays(n=32, dim=6, num_classes=4):
    x = np.random.RandomState(0).rand(n, dim).astype("float32")
    return x, np.arange(n) % num_classes


def first_columns(batches):
    return np.concatenate([batches[i][0][0][:, 0] for i in range(len(batches))])


def test_batches_look_like_partner_batches():
    x, y = arrays()
    batches = PartnerBatches(x, y, 8, num_classes=4, mix_points=2, seed=0,
                             sample_weight=np.linspace(0.5, 1.5, 32))
    assert len(batches) == 4
    (xb, plan), yb, wb = batches[0]
    assert xb.shape == (8, 6) and xb.dtype == np.float32
    assert yb.shape == (8, 4) and yb.dtype == np.float32 and wb.dtype == np.float32
    assert plan["partner"].dtype == np.int32 and plan["partner"].shape == (8,)
    assert plan["ratio"].dtype == np.float32 and plan["point"].dtype == np.int32
    assert np.all(plan["point"].sum(axis=1) == 1)
    assert np.all(plan["point"] == plan["point"][0])
    np.testing.assert_allclose(yb.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all((wb >= 0.5) & (wb <= 1.5))


@pytest.mark.parametrize("label_mode", ["weighted", "union"])
def test_targets_and_weights_follow_the_plan(label_mode):
    rng = np.random.RandomState(1)
    x = rng.rand(24, 3).astype("float32")
    y = (rng.rand(24, 5) > 0.5).astype("float32")  # multi-hot
    w = rng.rand(24).astype("float32")
    batches = PartnerBatches(x, y, 8, num_classes=5, mix_points=1, label_mode=label_mode,
                             label_smoothing=0.1, sample_weight=w, seed=0, shuffle=False)
    for i in range(len(batches)):
        (_, plan), out, weight = batches[i]
        rows = slice(8 * i, 8 * i + 8)
        smooth = y[rows] * 0.9 + 0.1 / 5
        p, r = plan["partner"], plan["ratio"][:, None]
        mixed = (np.maximum(smooth, smooth[p]) if label_mode == "union"
                 else r * smooth + (1 - r) * smooth[p])
        np.testing.assert_allclose(out, np.where(r < 1, mixed, smooth), rtol=1e-6)
        np.testing.assert_allclose(weight, r[:, 0] * w[rows] + (1 - r[:, 0]) * w[rows][p],
                                   rtol=1e-6)


def test_frame_level_targets_and_replica_shards():
    y = (np.random.RandomState(0).rand(16, 5, 3) > 0.5).astype("float32")
    batches = PartnerBatches(np.zeros((16, 5, 2), "float32"), y, 8, num_classes=3,
                             mix_points=1, num_replicas=2, seed=0, shuffle=False)
    (_, plan), out = batches[0]
    local = plan["partner"]
    assert np.all(local < 4)
    p, r = local + np.arange(8) // 4 * 4, plan["ratio"][:, None, None]
    np.testing.assert_allclose(out, r * y[:8] + (1 - r) * y[:8][p], rtol=1e-6)


def test_seeded_reproducible_and_new_each_epoch():
    x, y = arrays()

    def epochs(seed, count=2):
        batches = PartnerBatches(x, y, 8, num_classes=4, mix_points=3, seed=seed)
        out = []
        for _ in range(count):
            out.append((first_columns(batches),
                        np.stack([batches[i][0][1]["ratio"] for i in range(len(batches))])))
            batches.on_epoch_end()
        return out

    (order, ratios), (order2, ratios2) = epochs(7)
    again = epochs(7)
    np.testing.assert_array_equal(order, again[0][0])
    np.testing.assert_array_equal(ratios, again[0][1])
    np.testing.assert_array_equal(ratios2, again[1][1])
    # Every clip once per epoch, in a new order with new plans each epoch.
    np.testing.assert_array_equal(np.sort(order), np.sort(x[:, 0]))
    np.testing.assert_array_equal(np.sort(order2), np.sort(x[:, 0]))
    assert not np.array_equal(order, order2) and not np.array_equal(ratios, ratios2)
    assert not np.array_equal(ratios, epochs(8)[0][1])


def test_batches_do_not_depend_on_fetch_order():
    # Workers fetch batches in any order; each batch depends on (seed, epoch,
    # index) only.
    x, y = arrays(n=600)
    kwargs = dict(num_classes=4, mix_points=2, seed=3, partners="different_class")
    forward = PartnerBatches(x, y, 8, **kwargs)
    backward = PartnerBatches(x, y, 8, **kwargs)
    late = [backward[i] for i in reversed(range(len(backward)))][::-1]
    for i, ((xb, plan), yb) in enumerate(late):
        (xa, plan_a), ya = forward[i]
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        for key in plan:
            np.testing.assert_array_equal(plan_a[key], plan[key])


def test_last_partial_batch():
    x, y = arrays(n=9)
    batches = PartnerBatches(x, y, 4, num_classes=4, mix_points=1, seed=0,
                             drop_remainder=False)
    assert len(batches) == 3
    (xb, plan), yb = batches[2]
    assert xb.shape == (1, 6) and plan["partner"].tolist() == [0]
    assert plan["ratio"].tolist() == [1.0]
    with pytest.raises(IndexError):
        batches[3]


def test_variable_length_source_with_seeded_crop():
    waves = [np.full(n, n, "float32") for n in range(40, 60)]
    labels = np.arange(20) % 2

    def crop(wave, rng):
        start = rng.integers(len(wave) - 30 + 1)
        return wave[start:start + 30]

    def first(seed):
        return PartnerBatches(waves, labels, 4, num_classes=2, mix_points=1,
                              transform=crop, seed=seed)[1][0][0]

    x = first(0)
    assert x.shape == (4, 30)
    np.testing.assert_array_equal(x, first(0))


def test_bc_gains_are_measured_once_per_clip():
    waves = np.random.RandomState(0).randn(12, 3000).astype("float32") * 0.1
    batches = PartnerBatches(waves, np.arange(12) % 3, 4, num_classes=3, mix_points=1,
                             ratio="bc", sample_rate=16000, seed=0)
    gains = [batches[i][0][1]["gain"] for i in range(3)]
    assert not np.isnan(batches._gains).any()
    batches.on_epoch_end()
    again = {float(g) for i in range(3) for g in batches[i][0][1]["gain"]}
    assert again == {float(g) for row in gains for g in row}


def test_prob_can_be_a_variable():
    x, y = arrays()
    prob = keras.Variable(0.0)
    batches = PartnerBatches(x, y, 8, num_classes=4, mix_points=2, prob=prob, seed=0)
    assert all(batches[i][0][1]["point"].sum() == 0 for i in range(len(batches)))
    prob.assign(1.0)
    batches.on_epoch_end()
    assert all(batches[i][0][1]["point"].sum() == 8 for i in range(len(batches)))


def test_sampler_on_one_batch():
    # What a grain `.random_map(sampler)` calls on each batch.
    sampler = PlanSampler(num_classes=4, mix_points=2, partners="different_class")
    x, y = arrays(n=8)
    batch = {"x": x, "y": y, "group": np.arange(8) // 2, "sample_weight": np.ones(8)}
    (xb, plan), yb, wb = sampler(batch, np.random.default_rng(0))
    assert np.all(y[plan["partner"]] != y) and np.all(plan["partner"] // 2 != np.arange(8) // 2)
    (_, again), _, _ = sampler(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(plan["ratio"], again["ratio"])


def model_for(dim=6, num_classes=4):
    return keras.Sequential([
        keras.Input((dim,)), HiddenMixup(),
        keras.layers.Dense(32, activation="relu"), HiddenMixup(),
        keras.layers.Dense(num_classes, activation="softmax")])


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_lowers_the_loss(workers):
    rng = np.random.RandomState(0)
    y = np.arange(96) % 4
    x = (np.eye(4)[y] @ rng.randn(4, 6) + 0.3 * rng.randn(96, 6)).astype("float32")
    keras.utils.set_random_seed(0)
    model = model_for()
    view = SpeechMix(model)
    view.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
    batches = PartnerBatches(x, y, 16, num_classes=4, mix_points=view.num_mix_points,
                             seed=0, workers=workers)
    history = view.fit(batches, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert batches.epoch >= 6  # Keras called on_epoch_end after each epoch
    assert model.predict(x[:2], verbose=0).shape == (2, 4)


def test_grain_random_map():
    grain = pytest.importorskip("grain")
    x, y = arrays(n=48)
    sampler = PlanSampler(num_classes=4, mix_points=2)
    ds = (grain.MapDataset.source([(a, b) for a, b in zip(x, y)]).shuffle(seed=0)
          .repeat(3).batch(16, drop_remainder=True).random_map(sampler, seed=0))
    (xb, plan), yb = ds[0]
    assert xb.shape == (16, 6) and yb.shape == (16, 4) and plan["point"].shape == (16, 2)
    view = SpeechMix(model_for())
    view.compile("adam", "categorical_crossentropy")
    history = view.fit(ds.to_iter_dataset(), epochs=3, steps_per_epoch=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("make, match", [
    (lambda x, y: PartnerBatches(5, y, 8, num_classes=4, mix_points=1), "`x` must be"),
    (lambda x, y: PartnerBatches(x, y[:-1], 8, num_classes=4, mix_points=1),
     "one entry per clip"),
    (lambda x, y: PartnerBatches(x, y, 8, num_classes=4, mix_points=1,
                                 sample_weight=np.ones(3)), "sample_weight"),
    (lambda x, y: PartnerBatches(x, y + 1, 8, num_classes=4, mix_points=1),
     "num_classes=4"),
    (lambda x, y: PartnerBatches(x, y - 1, 8, num_classes=4, mix_points=1), ">= 0"),
    (lambda x, y: PartnerBatches(x, y.astype("float32"), 8, num_classes=4,
                                 mix_points=1), "integers"),
    (lambda x, y: PartnerBatches(x, np.eye(4)[y], 8, num_classes=6, mix_points=1),
     r"label shape \(4,\)"),
    (lambda x, y: PartnerBatches(x, y, 64, num_classes=4, mix_points=1),
     "no batch"),
    (lambda x, y: PartnerBatches(x[:, :, None, None], y, 8, num_classes=4,
                                 mix_points=1, ratio="bc"), "ratio='bc'"),
    (lambda x, y: PartnerBatches(x, y, 8, num_classes=4, mix_points=1,
                                 background=np.zeros((4, 5))), "`background`"),
    (lambda x, y: PartnerBatches(x, y, 8, num_classes=4, mix_points=1,
                                 transform="crop"), "`transform`"),
])
def test_bad_arguments(make, match):
    x, y = arrays()
    with pytest.raises(ValueError, match=match):
        make(x, y)
