"""Trains the SpeechMix view under a tf.distribute strategy; prints JSON.

Run as a subprocess by tests/test_distributed.py, because logical devices and
TF_CONFIG must be set before TensorFlow starts.

  python distributed_fit.py mirrored        # 2 logical CPUs vs one device
  python distributed_fit.py worker INDEX PORT0 PORT1
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_speechmix import HiddenMixup, SpeechMix, partner_batches  # noqa: E402

BATCH = 8


def data():
    rng = np.random.RandomState(0)
    x = rng.rand(64, 6).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, np.arange(64) % 3))


def build():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)), HiddenMixup(),
        keras.layers.Dense(8, activation="tanh"), HiddenMixup(),
        keras.layers.Dense(3, activation="softmax")])
    view = SpeechMix(model)
    view.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    return view


def to_global(batches, shard):
    # The same pairs, written as indices into the whole batch.
    def shift(inputs, y):
        x, plan = inputs
        offset = tf.range(tf.shape(y)[0]) // shard * shard
        return (x, {**plan, "partner": plan["partner"] + offset}), y
    return batches.map(shift)


def mirrored():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        view = build()
        batches = partner_batches(data(), BATCH, num_classes=3,
                                  mix_points=view.num_mix_points, seed=1)
        # A fresh copy: iterating `batches` here would move its epoch seeds on.
        partners = np.concatenate([p["partner"].numpy() for (_, p), _ in partner_batches(
            data(), BATCH, num_classes=3, mix_points=view.num_mix_points, seed=1)])
        distributed = view.fit(batches, epochs=1, verbose=0).history["loss"]
    single_view = build()
    single = partner_batches(data(), BATCH, num_classes=3, mix_points=2, seed=1,
                             num_replicas=2)
    reference = single_view.fit(to_global(single, BATCH // 2), epochs=1,
                                verbose=0).history["loss"]
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "max_partner": int(partners.max()),
                      "distributed": distributed, "single": reference}))


def worker(index, ports):
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index}})
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        view = build()
        batches = partner_batches(data(), BATCH, num_classes=3,
                                  mix_points=view.num_mix_points, seed=1)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.OFF)
        batches = batches.with_options(options)
        # Keras 3.15's fit fails under MultiWorkerMirroredStrategy for any
        # model (keras-team/keras#20585), so train with strategy.run.
        optimizer = keras.optimizers.SGD(0.1)
        loss_fn = keras.losses.CategoricalCrossentropy(
            reduction="sum_over_batch_size")

    @tf.function
    def step(inputs, y):
        def replica_step(inputs, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, view(inputs, training=True))
                scaled = loss / strategy.num_replicas_in_sync
            grads = tape.gradient(scaled, view.trainable_variables)
            optimizer.apply(grads, view.trainable_variables)
            return loss
        losses = strategy.run(replica_step, args=(inputs, y))
        return strategy.reduce("MEAN", losses, axis=None)

    losses = [float(step(inputs, y))
              for inputs, y in strategy.experimental_distribute_dataset(batches)]
    history = {"loss": [sum(losses) / len(losses)], "steps": len(losses)}
    print(json.dumps({"worker": index, "replicas": strategy.num_replicas_in_sync,
                      **history}))


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored()
    else:
        worker(int(sys.argv[2]), [int(p) for p in sys.argv[3:5]])
