"""Per-epoch randomness that a resumed run can repeat exactly.

By default the pipelines draw each epoch's shuffles, crops and mixing plans
from `tf.data` seed generators that move on with every iterator made, so
epoch `e` of a run is epoch `e` only within one process. Given an
`EpochClock`, they draw from `(seed, epoch, position)` instead: a run
restarted at epoch `e` (from `keras.callbacks.BackupAndRestore` or a
checkpoint) sees the same clips, crops and plans as an uninterrupted run from
there on.

Example:

>>> clock = EpochClock()
>>> clock.on_epoch_begin(3)
>>> int(clock.epoch.numpy())
3
"""

import keras
import tensorflow as tf

__all__ = ["EpochClock", "epoch_seeds", "epoch_order"]


class EpochClock(keras.callbacks.Callback):
    """The current epoch as a `tf.Variable` the data pipelines read.

    Pass `clock.epoch` as `epoch=` to `partner_batches`,
    `ClipSet.to_dataset` and `FileSet.to_dataset`, and the clock to `fit`'s
    callbacks (a custom loop calls `on_epoch_begin` itself). The pipelines
    read the variable when an iterator makes its first elements, after
    `on_epoch_begin`.

    Example:

    >>> import tensorflow as tf
    >>> clock = EpochClock()
    >>> seeds = epoch_seeds(7, clock.epoch)
    >>> first = next(iter(seeds)).numpy()
    >>> clock.on_epoch_begin(1)
    >>> bool((next(iter(seeds)).numpy() != first).any())
    True
    """

    def __init__(self):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


def _epoch_key(seed, epoch):
    base = tf.constant([int(seed), 0], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))


def epoch_seeds(seed, epoch):
    """An endless dataset of shape-`[2]` seeds, a function of `(seed, epoch, n)`.

    Each iterator restarts at position 0 and reads `epoch` (a `tf.Variable`)
    as it makes each seed.

    Example:

    >>> import tensorflow as tf
    >>> a = [s.numpy().tolist() for s in epoch_seeds(1, tf.Variable(0, dtype=tf.int64)).take(2)]
    >>> b = [s.numpy().tolist() for s in epoch_seeds(1, tf.Variable(0, dtype=tf.int64)).take(2)]
    >>> a == b and a[0] != a[1]
    True
    """
    return tf.data.Dataset.counter().map(
        lambda n: tf.random.experimental.stateless_fold_in(_epoch_key(seed, epoch), n))


def epoch_order(count, seed, epoch):
    """A dataset of the indices `0..count-1` in an order fixed by `(seed, epoch)`.

    Example:

    >>> import tensorflow as tf
    >>> sorted(int(i) for i in epoch_order(5, 0, tf.Variable(2, dtype=tf.int64)))
    [0, 1, 2, 3, 4]
    """
    count = int(count)

    def order(_):
        key = tf.random.experimental.stateless_fold_in(_epoch_key(seed, epoch), -1)
        return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), key)

    return tf.data.Dataset.range(1).map(order).unbatch()
