import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix import partner_batches


def dataset(n=32, num_classes=4, dim=6, one_hot=False, weights=False, groups=None):
    labels = np.arange(n) % num_classes
    x = np.random.RandomState(0).rand(n, dim).astype("float32")
    y = np.eye(num_classes, dtype="float32")[labels] if one_hot else labels
    if groups is not None:
        return tf.data.Dataset.from_tensor_slices({"x": x, "y": y, "group": groups})
    if weights:
        return tf.data.Dataset.from_tensor_slices((x, y, np.linspace(0.5, 1.5, n)))
    return tf.data.Dataset.from_tensor_slices((x, y))


def plans(batches):
    return [element[0][1] for element in batches]


def test_mixed_labels_follow_the_plan():
    ds = dataset()
    for (x, plan), y in partner_batches(ds, 8, num_classes=4, mix_points=2, seed=3):
        r = plan["ratio"].numpy()
        assert np.all((0 <= r) & (r <= 1))
        np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-6)
        assert plan["point"].shape == (8, 2)
        assert np.all(plan["point"].numpy().sum(axis=1) == 1)
        assert set(plan["partner"].numpy()) <= set(range(8))


def test_sparse_and_one_hot_give_the_same_targets():
    a = partner_batches(dataset(), 8, num_classes=4, mix_points=1, seed=5)
    b = partner_batches(dataset(one_hot=True), 8, num_classes=4, mix_points=1, seed=5)
    for (_, ya), (_, yb) in zip(a, b):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def test_same_seed_same_plans_new_epoch_new_plans():
    def draw(seed):
        ds = partner_batches(dataset(), 8, num_classes=4, mix_points=3, seed=seed)
        first = [p["ratio"].numpy() for p in plans(ds)]
        second = [p["ratio"].numpy() for p in plans(ds)]
        return first, second

    first, second = draw(7)
    again, _ = draw(7)
    other, _ = draw(8)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(second))
    assert not np.array_equal(np.stack(first), np.stack(other))


def test_points_near_uniform():
    ds = dataset(n=8).repeat(400)
    counts = np.zeros(3)
    for plan in plans(partner_batches(ds, 8, num_classes=4, mix_points=3, seed=0)):
        counts += plan["point"].numpy()[0]
    assert counts.sum() == 400
    # Binomial(400, 1/3): sd ~ 9.4, so +-40 is over 4 sd.
    assert np.all(np.abs(counts - 400 / 3) < 40), counts


def test_alpha_sets_the_ratio_distribution():
    ds = dataset(n=8).repeat(100)
    near_edges = {}
    for alpha in (0.2, 5.0):
        r = np.concatenate([p["ratio"].numpy() for p in plans(partner_batches(
            ds, 8, num_classes=4, mix_points=1, alpha=alpha, seed=1))])
        r = r[r < 1.0]  # drop self-paired rows
        near_edges[alpha] = np.mean((r < 0.1) | (r > 0.9))
    assert near_edges[0.2] > 0.5 > near_edges[5.0]


def test_per_batch_ratio():
    for plan in plans(partner_batches(dataset(), 8, num_classes=4, mix_points=1,
                                      per_sample=False, seed=2)):
        r = plan["ratio"].numpy()
        mixed = r[plan["partner"].numpy() != np.arange(8)]
        assert np.allclose(mixed, mixed[0])


def test_different_class_partners():
    ds = dataset(n=64).repeat(5)
    for (x, plan), y in partner_batches(ds, 8, num_classes=4, mix_points=1,
                                        partners="different_class", seed=4):
        p = plan["partner"].numpy()
        # dataset labels are position % 4 inside each batch of 8
        labels = np.arange(8) % 4
        assert np.all(labels[p] != labels)


def test_different_class_falls_back_when_batch_has_one_class():
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((8, 2), "float32"), np.ones(8, "int64")))
    (_, plan), y = next(iter(partner_batches(ds, 4, num_classes=3, mix_points=1,
                                             partners="different_class", seed=0)))
    p = plan["partner"].numpy()
    assert np.all(p != np.arange(4))
    np.testing.assert_allclose(y.numpy(), np.eye(3)[[1, 1, 1, 1]])


def test_groups_are_never_paired():
    groups = np.repeat(np.arange(8), 4)  # 4 clips per group, contiguous
    ds = tf.data.Dataset.from_tensor_slices(
        {"x": np.arange(32, dtype="float32")[:, None], "y": np.arange(32) % 4,
         "group": groups}).shuffle(32, seed=0).repeat(10)
    pairs = 0
    for (x, plan), _ in partner_batches(ds, 8, num_classes=4, mix_points=1, seed=0):
        ids = x.numpy()[:, 0].astype(int)
        p = plan["partner"].numpy()
        mixed = plan["ratio"].numpy() < 1
        assert np.all(groups[ids][mixed] != groups[ids[p]][mixed])
        pairs += mixed.sum()
    assert pairs > 200


