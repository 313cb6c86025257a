"""One training run on clips: the recipe behind `speechmix train` and `demo`.

The mixing methods compared, all on the same network, data, optimiser and
seed (`METHODS`):

- `"none"`: plain training.
- `"input"`: input mixup (Zhang et al., 2018) on the log-mel features, one
  lambda ~ U(0, 1) per batch, partners a shuffle of the batch.
- `"bc"`: BC learning (Tokozume et al., 2018): waveform mixing with the
  gain-aware ratio and partners of another class.
- `"manifold"`: Manifold Mixup (Verma et al., 2019): one point per batch
  among all points (input, every block, the head), one lambda ~ Beta(2, 2)
  per batch, partners a shuffle of the batch.
- `"speechmix"`: SpeechMix (Jindal et al., 2020) as the authors' code runs
  it: one point per batch drawn from the outputs of the conv blocks (their
  canonical run and InterMix's best set leave the input out; never after
  the last conv stage), r ~ U(0, 1) per clip, partners of another class,
  and the loudness-aware "sound" rule with each clip's gain measured from
  the activation itself (`HiddenMixup(gain="activation")`, `HIDDEN_GAINS`).

The reference networks (`NETWORKS`) and the default recipe (`RECIPE`) were
chosen on validation splits cut from ESC-10's training folds, never on a
test fold; `benchmarks/NOTES.md` records how.
"""

import contextlib
import time

import keras
import numpy as np
import tensorflow as tf

from keras_speechmix import calibration
from keras_speechmix.audio import datasets
from keras_speechmix.audio.shifts import SHIFTS, apply_shift
from keras_speechmix.models import saved
from keras_speechmix.training import multiworker
from keras_speechmix.training.batches import _one_hot, _streamed, training_batches
from keras_speechmix.training.paired import shift_score
from keras_speechmix.training.recipe import (HIDDEN_GAINS, METHODS, MIXES, NETWORKS,  # noqa: F401
                                             RECIPE, _network, build_model,
                                             method_points)
from keras_speechmix.callbacks import MixOff
from keras_speechmix.epochs import EpochClock
from keras_speechmix.view import SpeechMix

__all__ = ["HIDDEN_GAINS", "METHODS", "MIXES", "NETWORKS", "RECIPE", "build_model",
           "default_length", "hold_out_validation", "predict_clips", "train_clips"]

def hold_out_validation(train, fraction=None, seed=0):
    """The recipe's validation hold-out: `(train, validation)`.

    `fraction` (default `RECIPE["validation"]`) of the training clips, as
    whole groups (speakers, source recordings) when they have groups
    (`datasets.validation_split`); `validation` is `None` for 0. The
    command line and the accuracy benchmark both hold out through here, so
    they train on the same clips.

    Example:

    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> clips = ClipSet([np.zeros(10, "float32")] * 20, [0, 1] * 10, ["a", "b"], 8000)
    >>> train, validation = hold_out_validation(clips, 0.2)
    >>> len(train), len(validation), hold_out_validation(clips, 0)[1] is None
    (16, 4, True)
    """
    fraction = RECIPE["validation"] if fraction is None else fraction
    if not fraction:
        return train, None
    return datasets.validation_split(train, fraction, seed)


def predict_clips(model, clips, length, crops=10, batch_size=64):
    """Class probabilities per clip, averaged over evenly spaced crops.

    Clips no longer than `length` are zero-padded and predicted once; longer
    ones get `crops` evenly spaced windows (as BC learning tests). The same
    as `keras_speechmix.predict_clips`, the public function for saved models.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.models import logmel_cnn
    >>> model = logmel_cnn(3, input_length=8000)
    >>> predict_clips(model, [np.zeros(4000, "float32")], 8000).shape
    (1, 3)
    """
    return saved.predict_clips(model, clips, length, crops=crops, batch_size=batch_size)


def default_length(clips, seconds=5.0):
    """Input length in samples: the longest clip, at most `seconds`.

    Example:

    >>> import numpy as np
    >>> from keras_speechmix.audio.datasets import ClipSet
    >>> default_length(ClipSet([np.zeros(900), np.zeros(1200)], [0, 1], ["a", "b"], 1000))
    1200
    """
    crop = round(seconds * clips.sample_rate)
    if _streamed(clips):
        return int(crop)  # lengths are unknown until the files are read
    return int(min(max(len(w) for w in clips.waveforms), crop))


class _StepCount(keras.callbacks.Callback):
    """Fails a training run at the end of an epoch that trained no batch."""

    def __init__(self, why):
        super().__init__()
        self.why = why
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        if not self.steps:
            raise RuntimeError(f"epoch {epoch + 1} trained on no batch at all: {self.why()}")


