"""What a new user still hit (issue 28): the command line, `predict` /
`evaluate` and the `add_mix_points` workflow.

Tiny synthetic sets (three tones, 0.3 s at 8 kHz) and small models saved
from Python, so that no test trains a network through the command.
"""

import json
import os
import wave
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_speechmix as ksm
from keras_speechmix.cli import main
from keras_speechmix.training import experiment
from tests.test_new_user import CLASSES, NAMES, RATE, TRAIN, run, tones

LENGTH = 2400  # 0.3 s at 8 kHz


def forbid_decoding(monkeypatch):
    from keras_speechmix.audio import datasets, streaming

    def forbidden(*args, **kwargs):
        raise AssertionError("decoded before checking the options and the listing")

    monkeypatch.setattr(datasets.loaders, "_decode_all", forbidden)
    monkeypatch.setattr(streaming.FileSet, "read", forbidden)


def listed(root, data, rows):
    """A CSV at `root` listing `rows` of (path relative to root, label, fold)."""
    path = Path(root) / "listed.csv"
    path.write_text("path,label,fold\n" + "".join(f"{p},{c},{f}\n" for p, c, f in rows))
    return path


def fold_rows(root, data, folds_of):
    """Every tone file, with the fold `folds_of(class, index)` gives it."""
    return [(p.relative_to(root), p.parent.name, folds_of(p.parent.name, k))
            for k, p in enumerate(sorted(data.rglob("*.wav")))]


def write_wav(path, samples, rate=RATE):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def front_end(kind):
    """Waveform features: ours, Keras' own nested in a sub-model, or none."""
    inputs = keras.Input((LENGTH,))
    if kind == "logmel":
        h = ksm.LogMelSpectrogram(sample_rate=RATE, num_mel_bins=16)(inputs)
    elif kind == "keras_mel":
        front = keras.Sequential([keras.Input((LENGTH,)), keras.layers.MelSpectrogram(
            sampling_rate=RATE, num_mel_bins=16, sequence_stride=80,
            sequence_length=200, fft_length=256)], name="front")
        h = front(inputs)
    else:
        h = keras.layers.Reshape((LENGTH // 80, 80))(inputs)
    return inputs, h


def saved_from_python(folder, kind="logmel", metadata=True):
    """A small classifier of the three tones, saved as a user would."""
    keras.utils.set_random_seed(0)
    inputs, h = front_end(kind)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.Flatten()(h)))
    path = Path(folder) / f"{kind}.keras"
    if metadata:
        ksm.save_model(model, path, sample_rate=RATE, class_names=NAMES)
    else:
        model.save(path)
    return path


# 1. A class that only the test folds hold ----------------------------------


def test_a_class_missing_from_the_training_folds_is_refused_before_decoding(
        tmp_path, capsys, monkeypatch):
    data = tones(tmp_path / "data")
    csv = listed(tmp_path, data, fold_rows(
        tmp_path, data, lambda name, k: 3 if name == "high" else 1 + k % 2))
    forbid_decoding(monkeypatch)
    for folds in (["--train-folds", "1,2", "--test-folds", "3"], ["--test-folds", "3"]):
        code, _, err = run(capsys, "train", "--data", csv, "--out", tmp_path / "run",
                           *folds, *TRAIN)
        assert code == 2
        assert "1 class of" in err and "no clip in the training folds (1, 2)" in err
        assert "high in fold 3" in err
    assert not (tmp_path / "run").exists()


def test_a_class_whose_files_are_all_unreadable_is_refused(tmp_path, capsys, monkeypatch):
    data = tones(tmp_path / "data")
    for path in (data / "high").glob("*.wav"):
        path.write_bytes(b"RIFFjunk")
    monkeypatch.setattr(experiment, "train_clips",
                        lambda *a, **k: pytest.fail("trained without a class"))
    code, _, err = run(capsys, "train", "--data", data, "--out", tmp_path / "run", *TRAIN)
    assert code == 2 and "1 class has no training clip" in err and err.rstrip().endswith(
        "A model cannot learn a class it never sees") and ": high." in err


