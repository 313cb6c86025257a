"""Training crops read by seeking (issue 29): only the frames a crop needs are
decoded, and the crops are those of the whole-clip path (`seek=False`): the
same positions for the same seeds, the same samples to the resampler's
round-off, the same silence trimming, the same skipped files."""

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from keras_speechmix.audio import datasets, decode, segments, streaming
from tests.test_datasets import write_wav

# Resampled crops match the whole clip's to float round-off (measured ~5e-7
# on unit-scale noise); a crop one sample off would differ by ~0.1 here.
TOLERANCE = 1e-5


def noise_files(root, rate, fmt="WAV", subtype=None, count=6, seconds=0.6, silence=0):
    """`count` noise clips in two class folders, with `silence` zeros around."""
    rng = np.random.default_rng(0)
    suffix = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}[fmt]
    for i in range(count):
        sound = 0.3 * rng.standard_normal(int(rate * seconds * (1 + i / count)))
        sound = np.concatenate([np.zeros(silence * (i + 1)), sound, np.zeros(silence)])
        path = root / f"c{i % 2}" / f"{i}.{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, sound.astype(np.float32), rate, format=fmt, subtype=subtype)
    return root


def crops(files, length, seed=3, epochs=2, **kwargs):
    """Every crop of `epochs` passes over one dataset, stacked, and the labels."""
    data = files.to_dataset(length, training=True, seed=seed, **kwargs)
    out = [(x.numpy(), int(y)) for _ in range(epochs) for x, y in data]
    return np.stack([x for x, _ in out]), [y for _, y in out]


@pytest.mark.parametrize("fmt, subtype, rate_in, rate", [
    ("WAV", "FLOAT", 8000, 8000),      # no resampling: exactly equal
    ("WAV", "PCM_16", 8000, 16000),    # upsampled
    ("FLAC", None, 44100, 16000),      # the ESC case, lossless
    ("OGG", "VORBIS", 44100, 16000),   # the ESC case
    ("WAV", "FLOAT", 48000, 44100),
])
def test_seeking_gives_the_whole_clip_crops(tmp_path, fmt, subtype, rate_in, rate):
    root = noise_files(tmp_path / "data", rate_in, fmt, subtype)
    files = streaming.list_files(root, sample_rate=rate)
    length = int(0.5 * rate)
    seek, seek_labels = crops(files, length)
    whole, whole_labels = crops(files, length, seek=False)
    assert seek_labels == whole_labels and len(seek) == 12
    if rate == rate_in:
        np.testing.assert_array_equal(seek, whole)
    np.testing.assert_allclose(seek, whole, rtol=0, atol=TOLERANCE)
    assert np.abs(whole).mean() > 0.05  # noise throughout: a shifted crop would not pass
    assert len(files.spans) == 6  # one header read per file, kept


def test_seeking_keeps_the_silence_trimming(tmp_path):
    root = noise_files(tmp_path / "data", 44100, "FLAC", silence=3000)
    files = streaming.list_files(root, sample_rate=16000).trim_silence()
    seek, _ = crops(files, 9000, epochs=3)
    whole, _ = crops(files, 9000, epochs=3, seek=False)
    np.testing.assert_allclose(seek, whole, rtol=0, atol=TOLERANCE)
    # The two ints kept per file are `trim_wave`'s cut of the whole clip.
    for path in files.paths:
        clip, _ = decode.load_audio(path, 16000)
        _, _, first, n = files.spans._known[(path, 16000, 0.0)]
        np.testing.assert_array_equal(clip[first:first + n], datasets.trim_wave(clip))
        assert 0 < first and first + n < len(clip)


