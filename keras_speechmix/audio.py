"""Audio decoding and waveform utilities.

Decoding is built on TensorFlow ops so that it runs inside `tf.data`
pipelines (graph mode): `tf.audio.decode_wav` for 16-bit WAV, and
tensorflow-io (`tfio.audio.decode_flac`, `decode_vorbis`, `decode_mp3`,
`decode_wav`) for everything else. Resampling uses tensorflow-io's resampler.

tensorflow-io is optional: without it this module still imports and 16-bit
WAV files still decode, while FLAC, Ogg Vorbis, MP3, other WAV encodings and
resampling raise an `ImportError` that names the fix
(`pip install keras_speechmix[audio]`). When tensorflow-io *is* installed but
its native ops cannot run beside the installed TensorFlow, importing this
module raises an `ImportError` naming both versions, rather than letting a
`NotImplementedError` surface later from deep inside a graph.

Waveforms are float32 in [-1, 1] with shape `(samples, channels)` as decoded,
or `(samples,)` once mono.
"""

import functools
import importlib
import importlib.metadata
import math
import threading

import numpy as np
import tensorflow as tf

__all__ = [
    "HAVE_TFIO",
    "AudioDecodeError",
    "decode_audio",
    "load_audio",
    "to_mono",
    "resample",
    "fix_length",
    "multi_crop",
    "normalize",
]

INSTALL_HINT = "pip install keras_speechmix[audio]"
PIN_HINT = (
    'pip install "tensorflow==2.17.1" "tensorflow-io==0.37.1" '
    "(or install with the package's constraints file: "
    "pip install -c constraints.txt keras_speechmix[audio])"
)

FORMATS = ("wav", "flac", "ogg", "mp3")
_FORMAT_ALIASES = {"wave": "wav", "vorbis": "ogg", "oga": "ogg"}
_WAV, _FLAC, _OGG, _MP3, _UNKNOWN = range(5)
_FORMAT_NAMES = {_WAV: "WAV", _FLAC: "FLAC", _OGG: "Ogg Vorbis", _MP3: "MP3"}


class AudioDecodeError(ValueError):
    """An audio file could not be turned into a usable waveform.

    Args:
        path: The file concerned (or `None` for in-memory data).
        reason: What went wrong, in words.

    Example:

    >>> err = AudioDecodeError("a.wav", "file is empty (0 bytes)")
    >>> str(err)
    'a.wav: file is empty (0 bytes)'
    """

    def __init__(self, path, reason):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(reason if path is None else f"{path}: {reason}")


def _package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _broken_tfio_error(cause):
    return ImportError(
        "tensorflow-io is installed but its native ops do not work with the "
        f"installed TensorFlow (tensorflow {tf.__version__}, tensorflow-io "
        f"{_package_version('tensorflow-io')}): {type(cause).__name__}: "
        f"{str(cause).strip().splitlines()[0] if str(cause).strip() else ''}. "
        "tensorflow-io 0.37.1 is built for TensorFlow 2.17 only; fix with: "
        f"{PIN_HINT}"
    )


def _probe_tfio(import_module=importlib.import_module):
    """Returns the tensorflow_io module, or None when it is not installed.

    Raises ImportError when it is installed but unusable. tensorflow-io loads
    its shared library lazily, so a successful import proves nothing: a tiny
    eager resample forces the library to load and an op to run.
    """
    try:
        tfio = import_module("tensorflow_io")
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "tensorflow_io":
            return None
        raise _broken_tfio_error(e) from e
    except Exception as e:  # undefined symbols surface as OSError/ImportError
        raise _broken_tfio_error(e) from e
    try:
        with tf.init_scope():
            out = _resample_op(tfio)(
                tf.zeros([16, 1], tf.float32), rate_in=8000, rate_out=16000
            )
            if int(tf.shape(out)[0]) <= 0:
                raise RuntimeError("resample returned no samples")
    except Exception as e:
        raise _broken_tfio_error(e) from e
    return tfio


