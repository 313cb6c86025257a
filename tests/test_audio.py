"""Tests for keras_speechmix.audio: decoding, loading and waveform utilities."""

import io
import struct
import types
import wave

import numpy as np
import pytest
import tensorflow as tf

from keras_speechmix import audio

needs_tfio = pytest.mark.skipif(not audio.HAVE_TFIO, reason="tensorflow-io not installed")

RATE = 16000
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)


def pcm_wav(x, sample_width, rate=RATE, channels=1):
    """WAV bytes at 8/16/24/32-bit PCM written with the standard library."""
    x = np.asarray(x, np.float32).reshape(len(x), channels)
    if sample_width == 1:
        data = np.round(x * 127 + 128).astype("u1").tobytes()
    elif sample_width == 2:
        data = np.round(x * 32767).astype("<i2").tobytes()
    elif sample_width == 3:
        ints = np.round(x * (2**23 - 1)).astype("<i4").reshape(-1)
        data = np.stack([ints & 0xFF, (ints >> 8) & 0xFF, (ints >> 16) & 0xFF], 1)
        data = data.astype("u1").tobytes()
    else:
        data = np.round(x.astype(np.float64) * (2**31 - 1)).astype("<i4").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sample_width)
        w.setframerate(rate)
        w.writeframes(data)
    return buffer.getvalue()


