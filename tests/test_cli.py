"""The `speechmix` command end to end, at tiny sizes."""

import json

import pytest

from keras_speechmix.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SPEECHMIX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_demo_writes_results_and_pictures(tmp_path, cache):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--speakers", "4",
                 "--takes", "1", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [run["mix"] for run in results["runs"]] == ["none", "input", "speechmix"]
    assert all(0.0 <= run["test_accuracy"] <= 1.0 for run in results["runs"])
    assert results["num_test"] == 10  # one of four speakers held out, 10 digits
    for name in ("curves.png", "confusion.png", "mixing.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name


def test_train_then_evaluate(tmp_path, cache, capsys):
    from keras_speechmix import synth

    folder = synth.synthesize_digits(num_speakers=2, takes_per_speaker=2)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--mix", "speechmix", "--epochs", "1",
                 "--out", str(out), "--quiet", "--clip-seconds", "1.0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "num_train", "num_test", "mix", "epochs"} <= set(metrics)
    assert metrics["num_train"] + metrics["num_test"] == 40
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_clips"] == 40 and len(result["confusion"]) == 10


def test_clear_errors(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    single = tmp_path / "single" / "only_class"
    single.mkdir(parents=True)
    import wave

    with wave.open(str(single / "a.wav"), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\x01\x00" * 1600)
    assert main(["train", "--data", str(tmp_path / "single"), "--out", str(tmp_path)]) == 2
    assert "class" in capsys.readouterr().err


def test_esc10_trains_through_the_command(shared_data, tmp_path):
    out = tmp_path / "esc"
    assert main(["train", "--data", str(shared_data / "esc10" / "meta.csv"),
                 "--train-folds", "1,2", "--test-folds", "3", "--epochs", "1",
                 "--mix", "bc", "--clip-seconds", "2.0", "--out", str(out), "--quiet",
                 "--trim-silence"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["num_train"], metrics["num_test"]) == (160, 80)
    assert metrics["trim_silence"] is True
    assert main(["evaluate", str(out / "model.keras"), "--folds", "3", "--trim-silence",
                 "--data", str(shared_data / "esc10" / "meta.csv")]) == 0
    assert main(["train", "--data", str(shared_data / "esc10" / "meta.csv"),
                 "--test-folds", "7", "--out", str(out)]) == 2