# 2. --sample-rate is one the networks can use -------------------------------


@pytest.mark.parametrize("value", ["16", "100", "3999", "1000000"])
def test_sample_rate_is_bounded_by_the_parser(tmp_path, capsys, value):
    for argv in (["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")],
                 ["evaluate", "model.keras", "--data", str(tmp_path)],
                 ["predict", "model.keras", "a.wav"]):
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--sample-rate", value])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "argument --sample-rate:" in err and "from 4000 to 384000" in err


# 3. --out is checked before decoding ----------------------------------------


def test_an_out_under_a_file_is_refused_before_decoding(tmp_path, capsys, monkeypatch):
    data = tones(tmp_path / "data")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    forbid_decoding(monkeypatch)
    code, _, err = run(capsys, "train", "--data", data, "--out", a_file / "run", *TRAIN)
    assert code == 2
    assert f"--out {a_file / 'run'}: {a_file} is a file" in err and "Errno" not in err


def test_the_demo_refuses_an_out_under_a_file_before_training(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    forbid_decoding(monkeypatch)
    code, _, err = run(capsys, "demo", "--out", a_file / "demo", "--epochs", "1")
    assert code == 2
    assert f"--out {a_file / 'demo'}: {a_file} is a file" in err and "Errno" not in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_an_unwritable_out_is_refused_before_decoding(tmp_path, capsys, monkeypatch):
    data = tones(tmp_path / "data")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    forbid_decoding(monkeypatch)
    try:
        code, _, err = run(capsys, "train", "--data", data, "--out", locked / "run", *TRAIN)
    finally:
        locked.chmod(0o755)
    assert code == 2 and f"--out {locked / 'run'}: cannot write there" in err


# 4. Models saved from Python ------------------------------------------------


@pytest.mark.parametrize("kind", ["logmel", "keras_mel"])
def test_predict_reads_the_rate_from_the_models_feature_layer(tmp_path, capsys, kind):
    model = saved_from_python(tmp_path, kind, metadata=False)
    assert ksm.model_info(model) == {}
    clip = tones(tmp_path / "data") / "mid" / "mid_0.wav"
    code, printed, _ = run(capsys, "predict", model, clip)
    assert code == 0 and printed.startswith(f"{clip}: ")
    code, _, err = run(capsys, "predict", model, clip, "--sample-rate", "16000")
    assert code == 2
    assert "--sample-rate 16000: the model takes audio at 8000 Hz (its feature layer" in err


def test_a_model_with_no_rate_anywhere_takes_sample_rate(tmp_path, capsys):
    model = saved_from_python(tmp_path, "none", metadata=False)
    data = tones(tmp_path / "data")
    clip = data / "mid" / "mid_0.wav"
    code, _, err = run(capsys, "predict", model, clip)
    assert code == 2 and "pass --sample-rate HZ" in err
    code, printed, _ = run(capsys, "predict", model, clip, "--sample-rate", RATE)
    assert code == 0 and printed.startswith(f"{clip}: ")
    code, printed, _ = run(capsys, "evaluate", model, "--data", data, "--sample-rate", RATE,
                           "--json")
    assert code == 0 and json.loads(printed.splitlines()[-1])["num_clips"] == 18


# 5. and 9. evaluate: one class; classes matched by position -----------------


def test_evaluate_scores_a_set_of_one_class(tmp_path, capsys):
    model = saved_from_python(tmp_path)
    one = tones(tmp_path / "one", classes=("mid",))
    code, printed, err = run(capsys, "evaluate", model, "--data", one, "--json")
    assert code == 0, err
    result = json.loads(printed.splitlines()[-1])
    assert result["num_clips"] == 6 and result["class_names"] == NAMES
    assert np.asarray(result["confusion"])[NAMES.index("mid")].sum() == 6


def test_evaluate_says_when_it_matches_classes_by_position(tmp_path, capsys):
    data = tones(tmp_path / "data")
    plain = saved_from_python(tmp_path, metadata=False)
    code, printed, _ = run(capsys, "evaluate", plain, "--data", data)
    assert code == 0
    assert ("Note: The model records no class names: the data set's classes are matched "
            "to its outputs by position (output 0 = high, output 1 = low, output 2 = mid)"
            in printed)
    code, printed, _ = run(capsys, "evaluate", plain, "--data", data, "--json")
    assert "by position" in json.loads(printed.splitlines()[-1])["notes"][0]
    named = saved_from_python(tmp_path)
    code, printed, _ = run(capsys, "evaluate", named, "--data", data)
    assert code == 0 and "by position" not in printed


# 6. The user's own model on partner batches ---------------------------------


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_the_model_given_to_add_mix_points_refuses_partner_batches(kind):
    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(8, activation="relu", name="hidden"),
              keras.layers.Dense(3, activation="softmax", name="head")]
    if kind == "sequential":
        model = keras.Sequential([keras.Input((6,)), *layers])
    else:
        inputs = keras.Input((6,))
        model = keras.Model(inputs, layers[1](layers[0](inputs)))
    x = np.random.RandomState(0).randn(48, 6).astype("float32")
    y = np.arange(48) % 3
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, np.eye(3)[y], epochs=1, verbose=0)  # traced before the points exist
    mixing = ksm.add_mix_points(model, after=["hidden"])
    batches = ksm.partner_batches((x, y), 16, num_classes=3, mix_points=1)
    with pytest.raises(ValueError, match=(
            rf"Model '{model.name}' was given a SpeechMix batch `\(x, plan\)` in `fit`, "
            r"but it has no HiddenMixup.*`view = keras_speechmix.SpeechMix\(mixing\)`")):
        model.fit(batches, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="in `evaluate`.*plain `\\(x, y\\)` data"):
        model.evaluate(batches, verbose=0)
    # Plain data still trains the model, and the view trains it through the points.
    before = model.get_layer("head").get_weights()[0].copy()
    model.fit(x, np.eye(3)[y], epochs=1, verbose=0)
    view = ksm.SpeechMix(mixing)
    view.compile(optimizer="adam", loss="categorical_crossentropy")
    view.fit(batches, epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("head").get_weights()[0], before)


