"""What `fit` trains on: shuffled one-hot batches for plain training, the
`SpeechMix` view on partner batches for a mixing method. Shared by one-run
training (`experiment`) and multi-worker training (`multiworker`), which
import it; it imports neither.
"""

import tensorflow as tf

from keras_speechmix.pipeline import partner_batches
from keras_speechmix.view import SpeechMix

__all__ = ["batches", "training_batches"]


def _streamed(clips):
    # A streaming.FileSet; imported lazily only where it is one.
    return not hasattr(clips, "waveforms")


def training_batches(model, train, length, batch_size, seed, mixing=None, epoch=None,
                     sound_crops=None):
    """What `fit` trains on: `(trainer, batches)` for one method.

    Without `mixing`, the model itself on shuffled one-hot batches; with it
    (a dict of `partner_batches` arguments), the `SpeechMix` view of the
    model on partner batches. Clips are randomly cropped to `length` (with
    `sound_crops`, crops that carry sound: `ClipSet.to_dataset`). With
    `epoch` (a `tf.Variable`, `keras_speechmix.epochs.EpochClock`), order,
    crops and plans are a function of `(seed, epoch)`, so that a resumed
    run repeats them.

    Example:

    >>> # trainer, batches = training_batches(model, train, 16000, 32, 0, {"alpha": 1.0})
    """
    num_classes = len(train.class_names)
    clips = train.to_dataset(length, training=True, seed=seed, epoch=epoch,
                             sound_crops=sound_crops)
    if not _streamed(train) and epoch is None:
        # A stream (and an epoch-clocked set) orders its clips itself; a
        # buffer of every decoded clip would defeat reading as it goes.
        clips = clips.shuffle(len(train), seed=seed, reshuffle_each_iteration=True)
    trainer = model if mixing is None else SpeechMix(model)
    return trainer, batches(clips, batch_size, num_classes, seed, mixing,
                            getattr(trainer, "num_mix_points", 0), train.sample_rate,
                            epoch=epoch,
                            # A stream cannot know how many of its files read
                            # well: dropping a last partial batch could leave
                            # an epoch with no batch at all.
                            drop_remainder=not _streamed(train))


def batches(clips, batch_size, num_classes, seed, mixing, mix_points, sample_rate,
            epoch=None, num_replicas=None, drop_remainder=True):
    """Batches of a `(waveform, label)` dataset: one-hot without `mixing`,
    `partner_batches(..., **mixing)` with it; `drop_remainder=False` keeps
    a last partial batch.

    Example:

    >>> # data = batches(train.to_dataset(16000, training=True), 32, 10, 0, None, 0, 16000)
    """
    if mixing is None:
        return clips.batch(batch_size, drop_remainder=drop_remainder).map(
            _one_hot(num_classes))
    return partner_batches(clips, batch_size, num_classes=num_classes,
                           mix_points=mix_points, sample_rate=sample_rate, seed=seed,
                           epoch=epoch, num_replicas=num_replicas,
                           drop_remainder=drop_remainder, **mixing)


def _one_hot(num_classes):
    # A named function, not a lambda: autograph reads a lambda's source and
    # warns when it cannot (several lambdas on one line).
    def one_hot(x, y):
        return x, tf.one_hot(y, num_classes)

    return one_hot