def _resample_op(tfio):
    # The raw op takes (samples, channels) directly; the public
    # tfio.audio.resample wraps it in tf.case + tf.vectorized_map, which
    # retraces per call in eager mode and is ~20x slower for per-file loading.
    try:
        from tensorflow_io.python.ops import core_ops

        return core_ops.io_audio_resample
    except ImportError:  # pragma: no cover - layout change in tensorflow-io
        return tfio.audio.resample


_tfio = _probe_tfio()
HAVE_TFIO = _tfio is not None


def _require_tfio(what):
    if _tfio is None:
        raise ImportError(
            f"{what} needs tensorflow-io, which is not installed. "
            f"Install it with: {INSTALL_HINT}"
        )
    return _tfio


# ---------------------------------------------------------------------------
# Header parsing. tensorflow-io's decoders return samples only, so the sample
# rate (and, for WAV/FLAC, the sample width that picks the decoder dtype) is
# read from the container header with TF string ops to stay graph-compatible.


def _byte_window(contents, offset, n):
    """`n` bytes of `contents` from `offset` as int32, zero-padded past the end."""
    length = tf.strings.length(contents)
    offset = tf.minimum(tf.cast(offset, tf.int32), length)
    chunk = tf.strings.substr(contents, offset, n)
    chunk = tf.strings.substr(tf.strings.join([chunk, b"\x00" * n]), 0, n)
    return tf.cast(tf.io.decode_raw(chunk, tf.uint8), tf.int32)


def _le(byts, offset, n):
    value = tf.constant(0, tf.int64)
    for i in reversed(range(n)):
        value = value * 256 + tf.cast(byts[offset + i], tf.int64)
    return value


def _matches(byts, offset, magic):
    return tf.reduce_all(
        tf.equal(byts[offset : offset + len(magic)], list(magic))
    )


def _sniff(contents):
    """Format index (_WAV, _FLAC, _OGG, _MP3 or _UNKNOWN) from magic bytes."""
    b = _byte_window(contents, 0, 12)
    is_wav = _matches(b, 0, b"RIFF") & _matches(b, 8, b"WAVE")
    is_flac = _matches(b, 0, b"fLaC")
    is_ogg = _matches(b, 0, b"OggS")
    is_mp3 = _matches(b, 0, b"ID3") | (
        tf.equal(b[0], 0xFF) & tf.equal(tf.bitwise.bitwise_and(b[1], 0xE0), 0xE0)
    )
    flags = tf.stack([is_wav, is_flac, is_ogg, is_mp3, tf.constant(True)])
    return tf.cast(tf.argmax(tf.cast(flags, tf.int32)), tf.int32)


def _fail_branch(message):
    def branch():
        check = tf.debugging.Assert(tf.constant(False), [message])
        with tf.control_dependencies([check]):
            return tf.zeros([0, 1], tf.float32), tf.constant(0, tf.int32)

    return branch


def _checked(condition, message, fn):
    """Runs `fn` after asserting `condition`, in eager and graph mode alike."""
    with tf.control_dependencies([tf.debugging.Assert(condition, [message])]):
        return fn()