def float_wav(x, rate=RATE):
    """32-bit IEEE float WAV bytes (format tag 3)."""
    data = np.asarray(x, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


def silent_mp3(frames, mpeg1=True, id3=True):
    """A valid MP3 stream of silent Layer III frames (no encoder needed).

    An all-zero side info block means "no main data", which decoders render
    as silence: 1152 samples per MPEG-1 frame, 576 per MPEG-2 frame.
    """
    if mpeg1:  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono
        frame = b"\xff\xfb\x90\xc0" + b"\x00" * 413
    else:  # MPEG-2 Layer III, 64 kbit/s, 22.05 kHz, mono
        frame = b"\xff\xf3\x80\xc0" + b"\x00" * 204
    tag = b"ID3\x03\x00\x00\x00\x00\x00\x04" + b"\x00" * 4 if id3 else b""
    return tag + frame * frames


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------
# Decoding


def test_decode_wav_16bit_values_and_rate():
    stereo = np.stack([TONE, -TONE], 1)
    contents = tf.audio.encode_wav(stereo, RATE)
    waveform, rate = audio.decode_audio(contents)
    assert waveform.dtype == tf.float32
    assert waveform.shape == (RATE, 2)
    assert int(rate) == RATE
    np.testing.assert_allclose(waveform.numpy(), stereo, atol=1e-4)


@pytest.mark.parametrize(
    "make, atol",
    [
        (lambda x: pcm_wav(x, 1), 1e-2),
        (lambda x: pcm_wav(x, 3), 1e-6),
        (lambda x: pcm_wav(x, 4), 1e-6),
        (float_wav, 0.0),
    ],
    ids=["pcm8", "pcm24", "pcm32", "float32"],
)
@needs_tfio
def test_decode_other_wav_encodings(make, atol):
    waveform, rate = audio.decode_audio(make(TONE))
    assert int(rate) == RATE
    np.testing.assert_allclose(waveform.numpy()[:, 0], TONE, atol=atol)


@needs_tfio
@pytest.mark.parametrize("bits", [16, 24])
def test_decode_flac_written_by_tfio(bits):
    import tensorflow_io as tfio

    if bits == 16:
        ints = tf.cast(np.round(TONE[:, None] * 32767), tf.int16)
    else:
        ints = tf.cast(np.round(TONE[:, None].astype(np.float64) * (2**31 - 1)), tf.int32)
    contents = tfio.audio.encode_flac(ints, RATE)
    assert contents.numpy()[:4] == b"fLaC"
    waveform, rate = audio.decode_audio(contents)
    assert int(rate) == RATE and waveform.shape == (RATE, 1)
    np.testing.assert_allclose(waveform.numpy()[:, 0], TONE, atol=1e-4)


@needs_tfio
def test_decode_ogg_vorbis_written_by_tfio():
    import tensorflow_io as tfio

    # tensorflow-io's Vorbis encoder only accepts some mono rates; 44.1 kHz works.
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
    contents = tfio.audio.encode_vorbis(tone[:, None], 44100)
    waveform, rate = audio.decode_audio(contents)
    assert int(rate) == 44100
    decoded = waveform.numpy()[: len(tone), 0]
    assert len(decoded) == len(tone)
    assert np.abs(decoded - tone).max() < 0.05  # lossy, but close
    assert np.corrcoef(decoded, tone)[0, 1] > 0.999


@needs_tfio
@pytest.mark.parametrize("mpeg1, rate, per_frame", [(True, 44100, 1152), (False, 22050, 576)])
def test_decode_mp3_without_lame(mpeg1, rate, per_frame):
    # tensorflow-io decodes MP3 with its bundled minimp3; libmp3lame is only
    # needed for *encoding*, so decoding must work whether or not LAME exists.
    waveform, sample_rate = audio.decode_audio(silent_mp3(20, mpeg1=mpeg1))
    assert int(sample_rate) == rate
    assert waveform.shape == (20 * per_frame, 1)
    assert float(tf.reduce_max(tf.abs(waveform))) == 0.0


@needs_tfio
def test_mp3_frame_found_after_padding_following_id3_tag():
    data = silent_mp3(10)
    padded = data[:14] + b"\x00" * 37 + data[14:]  # encoder padding after the tag
    _, rate = audio.decode_audio(padded)
    assert int(rate) == 44100


def test_explicit_file_format_and_unknown_format():
    contents = tf.audio.encode_wav(TONE[:, None], RATE)
    waveform, _ = audio.decode_audio(contents, file_format="WAV")
    assert waveform.shape == (RATE, 1)
    with pytest.raises(ValueError, match="file_format='aiff'"):
        audio.decode_audio(contents, file_format="aiff")
    with pytest.raises(ValueError, match="Unrecognised audio data"):
        audio.decode_audio(b"definitely not audio")


@needs_tfio
def test_decode_in_tf_data_graph_mode_mixed_formats():
    import tensorflow_io as tfio

    items = [
        tf.audio.encode_wav(TONE[:800, None], 8000).numpy(),
        tfio.audio.encode_flac(tf.cast(TONE[:1600, None] * 32767, tf.int16), 16000).numpy(),
        pcm_wav(TONE[:1200], 3, rate=12000),
        silent_mp3(3),
    ]
    ds = tf.data.Dataset.from_tensor_slices(items).map(audio.decode_audio)
    got = [(w.shape[0], int(r)) for w, r in ds]
    assert got == [(800, 8000), (1600, 16000), (1200, 12000), (3 * 1152, 44100)]


def test_graph_mode_errors_are_clear():
    decode = tf.function(audio.decode_audio)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unrecognised audio data"):
        decode(tf.constant(b"garbage bytes here"))


@needs_tfio
def test_graph_mode_rejects_nan_samples():
    decode = tf.function(audio.decode_audio)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        decode(tf.constant(float_wav(np.array([0.0, np.nan, 0.1], np.float32))))


# --------------------------------------------------------------------------
# load_audio


def test_load_audio_mono_and_resample(tmp_path):
    stereo = np.stack([TONE[:8000], np.zeros(8000, np.float32)], 1)
    path = write(tmp_path, "s.wav", tf.audio.encode_wav(stereo, 8000).numpy())
    mono, rate = audio.load_audio(path)
    assert rate == 8000 and mono.shape == (8000,) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, TONE[:8000] / 2, atol=1e-4)
    both, _ = audio.load_audio(path, mono=False)
    assert both.shape == (8000, 2)
    if audio.HAVE_TFIO:
        up, rate = audio.load_audio(path, sample_rate=16000)
        assert rate == 16000 and up.shape == (16000,)


def test_load_audio_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        audio.load_audio(tmp_path / "nope.wav")


def test_load_audio_empty_file_names_file(tmp_path):
    path = write(tmp_path, "empty.wav", b"")
    with pytest.raises(audio.AudioDecodeError, match=r"empty\.wav: file is empty") as info:
        audio.load_audio(path)
    assert info.value.path == str(path)