def test_balanced_partners_favour_rare_classes():
    labels = np.array([0] * 7 + [1])  # class 1 is rare
    ds = tf.data.Dataset.from_tensor_slices(
        (np.zeros((8, 1), "float32"), labels)).repeat(300)
    partner_labels = []
    for (_, plan), _ in partner_batches(ds, 8, num_classes=2, mix_points=1,
                                        partners="balanced", seed=0):
        p = plan["partner"].numpy()
        partner_labels.append(labels[p][:7])  # partners of class-0 clips
    share = np.mean(np.concatenate(partner_labels))
    # Uniform over the other 7 would give 1/7; balanced gives ~1/2.
    assert 0.4 < share < 0.6, share


def test_sample_weights_are_mixed():
    batches = partner_batches(dataset(weights=True), 8, num_classes=4, mix_points=1, seed=0)
    (_, plan), y, w = next(iter(batches))
    assert w.shape == (8,) and w.dtype == tf.float32
    assert np.all((w.numpy() >= 0.5) & (w.numpy() <= 1.5))


def test_label_smoothing_before_mixing():
    batches = partner_batches(dataset(), 8, num_classes=4, mix_points=1,
                              label_smoothing=0.1, prob=0.0, seed=0)
    _, y = next(iter(batches))
    assert np.isclose(y.numpy().max(), 1 - 0.1 + 0.1 / 4)
    assert np.isclose(y.numpy().min(), 0.1 / 4)


def test_prob_zero_and_one():
    ds = dataset(n=8).repeat(50)
    clean = plans(partner_batches(ds, 8, num_classes=4, mix_points=2, prob=0.0, seed=0))
    assert all(p["point"].numpy().sum() == 0 and np.all(p["ratio"].numpy() == 1) for p in clean)
    mixed = plans(partner_batches(ds, 8, num_classes=4, mix_points=2, prob=1.0, seed=0))
    assert all(np.all(p["point"].numpy().sum(axis=1) == 1) for p in mixed)
    half = plans(partner_batches(ds, 8, num_classes=4, mix_points=2, prob=0.5, seed=0))
    share = np.mean([p["point"].numpy().sum() > 0 for p in half])
    assert 0.25 < share < 0.75


def test_last_batch_of_one_is_left_unmixed():
    ds = dataset(n=9)
    batches = list(partner_batches(ds, 4, num_classes=4, mix_points=1,
                                   drop_remainder=False, seed=0))
    (x, plan), y = batches[-1]
    assert plan["partner"].numpy().tolist() == [0]
    assert plan["ratio"].numpy().tolist() == [1.0]
    np.testing.assert_array_equal(y.numpy(), np.eye(4)[[0]])


def test_partners_stay_inside_replica_shards():
    for (_, plan), _ in partner_batches(dataset(), 8, num_classes=4, mix_points=1,
                                        num_replicas=2, seed=0):
        p = plan["partner"].numpy()
        assert np.all(p < 4)  # local index inside each shard of 4


def test_bc_ratio_adds_gains():
    waves = np.random.RandomState(0).randn(8, 2000).astype("float32") * 0.1
    waves[0] = 0.0  # silence must give a finite gain
    ds = tf.data.Dataset.from_tensor_slices((waves, np.arange(8) % 2))
    (_, plan), _ = next(iter(partner_batches(ds, 8, num_classes=2, mix_points=1,
                                             ratio="bc", sample_rate=16000, seed=0)))
    gain = plan["gain"].numpy()
    assert np.all(np.isfinite(gain)) and gain[0] == -80.0 and np.all(gain[1:] > -40)


def test_union_label_mode_for_multi_hot():
    y = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]], "float32")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2), "float32"), y))
    for mode in ("union", "weighted"):
        (_, plan), out = next(iter(partner_batches(ds, 4, num_classes=3, mix_points=1,
                                                   label_mode=mode, seed=1)))
        p, r = plan["partner"].numpy(), plan["ratio"].numpy()[:, None]
        expected = np.maximum(y, y[p]) if mode == "union" else r * y + (1 - r) * y[p]
        np.testing.assert_allclose(out.numpy(), np.where(r < 1, expected, y), rtol=1e-6)


