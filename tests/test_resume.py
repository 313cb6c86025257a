"""Resuming a killed run: the epoch clock and `speechmix train --backup`."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np

from keras_speechmix import HiddenMixup, partner_batches
from keras_speechmix.audio import datasets
from keras_speechmix.epochs import EpochClock
from keras_speechmix.training.experiment import training_batches


def epoch_contents(batches):
    return np.concatenate([np.concatenate([x.numpy().ravel(), p["partner"].numpy(),
                                           p["ratio"].numpy(), y.numpy().ravel()])
                           for (x, p), y in batches])


def clocked(clips, clock):
    model = keras.Sequential([keras.Input((200,)), HiddenMixup(),
                              keras.layers.Dense(3, activation="softmax")])
    return training_batches(model, clips, 200, 4, 3, {"partners": "different_class"},
                            epoch=clock.epoch)[1]


def test_a_clocked_stream_restarts_at_any_epoch():
    rng = np.random.default_rng(0)
    clips = datasets.ClipSet([rng.random(300 + 10 * i).astype("float32") for i in range(24)],
                             np.arange(24) % 3, ["a", "b", "c"], 8000)
    clock = EpochClock()
    batches = clocked(clips, clock)
    epochs = []
    for epoch in range(3):
        clock.on_epoch_begin(epoch)
        epochs.append(epoch_contents(batches))
    assert not np.array_equal(epochs[0], epochs[1])
    # A new process (new datasets, new clock) started at epoch 2.
    restarted = EpochClock()
    again = clocked(clips, restarted)
    restarted.on_epoch_begin(2)
    np.testing.assert_array_equal(epoch_contents(again), epochs[2])
    # Iterating twice within one epoch gives the same epoch again.
    np.testing.assert_array_equal(epoch_contents(again), epochs[2])


def test_clocked_arrays_follow_the_epoch():
    x, y = np.random.rand(12, 5).astype("float32"), np.arange(12) % 3
    clock = EpochClock()
    batches = partner_batches((x, y), 4, num_classes=3, mix_points=1, seed=0,
                              epoch=clock.epoch)
    first = epoch_contents(batches)
    clock.on_epoch_begin(1)
    second = epoch_contents(batches)
    clock.on_epoch_begin(0)
    np.testing.assert_array_equal(epoch_contents(batches), first)
    assert not np.array_equal(first, second)


def train_command(folder, out, backup):
    return [sys.executable, "-m", "keras_speechmix", "train", "--data", str(folder),
            "--mix", "speechmix", "--epochs", "5", "--out", str(out), "--validation", "0",
            "--clip-seconds", "0.5", "--quiet", "--backup", str(backup)]


def test_train_killed_mid_run_resumes_where_it_stopped(tmp_path):
    from keras_speechmix.audio import synth

    env = dict(os.environ, KERAS_SPEECHMIX_CACHE=str(tmp_path / "cache"))
    folder = synth.synthesize_digits(tmp_path / "digits", num_speakers=2,
                                     takes_per_speaker=1)
    run = dict(env=env, capture_output=True, text=True, timeout=300)
    reference = subprocess.run(train_command(folder, tmp_path / "ref", tmp_path / "b0"), **run)
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads((tmp_path / "ref" / "metrics.json").read_text())["history"]["loss"]
    assert not (tmp_path / "b0").exists()  # removed once training finished

    backup = tmp_path / "b1"
    command = train_command(folder, tmp_path / "res", backup)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    metadata = backup / "training_metadata.json"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.kill()
    process.wait()
    resumed = subprocess.run(command, **run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((tmp_path / "res" / "metrics.json").read_text())
    first = metrics["first_epoch"]
    assert 2 <= first < 5
    # The resumed epochs are the uninterrupted run's, step for step.
    np.testing.assert_allclose(metrics["history"]["loss"], expected[first:], rtol=1e-6)


def test_train_killed_mid_epoch_resumes_at_that_step(tmp_path):
    """With --save-every, one machine resumes mid-epoch (the worker loop)."""
    import re

    from keras_speechmix.audio import synth

    env = dict(os.environ, KERAS_SPEECHMIX_CACHE=str(tmp_path / "cache"))
    folder = synth.synthesize_digits(tmp_path / "digits", num_speakers=2,
                                     takes_per_speaker=1)
    run = dict(env=env, capture_output=True, text=True, timeout=300)

    def command(out, backup):  # 10 training clips: 2 steps of 4 per epoch, a save after each
        return train_command(folder, out, backup) + ["--batch-size", "4", "--save-every", "1"]

    reference = subprocess.run(command(tmp_path / "ref", tmp_path / "b0"), **run)
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads((tmp_path / "ref" / "metrics.json").read_text())["history"]["loss"]

    backup = tmp_path / "b1"
    process = subprocess.Popen(command(tmp_path / "res", backup), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = backup / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        found = state.exists() and re.search(r'"ckpt-(\d+)"', state.read_text())
        if found and int(found.group(1)) >= 3:  # ckpt-3: epoch 1, one step in
            break
        time.sleep(0.02)
    assert process.poll() is None, "training ended before it could be killed"
    process.kill()
    process.wait()
    resumed = subprocess.run(command(tmp_path / "res", backup), **run)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert 1 <= metrics["first_epoch"] <= 3
    # The epochs after the part-epoch are the uninterrupted run's.
    np.testing.assert_allclose(metrics["history"]["loss"][-2:], expected[-2:], rtol=1e-6)
