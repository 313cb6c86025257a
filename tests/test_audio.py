"""Tests for keras_speechmix.audio: decoding, loading and waveform utilities.

Every file is made here, with soundfile itself or the standard library's
`wave` module, so the expected samples are known exactly.
"""

import io
import struct
import types
import wave

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from keras_speechmix.audio import decode as audio

RATE = 16000
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)


def pcm_wav(ints, sample_width, rate=RATE):
    """Plain PCM WAV (format tag 1) of `(samples, channels)` integers, by `wave`."""
    ints = np.asarray(ints).reshape(len(ints), -1)
    if sample_width == 1:
        data = (ints + 128).astype("u1").tobytes()
    elif sample_width == 3:
        flat = ints.astype("<i4").reshape(-1)
        data = np.stack([flat & 0xFF, (flat >> 8) & 0xFF, (flat >> 16) & 0xFF], 1)
        data = data.astype("u1").tobytes()
    else:
        data = ints.astype({2: "<i2", 4: "<i4"}[sample_width]).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(ints.shape[1])
        w.setsampwidth(sample_width)
        w.setframerate(rate)
        w.writeframes(data)
    return buffer.getvalue()


def encoded(x, rate=RATE, format="WAV", subtype="PCM_16"):
    """Bytes of `x` written by soundfile in `format` / `subtype`."""
    buffer = io.BytesIO()
    soundfile.write(buffer, x, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def float_wav(x, rate=RATE):
    """32-bit IEEE float WAV bytes (format tag 3), written out by hand so that
    NaN and infinity go in unchanged."""
    data = np.asarray(x, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip


def format_tag(wav):
    at = wav.index(b"fmt ")
    return struct.unpack("<H", wav[at + 8 : at + 10])[0]


def silent_mp3(frames, mpeg1=True):
    """A valid MP3 stream of silent Layer III frames (no encoder needed).

    An all-zero side info block means "no main data", which decoders render
    as silence: 1152 samples per MPEG-1 frame, 576 per MPEG-2 frame.
    """
    if mpeg1:  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono
        return (b"\xff\xfb\x90\xc0" + b"\x00" * 413) * frames
    return (b"\xff\xf3\x80\xc0" + b"\x00" * 204) * frames  # MPEG-2, 22.05 kHz


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


RNG = np.random.default_rng(0)
INTS = {bits: RNG.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), (500, 2)) for bits in (8, 16, 24, 32)}