def _probabilities(model, clips, length, crops):
    """Clip probabilities and the labels they are scored against."""
    if _streamed(clips):
        from keras_speechmix.audio.streaming import predict_files

        return predict_files(model, clips, length, crops=crops)
    return predict_clips(model, clips.waveforms, length, crops=crops), clips.labels


def _accuracy(model, clips, length, crops):
    """Clip accuracy, predictions and the labels they are scored against."""
    probabilities, labels = _probabilities(model, clips, length, crops)
    predicted = probabilities.argmax(axis=1)
    return float(np.mean(predicted == labels)), predicted, labels


def _fit_temperature(net, validation, length, crops):
    """The temperature that calibrates `net` on the validation clips' windows."""
    windows, owner = saved.clip_windows(validation.waveforms, length, crops)
    probabilities = net.predict(windows, batch_size=64, verbose=0)
    return calibration.fit_temperature(probabilities, validation.labels, owner=owner)


def _shifted_scores(net, test, length, crops, shifts, seed):
    """`paired.shift_score` of the test clips under each shift
    (`audio.shifts`), the same shifted clips for every method of a seed."""
    return {shift: shift_score(
        predict_clips(net, apply_shift(test.waveforms, shift, seed=seed, labels=test.labels),
                      length, crops=crops), test.labels)
        for shift in shifts}


def _validation_data(clips, length, num_classes):
    if _streamed(clips):
        return clips.to_dataset(length).batch(64).map(_one_hot(num_classes))
    return (np.stack([_center(w, length) for w in clips.waveforms]),
            keras.utils.to_categorical(clips.labels, num_classes))


