"""The `speechmix` command end to end, at tiny sizes."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from keras_speechmix.audio import datasets
from keras_speechmix.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_SPEECHMIX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_demo_compares_over_seeds_and_writes_pictures(tmp_path, capsys):
    """The main job on the built-in real digits: 4 speakers train, theo
    validates, yweweler (never trained on) is the test."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--takes", "1",
                 "--seeds", "2", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(run["mix"], run["seed"]) for run in results["runs"]] == [
        ("none", 0), ("speechmix", 0), ("none", 1), ("speechmix", 1)]
    split = results["split"]
    assert split["train"] == ["george", "jackson", "lucas", "nicolas"]
    assert split["validation"] == ["theo"] and split["test"] == ["yweweler"]
    # One take of each digit per training speaker; every built-in take of
    # the validation and test speakers.
    assert (results["num_train"], results["num_validation"], results["num_test"]) == (
        40, 80, 80)
    assert results["sample_rate"] == 8000 and results["recipe"]["model"]
    assert all(0.0 <= run["test_accuracy"] <= 1.0 and run["sample_rate"] == 8000
               for run in results["runs"])
    table = results["comparison"]
    assert len(table["none"]["errors"]) == len(table["speechmix"]["errors"]) == 2
    assert table["speechmix"]["verdict"] in (
        "within the seeds' spread: no difference", "beyond the seeds' spread")
    printed = capsys.readouterr().out
    assert "mean ± s.e. over 2 seed(s)" in printed
    assert "speechmix: " in printed and "combined s.e." in printed
    assert "clip by clip over the seeds" in printed and "McNemar p = " in printed
    assert table["speechmix"]["mcnemar"]["a_only"] >= 0
    assert "test speaker(s) ['yweweler'] (never trained on)" in printed
    for name in ("curves.png", "confusion.png", "mixing.png", "robustness.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    # Clean and shifted errors side by side, paired clip by clip (issue 27).
    shifts = results["robustness"]
    assert list(shifts)[:2] == ["clean", "level:-20"] and "white:10" in shifts
    assert "mcnemar" in shifts["white:10"]["speechmix"]
    assert shifts["level:-20"]["none"]["error_mean"] == shifts["clean"]["none"]["error_mean"]
    assert set(results["calibration"]) == {"none", "speechmix"}
    assert "The same test clips under recording shifts" in printed
    assert "Calibration on the clean test clips" in printed


def test_demo_epochs_follow_the_default_recipe(monkeypatch):
    """The built-in demo trains a fixed share of the recipe's epochs, so a
    change of the default recipe reaches it; --data gets the recipe's own."""
    from keras_speechmix.cli import demo
    from keras_speechmix.training import experiment

    monkeypatch.setitem(experiment.RECIPE, "epochs", 40)
    monkeypatch.setitem(experiment.RECIPE, "mix_epochs", 120)
    share = demo.DEMO["epoch_share"]
    assert demo._demo_epochs("none", None) == round(40 * share)
    assert demo._demo_epochs("speechmix", None) == round(120 * share)
    assert demo._demo_epochs("speechmix", "fsdd:x") == 120


def test_demo_takes_a_dataset_with_speakers(tmp_path, capsys):
    """--data: the same rule on a user's set; --takes limits the training
    speakers' clips of each class."""
    folder = tmp_path / "digits"
    clips = datasets.builtin_digits()
    for path, wave, label in zip(clips.paths, clips.waveforms, clips.labels):
        if int(path.rsplit("_", 1)[1][:-4]) < 2:
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, wave, clips.sample_rate, subtype="PCM_16")
    out = tmp_path / "demo"
    assert main(["demo", "--data", f"fsdd:{folder}", "--out", str(out), "--epochs", "1",
                 "--takes", "1", "--seeds", "1", "--mixes", "speechmix", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["split"]["test"] == ["yweweler"]
    assert results["split"]["validation"] == ["theo"]
    assert (results["num_train"], results["num_test"]) == (40, 20)
    assert results["sample_rate"] == 16000  # --data is read at the network's rate
    assert "test speaker(s) ['yweweler']" in capsys.readouterr().out


def test_train_then_evaluate(tmp_path, cache, capsys):
    from keras_speechmix.audio import synth

    folder = synth.synthesize_digits(num_speakers=2, takes_per_speaker=2)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--mix", "speechmix", "--epochs", "1",
                 "--out", str(out), "--quiet", "--clip-seconds", "1.0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "num_train", "num_test", "mix", "epochs", "train_accuracy",
            "validation_accuracy", "load_report"} <= set(metrics)
    assert metrics["num_train"] + metrics["num_validation"] + metrics["num_test"] == 40
    # 10 % of the training clips, but at least one per class.
    assert metrics["num_validation"] == 10
    # Digits in spoken order, not alphabetical.
    assert metrics["class_names"][:3] == ["zero", "one", "two"]
    for name in ("curves.png", "confusion.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    printed = capsys.readouterr().out
    assert "validation (10 clips held out of the training data)" in printed
    assert "test (10 clips, scored once)" in printed
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_clips"] == 40 and len(result["confusion"]) == 10
    assert main(["evaluate", str(out / "model.keras"), "--data", str(folder), "--json",
                 "--stream"]) == 0
    streamed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert streamed["confusion"] == result["confusion"] and streamed["skipped_files"] == {}


def test_train_lists_every_skipped_file(tmp_path, cache, capsys):
    import shutil

    from keras_speechmix.audio import synth

    folder = tmp_path / "digits"
    shutil.copytree(synth.synthesize_digits(num_speakers=2, takes_per_speaker=1), folder)
    (folder / "zero" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    (folder / "one" / "empty.wav").write_bytes(b"")
    for i in range(23):
        (folder / "two" / f"bad{i:02d}.wav").write_bytes(b"")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--mix", "none", "--epochs", "1",
                 "--out", str(out), "--quiet", "--validation", "0"]) == 0
    printed = capsys.readouterr().out
    assert "Skipped 25 of 45 files:" in printed
    assert "corrupt.wav" in printed and "empty.wav" in printed
    assert "... and 5 more; all are listed in" in printed
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 25 and all(row["reason"] for row in rows)
    assert {Path(row["path"]).name for row in rows} >= {"corrupt.wav", "empty.wav"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["load_report"]["found"] == 45
    assert len(metrics["load_report"]["skipped"]) == 25
    assert metrics["num_validation"] == 0 and "validation_accuracy" not in metrics


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
    # 10 % of the two training folds held out for the curves, by recording.
    assert metrics["num_train"] + metrics["num_validation"] == 160
    assert 14 <= metrics["num_validation"] <= 20 and metrics["num_test"] == 80
    assert metrics["trim_silence"] is True
    assert main(["evaluate", str(out / "model.keras"), "--folds", "3", "--trim-silence",
                 "--data", str(shared_data / "esc10" / "meta.csv")]) == 0
    assert main(["train", "--data", str(shared_data / "esc10" / "meta.csv"),
                 "--test-folds", "7", "--out", str(out)]) == 2


def digits_with_bad_files(tmp_path, bad):
    import shutil

    from keras_speechmix.audio import synth

    folder = tmp_path / "digits"
    shutil.copytree(synth.synthesize_digits(num_speakers=2, takes_per_speaker=2), folder)
    for i in range(bad):
        (folder / "three" / f"bad{i}.wav").write_bytes(b"RIFFjunk")
    return folder


def test_train_streams_and_lists_the_files_it_skipped(tmp_path, cache, capsys):
    folder = digits_with_bad_files(tmp_path, 1)
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--stream", "--mix", "speechmix",
                 "--epochs", "2", "--out", str(out), "--quiet", "--clip-seconds", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "FileSet: 41 files" in printed
    assert "Skipped 1 unreadable file while streaming" in printed and "bad0.wav" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["streamed"] and list(metrics["skipped_files"]) == [
        str(folder / "three" / "bad0.wav")]
    assert metrics["num_train"] + metrics["num_validation"] + metrics["num_test"] == 41
    assert metrics["reads"] > 41 and metrics["skipped_reads"] >= 1
    with open(out / "skipped.csv", newline="") as f:
        assert [Path(r["path"]).name for r in csv.DictReader(f)] == ["bad0.wav"]


def test_train_stops_when_too_many_files_fail(tmp_path, cache, capsys):
    folder = digits_with_bad_files(tmp_path, 6)  # 6 of 46 files
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--stream", "--mix", "none",
                 "--epochs", "2", "--out", str(out), "--quiet", "--validation", "0"]) == 2
    captured = capsys.readouterr()
    assert "file reads failed" in captured.err and "limit 5.0 %" in captured.err
    with open(out / "skipped.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) >= 1
    assert not (out / "model.keras").exists()


def test_train_streams_when_the_set_exceeds_the_memory_budget(tmp_path, cache, capsys):
    folder = digits_with_bad_files(tmp_path, 0)
    assert main(["train", "--data", str(folder), "--mix", "none", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet", "--memory-budget", "0.0001"]) == 0
    assert "streaming them from disk instead" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["streamed"]


def test_the_command_prints_no_tensorflow_start_up_lines():
    """TensorFlow 2.21 writes C++ start-up lines (oneDNN, CUDA plugins) to
    stderr whatever TF_CPP_MIN_LOG_LEVEL says; the command hides them."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    ran = subprocess.run([sys.executable, "-m", "keras_speechmix", "--version"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.startswith("speechmix ")
    assert ran.stderr == "", ran.stderr[-2000:]