def test_load_audio_bad_magic_names_file(tmp_path):
    path = write(tmp_path, "notes.wav", b"these are my notes, not audio")
    with pytest.raises(audio.AudioDecodeError, match=r"notes\.wav: not a recognised audio file"):
        audio.load_audio(path)


def test_load_audio_truncated_wav_names_file(tmp_path):
    data = tf.audio.encode_wav(TONE[:, None], RATE).numpy()
    path = write(tmp_path, "cut.wav", data[:30])
    with pytest.raises(audio.AudioDecodeError, match=r"cut\.wav: could not decode as WAV"):
        audio.load_audio(path)


@needs_tfio
def test_load_audio_corrupt_flac_names_file(tmp_path):
    path = write(tmp_path, "bad.flac", b"fLaC" + b"\x13" * 200)
    with pytest.raises(audio.AudioDecodeError, match=r"bad\.flac: could not decode as FLAC"):
        audio.load_audio(path)


@needs_tfio
def test_load_audio_nan_samples_names_file(tmp_path):
    x = TONE[:100].copy()
    x[[3, 50]] = [np.nan, np.inf]
    path = write(tmp_path, "nan.wav", float_wav(x))
    with pytest.raises(audio.AudioDecodeError, match=r"nan\.wav: contains 2 NaN or infinite"):
        audio.load_audio(path)


# --------------------------------------------------------------------------
# Waveform utilities


@needs_tfio
@pytest.mark.parametrize("rate_in, rate_out", [(8000, 16000), (44100, 16000), (22050, 16000)])
def test_resample_length_and_alignment(rate_in, rate_out):
    n = rate_in // 2 + 7
    t = np.arange(n) / rate_in
    x = np.sin(2 * np.pi * 300 * t).astype(np.float32)
    y = audio.resample(x, rate_in, rate_out).numpy()
    assert y.shape == (int(np.ceil(n * rate_out / rate_in)),)
    expected = np.sin(2 * np.pi * 300 * np.arange(len(y)) / rate_out)
    # Aligned (filter delay compensated) and the tail is kept.
    assert np.abs(y[100:-100] - expected[100:-100]).max() < 0.02
    assert np.abs(y[-60:-10]).max() > 0.5


@needs_tfio
def test_resample_keeps_channels_and_same_rate_is_identity():
    x = np.random.default_rng(0).normal(size=(1000, 2)).astype(np.float32)
    assert audio.resample(x, 16000, 8000).shape == (500, 2)
    np.testing.assert_array_equal(audio.resample(x, 8000, 8000).numpy(), x)


def test_resample_rejects_tensor_rates():
    with pytest.raises(ValueError, match="rate_in must be a positive Python int"):
        audio.resample(np.zeros(10, np.float32), tf.constant(8000), 16000)


def test_to_mono():
    assert audio.to_mono([[1.0, 0.0], [0.5, 0.5]]).numpy().tolist() == [0.5, 0.5]
    assert audio.to_mono([1.0, 2.0]).shape == (2,)
    with pytest.raises(ValueError, match="shape"):
        audio.to_mono(np.zeros((2, 2, 2)))


def test_fix_length_center_crop_and_pad():
    x = np.arange(1, 11, dtype=np.float32)
    assert audio.fix_length(x, 4, mode="center").numpy().tolist() == [4, 5, 6, 7]
    assert audio.fix_length(x[:3], 6, mode="center").numpy().tolist() == [0, 1, 2, 3, 0, 0]
    assert audio.fix_length(np.ones((3, 2)), 5, mode="center").shape == (5, 2)


def test_fix_length_random_is_seeded_and_stays_inside():
    x = np.arange(1, 101, dtype=np.float32)
    crops = [audio.fix_length(x, 10, seed=s).numpy() for s in range(20)]
    for c in crops:  # a contiguous window of the input
        assert np.all(np.diff(c) == 1) and 1 <= c[0] <= 91
    assert len({c[0] for c in crops}) > 5
    np.testing.assert_array_equal(
        audio.fix_length(x, 10, seed=3).numpy(), audio.fix_length(x, 10, seed=3).numpy()
    )
    padded = audio.fix_length(x[:4], 10, seed=tf.constant([1, 2])).numpy()
    assert padded.shape == (10,) and padded.sum() == 10  # whole clip placed in silence


