"""tf.distribute: plans stay per replica; runs in subprocesses (devices and
TF_CONFIG must be set before TensorFlow starts)."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_speechmix.training.multiworker import loopback_tf_configs

SCRIPT = Path(__file__).parent / "scripts" / "distributed_fit.py"
ROOT = Path(__file__).resolve().parents[1]


def run(*args, timeout=180):
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(process, timeout=180):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_mirrored_strategy_matches_a_single_device():
    got = result(run("mirrored"))
    assert got["replicas"] == 2
    assert got["max_partner"] < 4  # indices are local to each shard of 4
    np.testing.assert_allclose(got["distributed"], got["single"], rtol=1e-3)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_on_loopback():
    ports = [str(p) for p in free_ports(2)]
    workers = [run("worker", str(i), *ports) for i in range(2)]
    try:
        outputs = [result(w) for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [o["replicas"] for o in outputs] == [2, 2]
    assert all(np.isfinite(o["loss"]).all() and o["steps"] > 0 for o in outputs)
    assert outputs[0]["loss"] == outputs[1]["loss"]  # synchronised replicas


def train_workers(folder, out, backup, epochs=4):
    """Starts `speechmix train` as 2 workers on loopback; returns the processes."""
    processes = []
    for index, config in enumerate(loopback_tf_configs(2)):
        env = dict(os.environ, TF_CONFIG=config)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_speechmix", "train", "--data", str(folder),
             "--mix", "speechmix", "--epochs", str(epochs), "--out", f"{out}{index}",
             "--validation", "0", "--clip-seconds", "0.5", "--batch-size", "8",
             "--backup", str(backup), "--save-every", "2", "--collective-timeout", "20",
             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return processes


def finish(processes, timeout=300):
    outputs = [p.communicate(timeout=timeout) for p in processes]
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def test_train_command_on_two_workers_resumes_after_a_worker_is_killed(tmp_path):
    from keras_speechmix.audio import synth

    folder = synth.synthesize_digits(tmp_path / "digits", num_speakers=2,
                                     takes_per_speaker=2)
    # Uninterrupted: 30 training clips, 3 steps of 8 per epoch.
    results = finish(train_workers(folder, tmp_path / "ref", tmp_path / "b0"))
    assert [r[0] for r in results] == [0, 0], results[1][2][-2000:] + results[0][2][-2000:]
    assert "Training on 2 workers" in results[0][1]
    assert "Worker 1 done" in results[1][1] and not (tmp_path / "ref1").exists()
    expected = json.loads((tmp_path / "ref0" / "metrics.json").read_text())
    assert expected["workers"] == 2 and (tmp_path / "ref0" / "model.keras").exists()
    assert not (tmp_path / "b0").exists()  # checkpoints removed once finished

    # Kill worker 1 once a checkpoint from the middle of epoch 1 is written.
    backup = tmp_path / "b1"
    processes = train_workers(folder, tmp_path / "run", backup)
    deadline = time.time() + 240
    state = backup / "checkpoint"
    # Saves: ckpt-1 mid epoch 0, ckpt-2 at its end, ckpt-3 mid epoch 1, ...
    while time.time() < deadline and not (
            state.exists() and re.search(r'"ckpt-([3-9]|\d\d)"', state.read_text())):
        time.sleep(0.05)
    processes[1].kill()
    code, _, err = finish(processes[:1])[0]
    processes[1].communicate()
    assert code == 2 and "a worker stopped or cannot be reached" in err, err[-2000:]
    assert "go on from the backup in" in err

    # Both started again: they go on from the last save (ckpt-3: epoch 1
    # after its first step), skipping the batches already trained on.
    results = finish(train_workers(folder, tmp_path / "run", backup))
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:]
    resumed = json.loads((tmp_path / "run0" / "metrics.json").read_text())
    assert resumed["first_epoch"] in (1, 2)
    # A resumed part-epoch's figure covers only its own steps; the epochs
    # after it are the uninterrupted run's, step for step.
    np.testing.assert_allclose(resumed["history"]["loss"][-2:],
                               expected["history"]["loss"][-2:], rtol=1e-6)
    assert not backup.exists() and not Path(f"{backup}.worker-1").exists()


def test_tf_config_parsing(monkeypatch):
    from keras_speechmix.training import multiworker

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert (multiworker.worker_count(), multiworker.worker_index()) == (1, 0)
    assert multiworker.strategy_from_env() is None
    configs = loopback_tf_configs(3)
    monkeypatch.setenv("TF_CONFIG", configs[2])
    assert (multiworker.worker_count(), multiworker.worker_index()) == (3, 2)
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker",
                                                                  "index": 0}}))
    assert (multiworker.worker_count(), multiworker.worker_index()) == (2, 1)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        multiworker.worker_count()


@pytest.mark.parametrize("mix", ["none", "speechmix"])
def test_worker_loop_on_one_replica_equals_keras_fit(tmp_path, mix):
    """The custom loop behind multi-worker `speechmix train` is Keras' `fit`
    step for step: on one replica, with the same clips and plans, the same
    losses."""
    import keras
    import tensorflow as tf

    from keras_speechmix import SpeechMix
    from keras_speechmix.audio import datasets, synth
    from keras_speechmix.training import experiment, multiworker

    clips = datasets.from_folder(synth.synthesize_digits(tmp_path / "digits", num_speakers=2,
                                                         takes_per_speaker=2))
    mixing = experiment.METHODS[mix]

    def optimizer():
        return experiment.NETWORKS["logmel_fc"]["optimizer"](2e-3, 3 * (len(clips) // 16))

    keras.utils.set_random_seed(0)
    net = experiment.build_model(mix, 10, clips.sample_rate, 8000)
    # backup_dir gives fit the epoch clock, which the worker loop always uses.
    expected, _, _ = experiment._fit(net, optimizer(), clips, None, 8000, 16, 3, 0, mixing,
                                     [], tmp_path / "backup", 0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    keras.utils.set_random_seed(0)
    with strategy.scope():
        net = experiment.build_model(mix, 10, clips.sample_rate, 8000)
        opt = optimizer()
        trainer = net if mixing is None else SpeechMix(net)
    got = multiworker.fit_workers(strategy, trainer, opt, clips, 8000, 16, 3, 0, mixing)
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(got["accuracy"], expected["accuracy"], rtol=1e-5)