def _decode_wav(contents):
    head = tf.strings.substr(contents, 0, 4096)
    # Chunks (LIST, JUNK, ...) may precede "fmt ", so find it rather than
    # assuming offset 12.
    fmt_at = tf.strings.length(tf.strings.split(head, sep="fmt ", maxsplit=1)[0])
    fmt = _byte_window(contents, fmt_at, 40)
    tag = _le(fmt, 8, 2)
    tag = tf.where(tf.equal(tag, 0xFFFE), _le(fmt, 24, 2), tag)  # EXTENSIBLE
    bits = _le(fmt, 22, 2)
    rate = tf.cast(_le(fmt, 12, 4), tf.int32)
    plain_pcm16 = tf.equal(_le(fmt, 8, 2), 1) & tf.equal(bits, 16)

    def core():
        wave, sr = tf.audio.decode_wav(contents)
        return wave, sr

    if _tfio is None:
        need = _fail_branch(
            "This WAV encoding (not 16-bit PCM) needs tensorflow-io, which is "
            f"not installed: {INSTALL_HINT}"
        )
        return tf.cond(plain_pcm16, core, need)
    tfio = _tfio
    pcm, flt = tf.equal(tag, 1), tf.equal(tag, 3)

    def u8():
        x = tfio.audio.decode_wav(contents, dtype=tf.uint8)
        return (tf.cast(x, tf.float32) - 128.0) / 128.0, rate

    def i16():
        x = tfio.audio.decode_wav(contents, dtype=tf.int16)
        return tf.cast(x, tf.float32) / 32768.0, rate

    def i24():
        # tensorflow-io left-aligns 24-bit samples in int32.
        x = tfio.audio.decode_wav(contents, dtype=tf.int32)
        return tf.cast(x, tf.float32) / 2147483648.0, rate

    def i32():
        # tensorflow-io hands 32-bit PCM back as float32 bit patterns.
        x = tfio.audio.decode_wav(contents, dtype=tf.float32)
        return tf.cast(tf.bitcast(x, tf.int32), tf.float32) / 2147483648.0, rate

    def f32():
        return tfio.audio.decode_wav(contents, dtype=tf.float32), rate

    kind = tf.argmax(
        tf.cast(
            tf.stack(
                [
                    plain_pcm16,
                    pcm & tf.equal(bits, 8),
                    pcm & tf.equal(bits, 16),
                    pcm & tf.equal(bits, 24),
                    pcm & tf.equal(bits, 32),
                    flt & tf.equal(bits, 32),
                    tf.constant(True),
                ]
            ),
            tf.int32,
        )
    )
    unsupported = _fail_branch(
        "Unsupported WAV encoding (only 8/16/24/32-bit PCM and 32-bit float "
        "are supported); convert the file to 16-bit PCM WAV"
    )
    return tf.switch_case(
        tf.cast(kind, tf.int32), [core, u8, i16, i24, i32, f32, unsupported]
    )


def _decode_flac(contents):
    tfio = _require_tfio("Decoding FLAC")
    info = _byte_window(contents, 18, 4)  # STREAMINFO follows the block header
    rate = (info[0] * 4096) + (info[1] * 16) + tf.bitwise.right_shift(info[2], 4)
    bits = (
        tf.bitwise.left_shift(tf.bitwise.bitwise_and(info[2], 1), 4)
        + tf.bitwise.right_shift(info[3], 4)
        + 1
    )

    def i16():
        x = tfio.audio.decode_flac(contents, dtype=tf.int16)
        return tf.cast(x, tf.float32) / 32768.0, rate

    def i32():
        # Wider samples come back left-aligned in int32.
        x = tfio.audio.decode_flac(contents, dtype=tf.int32)
        return tf.cast(x, tf.float32) / 2147483648.0, rate

    return tf.cond(bits <= 16, i16, i32)


def _decode_ogg(contents):
    tfio = _require_tfio("Decoding Ogg Vorbis")
    page = _byte_window(contents, 0, 27)
    packet = 27 + page[26]  # after the first page's segment table
    ident = _byte_window(contents, packet, 16)
    rate = tf.cast(_le(ident, 12, 4), tf.int32)
    return _checked(
        _matches(ident, 0, b"\x01vorbis"),
        "Ogg stream is not Vorbis (Ogg Opus/FLAC are not supported); "
        "convert it to Ogg Vorbis, FLAC or WAV",
        lambda: (tfio.audio.decode_vorbis(contents), rate),
    )