# 7. The same file listed twice ----------------------------------------------


def test_a_csv_that_lists_a_file_twice(tmp_path, capsys, monkeypatch):
    from keras_speechmix.audio import datasets

    data = tones(tmp_path / "data")
    rows = fold_rows(tmp_path, data, lambda name, k: 1 + k % 2)
    clip = data / "mid" / "mid_0.wav"
    relative = clip.relative_to(tmp_path)
    line = 2 + next(k for k, row in enumerate(rows) if row[0] == relative)
    fold = dict((r[0], r[2]) for r in rows)[relative]
    # The same file again, by its absolute path, with another label.
    relabelled = listed(tmp_path, data, rows + [(clip, "high", fold)])
    forbid_decoding(monkeypatch)
    code, _, err = run(capsys, "train", "--data", relabelled, "--out", tmp_path / "run",
                       *TRAIN)
    assert code == 2
    assert f"lists the file {clip} twice with different labels, 'mid' and 'high'" in err
    assert f"on lines {line} ({relative}) and {len(rows) + 2} ({clip})" in err
    # ... or in another fold: trained on and tested on.
    refolded = listed(tmp_path, data, rows + [(clip, "mid", 3 - fold)])
    code, _, err = run(capsys, "train", "--data", refolded, "--out", tmp_path / "run",
                       "--test-folds", "2", *TRAIN)
    assert code == 2 and f"lists the file {clip} in folds {fold} and {3 - fold}" in err
    # A plain repeat is used once, and reported.
    monkeypatch.undo()
    repeated = listed(tmp_path, data, rows + [(clip, "mid", fold)])
    clips = datasets.from_csv(repeated)
    assert len(clips) == 18 and clips.report.summary() == "18 of 19 files loaded, 1 skipped"
    assert clips.report.skipped == [(str(clip), (
        f"listed again on line {len(rows) + 2} (first on line {line}, same label and "
        "fold): used once"))]


