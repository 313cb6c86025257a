"""What a new user meets first: the command line and the saved model (issue 19).

Tiny synthetic sets (three tones, 0.3 s at 8 kHz) and one-epoch runs.
"""

import csv
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import keras_speechmix as ksm
from keras_speechmix.cli import options
from keras_speechmix.training import experiment
from keras_speechmix.cli import main

RATE = 8000
CLASSES = ("low", "mid", "high")
NAMES = ["high", "low", "mid"]  # the classes in the data set's (natural) order


def tones(root, per_class=6, bad=0, classes=CLASSES, seconds=0.3):
    """A folder of class folders of short tones; `bad` unreadable files in the first."""
    root = Path(root)
    rng = np.random.RandomState(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            t = np.arange(int(RATE * seconds)) / RATE
            x = 0.5 * np.sin(2 * np.pi * (300 * (c + 1) + 20 * i) * t)
            x += 0.05 * rng.randn(t.size)
            with wave.open(str(root / name / f"{name}_{i}.wav"), "wb") as f:
                f.setnchannels(1)
                f.setsampwidth(2)
                f.setframerate(RATE)
                f.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    for i in range(bad):
        (root / classes[0] / f"bad{i}.wav").write_bytes(b"RIFFjunk")
    return root


TRAIN = ["--sample-rate", str(RATE), "--epochs", "1", "--quiet", "--model", "logmel"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model trained through the command, with what it printed."""
    root = tmp_path_factory.mktemp("trained")
    data = tones(root / "data", bad=1)
    out = root / "run"
    code = main(["train", "--data", str(data), "--out", str(out), "--mix", "none",
                 "--clip-seconds", "0.25", *TRAIN])
    assert code == 0
    return data, out


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# 1. A run that never trained -------------------------------------------------


def test_a_small_stream_keeps_its_last_partial_batch(tmp_path, capsys):
    # 18 training files after the split, one unreadable: the default batch (the
    # number of files) never filled up, so no epoch trained a single step.
    data = tones(tmp_path / "data", bad=1)
    out = tmp_path / "run"
    code, printed, _ = run(capsys, "train", "--data", data, "--out", out, "--stream",
                           "--mix", "speechmix", "--max-skipped", "0.5", "--epochs", "2",
                           "--validation", "0", "--sample-rate", RATE, "--quiet")
    assert code == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


def test_a_run_that_trains_no_step_is_an_error(tmp_path, capsys):
    data = tmp_path / "data"
    for name in CLASSES:
        (data / name).mkdir(parents=True)
        for i in range(4):
            (data / name / f"{i}.wav").write_bytes(b"RIFFjunk")
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", data, "--out", out, "--stream",
                       "--max-skipped", "0.9", "--validation", "0", *TRAIN)
    assert code == 2
    assert "trained on no batch" in err and "could be read" in err
    assert not (out / "model.keras").exists()


@pytest.mark.parametrize("mixing", [None, {"partners": "random", "prob": 0.0}])
def test_a_streamed_epoch_loss_is_the_mean_over_every_readable_clip(tmp_path, mixing):
    # Items 1 and 8: the stream's last partial batch counts, and no batch is
    # counted twice (the curves of `train --stream` were n/(n+1) of the truth).
    import keras

    from keras_speechmix.audio import streaming

    files = streaming.list_files(tones(tmp_path / "data", bad=1), RATE)

    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((2400,)), ksm.HiddenMixup(),
                                 keras.layers.Dense(3, activation="softmax")])

    read = list(files.read())
    assert len(read) == 18  # 0.3 s clips: no random crop at 2400 samples
    targets = keras.utils.to_categorical([int(y) for _, y in read], 3)
    net = model()
    expected = np.mean(keras.losses.categorical_crossentropy(
        targets, net.predict(np.stack([w for w, _ in read]), verbose=0)))
    trainer, data = experiment.training_batches(model(), files, 2400, 5, 0, mixing)
    trainer.compile(keras.optimizers.SGD(0.0), "categorical_crossentropy")
    history = trainer.fit(data, epochs=2, verbose=0).history
    np.testing.assert_allclose(history["loss"], [expected] * 2, rtol=1e-5)


# 2. The saved model loads as a plain Keras model -----------------------------


def test_the_saved_model_loads_in_a_fresh_process(trained):
    _, out = trained
    script = (
        "import keras, numpy as np, keras_speechmix\n"
        f"model = keras.models.load_model({str(out / 'model.keras')!r})\n"
        "print(model.predict(np.zeros((1, model.input_shape[1]), 'float32'),"
        " verbose=0).shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "(1, 3)"


def test_import_registers_every_layer_a_model_can_hold():
    import keras

    for name in ("LogMelSpectrogram", "SpecAugment", "HiddenMixup", "SpeechMix"):
        assert keras.saving.get_registered_object(f"keras_speechmix>{name}") is not None
    assert ksm.LogMelSpectrogram is keras.saving.get_registered_object(
        "keras_speechmix>LogMelSpectrogram")


# 3. Clips of any length, and what the model takes ----------------------------


def test_train_prints_and_saves_what_the_model_takes(trained, capsys):
    data, out = trained
    info = ksm.model_info(out / "model.keras")
    assert info["sample_rate"] == RATE and info["input_length"] == 2000
    assert info["class_names"] == NAMES
    model = ksm.load_model(out / "model.keras")
    assert model.input_shape[1] == 2000
    # Clips shorter and longer than the input, scored without a reshape error.
    waves = [np.zeros(500, "float32"), np.random.RandomState(0).randn(9000).astype("float32")]
    probabilities = ksm.predict_clips(model, waves)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # The long clip is the mean of 10 evenly spaced windows, first and last included.
    starts = np.round(np.linspace(0, 9000 - 2000, 10)).astype(int)
    windows = np.stack([waves[1][s:s + 2000] for s in starts])
    np.testing.assert_allclose(probabilities[1], model.predict(windows, verbose=0).mean(0),
                               rtol=1e-5, atol=1e-6)
    code, printed, _ = run(capsys, "predict", out / "model.keras",
                           data / "mid" / "mid_0.wav", data / "low" / "bad0.wav")
    assert code == 1  # one file not scored (issue 28)
    assert printed.startswith(f"{data / 'mid' / 'mid_0.wav'}: ")


def test_the_training_summary_says_how_to_use_the_model(tmp_path, capsys):
    data = tones(tmp_path / "data")
    out = tmp_path / "run"
    code, printed, _ = run(capsys, "train", "--data", data, "--out", out, "--mix", "none",
                           "--clip-seconds", "0.25", *TRAIN)
    assert code == 0
    assert "logmel, none, 1 epoch, " in printed  # not "1 epochs"
    assert "2000 samples (0.25 s) at 8000 Hz" in printed
    assert "ksm.load_model(" in printed and "ksm.predict_clips(" in printed
    assert "clips, scored once): accuracy " in printed and "(error " in printed


# 4. Evaluate matches classes by name and refuses another rate ---------------


def test_evaluate_matches_classes_by_name(trained, tmp_path, capsys):
    data, out = trained
    code, printed, _ = run(capsys, "evaluate", out / "model.keras", "--data", data, "--json")
    assert code == 0
    full = json.loads(printed.splitlines()[-1])
    assert full["class_names"] == NAMES
    # The same clips of two classes only, in a folder of their own: scored
    # against the model's "high" and "mid", not its first two classes.
    subset = tmp_path / "subset"
    tones(subset, classes=CLASSES)
    (subset / "low").rename(tmp_path / "low-elsewhere")
    code, printed, _ = run(capsys, "evaluate", out / "model.keras", "--data", subset,
                           "--json")
    assert code == 0
    part = json.loads(printed.splitlines()[-1])
    confusion = np.asarray(full["confusion"])
    confusion[NAMES.index("low")] = 0
    np.testing.assert_array_equal(part["confusion"], confusion)


def test_evaluate_refuses_other_class_names_and_rates(trained, tmp_path, capsys):
    _, out = trained
    renamed = tones(tmp_path / "renamed", classes=("bass", "mid", "high"))
    code, _, err = run(capsys, "evaluate", out / "model.keras", "--data", renamed)
    assert code == 2 and "bass" in err and "high, low, mid" in err
    code, _, err = run(capsys, "evaluate", out / "model.keras", "--data", renamed,
                       "--sample-rate", "16000")
    assert code == 2 and "--sample-rate 16000" in err and f"{RATE} Hz" in err


# 5. Evaluate lists the files it could not read -------------------------------


def test_evaluate_lists_unreadable_files(trained, capsys):
    data, out = trained
    code, printed, _ = run(capsys, "evaluate", out / "model.keras", "--data", data)
    assert code == 0
    assert "Skipped 1 of 19 files:" in printed and "bad0.wav" in printed
    assert "on 18 clips" in printed
    code, printed, _ = run(capsys, "evaluate", out / "model.keras", "--data", data, "--json")
    skipped = json.loads(printed.splitlines()[-1])["skipped_files"]
    assert list(skipped) == [str(data / "low" / "bad0.wav")]
    assert not skipped[str(data / "low" / "bad0.wav")].startswith(str(data))
    code, printed, _ = run(capsys, "evaluate", out / "model.keras", "--data", data, "--stream")
    assert code == 0 and "Skipped 1 unreadable file:" in printed and "bad0.wav" in printed


# 6. Every number is checked by the parser ------------------------------------


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--epochs", "-3"), ("--sample-rate", "0"),
    ("--sample-rate", "-8000"), ("--batch-size", "0"), ("--batch-size", "-4"),
    ("--clip-seconds", "0"), ("--learning-rate", "0"), ("--alpha", "-1"),
    ("--seed", "-1"), ("--save-every", "0"), ("--memory-budget", "0"),
    ("--validation", "1"), ("--test-folds", "a,b")])
def test_numeric_options_are_checked_by_the_parser(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
              option, value])
    assert stop.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err


# 7. Errors that can be found early are found early --------------------------


def test_errors_come_before_any_decoding_or_training(tmp_path, capsys, monkeypatch):
    from keras_speechmix.audio import datasets, streaming

    def forbidden(*args, **kwargs):
        raise AssertionError("decoded or trained before checking the options")

    monkeypatch.setattr(datasets.loaders, "_decode_all", forbidden)
    monkeypatch.setattr(experiment, "train_clips", forbidden)
    monkeypatch.setattr(streaming.FileSet, "read", forbidden)
    data = tones(tmp_path / "data")
    listed = tmp_path / "listed.csv"
    listed.write_text("path,label,fold\n" + "".join(
        f"{p.relative_to(tmp_path)},{p.parent.name},{1 + k % 3}\n"
        for k, p in enumerate(sorted(data.rglob("*.wav")))))
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, _, err = run(capsys, "train", "--data", data, "--out", a_file, *TRAIN)
    assert code == 2 and f"--out {a_file} is a file" in err
    code, _, err = run(capsys, "train", "--data", listed, "--out", tmp_path / "r",
                       "--test-folds", "9", *TRAIN)
    assert code == 2 and "--test-folds 9" in err and "its folds are 1, 2, 3" in err
    code, _, err = run(capsys, "train", "--data", data, "--out", tmp_path / "r",
                       "--test-folds", "1", *TRAIN)
    assert code == 2 and "--test-folds" in err and "has no folds" in err


def test_evaluate_checks_classes_and_folds_before_decoding(trained, tmp_path, capsys,
                                                         monkeypatch):
    from keras_speechmix.audio import datasets

    _, out = trained
    monkeypatch.setattr(datasets.loaders, "_decode_all", lambda *a, **k: pytest.fail("decoded"))
    other = tones(tmp_path / "other", per_class=1, classes=("a", "b"))
    code, _, err = run(capsys, "evaluate", out / "model.keras", "--data", other)
    assert code == 2 and "not trained on: a, b" in err
    code, _, err = run(capsys, "evaluate", out / "model.keras", "--data", other,
                       "--folds", "2")
    assert code == 2 and "--folds" in err


def test_a_folder_that_holds_a_model_is_not_overwritten(trained, capsys, monkeypatch):
    data, out = trained
    before = (out / "model.keras").read_bytes()
    code, _, err = run(capsys, "train", "--data", data, "--out", out, *TRAIN)
    assert code == 2 and "--overwrite" in err
    assert (out / "model.keras").read_bytes() == before

    def stop(*args, **kwargs):
        raise RuntimeError("stopped here")

    monkeypatch.setattr(experiment, "train_clips", stop)
    code, _, err = run(capsys, "train", "--data", data, "--out", out, "--overwrite", *TRAIN)
    assert "stopped here" in err


# 9. Model paths that are not models -----------------------------------------


def test_model_paths_say_what_is_wrong(trained, tmp_path, capsys):
    data, out = trained
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    code, _, err = run(capsys, "evaluate", fake, "--data", data)
    assert code == 2 and "is not a Keras model file" in err
    code, _, err = run(capsys, "evaluate", out, "--data", data)
    assert code == 2 and f"did you mean {out / 'model.keras'}?" in err
    code, _, err = run(capsys, "evaluate", tmp_path / "missing.keras", "--data", data)
    assert code == 2 and "does not exist" in err
    with pytest.raises(ValueError, match="not a Keras model file"):
        ksm.load_model(fake)


# Polish -----------------------------------------------------------------------


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == (
        f"speechmix {ksm.__version__}")
    parser = options._parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in commands.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"speechmix {name} {action.option_strings}: no help"


def test_learning_rate_and_alpha_reach_the_recipe(tmp_path, capsys, monkeypatch):
    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("captured")

    monkeypatch.setattr(experiment, "train_clips", capture)
    data = tones(tmp_path / "data")
    run(capsys, "train", "--data", data, "--out", tmp_path / "run", "--learning-rate",
        "0.01", "--alpha", "0.4", *TRAIN)
    assert seen["learning_rate"] == 0.01 and seen["alpha"] == 0.4


def test_load_report_counts_files_and_names_what_it_ignored(tmp_path, capsys):
    data = tones(tmp_path / "data", bad=2)
    (data / "empty_class").mkdir()
    (data / "README.txt").write_text("notes")
    out = tmp_path / "run"
    code, printed, _ = run(capsys, "train", "--data", data, "--out", out, "--mix", "none",
                           *TRAIN)
    assert code == 0
    assert "Skipped 2 of 20 files:" in printed
    assert f"Left out 1 class folder without audio files: {data / 'empty_class'}" in printed
    assert f"Ignored 1 non-audio file: {data / 'README.txt'}" in printed
    with open(out / "skipped.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(not row["reason"].startswith(row["path"]) for row in rows)


def test_pictures_mark_every_epoch_and_count_every_cell(monkeypatch):
    import warnings

    from keras_speechmix.cli import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    run_ = {"mix": "none", "label": "狗 none", "test_accuracy": 0.5,
            "class_names": ["狗", "猫", "bird"], "confusion": [[2, 0, 0], [1, 1, 0], [0, 0, 3]],
            "history": {"loss": [1.2], "accuracy": [0.5], "val_loss": [1.3],
                        "val_accuracy": [0.4]}, "validation_epochs": [1]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plots.plot_curves([run_], "/dev/null")
        plots.plot_confusion([run_], "/dev/null")
    assert not [w for w in caught if "Glyph" in str(w.message)]
    curves, confusion = figures
    for axis in curves.axes:
        assert all(line.get_marker() not in (None, "None", "") for line in axis.lines)
        assert axis.get_legend() is not None
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks == [1.0]
    matrix, colour_bar = confusion.axes
    assert sorted(t.get_text() for t in matrix.texts) == sorted("200110003")
    assert colour_bar.get_ylabel() == "clips"
