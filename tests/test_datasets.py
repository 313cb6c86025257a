"""Tests for keras_speechmix.audio.datasets: loaders, ClipSet and splits."""

import csv
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix import audio
from keras_speechmix.audio import datasets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FSDD = DATA / "fsdd"
ESC10 = DATA / "esc10" / "meta.csv"


def write_wav(path, samples, rate=8000):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.asarray(samples, np.float32).reshape(-1, 1)
    path.write_bytes(tf.audio.encode_wav(x, rate).numpy())
    return path


def write_float_wav(path, samples, rate=8000):
    data = np.asarray(samples, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    Path(path).write_bytes(
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt "
        + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
    return Path(path)


def clip(value, n=800):
    return np.full(n, value, np.float32)


@pytest.fixture
def folder(tmp_path):
    """Two classes of three good clips, plus one corrupt and one empty file."""
    root = tmp_path / "data"
    for c, name in enumerate(["cat", "dog"]):
        for i in range(3):
            write_wav(root / name / f"{i}.wav", clip(0.1 * (c + 1), 400 + 100 * i))
    (root / "cat" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    (root / "dog" / "empty.wav").write_bytes(b"")
    (root / "dog" / "README.txt").write_text("not audio")
    return root


def test_from_folder_skips_and_reports(folder, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_speechmix.audio.datasets"):
        clips = datasets.from_folder(folder)
    assert len(clips) == 6
    assert clips.class_names == ["cat", "dog"]
    assert clips.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert clips.sample_rate == 8000
    assert clips.folds is None and clips.groups is None
    assert all(w.dtype == np.float32 and w.ndim == 1 for w in clips.waveforms)
    np.testing.assert_allclose(clips.waveforms[3], 0.2, atol=1e-4)
    report = clips.report
    assert (report.found, report.used) == (8, 6)
    skipped = dict(report.skipped)
    assert set(skipped) == {str(folder / "cat" / "corrupt.wav"), str(folder / "dog" / "empty.wav")}
    assert "could not decode as WAV" in skipped[str(folder / "cat" / "corrupt.wav")]
    assert "file is empty" in skipped[str(folder / "dog" / "empty.wav")]
    assert report.ignored == [str(folder / "dog" / "README.txt")]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 2 of 8" in warnings[0].getMessage()
    assert "2 skipped" in clips.summary()


def test_from_folder_on_error_raise_names_the_file(folder):
    with pytest.raises(audio.AudioDecodeError, match=r"corrupt\.wav"):
        datasets.from_folder(folder, on_error="raise")


def test_nan_clip_is_reported_with_its_file(tmp_path):
    for name in ("a", "b"):
        write_wav(tmp_path / name / "ok.wav", clip(0.1))
    bad = write_float_wav(tmp_path / "a" / "nan.wav", [0.0, np.nan, 0.2])
    clips = datasets.from_folder(tmp_path)
    assert len(clips) == 2
    (path, reason), = clips.report.skipped
    assert path == str(bad) and "NaN or infinite" in reason


def test_mixed_rates_need_a_sample_rate(tmp_path):
    write_wav(tmp_path / "a" / "x.wav", clip(0.1, 800), rate=8000)
    write_wav(tmp_path / "b" / "y.wav", clip(0.1, 1600), rate=16000)
    with pytest.raises(ValueError, match=r"different sample rates \(8000 Hz.*16000 Hz"):
        datasets.from_folder(tmp_path)
    clips = datasets.from_folder(tmp_path, sample_rate=16000)
    assert clips.sample_rate == 16000
    assert [len(w) for w in clips.waveforms] == [1600, 1600]


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        datasets.load(tmp_path / "nowhere")
    write_wav(tmp_path / "only" / "a.wav", clip(0.1))
    with pytest.raises(ValueError, match="only one class"):
        datasets.load(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "bad.wav").write_bytes(b"xx")
    with pytest.raises(ValueError, match="only one class"):
        datasets.from_folder(tmp_path)
    (tmp_path / "only" / "a.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no usable audio files \(2 found, 2 skipped"):
        datasets.from_folder(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(ValueError, match="expected a folder"):
        datasets.load(notes)
    with pytest.raises(ValueError, match="on_error"):
        datasets.from_folder(tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="no class subfolders"):
        datasets.from_folder(tmp_path / "only")


def test_from_csv_with_folds_groups_and_missing_rows(tmp_path):
    for i in range(4):
        write_wav(tmp_path / "audio" / f"{i}.wav", clip(0.1 * (i + 1)))
    absolute = write_wav(tmp_path / "elsewhere" / "abs.wav", clip(0.5))
    rows = [
        ("audio/0.wav", "yes", 1, "ann"),
        ("audio/1.wav", "no", 1, "bob"),
        ("audio/2.wav", "yes", 2, "ann"),
        ("audio/3.wav", "no", 2, "bob"),
        (str(absolute), "no", 3, "cy"),
        ("audio/missing.wav", "yes", 3, "cy"),
    ]
    meta = tmp_path / "meta.csv"
    with open(meta, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "fold", "speaker"])
        writer.writerows(rows)
    clips = datasets.load(meta)
    assert len(clips) == 5
    assert clips.class_names == ["no", "yes"]
    assert clips.labels.tolist() == [1, 0, 1, 0, 0]
    assert clips.folds.tolist() == [1, 1, 2, 2, 3]
    assert clips.groups == ["ann", "bob", "ann", "bob", "cy"]
    (path, reason), = clips.report.skipped
    assert path.endswith("missing.wav") and "not found" in reason
    train, test = datasets.split_by_fold(clips, 2)
    assert (len(train), len(test)) == (3, 2)
    train, test = datasets.split_by_fold(clips, [3], train_folds=[1])
    assert (len(train), len(test)) == (2, 1)
    with pytest.raises(ValueError, match=r"unknown fold\(s\) \[4\]; the folds are \[1, 2, 3\]"):
        datasets.split_by_fold(clips, 4)


def test_from_csv_column_errors(tmp_path):
    meta = tmp_path / "m.csv"
    meta.write_text("file_name,kind\na.wav,x\n")
    with pytest.raises(ValueError, match=r"needs a 'path' column.*file_name"):
        datasets.from_csv(meta)
    meta.write_text("path,label,fold\na.wav,x,first\n")
    with pytest.raises(ValueError, match=r"line 2: fold 'first' is not an integer"):
        datasets.from_csv(meta)


def test_esc_style_csv_keeps_target_order(tmp_path):
    for i in range(4):
        write_wav(tmp_path / f"{i}.wav", clip(0.1))
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "path,fold,target,category\n0.wav,1,1,dog\n1.wav,1,0,rooster\n"
        "2.wav,2,1,dog\n3.wav,2,0,rooster\n"
    )
    clips = datasets.from_csv(meta)
    assert clips.class_names == ["rooster", "dog"]
    assert clips.labels.tolist() == [1, 0, 1, 0]


def make_clipset(n_per_class=5, groups=("ann", "bob", "cy", "dee", "eve")):
    waves, labels, group = [], [], []
    for label in range(3):
        for i in range(n_per_class):
            waves.append(np.arange(100 + 10 * i, dtype=np.float32))
            labels.append(label)
            group.append(groups[i % len(groups)])
    return datasets.ClipSet(
        waves, labels, ["a", "b", "c"], 8000, groups=group,
        meta={"index": [i for _ in range(3) for i in range(n_per_class)]},
    )  # fmt: skip


def test_clipset_subset_and_validation():
    clips = make_clipset()
    sub = clips.subset([0, 5, 14])
    assert sub.labels.tolist() == [0, 1, 2]
    assert sub.groups == ["ann", "ann", "eve"]
    assert sub.meta["index"].tolist() == [0, 0, 4]
    assert sub.class_names == clips.class_names
    assert len(clips.subset(clips.labels == 1)) == 5
    with pytest.raises(ValueError, match="labels has 1 entries for 2 waveforms"):
        datasets.ClipSet([np.zeros(3)] * 2, [0], ["a"], 8000)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        datasets.ClipSet([np.zeros(3)], [1], ["a"], 8000)
    with pytest.raises(ValueError, match="must be 1-D"):
        datasets.ClipSet([np.zeros((3, 2))], [0], ["a"], 8000)


def test_trim_silence_cuts_edges_and_keeps_silent_clips(caplog):
    waves = [np.array([0, 0, 0.5, 0, -0.25, 0], "float32"),
             np.zeros(4, "float32"),
             np.array([0.01, 0.5, 0.01], "float32")]
    clips = datasets.ClipSet(waves, [0, 1, 0], ["a", "b"], 8000, folds=[1, 2, 3],
                             groups=["x", "y", "z"], meta={"index": [5, 6, 7]})
    with caplog.at_level(logging.WARNING, logger="keras_speechmix.audio.datasets"):
        trimmed = clips.trim_silence()
    assert trimmed.waveforms[0].tolist() == [0.5, 0.0, -0.25]  # inner zeros stay
    assert trimmed.waveforms[1].tolist() == [0.0] * 4  # silent: kept, not dropped
    assert trimmed.waveforms[2].tolist() == waves[2].tolist()
    assert "1 of 3 clips are silent throughout" in caplog.text and "clip1" in caplog.text
    assert trimmed.folds.tolist() == [1, 2, 3] and trimmed.groups == ["x", "y", "z"]
    assert trimmed.meta["index"].tolist() == [5, 6, 7] and trimmed.labels.tolist() == [0, 1, 0]
    assert clips.waveforms[0].size == 6  # the original set is unchanged
    assert clips.trim_silence(threshold=0.1).waveforms[2].tolist() == [0.5]
    with pytest.raises(ValueError, match="threshold must be a number >= 0"):
        clips.trim_silence(threshold=-1)


def test_to_dataset_centre_and_random_crops():
    clips = make_clipset()
    ds = clips.to_dataset(120)
    assert ds.element_spec[0].shape == (120,) and ds.element_spec[1].dtype == tf.int32
    items = list(ds)
    assert len(items) == 15
    first = items[0][0].numpy()  # 100 samples centred in 120
    assert first[:10].sum() == 0 and first[10] == 0 and first[11] == 1 and first[-10:].sum() == 0
    longest = items[4][0].numpy()  # 140 samples, centre crop
    np.testing.assert_array_equal(longest, np.arange(10, 130))

    train = clips.to_dataset(50, training=True, seed=3)
    epoch1 = [x.numpy() for x, _ in train]
    epoch2 = [x.numpy() for x, _ in train]
    assert all(np.all(np.diff(x) == 1) for x in epoch1)  # contiguous crops
    assert any(not np.array_equal(a, b) for a, b in zip(epoch1, epoch2))
    again = [x.numpy() for x, _ in clips.to_dataset(50, training=True, seed=3)]
    np.testing.assert_array_equal(epoch1, again)


def test_splits():
    clips = make_clipset()
    train, test = datasets.split_by_group(clips, ["bob", "cy"])
    assert set(test.groups) == {"bob", "cy"} and "bob" not in train.groups
    assert len(train) + len(test) == len(clips)
    with pytest.raises(ValueError, match=r"unknown group\(s\) \['zed'\]"):
        datasets.split_by_group(clips, "zed")
    with pytest.raises(ValueError, match="test set empty|train set empty"):
        datasets.split_by_group(clips, ["ann", "bob", "cy", "dee", "eve"])
    train, test = datasets.stratified_split(clips, test_fraction=0.4, seed=1)
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    assert not set(train.paths) & set(test.paths)
    again = datasets.stratified_split(clips, test_fraction=0.4, seed=1)[1]
    assert [w.size for w in again.waveforms] == [w.size for w in test.waveforms]
    with pytest.raises(ValueError, match="train set empty"):
        datasets.fsdd_official_split(clips)  # every recording index is < 5
    train, test = datasets.fsdd_official_split(make_clipset(n_per_class=7))
    assert (len(train), len(test)) == (6, 15)
    with pytest.raises(ValueError, match="no recording index"):
        datasets.fsdd_official_split(datasets.ClipSet([np.zeros(3)], [0], ["a"], 8000))
    with pytest.raises(ValueError, match="no folds"):
        datasets.split_by_fold(clips, 1)


def test_fsdd_loader_on_a_tiny_folder(tmp_path):
    rec = tmp_path / "recordings"
    for digit in range(3):
        for speaker in ("ann", "bob_x"):
            for index in (0, 7):
                write_wav(rec / f"{digit}_{speaker}_{index}.wav", clip(0.1 * digit + 0.05))
    write_wav(rec / "stray.wav", clip(0.1))
    clips = datasets.load(f"fsdd:{tmp_path}")
    assert len(clips) == 12 and clips.class_names == ["0", "1", "2"]
    assert sorted(set(clips.groups)) == ["ann", "bob_x"]
    assert sorted(set(clips.meta["index"].tolist())) == [0, 7]
    (path, reason), = clips.report.skipped
    assert path.endswith("stray.wav") and "does not match" in reason
    train, test = datasets.fsdd_official_split(clips)
    assert (len(train), len(test)) == (6, 6) and set(test.meta["index"]) == {0}
    assert len(datasets.fsdd(rec)) == 12  # the recordings folder itself


@pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD not found at {FSDD}")
def test_real_fsdd():
    clips = datasets.fsdd(FSDD)
    assert len(clips) == 3000 and clips.report.skipped == []
    assert clips.class_names == [str(d) for d in range(10)]
    assert clips.sample_rate == 8000
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert sorted(set(clips.groups)) == speakers
    assert np.bincount(clips.labels).tolist() == [300] * 10
    train, test = datasets.fsdd_official_split(clips)
    assert (len(train), len(test)) == (2700, 300)
    train, test = datasets.split_by_group(clips, "theo")
    assert (len(train), len(test)) == (2500, 500) and set(test.groups) == {"theo"}


@pytest.mark.skipif(not ESC10.is_file(), reason=f"ESC-10 not found at {ESC10}")
def test_real_esc10(tmp_path):
    clips = datasets.from_csv(ESC10)  # native 44.1 kHz: decoding only, no resampling
    assert len(clips) == 240 and clips.report.skipped == []
    assert clips.sample_rate == 44100
    assert len(clips.class_names) == 10 and clips.class_names[0] == "dog"
    assert set(clips.folds.tolist()) == {1, 2, 3}
    assert np.bincount(clips.labels).tolist() == [24] * 10
    durations = clips.durations()
    assert np.median(durations) == pytest.approx(5.0, abs=0.05)
    assert all(np.abs(w).max() > 0 for w in clips.waveforms)
    # Resampling path on a few rows (44.1 kHz -> 16 kHz is the slow part).
    with open(ESC10, newline="") as f:
        rows = list(csv.DictReader(f))
    subset = [r for r in rows if r["path"].endswith("-A.ogg")][::40][:6]
    small = tmp_path / "few.csv"
    with open(small, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(subset)
    few = datasets.from_csv(small, root=ESC10.parent, sample_rate=16000)
    assert few.sample_rate == 16000 and len(few) == len(subset)
    for w, path in zip(few.waveforms, few.paths):
        native = clips.waveforms[clips.paths.index(path)]
        assert len(w) == int(np.ceil(len(native) * 16000 / 44100))


def test_natural_order_of_class_names(tmp_path):
    assert datasets.natural_order(["two", "Ten", "zero", "nine"]) == [
        "zero", "two", "nine", "Ten"]
    assert datasets.natural_order(["class10", "class2", "b", "A"]) == [
        "A", "b", "class2", "class10"]
    for name in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                 "eight", "nine"):
        write_wav(tmp_path / "digits" / name / "a.wav", clip(0.1))
    clips = datasets.from_folder(tmp_path / "digits")
    assert clips.class_names[:3] == ["zero", "one", "two"]
    assert clips.class_names[-1] == "nine"


def test_validation_split_keeps_groups_together():
    # Speakers spanning every class: whole speakers are held out.
    clips = make_clipset()
    train, val = datasets.validation_split(clips, 0.2, seed=3)
    assert set(val.groups).isdisjoint(train.groups)
    assert len(val) + len(train) == len(clips) and len(val) > 0
    # Groups inside a class (clips cut from one recording): stratified by class.
    waves = [np.zeros(10, "float32")] * 12
    labels = [0] * 6 + [1] * 6
    groups = ["r1", "r1", "r2", "r3", "r4", "r5", "r6", "r6", "r7", "r8", "r9", "r10"]
    clips = datasets.ClipSet(waves, labels, ["a", "b"], 8000, groups=groups)
    train, val = datasets.validation_split(clips, 0.34, seed=0)
    assert set(val.groups).isdisjoint(train.groups)
    assert np.bincount(val.labels, minlength=2).tolist() == [2, 2]
    # No groups: a stratified split.
    plain = datasets.ClipSet(waves, labels, ["a", "b"], 8000)
    assert np.bincount(datasets.validation_split(plain, 0.34)[1].labels).tolist() == [2, 2]
    with pytest.raises(ValueError, match="fraction"):
        datasets.validation_split(plain, 1.5)


def test_esc_file_names_give_source_groups(tmp_path):
    for name in ("1-100-A", "1-100-B", "2-200-A"):
        write_wav(tmp_path / f"{name}.ogg.wav", clip(0.1))
    (tmp_path / "meta.csv").write_text(
        "path,fold,target,category\n1-100-A.ogg.wav,1,0,dog\n1-100-B.ogg.wav,1,0,dog\n"
        "2-200-A.ogg.wav,2,1,rain\n")
    clips = datasets.from_csv(tmp_path / "meta.csv")
    assert clips.groups is None  # ".ogg.wav" stems are not ESC names
    for name in ("1-100-A", "1-100-B", "2-200-A"):
        (tmp_path / f"{name}.ogg.wav").rename(tmp_path / f"{name}.wav")
    (tmp_path / "meta.csv").write_text(
        "path,fold,target,category\n1-100-A.wav,1,0,dog\n1-100-B.wav,1,0,dog\n"
        "2-200-A.wav,2,1,rain\n")
    clips = datasets.from_csv(tmp_path / "meta.csv")
    assert clips.groups == ["100", "100", "200"]


def test_skipped_csv_reasons_do_not_repeat_the_path(tmp_path):
    target = tmp_path / "skipped.csv"
    datasets.write_skipped(target, [("a b.wav", "a b.wav: file is empty (0 bytes)"),
                                    ("c.wav", "not audio")])
    assert target.read_text().splitlines() == [
        "path,reason", "a b.wav,file is empty (0 bytes)", "c.wav,not audio"]


def test_to_dataset_sound_crops_carry_the_event():
    wave = np.zeros(4000, "float32")
    wave[3000:3400] = 0.5
    clips = datasets.ClipSet([wave] * 30, [0, 1] * 15, ["a", "b"], 8000)

    def with_sound(**kwargs):
        ds = clips.to_dataset(400, training=True, seed=0, **kwargs)
        return sum(bool(np.any(x.numpy())) for x, _ in ds)

    assert with_sound(sound_crops=20.0) > with_sound() + 5
