"""One training run on clips: the recipe behind `speechmix train` and `demo`.

The mixing methods compared here, all on the same network, data, epochs,
optimiser and seed:

- `"none"`: plain training.
- `"input"`: input mixup (Zhang et al., 2018) on the log-mel features, one
  lambda ~ U(0, 1) per batch, partners a shuffle of the batch.
- `"bc"`: BC learning (Tokozume et al., 2018): waveform mixing with the
  gain-aware ratio and partners of another class.
- `"speechmix"`: SpeechMix (Jindal et al., 2020): one point per batch drawn
  from the input features and every conv block (never after the last conv
  stage), r ~ U(0, 1) per clip, partners of another class, as in the
  authors' code.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from keras_speechmix import audio
from keras_speechmix.models import logmel_cnn
from keras_speechmix.pipeline import partner_batches
from keras_speechmix.view import SpeechMix

__all__ = ["METHODS", "MIXES", "build_model", "default_length", "predict_clips",
           "train_clips", "training_batches"]

_CONV_POINTS = ("input", "block1", "block2", "block3")
# Each method's mixing points in the log-mel CNN and its partner_batches
# arguments; alpha = 1.0 (r ~ U(0, 1)) throughout unless train_clips is told.
METHODS = {
    # Plain training never hands a plan over, so these points stay identities.
    "none": dict(points=_CONV_POINTS),
    "input": dict(points=("input",), per_sample=False, partners="random"),
    "bc": dict(points=("waveform",), ratio="bc", partners="different_class"),
    "speechmix": dict(points=_CONV_POINTS, partners="different_class"),
}
MIXES = tuple(METHODS)


def build_model(mix, num_classes, sample_rate, input_length):
    """The log-mel CNN with the mixing points of method `mix`.

    Example:

    >>> build_model("speechmix", 10, 16000, 16000).output_shape
    (None, 10)
    """
    if mix not in MIXES:
        raise ValueError(f"`mix` must be one of {MIXES}; received mix={mix!r}.")
    return logmel_cnn(num_classes, sample_rate=sample_rate,
                      input_length=input_length, mix_points=METHODS[mix]["points"])


def predict_clips(model, clips, length, crops=5, batch_size=64):
    """Class probabilities per clip, averaged over evenly spaced crops.

    Clips no longer than `length` are zero-padded and predicted once; longer
    ones get `crops` evenly spaced windows (as BC learning tests).

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.models import logmel_cnn
    >>> model = logmel_cnn(3, input_length=8000)
    >>> predict_clips(model, [np.zeros(4000, "float32")], 8000).shape
    (1, 3)
    """
    windows, owner = [], []
    for number, wave in enumerate(clips):
        if len(wave) <= length:
            pieces = [np.pad(wave, (0, length - len(wave)))]
        else:
            pieces = list(np.asarray(audio.multi_crop(wave, length, crops)))
        windows.extend(pieces)
        owner.extend([number] * len(pieces))
    probabilities = model.predict(np.stack(windows).astype("float32"),
                                  batch_size=batch_size, verbose=0)
    owner = np.asarray(owner)
    return np.stack([probabilities[owner == k].mean(axis=0)
                     for k in range(len(clips))])


def default_length(clips):
    """Input length in samples: the longest clip, at most 5 s.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.datasets import ClipSet
    >>> default_length(ClipSet([np.zeros(900), np.zeros(1200)], [0, 1], ["a", "b"], 1000))
    1200
    """
    return int(min(max(len(w) for w in clips.waveforms), 5 * clips.sample_rate))


def training_batches(model, train, length, batch_size, seed, mixing=None):
    """What `fit` trains on: `(trainer, batches)` for one method.

    Without `mixing`, the model itself on shuffled one-hot batches; with it
    (a dict of `partner_batches` arguments), the `SpeechMix` view of the
    model on partner batches. Clips are randomly cropped to `length`.

    Example:

    >>> # trainer, batches = training_batches(model, train, 16000, 32, 0, {"alpha": 1.0})
    """
    num_classes = len(train.class_names)
    clips = train.to_dataset(length, training=True, seed=seed).shuffle(
        len(train), seed=seed, reshuffle_each_iteration=True)
    if mixing is None:
        return model, clips.batch(batch_size, drop_remainder=True).map(
            lambda x, y: (x, tf.one_hot(y, num_classes)))
    trainer = SpeechMix(model)
    return trainer, partner_batches(
        clips, batch_size, num_classes=num_classes,
        mix_points=trainer.num_mix_points, sample_rate=train.sample_rate,
        seed=seed, **mixing)


def _schedule(epochs, steps, learning_rate):
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, epochs * steps), alpha=0.05)


def train_clips(train, test, mix="speechmix", epochs=30, seed=0,
                length=None, batch_size=32, learning_rate=2e-3, verbose=1,
                alpha=1.0):
    """Trains the log-mel CNN on `train` with method `mix`; tests on `test`.

    Args:
        train, test: `keras_speechmix.datasets.ClipSet`s of one sample rate.
        mix: one of `MIXES`.
        epochs, seed, batch_size, learning_rate: the training recipe.
        length: input length in samples (default: the longest train clip,
            at most 5 s).
        verbose: Keras progress output (0, 1 or 2).
        alpha: Beta(alpha, alpha) of the ratio.

    Returns:
        `(model, result)`: the plain trained model and a dict with
        `test_accuracy`, `confusion`, per-epoch `history`, `seconds`, ...

    Example:

    >>> # model, result = train_clips(train, test, mix="speechmix", epochs=30)
    """
    keras.utils.set_random_seed(seed)
    if len(train) < 2:
        raise ValueError(f"Training needs at least 2 clips; the train split has {len(train)}.")
    # Small sets still get full batches (drop_remainder keeps shapes static).
    batch_size = min(batch_size, len(train))
    length = length or default_length(train)
    num_classes = len(train.class_names)
    model = build_model(mix, num_classes, train.sample_rate, length)
    steps = max(1, len(train) // batch_size)
    optimizer = keras.optimizers.Adam(_schedule(epochs, steps, learning_rate))
    options = {k: v for k, v in METHODS[mix].items() if k != "points"}
    trainer, data = training_batches(model, train, length, batch_size, seed,
                                     None if mix == "none" else dict(options, alpha=alpha))
    # XLA made the log-mel CNN's CPU step about 4x slower; keep it for GPUs.
    trainer.compile(optimizer=optimizer, loss="categorical_crossentropy",
                    metrics=["accuracy"],
                    jit_compile=bool(tf.config.list_physical_devices("GPU")))
    test_x = np.stack([_center(w, length) for w in test.waveforms])
    test_y = keras.utils.to_categorical(test.labels, num_classes)
    started = time.perf_counter()
    history = trainer.fit(data.prefetch(tf.data.AUTOTUNE), epochs=epochs,
                          validation_data=(test_x, test_y), verbose=verbose,
                          shuffle=False)  # the dataset is shuffled above
    seconds = time.perf_counter() - started
    predicted = predict_clips(model, test.waveforms, length).argmax(axis=1)
    confusion = tf.math.confusion_matrix(
        test.labels, predicted, num_classes=num_classes).numpy()
    accuracy = float(np.mean(predicted == test.labels))
    result = {
        "mix": mix,
        "test_accuracy": accuracy,
        "test_error": 1.0 - accuracy,
        "epochs": epochs,
        "seed": seed,
        "num_train": len(train),
        "num_test": len(test),
        "num_classes": num_classes,
        "class_names": list(train.class_names),
        "sample_rate": train.sample_rate,
        "input_length": length,
        "mix_points": [] if mix == "none" else list(METHODS[mix]["points"]),
        "seconds": round(seconds, 2),
        "confusion": confusion.tolist(),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    return model, result


def _center(wave, length):
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start:start + length]
    return np.pad(wave, (0, length - len(wave)))
