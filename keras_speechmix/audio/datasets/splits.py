"""Train / test splits of a `ClipSet`: by fold, by group, stratified.

Each split returns `(train, test)` `ClipSet`s and refuses a split that
leaves either side empty.
"""

import numpy as np

__all__ = ["split_by_fold", "split_by_group", "fsdd_official_split",
           "stratified_split", "validation_split"]



def _pair(clips, test_mask, what):
    train_mask = ~test_mask
    if not test_mask.any() or not train_mask.any():
        side = "test" if not test_mask.any() else "train"
        raise ValueError(f"{what} leaves the {side} set empty")
    return clips.subset(train_mask), clips.subset(test_mask)


def _as_list(value):
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [value]
    return list(value)


def split_by_fold(clips, test_folds, train_folds=None):
    """Splits by predefined folds (e.g. ESC's cross-validation folds).

    Args:
        clips: A `ClipSet` with `folds`.
        test_folds: A fold or folds for the test set.
        train_folds: Folds for the training set; defaults to all others.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> clips = ClipSet([np.zeros(10, "float32")] * 4, [0, 1, 0, 1], ["a", "b"],
    ...                 8000, folds=[1, 1, 2, 2])
    >>> [len(s) for s in split_by_fold(clips, 2)]
    [2, 2]
    """
    if clips.folds is None:
        raise ValueError("split_by_fold: this ClipSet has no folds")
    known = sorted(set(clips.folds.tolist()))
    test = [int(f) for f in _as_list(test_folds)]
    train = [f for f in known if f not in test] if train_folds is None else [
        int(f) for f in _as_list(train_folds)
    ]
    unknown = sorted(set(test + train) - set(known))
    if unknown:
        raise ValueError(f"split_by_fold: unknown fold(s) {unknown}; the folds are {known}")
    overlap = sorted(set(test) & set(train))
    if overlap:
        raise ValueError(f"split_by_fold: fold(s) {overlap} are in both train and test")
    test_mask = np.isin(clips.folds, test)
    train_mask = np.isin(clips.folds, train)
    if not test_mask.any() or not train_mask.any():
        raise ValueError("split_by_fold: a split is empty")
    return clips.subset(train_mask), clips.subset(test_mask)


def split_by_group(clips, test_groups):
    """Holds out whole groups (e.g. leave-speakers-out).

    Args:
        clips: A `ClipSet` with `groups`.
        test_groups: A group name or names for the test set; every other
            group goes to the training set.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> clips = ClipSet([np.zeros(10, "float32")] * 4, [0, 1, 0, 1], ["a", "b"],
    ...                 8000, groups=["ann", "ann", "bob", "bob"])
    >>> [s.groups for s in split_by_group(clips, "bob")]
    [['ann', 'ann'], ['bob', 'bob']]
    """
    if clips.groups is None:
        raise ValueError("split_by_group: this ClipSet has no groups")
    test = [str(g) for g in _as_list(test_groups)]
    known = sorted(set(clips.groups))
    unknown = sorted(set(test) - set(known))
    if unknown:
        raise ValueError(f"split_by_group: unknown group(s) {unknown}; the groups are {known}")
    return _pair(clips, np.isin(np.array(clips.groups), test), "split_by_group")


def fsdd_official_split(clips):
    """FSDD's official split: recording index 0-4 test, the rest train.

    Args:
        clips: A `ClipSet` from `fsdd` (needs `meta["index"]`).

    Returns:
        `(train, test)` ClipSets (2700 / 300 clips for the full dataset).

    Example:

    >>> train, test = fsdd_official_split(fsdd("~/data/fsdd"))  # doctest: +SKIP
    """
    if "index" not in clips.meta:
        raise ValueError(
            "fsdd_official_split: clips have no recording index (meta['index']); "
            "load them with datasets.fsdd"
        )
    return _pair(clips, clips.meta["index"] < 5, "fsdd_official_split")


def stratified_split(clips, test_fraction=0.2, seed=0):
    """Random split that keeps each class's share in both parts.

    Each class with at least two clips contributes `round(n * test_fraction)`
    clips (at least one) to the test set.

    Args:
        clips: A `ClipSet`.
        test_fraction: Fraction of each class held out, in (0, 1).
        seed: Seed for the shuffling.

    Returns:
        `(train, test)` ClipSets.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> clips = ClipSet([np.zeros(10, "float32")] * 10, [0] * 5 + [1] * 5,
    ...                 ["a", "b"], 8000)
    >>> [len(s) for s in stratified_split(clips, 0.4)]
    [6, 4]
    """
    if not 0 < test_fraction < 1:
        raise ValueError(
            f"stratified_split: test_fraction must be in (0, 1); got {test_fraction!r}"
        )
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(clips), bool)
    for label in np.unique(clips.labels):
        members = np.flatnonzero(clips.labels == label)
        if len(members) < 2:
            continue
        count = min(len(members) - 1, max(1, int(round(len(members) * test_fraction))))
        test_mask[rng.choice(members, size=count, replace=False)] = True
    return _pair(clips, test_mask, "stratified_split")


def validation_split(clips, fraction=0.1, seed=0):
    """Holds out a validation part of the *training* clips, group-aware.

    For the learning curves and any choice made during training, so that the
    test split is scored only once, at the end. Clips that share a group
    (a speaker, or clips cut from one recording) land on the same side, so
    the validation part is as independent of the rest as the test is: with
    groups, whole groups are held out at random until each class has about
    `fraction` of its clips held out (at least one group); without groups,
    it is a `stratified_split`.

    Args:
        clips: The training `ClipSet`.
        fraction: Share of the clips to hold out, in (0, 1).
        seed: Seed for the choice.

    Returns:
        `(train, validation)` ClipSets.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> clips = ClipSet([np.zeros(10, "float32")] * 8, [0, 1] * 4, ["a", "b"],
    ...                 8000, groups=["ann"] * 2 + ["bob"] * 2 + ["cy"] * 2 + ["dee"] * 2)
    >>> train, val = validation_split(clips, 0.25)
    >>> len(train), len(val), len(set(val.groups))
    (6, 2, 1)
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split: fraction must be in (0, 1); got {fraction!r}")
    if clips.groups is None:
        return stratified_split(clips, fraction, seed=seed)
    groups = np.asarray(clips.groups)
    names = sorted(set(clips.groups))
    if len(names) < 2:
        raise ValueError(
            f"validation_split: the training clips come from {len(names)} group "
            f"({names[0]!r}); holding out whole groups needs at least two")
    classes = np.unique(clips.labels)
    wanted = {c: max(1, round(fraction * np.sum(clips.labels == c))) for c in classes}
    held = {c: 0 for c in classes}
    test_mask = np.zeros(len(clips), bool)
    for name in np.random.default_rng(seed).permutation(names):
        members = groups == name
        adds = {c: int(np.sum(members & (clips.labels == c))) for c in classes}
        if any(held[c] + adds[c] > wanted[c] for c in classes if adds[c]):
            continue
        test_mask |= members
        for c in classes:
            held[c] += adds[c]
    if not test_mask.any():  # every group is bigger than the share: take one
        test_mask = groups == np.random.default_rng(seed).choice(names)
    return _pair(clips, test_mask, "validation_split")