_MP3_RATES = [
    [11025, 12000, 8000, 0],  # MPEG 2.5
    [0, 0, 0, 0],  # reserved
    [22050, 24000, 16000, 0],  # MPEG 2
    [44100, 48000, 32000, 0],  # MPEG 1
]


def _decode_mp3(contents):
    # Decoding uses tensorflow-io's bundled minimp3; LAME (libmp3lame) is only
    # needed by tfio.audio.encode_mp3, so it is not required here.
    tfio = _require_tfio("Decoding MP3")
    id3 = _byte_window(contents, 0, 10)
    tag_size = (
        id3[6] * 2097152 + id3[7] * 16384 + id3[8] * 128 + id3[9]
    ) + 10 * (1 + tf.bitwise.right_shift(tf.bitwise.bitwise_and(id3[5], 0x10), 4))
    start = tf.where(_matches(id3, 0, b"ID3"), tag_size, 0)
    # Encoders may leave padding between the tag and the first frame: take the
    # first plausible frame header in the next 4 KiB.
    window = _byte_window(contents, start, 4096)
    b0, b1, b2 = window[:-2], window[1:-1], window[2:]
    version = tf.bitwise.bitwise_and(tf.bitwise.right_shift(b1, 3), 3)
    layer = tf.bitwise.bitwise_and(tf.bitwise.right_shift(b1, 1), 3)
    bitrate = tf.bitwise.right_shift(b2, 4)
    rate_index = tf.bitwise.bitwise_and(tf.bitwise.right_shift(b2, 2), 3)
    valid = (
        tf.equal(b0, 0xFF)
        & tf.equal(tf.bitwise.bitwise_and(b1, 0xE0), 0xE0)
        & tf.not_equal(version, 1)
        & tf.not_equal(layer, 0)
        & tf.not_equal(bitrate, 15)
        & tf.not_equal(rate_index, 3)
    )
    first = tf.argmax(tf.cast(valid, tf.int32))
    rate = tf.gather(
        tf.reshape(tf.constant(_MP3_RATES, tf.int32), [-1]),
        version[first] * 4 + rate_index[first],
    )
    return _checked(
        tf.reduce_any(valid),
        "No MP3 frame header found after the ID3 tag",
        lambda: (tfio.audio.decode_mp3(contents), rate),
    )


_DECODERS = {_WAV: _decode_wav, _FLAC: _decode_flac, _OGG: _decode_ogg, _MP3: _decode_mp3}
_UNKNOWN_MESSAGE = (
    "Unrecognised audio data: expected a WAV (RIFF/WAVE), FLAC (fLaC), "
    "Ogg Vorbis (OggS) or MP3 (ID3 tag or MPEG frame) header"
)


def _format_index(file_format):
    name = str(file_format).lower().lstrip(".")
    name = _FORMAT_ALIASES.get(name, name)
    if name not in FORMATS:
        raise ValueError(
            f"Unknown file_format={file_format!r}; expected one of {FORMATS} "
            "or None to detect it from the data"
        )
    return FORMATS.index(name)


def _finish(wave, rate, check_finite=True):
    wave = tf.ensure_shape(tf.cast(wave, tf.float32), [None, None])
    rate = tf.ensure_shape(tf.cast(rate, tf.int32), [])
    if check_finite:
        # Float WAVs can carry NaN/Inf; stop them here rather than in a loss.
        wave = tf.debugging.check_numerics(wave, "decoded audio has NaN or Inf samples")
    return wave, rate


_SCALAR_STRING = tf.TensorSpec([], tf.string)


@functools.lru_cache(maxsize=None)
def _compiled(index, check_finite=True):
    """Traced once: eagerly, header parsing would be ~60 separate small ops."""
    if index == _UNKNOWN:
        return tf.function(_sniff, input_signature=[_SCALAR_STRING])
    decoder = _DECODERS[index]
    if index != _WAV:
        _require_tfio(f"Decoding {_FORMAT_NAMES[index]}")
    return tf.function(
        lambda c: _finish(*decoder(c), check_finite=check_finite),
        input_signature=[_SCALAR_STRING],
    )