def test_short_clips_are_placed_in_silence_as_fix_length_places_them(tmp_path):
    root = noise_files(tmp_path / "data", 8000, "WAV", "FLOAT", seconds=0.1)
    files = streaming.list_files(root, sample_rate=16000)
    seek, _ = crops(files, 4000, epochs=3)
    whole, _ = crops(files, 4000, epochs=3, seek=False)
    np.testing.assert_allclose(seek, whole, rtol=0, atol=TOLERANCE)
    leading = [int(np.argmax(x != 0)) for x in seek]
    assert len(set(leading)) > 5  # placed at random offsets, not all at 0


def test_crop_starts_are_uniform_and_the_whole_clip_paths(tmp_path):
    """A ramp holds its sample index: each crop's first value says where it
    starts. 400 crops of one file (listed 400 times), each with its seed."""
    n, length = 2000, 500
    path = tmp_path / "ramp.wav"
    soundfile.write(path, (np.arange(n) + 1) / 2**20, 8000, subtype="FLOAT")
    files = streaming.FileSet([str(path)] * 400, [0, 1] * 200, ["a", "b"], 8000)
    starts = np.rint(crops(files, length, epochs=1)[0][:, 0] * 2**20).astype(int) - 1
    whole = np.rint(crops(files, length, epochs=1, seek=False)[0][:, 0] * 2**20) - 1
    np.testing.assert_array_equal(starts, whole.astype(int))
    assert starts.min() >= 0 and starts.max() <= n - length
    # Uniform over the 1,501 offsets: chi-square over 10 equal bins (9 degrees
    # of freedom; 27.9 is its 0.1 % point).
    counts = np.histogram(starts, bins=10, range=(0, n - length + 1))[0]
    chi2 = float(((counts - 40.0) ** 2 / 40.0).sum())
    assert chi2 < 27.9, (counts, chi2)


def test_an_epoch_variable_gives_the_same_crops(tmp_path):
    root = noise_files(tmp_path / "data", 44100, "OGG", "VORBIS", count=4)
    files = streaming.list_files(root, sample_rate=16000)
    epoch = tf.Variable(0, dtype=tf.int64)
    got = {}
    for seek in (True, False):
        data = files.to_dataset(6000, training=True, seed=1, epoch=epoch, seek=seek)
        rows = []
        for e in range(2):
            epoch.assign(e)
            rows += [x.numpy() for x, _ in data]
        got[seek] = np.stack(rows)
    np.testing.assert_allclose(got[True], got[False], rtol=0, atol=TOLERANCE)
    assert not np.allclose(got[True][:4], got[True][4:])  # epochs differ


def test_headers_are_read_once_and_trimmed_files_decoded_once(tmp_path, monkeypatch):
    root = noise_files(tmp_path / "data", 44100, "FLAC", count=4, silence=500)
    files = streaming.list_files(root, sample_rate=16000).trim_silence()
    calls = {"info": 0, "whole": 0}
    info, load = soundfile.info, decode.load_audio

    def counted_info(*args, **kwargs):
        calls["info"] += 1
        return info(*args, **kwargs)

    def counted_load(*args, **kwargs):
        calls["whole"] += 1
        return load(*args, **kwargs)

    monkeypatch.setattr(segments.soundfile, "info", counted_info)
    monkeypatch.setattr(streaming.audio, "load_audio", counted_load)
    crops(files, 4000, epochs=3)
    assert calls == {"info": 4, "whole": 4}
    # Four ints per file, whatever the clip's length: memory flat in the files.
    subset = files.subset([0, 1])
    assert subset.spans is files.spans
    assert all(len(v) == 4 and all(isinstance(i, int) for i in v)
               for v in files.spans._known.values())


