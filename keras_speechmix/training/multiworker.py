"""Training across machines: `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`.

`speechmix train` runs here when `TF_CONFIG` names more than one worker.
Keras' `fit` fails under this strategy (keras-team/keras#20585: its symbolic
build reduces a per-replica batch), so `fit_workers` is a small custom loop:
each worker reads only its shard of the clips or files, pairs partners
inside its own batch, and all workers take the same number of steps per
epoch (each worker's stream repeats within the epoch if files were skipped).
Batch normalisation is synchronised across workers while training (its
statistics over the global batch, as on one machine: per-worker statistics
left the 2-worker loss 50 % above the 1-worker one in plain training).

Checkpoints (`backup_dir`) hold the weights, the optimizer, and the epoch and
step reached; every worker restarted with the same command goes on from
there, skipping the batches already trained on, with the plans of an
uninterrupted run (`keras_speechmix.epochs`). The chief (worker 0) writes the
checkpoints; the others write to scratch folders beside it
(`DIR.worker-N`), as the strategy requires. On several machines, `backup_dir` must be shared storage.

Example:

>>> import os, json
>>> os.environ.pop("TF_CONFIG", None) and None
>>> worker_count()
1
"""

import json
import os
import shutil
import socket

import keras
import numpy as np
import tensorflow as tf

from keras_speechmix.epochs import EpochClock
from keras_speechmix.training.batches import batches

__all__ = ["worker_count", "worker_index", "loopback_tf_configs", "strategy_from_env",
           "fit_workers"]


def _config():
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text[:200]}") from None


def worker_count():
    """Workers `TF_CONFIG` names (chief included); 1 without `TF_CONFIG`.

    Example:

    >>> # TF_CONFIG='{"cluster": {"worker": ["a:1", "b:2"]}, ...}' -> 2
    """
    cluster = _config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) or 1


def worker_index():
    """This process's rank: 0 for the chief (or worker 0 when there is none).

    Example:

    >>> # TF_CONFIG='{..., "task": {"type": "worker", "index": 1}}' -> 1
    """
    config = _config()
    task = config.get("task", {})
    chiefs = len(config.get("cluster", {}).get("chief", []))
    if task.get("type") == "chief":
        return 0
    return chiefs + int(task.get("index", 0))


_STRATEGY = []


def loopback_tf_configs(count):
    """`TF_CONFIG` values for `count` workers on this machine (free local ports).

    For trying several workers on one machine, as the tests do: start one
    process per value.

    Example:

    >>> configs = loopback_tf_configs(2)
    >>> [json.loads(c)["task"]["index"] for c in configs]
    [0, 1]
    """
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(count)]


def strategy_from_env(timeout_seconds=120):
    """A `MultiWorkerMirroredStrategy` when `TF_CONFIG` names several workers, else None.

    Made once per process and then reused: TensorFlow needs it before any
    other op runs, so a program calls this first (as `speechmix` does).
    `timeout_seconds` bounds every collective, so that the survivors of a
    worker that died stop with an error instead of waiting forever.

    Example:

    >>> strategy_from_env() is None  # no TF_CONFIG here
    True
    """
    if worker_count() < 2:
        return None
    if not _STRATEGY:
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=timeout_seconds)
        _STRATEGY.append(
            tf.distribute.MultiWorkerMirroredStrategy(communication_options=options))
    return _STRATEGY[0]


def _shard(clips, count, index):
    return clips.subset(np.arange(len(clips)) % count == index)


def _batches(train, length, batch_size, seed, mixing, mix_points, clock, count, index):
    """This worker's batches: its shard, its share of the global batch, repeated."""
    shard = _shard(train, count, index)
    per_worker = batch_size // count
    # Each worker draws its own crops and plans; folding the rank into the
    # seed keeps them apart.
    worker_seed = seed + 7919 * index
    clips = shard.to_dataset(length, training=True, seed=worker_seed, epoch=clock.epoch)
    data = batches(clips, per_worker, len(train.class_names), worker_seed, mixing,
                   mix_points, train.sample_rate, epoch=clock.epoch, num_replicas=1)
    return data.repeat().prefetch(2)