def train_clips(train, test=None, mix="speechmix", epochs=None, seed=0,
                length=None, batch_size=None, learning_rate=None, verbose=1,
                alpha=None, model=None, validation=None, mix_off=None,
                crops=10, callbacks=(), max_skipped=0.05, backup_dir=None,
                save_every=None, sound_crops=None, calibrate=True, shifts=None):
    """Trains a reference network on `train` with method `mix`.

    The recipe's defaults (`RECIPE`) fill every argument left `None`.
    `validation` (clips held out from the training data) gives the curves;
    `test` is scored once, after training, on `crops` evenly spaced windows
    per clip; so is the accuracy on the training clips themselves, in
    inference mode, which tells whether the network fits its data (a
    regulariser such as mixing only pays where it does).

    Args:
        train, test, validation: `keras_speechmix.audio.datasets.ClipSet`s of one
            sample rate, or `keras_speechmix.audio.streaming.FileSet`s to read the
            files as training goes; `test` and `validation` may be `None`.
        mix: one of `MIXES`.
        epochs: training epochs (default: the recipe's, doubled for mixing).
        seed: seed of weights, crops, shuffles and mixing plans.
        length: input length in samples (default: the network's crop, at
            most the longest training clip).
        batch_size, learning_rate: the optimiser's (default: the recipe's
            and the network's).
        verbose: Keras progress output (0, 1 or 2).
        alpha: Beta(alpha, alpha) of the ratio (default: the method's).
        model: a name from `NETWORKS` (default: the recipe's).
        mix_off: share of the last epochs trained without mixing.
        crops: windows per clip when scoring.
        callbacks: more Keras callbacks for `fit`.
        max_skipped: for a streamed `train`, the share of failed file reads
            that stops training (`streaming.SkipGuard`).
        backup_dir: back the training state up here after every epoch
            (`keras.callbacks.BackupAndRestore`); a run killed and started
            again with the same arguments goes on from the last epoch
            finished, with the clips, crops and plans an uninterrupted run
            would have had (`keras_speechmix.epochs`). `history` then covers
            the epochs run since.
        save_every: with `backup_dir`, also back up every this many steps
            and resume mid-epoch (`multiworker.fit_workers`, on one machine
            too; no validation curve then).
        sound_crops: `None` (the recipe) for plain random training crops, or
            a level in dB: a crop more than this far below its clip's level
            is redrawn (`keras_speechmix.audio.sound_crop`; not with the
            worker loop).
        calibrate: fit a temperature on `validation` after training and
            return the model with it (`calibration.with_temperature`), so
            its probabilities are calibrated; ignored without `validation`
            (or with a streamed one).
        shifts: recording shifts (`keras_speechmix.audio.shifts`) the test
            clips are scored under besides "clean", seeded by `seed`
            (default: `SHIFTS`; `()` for none; not for streamed test files).

    Returns:
        `(model, result)`: the plain trained model (with its temperature
        layer when calibrated) and a dict with `test_accuracy`,
        `test_ece`, `test_nll` and `shifts` (when `test` is given),
        `temperature`, `train_accuracy`, `validation_accuracy`,
        `confusion`, per-epoch `history`, `seconds`, ...

    Example:

    >>> # model, result = train_clips(train, test, mix="speechmix")
    """
    if len(train) < 2:
        raise ValueError(f"Training needs at least 2 clips; the train split has {len(train)}.")
    name = model or RECIPE["model"]
    network = _network(name)
    points = method_points(network, mix)
    keras.utils.set_random_seed(seed)
    mixing = METHODS[mix]
    if epochs is None:
        epochs = RECIPE["epochs" if mixing is None else "mix_epochs"]
    mix_off = RECIPE["mix_off"] if mix_off is None else mix_off
    # Small sets still get full batches (drop_remainder keeps shapes static).
    batch_size = min(batch_size or RECIPE["batch_size"], len(train))
    length = length or default_length(train, network["seconds"])
    num_classes = len(train.class_names)
    steps = max(1, len(train) // batch_size)
    strategy = multiworker.strategy_from_env()
    if strategy is None and backup_dir is not None and save_every:
        # Keras' BackupAndRestore resumes at epoch starts only; the worker
        # loop (equal to fit, tested) resumes mid-epoch, here on one machine.
        strategy = tf.distribute.get_strategy()
    with strategy.scope() if strategy else contextlib.nullcontext():
        net = build_model(mix, num_classes, train.sample_rate, length, name)
        optimizer = network["optimizer"](learning_rate or network["learning_rate"],
                                         epochs * steps)
    if sound_crops is not None and strategy is not None:
        raise ValueError("sound_crops is not supported by the worker loop (several "
                         "workers, or backup_dir with save_every)")
    callbacks = _run_callbacks(train, batch_size, max_skipped, callbacks)
    if mixing is not None:
        mixing = _mixing_arguments(mixing, alpha, mix_off, epochs, callbacks)
    if strategy is not None:
        with strategy.scope():
            trainer = net if mixing is None else SpeechMix(net)
        started = time.perf_counter()
        history = multiworker.fit_workers(
            strategy, trainer, optimizer, train, length, batch_size, epochs, seed,
            mixing, backup_dir=backup_dir, save_every=save_every, callbacks=callbacks)
        seconds = time.perf_counter() - started
        fit_validation = {}
    else:
        history, seconds, fit_validation = _fit(
            net, optimizer, train, validation, length, batch_size, epochs, seed, mixing,
            callbacks, backup_dir, verbose, sound_crops)
    result = {
        "mix": mix,
        "model": name,
        "dropout": mixing is None or RECIPE["mix_dropout"],
        "epochs": epochs,
        "mix_off": mix_off if mixing is not None else 0.0,
        "sound_crops": sound_crops,
        "seed": seed,
        "num_train": len(train),
        "num_validation": 0 if validation is None else len(validation),
        "num_classes": num_classes,
        "class_names": list(train.class_names),
        "sample_rate": train.sample_rate,
        "input_length": length,
        "mix_points": [] if mixing is None else [str(p) for p in points],
        "seconds": round(seconds, 2),
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "first_epoch": epochs - len(history.get("loss", [])),
        "workers": 1 if strategy is None else strategy.num_replicas_in_sync,
        "validation_epochs": list(range(
            fit_validation.get("validation_freq", 1), epochs + 1,
            fit_validation.get("validation_freq", 1))) if fit_validation else [],
    }
    # The temperature is fitted on the validation clips the curves use: held
    # out from training, never the test clips (Guo et al., 2017).
    uncalibrated = net
    if calibrate and validation is not None and len(validation) and not _streamed(validation):
        net = calibration.with_temperature(net, _fit_temperature(net, validation, length, crops))
    result["temperature"] = calibration.temperature_of(net)
    result.update(_scores(net, train, validation, test, length, crops, num_classes,
                          shifts=SHIFTS if shifts is None else shifts, seed=seed,
                          uncalibrated=None if net is uncalibrated else uncalibrated))
    return net, result



def _run_callbacks(train, batch_size, max_skipped, callbacks):
    """The run's checks (an epoch with no batch, too many skipped files)
    ahead of the caller's callbacks."""
    checks = []
    if _streamed(train):
        if train.multi_label:
            raise ValueError(
                "train_clips trains single-label classifiers (softmax); these files are "
                "multi-label: build a sigmoid-output model and fit it on "
                "partner_batches(files.to_dataset(...)) yourself")
        from keras_speechmix.audio.streaming import SkipGuard

        checks.append(SkipGuard(train.skips, max_skipped))

    def why():
        if not _streamed(train):
            return f"{len(train)} training clips, batch size {batch_size}"
        return (f"none of the {len(train)} training files could be read "
                f"({len(train.skips.skipped)} files failed so far; see the list of "
                "skipped files)")

    # First, so that an epoch without a batch is reported as such (not as
    # too many skipped files, nor by the caller's callbacks as if it trained).
    return [_StepCount(why)] + checks + list(callbacks)


def _mixing_arguments(mixing, alpha, mix_off, epochs, callbacks):
    """The method's `partner_batches` arguments with this run's `alpha`; with
    `mix_off`, a `MixOff` callback (appended) turns mixing off for the end."""
    mixing = dict(mixing)
    if alpha is not None:
        mixing["alpha"] = alpha
    if mix_off:
        # MixOff switches the pipeline's prob variable to 0 for the end.
        mixing["prob"] = tf.Variable(1.0, trainable=False)
        callbacks.append(MixOff(mixing["prob"], round(epochs * (1 - mix_off))))
    return mixing


def _scores(net, train, validation, test, length, crops, num_classes, shifts=(),
            seed=0, uncalibrated=None):
    """Accuracy on the training clips (in inference mode), the validation
    clips and the test clips, with the test's confusion, calibration
    (ECE, NLL; also before the temperature when `uncalibrated` is that
    model), per-clip predictions and scores under `shifts`."""
    scores = {"train_accuracy": _accuracy(net, train, length, crops)[0]}
    if validation is not None and len(validation):
        scores["validation_accuracy"] = _accuracy(net, validation, length, crops)[0]
    if test is not None:
        probabilities, labels = _probabilities(net, test, length, crops)
        clean = shift_score(probabilities, labels)
        predicted = probabilities.argmax(axis=1)
        confusion = np.zeros((num_classes, num_classes), int)
        np.add.at(confusion, (labels, predicted), 1)
        # Per-clip predictions, in the test set's order: paired comparisons
        # (McNemar) between methods need them, not just the accuracy.
        accuracy = float(np.mean(clean["correct"]))
        scores.update(test_accuracy=accuracy, test_error=1.0 - accuracy,
                      num_test=len(labels), confusion=confusion.tolist(),
                      test_predicted=np.asarray(predicted).tolist(),
                      # With `correct`, the top-label ECE of clips pooled
                      # over runs: 80 clips alone give a calibrated model
                      # an ECE of about 8 % (benchmarks/NOTES.md).
                      test_confidence=np.round(probabilities.max(axis=1), 5).tolist(),
                      test_ece=clean["ece"], test_nll=clean["nll"])
        if uncalibrated is not None:
            before = shift_score(_probabilities(uncalibrated, test, length, crops)[0], labels)
            scores.update(test_ece_uncalibrated=before["ece"],
                          test_nll_uncalibrated=before["nll"])
        if shifts and not _streamed(test):
            # "clean" first, from the scoring above: the shifts' reference.
            scores["shifts"] = {"clean": clean,
                                **_shifted_scores(net, test, length, crops,
                                                  [s for s in shifts if s != "clean"], seed)}
    if _streamed(train):
        scores["skipped_reads"] = train.skips.failed_reads
        scores["reads"] = train.skips.reads
    return scores


def _fit(net, optimizer, train, validation, length, batch_size, epochs, seed, mixing,
         callbacks, backup_dir, verbose, sound_crops=None):
    """Keras `fit` on one machine: `(history, seconds, validation arguments)`."""
    num_classes = len(train.class_names)
    clock = None
    if backup_dir is not None:
        clock = EpochClock()
        callbacks = [clock, keras.callbacks.BackupAndRestore(str(backup_dir))] + callbacks
    trainer, data = training_batches(net, train, length, batch_size, seed, mixing,
                                     epoch=None if clock is None else clock.epoch,
                                     sound_crops=sound_crops)
    # XLA made the log-mel CNN's CPU step about 4x slower; keep it for GPUs.
    trainer.compile(optimizer=optimizer, loss="categorical_crossentropy",
                    metrics=["accuracy"],
                    jit_compile=bool(tf.config.list_physical_devices("GPU")))
    fit_validation = {}
    if validation is not None and len(validation):
        fit_validation = dict(
            validation_data=_validation_data(validation, length, num_classes),
            # About 50 points make a curve; scoring every epoch costs time.
            validation_freq=max(1, epochs // 50))
    started = time.perf_counter()
    if backup_dir is not None and not trainer.built:
        trainer.build(net.input_shape)  # BackupAndRestore needs the weights made
    history = trainer.fit(data.prefetch(tf.data.AUTOTUNE), epochs=epochs,
                          verbose=verbose, callbacks=callbacks,
                          shuffle=False,  # the dataset is shuffled above
                          **fit_validation)
    return history.history, time.perf_counter() - started, fit_validation


def _center(wave, length):
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start:start + length]
    return np.pad(wave, (0, length - len(wave)))
