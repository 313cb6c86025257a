"""Keras callbacks that steer and watch mixing during `fit`.

`partner_batches` accepts `tf.Variable`s for `alpha` and `prob`; these
callbacks change them between epochs. The pipeline reads them as it makes
each batch, so with prefetching the first few batches of an epoch may still
use the previous value.
"""

import keras
import numpy as np
import tensorflow as tf

__all__ = ["MixWarmup", "MixOff", "MixLogger"]


def _check_variable(variable, name):
    if not isinstance(variable, tf.Variable):
        raise ValueError(
            f"`{name}` must be the tf.Variable passed to partner_batches "
            f"(alpha= or prob=); received {type(variable).__name__}.")


class MixWarmup(keras.callbacks.Callback):
    """Ramps `alpha` or `prob` linearly to `target` over the first epochs.

    Args:
        variable: the `tf.Variable` given to `partner_batches(alpha=...)` or
            `(prob=...)`; its value at the start of training is the start.
        target: the value reached at epoch `epochs` and kept after.
        epochs: warm-up length in epochs (>= 1).

    Example:

    >>> import tensorflow as tf
    >>> prob = tf.Variable(0.0)
    >>> warmup = MixWarmup(prob, target=1.0, epochs=4)
    >>> warmup.on_epoch_begin(2); float(prob.numpy())
    0.5
    """

    def __init__(self, variable, target, epochs):
        super().__init__()
        _check_variable(variable, "variable")
        if epochs < 1:
            raise ValueError(f"`epochs` must be >= 1; received epochs={epochs!r}.")
        self.variable = variable
        self.start = float(variable.numpy())
        self.target = float(target)
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        progress = min(1.0, epoch / self.epochs)
        self.variable.assign(self.start + progress * (self.target - self.start))


class MixOff(keras.callbacks.Callback):
    """Switches mixing off from epoch `off_epoch` on (timm's mixup_off_epoch).

    Training ends on clean batches, so the last epochs fit the real data
    distribution.

    Args:
        prob: the `tf.Variable` given to `partner_batches(prob=...)`.
        off_epoch: first epoch (0-based) trained without mixing.

    Example:

    >>> import tensorflow as tf
    >>> prob = tf.Variable(1.0)
    >>> off = MixOff(prob, off_epoch=8)
    >>> off.on_epoch_begin(8); float(prob.numpy())
    0.0
    """

    def __init__(self, prob, off_epoch):
        super().__init__()
        _check_variable(prob, "prob")
        self.prob = prob
        self.on_value = float(prob.numpy())
        self.off_epoch = off_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.prob.assign(0.0 if epoch >= self.off_epoch else self.on_value)


class MixLogger(keras.callbacks.Callback):
    """Logs which mixing points and ratios each epoch really used.

    Reads `SpeechMix.mix_statistics()` at each epoch end, adds
    `mix_point_k` (share of batches mixed at point k) to the epoch logs
    (so `History` keeps them) and, with `log_dir`, writes them and a
    histogram of the ratios to TensorBoard.

    Args:
        log_dir: TensorBoard folder, or `None` for the epoch logs only.

    Example:

    >>> # view.fit(batches, epochs=10, callbacks=[MixLogger("logs/mix")])
    """

    def __init__(self, log_dir=None):
        super().__init__()
        self.log_dir = log_dir
        self._writer = None

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "mix_statistics"):
            raise ValueError("MixLogger needs the training view: fit "
                             "keras_speechmix.SpeechMix(model), not the model.")
        self.model.mix_statistics(reset=True)
        if self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch, logs=None):
        stats = self.model.mix_statistics(reset=True)
        points = np.asarray(stats["points"])
        share = points / max(1.0, points.sum())
        if logs is not None:
            for k, value in enumerate(share):
                logs[f"mix_point_{k}"] = float(value)
        if self._writer is None:
            return
        # Bin centres repeated by their counts rebuild the ratio sample.
        centres = np.repeat(np.arange(10) / 10 + 0.05,
                            np.asarray(stats["ratios"]).astype(int))
        with self._writer.as_default():
            for k, value in enumerate(share):
                tf.summary.scalar(f"mix/point_{k}", value, step=epoch)
            if centres.size:
                tf.summary.histogram("mix/ratio", centres, step=epoch, buckets=10)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
