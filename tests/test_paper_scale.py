"""benchmarks/paper_scale.py: the paper-scale EnvNet-v2 run, ready for an
accelerator (issue 29). Its smoke run goes end to end on JAX with TensorFlow
hidden; its recipe agrees with the package's and with BC learning's code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

# The smoke run in a subprocess, on JAX, with TensorFlow made unimportable.
# EnvNet-v2 is built for real (no TensorFlow needed), but trained as a small
# network with the same mixing points: compiling EnvNet-v2's training step
# three times takes minutes of a shared CPU, and its step is timed on JAX
# by benchmarks/step_time.py already.
SMOKE = """
import tests.no_tensorflow  # TensorFlow now looks uninstalled
import json, sys
sys.path.insert(0, "benchmarks")
import keras
import keras_speechmix as ksm
import paper_scale as ps

real = ps.build_model("speechmix", 3, 17502)
assert [l.name for l in real.layers if l.name.startswith("mix_")] == [
    "mix_0", "mix_1", "mix_2", "mix_3", "mix_4"], real.layers


def small(method, num_classes, length, dropout=0.5):
    x = inputs = keras.Input((length,))
    x = keras.layers.Reshape((length, 1))(x)
    x = keras.layers.Conv1D(4, 64, strides=64, activation="relu")(x)
    for _ in ps.POINTS[method]:
        x = ksm.HiddenMixup()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


ps.build_model = small
ps.main(["--smoke", "--out", sys.argv[1]] + sys.argv[2:])
print("tensorflow" in sys.modules)
"""


def run_smoke(tmp_path, *extra):
    out = tmp_path / "smoke.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SMOKE, str(out), *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_smoke_run_trains_every_method_without_tensorflow_and_resumes(tmp_path):
    result, stdout = run_smoke(tmp_path)
    assert stdout.strip().endswith("False")  # TensorFlow never loaded
    assert result["device"]["backend"] == "jax"
    runs = result["runs"]
    assert [r["method"] for r in runs] == ["none", "bc", "speechmix"]
    for r in runs:
        assert r["steps"] > 0 and len(r["correct"]) == r["num_test"] > 0
    summary = result["summary"]
    assert {"mcnemar", "relative_error_reduction"} <= set(summary["speechmix"])
    assert "mcnemar" in summary["speechmix"]["against_bc"]
    for line in ("none ", "bc ", "speechmix ", "paired test vs none", "speechmix vs bc"):
        assert line in stdout and line in result["table"]
    # --resume keeps the runs done and trains nothing again.
    again, stdout = run_smoke(tmp_path, "--resume")
    assert "[resume] 3 runs kept" in stdout and "[run " not in stdout
    assert again["runs"] == runs and again["table"] == result["table"]


def test_mirrored_constants_agree_with_the_package():
    """paper_scale.py mirrors `experiment` (which imports TensorFlow)."""
    import paper_scale as ps
    from keras_speechmix.training import experiment

    envnet = experiment.NETWORKS["envnet"]
    for method in ("bc", "speechmix"):
        assert ps.METHODS[method] == experiment.METHODS[method]
        assert ps.POINTS[method] == envnet["points"][method]
        assert ps.HIDDEN_GAINS.get(method) == experiment.HIDDEN_GAINS.get(method)
    assert ps.POINTS["none"] == envnet["points"]["speechmix"]  # identities, as `_points`
    assert experiment.METHODS["none"] is ps.METHODS["none"] is None
    assert ps.SCHEDULE["learning_rate"] == envnet["learning_rate"]
    assert ps.RATE == envnet["sample_rate"] and ps.LENGTH == round(envnet["seconds"] * ps.RATE)


def test_the_learning_rate_drops_on_bc_learnings_epochs():
    import paper_scale as ps

    epochs, per_epoch = 20, 3
    sgd = ps.optimizer(0.01, epochs, per_epoch)
    schedule = sgd._learning_rate
    for step in range(epochs * per_epoch):
        epoch = step // per_epoch + 1  # BC learning counts epochs from 1
        decay = sum(epoch > np.array([epochs * 0.5, epochs * 0.75]))
        assert np.isclose(float(schedule(step)), 0.01 * 0.1 ** decay), step


def test_training_crops_pad_half_a_crop_and_start_uniformly():
    import paper_scale as ps

    wave = np.arange(1, 101, dtype=np.float32)  # the value says the position
    rng = np.random.default_rng(0)
    firsts = []
    for _ in range(3000):
        crop = ps.training_crop(wave, 40, rng)
        loud = np.flatnonzero(crop)
        # Contiguous samples of the clip, with zeros only where the padding is.
        assert np.all(np.diff(crop[loud]) == 1)
        firsts.append(crop[0] - 1 if crop[0] else -(int(loud[0]) if loud.size else 40))
    # Offsets from -20 (half a crop of zeros first) to 80 (half a crop of
    # zeros last), all 101 of them, about equally often.
    counts = np.bincount(np.asarray(firsts, int) + 20, minlength=101)
    assert len(counts) == 101 and counts.min() > 10
    chi2 = float(((counts - 3000 / 101) ** 2 / (3000 / 101)).sum())
    assert chi2 < 150, chi2  # 100 degrees of freedom: 149.4 is the 0.1 % point


def test_evaluation_crops_span_the_padded_clip():
    import paper_scale as ps

    wave = np.arange(1, 101, dtype=np.float32)
    crops = ps.evaluation_crops(wave, 60, 10)
    padded = np.concatenate([np.zeros(30), wave, np.zeros(30)])
    # BC learning's multi_crop: a whole stride, (160 - 60) // 9 = 11 samples.
    assert crops.shape == (10, 60)
    for i, crop in enumerate(crops):
        np.testing.assert_array_equal(crop, padded[11 * i:11 * i + 60])
    with pytest.raises(ValueError, match="crops must be >= 2"):
        ps.evaluation_crops(np.ones(100, np.float32), 60, 1)


def test_esc10_is_read_trimmed_at_44k(shared_data):
    import paper_scale as ps

    if not (shared_data / "esc10" / "meta.csv").is_file():
        pytest.skip("no ESC-10 here")
    clips = ps.load_esc10(shared_data, folds=[2], classes=2, per_class=2)
    assert len(clips) == 4 and sorted(clips.labels.tolist()) == [0, 0, 1, 1]
    assert all(w[0] != 0 and w[-1] != 0 and len(w) <= 5 * ps.RATE + 100 for w in clips.waves)
    with pytest.raises(FileNotFoundError, match="ESC-10 not found"):
        ps.load_esc10(shared_data / "nowhere")


def test_importing_the_benchmark_leaves_the_environment_alone():
    """Imported by a test, it must not set KERAS_BACKEND for later
    subprocesses (test_resume's `speechmix train` then ran on JAX). In a
    fresh process: here it may be imported already."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = ("import os, sys; sys.path.insert(0, 'benchmarks'); import paper_scale; "
            "print(os.environ.get('KERAS_BACKEND'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "None"
