"""The NumPy sampler follows partner_batches' rules: same errors, same laws.

Both loaders draw from their own random streams, so plans are compared as
distributions (chi-square and Kolmogorov-Smirnov two-sample tests, at fixed
seeds so that the outcome is fixed), never draw by draw; the rules that must
hold in every batch (partners of another class, groups never paired, shards)
are checked on every batch of both.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix import PartnerBatches, PlanSampler, partner_batches
from keras_speechmix.gain import gain_db, gain_db_numpy

stats = pytest.importorskip("scipy.stats")

BATCH = 8
# Every batch holds this block of clips in this order, in both loaders, so
# that partner statistics are comparable position by position.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 3])
GROUPS = np.array([0, 0, 1, 1, 2, 2, 3, 3])
P_MIN = 1e-3


def draws(num_batches, labels=LABELS, groups=None, **kwargs):
    """Plans of `num_batches` batches of the block, from both loaders."""
    args = dict(num_classes=4, mix_points=3, seed=0, **kwargs)
    x = np.tile(np.arange(BATCH, dtype="float32")[:, None], (num_batches, 1))
    y = np.tile(labels, num_batches)
    element = {"x": x, "y": y}
    if groups is not None:
        element["group"] = np.tile(groups, num_batches)
    ds = tf.data.Dataset.from_tensor_slices(element)
    tf_plans = [{k: v.numpy() for k, v in e[0][1].items()}
                for e in partner_batches(ds, BATCH, **args)]
    group_arg = None if groups is None else element["group"]
    batches = PartnerBatches(x, y, BATCH, shuffle=False, groups=group_arg, **args)
    np_plans = [batches[i][0][1] for i in range(len(batches))]
    assert len(tf_plans) == len(np_plans) == num_batches
    return tf_plans, np_plans


def pair_counts(plans):
    """Counts of (row, partner) over the batches, flattened."""
    counts = np.zeros((BATCH, BATCH))
    for plan in plans:
        counts[np.arange(BATCH), plan["partner"]] += 1
    return counts.ravel()


def same_counts(a, b):
    """Chi-square test that two count vectors come from one distribution."""
    table = np.stack([a, b])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return np.array_equal(a, b)
    return stats.chi2_contingency(table).pvalue > P_MIN


def mixed_ratios(plans):
    return np.concatenate([p["ratio"][p["ratio"] < 1] for p in plans])


def point_counts(plans, mix_points=3):
    """Batches per active point, and clean batches last."""
    counts = np.zeros(mix_points + 1)
    for plan in plans:
        row = plan["point"][0]
        counts[np.argmax(row) if row.any() else mix_points] += 1
    return counts


def test_random_partners_ratios_points_and_prob():
    tf_plans, np_plans = draws(400, alpha=0.4, prob=0.7)
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))
    assert same_counts(point_counts(tf_plans), point_counts(np_plans))
    r_tf, r_np = mixed_ratios(tf_plans), mixed_ratios(np_plans)
    assert stats.ks_2samp(r_tf, r_np).pvalue > P_MIN
    # And both follow the Beta law they claim.
    assert stats.kstest(r_np, stats.beta(0.4, 0.4).cdf).pvalue > P_MIN
    # A self-pair is left unmixed in both.
    for plan in tf_plans + np_plans:
        own = plan["partner"] == np.arange(BATCH)
        assert np.all(plan["ratio"][own] == 1.0)


def test_per_batch_first_dominant_ratios():
    tf_plans, np_plans = draws(300, per_sample=False, first_dominant=True, alpha=2.0)
    per_batch = []
    for plans in (tf_plans, np_plans):
        r = [np.unique(p["ratio"][p["ratio"] < 1]) for p in plans]
        assert all(len(v) <= 1 and np.all(v >= 0.5) for v in r)
        per_batch.append(np.concatenate(r))
    assert stats.ks_2samp(*per_batch).pvalue > P_MIN


def test_different_class_partners():
    tf_plans, np_plans = draws(400, partners="different_class")
    for plan in tf_plans + np_plans:
        assert np.all(LABELS[plan["partner"]] != LABELS)
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))


def test_different_class_falls_back_to_random_in_one_class_batches():
    tf_plans, np_plans = draws(300, labels=np.zeros(BATCH, int),
                               partners="different_class")
    for plan in tf_plans + np_plans:
        assert np.all(plan["partner"] != np.arange(BATCH))
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))


def test_balanced_partners():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 2])  # long-tailed
    tf_plans, np_plans = draws(400, labels=labels, partners="balanced")
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))
    rare = [np.mean(labels[np.concatenate([p["partner"][:6] for p in plans])] > 0)
            for plans in (tf_plans, np_plans)]
    assert min(rare) > 0.4, rare  # uniform partners would give 2/7


def test_groups_are_never_paired():
    tf_plans, np_plans = draws(400, groups=GROUPS)
    for plan in tf_plans + np_plans:
        assert np.all(GROUPS[plan["partner"]] != GROUPS)
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))


def test_groups_with_different_class_partners():
    tf_plans, np_plans = draws(300, groups=GROUPS, partners="different_class")
    for plan in tf_plans + np_plans:
        assert np.all(GROUPS[plan["partner"]] != GROUPS)
        assert np.all(LABELS[plan["partner"]] != LABELS)
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))


def test_partners_stay_in_replica_shards():
    tf_plans, np_plans = draws(300, num_replicas=2, partners="different_class")
    for plan in tf_plans + np_plans:
        local = plan["partner"]
        assert np.all(local < BATCH // 2)
        partner = local + np.arange(BATCH) // 4 * 4
        shard_labels = LABELS[partner]
        # Shard 0 holds classes {0, 1}, shard 1 classes {1, 2, 3}.
        assert np.all(shard_labels != LABELS)
    assert same_counts(pair_counts(tf_plans), pair_counts(np_plans))


@pytest.mark.parametrize("num_replicas", [1, 2])
def test_background_layout(num_replicas):
    waves = np.random.RandomState(0).rand(16, 5).astype("float32")
    noise = np.full((8, 5), 7.0, "float32")
    args = dict(num_classes=4, mix_points=2, seed=0, num_replicas=num_replicas)
    ds = tf.data.Dataset.from_tensor_slices((waves, np.arange(16) % 4))
    (x_tf, plan_tf), y_tf = next(iter(partner_batches(
        ds, BATCH, background=tf.data.Dataset.from_tensor_slices(noise), **args)))
    (x_np, plan_np), y_np = PartnerBatches(waves, np.arange(16) % 4, BATCH,
                                           background=noise, shuffle=False, **args)[0]
    for key in ("partner", "background"):
        np.testing.assert_array_equal(plan_np[key], plan_tf[key].numpy())
    np.testing.assert_array_equal(x_np == 7.0, x_tf.numpy() == 7.0)
    np.testing.assert_array_equal(plan_np["ratio"][plan_np["background"] == 1], 1.0)
    np.testing.assert_array_equal(y_np, y_tf.numpy())  # targets stay unmixed
    assert plan_np["point"].shape == plan_tf["point"].shape == (2 * BATCH, 2)


@pytest.mark.parametrize("sample_rate", [None, 8000, 16000, 44100])
def test_numpy_gains_match_tensorflow(sample_rate):
    rng = np.random.RandomState(0)
    waves = (rng.randn(5, 9000) * np.array([0.0, 1e-3, 0.05, 0.3, 1.0])[:, None])
    waves = waves.astype("float32")
    np.testing.assert_allclose(gain_db_numpy(waves, sample_rate),
                               gain_db(waves, sample_rate).numpy(), atol=1e-3)
    short = waves[:, :700, None]  # shorter than a frame, with a channel axis
    np.testing.assert_allclose(gain_db_numpy(short, sample_rate),
                               gain_db(short, sample_rate).numpy(), atol=1e-3)


def test_bc_gains_in_plans_match():
    waves = np.random.RandomState(0).randn(8, 3000).astype("float32") * 0.1
    waves[0] = 0.0
    args = dict(num_classes=2, mix_points=1, ratio="bc", sample_rate=16000, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((waves, np.arange(8) % 2))
    (x_tf, plan_tf), _ = next(iter(partner_batches(ds, 8, **args)))
    (x_np, plan_np), _ = PartnerBatches(waves, np.arange(8) % 2, 8, shuffle=False,
                                        **args)[0]
    np.testing.assert_allclose(plan_np["gain"], plan_tf["gain"].numpy(), atol=1e-3)
    assert plan_np["gain"][0] == -80.0


BAD_ARGUMENTS = [
    {"alpha": 0.0}, {"alpha": -1.0}, {"alpha": float("nan")}, {"alpha": float("inf")},
    {"num_classes": 1}, {"mix_points": 0}, {"batch_size": 1}, {"batch_size": 0},
    {"ratio": "uniform"}, {"partners": "any"}, {"label_smoothing": 1.0},
    {"label_mode": "max"}, {"prob": 1.5}, {"num_replicas": 3}, {"num_replicas": 0},
    {"num_replicas": 2, "drop_remainder": False},
]


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS, ids=str)
def test_same_argument_errors(kwargs):
    args = {"batch_size": 8, "num_classes": 4, "mix_points": 1, **kwargs}
    batch_size = args.pop("batch_size")
    x, y = np.zeros((16, 3), "float32"), np.arange(16) % 4
    with pytest.raises(ValueError) as from_tf:
        partner_batches((x, y), batch_size, **args)
    with pytest.raises(ValueError) as from_numpy:
        PartnerBatches(x, y, batch_size, **args)
    assert str(from_numpy.value) == str(from_tf.value)
    needs_batch = {"batch_size", "drop_remainder"} & set(kwargs) or kwargs == {"num_replicas": 3}
    if not needs_batch:  # the sampler has no batch size to check
        with pytest.raises(ValueError) as from_sampler:
            PlanSampler(**args)
        assert str(from_sampler.value) == str(from_tf.value)
