"""SpeechMix under tf.distribute.MirroredStrategy (all local GPUs, or CPUs).

Build and compile inside the strategy's scope, and give `partner_batches`
the global batch size: it reads the replica count from the strategy and
draws every clip's partner inside its own replica's shard of the batch.

Run: python examples/distributed.py [--cpus 2] [--epochs N]
  --cpus N splits the CPU into N logical devices to try it without GPUs.
"""

import argparse

import tensorflow as tf


def main(epochs=3, cpus=2):
    if cpus and not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpus)
    import keras
    import numpy as np

    import keras_speechmix as ksm

    strategy = tf.distribute.MirroredStrategy()
    print("replicas:", strategy.num_replicas_in_sync)
    rng = np.random.RandomState(0)
    labels = np.arange(256) % 4
    x = (rng.randn(256, 20) + labels[:, None]).astype("float32")
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((20,)), ksm.HiddenMixup(),
            keras.layers.Dense(64, activation="relu"), ksm.HiddenMixup(),
            keras.layers.Dense(4, activation="softmax")])
        view = ksm.SpeechMix(model)
        view.compile(optimizer="adam", loss="categorical_crossentropy")
        train = ksm.partner_batches(
            tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(256, seed=0),
            batch_size=16 * strategy.num_replicas_in_sync, num_classes=4,
            mix_points=view.num_mix_points, seed=0)
        history = view.fit(train, epochs=epochs, verbose=2)
    return strategy.num_replicas_in_sync, history.history["loss"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    main(args.epochs, args.cpus)