def test_bad_files_are_skipped_with_the_same_reasons(tmp_path):
    root = noise_files(tmp_path / "data", 8000, "WAV", "PCM_16")
    (root / "c0" / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    (root / "c1" / "empty.wav").write_bytes(b"")
    # A WAV whose header promises more samples than the file holds.
    good = (root / "c0" / "0.wav").read_bytes()
    (root / "c1" / "cut.wav").write_bytes(good[:len(good) // 2])
    logs = {}
    for seek in (True, False):
        files = streaming.list_files(root, sample_rate=16000)
        assert len(crops(files, 4000, epochs=1, seek=seek)[0]) == 6
        logs[seek] = files.skips
    assert logs[True].skipped == logs[False].skipped
    assert len(logs[True].skipped) == 3 and logs[True].reads == logs[False].reads == 9
    assert "truncated" in logs[True].skipped[str(root / "c1" / "cut.wav")]


def test_a_file_cut_after_its_header_was_read_is_skipped(tmp_path):
    root = noise_files(tmp_path / "data", 8000, "WAV", "FLOAT", count=2)
    files = streaming.list_files(root, sample_rate=8000)
    crops(files, 2000, epochs=1)
    soundfile.write(root / "c0" / "0.wav", np.zeros(10, np.float32), 8000, subtype="FLOAT")
    assert len(crops(files, 2000, epochs=1)[0]) == 1
    assert "truncated" in files.skips.skipped[str(root / "c0" / "0.wav")]


def test_mp3_and_opus_are_decoded_whole(tmp_path):
    sound = 0.3 * np.random.default_rng(1).standard_normal(48000).astype(np.float32)
    soundfile.write(tmp_path / "a.ogg", sound, 48000, format="OGG", subtype="OPUS")
    assert not segments.read_header(tmp_path / "a.ogg").seekable
    soundfile.write(tmp_path / "a.mp3", sound, 44100, format="MP3")
    assert not segments.read_header(tmp_path / "a.mp3").seekable
    files = streaming.FileSet([str(tmp_path / "a.mp3")] * 3, [0, 1, 0], ["a", "b"], 16000)
    np.testing.assert_array_equal(crops(files, 8000)[0], crops(files, 8000, seek=False)[0])
    assert len(files.spans) == 0  # nothing to remember: read whole each time


def test_cached_arrays_are_read_through_a_memory_map(tmp_path):
    root = noise_files(tmp_path / "data", 44100, "OGG", "VORBIS", count=4)
    files = streaming.list_files(root, sample_rate=16000).trim_silence()
    cached = files.cached(tmp_path / "cache")
    np.testing.assert_array_equal(crops(cached, 5000)[0], crops(cached, 5000, seek=False)[0])
    assert len(cached.spans) == 4


def test_read_segment_matches_the_whole_decode(tmp_path):
    rng = np.random.default_rng(2)
    for rate_in, rate in ((44100, 16000), (8000, 16000), (22050, 16000), (16000, 8000)):
        path = tmp_path / f"{rate_in}.flac"
        soundfile.write(path, 0.4 * rng.standard_normal((rate_in * 2, 2)), rate_in)
        whole, _ = decode.load_audio(path, rate)  # channels averaged, as here
        head = segments.read_header(path)
        assert segments.resampled_length(head.frames, head.rate, rate) == len(whole)
        for start in (0, 1, 777, len(whole) // 2, len(whole) - 300):
            part = segments.read_segment(path, head, rate, start, 300)
            np.testing.assert_allclose(part, whole[start:start + 300], rtol=0, atol=TOLERANCE)
        with pytest.raises(ValueError, match="lie outside"):
            segments.read_segment(path, head, rate, len(whole) - 10, 11)


def test_real_esc10_crops_match(shared_data):
    meta = shared_data / "esc10" / "meta.csv"
    if not meta.is_file():
        pytest.skip(f"{meta} is absent")
    files = streaming.list_files(meta, sample_rate=16000).trim_silence()
    files = files.subset(np.arange(0, len(files), len(files) // 5)[:5])
    seek, _ = crops(files, 16000, epochs=2)
    whole, _ = crops(files, 16000, epochs=2, seek=False)
    np.testing.assert_allclose(seek, whole, rtol=0, atol=TOLERANCE)
    assert np.abs(whole).max() > 0.05