def fit_workers(strategy, trainer, optimizer, train, length, batch_size, epochs, seed,
                mixing=None, backup_dir=None, save_every=None, callbacks=()):
    """Trains `trainer` under `strategy` with a custom loop; returns the history.

    Args:
        strategy: from `strategy_from_env`; `trainer` (the model, or its
            `SpeechMix` view when mixing) and `optimizer` made in its scope.
        train: a `ClipSet` or `streaming.FileSet` (every worker lists the
            same set; each reads the clips `i, i + n, ...` of it).
        length, batch_size, epochs, seed: crop length, global batch,
            epochs and seed.
        mixing: `partner_batches` arguments, or None for plain training.
        backup_dir: checkpoint folder to resume from and save to.
        save_every: steps between checkpoints (default: once per epoch).
        callbacks: Keras callbacks, called as `fit` calls them (train and
            epoch begin/end, batch end) on every worker.

    Returns:
        `{"loss": [...], "accuracy": [...]}` for the epochs run (the same on
        every worker: the values are reduced across workers).

    Example:

    >>> # with strategy.scope(): net = ...; trainer = SpeechMix(net); opt = ...
    >>> # history = fit_workers(strategy, trainer, opt, train, 16000, 32, 200, 0, {...})
    """
    count = strategy.num_replicas_in_sync
    if batch_size % count:
        raise ValueError(f"the batch size {batch_size} must be a multiple of the "
                         f"{count} workers")
    index = worker_index()
    steps = max(1, (len(train) // count) // (batch_size // count))
    clock = EpochClock()
    mix_points = getattr(trainer, "num_mix_points", 1)
    data = strategy.distribute_datasets_from_function(
        lambda context: _batches(train, length, batch_size, seed, mixing, mix_points,
                                 clock, context.num_input_pipelines,
                                 context.input_pipeline_id))
    loss_fn = keras.losses.CategoricalCrossentropy(reduction="sum")
    with strategy.scope():
        state = dict(epoch=tf.Variable(0, dtype=tf.int64), step=tf.Variable(0, dtype=tf.int64))
        checkpoint = tf.train.Checkpoint(trainer=trainer, optimizer=optimizer, **state)
    manager = _manager(checkpoint, backup_dir, index)
    first_epoch, skip = 0, 0
    if manager is not None:
        latest = tf.train.latest_checkpoint(backup_dir)
        if latest:
            checkpoint.restore(latest)
            first_epoch, skip = int(state["epoch"].numpy()), int(state["step"].numpy())

    @tf.function
    def train_step(inputs):
        def replica_step(inputs):
            x, y = inputs
            with tf.GradientTape() as tape:
                predictions = trainer(x, training=True)
                loss = loss_fn(y, predictions) / batch_size
            gradients = tape.gradient(loss, trainer.trainable_variables)
            optimizer.apply(gradients, trainer.trainable_variables)
            correct = tf.reduce_sum(tf.cast(
                tf.equal(tf.argmax(predictions, -1), tf.argmax(y, -1)), tf.float32))
            return loss, correct

        loss, correct = strategy.run(replica_step, args=(inputs,))
        return (strategy.reduce("SUM", loss, axis=None),
                strategy.reduce("SUM", correct, axis=None))

    # Batch statistics over the global batch, as on one machine; without it
    # each worker normalises over its own share and training drifts apart.
    norms = [layer for layer in trainer._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized
             and count > 1]
    for layer in norms:
        layer.synchronized = True
    callbacks = keras.callbacks.CallbackList(list(callbacks), model=trainer,
                                             epochs=epochs, steps=steps)
    callbacks.on_train_begin()
    history = {"loss": [], "accuracy": []}
    for epoch in range(first_epoch, epochs):
        clock.on_epoch_begin(epoch)
        callbacks.on_epoch_begin(epoch)
        iterator = iter(data)
        start = skip if epoch == first_epoch else 0
        for _ in range(start):  # trained on before the restart
            next(iterator)
        total_loss = total_correct = 0.0
        for step in range(start, steps):
            loss, correct = _collective(train_step, next(iterator), backup_dir)
            total_loss += float(loss)
            total_correct += float(correct)
            callbacks.on_train_batch_end(step, {"loss": float(loss)})
            done = step + 1 < steps and save_every and (epoch * steps + step + 1) % save_every == 0
            if manager is not None and done:
                state["epoch"].assign(epoch)
                state["step"].assign(step + 1)
                manager.save()
        ran = steps - start
        logs = {"loss": total_loss / ran, "accuracy": total_correct / (ran * batch_size)}
        for key, value in logs.items():
            history[key].append(value)
        if manager is not None:
            state["epoch"].assign(epoch + 1)
            state["step"].assign(0)
            manager.save()
        callbacks.on_epoch_end(epoch, logs)
    callbacks.on_train_end()
    for layer in norms:  # the saved model is a plain one
        layer.synchronized = False
    if manager is not None:
        _clean(backup_dir, index)
    return history


def _collective(step, inputs, backup_dir):
    try:
        return step(inputs)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.InternalError) as error:
        resume = (f"start the same command again on every worker to go on from "
                  f"the backup in {backup_dir}" if backup_dir else
                  "start it again on every worker (with --backup DIR, a restart "
                  "goes on where it stopped)")
        raise RuntimeError(
            f"a worker stopped or cannot be reached ({type(error).__name__}); "
            f"{resume}") from None


def _scratch(backup_dir, index):
    # Beside the chief's folder, not in it: the chief removes its folder
    # when done, maybe while another worker still writes its last save.
    return f"{os.path.normpath(str(backup_dir))}.worker-{index}"


def _manager(checkpoint, backup_dir, index):
    if backup_dir is None:
        return None
    folder = str(backup_dir) if index == 0 else _scratch(backup_dir, index)
    return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=1)


def _clean(backup_dir, index):
    """Removes a finished run's checkpoints (each worker its own)."""
    if index:
        shutil.rmtree(_scratch(backup_dir, index), ignore_errors=True)
        return
    shutil.rmtree(backup_dir, ignore_errors=True)
