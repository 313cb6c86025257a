"""SpeechMix on JAX with no TensorFlow: PartnerBatches feeds `fit`.

`keras_speechmix.PartnerBatches` is a `keras.utils.PyDataset` that draws
each batch's mixing plan in NumPy, so this script needs only Keras, JAX and
NumPy (it runs the same with KERAS_BACKEND=torch). The clips are
variable-length synthetic tones, randomly cropped to 0.5 s for each batch
(a seeded `transform`), mixed with BC learning's gain-aware ratio and
partners of another class, as the SpeechMix authors train.

    python examples/pydataset_jax.py --epochs 20
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_speechmix as ksm  # noqa: E402

RATE, LENGTH, CLASSES = 8000, 4000, 5


def tones(count, seed):
    """Tones of `CLASSES` pitches, 0.5 to 0.8 s long, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % CLASSES
    waves = []
    for label in labels:
        t = np.arange(rng.integers(LENGTH, int(1.6 * LENGTH))) / RATE
        wave = 0.3 * np.sin(2 * np.pi * (300 + 250 * label) * t + rng.uniform(0, 6))
        waves.append((wave + 0.05 * rng.standard_normal(len(t))).astype("float32"))
    return waves, labels


def random_crop(wave, rng):
    start = rng.integers(len(wave) - LENGTH + 1)
    return wave[start:start + LENGTH]


def build_model():
    return keras.Sequential([
        keras.Input((LENGTH,)),
        ksm.HiddenMixup(),                               # point 0: waveform
        keras.layers.MelSpectrogram(fft_length=256, sequence_stride=128,
                                    sampling_rate=RATE, num_mel_bins=32),
        keras.layers.Permute((2, 1)),
        keras.layers.Conv1D(32, 3, activation="relu"),
        ksm.HiddenMixup(),                               # point 1: hidden
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])


def main(epochs=20, seed=0):
    keras.utils.set_random_seed(seed)
    waves, labels = tones(60, seed)
    model = build_model()
    view = ksm.SpeechMix(model)
    view.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    train = ksm.PartnerBatches(
        waves, labels, 12, num_classes=CLASSES, mix_points=view.num_mix_points,
        ratio="bc", partners="different_class", sample_rate=RATE,
        transform=random_crop, seed=seed)
    history = view.fit(train, epochs=epochs, verbose=0)
    test_waves, test_labels = tones(20, seed + 1)
    x_test = np.stack([w[:LENGTH] for w in test_waves])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = model.evaluate(x_test, test_labels, verbose=0)
    losses = history.history["loss"]
    print(f"backend: {keras.backend.backend()}")
    print(f"mixed training loss: {losses[0]:.3f} -> {losses[-1]:.3f} ({epochs} epochs)")
    print(f"test accuracy (plain model, chance {1 / CLASSES:.2f}): {accuracy:.2f}")
    return {"losses": losses, "accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    main(**vars(parser.parse_args()))
