"""tf.distribute: plans stay per replica; runs in subprocesses (devices and
TF_CONFIG must be set before TensorFlow starts)."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

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
