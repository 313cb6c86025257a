"""The model side and PartnerBatches need only Keras: train with TensorFlow hidden."""

import importlib.util
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


# Trains SpeechMix from PartnerBatches with TensorFlow hidden, on the backend
# that KERAS_BACKEND names, and reports what the parent checks as JSON.
FIT_SCRIPT = """
import tests.no_tensorflow  # TensorFlow now looks uninstalled
import json, sys
import keras
import numpy as np
import keras_speechmix as ksm

rng = np.random.RandomState(0)
y = np.arange(96) % 4
x = (np.eye(4)[y] @ rng.randn(4, 6) + 0.3 * rng.randn(96, 6)).astype("float32")
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((6,)), ksm.HiddenMixup(),
    keras.layers.Dense(32, activation="relu"), ksm.HiddenMixup(),
    keras.layers.Dense(4, activation="softmax")])
view = ksm.SpeechMix(model)
view.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy")
args = dict(num_classes=4, mix_points=view.num_mix_points, partners="different_class")
batches = ksm.PartnerBatches(x, y, 16, seed=0, workers=2, **args)
losses = view.fit(batches, epochs=6, verbose=0).history["loss"]

def plans(seed):
    b = ksm.PartnerBatches(x, y, 16, seed=seed, **args)
    return np.concatenate([np.concatenate([b[i][0][1]["ratio"], b[i][0][1]["partner"]])
                           for i in range(len(b))])

errors = {}
for kwargs in json.loads(sys.argv[1]):
    try:
        ksm.PartnerBatches(x, y, **{"batch_size": 16, "num_classes": 4,
                                    "mix_points": 1, **kwargs})
    except ValueError as error:
        errors[json.dumps(kwargs)] = str(error)
print(json.dumps({
    "backend": keras.backend.backend(), "losses": losses,
    "repeats": bool(np.array_equal(plans(1), plans(1))),
    "seed_matters": not np.array_equal(plans(1), plans(2)),
    "errors": errors, "tensorflow_loaded": "tensorflow" in sys.modules}))
"""

BAD_ARGUMENTS = [{"alpha": 0.0}, {"num_classes": 1}, {"mix_points": 0},
                 {"batch_size": 1}, {"ratio": "uniform"}, {"partners": "any"},
                 {"label_smoothing": 1.0}, {"label_mode": "max"}, {"prob": 1.5},
                 {"num_replicas": 3}]


def fit_without_tensorflow(backend):
    import json

    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", FIT_SCRIPT, json.dumps(BAD_ARGUMENTS)],
                          capture_output=True, text=True, env=env, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend and not report["tensorflow_loaded"]
    losses = report["losses"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert report["repeats"] and report["seed_matters"]
    # The same errors, word for word, as the tf.data path (in this process).
    import numpy as np

    from keras_speechmix import partner_batches

    for kwargs in BAD_ARGUMENTS:
        args = {"batch_size": 16, "num_classes": 4, "mix_points": 1, **kwargs}
        with pytest.raises(ValueError) as expected:
            partner_batches((np.zeros((96, 6), "float32"), np.arange(96) % 4),
                            args.pop("batch_size"), **args)
        assert report["errors"][json.dumps(kwargs)] == str(expected.value)


def test_partner_batches_pydataset_trains_on_jax_without_tensorflow():
    fit_without_tensorflow("jax")


def test_partner_batches_pydataset_trains_on_torch_without_tensorflow():
    # Only where PyTorch is installed (`pip install torch`, CPU wheel); looked
    # up, not imported, beside this process' TensorFlow.
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed")
    fit_without_tensorflow("torch")
