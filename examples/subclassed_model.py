"""A subclassed model that passes the SpeechMix plan to its layers by hand.

No training view is needed: the model takes `(x, plan)` while training,
gives each HiddenMixup its number with `index=`, and hands the plan over in
`call`. Without a plan (inference, validation) it is a plain classifier.

Run: python examples/subclassed_model.py [--epochs N]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import keras_speechmix as ksm


class TinyClassifier(keras.Model):
    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.mix0 = ksm.HiddenMixup(index=0)
        self.hidden = keras.layers.Dense(32, activation="relu")
        self.mix1 = ksm.HiddenMixup(index=1)
        self.head = keras.layers.Dense(num_classes, activation="softmax")

    def call(self, inputs, training=None):
        if isinstance(inputs, (tuple, list)):
            x, plan = inputs
        else:
            x, plan = inputs, None
        h = self.mix0(x, plan=plan, training=training)
        h = self.hidden(h)
        h = self.mix1(h, plan=plan, training=training)
        return self.head(h)


def main(epochs=3):
    rng = np.random.RandomState(0)
    labels = np.arange(96) % 3
    x = (rng.randn(96, 12) + labels[:, None]).astype("float32")
    model = TinyClassifier(3)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    train = ksm.partner_batches(tf.data.Dataset.from_tensor_slices((x, labels)),
                                batch_size=16, num_classes=3, mix_points=2, seed=0)
    model.fit(train, epochs=epochs, verbose=2)
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == labels))
    print(f"train accuracy: {accuracy:.2f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