def decode_audio(contents, file_format=None):
    """Decodes an encoded audio file into a float32 waveform.

    Works eagerly and inside `tf.data` / `tf.function` (graph mode). The format
    is taken from `file_format` or detected from the magic bytes: `RIFF....WAVE`
    (WAV), `fLaC` (FLAC), `OggS` (Ogg Vorbis), `ID3` or an MPEG frame sync
    (MP3). 16-bit PCM WAV needs only TensorFlow; every other format needs
    tensorflow-io. Samples that are NaN or infinite raise an
    `InvalidArgumentError`.

    Args:
        contents: Scalar string tensor (or `bytes`) holding the file contents.
        file_format: One of `"wav"`, `"flac"`, `"ogg"`, `"mp3"`, or `None`
            to detect the format from the data.

    Returns:
        Tuple `(waveform, sample_rate)`: a float32 tensor of shape
        `(samples, channels)` in [-1, 1] and an int32 scalar tensor.

    Raises:
        ValueError: eagerly, for an unknown `file_format` or unrecognised data.
        ImportError: when the format needs tensorflow-io and it is missing
            (in graph mode with a detected format, an `InvalidArgumentError`
            carrying the same advice is raised when the data is decoded).
        tf.errors.InvalidArgumentError: when the decoder rejects the data.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> wav = tf.audio.encode_wav(np.zeros((800, 1), "float32"), 8000)
    >>> wave, rate = decode_audio(wav)
    >>> tuple(wave.shape), int(rate)
    ((800, 1), 8000)
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    eager = tf.executing_eagerly()
    if file_format is not None:
        index = _format_index(file_format)
        return _compiled(index)(contents) if eager else _finish(*_DECODERS[index](contents))
    if eager:
        index = int(_compiled(_UNKNOWN)(contents))
        if index == _UNKNOWN:
            raise ValueError(_UNKNOWN_MESSAGE)
        return _compiled(index)(contents)
    index = _sniff(contents)
    branches = []
    for i in (_WAV, _FLAC, _OGG, _MP3):
        if i != _WAV and _tfio is None:
            branches.append(
                _fail_branch(
                    f"Decoding {_FORMAT_NAMES[i]} needs tensorflow-io, which is "
                    f"not installed: {INSTALL_HINT}"
                )
            )
        else:
            branches.append(functools.partial(_DECODERS[i], contents))
    branches.append(_fail_branch(_UNKNOWN_MESSAGE))
    return _finish(*tf.switch_case(index, branches))


_TRACE_LINES = ("Graph execution error", "Detected at node", "File ", "[[")


def _first_line(error):
    """The informative line of a TF error (graph errors bury it under a trace)."""
    message = getattr(error, "message", None) or str(error)
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith(_TRACE_LINES):
            continue
        if line.startswith("{{function_node"):
            line = line.split("}}", 1)[-1].strip()
        line = line.split(" [Op:")[0].split("\t [[")[0]
        return line.removeprefix("assertion failed: ").strip("[] ")
    return type(error).__name__


def load_audio(path, sample_rate=None, mono=True):
    """Reads, decodes, optionally downmixes and resamples one audio file.

    An eager convenience around `decode_audio` for building in-memory datasets.
    Every failure names the file.

    Args:
        path: Path of a WAV, FLAC, Ogg Vorbis or MP3 file.
        sample_rate: Target rate in Hz, or `None` to keep the file's rate.
        mono: If `True`, average the channels and return a 1-D waveform.

    Returns:
        Tuple `(waveform, sample_rate)`: a float32 numpy array of shape
        `(samples,)` (mono) or `(samples, channels)`, and the rate as an int.

    Raises:
        FileNotFoundError: the file does not exist.
        AudioDecodeError: the file is empty, not audio, corrupt, decodes to no
            samples, or holds NaN/infinite samples.
        ImportError: the format needs tensorflow-io and it is not installed.

    Example:

    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> tone = np.sin(np.arange(8000) / 5).astype("float32")[:, None] / 2
    >>> tf.io.write_file(path, tf.audio.encode_wav(tone, 8000))
    >>> wave, rate = load_audio(path, sample_rate=16000)
    >>> wave.shape, rate
    ((16000,), 16000)
    """
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Audio file not found: {path}")
    if tf.io.gfile.isdir(path):
        raise AudioDecodeError(path, "is a directory, not an audio file")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    if not data:
        raise AudioDecodeError(path, "file is empty (0 bytes)")
    contents = tf.constant(data)
    index = int(_compiled(_UNKNOWN)(contents))
    if index == _UNKNOWN:
        raise AudioDecodeError(
            path,
            f"not a recognised audio file (starts with {data[:8]!r}); "
            "expected WAV, FLAC, Ogg Vorbis or MP3",
        )
    name = _FORMAT_NAMES[index]
    try:
        # Non-finite samples are counted below, for a clearer message.
        wave, rate = _compiled(index, check_finite=False)(contents)
        wave = wave.numpy()
        rate = int(rate)
    except ImportError as e:
        raise ImportError(f"{path}: {e}") from e
    except (tf.errors.OpError, ValueError) as e:
        raise AudioDecodeError(path, f"could not decode as {name}: {_first_line(e)}") from e
    if wave.ndim != 2 or wave.shape[0] == 0 or wave.shape[1] == 0:
        raise AudioDecodeError(path, f"decoded to no samples (shape {wave.shape})")
    if rate <= 0:
        raise AudioDecodeError(path, f"header gives an invalid sample rate ({rate} Hz)")
    bad = int(np.size(wave) - np.count_nonzero(np.isfinite(wave)))
    if bad:
        raise AudioDecodeError(path, f"contains {bad} NaN or infinite samples")
    if mono:
        wave = wave.mean(axis=1, dtype=np.float32)
    if sample_rate is not None and int(sample_rate) != rate:
        try:
            wave = resample(wave, rate, int(sample_rate)).numpy()
        except ImportError as e:
            raise ImportError(f"{path}: {e}") from e
        rate = int(sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32), rate


def to_mono(wave):
    """Averages the channels of a `(samples, channels)` waveform.

    Args:
        wave: Float tensor of shape `(samples, channels)`, or `(samples,)`
            which is returned unchanged.

    Returns:
        Float tensor of shape `(samples,)`.

    Example:

    >>> to_mono([[1.0, 0.0], [0.5, 0.5]]).numpy().tolist()
    [0.5, 0.5]
    """
    wave = tf.convert_to_tensor(wave)
    if wave.shape.rank == 1:
        return wave
    if wave.shape.rank != 2:
        raise ValueError(
            f"to_mono expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    return tf.reduce_mean(wave, axis=1)


_delay_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _resampler_delay(rate_in, rate_out):
    """Output-sample delay of tensorflow-io's resampler for a rate pair.

    The resampler is a streaming filter that is never flushed: its output lags
    by the filter's group delay (e.g. 64 samples for 8 -> 16 kHz) and loses
    the same amount at the end. It is measured once per rate pair with an
    impulse placed where it maps to a whole output sample.
    """
    g = math.gcd(rate_in, rate_out)
    step_in, step_out = rate_in // g, rate_out // g
    k = max(1, math.ceil(512 / step_in))
    position, expected = step_in * k, step_out * k
    length = position + 4096 * max(1, math.ceil(rate_in / rate_out))
    impulse = np.zeros((length, 1), np.float32)
    impulse[position, 0] = 1.0
    with tf.init_scope():
        out = _resample_op(_tfio)(impulse, rate_in=rate_in, rate_out=rate_out)
        peak = int(np.argmax(np.abs(out.numpy()[:, 0])))
    return max(0, peak - expected)


def resample(wave, rate_in, rate_out):
    """Resamples a waveform with tensorflow-io's resampler.

    The resampler's filter delay is compensated, so the output is aligned with
    the input and has `ceil(samples * rate_out / rate_in)` samples.

    Args:
        wave: Float tensor of shape `(samples,)` or `(samples, channels)`.
        rate_in: Python int, the input sample rate in Hz.
        rate_out: Python int, the output sample rate in Hz.

    Returns:
        Float32 tensor of the same rank as `wave`.

    Raises:
        ImportError: tensorflow-io is not installed (and the rates differ).

    Example:

    >>> import numpy as np
    >>> resample(np.zeros(8000, "float32"), 8000, 16000).shape
    TensorShape([16000])
    """
    for name, value in (("rate_in", rate_in), ("rate_out", rate_out)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(
                f"resample: {name} must be a positive Python int (the resampler "
                f"takes rates as op attributes); got {value!r}"
            )
    rate_in, rate_out = int(rate_in), int(rate_out)
    wave = tf.cast(tf.convert_to_tensor(wave), tf.float32)
    rank = wave.shape.rank
    if rank not in (1, 2):
        raise ValueError(
            "resample expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    if rate_in == rate_out:
        return wave
    _require_tfio("Resampling")
    with _delay_lock:
        delay = _resampler_delay(rate_in, rate_out)
    x = wave[:, None] if rank == 1 else wave
    n = tf.shape(x, out_type=tf.int64)[0]
    out_len = (n * rate_out + rate_in - 1) // rate_in
    tail = math.ceil((delay + 2) * rate_in / rate_out) + 2
    x = tf.pad(x, [[0, tail], [0, 0]])
    y = _resample_op(_tfio)(x, rate_in=rate_in, rate_out=rate_out)
    y = y[delay : delay + out_len]
    return y[:, 0] if rank == 1 else y


def _seed_tensor(seed):
    if seed is None:
        return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise ValueError(f"seed must be an int or a shape-[2] int tensor; got shape {seed.shape}")
    return tf.cast(seed, tf.int64)


def fix_length(wave, length, mode="random", seed=None):
    """Pads with zeros or crops a waveform to exactly `length` samples.

    In `"random"` mode (training) a longer clip is cropped at a random offset
    and a shorter one is placed at a random offset in silence; in `"center"`
    mode (evaluation) both are centred. Random offsets come from stateless
    random ops, so a fixed `seed` gives the same result every time, also
    inside `tf.data`.

    Args:
        wave: Tensor of shape `(samples,)` or `(samples, channels)`.
        length: Python int, the number of samples wanted.
        mode: `"random"` or `"center"`.
        seed: For `"random"`: an int, a shape-`[2]` int tensor (e.g. one
            element of `tf.data.Dataset.random(...).batch(2)`), or `None`
            for a fresh random offset each call.

    Returns:
        Tensor of shape `(length,)` or `(length, channels)`.

    Example:

    >>> fix_length([1.0, 2.0, 3.0, 4.0], 2, mode="center").numpy().tolist()
    [2.0, 3.0]
    >>> fix_length([1.0, 2.0], 4, mode="center").numpy().tolist()
    [0.0, 1.0, 2.0, 0.0]
    """
    if mode not in ("random", "center"):
        raise ValueError(f"fix_length: mode must be 'random' or 'center'; got {mode!r}")
    if not isinstance(length, (int, np.integer)) or length <= 0:
        raise ValueError(f"fix_length: length must be a positive int; got {length!r}")
    length = int(length)
    wave = tf.convert_to_tensor(wave)
    if wave.shape.rank not in (1, 2):
        raise ValueError(
            "fix_length expects wave of shape (samples,) or (samples, channels); "
            f"got shape {wave.shape}"
        )
    n = tf.shape(wave)[0]
    excess = n - length
    spread = tf.abs(excess)
    if mode == "center":
        offset = spread // 2
    else:
        offset = tf.random.stateless_uniform(
            [], seed=_seed_tensor(seed), minval=0, maxval=spread + 1, dtype=tf.int32
        )
    start = tf.where(excess > 0, offset, 0)
    pad_left = tf.where(excess < 0, offset, 0)
    kept = wave[start : start + tf.minimum(n, length)]
    pad_right = length - tf.shape(kept)[0] - pad_left
    paddings = [[pad_left, pad_right]] + [[0, 0]] * (wave.shape.rank - 1)
    out = tf.pad(kept, paddings)
    return tf.ensure_shape(out, [length] + wave.shape.as_list()[1:])


def multi_crop(wave, length, num_crops=10):
    """Evenly spaced crops covering a clip, for test-time averaging.

    As in BC learning / EnvNet evaluation, predictions over `num_crops`
    windows spread from start to end of the clip are averaged. A clip shorter
    than `length` is centred in zeros, so all crops are then identical.

    Args:
        wave: Tensor of shape `(samples,)` or `(samples, channels)`.
        length: Python int, samples per crop.
        num_crops: Python int, number of crops.

    Returns:
        Tensor of shape `(num_crops, length)` or `(num_crops, length, channels)`.

    Example:

    >>> multi_crop(tf.range(10.0), 4, num_crops=3).numpy().tolist()
    [[0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 6.0], [6.0, 7.0, 8.0, 9.0]]
    """
    if not isinstance(num_crops, (int, np.integer)) or num_crops <= 0:
        raise ValueError(f"multi_crop: num_crops must be a positive int; got {num_crops!r}")
    wave = tf.convert_to_tensor(wave)
    n = tf.shape(wave)[0]
    wave = tf.cond(
        n < length, lambda: fix_length(wave, length, mode="center"), lambda: wave
    )
    last = tf.cast(tf.shape(wave)[0] - length, tf.float64)
    starts = tf.linspace(tf.constant(0.0, tf.float64), last, int(num_crops))
    starts = tf.cast(tf.round(starts), tf.int32)
    index = starts[:, None] + tf.range(int(length))[None, :]
    return tf.gather(wave, index)


def normalize(wave, mode="peak", target=1.0, axis=None, epsilon=1e-8):
    """Scales a waveform to a given peak or RMS level.

    Silence (level below `epsilon`) is returned unchanged instead of being
    divided by zero, so the result never contains NaN.

    Args:
        wave: Float tensor.
        mode: `"peak"` (max absolute value becomes `target`) or `"rms"`
            (root mean square becomes `target`).
        target: Level to reach.
        axis: Axes over which the level is measured (`None`: the whole
            tensor; e.g. `-1` for a batch of mono clips `(batch, samples)`).
        epsilon: Levels at or below this count as silence.

    Returns:
        Tensor shaped like `wave`.

    Example:

    >>> normalize([0.0, 0.25, -0.5]).numpy().tolist()
    [0.0, 0.5, -1.0]
    >>> normalize([0.0, 0.0]).numpy().tolist()
    [0.0, 0.0]
    """
    if mode not in ("peak", "rms"):
        raise ValueError(f"normalize: mode must be 'peak' or 'rms'; got {mode!r}")
    wave = tf.convert_to_tensor(wave)
    if not wave.dtype.is_floating:
        wave = tf.cast(wave, tf.float32)
    if mode == "peak":
        level = tf.reduce_max(tf.abs(wave), axis=axis, keepdims=True)
    else:
        level = tf.sqrt(tf.reduce_mean(tf.square(wave), axis=axis, keepdims=True))
    scale = tf.where(level > epsilon, target / tf.maximum(level, epsilon), tf.ones_like(level))
    return wave * scale
