"""Every example runs at a tiny size, so examples never rot."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, *args, timeout=300):
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=EXAMPLES.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quickstart():
    out = run_script("quickstart")
    assert out.strip().splitlines()[-1].startswith("[")


def test_functional_model():
    accuracy = load("functional_model").main(epochs=2)
    assert 0.0 <= accuracy <= 1.0


def test_subclassed_model():
    accuracy = load("subclassed_model").main(epochs=2)
    assert 0.0 <= accuracy <= 1.0


def test_distributed():
    # Own process: logical CPU devices must be set before TensorFlow starts.
    out = run_script("distributed", "--epochs", "1", "--cpus", "2")
    assert "replicas: 2" in out
    losses = [float(line.rsplit("loss:", 1)[1]) for line in out.splitlines() if "loss:" in line]
    assert losses and np.isfinite(losses).all()


def test_train_folder(tmp_path, monkeypatch):
    from keras_speechmix.audio import synth

    monkeypatch.setenv("KERAS_SPEECHMIX_CACHE", str(tmp_path / "cache"))
    folder = synth.synthesize_digits(num_speakers=2, takes_per_speaker=2)
    result = load("train_folder").main(folder, epochs=1, out=tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "model.keras").stat().st_size > 0
    assert result["num_train"] + result["num_test"] == 40


def test_fsdd_speaker_holdout(shared_data):
    table = load("fsdd_speaker_holdout").main(
        shared_data / "fsdd", epochs=1, speakers=["theo"], per_class_per_speaker=2)
    assert set(table) == {"none", "speechmix"}
    assert all(len(v) == 1 and 0.0 <= v[0] <= 1.0 for v in table.values())


def test_tutorial_audio():
    accuracy = load("tutorial_audio").main(epochs=2)
    assert set(accuracy) == {"plain", "speechmix"}
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())


def test_pydataset_jax():
    # TensorFlow hidden (tests/no_tensorflow.py): the example needs none.
    code = (
        "import runpy, sys, tests.no_tensorflow\n"
        "sys.argv = [sys.argv[1], '--epochs', '4']\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "assert 'tensorflow' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "pydataset_jax.py")],
                          capture_output=True, text=True, timeout=300, cwd=EXAMPLES.parent,
                          env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "backend: jax" in done.stdout
    first, last = done.stdout.split("mixed training loss: ")[1].split(" (")[0].split(" -> ")
    assert np.isfinite([float(first), float(last)]).all()


def test_finetune_backbone(tmp_path):
    import keras

    from keras_speechmix import mix_layers

    result = load("finetune_backbone").main(data="tones", tiny=True, out=tmp_path, verbose=0)
    # The log-mel input and MobileNetV3Small's stage outputs, inside the backbone.
    assert result["mix_points"] == [
        "mix_after_logmel_norm", "mix_after_expanded_conv_project_bn",
        "mix_after_expanded_conv_2_add", "mix_after_expanded_conv_7_add",
        "mix_after_expanded_conv_10_add"]
    assert 0.0 <= result["test_accuracy"] <= 1.0
    # What it saves is the user's own model: no mixing layer inside.
    saved = keras.models.load_model(tmp_path / "model.keras")
    assert not mix_layers(saved) and saved.output.shape[-1] == 5


def test_finetune_backbone_keras_hub():
    # KerasHub is in the dev extra (pinned in constraints.txt), so this runs
    # on every dev install rather than being skipped: the Whisper encoder is
    # built from a config, with random weights (no download).
    import keras_hub  # noqa: F401

    result = load("finetune_backbone").main(data="tones", backbone="whisper", tiny=True,
                                            verbose=0)
    # The Whisper encoder's transformer layers are its blocks.
    assert result["mix_points"] == ["mix_after_logmel_norm"] + [
        f"mix_after_transformer_encoder_layer_{k}" for k in range(4)]