def test_fix_length_in_tf_data_with_seed_tensors():
    x = np.arange(50, dtype=np.float32)
    seeds = tf.data.Dataset.random(seed=7).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensors(x).repeat(5), seeds))
    ds = ds.map(lambda w, s: audio.fix_length(w, 8, "random", s))
    first = [w.numpy() for w in ds]
    assert [w.shape for w in first] == [(8,)] * 5
    np.testing.assert_array_equal(first, [w.numpy() for w in ds])


def test_fix_length_argument_errors():
    with pytest.raises(ValueError, match="mode"):
        audio.fix_length([1.0], 1, mode="left")
    with pytest.raises(ValueError, match="length"):
        audio.fix_length([1.0], 0)


def test_multi_crop_evenly_spaced():
    crops = audio.multi_crop(tf.range(10.0), 4, num_crops=3).numpy()
    assert crops.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    ten = audio.multi_crop(np.arange(16000, dtype=np.float32), 8000, num_crops=10).numpy()
    assert ten.shape == (10, 8000)
    assert ten[0, 0] == 0 and ten[-1, -1] == 15999
    short = audio.multi_crop(np.ones(3, np.float32), 5, num_crops=2).numpy()
    assert short.tolist() == [[0, 1, 1, 1, 0]] * 2


def test_normalize_peak_rms_and_silence():
    x = np.array([0.0, 0.25, -0.5], np.float32)
    assert audio.normalize(x).numpy().tolist() == [0.0, 0.5, -1.0]
    rms = audio.normalize(x, mode="rms", target=0.1).numpy()
    assert np.sqrt(np.mean(rms**2)) == pytest.approx(0.1, rel=1e-5)
    silent = audio.normalize(np.zeros((2, 5), np.float32), mode="rms", axis=-1).numpy()
    assert np.all(silent == 0)
    batch = audio.normalize(np.array([[1.0, -2.0], [0.1, 0.0]], np.float32), axis=-1).numpy()
    assert np.abs(batch).max(axis=-1).tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------
# tensorflow-io detection


def test_probe_reports_missing_tfio_as_none():
    def fake_import(name):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    assert audio._probe_tfio(fake_import) is None


def test_probe_raises_clear_import_error_for_broken_tfio(monkeypatch):
    def broken(*args, **kwargs):
        raise NotImplementedError("unable to open file: libtensorflow_io.so, undefined symbol")

    fake = types.SimpleNamespace(audio=types.SimpleNamespace(resample=broken))
    monkeypatch.setattr(audio, "_resample_op", lambda tfio: tfio.audio.resample)
    with pytest.raises(ImportError) as info:
        audio._probe_tfio(lambda name: fake)
    message = str(info.value)
    assert f"tensorflow {tf.__version__}" in message
    assert "tensorflow-io" in message and "constraints.txt" in message
    assert 'pip install "tensorflow==2.17.1" "tensorflow-io==0.37.1"' in message


def test_without_tfio_wav_works_and_others_name_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(audio, "_tfio", None)
    audio._compiled.cache_clear()
    try:
        wav = write(tmp_path, "a.wav", tf.audio.encode_wav(TONE[:100, None], RATE).numpy())
        waveform, rate = audio.load_audio(wav)
        assert waveform.shape == (100,) and rate == RATE
        with pytest.raises(ImportError, match=r"keras_speechmix\[audio\]"):
            audio.resample(TONE, RATE, 8000)
        flac = write(tmp_path, "a.flac", b"fLaC" + b"\x00" * 64)
        with pytest.raises(ImportError, match=r"a\.flac: Decoding FLAC needs tensorflow-io"):
            audio.load_audio(flac)
        with pytest.raises(ImportError, match="Decoding MP3 needs tensorflow-io"):
            audio.decode_audio(silent_mp3(2))
        graph = tf.function(audio.decode_audio)
        with pytest.raises(tf.errors.InvalidArgumentError, match="needs tensorflow-io"):
            graph(tf.constant(silent_mp3(2)))
    finally:
        audio._compiled.cache_clear()
