"""The model side needs only Keras: train a step on JAX with TensorFlow hidden."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

SCRIPT = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
import numpy as np
import keras_speechmix as ksm
from keras_speechmix import models
model = models.envnet_v2(3, input_length=17502, mix_points=(0, 2))
view = ksm.SpeechMix(model)
view.compile("adam", "categorical_crossentropy")
x = np.random.randn(4, 17502).astype("float32")
y = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
plan = {"partner": np.array([1, 0, 3, 2], "int32"),
        "ratio": np.full(4, 0.3, "float32"),
        "point": np.tile(np.array([[0, 1]], "int32"), (4, 1))}
loss = view.train_on_batch((x, plan), y)
assert np.isfinite(loss), loss
print("ok", loss)
"""


def test_training_view_runs_on_jax_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")
