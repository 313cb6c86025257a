"""HiddenMixup in a functional model with a skip connection.

Mixing points can sit anywhere a tensor flows: here at the input features,
inside a residual block (after the skip is added) and before the classifier.

Run: python examples/functional_model.py [--epochs N]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import keras_speechmix as ksm


def build(num_classes=4, frames=50, mels=32):
    inputs = keras.Input((frames, mels))
    h = ksm.HiddenMixup(name="mix_input")(inputs)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    skip = h
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.Add()([h, skip])  # residual connection
    h = ksm.HiddenMixup(name="mix_residual")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = ksm.HiddenMixup(name="mix_pooled")(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs)


def main(epochs=3):
    rng = np.random.RandomState(0)
    labels = np.arange(64) % 4
    # Toy "spectrograms": each class lights up its own band of mel bins.
    x = rng.rand(64, 50, 32).astype("float32") * 0.1
    for i, label in enumerate(labels):
        x[i, :, 8 * label:8 * label + 8] += 1.0
    model = build()
    view = ksm.SpeechMix(model)
    view.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    train = ksm.partner_batches(
        tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(64, seed=0),
        batch_size=16, num_classes=4, mix_points=view.num_mix_points, seed=0)
    view.fit(train, epochs=epochs, verbose=2)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(x, labels, verbose=0)
    print(f"train accuracy of the plain model: {accuracy:.2f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
