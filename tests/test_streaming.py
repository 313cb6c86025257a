"""Tests for keras_speechmix.audio.streaming: files read as training goes."""

import keras
import numpy as np
import pytest
import soundfile

from keras_speechmix import HiddenMixup, SpeechMix, partner_batches
from keras_speechmix.audio import datasets, streaming
from keras_speechmix.training.experiment import predict_clips
from tests.test_datasets import clip, write_wav


@pytest.fixture
def folder(tmp_path):
    """Two classes of ten clips of different lengths, and two bad files."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog"]):
        for i in range(10):
            write_wav(root / name / f"{i:02d}.wav",
                      rng.uniform(-0.5, 0.5, 300 + 37 * i) + 0.1 * c)
    (root / "cat" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    (root / "dog" / "empty.wav").write_bytes(b"")
    return root


def elements(data):
    return [(x.numpy(), np.asarray(y)) for x, y in data]


def test_stream_matches_the_in_memory_set_and_counts_skips(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    assert len(files) == 22 and files.class_names == ["cat", "dog"]
    clips = datasets.from_folder(folder)
    streamed = elements(files.to_dataset(500))
    held = elements(clips.to_dataset(500))
    assert len(streamed) == len(held) == 20
    for (a, ya), (b, yb) in zip(streamed, held):
        np.testing.assert_array_equal(a, b)
        assert ya == yb
    assert sorted(p.rsplit("/", 1)[-1] for p in files.skips.skipped) == [
        "corrupt.wav", "empty.wav"]
    assert files.skips.reads == 22 and files.skips.failed_reads == 2
    assert "empty" in files.skips.skipped[str(folder / "dog" / "empty.wav")]


def test_seeded_stream_repeats_and_reshuffles_each_epoch(folder):
    files = streaming.list_files(folder, sample_rate=8000)

    def two_epochs():
        data = files.to_dataset(400, training=True, seed=5)
        return [np.stack([x for x, _ in elements(data)]) for _ in range(2)]

    first, second = two_epochs(), two_epochs()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])
    other = np.stack([x for x, _ in elements(files.to_dataset(400, training=True, seed=6))])
    assert not np.array_equal(first[0], other)


def test_skip_guard_stops_a_run_past_its_limit(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    list(files.to_dataset(400))  # 2 of 22 reads fail: 9 %
    with pytest.raises(streaming.TooManySkipsError, match=r"2 of 22 file reads failed"):
        streaming.SkipGuard(files.skips, max_fraction=0.05).on_epoch_end(0)
    streaming.SkipGuard(files.skips, max_fraction=0.10).on_epoch_end(0)
    # Before min_reads, one bad file does not stop the run.
    log = streaming.SkipLog()
    log.record("bad.wav", "corrupt")
    streaming.SkipGuard(log, 0.05, min_reads=100).on_train_batch_end(0)
    with pytest.raises(streaming.TooManySkipsError, match="bad.wav: corrupt"):
        streaming.SkipGuard(log, 0.05, min_reads=1).on_train_batch_end(0)


def test_skip_guard_stops_fit(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    model = keras.Sequential([keras.Input((400,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = files.to_dataset(400, training=True, seed=0).batch(4)
    with pytest.raises(streaming.TooManySkipsError):
        model.fit(data, epochs=2, verbose=0,
                  callbacks=[streaming.SkipGuard(files.skips, 0.05)])


def test_skipped_files_are_written_out(folder, tmp_path):
    files = streaming.list_files(folder, sample_rate=8000)
    list(files.to_dataset(400))
    files.skips.write_csv(tmp_path / "skipped.csv")
    rows = (tmp_path / "skipped.csv").read_text().splitlines()
    assert rows[0] == "path,reason" and len(rows) == 3


def test_shards_split_the_files(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    shards = [files.shard(3, i) for i in range(3)]
    paths = [p for s in shards for p in s.paths]
    assert sorted(paths) == sorted(files.paths) and len(set(paths)) == len(paths)
    assert all(s.skips is files.skips for s in shards)
    with pytest.raises(ValueError, match="shard index"):
        files.shard(2, 2)


def test_predict_files_matches_predict_clips(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    clips = datasets.from_folder(folder)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((450,)), keras.layers.Dense(2, activation="softmax")])
    probabilities, labels = streaming.predict_files(model, files, 450, crops=3, batch_size=7)
    np.testing.assert_allclose(probabilities, predict_clips(model, clips.waveforms, 450, 3),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, clips.labels)


def test_estimated_bytes_reads_wav_headers(folder):
    files = streaming.list_files(folder, sample_rate=16000)
    good = files.subset([not p.endswith(("corrupt.wav", "empty.wav")) for p in files.paths])
    samples = sum(300 + 37 * i for i in range(10)) * 2
    assert good.estimated_bytes() == samples * 2 * 4  # 8 -> 16 kHz, float32


def write_multilabel(tmp_path):
    rows = ["path,labels"]
    for i, tags in enumerate(["Bark,Dog", "Rain", "Dog", "Rain,Thunder"] * 4):
        write_wav(tmp_path / f"{i}.wav", clip(0.1 * (i % 4 + 1), 400))
        rows.append(f'{i}.wav,"{tags}"')
    (tmp_path / "tags.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "tags.csv"


def test_multilabel_csv_streams_multi_hot_labels_that_mix(tmp_path):
    path = write_multilabel(tmp_path)
    files = streaming.list_files(path, sample_rate=8000)
    assert files.multi_label and files.class_names == ["Bark", "Dog", "Rain", "Thunder"]
    np.testing.assert_array_equal(files.labels[0], [1, 1, 0, 0])
    with pytest.raises(ValueError, match="multi-label.*--stream"):
        datasets.from_csv(path)
    batches = partner_batches(files.to_dataset(400, training=True, seed=0), 8,
                              num_classes=4, mix_points=2, seed=0)
    (x, plan), y = next(iter(batches))
    # Clip i is a constant 0.1 * (i % 4 + 1): its level names its tags.
    own = files.labels[np.rint(x.numpy()[:, 0] * 10).astype(int) - 1]
    r = plan["ratio"].numpy()[:, None]
    expected = r * own + (1 - r) * own[plan["partner"].numpy()]
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    assert (r < 1).any()


def test_stream_trains_with_speechmix(folder):
    files = streaming.list_files(folder, sample_rate=8000)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((400,)), HiddenMixup(),
                              keras.layers.Dense(16, activation="relu"), HiddenMixup(),
                              keras.layers.Dense(2, activation="softmax")])
    view = SpeechMix(model)
    view.compile("adam", "categorical_crossentropy")
    batches = partner_batches(files.to_dataset(400, training=True, seed=0), 4,
                              num_classes=2, mix_points=2, seed=0)
    history = view.fit(batches, epochs=2, verbose=0).history["loss"]
    assert len(history) == 2 and np.isfinite(history).all()


def test_missing_decoder_is_named_before_reading(tmp_path, monkeypatch):
    write_wav(tmp_path / "a" / "x.wav", clip(0.1))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.ogg").write_bytes(b"OggS")
    files = streaming.list_files(tmp_path, sample_rate=8000)
    without_ogg = {k: v for k, v in soundfile.available_formats().items() if k != "OGG"}
    monkeypatch.setattr(soundfile, "available_formats", lambda: without_ogg)
    with pytest.raises(ImportError, match=r"\.ogg files needs a libsndfile with OGG"):
        files.to_dataset(400)


def test_file_set_checks_its_arguments():
    with pytest.raises(ValueError, match="labels has 1 entries for 2 paths"):
        streaming.FileSet(["a", "b"], [0], ["x", "y"], 8000)
    with pytest.raises(ValueError, match="sample_rate"):
        streaming.FileSet(["a"], [0], ["x", "y"], 0)
    with pytest.raises(ValueError, match="length must be a positive int"):
        streaming.FileSet(["a"], [0], ["x", "y"], 8000).to_dataset(0)
    with pytest.raises(FileNotFoundError, match="Dataset not found"):
        streaming.list_files("/no/such/folder", 8000)


def test_cached_files_read_back_exactly_and_are_reused(folder, tmp_path):
    files = streaming.list_files(folder, sample_rate=16000)  # resampled 8 -> 16 kHz
    cached = files.cached(tmp_path / "cache")
    assert len(cached) == len(files) and cached.skips is files.skips
    assert len(files.skips.skipped) == 2  # the bad files, recorded once
    assert sum(p.startswith(str(tmp_path / "cache")) for p in cached.paths) == 20
    for (a, ya), (b, yb) in zip(elements(files.to_dataset(700)),
                                elements(cached.to_dataset(700))):
        np.testing.assert_array_equal(a, b)
        assert ya == yb
    made = sorted((tmp_path / "cache").iterdir())
    stamps = [p.stat().st_mtime_ns for p in made]
    again = files.cached(tmp_path / "cache")
    assert again.paths == cached.paths
    assert [p.stat().st_mtime_ns for p in made] == stamps  # reused, not rewritten


def test_trimmed_stream_matches_the_trimmed_clip_set(tmp_path):
    for i in range(4):
        sound = np.concatenate([np.zeros(100 * i), clip(0.2 + 0.1 * i, 300), np.zeros(50)])
        write_wav(tmp_path / "data" / f"c{i % 2}" / f"{i}.wav", sound)
    files = streaming.list_files(tmp_path / "data", 8000).trim_silence()
    held = datasets.from_folder(tmp_path / "data").trim_silence()
    expected = [w for w, _ in zip(held.waveforms, held.labels)]
    got = [w.numpy() for w, _ in files.read()]
    cached = [w.numpy() for w, _ in files.cached(tmp_path / "cache").read()]
    for a, b, c in zip(got, cached, expected):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    assert all(len(w) <= 301 for w in got)  # the zeros are gone


def test_the_skip_error_names_each_path_once_and_lists_what_it_counts(folder):
    # Issue 19: decoder reasons start with the path, which the error repeated;
    # and "N files skipped, first: ..." listed a fixed three whatever N was.
    files = streaming.list_files(folder, sample_rate=8000)
    list(files.to_dataset(400))
    with pytest.raises(streaming.TooManySkipsError) as error:
        files.skips.check(0.05)
    message = str(error.value)
    for name in ("corrupt.wav", "empty.wav"):
        assert message.count(str(folder / ("cat" if name == "corrupt.wav" else "dog") / name)) == 1
    assert "2 files skipped: " in message
    log = streaming.SkipLog()
    for i in range(5):
        log.record(f"bad{i}.wav", f"bad{i}.wav: corrupt")
    with pytest.raises(streaming.TooManySkipsError, match=r"5 files skipped, the first 3: "
                       r"bad0.wav: corrupt; bad1.wav: corrupt; bad2.wav: corrupt\."):
        log.check(0.05)


def test_reading_a_stream_prints_no_autograph_warning(folder):
    # Issue 19: two lambdas on one line made autograph warn that it "could
    # not parse the source code of FileSet.read.<locals>.<lambda>".
    import logging

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger("tensorflow").addHandler(handler)
    try:
        files = streaming.list_files(folder, sample_rate=8000)
        assert len(elements(files.to_dataset(400, training=True, seed=0))) == 20
        assert len(elements(files.to_dataset(400))) == 20
    finally:
        logging.getLogger("tensorflow").removeHandler(handler)
    assert not [r for r in records if "AutoGraph" in r], records


def test_stream_sound_crops_carry_the_event(tmp_path):
    """The same crop rule as `ClipSet.to_dataset(sound_crops=...)`."""
    wave = np.zeros(4000)
    wave[3000:3400] = 0.5  # a short event in a long silence
    for i in range(30):
        write_wav(tmp_path / "data" / ["a", "b"][i % 2] / f"{i:02d}.wav", wave)
    files = streaming.list_files(tmp_path / "data", sample_rate=8000)

    def with_sound(**kwargs):
        data = files.to_dataset(400, training=True, seed=0, **kwargs)
        return sum(bool(np.any(x)) for x, _ in elements(data))

    assert with_sound(sound_crops=20.0) > with_sound() + 5
