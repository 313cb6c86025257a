"""TensorFlow's "simple audio recognition" tutorial, with SpeechMix added.

The tutorial (https://www.tensorflow.org/tutorials/audio/simple_audio) reads
a folder of WAV clips with `keras.utils.audio_dataset_from_directory`, turns
each clip into an STFT spectrogram and trains a small CNN with a sparse loss.
SpeechMix takes the lines marked `# SpeechMix:` below: a `HiddenMixup` at
each mixing point, the training view `SpeechMix(model)`, and
`partner_batches` on the same batched dataset. The loss, the metrics and the
sparse validation set stay as they are.

Without --data it writes a tiny folder of synthetic tones (three classes),
so that it runs in seconds.

Run: python examples/tutorial_audio.py [--data DIR] [--epochs N]
"""

import argparse
import tempfile
import wave
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import keras_speechmix as ksm

SAMPLE_RATE = 16000
LENGTH = 4000  # samples per clip: 0.25 s
BATCH = 8


def write_tones(folder, per_class=10, seed=0):
    """Writes noisy tones of three pitches, one subfolder per class, as WAV."""
    rng = np.random.default_rng(seed)
    for name, hertz in (("low", 300), ("mid", 800), ("high", 2000)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            # Clips shorter than LENGTH, as real recordings vary in length.
            t = np.arange(rng.integers(LENGTH * 3 // 4, LENGTH)) / SAMPLE_RATE
            tone = 0.5 * np.sin(2 * np.pi * hertz * rng.uniform(0.9, 1.1) * t)
            tone += 0.1 * rng.standard_normal(len(t))
            with wave.open(str(folder / name / f"{number}.wav"), "wb") as file:
                file.setnchannels(1)
                file.setsampwidth(2)
                file.setframerate(SAMPLE_RATE)
                file.writeframes((np.clip(tone, -1, 1) * 32767).astype("<i2").tobytes())
    return folder


def datasets(folder):
    """The tutorial's pipeline: batched (spectrogram, class id) datasets."""
    train_ds, val_ds = keras.utils.audio_dataset_from_directory(
        folder, batch_size=BATCH, validation_split=0.2, seed=0,
        output_sequence_length=LENGTH, subset="both")

    def spectrogram(audio, labels):
        audio = tf.squeeze(audio, axis=-1)  # mono: drop the channel axis
        spectrum = tf.abs(tf.signal.stft(audio, frame_length=255, frame_step=128))
        return spectrum[..., tf.newaxis], labels

    return (train_ds.map(spectrogram), val_ds.map(spectrogram),
            train_ds.class_names)


def build(input_shape, num_classes, norm, mix):
    """The tutorial's CNN (narrower); `mix` adds the SpeechMix mixing points."""

    def mixing_point():
        return [ksm.HiddenMixup()] if mix else []  # SpeechMix: a mixing point

    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Resizing(32, 32),
        norm,
        *mixing_point(),  # SpeechMix: mix the (normalised) spectrograms
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        *mixing_point(),  # SpeechMix: mix the conv features
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes),
    ])


def train(train_ds, val_ds, num_classes, mix, epochs, verbose=0):
    """Trains the plain CNN, or with `mix` the CNN with SpeechMix."""
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(train_ds.map(lambda spectrum, label: spectrum))
    model = build(train_ds.element_spec[0].shape[1:], num_classes, norm, mix)
    trainer, batches = model, train_ds
    if mix:
        trainer = ksm.SpeechMix(model)  # SpeechMix: training view, same weights
        batches = ksm.partner_batches(  # SpeechMix: plans and mixed labels
            train_ds, BATCH, num_classes=num_classes,
            mix_points=trainer.num_mix_points, seed=0)
    # The same compile for both: the view trains with the categorical
    # counterpart of the sparse loss (it says so in a warning).
    trainer.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    history = trainer.fit(batches, validation_data=val_ds, epochs=epochs,
                          verbose=verbose)
    # Predict, evaluate and save with `model`: no mixing outside training.
    return model, history.history["val_accuracy"][-1]


def main(data=None, epochs=3, verbose=0):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(data) if data else write_tones(Path(scratch) / "tones")
        train_ds, val_ds, class_names = datasets(folder)
        accuracy = {}
        for mix in (False, True):
            _, accuracy["speechmix" if mix else "plain"] = train(
                train_ds, val_ds, len(class_names), mix, epochs, verbose)
    print(f"validation accuracy after {epochs} epochs: plain "
          f"{accuracy['plain']:.2f}, SpeechMix {accuracy['speechmix']:.2f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="folder with one subfolder of WAV clips per class")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    main(args.data, args.epochs, verbose=2)