# 8. predict: the order given, and a status that says what happened ----------


def test_predict_keeps_the_order_and_says_when_a_file_was_not_scored(tmp_path, capsys):
    model = saved_from_python(tmp_path)
    data = tones(tmp_path / "data")
    files = [data / "mid" / "mid_3.wav", tmp_path / "nope.wav", data / "high" / "high_0.wav",
             data / "low" / "low_1.wav"]
    code, printed, err = run(capsys, "predict", model, *files)
    assert code == 1
    assert [line.split(": ")[0] for line in printed.splitlines()] == [
        str(files[0]), str(files[2]), str(files[3])]
    assert f"{files[1]}: not scored: " in err
    assert "error: 1 of 4 files could not be read (not scored: " in err
    code, printed, _ = run(capsys, "predict", model, *files, "--json")
    assert code == 1
    result = json.loads(printed)
    assert list(result["predictions"]) == [str(files[k]) for k in (0, 2, 3)]
    assert list(result["skipped_files"]) == [str(files[1])]
    code, _, err = run(capsys, "predict", model, tmp_path / "nope.wav")
    assert code == 2 and "none of the 1 file could be read" in err
    code, printed, _ = run(capsys, "predict", model, files[2], files[0])
    assert code == 0 and printed.splitlines()[0].startswith(str(files[2]))


def test_predict_help_documents_its_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 when some could not be read" in text and "--sample-rate" in text


# 10. Degenerate clips ---------------------------------------------------------


def test_predict_clips_refuses_empty_and_non_finite_clips(tmp_path):
    model = ksm.load_model(saved_from_python(tmp_path))
    with pytest.raises(ValueError, match="clip 1 is empty"):
        ksm.predict_clips(model, [np.ones(100), np.zeros(0)])
    with pytest.raises(ValueError, match=r"clip 0 has 2400 NaN or infinite samples of 2400"):
        ksm.predict_clips(model, [np.full(LENGTH, np.nan)])
    with pytest.raises(ValueError, match="clip 2 has 1 NaN or infinite sample of 5000"):
        ksm.predict_clips(model, [np.ones(10), np.ones(10), np.r_[np.ones(4999), np.inf]])


def test_clips_far_shorter_than_the_input_are_flagged(tmp_path, capsys):
    model = saved_from_python(tmp_path)
    data = tones(tmp_path / "data")
    tiny = write_wav(data / "mid" / "tiny.wav", np.array([0.1, -0.2, 0.3]))
    code, printed, _ = run(capsys, "predict", model, tiny, data / "mid" / "mid_0.wav")
    assert code == 0
    first, second = printed.splitlines()
    assert first.endswith("(note: 3 samples, under half the model's input of 2400: "
                          "scored mostly on zero padding)")
    assert "note" not in second
    code, printed, _ = run(capsys, "evaluate", model, "--data", data)
    assert code == 0
    assert (f"Note: 1 clip shorter than half the model's input (2400 samples = 0.3 s), "
            f"scored mostly on zero padding: {tiny} (3 samples = 0.000375 s)") in printed


def test_clip_seconds_longer_than_every_clip_is_noted(tmp_path, capsys, monkeypatch):
    def stop(*args, **kwargs):
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(experiment, "train_clips", stop)
    data = tones(tmp_path / "data")
    code, printed, _ = run(capsys, "train", "--data", data, "--out", tmp_path / "run",
                           "--clip-seconds", "10", *TRAIN)
    assert code == 2
    assert ("Note: --clip-seconds 10 is longer than every training clip (the longest is "
            "0.3 s): each is zero-padded to 10 s") in printed
    code, printed, _ = run(capsys, "train", "--data", data, "--out", tmp_path / "run",
                           "--clip-seconds", "0.25", *TRAIN)
    assert "Note: --clip-seconds" not in printed