def test_frame_level_targets():
    y = (np.random.RandomState(0).rand(8, 5, 3) > 0.5).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((8, 5, 2), "float32"), y))
    (_, plan), out = next(iter(partner_batches(ds, 8, num_classes=3, mix_points=1, seed=0)))
    p, r = plan["partner"].numpy(), plan["ratio"].numpy()[:, None, None]
    np.testing.assert_allclose(out.numpy(), r * y + (1 - r) * y[p], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": -1.0}, "alpha"),
    ({"alpha": float("nan")}, "alpha"),
    ({"alpha": float("inf")}, "alpha"),
    ({"num_classes": 1}, "num_classes"),
    ({"mix_points": 0}, "mix_points"),
    ({"batch_size": 1}, "at least 2 clips"),
    ({"ratio": "uniform"}, "ratio"),
    ({"partners": "any"}, "partners"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"prob": 1.5}, "prob"),
    ({"num_replicas": 3}, "divisible"),
])
def test_bad_arguments(kwargs, match):
    args = {"batch_size": 8, "num_classes": 4, "mix_points": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        partner_batches(dataset(), args.pop("batch_size"), **args)


def first_columns(batches):
    """x[:, 0] of every clip in one pass over `batches`, in order."""
    return np.concatenate([element[0][0].numpy()[:, 0] for element in batches])


@pytest.mark.parametrize("one_hot", [False, True])
def test_batched_dataset_is_rebatched(one_hot):
    # Sparse batches (None,) and one-hot batches (None, C): neither is a
    # clip's label (C,), so both are taken as batched.
    ds = dataset(n=30, one_hot=one_hot)
    batched = ds.batch(7)
    assert batched.element_spec[1].shape[0] is None
    a = list(partner_batches(batched, 8, num_classes=4, mix_points=2, seed=3))
    b = list(partner_batches(ds, 8, num_classes=4, mix_points=2, seed=3))
    assert len(a) == 3
    for (xa, plan_a), ya in a:
        assert xa.shape == (8, 6) and ya.shape == (8, 4)
    # The same clips in the same order, so the same plans and targets.
    for ((xa, pa), ya), ((xb, pb), yb) in zip(a, b):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def test_batched_dict_and_weighted_datasets():
    groups = np.repeat(np.arange(8), 4)
    batched = dataset(groups=groups).batch(5)
    (_, plan), y = next(iter(partner_batches(batched, 8, num_classes=4, mix_points=1,
                                             seed=0)))
    assert y.shape == (8, 4)
    (_, plan), y, w = next(iter(partner_batches(dataset(weights=True).batch(5), 8,
                                                num_classes=4, mix_points=1, seed=0)))
    assert w.shape == (8,)


def test_unbatched_one_hot_labels_are_not_taken_as_batched():
    # x of unknown length does not make a dataset batched: one-hot labels
    # (C,) have a known length, and a sparse label () no leading dimension.
    waves = [np.zeros(n, "float32") for n in (5, 5, 5, 5)]
    for labels in (np.eye(4, dtype="float32"), np.arange(4)):
        ds = tf.data.Dataset.from_generator(
            lambda labels=labels: zip(waves, labels),
            output_signature=(tf.TensorSpec((None,), tf.float32),
                              tf.TensorSpec(labels.shape[1:], labels.dtype)))
        (x, _), y = next(iter(partner_batches(ds, 4, num_classes=4, mix_points=1,
                                              seed=0)))
        assert x.shape == (4, 5) and y.shape == (4, 4)


def test_numpy_arrays():
    x = np.random.RandomState(0).rand(20, 6).astype("float32")
    labels = np.arange(20) % 4
    batches = partner_batches((x, labels), 4, num_classes=4, mix_points=2, seed=1)
    first, second = first_columns(batches), first_columns(batches)
    # Every clip once per epoch, in a new order each epoch, as fit(x, y)
    # shuffles arrays; the same seed repeats the orders.
    np.testing.assert_array_equal(np.sort(first), np.sort(x[:, 0]))
    np.testing.assert_array_equal(np.sort(second), np.sort(x[:, 0]))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, first_columns(partner_batches(
        (x, labels), 4, num_classes=4, mix_points=2, seed=1)))
    (_, plan), y, w = next(iter(partner_batches(
        (x, labels, np.ones(20, "float32")), 4, num_classes=4, mix_points=2, seed=0)))
    assert y.shape == (4, 4) and w.shape == (4,)


def test_bad_elements_and_labels():
    with pytest.raises(ValueError, match="drop_remainder=True"):
        partner_batches(dataset().batch(3, drop_remainder=True), 8, num_classes=4,
                        mix_points=1)
    with pytest.raises(ValueError, match=r"received shapes \[\(4, 2\), \(3,\)\]"):
        partner_batches((np.zeros((4, 2)), np.zeros(3, "int32")), 2, num_classes=2,
                        mix_points=1)
    with pytest.raises(ValueError, match="tuple"):
        partner_batches((np.zeros((4, 2)),), 2, num_classes=2, mix_points=1)
    with pytest.raises(ValueError, match="training dataset"):
        partner_batches([dataset(), dataset()], 2, num_classes=4, mix_points=1)
    with pytest.raises(ValueError, match=r"received label shape \(4,\)"):
        partner_batches(dataset(one_hot=True), 8, num_classes=6, mix_points=1)
    with pytest.raises(ValueError, match="element_spec"):
        partner_batches(tf.data.Dataset.from_tensor_slices(np.zeros((4, 2))), 2,
                        num_classes=2, mix_points=1)
    with pytest.raises(ValueError, match="tf.data.Dataset"):
        partner_batches(np.zeros((4, 2)), 2, num_classes=2, mix_points=1)
    out_of_range = partner_batches(dataset(num_classes=5), 8, num_classes=4, mix_points=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=4"):
        list(out_of_range)
    negative = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1), "float32"), [0, -1, 1, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=">= 0"):
        list(partner_batches(negative, 4, num_classes=2, mix_points=1))