# --------------------------------------------------------------------------
# Decoding: every WAV layout, FLAC, Ogg, MP3


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_plain_pcm_wav_decodes_to_the_scaled_integers(bits):
    waveform, rate = audio.decode_audio(pcm_wav(INTS[bits], bits // 8))
    assert waveform.dtype == tf.float32 and int(rate) == RATE
    # Exact up to float32 rounding (which only 32-bit integers need).
    np.testing.assert_allclose(waveform.numpy(), INTS[bits] / 2.0 ** (bits - 1), rtol=6e-8, atol=0)


@pytest.mark.parametrize("subtype, bits", [("PCM_16", 16), ("PCM_24", 24), ("PCM_32", 32)])
@pytest.mark.parametrize("channels", [1, 4])
def test_extensible_wav_decodes(subtype, bits, channels):
    # WAVE_FORMAT_EXTENSIBLE (tag 0xFFFE): what recorders, `sox -b 24` and
    # files with more than 2 channels use; the old hand parser refused it.
    ints = INTS[bits][:, :1].repeat(channels, 1) * np.array([1, -1, 1, -1][:channels])
    x = ints / 2.0 ** (bits - 1)
    data = encoded(x, format="WAVEX", subtype=subtype)
    assert format_tag(data) == 0xFFFE
    waveform, rate = audio.decode_audio(data)
    assert waveform.shape == (500, channels) and int(rate) == RATE
    np.testing.assert_allclose(waveform.numpy(), x, rtol=6e-8, atol=0)


def test_four_channel_file_loads_down_mixed(tmp_path):
    x = RNG.uniform(-0.9, 0.9, (300, 4)).astype(np.float32)
    path = write(tmp_path, "quad.wav", encoded(x, format="WAVEX", subtype="FLOAT"))
    mono, rate = audio.load_audio(path)
    assert rate == RATE and mono.shape == (300,)
    np.testing.assert_array_equal(mono, x.mean(axis=1, dtype=np.float32))
    both, _ = audio.load_audio(path, mono=False)
    np.testing.assert_array_equal(both, x)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_keeps_values(subtype):
    x = np.array([0.0, 0.25, -1.0, 1.5], np.float32)  # beyond 1 stays as it is
    waveform, _ = audio.decode_audio(encoded(x, format="WAV", subtype=subtype))
    np.testing.assert_array_equal(waveform.numpy()[:, 0], x)


@pytest.mark.parametrize("subtype, bits", [("PCM_16", 16), ("PCM_24", 24)])
def test_flac_is_lossless(subtype, bits):
    x = INTS[bits] / 2.0 ** (bits - 1)
    data = encoded(x, format="FLAC", subtype=subtype)
    assert data[:4] == b"fLaC"
    waveform, rate = audio.decode_audio(data)
    assert int(rate) == RATE
    np.testing.assert_allclose(waveform.numpy(), x, rtol=0, atol=1e-9)


@pytest.mark.parametrize("subtype, rate", [("VORBIS", 44100), ("OPUS", 48000)])
def test_ogg_vorbis_and_opus(subtype, rate):
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    data = encoded(tone, rate, "OGG", subtype)
    assert data[:4] == b"OggS"
    waveform, sample_rate = audio.decode_audio(data)
    assert int(sample_rate) == rate
    decoded = waveform.numpy()[:, 0]
    assert len(decoded) == len(tone)
    assert np.corrcoef(decoded, tone)[0, 1] > 0.99  # lossy, but the same tone


def test_mp3_written_by_libsndfile():
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
    waveform, rate = audio.decode_audio(encoded(tone, 44100, "MP3", "MPEG_LAYER_III"))
    assert int(rate) == 44100 and waveform.shape == (44100, 1)
    assert np.corrcoef(waveform.numpy()[:, 0], tone)[0, 1] > 0.99


@pytest.mark.parametrize("mpeg1, rate, per_frame", [(True, 44100, 1152), (False, 22050, 576)])
def test_mp3_frames_decode_without_an_encoder(mpeg1, rate, per_frame):
    waveform, sample_rate = audio.decode_audio(silent_mp3(20, mpeg1=mpeg1))
    assert int(sample_rate) == rate
    assert waveform.shape == (20 * per_frame, 1)
    assert float(tf.reduce_max(tf.abs(waveform))) == 0.0


def test_explicit_file_format_and_unknown_format():
    contents = tf.audio.encode_wav(TONE[:, None], RATE)
    waveform, _ = audio.decode_audio(contents, file_format="WAV")
    assert waveform.shape == (RATE, 1)
    with pytest.raises(ValueError, match="file_format='aiff'"):
        audio.decode_audio(contents, file_format="aiff")
    with pytest.raises(audio.AudioDecodeError, match="file_format='flac', but the data is WAV"):
        audio.decode_audio(contents, file_format="flac")
    with pytest.raises(audio.AudioDecodeError, match="not an audio file"):
        audio.decode_audio(b"definitely not audio")


def test_decode_in_tf_data_graph_mode_mixed_formats():
    items = [
        tf.audio.encode_wav(TONE[:800, None], 8000).numpy(),
        encoded(TONE[:1600], 16000, "FLAC", "PCM_16"),
        encoded(np.stack([TONE[:1200]] * 3, 1), 12000, "WAVEX", "PCM_24"),
        encoded(TONE, 16000, "OGG", "VORBIS"),
        silent_mp3(3),
    ]
    ds = tf.data.Dataset.from_tensor_slices(items).map(audio.decode_audio)
    assert ds.element_spec[0].shape.as_list() == [None, None]
    got = [(tuple(w.shape), int(r)) for w, r in ds]
    assert got == [((800, 1), 8000), ((1600, 1), 16000), ((1200, 3), 12000),
                   ((16000, 1), 16000), ((3 * 1152, 1), 44100)]


def test_graph_mode_errors_are_clear():
    decode = tf.function(audio.decode_audio)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not an audio file"):
        decode(tf.constant(b"garbage bytes here"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        decode(tf.constant(float_wav(np.array([0.0, np.nan, 0.1], np.float32))))


# --------------------------------------------------------------------------
# load_audio and the reasons a file is skipped


def test_load_audio_mono_and_resample(tmp_path):
    stereo = np.stack([TONE[:8000], np.zeros(8000, np.float32)], 1)
    path = write(tmp_path, "s.wav", tf.audio.encode_wav(stereo, 8000).numpy())
    mono, rate = audio.load_audio(path)
    assert rate == 8000 and mono.shape == (8000,) and mono.dtype == np.float32
    np.testing.assert_allclose(mono, TONE[:8000] / 2, atol=1e-4)
    both, _ = audio.load_audio(path, mono=False)
    assert both.shape == (8000, 2)
    up, rate = audio.load_audio(path, sample_rate=16000)
    assert rate == 16000 and up.shape == (16000,)
    np.testing.assert_allclose(up, audio.resample(mono, 8000, 16000).numpy())


def test_load_audio_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        audio.load_audio(tmp_path / "nope.wav")
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(audio.AudioDecodeError, match=r"dir\.wav: is a directory"):
        audio.load_audio(tmp_path / "dir.wav")


def test_load_audio_empty_file_names_file(tmp_path):
    path = write(tmp_path, "empty.wav", b"")
    with pytest.raises(audio.AudioDecodeError, match=r"empty\.wav: file is empty") as info:
        audio.load_audio(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize("data", [b"these are my notes, not audio",
                                  np.random.default_rng(1).bytes(5000)],
                         ids=["text", "random bytes"])
def test_load_audio_not_audio_names_file(tmp_path, data):
    path = write(tmp_path, "notes.wav", data)
    with pytest.raises(audio.AudioDecodeError, match=r"notes\.wav: not an audio file"):
        audio.load_audio(path)


def _cut(data, keep):
    return data[:keep] if keep > 1 else data[: int(len(data) * keep)]


@pytest.mark.parametrize("make, keep", [
    (lambda: pcm_wav(INTS[16], 2), 0.5),  # mid-samples: libsndfile would read the rest
    (lambda: pcm_wav(INTS[16], 2), 30),  # inside the header
    (lambda: encoded(INTS[24][:, :1] / 2.0**23, format="WAVEX", subtype="PCM_24"), 0.6),
    (lambda: encoded(np.tile(TONE, 2), format="FLAC"), 0.5),
    (lambda: encoded(np.tile(TONE, 2), 44100, "OGG", "VORBIS"), 0.5),
    (lambda: encoded(np.tile(TONE, 2), 44100, "MP3", "MPEG_LAYER_III"), 0.5),
], ids=["wav-data", "wav-header", "wavex", "flac", "ogg", "mp3"])
def test_load_audio_truncated_says_truncated(tmp_path, make, keep):
    whole = make()
    audio.decode_audio(whole)  # the uncut file is fine
    path = write(tmp_path, "cut.snd", _cut(whole, keep))
    with pytest.raises(audio.AudioDecodeError, match=r"cut\.snd: truncated"):
        audio.load_audio(path)


def test_load_audio_damaged_wav_names_the_format(tmp_path):
    path = write(tmp_path, "bad.wav", b"RIFF\x0c\x00\x00\x00WAVEjunkjunk")  # not cut: no chunks
    with pytest.raises(audio.AudioDecodeError, match=r"bad\.wav: could not decode as WAV"):
        audio.load_audio(path)


def test_load_audio_nan_samples_names_file(tmp_path):
    x = TONE[:100].copy()
    x[[3, 50]] = [np.nan, np.inf]
    path = write(tmp_path, "nan.wav", float_wav(x))
    with pytest.raises(audio.AudioDecodeError, match=r"nan\.wav: contains 2 NaN or infinite"):
        audio.load_audio(path)


# --------------------------------------------------------------------------
# Resampling (soxr)


@pytest.mark.parametrize("rate_in, rate_out", [(8000, 16000), (44100, 16000), (22050, 16000)])
def test_resample_length_and_alignment(rate_in, rate_out):
    n = rate_in // 2 + 7
    t = np.arange(n) / rate_in
    x = np.sin(2 * np.pi * 300 * t).astype(np.float32)
    y = audio.resample(x, rate_in, rate_out).numpy()
    assert y.shape == (int(np.ceil(n * rate_out / rate_in)),)
    expected = np.sin(2 * np.pi * 300 * np.arange(len(y)) / rate_out)
    # Aligned (no filter delay) and the tail is kept.
    assert np.abs(y[100:-100] - expected[100:-100]).max() < 1e-3
    assert np.abs(y[-60:-10]).max() > 0.5


@pytest.mark.parametrize("n", [1, 2, 3, 7, 44101])
def test_resample_length_is_the_ceiling(n):
    y = audio.resample(np.ones(n, np.float32), 44100, 16000)
    assert y.shape == (-(-n * 16000 // 44100),)


def test_resample_removes_what_the_new_rate_cannot_hold():
    # A 10 kHz tone cannot exist at 16 kHz: it must not fold back to 6 kHz.
    t = np.arange(44100) / 44100
    y = audio.resample(np.sin(2 * np.pi * 10000 * t).astype(np.float32), 44100, 16000).numpy()
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3 * np.sqrt(0.5)  # below -60 dB


def test_resample_keeps_channels_same_rate_and_graph_mode():
    x = np.random.default_rng(0).normal(size=(1000, 2)).astype(np.float32)
    assert audio.resample(x, 16000, 8000).shape == (500, 2)
    np.testing.assert_array_equal(audio.resample(x, 8000, 8000).numpy(), x)
    graph = tf.function(lambda w: audio.resample(w, 16000, 8000))
    np.testing.assert_array_equal(graph(x).numpy(), audio.resample(x, 16000, 8000).numpy())


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
# Decoders present, and the optional tensorflow-io


def test_require_decoder_names_a_missing_format(monkeypatch):
    for suffix in (".wav", ".flac", ".ogg", ".mp3", ".npy"):
        audio._require_decoder(suffix)
    without_mp3 = {k: v for k, v in soundfile.available_formats().items() if k != "MP3"}
    monkeypatch.setattr(soundfile, "available_formats", lambda: without_mp3)
    with pytest.raises(ImportError, match=r"\.mp3 files needs a libsndfile with MP3") as info:
        audio._require_decoder(".MP3")
    assert soundfile.__libsndfile_version__ in str(info.value)
    assert "pip install --upgrade soundfile" in str(info.value)


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
    assert f"tensorflow {tf.__version__}" in message and "undefined symbol" in message
    assert "does not need tensorflow-io" in message and "pip uninstall tensorflow-io" in message
    assert 'pip install "tensorflow==2.17.1" "tensorflow-io==0.37.1"' in message


def test_tensorflow_io_is_optional():
    if not audio.HAVE_TFIO:
        assert audio.tensorflow_io() is None
    else:  # installed: it either works or says how to fix it
        try:
            assert audio.tensorflow_io() is not None
        except ImportError as e:
            assert "pip uninstall tensorflow-io" in str(e)


def test_sound_crop_redraws_crops_quieter_than_the_clip():
    wave = np.zeros(4000, "float32")
    wave[3000:3400] = 0.5  # a short event in a long silence
    seeds = range(40)
    plain = [bool(audio.fix_length(wave, 400, "random", seed=s).numpy().any()) for s in seeds]
    sound = [bool(audio.sound_crop(wave, 400, seed=s, tries=8).numpy().any()) for s in seeds]
    assert sum(sound) > sum(plain) + 10  # plain: ~20 % carry the event
    again = audio.sound_crop(wave, 400, seed=5).numpy()
    np.testing.assert_array_equal(again, audio.sound_crop(wave, 400, seed=5).numpy())


def test_sound_crop_takes_the_first_loud_crop_else_the_loudest():
    """Against the rule written out in NumPy, over seeds that reach both branches."""
    wave = np.zeros(2000, "float32")
    wave[100:110] = 10.0  # a click that sets the clip's level
    wave[1000:] = np.linspace(0.0, 1.0, 1000, dtype="float32")
    branches = set()
    for seed in range(30):
        draws = [audio.fix_length(wave, 200, "random", s).numpy() for s in
                 tf.random.experimental.stateless_split(tf.constant([seed, 0], tf.int64), 4)]
        rms = np.array([np.sqrt(np.mean(c ** 2)) for c in draws])
        loud = rms >= np.sqrt(np.mean(wave ** 2)) * 10 ** (-6 / 20)
        expected = draws[int(np.argmax(loud))] if loud.any() else draws[int(np.argmax(rms))]
        branches.add(bool(loud.any()))
        crop = audio.sound_crop(wave, 200, seed=seed, max_quieter_db=6.0, tries=4).numpy()
        np.testing.assert_array_equal(crop, expected)
    assert branches == {True, False}


@pytest.mark.parametrize("kwargs, match", [(dict(tries=0), "tries"),
                                           (dict(max_quieter_db=-1.0), "max_quieter_db")])
def test_sound_crop_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        audio.sound_crop(np.ones(10, "float32"), 4, seed=0, **kwargs)
